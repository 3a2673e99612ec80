/* Unit tests of GstVoiceTranscriptMeta.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include "voice.h"

static GstBuffer *
make_text_buffer (const gchar *text)
{
  return gst_buffer_new_memdup (text, strlen (text));
}

static void
check_meta (GstBuffer *buf, GstVoiceRole role, gboolean is_final,
    gboolean speech_final, gfloat confidence, guint turn)
{
  GstVoiceTranscriptMeta *meta = gst_buffer_get_voice_transcript_meta (buf);

  fail_unless (meta != NULL);
  fail_unless_equals_int (meta->role, role);
  fail_unless_equals_int (meta->is_final, is_final);
  fail_unless_equals_int (meta->speech_final, speech_final);
  fail_unless_equals_float (meta->confidence, confidence);
  fail_unless_equals_int (meta->turn, turn);
}

/* The fields set are the fields read. */
GST_START_TEST (test_meta_fields)
{
  GstBuffer *buf = make_text_buffer ("hello");

  fail_unless (gst_buffer_get_voice_transcript_meta (buf) == NULL);
  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_USER, TRUE, TRUE, 0.875f, 4);
  check_meta (buf, GST_VOICE_ROLE_USER, TRUE, TRUE, 0.875f, 4);
  fail_unless_equals_string (
      gst_voice_role_to_string (GST_VOICE_ROLE_AGENT), "agent");
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* Shallow copies, deep copies and region copies keep the meta. */
GST_START_TEST (test_meta_survives_copies)
{
  GstBuffer *buf = make_text_buffer ("good morning");
  GstBuffer *copy, *deep, *region;

  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_AGENT, FALSE, FALSE, 1.0f, 9);
  copy = gst_buffer_copy (buf);
  deep = gst_buffer_copy_deep (buf);
  region = gst_buffer_copy_region (buf, GST_BUFFER_COPY_ALL, 0, 4);
  check_meta (copy, GST_VOICE_ROLE_AGENT, FALSE, FALSE, 1.0f, 9);
  check_meta (deep, GST_VOICE_ROLE_AGENT, FALSE, FALSE, 1.0f, 9);
  check_meta (region, GST_VOICE_ROLE_AGENT, FALSE, FALSE, 1.0f, 9);
  gst_buffer_unref (copy);
  gst_buffer_unref (deep);
  gst_buffer_unref (region);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* The meta crosses elements that copy buffers (queue + a writable identity). */
GST_START_TEST (test_meta_through_elements)
{
  GstHarness *h =
      gst_harness_new_parse ("queue ! identity drop-allocation=true");
  GstBuffer *buf = make_text_buffer ("how are you");
  GstBuffer *out;

  gst_harness_set_src_caps_str (h, "text/x-raw,format=utf8");
  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_USER, TRUE, FALSE, 0.5f, 2);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  out = gst_harness_pull (h);
  check_meta (out, GST_VOICE_ROLE_USER, TRUE, FALSE, 0.5f, 2);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
voice_meta_suite (void)
{
  Suite *s = suite_create ("voice-meta");
  TCase *tc = tcase_create ("general");

  gst_voice_init ();
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_meta_fields);
  tcase_add_test (tc, test_meta_survives_copies);
  tcase_add_test (tc, test_meta_through_elements);
  return s;
}

GST_CHECK_MAIN (voice_meta);

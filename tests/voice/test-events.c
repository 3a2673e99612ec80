/* Unit tests of the conversation events.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include "voice.h"

/* Each constructor makes the GstEventType its direction and timing need. */
GST_START_TEST (test_event_kinds)
{
  GstEvent *e;

  e = gst_voice_event_new_speech_start (1 * GST_SECOND, 3);
  fail_unless_equals_int (GST_EVENT_TYPE (e), GST_EVENT_CUSTOM_DOWNSTREAM_OOB);
  fail_unless_equals_int (
      gst_voice_event_get_voice_type (e), GST_VOICE_EVENT_SPEECH_START);
  gst_event_unref (e);

  e = gst_voice_event_new_speech_stop (2 * GST_SECOND, 3);
  fail_unless_equals_int (GST_EVENT_TYPE (e), GST_EVENT_CUSTOM_DOWNSTREAM);
  fail_unless (GST_EVENT_IS_SERIALIZED (e));
  gst_event_unref (e);

  e = gst_voice_event_new_end_of_turn (2 * GST_SECOND, 3, "hello");
  fail_unless_equals_int (GST_EVENT_TYPE (e), GST_EVENT_CUSTOM_DOWNSTREAM);
  gst_event_unref (e);

  e = gst_voice_event_new_interrupt (
      GST_CLOCK_TIME_NONE, 4, "user_interrupted");
  fail_unless_equals_int (GST_EVENT_TYPE (e), GST_EVENT_CUSTOM_DOWNSTREAM_OOB);
  fail_if (GST_EVENT_IS_SERIALIZED (e));
  gst_event_unref (e);

  e = gst_voice_event_new_spoken (5 * GST_SECOND, 4, "Hello the", FALSE);
  fail_unless (GST_EVENT_IS_UPSTREAM (e));
  gst_event_unref (e);
}

GST_END_TEST;

/* Parsers return what the constructors stored, including the extra fields. */
GST_START_TEST (test_event_roundtrip)
{
  GstEvent *e;
  GstVoiceEventType type;
  GstClockTime rt;
  guint turn;
  const gchar *text;
  gboolean complete;

  e = gst_voice_event_new_speech_start (1500 * GST_MSECOND, 7);
  fail_unless (gst_voice_event_parse (e, &type, &rt, &turn));
  fail_unless_equals_int (type, GST_VOICE_EVENT_SPEECH_START);
  fail_unless_equals_uint64 (rt, 1500 * GST_MSECOND);
  fail_unless_equals_int (turn, 7);
  fail_if (gst_voice_event_parse_end_of_turn (e, NULL, NULL, NULL));
  gst_event_unref (e);

  e = gst_voice_event_new_end_of_turn (3 * GST_SECOND, 2, "what time is it");
  fail_unless (gst_voice_event_parse_end_of_turn (e, &rt, &turn, &text));
  fail_unless_equals_string (text, "what time is it");
  fail_unless_equals_uint64 (rt, 3 * GST_SECOND);
  fail_unless_equals_int (turn, 2);
  gst_event_unref (e);

  e = gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 9, "vad");
  fail_unless (gst_voice_event_parse_interrupt (e, &rt, &turn, &text));
  fail_unless_equals_string (text, "vad");
  fail_unless_equals_uint64 (rt, GST_CLOCK_TIME_NONE);
  gst_event_unref (e);

  e = gst_voice_event_new_spoken (4 * GST_SECOND, 9, "It is ten", TRUE);
  fail_unless (gst_voice_event_parse_spoken (e, &rt, &turn, &text, &complete));
  fail_unless_equals_string (text, "It is ten");
  fail_unless (complete);
  gst_event_unref (e);
}

GST_END_TEST;

/* Ordinary events and look-alikes of the wrong GstEventType are not ours. */
GST_START_TEST (test_foreign_events)
{
  GstEvent *e = gst_event_new_eos ();
  fail_unless_equals_int (
      gst_voice_event_get_voice_type (e), GST_VOICE_EVENT_NONE);
  fail_if (gst_voice_event_parse (e, NULL, NULL, NULL));
  gst_event_unref (e);

  e = gst_event_new_custom (
      GST_EVENT_CUSTOM_UPSTREAM, gst_structure_new_empty ("speech-start"));
  fail_unless_equals_int (
      gst_voice_event_get_voice_type (e), GST_VOICE_EVENT_NONE);
  gst_event_unref (e);
  fail_unless (gst_voice_event_type_get_name (GST_VOICE_EVENT_NONE) == NULL);
  fail_unless_equals_string (
      gst_voice_event_type_get_name (GST_VOICE_EVENT_END_OF_TURN),
      "end-of-turn");
}

GST_END_TEST;

/* The bus message structure carries the event's fields plus event/action. */
GST_START_TEST (test_message_structure)
{
  GstEvent *e = gst_voice_event_new_speech_stop (2 * GST_SECOND, 5);
  GstStructure *s =
      gst_voice_event_to_message_structure (e, "silerovad", "sent");
  guint64 rt;
  guint turn;
  gint64 wallclock;

  fail_unless (gst_structure_has_name (s, "silerovad"));
  fail_unless_equals_string (
      gst_structure_get_string (s, "event"), "speech-stop");
  fail_unless_equals_string (gst_structure_get_string (s, "action"), "sent");
  fail_unless (gst_structure_get_uint64 (s, "running-time", &rt));
  fail_unless_equals_uint64 (rt, 2 * GST_SECOND);
  fail_unless (gst_structure_get_uint (s, "turn", &turn));
  fail_unless_equals_int (turn, 5);
  fail_unless (gst_structure_get_int64 (s, "wallclock", &wallclock));
  gst_structure_free (s);
  gst_event_unref (e);

  e = gst_event_new_flush_start ();
  fail_unless (gst_voice_event_to_message_structure (e, "x", "y") == NULL);
  gst_event_unref (e);
}

GST_END_TEST;

/* The events travel through ordinary elements: out-of-band ones are not
 * held back by serialized data, and all arrive intact. */
GST_START_TEST (test_events_through_pipeline)
{
  GstHarness *h = gst_harness_new ("identity");
  GstEvent *e;
  guint turn;
  const gchar *transcript;

  gst_harness_set_src_caps_str (h, "text/x-raw,format=utf8");
  fail_unless (gst_harness_push_event (
      h, gst_voice_event_new_speech_start (GST_SECOND, 1)));
  fail_unless (gst_harness_push_event (
      h, gst_voice_event_new_end_of_turn (2 * GST_SECOND, 1, "hi there")));

  /* Skip stream-start, caps, segment. */
  while ((e = gst_harness_try_pull_event (h))) {
    GstVoiceEventType type = gst_voice_event_get_voice_type (e);
    if (type == GST_VOICE_EVENT_END_OF_TURN) {
      fail_unless (
          gst_voice_event_parse_end_of_turn (e, NULL, &turn, &transcript));
      fail_unless_equals_string (transcript, "hi there");
      fail_unless_equals_int (turn, 1);
      gst_event_unref (e);
      break;
    }
    gst_event_unref (e);
  }
  fail_unless (e != NULL, "end-of-turn did not come through");
  gst_harness_teardown (h);
}

GST_END_TEST;

static Suite *
voice_events_suite (void)
{
  Suite *s = suite_create ("voice-events");
  TCase *tc = tcase_create ("general");

  gst_voice_init ();
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_event_kinds);
  tcase_add_test (tc, test_event_roundtrip);
  tcase_add_test (tc, test_foreign_events);
  tcase_add_test (tc, test_message_structure);
  tcase_add_test (tc, test_events_through_pipeline);
  return s;
}

GST_CHECK_MAIN (voice_events);

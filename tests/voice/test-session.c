/* Unit tests of the sink/src pairing registry.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "voice.h"

/* Either half may come first; both get the same session. */
GST_START_TEST (test_session_pairing)
{
  GstVoiceSession *src_half = gst_voice_session_acquire ("deepgram", "call-1");
  GstVoiceSession *sink_half = gst_voice_session_acquire ("deepgram", "call-1");
  GstVoiceSession *other = gst_voice_session_acquire ("deepgram", "call-2");
  GstVoiceSession *other_kind =
      gst_voice_session_acquire ("elevenlabs", "call-1");

  fail_unless (src_half == sink_half);
  fail_unless (other != src_half);
  fail_unless (other_kind != src_half);
  fail_unless_equals_string (gst_voice_session_get_name (src_half), "call-1");
  fail_unless_equals_string (
      gst_voice_session_get_kind (other_kind), "elevenlabs");
  fail_unless (
      gst_voice_session_get_queue (src_half, GST_VOICE_SESSION_TO_SRC) !=
      gst_voice_session_get_queue (src_half, GST_VOICE_SESSION_TO_SINK));
  fail_unless_equals_int (gst_voice_session_count (), 3);

  gst_voice_session_release (src_half);
  gst_voice_session_release (sink_half);
  gst_voice_session_release (other);
  gst_voice_session_release (other_kind);
  fail_unless_equals_int (gst_voice_session_count (), 0);
}

GST_END_TEST;

/* Data pushed by one half reaches the other through the session. */
GST_START_TEST (test_session_queue)
{
  GstVoiceSession *a = gst_voice_session_acquire ("x", "q");
  GstVoiceSession *b = gst_voice_session_acquire ("x", "q");
  GstMiniObject *item;

  gst_voice_queue_push (
      gst_voice_session_get_queue (a, GST_VOICE_SESSION_TO_SRC),
      GST_MINI_OBJECT (gst_event_new_eos ()));
  item = gst_voice_queue_try_pop (
      gst_voice_session_get_queue (b, GST_VOICE_SESSION_TO_SRC));
  fail_unless (item && GST_IS_EVENT (item));
  gst_mini_object_unref (item);
  gst_voice_session_release (a);
  gst_voice_session_release (b);
}

GST_END_TEST;

/* The session is freed when the last holder releases it, and a later
 * acquire of the same name gets a fresh one. */
GST_START_TEST (test_session_lifetime)
{
  GstVoiceSession *a = gst_voice_session_acquire ("deepgram", "gone");
  GstVoiceSession *b = gst_voice_session_acquire ("deepgram", "gone");
  GstVoiceSession *c;
  gpointer weak = a;

  g_object_add_weak_pointer (G_OBJECT (a), &weak);
  gst_voice_session_release (a);
  fail_unless (weak != NULL);
  gst_voice_session_release (b);
  fail_unless (weak == NULL);

  c = gst_voice_session_acquire ("deepgram", "gone");
  fail_unless (gst_voice_queue_get_length (gst_voice_session_get_queue (
                   c, GST_VOICE_SESSION_TO_SRC)) == 0);
  gst_voice_session_release (c);
  fail_unless_equals_int (gst_voice_session_count (), 0);
}

GST_END_TEST;

#define N_THREADS 8
#define N_ROUNDS 2000

static gpointer
churn (gpointer data)
{
  GRand *rand = g_rand_new_with_seed (GPOINTER_TO_UINT (data));
  gint i;

  for (i = 0; i < N_ROUNDS; i++) {
    gchar name[16];
    GstVoiceSession *s, *again;

    g_snprintf (name, sizeof (name), "s%u", g_rand_int_range (rand, 0, 4));
    s = gst_voice_session_acquire ("stress", name);
    again = gst_voice_session_acquire ("stress", name);
    /* Whoever else holds it, the two halves must meet. */
    g_assert (s == again);
    gst_voice_queue_push (
        gst_voice_session_get_queue (s, GST_VOICE_SESSION_TO_SRC),
        GST_MINI_OBJECT (gst_buffer_new ()));
    gst_voice_session_release (again);
    gst_voice_session_release (s);
  }
  g_rand_free (rand);
  return NULL;
}

/* Many threads pairing and releasing the same few names at once never see
 * two sessions for one name, never crash, and leave nothing behind. */
GST_START_TEST (test_session_threads)
{
  GThread *threads[N_THREADS];
  gint i;

  for (i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("churn", churn, GUINT_TO_POINTER (i + 1));
  for (i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);
  fail_unless_equals_int (gst_voice_session_count (), 0);
}

GST_END_TEST;

static GQueue forwarded = G_QUEUE_INIT;

static void
record_upstream (GstPad *pad, GstEvent *event)
{
  fail_unless (GST_IS_PAD (pad));
  g_queue_push_tail (&forwarded, event);
}

/* Upstream events reach a registered forwarder at once, those sent before
 * it registered when it does, and after removal they wait in the queue. */
GST_START_TEST (test_session_upstream)
{
  GstVoiceSession *s = gst_voice_session_acquire ("test", "up");
  GstVoiceQueue *q = gst_voice_session_get_queue (s, GST_VOICE_SESSION_TO_SINK);
  GstPad *pad = gst_pad_new ("sink", GST_PAD_SINK);

  gst_voice_session_push_upstream (
      s, gst_voice_event_new_spoken (0, 1, "early", TRUE));
  fail_unless_equals_int (gst_voice_queue_get_length (q), 1);
  gst_voice_session_set_upstream (s, pad, record_upstream);
  fail_unless_equals_int (gst_voice_queue_get_length (q), 0);
  fail_unless_equals_int (g_queue_get_length (&forwarded), 1);
  gst_voice_session_push_upstream (
      s, gst_voice_event_new_spoken (0, 2, "direct", TRUE));
  fail_unless_equals_int (g_queue_get_length (&forwarded), 2);
  gst_voice_session_set_upstream (s, NULL, NULL);
  gst_voice_session_push_upstream (
      s, gst_voice_event_new_spoken (0, 3, "late", TRUE));
  fail_unless_equals_int (g_queue_get_length (&forwarded), 2);
  fail_unless_equals_int (gst_voice_queue_get_length (q), 1);
  g_queue_clear_full (&forwarded, (GDestroyNotify)gst_event_unref);
  gst_object_unref (pad);
  gst_voice_session_release (s);
}

GST_END_TEST;

/* Unique names never repeat. */
GST_START_TEST (test_session_unique_names)
{
  gchar *a = gst_voice_session_make_unique_name ("deepgram");
  gchar *b = gst_voice_session_make_unique_name ("deepgram");

  fail_if (g_str_equal (a, b));
  fail_unless (g_str_has_prefix (a, "deepgram-"));
  g_free (a);
  g_free (b);
}

GST_END_TEST;

static Suite *
voice_session_suite (void)
{
  Suite *s = suite_create ("voice-session");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_session_pairing);
  tcase_add_test (tc, test_session_queue);
  tcase_add_test (tc, test_session_lifetime);
  tcase_add_test (tc, test_session_threads);
  tcase_add_test (tc, test_session_unique_names);
  tcase_add_test (tc, test_session_upstream);
  return s;
}

GST_CHECK_MAIN (voice_session);

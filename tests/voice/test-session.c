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

/* A minimal pair element: what gst_voice_pair_* needs and nothing else. */
#define TEST_TYPE_PAIR (test_pair_get_type ())
G_DECLARE_FINAL_TYPE (TestPair, test_pair, TEST, PAIR, GstElement)

struct _TestPair
{
  GstElement parent;
  gchar *session_name; /* protected by OBJECT_LOCK */
  GstVoiceSession *session; /* written by gst_voice_pair_* */
};

G_DEFINE_FINAL_TYPE (TestPair, test_pair, GST_TYPE_ELEMENT);

static const GstVoicePairInfo test_pair_info = {
  .kind = "test-pair",
  .name_offset = G_STRUCT_OFFSET (TestPair, session_name),
  .session_offset = G_STRUCT_OFFSET (TestPair, session),
};

static GstStateChangeReturn
test_pair_change_state (GstElement *element, GstStateChange transition)
{
  return gst_voice_pair_change_state (element, transition, &test_pair_info,
      GST_ELEMENT_CLASS (test_pair_parent_class));
}

static void
test_pair_finalize (GObject *object)
{
  g_free (TEST_PAIR (object)->session_name);
  G_OBJECT_CLASS (test_pair_parent_class)->finalize (object);
}

static void
test_pair_class_init (TestPairClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = test_pair_finalize;
  GST_ELEMENT_CLASS (klass)->change_state = test_pair_change_state;
}

static void
test_pair_init (TestPair *self)
{
  self->session_name = g_strdup ("pair");
}

/* Both halves join the same session at NULL→READY and leave at
 * READY→NULL. */
GST_START_TEST (test_pair_change_state_join_leave)
{
  TestPair *a = g_object_new (TEST_TYPE_PAIR, NULL);
  TestPair *b = g_object_new (TEST_TYPE_PAIR, NULL);

  gst_object_ref_sink (a);
  gst_object_ref_sink (b);
  fail_unless_equals_int (
      gst_element_set_state (GST_ELEMENT (a), GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (
      gst_element_set_state (GST_ELEMENT (b), GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless (a->session != NULL && a->session == b->session);
  fail_unless_equals_string (
      gst_voice_session_get_kind (a->session), "test-pair");
  fail_unless_equals_int (gst_voice_session_count (), 1);

  gst_element_set_state (GST_ELEMENT (a), GST_STATE_NULL);
  fail_unless (a->session == NULL && b->session != NULL);
  fail_unless_equals_int (gst_voice_session_count (), 1);
  gst_element_set_state (GST_ELEMENT (b), GST_STATE_NULL);
  fail_unless (b->session == NULL);
  fail_unless_equals_int (gst_voice_session_count (), 0);
  gst_object_unref (a);
  gst_object_unref (b);
}

GST_END_TEST;

static GstStateChangeReturn
failing_change_state (GstElement *element, GstStateChange transition)
{
  return GST_STATE_CHANGE_FAILURE;
}

/* A failed NULL→READY gives the session back. */
GST_START_TEST (test_pair_change_state_failure)
{
  TestPair *a = g_object_new (TEST_TYPE_PAIR, NULL);
  GstElementClass failing = { 0 };

  gst_object_ref_sink (a);
  failing.change_state = failing_change_state;
  fail_unless_equals_int (
      gst_voice_pair_change_state (GST_ELEMENT (a),
          GST_STATE_CHANGE_NULL_TO_READY, &test_pair_info, &failing),
      GST_STATE_CHANGE_FAILURE);
  fail_unless (a->session == NULL);
  fail_unless_equals_int (gst_voice_session_count (), 0);
  gst_object_unref (a);
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
  tcase_add_test (tc, test_pair_change_state_join_leave);
  tcase_add_test (tc, test_pair_change_state_failure);
  return s;
}

GST_CHECK_MAIN (voice_session);

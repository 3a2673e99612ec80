/* Unit tests of GstVoiceQueue.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "voice.h"

static GstMiniObject *
buffer_of (gsize size)
{
  return GST_MINI_OBJECT (gst_buffer_new_allocate (NULL, size, NULL));
}

/* FIFO order, mixed buffers and events. */
GST_START_TEST (test_queue_order)
{
  GstVoiceQueue *q = gst_voice_queue_new (0);
  GstMiniObject *a = buffer_of (10), *b, *out;

  b = GST_MINI_OBJECT (gst_event_new_eos ());
  fail_unless (gst_voice_queue_push (q, gst_mini_object_ref (a)));
  fail_unless (gst_voice_queue_push (q, gst_mini_object_ref (b)));
  fail_unless_equals_int (gst_voice_queue_get_length (q), 2);
  fail_unless_equals_int (gst_voice_queue_get_bytes (q), 10);
  out = gst_voice_queue_try_pop (q);
  fail_unless (out == a);
  gst_mini_object_unref (out);
  out = gst_voice_queue_pop (q, 0);
  fail_unless (out == b);
  gst_mini_object_unref (out);
  fail_unless (gst_voice_queue_try_pop (q) == NULL);
  fail_unless_equals_int (gst_voice_queue_get_bytes (q), 0);
  gst_mini_object_unref (a);
  gst_mini_object_unref (b);
  gst_voice_queue_free (q);
}

GST_END_TEST;

/* The byte bound refuses buffers, never events, and push_force ignores it. */
GST_START_TEST (test_queue_bound)
{
  GstVoiceQueue *q = gst_voice_queue_new (100);

  fail_unless (gst_voice_queue_push (q, buffer_of (60)));
  fail_if (gst_voice_queue_push (q, buffer_of (60)));
  fail_unless (
      gst_voice_queue_push (q, GST_MINI_OBJECT (gst_event_new_eos ())));
  fail_unless (gst_voice_queue_push (q, buffer_of (40)));
  fail_unless_equals_int (gst_voice_queue_get_bytes (q), 100);
  fail_unless (gst_voice_queue_push_force (q, buffer_of (500)));
  fail_unless_equals_int (gst_voice_queue_get_bytes (q), 600);
  fail_unless_equals_int (gst_voice_queue_clear (q), 4);
  fail_unless_equals_int (gst_voice_queue_get_bytes (q), 0);
  gst_voice_queue_set_max_bytes (q, 1000);
  fail_unless_equals_int (gst_voice_queue_get_max_bytes (q), 1000);
  gst_voice_queue_free (q);
}

GST_END_TEST;

/* A pop with a timeout returns NULL when nothing comes. */
GST_START_TEST (test_queue_timeout)
{
  GstVoiceQueue *q = gst_voice_queue_new (0);

  fail_unless (gst_voice_queue_pop (q, 1000) == NULL);
  gst_voice_queue_free (q);
}

GST_END_TEST;

static gpointer
blocking_pop (gpointer data)
{
  return gst_voice_queue_pop (data, -1);
}

/* Flushing wakes a consumer waiting forever, refuses pushes and empties
 * the queue; leaving flushing restores normal operation. */
GST_START_TEST (test_queue_flushing)
{
  GstVoiceQueue *q = gst_voice_queue_new (0);
  GThread *t = g_thread_new ("pop", blocking_pop, q);

  g_usleep (10000);
  gst_voice_queue_set_flushing (q, TRUE);
  fail_unless (g_thread_join (t) == NULL);
  fail_unless (gst_voice_queue_is_flushing (q));
  fail_if (gst_voice_queue_push (q, buffer_of (1)));
  fail_unless_equals_int (gst_voice_queue_get_length (q), 0);
  gst_voice_queue_set_flushing (q, FALSE);
  fail_unless (gst_voice_queue_push (q, buffer_of (1)));
  gst_voice_queue_free (q);
}

GST_END_TEST;

static gpointer
producer (gpointer data)
{
  gint i;

  for (i = 0; i < 1000; i++)
    gst_voice_queue_push (data, buffer_of (1));
  return NULL;
}

/* Concurrent producers and a consumer lose nothing. */
GST_START_TEST (test_queue_threads)
{
  GstVoiceQueue *q = gst_voice_queue_new (0);
  GThread *t1 = g_thread_new ("p1", producer, q);
  GThread *t2 = g_thread_new ("p2", producer, q);
  gint got = 0;

  while (got < 2000) {
    GstMiniObject *o = gst_voice_queue_pop (q, 5 * G_USEC_PER_SEC);
    fail_unless (o != NULL);
    gst_mini_object_unref (o);
    got++;
  }
  g_thread_join (t1);
  g_thread_join (t2);
  fail_unless (gst_voice_queue_peek (q) == NULL);
  gst_voice_queue_free (q);
}

GST_END_TEST;

static Suite *
voice_queue_suite (void)
{
  Suite *s = suite_create ("voice-queue");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_queue_order);
  tcase_add_test (tc, test_queue_bound);
  tcase_add_test (tc, test_queue_timeout);
  tcase_add_test (tc, test_queue_flushing);
  tcase_add_test (tc, test_queue_threads);
  return s;
}

GST_CHECK_MAIN (voice_queue);

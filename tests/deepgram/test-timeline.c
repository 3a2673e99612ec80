/* Unit tests of deepgramsink's audio ledger (gst/deepgram/timeline.c):
 * what is re-sent after a reconnect and how Deepgram's per-connection audio
 * seconds map back to running time and arrival time.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "timeline.h"

/* GLib's first quark block is dropped by design once libsoup, GIO and
 * GStreamer are loaded; tests/lsan.supp matches it on full stacks only. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

/* 1000 Hz S16: one frame is one millisecond, so numbers read easily. */
#define RATE 1000
#define BPF 2

static void
push (DgTimeline *tl, guint frames, GstClockTime rt, gint64 wall_us)
{
  GBytes *b = g_bytes_new_take (g_malloc0 (frames * BPF), frames * BPF);

  dg_timeline_push (tl, b, rt, wall_us);
  g_bytes_unref (b);
}

static guint
send_all (DgTimeline *tl)
{
  guint n = 0;

  while (dg_timeline_peek_unsent (tl, NULL)) {
    dg_timeline_mark_sent (tl);
    n++;
  }
  return n;
}

/* Guards: Deepgram's times skip what was never sent (gated silence), and
 * map back across the gap to the running time the audio had. */
GST_START_TEST (test_map_across_gap)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);

  fail_unless (!GST_CLOCK_TIME_IS_VALID (dg_timeline_running_time (tl, 0)));
  push (tl, 100, 0, 0);
  push (tl, 100, 100 * GST_MSECOND, 0);
  push (tl, 100, 5 * GST_SECOND, 0); /* 4.8 s of gated silence before it */
  push (tl, 100, GST_CLOCK_TIME_NONE, 0); /* continues the previous one */
  fail_unless_equals_int (send_all (tl), 4);

  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.05), 50 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.15), 150 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.25), 5050 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.35), 5150 * GST_MSECOND);
  fail_unless_equals_uint64 (dg_timeline_get_sent_total (tl), 400);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: a final result frees the audio it covers, to the frame; after a
 * reconnect only what follows is sent again, and the new connection's
 * times (starting at 0 again) still map to the right running time. */
GST_START_TEST (test_finalized_and_reconnect)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);
  GBytes *resend;

  push (tl, 100, 0, 0);
  push (tl, 100, 100 * GST_MSECOND, 0);
  push (tl, 100, 5 * GST_SECOND, 0);
  send_all (tl);
  dg_timeline_finalized (tl, 0.15);
  fail_unless_equals_uint64 (dg_timeline_get_retained (tl), 150);
  fail_unless_equals_uint64 (dg_timeline_get_pending (tl), 150);

  dg_timeline_new_connection (tl);
  fail_unless_equals_uint64 (dg_timeline_get_unsent (tl), 150);
  /* Re-sent audio is not "fresh": the backlog bound does not drop it. */
  fail_unless_equals_uint64 (dg_timeline_get_fresh (tl), 0);
  resend = dg_timeline_peek_unsent (tl, NULL);
  fail_unless_equals_int (g_bytes_get_size (resend), 50 * BPF);
  fail_unless_equals_int (send_all (tl), 2);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.0), 150 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.06), 5010 * GST_MSECOND);
  /* Billing counts what was sent twice. */
  fail_unless_equals_uint64 (dg_timeline_get_sent_total (tl), 450);

  /* An older final (or the same one again) changes nothing. */
  dg_timeline_finalized (tl, 0.0);
  fail_unless_equals_uint64 (dg_timeline_get_retained (tl), 150);
  dg_timeline_finalized (tl, 10.0);
  fail_unless_equals_uint64 (dg_timeline_get_retained (tl), 0);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: the backlog bound drops the oldest never-sent audio only, keeps
 * the newest, and never touches audio waiting to be re-sent. */
GST_START_TEST (test_drop_fresh)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);

  push (tl, 100, 0, 0);
  send_all (tl);
  dg_timeline_new_connection (tl); /* 100 frames to re-send */
  for (guint i = 1; i <= 10; i++)
    push (tl, 100, i * 100 * GST_MSECOND, 0);
  fail_unless_equals_uint64 (dg_timeline_get_fresh (tl), 1000);
  fail_unless_equals_uint64 (dg_timeline_drop_fresh (tl, 300), 700);
  fail_unless_equals_uint64 (dg_timeline_get_fresh (tl), 300);
  fail_unless_equals_uint64 (dg_timeline_get_unsent (tl), 400);
  fail_unless_equals_uint64 (dg_timeline_drop_fresh (tl, 300), 0);

  /* What goes out: the re-send, then the newest three chunks, with the
   * dropped stretch a gap in running time. */
  send_all (tl);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.05), 50 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.15), 850 * GST_MSECOND);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: sent audio that no final result covers is bounded too, dropped
 * oldest first. */
GST_START_TEST (test_drop_retained)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);

  for (guint i = 0; i < 10; i++)
    push (tl, 100, i * 100 * GST_MSECOND, 0);
  send_all (tl);
  fail_unless_equals_uint64 (dg_timeline_drop_retained (tl, 450), 600);
  fail_unless_equals_uint64 (dg_timeline_get_retained (tl), 400);
  /* Mapping does not depend on the chunks kept. */
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.05), 50 * GST_MSECOND);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: the arrival time of a position is the arrival of its chunk minus
 * the audio after it in that chunk (a chunk arrives when its last frame
 * exists); positions past what is kept are unknown. */
GST_START_TEST (test_wall_time)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);

  push (tl, 100, 0, 1000000);
  push (tl, 100, 100 * GST_MSECOND, 1100000);
  send_all (tl);
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.2), 1100000);
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.15), 1050000);
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.1), 1000000);
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.04), 940000);
  /* Beyond what was sent: the newest chunk's arrival. */
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.3), 1100000);
  dg_timeline_finalized (tl, 0.1);
  fail_unless_equals_int64 (dg_timeline_wall_time (tl, 0.05), -1);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: timestamp jitter of a live source does not split segments (the
 * mapping stays continuous), a real jump does. */
GST_START_TEST (test_jitter)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);

  push (tl, 100, 0, 0);
  push (tl, 100, 102 * GST_MSECOND, 0); /* 2 ms late: jitter */
  push (tl, 100, 300 * GST_MSECOND, 0); /* 98 ms later: a gap */
  send_all (tl);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.15), 150 * GST_MSECOND);
  fail_unless_equals_uint64 (
      dg_timeline_running_time (tl, 0.25), 350 * GST_MSECOND);
  dg_timeline_free (tl);
}

GST_END_TEST;

/* Guards: a Finalize (speech-stop) stays where it happened in the audio:
 * sent at once if that audio is out, else right after it; after a
 * reconnect it follows the same audio again; it survives the backlog
 * dropping its chunk. */
GST_START_TEST (test_finalize_marker)
{
  DgTimeline *tl = dg_timeline_new (RATE, BPF);
  gboolean fin;

  fail_if (dg_timeline_mark_finalize (tl)); /* nothing to finalize */
  push (tl, 100, 0, 0);
  send_all (tl);
  fail_unless (dg_timeline_mark_finalize (tl)); /* out already: send now */
  push (tl, 100, GST_SECOND, 0);
  fail_if (dg_timeline_mark_finalize (tl)); /* not out yet: after it */
  push (tl, 100, 2 * GST_SECOND, 0);

  fail_unless (dg_timeline_peek_unsent (tl, &fin) != NULL);
  fail_unless (fin);
  dg_timeline_mark_sent (tl);
  dg_timeline_peek_unsent (tl, &fin);
  fail_if (fin);
  dg_timeline_mark_sent (tl);

  dg_timeline_new_connection (tl);
  dg_timeline_peek_unsent (tl, &fin);
  fail_unless (fin); /* the first chunk's */
  dg_timeline_mark_sent (tl);
  dg_timeline_peek_unsent (tl, &fin);
  fail_unless (fin);
  dg_timeline_mark_sent (tl);
  dg_timeline_peek_unsent (tl, &fin);
  fail_if (fin);
  dg_timeline_mark_sent (tl);

  /* Dropped by the backlog bound: the marker moves to the audio before. */
  push (tl, 100, 3 * GST_SECOND, 0);
  push (tl, 100, 4 * GST_SECOND, 0);
  dg_timeline_mark_finalize (tl);
  fail_unless_equals_uint64 (dg_timeline_drop_fresh (tl, 0), 200);
  dg_timeline_new_connection (tl);
  for (guint i = 0; i < 2; i++) {
    dg_timeline_peek_unsent (tl, &fin);
    dg_timeline_mark_sent (tl);
  }
  dg_timeline_peek_unsent (tl, &fin);
  fail_unless (fin);
  dg_timeline_free (tl);
}

GST_END_TEST;

static Suite *
timeline_suite (void)
{
  Suite *s = suite_create ("deepgram-timeline");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_map_across_gap);
  tcase_add_test (tc, test_finalized_and_reconnect);
  tcase_add_test (tc, test_drop_fresh);
  tcase_add_test (tc, test_drop_retained);
  tcase_add_test (tc, test_wall_time);
  tcase_add_test (tc, test_jitter);
  tcase_add_test (tc, test_finalize_marker);
  return s;
}

GST_CHECK_MAIN (timeline);

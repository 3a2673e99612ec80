/* Unit tests of elevenlabssrc's playout buffer (gst/elevenlabs/playout.c):
 * when turns start, underruns, what was spoken, barge-in.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>

#include "pair.h"
#include "playout.h"

#define RATE 16000
#define MS(n) ((n)*RATE / 1000)

/* A chunk of @ms of samples @value; @text aligned evenly over it when
 * @aligned, else the text of the segment. */
static GstMiniObject *
chunk (guint turn, guint segment, guint ms, gint16 value, const gchar *text,
    gboolean aligned)
{
  guint n = MS (ms);
  gint16 *s = g_new (gint16, n);
  GArray *ends = NULL;
  GBytes *bytes;
  GstBuffer *buf;

  for (guint i = 0; i < n; i++)
    s[i] = GINT16_TO_LE (value);
  bytes = g_bytes_new_take (s, n * 2);
  if (text && aligned) {
    glong chars = g_utf8_strlen (text, -1);
    ends = g_array_new (FALSE, FALSE, sizeof (gint));
    for (glong i = 0; i < chars; i++) {
      gint end = (gint)((i + 1) * ms / chars);
      g_array_append_val (ends, end);
    }
  }
  buf = el_chunk_new (bytes, turn, FALSE, segment, 1234, text, ends);
  g_bytes_unref (bytes);
  if (ends)
    g_array_unref (ends);
  return GST_MINI_OBJECT (buf);
}

static GstMiniObject *
turn_end (guint turn, const gchar *text)
{
  return GST_MINI_OBJECT (el_turn_end_event_new (turn, FALSE, 42, 5, text));
}

static ElPlayout *
new_playout (guint prebuffer_ms)
{
  ElPlayout *p = el_playout_new (RATE);

  el_playout_set_prebuffer (p, prebuffer_ms * GST_MSECOND);
  return p;
}

/* Reads @ms; returns the samples of audio, @notes gets what happened. */
static guint
read_ms (ElPlayout *p, guint ms, GArray *notes)
{
  gint16 *out = g_new (gint16, MS (ms));
  guint n;

  g_array_set_size (notes, 0);
  n = el_playout_read (p, out, MS (ms), notes);
  for (guint i = n; i < MS (ms); i++)
    fail_unless_equals_int (out[i], 0);
  g_free (out);
  return n;
}

static ElNote *
note (GArray *notes, guint i)
{
  fail_unless (i < notes->len);
  return &g_array_index (notes, ElNote, i);
}

/* Guards: a pause plays silence and keeps everything (no underrun, no
 * note); resumed, the turn goes on from the same sample; an interrupt ends
 * a pause. */
GST_START_TEST (test_pause_resume)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 60, 100, NULL, FALSE));
  el_playout_push (p, turn_end (1, "Hello."));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless (el_playout_set_paused (p, TRUE));
  fail_if (el_playout_set_paused (p, TRUE));
  fail_unless (el_playout_is_paused (p));
  for (guint i = 0; i < 5; i++) {
    fail_unless_equals_int (read_ms (p, 20, notes), 0);
    fail_unless_equals_int (notes->len, 0);
  }
  fail_unless_equals_int (el_playout_get_queued_samples (p), MS (40));
  fail_unless (el_playout_set_paused (p, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless_equals_int (notes->len, 0);
  fail_unless_equals_int (read_ms (p, 40, notes), MS (20));
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STOPPED);
  fail_unless (note (notes, 0)->complete);
  fail_unless_equals_int (note (notes, 0)->underruns, 0);

  el_playout_push (p, chunk (2, 1, 60, 100, NULL, FALSE));
  el_playout_set_paused (p, TRUE);
  fail_unless (el_playout_interrupt (p, notes));
  fail_if (el_playout_is_paused (p));
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: a turn waits until the prebuffer is queued, then starts at the
 * start of the buffer. */
GST_START_TEST (test_prebuffer)
{
  ElPlayout *p = new_playout (40);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 10, 100, NULL, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), 0);
  fail_unless_equals_int (notes->len, 0);
  el_playout_push (p, chunk (1, 2, 40, 100, NULL, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless_equals_int (notes->len, 1);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STARTED);
  fail_unless_equals_int (note (notes, 0)->offset, 0);
  fail_unless_equals_int (note (notes, 0)->turn, 1);
  fail_unless_equals_int (note (notes, 0)->received_us, 1234);
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: a turn shorter than the prebuffer starts anyway once its end is
 * in, and ends mid-buffer with silence after it. */
GST_START_TEST (test_short_turn)
{
  ElPlayout *p = new_playout (40);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (3, 1, 10, 100, NULL, FALSE));
  el_playout_push (p, turn_end (3, " Hi,  there. \n"));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (10));
  fail_unless_equals_int (notes->len, 2);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STARTED);
  fail_unless_equals_int (note (notes, 1)->type, EL_NOTE_STOPPED);
  fail_unless_equals_int (note (notes, 1)->offset, MS (10));
  fail_unless (note (notes, 1)->complete);
  fail_unless_equals_string (note (notes, 1)->spoken, "Hi, there.");
  fail_unless_equals_int (note (notes, 1)->samples, MS (10));
  fail_unless_equals_int (note (notes, 1)->characters, 42);
  fail_unless_equals_uint64 (note (notes, 1)->ttfb, 5);
  fail_unless (el_playout_is_idle (p));
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: running dry mid-turn plays silence, counts one underrun, waits
 * for the prebuffer again and reports the count at the end. */
GST_START_TEST (test_underrun)
{
  ElPlayout *p = new_playout (20);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 30, 7, NULL, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (10));
  fail_unless_equals_int (notes->len, 1);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_UNDERRUN);
  fail_unless_equals_int (note (notes, 0)->offset, MS (10));
  fail_unless_equals_int (note (notes, 0)->underruns, 1);
  fail_unless_equals_int (read_ms (p, 20, notes), 0);
  fail_unless_equals_int (notes->len, 0);
  el_playout_push (p, chunk (1, 2, 10, 7, NULL, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), 0); /* below prebuffer */
  el_playout_push (p, chunk (1, 3, 20, 7, NULL, FALSE));
  el_playout_push (p, turn_end (1, "x"));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless_equals_int (notes->len, 0); /* resumed, not restarted */
  fail_unless_equals_int (read_ms (p, 20, notes), MS (10));
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STOPPED);
  fail_unless_equals_int (note (notes, 0)->underruns, 1);
  fail_unless_equals_int (note (notes, 0)->samples, MS (60));
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: an interrupted turn reports the characters whose audio played,
 * without a half-spoken word. */
GST_START_TEST (test_spoken_aligned)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();
  guint i;

  /* 17 characters over 1000 ms: character i ends at (i + 1) * 58 ms. */
  el_playout_push (p, chunk (2, 1, 1000, 1, "Hello world again", TRUE));
  for (i = 0; i < 9; i++) /* 450 ms: "Hello w" played */
    read_ms (p, 50, notes);
  fail_unless (el_playout_interrupt (p, notes));
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STOPPED);
  fail_if (note (notes, 0)->complete);
  fail_unless_equals_string (note (notes, 0)->spoken, "Hello");
  fail_unless_equals_int (note (notes, 0)->samples, MS (450));
  fail_unless (el_playout_is_idle (p));

  el_playout_push (p, chunk (3, 2, 1000, 1, "Hello world again", TRUE));
  for (i = 0; i < 14; i++) /* 700 ms: "Hello world" and the space */
    read_ms (p, 50, notes);
  g_array_set_size (notes, 0);
  el_playout_interrupt (p, notes);
  fail_unless_equals_string (note (notes, 0)->spoken, "Hello world");
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: aligned segments join with a space between sentences. */
GST_START_TEST (test_spoken_segments)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 100, 1, "Hello there.", TRUE));
  el_playout_push (p, chunk (1, 2, 100, 1, "How are you?", TRUE));
  el_playout_push (p, chunk (1, 3, 100, 1, "Fine", TRUE));
  read_ms (p, 200, notes);
  read_ms (p, 20, notes);
  g_array_set_size (notes, 0);
  el_playout_interrupt (p, notes);
  fail_unless_equals_string (
      note (notes, 0)->spoken, "Hello there. How are you?");
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: without alignment (HTTP), text is apportioned by played audio,
 * cut at a word boundary. */
GST_START_TEST (test_spoken_unaligned)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 5, 200, 1, "one two three four", FALSE));
  el_playout_push (p, chunk (1, 5, 200, 1, "one two three four", FALSE));
  read_ms (p, 200, notes); /* half: 9 of 18 characters, "one two t" */
  g_array_set_size (notes, 0);
  el_playout_interrupt (p, notes);
  fail_unless_equals_string (note (notes, 0)->spoken, "one two");
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: barge-in drops the playing turn and every queued one (reported
 * as dropped, nothing heard), but not EOS. */
GST_START_TEST (test_interrupt_drops_queued)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 100, 1, NULL, FALSE));
  el_playout_push (p, turn_end (1, "a"));
  el_playout_push (p, chunk (2, 2, 100, 1, NULL, FALSE));
  el_playout_push (p, chunk (3, 3, 100, 1, NULL, FALSE));
  el_playout_push (p, GST_MINI_OBJECT (gst_event_new_eos ()));
  read_ms (p, 20, notes);
  g_array_set_size (notes, 0);
  fail_unless (el_playout_interrupt (p, notes));
  fail_unless_equals_int (notes->len, 3);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STOPPED);
  fail_unless_equals_int (note (notes, 0)->turn, 1);
  fail_unless_equals_int (note (notes, 1)->type, EL_NOTE_DROPPED);
  fail_unless_equals_int (note (notes, 1)->turn, 2);
  fail_unless_equals_string (note (notes, 1)->spoken, "");
  fail_unless_equals_int (note (notes, 2)->turn, 3);
  fail_unless_equals_int (el_playout_get_queued_samples (p), 0);
  fail_unless_equals_int (read_ms (p, 20, notes), 0);
  fail_unless_equals_int (notes->len, 1);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_EOS);
  fail_if (el_playout_interrupt (p, notes));
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: consecutive turns play back to back within one buffer; a turn
 * followed by another without its end counts as complete. */
GST_START_TEST (test_back_to_back)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();

  el_playout_push (p, chunk (1, 1, 10, 1, NULL, FALSE));
  el_playout_push (p, turn_end (1, "one"));
  el_playout_push (p, chunk (2, 2, 5, 2, NULL, FALSE));
  el_playout_push (p, chunk (3, 3, 100, 3, NULL, FALSE));
  fail_unless_equals_int (read_ms (p, 20, notes), MS (20));
  fail_unless_equals_int (notes->len, 5);
  fail_unless_equals_int (note (notes, 0)->type, EL_NOTE_STARTED);
  fail_unless_equals_int (note (notes, 1)->type, EL_NOTE_STOPPED);
  fail_unless_equals_int (note (notes, 1)->offset, MS (10));
  fail_unless_equals_int (note (notes, 2)->type, EL_NOTE_STARTED);
  fail_unless_equals_int (note (notes, 2)->turn, 2);
  fail_unless_equals_int (note (notes, 2)->offset, MS (10));
  fail_unless_equals_int (note (notes, 3)->type, EL_NOTE_STOPPED);
  fail_unless (note (notes, 3)->complete);
  fail_unless_equals_int (note (notes, 3)->offset, MS (15));
  fail_unless_equals_int (note (notes, 4)->turn, 3);
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: samples come out in order and unchanged. */
GST_START_TEST (test_samples)
{
  ElPlayout *p = new_playout (0);
  GArray *notes = el_notes_new ();
  gint16 out[MS (20)];

  el_playout_push (p, chunk (1, 1, 5, 11, NULL, FALSE));
  el_playout_push (p, chunk (1, 2, 10, -22, NULL, FALSE));
  el_playout_push (p, turn_end (1, ""));
  fail_unless_equals_int (el_playout_read (p, out, MS (20), notes), MS (15));
  fail_unless_equals_int (out[0], 11);
  fail_unless_equals_int (out[MS (5) - 1], 11);
  fail_unless_equals_int (out[MS (5)], -22);
  fail_unless_equals_int (out[MS (15) - 1], -22);
  fail_unless_equals_int (out[MS (15)], 0);
  g_array_unref (notes);
  el_playout_free (p);
}

GST_END_TEST;

/* Guards: a new rate drops what was queued at the old one. */
GST_START_TEST (test_rate_change)
{
  ElPlayout *p = new_playout (0);

  el_playout_push (p, chunk (1, 1, 100, 1, NULL, FALSE));
  el_playout_set_rate (p, 24000);
  fail_unless_equals_int (el_playout_get_rate (p), 24000);
  fail_unless (el_playout_is_idle (p));
  el_playout_free (p);
}

GST_END_TEST;

static Suite *
playout_suite (void)
{
  Suite *s = suite_create ("elevenlabs-playout");
  TCase *tc = tcase_create ("general");

  el_pair_init ();
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_prebuffer);
  tcase_add_test (tc, test_pause_resume);
  tcase_add_test (tc, test_short_turn);
  tcase_add_test (tc, test_underrun);
  tcase_add_test (tc, test_spoken_aligned);
  tcase_add_test (tc, test_spoken_segments);
  tcase_add_test (tc, test_spoken_unaligned);
  tcase_add_test (tc, test_interrupt_drops_queued);
  tcase_add_test (tc, test_back_to_back);
  tcase_add_test (tc, test_samples);
  tcase_add_test (tc, test_rate_change);
  return s;
}

GST_CHECK_MAIN (playout);

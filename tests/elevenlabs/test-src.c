/* elevenlabssrc on a GstTestClock, fed through its session queue the way
 * elevenlabssink feeds it: pacing, turns, underruns, barge-in timing and
 * the `spoken` report, all deterministic (no network, no wall clock).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "pair.h"
#include "voice.h"

#define RATE 16000
#define PERIOD (20 * GST_MSECOND)
#define N_PERIOD (RATE / 50)

typedef struct
{
  GstHarness *h;
  GstBus *bus;
  GstVoiceSession *session;
  GstVoiceQueue *to_src;
  GstVoiceQueue *to_sink;
  guint pulled;
} Src;

static Src *
src_new (const gchar *first_prop, ...)
{
  Src *s = g_new0 (Src, 1);
  gchar *name = gst_voice_session_make_unique_name ("test");
  va_list args;

  s->h = gst_harness_new_with_padnames ("elevenlabssrc", NULL, "src");
  g_object_set (s->h->element, "session", name, NULL);
  if (first_prop) {
    va_start (args, first_prop);
    g_object_set_valist (G_OBJECT (s->h->element), first_prop, args);
    va_end (args);
  }
  s->bus = gst_bus_new ();
  gst_element_set_bus (s->h->element, s->bus);
  s->session = gst_voice_session_acquire ("elevenlabs", name);
  s->to_src =
      gst_voice_session_get_queue (s->session, GST_VOICE_SESSION_TO_SRC);
  s->to_sink =
      gst_voice_session_get_queue (s->session, GST_VOICE_SESSION_TO_SINK);
  g_free (name);
  gst_harness_play (s->h);
  return s;
}

static void
src_free (Src *s)
{
  gst_harness_teardown (s->h);
  gst_voice_session_release (s->session);
  gst_bus_set_flushing (s->bus, TRUE);
  gst_object_unref (s->bus);
  g_free (s);
}

/* The next buffer, which comes only when the clock reaches its timestamp:
 * this checks the element waits for exactly that time, then lets the clock
 * get there. */
static GstBuffer *
pull (Src *s)
{
  GstTestClock *clock = gst_harness_get_testclock (s->h);
  GstClockID id;
  GstBuffer *buf;

  gst_test_clock_wait_for_next_pending_id (clock, &id);
  fail_unless_equals_uint64 (gst_clock_id_get_time (id), s->pulled * PERIOD);
  gst_clock_id_unref (id);
  gst_object_unref (clock);
  fail_unless (gst_harness_crank_single_clock_wait (s->h));
  buf = gst_harness_pull (s->h);
  fail_unless (buf != NULL);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), s->pulled * PERIOD);
  fail_unless_equals_uint64 (GST_BUFFER_DURATION (buf), PERIOD);
  fail_unless_equals_int (gst_buffer_get_size (buf), N_PERIOD * 2);
  s->pulled++;
  return buf;
}

/* Samples of @buf that are not silent. */
static guint
loud_samples (GstBuffer *buf)
{
  GstMapInfo map;
  guint n = 0;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  for (gsize i = 0; i < map.size / 2; i++)
    n += ((const gint16 *)map.data)[i] != 0;
  gst_buffer_unmap (buf, &map);
  return n;
}

static guint
pull_loud (Src *s)
{
  GstBuffer *buf = pull (s);
  guint n = loud_samples (buf);

  gst_buffer_unref (buf);
  return n;
}

/* Queues @ms of audio for @turn, with @text aligned evenly over it. */
static void
push_audio (Src *s, guint turn, guint ms, const gchar *text)
{
  guint n = RATE * ms / 1000;
  gint16 *samples = g_new (gint16, n);
  GArray *ends = NULL;
  GBytes *bytes;
  static guint segment;

  for (guint i = 0; i < n; i++)
    samples[i] = GINT16_TO_LE (1000);
  bytes = g_bytes_new_take (samples, n * 2);
  if (text) {
    glong chars = g_utf8_strlen (text, -1);
    ends = g_array_new (FALSE, FALSE, sizeof (gint));
    for (glong i = 0; i < chars; i++) {
      gint end = (gint)((i + 1) * ms / chars);
      g_array_append_val (ends, end);
    }
  }
  gst_voice_queue_push (s->to_src,
      GST_MINI_OBJECT (el_chunk_new (
          bytes, turn, FALSE, ++segment, g_get_monotonic_time (), text, ends)));
  g_bytes_unref (bytes);
  if (ends)
    g_array_unref (ends);
}

static void
push_turn_end (Src *s, guint turn, const gchar *text)
{
  gst_voice_queue_push (s->to_src,
      GST_MINI_OBJECT (
          el_turn_end_event_new (turn, FALSE, 77, 3 * GST_MSECOND, text)));
}

/* The next `elevenlabssrc` message with this `event`, or NULL. */
static GstStructure *
next_message (Src *s, const gchar *event)
{
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (s->bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *st = gst_message_get_structure (msg);
    if (gst_structure_has_name (st, "elevenlabssrc") &&
        g_strcmp0 (gst_structure_get_string (st, "event"), event) == 0) {
      GstStructure *copy = gst_structure_copy (st);
      gst_message_unref (msg);
      return copy;
    }
    gst_message_unref (msg);
  }
  return NULL;
}

static guint64
get_u64 (const GstStructure *st, const gchar *field)
{
  guint64 v = 0;

  fail_unless (gst_structure_get_uint64 (st, field, &v), field);
  return v;
}

/* Guards: a live source paced by the clock: fixed 20 ms buffers, each
 * made when the clock reaches its timestamp, continuous, silent when idle;
 * latency reported. */
GST_START_TEST (test_pacing)
{
  Src *s = src_new (NULL);
  GstQuery *q;
  GstClockTime min, max;
  gboolean live;
  GstCaps *caps, *want;

  for (guint i = 0; i < 10; i++)
    fail_unless_equals_int (pull_loud (s), 0);
  caps = gst_pad_get_current_caps (s->h->sinkpad);
  want = gst_caps_from_string (
      "audio/x-raw,format=S16LE,layout=interleaved,channels=1,rate=16000");
  fail_unless (gst_caps_is_equal_fixed (caps, want));
  gst_caps_unref (caps);
  gst_caps_unref (want);
  q = gst_query_new_latency ();
  fail_unless (gst_pad_peer_query (s->h->sinkpad, q));
  gst_query_parse_latency (q, &live, &min, &max);
  fail_unless (live);
  fail_unless_equals_uint64 (min, PERIOD);
  gst_query_unref (q);
  src_free (s);
}

GST_END_TEST;

/* Guards: a turn starts on the first buffer after its audio arrived, plays
 * whole, then silence; started/stopped messages, and `spoken` complete
 * goes to the sink half. */
GST_START_TEST (test_turn)
{
  Src *s = src_new (NULL);
  GstStructure *st;
  GstMiniObject *item;
  const gchar *text;
  gboolean complete = FALSE;
  guint turn = 0;

  pull_loud (s);
  pull_loud (s);
  push_audio (s, 4, 100, "Hi there.");
  push_turn_end (s, 4, "Hi there. ");
  for (guint i = 0; i < 5; i++)
    fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), 0);

  st = next_message (s, "agent-speaking-started");
  fail_unless (st != NULL);
  fail_unless_equals_uint64 (get_u64 (st, "running-time"), 2 * PERIOD);
  fail_unless (gst_structure_has_field (st, "latency"));
  gst_structure_free (st);
  st = next_message (s, "agent-speaking-stopped");
  fail_unless (st != NULL);
  fail_unless_equals_uint64 (get_u64 (st, "running-time"), 7 * PERIOD);
  fail_unless_equals_uint64 (get_u64 (st, "audio-duration"), 100 * GST_MSECOND);
  fail_unless_equals_uint64 (get_u64 (st, "ttfb"), 3 * GST_MSECOND);
  fail_unless_equals_string (
      gst_structure_get_string (st, "spoken-text"), "Hi there.");
  fail_unless (gst_structure_get_uint (st, "characters", &turn) && turn == 77);
  gst_structure_free (st);

  item = gst_voice_queue_try_pop (s->to_sink);
  fail_unless (item && GST_IS_EVENT (item));
  fail_unless (gst_voice_event_parse_spoken (
      GST_EVENT (item), NULL, &turn, &text, &complete));
  fail_unless_equals_int (turn, 4);
  fail_unless (complete);
  fail_unless_equals_string (text, "Hi there.");
  gst_mini_object_unref (item);
  src_free (s);
}

GST_END_TEST;

/* Guards: a turn waits for the prebuffer; an underrun mid-turn plays
 * silence, is posted and counted in the turn's summary. */
GST_START_TEST (test_prebuffer_and_underrun)
{
  Src *s = src_new ("prebuffer-ms", 40, NULL);
  GstStructure *st;
  guint underruns = 0;

  pull_loud (s);
  push_audio (s, 1, 30, NULL);
  fail_unless_equals_int (pull_loud (s), 0); /* 30 ms < 40 ms prebuffer */
  push_audio (s, 1, 20, NULL);
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), N_PERIOD / 2); /* ran dry */
  st = next_message (s, "underrun");
  fail_unless (st != NULL);
  fail_unless_equals_uint64 (
      get_u64 (st, "running-time"), 4 * PERIOD + PERIOD / 2);
  gst_structure_free (st);
  fail_unless_equals_int (pull_loud (s), 0);
  push_audio (s, 1, 40, NULL);
  push_turn_end (s, 1, "");
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), 0);
  st = next_message (s, "agent-speaking-stopped");
  fail_unless (st != NULL);
  fail_unless (gst_structure_get_uint (st, "underruns", &underruns));
  fail_unless_equals_int (underruns, 1);
  fail_unless_equals_uint64 (get_u64 (st, "audio-duration"), 90 * GST_MSECOND);
  gst_structure_free (st);
  src_free (s);
}

GST_END_TEST;

/* Plays 1 s of "Hello world, this is the agent speaking." and stops it
 * with @event at 7 ms into a buffer, after @played buffers. Returns the
 * buffer index of the first silent buffer. */
static guint
barge_in (Src *s, GstEvent *event, gboolean via_session, guint played)
{
  GstTestClock *clock = gst_harness_get_testclock (s->h);
  GstClockTime at;
  guint i;

  pull_loud (s);
  push_audio (s, 9, 1000, "Hello world, this is the agent speaking.");
  push_turn_end (s, 9, "Hello world, this is the agent speaking.");
  for (i = 0; i < played; i++)
    fail_unless_equals_int (pull_loud (s), N_PERIOD);
  /* Between two buffers: the clock is past the last one's start. */
  at = s->pulled * PERIOD - PERIOD + 7 * GST_MSECOND;
  gst_test_clock_set_time (clock, at);
  gst_object_unref (clock);
  if (via_session)
    gst_voice_queue_push (s->to_src, GST_MINI_OBJECT (event));
  else
    fail_unless (gst_element_send_event (s->h->element, event));
  fail_unless_equals_int (pull_loud (s), 0);
  /* The first silent one starts at most one period after the event. */
  fail_unless ((s->pulled - 1) * PERIOD - at <= PERIOD);
  return s->pulled - 1;
}

/* Guards: `interrupt` from the sink half silences the very next buffer
 * (at most one period after the event), is forwarded downstream, posts
 * `acted`, and `spoken` reports the words heard, not the whole turn. */
GST_START_TEST (test_interrupt_from_sink)
{
  Src *s = src_new (NULL);
  GstStructure *st;
  GstMiniObject *item;
  GstEvent *ev;
  const gchar *text;
  gboolean complete = TRUE, interrupted = FALSE;
  guint first_silent;

  first_silent = barge_in (
      s, gst_voice_event_new_interrupt (0, 9, "user_interrupted"), TRUE, 25);
  fail_unless_equals_int (first_silent, 26);
  for (guint i = 0; i < 3; i++)
    fail_unless_equals_int (pull_loud (s), 0);

  st = next_message (s, "interrupt");
  fail_unless (st != NULL);
  fail_unless_equals_string (gst_structure_get_string (st, "action"), "acted");
  gst_structure_free (st);
  st = next_message (s, "agent-speaking-stopped");
  fail_unless (gst_structure_get_boolean (st, "interrupted", &interrupted));
  fail_unless (interrupted);
  fail_unless_equals_uint64 (get_u64 (st, "audio-duration"), 500 * GST_MSECOND);
  gst_structure_free (st);

  /* 500 ms of 1 s: 20 of 40 characters, cut back to a whole word. */
  item = gst_voice_queue_try_pop (s->to_sink);
  fail_unless (item != NULL);
  fail_unless (gst_voice_event_parse_spoken (
      GST_EVENT (item), NULL, NULL, &text, &complete));
  fail_if (complete);
  fail_unless_equals_string (text, "Hello world, this is");
  gst_mini_object_unref (item);

  /* Forwarded downstream. */
  while ((ev = gst_harness_try_pull_event (s->h))) {
    if (gst_voice_event_get_voice_type (ev) == GST_VOICE_EVENT_INTERRUPT)
      break;
    gst_event_unref (ev);
  }
  fail_unless (ev != NULL);
  gst_event_unref (ev);
  src_free (s);
}

GST_END_TEST;

/* Guards: an application can send speech-start / interrupt to the src
 * directly; with interruption=vad speech-start barges in. */
GST_START_TEST (test_speech_start_sent_to_src)
{
  Src *s = src_new (NULL);

  barge_in (s, gst_voice_event_new_speech_start (0, 1), FALSE, 3);
  src_free (s);
}

GST_END_TEST;

/* Guards: with interruption=event, speech-start does not stop the agent;
 * interrupt still does. */
GST_START_TEST (test_interruption_event_mode)
{
  Src *s = src_new ("interruption", 1 /* event */, NULL);

  pull_loud (s);
  push_audio (s, 2, 200, NULL);
  push_turn_end (s, 2, "");
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  gst_voice_queue_push (
      s->to_src, GST_MINI_OBJECT (gst_voice_event_new_speech_start (0, 1)));
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  gst_voice_queue_push (
      s->to_src, GST_MINI_OBJECT (gst_voice_event_new_interrupt (0, 2, "x")));
  fail_unless_equals_int (pull_loud (s), 0);
  src_free (s);
}

GST_END_TEST;

/* Guards: a barge-in also reports turns that were queued but never
 * played (nothing heard). */
GST_START_TEST (test_interrupt_reports_queued_turns)
{
  Src *s = src_new (NULL);
  GstMiniObject *item;
  const gchar *text;
  guint turn;

  pull_loud (s);
  push_audio (s, 1, 100, "One.");
  push_turn_end (s, 1, "One.");
  push_audio (s, 2, 100, "Two.");
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  gst_voice_queue_push (
      s->to_src, GST_MINI_OBJECT (gst_voice_event_new_interrupt (0, 1, "x")));
  fail_unless_equals_int (pull_loud (s), 0);
  item = gst_voice_queue_try_pop (s->to_sink);
  fail_unless (
      gst_voice_event_parse_spoken (GST_EVENT (item), NULL, &turn, NULL, NULL));
  fail_unless_equals_int (turn, 1);
  gst_mini_object_unref (item);
  item = gst_voice_queue_try_pop (s->to_sink);
  fail_unless (gst_voice_event_parse_spoken (
      GST_EVENT (item), NULL, &turn, &text, NULL));
  fail_unless_equals_int (turn, 2);
  fail_unless_equals_string (text, "");
  gst_mini_object_unref (item);
  src_free (s);
}

GST_END_TEST;

/* Guards: the sink half's format announcement renegotiates the rate and
 * timestamps stay continuous. */
GST_START_TEST (test_rate_change)
{
  Src *s = src_new (NULL);
  GstBuffer *buf;
  GstCaps *caps;
  gint rate = 0;

  pull_loud (s);
  gst_voice_queue_push (
      s->to_src, GST_MINI_OBJECT (el_format_event_new (24000)));
  gst_harness_crank_single_clock_wait (s->h);
  buf = gst_harness_pull (s->h);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (buf), PERIOD);
  fail_unless_equals_int (gst_buffer_get_size (buf), 480 * 2);
  gst_buffer_unref (buf);
  caps = gst_pad_get_current_caps (s->h->sinkpad);
  gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate);
  fail_unless_equals_int (rate, 24000);
  gst_caps_unref (caps);
  src_free (s);
}

GST_END_TEST;

/* Guards: EOS from the sink half ends the stream after the audio queued
 * before it has played. */
GST_START_TEST (test_eos)
{
  Src *s = src_new (NULL);
  GstEvent *ev;
  gboolean eos = FALSE;

  pull_loud (s);
  push_audio (s, 1, 30, NULL);
  push_turn_end (s, 1, "");
  gst_voice_queue_push (s->to_src, GST_MINI_OBJECT (gst_event_new_eos ()));
  fail_unless_equals_int (pull_loud (s), N_PERIOD);
  fail_unless_equals_int (pull_loud (s), N_PERIOD / 2);
  while ((ev = gst_harness_pull_event (s->h))) {
    eos = GST_EVENT_TYPE (ev) == GST_EVENT_EOS;
    gst_event_unref (ev);
    if (eos)
      break;
  }
  fail_unless (eos);
  src_free (s);
}

GST_END_TEST;

static Suite *
src_suite (void)
{
  Suite *s = suite_create ("elevenlabs-src");
  TCase *tc = tcase_create ("general");

  gst_voice_init ();
  el_pair_init ();
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_pacing);
  tcase_add_test (tc, test_turn);
  tcase_add_test (tc, test_prebuffer_and_underrun);
  tcase_add_test (tc, test_interrupt_from_sink);
  tcase_add_test (tc, test_speech_start_sent_to_src);
  tcase_add_test (tc, test_interruption_event_mode);
  tcase_add_test (tc, test_interrupt_reports_queued_turns);
  tcase_add_test (tc, test_rate_change);
  tcase_add_test (tc, test_eos);
  return s;
}

GST_CHECK_MAIN (src);

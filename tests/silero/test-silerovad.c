/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The silerovad element, one GstHarness per test: probabilities, speech
 * segments, events, the gate, resets, caps and model errors.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <math.h>
#include "voice.h"
#include "wavfile.h"

/* 20 ms buffers, like RTP audio after a depayloader. */
#define BUFFER_MS 20

static GstHarness *
harness_new (TestWav *wav, const gchar *format, const gchar *props)
{
  g_autofree gchar *desc = g_strdup_printf ("silerovad %s", props);
  g_autofree gchar *caps =
      g_strdup_printf ("audio/x-raw, format=%s, "
                       "rate=%u, channels=1, layout=interleaved",
          format, wav->rate);
  GstHarness *h = gst_harness_new_parse (desc);
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (h->element, bus);
  gst_object_unref (bus);
  gst_harness_set_src_caps_str (h, caps);
  gst_harness_set_sink_caps_str (h, caps);
  return h;
}

/* Tears @h down after dropping the messages left on its bus: they hold
 * references to the element, which holds the bus. */
static void
harness_teardown (GstHarness *h)
{
  GstBus *bus = gst_element_get_bus (h->element);

  if (bus) {
    gst_bus_set_flushing (bus, TRUE);
    gst_object_unref (bus);
  }
  gst_harness_teardown (h);
}

/* Builds the buffer of samples [first, first + n) of @wav, timestamped from
 * sample 0 at PTS 0. */
static GstBuffer *
wav_buffer (TestWav *wav, gboolean f32, gsize first, gsize n)
{
  gsize size = n * (f32 ? 4 : 2);
  GstBuffer *buf = gst_buffer_new_allocate (NULL, size, NULL);

  gst_buffer_fill (buf, 0,
      f32 ? (gpointer)(wav->f32 + first) : (gpointer)(wav->s16 + first), size);
  GST_BUFFER_PTS (buf) =
      gst_util_uint64_scale_int (first, GST_SECOND, wav->rate);
  GST_BUFFER_DURATION (buf) =
      gst_util_uint64_scale_int (first + n, GST_SECOND, wav->rate) -
      GST_BUFFER_PTS (buf);
  GST_BUFFER_OFFSET (buf) = first;
  return buf;
}

/* Pushes samples [from, to) of @wav in BUFFER_MS buffers. */
static void
push_range (GstHarness *h, TestWav *wav, gboolean f32, gsize from, gsize to)
{
  gsize step = wav->rate * BUFFER_MS / 1000;

  for (gsize i = from; i < to; i += step)
    fail_unless_equals_int (
        gst_harness_push (h, wav_buffer (wav, f32, i, MIN (step, to - i))),
        GST_FLOW_OK);
}

/* Pops every silerovad message; returns those with @field. */
static GPtrArray *
messages_with (GstHarness *h, const gchar *field)
{
  GstBus *bus = gst_element_get_bus (h->element);
  GPtrArray *out =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_structure_free);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (msg);

    if (gst_structure_has_name (s, "silerovad") &&
        gst_structure_has_field (s, field))
      g_ptr_array_add (out, gst_structure_copy (s));
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
  return out;
}

static guint64
get_u64 (const GstStructure *s, const gchar *field)
{
  guint64 v = G_MAXUINT64;

  fail_unless (gst_structure_get_uint64 (s, field, &v));
  return v;
}

/* Runs a whole file through the element and checks every chunk's posted
 * probability against onnxruntime's (the element's S16 -> float path and
 * chunking must match the reference script's). */
static void
check_golden (const gchar *name, gboolean f32)
{
  g_autofree gchar *wname = g_strconcat (name, ".wav", NULL);
  g_autofree gchar *gname = g_strconcat (name, ".txt", NULL);
  g_autoptr (TestWav) wav = test_wav_load (wname);
  g_autoptr (GArray) golden = test_golden_load (gname);
  GstHarness *h =
      harness_new (wav, f32 ? "F32LE" : "S16LE", "post-probabilities=true");
  g_autoptr (GPtrArray) probs = NULL;
  gdouble worst = 0;

  push_range (h, wav, f32, 0, wav->n);
  probs = messages_with (h, "probability");
  fail_unless_equals_int (probs->len, golden->len);
  for (guint i = 0; i < probs->len; i++) {
    const GstStructure *s = g_ptr_array_index (probs, i);
    gdouble p;

    fail_unless (gst_structure_get_double (s, "probability", &p));
    worst = MAX (worst, fabs (p - g_array_index (golden, gdouble, i)));
    /* Chunk i starts at i * 32 ms (PTS 0, default segment). */
    fail_unless_equals_uint64 (
        get_u64 (s, "running-time"), i * 32 * GST_MSECOND);
  }
  GST_INFO ("%s (%s): max abs error %.3g", name, f32 ? "F32" : "S16", worst);
  fail_unless (worst <= 1e-4, "%s: max error %g", name, worst);
  harness_teardown (h);
}

/* Every chunk's probability matches onnxruntime within 1e-4, at 16 kHz and
 * 8 kHz, in both sample formats. */
GST_START_TEST (test_golden_16k)
{
  check_golden ("speechnoise16k", FALSE);
  check_golden ("speech16k", TRUE);
}

GST_END_TEST;

GST_START_TEST (test_golden_8k)
{
  check_golden ("speech8k", FALSE);
  check_golden ("speechnoise8k", TRUE);
}

GST_END_TEST;

/* Reads the utterance boundaries of turns16k.wav (in samples). */
static guint
load_turns (guint64 bounds[][2], guint max)
{
  g_autofree gchar *path =
      test_data_path ("tests/reference/silero/wav", "turns16k.txt");
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  guint n = 0;

  fail_unless (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] && n < max; i++)
    if (lines[i][0] && lines[i][0] != '#' &&
        sscanf (lines[i], "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
            &bounds[n][0], &bounds[n][1]) == 2)
      n++;
  return n;
}

#define S2T(s) gst_util_uint64_scale_int ((s), GST_SECOND, 16000)

/* Generated speech with known boundaries: one start and one stop per
 * utterance, stamped near the real boundaries (within a chunk or two),
 * decided min-speech / min-silence later, with matching events. */
GST_START_TEST (test_segments)
{
  g_autoptr (TestWav) wav = test_wav_load ("turns16k.wav");
  GstHarness *h = harness_new (wav, "S16LE", "");
  g_autoptr (GPtrArray) msgs = NULL;
  guint64 turns[2][2];
  GstEvent *ev;
  guint n_events = 0;

  fail_unless_equals_int (load_turns (turns, 2), 2);
  push_range (h, wav, FALSE, 0, wav->n);
  gst_harness_push_event (h, gst_event_new_eos ());

  msgs = messages_with (h, "event");
  fail_unless_equals_int (msgs->len, 4);
  for (guint i = 0; i < 4; i++) {
    const GstStructure *s = g_ptr_array_index (msgs, i);
    gboolean start = i % 2 == 0;
    guint64 truth = S2T (turns[i / 2][start ? 0 : 1]);
    guint64 rt = get_u64 (s, "running-time");
    guint64 decided = get_u64 (s, "decision-running-time");
    guint turn = 0;

    fail_unless_equals_string (gst_structure_get_string (s, "event"),
        start ? "speech-start" : "speech-stop");
    fail_unless (gst_structure_get_uint (s, "turn", &turn));
    fail_unless_equals_int (turn, i / 2 + 1);
    GST_INFO ("%s at %" GST_TIME_FORMAT " (truth %" GST_TIME_FORMAT ")",
        start ? "start" : "stop", GST_TIME_ARGS (rt), GST_TIME_ARGS (truth));
    /* espeak's soft onsets and decays score low for a chunk or two. */
    fail_unless (rt + 100 * GST_MSECOND >= truth);
    fail_unless (rt <= truth + 100 * GST_MSECOND);
    /* Decided min-speech (96 ms) / min-silence (500 ms) later, within
     * one chunk. */
    fail_unless (decided >= rt + (start ? 96 : 500) * GST_MSECOND);
    fail_unless (decided <= rt + (start ? 128 : 532) * GST_MSECOND);
  }

  /* The same running times downstream, in order, before EOS. */
  while ((ev = gst_harness_try_pull_event (h))) {
    GstVoiceEventType type;
    GstClockTime rt;
    guint turn;

    if (gst_voice_event_parse (ev, &type, &rt, &turn)) {
      const GstStructure *s = g_ptr_array_index (msgs, n_events);

      fail_unless (n_events < 4);
      fail_unless_equals_int (type,
          n_events % 2 == 0 ? GST_VOICE_EVENT_SPEECH_START
                            : GST_VOICE_EVENT_SPEECH_STOP);
      fail_unless_equals_uint64 (rt, get_u64 (s, "running-time"));
      n_events++;
    }
    if (GST_EVENT_TYPE (ev) == GST_EVENT_EOS)
      fail_unless_equals_int (n_events, 4);
    gst_event_unref (ev);
  }
  fail_unless_equals_int (n_events, 4);
  harness_teardown (h);
}

GST_END_TEST;

/* What the gate let through, as sample ranges of the input. */
typedef struct
{
  guint64 from, to;
  gboolean audio;
} Span;

static void
add_span (GArray *spans, GstClockTime pts, GstClockTime dur, gboolean audio)
{
  Span s = { gst_util_uint64_scale_round (pts, 16000, GST_SECOND),
    gst_util_uint64_scale_round (pts + dur, 16000, GST_SECOND), audio };
  g_array_append_val (spans, s);
}

/* Pulls everything the harness received, in order: buffers (checked to be
 * the input's samples) and GAP events. */
static GArray *
collect_spans (GstHarness *h, TestWav *wav)
{
  GArray *spans = g_array_new (FALSE, FALSE, sizeof (Span));
  GstBuffer *buf;
  GstEvent *ev;

  /* Buffers and serialized events reach the harness in one stream, but it
   * queues them apart; interleave them by timestamp. */
  while ((ev = gst_harness_try_pull_event (h))) {
    if (GST_EVENT_TYPE (ev) == GST_EVENT_GAP) {
      GstClockTime pts, dur;

      gst_event_parse_gap (ev, &pts, &dur);
      add_span (spans, pts, dur, FALSE);
    }
    gst_event_unref (ev);
  }
  while ((buf = gst_harness_try_pull (h))) {
    GstMapInfo map;
    Span *s;

    add_span (spans, GST_BUFFER_PTS (buf), GST_BUFFER_DURATION (buf), TRUE);
    s = &g_array_index (spans, Span, spans->len - 1);
    gst_buffer_map (buf, &map, GST_MAP_READ);
    fail_unless_equals_int (map.size, (s->to - s->from) * 2);
    fail_unless (memcmp (map.data, wav->s16 + s->from, map.size) == 0);
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
  }
  return spans;
}

static gint
span_cmp (gconstpointer a, gconstpointer b)
{
  const Span *x = a, *y = b;

  return x->from < y->from ? -1 : x->from > y->from;
}

/* gate=true: the output tiles the input's timeline exactly (audio + GAPs,
 * no hole, no overlap), each utterance is sent from speech-pad-ms before
 * its onset (no clipped first word), and most of the silence is not sent. */
GST_START_TEST (test_gate)
{
  g_autoptr (TestWav) wav = test_wav_load ("turns16k.wav");
  GstHarness *h = harness_new (wav, "S16LE", "gate=true");
  g_autoptr (GArray) spans = NULL;
  guint64 turns[2][2], expect = 0, sent = 0;

  fail_unless_equals_int (load_turns (turns, 2), 2);
  push_range (h, wav, FALSE, 0, wav->n);
  gst_harness_push_event (h, gst_event_new_eos ());

  spans = collect_spans (h, wav);
  g_array_sort (spans, span_cmp);
  for (guint i = 0; i < spans->len; i++) {
    Span *s = &g_array_index (spans, Span, i);

    fail_unless_equals_uint64 (s->from, expect);
    fail_unless (s->to > s->from);
    expect = s->to;
    if (s->audio)
      sent += s->to - s->from;
  }
  fail_unless_equals_uint64 (expect, wav->n);

  for (guint t = 0; t < 2; t++) {
    /* The run of audio containing the onset starts at least 200 ms before
     * it: speech-pad-ms (300 ms) before the detected onset, which is
     * within 100 ms of the truth. */
    guint64 run_start = 0;
    gboolean found = FALSE;

    for (guint i = 0; i < spans->len && !found; i++) {
      Span *s = &g_array_index (spans, Span, i);

      if (!s->audio)
        continue;
      if (i == 0 || !g_array_index (spans, Span, i - 1).audio)
        run_start = s->from;
      if (s->from <= turns[t][0] && s->to > turns[t][0]) {
        found = TRUE;
        GST_INFO ("utterance %u at %" G_GUINT64_FORMAT
                  ", sent from %" G_GUINT64_FORMAT,
            t + 1, turns[t][0], run_start);
        fail_unless (run_start + 200 * 16 <= turns[t][0]);
      }
    }
    fail_unless (found, "onset of utterance %u not sent", t + 1);
  }
  /* 12.7 s in, 2 utterances of ~3.4 + 4.3 s: under 11 s sent. */
  GST_INFO ("sent %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT " samples", sent,
      wav->n);
  fail_unless (sent < 11 * 16000);
  fail_unless (sent > 8 * 16000);
  harness_teardown (h);
}

GST_END_TEST;

static GArray *
probabilities (GstHarness *h)
{
  g_autoptr (GPtrArray) msgs = messages_with (h, "probability");
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gdouble));

  for (guint i = 0; i < msgs->len; i++) {
    gdouble p;

    gst_structure_get_double (g_ptr_array_index (msgs, i), "probability", &p);
    g_array_append_val (out, p);
  }
  return out;
}

/* After a flush the network starts afresh: the same audio gives exactly
 * the probabilities of a new element. */
GST_START_TEST (test_flush_resets)
{
  g_autoptr (TestWav) wav = test_wav_load ("speech16k.wav");
  GstHarness *h = harness_new (wav, "S16LE", "post-probabilities=true");
  g_autoptr (GArray) fresh = NULL;
  g_autoptr (GArray) again = NULL;
  GstSegment seg;

  push_range (h, wav, FALSE, 0, 64000);
  fresh = probabilities (h);
  /* Stop in the middle of speech and of a chunk. */
  push_range (h, wav, FALSE, 0, 40000 + 100);
  gst_harness_push_event (h, gst_event_new_flush_start ());
  gst_harness_push_event (h, gst_event_new_flush_stop (TRUE));
  gst_segment_init (&seg, GST_FORMAT_TIME);
  gst_harness_push_event (h, gst_event_new_segment (&seg));
  g_array_unref (probabilities (h));
  push_range (h, wav, FALSE, 0, 64000);
  again = probabilities (h);

  fail_unless_equals_int (again->len, fresh->len);
  for (guint i = 0; i < fresh->len; i++)
    fail_unless_equals_float (
        g_array_index (again, gdouble, i), g_array_index (fresh, gdouble, i));
  harness_teardown (h);
}

GST_END_TEST;

/* A discontinuity ends the utterance in progress (speech-stop, stamped at
 * the end of the audio before it) and resets the network like a flush. */
GST_START_TEST (test_discont_resets)
{
  g_autoptr (TestWav) wav = test_wav_load ("speech16k.wav");
  GstHarness *h = harness_new (wav, "S16LE", "post-probabilities=true");
  g_autoptr (GArray) fresh = NULL;
  g_autoptr (GArray) again = NULL;
  g_autoptr (GPtrArray) events = NULL;
  GstBuffer *buf;

  /* 3 s: 0.5 s of silence, then the first sentence is under way. */
  push_range (h, wav, FALSE, 0, 48000);
  events = messages_with (h, "event");
  fail_unless_equals_int (events->len, 1);
  fail_unless_equals_string (
      gst_structure_get_string (g_ptr_array_index (events, 0), "event"),
      "speech-start");
  g_ptr_array_unref (events);

  /* The same audio again, flagged as a discontinuity. */
  buf = wav_buffer (wav, FALSE, 0, 320);
  GST_BUFFER_FLAG_SET (buf, GST_BUFFER_FLAG_DISCONT);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  events = messages_with (h, "event");
  fail_unless_equals_int (events->len, 1);
  fail_unless_equals_string (
      gst_structure_get_string (g_ptr_array_index (events, 0), "event"),
      "speech-stop");
  fail_unless_equals_uint64 (
      get_u64 (g_ptr_array_index (events, 0), "running-time"), 3 * GST_SECOND);

  /* Probabilities after the discontinuity are those of a fresh start. */
  push_range (h, wav, FALSE, 320, 48000);
  again = probabilities (h);
  harness_teardown (h);

  h = harness_new (wav, "S16LE", "post-probabilities=true");
  push_range (h, wav, FALSE, 0, 48000);
  fresh = probabilities (h);
  fail_unless_equals_int (again->len, fresh->len);
  for (guint i = 0; i < fresh->len; i++)
    fail_unless_equals_float (
        g_array_index (again, gdouble, i), g_array_index (fresh, gdouble, i));
  harness_teardown (h);
}

GST_END_TEST;

/* NaN / infinite F32 samples do not poison the network: it resets, and
 * the probabilities of what follows are finite again. */
GST_START_TEST (test_non_finite_input)
{
  g_autoptr (TestWav) wav = test_wav_load ("speech16k.wav");
  GstHarness *h = harness_new (wav, "F32LE", "post-probabilities=true");
  g_autoptr (GArray) probs = NULL;
  GstBuffer *buf = wav_buffer (wav, TRUE, 0, 1024);
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  ((gfloat *)map.data)[100] = NAN;
  ((gfloat *)map.data)[700] = INFINITY;
  gst_buffer_unmap (buf, &map);
  fail_unless_equals_int (gst_harness_push (h, buf), GST_FLOW_OK);
  push_range (h, wav, TRUE, 1024, 32000);
  probs = probabilities (h);
  fail_unless (probs->len > 10);
  for (guint i = 0; i < probs->len; i++) {
    gdouble p = g_array_index (probs, gdouble, i);

    fail_unless (p >= 0.0 && p <= 1.0, "chunk %u: %g", i, p);
  }
  harness_teardown (h);
}

GST_END_TEST;

/* Unsupported caps fail with an error that names the fix. */
GST_START_TEST (test_caps_error)
{
  const gchar *bad[] = {
    "audio/x-raw, format=S16LE, rate=44100, channels=1, layout=interleaved",
    "audio/x-raw, format=S16LE, rate=16000, channels=2, layout=interleaved",
    "audio/x-raw, format=S32LE, rate=16000, channels=1, layout=interleaved",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    GstHarness *h = gst_harness_new ("silerovad");
    GstBus *bus = gst_bus_new ();
    GstMessage *msg;
    GError *err = NULL;
    gchar *debug = NULL;

    gst_element_set_bus (h->element, bus);
    gst_harness_set_src_caps_str (h, bad[i]);
    msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    fail_unless (msg != NULL, "no error for %s", bad[i]);
    gst_message_parse_error (msg, &err, &debug);
    fail_unless (
        g_error_matches (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION));
    fail_unless (strstr (err->message, "audioconvert ! audioresample"));
    g_clear_error (&err);
    g_free (debug);
    gst_message_unref (msg);
    gst_object_unref (bus);
    harness_teardown (h);
  }
}

GST_END_TEST;

/* Runs @desc to EOS; returns the error message, or NULL. */
static gchar *
run_pipeline (const gchar *desc)
{
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstBus *bus = gst_element_get_bus (pipe);
  GstMessage *msg;
  gchar *error = NULL;

  fail_unless (pipe != NULL);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (
      bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;

    gst_message_parse_error (msg, &err, NULL);
    error = g_strdup (err->message);
    g_error_free (err);
  }
  gst_message_unref (msg);
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipe);
  return error;
}

/* The documented front end negotiates from any raw audio; a WAV at a rate
 * we do not take fails with our message, not a bare not-negotiated. */
GST_START_TEST (test_negotiation)
{
  g_autofree gchar *wav =
      test_data_path ("tests/reference/silero/wav", "speech8k.wav");
  g_autofree gchar *dir = g_dir_make_tmp ("silerovad-XXXXXX", NULL);
  g_autofree gchar *wav44 = g_build_filename (dir, "44k.wav", NULL);
  g_autofree gchar *desc = NULL;
  gchar *err;

  err = run_pipeline (
      "audiotestsrc num-buffers=20 ! audio/x-raw,rate=44100,"
      "channels=2 ! audioconvert ! audioresample ! silerovad ! fakesink");
  fail_unless (err == NULL, "%s", err);
  desc = g_strdup_printf ("filesrc location=%s ! wavparse ! silerovad ! "
                          "fakesink",
      wav);
  err = run_pipeline (desc);
  fail_unless (err == NULL, "%s", err);

  g_free (desc);
  desc =
      g_strdup_printf ("audiotestsrc num-buffers=5 ! audio/x-raw,"
                       "rate=44100,channels=1 ! wavenc ! filesink location=%s",
          wav44);
  err = run_pipeline (desc);
  fail_unless (err == NULL, "%s", err);
  g_free (desc);
  desc = g_strdup_printf ("filesrc location=%s ! wavparse ! silerovad ! "
                          "fakesink",
      wav44);
  err = run_pipeline (desc);
  fail_unless (err != NULL);
  fail_unless (strstr (err, "audioconvert ! audioresample"), "%s", err);
  g_free (err);
  g_unlink (wav44);
  g_rmdir (dir);
}

GST_END_TEST;

/* Starts a silerovad with @model; returns the error posted. */
static GError *
start_with_model (const gchar *model)
{
  GstElement *vad = gst_element_factory_make ("silerovad", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;

  gst_element_set_bus (vad, bus);
  g_object_set (vad, "model", model, NULL);
  fail_unless_equals_int (
      gst_element_set_state (vad, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, NULL);
  gst_message_unref (msg);
  gst_element_set_state (vad, GST_STATE_NULL);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (vad);
  return err;
}

/* A missing or corrupt model is an element error that names the file and
 * says how to install it. */
GST_START_TEST (test_model_errors)
{
  g_autofree gchar *dir = g_dir_make_tmp ("silerovad-XXXXXX", NULL);
  g_autofree gchar *missing = g_build_filename (dir, "none.onnx", NULL);
  g_autofree gchar *corrupt = g_build_filename (dir, "bad.onnx", NULL);
  GError *err;

  err = start_with_model (missing);
  fail_unless (
      g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  fail_unless (strstr (err->message, missing));
  fail_unless (strstr (err->message, "scripts/setup"));
  g_error_free (err);

  fail_unless (
      g_file_set_contents (corrupt, "\x08\x07\x12\x04spox\x3a\xff", -1, NULL));
  err = start_with_model (corrupt);
  fail_unless (
      g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ));
  fail_unless (strstr (err->message, corrupt));
  fail_unless (strstr (err->message, "scripts/setup"));
  g_error_free (err);

  g_unlink (corrupt);
  g_rmdir (dir);
}

GST_END_TEST;

static Suite *
silerovad_suite (void)
{
  Suite *s = suite_create ("silerovad");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_golden_16k);
  tcase_add_test (tc, test_golden_8k);
  tcase_add_test (tc, test_segments);
  tcase_add_test (tc, test_gate);
  tcase_add_test (tc, test_flush_resets);
  tcase_add_test (tc, test_discont_resets);
  tcase_add_test (tc, test_non_finite_input);
  tcase_add_test (tc, test_caps_error);
  tcase_add_test (tc, test_negotiation);
  tcase_add_test (tc, test_model_errors);
  return s;
}

/* GLib's library constructor allocates once and never frees (tests/lsan.supp
 * suppresses it as leak:_dl_init). LeakSanitizer only sees that frame with
 * the slow unwinder: GLib has no frame pointers, so the default fast one
 * stops at g_malloc and the report, which appears when the test creates
 * the plugin registry, cannot be matched. Defaults only: ASAN_OPTIONS
 * still wins. Unused in builds without ASan. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

GST_CHECK_MAIN (silerovad);

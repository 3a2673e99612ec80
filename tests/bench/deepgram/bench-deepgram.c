/* bench-deepgram: what deepgramsink + deepgramsrc add to Deepgram's own
 * latency, and their CPU cost per stream, against voiceagent-emulator.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   build/tests/bench/deepgram/bench-deepgram [--iterations 30]
 *       [--streams 10] [--seconds 10] [--emulator PATH]
 *
 * Latency, per final result, from the end of the audio it covers to its
 * arrival, with the emulator's reference profile (the final result comes
 * 45 ms after the audio that ends it) and the scripted engine:
 *   - service: a bare libsoup WebSocket client streams 1 s of audio in
 *     real time, sends Finalize, and times the final result's arrival;
 *   - elements: the same audio through deepgramsink (speech-stop → Finalize),
 *     timed to the final transcript buffer on deepgramsrc's src pad.
 * The difference of the medians is what the elements add (target: 5 ms).
 *
 * CPU: --streams pairs each stream speech (a WAV, looped) in real time for
 * --seconds; the process's CPU time (feeding included) per stream.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include "emulator-process.h"
#include "voice.h"

#define RATE 16000
#define CHUNK_MS 20
#define CHUNK_FRAMES (RATE * CHUNK_MS / 1000)
#define UTTERANCE_MS 1000
#define PAUSE_MS 300
#define QUERY                                                                  \
  "?model=nova-3&language=en&encoding=linear16&sample_rate=16000&channels=1"   \
  "&interim_results=false&endpointing=false&smart_format=false"                \
  "&punctuate=true&emu_transcript=order%20a%20pizza"

static gint iterations = 30;
static gint streams = 10;
static gint seconds = 10;
static gchar *emulator_path;

static gint16 tone[CHUNK_FRAMES];

static void
make_tone (void)
{
  for (guint i = 0; i < CHUNK_FRAMES; i++)
    tone[i] = (gint16)(8000 * sin (2 * G_PI * 440 * i / RATE));
}

/* Sleeps until @deadline_us (monotonic); a benchmark may. */
static void
sleep_until (gint64 deadline_us)
{
  gint64 now = g_get_monotonic_time ();

  if (deadline_us > now)
    g_usleep ((gulong)(deadline_us - now));
}

static int
cmp_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

static gdouble
percentile (GArray *values, gdouble p)
{
  guint i;

  if (values->len == 0)
    return NAN;
  g_array_sort (values, cmp_double);
  i = (guint)MIN (values->len - 1, floor (p * values->len));
  return g_array_index (values, gdouble, i);
}

/* ---- The service alone: a bare WebSocket client ---- */

typedef struct
{
  SoupWebsocketConnection *ws;
  gint64 final_us; /* arrival of the final result, 0 while waiting */
} Raw;

static void
raw_message (
    SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  Raw *raw = data;
  gint64 now = g_get_monotonic_time ();
  gsize len;
  const gchar *text = g_bytes_get_data (message, &len);

  if (type == SOUP_WEBSOCKET_DATA_TEXT &&
      g_strstr_len (text, (gssize)len, "\"from_finalize\":true"))
    raw->final_us = now;
}

static void
connected (GObject *session, GAsyncResult *res, gpointer data)
{
  Raw *raw = data;
  GError *error = NULL;

  raw->ws = soup_session_websocket_connect_finish (
      SOUP_SESSION (session), res, &error);
  if (raw->ws == NULL)
    g_error ("connecting: %s", error->message);
}

static GArray *
bench_service (EmuProcess *emu)
{
  GMainContext *ctx = g_main_context_new ();
  SoupSession *session;
  SoupMessage *msg;
  gchar *url =
      g_strconcat (emu_process_get_ws_url (emu), "/v1/listen", QUERY, NULL);
  Raw raw = { 0 };
  GArray *lat = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GBytes *chunk = g_bytes_new_static (tone, sizeof (tone));

  g_main_context_push_thread_default (ctx);
  session = soup_session_new ();
  msg = soup_message_new ("GET", url);
  soup_message_headers_append (
      soup_message_get_request_headers (msg), "Authorization", "Token bench");
  soup_session_websocket_connect_async (
      session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, connected, &raw);
  while (raw.ws == NULL)
    g_main_context_iteration (ctx, TRUE);
  g_signal_connect (raw.ws, "message", G_CALLBACK (raw_message), &raw);

  /* Iteration -1 warms up (the connection, the emulator): not counted. */
  for (gint it = -1; it < iterations; it++) {
    gint64 start = g_get_monotonic_time (), end;

    raw.final_us = 0;
    for (guint k = 0; k < UTTERANCE_MS / CHUNK_MS; k++) {
      sleep_until (start + (gint64)(k + 1) * CHUNK_MS * 1000);
      soup_websocket_connection_send_message (
          raw.ws, SOUP_WEBSOCKET_DATA_BINARY, chunk);
      while (g_main_context_iteration (ctx, FALSE))
        ;
    }
    end = g_get_monotonic_time ();
    soup_websocket_connection_send_text (raw.ws, "{\"type\":\"Finalize\"}");
    while (raw.final_us == 0)
      g_main_context_iteration (ctx, TRUE);
    if (it >= 0)
      g_array_append_val (lat, (gdouble){ (raw.final_us - end) / 1000.0 });
    sleep_until (g_get_monotonic_time () + PAUSE_MS * 1000);
  }
  soup_websocket_connection_close (raw.ws, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  while (soup_websocket_connection_get_state (raw.ws) !=
      SOUP_WEBSOCKET_STATE_CLOSED)
    g_main_context_iteration (ctx, TRUE);
  g_object_unref (raw.ws);
  g_object_unref (msg);
  g_object_unref (session);
  g_main_context_pop_thread_default (ctx);
  g_main_context_unref (ctx);
  g_bytes_unref (chunk);
  g_free (url);
  return lat;
}

/* ---- Through the elements ---- */

typedef struct
{
  GstHarness *h;
  GstElement *pipe;
  GMutex lock;
  GCond cond;
  gint64 final_us; /* final buffer on the src pad, 0 while waiting */
  gint64 arrival_us; /* its result reached the sink's I/O thread */
  guint64 finals;
} Pair;

static GstPadProbeReturn
on_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Pair *p = data;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&p->lock);
  if (p->final_us == 0)
    p->final_us = now;
  p->finals++;
  g_cond_broadcast (&p->cond);
  g_mutex_unlock (&p->lock);
  return GST_PAD_PROBE_OK;
}

static GstBusSyncReply
on_message (GstBus *bus, GstMessage *m, gpointer data)
{
  Pair *p = data;
  const GstStructure *s = gst_message_get_structure (m);
  gboolean is_final = FALSE;

  if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
    g_error ("%" GST_PTR_FORMAT, s);
  if (s && gst_structure_has_name (s, "deepgram-transcript") &&
      gst_structure_get_boolean (s, "is_final", &is_final) && is_final) {
    g_mutex_lock (&p->lock);
    gst_structure_get_int64 (s, "wallclock", &p->arrival_us);
    g_mutex_unlock (&p->lock);
  }
  return GST_BUS_DROP;
}

/* A pair on its own session; @latency_config: the service baseline's
 * options (no interim results, no endpointing: only Finalize ends an
 * utterance), else the element's defaults. */
static Pair *
pair_new (EmuProcess *emu, const gchar *caps, gboolean latency_config)
{
  Pair *p = g_new0 (Pair, 1);
  gchar *session = gst_voice_session_make_unique_name ("bench");
  gchar *url = g_strconcat (emu_process_get_ws_url (emu), "/v1/listen", NULL);
  GstElement *src, *sink;
  GstPad *pad;
  GstBus *bus;

  g_mutex_init (&p->lock);
  g_cond_init (&p->cond);
  p->pipe = gst_parse_launch (
      "deepgramsrc name=src ! fakesink sync=false async=false", NULL);
  src = gst_bin_get_by_name (GST_BIN (p->pipe), "src");
  g_object_set (src, "session", session, NULL);
  pad = gst_element_get_static_pad (src, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, p, NULL);
  gst_object_unref (pad);
  gst_object_unref (src);
  bus = gst_element_get_bus (p->pipe);
  gst_bus_set_sync_handler (bus, on_message, p, NULL);
  gst_object_unref (bus);
  gst_element_set_state (p->pipe, GST_STATE_PLAYING);

  sink = gst_element_factory_make ("deepgramsink", NULL);
  g_object_set (sink, "session", session, "url", url, "api-key", "bench",
      "extra-params", "emu_transcript=order%20a%20pizza", NULL);
  if (latency_config)
    g_object_set (sink, "interim-results", FALSE, "endpointing-ms", 0,
        "utterance-end-ms", 0, NULL);
  /* The same bus: errors and transcripts in one place. */
  bus = gst_element_get_bus (p->pipe);
  gst_element_set_bus (sink, bus);
  gst_object_unref (bus);
  p->h = gst_harness_new_with_element (sink, "sink", NULL);
  gst_object_unref (sink);
  gst_harness_set_src_caps_str (p->h, caps);
  g_free (url);
  g_free (session);
  return p;
}

static void
pair_free (Pair *p)
{
  gst_harness_teardown (p->h);
  gst_element_set_state (p->pipe, GST_STATE_NULL);
  gst_object_unref (p->pipe);
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->cond);
  g_free (p);
}

static void
push (Pair *p, const gint16 *pcm, guint frames, guint rate, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new_memdup (pcm, frames * 2);

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (frames, GST_SECOND, rate);
  if (gst_harness_push (p->h, buf) != GST_FLOW_OK)
    g_error ("push failed");
}

static void
bench_elements (EmuProcess *emu, GArray *lat, GArray *delivery)
{
  Pair *p = pair_new (emu,
      "audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1",
      TRUE);
  GstClockTime pts = 0;

  for (gint it = -1; it < iterations; it++) {
    gint64 start = g_get_monotonic_time (), end;

    g_mutex_lock (&p->lock);
    p->final_us = 0;
    g_mutex_unlock (&p->lock);
    gst_harness_push_event (
        p->h, gst_voice_event_new_speech_start (pts, (guint)(it + 1)));
    for (guint k = 0; k < UTTERANCE_MS / CHUNK_MS; k++) {
      sleep_until (start + (gint64)(k + 1) * CHUNK_MS * 1000);
      push (p, tone, CHUNK_FRAMES, RATE, pts);
      pts += CHUNK_MS * GST_MSECOND;
    }
    end = g_get_monotonic_time ();
    gst_harness_push_event (
        p->h, gst_voice_event_new_speech_stop (pts, (guint)(it + 1)));
    g_mutex_lock (&p->lock);
    while (p->final_us == 0)
      g_cond_wait (&p->cond, &p->lock);
    if (it >= 0) {
      g_array_append_val (lat, (gdouble){ (p->final_us - end) / 1000.0 });
      g_array_append_val (
          delivery, (gdouble){ (p->final_us - p->arrival_us) / 1000.0 });
    }
    g_mutex_unlock (&p->lock);
    /* Gated silence: a GAP, no audio. */
    gst_harness_push_event (
        p->h, gst_event_new_gap (pts, PAUSE_MS * GST_MSECOND));
    pts += PAUSE_MS * GST_MSECOND;
    sleep_until (g_get_monotonic_time () + PAUSE_MS * 1000);
  }
  pair_free (p);
}

static void
run_latency (void)
{
  const gchar *args[] = { "-q", "--latency", "reference", "--stt-engine",
    "scripted", NULL };
  EmuProcess *emu = emu_process_start (args);
  GArray *service, *elements, *delivery;
  gdouble s50, e50;

  if (emu == NULL)
    g_error ("the emulator did not start");
  service = bench_service (emu);
  elements = g_array_new (FALSE, FALSE, sizeof (gdouble));
  delivery = g_array_new (FALSE, FALSE, sizeof (gdouble));
  bench_elements (emu, elements, delivery);
  emu_process_stop (emu);

  s50 = percentile (service, 0.5);
  e50 = percentile (elements, 0.5);
  g_print ("Latency per final result, end of audio -> final result "
           "(emulator --latency reference: 45 ms), %d utterances:\n",
      iterations);
  g_print ("  service alone (bare WebSocket client):  p50 %6.2f ms  p95 "
           "%6.2f ms\n",
      s50, percentile (service, 0.95));
  g_print ("  through deepgramsink + deepgramsrc:     p50 %6.2f ms  p95 "
           "%6.2f ms\n",
      e50, percentile (elements, 0.95));
  g_print ("  added by the elements (p50 difference): %6.2f ms  (target "
           "<= 5 ms)\n",
      e50 - s50);
  g_print ("  of which result delivery, sink I/O thread -> src pad: p50 "
           "%.3f ms  p95 %.3f ms\n",
      percentile (delivery, 0.5), percentile (delivery, 0.95));
  g_array_unref (service);
  g_array_unref (elements);
  g_array_unref (delivery);
}

/* ---- CPU per stream ---- */

static gdouble
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
      ru.ru_stime.tv_usec / 1e6;
}

static GBytes *
load_speech (guint *rate)
{
  gchar *path = g_build_filename (VOICEAGENT_SOURCE_DIR, "tests", "deepgram",
      "data", "order-pizza.wav", NULL);
  gchar *data = NULL;
  gsize len = 0;
  GBytes *pcm;

  if (!g_file_get_contents (path, &data, &len, NULL) || len <= 44)
    g_error ("cannot read %s", path);
  *rate = GST_READ_UINT32_LE (data + 24);
  pcm = g_bytes_new (data + 44, (len - 44) & ~(gsize)1);
  g_free (data);
  g_free (path);
  return pcm;
}

static void
run_cpu (void)
{
  const gchar *args[] = { "-q", "--stt-engine", "scripted", NULL };
  EmuProcess *emu = emu_process_start (args);
  Pair **pairs = g_new0 (Pair *, streams);
  guint rate = 0;
  GBytes *speech = load_speech (&rate);
  gsize len;
  const gint16 *pcm = g_bytes_get_data (speech, &len);
  guint frames = len / 2, per_chunk, silence_chunks = 25;
  guint64 finals = 0;
  gint16 *silence;
  gchar *caps;
  gint64 start;
  gdouble cpu0 = 0, wall0 = 0, cpu, wall;
  guint total_chunks, warmup_chunks;

  if (emu == NULL)
    g_error ("the emulator did not start");
  per_chunk = rate * CHUNK_MS / 1000;
  silence = g_new0 (gint16, per_chunk);
  caps = g_strdup_printf (
      "audio/x-raw,format=S16LE,layout=interleaved,rate=%u,channels=1", rate);
  for (gint i = 0; i < streams; i++)
    pairs[i] = pair_new (emu, caps, FALSE);

  /* Every stream: the sentence, then 500 ms of silence, again and again. */
  total_chunks = (guint)(seconds + 1) * 1000 / CHUNK_MS;
  warmup_chunks = 1000 / CHUNK_MS;
  start = g_get_monotonic_time ();
  for (guint k = 0; k < total_chunks; k++) {
    guint cycle = frames / per_chunk + silence_chunks, pos = k % cycle;
    GstClockTime pts = (GstClockTime)k * CHUNK_MS * GST_MSECOND;

    if (k == warmup_chunks) {
      cpu0 = cpu_seconds ();
      wall0 = g_get_monotonic_time () / 1e6;
    }
    sleep_until (start + (gint64)(k + 1) * CHUNK_MS * 1000);
    for (gint i = 0; i < streams; i++) {
      if (pos < frames / per_chunk)
        push (pairs[i], pcm + (gsize)pos * per_chunk, per_chunk, rate, pts);
      else
        push (pairs[i], silence, per_chunk, rate, pts);
    }
  }
  cpu = cpu_seconds () - cpu0;
  wall = g_get_monotonic_time () / 1e6 - wall0;
  for (gint i = 0; i < streams; i++) {
    finals += pairs[i]->finals;
    pair_free (pairs[i]);
  }
  emu_process_stop (emu);

  g_print ("CPU while streaming speech in real time (%d streams, %.1f s, "
           "%" G_GUINT64_FORMAT " final transcripts):\n",
      streams, wall, finals);
  g_print ("  per stream: %.2f %% of one core (%.2f ms of CPU per second of "
           "audio), feeding included\n",
      100.0 * cpu / wall / streams, 1000.0 * cpu / wall / streams);
  g_free (caps);
  g_free (silence);
  g_free (pairs);
  g_bytes_unref (speech);
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    { "iterations", 'n', 0, G_OPTION_ARG_INT, &iterations,
        "Utterances timed per path (default 30)", "N" },
    { "streams", 's', 0, G_OPTION_ARG_INT, &streams,
        "Concurrent streams for the CPU measure (default 10)", "N" },
    { "seconds", 't', 0, G_OPTION_ARG_INT, &seconds,
        "Length of the CPU measure (default 10)", "S" },
    { "emulator", 'e', 0, G_OPTION_ARG_FILENAME, &emulator_path,
        "voiceagent-emulator to run (default: the build tree's)", "PATH" },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- deepgram elements benchmark");
  GError *error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  g_option_context_free (ctx);
  /* Run from the build tree without an installed plugin. */
  g_setenv ("VOICEAGENT_EMULATOR",
      emulator_path ? emulator_path
                    : VOICEAGENT_BUILD_DIR
          "/tests/emulator/voiceagent-emulator",
      TRUE);
  g_setenv ("GST_PLUGIN_PATH_1_0", VOICEAGENT_BUILD_DIR "/gst/deepgram", FALSE);
  gst_init (NULL, NULL);
  gst_voice_init ();
  make_tone ();

  run_latency ();
  run_cpu ();
  g_free (emulator_path);
  return 0;
}

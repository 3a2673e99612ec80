/* bench-elevenlabs: what elevenlabssink + elevenlabssrc add to ElevenLabs'
 * own latency, and how fast a barge-in silences them, against
 * voiceagent-emulator with its reference latency profile.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   meson devenv -C build tests/bench/elevenlabs/bench-elevenlabs
 *       [--turns 30] [--interrupts 30] [--buffer-ms 20] [--prebuffer-ms 40]
 *       [--emulator PATH]
 *
 * (devenv puts the build tree's plugins on GST_PLUGIN_PATH; the emulator
 * defaults to the build tree's.)
 *
 * Pipeline: appsrc (agent text) ! elevenlabssink, elevenlabssrc ! fakesink,
 * on the system clock, as in a call.
 *
 * - Added latency, per turn: from the first audio byte's arrival (the
 *   sink's `first-audio`, stamped on the I/O thread when the frame is in) to
 *   the buffer holding the turn's first sample (the running time of
 *   `agent-speaking-started`) leaving elevenlabssrc's pad (a pad probe).
 *   Not the first non-zero sample: speech starts with a few ms of silence. It includes the wait for the next buffer period and the
 *   prebuffer. Target: under 25 ms. The element's own `latency` field of
 *   `agent-speaking-started` is printed beside it, and the service's TTFB
 *   (first text sent to first audio byte; the profile says 130 ms).
 * - Interrupt to silence: a turn plays, `interrupt` is sent to the sink's
 *   pad at a random moment 50..400 ms into it; the time to the first silent
 *   buffer leaving the src, in wall time and in running time (its PTS minus
 *   the running time of the event). Target: one buffer period.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>
#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include "emulator-process.h"
#include "voice.h"

#define TEXT                                                                   \
  "Sure, I can help with that. Your table for two is booked for eight "        \
  "o'clock tonight, and I have sent the confirmation to your phone."

static gint turns = 30;
static gint interrupts = 30;
static gint buffer_ms = 20;
static gint prebuffer_ms = 40;
static gchar *emulator_path;

typedef struct
{
  GMutex lock;
  GCond cond;
  /* Sink `first-audio` times (monotonic µs) and TTFBs by turn. */
  GHashTable *first_audio_us;
  GArray *ttfb_ms; /* gdouble */
  GArray *element_latency_ms; /* gdouble, agent-speaking-started */
  guint started_turn; /* last agent-speaking-started */
  guint connection_trouble; /* disconnected + connect-failed messages */
  guint stopped_turn; /* last agent-speaking-stopped */
  /* Probe: when each buffer of @watch_turn's time left (PTS, µs pairs),
   * and where its first sample is (agent-speaking-started). */
  guint watch_turn;
  GArray *pushed; /* of gint64 pairs */
  GstClockTime started_rt;
  /* Probe: the first silent buffer after @silence_after_us. */
  gint64 silence_after_us;
  gint64 first_silent_us;
  GstClockTime first_silent_pts;
} Bench;

static Bench b;

static int
cmp_double (gconstpointer x, gconstpointer y)
{
  gdouble a = *(const gdouble *)x, c = *(const gdouble *)y;

  return a < c ? -1 : a > c;
}

static void
print_stats (const gchar *what, GArray *v)
{
  gdouble sum = 0;

  if (v->len == 0) {
    g_print ("  %-44s no samples\n", what);
    return;
  }
  g_array_sort (v, cmp_double);
  for (guint i = 0; i < v->len; i++)
    sum += g_array_index (v, gdouble, i);
  g_print ("  %-44s mean %6.1f  p50 %6.1f  p95 %6.1f  max %6.1f ms (n=%u)\n",
      what, sum / v->len, g_array_index (v, gdouble, v->len / 2),
      g_array_index (v, gdouble, MIN (v->len - 1, v->len * 95 / 100)),
      g_array_index (v, gdouble, v->len - 1), v->len);
}

static gboolean
is_silent (GstBuffer *buf)
{
  GstMapInfo map;
  gboolean silent = TRUE;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  for (gsize i = 0; i < map.size / 2 && silent; i++)
    silent = ((const gint16 *)map.data)[i] == 0;
  gst_buffer_unmap (buf, &map);
  return silent;
}

static GstPadProbeReturn
probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  gint64 now = g_get_monotonic_time ();
  gboolean silent = is_silent (buf);

  g_mutex_lock (&b.lock);
  if (b.watch_turn) {
    gint64 pair[2] = { (gint64)GST_BUFFER_PTS (buf), now };
    g_array_append_vals (b.pushed, pair, 2);
  }
  if (silent && b.silence_after_us && b.first_silent_us == 0 &&
      now > b.silence_after_us) {
    b.first_silent_us = now;
    b.first_silent_pts = GST_BUFFER_PTS (buf);
  }
  g_cond_broadcast (&b.cond);
  g_mutex_unlock (&b.lock);
  return GST_PAD_PROBE_OK;
}

static GstBusSyncReply
on_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  const GstStructure *s = gst_message_get_structure (msg);
  const gchar *event;
  guint turn = 0;
  guint64 v = 0;
  gint64 wallclock = 0;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    g_printerr ("error: %s\n", err->message);
    exit (1);
  }
  if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT || s == NULL ||
      !(event = gst_structure_get_string (s, "event")))
    return GST_BUS_PASS;
  gst_structure_get_uint (s, "turn", &turn);
  gst_structure_get_int64 (s, "wallclock", &wallclock);
  g_mutex_lock (&b.lock);
  if (g_getenv ("BENCH_TRACE"))
    g_printerr ("%" G_GINT64_FORMAT " %s %s %u\n", g_get_monotonic_time (),
        gst_structure_get_name (s), event, turn);
  if (g_str_equal (event, "first-audio")) {
    gdouble ms;
    gst_structure_get_uint64 (s, "ttfb", &v);
    ms = v / 1e6;
    g_array_append_val (b.ttfb_ms, ms);
    g_hash_table_insert (b.first_audio_us, GUINT_TO_POINTER (turn),
        g_memdup2 (&wallclock, sizeof (wallclock)));
  } else if (g_str_equal (event, "agent-speaking-started")) {
    gdouble ms;
    gst_structure_get_uint64 (s, "latency", &v);
    ms = v / 1e6;
    if (b.watch_turn == turn) {
      g_array_append_val (b.element_latency_ms, ms);
      gst_structure_get_uint64 (s, "running-time", &b.started_rt);
    }
    b.started_turn = turn;
  } else if (g_str_equal (event, "agent-speaking-stopped")) {
    b.stopped_turn = turn;
  } else if (g_str_equal (event, "disconnected") ||
      g_str_equal (event, "connect-failed")) {
    b.connection_trouble++;
  }
  g_cond_broadcast (&b.cond);
  g_mutex_unlock (&b.lock);
  return GST_BUS_PASS;
}

/* When the buffer holding running time @rt left the src (the last buffer
 * starting at or before it). Call with the lock held. */
static gint64
pushed_at (GstClockTime rt)
{
  gint64 at = 0;

  for (guint i = 0; i + 1 < b.pushed->len; i += 2)
    if ((GstClockTime)g_array_index (b.pushed, gint64, i) <= rt)
      at = g_array_index (b.pushed, gint64, i + 1);
  return at;
}

static GstBuffer *
agent_text (guint turn, const gchar *text)
{
  GstBuffer *buf = gst_buffer_new_memdup (text, strlen (text));

  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_AGENT, TRUE, TRUE, 1.0f, turn);
  return buf;
}

/* Waits (lock held) until *@field == @value, at most 30 s. */
static gboolean
wait_turn (guint *field, guint value)
{
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

  while (*field != value)
    if (!g_cond_wait_until (&b.cond, &b.lock, deadline))
      return FALSE;
  return TRUE;
}

int
main (int argc, char **argv)
{
  GOptionEntry entries[] = {
    { "turns", 0, 0, G_OPTION_ARG_INT, &turns, "Turns timed for latency", "N" },
    { "interrupts", 0, 0, G_OPTION_ARG_INT, &interrupts, "Barge-ins timed",
        "N" },
    { "buffer-ms", 0, 0, G_OPTION_ARG_INT, &buffer_ms, "Buffer duration",
        "MS" },
    { "prebuffer-ms", 0, 0, G_OPTION_ARG_INT, &prebuffer_ms, "Prebuffer",
        "MS" },
    { "emulator", 0, 0, G_OPTION_ARG_FILENAME, &emulator_path,
        "voiceagent-emulator to run", "PATH" },
    { NULL },
  };
  const gchar *emu_args[] = { "--latency", "reference", "--quiet", NULL };
  GOptionContext *ctx = g_option_context_new ("- elevenlabs benchmark");
  GArray *added = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *stop_wall = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *stop_rt = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GstElement *pipe, *in, *play, *tts;
  GstPad *srcpad, *sinkpad;
  GstBus *bus;
  EmuProcess *emu;
  GError *error = NULL;
  gchar *desc;
  guint turn = 0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  g_option_context_free (ctx);
  gst_voice_init ();
  /* Outside `meson test`, the emulator of this build tree. */
  if (emulator_path == NULL && g_getenv ("VOICEAGENT_EMULATOR") == NULL)
    emulator_path = g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "emulator", "voiceagent-emulator", NULL);
  emu = emulator_path ? emu_process_start_program (emulator_path, emu_args)
                      : emu_process_start (emu_args);
  if (emu == NULL)
    return 1;

  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  b.first_audio_us = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  b.ttfb_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  b.pushed = g_array_new (FALSE, FALSE, sizeof (gint64));
  b.element_latency_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));

  desc = g_strdup_printf (
      "appsrc name=in caps=text/x-raw,format=utf8 format=time "
      "! elevenlabssink name=tts session=bench url=%s api-key=k "
      "elevenlabssrc name=play session=bench url=%s api-key=k buffer-ms=%d "
      "prebuffer-ms=%d ! fakesink sync=false",
      emu_process_get_ws_url (emu), emu_process_get_ws_url (emu), buffer_ms,
      prebuffer_ms);
  pipe = gst_parse_launch (desc, &error);
  g_free (desc);
  if (pipe == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  in = gst_bin_get_by_name (GST_BIN (pipe), "in");
  play = gst_bin_get_by_name (GST_BIN (pipe), "play");
  tts = gst_bin_get_by_name (GST_BIN (pipe), "tts");
  srcpad = gst_element_get_static_pad (play, "src");
  sinkpad = gst_element_get_static_pad (tts, "sink");
  gst_pad_add_probe (srcpad, GST_PAD_PROBE_TYPE_BUFFER, probe, NULL, NULL);
  bus = gst_element_get_bus (pipe);
  gst_bus_set_sync_handler (bus, on_message, NULL, NULL);
  gst_element_set_state (pipe, GST_STATE_PLAYING);
  g_usleep (500000); /* connected and idle */

  g_print ("elevenlabs benchmark: emulator --latency reference, buffer %d ms, "
           "prebuffer %d ms\n",
      buffer_ms, prebuffer_ms);
  for (gint i = 0; i < turns; i++) {
    gint64 *arrived;
    gdouble ms;

    g_mutex_lock (&b.lock);
    b.watch_turn = ++turn;
    g_array_set_size (b.pushed, 0);
    b.started_rt = GST_CLOCK_TIME_NONE;
    g_mutex_unlock (&b.lock);
    gst_app_src_push_buffer (GST_APP_SRC (in), agent_text (turn, TEXT));
    g_mutex_lock (&b.lock);
    if (!wait_turn (&b.stopped_turn, turn)) {
      g_printerr ("turn %u did not finish (%u connection problems)\n", turn,
          b.connection_trouble);
      return 1;
    }
    arrived = g_hash_table_lookup (b.first_audio_us, GUINT_TO_POINTER (turn));
    ms = (pushed_at (b.started_rt) - *arrived) / 1000.0;
    g_array_append_val (added, ms);
    b.watch_turn = 0;
    g_mutex_unlock (&b.lock);
    g_usleep (g_random_int_range (50, 250) * 1000);
  }

  for (gint i = 0; i < interrupts; i++) {
    GstClock *clock = gst_element_get_clock (pipe);
    GstClockTime rt;
    gint64 t0;
    gdouble ms;

    gst_app_src_push_buffer (GST_APP_SRC (in), agent_text (++turn, TEXT));
    g_mutex_lock (&b.lock);
    if (!wait_turn (&b.started_turn, turn)) {
      g_printerr ("turn %u did not start (%u connection problems)\n", turn,
          b.connection_trouble);
      return 1;
    }
    g_mutex_unlock (&b.lock);
    g_usleep (g_random_int_range (50, 400) * 1000);

    g_mutex_lock (&b.lock);
    t0 = g_get_monotonic_time ();
    b.first_silent_us = 0;
    b.silence_after_us = t0;
    g_mutex_unlock (&b.lock);
    rt = gst_clock_get_time (clock) - gst_element_get_base_time (pipe);
    gst_pad_send_event (
        sinkpad, gst_voice_event_new_interrupt (rt, turn, "bench"));
    g_mutex_lock (&b.lock);
    while (b.first_silent_us == 0)
      g_cond_wait (&b.cond, &b.lock);
    ms = (b.first_silent_us - t0) / 1000.0;
    g_array_append_val (stop_wall, ms);
    ms = ((gdouble)b.first_silent_pts - (gdouble)rt) / 1e6;
    g_array_append_val (stop_rt, ms);
    b.silence_after_us = 0;
    wait_turn (&b.stopped_turn, turn);
    g_mutex_unlock (&b.lock);
    gst_object_unref (clock);
    g_usleep (g_random_int_range (50, 250) * 1000);
  }

  g_print ("\nadded latency (first audio byte in -> first sample out), "
           "target < 25 ms:\n");
  print_stats ("measured (sink first-audio to src pad probe)", added);
  print_stats (
      "element-reported (agent-speaking-started)", b.element_latency_ms);
  g_print ("\nservice, for reference (profile: 130 ms):\n");
  print_stats ("TTFB (speakable text sent -> first audio)", b.ttfb_ms);
  g_print (
      "\ninterrupt -> first silent buffer, target <= %d ms (one buffer):\n",
      buffer_ms);
  print_stats ("wall time (event sent -> buffer pushed)", stop_wall);
  print_stats ("running time (buffer PTS - event)", stop_rt);

  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (srcpad);
  gst_object_unref (sinkpad);
  gst_object_unref (in);
  gst_object_unref (play);
  gst_object_unref (tts);
  gst_object_unref (bus);
  gst_object_unref (pipe);
  emu_process_stop (emu);
  return 0;
}

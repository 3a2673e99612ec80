/* Load benchmark of voiceagent-emulator: N concurrent sessions against one
 * emulator process, which this program starts; prints the emulator's CPU
 * time and memory per session (from /proc/PID/stat and /proc/PID/status).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   emulator-load [--mode elevenlabs|deepgram] [--sessions 200] [--turns 5]
 *                 [--emulator PATH] [-- EXTRA EMULATOR ARGS]
 *
 * elevenlabs: each session opens stream-input (pcm_16000) on the tone
 *   engine and speaks --turns replies of two sentences (flush after each),
 *   waiting for all their audio and then --pause-ms, like an agent taking
 *   turns; then ends the input and waits for isFinal and the close.
 * deepgram: each session opens /v1/listen (linear16, 16 kHz) on the scripted
 *   engine and streams --seconds of audio in real time, 20 ms per frame
 *   (1.5 s of tone, 1 s of silence, repeated), then CloseStream.
 *
 * All sessions are opened first; the run starts when every one is open, and
 * the peak RSS with all of them open is what "per session" divides.
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum {
  MODE_ELEVENLABS,
  MODE_DEEPGRAM,
} Mode;

typedef struct _Load Load;

typedef struct
{
  Load *load;
  guint index;
  SoupWebsocketConnection *ws;
  guint turn;
  guint audio_left; /* audio messages still due this turn */
  gint64 turn_sent_us;
  gboolean first_audio_seen;
  guint pause_id;
  guint frames_sent;
  guint messages;
  gboolean closed;
  gboolean failed;
} Session;

struct _Load
{
  Mode mode;
  guint n_sessions;
  guint turns;
  guint pause_ms;
  guint seconds;
  gchar *base_ws;
  SoupSession *http;
  Session *sessions;
  guint connected;
  guint finished;
  gboolean running;
  GArray *first_audio_ms; /* (element-type gdouble) */
  guint frame_timer;
  GMainLoop *loop;
  guint8 tone[640]; /* 20 ms of 16 kHz S16 */
  guint8 silence[640];
};

static const gchar turn_text[] =
    "{\"text\":\"Sure, I can help you with "
    "that right away. Your table for two is booked for eight tonight. \","
    "\"flush\":true}";
#define TURN_SENTENCES 2

/* ---------- /proc ---------- */

/* utime + stime of @pid in seconds. */
static gdouble
proc_cpu_s (GPid pid)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree gchar *text = NULL;
  g_auto (GStrv) f = NULL;
  const gchar *p;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  p = strrchr (text, ')');
  if (!p)
    return 0;
  f = g_strsplit (p + 2, " ", -1);
  /* After "(comm) ": state is field 3, utime 14, stime 15 (1-based). */
  if (g_strv_length (f) < 13)
    return 0;
  return (g_ascii_strtod (f[11], NULL) + g_ascii_strtod (f[12], NULL)) /
      sysconf (_SC_CLK_TCK);
}

/* A "VmRSS"-style field of /proc/PID/status, in KiB. */
static guint64
proc_status_kib (GPid pid, const gchar *field)
{
  g_autofree gchar *path = g_strdup_printf ("/proc/%d/status", pid);
  g_autofree gchar *text = NULL;
  g_autofree gchar *key = g_strdup_printf ("\n%s:", field);
  const gchar *p;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  p = strstr (text, key);
  return p ? g_ascii_strtoull (p + strlen (key), NULL, 10) : 0;
}

/* ---------- sessions ---------- */

static void
session_done (Session *s, gboolean failed)
{
  Load *l = s->load;

  if (s->closed)
    return;
  s->closed = TRUE;
  s->failed = failed;
  if (s->pause_id) {
    g_source_remove (s->pause_id);
    s->pause_id = 0;
  }
  if (++l->finished == l->n_sessions)
    g_main_loop_quit (l->loop);
}

static void
el_start_turn (Session *s)
{
  s->audio_left = TURN_SENTENCES;
  s->first_audio_seen = FALSE;
  s->turn_sent_us = g_get_monotonic_time ();
  soup_websocket_connection_send_text (s->ws, turn_text);
}

static gboolean
el_pause_done (gpointer data)
{
  Session *s = data;

  s->pause_id = 0;
  if (++s->turn < s->load->turns)
    el_start_turn (s);
  else
    soup_websocket_connection_send_text (s->ws, "{\"text\":\"\"}");
  return G_SOURCE_REMOVE;
}

static void
message_cb (
    SoupWebsocketConnection *ws, gint type, GBytes *data, gpointer user_data)
{
  Session *s = user_data;
  Load *l = s->load;
  gsize len;
  const gchar *text = g_bytes_get_data (data, &len);

  s->messages++;
  if (l->mode != MODE_ELEVENLABS || !l->running)
    return;
  /* Cheap classification: audio frames start with {"audio". */
  if (len > 9 && strncmp (text, "{\"audio\"", 8) == 0) {
    if (!s->first_audio_seen) {
      gdouble ms = (g_get_monotonic_time () - s->turn_sent_us) / 1000.0;
      s->first_audio_seen = TRUE;
      g_array_append_val (l->first_audio_ms, ms);
    }
    if (s->audio_left && --s->audio_left == 0)
      s->pause_id = g_timeout_add (l->pause_ms, el_pause_done, s);
  } else if (g_strstr_len (text, MIN (len, 64), "\"error\"")) {
    g_printerr ("session %u: %.*s\n", s->index, (int)MIN (len, 200), text);
  }
}

static void
closed_cb (SoupWebsocketConnection *ws, gpointer user_data)
{
  Session *s = user_data;
  gushort code = soup_websocket_connection_get_close_code (ws);

  if (code != 1000 && code != 1005)
    g_printerr ("session %u closed with %u\n", s->index, code);
  session_done (s, code != 1000 && code != 1005);
}

static void start_run (Load *l);

static void
connected_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  Session *s = data;
  g_autoptr (GError) error = NULL;

  s->ws = soup_session_websocket_connect_finish (
      SOUP_SESSION (source), res, &error);
  if (!s->ws) {
    g_printerr ("session %u: %s\n", s->index, error->message);
    exit (1);
  }
  soup_websocket_connection_set_max_incoming_payload_size (s->ws, 1 << 24);
  g_signal_connect (s->ws, "message", G_CALLBACK (message_cb), s);
  g_signal_connect (s->ws, "closed", G_CALLBACK (closed_cb), s);
  if (++s->load->connected == s->load->n_sessions)
    start_run (s->load);
}

static void
session_connect (Load *l, Session *s)
{
  g_autofree gchar *url = NULL;
  g_autoptr (SoupMessage) msg = NULL;
  SoupMessageHeaders *h;

  if (l->mode == MODE_ELEVENLABS)
    url = g_strdup_printf ("%s/v1/text-to-speech/bench/stream-input?"
                           "model_id=eleven_flash_v2_5&output_format=pcm_16000",
        l->base_ws);
  else
    url = g_strdup_printf ("%s/v1/listen?model=nova-3&encoding=linear16&"
                           "sample_rate=16000&channels=1&interim_results=true&"
                           "endpointing=300",
        l->base_ws);
  msg = soup_message_new ("GET", url);
  h = soup_message_get_request_headers (msg);
  if (l->mode == MODE_ELEVENLABS)
    soup_message_headers_replace (h, "xi-api-key", "bench");
  else
    soup_message_headers_replace (h, "Authorization", "Token bench");
  soup_session_websocket_connect_async (
      l->http, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, connected_cb, s);
}

/* Deepgram: one 20 ms frame to every session. */
static gboolean
frame_cb (gpointer data)
{
  Load *l = data;
  guint total = l->seconds * 50;

  for (guint i = 0; i < l->n_sessions; i++) {
    Session *s = &l->sessions[i];
    if (s->closed ||
        soup_websocket_connection_get_state (s->ws) !=
            SOUP_WEBSOCKET_STATE_OPEN)
      continue;
    if (s->frames_sent < total) {
      /* 75 frames of tone, 50 of silence. */
      const guint8 *frame = (s->frames_sent % 125) < 75 ? l->tone : l->silence;
      soup_websocket_connection_send_binary (s->ws, frame, 640);
    } else if (s->frames_sent == total) {
      soup_websocket_connection_send_text (s->ws, "{\"type\":\"CloseStream\"}");
    }
    s->frames_sent++;
  }
  return G_SOURCE_CONTINUE;
}

static void
start_run (Load *l)
{
  l->running = TRUE;
  g_main_loop_quit (l->loop); /* back to main() to take the baseline */
}

static gboolean
el_first_turn (gpointer data)
{
  Session *s = data;

  s->pause_id = 0;
  el_start_turn (s);
  return G_SOURCE_REMOVE;
}

static void
begin_sessions (Load *l)
{
  for (guint i = 0; i < l->n_sessions; i++) {
    Session *s = &l->sessions[i];
    if (l->mode == MODE_ELEVENLABS) {
      soup_websocket_connection_send_text (s->ws,
          "{\"text\":\" \","
          "\"generation_config\":{\"chunk_length_schedule\":[50]}}");
      /* Spread the first replies over one pause so the sessions do not all
       * speak in the same millisecond. */
      s->pause_id =
          g_timeout_add (i * l->pause_ms / l->n_sessions, el_first_turn, s);
    }
  }
  if (l->mode == MODE_DEEPGRAM)
    l->frame_timer = g_timeout_add (20, frame_cb, l);
}

/* ---------- main ---------- */

static GSubprocess *
start_emulator (const gchar *exe, Mode mode, gchar **extra,
    const gchar *port_file, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, (gpointer)exe);
  g_ptr_array_add (argv, (gpointer) "--port");
  g_ptr_array_add (argv, (gpointer) "0");
  g_ptr_array_add (argv, (gpointer) "--port-file");
  g_ptr_array_add (argv, (gpointer)port_file);
  g_ptr_array_add (argv, (gpointer) "--quiet");
  if (mode == MODE_ELEVENLABS) {
    g_ptr_array_add (argv, (gpointer) "--tts-engine");
    g_ptr_array_add (argv, (gpointer) "tone");
  } else {
    g_ptr_array_add (argv, (gpointer) "--stt-engine");
    g_ptr_array_add (argv, (gpointer) "scripted");
  }
  for (guint i = 0; extra && extra[i]; i++)
    g_ptr_array_add (argv, extra[i]);
  g_ptr_array_add (argv, NULL);
  return g_subprocess_newv ((const gchar *const *)argv->pdata,
      G_SUBPROCESS_FLAGS_STDOUT_SILENCE, error);
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

static gdouble
percentile (GArray *a, gdouble p)
{
  if (a->len == 0)
    return NAN;
  return g_array_index (a, gdouble, MIN (a->len - 1, (guint)(p * a->len)));
}

int
main (int argc, char **argv)
{
  g_autofree gchar *mode_name = NULL, *exe = NULL, *port_file = NULL;
  gint sessions = 200, turns = 5, pause_ms = 1000, seconds = 10;
  gchar **extra = NULL;
  GOptionEntry entries[] = {
    { "mode", 'm', 0, G_OPTION_ARG_STRING, &mode_name,
        "elevenlabs (tone engine) or deepgram (scripted engine)", "MODE" },
    { "sessions", 'n', 0, G_OPTION_ARG_INT, &sessions,
        "Concurrent sessions (200)", "N" },
    { "turns", 0, 0, G_OPTION_ARG_INT, &turns,
        "elevenlabs: replies per session (5)", "N" },
    { "pause-ms", 0, 0, G_OPTION_ARG_INT, &pause_ms,
        "elevenlabs: pause after each reply's audio (1000)", "MS" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds,
        "deepgram: seconds of audio per session (10)", "S" },
    { "emulator", 0, 0, G_OPTION_ARG_FILENAME, &exe,
        "voiceagent-emulator to run (default $VOICEAGENT_EMULATOR)", "PATH" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &extra, NULL, NULL },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new (
      "- load benchmark of voiceagent-emulator [-- EMULATOR ARGS]");
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  Load l = { 0 };
  GPid pid;
  gdouble cpu0, cpu1, wall;
  guint64 rss0, rss_open, hwm;
  gint64 t0;
  guint failed = 0;
  gint fd;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 2;
  }
  if (!exe)
    exe = g_strdup (g_getenv ("VOICEAGENT_EMULATOR"));
  if (!exe) {
    g_printerr ("give --emulator PATH or set VOICEAGENT_EMULATOR\n");
    return 2;
  }
  l.mode =
      g_strcmp0 (mode_name, "deepgram") == 0 ? MODE_DEEPGRAM : MODE_ELEVENLABS;
  if (mode_name && l.mode == MODE_ELEVENLABS &&
      !g_str_equal (mode_name, "elevenlabs")) {
    g_printerr ("--mode is elevenlabs or deepgram\n");
    return 2;
  }
  l.n_sessions = MAX (1, sessions);
  l.turns = MAX (1, turns);
  l.pause_ms = MAX (0, pause_ms);
  l.seconds = MAX (1, seconds);
  for (guint i = 0; i < 320; i++) {
    gint16 v = (gint16)(8000 * sin (2 * G_PI * 220 * i / 16000.0));
    l.tone[2 * i] = v & 0xff;
    l.tone[2 * i + 1] = (v >> 8) & 0xff;
  }

  fd = g_file_open_tmp ("emu-load-XXXXXX", &port_file, &error);
  if (fd < 0) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  close (fd);
  proc = start_emulator (exe, l.mode, extra, port_file, &error);
  if (!proc) {
    g_printerr ("cannot start %s: %s\n", exe, error->message);
    return 1;
  }
  pid = atoi (g_subprocess_get_identifier (proc));
  for (guint i = 0; i < 400; i++) {
    g_autofree gchar *text = NULL;
    if (g_file_get_contents (port_file, &text, NULL, NULL) && atoi (text) > 0) {
      l.base_ws = g_strdup_printf ("ws://127.0.0.1:%d", atoi (text));
      break;
    }
    g_usleep (25000);
  }
  g_unlink (port_file);
  if (!l.base_ws) {
    g_printerr ("the emulator did not start\n");
    return 1;
  }

  l.loop = g_main_loop_new (NULL, FALSE);
  l.http = soup_session_new_with_options (
      "max-conns", 10000, "max-conns-per-host", 10000, NULL);
  l.sessions = g_new0 (Session, l.n_sessions);
  l.first_audio_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  g_usleep (200000);
  rss0 = proc_status_kib (pid, "VmRSS");

  for (guint i = 0; i < l.n_sessions; i++) {
    l.sessions[i].load = &l;
    l.sessions[i].index = i;
    session_connect (&l, &l.sessions[i]);
  }
  g_main_loop_run (l.loop); /* until every session is open */
  rss_open = proc_status_kib (pid, "VmRSS");
  cpu0 = proc_cpu_s (pid);
  t0 = g_get_monotonic_time ();
  begin_sessions (&l);
  g_main_loop_run (l.loop); /* until every session closed */
  wall = (g_get_monotonic_time () - t0) / 1e6;
  cpu1 = proc_cpu_s (pid);
  hwm = proc_status_kib (pid, "VmHWM");
  if (l.frame_timer)
    g_source_remove (l.frame_timer);

  for (guint i = 0; i < l.n_sessions; i++)
    failed += l.sessions[i].failed;
  g_array_sort (l.first_audio_ms, cmp_double);

  printf ("voiceagent-emulator load: mode %s, %u concurrent sessions",
      l.mode == MODE_ELEVENLABS ? "elevenlabs (tone engine)"
                                : "deepgram (scripted engine)",
      l.n_sessions);
  if (l.mode == MODE_ELEVENLABS)
    printf (", %u replies each, %u ms pause\n", l.turns, l.pause_ms);
  else
    printf (", %u s of real-time audio each\n", l.seconds);
  printf ("  wall time            %.2f s, %u sessions failed\n", wall, failed);
  printf ("  emulator CPU         %.3f s total, %.2f ms per session, "
          "%.2f %% of one core per session\n",
      cpu1 - cpu0, 1000.0 * (cpu1 - cpu0) / l.n_sessions,
      100.0 * (cpu1 - cpu0) / wall / l.n_sessions);
  printf ("  emulator RSS         idle %.1f MiB, %u sessions open %.1f MiB, "
          "peak %.1f MiB\n",
      rss0 / 1024.0, l.n_sessions, rss_open / 1024.0, hwm / 1024.0);
  printf ("  RSS per session      %.1f KiB (open), %.1f KiB (peak)\n",
      (gdouble)(rss_open - MIN (rss0, rss_open)) / l.n_sessions,
      (gdouble)(hwm - MIN (rss0, hwm)) / l.n_sessions);
  if (l.mode == MODE_ELEVENLABS)
    printf ("  first audio          p50 %.1f ms, p95 %.1f ms, max %.1f ms "
            "(%u replies)\n",
        percentile (l.first_audio_ms, 0.5), percentile (l.first_audio_ms, 0.95),
        percentile (l.first_audio_ms, 1.0), l.first_audio_ms->len);
  else {
    guint64 msgs = 0;
    for (guint i = 0; i < l.n_sessions; i++)
      msgs += l.sessions[i].messages;
    printf ("  messages received    %" G_GUINT64_FORMAT " (%.1f per "
            "session)\n",
        msgs, (gdouble)msgs / l.n_sessions);
  }

  for (guint i = 0; i < l.n_sessions; i++) {
    if (l.sessions[i].ws) {
      g_signal_handlers_disconnect_by_data (l.sessions[i].ws, &l.sessions[i]);
      g_object_unref (l.sessions[i].ws);
    }
  }
  g_free (l.sessions);
  g_array_unref (l.first_audio_ms);
  g_object_unref (l.http);
  g_main_loop_unref (l.loop);
  g_free (l.base_ws);
  g_strfreev (extra);
  g_subprocess_send_signal (proc, SIGTERM);
  g_subprocess_wait (proc, NULL, NULL);
  return failed ? 1 : 0;
}

/* voiceagent-emulator: Deepgram live speech-to-text, WebSocket GET /v1/listen.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The protocol as Deepgram documents it (docs/emulator-deepgram.md has the
 * manual):
 *   handshake  auth by `Authorization: Token KEY` / `Bearer JWT` or the
 *              subprotocols `token, KEY` / `bearer, JWT` (answered with
 *              `Sec-WebSocket-Protocol: token`); 401 on a wrong key, 400 on
 *              a bad query; `dg-request-id` header on every answer.
 *   client     binary audio; text {"type":"KeepAlive"|"Finalize"|
 *              "CloseStream"}; an empty binary frame is the legacy
 *              CloseStream.
 *   server     Results, SpeechStarted (vad_events), UtteranceEnd
 *              (interim_results + utterance_end_ms), Metadata then close 1000
 *              after CloseStream; close 1011 "NET-0001" after the idle
 *              timeout (10 s without audio or text), 1008 "DATA-0000" for
 *              audio that cannot be decoded or a text frame that is not JSON.
 *
 * Threads: everything here runs on the main context, except the pocketsphinx
 * engine, which runs on one worker thread per connection (Job queue in,
 * idle sources on the main context out). The scripted engine is cheap and runs inline.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "emulator.h"
#include "stt.h"

#include <string.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_ENDPOINTING_MS 10
#define DEFAULT_MODEL "nova-3"

typedef struct
{
  gchar *text;
  gint64 due_us; /* monotonic; 0 = as soon as its turn comes */
} OutMsg;

typedef enum {
  JOB_AUDIO,
  JOB_FINALIZE,
  JOB_CLOSE_STREAM,
  JOB_STOP,
} JobType;

typedef struct
{
  JobType type;
  GArray *samples; /* JOB_AUDIO: (element-type gint16) 16 kHz */
  gint64 rx_us; /* when the client sent what caused it */
} Job;

typedef struct
{
  gdouble at; /* audio time (s) from which it may be sent */
  gchar *text;
  gboolean metadata; /* held until CloseStream */
} ReplayLine;

/* What the HTTP handler found, handed to the WebSocket callback through the
 * SoupServerMessage. */
typedef struct
{
  gchar *request_id;
  gchar *model;
  SttEncoding encoding;
  guint rate;
  guint channels;
  SttEngineKind engine;
  SttOptions opts; /* opts.script is a reference */
  guint timeout_ms;
  EmuFault fault;
} Setup;

typedef struct _DgConn DgConn;
struct _DgConn
{
  gint ref; /* atomic */

  /* main thread only */
  EmuConfig *config;
  SoupWebsocketConnection *ws;
  Setup *setup;
  gchar *client;
  gchar *created; /* ISO 8601, for Metadata */
  gint64 started_us;
  gint64 last_rx_us;
  gboolean open; /* the WebSocket is open and not closing */
  gboolean closing_stream; /* CloseStream received */
  gboolean close_when_drained; /* Metadata queued: close 1000 once sent */
  gboolean stalled;
  gboolean malformed_sent;
  gboolean finished; /* socket closed and logged */
  gchar *outcome;
  SttDecoder *dec;
  SttResampler *rs;
  GChecksum *sha256;
  guint64 samples_in; /* decoded samples at the decoder's rate */
  guint results;
  GQueue out; /* (element-type OutMsg) */
  guint sent;
  guint flush_source;
  guint idle_source;
  guint fault_source;
  SttSession *stt; /* scripted engine */
  GThread *worker; /* pocketsphinx engine */
  GAsyncQueue *jobs; /* (element-type Job), to the worker */
  GPtrArray *replay; /* (element-type ReplayLine) */
  guint replay_next;
};

typedef struct
{
  DgConn *conn;
  GPtrArray *events; /* (element-type SttEvent) */
  JobType type;
  gint64 rx_us;
  gchar *error; /* the engine could not start */
  gboolean exited; /* the worker is done */
} Delivery;

static EmuConfig *dg_config;
static GList *dg_conns; /* (element-type DgConn) live, main thread */
static SttScript *dg_script; /* from config->stt_script, loaded once */
static gboolean dg_script_loaded;

void emu_deepgram_register (SoupServer *server, EmuConfig *config);

static void conn_forget (DgConn *c);

/* ---------- small helpers ---------- */

static void
setup_free (Setup *s)
{
  g_free (s->request_id);
  g_free (s->model);
  stt_script_unref (s->opts.script);
  emu_fault_clear (&s->fault);
  g_free (s);
}

static void
job_free (Job *j)
{
  if (j->samples)
    g_array_unref (j->samples);
  g_free (j);
}

static void
replay_line_free (ReplayLine *l)
{
  g_free (l->text);
  g_free (l);
}

static DgConn *
conn_ref (DgConn *c)
{
  g_atomic_int_inc (&c->ref);
  return c;
}

static void
conn_unref (DgConn *c)
{
  OutMsg *m;

  if (!g_atomic_int_dec_and_test (&c->ref))
    return;
  g_clear_object (&c->ws);
  setup_free (c->setup);
  g_free (c->client);
  g_free (c->created);
  g_free (c->outcome);
  stt_decoder_free (c->dec);
  stt_resampler_free (c->rs);
  g_checksum_free (c->sha256);
  while ((m = g_queue_pop_head (&c->out))) {
    g_free (m->text);
    g_free (m);
  }
  stt_session_free (c->stt);
  if (c->jobs)
    g_async_queue_unref (c->jobs);
  if (c->replay)
    g_ptr_array_unref (c->replay);
  g_free (c);
}

static void
json_string (GString *s, const gchar *v)
{
  g_string_append_c (s, '"');
  for (const gchar *p = v; *p; p++) {
    guchar ch = *p;
    if (ch == '"' || ch == '\\')
      g_string_append_printf (s, "\\%c", ch);
    else if (ch < 0x20)
      g_string_append_printf (s, "\\u%04x", ch);
    else
      g_string_append_c (s, ch);
  }
  g_string_append_c (s, '"');
}

/* Seconds with millisecond precision, always with a decimal point, as
 * Deepgram writes them ("start":0.0, "duration":1.53). */
static void
json_seconds (GString *s, gdouble v)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
  gsize len;

  g_ascii_formatd (buf, sizeof buf, "%.3f", v);
  len = strlen (buf);
  while (len > 2 && buf[len - 1] == '0' && buf[len - 2] != '.')
    buf[--len] = '\0';
  g_string_append (s, buf);
}

static void
json_number (GString *s, gdouble v, const gchar *format)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append (s, g_ascii_formatd (buf, sizeof buf, format, v));
}

/* A stable UUID-looking string for a model name. */
static gchar *
model_uuid (const gchar *model)
{
  g_autofree gchar *h =
      g_compute_checksum_for_string (G_CHECKSUM_SHA256, model, -1);

  return g_strdup_printf (
      "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
}

static void
append_model_info (GString *s, Setup *st)
{
  g_string_append (s, "{\"name\":");
  {
    g_autofree gchar *name = g_strconcat ("general-", st->model, NULL);
    json_string (s, name);
  }
  g_string_append (s, ",\"version\":");
  json_string (s,
      st->engine == STT_ENGINE_POCKETSPHINX ? "emulator.pocketsphinx"
                                            : "emulator.scripted");
  g_string_append (s, ",\"arch\":");
  json_string (s, st->model);
  g_string_append_c (s, '}');
}

/* ---------- messages ---------- */

static gchar *
result_json (DgConn *c, const SttEvent *ev)
{
  GString *s = g_string_new ("{\"type\":\"Results\",\"channel_index\":[0,1]");
  g_autofree gchar *uuid = model_uuid (c->setup->model);

  g_string_append (s, ",\"duration\":");
  json_seconds (s, ev->duration);
  g_string_append (s, ",\"start\":");
  json_seconds (s, ev->start);
  g_string_append_printf (s, ",\"is_final\":%s,\"speech_final\":%s",
      ev->is_final ? "true" : "false", ev->speech_final ? "true" : "false");
  g_string_append (s, ",\"channel\":{\"alternatives\":[{\"transcript\":");
  json_string (s, ev->transcript);
  g_string_append (s, ",\"confidence\":");
  json_number (s, ev->confidence, "%.4f");
  g_string_append (s, ",\"words\":[");
  for (guint i = 0; ev->words && i < ev->words->len; i++) {
    const SttWord *w = &g_array_index (ev->words, SttWord, i);
    if (i)
      g_string_append_c (s, ',');
    g_string_append (s, "{\"word\":");
    json_string (s, w->word);
    g_string_append (s, ",\"start\":");
    json_seconds (s, w->start);
    g_string_append (s, ",\"end\":");
    json_seconds (s, w->end);
    g_string_append (s, ",\"confidence\":");
    json_number (s, w->confidence, "%.4f");
    if (w->punctuated_word) {
      g_string_append (s, ",\"punctuated_word\":");
      json_string (s, w->punctuated_word);
    }
    g_string_append_c (s, '}');
  }
  g_string_append (s, "]}]},\"metadata\":{\"request_id\":");
  json_string (s, c->setup->request_id);
  g_string_append (s, ",\"model_info\":");
  append_model_info (s, c->setup);
  g_string_append (s, ",\"model_uuid\":");
  json_string (s, uuid);
  g_string_append_printf (
      s, "},\"from_finalize\":%s}", ev->from_finalize ? "true" : "false");
  return g_string_free (s, FALSE);
}

static gchar *
event_json (const SttEvent *ev)
{
  GString *s = g_string_new (NULL);

  if (ev->type == STT_EVENT_SPEECH_STARTED) {
    g_string_append (s,
        "{\"type\":\"SpeechStarted\",\"channel\":[0,1],"
        "\"timestamp\":");
    json_seconds (s, ev->timestamp);
  } else {
    g_string_append (s,
        "{\"type\":\"UtteranceEnd\",\"channel\":[0,1],"
        "\"last_word_end\":");
    json_seconds (s, ev->timestamp);
  }
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static gdouble
audio_seconds (DgConn *c)
{
  guint rate = c->dec ? stt_decoder_get_rate (c->dec) : 0;

  return rate ? (gdouble)c->samples_in / rate : 0;
}

static gchar *
metadata_json (DgConn *c)
{
  GString *s =
      g_string_new ("{\"type\":\"Metadata\","
                    "\"transaction_key\":\"deprecated\",\"request_id\":");
  g_autofree gchar *uuid = model_uuid (c->setup->model);

  json_string (s, c->setup->request_id);
  g_string_append (s, ",\"sha256\":");
  json_string (s, g_checksum_get_string (c->sha256));
  g_string_append (s, ",\"created\":");
  json_string (s, c->created);
  g_string_append (s, ",\"duration\":");
  json_seconds (s, audio_seconds (c));
  g_string_append_printf (
      s, ",\"channels\":%u,\"models\":[", c->setup->channels);
  json_string (s, uuid);
  g_string_append (s, "],\"model_info\":{");
  json_string (s, uuid);
  g_string_append_c (s, ':');
  append_model_info (s, c->setup);
  g_string_append (s, "}}");
  return g_string_free (s, FALSE);
}

/* ---------- closing ---------- */

static void set_outcome (DgConn *c, const gchar *format, ...)
    G_GNUC_PRINTF (2, 3);

static void
set_outcome (DgConn *c, const gchar *format, ...)
{
  va_list ap;

  if (c->outcome)
    return;
  va_start (ap, format);
  c->outcome = g_strdup_vprintf (format, ap);
  va_end (ap);
}

static void
stop_timers (DgConn *c)
{
  g_clear_handle_id (&c->flush_source, g_source_remove);
  g_clear_handle_id (&c->idle_source, g_source_remove);
  g_clear_handle_id (&c->fault_source, g_source_remove);
}

/* Starts the closing handshake with @code and @reason; what is still queued
 * is dropped. */
static void
close_with (DgConn *c, gushort code, const gchar *reason)
{
  if (!c->open)
    return;
  c->open = FALSE;
  stop_timers (c);
  set_outcome (c, "%u %s", code, reason ? reason : "");
  if (soup_websocket_connection_get_state (c->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (c->ws, code, reason);
}

/* ---------- sending ---------- */

static gboolean flush_cb (gpointer data);

static void
send_now (DgConn *c, const gchar *text)
{
  EmuFault *f = &c->setup->fault;

  if (f->malformed_frame && !c->malformed_sent) {
    c->malformed_sent = TRUE;
    soup_websocket_connection_send_text (
        c->ws, "{\"type\":\"Results\",\"channel_index\":[0,");
    emu_record_event ("deepgram", "malformed-frame", c->setup->request_id);
  }
  soup_websocket_connection_send_text (c->ws, text);
  c->sent++;
  if (f->close_after_messages >= 0 &&
      c->sent >= (guint)f->close_after_messages) {
    emu_record_event ("deepgram", "fault-close", c->setup->request_id);
    close_with (c, f->close_code, f->close_reason);
  }
}

/* Sends what is due, in order; a message not yet due holds back the ones
 * behind it. */
static void
flush (DgConn *c)
{
  gint64 now = g_get_monotonic_time ();
  OutMsg *m;

  g_clear_handle_id (&c->flush_source, g_source_remove);
  while (c->open && (m = g_queue_peek_head (&c->out))) {
    if (m->due_us > now) {
      c->flush_source = g_timeout_add_full (G_PRIORITY_DEFAULT,
          (m->due_us - now + 999) / 1000, flush_cb, c, NULL);
      return;
    }
    g_queue_pop_head (&c->out);
    send_now (c, m->text);
    g_free (m->text);
    g_free (m);
  }
  if (c->open && c->close_when_drained && g_queue_is_empty (&c->out)) {
    set_outcome (c, "1000 CloseStream");
    close_with (c, 1000, NULL);
  }
}

static gboolean
flush_cb (gpointer data)
{
  DgConn *c = data;

  c->flush_source = 0;
  flush (c);
  return G_SOURCE_REMOVE;
}

/* Queues @text (taken) to be sent at @due_us or after what is before it. */
static void
enqueue (DgConn *c, gchar *text, gint64 due_us)
{
  OutMsg *m;

  if (c->stalled || !c->open) {
    g_free (text);
    return;
  }
  m = g_new (OutMsg, 1);
  m->text = text;
  m->due_us = due_us;
  g_queue_push_tail (&c->out, m);
  if (!c->flush_source)
    flush (c);
}

/* Turns engine events into messages; a final result waits for the injected
 * STT latency, counted from when the audio that ended it arrived. */
static void
enqueue_events (DgConn *c, GPtrArray *events, gint64 rx_us)
{
  for (guint i = 0; i < events->len; i++) {
    SttEvent *ev = events->pdata[i];
    gint64 due = 0;
    gchar *text;

    if (ev->type == STT_EVENT_RESULT) {
      text = result_json (c, ev);
      if (ev->is_final) {
        due = rx_us + (gint64)c->config->latency.stt_final_ms * 1000;
        c->results++;
      }
    } else if (ev->type == STT_EVENT_UTTERANCE_END ||
        c->setup->opts.vad_events) {
      text = event_json (ev);
    } else {
      continue;
    }
    enqueue (c, text, due);
  }
}

static void
finish_close_stream (DgConn *c)
{
  if (c->replay) {
    for (; c->replay_next < c->replay->len; c->replay_next++) {
      ReplayLine *l = c->replay->pdata[c->replay_next];
      if (!l->metadata)
        enqueue (c, g_strdup (l->text), 0);
    }
  }
  {
    gboolean replayed_metadata = FALSE;
    for (guint i = 0; c->replay && i < c->replay->len; i++) {
      ReplayLine *l = c->replay->pdata[i];
      if (l->metadata) {
        enqueue (c, g_strdup (l->text), 0);
        replayed_metadata = TRUE;
      }
    }
    if (!replayed_metadata)
      enqueue (c, metadata_json (c), 0);
  }
  c->close_when_drained = TRUE;
  flush (c);
}

/* ---------- the pocketsphinx worker ---------- */

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  if (d->events)
    g_ptr_array_unref (d->events);
  g_free (d->error);
  conn_unref (d->conn);
  g_free (d);
}

static gboolean
deliver_cb (gpointer data)
{
  Delivery *d = data;
  DgConn *c = d->conn;

  if (d->exited) {
    if (c->worker) {
      g_thread_join (c->worker);
      c->worker = NULL;
      if (c->finished)
        conn_forget (c);
    }
    return G_SOURCE_REMOVE;
  }
  if (!c->open)
    return G_SOURCE_REMOVE;
  if (d->error) {
    g_printerr ("voiceagent-emulator: deepgram: %s\n", d->error);
    emu_record_event ("deepgram", "engine-error", d->error);
    close_with (c, 1011, "NET-0000");
    return G_SOURCE_REMOVE;
  }
  if (d->events)
    enqueue_events (c, d->events, d->rx_us);
  if (d->type == JOB_CLOSE_STREAM)
    finish_close_stream (c);
  return G_SOURCE_REMOVE;
}

static void
deliver (DgConn *c, JobType type, GPtrArray *events, gint64 rx_us, gchar *error,
    gboolean exited)
{
  Delivery *d = g_new0 (Delivery, 1);
  GSource *src;

  d->conn = conn_ref (c);
  d->type = type;
  d->events = events;
  d->rx_us = rx_us;
  d->error = error;
  d->exited = exited;
  /* Not g_main_context_invoke(): when the main thread is not iterating (at
   * shutdown, while it joins this thread) that would run deliver_cb here. */
  src = g_idle_source_new ();
  g_source_set_priority (src, G_PRIORITY_DEFAULT);
  g_source_set_callback (src, deliver_cb, d, delivery_free);
  g_source_attach (src, NULL);
  g_source_unref (src);
}

/* Worker thread: owns the pocketsphinx session; reads only the immutable
 * c->setup and c->jobs. Holds a reference on @data until it exits. */
static gpointer
worker_main (gpointer data)
{
  DgConn *c = data;
  g_autoptr (GError) error = NULL;
  SttSession *s =
      stt_session_new (STT_ENGINE_POCKETSPHINX, 16000, &c->setup->opts, &error);
  Job *j;

  if (!s)
    deliver (c, JOB_AUDIO, NULL, 0, g_strdup (error->message), FALSE);
  while (s && (j = g_async_queue_pop (c->jobs))) {
    JobType type = j->type;
    GPtrArray *events;

    if (type == JOB_STOP) {
      job_free (j);
      break;
    }
    events = stt_events_new ();
    if (type == JOB_AUDIO)
      stt_session_push (
          s, (const gint16 *)j->samples->data, j->samples->len, events);
    else
      stt_session_finalize (s, type == JOB_FINALIZE, events);
    if (events->len || type != JOB_AUDIO)
      deliver (c, type, events, j->rx_us, NULL, FALSE);
    else
      g_ptr_array_unref (events);
    job_free (j);
  }
  stt_session_free (s);
  deliver (c, JOB_STOP, NULL, 0, NULL, TRUE);
  conn_unref (c);
  return NULL;
}

static void
push_job (DgConn *c, JobType type, GArray *samples, gint64 rx_us)
{
  Job *j = g_new0 (Job, 1);

  j->type = type;
  j->samples = samples;
  j->rx_us = rx_us;
  if (type == JOB_STOP)
    g_async_queue_push_front (c->jobs, j);
  else
    g_async_queue_push (c->jobs, j);
}

static void
stop_worker (DgConn *c, gboolean wait)
{
  if (!c->worker)
    return;
  if (c->jobs)
    push_job (c, JOB_STOP, NULL, 0);
  if (wait) {
    g_thread_join (c->worker);
    c->worker = NULL;
  }
}

/* ---------- replay ---------- */

/* Reads the replay file: one JSON message per line. A line is released once
 * the client has sent audio up to its end (Results: start + duration,
 * SpeechStarted: timestamp, UtteranceEnd: last_word_end; others: with the
 * line before); Metadata lines wait for CloseStream. */
static GPtrArray *
load_replay (const gchar *path, GError **error)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *out;
  gdouble at = 0;

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  out = g_ptr_array_new_with_free_func ((GDestroyNotify)replay_line_free);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    g_autoptr (JsonParser) p = json_parser_new ();
    ReplayLine *l;
    JsonObject *o;
    const gchar *type;

    g_strstrip (lines[i]);
    if (!lines[i][0])
      continue;
    if (!json_parser_load_from_data (p, lines[i], -1, NULL) ||
        !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
          "%s:%u: not a JSON object", path, i + 1);
      g_ptr_array_unref (out);
      return NULL;
    }
    o = json_node_get_object (json_parser_get_root (p));
    type = json_object_get_string_member_with_default (o, "type", "");
    l = g_new0 (ReplayLine, 1);
    l->text = g_strdup (lines[i]);
    if (g_str_equal (type, "Results"))
      at = json_object_get_double_member_with_default (o, "start", at) +
          json_object_get_double_member_with_default (o, "duration", 0);
    else if (g_str_equal (type, "SpeechStarted"))
      at = json_object_get_double_member_with_default (o, "timestamp", at);
    else if (g_str_equal (type, "UtteranceEnd"))
      at = MAX (at,
          json_object_get_double_member_with_default (o, "last_word_end", at));
    l->metadata = g_str_equal (type, "Metadata");
    l->at = at;
    g_ptr_array_add (out, l);
  }
  return out;
}

static void
replay_release (DgConn *c)
{
  gdouble now = audio_seconds (c);

  for (; c->replay_next < c->replay->len; c->replay_next++) {
    ReplayLine *l = c->replay->pdata[c->replay_next];
    if (l->at > now + 1e-6)
      break;
    if (!l->metadata)
      enqueue (c, g_strdup (l->text), 0);
  }
}

/* ---------- receiving ---------- */

static void
data_error (DgConn *c, const gchar *what)
{
  emu_record_event ("deepgram", "data-error", what);
  set_outcome (c, "1008 DATA-0000 (%s)", what);
  close_with (c, 1008, "DATA-0000");
}

/* Scripted sessions start with the first audio, when the rate is known (a
 * WAV header may be what tells it). */
static void
ensure_scripted (DgConn *c, guint rate)
{
  if (c->stt || c->replay || c->setup->engine != STT_ENGINE_SCRIPTED)
    return;
  c->stt = stt_session_new (
      STT_ENGINE_SCRIPTED, rate ? rate : 16000, &c->setup->opts, NULL);
}

static void
handle_audio (DgConn *c, GBytes *bytes, gint64 now)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  g_autoptr (GArray) mono = g_array_new (FALSE, FALSE, sizeof (gint16));
  guint rate;

  if (c->closing_stream)
    return;
  g_checksum_update (c->sha256, data, len);
  if (!stt_decoder_push (c->dec, data, len, mono)) {
    data_error (c, "undecodable audio");
    return;
  }
  rate = stt_decoder_get_rate (c->dec);
  c->samples_in += mono->len;
  if (mono->len == 0)
    return;
  ensure_scripted (c, rate);

  if (c->replay) {
    replay_release (c);
  } else if (c->stt) {
    g_autoptr (GPtrArray) events = stt_events_new ();
    stt_session_push (c->stt, (const gint16 *)mono->data, mono->len, events);
    enqueue_events (c, events, now);
  } else if (c->jobs) {
    GArray *pcm16k = g_array_sized_new (
        FALSE, FALSE, sizeof (gint16), mono->len * 16000 / rate + 16);
    if (!c->rs)
      c->rs = stt_resampler_new (rate, 16000);
    stt_resampler_push (c->rs, (const gint16 *)mono->data, mono->len, pcm16k);
    push_job (c, JOB_AUDIO, pcm16k, now);
  }
}

static void
handle_finalize (DgConn *c, gboolean close_stream, gint64 now)
{
  if (c->closing_stream)
    return;
  if (close_stream) {
    /* from now on the client waits for us: no NET-0001 */
    c->closing_stream = TRUE;
    g_clear_handle_id (&c->idle_source, g_source_remove);
  }

  /* before any audio a WAV stream's rate is unknown: a throw-away session
   * answers the Finalize (an empty result) */
  if (stt_decoder_get_rate (c->dec))
    ensure_scripted (c, stt_decoder_get_rate (c->dec));
  if (c->replay) {
    if (close_stream)
      finish_close_stream (c);
  } else if (c->stt || c->setup->engine == STT_ENGINE_SCRIPTED) {
    g_autoptr (GPtrArray) events = stt_events_new ();
    SttSession *s = c->stt
        ? c->stt
        : stt_session_new (STT_ENGINE_SCRIPTED, 16000, &c->setup->opts, NULL);
    stt_session_finalize (s, !close_stream, events);
    if (s != c->stt)
      stt_session_free (s);
    enqueue_events (c, events, now);
    if (close_stream)
      finish_close_stream (c);
  } else if (c->jobs) {
    push_job (c, close_stream ? JOB_CLOSE_STREAM : JOB_FINALIZE, NULL, now);
  } else if (close_stream) {
    finish_close_stream (c);
  }
}

/* A text frame that is not a JSON object with a "type": Deepgram answers
 * with an Error message; the emulator then closes with DATA-0000. */
static void
bad_text (DgConn *c, const gchar *why)
{
  GString *s = g_string_new ("{\"type\":\"Error\",\"variant\":\"SchemaError\","
                             "\"description\":");
  g_autofree gchar *d = g_strdup_printf ("Could not deserialize last text "
                                         "message: %s",
      why);

  json_string (s, d);
  g_string_append (s, ",\"message\":\"\"}");
  soup_websocket_connection_send_text (c->ws, s->str);
  g_string_free (s, TRUE);
  data_error (c, "text frame is not a control message");
}

static void
handle_text (DgConn *c, GBytes *bytes, gint64 now)
{
  gsize len;
  const gchar *data = g_bytes_get_data (bytes, &len);
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *o;
  const gchar *type;

  if (!json_parser_load_from_data (p, data, len, &error)) {
    bad_text (c, error->message);
    return;
  }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
    bad_text (c, "expected an object");
    return;
  }
  o = json_node_get_object (json_parser_get_root (p));
  type = json_object_get_string_member_with_default (o, "type", NULL);
  if (!type) {
    bad_text (c, "missing field `type`");
    return;
  }
  if (g_str_equal (type, "KeepAlive")) {
    emu_record_event ("deepgram", "keepalive", c->setup->request_id);
  } else if (g_str_equal (type, "Finalize")) {
    emu_record_event ("deepgram", "finalize", c->setup->request_id);
    handle_finalize (c, FALSE, now);
  } else if (g_str_equal (type, "CloseStream")) {
    emu_record_event ("deepgram", "close-stream", c->setup->request_id);
    handle_finalize (c, TRUE, now);
  } else {
    g_autofree gchar *why = g_strdup_printf ("unknown variant `%s`", type);
    bad_text (c, why);
  }
}

static void
on_message (
    SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  DgConn *c = data;
  gint64 now = g_get_monotonic_time ();

  if (!c->open || c->stalled)
    return;
  c->last_rx_us = now;
  if (type == SOUP_WEBSOCKET_DATA_BINARY) {
    if (g_bytes_get_size (message) == 0) {
      /* the legacy way to close a stream: an empty binary frame */
      emu_record_event ("deepgram", "close-stream", c->setup->request_id);
      handle_finalize (c, TRUE, now);
    } else {
      handle_audio (c, message, now);
    }
  } else {
    handle_text (c, message, now);
  }
}

/* ---------- timers ---------- */

static gboolean
idle_cb (gpointer data)
{
  DgConn *c = data;
  gint64 idle_us = g_get_monotonic_time () - c->last_rx_us;
  gint64 limit_us = (gint64)c->setup->timeout_ms * 1000;

  c->idle_source = 0;
  if (idle_us < limit_us) {
    c->idle_source =
        g_timeout_add ((limit_us - idle_us) / 1000 + 1, idle_cb, c);
    return G_SOURCE_REMOVE;
  }
  emu_record_event ("deepgram", "timeout", c->setup->request_id);
  set_outcome (
      c, "1011 NET-0001 (no audio or message for %u ms)", c->setup->timeout_ms);
  close_with (c, 1011, "NET-0001");
  return G_SOURCE_REMOVE;
}

static gboolean
fault_close_cb (gpointer data)
{
  DgConn *c = data;
  EmuFault *f = &c->setup->fault;

  c->fault_source = 0;
  emu_record_event ("deepgram", "fault-close", c->setup->request_id);
  close_with (c, f->close_code, f->close_reason);
  return G_SOURCE_REMOVE;
}

/* ---------- connection lifecycle ---------- */

/* Drops the list's reference: the connection is closed and its worker (if
 * any) joined. */
static void
conn_forget (DgConn *c)
{
  dg_conns = g_list_remove (dg_conns, c);
  conn_unref (c);
}

/* The socket closed: logs the connection's line. It stays on dg_conns until
 * its worker has ended too, so shutdown can join every worker. */
static void
conn_finish (DgConn *c)
{
  gchar *line;

  if (c->finished)
    return;
  c->open = FALSE;
  stop_timers (c);
  stop_worker (c, FALSE);
  g_signal_handlers_disconnect_by_data (c->ws, c);
  line = g_strdup_printf ("%s %s, %.2f s audio, %u final results",
      c->setup->request_id, c->outcome ? c->outcome : "closed by client",
      audio_seconds (c), c->results);
  emu_log_connection ("deepgram", c->client, c->started_us, line);
  g_free (line);
  c->finished = TRUE;
  if (!c->worker)
    conn_forget (c);
}

static void
on_closed (SoupWebsocketConnection *ws, gpointer data)
{
  DgConn *c = data;

  if (!c->outcome) {
    gushort code = soup_websocket_connection_get_close_code (ws);
    set_outcome (c, "closed by client (%u)", code);
  }
  conn_finish (c);
}

static void
on_ws (SoupServer *server, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *ws, gpointer user_data)
{
  Setup *setup = g_object_steal_data (G_OBJECT (msg), "deepgram-setup");
  DgConn *c;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  if (!setup) {
    soup_websocket_connection_close (ws, 1011, "NET-0000");
    return;
  }
  c = g_new0 (DgConn, 1);
  c->ref = 1;
  c->config = dg_config;
  c->ws = g_object_ref (ws);
  c->setup = setup;
  c->client = emu_client_address (msg);
  c->created = g_date_time_format_iso8601 (now);
  c->started_us = c->last_rx_us = g_get_monotonic_time ();
  c->open = TRUE;
  c->stalled = setup->fault.stall;
  c->dec = stt_decoder_new (setup->encoding, setup->rate, setup->channels);
  c->sha256 = g_checksum_new (G_CHECKSUM_SHA256);
  g_queue_init (&c->out);
  dg_conns = g_list_prepend (dg_conns, c);

  g_object_set (ws, "max-incoming-payload-size", (guint64)0, NULL);
  g_signal_connect (ws, "message", G_CALLBACK (on_message), c);
  g_signal_connect (ws, "closed", G_CALLBACK (on_closed), c);
  emu_record_event ("deepgram", "open", setup->request_id);

  if (c->stalled) {
    emu_record_event ("deepgram", "stall", setup->request_id);
    return;
  }
  c->idle_source = g_timeout_add (setup->timeout_ms, idle_cb, c);
  if (setup->fault.close_after_ms >= 0)
    c->fault_source =
        g_timeout_add (setup->fault.close_after_ms, fault_close_cb, c);

  if (dg_config->deepgram_replay) {
    g_autoptr (GError) error = NULL;
    c->replay = load_replay (dg_config->deepgram_replay, &error);
    if (!c->replay) {
      g_printerr ("voiceagent-emulator: deepgram replay: %s\n", error->message);
      close_with (c, 1011, "NET-0000");
    }
  } else if (setup->engine == STT_ENGINE_POCKETSPHINX) {
    c->jobs = g_async_queue_new_full ((GDestroyNotify)job_free);
    c->worker = g_thread_new ("deepgram-stt", worker_main, conn_ref (c));
  }
}

/* ---------- the handshake ---------- */

static gchar *
error_body (const gchar *code, const gchar *message, const gchar *id)
{
  GString *s = g_string_new ("{\"err_code\":");

  json_string (s, code);
  g_string_append (s, ",\"err_msg\":");
  json_string (s, message);
  g_string_append (s, ",\"request_id\":");
  json_string (s, id);
  g_string_append_c (s, '}');
  return g_string_free (s, FALSE);
}

static void
reject (SoupServerMessage *msg, guint status, const gchar *code,
    const gchar *message, const gchar *id)
{
  g_autofree gchar *body = error_body (code, message, id);
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (h, "dg-error", message);
  emu_send_json_error (msg, status, body);
}

/* The key a request presents: Authorization "Token K" / "Bearer K", else the
 * subprotocol pair "token, K" / "bearer, K". */
static gchar *
presented_key (SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const gchar *auth = soup_message_headers_get_one (h, "Authorization");
  const gchar *proto =
      soup_message_headers_get_one (h, "Sec-WebSocket-Protocol");

  if (auth) {
    if (g_ascii_strncasecmp (auth, "Token ", 6) == 0)
      return g_strstrip (g_strdup (auth + 6));
    if (g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
      return g_strstrip (g_strdup (auth + 7));
    return NULL;
  }
  if (proto) {
    g_auto (GStrv) parts = g_strsplit (proto, ",", 3);
    if (parts[0] && parts[1]) {
      g_strstrip (parts[0]);
      if (g_ascii_strcasecmp (parts[0], "token") == 0 ||
          g_ascii_strcasecmp (parts[0], "bearer") == 0)
        return g_strstrip (g_strdup (parts[1]));
    }
  }
  return NULL;
}

static gboolean
parse_bool (
    GHashTable *q, const gchar *name, gboolean def, gboolean *out, gchar **err)
{
  const gchar *v = g_hash_table_lookup (q, name);

  if (!v) {
    *out = def;
    return TRUE;
  }
  if (g_ascii_strcasecmp (v, "true") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (v, "false") == 0)
    *out = FALSE;
  else {
    *err = g_strdup_printf ("Invalid query string. Failed to parse `%s`: "
                            "expected `true` or `false`, got `%s`.",
        name, v);
    return FALSE;
  }
  return TRUE;
}

static gboolean
parse_uint_param (GHashTable *q, const gchar *name, guint def, guint max,
    guint *out, gchar **err)
{
  const gchar *v = g_hash_table_lookup (q, name);
  guint64 n;

  if (!v) {
    *out = def;
    return TRUE;
  }
  if (!g_ascii_string_to_unsigned (v, 10, 0, max, &n, NULL)) {
    *err = g_strdup_printf ("Invalid query string. Failed to parse `%s`: "
                            "expected an integer, got `%s`.",
        name, v);
    return FALSE;
  }
  *out = n;
  return TRUE;
}

/* Reads the query into @st; FALSE with @err (a Deepgram-style message) when
 * a parameter is bad. */
static gboolean
parse_query (GHashTable *q, Setup *st, gchar **err)
{
  const gchar *v;
  gboolean punctuate, smart_format;

  v = g_hash_table_lookup (q, "model");
  st->model = g_strdup (v && *v ? v : DEFAULT_MODEL);

  v = g_hash_table_lookup (q, "encoding");
  if (!stt_encoding_parse (v, &st->encoding)) {
    *err = g_strdup_printf ("Unsupported encoding `%s`: the emulator decodes "
                            "linear16, mulaw, alaw, or a WAV container.",
        v);
    return FALSE;
  }
  if (!parse_uint_param (q, "sample_rate", 0, 192000, &st->rate, err) ||
      !parse_uint_param (q, "channels", 1, 8, &st->channels, err))
    return FALSE;
  if (st->encoding != STT_ENCODING_AUTO && st->rate == 0) {
    if (g_hash_table_lookup (q, "sample_rate")) {
      *err = g_strdup ("Invalid query string. `sample_rate` must be "
                       "positive.");
      return FALSE;
    }
    *err = g_strdup ("Invalid query string. `sample_rate` is required when "
                     "`encoding` is set.");
    return FALSE;
  }
  if (st->encoding != STT_ENCODING_AUTO && st->rate < 4000) {
    *err = g_strdup_printf ("Invalid query string. Unsupported sample_rate "
                            "%u.",
        st->rate);
    return FALSE;
  }
  if (st->channels == 0) {
    *err = g_strdup ("Invalid query string. `channels` must be positive.");
    return FALSE;
  }

  v = g_hash_table_lookup (q, "endpointing");
  if (!v || g_ascii_strcasecmp (v, "true") == 0)
    st->opts.endpointing_ms = DEFAULT_ENDPOINTING_MS;
  else if (g_ascii_strcasecmp (v, "false") == 0)
    st->opts.endpointing_ms = 0;
  else if (!parse_uint_param (
               q, "endpointing", 0, 600000, &st->opts.endpointing_ms, err))
    return FALSE;

  if (!parse_uint_param (
          q, "utterance_end_ms", 0, 600000, &st->opts.utterance_end_ms, err) ||
      !parse_bool (
          q, "interim_results", FALSE, &st->opts.interim_results, err) ||
      !parse_bool (q, "vad_events", FALSE, &st->opts.vad_events, err) ||
      !parse_bool (q, "punctuate", FALSE, &punctuate, err) ||
      !parse_bool (q, "smart_format", FALSE, &smart_format, err))
    return FALSE;
  st->opts.punctuate = punctuate || smart_format;

  /* emulator extras (docs/emulator-deepgram.md) */
  v = g_hash_table_lookup (q, "emu_engine");
  if (v && !stt_engine_parse (v, &st->engine)) {
    *err = g_strdup_printf ("Unknown emu_engine `%s`.", v);
    return FALSE;
  }
  v = g_hash_table_lookup (q, "emu_transcript");
  if (v) {
    stt_script_unref (st->opts.script);
    st->opts.script = stt_script_new_from_string (v);
  }
  if (!parse_uint_param (
          q, "emu_timeout_ms", st->timeout_ms, 3600000, &st->timeout_ms, err))
    return FALSE;
  if (st->timeout_ms == 0)
    st->timeout_ms = DEFAULT_TIMEOUT_MS;
  return TRUE;
}

static SttScript *
config_script (void)
{
  if (!dg_script_loaded && dg_config->stt_script) {
    g_autoptr (GError) error = NULL;
    dg_script = stt_script_new_from_file (dg_config->stt_script, &error);
    if (!dg_script)
      g_printerr ("voiceagent-emulator: --stt-script: %s\n", error->message);
  }
  dg_script_loaded = TRUE;
  return dg_script;
}

static void
on_http (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *unused, gpointer user_data)
{
  Setup *st = g_new0 (Setup, 1);
  SoupMessageHeaders *rh = soup_server_message_get_response_headers (msg);
  const gchar *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) q = NULL;
  g_autofree gchar *key = NULL;
  g_autofree gchar *client = emu_client_address (msg);
  gchar *err = NULL;
  SttScript *script;
  gint64 started = g_get_monotonic_time ();

  st->request_id = g_uuid_string_random ();
  emu_fault_for_connection ("deepgram", msg, &st->fault);
  soup_message_headers_replace (rh, "dg-request-id", st->request_id);

  if (st->fault.http_status) {
    g_autofree gchar *status = g_strdup_printf ("%u", st->fault.http_status);
    if (st->fault.retry_after_s) {
      g_autofree gchar *ra = g_strdup_printf ("%u", st->fault.retry_after_s);
      soup_message_headers_replace (rh, "Retry-After", ra);
    }
    reject (msg, st->fault.http_status,
        st->fault.http_status == 429 ? "TOO_MANY_REQUESTS"
                                     : "INTERNAL_SERVER_ERROR",
        "Injected by voiceagent-emulator.", st->request_id);
    emu_log_connection ("deepgram", client, started, status);
    setup_free (st);
    return;
  }

  key = presented_key (msg);
  if (!emu_key_matches (key, dg_config->deepgram_key)) {
    reject (msg, SOUP_STATUS_UNAUTHORIZED, "INVALID_AUTH",
        "Invalid credentials.", st->request_id);
    emu_record_event ("deepgram", "unauthorized", st->request_id);
    emu_log_connection ("deepgram", client, started, "401 Invalid credentials");
    setup_free (st);
    return;
  }

  q = query ? g_uri_parse_params (query, -1, "&", G_URI_PARAMS_WWW_FORM, NULL)
            : NULL;
  if (!q)
    q = g_hash_table_new (g_str_hash, g_str_equal);
  if (!stt_engine_parse (dg_config->stt_engine, &st->engine))
    st->engine = STT_ENGINE_POCKETSPHINX;
  script = config_script ();
  st->opts.script = script ? stt_script_ref (script) : NULL;
  st->timeout_ms = dg_config->deepgram_timeout_ms
      ? dg_config->deepgram_timeout_ms
      : DEFAULT_TIMEOUT_MS;
  if (!parse_query (q, st, &err)) {
    g_autofree gchar *line = g_strdup_printf ("400 %s", err);
    reject (msg, SOUP_STATUS_BAD_REQUEST, "Bad Request", err, st->request_id);
    emu_log_connection ("deepgram", client, started, line);
    g_free (err);
    setup_free (st);
    return;
  }
  /* status 0: libsoup goes on with the WebSocket handshake */
  g_object_set_data_full (
      G_OBJECT (msg), "deepgram-setup", st, (GDestroyNotify)setup_free);
}

static void
shutdown_cb (gpointer data)
{
  while (dg_conns) {
    DgConn *c = dg_conns->data;
    close_with (c, 1001, NULL);
    stop_worker (c, TRUE);
    if (c->finished) {
      conn_forget (c);
    } else {
      set_outcome (c, "1001 emulator shutting down");
      conn_finish (c);
    }
  }
  g_clear_pointer (&dg_script, stt_script_unref);
  stt_pocketsphinx_shutdown ();
}

void
emu_deepgram_register (SoupServer *server, EmuConfig *config)
{
  static const gchar *protocols[] = { "token", "bearer", NULL };

  dg_config = config;
  config_script (); /* a bad --stt-script is reported at start-up */
  if (g_strcmp0 (config->stt_engine, "pocketsphinx") == 0 &&
      !config->deepgram_replay)
    stt_pocketsphinx_preload (config->stt_preload);
  soup_server_add_handler (server, "/v1/listen", on_http, NULL, NULL);
  soup_server_add_websocket_handler (
      server, "/v1/listen", NULL, (gchar **)protocols, on_ws, NULL, NULL);
  emu_at_shutdown (shutdown_cb, NULL);
}

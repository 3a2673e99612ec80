/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:gstvoiceclient
 * @title: GstVoiceClient
 *
 * See gstvoiceclient.h for the contract. Threading: one process-wide I/O
 * thread runs a GMainContext on which every SoupSession, WebSocket and HTTP
 * request of every client lives (libsoup objects belong to the context they
 * were made on). It starts with the first client and lives as long as the
 * process, so a callback can never outlive its loop. Public functions hop
 * onto it with g_main_context_invoke_full(); callbacks run there.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "gstvoiceclient.h"
#include "gstvoiceredact.h"

GST_DEBUG_CATEGORY_STATIC (voice_client_debug);
#define GST_CAT_DEFAULT voice_client_debug

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_INITIAL_MS 250
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_QUEUE_LIMIT (1024 * 1024)
#define DEFAULT_STALL_TIMEOUT_MS 5000
/* Hand libsoup more data only while the kernel holds less than this unsent:
 * libsoup's own output queue is unbounded, so this is where the bound lives. */
#define SOCKET_BACKLOG_LIMIT (64 * 1024)
#define WATCH_INTERVAL_MS 50
#define READ_CHUNK 16384

typedef struct
{
  SoupWebsocketDataType type;
  GBytes *data;
} OutMessage;

typedef struct
{
  GstVoiceClient *client; /* strong ref */
  guint id;
  SoupMessage *msg;
  GInputStream *body;
  GCancellable *cancellable;
  GstVoiceHttpCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify notify;
} HttpRequest;

struct _GstVoiceClient
{
  GstObject parent;

  /* Protected by OBJECT_LOCK */
  GstVoiceClientCallbacks callbacks;
  gpointer user_data;
  GDestroyNotify notify;
  guint connect_timeout_ms;
  guint backoff_initial_ms;
  guint backoff_max_ms;
  guint max_attempts;
  guint stall_timeout_ms;
  gsize queue_limit;
  GQueue out_queue; /* of OutMessage* */
  gsize queued_bytes;
  gboolean drain_scheduled;
  gboolean is_open;
  gboolean shut_down;
  guint reconnects;

  /* I/O thread only */
  SoupSession *session;
  SoupWebsocketConnection *ws;
  GSocket *socket; /* the TCP socket under ws, NULL if it cannot be found */
  gchar *url;
  SoupMessageHeaders *headers;
  gchar **protocols;
  gboolean reconnect;
  gboolean closing; /* we asked to close: no retry */
  gushort close_code;
  gchar *close_reason;
  gboolean ever_opened;
  gint64 opened_at_us; /* when the current connection opened */
  guint attempt; /* retries in a row without a lasting connection */
  GCancellable *connect_cancellable; /* of the attempt under way */
  gboolean timed_out;
  GSource *connect_timeout;
  GSource *retry_timer;
  GSource *watch_timer;
  gint64 last_progress_us;
  gint last_backlog;
  gboolean stall_reported;
  GHashTable *requests; /* id → HttpRequest* */

  /* Atomic */
  gint next_request_id;
};

G_DEFINE_FINAL_TYPE (GstVoiceClient, gst_voice_client, GST_TYPE_OBJECT);

/* Copies @from into @to and learns the credentials among them. */
static void
copy_headers (SoupMessageHeaders *from, SoupMessageHeaders *to)
{
  SoupMessageHeadersIter iter;
  const gchar *name, *value;

  soup_message_headers_iter_init (&iter, from);
  while (soup_message_headers_iter_next (&iter, &name, &value)) {
    gchar *line = g_strdup_printf ("%s: %s", name, value);
    gst_voice_redact_learn (line);
    g_free (line);
    if (to)
      soup_message_headers_append (to, name, value);
  }
}

/* ---- The process-wide I/O thread ---- */

static GMainContext *io_context;

static gpointer
io_thread_main (gpointer data)
{
  GMainLoop *loop = data;

  g_main_context_push_thread_default (g_main_loop_get_context (loop));
  g_main_loop_run (loop);
  return NULL;
}

/**
 * gst_voice_client_get_io_context:
 *
 * Returns: (transfer none): the context the I/O thread runs, started on
 * first use.
 */
GMainContext *
gst_voice_client_get_io_context (void)
{
  if (g_once_init_enter (&io_context)) {
    GMainContext *ctx = g_main_context_new ();
    GMainLoop *loop = g_main_loop_new (ctx, FALSE);
    GThread *thread = g_thread_new ("voice-io", io_thread_main, loop);
    /* The loop and thread live as long as the process. */
    g_thread_unref (thread);
    g_once_init_leave (&io_context, ctx);
  }
  return io_context;
}

static gboolean
on_io_thread (void)
{
  return g_main_context_is_owner (gst_voice_client_get_io_context ());
}

typedef void (*IoFunc) (GstVoiceClient *self, gpointer data);

typedef struct
{
  GstVoiceClient *self;
  IoFunc func;
  gpointer data;
  GDestroyNotify free_data;
} IoCall;

static gboolean
io_call_dispatch (gpointer user_data)
{
  IoCall *call = user_data;

  call->func (call->self, call->data);
  return G_SOURCE_REMOVE;
}

static void
io_call_free (gpointer user_data)
{
  IoCall *call = user_data;

  if (call->free_data && call->data)
    call->free_data (call->data);
  gst_object_unref (call->self);
  g_free (call);
}

/* Runs @func on the I/O thread (at once if already there). Keeps @self
 * alive until it ran; frees @data with @free_data afterwards. */
static void
run_on_io (
    GstVoiceClient *self, IoFunc func, gpointer data, GDestroyNotify free_data)
{
  IoCall *call = g_new0 (IoCall, 1);

  call->self = gst_object_ref (self);
  call->func = func;
  call->data = data;
  call->free_data = free_data;
  g_main_context_invoke_full (gst_voice_client_get_io_context (),
      G_PRIORITY_DEFAULT, io_call_dispatch, call, io_call_free);
}

static GSource *
add_timeout (guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, gst_voice_client_get_io_context ());
  return source;
}

static void
clear_source (GSource **source)
{
  if (*source) {
    g_source_destroy (*source);
    g_source_unref (*source);
    *source = NULL;
  }
}

/* ---- Object ---- */

static void
out_message_free (OutMessage *m)
{
  g_bytes_unref (m->data);
  g_free (m);
}

static void
gst_voice_client_finalize (GObject *object)
{
  GstVoiceClient *self = GST_VOICE_CLIENT (object);

  g_queue_clear_full (&self->out_queue, (GDestroyNotify)out_message_free);
  if (self->notify)
    self->notify (self->user_data);
  g_clear_object (&self->socket);
  g_clear_object (&self->ws);
  g_clear_object (&self->session);
  g_clear_pointer (&self->headers, soup_message_headers_unref);
  g_clear_pointer (&self->requests, g_hash_table_unref);
  g_strfreev (self->protocols);
  g_free (self->url);
  g_free (self->close_reason);
  G_OBJECT_CLASS (gst_voice_client_parent_class)->finalize (object);
}

static void
gst_voice_client_class_init (GstVoiceClientClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gst_voice_client_finalize;
  GST_DEBUG_CATEGORY_INIT (voice_client_debug, "voiceclient", 0,
      "gst-voiceagent network client (WebSocket + HTTP)");
}

static void
gst_voice_client_init (GstVoiceClient *self)
{
  self->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  self->backoff_initial_ms = DEFAULT_BACKOFF_INITIAL_MS;
  self->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
  self->stall_timeout_ms = DEFAULT_STALL_TIMEOUT_MS;
  self->queue_limit = DEFAULT_QUEUE_LIMIT;
  g_queue_init (&self->out_queue);
  self->requests = g_hash_table_new (g_direct_hash, g_direct_equal);
}

/**
 * gst_voice_client_new:
 * @name: object name used in logs, e.g. the element's name
 *
 * Returns: (transfer full): a client; call gst_voice_client_shutdown()
 * before dropping the last reference.
 */
GstVoiceClient *
gst_voice_client_new (const gchar *name)
{
  GstVoiceClient *self =
      g_object_new (GST_TYPE_VOICE_CLIENT, "name", name, NULL);

  gst_object_ref_sink (self);
  gst_voice_client_get_io_context ();
  return self;
}

/**
 * gst_voice_client_set_callbacks:
 *
 * Sets the callbacks (copied). Set them before opening.
 */
void
gst_voice_client_set_callbacks (GstVoiceClient *self,
    const GstVoiceClientCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify)
{
  GDestroyNotify old_notify;
  gpointer old_data;

  GST_OBJECT_LOCK (self);
  old_notify = self->notify;
  old_data = self->user_data;
  self->callbacks = *callbacks;
  self->user_data = user_data;
  self->notify = notify;
  GST_OBJECT_UNLOCK (self);
  if (old_notify)
    old_notify (old_data);
}

void
gst_voice_client_set_connect_timeout (GstVoiceClient *self, guint timeout_ms)
{
  GST_OBJECT_LOCK (self);
  self->connect_timeout_ms = timeout_ms;
  GST_OBJECT_UNLOCK (self);
}

/**
 * gst_voice_client_set_backoff:
 * @initial_ms: first retry delay
 * @max_ms: the delay doubles per attempt up to this
 * @max_attempts: retry at most this many times in a row, so a connection
 *   that keeps failing is tried 1 + @max_attempts times (0: no limit)
 */
void
gst_voice_client_set_backoff (
    GstVoiceClient *self, guint initial_ms, guint max_ms, guint max_attempts)
{
  GST_OBJECT_LOCK (self);
  self->backoff_initial_ms = MAX (initial_ms, 1);
  self->backoff_max_ms = MAX (max_ms, self->backoff_initial_ms);
  self->max_attempts = max_attempts;
  GST_OBJECT_UNLOCK (self);
}

void
gst_voice_client_set_queue_limit (GstVoiceClient *self, gsize max_bytes)
{
  GST_OBJECT_LOCK (self);
  self->queue_limit = max_bytes;
  GST_OBJECT_UNLOCK (self);
}

void
gst_voice_client_set_stall_timeout (GstVoiceClient *self, guint timeout_ms)
{
  GST_OBJECT_LOCK (self);
  self->stall_timeout_ms = timeout_ms;
  GST_OBJECT_UNLOCK (self);
}

/* Copies the callbacks under the lock so a callback can run without it. */
static GstVoiceClientCallbacks
get_callbacks (GstVoiceClient *self, gpointer *user_data)
{
  GstVoiceClientCallbacks cb;

  GST_OBJECT_LOCK (self);
  cb = self->callbacks;
  *user_data = self->user_data;
  if (self->shut_down)
    memset (&cb, 0, sizeof (cb));
  GST_OBJECT_UNLOCK (self);
  return cb;
}

static gboolean
is_shut_down (GstVoiceClient *self)
{
  gboolean shut_down;

  GST_OBJECT_LOCK (self);
  shut_down = self->shut_down;
  GST_OBJECT_UNLOCK (self);
  return shut_down;
}

/* ---- Backoff ---- */

/* Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so a fleet of clients that lost the same server spreads out
 * without any of them retrying at once in a tight loop. */
static guint
backoff_delay_ms (GstVoiceClient *self)
{
  guint64 base;
  guint shift = MIN (self->attempt, 16);

  GST_OBJECT_LOCK (self);
  base = MIN ((guint64)self->backoff_initial_ms << shift,
      (guint64)self->backoff_max_ms);
  GST_OBJECT_UNLOCK (self);
  return (guint)(base / 2 + g_random_int_range (0, (gint32)(base / 2) + 1));
}

static gboolean
http_status_is_retryable (guint status)
{
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

static void start_connect (GstVoiceClient *self);

static gboolean
retry_timer_fired (gpointer data)
{
  GstVoiceClient *self = data;

  clear_source (&self->retry_timer);
  start_connect (self);
  return G_SOURCE_REMOVE;
}

/* Returns TRUE if a retry was scheduled. @forced: the caller asked for a
 * reconnect, so it happens even with reconnecting off. */
static gboolean
schedule_retry_full (GstVoiceClient *self, gboolean forced)
{
  guint delay, max_attempts;
  gboolean shut_down;

  GST_OBJECT_LOCK (self);
  max_attempts = self->max_attempts;
  shut_down = self->shut_down;
  GST_OBJECT_UNLOCK (self);

  if (shut_down || (!self->reconnect && !forced) || self->closing)
    return FALSE;
  if (max_attempts > 0 && self->attempt >= max_attempts) {
    GST_WARNING_OBJECT (self, "giving up after %u attempts", self->attempt);
    return FALSE;
  }
  delay = backoff_delay_ms (self);
  self->attempt++;
  GST_INFO_OBJECT (
      self, "reconnecting in %u ms (attempt %u)", delay, self->attempt);
  clear_source (&self->retry_timer);
  self->retry_timer = add_timeout (delay, retry_timer_fired, self);
  return TRUE;
}

static gboolean
schedule_retry (GstVoiceClient *self)
{
  return schedule_retry_full (self, FALSE);
}

/* A connection ended. Only one that lasted (as long as the longest backoff)
 * resets the retry count: a server that accepts and drops at once would
 * otherwise be reconnected to forever at the shortest delay. */
static void
connection_ended (GstVoiceClient *self)
{
  guint max_ms;

  GST_OBJECT_LOCK (self);
  max_ms = self->backoff_max_ms;
  GST_OBJECT_UNLOCK (self);
  if (g_get_monotonic_time () - self->opened_at_us >= (gint64)max_ms * 1000)
    self->attempt = 0;
}

/* ---- Sending ---- */

/* Returns (transfer none) the TCP socket under @stream, or NULL. libsoup
 * hands a WebSocket its connection wrapped in a private GIOStream that
 * carries the socket as "GSocket" data (soup_connection_steal_iostream()),
 * and a TLS connection wraps the TCP one, so this looks through wrappers. */
static GSocket *
find_socket (GIOStream *stream)
{
  while (stream) {
    GObjectClass *klass = G_OBJECT_GET_CLASS (stream);
    GIOStream *base = NULL;
    GSocket *socket;

    if (G_IS_SOCKET_CONNECTION (stream))
      return g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream));
    socket = g_object_get_data (G_OBJECT (stream), "GSocket");
    if (G_IS_SOCKET (socket))
      return socket;
    if (g_object_class_find_property (klass, "base-io-stream"))
      g_object_get (stream, "base-io-stream", &base, NULL);
    else if (g_object_class_find_property (klass, "base-iostream"))
      g_object_get (stream, "base-iostream", &base, NULL);
    if (base)
      g_object_unref (base); /* still owned by @stream */
    stream = base;
  }
  return NULL;
}

/* Bytes the kernel still holds unsent on the WebSocket's TCP socket, or -1
 * if that cannot be known. */
static gint
socket_backlog (GstVoiceClient *self)
{
  gint outq = 0;

  if (self->socket == NULL ||
      ioctl (g_socket_get_fd (self->socket), SIOCOUTQ, &outq) < 0)
    return -1;
  return outq;
}

/* TRUE while the kernel takes more data without libsoup having to queue it
 * (libsoup writes at once what the socket accepts and keeps the rest in an
 * unbounded queue of its own). */
static gboolean
socket_has_room (GstVoiceClient *self)
{
  gint backlog;

  if (self->socket == NULL)
    return TRUE; /* unknown: the queue bound cannot hold (logged on open) */
  backlog = socket_backlog (self);
  if (backlog > SOCKET_BACKLOG_LIMIT)
    return FALSE;
  return g_socket_condition_check (self->socket, G_IO_OUT) & G_IO_OUT;
}

static gboolean watch_timer_fired (gpointer data);

static void
note_progress (GstVoiceClient *self)
{
  self->last_progress_us = g_get_monotonic_time ();
  self->stall_reported = FALSE;
}

/* Starts watching a connection that has data waiting; the stall clock
 * starts now. Only with a connection: the timer holds no reference, and
 * forget_ws() (so shutdown too) removes it. */
static void
ensure_watch (GstVoiceClient *self)
{
  if (self->watch_timer == NULL && self->ws != NULL) {
    note_progress (self);
    self->last_backlog = MAX (socket_backlog (self), 0);
    self->watch_timer =
        add_timeout (WATCH_INTERVAL_MS, watch_timer_fired, self);
  }
}

/* Moves queued messages into the socket while the kernel has room. */
static void
drain (GstVoiceClient *self)
{
  gboolean sent_any = FALSE;
  gboolean empty;

  while (self->ws &&
      soup_websocket_connection_get_state (self->ws) ==
          SOUP_WEBSOCKET_STATE_OPEN) {
    OutMessage *m;

    if (!socket_has_room (self))
      break;
    GST_OBJECT_LOCK (self);
    m = g_queue_pop_head (&self->out_queue);
    if (m)
      self->queued_bytes -= g_bytes_get_size (m->data);
    GST_OBJECT_UNLOCK (self);
    if (m == NULL)
      break;
    soup_websocket_connection_send_message (self->ws, m->type, m->data);
    out_message_free (m);
    sent_any = TRUE;
  }
  if (sent_any)
    note_progress (self);

  GST_OBJECT_LOCK (self);
  self->drain_scheduled = FALSE;
  empty = self->out_queue.length == 0;
  GST_OBJECT_UNLOCK (self);
  if (!empty)
    ensure_watch (self);

  if (self->closing && empty && self->ws &&
      soup_websocket_connection_get_state (self->ws) ==
          SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (
        self->ws, self->close_code, self->close_reason);
}

static void
drain_on_io (GstVoiceClient *self, gpointer data)
{
  drain (self);
}

static void drop_connection (GstVoiceClient *self, gboolean retry);

static void
report_stall (GstVoiceClient *self, gsize queued)
{
  gpointer user_data;
  GstVoiceClientCallbacks cb = get_callbacks (self, &user_data);

  GST_WARNING_OBJECT (self,
      "connection stalled: %" G_GSIZE_FORMAT " bytes queued, no progress",
      queued);
  self->stall_reported = TRUE;
  if (cb.stalled)
    cb.stalled (self, queued, user_data);
  /* A close waiting to flush to a peer that does not read would wait
   * forever: give up on the flush. */
  if (self->closing)
    drop_connection (self, FALSE);
  else if (self->reconnect)
    drop_connection (self, TRUE);
}

/* Periodic while data waits: drains what the socket accepts and reports a
 * stall when nothing moved for the stall timeout. */
static gboolean
watch_timer_fired (gpointer data)
{
  GstVoiceClient *self = data;
  gint backlog;
  gsize queued;
  guint stall_ms;

  if (self->ws == NULL) {
    clear_source (&self->watch_timer);
    return G_SOURCE_REMOVE;
  }
  backlog = socket_backlog (self);
  if (backlog >= 0 && backlog < self->last_backlog)
    note_progress (self);
  self->last_backlog = MAX (backlog, 0);
  drain (self);
  if (self->ws == NULL) /* closed while sending; forget_ws() removed us */
    return G_SOURCE_REMOVE;

  GST_OBJECT_LOCK (self);
  queued = self->queued_bytes;
  stall_ms = self->stall_timeout_ms;
  GST_OBJECT_UNLOCK (self);

  if (queued == 0 && backlog <= 0) {
    clear_source (&self->watch_timer);
    return G_SOURCE_REMOVE;
  }
  if (stall_ms > 0 && !self->stall_reported &&
      g_get_monotonic_time () - self->last_progress_us >
          (gint64)stall_ms * 1000)
    report_stall (self, queued + MAX (backlog, 0));
  return G_SOURCE_CONTINUE;
}

static gboolean
enqueue (GstVoiceClient *self, SoupWebsocketDataType type, GBytes *data)
{
  gsize size = g_bytes_get_size (data);
  OutMessage *m;
  gboolean schedule;

  GST_OBJECT_LOCK (self);
  if (self->shut_down ||
      (self->queue_limit > 0 &&
          self->queued_bytes + size > self->queue_limit)) {
    GST_OBJECT_UNLOCK (self);
    GST_LOG_OBJECT (
        self, "send queue full, refusing %" G_GSIZE_FORMAT " bytes", size);
    return FALSE;
  }
  m = g_new0 (OutMessage, 1);
  m->type = type;
  m->data = g_bytes_ref (data);
  g_queue_push_tail (&self->out_queue, m);
  self->queued_bytes += size;
  schedule = !self->drain_scheduled;
  self->drain_scheduled = TRUE;
  GST_OBJECT_UNLOCK (self);

  if (schedule)
    run_on_io (self, drain_on_io, NULL, NULL);
  return TRUE;
}

/**
 * gst_voice_client_send_text:
 *
 * Queues a text message; thread-safe and non-blocking. Messages queued
 * while disconnected go out once (re)connected.
 *
 * Returns: FALSE if the queue is full (the message was not queued).
 */
gboolean
gst_voice_client_send_text (GstVoiceClient *self, const gchar *text)
{
  GBytes *bytes = g_bytes_new (text, strlen (text));
  gboolean ok = enqueue (self, SOUP_WEBSOCKET_DATA_TEXT, bytes);

  g_bytes_unref (bytes);
  return ok;
}

/**
 * gst_voice_client_send_binary:
 * @data: (transfer none):
 *
 * Like gst_voice_client_send_text() for a binary message.
 */
gboolean
gst_voice_client_send_binary (GstVoiceClient *self, GBytes *data)
{
  return enqueue (self, SOUP_WEBSOCKET_DATA_BINARY, data);
}

/**
 * gst_voice_client_clear_queue:
 *
 * Returns: how many queued messages were dropped.
 */
guint
gst_voice_client_clear_queue (GstVoiceClient *self)
{
  guint n;

  GST_OBJECT_LOCK (self);
  n = self->out_queue.length;
  g_queue_clear_full (&self->out_queue, (GDestroyNotify)out_message_free);
  g_queue_init (&self->out_queue);
  self->queued_bytes = 0;
  GST_OBJECT_UNLOCK (self);
  return n;
}

gsize
gst_voice_client_get_queued_bytes (GstVoiceClient *self)
{
  gsize n;

  GST_OBJECT_LOCK (self);
  n = self->queued_bytes;
  GST_OBJECT_UNLOCK (self);
  return n;
}

gboolean
gst_voice_client_is_open (GstVoiceClient *self)
{
  gboolean open;

  GST_OBJECT_LOCK (self);
  open = self->is_open;
  GST_OBJECT_UNLOCK (self);
  return open;
}

guint
gst_voice_client_get_reconnect_count (GstVoiceClient *self)
{
  guint n;

  GST_OBJECT_LOCK (self);
  n = self->reconnects;
  GST_OBJECT_UNLOCK (self);
  return n;
}

/* ---- WebSocket life cycle ---- */

static void
set_open (GstVoiceClient *self, gboolean open)
{
  GST_OBJECT_LOCK (self);
  self->is_open = open;
  GST_OBJECT_UNLOCK (self);
}

static void
on_ws_message (
    SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  GstVoiceClient *self = data;
  gpointer user_data;
  GstVoiceClientCallbacks cb = get_callbacks (self, &user_data);

  GST_LOG_OBJECT (self, "received %s message of %" G_GSIZE_FORMAT " bytes",
      type == SOUP_WEBSOCKET_DATA_TEXT ? "text" : "binary",
      g_bytes_get_size (message));
  if (cb.message)
    cb.message (self, type, message, user_data);
}

static void
on_ws_error (SoupWebsocketConnection *ws, GError *error, gpointer data)
{
  GstVoiceClient *self = data;
  gchar *text = gst_voice_redact (error->message);

  GST_WARNING_OBJECT (self, "WebSocket error: %s", text);
  g_free (text);
}

static void
forget_ws (GstVoiceClient *self)
{
  if (self->ws == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->ws, self);
  g_clear_object (&self->socket);
  g_clear_object (&self->ws);
  set_open (self, FALSE);
  clear_source (&self->watch_timer);
}

static void
on_ws_closed (SoupWebsocketConnection *ws, gpointer data)
{
  GstVoiceClient *self = data;
  gushort code = soup_websocket_connection_get_close_code (ws);
  gchar *reason = g_strdup (soup_websocket_connection_get_close_data (ws));
  gpointer user_data;
  GstVoiceClientCallbacks cb;
  gboolean retry;
  gchar *safe_reason = gst_voice_redact (reason ? reason : "");

  /* Servers echo credentials in close reasons ("invalid key ..."). */
  GST_INFO_OBJECT (
      self, "WebSocket closed with code %u (%s)", code, safe_reason);
  g_free (safe_reason);
  forget_ws (self);
  /* A normal close the server chose (1000) is final too: the server meant
   * it, e.g. after CloseStream. */
  connection_ended (self);
  retry = code != SOUP_WEBSOCKET_CLOSE_NORMAL && schedule_retry (self);
  cb = get_callbacks (self, &user_data);
  if (cb.closed)
    cb.closed (self, code, reason, retry, user_data);
  g_free (reason);
}

static void
cancel_connect (GstVoiceClient *self)
{
  clear_source (&self->connect_timeout);
  if (self->connect_cancellable) {
    g_cancellable_cancel (self->connect_cancellable);
    g_clear_object (&self->connect_cancellable);
  }
}

/* Closes the current connection without a handshake (it is stalled, or we
 * are shutting down) and, with @retry, schedules a reconnect (@forced: even
 * with reconnecting off). */
static void
drop_connection_full (GstVoiceClient *self, gboolean retry, gboolean forced)
{
  gpointer user_data;
  GstVoiceClientCallbacks cb;
  gboolean will_retry;

  cancel_connect (self);
  if (self->ws == NULL)
    return;
  forget_ws (self);
  connection_ended (self);
  will_retry = retry && schedule_retry_full (self, forced);
  cb = get_callbacks (self, &user_data);
  if (cb.closed)
    cb.closed (self, SOUP_WEBSOCKET_CLOSE_ABNORMAL, "connection dropped",
        will_retry, user_data);
}

static void
drop_connection (GstVoiceClient *self, gboolean retry)
{
  drop_connection_full (self, retry, FALSE);
}

static void
connect_failed (GstVoiceClient *self, SoupMessage *msg, GError *error)
{
  guint status = soup_message_get_status (msg);
  gpointer user_data;
  GstVoiceClientCallbacks cb;
  gboolean will_retry = FALSE;
  gchar *text = gst_voice_redact (error->message);

  GST_WARNING_OBJECT (self, "connecting failed: HTTP %u: %s", status, text);
  g_free (text);
  if (http_status_is_retryable (status))
    will_retry = schedule_retry (self);
  cb = get_callbacks (self, &user_data);
  if (cb.connect_failed)
    cb.connect_failed (self, status,
        status ? soup_message_get_response_headers (msg) : NULL, error,
        will_retry, user_data);
}

static void
connect_opened (GstVoiceClient *self, SoupWebsocketConnection *ws)
{
  gpointer user_data;
  GstVoiceClientCallbacks cb;
  gboolean reconnected = self->ever_opened;

  self->ws = ws;
  self->socket = find_socket (soup_websocket_connection_get_io_stream (ws));
  if (self->socket)
    g_object_ref (self->socket);
  else
    GST_WARNING_OBJECT (self,
        "cannot see the socket's send queue: sending "
        "is not bounded and stalls are not detected");
  self->ever_opened = TRUE;
  self->opened_at_us = g_get_monotonic_time ();
  soup_websocket_connection_set_max_incoming_payload_size (
      ws, 16 * 1024 * 1024);
  g_signal_connect (ws, "message", G_CALLBACK (on_ws_message), self);
  g_signal_connect (ws, "closed", G_CALLBACK (on_ws_closed), self);
  g_signal_connect (ws, "error", G_CALLBACK (on_ws_error), self);
  GST_OBJECT_LOCK (self);
  self->is_open = TRUE;
  if (reconnected)
    self->reconnects++;
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (
      self, "WebSocket open%s", reconnected ? " (reconnected)" : "");
  note_progress (self);
  cb = get_callbacks (self, &user_data);
  if (cb.opened)
    cb.opened (self, reconnected, user_data);
  drain (self);
}

typedef struct
{
  GstVoiceClient *client; /* strong ref */
  SoupMessage *msg;
  GCancellable *cancellable; /* identifies the attempt */
} ConnectAttempt;

static void
connect_attempt_free (ConnectAttempt *attempt)
{
  g_object_unref (attempt->msg);
  g_object_unref (attempt->cancellable);
  gst_object_unref (attempt->client);
  g_free (attempt);
}

static void
websocket_connect_done (GObject *source, GAsyncResult *result, gpointer data)
{
  ConnectAttempt *attempt = data;
  GstVoiceClient *self = attempt->client;
  GError *error = NULL;
  SoupWebsocketConnection *ws = soup_session_websocket_connect_finish (
      SOUP_SESSION (source), result, &error);

  if (attempt->cancellable != self->connect_cancellable) {
    /* A stale attempt: cancelled by shutdown, close or a new open. */
    g_clear_object (&ws);
  } else {
    clear_source (&self->connect_timeout);
    g_clear_object (&self->connect_cancellable);
    if (ws) {
      connect_opened (self, ws);
    } else {
      if (self->timed_out) {
        g_clear_error (&error);
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
            "no answer within the connect timeout");
      }
      connect_failed (self, attempt->msg, error);
    }
  }
  g_clear_error (&error);
  connect_attempt_free (attempt);
}

static gboolean
connect_timeout_fired (gpointer data)
{
  GstVoiceClient *self = data;

  GST_WARNING_OBJECT (self, "connect timed out");
  clear_source (&self->connect_timeout);
  /* websocket_connect_done turns the cancellation into a timeout error. */
  self->timed_out = TRUE;
  g_cancellable_cancel (self->connect_cancellable);
  return G_SOURCE_REMOVE;
}

static void
log_soup (SoupLogger *logger, SoupLoggerLogLevel level, char direction,
    const char *data, gpointer user_data)
{
  gchar *safe = gst_voice_redact (data);

  GST_TRACE_OBJECT (user_data, "%c %s", direction, safe);
  g_free (safe);
}

static void
ensure_session (GstVoiceClient *self)
{
  if (self->session)
    return;
  self->session = soup_session_new_with_options (
      "user-agent", "gst-voiceagent/" VERSION, "idle-timeout", 60, NULL);
  /* Wire-level tracing (GST_DEBUG=voiceclient:7), still redacted. */
  if (gst_debug_category_get_threshold (voice_client_debug) >=
      GST_LEVEL_TRACE) {
    SoupLogger *logger = soup_logger_new (SOUP_LOGGER_LOG_HEADERS);
    soup_logger_set_printer (logger, log_soup, self, NULL);
    soup_session_add_feature (self->session, SOUP_SESSION_FEATURE (logger));
    g_object_unref (logger);
  }
}

/* Returns (transfer full) the handshake request for @url, or NULL if @url
 * is not a ws(s):// or http(s):// URL with a host (libsoup would answer
 * that with a critical warning, not an error). */
static SoupMessage *
new_handshake_message (const gchar *url)
{
  GUri *uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  SoupMessage *msg = NULL;

  if (uri == NULL)
    return NULL;
  if (g_uri_get_host (uri) && *g_uri_get_host (uri) &&
      (g_str_equal (g_uri_get_scheme (uri), "ws") ||
          g_str_equal (g_uri_get_scheme (uri), "wss") ||
          g_str_equal (g_uri_get_scheme (uri), "http") ||
          g_str_equal (g_uri_get_scheme (uri), "https")))
    msg = soup_message_new_from_uri (SOUP_METHOD_GET, uri);
  g_uri_unref (uri);
  return msg;
}

static void
start_connect (GstVoiceClient *self)
{
  SoupMessage *msg;
  ConnectAttempt *attempt;
  gchar *safe_url;
  guint timeout_ms;

  ensure_session (self);
  msg = new_handshake_message (self->url);
  if (msg == NULL) {
    GError *err = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "invalid URL: a ws:// or wss:// URL with a host is needed");
    gpointer user_data;
    GstVoiceClientCallbacks cb = get_callbacks (self, &user_data);
    GST_WARNING_OBJECT (self, "%s", err->message);
    if (cb.connect_failed)
      cb.connect_failed (self, 0, NULL, err, FALSE, user_data);
    g_error_free (err);
    return;
  }
  if (self->headers) {
    SoupMessageHeadersIter iter;
    const gchar *name, *value;
    soup_message_headers_iter_init (&iter, self->headers);
    while (soup_message_headers_iter_next (&iter, &name, &value))
      soup_message_headers_replace (
          soup_message_get_request_headers (msg), name, value);
  }
  safe_url = gst_voice_redact (self->url);
  GST_DEBUG_OBJECT (self, "connecting to %s", safe_url);
  g_free (safe_url);

  GST_OBJECT_LOCK (self);
  timeout_ms = self->connect_timeout_ms;
  GST_OBJECT_UNLOCK (self);

  attempt = g_new0 (ConnectAttempt, 1);
  attempt->client = gst_object_ref (self);
  attempt->msg = msg;
  attempt->cancellable = g_cancellable_new ();
  self->connect_cancellable = g_object_ref (attempt->cancellable);
  self->timed_out = FALSE;
  if (timeout_ms > 0)
    self->connect_timeout =
        add_timeout (timeout_ms, connect_timeout_fired, self);
  soup_session_websocket_connect_async (self->session, msg, NULL,
      self->protocols, G_PRIORITY_DEFAULT, attempt->cancellable,
      websocket_connect_done, attempt);
}

typedef struct
{
  gchar *url;
  SoupMessageHeaders *headers;
  gchar **protocols;
  gboolean reconnect;
} OpenArgs;

static void
open_args_free (gpointer data)
{
  OpenArgs *args = data;

  g_free (args->url);
  if (args->headers)
    soup_message_headers_unref (args->headers);
  g_strfreev (args->protocols);
  g_free (args);
}

static void
open_on_io (GstVoiceClient *self, gpointer data)
{
  OpenArgs *args = data;

  if (is_shut_down (self))
    return;
  cancel_connect (self);
  clear_source (&self->retry_timer);
  forget_ws (self);
  g_free (self->url);
  self->url = g_steal_pointer (&args->url);
  g_clear_pointer (&self->headers, soup_message_headers_unref);
  self->headers = g_steal_pointer (&args->headers);
  g_strfreev (self->protocols);
  self->protocols = g_steal_pointer (&args->protocols);
  self->reconnect = args->reconnect;
  self->closing = FALSE;
  self->attempt = 0;
  start_connect (self);
}

/**
 * gst_voice_client_open_websocket:
 * @url: ws:// or wss:// URL (may hold a key in the query: it is redacted
 *   in logs)
 * @headers: (nullable) (transfer none): extra request headers (copied)
 * @protocols: (nullable): WebSocket subprotocols to offer
 * @reconnect: keep reconnecting after failures and drops
 *
 * Starts connecting; returns at once. opened() or connect_failed() follows.
 */
void
gst_voice_client_open_websocket (GstVoiceClient *self, const gchar *url,
    SoupMessageHeaders *headers, const gchar *const *protocols,
    gboolean reconnect)
{
  OpenArgs *args = g_new0 (OpenArgs, 1);

  args->url = g_strdup (url);
  gst_voice_redact_learn (url);
  if (headers) {
    args->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
    copy_headers (headers, args->headers);
  }
  args->protocols = g_strdupv ((gchar **)protocols);
  if (protocols) {
    /* As they travel: "Sec-WebSocket-Protocol: token, KEY". */
    gchar *joined = g_strjoinv (", ", (gchar **)protocols);
    gst_voice_redact_learn (joined);
    g_free (joined);
  }
  args->reconnect = reconnect;
  run_on_io (self, open_on_io, args, open_args_free);
}

typedef struct
{
  gushort code;
  gchar *reason;
} CloseArgs;

static void
close_args_free (gpointer data)
{
  CloseArgs *args = data;

  g_free (args->reason);
  g_free (args);
}

static void
close_on_io (GstVoiceClient *self, gpointer data)
{
  CloseArgs *args = data;

  self->closing = TRUE;
  self->close_code = args->code;
  g_free (self->close_reason);
  self->close_reason = g_strdup (args->reason);
  clear_source (&self->retry_timer);
  if (self->ws == NULL) {
    cancel_connect (self);
  } else {
    /* The flush gets a stall timeout of its own: if the peer takes nothing
     * in that time, report_stall() drops the connection. */
    note_progress (self);
    drain (self); /* sends what is queued, then closes */
  }
}

/**
 * gst_voice_client_close:
 *
 * Closes the WebSocket after everything queued has been sent; no reconnect
 * follows. closed() reports when the server has answered, or when the
 * queue could not be flushed within the stall timeout (code 1006).
 */
void
gst_voice_client_close (GstVoiceClient *self, gushort code, const gchar *reason)
{
  CloseArgs *args = g_new0 (CloseArgs, 1);

  args->code = code;
  args->reason = g_strdup (reason);
  run_on_io (self, close_on_io, args, close_args_free);
}

static void
reconnect_on_io (GstVoiceClient *self, gpointer data)
{
  if (self->url == NULL || is_shut_down (self))
    return;
  self->closing = FALSE;
  self->attempt = 0;
  clear_source (&self->retry_timer);
  if (self->ws)
    drop_connection_full (self, TRUE, TRUE);
  else if (self->connect_cancellable == NULL)
    start_connect (self);
}

/**
 * gst_voice_client_reconnect:
 *
 * Drops the current connection (if any) and reconnects with backoff, also
 * when the WebSocket was opened with reconnecting off.
 */
void
gst_voice_client_reconnect (GstVoiceClient *self)
{
  run_on_io (self, reconnect_on_io, NULL, NULL);
}

/* ---- Streamed HTTP ---- */

static void
http_request_free (HttpRequest *req)
{
  if (req->notify)
    req->notify (req->user_data);
  g_clear_object (&req->body);
  g_clear_object (&req->msg);
  g_clear_object (&req->cancellable);
  gst_object_unref (req->client);
  g_free (req);
}

static void
http_finish (HttpRequest *req, GError *error)
{
  GstVoiceClient *self = req->client;
  gboolean shut_down;

  g_hash_table_remove (self->requests, GUINT_TO_POINTER (req->id));
  if (req->body)
    g_input_stream_close (req->body, NULL, NULL);
  GST_OBJECT_LOCK (self);
  shut_down = self->shut_down;
  GST_OBJECT_UNLOCK (self);
  if (!shut_down && req->callbacks.done)
    req->callbacks.done (self, req->id, error, req->user_data);
  http_request_free (req);
}

static void http_read_next (HttpRequest *req);

static void
http_read_done (GObject *source, GAsyncResult *result, gpointer data)
{
  HttpRequest *req = data;
  GError *error = NULL;
  GBytes *bytes = g_input_stream_read_bytes_finish (
      G_INPUT_STREAM (source), result, &error);

  if (bytes == NULL) {
    http_finish (req, error);
    g_error_free (error);
    return;
  }
  if (g_bytes_get_size (bytes) == 0) {
    g_bytes_unref (bytes);
    http_finish (req, NULL);
    return;
  }
  if (req->callbacks.chunk && !g_cancellable_is_cancelled (req->cancellable))
    req->callbacks.chunk (req->client, req->id, bytes, req->user_data);
  g_bytes_unref (bytes);
  http_read_next (req);
}

static void
http_read_next (HttpRequest *req)
{
  g_input_stream_read_bytes_async (req->body, READ_CHUNK, G_PRIORITY_DEFAULT,
      req->cancellable, http_read_done, req);
}

static void
http_send_done (GObject *source, GAsyncResult *result, gpointer data)
{
  HttpRequest *req = data;
  GError *error = NULL;
  gboolean go_on = TRUE;

  req->body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (req->body == NULL) {
    http_finish (req, error);
    g_error_free (error);
    return;
  }
  GST_DEBUG_OBJECT (req->client, "request %u: HTTP %u", req->id,
      soup_message_get_status (req->msg));
  if (req->callbacks.response && !g_cancellable_is_cancelled (req->cancellable))
    go_on = req->callbacks.response (req->client, req->id,
        soup_message_get_status (req->msg),
        soup_message_get_response_headers (req->msg), req->user_data);
  if (!go_on)
    g_cancellable_cancel (req->cancellable);
  http_read_next (req);
}

static void
http_start_on_io (GstVoiceClient *self, gpointer data)
{
  HttpRequest *req = data;
  gchar *uri, *safe_uri;

  if (is_shut_down (self)) {
    GError *error = g_error_new (
        G_IO_ERROR, G_IO_ERROR_CANCELLED, "the client was shut down");
    http_finish (req, error); /* done() is not called after shutdown */
    g_error_free (error);
    return;
  }
  ensure_session (self);
  uri = g_uri_to_string (soup_message_get_uri (req->msg));
  safe_uri = gst_voice_redact (uri);
  g_free (uri);
  GST_DEBUG_OBJECT (self, "request %u: %s %s", req->id,
      soup_message_get_method (req->msg), safe_uri);
  g_free (safe_uri);
  g_hash_table_insert (self->requests, GUINT_TO_POINTER (req->id), req);
  soup_session_send_async (self->session, req->msg, G_PRIORITY_DEFAULT,
      req->cancellable, http_send_done, req);
}

/**
 * gst_voice_client_http_request:
 * @msg: (transfer full): the request, body set
 *
 * Sends @msg on the I/O thread and streams its response to @callbacks.
 *
 * Returns: an id for gst_voice_client_cancel_request(), never 0.
 */
guint
gst_voice_client_http_request (GstVoiceClient *self, SoupMessage *msg,
    const GstVoiceHttpCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify)
{
  HttpRequest *req = g_new0 (HttpRequest, 1);
  guint id = (guint)g_atomic_int_add (&self->next_request_id, 1) + 1;
  gchar *uri = g_uri_to_string (soup_message_get_uri (msg));

  gst_voice_redact_learn (uri);
  g_free (uri);
  copy_headers (soup_message_get_request_headers (msg), NULL);
  req->client = gst_object_ref (self);
  req->id = id;
  req->msg = msg;
  req->cancellable = g_cancellable_new ();
  req->callbacks = *callbacks;
  req->user_data = user_data;
  req->notify = notify;
  /* @req belongs to the I/O thread now and may be gone already. */
  run_on_io (self, http_start_on_io, req, NULL);
  return id;
}

static void
cancel_request_on_io (GstVoiceClient *self, gpointer data)
{
  HttpRequest *req = g_hash_table_lookup (self->requests, data);

  if (req) {
    GST_DEBUG_OBJECT (self, "cancelling request %u", req->id);
    g_cancellable_cancel (req->cancellable);
  }
}

/**
 * gst_voice_client_cancel_request:
 *
 * Aborts a request at once: the connection is closed, so the server sees
 * the client go away. done() follows with G_IO_ERROR_CANCELLED.
 */
void
gst_voice_client_cancel_request (GstVoiceClient *self, guint request_id)
{
  run_on_io (self, cancel_request_on_io, GUINT_TO_POINTER (request_id), NULL);
}

/* ---- Shutdown ---- */

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean done;
} ShutdownWait;

static void
shutdown_on_io (GstVoiceClient *self, gpointer data)
{
  ShutdownWait *wait = data;
  GHashTableIter iter;
  gpointer value;

  GST_OBJECT_LOCK (self);
  self->shut_down = TRUE;
  GST_OBJECT_UNLOCK (self);

  self->closing = TRUE;
  cancel_connect (self);
  clear_source (&self->retry_timer);
  clear_source (&self->watch_timer);
  if (self->ws) {
    SoupWebsocketConnection *ws = g_object_ref (self->ws);
    forget_ws (self);
    if (soup_websocket_connection_get_state (ws) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (
          ws, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
    g_object_unref (ws);
  }
  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_cancellable_cancel (((HttpRequest *)value)->cancellable);
  if (self->session) {
    /* Dropped here: a SoupSession belongs to the thread it was made on. */
    soup_session_abort (self->session);
    g_clear_object (&self->session);
  }

  if (wait) {
    g_mutex_lock (&wait->lock);
    wait->done = TRUE;
    g_cond_signal (&wait->cond);
    g_mutex_unlock (&wait->lock);
  }
}

/**
 * gst_voice_client_shutdown:
 *
 * Closes the WebSocket, aborts requests and returns once no callback runs
 * or will run. Safe to call more than once and from a callback.
 */
void
gst_voice_client_shutdown (GstVoiceClient *self)
{
  ShutdownWait wait = { 0 };

  if (on_io_thread ()) {
    shutdown_on_io (self, NULL);
    return;
  }
  g_mutex_init (&wait.lock);
  g_cond_init (&wait.cond);
  run_on_io (self, shutdown_on_io, &wait, NULL);
  g_mutex_lock (&wait.lock);
  while (!wait.done)
    g_cond_wait (&wait.cond, &wait.lock);
  g_mutex_unlock (&wait.lock);
  g_mutex_clear (&wait.lock);
  g_cond_clear (&wait.cond);
}

/* gst-voiceagent: GstVoiceClient, the network half of every service
 * element: the object and its settings, the I/O thread, shutdown.
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
 *
 * This file holds the object, its settings, the I/O thread and shutdown;
 * the concerns behind them live beside it, each behind
 * voiceclient-private.h: voiceclient-backoff.c (retry policy),
 * voiceclient-sendq.c (send queue and stall detector), voiceclient-ws.c
 * (WebSocket life cycle) and voiceclient-http.c (streamed HTTP).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "voiceclient-private.h"

GST_DEBUG_CATEGORY (voice_client_debug);

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_INITIAL_MS 250
#define DEFAULT_BACKOFF_MAX_MS 10000
#define DEFAULT_QUEUE_LIMIT (1024 * 1024)
#define DEFAULT_STALL_TIMEOUT_MS 5000

G_DEFINE_FINAL_TYPE (GstVoiceClient, gst_voice_client, GST_TYPE_OBJECT);

/* Copies @from into @to and learns the credentials among them. */
void
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

/* Built by the caller, then read only on the I/O thread. */
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
void
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

GSource *
add_timeout (guint ms, GSourceFunc func, gpointer data)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, gst_voice_client_get_io_context ());
  return source;
}

void
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
GstVoiceClientCallbacks
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

gboolean
is_shut_down (GstVoiceClient *self)
{
  gboolean shut_down;

  GST_OBJECT_LOCK (self);
  shut_down = self->shut_down;
  GST_OBJECT_UNLOCK (self);
  return shut_down;
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

static void
log_soup (SoupLogger *logger, SoupLoggerLogLevel level, char direction,
    const char *data, gpointer user_data)
{
  gchar *safe = gst_voice_redact (data);

  GST_TRACE_OBJECT (user_data, "%c %s", direction, safe);
  g_free (safe);
}

void
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

/* ---- Shutdown ---- */

/* On the stack of the thread that waits; @done is protected by @lock. */
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
  cancel_all_requests (self);
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

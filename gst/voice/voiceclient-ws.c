/* gst-voiceagent: GstVoiceClient's WebSocket: connecting with a
 * timeout, the connection's signals, closing after the queue drained,
 * dropping and reconnecting.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voiceclient-private.h"

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

void
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

void
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
  will_retry = retry && schedule_retry_full (self, forced, -1);
  cb = get_callbacks (self, &user_data);
  if (cb.closed)
    cb.closed (self, SOUP_WEBSOCKET_CLOSE_ABNORMAL, "connection dropped",
        will_retry, user_data);
}

void
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
  if (gst_voice_http_status_is_retryable (status))
    will_retry = schedule_retry_full (self, FALSE,
        status ? gst_voice_http_retry_after_ms (
                     soup_message_get_response_headers (msg))
               : -1);
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

/* I/O thread only. */
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

void
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

/* Built by the caller, then read only on the I/O thread. */
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

/* Built by the caller, then read only on the I/O thread. */
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

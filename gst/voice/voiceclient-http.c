/* gst-voiceagent: GstVoiceClient's streamed HTTP requests: the
 * response reaches the caller piece by piece as it arrives, and a cancel
 * closes the connection so the server sees the client go.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voiceclient-private.h"

#define READ_CHUNK 16384

/* One request under way. Filled in by the caller's thread, then handed to
 * the I/O thread, which alone touches it (it is in `requests` there) until
 * http_finish() frees it. */
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

/* Aborts every request under way; done() is not called after shutdown. */
void
cancel_all_requests (GstVoiceClient *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->requests);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_cancellable_cancel (((HttpRequest *)value)->cancellable);
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include <libsoup/soup.h>

/* Callers of gst_voice_redact() that include only this header. */
#include "gstvoiceredact.h"

G_BEGIN_DECLS

/**
 * GstVoiceClient:
 *
 * The network half of a service element: one WebSocket (Deepgram,
 * ElevenLabs) and/or streamed HTTP requests (LLM, TTS fallback), all run on a
 * process-wide I/O thread so no streaming thread ever waits on the network.
 *
 * - gst_voice_client_send_text() / _send_binary() are thread-safe and never
 *   block: messages go into a queue bounded in bytes; when it is full the
 *   message is refused (FALSE) and the caller decides what to drop.
 * - Messages leave the queue only while the socket drains; when queued data
 *   makes no progress for #stall-timeout the client reports a stall and, if
 *   reconnecting is on, drops the connection and reconnects.
 * - Connecting has a timeout; a failed or dropped connection is retried with
 *   exponential backoff and equal jitter (half fixed, half random), waiting
 *   at least the server's Retry-After (up to the longest backoff), except
 *   for errors that retrying cannot fix (HTTP 400, 401, 403, 404, 422),
 *   which are reported and final (see gstvoicehttp.h).
 * - Everything it logs goes through gst_voice_redact(), so API keys never
 *   reach the debug log.
 *
 * All callbacks run on the I/O thread; they may call any client function.
 */
#define GST_TYPE_VOICE_CLIENT (gst_voice_client_get_type ())
G_DECLARE_FINAL_TYPE (
    GstVoiceClient, gst_voice_client, GST, VOICE_CLIENT, GstObject)

typedef struct
{
  /* Connected; @reconnected is TRUE on every connection after the first. */
  void (*opened) (
      GstVoiceClient *client, gboolean reconnected, gpointer user_data);
  /* A complete WebSocket message. */
  void (*message) (GstVoiceClient *client, SoupWebsocketDataType type,
      GBytes *message, gpointer user_data);
  /* The connection closed: @code is the WebSocket close code (0 if none was
   * received), @will_retry says whether a reconnect is scheduled. */
  void (*closed) (GstVoiceClient *client, gushort code, const gchar *reason,
      gboolean will_retry, gpointer user_data);
  /* Connecting failed: @http_status is the handshake's HTTP status (0 for
   * network errors and timeouts), @response_headers the handshake response's
   * headers (NULL without a response; vendors put error details there, e.g.
   * Deepgram's dg-error). */
  void (*connect_failed) (GstVoiceClient *client, guint http_status,
      SoupMessageHeaders *response_headers, const GError *error,
      gboolean will_retry, gpointer user_data);
  /* Queued data made no progress for the stall timeout. */
  void (*stalled) (
      GstVoiceClient *client, gsize queued_bytes, gpointer user_data);
} GstVoiceClientCallbacks;

GstVoiceClient *gst_voice_client_new (const gchar *name);

void gst_voice_client_set_callbacks (GstVoiceClient *client,
    const GstVoiceClientCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify);

void gst_voice_client_set_connect_timeout (
    GstVoiceClient *client, guint timeout_ms);
void gst_voice_client_set_backoff (
    GstVoiceClient *client, guint initial_ms, guint max_ms, guint max_attempts);
void gst_voice_client_set_queue_limit (GstVoiceClient *client, gsize max_bytes);
void gst_voice_client_set_stall_timeout (
    GstVoiceClient *client, guint timeout_ms);

/* WebSocket: connects to @url (ws:// or wss://) with the extra request
 * @headers (may be NULL) and @protocols (may be NULL), and keeps reconnecting
 * when @reconnect is TRUE. */
void gst_voice_client_open_websocket (GstVoiceClient *client, const gchar *url,
    SoupMessageHeaders *headers, const gchar *const *protocols,
    gboolean reconnect);
gboolean gst_voice_client_send_text (GstVoiceClient *client, const gchar *text);
gboolean gst_voice_client_send_binary (GstVoiceClient *client, GBytes *data);
void gst_voice_client_close (
    GstVoiceClient *client, gushort code, const gchar *reason);
void gst_voice_client_reconnect (GstVoiceClient *client);
gboolean gst_voice_client_is_open (GstVoiceClient *client);
guint gst_voice_client_clear_queue (GstVoiceClient *client);
gsize gst_voice_client_get_queued_bytes (GstVoiceClient *client);
guint gst_voice_client_get_reconnect_count (GstVoiceClient *client);

/* Streamed HTTP: the response arrives in pieces as the server sends them. */
typedef struct
{
  /* Status line and headers are in. Return FALSE to cancel. */
  gboolean (*response) (GstVoiceClient *client, guint request_id, guint status,
      SoupMessageHeaders *headers, gpointer user_data);
  /* A piece of the body. */
  void (*chunk) (GstVoiceClient *client, guint request_id, GBytes *data,
      gpointer user_data);
  /* Finished: @error is NULL on success, G_IO_ERROR_CANCELLED after
   * gst_voice_client_cancel_request(). Always called exactly once. */
  void (*done) (GstVoiceClient *client, guint request_id, const GError *error,
      gpointer user_data);
} GstVoiceHttpCallbacks;

guint gst_voice_client_http_request (GstVoiceClient *client, SoupMessage *msg,
    const GstVoiceHttpCallbacks *callbacks, gpointer user_data,
    GDestroyNotify notify);
void gst_voice_client_cancel_request (GstVoiceClient *client, guint request_id);

/* Stops everything and waits until no callback is running or will run. */
void gst_voice_client_shutdown (GstVoiceClient *client);

GMainContext *gst_voice_client_get_io_context (void);

G_END_DECLS

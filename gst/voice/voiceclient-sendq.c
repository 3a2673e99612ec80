/* gst-voiceagent: GstVoiceClient's send queue: messages wait in a
 * queue bounded in bytes and go to libsoup only while the kernel's send
 * buffer (SIOCOUTQ) has room; a timer drains it and detects stalls.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#include "voiceclient-private.h"

/* Hand libsoup more data only while the kernel holds less than this unsent:
 * libsoup's own output queue is unbounded, so this is where the bound lives. */
#define SOCKET_BACKLOG_LIMIT (64 * 1024)
#define WATCH_INTERVAL_MS 50

/* A message waiting to be sent. While in out_queue it is protected by
 * OBJECT_LOCK with the queue; once drain() popped it, drain() alone owns it. */
struct _OutMessage
{
  SoupWebsocketDataType type;
  GBytes *data;
};

void
out_message_free (OutMessage *m)
{
  g_bytes_unref (m->data);
  g_free (m);
}

/* Returns (transfer none) the TCP socket under @stream, or NULL. libsoup
 * hands a WebSocket its connection wrapped in a private GIOStream that
 * carries the socket as "GSocket" data (soup_connection_steal_iostream()),
 * and a TLS connection wraps the TCP one, so this looks through wrappers. */
GSocket *
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

void
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
void
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

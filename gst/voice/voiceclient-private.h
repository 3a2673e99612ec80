/* gst-voiceagent: what the files of GstVoiceClient share and
 * nothing else: the instance struct, the debug category, and the helpers
 * one file calls in another.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "gstvoiceclient.h"
#include "gstvoiceredact.h"
#include "gstvoicehttp.h"

G_BEGIN_DECLS

/* Every file of the client logs to the one "voiceclient" category
 * (defined in gstvoiceclient.c). */
G_GNUC_INTERNAL GST_DEBUG_CATEGORY_EXTERN (voice_client_debug);
#define GST_CAT_DEFAULT voice_client_debug

/* The object lock guards the client's fields and is a leaf: nothing else
 * is taken under it (ShutdownWait.lock and the redaction list's lock are
 * taken, but never while it is held). Fields marked "I/O thread only" are
 * touched by the I/O thread's callbacks alone and need no lock. */
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

/* The helpers below were static before the client was split into files
 * and keep their short names; G_GNUC_INTERNAL keeps them out of the
 * library's exported symbols. Unless stated, each runs on the I/O thread. */

/* gstvoiceclient.c: I/O thread and object */
typedef void (*IoFunc) (GstVoiceClient *self, gpointer data);

G_GNUC_INTERNAL void run_on_io (
    GstVoiceClient *self, IoFunc func, gpointer data, GDestroyNotify free_data);
G_GNUC_INTERNAL GSource *add_timeout (
    guint ms, GSourceFunc func, gpointer data);
G_GNUC_INTERNAL void clear_source (GSource **source);
G_GNUC_INTERNAL GstVoiceClientCallbacks get_callbacks (
    GstVoiceClient *self, gpointer *user_data);
G_GNUC_INTERNAL gboolean is_shut_down (GstVoiceClient *self);
G_GNUC_INTERNAL void copy_headers (
    SoupMessageHeaders *from, SoupMessageHeaders *to);
G_GNUC_INTERNAL void ensure_session (GstVoiceClient *self);

/* voiceclient-backoff.c */
G_GNUC_INTERNAL gboolean schedule_retry_full (
    GstVoiceClient *self, gboolean forced, gint64 retry_after_ms);
G_GNUC_INTERNAL gboolean schedule_retry (GstVoiceClient *self);
G_GNUC_INTERNAL void connection_ended (GstVoiceClient *self);

/* voiceclient-sendq.c */
typedef struct _OutMessage OutMessage;

G_GNUC_INTERNAL void out_message_free (OutMessage *m);
G_GNUC_INTERNAL GSocket *find_socket (GIOStream *stream);
G_GNUC_INTERNAL void note_progress (GstVoiceClient *self);
G_GNUC_INTERNAL void drain (GstVoiceClient *self);

/* voiceclient-ws.c */
G_GNUC_INTERNAL void start_connect (GstVoiceClient *self);
G_GNUC_INTERNAL void cancel_connect (GstVoiceClient *self);
G_GNUC_INTERNAL void forget_ws (GstVoiceClient *self);
G_GNUC_INTERNAL void drop_connection (GstVoiceClient *self, gboolean retry);

/* voiceclient-http.c */
G_GNUC_INTERNAL void cancel_all_requests (GstVoiceClient *self);

G_END_DECLS

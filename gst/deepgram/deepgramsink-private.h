/* gst-voiceagent: what the files of deepgramsink share and nothing else:
 * the instance struct, the debug category, and the helpers one file calls
 * in another.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "voice.h"
#include "gstdeepgramsink.h"
#include "options.h"
#include "timeline.h"

G_BEGIN_DECLS

/* Both files of the element log to the one "deepgramsink" category
 * (defined in gstdeepgramsink.c). */
G_GNUC_INTERNAL GST_DEBUG_CATEGORY_EXTERN (deepgram_sink_debug);
#define GST_CAT_DEFAULT deepgram_sink_debug

struct _GstDeepgramSink
{
  GstBaseSink parent;

  /* Protected by OBJECT_LOCK */
  DgOptions opts;
  gchar *session_name;

  /* Written under OBJECT_LOCK by gst_voice_pair_join/leave (NULL→READY,
   * READY→NULL); read without a lock in between. Its queues are asked for
   * at each use rather than cached, so nothing else changes with it. */
  GstVoiceSession *session;

  /* Set in start() and stop(), read-only in between */
  DgOptions conf; /* the options, copied at start */
  GstVoiceClient *client;
  GSource *tick; /* on the I/O context */

  /* Protected by lock (streaming thread, I/O thread, tick) */
  GMutex lock;
  DgTimeline *timeline; /* NULL until caps */
  gchar *caps_desc; /* what Deepgram was told the audio is */
  guint bpf; /* bytes per frame of that audio */
  gchar *url; /* for error messages; may hold no key */
  gboolean connected;
  guint connections;
  gint64 last_send_us; /* anything handed to the client */
  gint64 finalize_deadline_us; /* a Finalize is unanswered until then */
  gboolean eos; /* EOS received: CloseStream when all audio is out */
  gboolean close_sent; /* CloseStream sent on this connection */
  gint64 eos_start_us;
  gint64 last_rx_us; /* last message from Deepgram */
  gboolean eos_done; /* EOS went to the partner */
  gboolean failed; /* a final error was posted: no more retries */
  gboolean outage_warned; /* a warning for the current outage was posted */
  gboolean dropping; /* the backlog overflowed and has not drained yet */
  guint64 dropped_frames; /* in the current overflow episode */
  gchar *request_id; /* of the last connection */
};

typedef struct
{
  guint64 dropped; /* frames dropped now */
  guint64 episode; /* frames dropped in this episode */
  guint64 backlog;
  guint rate;
  gboolean started; /* an episode started now */
  gboolean recovered; /* an episode ended now */
  gboolean connected;
} BacklogReport;

/* The helpers below were static before the element was split into files
 * and keep their short names; G_GNUC_INTERNAL keeps them out of the
 * plugin's exported symbols. */

/* gstdeepgramsink.c */
G_GNUC_INTERNAL void to_partner (GstDeepgramSink *self, GstMiniObject *obj);
G_GNUC_INTERNAL void post_structure (GstDeepgramSink *self, GstStructure *s);
G_GNUC_INTERNAL void post_usage (GstDeepgramSink *self, gboolean final);

/* deepgramsink-connection.c */
G_GNUC_INTERNAL void open_connection (
    GstDeepgramSink *self, const gchar *encoding, guint rate, guint bpf);
G_GNUC_INTERNAL void send_finalize_locked (GstDeepgramSink *self);
G_GNUC_INTERNAL void send_pending_locked (GstDeepgramSink *self);
G_GNUC_INTERNAL void bound_backlog_locked (
    GstDeepgramSink *self, BacklogReport *report);
G_GNUC_INTERNAL void post_backlog_report (
    GstDeepgramSink *self, const BacklogReport *r);
G_GNUC_INTERNAL void on_message (GstVoiceClient *client,
    SoupWebsocketDataType type, GBytes *message, gpointer user_data);
G_GNUC_INTERNAL void on_opened (
    GstVoiceClient *client, gboolean reconnected, gpointer user_data);
G_GNUC_INTERNAL void finish_eos (GstDeepgramSink *self, gboolean timed_out);
G_GNUC_INTERNAL void on_closed (GstVoiceClient *client, gushort code,
    const gchar *reason, gboolean will_retry, gpointer user_data);
G_GNUC_INTERNAL void on_connect_failed (GstVoiceClient *client,
    guint http_status, SoupMessageHeaders *response_headers,
    const GError *error, gboolean will_retry, gpointer user_data);
G_GNUC_INTERNAL void on_stalled (
    GstVoiceClient *client, gsize queued_bytes, gpointer user_data);
G_GNUC_INTERNAL void start_tick (GstDeepgramSink *self);

G_END_DECLS

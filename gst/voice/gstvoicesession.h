/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "gstvoicequeue.h"

G_BEGIN_DECLS

/**
 * GstVoiceSession:
 *
 * The meeting point of a sink/src element pair (deepgramsink + deepgramsrc,
 * elevenlabssink + elevenlabssrc) inside one process, found by a kind
 * ("deepgram") and a session name, as intervideosink/intervideosrc meet by
 * channel. Either half may acquire it first; it lives while at least one half
 * holds it and a later acquire after both released gets a fresh one.
 *
 * It carries two queues: @GST_VOICE_SESSION_TO_SRC (buffers and events from
 * the sink half to the src half) and @GST_VOICE_SESSION_TO_SINK (upstream
 * events from the src half back to the sink half). A sink half that can
 * take upstream events at any time registers a forwarder instead
 * (gst_voice_session_set_upstream()); the src half then hands them over
 * with gst_voice_session_push_upstream() on its own thread, and no thread
 * has to wait on @GST_VOICE_SESSION_TO_SINK.
 */
#define GST_TYPE_VOICE_SESSION (gst_voice_session_get_type ())
G_DECLARE_FINAL_TYPE (
    GstVoiceSession, gst_voice_session, GST, VOICE_SESSION, GObject)

typedef enum {
  GST_VOICE_SESSION_TO_SRC = 0,
  GST_VOICE_SESSION_TO_SINK = 1,
} GstVoiceSessionDirection;

GstVoiceSession *gst_voice_session_acquire (
    const gchar *kind, const gchar *name);
void gst_voice_session_release (GstVoiceSession *session);

const gchar *gst_voice_session_get_kind (GstVoiceSession *session);
const gchar *gst_voice_session_get_name (GstVoiceSession *session);
GstVoiceQueue *gst_voice_session_get_queue (
    GstVoiceSession *session, GstVoiceSessionDirection direction);

/**
 * GstVoiceUpstreamFunc:
 * @pad: the pad given to gst_voice_session_set_upstream()
 * @event: (transfer full): an upstream event from the src half
 *
 * Forwards @event from the sink half, on the src half's thread. It must not
 * block.
 */
typedef void (*GstVoiceUpstreamFunc) (GstPad *pad, GstEvent *event);

void gst_voice_session_set_upstream (
    GstVoiceSession *session, GstPad *pad, GstVoiceUpstreamFunc func);
void gst_voice_session_push_upstream (
    GstVoiceSession *session, GstEvent *event);

guint gst_voice_session_count (void);
gchar *gst_voice_session_make_unique_name (const gchar *prefix);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstVoiceQueue:
 *
 * A thread-safe FIFO of #GstMiniObject (buffers, events, messages) bounded in
 * bytes of buffer payload. Push never blocks: a streaming thread must not wait
 * on a slow consumer. Pop can wait with a timeout and is woken by
 * gst_voice_queue_set_flushing(). Events count as zero bytes, so control
 * never gets refused for lack of room.
 */
typedef struct _GstVoiceQueue GstVoiceQueue;

GstVoiceQueue *gst_voice_queue_new (gsize max_bytes);
void gst_voice_queue_free (GstVoiceQueue *queue);

gboolean gst_voice_queue_push (GstVoiceQueue *queue, GstMiniObject *item);
gboolean gst_voice_queue_push_force (GstVoiceQueue *queue, GstMiniObject *item);
GstMiniObject *gst_voice_queue_pop (GstVoiceQueue *queue, gint64 timeout_us);
GstMiniObject *gst_voice_queue_try_pop (GstVoiceQueue *queue);
GstMiniObject *gst_voice_queue_peek (GstVoiceQueue *queue);

guint gst_voice_queue_clear (GstVoiceQueue *queue);
void gst_voice_queue_set_flushing (GstVoiceQueue *queue, gboolean flushing);
gboolean gst_voice_queue_is_flushing (GstVoiceQueue *queue);

gsize gst_voice_queue_get_bytes (GstVoiceQueue *queue);
guint gst_voice_queue_get_length (GstVoiceQueue *queue);
gsize gst_voice_queue_get_max_bytes (GstVoiceQueue *queue);
void gst_voice_queue_set_max_bytes (GstVoiceQueue *queue, gsize max_bytes);

G_END_DECLS

/* gst-voiceagent: work decided under an element's lock and done after it
 * is released.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef void (*GstVoiceDeferredFunc) (gpointer data);

/**
 * GstVoiceDeferred:
 *
 * What a handler decided while holding its element's lock and must do
 * after releasing it: posting may run sync bus handlers that call back
 * into the element, client calls may complete at once and re-enter it,
 * and clock calls take the clock's lock. Entries run by stage (lowest
 * first), and within a stage in the order they were added.
 *
 * Not thread-safe, and needs no lock: a local of the one handler that
 * fills and runs it. Initialise with GST_VOICE_DEFERRED_INIT.
 */
typedef struct
{
  /*< private >*/
  GArray *entries;
  guint max_stage;
} GstVoiceDeferred;

#define GST_VOICE_DEFERRED_INIT                                                \
  {                                                                            \
    NULL, 0                                                                    \
  }

void gst_voice_deferred_add (GstVoiceDeferred *d, guint stage,
    GstVoiceDeferredFunc func, gpointer data, GDestroyNotify destroy);
void gst_voice_deferred_add_message (
    GstVoiceDeferred *d, guint stage, GstElement *element, GstMessage *msg);
void gst_voice_deferred_run (GstVoiceDeferred *d);

G_END_DECLS

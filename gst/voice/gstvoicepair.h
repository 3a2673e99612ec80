/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "gstvoicesession.h"

G_BEGIN_DECLS

/**
 * GstVoicePairInfo:
 * @kind: the session kind both halves of the pair acquire
 * @name_offset: G_STRUCT_OFFSET() of the element's `gchar *` session name,
 *   protected by the element's OBJECT_LOCK
 * @session_offset: G_STRUCT_OFFSET() of the element's `GstVoiceSession *`;
 *   written under OBJECT_LOCK by the helpers only, so it may be read under
 *   OBJECT_LOCK at any time, and without a lock between NULL→READY and
 *   READY→NULL by the threads those transitions start and stop
 *
 * How a sink/src pair element keeps its session; one static instance per
 * element class. An element with more to do when it joins or leaves calls
 * gst_voice_pair_join() and gst_voice_pair_leave() from its own
 * change_state instead of gst_voice_pair_change_state().
 */
typedef struct
{
  const gchar *kind;
  glong name_offset;
  glong session_offset;
} GstVoicePairInfo;

void gst_voice_pair_join (GstElement *element, const GstVoicePairInfo *info);
void gst_voice_pair_leave (GstElement *element, const GstVoicePairInfo *info);
GstStateChangeReturn gst_voice_pair_change_state (GstElement *element,
    GstStateChange transition, const GstVoicePairInfo *info,
    GstElementClass *parent_class);

G_END_DECLS

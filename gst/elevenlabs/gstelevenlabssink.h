/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_ELEVENLABS_SINK (gst_elevenlabs_sink_get_type ())
G_DECLARE_FINAL_TYPE (
    GstElevenLabsSink, gst_elevenlabs_sink, GST, ELEVENLABS_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE (elevenlabssink);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/base/gstbasesink.h>

G_BEGIN_DECLS

#define GST_TYPE_DEEPGRAM_SINK (gst_deepgram_sink_get_type ())
G_DECLARE_FINAL_TYPE (
    GstDeepgramSink, gst_deepgram_sink, GST, DEEPGRAM_SINK, GstBaseSink)

GST_ELEMENT_REGISTER_DECLARE (deepgramsink);

G_END_DECLS

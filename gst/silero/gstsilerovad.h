/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_SILERO_VAD (gst_silero_vad_get_type ())
G_DECLARE_FINAL_TYPE (
    GstSileroVad, gst_silero_vad, GST, SILERO_VAD, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (silerovad);

G_END_DECLS

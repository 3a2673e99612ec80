/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ELEVENLABS_BIN (gst_elevenlabs_bin_get_type ())
G_DECLARE_FINAL_TYPE (
    GstElevenLabsBin, gst_elevenlabs_bin, GST, ELEVENLABS_BIN, GstBin)

GST_ELEMENT_REGISTER_DECLARE (elevenlabs);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_DEEPGRAM_BIN (gst_deepgram_bin_get_type ())
G_DECLARE_FINAL_TYPE (
    GstDeepgramBin, gst_deepgram_bin, GST, DEEPGRAM_BIN, GstBin)

GST_ELEMENT_REGISTER_DECLARE (deepgram);

G_END_DECLS

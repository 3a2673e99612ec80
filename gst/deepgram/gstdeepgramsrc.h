/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_DEEPGRAM_SRC (gst_deepgram_src_get_type ())
G_DECLARE_FINAL_TYPE (
    GstDeepgramSrc, gst_deepgram_src, GST, DEEPGRAM_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE (deepgramsrc);

G_END_DECLS

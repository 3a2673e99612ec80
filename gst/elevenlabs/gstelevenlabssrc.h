/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/base/gstpushsrc.h>

G_BEGIN_DECLS

#define GST_TYPE_ELEVENLABS_SRC (gst_elevenlabs_src_get_type ())
G_DECLARE_FINAL_TYPE (
    GstElevenLabsSrc, gst_elevenlabs_src, GST, ELEVENLABS_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE (elevenlabssrc);

G_END_DECLS

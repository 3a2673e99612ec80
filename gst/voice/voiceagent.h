/* gst-voiceagent: the public face of libgstvoiceagent-1.0.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What an element outside this project may use to take part in a
 * gst-voiceagent conversation: the transcript meta on text buffers and the
 * conversation-control events (speech-start, end-of-turn, interrupt, ...).
 * Installed as <gst/voiceagent/voiceagent.h>; pkg-config gstvoiceagent-1.0.
 */
#pragma once

#include <gst/gst.h>
#include "gstvoiceevents.h"
#include "gstvoicemeta.h"

G_BEGIN_DECLS

void gst_voice_init (void);

G_END_DECLS

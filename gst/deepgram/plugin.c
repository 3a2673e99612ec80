/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voice.h"
#include "gstdeepgrambin.h"
#include "gstdeepgramsink.h"
#include "gstdeepgramsrc.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  gst_voice_init ();
  ret |= GST_ELEMENT_REGISTER (deepgramsink, plugin);
  ret |= GST_ELEMENT_REGISTER (deepgramsrc, plugin);
  ret |= GST_ELEMENT_REGISTER (deepgram, plugin);
  return ret;
}

/* voicedeepgram (libgstvoicedeepgram.so), not deepgram: gst-plugins-rs
 * ships a plugin named deepgram (libgstdeepgram.so, deepgramtranscriber),
 * and two plugins of one name cannot be installed side by side
 * (docs/elements/README.md). */
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, voicedeepgram,
    "Deepgram live speech-to-text: deepgramsink, deepgramsrc and the deepgram "
    "bin",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Locking order: no locks. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <voice.h>

#include "gstelevenlabsbin.h"
#include "gstelevenlabssink.h"
#include "gstelevenlabssrc.h"
#include "pair.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ok = TRUE;

  gst_voice_init ();
  el_pair_init ();
  ok &= GST_ELEMENT_REGISTER (elevenlabssink, plugin);
  ok &= GST_ELEMENT_REGISTER (elevenlabssrc, plugin);
  ok &= GST_ELEMENT_REGISTER (elevenlabs, plugin);
  return ok;
}

/* voiceelevenlabs (libgstvoiceelevenlabs.so), not elevenlabs:
 * gst-plugins-rs ships a plugin named elevenlabs (libgstelevenlabs.so,
 * elevenlabssynthesizer), and two plugins of one name cannot be installed
 * side by side (docs/elements/README.md). */
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, voiceelevenlabs,
    "ElevenLabs streaming text-to-speech: a text sink, a clock-paced live "
    "audio source with barge-in, and a bin pairing them",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <voice.h>

#include "gstsilerovad.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gst_voice_init ();
  return GST_ELEMENT_REGISTER (silerovad, plugin);
}

/* Every plugin of the project is named voice*, so none can take the name
 * of another project's (docs/elements/README.md). */
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, voicesilero,
    "Voice activity detection with Silero VAD v5, in plain C", plugin_init,
    VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)

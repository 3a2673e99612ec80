/* A stand-in for a gst-plugins-rs plugin, for test-rs-coexist: built once
 * as libgstdeepgram.so (plugin "deepgram", element deepgramtranscriber) and
 * once as libgstelevenlabs.so (plugin "elevenlabs", element
 * elevenlabssynthesizer), the names gst-plugins-rs installs. The element
 * does nothing: only the names matter.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#ifndef FAKE_PLUGIN
#error "build with -DFAKE_PLUGIN=<plugin name> -DFAKE_ELEMENT=\"<element>\""
#endif

static void
fake_rs_class_init (gpointer klass, gpointer data)
{
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Fake gst-plugins-rs element", "Filter/Audio/Text",
      "Has the name of a gst-plugins-rs element, for a coexistence test",
      "gst-voiceagent tests");
}

static gboolean
plugin_init (GstPlugin *plugin)
{
  /* The type name carries the element's, so both builds load into one
   * process without fighting over one GType. */
  GType type = g_type_register_static_simple (GST_TYPE_ELEMENT,
      "FakeRs_" FAKE_ELEMENT, sizeof (GstElementClass), fake_rs_class_init,
      sizeof (GstElement), NULL, 0);

  return gst_element_register (plugin, FAKE_ELEMENT, GST_RANK_NONE, type);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, FAKE_PLUGIN,
    "Stand-in for a gst-plugins-rs plugin of the same name", plugin_init, "0.0",
    "LGPL", "gst-voiceagent-tests", "https://gstreamer.freedesktop.org")

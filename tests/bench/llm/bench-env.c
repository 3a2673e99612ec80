/* The llm benchmarks' environment (bench-env.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <gst/gst.h>
#include "bench-env.h"

/* Points at the build tree unless the environment already does. */
void
bench_use_build_tree (void)
{
  gchar *path;

  if (!g_getenv ("VOICEAGENT_EMULATOR")) {
    path = g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "emulator", "voiceagent-emulator", NULL);
    g_setenv ("VOICEAGENT_EMULATOR", path, TRUE);
    g_free (path);
  }
  if (!g_getenv ("GST_PLUGIN_PATH_1_0") && !g_getenv ("GST_PLUGIN_PATH")) {
    path = g_build_filename (VOICEAGENT_BUILD_DIR, "gst", "llm", NULL);
    g_setenv ("GST_PLUGIN_PATH_1_0", path, TRUE);
    g_free (path);
    path = g_build_filename (VOICEAGENT_BUILD_DIR, "bench-registry.dat", NULL);
    g_setenv ("GST_REGISTRY_1_0", path, TRUE);
    g_free (path);
    /* Only the plugins the tests use, scanned in-process (the forked
     * scanner would not carry a sanitizer runtime). */
    path = g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "system-plugins", NULL);
    g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", path, FALSE);
    g_setenv ("GST_REGISTRY_FORK", "no", FALSE);
    g_free (path);
  }
}

/* Returns the element's own measure of the time to first token (request
 * handed to the network thread → first token parsed) of the next
 * `first-token` on @bus, in ms; NAN when none comes within 5 s. */
gdouble
bench_element_ttft_ms (GstBus *bus)
{
  GstMessage *m;
  gdouble ms = NAN;

  while (isnan (ms) &&
      (m = gst_bus_timed_pop_filtered (
           bus, 5 * GST_SECOND, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (m);
    guint64 ns;
    if (g_strcmp0 (gst_structure_get_string (s, "event"), "first-token") == 0 &&
        gst_structure_get_uint64 (s, "ttft", &ns))
      ms = ns / 1e6;
    gst_message_unref (m);
  }
  return ms;
}

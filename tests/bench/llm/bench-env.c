/* The llm benchmarks' environment (bench-env.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

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

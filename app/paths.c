/* voiceagent: where the server's own files are.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * An installed voiceagent finds everything relative to its own binary:
 * it is <prefix>/<bindir>/voiceagent, so the prefix is the binary's
 * directory plus VOICEAGENT_BIN_TO_PREFIX. That keeps an installed tree
 * relocatable (meson install --destdir, a tarball, /opt) and means an
 * installed server never reads a source checkout that happens to be on
 * the same machine. A binary inside the build directory (meson devenv,
 * the tests) uses the checkout's pipelines/ and the plugins that
 * GST_PLUGIN_PATH names, as before.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdarg.h>
#include <string.h>
#include <gst/gst.h>
#include "paths.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

typedef struct
{
  gboolean build_tree;
  gchar *prefix; /* NULL in the build tree */
} Layout;

static gchar *
own_binary (void)
{
  gchar *link = g_file_read_link ("/proc/self/exe", NULL);
  gchar *path;

  if (link == NULL)
    return NULL;
  path = g_canonicalize_filename (link, NULL);
  g_free (link);
  return path;
}

static gboolean
is_below (const gchar *path, const gchar *dir)
{
  gchar *canonical = g_canonicalize_filename (dir, NULL);
  gsize n = strlen (canonical);
  gboolean below = g_str_has_prefix (path, canonical) && path[n] == '/';

  g_free (canonical);
  return below;
}

/* Computed once, before any thread asks: the answer never changes. */
static const Layout *
layout (void)
{
  static gsize once = 0;
  static Layout l;

  if (g_once_init_enter (&once)) {
    gchar *exe = own_binary ();

    l.build_tree = exe == NULL || is_below (exe, VOICEAGENT_BUILD_DIR);
    if (!l.build_tree) {
      gchar *dir = g_path_get_dirname (exe);

      l.prefix = g_canonicalize_filename (VOICEAGENT_BIN_TO_PREFIX, dir);
      g_free (dir);
    }
    g_free (exe);
    g_once_init_leave (&once, 1);
  }
  return &l;
}

/**
 * va_paths_in_build_tree:
 *
 * Returns: TRUE when this binary runs from the build directory (a
 * checkout), FALSE when it runs from an installed tree.
 */
gboolean
va_paths_in_build_tree (void)
{
  return layout ()->build_tree;
}

/**
 * va_paths_prefix:
 *
 * Returns: the installed tree's prefix this binary runs from, or NULL in
 * the build tree.
 */
const gchar *
va_paths_prefix (void)
{
  return layout ()->prefix;
}

static gchar *
data_dir (void)
{
  const Layout *l = layout ();

  if (l->build_tree)
    return g_strdup (VOICEAGENT_MODEL_DIR);
  return g_build_filename (l->prefix, VOICEAGENT_REL_DATADIR, NULL);
}

/**
 * va_paths_data_file:
 * @first_element: the first path element below the data directory
 *
 * Returns: (transfer full): a path in the data directory: the installed
 * tree's <datadir>/gst-voiceagent, or in the build tree the directory
 * scripts/setup fills (the model, the vendored client files).
 */
gchar *
va_paths_data_file (const gchar *first_element, ...)
{
  gchar *dir = data_dir ();
  GPtrArray *parts = g_ptr_array_new ();
  const gchar *part;
  gchar *path;
  va_list args;

  g_ptr_array_add (parts, dir);
  va_start (args, first_element);
  for (part = first_element; part; part = va_arg (args, const gchar *))
    g_ptr_array_add (parts, (gpointer)part);
  va_end (args);
  g_ptr_array_add (parts, NULL);
  path = g_build_filenamev ((gchar **)parts->pdata);
  g_ptr_array_free (parts, TRUE);
  g_free (dir);
  return path;
}

/**
 * va_paths_pipelines_dir:
 *
 * Returns: (transfer full): the checkout's pipelines/ in the build tree,
 * the installed tree's <datadir>/gst-voiceagent/pipelines otherwise.
 */
gchar *
va_paths_pipelines_dir (void)
{
  if (layout ()->build_tree)
    return g_build_filename (VOICEAGENT_SOURCE_DIR, "pipelines", NULL);
  return va_paths_data_file ("pipelines", NULL);
}

/**
 * va_paths_plugins_dir:
 *
 * Returns: (transfer full) (nullable): the installed tree's plugin
 * directory, or NULL in the build tree (GST_PLUGIN_PATH names it there).
 */
gchar *
va_paths_plugins_dir (void)
{
  const Layout *l = layout ();

  if (l->build_tree)
    return NULL;
  return g_build_filename (l->prefix, VOICEAGENT_REL_PLUGINSDIR, NULL);
}

/**
 * va_paths_emulator:
 *
 * Returns: (transfer full): the voiceagent-emulator beside this binary.
 */
gchar *
va_paths_emulator (void)
{
  const Layout *l = layout ();

  if (l->build_tree)
    return g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "emulator", "voiceagent-emulator", NULL);
  return g_build_filename (
      l->prefix, VOICEAGENT_REL_BINDIR, "voiceagent-emulator", NULL);
}

/* The file the registry loads an element from: another copy of our
 * plugins (an older install in GStreamer's own directory) would win over
 * ours by name, and the calls would run code that is not this release. */
static gchar *
element_file (const gchar *element)
{
  GstPluginFeature *f =
      gst_registry_lookup_feature (gst_registry_get (), element);
  GstPlugin *plugin = f ? gst_plugin_feature_get_plugin (f) : NULL;
  gchar *file = NULL;

  if (plugin) {
    file = g_strdup (gst_plugin_get_filename (plugin));
    gst_object_unref (plugin);
  }
  if (f)
    gst_object_unref (f);
  return file;
}

/**
 * va_paths_register_plugins:
 * @error: where to say why the plugins cannot be used
 *
 * An installed server adds its own plugin directory to the registry, so
 * it needs neither GST_PLUGIN_PATH nor a prefix GStreamer scans (Debian's
 * GStreamer does not look in /usr/local). Call after gst_init().
 *
 * Returns: FALSE when the installed tree has no plugin directory.
 */
gboolean
va_paths_register_plugins (GError **error)
{
  gchar *dir = va_paths_plugins_dir ();
  gchar *vad;

  if (dir == NULL)
    return TRUE;
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "the installed plugin directory %s is missing: reinstall "
        "gst-voiceagent (meson install) into the prefix %s",
        dir, va_paths_prefix ());
    g_free (dir);
    return FALSE;
  }
  gst_registry_scan_path (gst_registry_get (), dir);
  vad = element_file ("silerovad");
  if (vad && !is_below (vad, dir))
    g_printerr ("voiceagent: warning: silerovad comes from %s, not from this "
                "install's %s: remove the other copy or its directory from "
                "GST_PLUGIN_PATH\n",
        vad, dir);
  GST_INFO ("plugins from %s", dir);
  g_free (vad);
  g_free (dir);
  return TRUE;
}

/* Our plugins installed beside gst-plugins-rs's.
 *
 * gst-plugins-rs installs libgstdeepgram.so (plugin "deepgram", element
 * deepgramtranscriber) and libgstelevenlabs.so (plugin "elevenlabs",
 * element elevenlabssynthesizer). Ours once had those very file and plugin
 * names: in one folder one file overwrote the other, and in two folders
 * the registry kept whichever it scanned first (it skips a file whose name
 * it already has). This test puts copies of our four plugins and two
 * stand-ins with rs's names (fake-rs-plugin.c) in one folder (same-dir) or
 * in two (two-dirs), scans them into a fresh registry, and checks that all
 * six plugins load, every element of both is found in the plugin it
 * belongs to, no two plugins share a name, and GStreamer warned about
 * nothing while scanning.
 *
 *   test-rs-coexist same-dir|two-dirs OURS.so... -- RS.so...
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <string.h>

typedef struct
{
  const gchar *element;
  const gchar *plugin;
} Expected;

static const Expected expected[] = {
  { "silerovad", "voicesilero" },
  { "deepgramsink", "voicedeepgram" },
  { "deepgramsrc", "voicedeepgram" },
  { "deepgram", "voicedeepgram" },
  { "llmtransform", "voicellm" },
  { "elevenlabssink", "voiceelevenlabs" },
  { "elevenlabssrc", "voiceelevenlabs" },
  { "elevenlabs", "voiceelevenlabs" },
  /* the stand-ins, named as gst-plugins-rs names them */
  { "deepgramtranscriber", "deepgram" },
  { "elevenlabssynthesizer", "elevenlabs" },
};

static GPtrArray *warnings; /* of gchar *, what GStreamer warned about */
static gint failures;

#define CHECK(cond, ...)                                                       \
  G_STMT_START                                                                 \
  {                                                                            \
    if (!(cond)) {                                                             \
      g_printerr ("FAIL: " __VA_ARGS__);                                       \
      g_printerr ("\n");                                                       \
      failures++;                                                              \
    }                                                                          \
  }                                                                            \
  G_STMT_END

static void
record_warning (GstDebugCategory *category, GstDebugLevel level,
    const gchar *file, const gchar *function, gint line, GObject *object,
    GstDebugMessage *message, gpointer user_data)
{
  if (level > GST_LEVEL_WARNING)
    return;
  g_ptr_array_add (warnings,
      g_strdup_printf ("%s %s: %s", gst_debug_level_get_name (level),
          gst_debug_category_get_name (category),
          gst_debug_message_get (message)));
}

/* Copies @path into @dir under its own name; refuses to overwrite, which
 * is what installing two plugins of one file name into one folder does. */
static gboolean
install_copy (const gchar *path, const gchar *dir)
{
  gchar *base = g_path_get_basename (path);
  gchar *dest = g_build_filename (dir, base, NULL);
  GFile *from = g_file_new_for_path (path);
  GFile *to = g_file_new_for_path (dest);
  GError *error = NULL;
  gboolean ok =
      g_file_copy (from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, &error);

  CHECK (ok,
      "cannot install %s into %s: %s (two plugins with one file name "
      "cannot be installed side by side; ours must not be named as "
      "gst-plugins-rs's)",
      path, dir, error ? error->message : "?");
  g_clear_error (&error);
  g_object_unref (from);
  g_object_unref (to);
  g_free (dest);
  g_free (base);
  return ok;
}

static void
remove_tree (const gchar *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d && (name = g_dir_read_name (d))) {
    gchar *p = g_build_filename (dir, name, NULL);

    if (g_file_test (p, G_FILE_TEST_IS_DIR))
      remove_tree (p);
    else
      g_unlink (p);
    g_free (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (dir);
}

static void
check_elements (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    const Expected *e = &expected[i];
    GstElementFactory *f = gst_element_factory_find (e->element);
    GstElement *element;

    CHECK (f != NULL, "element %s not found: plugin %s did not load",
        e->element, e->plugin);
    if (f == NULL)
      continue;
    CHECK (
        g_strcmp0 (gst_plugin_feature_get_plugin_name (GST_PLUGIN_FEATURE (f)),
            e->plugin) == 0,
        "element %s comes from plugin %s, not %s", e->element,
        gst_plugin_feature_get_plugin_name (GST_PLUGIN_FEATURE (f)), e->plugin);
    element = gst_element_factory_create (f, NULL);
    CHECK (element != NULL, "element %s cannot be made", e->element);
    if (element)
      gst_object_unref (element);
    gst_object_unref (f);
  }
}

/* Every plugin once, each from a file in one of the test's folders. */
static void
check_plugins (const gchar *root)
{
  GList *plugins = gst_registry_get_plugin_list (gst_registry_get ());
  GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (GList *l = plugins; l; l = l->next) {
    GstPlugin *p = l->data;
    const gchar *name = gst_plugin_get_name (p);

    CHECK (!g_hash_table_contains (seen, name),
        "two plugins are named %s (%s and %s)", name,
        gst_plugin_get_filename (g_hash_table_lookup (seen, name)),
        gst_plugin_get_filename (p));
    g_hash_table_insert (seen, (gpointer)name, p);
  }
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    GstPlugin *p = g_hash_table_lookup (seen, expected[i].plugin);

    CHECK (p != NULL, "plugin %s is not in the registry", expected[i].plugin);
    CHECK (p == NULL ||
            (gst_plugin_is_loaded (p) &&
                g_str_has_prefix (gst_plugin_get_filename (p), root)),
        "plugin %s is not loaded from %s", expected[i].plugin, root);
  }
  g_hash_table_unref (seen);
  gst_plugin_list_free (plugins);
}

int
main (int argc, char **argv)
{
  gchar *root, *ours_dir, *rs_dir, *empty, *registry;
  gboolean two_dirs, installed = TRUE, rs_args = FALSE;

  if (argc < 3 ||
      (strcmp (argv[1], "same-dir") && strcmp (argv[1], "two-dirs"))) {
    g_printerr (
        "usage: %s same-dir|two-dirs OURS.so... -- RS.so...\n", argv[0]);
    return 2;
  }
  two_dirs = strcmp (argv[1], "two-dirs") == 0;
  root = g_dir_make_tmp ("rs-coexist-XXXXXX", NULL);
  g_assert (root);
  ours_dir = g_build_filename (root, two_dirs ? "voiceagent" : "plugins", NULL);
  rs_dir = g_build_filename (root, two_dirs ? "rs" : "plugins", NULL);
  empty = g_build_filename (root, "empty", NULL);
  registry = g_build_filename (root, "registry.bin", NULL);
  g_mkdir (ours_dir, 0700);
  g_mkdir (rs_dir, 0700);
  g_mkdir (empty, 0700);

  /* rs's first: a package manager may have put them there before us. */
  for (gint i = 2; i < argc; i++)
    if (strcmp (argv[i], "--") == 0)
      rs_args = TRUE;
    else if (rs_args)
      installed &= install_copy (argv[i], rs_dir);
  rs_args = FALSE;
  for (gint i = 2; i < argc; i++)
    if (strcmp (argv[i], "--") == 0)
      break;
    else
      installed &= install_copy (argv[i], ours_dir);

  /* A fresh registry that knows only what the test scans below. */
  g_setenv ("GST_REGISTRY_1_0", registry, TRUE);
  g_setenv ("GST_PLUGIN_PATH_1_0", empty, TRUE);
  g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", empty, TRUE);
  g_setenv ("GST_REGISTRY_FORK", "no", TRUE);
  gst_init (NULL, NULL);
  warnings = g_ptr_array_new_with_free_func (g_free);
  gst_debug_add_log_function (record_warning, NULL, NULL);
  gst_debug_set_default_threshold (GST_LEVEL_WARNING);

  gst_registry_scan_path (gst_registry_get (), rs_dir);
  if (two_dirs)
    gst_registry_scan_path (gst_registry_get (), ours_dir);

  check_elements ();
  check_plugins (root);
  for (guint i = 0; i < warnings->len; i++)
    CHECK (FALSE, "GStreamer warned while loading the plugins: %s",
        (gchar *)g_ptr_array_index (warnings, i));
  CHECK (installed, "not every plugin could be installed (see above)");

  gst_debug_remove_log_function (record_warning);
  g_ptr_array_unref (warnings);
  gst_deinit ();
  remove_tree (root);
  g_free (registry);
  g_free (empty);
  g_free (rs_dir);
  g_free (ours_dir);
  g_free (root);
  if (failures == 0)
    g_print ("ok: %s: 6 plugins, 10 elements, no clash\n", argv[1]);
  return failures ? 1 : 0;
}

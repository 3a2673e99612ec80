/* voiceagent: where the server's own files are, installed or in a build tree.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean va_paths_in_build_tree (void);
const gchar *va_paths_prefix (void);
gchar *va_paths_data_file (
    const gchar *first_element, ...) G_GNUC_NULL_TERMINATED;
gchar *va_paths_pipelines_dir (void);
gchar *va_paths_plugins_dir (void);
gchar *va_paths_emulator (void);
gboolean va_paths_register_plugins (GError **error);

G_END_DECLS

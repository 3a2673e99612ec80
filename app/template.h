/* voiceagent: pipeline templates (gst-launch syntax with ${VAR}).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _VaTemplate VaTemplate;

/* Variables a template may use; every one is set for every call. */
extern const gchar *const va_template_variables[];

/* Loads every *.pipeline file of @dir and checks each (parses it with
 * placeholder values; it must hold a webrtcbin named "webrtc"). Returns a
 * table name → VaTemplate*, or NULL with @error naming the file and line. */
GHashTable *va_templates_load (const gchar *dir, GError **error);

const gchar *va_template_get_name (const VaTemplate *tmpl);

/* Fills in @vars (name → value; values are escaped for gst-launch quoting)
 * and builds the pipeline. Returns NULL with @error on failure. */
GstElement *va_template_instantiate (
    const VaTemplate *tmpl, GHashTable *vars, GError **error);

/* The text with @vars filled in (tests and --dry-run use it). */
gchar *va_template_expand (
    const VaTemplate *tmpl, GHashTable *vars, GError **error);

G_END_DECLS

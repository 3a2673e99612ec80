/* voiceagent: pipeline templates (gst-launch syntax with ${VAR}).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _VaTemplate VaTemplate;

/* How a template's pipeline meets the caller. */
typedef enum {
  /* A webrtcbin named "webrtc": the caller's peer connection ends here
   * (direct mode). */
  VA_TEMPLATE_WEBRTC,
  /* A udpsrc named "rtp_in" and a udpsink named "rtp_out": plain RTP from
   * and to a media gateway that holds the caller's peer connection
   * (gateway mode, docs/architecture.md). */
  VA_TEMPLATE_RTP,
} VaTemplateKind;

/* Variables a template may use; every one is set for every call. */
extern const gchar *const va_template_variables[];

/* Loads every *.pipeline file of @dir and checks each (parses it with
 * placeholder values; it must hold a webrtcbin named "webrtc", or a udpsrc
 * "rtp_in" and a udpsink "rtp_out"). Returns a table name → VaTemplate*,
 * or NULL with @error naming the file and line. */
GHashTable *va_templates_load (const gchar *dir, GError **error);

const gchar *va_template_get_name (const VaTemplate *tmpl);
const gchar *va_template_get_tools_path (const VaTemplate *tmpl);
VaTemplateKind va_template_get_kind (const VaTemplate *tmpl);

/* Fills in @vars (name → value; values are escaped for gst-launch quoting)
 * and builds the pipeline. Returns NULL with @error on failure. */
GstElement *va_template_instantiate (
    const VaTemplate *tmpl, GHashTable *vars, GError **error);

/* The text with @vars filled in (tests and --dry-run use it). */
gchar *va_template_expand (
    const VaTemplate *tmpl, GHashTable *vars, GError **error);

G_END_DECLS

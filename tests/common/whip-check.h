/* Check-suite assertions over whip-caller.h, for the tests built with
 * gstcheck (whip-caller itself has no assertions: scripts and the load
 * generator use it too).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <string.h>
#include <gst/check/gstcheck.h>
#include "whip-caller.h"

G_BEGIN_DECLS

/* A critical or warning from the WebRTC stack in a caller's process fails
 * the test, as gstcheck's own handler would, but with the stack in the
 * failure line itself: gstcheck prints the stack on stdout, which a long
 * CI log may not show, and a rare race in a library is diagnosable only
 * from the run that hit it. */
static gboolean
whip_check_fail_with_stack (const gchar *domain, GLogLevelFlags level,
    const gchar *message, gpointer user_data G_GNUC_UNUSED)
{
  gchar *trace = gst_debug_get_stack_trace (GST_STACK_TRACE_SHOW_FULL);
  gchar **lines = g_strsplit (trace ? trace : "", "\n", 48);
  GString *frames = g_string_new (NULL);
  guint i, first = 0, shown = 0;

  /* From the caller of g_log(): the frames above are gstcheck's. */
  for (i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "g_log"))
      first = i + 1;
  /* "func (/usr/lib/…/libx.so.0:0x…)" -> "func (libx.so.0)" */
  for (i = first; lines[i] && *lines[i] && shown < 16; i++, shown++) {
    gchar *open = strchr (lines[i], '(');
    gchar *path = open ? g_strndup (open + 1, strcspn (open + 1, ":)")) : NULL;
    gchar *base = path ? g_path_get_basename (path) : NULL;
    g_string_append_printf (frames, "%s%.*s(%s)", shown ? " < " : "",
        open ? (gint)(open - lines[i]) : (gint)strlen (lines[i]), lines[i],
        base ? base : "");
    g_free (base);
    g_free (path);
  }
  g_strfreev (lines);
  g_free (trace);
  fail ("Unexpected %s %s: %s; stack: %s", domain,
      level & G_LOG_LEVEL_CRITICAL ? "critical" : "warning", message,
      frames->str);
  g_string_free (frames, TRUE);
  return FALSE;
}

/* Registered before main(): gstcheck keeps its log filters from before
 * gst_check_init(). */
__attribute__ ((constructor)) static void
whip_check_watch_criticals (void)
{
  static const gchar *domains[] = { "GLib", "GLib-GObject", "GLib-GIO",
    "GStreamer" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (domains); i++)
    gst_check_add_log_filter (domains[i],
        G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING,
        g_regex_new (".", 0, 0, NULL), whip_check_fail_with_stack, NULL, NULL);
}

/* The next data-channel message containing @needle (free it); fails the
 * test when none comes within @timeout_ms. */
static inline gchar *
whip_check_message (WhipCaller *c, const gchar *needle, guint timeout_ms)
{
  gchar *m = whip_caller_wait_message (c, needle, timeout_ms);

  fail_unless (m != NULL, "no data-channel event with %s", needle);
  return m;
}

/* Types @text and returns the agent's written answer (free it); fails
 * the test when it cannot be sent or no answer comes. */
static inline gchar *
whip_check_ask (WhipCaller *c, const gchar *text, guint timeout_ms)
{
  gchar *m = whip_caller_ask (c, text, timeout_ms);

  fail_unless (m != NULL, "no answer from the agent to \"%s\"", text);
  return m;
}

G_END_DECLS

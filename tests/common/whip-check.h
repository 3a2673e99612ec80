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

/* The stack of a log call, one line: "func (libx.so.0) < func (file.c:12)
 * < …", from the caller of g_log() (the frames above are gstcheck's and
 * g_return_if_fail's). Free it. */
static gchar *
whip_check_compact_stack (void)
{
  gchar *trace = gst_debug_get_stack_trace (GST_STACK_TRACE_SHOW_FULL);
  gchar **lines = g_strsplit (trace ? trace : "", "\n", 64);
  GString *frames = g_string_new (NULL);
  guint i, first = 0, shown = 0;

  for (i = 0; lines[i]; i++)
    if (g_str_has_prefix (lines[i], "g_log") ||
        g_str_has_prefix (lines[i], "g_return_if_fail_warning"))
      first = i + 1;
  for (i = first; lines[i] && *lines[i] && shown < 16; i++, shown++) {
    gchar *open = strchr (lines[i], '(');
    gchar *where = NULL;
    /* "(/usr/lib/…/libx.so.0:0x7f…)" is shortened to "(libx.so.0)";
     * "(file.c:123)" is kept. */
    if (open && open[1] == '/') {
      gchar *path = g_strndup (open + 1, strcspn (open + 1, ":)"));
      where = g_path_get_basename (path);
      g_free (path);
    } else if (open) {
      where = g_strndup (open + 1, strcspn (open + 1, ")"));
    }
    g_string_append_printf (frames, "%s%.*s(%s)", shown ? " < " : "",
        open ? (gint)(open - lines[i]) : (gint)strlen (lines[i]), lines[i],
        where ? where : "");
    g_free (where);
  }
  g_strfreev (lines);
  g_free (trace);
  return g_string_free (frames, FALSE);
}

/* A critical or warning from the WebRTC stack in a caller's process fails
 * the test, as gstcheck's own handler would, but with the stack in the
 * failure line itself: gstcheck prints the stack on stdout, which a long
 * CI log may not show, and a rare race in a library is diagnosable only
 * from the run that hit it. fail() here ends the forked test's process;
 * without fork (CK_FORK=no) it would unwind with gstcheck's filter lock
 * held, so there the stack is printed and gstcheck fails the test. */
static gboolean
whip_check_fail_with_stack (const gchar *domain, GLogLevelFlags level,
    const gchar *message, gpointer user_data G_GNUC_UNUSED)
{
  gchar *stack = whip_check_compact_stack ();
  const gchar *kind = level & G_LOG_LEVEL_CRITICAL ? "critical" : "warning";

  if (g_strcmp0 (g_getenv ("CK_FORK"), "no") == 0)
    g_printerr ("Unexpected %s %s: %s; stack: %s\n", domain ? domain : "", kind,
        message, stack);
  else
    fail ("Unexpected %s %s: %s; stack: %s", domain ? domain : "", kind,
        message, stack);
  g_free (stack);
  return FALSE;
}

/* Registered before main(): gstcheck keeps its log filters from before
 * gst_check_init(). The domains of gstcheck's handlers that a WebRTC
 * caller's libraries log in (NULL: plugins such as webrtcbin). */
__attribute__ ((constructor)) static void
whip_check_watch_criticals (void)
{
  static const gchar *domains[] = { NULL, "GLib", "GLib-GObject", "GLib-GIO",
    "GStreamer", "GStreamer-Base", "GStreamer-App", "GStreamer-Audio",
    "GStreamer-RTP", "GStreamer-SCTP", "GStreamer-SDP", "GStreamer-WebRTC" };
  guint i;

  /* "" with RAW matches every message, empty or not UTF-8 too. */
  for (i = 0; i < G_N_ELEMENTS (domains); i++)
    gst_check_add_log_filter (domains[i],
        G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING,
        g_regex_new ("", G_REGEX_RAW, 0, NULL), whip_check_fail_with_stack,
        NULL, NULL);
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

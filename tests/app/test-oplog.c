/* The operator's log (app/oplog.c): one line per event, text or JSON,
 * with the call and turn, and nothing secret or said in any line.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include "oplog.h"
#include "voice.h"

#define SECRET "sk-operator-secret-1234567890"

/* Runs @emit with stdout and stderr going to a file; returns what they
 * wrote, stdout first. */
static gchar *
capture (void (*emit) (void))
{
  gchar *path = NULL, *text = NULL;
  gint fd = g_file_open_tmp ("oplog-XXXXXX", &path, NULL);
  gint saved_out = dup (STDOUT_FILENO), saved_err = dup (STDERR_FILENO);

  fail_unless (fd >= 0);
  fflush (stdout);
  fflush (stderr);
  dup2 (fd, STDOUT_FILENO);
  dup2 (fd, STDERR_FILENO);
  emit ();
  fflush (stdout);
  fflush (stderr);
  dup2 (saved_out, STDOUT_FILENO);
  dup2 (saved_err, STDERR_FILENO);
  close (saved_out);
  close (saved_err);
  close (fd);
  fail_unless (g_file_get_contents (path, &text, NULL, NULL));
  g_unlink (path);
  g_free (path);
  return text;
}

static void
emit_events (void)
{
  VaLogLine *l = va_log_begin (VA_LOG_INFO, "call.start", "c0ffee", 0);

  va_log_add_string (l, "agent", "agent");
  va_log_end (l);
  l = va_log_begin (VA_LOG_WARNING, "call.warning", "c0ffee", 0);
  va_log_add_string (l, "msg", "HTTP 401 for key " SECRET);
  va_log_add_string (l, "debug", "Authorization: Bearer abcdefghijklmnop1234");
  va_log_end (l);
  va_log_data_channel_event ("c0ffee",
      "{\"type\":\"transcript\",\"role\":\"user\",\"text\":\"my card is "
      "4111\",\"final\":true,\"turn\":2}",
      2);
  va_log_data_channel_event ("c0ffee",
      "{\"type\":\"transcript\",\"role\":\"user\",\"text\":\"my ca\","
      "\"final\":false,\"turn\":2}",
      2);
  va_log_data_channel_event ("c0ffee",
      "{\"type\":\"metrics\",\"turn\":2,\"voice_to_voice_ms\":640.5,"
      "\"speculative\":null}",
      2);
  va_log_data_channel_event ("c0ffee",
      "{\"type\":\"call\",\"id\":\"c0ffee\",\"call_token\":\"tok-abc\"}", 2);
  g_print ("voiceagent: listening with token " SECRET "\n");
  g_printerr ("voiceagent: warning: something \"odd\"\n");
  /* GLib's messages reach the writer as GStreamer's g_warning() does
   * outside gstcheck: every call's bin warns of its loop (not a line),
   * another warning is one. */
  g_log_structured ("GStreamer", G_LOG_LEVEL_WARNING, "MESSAGE",
      "loop detected in the graph of bin '%s'!!", "bin2");
  g_log_structured (
      "GStreamer", G_LOG_LEVEL_WARNING, "MESSAGE", "pad %s has no caps", "src");
}

static JsonObject *
line_object (JsonParser *p, const gchar *line)
{
  JsonNode *root;

  fail_unless (
      json_parser_load_from_data (p, line, -1, NULL), "not JSON: %s", line);
  root = json_parser_get_root (p);
  fail_unless (JSON_NODE_HOLDS_OBJECT (root), "not an object: %s", line);
  return json_node_get_object (root);
}

GST_START_TEST (test_json_lines)
{
  gchar *out, **lines;
  JsonParser *p = json_parser_new ();
  guint i, n = 0;

  va_log_install (VA_LOG_FORMAT_JSON);
  out = capture (emit_events);
  fail_if (strstr (out, SECRET), "a secret in the log:\n%s", out);
  fail_if (strstr (out, "abcdefghijklmnop1234"), "a bearer token:\n%s", out);
  fail_if (strstr (out, "tok-abc"), "the call token:\n%s", out);
  fail_if (strstr (out, "4111"), "what the caller said:\n%s", out);
  lines = g_strsplit (out, "\n", -1);
  for (i = 0; lines[i]; i++) {
    JsonObject *o;
    const gchar *event;

    if (*lines[i] == '\0')
      continue;
    o = line_object (p, lines[i]);
    n++;
    fail_unless (json_object_has_member (o, "ts"), "%s", lines[i]);
    fail_unless (json_object_has_member (o, "level"), "%s", lines[i]);
    event = json_object_get_string_member (o, "event");
    if (g_str_has_prefix (event, "call.") || g_str_has_prefix (event, "dc."))
      fail_unless_equals_string (
          json_object_get_string_member (o, "call"), "c0ffee");
    if (g_str_equal (event, "dc.transcript")) {
      fail_unless_equals_int (json_object_get_int_member (o, "turn"), 2);
      fail_unless_equals_int (json_object_get_int_member (o, "text_chars"), 15);
    }
    if (g_str_equal (event, "dc.metrics"))
      fail_unless (
          json_object_get_double_member (o, "voice_to_voice_ms") > 640);
    if (g_str_equal (event, "message") &&
        strstr (json_object_get_string_member (o, "msg"), "odd"))
      fail_unless_equals_string (
          json_object_get_string_member (o, "level"), "warning");
  }
  /* start, warning, final transcript, metrics, call, two messages, one
   * GLib warning: the interim transcript and the bin's loop are not lines
   * of their own. */
  fail_unless_equals_int (n, 8);
  fail_if (strstr (out, "loop detected"), "%s", out);
  fail_unless (strstr (out, "pad src has no caps"), "%s", out);
  g_strfreev (lines);
  g_object_unref (p);
  g_free (out);
}

GST_END_TEST;

GST_START_TEST (test_text_lines)
{
  gchar *out;

  va_log_install (VA_LOG_FORMAT_TEXT);
  out = capture (emit_events);
  fail_if (strstr (out, SECRET), "a secret in the log:\n%s", out);
  fail_if (strstr (out, "4111"), "what the caller said:\n%s", out);
  fail_unless (strstr (out, "voiceagent: call.start call=c0ffee agent=agent\n"),
      "%s", out);
  fail_unless (
      strstr (out, "voiceagent: dc.transcript call=c0ffee turn=2 "), "%s", out);
  fail_unless (strstr (out, " level=warning call=c0ffee msg=\"HTTP 401 for "),
      "%s", out);
  fail_if (strstr (out, "loop detected"), "%s", out);
  fail_unless (
      strstr (out, "domain=GStreamer msg=\"pad src has no caps\""), "%s", out);
  g_free (out);
}

GST_END_TEST;

static void
emit_loop (void)
{
  g_log_structured ("GStreamer", G_LOG_LEVEL_WARNING, "MESSAGE",
      "loop detected in the graph of bin '%s'!!", "bin2");
}

/* Asked for debug messages, the operator sees the bin's loop as one. */
GST_START_TEST (test_loop_is_debug)
{
  gchar *out;

  g_setenv ("G_MESSAGES_DEBUG", "GStreamer", TRUE);
  va_log_install (VA_LOG_FORMAT_JSON);
  out = capture (emit_loop);
  g_unsetenv ("G_MESSAGES_DEBUG");
  fail_unless (strstr (out, "\"level\":\"debug\"") &&
          strstr (out, "loop detected in the graph of bin 'bin2'"),
      "%s", out);
  g_free (out);
}

GST_END_TEST;

GST_START_TEST (test_format_names)
{
  VaLogFormat f;
  GError *error = NULL;

  fail_unless (va_log_format_from_string ("json", &f, NULL));
  fail_unless_equals_int (f, VA_LOG_FORMAT_JSON);
  fail_unless (va_log_format_from_string (NULL, &f, NULL));
  fail_unless_equals_int (f, VA_LOG_FORMAT_TEXT);
  fail_if (va_log_format_from_string ("xml", &f, &error));
  fail_unless (strstr (error->message, "text or json"));
  g_error_free (error);
}

GST_END_TEST;

static Suite *
oplog_suite (void)
{
  Suite *s = suite_create ("oplog");
  TCase *tc = tcase_create ("general");

  gst_voice_redact_add_secret (SECRET);
  /* The loop message is dropped unless debug messages are asked for. */
  g_unsetenv ("G_MESSAGES_DEBUG");
  tcase_add_test (tc, test_json_lines);
  tcase_add_test (tc, test_loop_is_debug);
  tcase_add_test (tc, test_text_lines);
  tcase_add_test (tc, test_format_names);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (oplog);

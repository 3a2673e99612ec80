/* voiceagent: the operator's log, one line per event.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every line names its event, and the call and turn it belongs to, so an
 * operator can follow one call with grep or a log query:
 *
 *   text:  voiceagent: turn.end call=7f3a… turn=2 v2v_ms=640 eot_ms=210
 *   json:  {"ts":"…Z","level":"info","event":"turn.end","call":"7f3a…",
 *           "turn":2,"v2v_ms":640,"eot_ms":210}
 *
 * Everything else the server prints (g_print, g_printerr) passes through
 * the same writer: in JSON mode it becomes {"event":"message","msg":…},
 * so the stream stays one JSON object per line. Every line, in either
 * mode, goes through gst_voice_redact() first: no key or token reaches
 * the log even if a message carries one. What callers say is never
 * logged (transcripts stay in the call record).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-glib/json-glib.h>
#include "oplog.h"
#include "voice.h"

/* Set once by va_log_install() before any other thread starts. */
static VaLogFormat log_format = VA_LOG_FORMAT_TEXT;
/* One line is written whole even when several threads log at once. */
static GMutex write_lock;
/* Lines printed before the format is known (while the configuration is
 * read), replayed by va_log_install(); main thread only. */
static GPtrArray *held_lines;
static gboolean writer_set;

struct _VaLogLine
{
  VaLogLevel level;
  GString *text; /* text mode */
  JsonBuilder *json; /* JSON mode */
};

static const gchar *const level_names[] = { "info", "warning", "error",
  "debug" };

/**
 * va_log_format_from_string:
 * @name: "text" or "json"
 * @format: (out): the format
 *
 * Returns: FALSE with @error for any other name.
 */
gboolean
va_log_format_from_string (
    const gchar *name, VaLogFormat *format, GError **error)
{
  if (name == NULL || g_str_equal (name, "text")) {
    *format = VA_LOG_FORMAT_TEXT;
    return TRUE;
  }
  if (g_str_equal (name, "json")) {
    *format = VA_LOG_FORMAT_JSON;
    return TRUE;
  }
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "--log-format \"%s\": use text or json", name);
  return FALSE;
}

static void
write_line (VaLogLevel level, const gchar *line)
{
  gchar *safe = gst_voice_redact (line);
  FILE *out = level == VA_LOG_INFO || level == VA_LOG_DEBUG ? stdout : stderr;

  g_mutex_lock (&write_lock);
  fputs (safe, out);
  fputc ('\n', out);
  fflush (out);
  g_mutex_unlock (&write_lock);
  g_free (safe);
}

static gchar *
timestamp (void)
{
  GDateTime *now = g_date_time_new_now_utc ();
  gchar *ts = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");

  g_date_time_unref (now);
  /* %f is microseconds; milliseconds are enough and easier to read. */
  if (strlen (ts) == 27)
    memmove (ts + 23, ts + 26, 2);
  return ts;
}

/* A g_print/g_printerr line: "voiceagent: [warning: ]what happened\n". */
static void
print_message (const gchar *string, VaLogLevel level)
{
  gchar *msg = g_strdup (string);
  const gchar *text = msg;
  VaLogLine *l;

  g_strchomp (msg);
  if (g_str_has_prefix (text, "voiceagent: "))
    text += strlen ("voiceagent: ");
  if (g_str_has_prefix (text, "warning: ")) {
    text += strlen ("warning: ");
    level = VA_LOG_WARNING;
  }
  l = va_log_begin (level, "message", NULL, 0);
  va_log_add_string (l, "msg", text);
  va_log_end (l);
  g_free (msg);
}

/* A held line is its level's digit followed by the text. */
static gboolean
hold (const gchar *string, VaLogLevel level)
{
  if (held_lines == NULL)
    return FALSE;
  g_ptr_array_add (held_lines, g_strdup_printf ("%d%s", level, string));
  return TRUE;
}

/* Everything g_print (info) and g_printerr (error) are given. */
static void
print_line (const gchar *string, VaLogLevel level)
{
  gchar *line;

  if (hold (string, level))
    return;
  if (log_format == VA_LOG_FORMAT_JSON) {
    print_message (string, level);
    return;
  }
  line = g_strdup (string);
  write_line (level, g_strchomp (line));
  g_free (line);
}

static void
on_print (const gchar *string)
{
  print_line (string, VA_LOG_INFO);
}

static void
on_printerr (const gchar *string)
{
  print_line (string, VA_LOG_ERROR);
}

static VaLogLevel
level_of (GLogLevelFlags flags)
{
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return VA_LOG_ERROR;
  if (flags & G_LOG_LEVEL_WARNING)
    return VA_LOG_WARNING;
  if (flags & G_LOG_LEVEL_DEBUG)
    return VA_LOG_DEBUG;
  return VA_LOG_INFO;
}

/* GstBin warns "loop detected in the graph of bin" at every state change
 * of a bin whose elements form a cycle, and every call's does by design:
 * webrtcbin gives the caller's audio to the agent's elements and takes
 * their answer back, on one peer connection. The bin still changes state
 * (it starts from one element of the cycle), so for an operator the line
 * is noise three times a call: it is a debug message here. */
static gboolean
is_call_loop_warning (const gchar *domain, const gchar *message)
{
  return g_strcmp0 (domain, "GStreamer") == 0 && message &&
      g_str_has_prefix (message, "loop detected in the graph of bin");
}

/* GLib's own messages (g_warning from a library): redacted, and one JSON
 * object in JSON mode. What GLib's default writer would drop (debug unless
 * G_MESSAGES_DEBUG) is dropped. */
static GLogWriterOutput
write_glib_message (GLogLevelFlags flags, const GLogField *fields,
    gsize n_fields, gpointer unused)
{
  const gchar *domain = NULL, *message = NULL;
  VaLogLine *l;
  gsize i;

  if (g_log_writer_default_would_drop (flags, NULL))
    return G_LOG_WRITER_HANDLED;
  for (i = 0; i < n_fields; i++) {
    if (g_str_equal (fields[i].key, "GLIB_DOMAIN"))
      domain = fields[i].value;
    else if (g_str_equal (fields[i].key, "MESSAGE"))
      message = fields[i].value;
  }
  if (is_call_loop_warning (domain, message)) {
    if (g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, domain))
      return G_LOG_WRITER_HANDLED;
    flags = G_LOG_LEVEL_DEBUG;
  }
  l = va_log_begin (level_of (flags), "glib", NULL, 0);
  va_log_add_string (l, "domain", domain);
  va_log_add_string (l, "msg", message);
  va_log_end (l);
  return G_LOG_WRITER_HANDLED;
}

/**
 * va_log_install:
 * @format: how every line is written from now on
 *
 * Routes g_print() and g_printerr() through the log's writer (redaction,
 * and JSON in JSON mode). Call once, before threads start.
 */
void
va_log_install (VaLogFormat format)
{
  GPtrArray *held = g_steal_pointer (&held_lines);
  guint i;

  log_format = format;
  g_set_print_handler (on_print);
  g_set_printerr_handler (on_printerr);
  if (!writer_set) {
    /* GLib allows one writer per process. */
    g_log_set_writer_func (write_glib_message, NULL, NULL);
    writer_set = TRUE;
  }
  for (i = 0; held && i < held->len; i++) {
    const gchar *line = g_ptr_array_index (held, i);

    print_line (line + 1, (VaLogLevel)(line[0] - '0'));
  }
  if (held)
    g_ptr_array_unref (held);
}

/**
 * va_log_hold:
 *
 * Until va_log_install(), keeps what g_print() and g_printerr() are given
 * instead of writing it: the configuration that names the format also
 * warns while it is read. Main thread, before any other starts.
 */
/* --help prints and exits while the lines are held. */
static void
release_held_at_exit (void)
{
  if (held_lines)
    va_log_install (VA_LOG_FORMAT_TEXT);
}

void
va_log_hold (void)
{
  held_lines = g_ptr_array_new_with_free_func (g_free);
  atexit (release_held_at_exit);
  g_set_print_handler (on_print);
  g_set_printerr_handler (on_printerr);
}

/**
 * va_log_begin:
 * @level: how bad
 * @event: what happened, dotted: call.start, turn.end, ...
 * @call_id: (nullable): the call it belongs to
 * @turn: its turn, 0 for none
 *
 * Returns: a line to add fields to; va_log_end() writes and frees it.
 */
VaLogLine *
va_log_begin (
    VaLogLevel level, const gchar *event, const gchar *call_id, guint turn)
{
  VaLogLine *l = g_new0 (VaLogLine, 1);

  l->level = level;
  if (log_format == VA_LOG_FORMAT_JSON) {
    gchar *ts = timestamp ();

    l->json = json_builder_new ();
    json_builder_begin_object (l->json);
    va_log_add_string (l, "ts", ts);
    va_log_add_string (l, "level", level_names[level]);
    va_log_add_string (l, "event", event);
    g_free (ts);
  } else {
    l->text = g_string_new ("voiceagent: ");
    g_string_append (l->text, event);
    if (level != VA_LOG_INFO)
      g_string_append_printf (l->text, " level=%s", level_names[level]);
  }
  if (call_id)
    va_log_add_string (l, "call", call_id);
  if (turn > 0)
    va_log_add_int (l, "turn", turn);
  return l;
}

static gboolean
needs_quotes (const gchar *value)
{
  return *value == '\0' || strpbrk (value, " =\"\\\n\t") != NULL;
}

/* logfmt: key=value, the value quoted and escaped when it has to be. */
static void
append_text_value (GString *s, const gchar *value)
{
  const gchar *p;

  if (!needs_quotes (value)) {
    g_string_append (s, value);
    return;
  }
  g_string_append_c (s, '"');
  for (p = value; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_c (s, '\\');
    if (*p == '\n')
      g_string_append (s, "\\n");
    else
      g_string_append_c (s, *p);
  }
  g_string_append_c (s, '"');
}

void
va_log_add_string (VaLogLine *l, const gchar *key, const gchar *value)
{
  if (value == NULL)
    return;
  if (l->json) {
    json_builder_set_member_name (l->json, key);
    json_builder_add_string_value (l->json, value);
    return;
  }
  g_string_append_printf (l->text, " %s=", key);
  append_text_value (l->text, value);
}

void
va_log_add_int (VaLogLine *l, const gchar *key, gint64 value)
{
  if (l->json) {
    json_builder_set_member_name (l->json, key);
    json_builder_add_int_value (l->json, value);
  } else
    g_string_append_printf (
        l->text, " %s=%" G_GINT64_FORMAT, key, (gint64)value);
}

void
va_log_add_double (VaLogLine *l, const gchar *key, gdouble value)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (l->json) {
    json_builder_set_member_name (l->json, key);
    json_builder_add_double_value (l->json, value);
  } else
    g_string_append_printf (l->text, " %s=%s", key,
        g_ascii_formatd (buf, sizeof buf, "%.1f", value));
}

void
va_log_add_bool (VaLogLine *l, const gchar *key, gboolean value)
{
  if (l->json) {
    json_builder_set_member_name (l->json, key);
    json_builder_add_boolean_value (l->json, value);
  } else
    g_string_append_printf (l->text, " %s=%s", key, value ? "true" : "false");
}

void
va_log_end (VaLogLine *l)
{
  if (l->json) {
    JsonNode *root;
    gchar *line;

    json_builder_end_object (l->json);
    root = json_builder_get_root (l->json);
    line = json_to_string (root, FALSE);
    write_line (l->level, line);
    g_free (line);
    json_node_unref (root);
    g_object_unref (l->json);
  } else {
    write_line (l->level, l->text->str);
    g_string_free (l->text, TRUE);
  }
  g_free (l);
}

/* Members of a data-channel event that carry what someone said, or what
 * the model took from it (a tool's arguments: an order number, an
 * address): kept in the call record, never in the log. */
static gboolean
is_spoken_text (const gchar *member)
{
  static const gchar *const names[] = { "text", "transcript", "words", "spoken",
    "reply", "arguments", NULL };

  return g_strv_contains (names, member);
}

static void
add_scalar (VaLogLine *l, const gchar *name, JsonNode *node)
{
  GType t;

  if (!JSON_NODE_HOLDS_VALUE (node))
    return;
  t = json_node_get_value_type (node);
  if (t == G_TYPE_STRING)
    va_log_add_string (l, name, json_node_get_string (node));
  else if (t == G_TYPE_INT64)
    va_log_add_int (l, name, json_node_get_int (node));
  else if (t == G_TYPE_DOUBLE)
    va_log_add_double (l, name, json_node_get_double (node));
  else if (t == G_TYPE_BOOLEAN)
    va_log_add_bool (l, name, json_node_get_boolean (node));
}

/* Interim results and the agent's reply pieces arrive every few hundred
 * ms: a line each would drown the events that matter. A caller's final
 * result is logged (its length, not its words). */
static gboolean
is_chatter (JsonObject *o, const gchar *type)
{
  return g_str_equal (type, "transcript") &&
      !json_object_get_boolean_member_with_default (o, "final", FALSE);
}

/**
 * va_log_data_channel_event:
 * @call_id: the call
 * @json: an event the call sends its caller
 * @current_turn: the conversation's turn, for an event that names none
 *
 * One line for the event: its type as the event name ("dc." prefixed),
 * its turn, and its scalar members except what was said (the length of
 * a text is logged instead of the text).
 */
void
va_log_data_channel_event (
    const gchar *call_id, const gchar *json, guint current_turn)
{
  JsonNode *root = json_from_string (json, NULL);
  JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root)
      ? json_node_get_object (root)
      : NULL;
  const gchar *type =
      o ? json_object_get_string_member_with_default (o, "type", NULL) : NULL;
  gchar *event;
  VaLogLine *l;
  GList *members, *m;

  if (type == NULL || is_chatter (o, type)) {
    if (root)
      json_node_unref (root);
    return;
  }
  event = g_strconcat ("dc.", type, NULL);
  l = va_log_begin (VA_LOG_INFO, event, call_id,
      json_object_get_int_member_with_default (o, "turn", current_turn));
  members = json_object_get_members (o);
  for (m = members; m; m = m->next) {
    const gchar *name = m->data;
    JsonNode *node = json_object_get_member (o, name);

    if (g_str_equal (name, "type") || g_str_equal (name, "turn") ||
        g_str_has_suffix (name, "token"))
      continue;
    if (is_spoken_text (name)) {
      if (JSON_NODE_HOLDS_VALUE (node) &&
          json_node_get_value_type (node) == G_TYPE_STRING) {
        gchar *key = g_strconcat (name, "_chars", NULL);

        va_log_add_int (
            l, key, g_utf8_strlen (json_node_get_string (node), -1));
        g_free (key);
      }
      continue;
    }
    add_scalar (l, name, node);
  }
  g_list_free (members);
  va_log_end (l);
  g_free (event);
  json_node_unref (root);
}

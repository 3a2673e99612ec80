/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Deepgram live STT protocol, as documented at
 * https://developers.deepgram.com/reference/speech-to-text/listen-streaming:
 * query parameters on the WebSocket URL; binary frames of raw audio and the
 * text frames KeepAlive, Finalize and CloseStream from the client; Results,
 * Metadata, SpeechStarted and UtteranceEnd from the server; errors as the
 * handshake's HTTP status with a `dg-error` header, or as a close frame
 * whose reason names the error ("DATA-0000", "NET-0001"). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>

#include "protocol.h"

static void
append_param (GString *url, const gchar *name, const gchar *value)
{
  gchar *escaped = g_uri_escape_string (value, NULL, FALSE);

  g_string_append_c (url, strchr (url->str, '?') ? '&' : '?');
  g_string_append_printf (url, "%s=%s", name, escaped);
  g_free (escaped);
}

static void
append_bool (GString *url, const gchar *name, gboolean value)
{
  append_param (url, name, value ? "true" : "false");
}

static void
append_uint (GString *url, const gchar *name, guint value)
{
  gchar text[16];

  g_snprintf (text, sizeof (text), "%u", value);
  append_param (url, name, text);
}

/**
 * dg_request_build_url:
 * @base_url: e.g. "wss://api.deepgram.com/v1/listen" (may carry a query)
 *
 * Returns: (transfer full): @base_url with the query for @req. Parameters
 * Deepgram defaults the same way are still written out, so the request
 * documents itself in logs.
 */
gchar *
dg_request_build_url (const gchar *base_url, const DgRequest *req)
{
  GString *url = g_string_new (base_url);
  const gchar *extra = req->extra_params;

  append_param (url, "model", req->model);
  if (req->language && *req->language)
    append_param (url, "language", req->language);
  append_param (url, "encoding", req->encoding);
  append_uint (url, "sample_rate", req->sample_rate);
  append_uint (url, "channels", 1);
  append_bool (url, "interim_results", req->interim_results);
  if (req->endpointing_ms > 0)
    append_uint (url, "endpointing", req->endpointing_ms);
  else
    append_bool (url, "endpointing", FALSE);
  /* Deepgram refuses utterance_end_ms without interim results. */
  if (req->utterance_end_ms > 0 && req->interim_results)
    append_uint (url, "utterance_end_ms", req->utterance_end_ms);
  append_bool (url, "smart_format", req->smart_format);
  append_bool (url, "punctuate", req->punctuate);
  if (req->vad_events)
    append_bool (url, "vad_events", TRUE);
  for (guint i = 0; req->keyterms && req->keyterms[i]; i++) {
    if (*req->keyterms[i])
      append_param (url, "keyterm", req->keyterms[i]);
  }
  while (extra && (*extra == '?' || *extra == '&'))
    extra++;
  if (extra && *extra) {
    g_string_append_c (url, '&');
    g_string_append (url, extra);
  }
  return g_string_free (url, FALSE);
}

static const struct
{
  const gchar *name;
  DgMessageType type;
} message_types[] = {
  { "Results", DG_MESSAGE_RESULTS },
  { "Metadata", DG_MESSAGE_METADATA },
  { "SpeechStarted", DG_MESSAGE_SPEECH_STARTED },
  { "UtteranceEnd", DG_MESSAGE_UTTERANCE_END },
  { "Error", DG_MESSAGE_ERROR },
  { "Warning", DG_MESSAGE_WARNING },
};

static DgMessageType
message_type_from_name (const gchar *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (message_types); i++) {
    if (g_str_equal (name, message_types[i].name))
      return message_types[i].type;
  }
  return DG_MESSAGE_UNKNOWN;
}

static gdouble
get_double (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return 0;
  switch (json_node_get_value_type (n)) {
    case G_TYPE_DOUBLE:
      return json_node_get_double (n);
    case G_TYPE_INT64:
      return (gdouble)json_node_get_int (n);
    default:
      return 0;
  }
}

static gboolean
get_bool (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
      json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
      json_node_get_boolean (n);
}

static const gchar *
get_string (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) ||
      json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static JsonObject *
get_object (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static JsonArray *
get_array (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_ARRAY (n) ? json_node_get_array (n) : NULL;
}

static void
word_clear (gpointer data)
{
  DgWord *w = data;

  g_free (w->word);
  g_free (w->punctuated_word);
}

static void
parse_words (DgMessage *msg, JsonArray *words)
{
  guint n = words ? json_array_get_length (words) : 0;

  for (guint i = 0; i < n; i++) {
    JsonNode *node = json_array_get_element (words, i);
    JsonObject *o;
    DgWord w = { 0 };
    const gchar *text;

    if (!JSON_NODE_HOLDS_OBJECT (node))
      continue;
    o = json_node_get_object (node);
    text = get_string (o, "word");
    w.word = g_strdup (text ? text : "");
    text = get_string (o, "punctuated_word");
    w.punctuated_word = g_strdup (text ? text : w.word);
    w.start = get_double (o, "start");
    w.end = get_double (o, "end");
    w.confidence = get_double (o, "confidence");
    g_array_append_val (msg->words, w);
  }
}

/* Results: the first alternative of the (only) channel. */
static void
parse_results (DgMessage *msg, JsonObject *o)
{
  JsonArray *alternatives =
      get_array (get_object (o, "channel"), "alternatives");
  JsonObject *alt = NULL;
  const gchar *transcript;

  msg->start = get_double (o, "start");
  msg->duration = get_double (o, "duration");
  msg->is_final = get_bool (o, "is_final");
  msg->speech_final = get_bool (o, "speech_final");
  msg->from_finalize = get_bool (o, "from_finalize");
  msg->request_id =
      g_strdup (get_string (get_object (o, "metadata"), "request_id"));
  msg->words = g_array_new (FALSE, TRUE, sizeof (DgWord));
  g_array_set_clear_func (msg->words, word_clear);

  if (alternatives && json_array_get_length (alternatives) > 0) {
    JsonNode *first = json_array_get_element (alternatives, 0);
    if (JSON_NODE_HOLDS_OBJECT (first))
      alt = json_node_get_object (first);
  }
  transcript = get_string (alt, "transcript");
  msg->transcript = g_strdup (transcript ? transcript : "");
  msg->confidence = get_double (alt, "confidence");
  parse_words (msg, get_array (alt, "words"));
}

static void
parse_body (DgMessage *msg, JsonObject *o)
{
  const gchar *text;

  switch (msg->type) {
    case DG_MESSAGE_RESULTS:
      parse_results (msg, o);
      break;
    case DG_MESSAGE_SPEECH_STARTED:
      msg->timestamp = get_double (o, "timestamp");
      break;
    case DG_MESSAGE_UTTERANCE_END:
      msg->timestamp = get_double (o, "last_word_end");
      break;
    case DG_MESSAGE_METADATA:
      msg->metadata_duration = get_double (o, "duration");
      msg->request_id = g_strdup (get_string (o, "request_id"));
      break;
    case DG_MESSAGE_ERROR:
    case DG_MESSAGE_WARNING:
      text = get_string (o, "description");
      if (text == NULL || *text == '\0')
        text = get_string (o, "message");
      msg->description = g_strdup (text ? text : "");
      break;
    case DG_MESSAGE_UNKNOWN:
      break;
  }
}

/**
 * dg_message_parse:
 * @data: one text frame from the server (need not be NUL-terminated)
 *
 * Returns: (transfer full) (nullable): the message, or NULL with @error set
 * when @data is not a JSON object with a string `type`. Unknown types parse
 * as %DG_MESSAGE_UNKNOWN so a newer server does not break an older client.
 */
DgMessage *
dg_message_parse (const gchar *data, gsize len, GError **error)
{
  JsonParser *parser = json_parser_new_immutable ();
  JsonNode *root;
  JsonObject *o;
  const gchar *type;
  DgMessage *msg = NULL;

  if (!json_parser_load_from_data (parser, data, (gssize)len, error))
    goto out;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
        "message is not a JSON object");
    goto out;
  }
  o = json_node_get_object (root);
  type = get_string (o, "type");
  if (type == NULL) {
    g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
        "message has no \"type\"");
    goto out;
  }
  msg = g_new0 (DgMessage, 1);
  msg->type = message_type_from_name (type);
  msg->type_name = g_strdup (type);
  parse_body (msg, o);
out:
  g_object_unref (parser);
  return msg;
}

void
dg_message_free (DgMessage *msg)
{
  if (msg == NULL)
    return;
  g_free (msg->type_name);
  g_free (msg->transcript);
  if (msg->words)
    g_array_unref (msg->words);
  g_free (msg->request_id);
  g_free (msg->description);
  g_free (msg);
}

/**
 * dg_error_text:
 * @dg_error_header: (nullable): the handshake response's `dg-error` header
 *
 * Deepgram puts the error in that header, either as the bare message or as
 * the JSON error body ({"err_code", "err_msg", "request_id"}).
 *
 * Returns: (transfer full) (nullable): the human-readable message.
 */
gchar *
dg_error_text (const gchar *dg_error_header)
{
  JsonParser *parser;
  gchar *text = NULL;

  if (dg_error_header == NULL || *dg_error_header == '\0')
    return NULL;
  if (*dg_error_header != '{')
    return g_strdup (dg_error_header);
  parser = json_parser_new_immutable ();
  if (json_parser_load_from_data (parser, dg_error_header, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    JsonObject *o = json_node_get_object (json_parser_get_root (parser));
    const gchar *m = get_string (o, "err_msg");
    if (m == NULL)
      m = get_string (o, "message");
    text = g_strdup (m);
  }
  g_object_unref (parser);
  return text ? text : g_strdup (dg_error_header);
}

/**
 * dg_close_reason_has:
 *
 * Returns: whether a close frame's @reason names Deepgram error @code
 * (e.g. "NET-0001"); the reason may be the bare code or a longer text.
 */
gboolean
dg_close_reason_has (const gchar *reason, const gchar *code)
{
  return reason && strstr (reason, code) != NULL;
}

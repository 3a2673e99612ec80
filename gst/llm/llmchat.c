/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Request bodies and streamed chunks of the Chat Completions API. Parsing
 * is defensive because every server bends the format a little: `content`
 * null or missing, empty deltas, `choices: []` or `choices: null` on the
 * usage chunk, reasoning in `reasoning_content` (DeepSeek, SGLang, older
 * vLLM) or `reasoning` (vLLM, Ollama, OpenRouter), errors as
 * `{"error": {...}}`, `{"error": "..."}` (Ollama), `{"message": ...}`
 * (older vLLM) or `{"detail": ...}` (FastAPI servers). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "llmchat.h"

/* Longest raw error body quoted in a message. */
#define MAX_QUOTED_BODY 400

static JsonObject *
parse_object (const gchar *json, GError **error)
{
  JsonParser *parser = json_parser_new ();
  JsonObject *object = NULL;

  if (json_parser_load_from_data (parser, json, -1, error)) {
    JsonNode *root = json_parser_get_root (parser);
    if (root && JSON_NODE_HOLDS_OBJECT (root))
      object = json_object_ref (json_node_get_object (root));
    else
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
          "expected a JSON object");
  }
  g_object_unref (parser);
  return object;
}

/**
 * llm_chat_check_extra_body:
 *
 * Returns: TRUE if @extra_body is NULL, empty or a JSON object.
 */
gboolean
llm_chat_check_extra_body (const gchar *extra_body, GError **error)
{
  JsonObject *o;

  if (extra_body == NULL || *extra_body == '\0')
    return TRUE;
  o = parse_object (extra_body, error);
  if (o == NULL)
    return FALSE;
  json_object_unref (o);
  return TRUE;
}

/* Returns: (transfer full): the node of JSON text we built ourselves
 * (tool calls, the tools array); null if it somehow does not parse. */
static JsonNode *
parse_json (const gchar *json)
{
  JsonParser *parser = json_parser_new ();
  JsonNode *node = NULL;

  if (json_parser_load_from_data (parser, json, -1, NULL) &&
      json_parser_get_root (parser))
    node = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return node ? node : json_node_new (JSON_NODE_NULL);
}

static JsonArray *
build_messages (const LlmChatRequest *req)
{
  JsonArray *messages = json_array_new ();
  guint i;

  for (i = 0; i < req->n_messages; i++) {
    const LlmChatMessage *msg = &req->messages[i];
    JsonObject *m = json_object_new ();
    json_object_set_string_member (m, "role", msg->role);
    if (msg->content)
      json_object_set_string_member (m, "content", msg->content);
    else
      json_object_set_null_member (m, "content");
    if (msg->tool_calls)
      json_object_set_member (m, "tool_calls", parse_json (msg->tool_calls));
    if (msg->tool_call_id)
      json_object_set_string_member (m, "tool_call_id", msg->tool_call_id);
    json_array_add_object_element (messages, m);
  }
  return messages;
}

/**
 * llm_chat_build_request:
 *
 * Builds the body of a streamed `POST /chat/completions`. Members of
 * @req->extra_body replace or extend the ones built here, so a user can set
 * any server-specific option (or override `stream_options`).
 *
 * Returns: (transfer full): the JSON text, or NULL with @error set when
 * extra_body is not a JSON object.
 */
gchar *
llm_chat_build_request (const LlmChatRequest *req, GError **error)
{
  JsonObject *root = json_object_new ();
  JsonObject *stream_options = json_object_new ();
  JsonNode *node;
  gchar *text;

  json_object_set_string_member (root, "model", req->model ? req->model : "");
  json_object_set_array_member (root, "messages", build_messages (req));
  json_object_set_boolean_member (root, "stream", TRUE);
  /* Asks for the usage chunk; servers that do not know the option ignore
   * it, and the element then estimates the token count. */
  json_object_set_boolean_member (stream_options, "include_usage", TRUE);
  json_object_set_object_member (root, "stream_options", stream_options);
  if (req->temperature >= 0)
    json_object_set_double_member (root, "temperature", req->temperature);
  if (req->max_tokens > 0)
    json_object_set_int_member (root, "max_tokens", req->max_tokens);
  if (req->tools)
    json_object_set_member (root, "tools", parse_json (req->tools));
  if (req->tools && req->tool_choice)
    json_object_set_string_member (root, "tool_choice", req->tool_choice);

  if (req->extra_body && *req->extra_body) {
    JsonObject *extra = parse_object (req->extra_body, error);
    JsonObjectIter iter;
    const gchar *name;
    JsonNode *value;

    if (extra == NULL) {
      json_object_unref (root);
      return NULL;
    }
    json_object_iter_init (&iter, extra);
    while (json_object_iter_next (&iter, &name, &value))
      json_object_set_member (root, name, json_node_copy (value));
    json_object_unref (extra);
  }

  node = json_node_init_object (json_node_alloc (), root);
  text = json_to_string (node, FALSE);
  json_node_unref (node);
  json_object_unref (root);
  return text;
}

void
llm_chat_chunk_clear (LlmChatChunk *chunk)
{
  g_free (chunk->content);
  g_free (chunk->reasoning);
  g_free (chunk->finish_reason);
  g_free (chunk->error);
  if (chunk->tool_deltas)
    g_ptr_array_unref (chunk->tool_deltas);
  memset (chunk, 0, sizeof (*chunk));
}

/**
 * llm_chat_is_done_marker:
 *
 * Returns: TRUE if an event's data is the end-of-stream marker `[DONE]`.
 */
gboolean
llm_chat_is_done_marker (const gchar *data, gsize len)
{
  while (len > 0 && g_ascii_isspace (*data)) {
    data++;
    len--;
  }
  while (len > 0 && g_ascii_isspace (data[len - 1]))
    len--;
  return len == 6 && memcmp (data, "[DONE]", 6) == 0;
}

/* The string value of @name in @o, or NULL if missing, null or not a
 * string. */
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

static gint64
get_int (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n))
    return 0;
  if (json_node_get_value_type (n) == G_TYPE_INT64)
    return json_node_get_int (n);
  if (json_node_get_value_type (n) == G_TYPE_DOUBLE)
    return (gint64)json_node_get_double (n);
  return 0;
}

/* Best human-readable message in an error object or body. */
static gchar *
message_from_node (JsonNode *node)
{
  JsonObject *o, *inner;
  const gchar *s;
  JsonNode *detail;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  o = json_node_get_object (node);
  if ((s = get_string (o, "error")))
    return g_strdup (s); /* Ollama: {"error": "..."} */
  if ((inner = get_object (o, "error")))
    o = inner; /* OpenAI, llama.cpp, SGLang: {"error": {"message": ...}} */
  if ((s = get_string (o, "message")))
    return g_strdup (s);
  detail = json_object_get_member (o, "detail");
  if (detail && JSON_NODE_HOLDS_VALUE (detail) &&
      json_node_get_value_type (detail) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (detail));
  if (detail)
    return json_to_string (detail, FALSE); /* FastAPI validation errors */
  return NULL;
}

/**
 * llm_chat_error_message:
 * @body: an error response body or an error event's data, not necessarily
 *   NUL-terminated, not necessarily JSON
 *
 * Returns: (transfer full): the server's own words: the message of a JSON
 * error body in any of the shapes servers use, else the body itself
 * (shortened, valid UTF-8), else "(empty body)".
 */
gchar *
llm_chat_error_message (const gchar *body, gsize len)
{
  JsonParser *parser;
  gchar *message = NULL;
  gchar *text;

  if (body == NULL || len == 0)
    return g_strdup ("(empty body)");
  parser = json_parser_new ();
  if (json_parser_load_from_data (parser, body, len, NULL))
    message = message_from_node (json_parser_get_root (parser));
  g_object_unref (parser);
  if (message)
    return message;

  text = g_utf8_make_valid (body, MIN (len, MAX_QUOTED_BODY));
  g_strstrip (text);
  if (len > MAX_QUOTED_BODY) {
    gchar *longer = g_strconcat (text, "…", NULL);
    g_free (text);
    text = longer;
  }
  return text;
}

/* The `tool_calls` deltas of a chunk, in order. */
static void
parse_tool_deltas (JsonObject *delta, LlmChatChunk *chunk)
{
  JsonNode *n = json_object_get_member (delta, "tool_calls");
  JsonArray *a;
  guint i;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return;
  a = json_node_get_array (n);
  for (i = 0; i < json_array_get_length (a); i++) {
    JsonNode *e = json_array_get_element (a, i);
    JsonObject *o, *fn;
    LlmToolDelta *d;
    if (!JSON_NODE_HOLDS_OBJECT (e))
      continue;
    o = json_node_get_object (e);
    fn = get_object (o, "function");
    d = g_new0 (LlmToolDelta, 1);
    d->index = json_object_has_member (o, "index") ? get_int (o, "index") : -1;
    d->id = g_strdup (get_string (o, "id"));
    d->name = g_strdup (get_string (fn, "name"));
    d->arguments = g_strdup (get_string (fn, "arguments"));
    if (chunk->tool_deltas == NULL)
      chunk->tool_deltas =
          g_ptr_array_new_with_free_func ((GDestroyNotify)llm_tool_delta_free);
    g_ptr_array_add (chunk->tool_deltas, d);
  }
}

static void
parse_choice (JsonObject *choice, LlmChatChunk *chunk)
{
  JsonObject *delta = get_object (choice, "delta");
  const gchar *s;

  if ((s = get_string (choice, "finish_reason")) && *s)
    chunk->finish_reason = g_strdup (s);
  if (delta == NULL)
    return;
  if ((s = get_string (delta, "content")) && *s)
    chunk->content = g_strdup (s);
  if ((s = get_string (delta, "reasoning_content")) && *s)
    chunk->reasoning = g_strdup (s);
  else if ((s = get_string (delta, "reasoning")) && *s)
    chunk->reasoning = g_strdup (s);
  parse_tool_deltas (delta, chunk);
}

/* The choice with index 0 (we never ask for n > 1). */
static JsonObject *
first_choice (JsonObject *root)
{
  JsonNode *n = json_object_get_member (root, "choices");
  JsonArray *choices;
  guint i, len;

  if (n == NULL || !JSON_NODE_HOLDS_ARRAY (n))
    return NULL;
  choices = json_node_get_array (n);
  len = json_array_get_length (choices);
  for (i = 0; i < len; i++) {
    JsonNode *c = json_array_get_element (choices, i);
    JsonObject *o;
    if (!JSON_NODE_HOLDS_OBJECT (c))
      continue;
    o = json_node_get_object (c);
    if (!json_object_has_member (o, "index") || get_int (o, "index") == 0)
      return o;
  }
  return NULL;
}

static void
parse_usage (JsonObject *root, LlmChatChunk *chunk)
{
  JsonObject *usage = get_object (root, "usage");

  if (usage == NULL)
    return;
  chunk->has_usage = TRUE;
  chunk->prompt_tokens = get_int (usage, "prompt_tokens");
  chunk->completion_tokens = get_int (usage, "completion_tokens");
  chunk->total_tokens = get_int (usage, "total_tokens");
  if (chunk->total_tokens == 0)
    chunk->total_tokens = chunk->prompt_tokens + chunk->completion_tokens;
}

/**
 * llm_chat_parse_chunk:
 * @parser: a parser to reuse (saves an allocation per token)
 * @data: one event's data, a `chat.completion.chunk` object
 * @chunk: (out caller-allocates): cleared, then filled
 *
 * Returns: FALSE with @error set if @data is not a JSON object.
 */
gboolean
llm_chat_parse_chunk (JsonParser *parser, const gchar *data, gsize len,
    LlmChatChunk *chunk, GError **error)
{
  JsonNode *root;
  JsonObject *o, *choice;

  memset (chunk, 0, sizeof (*chunk));
  if (!json_parser_load_from_data (parser, data, len, error))
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
        "expected a chat.completion.chunk object");
    return FALSE;
  }
  o = json_node_get_object (root);
  if (json_object_has_member (o, "error")) {
    chunk->error = message_from_node (root);
    if (chunk->error == NULL)
      chunk->error = g_strdup ("the server reported an error");
    return TRUE;
  }
  if ((choice = first_choice (o)))
    parse_choice (choice, chunk);
  parse_usage (o, chunk);
  return TRUE;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Tool calls, without GStreamer: the tools file, `tool_calls` deltas
 * assembled into calls, the webhook's body and signature, and results.
 *
 * Servers stream calls differently (tests/llm/data/tool-*.sse hold each
 * shape): OpenAI sends `id`, `type` and the whole `function.name` in the
 * first delta of a call with `arguments` "", then only `index` and argument
 * fragments; vLLM repeats `type` and sends `id` "" in the later deltas;
 * SGLang repeats the same `id` in every delta; some servers send no `id`
 * at all (vLLM issue #18412) or reuse `index` 0 for a second call with a
 * new `id` (lmdeploy issue #3412 quotes such streams). Each is one call
 * per distinct id, arguments appended in order. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "llmtools.h"

struct _LlmToolSet
{
  gint refcount; /* atomic */
  GPtrArray *tools; /* LlmTool* */
  gchar *request_json; /* the `tools` array the model sees */
};

static void
tool_free (LlmTool *t)
{
  g_free (t->name);
  g_free (t->url);
  g_strfreev (t->header_names);
  g_strfreev (t->header_envs);
  g_free (t);
}

const gchar *
llm_tool_kind_name (LlmToolKind kind)
{
  switch (kind) {
    case LLM_TOOL_WEBHOOK:
      return "webhook";
    case LLM_TOOL_END_CALL:
      return "end_call";
    case LLM_TOOL_TRANSFER:
      return "transfer";
    case LLM_TOOL_WAIT:
      return "wait";
  }
  return "?";
}

/* OpenAI's rule for function names: the model must be able to write it. */
static gboolean
valid_name (const gchar *name)
{
  gsize n = strlen (name);

  if (n == 0 || n > 64)
    return FALSE;
  for (; *name; name++) {
    if (!g_ascii_isalnum (*name) && *name != '_' && *name != '-')
      return FALSE;
  }
  return TRUE;
}

/**
 * llm_url_is_http:
 * @url: a URL
 *
 * Parsed as soup_message_new() parses it (SOUP_HTTP_URI_FLAGS, a host),
 * so a URL accepted here always makes a request: a webhook refused by
 * libsoup after its call was counted would leave the round waiting.
 *
 * Returns: TRUE for an http or https URL with a host (the chat endpoint,
 * a tool's webhook).
 */
gboolean
llm_url_is_http (const gchar *url)
{
  GUri *uri = url ? g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
  gboolean ok;

  if (uri == NULL)
    return FALSE;
  ok = (g_strcmp0 (g_uri_get_scheme (uri), "http") == 0 ||
           g_strcmp0 (g_uri_get_scheme (uri), "https") == 0) &&
      g_uri_get_host (uri) && *g_uri_get_host (uri);
  g_uri_unref (uri);
  return ok;
}

/**
 * llm_url_for_log:
 *
 * Returns: (transfer full): @url as logs may show it:
 * scheme://host[:port]/path, without the user info (a password), the
 * query and the fragment (where tokens often travel).
 */
gchar *
llm_url_for_log (const gchar *url)
{
  /* Without SCHEME_NORMALIZE: the port is shown only when the URL has one. */
  GUri *uri = url
      ? g_uri_parse (
            url, SOUP_HTTP_URI_FLAGS & ~G_URI_FLAGS_SCHEME_NORMALIZE, NULL)
      : NULL;
  gchar *text;

  if (uri == NULL)
    return g_strdup ("(an unparsable URL)");
  text = g_uri_join (G_URI_FLAGS_ENCODED, g_uri_get_scheme (uri), NULL,
      g_uri_get_host (uri), g_uri_get_port (uri), g_uri_get_path (uri), NULL,
      NULL);
  g_uri_unref (uri);
  return text;
}

#define BAD(...)                                                               \
  G_STMT_START                                                                 \
  {                                                                            \
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, __VA_ARGS__);     \
    return FALSE;                                                              \
  }                                                                            \
  G_STMT_END

static gboolean
parse_webhook (LlmTool *t, JsonObject *hook, guint i, GError **error)
{
  JsonNode *n = json_object_get_member (hook, "url");
  JsonObject *headers;

  if (n == NULL || json_node_get_value_type (n) != G_TYPE_STRING ||
      !llm_url_is_http (json_node_get_string (n)))
    BAD ("tool %u (%s): webhook.url must be an http:// or https:// URL", i,
        t->name);
  t->url = g_strdup (json_node_get_string (n));
  t->timeout_ms = LLM_TOOLS_DEFAULT_TIMEOUT_MS;
  n = json_object_get_member (hook, "timeout_ms");
  if (n) {
    gint64 ms = JSON_NODE_HOLDS_VALUE (n) &&
            json_node_get_value_type (n) == G_TYPE_INT64
        ? json_node_get_int (n)
        : -1;
    if (ms < 1 || ms > LLM_TOOLS_MAX_TIMEOUT_MS)
      BAD ("tool %u (%s): webhook.timeout_ms must be an integer from 1 to "
           "%u",
          i, t->name, LLM_TOOLS_MAX_TIMEOUT_MS);
    t->timeout_ms = (guint)ms;
  }
  n = json_object_get_member (hook, "headers_env");
  if (n && !JSON_NODE_HOLDS_OBJECT (n))
    BAD ("tool %u (%s): webhook.headers_env must be an object of header "
         "name to environment variable name",
        i, t->name);
  headers = n ? json_node_get_object (n) : NULL;
  {
    GPtrArray *names = g_ptr_array_new (), *envs = g_ptr_array_new ();
    JsonObjectIter iter;
    const gchar *name;
    JsonNode *value;

    if (headers) {
      json_object_iter_init (&iter, headers);
      while (json_object_iter_next (&iter, &name, &value)) {
        if (json_node_get_value_type (value) != G_TYPE_STRING)
          continue;
        g_ptr_array_add (names, g_strdup (name));
        g_ptr_array_add (envs, g_strdup (json_node_get_string (value)));
      }
    }
    g_ptr_array_add (names, NULL);
    g_ptr_array_add (envs, NULL);
    t->header_names = (gchar **)g_ptr_array_free (names, FALSE);
    t->header_envs = (gchar **)g_ptr_array_free (envs, FALSE);
  }
  return TRUE;
}

/* Reads tool @i of the file into @t; on error @t is half-filled (the
 * caller frees it). */
static gboolean
parse_tool (LlmTool *t, JsonNode *node, guint i, GError **error)
{
  JsonObject *o, *fn;
  JsonNode *n;
  const gchar *builtin;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    BAD ("tool %u is not a JSON object", i);
  o = json_node_get_object (node);
  if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""),
          "function") != 0)
    BAD ("tool %u: \"type\" must be \"function\"", i);
  n = json_object_get_member (o, "function");
  fn = n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
  t->name = g_strdup (
      fn ? json_object_get_string_member_with_default (fn, "name", "") : "");
  if (!valid_name (t->name))
    BAD ("tool %u: function.name must be 1 to 64 letters, digits, _ or -", i);
  n = json_object_get_member (o, "webhook");
  builtin = json_object_get_string_member_with_default (o, "builtin", NULL);
  if ((n != NULL) == (builtin != NULL))
    BAD ("tool %u (%s): give exactly one of \"webhook\": {\"url\": ...} or "
         "\"builtin\": \"end_call\" | \"transfer\" | \"wait\"",
        i, t->name);
  if (n) {
    t->kind = LLM_TOOL_WEBHOOK;
    if (!JSON_NODE_HOLDS_OBJECT (n))
      BAD ("tool %u (%s): \"webhook\" must be an object", i, t->name);
    return parse_webhook (t, json_node_get_object (n), i, error);
  }
  if (g_str_equal (builtin, "end_call"))
    t->kind = LLM_TOOL_END_CALL;
  else if (g_str_equal (builtin, "transfer"))
    t->kind = LLM_TOOL_TRANSFER;
  else if (g_str_equal (builtin, "wait"))
    t->kind = LLM_TOOL_WAIT;
  else
    BAD ("tool %u (%s): unknown builtin \"%s\" (end_call, transfer or wait)", i,
        t->name, builtin);
  return TRUE;
}

#undef BAD

/* The tool as the model sees it: `type` and `function`, without our
 * members (`webhook`, `builtin`). */
static JsonNode *
request_tool (JsonNode *node)
{
  JsonObject *o = json_node_get_object (node);
  JsonObject *out = json_object_new ();

  json_object_set_string_member (out, "type", "function");
  json_object_set_member (
      out, "function", json_node_copy (json_object_get_member (o, "function")));
  return json_node_init_object (json_node_alloc (), out);
}

static void
set_free (LlmToolSet *set)
{
  g_ptr_array_unref (set->tools);
  g_free (set->request_json);
  g_free (set);
}

static gboolean
parse_all (LlmToolSet *set, JsonArray *a, GError **error)
{
  JsonArray *req = json_array_new ();
  JsonNode *root;
  guint i;

  for (i = 0; i < json_array_get_length (a); i++) {
    JsonNode *n = json_array_get_element (a, i);
    LlmTool *t = g_new0 (LlmTool, 1);
    if (!parse_tool (t, n, i, error)) {
      tool_free (t);
      json_array_unref (req);
      return FALSE;
    }
    if (llm_tool_set_find (set, t->name)) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "tool %u: a tool named %s is declared twice", i, t->name);
      tool_free (t);
      json_array_unref (req);
      return FALSE;
    }
    g_ptr_array_add (set->tools, t);
    json_array_add_element (req, request_tool (n));
  }
  root = json_node_init_array (json_node_alloc (), req);
  set->request_json = json_to_string (root, FALSE);
  json_node_unref (root);
  json_array_unref (req);
  return TRUE;
}

/**
 * llm_tool_set_parse:
 * @json: the tools file's text: a JSON array of OpenAI tool objects, each
 *   with `webhook` or `builtin`
 *
 * Returns: (transfer full): the tools, or NULL with @error naming the tool
 * at fault and what it must look like.
 */
LlmToolSet *
llm_tool_set_parse (const gchar *json, gsize len, GError **error)
{
  JsonParser *parser = json_parser_new ();
  LlmToolSet *set = NULL;
  JsonNode *root;

  if (len > LLM_TOOLS_MAX_FILE) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the tools file is larger than %u bytes", LLM_TOOLS_MAX_FILE);
    goto out;
  }
  if (!json_parser_load_from_data (parser, json, len, error))
    goto out;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the tools file must be a JSON array of tool objects");
    goto out;
  }
  if (json_array_get_length (json_node_get_array (root)) >
      LLM_TOOLS_MAX_TOOLS) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the tools file declares more than %u tools", LLM_TOOLS_MAX_TOOLS);
    goto out;
  }
  set = g_new0 (LlmToolSet, 1);
  set->refcount = 1;
  set->tools = g_ptr_array_new_with_free_func ((GDestroyNotify)tool_free);
  if (!parse_all (set, json_node_get_array (root), error))
    g_clear_pointer (&set, set_free);
out:
  g_object_unref (parser);
  return set;
}

/**
 * llm_tool_set_load:
 *
 * Returns: (transfer full): the tools of the file at @path, or NULL with
 * @error (the message starts with the path).
 */
LlmToolSet *
llm_tool_set_load (const gchar *path, GError **error)
{
  GStatBuf st;
  gchar *text = NULL;
  gsize len = 0;
  LlmToolSet *set = NULL;
  GError *err = NULL;

  if (g_stat (path, &st) == 0 && st.st_size > LLM_TOOLS_MAX_FILE) {
    g_set_error (&err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "larger than %u bytes", LLM_TOOLS_MAX_FILE);
  } else if (g_file_get_contents (path, &text, &len, &err)) {
    set = llm_tool_set_parse (text, len, &err);
  }
  if (err) {
    g_set_error (error, err->domain, err->code, "%s: %s", path, err->message);
    g_error_free (err);
  }
  g_free (text);
  return set;
}

LlmToolSet *
llm_tool_set_ref (LlmToolSet *set)
{
  g_atomic_int_inc (&set->refcount);
  return set;
}

void
llm_tool_set_unref (LlmToolSet *set)
{
  if (set && g_atomic_int_dec_and_test (&set->refcount))
    set_free (set);
}

guint
llm_tool_set_size (const LlmToolSet *set)
{
  return set ? set->tools->len : 0;
}

const LlmTool *
llm_tool_set_find (const LlmToolSet *set, const gchar *name)
{
  guint i;

  for (i = 0; set && name && i < set->tools->len; i++) {
    LlmTool *t = g_ptr_array_index (set->tools, i);
    if (g_str_equal (t->name, name))
      return t;
  }
  return NULL;
}

/* Returns: (transfer none): the `tools` member of a request, JSON text. */
const gchar *
llm_tool_set_request_json (const LlmToolSet *set)
{
  return set->request_json;
}

/* ---- Streamed deltas ---- */

void
llm_tool_delta_free (LlmToolDelta *delta)
{
  g_free (delta->id);
  g_free (delta->name);
  g_free (delta->arguments);
  g_free (delta);
}

static void
call_free (LlmToolCall *c)
{
  g_free (c->id);
  g_string_free (c->name, TRUE);
  g_string_free (c->arguments, TRUE);
  g_free (c);
}

void
llm_tool_calls_init (LlmToolCalls *calls)
{
  calls->calls = g_ptr_array_new_with_free_func ((GDestroyNotify)call_free);
  calls->made_up_ids = 0;
  calls->ignored = 0;
}

void
llm_tool_calls_clear (LlmToolCalls *calls)
{
  g_clear_pointer (&calls->calls, g_ptr_array_unref);
}

static LlmToolCall *
call_new (LlmToolCalls *calls, gint index)
{
  LlmToolCall *c = g_new0 (LlmToolCall, 1);

  c->index = index;
  c->name = g_string_new (NULL);
  c->arguments = g_string_new (NULL);
  g_ptr_array_add (calls->calls, c);
  return c;
}

/* Whether @name is the call's name (repeated by a server), as kept: a
 * name cut to LLM_TOOLS_MAX_NAME matches its whole. */
static gboolean
name_matches (const LlmToolCall *c, const gchar *name)
{
  if (c->name_cut)
    return g_str_has_prefix (name, c->name->str);
  return g_str_equal (c->name->str, name);
}

/* The delta's id as the call keeps it (free it), or NULL when it has
 * none. An id longer than LLM_TOOLS_MAX_ID is the server's mistake: the
 * history keeps a short one derived from it instead ("call_vah" and 24 hex
 * digits of its SHA-256), the same for every delta that repeats it and
 * another for another id. */
static gchar *
delta_id (const LlmToolDelta *d)
{
  gchar *sum, *id;

  if (d->id == NULL || *d->id == '\0')
    return NULL;
  if (strlen (d->id) <= LLM_TOOLS_MAX_ID)
    return g_strdup (d->id);
  sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, d->id, -1);
  id = g_strdup_printf ("call_vah%.24s", sum);
  g_free (sum);
  return id;
}

/* The call a delta continues, or NULL when it starts a new one. */
static LlmToolCall *
call_for_delta (LlmToolCalls *calls, const LlmToolDelta *d, const gchar *id)
{
  gint i;

  for (i = (gint)calls->calls->len - 1; i >= 0; i--) {
    LlmToolCall *c = g_ptr_array_index (calls->calls, i);
    if (d->index >= 0 && c->index != d->index)
      continue;
    /* A new id on a known index is a new call (a server reusing index 0). */
    if (id && c->id && !g_str_equal (c->id, id))
      return NULL;
    /* Another name is another call (ids not known yet). */
    if (d->name && *d->name && c->name->len > 0 && !name_matches (c, d->name))
      return NULL;
    return c;
  }
  return NULL;
}

/* Appends @name to the call's name, at most LLM_TOOLS_MAX_NAME bytes in
 * all (cut at a character boundary). */
static void
append_name (LlmToolCall *c, const gchar *name)
{
  gsize room = LLM_TOOLS_MAX_NAME - MIN (c->name->len, LLM_TOOLS_MAX_NAME);
  const gchar *end;

  if (strlen (name) <= room) {
    g_string_append (c->name, name);
    return;
  }
  c->name_cut = TRUE;
  end = g_utf8_find_prev_char (name, name + room + 1);
  if (end)
    g_string_append_len (c->name, name, end - name);
}

/**
 * llm_tool_calls_feed:
 *
 * Adds one delta: a new call, or the next fragment of one already begun.
 * At most LLM_TOOLS_MAX_ANSWER_CALLS calls are assembled; deltas of
 * further calls are counted in @calls->ignored and dropped, so a model
 * looping on calls cannot grow the answer without bound.
 */
void
llm_tool_calls_feed (LlmToolCalls *calls, const LlmToolDelta *d)
{
  gchar *id = delta_id (d);
  LlmToolCall *c = call_for_delta (calls, d, id);

  /* Once calls were dropped, a fragment naming no call (no index, no id)
   * may be theirs: it must not land in the last kept call. */
  if (calls->ignored > 0 && d->index < 0 && id == NULL)
    c = NULL;
  if (c == NULL && calls->calls->len >= LLM_TOOLS_MAX_ANSWER_CALLS) {
    calls->ignored++;
    g_free (id);
    return;
  }
  if (c == NULL)
    c = call_new (calls, d->index);
  if (c->id == NULL)
    c->id = g_steal_pointer (&id);
  g_free (id);
  /* The name comes whole in one delta; a server repeating it in every
   * delta must not make "get_xget_x". */
  if (d->name && *d->name && !name_matches (c, d->name))
    append_name (c, d->name);
  if (d->arguments && !c->too_long) {
    if (c->arguments->len + strlen (d->arguments) > LLM_TOOLS_MAX_ARGUMENTS)
      c->too_long = TRUE;
    else
      g_string_append (c->arguments, d->arguments);
  }
}

/**
 * llm_tool_calls_finish:
 * @round: the tool round of the turn, to make ids unique in the history
 *
 * Gives every call without an id one, so its result can name it.
 */
void
llm_tool_calls_finish (LlmToolCalls *calls, guint round)
{
  guint i;

  for (i = 0; i < calls->calls->len; i++) {
    LlmToolCall *c = g_ptr_array_index (calls->calls, i);
    if (c->id == NULL) {
      c->id = g_strdup_printf ("call_va%u_%u", round, i);
      calls->made_up_ids++;
    }
  }
}

/* Returns: (transfer none): the call's arguments as the history keeps
 * them: the model's text when it is a JSON object, else "{}" (cut off,
 * malformed, not an object, empty), whatever became of the call (unknown
 * tool, past a limit): a chat template that parses the history's
 * arguments must not fail on the model's mistake. */
static const gchar *
history_arguments (const LlmToolCall *c)
{
  JsonNode *args;
  gboolean blank = TRUE;
  const gchar *p;

  for (p = c->arguments->str; *p && blank; p++)
    blank = g_ascii_isspace (*p);
  if (blank || (args = llm_tool_parse_arguments (c, NULL)) == NULL)
    return "{}";
  json_node_unref (args);
  return c->arguments->str;
}

/**
 * llm_tool_calls_to_json:
 *
 * Returns: (transfer full): the `tool_calls` array of the assistant
 * message; every call's `arguments` is a JSON object's text.
 */
gchar *
llm_tool_calls_to_json (const LlmToolCalls *calls)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;
  guint i;

  json_builder_begin_array (b);
  for (i = 0; i < calls->calls->len; i++) {
    LlmToolCall *c = g_ptr_array_index (calls->calls, i);
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, c->id ? c->id : "");
    json_builder_set_member_name (b, "type");
    json_builder_add_string_value (b, "function");
    json_builder_set_member_name (b, "function");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "name");
    json_builder_add_string_value (b, c->name->str);
    json_builder_set_member_name (b, "arguments");
    json_builder_add_string_value (b, history_arguments (c));
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  return json;
}

/**
 * llm_tool_parse_arguments:
 *
 * Returns: (transfer full): the call's arguments as a JSON object node
 * (empty arguments are `{}`), or NULL with @error saying what is wrong.
 */
JsonNode *
llm_tool_parse_arguments (const LlmToolCall *call, GError **error)
{
  JsonParser *parser;
  JsonNode *root = NULL;
  gchar *text;

  if (call->too_long) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the arguments are longer than %u bytes", LLM_TOOLS_MAX_ARGUMENTS);
    return NULL;
  }
  text = g_strstrip (g_strdup (call->arguments->str));
  if (*text == '\0') {
    g_free (text);
    return json_node_init_object (json_node_alloc (), json_object_new ());
  }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, text, -1, NULL)) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the arguments are not valid JSON");
  } else if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "the arguments are not a JSON object");
  } else {
    root = json_node_copy (json_parser_get_root (parser));
  }
  g_object_unref (parser);
  g_free (text);
  return root;
}

/* ---- Webhooks ---- */

/**
 * llm_tool_webhook_body:
 * @call_id: (nullable): the voice call's id (the element's `call-id`)
 * @arguments: the call's arguments, a JSON object
 *
 * Returns: (transfer full): the webhook's request body:
 * `{"name","tool_call_id","call_id","turn","arguments"}`.
 */
gchar *
llm_tool_webhook_body (const gchar *name, const gchar *tool_call_id,
    const gchar *call_id, guint turn, JsonNode *arguments)
{
  JsonObject *o = json_object_new ();
  JsonNode *root;
  gchar *text;

  json_object_set_string_member (o, "name", name);
  json_object_set_string_member (o, "tool_call_id", tool_call_id);
  if (call_id && *call_id)
    json_object_set_string_member (o, "call_id", call_id);
  else
    json_object_set_null_member (o, "call_id");
  json_object_set_int_member (o, "turn", turn);
  json_object_set_member (o, "arguments", json_node_copy (arguments));
  root = json_node_init_object (json_node_alloc (), o);
  text = json_to_string (root, FALSE);
  json_node_unref (root);
  json_object_unref (o);
  return text;
}

/**
 * llm_tool_signature:
 * @timestamp: Unix time in seconds, sent in the header (a receiver
 *   refuses old ones, so a captured request cannot be replayed later)
 *
 * Returns: (transfer full): the `X-Voiceagent-Signature` value:
 * `t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with
 * @secret>`.
 */
gchar *
llm_tool_signature (
    const gchar *secret, gint64 timestamp, const gchar *body, gsize len)
{
  GHmac *h =
      g_hmac_new (G_CHECKSUM_SHA256, (const guchar *)secret, strlen (secret));
  gchar *t = g_strdup_printf ("%" G_GINT64_FORMAT, timestamp);
  gchar *value;

  g_hmac_update (h, (const guchar *)t, -1);
  g_hmac_update (h, (const guchar *)".", 1);
  g_hmac_update (h, (const guchar *)body, len);
  value = g_strdup_printf ("t=%s,v1=%s", t, g_hmac_get_string (h));
  g_hmac_unref (h);
  g_free (t);
  return value;
}

/* Returns: (transfer full): `{"error": message}`, the result a failed call
 * gives the model, so it can tell the caller instead of waiting. */
gchar *
llm_tool_error_result (const gchar *message)
{
  JsonObject *o = json_object_new ();
  JsonNode *root;
  gchar *text;

  json_object_set_string_member (o, "error", message);
  root = json_node_init_object (json_node_alloc (), o);
  text = json_to_string (root, FALSE);
  json_node_unref (root);
  json_object_unref (o);
  return text;
}

/**
 * llm_tool_result_bound:
 *
 * Returns: (transfer full): @result, or its first LLM_TOOLS_MAX_RESULT
 * bytes (whole characters) and a note saying it was cut, so a webhook
 * cannot fill the model's context.
 */
gchar *
llm_tool_result_bound (const gchar *result)
{
  gsize len = strlen (result);
  const gchar *end;
  gchar *head, *out;

  if (len <= LLM_TOOLS_MAX_RESULT)
    return g_strdup (result);
  end = g_utf8_find_prev_char (result, result + LLM_TOOLS_MAX_RESULT + 1);
  head = g_strndup (result, end ? end - result : 0);
  out =
      g_strdup_printf ("%s … [truncated: the result had %" G_GSIZE_FORMAT
                       " bytes, only the first %" G_GSIZE_FORMAT " are shown]",
          head, len, (gsize)(end ? end - result : 0));
  g_free (head);
  return out;
}

/**
 * llm_tool_result_from_http:
 * @error: (out) (optional): set to why the answer is not a result, or NULL
 *
 * Returns: (transfer full): the `tool` message's content for a webhook
 * answer: its JSON body (bounded) for a 2xx JSON answer, else a short
 * `{"error": ...}` the model can act on.
 */
gchar *
llm_tool_result_from_http (
    guint status, const gchar *body, gsize len, gchar **error)
{
  JsonParser *parser;
  gchar *why = NULL, *result = NULL;

  if (status < 200 || status > 299) {
    why = g_strdup_printf ("the tool service answered HTTP %u", status);
  } else {
    parser = json_parser_new ();
    if (len == 0 || !json_parser_load_from_data (parser, body, len, NULL) ||
        json_parser_get_root (parser) == NULL)
      why = g_strdup ("the tool service did not answer JSON");
    else
      result = json_to_string (json_parser_get_root (parser), FALSE);
    g_object_unref (parser);
  }
  if (why) {
    result = llm_tool_error_result (why);
  } else {
    gchar *bounded = llm_tool_result_bound (result);
    g_free (result);
    result = bounded;
  }
  if (error)
    *error = why;
  else
    g_free (why);
  return result;
}

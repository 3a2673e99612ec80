/* Tool calls without a pipeline: the tools file, streamed `tool_calls`
 * deltas of OpenAI, vLLM and SGLang (tests/llm/data/tool-*.sse, split at
 * every byte), the webhook signature, results and the history's rounds.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>
#include <string.h>

#include "llmchat.h"
#include "llmhistory.h"
#include "llmsse.h"
#include "llmtools.h"

/* Split points tried: every 3rd byte (every byte of the three captures
 * takes minutes under ASan); the cuts still fall inside every delta, its
 * strings and escapes, and between the CR/LF of line ends. */
#define SPLIT_STEP 3

static gchar *
data_path (const gchar *name)
{
  const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");

  fail_unless (src != NULL, "VOICEAGENT_SOURCE_DIR is not set");
  return g_build_filename (src, "tests", "llm", "data", name, NULL);
}

static gchar *
read_data (const gchar *name, gsize *len)
{
  gchar *path = data_path (name), *text = NULL;

  fail_unless (g_file_get_contents (path, &text, len, NULL), "%s", path);
  g_free (path);
  return text;
}

/* What a stream said: its text and its calls. */
typedef struct
{
  JsonParser *parser;
  GString *text;
  LlmToolCalls calls;
  gchar *finish;
} Heard;

static gboolean
on_event (const gchar *event, const gchar *data, gsize len, gpointer user_data)
{
  Heard *h = user_data;
  LlmChatChunk chunk;

  if (llm_chat_is_done_marker (data, len))
    return TRUE;
  fail_unless (llm_chat_parse_chunk (h->parser, data, len, &chunk, NULL));
  if (chunk.content)
    g_string_append (h->text, chunk.content);
  for (guint i = 0; chunk.tool_deltas && i < chunk.tool_deltas->len; i++)
    llm_tool_calls_feed (&h->calls, g_ptr_array_index (chunk.tool_deltas, i));
  if (chunk.finish_reason) {
    g_free (h->finish);
    h->finish = g_strdup (chunk.finish_reason);
  }
  llm_chat_chunk_clear (&chunk);
  return TRUE;
}

/* Parses @sse fed in two pieces split at @at. */
static void
hear (const gchar *sse, gsize len, gsize at, Heard *h)
{
  LlmSseParser p;

  h->parser = json_parser_new ();
  h->text = g_string_new (NULL);
  h->finish = NULL;
  llm_tool_calls_init (&h->calls);
  llm_sse_parser_init (&p);
  fail_unless (llm_sse_parser_feed (&p, sse, at, on_event, h, NULL));
  fail_unless (llm_sse_parser_feed (&p, sse + at, len - at, on_event, h, NULL));
  fail_unless (llm_sse_parser_finish (&p, on_event, h, NULL));
  llm_sse_parser_clear (&p);
  llm_tool_calls_finish (&h->calls, 1);
}

static void
heard_clear (Heard *h)
{
  g_object_unref (h->parser);
  g_string_free (h->text, TRUE);
  llm_tool_calls_clear (&h->calls);
  g_free (h->finish);
}

static void
check_call (Heard *h, guint i, const gchar *id, const gchar *name,
    const gchar *arguments)
{
  LlmToolCall *c;

  fail_unless (i < h->calls.calls->len);
  c = g_ptr_array_index (h->calls.calls, i);
  fail_unless_equals_string (c->id, id);
  fail_unless_equals_string (c->name->str, name);
  fail_unless_equals_string (c->arguments->str, arguments);
}

/* Each capture cut in two anywhere gives the same calls. */
GST_START_TEST (test_captures_every_split)
{
  gsize len, at;
  gchar *openai = read_data ("tool-openai.sse", &len);

  for (at = 0; at <= len; at += SPLIT_STEP) {
    Heard h;
    hear (openai, len, at, &h);
    fail_unless_equals_int (h.calls.calls->len, 2);
    check_call (
        &h, 0, "call_Xy1Ab", "get_order_status", "{\"order_id\": \"1234\"}");
    check_call (
        &h, 1, "call_Zz2Cd", "get_order_status", "{\"order_id\": \"5678\"}");
    fail_unless_equals_string (h.text->str, "");
    fail_unless_equals_string (h.finish, "tool_calls");
    fail_unless_equals_int (h.calls.made_up_ids, 0);
    heard_clear (&h);
  }
  g_free (openai);

  {
    gchar *vllm = read_data ("tool-vllm.sse", &len);
    for (at = 0; at <= len; at += SPLIT_STEP) {
      Heard h;
      hear (vllm, len, at, &h);
      fail_unless_equals_int (h.calls.calls->len, 1);
      check_call (&h, 0, "chatcmpl-tool-4f2a9c", "get_order_status",
          "{\"order_id\": \"1234\"}");
      fail_unless_equals_string (h.text->str, "Let me check that order.");
      heard_clear (&h);
    }
    g_free (vllm);
  }
  {
    gchar *sglang = read_data ("tool-sglang.sse", &len);
    for (at = 0; at <= len; at += SPLIT_STEP) {
      Heard h;
      hear (sglang, len, at, &h);
      fail_unless_equals_int (h.calls.calls->len, 2);
      check_call (&h, 0, "0", "get_order_status", "{\"order_id\": \"1234\"}");
      check_call (&h, 1, "1", "transfer_call", "{\"department\": \"billing\"}");
      heard_clear (&h);
    }
    g_free (sglang);
  }
}

GST_END_TEST;

static LlmToolDelta *
delta (gint index, const gchar *id, const gchar *name, const gchar *args)
{
  LlmToolDelta *d = g_new0 (LlmToolDelta, 1);

  d->index = index;
  d->id = g_strdup (id);
  d->name = g_strdup (name);
  d->arguments = g_strdup (args);
  return d;
}

static void
feed (LlmToolCalls *calls, LlmToolDelta *d)
{
  llm_tool_calls_feed (calls, d);
  llm_tool_delta_free (d);
}

/* No ids (some servers), no index, a repeated name, arguments too long. */
GST_START_TEST (test_delta_variants)
{
  LlmToolCalls calls;
  LlmToolCall *c;
  gchar *big = g_strnfill (LLM_TOOLS_MAX_ARGUMENTS, 'x');
  gchar *json;
  GError *err = NULL;

  llm_tool_calls_init (&calls);
  feed (&calls, delta (0, NULL, "end_call", NULL));
  feed (&calls, delta (0, NULL, "end_call", "{}"));
  feed (&calls, delta (-1, "c2", "wait", ""));
  feed (&calls, delta (-1, NULL, NULL, big));
  feed (&calls, delta (-1, NULL, NULL, "y"));
  llm_tool_calls_finish (&calls, 3);
  fail_unless_equals_int (calls.calls->len, 2);
  c = g_ptr_array_index (calls.calls, 0);
  fail_unless_equals_string (c->id, "call_va3_0");
  fail_unless_equals_string (c->name->str, "end_call");
  fail_unless_equals_string (c->arguments->str, "{}");
  c = g_ptr_array_index (calls.calls, 1);
  fail_unless (c->too_long);
  fail_unless (llm_tool_parse_arguments (c, &err) == NULL);
  fail_unless (strstr (err->message, "longer than") != NULL);
  g_clear_error (&err);
  json = llm_tool_calls_to_json (&calls);
  fail_unless_equals_string (json,
      "[{\"id\":\"call_va3_0\",\"type\":\"function\",\"function\":{\"name\":"
      "\"end_call\",\"arguments\":\"{}\"}},{\"id\":\"c2\",\"type\":"
      "\"function\",\"function\":{\"name\":\"wait\",\"arguments\":\"{}\"}}]");
  g_free (json);
  llm_tool_calls_clear (&calls);
  g_free (big);
}

GST_END_TEST;

/* Whatever the model sent as arguments, the history's `tool_calls` hold a
 * JSON object's text: the model's when it is one, else "{}". */
GST_START_TEST (test_history_arguments)
{
  static const gchar *sent[] = { "{\"order_id\": ", "[1]", "  ", "",
    " {\"a\": 1} ", "{\"a\": 1} x", "\"str\"" };
  static const gchar *kept[] = { "{}", "{}", "{}", "{}", " {\"a\": 1} ", "{}",
    "{}" };
  LlmToolCalls calls;
  JsonParser *p = json_parser_new ();
  JsonArray *a;
  gchar *json, *big = g_strnfill (LLM_TOOLS_MAX_ARGUMENTS - 1, ' ');
  guint i;

  llm_tool_calls_init (&calls);
  for (i = 0; i < G_N_ELEMENTS (sent); i++) {
    gchar *id = g_strdup_printf ("c%u", i);
    feed (&calls, delta (i, id, "t", sent[i]));
    g_free (id);
  }
  /* Cut off past the bound: the kept text is a valid start, not an object. */
  feed (&calls, delta (i, "big", "t", "{\"a\": \""));
  feed (&calls, delta (i, NULL, NULL, big));
  json = llm_tool_calls_to_json (&calls);
  fail_unless (json_parser_load_from_data (p, json, -1, NULL), "%s", json);
  a = json_node_get_array (json_parser_get_root (p));
  fail_unless_equals_int (json_array_get_length (a), G_N_ELEMENTS (sent) + 1);
  for (i = 0; i < json_array_get_length (a); i++) {
    JsonObject *fn = json_object_get_object_member (
        json_array_get_object_element (a, i), "function");
    fail_unless_equals_string (json_object_get_string_member (fn, "arguments"),
        i < G_N_ELEMENTS (kept) ? kept[i] : "{}");
  }
  g_free (json);
  g_free (big);
  g_object_unref (p);
  llm_tool_calls_clear (&calls);
}

GST_END_TEST;

/* At most LLM_TOOLS_MAX_ANSWER_CALLS calls per answer; a name is kept to
 * LLM_TOOLS_MAX_NAME bytes (whole characters), and a server repeating the
 * long name in every delta still makes one call. */
GST_START_TEST (test_call_limits)
{
  LlmToolCalls calls;
  LlmToolCall *c;
  GString *name = g_string_new ("x");
  guint i;

  llm_tool_calls_init (&calls);
  for (i = 0; i < LLM_TOOLS_MAX_ANSWER_CALLS + 4; i++) {
    gchar *id = g_strdup_printf ("c%u", i);
    feed (&calls, delta (i, id, "wait", "{"));
    feed (&calls, delta (i, NULL, NULL, "}"));
    g_free (id);
  }
  /* A fragment naming no call after the cap is not the last kept call's. */
  feed (&calls, delta (-1, NULL, NULL, "junk"));
  fail_unless_equals_int (calls.calls->len, LLM_TOOLS_MAX_ANSWER_CALLS);
  fail_unless_equals_int (calls.ignored, 4 * 2 + 1);
  for (i = 0; i < calls.calls->len; i++) {
    c = g_ptr_array_index (calls.calls, i);
    fail_unless_equals_string (c->arguments->str, "{}");
  }
  llm_tool_calls_clear (&calls);

  /* 63 ASCII bytes then "é" (2 bytes) would end at 65: cut before it. */
  for (i = 1; i < LLM_TOOLS_MAX_NAME - 1; i++)
    g_string_append_c (name, 'x');
  g_string_append (name, "\xc3\xa9tail");
  llm_tool_calls_init (&calls);
  feed (&calls, delta (0, "long", name->str, "{\"a\""));
  feed (&calls, delta (0, "long", name->str, ":1}"));
  fail_unless_equals_int (calls.calls->len, 1);
  c = g_ptr_array_index (calls.calls, 0);
  fail_unless (c->name_cut);
  fail_unless_equals_int (c->name->len, LLM_TOOLS_MAX_NAME - 1);
  fail_unless (g_utf8_validate (c->name->str, -1, NULL));
  fail_unless_equals_string (c->arguments->str, "{\"a\":1}");
  llm_tool_calls_clear (&calls);

  /* An id past LLM_TOOLS_MAX_ID is not kept: the call gets a short one
   * derived from it, the same in every delta, and another long id (same
   * name, no index) is another call. */
  g_string_assign (name, "");
  for (i = 0; i <= LLM_TOOLS_MAX_ID; i++)
    g_string_append_c (name, 'i');
  llm_tool_calls_init (&calls);
  feed (&calls, delta (-1, name->str, "wait", "{"));
  feed (&calls, delta (-1, name->str, NULL, "}"));
  g_string_append_c (name, 'j');
  feed (&calls, delta (-1, name->str, "wait", "{}"));
  llm_tool_calls_finish (&calls, 1);
  fail_unless_equals_int (calls.calls->len, 2);
  c = g_ptr_array_index (calls.calls, 0);
  fail_unless (g_str_has_prefix (c->id, "call_vah"), "%s", c->id);
  fail_unless_equals_int (strlen (c->id), strlen ("call_vah") + 24);
  fail_unless_equals_string (c->arguments->str, "{}");
  fail_unless (
      g_strcmp0 (
          c->id, ((LlmToolCall *)g_ptr_array_index (calls.calls, 1))->id) != 0);
  fail_unless_equals_int (calls.made_up_ids, 0);
  llm_tool_calls_clear (&calls);
  g_string_free (name, TRUE);
}

GST_END_TEST;

/* A URL llm_url_is_http() accepts is one libsoup makes a request of (a
 * webhook it refused after the call was counted hung the round); logs
 * show it without user info, query or fragment. */
GST_START_TEST (test_urls)
{
  /* libsoup takes the first two (they stay percent-encoded); a stricter
   * parse refused them at load, a laxer one would let a request fail. */
  static const gchar *good[] = { "http://h/%00", "http://h/p?t=%00",
    "http://u:p@h:8080/a/b?token=s3cret#frag", "HTTPS://H/x", "http://h/a b" };
  static const gchar *bad[] = { "http://h/%zz", "http://h:99999/",
    "http://[::1/", "http:///p", "ftp://h/", "h/p", "", "http://%zz/" };
  gchar *log;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (good); i++) {
    SoupMessage *msg = soup_message_new ("POST", good[i]);
    fail_unless (llm_url_is_http (good[i]), "%s", good[i]);
    fail_unless (msg != NULL, "%s", good[i]);
    g_object_unref (msg);
  }
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    fail_if (llm_url_is_http (bad[i]), "%s", bad[i]);
  fail_if (llm_url_is_http (NULL));

  log = llm_url_for_log ("http://u:p@h:8080/a/b?token=s3cret#frag");
  fail_unless_equals_string (log, "http://h:8080/a/b");
  g_free (log);
  log = llm_url_for_log ("https://hooks.example.com/orders?key=k");
  fail_unless_equals_string (log, "https://hooks.example.com/orders");
  g_free (log);
  log = llm_url_for_log ("http://h/%zz?key=k");
  fail_if (strstr (log, "key") != NULL, "%s", log);
  g_free (log);
}

GST_END_TEST;

static JsonNode *
args_of (const gchar *text, GError **err)
{
  LlmToolCall c = { 0 };
  JsonNode *n;

  c.name = g_string_new ("t");
  c.arguments = g_string_new (text);
  n = llm_tool_parse_arguments (&c, err);
  g_string_free (c.name, TRUE);
  g_string_free (c.arguments, TRUE);
  return n;
}

GST_START_TEST (test_arguments)
{
  GError *err = NULL;
  JsonNode *n = args_of ("  ", NULL);

  fail_unless (n && JSON_NODE_HOLDS_OBJECT (n));
  json_node_unref (n);
  fail_unless (args_of ("{\"order_id\": ", &err) == NULL);
  fail_unless (strstr (err->message, "not valid JSON") != NULL);
  g_clear_error (&err);
  fail_unless (args_of ("[1]", &err) == NULL);
  fail_unless (strstr (err->message, "not a JSON object") != NULL);
  g_clear_error (&err);
}

GST_END_TEST;

static void
check_bad_file (const gchar *json, const gchar *expected)
{
  GError *err = NULL;

  fail_unless (llm_tool_set_parse (json, strlen (json), &err) == NULL);
  fail_unless (strstr (err->message, expected) != NULL, "\"%s\" lacks \"%s\"",
      err->message, expected);
  g_error_free (err);
}

/* The file of pipelines/agent.tools.json's shape: the model sees only the
 * OpenAI members; mistakes are named. */
GST_START_TEST (test_tools_file)
{
  static const gchar file[] =
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_order_status\","
      "\"description\":\"Order status\",\"parameters\":{\"type\":\"object\","
      "\"properties\":{\"order_id\":{\"type\":\"string\"}},\"required\":["
      "\"order_id\"]}},\"webhook\":{\"url\":\"http://127.0.0.1:9000/orders\","
      "\"timeout_ms\":3000,\"headers_env\":{\"Authorization\":\"ORDERS_AUTH\"}"
      "}},"
      "{\"type\":\"function\",\"function\":{\"name\":\"end_call\","
      "\"description\":\"Hang up\",\"parameters\":{\"type\":\"object\","
      "\"properties\":{}}},\"builtin\":\"end_call\"}]";
  LlmToolSet *set = llm_tool_set_parse (file, strlen (file), NULL);
  const LlmTool *t;
  gchar *path;

  fail_unless (set != NULL);
  fail_unless_equals_int (llm_tool_set_size (set), 2);
  t = llm_tool_set_find (set, "get_order_status");
  fail_unless_equals_int (t->kind, LLM_TOOL_WEBHOOK);
  fail_unless_equals_int (t->timeout_ms, 3000);
  fail_unless_equals_string (t->header_names[0], "Authorization");
  fail_unless_equals_string (t->header_envs[0], "ORDERS_AUTH");
  fail_unless_equals_int (
      llm_tool_set_find (set, "end_call")->kind, LLM_TOOL_END_CALL);
  fail_unless (llm_tool_set_find (set, "nope") == NULL);
  fail_unless (strstr (llm_tool_set_request_json (set), "webhook") == NULL);
  fail_unless (strstr (llm_tool_set_request_json (set), "builtin") == NULL);
  fail_unless (
      strstr (llm_tool_set_request_json (set), "\"required\"") != NULL);
  llm_tool_set_unref (set);

  check_bad_file ("{}", "JSON array");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}"
                  ",\"builtin\":\"wait\"}]",
      "function.name");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]",
      "exactly one of");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a\"},"
                  "\"builtin\":\"dance\"}]",
      "unknown builtin");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a\"},"
                  "\"webhook\":{\"url\":\"ftp://x/\"}}]",
      "http:// or https://");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a\"},"
                  "\"webhook\":{\"url\":\"http://x/\",\"timeout_ms\":0}}]",
      "timeout_ms");
  check_bad_file ("[{\"type\":\"function\",\"function\":{\"name\":\"a\"},"
                  "\"builtin\":\"wait\"},{\"type\":\"function\",\"function\""
                  ":{\"name\":\"a\"},\"builtin\":\"wait\"}]",
      "declared twice");

  /* The shipped example loads. */
  {
    const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");
    GError *err = NULL;
    path = g_build_filename (src, "pipelines", "agent.tools.json", NULL);
    set = llm_tool_set_load (path, &err);
    fail_unless (set != NULL, "%s", err ? err->message : "");
    /* The shipped file offers the built-ins; webhooks are the operator's. */
    fail_unless (llm_tool_set_find (set, "get_order_status") == NULL);
    fail_unless_equals_int (
        llm_tool_set_find (set, "end_call")->kind, LLM_TOOL_END_CALL);
    fail_unless_equals_int (
        llm_tool_set_find (set, "transfer_call")->kind, LLM_TOOL_TRANSFER);
    fail_unless_equals_int (
        llm_tool_set_find (set, "wait")->kind, LLM_TOOL_WAIT);
    llm_tool_set_unref (set);
    g_free (path);
    set = llm_tool_set_load ("/nonexistent/tools.json", &err);
    fail_unless (set == NULL);
    fail_unless (g_str_has_prefix (err->message, "/nonexistent/tools.json"));
    g_clear_error (&err);
  }
}

GST_END_TEST;

/* The signature is HMAC-SHA256 over "<t>.<body>" (vector from Python's
 * hmac module), and the body carries what the contract says. */
GST_START_TEST (test_webhook_contract)
{
  static const gchar body[] = "{\"name\":\"get_order_status\"}";
  gchar *sig = llm_tool_signature ("shh", 1700000000, body, strlen (body));
  JsonNode *args = args_of ("{\"order_id\":\"1234\"}", NULL);
  gchar *b =
      llm_tool_webhook_body ("get_order_status", "call_1", "c-42", 3, args);

  fail_unless_equals_string (sig,
      "t=1700000000,v1="
      "77798f942ca1fe9d6a881c8d545164870baefb3232017c58cf3182b306593202");
  fail_unless_equals_string (b,
      "{\"name\":\"get_order_status\",\"tool_call_id\":\"call_1\","
      "\"call_id\":\"c-42\",\"turn\":3,\"arguments\":{\"order_id\":\"1234\"}"
      "}");
  g_free (sig);
  g_free (b);
  json_node_unref (args);
}

GST_END_TEST;

GST_START_TEST (test_results)
{
  gchar *why = NULL;
  gchar *r =
      llm_tool_result_from_http (200, "{\"status\": \"shipped\"}", 21, &why);
  gchar *big = g_strnfill (LLM_TOOLS_MAX_RESULT + 100, 'a');

  fail_unless_equals_string (r, "{\"status\":\"shipped\"}");
  fail_unless (why == NULL);
  g_free (r);
  r = llm_tool_result_from_http (503, "down", 4, &why);
  fail_unless_equals_string (
      r, "{\"error\":\"the tool service answered HTTP 503\"}");
  fail_unless_equals_string (why, "the tool service answered HTTP 503");
  g_free (r);
  g_free (why);
  r = llm_tool_result_from_http (200, "<html>", 6, &why);
  fail_unless_equals_string (
      r, "{\"error\":\"the tool service did not answer JSON\"}");
  g_free (r);
  g_free (why);
  r = llm_tool_result_bound (big);
  fail_unless (strlen (r) < LLM_TOOLS_MAX_RESULT + 200);
  fail_unless (strstr (r, "[truncated: the result had 8292 bytes") != NULL);
  g_free (r);
  g_free (big);
}

GST_END_TEST;

static gchar *
roles (GArray *m)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < m->len; i++) {
    LlmChatMessage *x = &g_array_index (m, LlmChatMessage, i);
    g_string_append_printf (s, "%s%s:%s%s%s", i ? "\n" : "", x->role,
        x->content ? x->content : "(null)", x->tool_call_id ? " id=" : "",
        x->tool_call_id ? x->tool_call_id : "");
  }
  return g_string_free (s, FALSE);
}

/* A round in the history: the text before the calls, a result per id (a
 * placeholder while pending), then what was heard after; the `history`
 * property leaves the calls out. */
GST_START_TEST (test_history_rounds)
{
  LlmHistory h;
  LlmExchange *e;
  LlmToolRound *round;
  const gchar *ids[] = { "call_a", "call_b" };
  GArray *m;
  gchar *s;

  llm_history_init (&h);
  e = llm_history_add (&h, 1, "Where is order 1234?");
  round = llm_exchange_add_round (e, "Let me check. ", "[]", ids, 2);
  round->results[0] = g_strdup ("{\"status\":\"shipped\"}");
  g_string_append (e->agent, "Let me check. It has shipped.");
  e->answered = TRUE;
  fail_if (llm_tool_round_complete (round));
  m = llm_history_messages (&h, "SYS", NULL);
  s = roles (m);
  fail_unless_equals_string (s,
      "system:SYS\nuser:Where is order 1234?\nassistant:Let me check. \n"
      "tool:{\"status\":\"shipped\"} id=call_a\n"
      "tool:{\"status\":\"pending\",\"note\":\"the caller spoke before the "
      "result came back\"} id=call_b\nassistant:It has shipped.");
  fail_unless_equals_string (
      g_array_index (m, LlmChatMessage, 2).tool_calls, "[]");
  g_free (s);
  g_array_unref (m);

  /* Cut short inside the text before the calls: nothing after them. */
  llm_exchange_set_heard (e, "Let me", FALSE);
  m = llm_history_messages (&h, NULL, "next");
  s = roles (m);
  fail_unless (g_str_has_suffix (s, "id=call_b\nuser:next"), "%s", s);
  g_free (s);
  g_array_unref (m);

  s = llm_history_to_json (&h);
  fail_unless_equals_string (s,
      "[{\"role\":\"user\",\"content\":\"Where is order 1234?\"},"
      "{\"role\":\"assistant\",\"content\":\"Let me check. \"}]");
  g_free (s);
  llm_history_clear (&h);
}

GST_END_TEST;

/* The request offers the tools and, after the last round, forbids them;
 * assistant calls go with content null. */
GST_START_TEST (test_request_body)
{
  LlmChatMessage msgs[] = {
    { "user", "hi", NULL, NULL },
    { "assistant", NULL, "[{\"id\":\"c\"}]", NULL },
    { "tool", "{}", NULL, "c" },
  };
  LlmChatRequest req = { 0 };
  gchar *body;

  req.model = "m";
  req.messages = msgs;
  req.n_messages = 3;
  req.temperature = -1;
  req.tools = "[{\"type\":\"function\"}]";
  req.tool_choice = "none";
  body = llm_chat_build_request (&req, NULL);
  fail_unless (strstr (body,
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
                   "[{\"id\":\"c\"}]}") != NULL,
      "%s", body);
  fail_unless (strstr (body,
                   "{\"role\":\"tool\",\"content\":\"{}\",\"tool_call_id\":"
                   "\"c\"}") != NULL);
  fail_unless (strstr (body, "\"tools\":[{\"type\":\"function\"}]") != NULL);
  fail_unless (strstr (body, "\"tool_choice\":\"none\"") != NULL);
  g_free (body);
}

GST_END_TEST;

static Suite *
tools_suite (void)
{
  Suite *s = suite_create ("llm-tools");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_captures_every_split);
  tcase_add_test (tc, test_delta_variants);
  tcase_add_test (tc, test_arguments);
  tcase_add_test (tc, test_history_arguments);
  tcase_add_test (tc, test_call_limits);
  tcase_add_test (tc, test_urls);
  tcase_add_test (tc, test_tools_file);
  tcase_add_test (tc, test_webhook_contract);
  tcase_add_test (tc, test_results);
  tcase_add_test (tc, test_history_rounds);
  tcase_add_test (tc, test_request_body);
  return s;
}

GST_CHECK_MAIN (tools);

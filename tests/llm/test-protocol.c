/* Unit tests of the SSE framing and the chat-completions wire format.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <string.h>

#include "llmchat.h"
#include "llmsse.h"

/* Collects events as "event|data" strings. */
static gboolean
collect (const gchar *event, const gchar *data, gsize len, gpointer user_data)
{
  GPtrArray *out = user_data;

  fail_unless_equals_int (strlen (data), len);
  g_ptr_array_add (out, g_strdup_printf ("%s|%s", event, data));
  return TRUE;
}

/* Feeds @body split at @split (0: whole), then finishes. */
static GPtrArray *
parse_split (const gchar *body, gsize split)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  LlmSseParser p;
  gsize len = strlen (body), i;

  llm_sse_parser_init (&p);
  if (split == 0)
    split = len;
  for (i = 0; i < len; i += split)
    fail_unless (llm_sse_parser_feed (
        &p, body + i, MIN (split, len - i), collect, out, NULL));
  fail_unless (llm_sse_parser_finish (&p, collect, out, NULL));
  llm_sse_parser_clear (&p);
  return out;
}

static void
assert_events (GPtrArray *got, const gchar *const *want)
{
  guint i;

  for (i = 0; want[i]; i++) {
    fail_unless (i < got->len, "missing event %u: %s", i, want[i]);
    fail_unless_equals_string (g_ptr_array_index (got, i), want[i]);
  }
  fail_unless_equals_int (got->len, i);
}

/* Events come out whole however the body is split across reads, with LF,
 * CRLF or CR line ends. */
GST_START_TEST (test_sse_split_anywhere)
{
  static const gchar *bodies[] = {
    "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
    "data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\ndata: [DONE]\r\n\r\n",
    "data: {\"a\":1}\r\rdata: {\"b\":2}\r\rdata: [DONE]\r\r",
  };
  static const gchar *want[] = { "message|{\"a\":1}", "message|{\"b\":2}",
    "message|[DONE]", NULL };
  guint b;
  gsize split;

  for (b = 0; b < G_N_ELEMENTS (bodies); b++) {
    for (split = 0; split < 12; split++) {
      GPtrArray *got = parse_split (bodies[b], split);
      assert_events (got, want);
      g_ptr_array_unref (got);
    }
  }
}

GST_END_TEST;

/* Comments, id/retry fields, multi-line data, `event:` names, a BOM and
 * the "data:" without a space all follow the WHATWG grammar. */
GST_START_TEST (test_sse_grammar)
{
  static const gchar body[] = "\xEF\xBB\xBF: keep-alive\n"
                              "id: 7\nretry: 100\n"
                              "data: line one\ndata:line two\n\n"
                              ": OPENROUTER PROCESSING\n\n"
                              "event: ping\ndata: {}\n\n"
                              "data\n\n";
  static const gchar *want[] = { "message|line one\nline two", "ping|{}",
    "message|", NULL };
  GPtrArray *got = parse_split (body, 0);

  assert_events (got, want);
  g_ptr_array_unref (got);
  got = parse_split (body, 1);
  assert_events (got, want);
  g_ptr_array_unref (got);
}

GST_END_TEST;

/* llama.cpp's `error:` field is delivered as an "error" event, and a last
 * `data: [DONE]` without a blank line is not lost. */
GST_START_TEST (test_sse_server_quirks)
{
  static const gchar body[] =
      "error: {\"code\":400,\"message\":\"context too long\"}\n\n"
      "data: [DONE]";
  static const gchar *want[] = {
    "error|{\"code\":400,\"message\":\"context too long\"}", "message|[DONE]",
    NULL
  };
  GPtrArray *got = parse_split (body, 3);

  assert_events (got, want);
  g_ptr_array_unref (got);
}

GST_END_TEST;

/* A line longer than the limit fails the stream instead of growing. */
GST_START_TEST (test_sse_line_limit)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gchar *big = g_malloc (LLM_SSE_MAX_LINE + 16);
  GError *err = NULL;
  LlmSseParser p;

  memset (big, 'x', LLM_SSE_MAX_LINE + 16);
  llm_sse_parser_init (&p);
  fail_if (
      llm_sse_parser_feed (&p, big, LLM_SSE_MAX_LINE + 16, collect, out, &err));
  fail_unless (err != NULL);
  g_error_free (err);
  llm_sse_parser_clear (&p);
  g_free (big);
  g_ptr_array_unref (out);
}

GST_END_TEST;

static void
parse_chunk (const gchar *json, LlmChatChunk *chunk)
{
  JsonParser *parser = json_parser_new ();
  GError *err = NULL;

  fail_unless (llm_chat_parse_chunk (parser, json, strlen (json), chunk, &err),
      "%s: %s", json, err ? err->message : "");
  g_object_unref (parser);
}

/* What real servers send: content null or empty, empty deltas, choices []
 * or null, usage chunks, reasoning fields, errors inside the stream. */
GST_START_TEST (test_chat_chunks)
{
  LlmChatChunk c;

  parse_chunk ("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
               "\"content\":null},\"finish_reason\":null}]}",
      &c);
  fail_unless (c.content == NULL && c.reasoning == NULL);
  fail_unless (c.finish_reason == NULL && !c.has_usage && !c.error);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"delta\":{\"content\":\"\"}}]}", &c);
  fail_unless (c.content == NULL);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"index\":0,\"delta\":{}}]}", &c);
  fail_unless (c.content == NULL && c.finish_reason == NULL);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" Hi\"},"
               "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
      &c);
  fail_unless_equals_string (c.content, " Hi");
  fail_if (c.has_usage);
  llm_chat_chunk_clear (&c);

  /* Azure's first chunk carries only prompt_filter_results. */
  parse_chunk ("{\"choices\":[],\"prompt_filter_results\":[]}", &c);
  fail_unless (c.content == NULL && !c.has_usage);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
               "\"completion_tokens\":5,\"total_tokens\":17}}",
      &c);
  fail_unless (c.has_usage);
  fail_unless_equals_int64 (c.prompt_tokens, 12);
  fail_unless_equals_int64 (c.completion_tokens, 5);
  fail_unless_equals_int64 (c.total_tokens, 17);
  llm_chat_chunk_clear (&c);

  /* vLLM may end with "choices": null and no total. */
  parse_chunk ("{\"choices\":null,\"usage\":{\"prompt_tokens\":3,"
               "\"completion_tokens\":4}}",
      &c);
  fail_unless_equals_int64 (c.total_tokens, 7);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"delta\":{\"reasoning_content\":\"Let me "
               "think\",\"content\":null}}]}",
      &c);
  fail_unless_equals_string (c.reasoning, "Let me think");
  fail_unless (c.content == NULL);
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"delta\":{\"reasoning\":\"hmm\"}}]}", &c);
  fail_unless_equals_string (c.reasoning, "hmm");
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"choices\":[{\"index\":1,\"delta\":{\"content\":\"B\"}},"
               "{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":"
               "\"stop\"}]}",
      &c);
  fail_unless_equals_string (c.content, "A");
  fail_unless_equals_string (c.finish_reason, "stop");
  llm_chat_chunk_clear (&c);

  parse_chunk ("{\"error\":{\"message\":\"overloaded\",\"type\":"
               "\"server_error\"}}",
      &c);
  fail_unless_equals_string (c.error, "overloaded");
  llm_chat_chunk_clear (&c);

  /* Wrong types are ignored, not trusted. */
  parse_chunk ("{\"choices\":[{\"delta\":{\"content\":42}}],\"usage\":7}", &c);
  fail_unless (c.content == NULL && !c.has_usage);
  llm_chat_chunk_clear (&c);
}

GST_END_TEST;

/* Not JSON, or not an object: refused with an error. */
GST_START_TEST (test_chat_bad_chunks)
{
  JsonParser *parser = json_parser_new ();
  LlmChatChunk c;
  GError *err = NULL;

  fail_if (
      llm_chat_parse_chunk (parser, "{\"choices\":[{\"delta", 18, &c, &err));
  g_clear_error (&err);
  fail_if (llm_chat_parse_chunk (parser, "[1,2]", 5, &c, &err));
  g_clear_error (&err);
  fail_unless (llm_chat_is_done_marker (" [DONE] ", 8));
  fail_if (llm_chat_is_done_marker ("[DONE]x", 7));
  g_object_unref (parser);
}

GST_END_TEST;

/* The server's own words come out of every error body shape. */
GST_START_TEST (test_chat_error_messages)
{
  static const struct
  {
    const gchar *body;
    const gchar *want;
  } cases[] = {
    { "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":"
      "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}",
        "Incorrect API key provided" },
    { "{\"error\":\"model 'llama9' not found\"}", "model 'llama9' not found" },
    { "{\"object\":\"error\",\"message\":\"max_tokens too large\",\"code\":"
      "400}",
        "max_tokens too large" },
    { "{\"detail\":\"Not Found\"}", "Not Found" },
    { "{\"detail\":[{\"msg\":\"field required\"}]}",
        "[{\"msg\":\"field required\"}]" },
    { "<html>502 Bad Gateway</html>\n", "<html>502 Bad Gateway</html>" },
    { "", "(empty body)" },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    gchar *m = llm_chat_error_message (cases[i].body, strlen (cases[i].body));
    fail_unless_equals_string (m, cases[i].want);
    g_free (m);
  }
}

GST_END_TEST;

static JsonObject *
parse_object (const gchar *text, JsonParser *parser)
{
  fail_unless (json_parser_load_from_data (parser, text, -1, NULL));
  return json_node_get_object (json_parser_get_root (parser));
}

/* The body streams, asks for usage, leaves out unset options, and
 * extra-body members are merged over the element's own. */
GST_START_TEST (test_chat_request_body)
{
  LlmChatMessage msgs[] = { { "system", "Be brief." },
    { "user", "Hi \"there\"" } };
  LlmChatRequest req = { "gpt-4o-mini", msgs, 2, -1, 0, NULL };
  JsonParser *parser = json_parser_new ();
  JsonObject *o;
  JsonArray *a;
  gchar *body;
  GError *err = NULL;

  body = llm_chat_build_request (&req, NULL);
  o = parse_object (body, parser);
  fail_unless_equals_string (
      json_object_get_string_member (o, "model"), "gpt-4o-mini");
  fail_unless (json_object_get_boolean_member (o, "stream"));
  fail_unless (json_object_get_boolean_member (
      json_object_get_object_member (o, "stream_options"), "include_usage"));
  fail_if (json_object_has_member (o, "temperature"));
  fail_if (json_object_has_member (o, "max_tokens"));
  a = json_object_get_array_member (o, "messages");
  fail_unless_equals_int (json_array_get_length (a), 2);
  fail_unless_equals_string (
      json_object_get_string_member (
          json_array_get_object_element (a, 1), "content"),
      "Hi \"there\"");
  g_free (body);

  req.temperature = 0.5;
  req.max_tokens = 150;
  req.extra_body = "{\"stream_options\":{\"include_usage\":false},"
                   "\"chat_template_kwargs\":{\"enable_thinking\":false}}";
  body = llm_chat_build_request (&req, NULL);
  o = parse_object (body, parser);
  fail_unless (json_object_get_double_member (o, "temperature") == 0.5);
  fail_unless_equals_int (json_object_get_int_member (o, "max_tokens"), 150);
  fail_if (json_object_get_boolean_member (
      json_object_get_object_member (o, "stream_options"), "include_usage"));
  fail_unless (json_object_has_member (o, "chat_template_kwargs"));
  g_free (body);

  req.extra_body = "[1]";
  fail_unless (llm_chat_build_request (&req, &err) == NULL);
  g_clear_error (&err);
  fail_if (llm_chat_check_extra_body ("{oops", NULL));
  fail_unless (llm_chat_check_extra_body ("", NULL));
  fail_unless (llm_chat_check_extra_body (NULL, NULL));
  g_object_unref (parser);
}

GST_END_TEST;

static Suite *
protocol_suite (void)
{
  Suite *s = suite_create ("llm-protocol");
  TCase *tc = tcase_create ("protocol");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_sse_split_anywhere);
  tcase_add_test (tc, test_sse_grammar);
  tcase_add_test (tc, test_sse_server_quirks);
  tcase_add_test (tc, test_sse_line_limit);
  tcase_add_test (tc, test_chat_chunks);
  tcase_add_test (tc, test_chat_bad_chunks);
  tcase_add_test (tc, test_chat_error_messages);
  tcase_add_test (tc, test_chat_request_body);
  return s;
}

GST_CHECK_MAIN (protocol);

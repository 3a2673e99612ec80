/* llmtransform's tool calls against a scripted LLM and webhook server
 * (tests/llm/fake-server.c): webhook rounds with the signature, parallel
 * calls and every error shape, the filler, barge-in during a call, the
 * round limit, and the end_call / transfer / wait built-ins.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "voice.h"
#include "fake-server.h"
#include "llm-harness.h"
#include "llmtools.h"

/* Writes a tools file: get_order_status (webhook to @fs, @timeout_ms),
 * end_call, transfer_call, wait. Returns: (transfer full): its path. */
static gchar *
tools_file (FakeServer *fs, guint timeout_ms)
{
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("tools-XXXXXX.json", &path, NULL);
  gchar *json = g_strdup_printf (
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_order_status\","
      "\"parameters\":{\"type\":\"object\",\"properties\":{\"order_id\":{"
      "\"type\":\"string\"}}}},\"webhook\":{\"url\":\"%s\",\"timeout_ms\":%u}},"
      "{\"type\":\"function\",\"function\":{\"name\":\"end_call\"},"
      "\"builtin\":\"end_call\"},"
      "{\"type\":\"function\",\"function\":{\"name\":\"transfer_call\"},"
      "\"builtin\":\"transfer\"},"
      "{\"type\":\"function\",\"function\":{\"name\":\"wait\"},"
      "\"builtin\":\"wait\"}]",
      fake_server_hook_url (fs), timeout_ms);

  fail_unless (fd >= 0);
  close (fd);
  fail_unless (g_file_set_contents (path, json, -1, NULL));
  g_free (json);
  return path;
}

/* Queues a recorded stream from tests/llm/data, cut every @step bytes (odd
 * places: inside JSON strings, escapes and line ends). */
static void
add_capture (FakeServer *fs, const gchar *name, gsize step)
{
  gchar *path = data_path (name), *text;
  gsize len, at;
  GPtrArray *chunks = g_ptr_array_new_with_free_func (g_free);

  fail_unless (g_file_get_contents (path, &text, &len, NULL));
  for (at = 0; at < len; at += step)
    g_ptr_array_add (chunks, g_strndup (text + at, MIN (step, len - at)));
  g_ptr_array_add (chunks, NULL);
  fake_server_add_answer (
      fs, 200, (const gchar *const *)chunks->pdata, -1, NULL);
  g_ptr_array_unref (chunks);
  g_free (text);
  g_free (path);
}

/* An OpenAI-style stream of @text (may be empty) then the calls given as
 * (id, name, arguments) triples, NULL-ended, one delta each. */
static void
add_calls (FakeServer *fs, const gchar *text, ...)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  const gchar *id;
  va_list args;
  guint i = 0;

  if (*text)
    g_ptr_array_add (c,
        g_strdup_printf ("data: {\"choices\":[{\"index\":0,"
                         "\"delta\":{\"content\":\"%s\"}}]}\n\n",
            text));
  va_start (args, text);
  while ((id = va_arg (args, const gchar *))) {
    const gchar *name = va_arg (args, const gchar *);
    const gchar *a = va_arg (args, const gchar *);
    gchar *q = g_strescape (a, NULL);
    g_ptr_array_add (c,
        g_strdup_printf ("data: {\"choices\":[{\"index\":0,\"delta\":{"
                         "\"tool_calls\":[{\"index\":%u,\"id\":\"%s\","
                         "\"type\":\"function\",\"function\":{\"name\":\"%s\","
                         "\"arguments\":\"%s\"}}]}}]}\n\n",
            i++, id, name, q));
    g_free (q);
  }
  va_end (args);
  g_ptr_array_add (c,
      g_strdup ("data: {\"choices\":[{\"index\":0,\"delta\":"
                "{},\"finish_reason\":\"tool_calls\"}]}\n\n"
                "data: [DONE]\n\n"));
  g_ptr_array_add (c, NULL);
  fake_server_add_answer (fs, 200, (const gchar *const *)c->pdata, -1, NULL);
  g_ptr_array_unref (c);
}

/* An OpenAI-style stream of @n calls named @name (ids c0, c1, …), all
 * with @arguments. */
static void
add_n_calls (FakeServer *fs, guint n, const gchar *name, const gchar *arguments)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  gchar *q = g_strescape (arguments, NULL);

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (c,
        g_strdup_printf ("data: {\"choices\":[{\"index\":0,\"delta\":{"
                         "\"tool_calls\":[{\"index\":%u,\"id\":\"c%u\","
                         "\"type\":\"function\",\"function\":{\"name\":"
                         "\"%s\",\"arguments\":\"%s\"}}]}}]}\n\n",
            i, i, name, q));
  g_ptr_array_add (c,
      g_strdup ("data: {\"choices\":[{\"index\":0,\"delta\":"
                "{},\"finish_reason\":\"tool_calls\"}]}\n\n"
                "data: [DONE]\n\n"));
  g_ptr_array_add (c, NULL);
  fake_server_add_answer (fs, 200, (const gchar *const *)c->pdata, -1, NULL);
  g_ptr_array_unref (c);
  g_free (q);
}

static JsonObject *
body_json (FakeServer *fs, guint i, JsonParser *p)
{
  gchar *body = fake_server_get_body (fs, i);

  fail_unless (body != NULL, "no request %u", i);
  fail_unless (json_parser_load_from_data (p, body, -1, NULL));
  g_free (body);
  return json_node_get_object (json_parser_get_root (p));
}

/* Messages of request @i as "role:content[ id=tool_call_id][ calls=N]". */
static gchar *
messages_of (FakeServer *fs, guint i)
{
  JsonParser *p = json_parser_new ();
  JsonArray *a =
      json_object_get_array_member (body_json (fs, i, p), "messages");
  GString *s = g_string_new (NULL);

  for (guint k = 0; k < json_array_get_length (a); k++) {
    JsonObject *m = json_array_get_object_element (a, k);
    const gchar *content =
        json_object_get_string_member_with_default (m, "content", "(null)");
    if (json_object_get_null_member (m, "content"))
      content = "(null)";
    g_string_append_printf (s, "%s%s:%s", k ? "\n" : "",
        json_object_get_string_member (m, "role"), content);
    if (json_object_has_member (m, "tool_call_id"))
      g_string_append_printf (
          s, " id=%s", json_object_get_string_member (m, "tool_call_id"));
    if (json_object_has_member (m, "tool_calls"))
      g_string_append_printf (s, " calls=%u",
          json_array_get_length (
              json_object_get_array_member (m, "tool_calls")));
  }
  g_object_unref (p);
  return g_string_free (s, FALSE);
}

/* Every call in request @i's history has arguments that parse as a JSON
 * object. Returns: the number of calls seen. */
static guint
check_history_arguments (FakeServer *fs, guint i)
{
  JsonParser *p = json_parser_new (), *args = json_parser_new ();
  JsonArray *a =
      json_object_get_array_member (body_json (fs, i, p), "messages");
  guint n = 0;

  for (guint k = 0; k < json_array_get_length (a); k++) {
    JsonObject *m = json_array_get_object_element (a, k);
    JsonArray *calls;
    if (!json_object_has_member (m, "tool_calls"))
      continue;
    calls = json_object_get_array_member (m, "tool_calls");
    for (guint j = 0; j < json_array_get_length (calls); j++, n++) {
      JsonObject *fn = json_object_get_object_member (
          json_array_get_object_element (calls, j), "function");
      const gchar *text = json_object_get_string_member (fn, "arguments");
      fail_unless (json_parser_load_from_data (args, text, -1, NULL) &&
              JSON_NODE_HOLDS_OBJECT (json_parser_get_root (args)),
          "request %u, call %u: arguments %s", i, j, text);
    }
  }
  g_object_unref (args);
  g_object_unref (p);
  return n;
}

static Llm *
tools_llm (FakeServer *fs, const gchar *tools, const gchar *first_prop, ...)
{
  Llm *l = llm_new (fake_server_url (fs), "system-prompt", "", "tools-file",
      tools, "tool-filler-ms", 0, "speculative", FALSE, NULL);
  va_list args;

  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (l->element), first_prop, args);
  va_end (args);
  return l;
}

/* The end of a test: the element, the server and the tools file. */
static void
tools_done (Llm *l, FakeServer *fs, gchar *tools)
{
  llm_free (l);
  fake_server_free (fs);
  g_unlink (tools);
  g_free (tools);
}

/* vLLM's text-then-call, split every 7 bytes: the text is said, the
 * webhook gets a signed body, the follow-up carries the call and its
 * result, and the answer follows. */
GST_START_TEST (test_webhook_round)
{
  static const gchar *answer[] = { "Order 1234 has shipped.", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (
      fs, tools, "tools-secret", "s3cret", "call-id", "call-42", NULL);
  const GstStructure *s;
  gchar *reply, *m, *hook, *sig, *expect;
  JsonParser *p = json_parser_new ();
  JsonObject *req;
  GHmac *h;
  const gchar *t;

  add_capture (fs, "tool-vllm.sse", 7);
  fake_server_add_hook (fs, 200, "{\"status\": \"shipped\"}", 0);
  fake_server_add_stream (fs, answer);
  push_end_of_turn (l, 1, "Where is order 1234?");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (
      reply, "Let me check that order.|Order 1234 has shipped.");
  g_free (reply);

  /* The first request offered the tools as OpenAI tool objects only. */
  req = body_json (fs, 0, p);
  fail_unless_equals_int (
      json_array_get_length (json_object_get_array_member (req, "tools")), 4);
  m = fake_server_get_body (fs, 0);
  fail_unless (strstr (m, "webhook") == NULL && strstr (m, "builtin") == NULL);
  g_free (m);
  fail_if (json_object_has_member (body_json (fs, 1, p), "tool_choice"));

  m = messages_of (fs, 1);
  fail_unless_equals_string (m,
      "user:Where is order 1234?\n"
      "assistant:Let me check that order. calls=1\n"
      "tool:{\"status\":\"shipped\"} id=chatcmpl-tool-4f2a9c");
  g_free (m);

  hook = fake_server_get_hook (fs, 0, &sig);
  fail_unless_equals_string (hook,
      "{\"name\":\"get_order_status\",\"tool_call_id\":"
      "\"chatcmpl-tool-4f2a9c\",\"call_id\":\"call-42\",\"turn\":1,"
      "\"arguments\":{\"order_id\":\"1234\"}}");
  fail_unless (sig && g_str_has_prefix (sig, "t="), "%s", sig);
  t = sig + 2;
  h = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *)"s3cret", 6);
  g_hmac_update (h, (const guchar *)t, strchr (t, ',') - t);
  g_hmac_update (h, (const guchar *)".", 1);
  g_hmac_update (h, (const guchar *)hook, -1);
  expect = g_strdup_printf ("v1=%s", g_hmac_get_string (h));
  fail_unless (g_str_has_suffix (sig, expect), "%s vs %s", sig, expect);
  g_hmac_unref (h);
  g_free (expect);
  g_free (hook);
  g_free (sig);

  s = wait_event_message (l, "tool-call", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "name"), "get_order_status");
  fail_unless_equals_string (
      gst_structure_get_string (s, "arguments"), "{\"order_id\": \"1234\"}");
  fail_unless_equals_string (gst_structure_get_string (s, "kind"), "webhook");
  s = wait_event_message (l, "tool-result", 0);
  {
    gboolean ok = FALSE;
    gst_structure_get_boolean (s, "ok", &ok);
    fail_unless (ok);
  }
  fail_unless_equals_string (
      gst_structure_get_string (s, "result"), "{\"status\":\"shipped\"}");
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "completed");
  {
    guint rounds = 0;
    gst_structure_get_uint (s, "tool-rounds", &rounds);
    fail_unless_equals_int (rounds, 1);
  }
  fail_unless_equals_int (fake_server_n_hooks (fs), 1);

  g_object_unref (p);
  tools_done (l, fs, tools);
}

GST_END_TEST;

/* OpenAI's two parallel calls answered 503 and not-JSON; then an unknown
 * tool, bad arguments and a webhook slower than its timeout (with the
 * filler said once): each is a short error result, never a hang. */
GST_START_TEST (test_errors)
{
  static const gchar *sorry[] = { "Sorry, I cannot see it.", NULL };
  static const gchar *again[] = { "That did not work.", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 300);
  Llm *l = tools_llm (fs, tools, "tool-filler-ms", 100, NULL);
  gchar *reply, *m;
  gint64 t0;

  add_capture (fs, "tool-openai.sse", 13);
  fake_server_add_hook (fs, 503, "{\"detail\":\"down\"}", 0);
  fake_server_add_hook (fs, 200, "<html>oops</html>", 0);
  fake_server_add_stream (fs, sorry);
  push_end_of_turn (l, 1, "Where are orders 1234 and 5678?");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Sorry, I cannot see it.");
  g_free (reply);
  m = messages_of (fs, 1);
  fail_unless (strstr (m, "assistant:(null) calls=2\n") != NULL, "%s", m);
  fail_unless (strstr (m,
                   "tool:{\"error\":\"the tool service answered HTTP "
                   "503\"} id=call_") != NULL,
      "%s", m);
  fail_unless (strstr (m,
                   "tool:{\"error\":\"the tool service did not answer "
                   "JSON\"} id=call_") != NULL,
      "%s", m);
  /* Run in parallel, either may get either answer; both have one. */
  fail_unless (strstr (m, "id=call_Xy1Ab") && strstr (m, "id=call_Zz2Cd"));
  g_free (m);

  add_calls (fs, "", "c1", "fly_to_moon", "{}", "c2", "get_order_status",
      "{\"order_id\": ", "c3", "get_order_status", "{\"order_id\":\"9\"}",
      NULL);
  fake_server_add_hook (fs, 200, "{\"status\":\"late\"}", 1500);
  fake_server_add_stream (fs, again);
  t0 = g_get_monotonic_time ();
  push_end_of_turn (l, 2, "And order 9?");
  reply = pull_reply (l, 2);
  fail_unless_equals_string (reply, "One moment.|That did not work.");
  g_free (reply);
  /* The timeout (300 ms), not the webhook (1500 ms), ended the wait. */
  fail_unless (g_get_monotonic_time () - t0 < 1400 * 1000);
  m = messages_of (fs, 3);
  fail_unless (strstr (m,
                   "tool:{\"error\":\"unknown tool \\\"fly_to_moon\\\"\"} "
                   "id=c1") != NULL,
      "%s", m);
  fail_unless (strstr (m,
                   "tool:{\"error\":\"invalid arguments: the "
                   "arguments are not valid JSON\"} id=c2") != NULL,
      "%s", m);
  fail_unless (strstr (m,
                   "tool:{\"error\":\"the tool service did not answer "
                   "within 300 ms\"} id=c3") != NULL,
      "%s", m);
  g_free (m);
  /* Bad arguments are sent back as {} so templates can parse them. */
  m = fake_server_get_body (fs, 3);
  fail_unless (strstr (m,
                   "\"name\":\"get_order_status\",\"arguments\":"
                   "\"{}\"") != NULL,
      "%s", m);
  g_free (m);
  fail_unless_equals_int (fake_server_n_hooks (fs), 3);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* Barge-in while a webhook runs: no follow-up, the webhook is not sent
 * again, and its result (arriving later) is in the next request. */
GST_START_TEST (test_barge_in_during_call)
{
  static const gchar *next[] = { "It has shipped, yes.", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 5000);
  Llm *l = tools_llm (fs, tools, NULL);
  const GstStructure *s;
  gchar *reply, *m;
  gboolean last;

  add_calls (fs, "Let me check that. ", "call_1", "get_order_status",
      "{\"order_id\":\"1234\"}", NULL);
  fake_server_add_hook (fs, 200, "{\"status\":\"shipped\"}", 600);
  fake_server_add_stream (fs, next);
  push_end_of_turn (l, 1, "Where is order 1234?");
  reply = pull_piece (l, 1, &last);
  fail_unless_equals_string (reply, "Let me check that. ");
  g_free (reply);
  fail_unless (fake_server_wait_hooks (fs, 1, 5000));
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 1, "user")));
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "cancelled");
  /* The result still arrives, and goes to the history only. */
  s = wait_event_message (l, "tool-result", 0);
  g_usleep (100 * 1000);
  fail_unless_equals_int (fake_server_n_requests (fs), 1);

  push_end_of_turn (l, 2, "Has it shipped?");
  fail_unless (fake_server_wait_requests (fs, 2, 5000));
  m = messages_of (fs, 1);
  fail_unless_equals_string (m,
      "user:Where is order 1234?\n"
      "assistant:Let me check that.  calls=1\n"
      "tool:{\"status\":\"shipped\"} id=call_1\n"
      "user:Has it shipped?");
  g_free (m);
  fail_unless_equals_int (fake_server_n_hooks (fs), 1);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* Barge-in while a webhook runs, the model having called it before any
 * text: the exchange keeps its round (it is not an unanswered turn to
 * merge into the next one), so the webhook is sent once, the next request
 * carries the call with a pending result, and the one after it the real
 * result. */
GST_START_TEST (test_barge_in_before_text)
{
  static const gchar *next[] = { "Still checking.", NULL };
  static const gchar *last[] = { "It has shipped.", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 8000);
  Llm *l = tools_llm (fs, tools, NULL);
  const GstStructure *s;
  gchar *reply, *m;

  add_calls (
      fs, "", "call_1", "get_order_status", "{\"order_id\":\"1234\"}", NULL);
  fake_server_add_hook (fs, 200, "{\"status\":\"shipped\"}", 2000);
  fake_server_add_stream (fs, next);
  fake_server_add_stream (fs, last);
  push_end_of_turn (l, 1, "Where is order 1234?");
  fail_unless (fake_server_wait_hooks (fs, 1, 5000));
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 1, "user")));
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "cancelled");

  push_end_of_turn (l, 2, "Has it shipped?");
  reply = pull_reply (l, 2);
  fail_unless_equals_string (reply, "Still checking.");
  g_free (reply);
  m = messages_of (fs, 1);
  fail_unless_equals_string (m,
      "user:Where is order 1234?\n"
      "assistant:(null) calls=1\n"
      "tool:{\"status\":\"pending\",\"note\":\"the caller spoke before the "
      "result came back\"} id=call_1\n"
      "user:Has it shipped?");
  g_free (m);

  /* The late result lands in the kept exchange. */
  s = wait_event_message (l, "tool-result", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "result"), "{\"status\":\"shipped\"}");
  push_end_of_turn (l, 3, "And when?");
  reply = pull_reply (l, 3);
  g_free (reply);
  m = messages_of (fs, 2);
  fail_unless (g_str_has_prefix (m,
                   "user:Where is order 1234?\n"
                   "assistant:(null) calls=1\n"
                   "tool:{\"status\":\"shipped\"} id=call_1\n"
                   "user:Has it shipped?\n"
                   "assistant:Still checking.\n"
                   "user:And when?"),
      "%s", m);
  g_free (m);
  fail_unless_equals_int (fake_server_n_hooks (fs), 1);
  fail_unless_equals_int (fake_server_n_requests (fs), 3);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* Arguments that are not a JSON object never reach the history as sent,
 * whatever became of the call: an unknown tool, calls past 8 in a round,
 * a call past the round limit. */
GST_START_TEST (test_history_arguments_valid)
{
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (
      fs, tools, "max-tool-rounds", 1, "fallback-text", "Sorry.", NULL);
  gchar *reply, *m;

  /* Round 1: an unknown tool and 9 waits, all with cut-off arguments. */
  add_calls (fs, "", "u1", "fly_to_moon", "{\"when\": \"now", NULL);
  add_n_calls (fs, LLM_TOOLS_MAX_CALLS + 1, "wait", "{\"x\": [");
  push_end_of_turn (l, 1, "Fly me.");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Sorry.");
  g_free (reply);
  fail_unless_equals_int (check_history_arguments (fs, 1), 1);
  m = messages_of (fs, 1);
  fail_unless (strstr (m, "unknown tool \\\"fly_to_moon\\\"") != NULL, "%s", m);
  g_free (m);

  {
    static const gchar *ok[] = { "Fine.", NULL };
    fake_server_add_stream (fs, ok);
    push_end_of_turn (l, 2, "Never mind.");
    reply = pull_reply (l, 2);
    g_free (reply);
  }
  /* The round past the limit is in the history too: 1 + 9 calls. */
  fail_unless_equals_int (
      check_history_arguments (fs, 2), 1 + LLM_TOOLS_MAX_CALLS + 1);
  m = fake_server_get_body (fs, 2);
  fail_unless (
      strstr (m, "when") == NULL && strstr (m, "\\\"x\\\"") == NULL, "%s", m);
  g_free (m);
  m = messages_of (fs, 2);
  fail_unless (strstr (m, "not run: at most 1 tool rounds") != NULL, "%s", m);
  g_free (m);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* An answer with more calls than LLM_TOOLS_MAX_ANSWER_CALLS: the rest are
 * ignored; a name over LLM_TOOLS_MAX_NAME bytes is cut in the error and
 * in the messages. */
GST_START_TEST (test_call_limits)
{
  static const gchar *ok[] = { "I cannot do that.", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (fs, tools, NULL);
  gchar *name = g_strnfill (200, 'n'), *cut, *m, *expect, *reply;
  const GstStructure *s;
  guint i, n_tool = 0;

  add_n_calls (fs, LLM_TOOLS_MAX_ANSWER_CALLS + 10, name, "{}");
  fake_server_add_stream (fs, ok);
  push_end_of_turn (l, 1, "Do everything.");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "I cannot do that.");
  g_free (reply);
  fail_unless_equals_int (
      check_history_arguments (fs, 1), LLM_TOOLS_MAX_ANSWER_CALLS);
  m = messages_of (fs, 1);
  for (gchar *p = m; (p = strstr (p, "\ntool:")); p++)
    n_tool++;
  fail_unless_equals_int (n_tool, LLM_TOOLS_MAX_ANSWER_CALLS);
  cut = g_strndup (name, LLM_TOOLS_MAX_NAME);
  expect = g_strdup_printf ("unknown tool \\\"%s\\\"\"} id=c0", cut);
  fail_unless (strstr (m, expect) != NULL, "%s", m);
  fail_unless (strstr (m, name) == NULL);
  g_free (expect);
  g_free (m);
  m = fake_server_get_body (fs, 1);
  fail_unless (strstr (m, name) == NULL);
  g_free (m);
  s = wait_event_message (l, "tool-call", 0);
  fail_unless_equals_string (gst_structure_get_string (s, "name"), cut);
  s = wait_event_message (l, "done", 0);
  for (i = 0; i < l->messages->len; i++) {
    GstMessage *msg = g_ptr_array_index (l->messages, i);
    fail_if (message_matches (msg, GST_MESSAGE_ELEMENT, "tool-call") &&
        g_str_equal (gst_structure_get_string (
                         gst_message_get_structure (msg), "tool-call-id"),
            "c16"));
  }
  g_free (cut);
  g_free (name);
  tools_done (l, fs, tools);
}

GST_END_TEST;

/* max-tool-rounds=1: the follow-up forbids tools; a model calling anyway
 * gets "not run" and the turn ends with the fallback. */
GST_START_TEST (test_max_rounds)
{
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (
      fs, tools, "max-tool-rounds", 1, "fallback-text", "Sorry.", NULL);
  JsonParser *p = json_parser_new ();
  gchar *reply, *m;

  add_calls (fs, "", "a", "get_order_status", "{\"order_id\":\"1\"}", NULL);
  fake_server_add_hook (fs, 200, "{\"status\":\"ok\"}", 0);
  add_calls (fs, "", "b", "get_order_status", "{\"order_id\":\"2\"}", NULL);
  push_end_of_turn (l, 1, "Check order 1.");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Sorry.");
  g_free (reply);
  fail_unless_equals_string (
      json_object_get_string_member (body_json (fs, 1, p), "tool_choice"),
      "none");
  fail_unless_equals_int (fake_server_n_requests (fs), 2);
  fail_unless_equals_int (fake_server_n_hooks (fs), 1);
  {
    const GstStructure *s = wait_event_message (l, "tool-result", 1);
    fail_unless (g_str_has_prefix (
        gst_structure_get_string (s, "error"), "not run: at most 1 tool"));
  }
  /* The next turn's history is valid: call b has its (error) result. */
  {
    static const gchar *ok[] = { "Fine.", NULL };
    fake_server_add_stream (fs, ok);
    push_end_of_turn (l, 2, "Thanks.");
    reply = pull_reply (l, 2);
    g_free (reply);
    m = messages_of (fs, 2);
    fail_unless (strstr (m, " id=b\n") != NULL, "%s", m);
    g_free (m);
  }
  g_object_unref (p);
  tools_done (l, fs, tools);
}

GST_END_TEST;

/* end_call after its goodbye: no follow-up, `end-call` once the TTS says
 * the goodbye was heard; transfer and wait post their messages, and wait
 * says nothing more. */
GST_START_TEST (test_builtins)
{
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (fs, tools, NULL);
  const GstStructure *s;
  gchar *reply;
  guint i;

  add_calls (fs, "Goodbye, have a nice day!", "e1", "end_call", "{}", NULL);
  push_end_of_turn (l, 1, "That's all, bye.");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Goodbye, have a nice day!");
  g_free (reply);
  wait_event_message (l, "done", 0);
  for (i = 0; i < l->messages->len; i++)
    fail_if (message_matches (
        g_ptr_array_index (l->messages, i), GST_MESSAGE_ELEMENT, "end-call"));
  fail_unless (gst_harness_push_upstream_event (l->h,
      gst_voice_event_new_spoken (
          GST_CLOCK_TIME_NONE, 1, "Goodbye, have a nice day!", TRUE)));
  s = wait_event_message (l, "end-call", 0);
  {
    guint turn = 0;
    gboolean heard = FALSE;
    gst_structure_get_uint (s, "turn", &turn);
    gst_structure_get_boolean (s, "heard", &heard);
    fail_unless_equals_int (turn, 1);
    fail_unless (heard);
  }
  fail_unless_equals_int (fake_server_n_requests (fs), 1);

  add_calls (fs, "Transferring you now.", "t1", "transfer_call",
      "{\"department\":\"billing\"}", NULL);
  push_end_of_turn (l, 2, "Billing please.");
  reply = pull_reply (l, 2);
  g_free (reply);
  s = wait_event_message (l, "transfer", 0);
  fail_unless_equals_string (gst_structure_get_string (s, "arguments"),
      "{\"department\":\"billing\"}");

  add_calls (fs, "", "w1", "wait", "{}", NULL);
  push_end_of_turn (l, 3, "Hold on, let me find it.");
  s = wait_event_message (l, "wait", 0);
  s = wait_event_message (l, "done", 2);
  fail_unless_equals_string (gst_structure_get_string (s, "text"), "");
  g_usleep (100 * 1000);
  fail_unless_equals_int (fake_server_n_requests (fs), 3);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* Barge-in during the goodbye: `end-call` at once with heard=FALSE (the
 * application must not hang up); the TTS's later report of the cut
 * goodbye posts no second one. A new turn of the caller's during the
 * goodbye, with no speech-start before it (spoken or typed), withdraws it
 * the same way. A
 * goodbye whose own `spoken` never came is not heard either, even when a
 * later report (here of the application's `say`) was complete. */
GST_START_TEST (test_end_call_interrupted)
{
  static const gchar *more[] = { "Sure, what else?", NULL };
  FakeServer *fs = fake_server_new ();
  gchar *tools = tools_file (fs, 3000);
  Llm *l = tools_llm (fs, tools, NULL);
  const GstStructure *s;
  gboolean heard = TRUE, said = FALSE;
  guint turn = 0, i, n = 0;
  gchar *reply;

  add_calls (fs, "Goodbye, have a nice day!", "e1", "end_call", "{}", NULL);
  push_end_of_turn (l, 1, "That's all, bye.");
  reply = pull_reply (l, 1);
  g_free (reply);
  wait_event_message (l, "done", 0);
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 1, "user")));
  s = wait_event_message (l, "end-call", 0);
  gst_structure_get_uint (s, "turn", &turn);
  gst_structure_get_boolean (s, "heard", &heard);
  fail_unless_equals_int (turn, 1);
  fail_if (heard);
  fail_unless (gst_harness_push_upstream_event (l->h,
      gst_voice_event_new_spoken (GST_CLOCK_TIME_NONE, 1, "Goodbye,", FALSE)));

  /* Turn 2's goodbye; the caller's turn 3 comes before its report. */
  add_calls (fs, "Bye then!", "e2", "end_call", "{}", NULL);
  push_end_of_turn (l, 2, "Oh wait, bye.");
  reply = pull_reply (l, 2);
  g_free (reply);
  wait_event_message (l, "done", 1);
  fake_server_add_stream (fs, more);
  push_end_of_turn (l, 3, "One more thing.");
  s = wait_event_message (l, "end-call", 1);
  heard = TRUE;
  gst_structure_get_uint (s, "turn", &turn);
  gst_structure_get_boolean (s, "heard", &heard);
  fail_unless_equals_int (turn, 2);
  fail_if (heard);
  reply = pull_reply (l, 3);
  fail_unless_equals_string (reply, "Sure, what else?");
  g_free (reply);

  /* Turn 4's goodbye never reports; the application's say does. */
  add_calls (fs, "Bye for now!", "e4", "end_call", "{}", NULL);
  push_end_of_turn (l, 4, "Okay, bye.");
  reply = pull_reply (l, 4);
  g_free (reply);
  wait_event_message (l, "done", 3);
  g_signal_emit_by_name (l->h->element, "say", "Please hold.", &said);
  fail_unless (said);
  reply = pull_reply (l, 5);
  fail_unless_equals_string (reply, "Please hold.");
  g_free (reply);
  fail_unless (gst_harness_push_upstream_event (l->h,
      gst_voice_event_new_spoken (
          GST_CLOCK_TIME_NONE, 5, "Please hold.", TRUE)));
  s = wait_event_message (l, "end-call", 2);
  heard = TRUE;
  gst_structure_get_uint (s, "turn", &turn);
  gst_structure_get_boolean (s, "heard", &heard);
  fail_unless_equals_int (turn, 4);
  fail_if (heard);

  /* Turn 6's goodbye; the caller types before its report. */
  add_calls (fs, "See you!", "e6", "end_call", "{}", NULL);
  push_end_of_turn (l, 6, "Bye.");
  reply = pull_reply (l, 6);
  g_free (reply);
  wait_event_message (l, "done", 4);
  fake_server_add_stream (fs, more);
  g_signal_emit_by_name (
      l->h->element, "push-user-text", "Actually, one question.", &said);
  fail_unless (said);
  s = wait_event_message (l, "end-call", 3);
  heard = TRUE;
  gst_structure_get_uint (s, "turn", &turn);
  gst_structure_get_boolean (s, "heard", &heard);
  fail_unless_equals_int (turn, 6);
  fail_if (heard);
  for (i = 0; i < l->messages->len; i++)
    n += message_matches (
        g_ptr_array_index (l->messages, i), GST_MESSAGE_ELEMENT, "end-call");
  fail_unless_equals_int (n, 4);

  tools_done (l, fs, tools);
}

GST_END_TEST;

/* A tools file that cannot be used stops the element at start with an
 * error naming the file. */
GST_START_TEST (test_bad_tools_file)
{
  GstElement *e = gst_element_factory_make ("llmtransform", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *m;
  GError *err = NULL;
  gchar *debug = NULL;

  gst_element_set_bus (e, bus);
  g_object_set (e, "tools-file", "/nonexistent/agent.tools.json", NULL);
  fail_unless_equals_int (
      gst_element_set_state (e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  m = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (m != NULL);
  gst_message_parse_error (m, &err, &debug);
  fail_unless (strstr (err->message, "tools-file") != NULL);
  fail_unless (strstr (err->message, "/nonexistent/agent.tools.json") != NULL);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (m);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
tooluse_suite (void)
{
  Suite *s = suite_create ("llm-tooluse");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 60);
  tcase_add_test (tc, test_webhook_round);
  tcase_add_test (tc, test_errors);
  tcase_add_test (tc, test_barge_in_during_call);
  tcase_add_test (tc, test_barge_in_before_text);
  tcase_add_test (tc, test_history_arguments_valid);
  tcase_add_test (tc, test_call_limits);
  tcase_add_test (tc, test_max_rounds);
  tcase_add_test (tc, test_builtins);
  tcase_add_test (tc, test_end_call_interrupted);
  tcase_add_test (tc, test_bad_tools_file);
  return s;
}

GST_CHECK_MAIN (tooluse);

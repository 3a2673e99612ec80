/* The emulator's OpenAI-compatible service against the documented wire
 * protocol: error bodies, SSE framing byte by byte, the usage chunk, the
 * responder rules, replay, latency and the record of aborted streams.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "control-client.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define KEY "sk-secret-test-key"

static EmuProcess *emu;

static const gchar *const auth[] = { "Authorization", "Bearer " KEY, NULL };

static JsonObject *
event_object (Sse *s, guint i, JsonNode **keep)
{
  const gchar *line = g_ptr_array_index (s->events, i);

  g_assert_true (g_str_has_prefix (line, "data: "));
  *keep = emu_json (line + 6);
  return json_node_get_object (*keep);
}

/* No key, or a wrong one: 401 with OpenAI's error object. */
static void
test_401 (void)
{
  const gchar *const wrong[] = { "Authorization", "Bearer sk-wrong-0123456789",
    NULL };
  g_autoptr (EmuHttpReply) a =
      emu_http (emu, "POST", "/v1/chat/completions", "{}", NULL);
  g_autoptr (EmuHttpReply) b =
      emu_http (emu, "POST", "/v1/chat/completions", "{}", wrong);
  g_autoptr (JsonNode) na = emu_json (a->body);
  g_autoptr (JsonNode) nb = emu_json (b->body);
  JsonObject *ea =
      json_object_get_object_member (json_node_get_object (na), "error");
  JsonObject *eb =
      json_object_get_object_member (json_node_get_object (nb), "error");

  g_assert_cmpuint (a->status, ==, 401);
  g_assert_cmpstr (
      json_object_get_string_member (ea, "type"), ==, "invalid_request_error");
  g_assert_true (json_object_get_null_member (ea, "code"));
  g_assert_cmpuint (b->status, ==, 401);
  g_assert_cmpstr (
      json_object_get_string_member (eb, "code"), ==, "invalid_api_key");
  /* The key is masked in the message, never echoed whole. */
  g_assert_null (strstr (
      json_object_get_string_member (eb, "message"), "sk-wrong-0123456789"));
  g_assert_true (json_object_has_member (eb, "param"));
}

/* Malformed JSON and a missing parameter are 400. */
static void
test_400 (void)
{
  g_autoptr (EmuHttpReply) a =
      emu_http (emu, "POST", "/v1/chat/completions", "{\"model\": ", auth);
  g_autoptr (EmuHttpReply) b = emu_http (
      emu, "POST", "/v1/chat/completions", "{\"model\":\"gpt-4o-mini\"}", auth);

  g_assert_cmpuint (a->status, ==, 400);
  g_assert_nonnull (strstr (a->body, "We could not parse the JSON body"));
  g_assert_cmpuint (b->status, ==, 400);
  g_assert_nonnull (strstr (b->body, "\"param\":\"messages\""));
}

/* /v1/models lists model objects. */
static void
test_models (void)
{
  g_autoptr (EmuHttpReply) r = emu_http (emu, "GET", "/v1/models", NULL, auth);
  g_autoptr (JsonNode) n = emu_json (r->body);

  g_assert_cmpuint (r->status, ==, 200);
  g_assert_cmpstr (
      json_object_get_string_member (json_node_get_object (n), "object"), ==,
      "list");
}

/* SSE exactly as OpenAI frames it: data lines each followed by a blank
 * line, role first, content deltas, finish_reason, usage with no choices,
 * [DONE]. */
static void
test_sse_framing (void)
{
  g_autoptr (Sse) s = sse_request (emu, NULL, KEY,
      "{\"model\":\"gpt-4o-mini\","
      "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],"
      "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
  g_autoptr (JsonNode) first = NULL, finish = NULL, usage = NULL;
  GString *text = g_string_new (NULL);
  guint n = s->events->len;
  JsonObject *o;
  JsonObject *choice;

  g_assert_cmpuint (s->status, ==, 200);
  g_assert_true (s->clean_end);
  g_assert_true (s->blank_after_each);
  g_assert_cmpuint (n, >=, 5);
  g_assert_cmpstr (g_ptr_array_index (s->events, n - 1), ==, "data: [DONE]");

  o = event_object (s, 0, &first);
  g_assert_cmpstr (
      json_object_get_string_member (o, "object"), ==, "chat.completion.chunk");
  g_assert_true (json_object_get_null_member (o, "usage"));
  choice = json_array_get_object_element (
      json_object_get_array_member (o, "choices"), 0);
  g_assert_cmpstr (json_object_get_string_member (
                       json_object_get_object_member (choice, "delta"), "role"),
      ==, "assistant");

  for (guint i = 1; i < n - 3; i++) {
    g_autoptr (JsonNode) keep = NULL;
    JsonObject *c = event_object (s, i, &keep);
    JsonObject *ch = json_array_get_object_element (
        json_object_get_array_member (c, "choices"), 0);
    g_assert_true (json_object_get_null_member (ch, "finish_reason"));
    g_string_append (text,
        json_object_get_string_member (
            json_object_get_object_member (ch, "delta"), "content"));
  }
  g_assert_cmpstr (text->str, ==, "Hello! How can I help you today?");
  g_string_free (text, TRUE);

  o = event_object (s, n - 3, &finish);
  choice = json_array_get_object_element (
      json_object_get_array_member (o, "choices"), 0);
  g_assert_cmpstr (
      json_object_get_string_member (choice, "finish_reason"), ==, "stop");
  g_assert_cmpuint (
      json_object_get_size (json_object_get_object_member (choice, "delta")),
      ==, 0);

  o = event_object (s, n - 2, &usage);
  g_assert_cmpuint (
      json_array_get_length (json_object_get_array_member (o, "choices")), ==,
      0);
  g_assert_cmpint (
      json_object_get_int_member (
          json_object_get_object_member (o, "usage"), "completion_tokens"),
      ==, n - 4);
}

/* Without include_usage there is no usage member and no usage chunk. */
static void
test_sse_no_usage (void)
{
  g_autoptr (Sse) s = sse_request (emu, NULL, KEY,
      "{\"model\":\"m\",\"messages\":"
      "[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}");
  g_autoptr (JsonNode) last = NULL;
  JsonObject *o;

  g_assert_cmpuint (s->events->len, >=, 3);
  o = event_object (s, s->events->len - 2, &last);
  g_assert_false (json_object_has_member (o, "usage"));
  g_assert_cmpuint (
      json_array_get_length (json_object_get_array_member (o, "choices")), ==,
      1);
}

/* The default responder answers the user's words; max_tokens cuts with
 * finish_reason "length". */
static void
test_default_reply (void)
{
  g_autoptr (EmuHttpReply) r = emu_http (emu, "POST", "/v1/chat/completions",
      "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
      "\"text\",\"text\":\"the blue car is fast\"}]}]}",
      auth);
  g_autoptr (EmuHttpReply) cut = emu_http (emu, "POST", "/v1/chat/completions",
      "{\"model\":\"m\",\"max_tokens\":2,\"messages\":"
      "[{\"role\":\"user\",\"content\":\"the blue car is fast\"}]}",
      auth);

  g_assert_cmpuint (r->status, ==, 200);
  g_assert_nonnull (strstr (r->body, "the blue car is fast"));
  g_assert_nonnull (strstr (r->body, "\"object\":\"chat.completion\""));
  g_assert_nonnull (strstr (cut->body, "\"finish_reason\":\"length\""));
  g_assert_nonnull (strstr (cut->body, "\"completion_tokens\":2"));
}

/* A rules file maps patterns to replies, with capture references. */
static void
test_rules (void)
{
  g_autofree gchar *path = NULL;
  gint fd = g_file_open_tmp ("emu-rules-XXXXXX.json", &path, NULL);
  const gchar rules[] =
      "{\"rules\":[{\"pattern\":\"my name is (\\\\w+)\","
      "\"reply\":\"Nice to meet you, \\\\1.\"}],\"default\":\"Default: "
      "{{user}}\"}";
  const gchar *args[] = { "--llm-rules", path, "--quiet", NULL };
  EmuProcess *e;

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, rules, strlen (rules)), ==, strlen (rules));
  close (fd);
  e = emu_check_start (args);
  g_assert_nonnull (e);
  {
    g_autoptr (EmuHttpReply) a = emu_http (e, "POST", "/v1/chat/completions",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"Hi, my name is Ada\"}]}",
        auth);
    g_autoptr (EmuHttpReply) b = emu_http (e, "POST", "/v1/chat/completions",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
        "\"what now\"}]}",
        auth);
    g_assert_nonnull (strstr (a->body, "Nice to meet you, Ada."));
    g_assert_nonnull (strstr (b->body, "Default: what now"));
  }
  emu_process_stop (e);
  g_unlink (path);
}

/* --llm-replay serves a recorded SSE body byte for byte. */
static void
test_replay (void)
{
  const gchar body[] =
      "data: {\"id\":\"chatcmpl-rec\",\"object\":"
      "\"chat.completion.chunk\",\"created\":1,\"model\":\"rec\",\"choices\":"
      "[{\"index\":0,\"delta\":{\"content\":\"Recorded\"},\"finish_reason\":"
      "null}]}\n\ndata: [DONE]\n\n";
  g_autofree gchar *path = NULL;
  gint fd = g_file_open_tmp ("emu-replay-XXXXXX.sse", &path, NULL);
  const gchar *args[] = { "--llm-replay", path, "--quiet", NULL };
  EmuProcess *e;

  g_assert_cmpint (write (fd, body, strlen (body)), ==, strlen (body));
  close (fd);
  e = emu_check_start (args);
  g_assert_nonnull (e);
  {
    g_autoptr (EmuHttpReply) r = emu_http (e, "POST", "/v1/chat/completions",
        "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"anything\"}]}",
        auth);
    g_assert_cmpuint (r->status, ==, 200);
    g_assert_cmpstr (r->body, ==, body);
  }
  emu_process_stop (e);
  g_unlink (path);
}

/* The reference profile delays the first token by 110 ms and paces the
 * rest; the latency endpoint changes it at run time. */
static void
test_latency (void)
{
  g_autoptr (EmuHttpReply) set = emu_http (emu, "POST", "/emulator/latency",
      "{\"profile\":\"reference\",\"llm_tokens_per_s\":50}", NULL);
  g_autoptr (Sse) s = NULL;
  g_autoptr (EmuHttpReply) back = NULL;
  gint64 first, last;

  g_assert_cmpuint (set->status, ==, 200);
  g_assert_nonnull (strstr (set->body, "\"llm_first_token_ms\":110"));
  s = sse_request (emu, NULL, KEY,
      "{\"model\":\"m\",\"stream\":true,\"messages\":"
      "[{\"role\":\"user\",\"content\":\"hello\"}]}");
  first = g_array_index (s->times_ms, gint64, 0);
  last = g_array_index (s->times_ms, gint64, s->times_ms->len - 1);
  g_assert_cmpint (first, >=, 100);
  /* 11 more events at 20 ms each. */
  g_assert_cmpint (last - first, >=, 20 * (s->times_ms->len - 2));
  back = emu_http (
      emu, "POST", "/emulator/latency", "{\"profile\":\"zero\"}", NULL);
  g_assert_cmpuint (back->status, ==, 200);
}

/* A client that goes away mid-stream is recorded as llm-aborted. */
static void
test_abort_recorded (void)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *url = g_strconcat (emu_process_get_http_url (emu),
      "/v1/chat/completions?emu_fault=slow:10", NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  const gchar body[] =
      "{\"model\":\"m\",\"stream\":true,\"messages\":"
      "[{\"role\":\"user\",\"content\":\"tell me a long story about the sea "
      "and the ships and the sailors\"}]}";
  g_autoptr (GBytes) b = g_bytes_new_static (body, strlen (body));
  g_autoptr (GError) error = NULL;
  GInputStream *in;
  gchar buf[256];

  emu_control_reset_all (emu);
  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "Authorization", "Bearer " KEY);
  soup_message_set_request_body_from_bytes (msg, "application/json", b);
  in = soup_session_send (session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (
      g_input_stream_read (in, buf, sizeof (buf), NULL, NULL), >, 0);
  /* Drop the connection: close the stream and the session. */
  g_input_stream_close (in, NULL, NULL);
  g_object_unref (in);
  soup_session_abort (session);
  g_assert_cmpuint (
      emu_control_count_events (emu, "llm", "llm-aborted", 3000), ==, 1);
}

int
main (int argc, char **argv)
{
  const gchar *args[] = { "--openai-key", KEY, "--quiet", NULL };
  int ret;

  emu = emu_check_start (args);
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (emu);

  g_test_add_func ("/openai/401", test_401);
  g_test_add_func ("/openai/400", test_400);
  g_test_add_func ("/openai/models", test_models);
  g_test_add_func ("/openai/sse-framing", test_sse_framing);
  g_test_add_func ("/openai/sse-no-usage", test_sse_no_usage);
  g_test_add_func ("/openai/default-reply", test_default_reply);
  g_test_add_func ("/openai/rules", test_rules);
  g_test_add_func ("/openai/replay", test_replay);
  g_test_add_func ("/openai/latency", test_latency);
  g_test_add_func ("/openai/abort-recorded", test_abort_recorded);
  ret = g_test_run ();
  emu_process_stop (emu);
  return ret;
}

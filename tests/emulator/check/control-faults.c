/* The emulator's control endpoint and every fault type, on the ElevenLabs
 * WebSocket and the LLM stream: armed on the endpoint, by query parameter,
 * HTTP statuses with Retry-After, closes after N messages or N ms, stall,
 * malformed frames, slow tokens; events and reset.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "control-client.h"

#include <string.h>

#define KEY "sk-fault-test"
#define EL_KEY "el-fault-test"
#define WS_PATH "/v1/text-to-speech/v/stream-input?output_format=pcm_16000"

static EmuProcess *emu;

static const gchar *const auth[] = { "Authorization", "Bearer " KEY, NULL };

static const gchar chat[] =
    "{\"model\":\"m\",\"stream\":true,\"messages\":"
    "[{\"role\":\"user\",\"content\":\"tell me something about the weather "
    "today please\"}]}";

static void
setup (void)
{
  emu_control_reset_all (emu);
}

/* Sends text that generates audio right away. */
static void
speak (EmuWs *w)
{
  emu_ws_send (w, "{\"text\":\" \"}");
  emu_ws_send (w,
      "{\"text\":\"One sentence. Another sentence. And a third "
      "one. \",\"flush\":true}");
}

/* Bad specs, services and counts are refused with 400. */
static void
test_bad_requests (void)
{
  const gchar *bodies[] = {
    "{\"service\":\"llm\",\"fault\":\"explode\"}",
    "{\"service\":\"llm\",\"fault\":\"http:200\"}",
    "{\"service\":\"llm\",\"fault\":\"close:code=4000\"}",
    "{\"service\":\"tts\",\"fault\":\"stall\"}",
    "{\"service\":\"llm\",\"fault\":\"stall\",\"count\":0}",
    "not json",
  };

  setup ();
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++) {
    g_autoptr (EmuHttpReply) r =
        emu_http (emu, "POST", "/emulator/faults", bodies[i], NULL);
    g_assert_cmpuint (r->status, ==, 400);
  }
}

/* http:503:retry=2 armed once: 503 with Retry-After, then normal again. */
static void
test_http_retry_after (void)
{
  g_autoptr (EmuHttpReply) a = NULL, b = NULL;

  setup ();
  emu_control_arm (emu, "llm", "http:503:retry=2", 1);
  a = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  b = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  g_assert_cmpuint (a->status, ==, 503);
  g_assert_cmpstr (
      soup_message_headers_get_one (a->headers, "Retry-After"), ==, "2");
  g_assert_nonnull (strstr (a->body, "\"type\":\"server_error\""));
  g_assert_cmpuint (b->status, ==, 200);
}

/* http:429 on the ElevenLabs handshake, and 500 on its HTTP stream. */
static void
test_http_elevenlabs (void)
{
  const gchar *const el[] = { "xi-api-key", EL_KEY, NULL };
  guint status = 0;
  EmuWs *w;
  g_autoptr (EmuHttpReply) r = NULL;

  setup ();
  emu_control_arm (emu, "elevenlabs", "http:429:retry=3", 1);
  w = emu_ws_connect (emu, WS_PATH, EL_KEY, &status);
  g_assert_null (w);
  g_assert_cmpuint (status, ==, 429);
  w = emu_ws_connect (emu, WS_PATH, EL_KEY, &status);
  g_assert_nonnull (w);
  emu_ws_free (w);

  r = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format="
      "pcm_16000&emu_fault=http:500",
      "{\"text\":\"Hi.\"}", el);
  g_assert_cmpuint (r->status, ==, 500);
}

/* close:messages=N:code=C:reason=R by query parameter. */
static void
test_close_after_messages (void)
{
  EmuWs *w;

  setup ();
  w = emu_ws_connect (emu,
      WS_PATH "&emu_fault=close:messages=2:code=4001:reason=bye", EL_KEY, NULL);
  g_assert_nonnull (w);
  speak (w);
  g_assert_true (emu_ws_wait_closed (w, 10000));
  g_assert_cmpuint (w->close_code, ==, 4001);
  g_assert_cmpstr (w->close_reason, ==, "bye");
  g_assert_cmpuint (g_queue_get_length (&w->messages), ==, 2);
  emu_ws_free (w);
}

/* close:ms=N closes N ms after the socket opened, 1011 by default. */
static void
test_close_after_ms (void)
{
  gint64 t0;
  EmuWs *w;

  setup ();
  emu_control_arm (emu, "elevenlabs", "close:ms=300", 1);
  w = emu_ws_connect (emu, WS_PATH, EL_KEY, NULL);
  t0 = g_get_monotonic_time ();
  g_assert_nonnull (w);
  g_assert_true (emu_ws_wait_closed (w, 5000));
  g_assert_cmpuint (w->close_code, ==, 1011);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 200000);
  emu_ws_free (w);
}

/* stall: the socket stays open and says nothing. */
static void
test_stall_ws (void)
{
  g_autofree gchar *m = NULL;
  EmuWs *w;

  setup ();
  emu_control_arm (emu, "elevenlabs", "stall", 1);
  w = emu_ws_connect (emu, WS_PATH, EL_KEY, NULL);
  g_assert_nonnull (w);
  speak (w);
  m = emu_ws_next (w, 1000);
  g_assert_null (m);
  g_assert_false (w->closed);
  g_assert_cmpuint (
      emu_control_count_events (emu, "elevenlabs", "stalled", 0), ==, 1);
  emu_ws_free (w);
}

/* stall on the LLM: no answer until the client gives up. */
static void
test_stall_llm (void)
{
  g_autoptr (SoupSession) session =
      soup_session_new_with_options ("timeout", 1, NULL);
  g_autofree gchar *url = g_strconcat (emu_process_get_http_url (emu),
      "/v1/chat/completions?emu_fault=stall", NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr (GBytes) b = g_bytes_new_static (chat, strlen (chat));
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) reply = NULL;

  setup ();
  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "Authorization", "Bearer " KEY);
  soup_message_set_request_body_from_bytes (msg, "application/json", b);
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpuint (emu_control_count_events (emu, "llm", "stalled", 0), ==, 1);
}

/* malformed: one frame that is not JSON, then the normal ones. */
static void
test_malformed_ws (void)
{
  g_autofree gchar *bad = NULL, *good = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  EmuWs *w;

  setup ();
  emu_control_arm (emu, "elevenlabs", "malformed", 1);
  w = emu_ws_connect (emu, WS_PATH, EL_KEY, NULL);
  g_assert_nonnull (w);
  speak (w);
  bad = emu_ws_next (w, 10000);
  g_assert_nonnull (bad);
  g_assert_false (json_parser_load_from_data (parser, bad, -1, NULL));
  good = emu_ws_next (w, 10000);
  g_assert_nonnull (good);
  g_assert_nonnull (strstr (good, "\"audio\""));
  emu_ws_free (w);
}

/* malformed on SSE: one data line that does not parse, then the rest. */
static void
test_malformed_sse (void)
{
  g_autoptr (Sse) s = NULL;
  guint bad = 0;

  setup ();
  emu_control_arm (emu, "llm", "malformed", 1);
  s = sse_request (emu, NULL, KEY, chat);
  for (guint i = 0; i < s->events->len; i++) {
    const gchar *line = g_ptr_array_index (s->events, i);
    g_autoptr (JsonParser) p = json_parser_new ();
    if (g_str_equal (line, "data: [DONE]"))
      continue;
    if (!json_parser_load_from_data (p, line + 6, -1, NULL))
      bad++;
  }
  g_assert_cmpuint (bad, ==, 1);
  g_assert_cmpstr (
      g_ptr_array_index (s->events, s->events->len - 1), ==, "data: [DONE]");
}

/* slow:N streams N tokens per second. */
static void
test_slow (void)
{
  g_autoptr (Sse) s = NULL;
  gint64 span;

  setup ();
  s = sse_request (emu, "?emu_fault=slow:25", KEY, chat);
  span = g_array_index (s->times_ms, gint64, s->times_ms->len - 1) -
      g_array_index (s->times_ms, gint64, 0);
  /* 40 ms between events. */
  g_assert_cmpint (span, >=, 40 * (gint64)(s->times_ms->len - 1) - 20);
}

/* close:messages=N on SSE cuts the connection: no [DONE]. */
static void
test_close_sse (void)
{
  g_autoptr (Sse) s = NULL;

  setup ();
  emu_control_arm (emu, "llm", "close:messages=3", 1);
  s = sse_request (emu, NULL, KEY, chat);
  g_assert_cmpuint (s->events->len, <=, 3);
  for (guint i = 0; i < s->events->len; i++)
    g_assert_cmpstr (g_ptr_array_index (s->events, i), !=, "data: [DONE]");
  g_assert_cmpuint (
      emu_control_count_events (emu, "llm", "fault-cut", 1000), ==, 1);
}

/* count -1 applies to every connection until reset; GET lists it. */
static void
test_count_and_reset (void)
{
  g_autoptr (EmuHttpReply) list = NULL, a = NULL, b = NULL, c = NULL;

  setup ();
  emu_control_arm (emu, "llm", "http:500", -1);
  list = emu_http (emu, "GET", "/emulator/faults", NULL, NULL);
  g_assert_nonnull (strstr (list->body, "\"fault\":\"http:500\""));
  a = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  b = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  g_assert_cmpuint (a->status, ==, 500);
  g_assert_cmpuint (b->status, ==, 500);
  emu_control_reset_all (emu);
  c = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  g_assert_cmpuint (c->status, ==, 200);
}

/* Every connection is recorded with its outcome. */
static void
test_connection_events (void)
{
  g_autoptr (EmuHttpReply) a = NULL, ev = NULL;

  setup ();
  a = emu_http (emu, "POST", "/v1/chat/completions", chat, auth);
  g_assert_cmpuint (a->status, ==, 200);
  g_assert_cmpuint (
      emu_control_count_events (emu, "llm", "connection", 1000), ==, 1);
  ev = emu_http (
      emu, "GET", "/emulator/events?service=llm&event=connection", NULL, NULL);
  g_assert_nonnull (strstr (ev->body, "\"detail\":\"ok\""));
}

int
main (int argc, char **argv)
{
  const gchar *args[] = { "--openai-key", KEY, "--elevenlabs-key", EL_KEY,
    "--tts-engine", "tone", "--quiet", NULL };
  int ret;

  emu = emu_check_start (args);
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (emu);

  g_test_add_func ("/control/bad-requests", test_bad_requests);
  g_test_add_func ("/control/http-retry-after", test_http_retry_after);
  g_test_add_func ("/control/http-elevenlabs", test_http_elevenlabs);
  g_test_add_func ("/control/close-after-messages", test_close_after_messages);
  g_test_add_func ("/control/close-after-ms", test_close_after_ms);
  g_test_add_func ("/control/stall-ws", test_stall_ws);
  g_test_add_func ("/control/stall-llm", test_stall_llm);
  g_test_add_func ("/control/malformed-ws", test_malformed_ws);
  g_test_add_func ("/control/malformed-sse", test_malformed_sse);
  g_test_add_func ("/control/slow", test_slow);
  g_test_add_func ("/control/close-sse", test_close_sse);
  g_test_add_func ("/control/count-and-reset", test_count_and_reset);
  g_test_add_func ("/control/connection-events", test_connection_events);
  ret = g_test_run ();
  emu_process_stop (emu);
  return ret;
}

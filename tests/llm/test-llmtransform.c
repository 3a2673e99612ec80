/* llmtransform against voiceagent-emulator and a scripted local server.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/check/gsttestclock.h>
#include <json-glib/json-glib.h>
#include <string.h>

#include "voice.h"
#include "emulator-process.h"
#include "fake-server.h"
#include "llm-harness.h"

/* An element under test: its harness and its bus. */
static gchar *
unsplit (const gchar *pieces)
{
  gchar **parts = g_strsplit (pieces, "|", -1);
  gchar *joined = g_strjoinv ("", parts);

  g_strfreev (parts);
  return joined;
}

/* Pulls events until one of @type (and conversation event @voice, if not
 * NONE) arrives. */
static void
wait_downstream_event (Llm *l, GstEventType type, GstVoiceEventType voice)
{
  for (;;) {
    GstEvent *e = gst_harness_pull_event (l->h);
    gboolean found;
    fail_unless (e != NULL, "no %s event", gst_event_type_get_name (type));
    found = GST_EVENT_TYPE (e) == type &&
        (voice == GST_VOICE_EVENT_NONE ||
            gst_voice_event_get_voice_type (e) == voice);
    gst_event_unref (e);
    if (found)
      return;
  }
}

/* ---- Emulator helpers ---- */

static EmuProcess *
start_emulator (const gchar *const *extra)
{
  gchar *rules = data_path ("rules.json");
  GPtrArray *args = g_ptr_array_new ();
  EmuProcess *emu;

  g_ptr_array_add (args, (gpointer) "--quiet");
  g_ptr_array_add (args, (gpointer) "--llm-rules");
  g_ptr_array_add (args, rules);
  for (; extra && *extra; extra++)
    g_ptr_array_add (args, (gpointer)*extra);
  g_ptr_array_add (args, NULL);
  emu = emu_process_start ((const gchar *const *)args->pdata);
  fail_unless (emu != NULL, "the emulator did not start");
  g_ptr_array_unref (args);
  g_free (rules);
  return emu;
}

static gchar *
emu_url (EmuProcess *emu)
{
  return g_strconcat (emu_process_get_http_url (emu), "/v1", NULL);
}

static void
emu_arm_fault (EmuProcess *emu, const gchar *fault, guint count)
{
  gchar *body = g_strdup_printf (
      "{\"service\":\"llm\",\"fault\":\"%s\",\"count\":%u}", fault, count);
  guint status = 0;
  gchar *reply = emu_process_request (emu, "/emulator/faults", body, &status);

  fail_unless_equals_int (status, 200);
  g_free (reply);
  g_free (body);
}

/* Returns: (transfer full): the details of the emulator's LLM events named
 * @event, oldest first. */
static GPtrArray *
emu_events (EmuProcess *emu, const gchar *event)
{
  gchar *path =
      g_strdup_printf ("/emulator/events?service=llm&event=%s", event);
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  JsonParser *parser = json_parser_new ();
  guint status = 0, i;
  gchar *body = emu_process_request (emu, path, NULL, &status);
  JsonArray *a;

  fail_unless_equals_int (status, 200);
  fail_unless (json_parser_load_from_data (parser, body, -1, NULL));
  a = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "events");
  for (i = 0; i < json_array_get_length (a); i++)
    g_ptr_array_add (out,
        g_strdup (json_object_get_string_member_with_default (
            json_array_get_object_element (a, i), "detail", "")));
  g_object_unref (parser);
  g_free (body);
  g_free (path);
  return out;
}

/* Waits (polling another process: there is nothing to block on) until the
 * emulator recorded @n events named @event. */
static GPtrArray *
emu_wait_events (EmuProcess *emu, const gchar *event, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  for (;;) {
    GPtrArray *got = emu_events (emu, event);
    if (got->len >= n)
      return got;
    g_ptr_array_unref (got);
    fail_unless (g_get_monotonic_time () < deadline,
        "the emulator did not see %s", event);
    g_usleep (10000);
  }
}

/* ---- Request bodies (scripted server) ---- */

/* Returns: (transfer full): "role:content" of every message of request @i,
 * joined with '\n'. */
static gchar *
request_messages (FakeServer *fs, guint i)
{
  gchar *body = fake_server_get_body (fs, i);
  JsonParser *parser = json_parser_new ();
  GString *out = g_string_new (NULL);
  JsonArray *a;
  guint k;

  fail_unless (body != NULL, "no request %u", i);
  fail_unless (json_parser_load_from_data (parser, body, -1, NULL));
  a = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "messages");
  for (k = 0; k < json_array_get_length (a); k++) {
    JsonObject *m = json_array_get_object_element (a, k);
    g_string_append_printf (out, "%s%s:%s", k ? "\n" : "",
        json_object_get_string_member (m, "role"),
        json_object_get_string_member (m, "content"));
  }
  g_object_unref (parser);
  g_free (body);
  return g_string_free (out, FALSE);
}

/* ---- Tests ---- */

/* A streamed answer comes out in clause-sized pieces marked as agent text
 * of the turn, the end-of-turn goes ahead of it, and the per-turn messages
 * report the request, the first token and the usage. */
GST_START_TEST (test_stream_clauses)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *reply;
  Llm *l = llm_new (url, NULL);
  const GstStructure *s;
  guint64 ttft = 0;
  gint64 tokens = 0;
  gboolean reported = FALSE;

  push_end_of_turn (l, 3, "How is the weather?");
  reply = pull_reply (l, 3);
  fail_unless_equals_string (reply,
      "It is sunny today, |with a light breeze. |Tomorrow, |"
      "rain is expected!| Take an umbrella.");
  wait_downstream_event (
      l, GST_EVENT_CUSTOM_DOWNSTREAM, GST_VOICE_EVENT_END_OF_TURN);

  s = wait_event_message (l, "request-start", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "model"), "gpt-4o-mini");
  s = wait_event_message (l, "first-token", 0);
  fail_unless (gst_structure_get_uint64 (s, "ttft", &ttft) && ttft > 0);
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "completed");
  fail_unless_equals_string (gst_structure_get_string (s, "reason"), "stop");
  fail_unless (gst_structure_get_boolean (s, "usage-reported", &reported));
  fail_unless (reported);
  fail_unless (gst_structure_get_int64 (s, "completion-tokens", &tokens));
  fail_unless_equals_int64 (tokens, 20);
  fail_unless_equals_string (gst_structure_get_string (s, "text"),
      "It is sunny today, with a light breeze. Tomorrow, rain is expected! "
      "Take an umbrella.");

  llm_free (l);
  g_free (reply);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* A recorded OpenAI stream served verbatim yields exactly its text. */
GST_START_TEST (test_recorded_stream)
{
  gchar *sse = data_path ("openai-stream.sse");
  gchar *txt = data_path ("openai-stream.txt");
  const gchar *args[] = { "--llm-replay", sse, NULL };
  EmuProcess *emu = start_emulator (args);
  gchar *url = emu_url (emu), *expected = NULL, *reply, *text;
  Llm *l = llm_new (url, NULL);
  const GstStructure *s;
  gint64 prompt = 0, completion = 0;

  fail_unless (g_file_get_contents (txt, &expected, NULL, NULL));
  push_end_of_turn (l, 1, "When does the café open?");
  reply = pull_reply (l, 1);
  text = unsplit (reply);
  fail_unless_equals_string (text, expected);
  fail_unless_equals_string (reply,
      "Sure! The café on Rue Cler opens at 8:30, |and their \"croissant du "
      "jour\" is worth it.\n|\nAnything else?");
  s = wait_event_message (l, "done", 0);
  fail_unless (gst_structure_get_int64 (s, "prompt-tokens", &prompt));
  fail_unless (gst_structure_get_int64 (s, "completion-tokens", &completion));
  fail_unless_equals_int64 (prompt, 42);
  fail_unless_equals_int64 (completion, 28);

  llm_free (l);
  g_free (text);
  g_free (reply);
  g_free (expected);
  g_free (url);
  g_free (sse);
  g_free (txt);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Each request carries the system prompt and the last history-size
 * exchanges, the caller's words and the answers the caller heard. */
GST_START_TEST (test_history_cap)
{
  static const gchar *a1[] = { "Answer one.", NULL };
  static const gchar *a2[] = { "Answer two.", NULL };
  static const gchar *a3[] = { "Answer three.", NULL };
  static const gchar *a4[] = { "Answer four.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (
      fake_server_url (fs), "history-size", 2, "system-prompt", "SYS", NULL);
  gchar *reply, *m;

  fake_server_add_stream (fs, a1);
  fake_server_add_stream (fs, a2);
  fake_server_add_stream (fs, a3);
  fake_server_add_stream (fs, a4);
  push_end_of_turn (l, 1, "turn one");
  reply = pull_reply (l, 1);
  g_free (reply);
  push_end_of_turn (l, 2, "turn two");
  reply = pull_reply (l, 2);
  g_free (reply);
  push_end_of_turn (l, 3, "turn three");
  reply = pull_reply (l, 3);
  g_free (reply);
  push_end_of_turn (l, 4, "turn four");
  reply = pull_reply (l, 4);
  fail_unless_equals_string (reply, "Answer four.");
  g_free (reply);

  m = request_messages (fs, 0);
  fail_unless_equals_string (m, "system:SYS\nuser:turn one");
  g_free (m);
  m = request_messages (fs, 1);
  fail_unless_equals_string (
      m, "system:SYS\nuser:turn one\nassistant:Answer one.\nuser:turn two");
  g_free (m);
  m = request_messages (fs, 3);
  fail_unless_equals_string (m,
      "system:SYS\nuser:turn two\nassistant:Answer two.\nuser:turn three\n"
      "assistant:Answer three.\nuser:turn four");
  g_free (m);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* interrupt aborts the request at once (the emulator sees the client go
 * away), is forwarded, and nothing of the reply follows it downstream. */
GST_START_TEST (test_interrupt_cancels)
{
  const gchar *args[] = { "--llm-tokens-per-s", "20", NULL };
  EmuProcess *emu = start_emulator (args);
  gchar *url = emu_url (emu), *opening;
  Llm *l = llm_new (url, NULL);
  GString *got = g_string_new (NULL);
  const GstStructure *s;
  GPtrArray *aborted;
  GstBuffer *b;
  gboolean last;

  push_end_of_turn (l, 5, "Tell me a story");
  opening = pull_piece (l, 5, &last);
  fail_unless_equals_string (opening, "Once upon a time, ");
  g_string_append (got, opening);
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 5, "user")));
  wait_downstream_event (
      l, GST_EVENT_CUSTOM_DOWNSTREAM_OOB, GST_VOICE_EVENT_INTERRUPT);
  aborted = emu_wait_events (emu, "llm-aborted", 1);
  g_ptr_array_unref (aborted);

  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "cancelled");
  fail_unless_equals_string (
      gst_structure_get_string (s, "reason"), "interrupt");
  /* Every piece that went out did so before the interrupt: the done
   * message's text is exactly what was pushed. */
  while ((b = gst_harness_try_pull (l->h))) {
    GstMapInfo map;
    gst_buffer_map (b, &map, GST_MAP_READ);
    g_string_append_len (got, (const gchar *)map.data, map.size);
    gst_buffer_unmap (b, &map);
    gst_buffer_unref (b);
  }
  fail_unless_equals_string (gst_structure_get_string (s, "text"), got->str);
  s = wait_event_message (l, "interrupt", 0);
  fail_unless_equals_string (gst_structure_get_string (s, "action"), "acted");

  llm_free (l);
  g_string_free (got, TRUE);
  g_free (opening);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* After a barge-in the history keeps what was sent, and once the TTS
 * reports (upstream `spoken` event) only what the caller heard. */
GST_START_TEST (test_barge_in_history)
{
  static const gchar *part[] = { "data: {\"choices\":[{\"delta\":{\"content\":"
                                 "\"First part here. Second part\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" never sent.\"}}]}\n\n",
    "data: [DONE]\n\n", NULL };
  static const gchar *next[] = { "Okay.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "system-prompt", "", "interruption",
      0 /* vad */, NULL);
  gchar *piece, *m, *reply;
  gboolean last;

  fake_server_add_answer (fs, 200, part, 1, NULL);
  fake_server_add_stream (fs, next);
  fake_server_add_stream (fs, next);
  push_end_of_turn (l, 1, "Hi");
  piece = pull_piece (l, 1, &last);
  fail_unless_equals_string (piece, "First part here. ");
  g_free (piece);
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_speech_start (GST_CLOCK_TIME_NONE, 2)));
  wait_downstream_event (
      l, GST_EVENT_CUSTOM_DOWNSTREAM_OOB, GST_VOICE_EVENT_SPEECH_START);
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "reason"),
      "speech-start");

  push_end_of_turn (l, 2, "Wait");
  reply = pull_reply (l, 2);
  g_free (reply);
  m = request_messages (fs, 1);
  fail_unless_equals_string (
      m, "user:Hi\nassistant:First part here. \nuser:Wait");
  g_free (m);

  fail_unless (gst_harness_push_upstream_event (l->h,
      gst_voice_event_new_spoken (
          GST_CLOCK_TIME_NONE, 1, "First part", FALSE)));
  push_end_of_turn (l, 3, "Go on");
  reply = pull_reply (l, 3);
  g_free (reply);
  m = request_messages (fs, 2);
  fail_unless_equals_string (m,
      "user:Hi\nassistant:First part\nuser:Wait\nassistant:Okay.\n"
      "user:Go on");
  g_free (m);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* With interruption=event, speech-start is forwarded but the reply goes
 * on; a spoken event saying the caller heard nothing makes the next turn
 * join the unanswered one. */
GST_START_TEST (test_interruption_event_mode)
{
  static const gchar *held[] = { "data: {\"choices\":[{\"delta\":{\"content\":"
                                 "\"Still talking here.\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" Done now.\"}}]}\n\n",
    "data: [DONE]\n\n", NULL };
  static const gchar *next[] = { "Fine.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (
      fake_server_url (fs), "interruption", 1, "system-prompt", "", NULL);
  gchar *reply, *m;

  fake_server_add_answer (fs, 200, held, 1, NULL);
  fake_server_add_stream (fs, next);
  push_end_of_turn (l, 1, "Hi");
  fail_unless (fake_server_wait_requests (fs, 1, 10000));
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_speech_start (GST_CLOCK_TIME_NONE, 2)));
  wait_downstream_event (
      l, GST_EVENT_CUSTOM_DOWNSTREAM_OOB, GST_VOICE_EVENT_SPEECH_START);
  fake_server_release (fs);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Still talking here. |Done now.");
  g_free (reply);
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "outcome"),
      "completed");

  fail_unless (gst_harness_push_upstream_event (
      l->h, gst_voice_event_new_spoken (GST_CLOCK_TIME_NONE, 1, "", FALSE)));
  push_end_of_turn (l, 2, "are you there");
  reply = pull_reply (l, 2);
  g_free (reply);
  m = request_messages (fs, 1);
  fail_unless_equals_string (m, "user:Hi are you there");
  g_free (m);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Another end-of-turn while a reply is generated cancels it and answers
 * both turns together. */
GST_START_TEST (test_combined_turns)
{
  const gchar *args[] = { "--llm-first-token-ms", "400", NULL };
  EmuProcess *emu = start_emulator (args);
  gchar *url = emu_url (emu), *reply;
  Llm *l = llm_new (url, NULL);
  const GstStructure *s;
  gboolean combined = FALSE;
  GPtrArray *requests;

  push_end_of_turn (l, 1, "What is");
  push_end_of_turn (l, 2, "the weather like?");
  reply = pull_reply (l, 2);
  fail_unless_equals_string (reply,
      "It is sunny today, |with a light breeze. |Tomorrow, |"
      "rain is expected!| Take an umbrella.");
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "cancelled");
  fail_unless_equals_string (
      gst_structure_get_string (s, "reason"), "combined");
  s = wait_event_message (l, "request-start", 1);
  fail_unless (gst_structure_get_boolean (s, "combined", &combined));
  fail_unless (combined);
  /* Request 1 may or may not have reached the emulator before it was
   * cancelled; the combined one did. */
  requests = emu_wait_events (emu, "request", 1);
  fail_unless (g_ptr_array_find_with_equal_func (
      requests, "What is the weather like?", g_str_equal, NULL));
  g_ptr_array_unref (requests);

  llm_free (l);
  g_free (reply);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* 401: an element error that names the key variables and quotes the
 * server. */
GST_START_TEST (test_error_401)
{
  const gchar *args[] = { "--openai-key", "sk-right-key-123456", NULL };
  EmuProcess *emu = start_emulator (args);
  gchar *url = emu_url (emu), *debug = NULL;
  Llm *l = llm_new (url, "api-key", "sk-wrong-key-654321", NULL);
  GstMessage *m;
  GError *err = NULL;

  push_end_of_turn (l, 1, "Hello");
  m = wait_message (l, GST_MESSAGE_ERROR, NULL, 0);
  gst_message_parse_error (m, &err, &debug);
  fail_unless (g_error_matches (
      err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED));
  fail_unless (
      strstr (err->message, "LLM_API_KEY") != NULL, "%s", err->message);
  fail_unless (strstr (err->message, "OPENAI_API_KEY") != NULL);
  fail_unless (strstr (err->message, "Incorrect API key provided") != NULL);
  fail_unless (strstr (debug, "HTTP 401") != NULL, "%s", debug);
  fail_if (strstr (debug, "sk-wrong-key-654321") != NULL);
  {
    const GstStructure *details = NULL;
    guint status = 0;
    gst_message_parse_error_details (m, &details);
    fail_unless (details &&
        gst_structure_get_uint (details, "http-status-code", &status));
    fail_unless_equals_int (status, 401);
  }
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "outcome"),
      "error");
  g_error_free (err);
  g_free (debug);

  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Without the api-key property the key comes from the environment when a
 * request connects, so one exported after the element was made is sent. */
GST_START_TEST (test_env_key_after_creation)
{
  const gchar *args[] = { "--openai-key", "sk-late-env-key-24680", NULL };
  EmuProcess *emu = start_emulator (args);
  gchar *url = emu_url (emu);
  Llm *l;

  g_unsetenv ("LLM_API_KEY");
  g_unsetenv ("OPENAI_API_KEY");
  l = llm_new (url, "api-key", NULL, NULL);
  g_setenv ("LLM_API_KEY", "sk-late-env-key-24680", TRUE);

  push_end_of_turn (l, 1, "Hello");
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "outcome"),
      "completed");
  g_unsetenv ("LLM_API_KEY");

  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* 429: a warning with the server's message, one retry after Retry-After
 * (on the pipeline clock), then the answer. */
GST_START_TEST (test_error_429_retry_after)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *w, *reply;
  Llm *l = llm_new (url, NULL);
  GstTestClock *clock = gst_harness_get_testclock (l->h);
  GstClockTime now;
  guint attempts = 0;

  emu_arm_fault (emu, "http:429:retry=1", 1);
  push_end_of_turn (l, 1, "hello there");
  w = wait_warning (l, 0);
  fail_unless (strstr (w, "Rate limit reached") != NULL, "%s", w);
  fail_unless (strstr (w, "retrying") != NULL, "%s", w);
  g_free (w);
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  now = gst_clock_get_time (GST_CLOCK (clock));
  fail_unless_equals_uint64 (
      gst_test_clock_get_next_entry_time (clock), now + GST_SECOND);
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hello! How can I help you today?");
  fail_unless (gst_structure_get_uint (
      wait_event_message (l, "done", 0), "attempts", &attempts));
  fail_unless_equals_int (attempts, 2);

  g_free (reply);
  gst_object_unref (clock);
  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* 503 twice: two warnings, then the fallback text, so the caller does not
 * wait in silence. */
GST_START_TEST (test_error_5xx_fallback)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *w, *reply;
  Llm *l = llm_new (url, "fallback-text", "Sorry, try again.", NULL);
  GstTestClock *clock = gst_harness_get_testclock (l->h);
  GstClockTime now;

  emu_arm_fault (emu, "http:503", 2);
  push_end_of_turn (l, 1, "hello");
  w = wait_warning (l, 0);
  fail_unless (strstr (w, "HTTP 503") && strstr (w, "overloaded"), "%s", w);
  g_free (w);
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  now = gst_clock_get_time (GST_CLOCK (clock));
  fail_unless_equals_uint64 (
      gst_test_clock_get_next_entry_time (clock), now + 250 * GST_MSECOND);
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  w = wait_warning (l, 1);
  fail_unless (strstr (w, "fallback") != NULL, "%s", w);
  g_free (w);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Sorry, try again.");
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "outcome"),
      "failed");

  g_free (reply);
  gst_object_unref (clock);
  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* A first token later than first-token-timeout counts as a failure: the
 * request is aborted (the emulator sees it), retried once, then the
 * fallback is said. */
GST_START_TEST (test_first_token_timeout)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *w, *reply;
  Llm *l = llm_new (url, "first-token-timeout-ms", 1000, "fallback-text",
      "One moment please.", NULL);
  GstTestClock *clock = gst_harness_get_testclock (l->h);
  GstClockTime now = gst_clock_get_time (GST_CLOCK (clock));
  GPtrArray *events;

  emu_arm_fault (emu, "stall", 2);
  push_end_of_turn (l, 1, "hello");
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  fail_unless_equals_uint64 (
      gst_test_clock_get_next_entry_time (clock), now + GST_SECOND);
  events = emu_wait_events (emu, "stalled", 1);
  g_ptr_array_unref (events);
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  w = wait_warning (l, 0);
  fail_unless (strstr (w, "no first token within 1000 ms") != NULL, "%s", w);
  g_free (w);

  /* The retry, then its own timeout. */
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  events = emu_wait_events (emu, "stalled", 2);
  g_ptr_array_unref (events);
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "One moment please.");

  g_free (reply);
  gst_object_unref (clock);
  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* A mid-stream `data: {"error": ...}` after some text: a warning quoting
 * the server, no retry (the caller heard part of it), the fallback. */
GST_START_TEST (test_mid_stream_error)
{
  static const gchar *broken[] = { "data: {\"choices\":[{\"delta\":{"
                                   "\"content\":\"Hello there, my friend. "
                                   "I was about\"}}]}\n\n",
    "data: {\"error\":{\"message\":\"The model crashed mid-stream\","
    "\"type\":\"server_error\"}}\n\n",
    NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "fallback-text", "Sorry.", NULL);
  gchar *reply, *w;

  fake_server_add_answer (fs, 200, broken, -1, NULL);
  push_end_of_turn (l, 1, "Hi");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hello there, |my friend. |Sorry.");
  w = wait_warning (l, 0);
  fail_unless (strstr (w, "The model crashed mid-stream") != NULL, "%s", w);
  g_free (w);
  fail_unless_equals_int (fake_server_n_requests (fs), 1);

  g_free (reply);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* llama.cpp's `error:` field before any text is a failure worth a retry;
 * an Ollama-style error body is quoted in the warning. */
GST_START_TEST (test_error_field_and_bodies)
{
  static const gchar *llamacpp[] = { "error: {\"code\":500,\"message\":"
                                     "\"slot unavailable\",\"type\":"
                                     "\"server_error\"}\n\n",
    "data: [DONE]\n\n", NULL };
  static const gchar *ollama[] = { "{\"error\":\"model 'x' not found\"}",
    NULL };
  static const gchar *ok[] = { "Recovered.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "fallback-text", "", NULL);
  gchar *reply, *w;

  fake_server_add_answer (fs, 200, llamacpp, -1, NULL);
  fake_server_add_stream (fs, ok);
  push_end_of_turn (l, 1, "Hi");
  w = wait_warning (l, 0);
  fail_unless (strstr (w, "slot unavailable") != NULL, "%s", w);
  g_free (w);
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Recovered.");
  g_free (reply);

  /* 404 cannot be fixed by retrying: no retry, nothing to say. */
  fake_server_add_answer (fs, 404, ollama, -1, NULL);
  push_end_of_turn (l, 2, "Again");
  w = wait_warning (l, 1);
  fail_unless (strstr (w, "HTTP 404: model 'x' not found") != NULL, "%s", w);
  fail_unless (strstr (w, "giving up") != NULL, "%s", w);
  g_free (w);
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 1), "outcome"),
      "failed");
  fail_unless_equals_int (fake_server_n_requests (fs), 3);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* What real servers send: CRLF framing, lines split across reads,
 * comments, content null, empty deltas, choices [] and null, reasoning (never
 * said), usage, [DONE] without a blank line. */
GST_START_TEST (test_server_framings)
{
  static const gchar *stream[] = { ": ping\r\n\r\ndata: {\"choices\":[],"
                                   "\"prompt_filter_results\":[]}\r\n\r\nda",
    "ta: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null,\"reasoning_content\":\"The user greets",
    " me.\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"reasoning\":"
    "\"Be nice.\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{}}]}\r\n",
    "\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"\"}}]}\r\n\r\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hi! Nice to\"}}]}\r\n\r\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" meet you, really.\"},"
    "\"finish_reason\":null}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{},"
    "\"finish_reason\":\"stop\"}]}\r\n\r\n",
    "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":9,"
    "\"completion_tokens\":6}}\r\n\r\ndata: [DONE]",
    NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), NULL);
  const GstStructure *s;
  gint64 total = 0;
  gchar *reply;

  fake_server_add_answer (fs, 200, stream, -1, NULL);
  push_end_of_turn (l, 1, "Hi");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hi! Nice to meet you, |really.");
  s = wait_event_message (l, "done", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "outcome"), "completed");
  fail_unless (gst_structure_get_int64 (s, "total-tokens", &total));
  fail_unless_equals_int64 (total, 15);

  g_free (reply);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Text that waits clause-max-wait-ms (pipeline clock) for punctuation goes
 * out up to its last whole word. */
GST_START_TEST (test_clause_max_wait)
{
  static const gchar *slow[] = { "data: {\"choices\":[{\"delta\":{\"content\":"
                                 "\"Well I think that\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" maybe, yes. Done.\"}}]}"
    "\n\n",
    "data: [DONE]\n\n", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), NULL);
  GstTestClock *clock = gst_harness_get_testclock (l->h);
  GstClockTime now = gst_clock_get_time (GST_CLOCK (clock));
  gchar *piece, *reply;
  gboolean last;

  fake_server_add_answer (fs, 200, slow, 1, NULL);
  push_end_of_turn (l, 1, "Hi");
  fail_unless (gst_harness_wait_for_clock_id_waits (l->h, 1, 20));
  fail_unless_equals_uint64 (
      gst_test_clock_get_next_entry_time (clock), now + 250 * GST_MSECOND);
  fail_unless (gst_harness_crank_single_clock_wait (l->h));
  piece = pull_piece (l, 1, &last);
  fail_unless_equals_string (piece, "Well I think ");
  fail_if (last);
  g_free (piece);
  fake_server_release (fs);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "that maybe, |yes. Done.");

  g_free (reply);
  gst_object_unref (clock);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* The greeting opens the call (turn 0); say speaks at once when idle and
 * after the reply in flight otherwise, numbered after the last turn;
 * push-user-text is a turn of its own. */
GST_START_TEST (test_greeting_say_and_typed_text)
{
  static const gchar *held[] = { "data: {\"choices\":[{\"delta\":{\"content\":"
                                 "\"Hello! How can I help?\"}}]}\n\n",
    "data: [DONE]\n\n", NULL };
  FakeServer *fs = fake_server_new ();
  GstElement *e = gst_element_factory_make ("llmtransform", NULL);
  Llm *l;
  gboolean ok = FALSE;
  gchar *reply, *m;

  /* A fresh element refuses actions until it runs. */
  g_signal_emit_by_name (e, "say", "too early", &ok);
  fail_if (ok);
  gst_object_unref (e);

  l = llm_new (fake_server_url (fs), "greeting", "Welcome to the test line.",
      "system-prompt", "", NULL);
  reply = pull_reply (l, 0);
  fail_unless_equals_string (reply, "Welcome to the test line.");
  g_free (reply);
  g_signal_emit_by_name (l->element, "say", "One moment.", &ok);
  fail_unless (ok);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "One moment.");
  g_free (reply);

  fake_server_add_answer (fs, 200, held, 1, NULL);
  g_signal_emit_by_name (l->element, "push-user-text", "  hello  ", &ok);
  fail_unless (ok);
  fail_unless (fake_server_wait_requests (fs, 1, 10000));
  g_signal_emit_by_name (l->element, "say", "Anything else?", &ok);
  fail_unless (ok);
  fake_server_release (fs);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hello! How can I help?");
  g_free (reply);
  reply = pull_reply (l, 2);
  fail_unless_equals_string (reply, "Anything else?");
  g_free (reply);
  m = request_messages (fs, 0);
  fail_unless_equals_string (m,
      "assistant:Welcome to the test line.\nassistant:One moment.\n"
      "user:hello");
  g_free (m);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* The history property: written before the start, the conversation goes
 * on from it (no greeting, earlier turns sent with the next request); read
 * back, it is the conversation as chat messages; a bad value is refused. */
GST_START_TEST (test_history_property)
{
  static const gchar *answer[] = { "You are Zed.", NULL };
  static const gchar *before =
      "[{\"role\":\"user\",\"content\":\"My name is Zed.\"},"
      "{\"role\":\"assistant\",\"content\":\"Hello Zed.\"}]";
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "history", before, "greeting",
      "Welcome.", "system-prompt", "SYS", NULL);
  gchar *reply, *m, *history = NULL;

  fake_server_add_stream (fs, answer);
  push_end_of_turn (l, 1, "What is my name?");
  /* Turn 1 first: the greeting (turn 0) was not said. */
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "You are Zed.");
  g_free (reply);
  m = request_messages (fs, 0);
  fail_unless_equals_string (m,
      "system:SYS\nuser:My name is Zed.\nassistant:Hello Zed.\n"
      "user:What is my name?");
  g_free (m);

  g_object_get (l->element, "history", &history, NULL);
  fail_unless_equals_string (history,
      "[{\"role\":\"user\",\"content\":\"My name is Zed.\"},"
      "{\"role\":\"assistant\",\"content\":\"Hello Zed.\"},"
      "{\"role\":\"user\",\"content\":\"What is my name?\"},"
      "{\"role\":\"assistant\",\"content\":\"You are Zed.\"}]");
  g_free (history);

  /* Not an array of messages: refused, the conversation unchanged. */
  g_object_set (l->element, "history", "{\"role\":\"user\"}", NULL);
  g_object_get (l->element, "history", &history, NULL);
  fail_unless (strstr (history, "You are Zed.") != NULL);
  g_free (history);
  /* Written while running, it replaces the conversation at once. */
  g_object_set (l->element, "history", "[]", NULL);
  g_object_get (l->element, "history", &history, NULL);
  fail_unless_equals_string (history, "[]");
  g_free (history);

  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Plain text without end-of-turn (a file) is answered at EOS, and EOS goes
 * out after the answer. */
GST_START_TEST (test_eos_after_reply)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *reply;
  Llm *l = llm_new (url, NULL);
  GstBuffer *interim = gst_buffer_new_memdup ("ignored", 7);

  gst_buffer_add_voice_transcript_meta (
      interim, GST_VOICE_ROLE_USER, FALSE, FALSE, 0.5f, 1);
  fail_unless_equals_int (gst_harness_push (l->h, interim), GST_FLOW_OK);
  fail_unless_equals_int (
      gst_harness_push (l->h, gst_buffer_new_memdup ("hello\n", 6)),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (l->h, gst_event_new_eos ()));
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hello! How can I help you today?");
  wait_downstream_event (l, GST_EVENT_EOS, GST_VOICE_EVENT_NONE);
  fail_unless_equals_int (gst_harness_buffers_in_queue (l->h), 0);

  g_free (reply);
  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* One malformed chunk is skipped; the rest of the answer still comes. */
GST_START_TEST (test_malformed_chunk_skipped)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *url = emu_url (emu), *reply;
  Llm *l = llm_new (url, NULL);

  emu_arm_fault (emu, "malformed", 1);
  push_end_of_turn (l, 1, "how is the weather");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply,
      "It is sunny today, |with a light breeze. |Tomorrow, |"
      "rain is expected!| Take an umbrella.");

  g_free (reply);
  llm_free (l);
  g_free (url);
  emu_process_stop (emu);
}

GST_END_TEST;

/* ---- Turn taking: confirmed barge-in, speculative replies ---- */

static void
push_user_text (Llm *l, const gchar *text, gboolean is_final)
{
  GstBuffer *b = gst_buffer_new_memdup (text, strlen (text));

  gst_buffer_add_voice_transcript_meta (
      b, GST_VOICE_ROLE_USER, is_final, FALSE, 0.9f, 2);
  fail_unless_equals_int (gst_harness_push (l->h, b), GST_FLOW_OK);
}

static void
push_voice (Llm *l, GstVoiceEventType type)
{
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new (type, GST_CLOCK_TIME_NONE, 2)));
}

/* Pulls events up to conversation event @voice; returns it (transfer
 * full). */
static GstEvent *
pull_voice_event (Llm *l, GstVoiceEventType voice)
{
  for (;;) {
    GstEvent *e = gst_harness_pull_event (l->h);
    fail_unless (
        e != NULL, "no %s event", gst_voice_event_type_get_name (voice));
    if (gst_voice_event_get_voice_type (e) == voice)
      return e;
    gst_event_unref (e);
  }
}

/* A reply held open after its first piece (the server waits for
 * fake_server_release()), as the agent is speaking it. */
static Llm *
speaking_agent (FakeServer *fs, const gchar *first_prop, ...)
{
  static const gchar *part[] = { "data: {\"choices\":[{\"delta\":{\"content\":"
                                 "\"First part here. Second part\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\" comes later.\"}}]}\n\n",
    "data: [DONE]\n\n", NULL };
  Llm *l = llm_new (fake_server_url (fs), "system-prompt", "", NULL);
  gboolean last;
  gchar *piece;
  va_list args;

  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (l->element), first_prop, args);
  va_end (args);
  fake_server_add_answer (fs, 200, part, 1, NULL);
  push_end_of_turn (l, 1, "Hi");
  piece = pull_piece (l, 1, &last);
  fail_unless_equals_string (piece, "First part here. ");
  g_free (piece);
  return l;
}

/* Guards: with interruption=confirmed (the default) speech over the agent
 * pauses it (agent-pause, speech-start marked deferred), a backchannel
 * ("Mhm.") is not a turn, and the agent resumes where it was: no reply
 * is cancelled and no request is made. */
GST_START_TEST (test_confirmed_backchannel_resumes)
{
  FakeServer *fs = fake_server_new ();
  Llm *l = speaking_agent (fs, NULL);
  GstEvent *e;
  gchar *reply;
  gboolean found = FALSE;

  push_voice (l, GST_VOICE_EVENT_SPEECH_START);
  e = pull_voice_event (l, GST_VOICE_EVENT_PAUSE);
  gst_event_unref (e);
  e = pull_voice_event (l, GST_VOICE_EVENT_SPEECH_START);
  fail_unless (gst_voice_event_is_barge_in_deferred (e));
  gst_event_unref (e);
  push_user_text (l, "Mhm", FALSE);
  push_voice (l, GST_VOICE_EVENT_SPEECH_STOP);
  push_user_text (l, "Mhm.", TRUE);
  push_end_of_turn (l, 2, "Mhm.");
  e = pull_voice_event (l, GST_VOICE_EVENT_RESUME);
  gst_event_unref (e);
  fake_server_release (fs);
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Second part comes later.");
  g_free (reply);
  for (guint i = 0; !found; i++) {
    const GstStructure *s = wait_event_message (l, "barge-in", i);
    found = g_str_equal (gst_structure_get_string (s, "outcome"), "resumed");
    if (found)
      fail_unless_equals_string (
          gst_structure_get_string (s, "reason"), "backchannel");
  }
  fail_unless_equals_int (fake_server_n_requests (fs), 1);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Guards: words that are not a backchannel confirm the barge-in at the
 * first interim result: the reply is cancelled and interrupt sent. */
GST_START_TEST (test_confirmed_words_interrupt)
{
  FakeServer *fs = fake_server_new ();
  Llm *l = speaking_agent (fs, NULL);
  const gchar *reason = NULL;
  GstEvent *e;

  push_voice (l, GST_VOICE_EVENT_SPEECH_START);
  gst_event_unref (pull_voice_event (l, GST_VOICE_EVENT_PAUSE));
  push_user_text (l, "Yeah", FALSE);
  push_user_text (l, "Yeah wait", FALSE);
  e = pull_voice_event (l, GST_VOICE_EVENT_INTERRUPT);
  fail_unless (gst_voice_event_parse_interrupt (e, NULL, NULL, &reason));
  fail_unless_equals_string (reason, "words");
  gst_event_unref (e);
  fail_unless_equals_string (
      gst_structure_get_string (wait_event_message (l, "done", 0), "reason"),
      "barge-in");
  fake_server_release (fs);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Guards: speech without words confirms after min-interruption-ms; a
 * pause whose speech stopped with no words resumes. */
GST_START_TEST (test_confirmed_timers)
{
  FakeServer *fs = fake_server_new ();
  Llm *l = speaking_agent (fs, "min-interruption-ms", 300, NULL);
  const gchar *reason = NULL;
  GstEvent *e;
  gint64 t0;

  push_voice (l, GST_VOICE_EVENT_SPEECH_START);
  gst_event_unref (pull_voice_event (l, GST_VOICE_EVENT_PAUSE));
  push_voice (l, GST_VOICE_EVENT_SPEECH_STOP);
  t0 = g_get_monotonic_time ();
  gst_event_unref (pull_voice_event (l, GST_VOICE_EVENT_RESUME));
  fail_unless (g_get_monotonic_time () - t0 >= 250 * 1000);

  push_voice (l, GST_VOICE_EVENT_SPEECH_START);
  gst_event_unref (pull_voice_event (l, GST_VOICE_EVENT_PAUSE));
  t0 = g_get_monotonic_time ();
  e = pull_voice_event (l, GST_VOICE_EVENT_INTERRUPT);
  fail_unless (g_get_monotonic_time () - t0 >= 250 * 1000);
  fail_unless (gst_voice_event_parse_interrupt (e, NULL, NULL, &reason));
  fail_unless_equals_string (reason, "long speech");
  gst_event_unref (e);
  fake_server_release (fs);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

static void
push_turn_likely (Llm *l, guint turn, const gchar *text)
{
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_turn_likely (GST_CLOCK_TIME_NONE, turn, text)));
}

/* Guards: turn-likely starts the request, its text is held until the
 * end-of-turn with the same words (case and punctuation aside), and one
 * request answers the turn. */
GST_START_TEST (test_speculative_hit)
{
  static const gchar *answer[] = { "Hello to you too.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "system-prompt", "", NULL);
  gchar *reply;

  fake_server_add_stream (fs, answer);
  push_turn_likely (l, 1, "Hello there.");
  fail_unless (fake_server_wait_requests (fs, 1, 5000));
  g_usleep (200 * 1000);
  fail_unless (gst_harness_try_pull (l->h) == NULL);
  push_end_of_turn (l, 1, "hello, there");
  reply = pull_reply (l, 1);
  fail_unless_equals_string (reply, "Hello to you too.");
  g_free (reply);
  fail_unless_equals_string (
      gst_structure_get_string (
          wait_event_message (l, "speculation", 1), "outcome"),
      "used");
  fail_unless_equals_int (fake_server_n_requests (fs), 1);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

/* Guards: when the caller goes on (turn-resumed) the speculative request is
 * dropped and never enters the history; the committed turn is asked
 * afresh, and a turn committed with other words drops it too. */
GST_START_TEST (test_speculative_dropped)
{
  static const gchar *answer[] = { "Noted.", NULL };
  FakeServer *fs = fake_server_new ();
  Llm *l = llm_new (fake_server_url (fs), "system-prompt", "", NULL);
  gchar *reply, *m;

  fake_server_add_stream (fs, answer);
  fake_server_add_stream (fs, answer);
  fake_server_add_stream (fs, answer);
  push_turn_likely (l, 1, "My number is");
  fail_unless (fake_server_wait_requests (fs, 1, 5000));
  fail_unless (gst_harness_push_event (l->h,
      gst_voice_event_new (
          GST_VOICE_EVENT_TURN_RESUMED, GST_CLOCK_TIME_NONE, 1)));
  push_turn_likely (l, 1, "My number is four two.");
  fail_unless (fake_server_wait_requests (fs, 2, 5000));
  push_end_of_turn (l, 1, "My number is four two three.");
  reply = pull_reply (l, 1);
  g_free (reply);
  m = request_messages (fs, 2);
  fail_unless_equals_string (m, "user:My number is four two three.");
  g_free (m);
  fail_unless_equals_int (fake_server_n_requests (fs), 3);
  llm_free (l);
  fake_server_free (fs);
}

GST_END_TEST;

static Suite *
llmtransform_suite (void)
{
  Suite *s = suite_create ("llmtransform");
  TCase *tc = tcase_create ("llmtransform");

  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_stream_clauses);
  tcase_add_test (tc, test_recorded_stream);
  tcase_add_test (tc, test_history_cap);
  tcase_add_test (tc, test_interrupt_cancels);
  tcase_add_test (tc, test_barge_in_history);
  tcase_add_test (tc, test_interruption_event_mode);
  tcase_add_test (tc, test_confirmed_backchannel_resumes);
  tcase_add_test (tc, test_confirmed_words_interrupt);
  tcase_add_test (tc, test_confirmed_timers);
  tcase_add_test (tc, test_speculative_hit);
  tcase_add_test (tc, test_speculative_dropped);
  tcase_add_test (tc, test_combined_turns);
  tcase_add_test (tc, test_error_401);
  tcase_add_test (tc, test_env_key_after_creation);
  tcase_add_test (tc, test_error_429_retry_after);
  tcase_add_test (tc, test_error_5xx_fallback);
  tcase_add_test (tc, test_first_token_timeout);
  tcase_add_test (tc, test_mid_stream_error);
  tcase_add_test (tc, test_error_field_and_bodies);
  tcase_add_test (tc, test_server_framings);
  tcase_add_test (tc, test_clause_max_wait);
  tcase_add_test (tc, test_greeting_say_and_typed_text);
  tcase_add_test (tc, test_history_property);
  tcase_add_test (tc, test_eos_after_reply);
  tcase_add_test (tc, test_malformed_chunk_skipped);
  return s;
}

GST_CHECK_MAIN (llmtransform);

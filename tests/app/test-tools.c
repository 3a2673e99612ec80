/* End to end over WebRTC: the agent calls tools. A caller asks aloud for
 * an order's status; the emulator's LLM calls get_order_status; the
 * tool's webhook (here, in the test) answers; the agent speaks the answer.
 * And a caller who says goodbye is hung up on (end_call) after the goodbye
 * was heard. The server runs the repo's agent.pipeline with a tools file
 * beside it, as an operator would install one. The callers speak (espeak-ng
 * through VAD and the Deepgram protocol); the emulator's recognizer is the
 * scripted one, because the rules under test are the tools', not
 * pocketsphinx's reading of "one thousand two hundred thirty four".
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include "emulator-process.h"
#include "http-receiver.h"
#include "test-process.h"
#include "test-speech.h"
#include "whip-check.h"

#define ANSWER_TIMEOUT_MS 30000
#define SECRET "tools-secret-5d1c7a2e9b"

/* ---- The order service: the get_order_status webhook ---- */

typedef struct
{
  GMutex lock;
  /* Protected by lock */
  guint requests;
  gboolean bad; /* a request without a valid signature or shape */
  gchar *call_id; /* of the last request */
  gchar *order_id;
} Orders;

static guint
on_order (SoupMessageHeaders *h, const gchar *body, gsize len, GString *reply,
    gpointer data)
{
  Orders *o = data;
  JsonNode *root = json_from_string (body, NULL);
  JsonObject *req = root && JSON_NODE_HOLDS_OBJECT (root)
      ? json_node_get_object (root)
      : NULL;
  JsonObject *args = req && json_object_has_member (req, "arguments")
      ? json_object_get_object_member (req, "arguments")
      : NULL;
  const gchar *order = args
      ? json_object_get_string_member_with_default (args, "order_id", NULL)
      : NULL;

  g_mutex_lock (&o->lock);
  o->requests++;
  if (!http_signature_ok (
          soup_message_headers_get_one (h, "X-Voiceagent-Signature"), SECRET,
          body, len) ||
      order == NULL ||
      g_strcmp0 (json_object_get_string_member_with_default (req, "name", NULL),
          "get_order_status") != 0)
    o->bad = TRUE;
  g_free (o->call_id);
  o->call_id = req ? g_strdup (json_object_get_string_member_with_default (
                         req, "call_id", NULL))
                   : NULL;
  g_free (o->order_id);
  o->order_id = g_strdup (order);
  g_mutex_unlock (&o->lock);
  g_string_printf (reply,
      "{\"order_id\":\"%s\",\"status\":\"shipped\",\"eta\":\"Friday\"}",
      order ? order : "?");
  if (root)
    json_node_unref (root);
  return 200;
}

/* ---- The server, with a tools file beside its agent template ---- */

/* The order service's tool, as docs/elements/llmtransform.md shows it. */
#define ORDER_TOOL                                                             \
  "{\"type\":\"function\",\"function\":{\"name\":\"get_order_status\","        \
  "\"description\":\"Look up the status of the caller's order by its "         \
  "number.\",\"parameters\":{\"type\":\"object\",\"properties\":{"             \
  "\"order_id\":{\"type\":\"string\"}},\"required\":[\"order_id\"]}},"         \
  "\"webhook\":{\"url\":\"http://127.0.0.1:%u/orders\","                       \
  "\"timeout_ms\":3000}}"

/* pipelines/agent.tools.json (the built-ins) and the order service's
 * webhook on @port. */
static gchar *
tools_json (guint port)
{
  gchar *src = g_build_filename (g_getenv ("VOICEAGENT_SOURCE_DIR"),
      "pipelines", "agent.tools.json", NULL);
  JsonParser *p = json_parser_new ();
  gchar *order = g_strdup_printf (ORDER_TOOL, port);
  gchar *out;

  fail_unless (json_parser_load_from_file (p, src, NULL), "%s", src);
  json_array_add_element (json_node_get_array (json_parser_get_root (p)),
      json_from_string (order, NULL));
  g_free (order);
  out = json_to_string (json_parser_get_root (p), TRUE);
  g_object_unref (p);
  g_free (src);
  return out;
}

/* A folder with the repo's agent.pipeline and a tools file for it. */
static gchar *
pipelines_dir (guint port)
{
  gchar *dir = g_dir_make_tmp ("voiceagent-tools-XXXXXX", NULL);
  gchar *src = g_build_filename (
      g_getenv ("VOICEAGENT_SOURCE_DIR"), "pipelines", "agent.pipeline", NULL);
  gchar *text = NULL, *dst, *tools;

  fail_unless (g_file_get_contents (src, &text, NULL, NULL), "%s", src);
  dst = g_build_filename (dir, "agent.pipeline", NULL);
  fail_unless (g_file_set_contents (dst, text, -1, NULL));
  g_free (dst);
  dst = g_build_filename (dir, "agent.tools.json", NULL);
  tools = tools_json (port);
  fail_unless (g_file_set_contents (dst, tools, -1, NULL));
  g_free (tools);
  g_free (dst);
  g_free (text);
  g_free (src);
  return dir;
}

typedef struct
{
  gchar *dir;
  gchar *db;
  EmuProcess *server;
  Orders orders;
  HttpReceiver *http;
} Fixture;

/* The server, whose recognizer hears @said as the caller's one utterance. */
static void
fixture_start (Fixture *f, const gchar *said)
{
  const gchar *args[] = { "--pipelines", NULL, "--database", NULL,
    "--emulator-args", NULL, "--ice-timeout-ms", "1000", NULL };
  gchar *script, *emulator_args, *line;

  g_mutex_init (&f->orders.lock);
  f->http = http_receiver_new (0, "/orders", on_order, &f->orders);
  f->dir = pipelines_dir (http_receiver_get_port (f->http));
  f->db = g_build_filename (f->dir, "calls.db", NULL);
  script = g_build_filename (f->dir, "stt-script", NULL);
  line = g_strconcat (said, "\n", NULL);
  fail_unless (g_file_set_contents (script, line, -1, NULL));
  emulator_args = g_strdup_printf (
      "--quiet --stt-engine scripted --stt-script '%s'", script);
  args[1] = f->dir;
  args[3] = f->db;
  args[5] = emulator_args;
  g_unsetenv ("DEEPGRAM_API_KEY");
  g_unsetenv ("ELEVENLABS_API_KEY");
  g_unsetenv ("LLM_API_KEY");
  g_unsetenv ("OPENAI_API_KEY");
  g_setenv ("VOICEAGENT_TOOLS_SECRET", SECRET, TRUE);
  f->server = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);
  fail_unless (f->server != NULL, "voiceagent did not start");
  g_free (emulator_args);
  g_free (line);
  g_free (script);
}

/* espeak-ng saying @text, for the caller to play. */
static gchar *
spoken (const gchar *text, const gchar *name)
{
  GError *error = NULL;
  gchar *wav = test_speech_wav (text, name, 1, &error);

  fail_unless (wav != NULL, "%s", error ? error->message : "");
  return wav;
}

static void
fixture_stop (Fixture *f)
{
  emu_process_stop (f->server);
  http_receiver_free (f->http);
  test_process_remove_tree (f->dir);
  g_free (f->orders.call_id);
  g_free (f->orders.order_id);
  g_mutex_clear (&f->orders.lock);
  g_free (f->dir);
  g_free (f->db);
}

static WhipCaller *
call (Fixture *f, const gchar *wav, gchar **call_id)
{
  gchar *url =
      g_strconcat (emu_process_get_http_url (f->server), "/whip", NULL);
  WhipCallerOptions o = { .url = url, .data_channel = TRUE, .wav = wav };
  WhipCaller *c = whip_caller_new (&o);
  gchar *m, *id;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  m = whip_check_message (c, "\"type\":\"call\"", ANSWER_TIMEOUT_MS);
  id = strstr (m, "\"id\":\"") + strlen ("\"id\":\"");
  *call_id = g_strndup (id, strcspn (id, "\""));
  g_free (m);
  g_free (url);
  return c;
}

/* `voiceagent calls show ID` on the fixture's records. */
static gchar *
show_call (Fixture *f, const gchar *id)
{
  const gchar *argv[] = { g_getenv ("VOICEAGENT_BIN"), "--database", f->db,
    "calls", "show", id, NULL };
  gchar *out = NULL;
  gint status = -1;
  gint i;

  /* The record is written by the records thread after the call ends. */
  for (i = 0; i < 50; i++) {
    g_free (out);
    out = NULL;
    if (g_spawn_sync (NULL, (gchar **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
            NULL, NULL, &out, NULL, &status, NULL) &&
        status == 0)
      return out;
    g_usleep (100 * 1000);
  }
  fail ("no record of call %s", id);
  return out;
}

#define ORDER_QUESTION "What is the status of order 1234?"
/* The recognizer's line, and what the caller says: without the commas,
 * which espeak-ng would make pauses the VAD may cut into two utterances
 * (the scripted recognizer would then hear the line twice). */
#define GOODBYE "Thanks, that is all, goodbye!"
#define GOODBYE_SAID "Thanks that is all goodbye"

/* The caller asks aloud about an order: the model calls get_order_status,
 * the webhook gets a signed request with the call's id, the answer is
 * spoken, the caller sees the tool's events, and the record lists the
 * call. */
GST_START_TEST (test_order_status_over_webhook)
{
  Fixture f = { 0 };
  WhipCaller *c;
  gchar *id, *m, *record;
  gchar *wav = spoken (ORDER_QUESTION, "tools-order");

  fixture_start (&f, ORDER_QUESTION);
  c = call (&f, wav, &id);
  m = whip_check_message (c, "\"final\":true", ANSWER_TIMEOUT_MS);
  fail_unless (strstr (m, "order 1234"), "%s", m);
  g_free (m);
  m = whip_check_message (c, "\"type\":\"tool_call\"", ANSWER_TIMEOUT_MS);
  fail_unless (strstr (m, "\"name\":\"get_order_status\"") &&
          strstr (m, "\"order_id\":\"1234\""),
      "%s", m);
  g_free (m);
  m = whip_check_message (c, "\"type\":\"tool_result\"", ANSWER_TIMEOUT_MS);
  fail_unless (
      strstr (m, "\"ok\":true") && strstr (m, "\"duration_ms\":"), "%s", m);
  fail_if (
      strstr (m, "shipped"), "the tool's answer reached the caller: %s", m);
  g_free (m);
  m = whip_check_message (c, "shipped", ANSWER_TIMEOUT_MS);
  fail_unless (strstr (m, "\"role\":\"agent\""), "%s", m);
  g_free (m);
  fail_unless (whip_caller_wait_audio (c, 0.05, ANSWER_TIMEOUT_MS),
      "the answer was not heard (peak %f)", whip_caller_get_peak_rms (c));

  g_mutex_lock (&f.orders.lock);
  fail_unless_equals_int (f.orders.requests, 1);
  fail_if (f.orders.bad,
      "the webhook's request was not signed or shaped "
      "as docs/elements/llmtransform.md says");
  fail_unless_equals_string (f.orders.call_id, id);
  fail_unless_equals_string (f.orders.order_id, "1234");
  g_mutex_unlock (&f.orders.lock);

  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  record = show_call (&f, id);
  fail_unless (strstr (record, "tools:       turn 1: get_order_status: ok"),
      "%s", record);
  fail_unless (strstr (record, "shipped"), "%s", record);
  /* The question heard is the caller's line of the transcript. */
  fail_unless (strstr (record, ORDER_QUESTION), "%s", record);
  g_free (record);
  g_free (wav);
  g_free (id);
  fixture_stop (&f);
}

GST_END_TEST;

/* Where, counting the data-channel events from 1, the agent's goodbye
 * text, the end of its audio and its end_call came (0: never). */
typedef struct
{
  gint goodbye, silent, end_call;
  guint user_finals; /* the caller's final transcripts */
} EndOrder;

/* Reads the caller's events up to the agent's end_call. */
static EndOrder
events_until_end_call (WhipCaller *c)
{
  EndOrder o = { 0 };
  gint n = 0;
  gint64 deadline = g_get_monotonic_time () + ANSWER_TIMEOUT_MS * 1000;

  while (o.end_call == 0 && g_get_monotonic_time () < deadline) {
    gchar *m = whip_caller_pop_message (c, 1000);

    if (m == NULL)
      continue;
    n++;
    if (strstr (m, "\"role\":\"user\"") && strstr (m, "\"final\":true"))
      o.user_finals++;
    if (strstr (m, "\"role\":\"agent\"") && strstr (m, "Goodbye"))
      o.goodbye = n;
    else if (strstr (m, "\"type\":\"agent\",\"speaking\":false"))
      o.silent = n;
    else if (strstr (m, "\"type\":\"end_call\""))
      o.end_call = n;
    g_free (m);
  }
  fail_unless (o.end_call > 0, "the agent did not hang up (no end_call)");
  return o;
}

/* The caller says goodbye: the agent says its goodbye, the
 * caller hears it, and only then does the agent hang up (end_call): the
 * call ends with reason agent-hangup, its record lists the end_call. */
GST_START_TEST (test_goodbye_ends_the_call)
{
  Fixture f = { 0 };
  WhipCaller *c;
  gchar *id, *record;
  EndOrder order;
  guint status = 0;
  gint i;

  gchar *wav = spoken (GOODBYE_SAID, "tools-goodbye");

  fixture_start (&f, GOODBYE);
  c = call (&f, wav, &id);
  order = events_until_end_call (c);
  fail_unless_equals_int (order.user_finals, 1);
  fail_unless (order.goodbye > 0, "the agent said no goodbye");
  fail_unless (order.silent > 0 && order.silent < order.end_call,
      "the agent hung up (event %d) before its goodbye's audio ended (%d)",
      order.end_call, order.silent);
  fail_unless (whip_caller_get_peak_rms (c) > 0.05,
      "the goodbye was not heard (peak %f)", whip_caller_get_peak_rms (c));
  for (i = 0; i < 100 && status != 404; i++) {
    status = whip_caller_request (c, "GET", NULL, NULL, NULL);
    if (status != 404)
      g_usleep (100 * 1000);
  }
  fail_unless_equals_int (status, 404);
  whip_caller_free (c);
  record = show_call (&f, id);
  fail_unless (strstr (record, "ended:       agent-hangup"), "%s", record);
  fail_unless (strstr (record, "end_call: ok"), "%s", record);
  fail_unless (strstr (record, GOODBYE), "%s", record);
  g_free (record);
  g_free (id);
  g_free (wav);
  fixture_stop (&f);
}

GST_END_TEST;

static Suite *
tools_suite (void)
{
  Suite *s = suite_create ("tools");
  TCase *tc = tcase_create ("e2e");

  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_order_status_over_webhook);
  tcase_add_test (tc, test_goodbye_ends_the_call);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (tools);

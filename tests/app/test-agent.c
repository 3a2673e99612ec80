/* End to end: a WebRTC caller talks to the real agent pipeline
 * (pipelines/agent.pipeline: silerovad, deepgram, llmtransform, elevenlabs)
 * through voiceagent, with every service on the local emulator.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "test-speech.h"
#include "whip-check.h"

#define ANSWER_TIMEOUT_MS 30000

static gchar *question_wav;
static gchar *interrupt_wav;

/* Runs while the suite is built, outside any test: no fail_unless. */
static gchar *
speech (const gchar *text, const gchar *name)
{
  GError *error = NULL;
  gchar *wav = test_speech_wav (text, name, 2, &error);

  if (wav == NULL)
    g_error ("%s", error->message);
  return wav;
}

static EmuProcess *
start_agent (const gchar *emulator_args)
{
  const gchar *args[] = { "--database", NULL, "--emulator-args", emulator_args,
    "--drain-timeout", "1", "--ice-timeout-ms", "1000", NULL };
  gchar *db = g_build_filename (g_get_tmp_dir (), "voiceagent-e2e.db", NULL);
  EmuProcess *p;

  /* No keys: the server starts the emulator for every service. */
  g_unsetenv ("DEEPGRAM_API_KEY");
  g_unsetenv ("ELEVENLABS_API_KEY");
  g_unsetenv ("LLM_API_KEY");
  g_unsetenv ("OPENAI_API_KEY");
  args[1] = db;
  p = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);
  g_free (db);
  fail_unless (p != NULL, "voiceagent did not start");
  return p;
}

static WhipCaller *
call (EmuProcess *server, const gchar *wav)
{
  gchar *url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  WhipCallerOptions o = { .url = url, .wav = wav, .data_channel = TRUE };
  WhipCaller *c = whip_caller_new (&o);

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  g_free (url);
  return c;
}

static void
expect_message (WhipCaller *c, const gchar *needle)
{
  g_free (whip_check_message (c, needle, ANSWER_TIMEOUT_MS));
}

/* Waits for every needle, in any order: events from different elements
 * (the LLM's full text, the agent's audio starting, the turn's metrics)
 * reach the caller unordered. Returns the matching messages, in the
 * needles' order. */
static gchar **
expect_messages (WhipCaller *c, const gchar *const *needles)
{
  guint n = g_strv_length ((gchar **)needles), seen = 0, i;
  gchar **found = g_new0 (gchar *, n + 1);
  gint64 deadline = g_get_monotonic_time () + ANSWER_TIMEOUT_MS * 1000;

  while (seen < n && g_get_monotonic_time () < deadline) {
    gchar *m = whip_caller_pop_message (c, 100);

    for (i = 0; m && i < n; i++)
      if (found[i] == NULL && strstr (m, needles[i])) {
        found[i] = g_strdup (m);
        seen++;
      }
    g_free (m);
  }
  for (i = 0; i < n; i++)
    fail_unless (found[i] != NULL, "no data-channel event with %s", needles[i]);
  return found;
}

static gboolean
server_uses_asan (EmuProcess *server)
{
  gchar *path = g_strdup_printf ("/proc/%u/maps", emu_process_get_pid (server));
  gchar *maps = NULL;
  gboolean asan;

  g_file_get_contents (path, &maps, NULL, NULL);
  asan = maps && strstr (maps, "libasan") != NULL;
  g_free (maps);
  g_free (path);
  return asan;
}

/* The caller asks a question and gets a spoken answer: the transcript of
 * what they said, the agent's text, its audio, and the turn's metrics. */
GST_START_TEST (test_conversation)
{
  EmuProcess *server = start_agent ("--quiet");
  WhipCaller *c = call (server, question_wav);
  gchar *m;

  expect_message (c, "\"type\":\"call\"");
  /* Recognition is real (pocketsphinx): the key word, in some result.
   * Under AddressSanitizer the server runs several times slower than real
   * time on 2 cores and the leaky queue before the VAD drops audio, so
   * there only some final transcript is required (recognition quality is
   * the emulator suite's subject). */
  m = whip_caller_wait_message (c,
      server_uses_asan (server) ? "\"final\":true" : "pizza",
      ANSWER_TIMEOUT_MS);
  fail_unless (m != NULL, "the caller was not transcribed");
  g_free (m);
  /* deepgramsrc committed the turn, and said how long it waited. */
  m = whip_caller_wait_message (
      c, "\"state\":\"committed\"", ANSWER_TIMEOUT_MS);
  fail_unless (m != NULL, "no committed turn");
  fail_unless (strstr (m, "\"eot_ms\":") && strstr (m, "\"ending\":"), "%s", m);
  g_free (m);
  fail_unless (whip_caller_wait_audio (c, 0.05, ANSWER_TIMEOUT_MS),
      "no agent audio (peak %f)", whip_caller_get_peak_rms (c));
  {
    const gchar *const replied[] = { "\"role\":\"agent\"",
      "\"type\":\"agent\",\"speaking\":true", "\"voice_to_voice_ms\"", NULL };
    gchar **got = expect_messages (c, replied);

    m = got[2];
    fail_unless (strstr (m, "\"eot_ms\":") && strstr (m, "\"speculative\":") &&
            strstr (m, "\"false_interruptions\":0"),
        "%s", m);
    g_strfreev (got);
  }
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  emu_process_stop (server);
}

GST_END_TEST;

/* Typed text (data channel) starts a reply without depending on speech
 * recognition; waits until the agent is heard speaking. */
static void
start_reply (WhipCaller *c)
{
  expect_message (c, "\"type\":\"call\"");
  fail_unless (
      whip_caller_send_text (c, "Please tell me a long story about the sea."));
  expect_message (c, "\"type\":\"agent\",\"speaking\":true");
}

/* Barge-in from the data channel: {"event":"user_interrupted"} while the
 * agent speaks stops it (an "interrupted" event for the turn). */
GST_START_TEST (test_barge_in_data_channel)
{
  EmuProcess *server = start_agent ("--quiet --stt-engine scripted");
  WhipCaller *c = call (server, NULL);

  start_reply (c);
  fail_unless (whip_caller_send (c, "{\"event\":\"user_interrupted\"}"));
  expect_message (c, "\"type\":\"interrupted\"");
  whip_caller_hangup (c);
  whip_caller_free (c);
  emu_process_stop (server);
}

GST_END_TEST;

/* Barge-in by voice: the caller talks over the agent; the VAD's
 * speech-start cuts the agent off. */
GST_START_TEST (test_barge_in_voice)
{
  EmuProcess *server = start_agent ("--quiet --stt-engine scripted");
  WhipCaller *c = call (server, NULL);

  start_reply (c);
  fail_unless (whip_caller_play (c, interrupt_wav));
  expect_message (c, "\"type\":\"interrupted\"");
  whip_caller_hangup (c);
  whip_caller_free (c);
  emu_process_stop (server);
}

GST_END_TEST;

typedef struct
{
  guint threads;
  guint fds;
  guint64 rss_kb;
} Usage;

static Usage
server_usage (EmuProcess *server)
{
  Usage u = { 0 };
  gchar *path =
      g_strdup_printf ("/proc/%u/status", emu_process_get_pid (server));
  gchar *status = NULL, **lines, **l;
  GDir *dir;

  g_file_get_contents (path, &status, NULL, NULL);
  lines = g_strsplit (status ? status : "", "\n", -1);
  for (l = lines; *l; l++) {
    if (g_str_has_prefix (*l, "Threads:"))
      u.threads = (guint)g_ascii_strtoull (*l + 8, NULL, 10);
    else if (g_str_has_prefix (*l, "VmRSS:"))
      u.rss_kb = g_ascii_strtoull (*l + 6, NULL, 10);
  }
  g_strfreev (lines);
  g_free (status);
  g_free (path);
  path = g_strdup_printf ("/proc/%u/fd", emu_process_get_pid (server));
  dir = g_dir_open (path, 0, NULL);
  while (dir && g_dir_read_name (dir))
    u.fds++;
  if (dir)
    g_dir_close (dir);
  g_free (path);
  return u;
}

static void
one_short_call (EmuProcess *server)
{
  WhipCaller *c = call (server, NULL);

  expect_message (c, "\"type\":\"call\"");
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
}

static void
wait_no_calls (EmuProcess *server)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
  gchar *body = NULL;

  while (g_get_monotonic_time () < deadline) {
    g_free (body);
    body = emu_process_request (server, "/calls", NULL, NULL);
    if (body && g_str_equal (body, "[]"))
      break;
    g_usleep (50000);
  }
  fail_unless_equals_string (body, "[]");
  g_free (body);
}

/* 50 calls one after another give back every thread and file descriptor
 * and do not grow the server's memory call by call. */
GST_START_TEST (test_sequential_calls_release_everything)
{
  EmuProcess *server = start_agent ("--quiet --stt-engine scripted "
                                    "--tts-engine tone");
  Usage base, after;
  gint i;

  /* Warm up: one-time allocations (plugins, the I/O thread, pools). */
  for (i = 0; i < 3; i++)
    one_short_call (server);
  wait_no_calls (server);
  base = server_usage (server);
  for (i = 0; i < 50; i++)
    one_short_call (server);
  wait_no_calls (server);
  after = server_usage (server);
  g_print ("50 calls: threads %u -> %u, fds %u -> %u, RSS %" G_GUINT64_FORMAT
           " -> %" G_GUINT64_FORMAT " kB\n",
      base.threads, after.threads, base.fds, after.fds, base.rss_kb,
      after.rss_kb);
  /* Idle thread pools (the teardown pool, GLib's unused-thread cache) may
   * grow to their small caps; a thread kept per call would be 50. */
  fail_unless (after.threads <= base.threads + 2, "threads grew");
  /* Likewise: a socket still closing may be counted; one per call is 50. */
  fail_unless (after.fds <= base.fds + 2, "file descriptors grew: %u -> %u",
      base.fds, after.fds);
  /* Allocator caches settle; a leak of even 100 kB a call would not.
   * AddressSanitizer's quarantine keeps freed memory (256 MB), so there
   * memory is LeakSanitizer's job at the server's exit. */
  if (!server_uses_asan (server))
    fail_unless (after.rss_kb < base.rss_kb + 5 * 1024 + base.rss_kb / 4,
        "RSS grew from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT " kB",
        base.rss_kb, after.rss_kb);
  emu_process_stop (server);
}

GST_END_TEST;

/* --log-format json: every line of the server's output (its emulator's
 * included) is one JSON object; the call's lines carry its id (and their
 * turn), the webhook's failed deliveries of its record included; no
 * secret and nothing the caller said is in any line. */
static void
check_json_log (const gchar *log, const gchar *call_id)
{
  gchar **lines = g_strsplit (log, "\n", -1);
  JsonParser *p = json_parser_new ();
  GHashTable *seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint i;

  for (i = 0; lines[i]; i++) {
    JsonObject *o;
    const gchar *event, *call;

    if (*lines[i] == '\0')
      continue;
    fail_unless (json_parser_load_from_data (p, lines[i], -1, NULL) &&
            JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)),
        "not a JSON object: %s", lines[i]);
    o = json_node_get_object (json_parser_get_root (p));
    event = json_object_get_string_member_with_default (o, "event", NULL);
    fail_unless (event && json_object_has_member (o, "ts"), "%s", lines[i]);
    call = json_object_get_string_member_with_default (o, "call", NULL);
    if (call && g_str_equal (call, call_id))
      g_hash_table_add (seen, (gpointer)g_intern_string (event));
    if (g_str_equal (event, "dc.metrics") || g_str_equal (event, "call.end"))
      fail_unless (json_object_get_int_member_with_default (o, "turn", 0) >= 1,
          "%s", lines[i]);
  }
  fail_unless (g_hash_table_contains (seen, "call.start"), "%s", log);
  fail_unless (g_hash_table_contains (seen, "call.ice"), "%s", log);
  fail_unless (g_hash_table_contains (seen, "dc.metrics"), "%s", log);
  fail_unless (g_hash_table_contains (seen, "call.end"), "%s", log);
  fail_unless (g_hash_table_contains (seen, "webhook.delivery"),
      "no webhook.delivery line names the call:\n%s", log);
  g_hash_table_unref (seen);
  g_object_unref (p);
  g_strfreev (lines);
}

GST_START_TEST (test_operator_log_json)
{
  /* Nothing listens on port 1: both attempts of the call's webhook fail
   * at once, and each says so in a webhook.delivery line. */
  const gchar *args[] = { "--database", ":memory:", "--emulator-args",
    "--quiet", "--log-format", "json", "--turn-secret",
    "turn-secret-never-logged", "--ice-timeout-ms", "1000", "--webhook",
    "http://127.0.0.1:1/hook", "--webhook-retries", "2", NULL };
  gchar *log_path = g_build_filename (g_get_tmp_dir (), "oplog.json", NULL);
  EmuProcess *server;
  WhipCallerOptions o = { .data_channel = TRUE,
    .token = "caller-token-never-logged",
    .wav = question_wav };
  WhipCaller *c;
  gchar *url, *m, *log = NULL, *call_id;

  g_setenv ("VOICEAGENT_TOKEN", "caller-token-never-logged", TRUE);
  g_setenv ("VOICEAGENT_WEBHOOK_SECRET", "whsec-never-logged-4e1", TRUE);
  g_setenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS", "50", TRUE);
  server = emu_process_start_logged_all (
      g_getenv ("VOICEAGENT_BIN"), args, log_path);
  g_unsetenv ("VOICEAGENT_TOKEN");
  g_unsetenv ("VOICEAGENT_WEBHOOK_SECRET");
  g_unsetenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS");
  fail_unless (server != NULL, "voiceagent did not start");
  url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  o.url = url;
  c = whip_caller_new (&o);
  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  m = whip_check_message (c, "\"type\":\"call\"", ANSWER_TIMEOUT_MS);
  call_id = g_strndup (
      strstr (m, "\"id\":\"") + 6, strcspn (strstr (m, "\"id\":\"") + 6, "\""));
  g_free (m);
  g_free (
      whip_check_ask (c, "Tell me about purple elephants", ANSWER_TIMEOUT_MS));
  g_free (whip_check_message (c, "\"voice_to_voice_ms\"", ANSWER_TIMEOUT_MS));
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  emu_process_stop (server);

  fail_unless (g_file_get_contents (log_path, &log, NULL, NULL));
  fail_if (strstr (log, "never-logged"), "a secret in the log:\n%s", log);
  fail_if (strstr (log, "pizza"), "what the caller said:\n%s", log);
  check_json_log (log, call_id);
  g_unlink (log_path);
  g_free (log_path);
  g_free (log);
  g_free (call_id);
  g_free (url);
}

GST_END_TEST;

static Suite *
agent_suite (void)
{
  Suite *s = suite_create ("agent");
  TCase *tc = tcase_create ("e2e");

  question_wav =
      speech ("I want to order a large pizza with cheese", "e2e-question");
  interrupt_wav =
      speech ("Wait, stop, I have another question", "e2e-interrupt");
  tcase_set_timeout (tc, 600);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_conversation);
  tcase_add_test (tc, test_barge_in_data_channel);
  tcase_add_test (tc, test_barge_in_voice);
  tcase_add_test (tc, test_sequential_calls_release_everything);
  tcase_add_test (tc, test_operator_log_json);
  return s;
}

GST_CHECK_MAIN (agent);

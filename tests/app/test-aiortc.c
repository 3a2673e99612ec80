/* A real WHIP call from aiortc (the WebRTC stack under Pipecat's
 * SmallWebRTC transport) to the real voiceagent binary with the echo test
 * template: tests/app/aiortc-caller.py does the call, this starts the
 * server and runs it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "emulator-process.h"

/* Debian's python3-aiortc is installed for the system interpreter, not for
 * whatever python3 comes first on PATH. */
#define PYTHON "/usr/bin/python3"

static EmuProcess *
start_server (const gchar *const *extra)
{
  gchar *pipelines = g_build_filename (
      g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests", "app", "pipelines", NULL);
  gchar *db = g_build_filename (g_get_tmp_dir (), "voiceagent-aiortc.db", NULL);
  GPtrArray *args = g_ptr_array_new ();
  EmuProcess *p;

  fail_unless (
      g_getenv ("VOICEAGENT_BIN") != NULL, "VOICEAGENT_BIN is not set");
  g_ptr_array_add (args, (gpointer) "--pipelines");
  g_ptr_array_add (args, pipelines);
  g_ptr_array_add (args, (gpointer) "--database");
  g_ptr_array_add (args, db);
  g_ptr_array_add (args, (gpointer) "--ice-timeout-ms");
  g_ptr_array_add (args, (gpointer) "1000");
  g_ptr_array_add (args, (gpointer) "--drain-timeout");
  g_ptr_array_add (args, (gpointer) "1");
  for (; extra && *extra; extra++)
    g_ptr_array_add (args, (gpointer)*extra);
  g_ptr_array_add (args, NULL);
  p = emu_process_start_program (
      g_getenv ("VOICEAGENT_BIN"), (const gchar *const *)args->pdata);
  g_ptr_array_free (args, TRUE);
  g_free (pipelines);
  g_free (db);
  fail_unless (p != NULL, "voiceagent did not start");
  return p;
}

/* Runs @argv, failing the test with its output unless it exits 0. */
static void
run_or_fail (const gchar *const *argv, const gchar *what)
{
  GError *error = NULL;
  gchar *out = NULL, *err = NULL;
  gint status = -1;

  if (!g_spawn_sync (NULL, (gchar **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
          &out, &err, &status, &error))
    fail ("cannot run %s: %s", argv[0], error->message);
  g_print ("%s%s", out ? out : "", err ? err : "");
  fail_unless (g_spawn_check_wait_status (status, NULL), "%s failed:\n%s%s",
      what, out ? out : "", err ? err : "");
  g_free (out);
  g_free (err);
}

static void
setup (void)
{
  const gchar *const check[] = { PYTHON, "-c", "import aiortc, av, numpy",
    NULL };
  GError *error = NULL;
  gchar *err = NULL;
  gint status = -1;

  /* The echo template uses no service: keys keep the emulator away. */
  g_setenv ("DEEPGRAM_API_KEY", "test-key-dg", TRUE);
  g_setenv ("ELEVENLABS_API_KEY", "test-key-el", TRUE);
  g_setenv ("LLM_API_KEY", "test-key-llm", TRUE);
  if (!g_spawn_sync (NULL, (gchar **)check, NULL, G_SPAWN_DEFAULT, NULL, NULL,
          NULL, &err, &status, &error) ||
      !g_spawn_check_wait_status (status, NULL))
    fail ("%s cannot import aiortc: install the Debian package "
          "python3-aiortc (apt-get install python3-aiortc)\n%s",
        PYTHON, error ? error->message : err);
  g_free (err);
}

static void
call (EmuProcess *server, const gchar *token, const gchar *video)
{
  gchar *script = g_build_filename (g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests",
      "app", "aiortc-caller.py", NULL);
  gchar *url = g_strdup_printf ("%s/whip", emu_process_get_http_url (server));
  const gchar *argv[9] = { PYTHON, script, url, NULL };
  guint n = 3;

  if (token) {
    argv[n++] = "--token";
    argv[n++] = token;
  }
  if (video) {
    argv[n++] = "--video";
    argv[n++] = video;
  }
  run_or_fail (argv, "the aiortc call");
  g_free (url);
  g_free (script);
}

/* aiortc's default offer: balanced bundle policy, an audio track and the
 * "events" data channel. Audio comes back, the call event arrives, DELETE
 * on the Location hangs up. */
GST_START_TEST (test_aiortc_call)
{
  EmuProcess *server = start_server (NULL);

  call (server, NULL, NULL);
  emu_process_stop (server);
}

GST_END_TEST;

/* With a bearer token, and with video the agent does not use: before the
 * audio (the offerer-tagged section, answered inactive) and after it
 * (rejected with port 0). */
GST_START_TEST (test_aiortc_token_and_video)
{
  const gchar *const args[] = { "--token", "s3cret", NULL };
  EmuProcess *server = start_server (args);

  call (server, "s3cret", "first");
  call (server, "s3cret", "last");
  emu_process_stop (server);
}

GST_END_TEST;

static Suite *
aiortc_suite (void)
{
  Suite *s = suite_create ("aiortc");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup, NULL);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_aiortc_call);
  tcase_add_test (tc, test_aiortc_token_and_video);
  return s;
}

GST_CHECK_MAIN (aiortc);

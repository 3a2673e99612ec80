/* End to end: the real voiceagent binary, every service on the local
 * emulator, records its calls in a real PostgreSQL the test starts on
 * 127.0.0.1, through a PostgreSQL restart, with a tiny queue bound, and
 * never shows the database password.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE /* memmem */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include "emulator-process.h"
#include "pg-server.h"
#include "whip-caller.h"

#define PASSWORD "Srv-pw-93d1c0aa"
#define REPLY_TIMEOUT_MS 30000
#define WAIT_US (60 * G_USEC_PER_SEC)

static EmuProcess *
start_server (const gchar *uri, const gchar *log)
{
  /* On the command line on purpose: the server must warn, scrub its argv
   * and still never print the password. */
  const gchar *args[] = { "--database", uri, "--emulator-args",
    "--quiet --stt-engine scripted --tts-engine tone", "--drain-timeout", "1",
    "--ice-timeout-ms", "1000", NULL };
  EmuProcess *p;

  g_unsetenv ("DEEPGRAM_API_KEY");
  g_unsetenv ("ELEVENLABS_API_KEY");
  g_unsetenv ("LLM_API_KEY");
  g_unsetenv ("OPENAI_API_KEY");
  g_unsetenv ("VOICEAGENT_DATABASE");
  g_unsetenv ("VOICEAGENT_DATABASE_URL");
  /* Two records at most wait while PostgreSQL is down. */
  g_setenv ("VOICEAGENT_RECORDS_QUEUE_MAX", "2", TRUE);
  p = emu_process_start_logged (g_getenv ("VOICEAGENT_BIN"), args, log);
  g_unsetenv ("VOICEAGENT_RECORDS_QUEUE_MAX");
  fail_unless (p != NULL, "voiceagent did not start");
  return p;
}

static WhipCaller *
call (EmuProcess *server)
{
  gchar *url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  WhipCallerOptions o = { .url = url, .data_channel = TRUE };
  WhipCaller *c = whip_caller_new (&o);
  gchar *m;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  m = whip_caller_wait_message (c, "\"type\":\"call\"", REPLY_TIMEOUT_MS);
  fail_unless (m != NULL, "no call event");
  g_free (m);
  g_free (url);
  return c;
}

/* The call's id: /calls/{id}?access_token=... */
static gchar *
call_id (WhipCaller *c)
{
  const gchar *url = whip_caller_get_session_url (c);
  const gchar *id = strstr (url, "/calls/");

  fail_unless (id != NULL, "%s", url);
  id += strlen ("/calls/");
  return g_strndup (id, strcspn (id, "/?"));
}

/* Places a call and hangs up; returns its id. */
static gchar *
short_call (EmuProcess *server)
{
  WhipCaller *c = call (server);
  gchar *id = call_id (c);

  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  return id;
}

/* The value of @name in the server's /metrics, or -1. */
static gdouble
metric (EmuProcess *server, const gchar *name, gchar **body_out)
{
  gchar *body = emu_process_request (server, "/metrics", NULL, NULL);
  gchar *needle = g_strconcat ("\n", name, " ", NULL);
  const gchar *at = body ? strstr (body, needle) : NULL;
  gdouble v = at ? g_ascii_strtod (at + strlen (needle), NULL) : -1;

  if (body_out)
    *body_out = body;
  else
    g_free (body);
  g_free (needle);
  return v;
}

#define WAIT_METRICS(server, cond)                                             \
  G_STMT_START                                                                 \
  {                                                                            \
    gint64 deadline_ = g_get_monotonic_time () + WAIT_US;                      \
    while (!(cond) && g_get_monotonic_time () < deadline_)                     \
      g_usleep (50000);                                                        \
    fail_unless (cond, "not so: " #cond);                                      \
  }                                                                            \
  G_STMT_END

#define QUEUED(s) metric (s, "voiceagent_records_queued", NULL)
#define WRITTEN(s) metric (s, "voiceagent_records_written_total", NULL)
#define RETRIED(s) metric (s, "voiceagent_records_retried_total", NULL)
#define DROPPED(s) metric (s, "voiceagent_records_dropped_total", NULL)
#define UP(s) metric (s, "voiceagent_records_database_up", NULL)

static guint
occurrences (const gchar *text, const gchar *needle)
{
  guint n = 0;

  for (const gchar *p = strstr (text, needle); p; p = strstr (p + 1, needle))
    n++;
  return n;
}

static gchar *
read_file (const gchar *path)
{
  gchar *text = NULL;

  g_file_get_contents (path, &text, NULL, NULL);
  return text ? text : g_strdup ("");
}

/* The column @column of call @id, or NULL when there is no such row. */
static gchar *
column (PGconn *conn, const gchar *column, const gchar *id)
{
  const gchar *const params[] = { id };
  gchar *sql = g_strdup_printf ("SELECT %s FROM calls WHERE id = $1", column);
  gchar *v = pg_server_query_value (conn, sql, 1, params);

  g_free (sql);
  return v;
}

static gint64
int_column (PGconn *conn, const gchar *name, const gchar *id)
{
  gchar *v = column (conn, name, id);
  gint64 n = v ? g_ascii_strtoll (v, NULL, 10) : -1;

  g_free (v);
  return n;
}

/* A conversation's record has every field filled from the call. */
static void
check_conversation_record (PGconn *conn, const gchar *id)
{
  gchar *v;
  gint64 started = int_column (conn, "started_us", id);
  gint64 ended = int_column (conn, "ended_us", id);

  v = column (conn, "agent", id);
  fail_unless_equals_string (v, "agent");
  g_free (v);
  v = column (conn, "end_reason", id);
  fail_unless_equals_string (v, "hangup");
  g_free (v);
  v = column (conn, "transcript", id);
  fail_unless (v && strstr (v, "a long story about the sea") &&
          strstr (v, "\"role\":\"agent\""),
      "transcript %s", v);
  g_free (v);
  v = column (conn, "turns", id);
  fail_unless (v && strstr (v, "\"turn\":1") && strstr (v, "voice_to_voice"),
      "turns %s", v);
  g_free (v);
  fail_unless (started > g_get_real_time () - 300 * G_USEC_PER_SEC &&
      started < ended && ended <= g_get_real_time ());
  fail_unless (int_column (conn, "tts_characters", id) > 0);
  fail_unless (int_column (conn, "llm_prompt_tokens", id) > 0);
  fail_unless (int_column (conn, "llm_completion_tokens", id) > 0);
  v = column (conn, "cost_usd", id);
  fail_unless (v && g_ascii_strtod (v, NULL) > 0, "cost %s", v);
  g_free (v);
}

/* A call, hung up, lands in PostgreSQL with its conversation; PostgreSQL
 * restarted meanwhile loses none of the records the bound keeps, the
 * bound drops the oldest, /metrics says so, and neither /metrics, the
 * log nor the command line show the password. */
GST_START_TEST (test_calls_recorded_in_postgresql)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  gchar *log = g_build_filename (g_get_tmp_dir (), "voiceagent.log", NULL);
  EmuProcess *server = start_server (pg->uri, log);
  GError *error = NULL;
  gchar *id[4], *text, *body, *cmdline, *path;
  WhipCaller *c;
  PGconn *conn;
  gint64 deadline;
  gsize size;


  /* 1: a conversation, typed so it needs no speech recognition. */
  c = call (server);
  id[0] = call_id (c);
  fail_unless (
      whip_caller_send_text (c, "Please tell me a long story about the sea."));
  text = whip_caller_wait_message (
      c, "\"type\":\"agent\",\"speaking\":false", REPLY_TIMEOUT_MS);
  fail_unless (text != NULL, "the agent did not finish its reply");
  g_free (text);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  conn = pg_server_connect (pg->server, pg->db);
  deadline = g_get_monotonic_time () + WAIT_US;
  while (int_column (conn, "started_us", id[0]) < 0 &&
      g_get_monotonic_time () < deadline)
    g_usleep (50000);
  check_conversation_record (conn, id[0]);
  PQfinish (conn);
  fail_unless_equals_int ((gint)WRITTEN (server), 1);

  /* 2-4 while PostgreSQL is down: the bound (2) drops the oldest. */
  pg_server_stop (pg->server, FALSE);
  for (guint i = 1; i < 4; i++)
    id[i] = short_call (server);
  WAIT_METRICS (server,
      QUEUED (server) == 2 && DROPPED (server) == 1 && RETRIED (server) >= 1 &&
          UP (server) == 0);
  fail_unless (
      pg_server_start (pg->server, &error), "%s", error ? error->message : "");
  WAIT_METRICS (server,
      WRITTEN (server) == 3 && QUEUED (server) == 0 && UP (server) == 1);
  conn = pg_server_connect (pg->server, pg->db);
  fail_unless_equals_int (int_column (conn, "count(*)", id[0]), 1);
  fail_unless (column (conn, "id", id[1]) == NULL, "call 2 was not dropped");
  for (guint i = 2; i < 4; i++) {
    gchar *agent = column (conn, "agent", id[i]);
    fail_unless_equals_string (agent, "agent");
    g_free (agent);
  }
  text = pg_server_query_value (conn, "SELECT count(*) FROM calls", 0, NULL);
  fail_unless_equals_string (text, "3");
  g_free (text);
  PQfinish (conn);

  metric (server, "voiceagent_records_queued", &body);
  fail_if (strstr (body, PASSWORD) != NULL, "the password is in /metrics");
  g_free (body);
  path = g_strdup_printf ("/proc/%u/cmdline", emu_process_get_pid (server));
  fail_unless (g_file_get_contents (path, &cmdline, &size, NULL));
  /* argv strings are NUL-separated: memmem over the whole. */
  fail_unless (memmem (cmdline, size, "postgresql://", 13) != NULL);
  fail_if (memmem (cmdline, size, PASSWORD, strlen (PASSWORD)) != NULL,
      "the password is in /proc/PID/cmdline");
  g_free (cmdline);
  g_free (path);
  emu_process_stop (server);

  text = read_file (log);
  fail_if (strstr (text, PASSWORD) != NULL, "the password is in the log");
  g_print ("the server's log:\n%s", text);
  fail_unless (strstr (text, "warning: --database has a password"), "%s", text);
  /* One line when it went down, one when it came back, not per retry. */
  fail_unless (occurrences (text, "database is unavailable") == 1 &&
          occurrences (text, "is back;") == 1,
      "%s", text);
  fail_unless (strstr (text, "dropped the 1 oldest"), "%s", text);
  fail_if (strstr (text, "were not written"), "%s", text);
  fail_if (strstr (text, "Sanitizer"), "%s", text);
  g_free (text);
  g_unlink (log);
  for (guint i = 0; i < 4; i++)
    g_free (id[i]);
  g_free (log);
  pg_test_db_free (pg);
}

GST_END_TEST;

static Suite *
records_server_suite (void)
{
  Suite *s = suite_create ("records-server");
  TCase *tc = tcase_create ("e2e");

  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_calls_recorded_in_postgresql);
  return s;
}

int
main (int argc, char **argv)
{
  /* First: every temporary file and server goes in there. */
  gchar *tmp_root = pg_server_tmpdir_new ();

  gst_check_init (&argc, &argv);
  return pg_server_run_suite (records_server_suite, tmp_root);
}

/* Call records (app/records*.c) against a real PostgreSQL the test starts
 * on 127.0.0.1, and against SQLite: every field lands, both backends give
 * the same `voiceagent calls` output, nothing is lost or doubled across a
 * PostgreSQL restart or crash, the queue's bound drops the oldest, and bad
 * settings say what to fix without showing the password.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <sqlite3.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include "pg-server.h"
#include "records.h"

/* records.c logs here (main.c defines it in the server). */
GST_DEBUG_CATEGORY (voiceagent_debug);

#define PASSWORD "Tst-pw-4e8c2f91"
#define WAIT_US (60 * G_USEC_PER_SEC)

/* ---- Helpers ---- */

/* Record @i: every field set, text that SQL quoting would trip on. */
static VaCallRecord *
make_record (guint i)
{
  VaCallRecord *r = g_new0 (VaCallRecord, 1);

  r->id = g_strdup_printf ("%016x", 0xa0000 + i);
  r->agent = g_strdup (i % 2 ? "agent" : "support");
  /* Pairs share a start time: the list's order must not depend on the
   * backend there either. */
  r->started_us = 1780000000000000 + (gint64)(i / 2) * 61 * G_USEC_PER_SEC;
  r->ended_us = r->started_us + 12345678 + i;
  r->end_reason = g_strdup (i % 3 ? "hangup" : "ice-failed");
  r->transcript_json = g_strdup_printf (
      "[{\"role\":\"user\",\"text\":\"O'Brien said \\\"hi\\\"; DROP TABLE "
      "calls; -- \\\\ ça ✓ %u\",\"t\":1.5,\"turn\":1}]",
      i);
  r->turns_json =
      i == 3 ? NULL : g_strdup_printf ("[{\"turn\":1,\"stt_ms\":%u}]", i);
  r->usage.stt_seconds = 12.25 + i / 3.0;
  r->usage.tts_characters = 345 + i;
  r->usage.llm_prompt_tokens = G_GUINT64_CONSTANT (1) << 40 | i;
  r->usage.llm_completion_tokens = 56 + i;
  r->cost_usd = 0.1234567890123 + i * 1e-7;
  if (i % 2) {
    r->recording = g_strdup_printf ("/var/rec/O'Brien/%s.opus", r->id);
    r->recording_bytes = 600000 + i;
    r->recording_seconds = 100.5 + i;
    r->recording_dropped = i;
  }
  return r;
}

static VaRecords *
open_records (const gchar *database, guint max_queued, guint flush_ms)
{
  VaRecordsOptions o = { .max_queued = max_queued,
    .flush_timeout_ms = flush_ms };
  GError *error = NULL;
  VaRecords *records = va_records_open_full (database, &o, &error);

  fail_unless (
      records != NULL, "va_records_open: %s", error ? error->message : "?");
  return records;
}

static VaRecordsMetrics
stats (VaRecords *records)
{
  VaRecordsMetrics m;

  va_records_get_stats (records, &m);
  return m;
}

/* Waits until @cond (over `m`, the records' stats) holds. */
#define WAIT_STATS(records, cond)                                              \
  G_STMT_START                                                                 \
  {                                                                            \
    gint64 deadline_ = g_get_monotonic_time () + WAIT_US;                      \
    VaRecordsMetrics m = stats (records);                                      \
    while (!(cond) && g_get_monotonic_time () < deadline_) {                   \
      g_usleep (10000);                                                        \
      m = stats (records);                                                     \
    }                                                                          \
    fail_unless (cond,                                                         \
        "not so: " #cond " (queued %" G_GUINT64_FORMAT                         \
        ", written %" G_GUINT64_FORMAT ", retried %" G_GUINT64_FORMAT          \
        ", dropped %" G_GUINT64_FORMAT ", up %d)",                             \
        m.queued, m.written, m.retried, m.dropped, m.database_up);             \
  }                                                                            \
  G_STMT_END

static gchar *
query (PGconn *conn, const gchar *sql)
{
  return pg_server_query_value (conn, sql, 0, NULL);
}

static gint64
count_rows (PgTestDb *pg)
{
  PGconn *conn = pg_server_connect (pg->server, pg->db);
  gchar *n = query (conn, "SELECT count(*) FROM calls");
  gchar *distinct = query (conn, "SELECT count(DISTINCT id) FROM calls");
  gint64 rows;

  fail_unless (n != NULL);
  fail_unless_equals_string (n, distinct);
  rows = g_ascii_strtoll (n, NULL, 10);
  g_free (n);
  g_free (distinct);
  PQfinish (conn);
  return rows;
}

static gchar *
number (gint64 v)
{
  return g_strdup_printf ("%" G_GINT64_FORMAT, v);
}

/* The row of @r in PostgreSQL has every field of @r. */
static void
check_row (PGconn *conn, const VaCallRecord *r)
{
  const gchar *const params[] = { r->id };
  PGresult *res = PQexecParams (conn,
      "SELECT id, agent, started_us, ended_us, end_reason, transcript, "
      "turns, stt_seconds, tts_characters, llm_prompt_tokens, "
      "llm_completion_tokens, cost_usd FROM calls WHERE id = $1",
      1, NULL, params, NULL, NULL, 0);
  gchar *started = number (r->started_us), *ended = number (r->ended_us);

  fail_unless_equals_int (PQresultStatus (res), PGRES_TUPLES_OK);
  fail_unless_equals_int (PQntuples (res), 1);
  fail_unless_equals_string (PQgetvalue (res, 0, 0), r->id);
  fail_unless_equals_string (PQgetvalue (res, 0, 1), r->agent);
  fail_unless_equals_string (PQgetvalue (res, 0, 2), started);
  fail_unless_equals_string (PQgetvalue (res, 0, 3), ended);
  fail_unless_equals_string (PQgetvalue (res, 0, 4), r->end_reason);
  fail_unless_equals_string (PQgetvalue (res, 0, 5), r->transcript_json);
  fail_unless_equals_string (
      PQgetvalue (res, 0, 6), r->turns_json ? r->turns_json : "[]");
  fail_unless (
      g_ascii_strtod (PQgetvalue (res, 0, 7), NULL) == r->usage.stt_seconds);
  fail_unless_equals_uint64 (
      g_ascii_strtoull (PQgetvalue (res, 0, 8), NULL, 10),
      r->usage.tts_characters);
  fail_unless_equals_uint64 (
      g_ascii_strtoull (PQgetvalue (res, 0, 9), NULL, 10),
      r->usage.llm_prompt_tokens);
  fail_unless_equals_uint64 (
      g_ascii_strtoull (PQgetvalue (res, 0, 10), NULL, 10),
      r->usage.llm_completion_tokens);
  fail_unless (g_ascii_strtod (PQgetvalue (res, 0, 11), NULL) == r->cost_usd,
      "cost %s", PQgetvalue (res, 0, 11));
  PQclear (res);
  g_free (started);
  g_free (ended);
}

typedef struct
{
  gint status;
  gchar *out;
  gchar *err;
} Run;

static void
run_clear (Run *run)
{
  g_free (run->out);
  g_free (run->err);
}

/* Runs the voiceagent binary with @args, @env_database (or none) as
 * VOICEAGENT_DATABASE_URL. */
static Run
run_voiceagent (const gchar *const *args, const gchar *env_database)
{
  GPtrArray *argv = g_ptr_array_new ();
  gchar **env = g_get_environ ();
  GError *error = NULL;
  Run run = { 0 };

  g_ptr_array_add (argv, (gpointer)g_getenv ("VOICEAGENT_BIN"));
  for (; *args; args++)
    g_ptr_array_add (argv, (gpointer)*args);
  g_ptr_array_add (argv, NULL);
  env = g_environ_unsetenv (env, "VOICEAGENT_DATABASE");
  if (env_database)
    env = g_environ_setenv (env, "VOICEAGENT_DATABASE_URL", env_database, TRUE);
  else
    env = g_environ_unsetenv (env, "VOICEAGENT_DATABASE_URL");
  fail_unless (g_spawn_sync (NULL, (gchar **)argv->pdata, env, G_SPAWN_DEFAULT,
                   NULL, NULL, &run.out, &run.err, &run.status, &error),
      "cannot run voiceagent: %s", error ? error->message : "?");
  run.status = WIFEXITED (run.status) ? WEXITSTATUS (run.status) : -1;
  g_ptr_array_unref (argv);
  g_strfreev (env);
  return run;
}

static void
write_records (VaRecords *records, guint first, guint n)
{
  for (guint i = first; i < first + n; i++)
    va_records_write (records, make_record (i));
}

/* ---- Tests ---- */

/* Every field of every record lands in PostgreSQL as written, quotes and
 * all, with the schema version recorded. */
GST_START_TEST (test_pg_fields)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records = open_records (pg->uri, 0, 0);
  PGconn *conn;
  gchar *version;

  write_records (records, 0, 6);
  WAIT_STATS (records, m.written == 6 && m.queued == 0 && m.database_up);
  fail_unless_equals_int (va_records_close (records), 0);
  conn = pg_server_connect (pg->server, pg->db);
  for (guint i = 0; i < 6; i++) {
    VaCallRecord *r = make_record (i);
    check_row (conn, r);
    va_call_record_free (r);
  }
  version = query (conn, "SELECT max(version) FROM voiceagent_schema");
  fail_unless_equals_string (version, "2");
  g_free (version);
  PQfinish (conn);
  /* Opening again finds the schema there: nothing is created twice. */
  records = open_records (pg->uri, 0, 0);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless_equals_int (count_rows (pg), 6);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* `voiceagent calls list` and `calls show ID` print the same for the same
 * records in SQLite and in PostgreSQL, and fail alike for a missing id. */
GST_START_TEST (test_same_output)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  gchar *file = g_build_filename (g_get_tmp_dir (), "same.db", NULL);
  const gchar *list_file[] = { "--database", file, "calls", "list", NULL };
  const gchar *list_env[] = { "calls", "list", NULL };
  VaRecords *sqlite = open_records (file, 0, 0);
  VaRecords *postgres = open_records (pg->uri, 0, 0);
  Run a, b;

  write_records (sqlite, 0, 8);
  write_records (postgres, 0, 8);
  fail_unless_equals_int (va_records_close (sqlite), 0);
  fail_unless_equals_int (va_records_close (postgres), 0);

  a = run_voiceagent (list_file, NULL);
  b = run_voiceagent (list_env, pg->uri);
  fail_unless_equals_int (a.status, 0);
  fail_unless_equals_int (b.status, 0);
  fail_unless (strstr (a.out, "0000000000a0007") != NULL, "%s", a.out);
  fail_unless_equals_string (b.out, a.out);
  fail_unless_equals_string (a.err, "");
  fail_unless_equals_string (b.err, "");
  run_clear (&a);
  run_clear (&b);
  for (guint i = 0; i <= 8; i++) {
    /* 8 was never written. */
    gchar *id = g_strdup_printf ("%016x", 0xa0000 + i);
    const gchar *show_file[] = { "--database", file, "calls", "show", id,
      NULL };
    const gchar *show_env[] = { "calls", "show", id, NULL };
    a = run_voiceagent (show_file, NULL);
    b = run_voiceagent (show_env, pg->uri);
    fail_unless_equals_int (a.status, i < 8 ? 0 : 1);
    fail_unless_equals_int (b.status, a.status);
    fail_unless_equals_string (b.out, a.out);
    fail_unless_equals_string (b.err, a.err);
    if (i < 8)
      fail_unless (strstr (a.out, "DROP TABLE calls") != NULL, "%s", a.out);
    run_clear (&a);
    run_clear (&b);
    g_free (id);
  }
  g_unlink (file);
  g_free (file);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* PostgreSQL stopped while records are written: they wait (retried, not
 * lost); started again on the same data and port, every record arrives
 * exactly once. */
GST_START_TEST (test_restart_loses_nothing)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records = open_records (pg->uri, 0, 0);
  GError *error = NULL;
  gint64 t0;

  write_records (records, 0, 50);
  WAIT_STATS (records, m.written == 50);
  pg_server_stop (pg->server, FALSE);
  write_records (records, 50, 300);
  WAIT_STATS (records, m.retried >= 3 && !m.database_up);
  {
    VaRecordsMetrics m = stats (records);
    fail_unless_equals_uint64 (m.written, 50);
    fail_unless_equals_uint64 (m.queued, 300);
    fail_unless_equals_uint64 (m.dropped, 0);
  }
  fail_unless (
      pg_server_start (pg->server, &error), "%s", error ? error->message : "");
  t0 = g_get_monotonic_time ();
  WAIT_STATS (records, m.written == 350 && m.queued == 0 && m.database_up);
  g_print ("300 records written %.2f s after PostgreSQL was back\n",
      (g_get_monotonic_time () - t0) / 1e6);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless_equals_int (count_rows (pg), 350);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* PostgreSQL crashes (immediate shutdown) in the middle of a stream of
 * writes, so some transaction's outcome is unknown to the writer: after
 * recovery every record is there exactly once. */
GST_START_TEST (test_crash_mid_write)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records = open_records (pg->uri, 0, 0);
  GError *error = NULL;
  const guint n = 3000;
  gint64 t0 = g_get_monotonic_time ();
  gdouble rate;

  write_records (records, 0, n);
  WAIT_STATS (records, m.written >= 200);
  pg_server_stop (pg->server, TRUE);
  fail_unless (stats (records).written < n, "all written before the crash");
  fail_unless (
      pg_server_start (pg->server, &error), "%s", error ? error->message : "");
  WAIT_STATS (records, m.written == n && m.queued == 0);
  rate = n / ((g_get_monotonic_time () - t0) / 1e6);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless_equals_int (count_rows (pg), n);
  g_print (
      "%u records through a crash and recovery: %.0f records/s\n", n, rate);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* A record already stored (a retry after a COMMIT whose answer was lost)
 * is not stored again nor changed. */
GST_START_TEST (test_retry_does_not_duplicate)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records = open_records (pg->uri, 0, 0);
  VaCallRecord *again = make_record (1);
  PGconn *conn;
  gchar *agent;

  write_records (records, 1, 1);
  WAIT_STATS (records, m.written == 1);
  g_free (again->agent);
  again->agent = g_strdup ("second");
  va_records_write (records, again);
  WAIT_STATS (records, m.written == 2 && m.queued == 0);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless_equals_int (count_rows (pg), 1);
  conn = pg_server_connect (pg->server, pg->db);
  agent = query (conn, "SELECT agent FROM calls");
  fail_unless_equals_string (agent, "agent");
  g_free (agent);
  PQfinish (conn);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* While PostgreSQL is down the queue holds at most its bound: the oldest
 * records are dropped and counted, and the newest are written once it is
 * back. */
GST_START_TEST (test_bound_drops_oldest)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records;
  GError *error = NULL;
  PGconn *conn;
  gchar *ids;

  pg_server_stop (pg->server, FALSE);
  /* Down at start: the server still starts, records wait. */
  records = open_records (pg->uri, 5, 0);
  fail_unless (!stats (records).database_up);
  write_records (records, 0, 12);
  WAIT_STATS (records, m.dropped == 7 && m.queued == 5 && m.retried >= 1);
  fail_unless (
      pg_server_start (pg->server, &error), "%s", error ? error->message : "");
  WAIT_STATS (records, m.written == 5 && m.queued == 0);
  fail_unless_equals_int (va_records_close (records), 0);
  conn = pg_server_connect (pg->server, pg->db);
  ids = query (conn, "SELECT string_agg(id, ',' ORDER BY id) FROM calls");
  fail_unless_equals_string (ids,
      "00000000000a0007,00000000000a0008,00000000000a0009,"
      "00000000000a000a,00000000000a000b");
  g_free (ids);
  PQfinish (conn);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* Closing while PostgreSQL is down waits no longer than the flush timeout
 * and says how many records were not written. */
GST_START_TEST (test_close_counts_unwritten)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  VaRecords *records = open_records (pg->uri, 0, 500);
  gint64 t0;

  pg_server_stop (pg->server, FALSE);
  write_records (records, 0, 3);
  WAIT_STATS (records, m.retried >= 1);
  t0 = g_get_monotonic_time ();
  fail_unless_equals_int (va_records_close (records), 3);
  /* The timeout, and at most one connection attempt in progress. */
  fail_unless (g_get_monotonic_time () - t0 < 7 * G_USEC_PER_SEC);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* The password may come from PGPASSWORD or a password file instead of the
 * URI; with none, opening fails naming the fix. */
GST_START_TEST (test_password_sources)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  gchar *bare = pg_server_uri (pg->server, pg->db, FALSE);
  gchar *pgpass = g_build_filename (g_get_tmp_dir (), "pgpass", NULL);
  gchar *line = g_strdup_printf ("127.0.0.1:%u:%s:%s:%s\n",
      pg_server_get_port (pg->server), pg->db, PG_SERVER_USER, PASSWORD);
  GError *error = NULL;
  VaRecords *records;

  g_setenv ("PGPASSFILE", "/nonexistent", TRUE);
  g_unsetenv ("PGPASSWORD");
  records = va_records_open (bare, &error);
  fail_unless (records == NULL);
  fail_unless (strstr (error->message, "asks for a password") &&
          strstr (error->message, "PGPASSWORD") &&
          strstr (error->message, "VOICEAGENT_DATABASE_URL"),
      "%s", error->message);
  g_clear_error (&error);

  g_setenv ("PGPASSWORD", PASSWORD, TRUE);
  records = open_records (bare, 0, 0);
  write_records (records, 0, 1);
  fail_unless_equals_int (va_records_close (records), 0);
  g_unsetenv ("PGPASSWORD");

  fail_unless (g_file_set_contents (pgpass, line, -1, NULL));
  g_chmod (pgpass, 0600);
  g_setenv ("PGPASSFILE", pgpass, TRUE);
  records = open_records (bare, 0, 0);
  write_records (records, 1, 1);
  fail_unless_equals_int (va_records_close (records), 0);
  g_unsetenv ("PGPASSFILE");
  fail_unless_equals_int (count_rows (pg), 2);
  g_free (line);
  g_free (pgpass);
  g_free (bare);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* A URI libpq cannot parse, or a wrong password, fails with what is wrong
 * and how to fix it, and never with the password. */
GST_START_TEST (test_bad_uri)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  gchar *wrong = g_strdup_printf ("postgresql://" PG_SERVER_USER
                                  ":Wrong-pw-77a1@127.0.0.1:%u/postgres",
      pg_server_get_port (pg->server));
  const struct
  {
    const gchar *uri;
    const gchar *secret;
    const gchar *says;
  } cases[] = {
    { "postgresql://u:Sec-1a2b3c@127.0.0.1:notaport/db", "Sec-1a2b3c", "port" },
    { "postgresql://u:Sec%zz2b3c@127.0.0.1/db", "Sec%zz2b3c", "percent" },
    { "postgres://u@127.0.0.1/db?password=Sec-q9q9q9&nosuch=1", "Sec-q9q9q9",
        "nosuch" },
  };
  GError *error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const gchar *args[] = { "--database", cases[i].uri, "calls", "list", NULL };
    Run run;
    fail_unless (va_records_open (cases[i].uri, &error) == NULL);
    fail_unless (strstr (error->message, "not a valid PostgreSQL URI") &&
            strstr (error->message, cases[i].says) &&
            strstr (error->message, "postgresql://[user[:password]@]host"),
        "%s", error->message);
    fail_if (strstr (error->message, cases[i].secret), "%s", error->message);
    g_clear_error (&error);
    /* The command says the same, and its argv warning no password. */
    run = run_voiceagent (args, NULL);
    fail_unless_equals_int (run.status, 1);
    fail_unless (strstr (run.err, "not a valid PostgreSQL URI"), "%s", run.err);
    fail_unless (
        strstr (run.err, "warning: --database has a password"), "%s", run.err);
    fail_if (strstr (run.err, cases[i].secret), "%s", run.err);
    run_clear (&run);
  }
  {
    /* The server itself does not start with it. Keys are set so that it
     * starts no emulator first. */
    const gchar *args[] = { "--port", "0", "--database", cases[0].uri, NULL };
    Run run;
    g_setenv ("DEEPGRAM_API_KEY", "test-key-dg", TRUE);
    g_setenv ("ELEVENLABS_API_KEY", "test-key-el", TRUE);
    g_setenv ("LLM_API_KEY", "test-key-llm", TRUE);
    run = run_voiceagent (args, NULL);
    fail_unless_equals_int (run.status, 1);
    fail_unless (strstr (run.err, "not a valid PostgreSQL URI") &&
            strstr (run.err, "port"),
        "%s", run.err);
    fail_if (strstr (run.err, cases[0].secret), "%s", run.err);
    run_clear (&run);
  }
  {
    const gchar *args[] = { "calls", "list", NULL };
    Run run = run_voiceagent (args, wrong);
    fail_unless_equals_int (run.status, 1);
    fail_unless (strstr (run.err, "password authentication failed") &&
            strstr (run.err, "127.0.0.1"),
        "%s", run.err);
    fail_if (strstr (run.err, "Wrong-pw-77a1"), "%s", run.err);
    run_clear (&run);
  }
  g_free (wrong);
  pg_test_db_free (pg);
}

GST_END_TEST;

/* SQLite keeps working as before, through the same writer. */
GST_START_TEST (test_sqlite)
{
  gchar *file = g_build_filename (g_get_tmp_dir (), "plain.db", NULL);
  gchar *missing = g_build_filename (g_get_tmp_dir (), "no", "such.db", NULL);
  VaRecords *records = open_records (file, 0, 0);
  GError *error = NULL;

  write_records (records, 0, 100);
  WAIT_STATS (records, m.written == 100 && m.queued == 0 && m.database_up);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless (va_records_open (missing, &error) == NULL);
  fail_unless (strstr (error->message, "set --database"), "%s", error->message);
  g_clear_error (&error);
  g_unlink (file);
  g_free (file);
  g_free (missing);
}

GST_END_TEST;

/* A database made by schema version 1 (no recording columns) is migrated
 * when the server opens it: its rows stay, new ones have recordings. */
GST_START_TEST (test_sqlite_migrates_v1)
{
  gchar *file = g_build_filename (g_get_tmp_dir (), "v1.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  VaRecords *records;

  g_unlink (file);
  fail_unless (sqlite3_open (file, &db) == SQLITE_OK);
  fail_unless (sqlite3_exec (db,
                   "CREATE TABLE calls (id TEXT PRIMARY KEY, agent TEXT, "
                   "started_us INTEGER, ended_us INTEGER, end_reason TEXT, "
                   "transcript TEXT, turns TEXT, stt_seconds REAL, "
                   "tts_characters INTEGER, llm_prompt_tokens INTEGER, "
                   "llm_completion_tokens INTEGER, cost_usd REAL);"
                   "CREATE TABLE voiceagent_schema (version INTEGER PRIMARY "
                   "KEY); INSERT INTO voiceagent_schema VALUES (1);"
                   "INSERT INTO calls (id) VALUES ('old');",
                   NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close (db);
  records = open_records (file, 0, 0);
  write_records (records, 1, 1);
  WAIT_STATS (records, m.written == 1 && m.queued == 0);
  fail_unless_equals_int (va_records_close (records), 0);
  fail_unless (sqlite3_open (file, &db) == SQLITE_OK);
  fail_unless (sqlite3_prepare_v2 (db,
                   "SELECT (SELECT max(version) FROM voiceagent_schema), "
                   "count(*), max(recording_bytes) FROM calls",
                   -1, &st, NULL) == SQLITE_OK);
  fail_unless (sqlite3_step (st) == SQLITE_ROW);
  fail_unless_equals_int (sqlite3_column_int (st, 0), 2);
  fail_unless_equals_int (sqlite3_column_int (st, 1), 2);
  fail_unless_equals_int (sqlite3_column_int (st, 2), 600001);
  sqlite3_finalize (st);
  sqlite3_close (db);
  g_unlink (file);
  g_free (file);
}

GST_END_TEST;

/* How fast the writer empties a full queue into each backend (printed,
 * not judged: timing is the benchmarks' business). */
GST_START_TEST (test_throughput)
{
  PgTestDb *pg = pg_test_db_new (PASSWORD);
  gchar *file = g_build_filename (g_get_tmp_dir (), "rate.db", NULL);
  const gchar *targets[] = { pg->uri, file };
  const guint n = 5000;

  for (guint t = 0; t < G_N_ELEMENTS (targets); t++) {
    VaRecords *records = open_records (targets[t], 0, 0);
    gint64 t0 = g_get_monotonic_time ();
    write_records (records, 0, n);
    WAIT_STATS (records, m.written == n);
    g_print ("%s: %u records in %.2f s, %.0f records/s\n",
        t == 0 ? "PostgreSQL" : "SQLite", n,
        (g_get_monotonic_time () - t0) / 1e6,
        n / ((g_get_monotonic_time () - t0) / 1e6));
    fail_unless_equals_int (va_records_close (records), 0);
  }
  fail_unless_equals_int (count_rows (pg), n);
  g_unlink (file);
  g_free (file);
  pg_test_db_free (pg);
}

GST_END_TEST;

static Suite *
records_suite (void)
{
  Suite *s = suite_create ("records");
  TCase *tc = tcase_create ("postgresql");

  tcase_set_timeout (tc, 180);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_pg_fields);
  tcase_add_test (tc, test_same_output);
  tcase_add_test (tc, test_restart_loses_nothing);
  tcase_add_test (tc, test_crash_mid_write);
  tcase_add_test (tc, test_retry_does_not_duplicate);
  tcase_add_test (tc, test_bound_drops_oldest);
  tcase_add_test (tc, test_close_counts_unwritten);
  tcase_add_test (tc, test_password_sources);
  tcase_add_test (tc, test_bad_uri);
  tcase_add_test (tc, test_sqlite);
  tcase_add_test (tc, test_sqlite_migrates_v1);
  tcase_add_test (tc, test_throughput);
  return s;
}

int
main (int argc, char **argv)
{
  /* First: every temporary file and server goes in there. */
  gchar *tmp_root = pg_server_tmpdir_new ();

  gst_check_init (&argc, &argv);
  GST_DEBUG_CATEGORY_INIT (voiceagent_debug, "voiceagent", 0, "records");
  return pg_server_run_suite (records_suite, tmp_root);
}

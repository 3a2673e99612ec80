/* voiceagent: call records in SQLite, written off the media threads.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One writer thread owns the database connection; the main context only
 * queues finished records, so a slow disk never delays a call.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <sqlite3.h>
#include "records.h"

static const gchar schema[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS calls ("
    " id TEXT PRIMARY KEY, agent TEXT, started_us INTEGER, ended_us INTEGER,"
    " end_reason TEXT, transcript TEXT, turns TEXT, stt_seconds REAL,"
    " tts_characters INTEGER, llm_prompt_tokens INTEGER,"
    " llm_completion_tokens INTEGER, cost_usd REAL);"
    "CREATE INDEX IF NOT EXISTS calls_started ON calls(started_us);";

struct _VaRecords
{
  sqlite3 *db; /* writer thread only, after open */
  GAsyncQueue *queue; /* of VaCallRecord*; NULL-less, see STOP */
  GThread *thread;
};

/* Sentinel telling the writer to stop. */
static VaCallRecord stop_marker;

void
va_call_record_free (VaCallRecord *r)
{
  if (r == NULL || r == &stop_marker)
    return;
  g_free (r->id);
  g_free (r->agent);
  g_free (r->end_reason);
  g_free (r->transcript_json);
  g_free (r->turns_json);
  g_free (r);
}

static void
insert (sqlite3 *db, const VaCallRecord *r)
{
  sqlite3_stmt *st = NULL;

  if (sqlite3_prepare_v2 (db,
          "INSERT OR REPLACE INTO calls VALUES "
          "(?,?,?,?,?,?,?,?,?,?,?,?)",
          -1, &st, NULL) != SQLITE_OK) {
    g_warning ("call records: %s", sqlite3_errmsg (db));
    return;
  }
  sqlite3_bind_text (st, 1, r->id, -1, SQLITE_STATIC);
  sqlite3_bind_text (st, 2, r->agent, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 3, r->started_us);
  sqlite3_bind_int64 (st, 4, r->ended_us);
  sqlite3_bind_text (st, 5, r->end_reason, -1, SQLITE_STATIC);
  sqlite3_bind_text (
      st, 6, r->transcript_json ? r->transcript_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_text (
      st, 7, r->turns_json ? r->turns_json : "[]", -1, SQLITE_STATIC);
  sqlite3_bind_double (st, 8, r->usage.stt_seconds);
  sqlite3_bind_int64 (st, 9, (sqlite3_int64)r->usage.tts_characters);
  sqlite3_bind_int64 (st, 10, (sqlite3_int64)r->usage.llm_prompt_tokens);
  sqlite3_bind_int64 (st, 11, (sqlite3_int64)r->usage.llm_completion_tokens);
  sqlite3_bind_double (st, 12, r->cost_usd);
  if (sqlite3_step (st) != SQLITE_DONE)
    g_warning (
        "call records: cannot write call %s: %s", r->id, sqlite3_errmsg (db));
  sqlite3_finalize (st);
}

static gpointer
writer_main (gpointer data)
{
  VaRecords *records = data;
  VaCallRecord *r;

  while ((r = g_async_queue_pop (records->queue)) != &stop_marker) {
    insert (records->db, r);
    va_call_record_free (r);
  }
  return NULL;
}

static sqlite3 *
open_db (const gchar *path, gboolean create, GError **error)
{
  sqlite3 *db = NULL;
  gint flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  gchar *err = NULL;

  if (sqlite3_open_v2 (path, &db, flags, NULL) != SQLITE_OK) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
        "cannot open the call database %s: %s (set --database)", path,
        db ? sqlite3_errmsg (db) : "out of memory");
    sqlite3_close (db);
    return NULL;
  }
  sqlite3_busy_timeout (db, 5000);
  if (create && sqlite3_exec (db, schema, NULL, NULL, &err) != SQLITE_OK) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
        "cannot set up the call database %s: %s", path, err);
    sqlite3_free (err);
    sqlite3_close (db);
    return NULL;
  }
  return db;
}

VaRecords *
va_records_open (const gchar *path, GError **error)
{
  sqlite3 *db = open_db (path, TRUE, error);
  VaRecords *records;

  if (db == NULL)
    return NULL;
  records = g_new0 (VaRecords, 1);
  records->db = db;
  records->queue = g_async_queue_new ();
  records->thread = g_thread_new ("va-records", writer_main, records);
  return records;
}

void
va_records_write (VaRecords *records, VaCallRecord *record)
{
  g_async_queue_push (records->queue, record);
}

void
va_records_close (VaRecords *records)
{
  if (records == NULL)
    return;
  g_async_queue_push (records->queue, &stop_marker);
  g_thread_join (records->thread);
  g_async_queue_unref (records->queue);
  sqlite3_close (records->db);
  g_free (records);
}

/* ---- The command-line reader ---- */

static gchar *
format_time (gint64 us)
{
  GDateTime *t = g_date_time_new_from_unix_local (us / G_USEC_PER_SEC);
  gchar *s = g_date_time_format (t, "%Y-%m-%d %H:%M:%S");

  g_date_time_unref (t);
  return s;
}

static int
list_calls (sqlite3 *db)
{
  sqlite3_stmt *st;

  sqlite3_prepare_v2 (db,
      "SELECT id, agent, started_us, ended_us, "
      "end_reason, cost_usd FROM calls ORDER BY started_us DESC LIMIT 50",
      -1, &st, NULL);
  printf ("%-16s  %-10s  %-19s  %8s  %-12s  %10s\n", "ID", "AGENT", "STARTED",
      "SECONDS", "END", "COST USD");
  while (sqlite3_step (st) == SQLITE_ROW) {
    gchar *started = format_time (sqlite3_column_int64 (st, 2));
    printf ("%-16s  %-10s  %-19s  %8.1f  %-12s  %10.5f\n",
        sqlite3_column_text (st, 0), sqlite3_column_text (st, 1), started,
        (sqlite3_column_int64 (st, 3) - sqlite3_column_int64 (st, 2)) / 1e6,
        sqlite3_column_text (st, 4), sqlite3_column_double (st, 5));
    g_free (started);
  }
  sqlite3_finalize (st);
  return 0;
}

static int
show_call (sqlite3 *db, const gchar *id)
{
  sqlite3_stmt *st;
  int status = 0;

  sqlite3_prepare_v2 (db,
      "SELECT id, agent, started_us, ended_us, "
      "end_reason, transcript, turns, stt_seconds, tts_characters, "
      "llm_prompt_tokens, llm_completion_tokens, cost_usd FROM calls "
      "WHERE id = ?",
      -1, &st, NULL);
  sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step (st) == SQLITE_ROW) {
    gchar *started = format_time (sqlite3_column_int64 (st, 2));
    printf (
        "call:        %s\nagent:       %s\nstarted:     %s\n"
        "duration:    %.1f s\nended:       %s\ntranscript:  %s\n"
        "turns:       %s\nusage:       stt %.1f s, tts %lld chars, llm %lld "
        "prompt + %lld completion tokens\ncost:        $%.5f\n",
        sqlite3_column_text (st, 0), sqlite3_column_text (st, 1), started,
        (sqlite3_column_int64 (st, 3) - sqlite3_column_int64 (st, 2)) / 1e6,
        sqlite3_column_text (st, 4), sqlite3_column_text (st, 5),
        sqlite3_column_text (st, 6), sqlite3_column_double (st, 7),
        (long long)sqlite3_column_int64 (st, 8),
        (long long)sqlite3_column_int64 (st, 9),
        (long long)sqlite3_column_int64 (st, 10),
        sqlite3_column_double (st, 11));
    g_free (started);
  } else {
    fprintf (stderr, "voiceagent: no call %s in the database\n", id);
    status = 1;
  }
  sqlite3_finalize (st);
  return status;
}

int
va_records_command (const VaConfig *config, int argc, char **argv)
{
  GError *error = NULL;
  sqlite3 *db;
  int status;

  if (argc < 2 ||
      (!g_str_equal (argv[1], "list") &&
          !(g_str_equal (argv[1], "show") && argc == 3))) {
    fprintf (stderr,
        "usage: voiceagent [--database FILE] calls list\n"
        "       voiceagent [--database FILE] calls show ID\n");
    return 2;
  }
  db = open_db (config->database, FALSE, &error);
  if (db == NULL) {
    fprintf (stderr, "voiceagent: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  status =
      g_str_equal (argv[1], "list") ? list_calls (db) : show_call (db, argv[2]);
  sqlite3_close (db);
  return status;
}

/* voiceagent: the SQLite backend of the call records (records-backend.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One file per instance, in WAL mode so `voiceagent calls list` can read
 * while the server writes. Every value is bound to a prepared statement.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sqlite3.h>
#include "records-backend.h"

typedef struct
{
  VaRecordsDb parent;
  sqlite3 *db;
  gchar *path;
} SqliteDb;

/* Version 1. The version table holds one row per version applied. */
static const gchar schema[] =
    "CREATE TABLE IF NOT EXISTS calls ("
    " id TEXT PRIMARY KEY, agent TEXT, started_us INTEGER, ended_us INTEGER,"
    " end_reason TEXT, transcript TEXT, turns TEXT, stt_seconds REAL,"
    " tts_characters INTEGER, llm_prompt_tokens INTEGER,"
    " llm_completion_tokens INTEGER, cost_usd REAL);"
    "CREATE INDEX IF NOT EXISTS calls_started ON calls(started_us);"
    "CREATE TABLE IF NOT EXISTS voiceagent_schema ("
    " version INTEGER PRIMARY KEY);"
    "INSERT OR IGNORE INTO voiceagent_schema VALUES (1);";

/* Version 1 to 2: recordings. A database made by version 1 gets them
 * too, in the transaction that checks its version. */
static const gchar migrate_2[] =
    "ALTER TABLE calls ADD COLUMN recording TEXT;"
    "ALTER TABLE calls ADD COLUMN recording_bytes INTEGER;"
    "ALTER TABLE calls ADD COLUMN recording_seconds REAL;"
    "ALTER TABLE calls ADD COLUMN recording_dropped INTEGER;"
    "INSERT OR IGNORE INTO voiceagent_schema VALUES (2);";

static const gchar insert_sql[] =
    "INSERT INTO calls (id, agent, started_us, ended_us, end_reason, "
    "transcript, turns, stt_seconds, tts_characters, llm_prompt_tokens, "
    "llm_completion_tokens, cost_usd, recording, recording_bytes, "
    "recording_seconds, recording_dropped) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (id) DO NOTHING";

static const gchar list_sql[] = "SELECT " VA_RECORDS_LIST_COLUMNS " FROM calls "
                                "ORDER BY started_us DESC, id DESC LIMIT 50";

static const gchar show_sql[] =
    "SELECT " VA_RECORDS_SHOW_COLUMNS " FROM calls WHERE id = ?";

G_STATIC_ASSERT (VA_RECORDS_LIST_LIMIT == 50);

/* What a failed call returned says about retrying: a busy, full or failing
 * disk may recover; a value the table refuses will be refused again. */
static VaRecordsError
classify (int rc)
{
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return VA_RECORDS_ERROR_REJECTED;
    default:
      return VA_RECORDS_ERROR_RETRY;
  }
}

static void
set_error (SqliteDb *s, int rc, const gchar *step, GError **error)
{
  g_set_error (error, VA_RECORDS_ERROR, classify (rc), "%s: %s: %s", s->path,
      step, sqlite3_errmsg (s->db));
}

static gchar *
sqlite_describe (const gchar *target, GError **error)
{
  return g_strdup (target);
}

static VaRecordsDb *
sqlite_open (const gchar *path, gboolean create, GError **error)
{
  SqliteDb *s;
  sqlite3 *db = NULL;
  gint flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);

  if (sqlite3_open_v2 (path, &db, flags, NULL) != SQLITE_OK) {
    g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
        "cannot open the call database %s: %s (set --database)", path,
        db ? sqlite3_errmsg (db) : "out of memory");
    sqlite3_close (db);
    return NULL;
  }
  sqlite3_busy_timeout (db, 5000);
  /* WAL: a reader (`calls list`) never blocks the writer. */
  sqlite3_exec (db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
  s = g_new0 (SqliteDb, 1);
  s->parent.backend = &va_records_sqlite;
  s->db = db;
  s->path = g_strdup (path);
  return &s->parent;
}

static gint64
schema_version (SqliteDb *s, GError **error)
{
  sqlite3_stmt *st = NULL;
  gint64 version = -1;
  int rc;

  rc = sqlite3_prepare_v2 (
      s->db, "SELECT max(version) FROM voiceagent_schema", -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step (st)) == SQLITE_ROW)
    version = sqlite3_column_int64 (st, 0);
  else
    set_error (s, rc, "reading the schema version", error);
  sqlite3_finalize (st);
  return version;
}

static gboolean
sqlite_ensure_schema (VaRecordsDb *db, GError **error)
{
  SqliteDb *s = (SqliteDb *)db;
  gint64 version = -1;
  int rc;

  /* IMMEDIATE: two servers given the same file create (and migrate) it
   * once. */
  rc = sqlite3_exec (s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec (s->db, schema, NULL, NULL, NULL);
  if (rc == SQLITE_OK && (version = schema_version (s, error)) < 0)
    rc = SQLITE_ERROR;
  if (rc == SQLITE_OK && version < 2)
    rc = sqlite3_exec (s->db, migrate_2, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec (s->db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    if (error && *error == NULL)
      set_error (s, rc, "creating the calls table", error);
    sqlite3_exec (s->db, "ROLLBACK", NULL, NULL, NULL);
    return FALSE;
  }
  version = schema_version (s, error);
  if (version > VA_RECORDS_SCHEMA_VERSION) {
    g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
        "%s has call-record schema version %" G_GINT64_FORMAT
        ", newer than this voiceagent's (%d): run a newer voiceagent",
        s->path, version, VA_RECORDS_SCHEMA_VERSION);
    return FALSE;
  }
  return version >= 0;
}

static int
insert_one (sqlite3_stmt *st, const VaCallRecord *r)
{
  int rc;

  sqlite3_reset (st);
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
  sqlite3_bind_text (st, 13, r->recording, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (st, 14, (sqlite3_int64)r->recording_bytes);
  sqlite3_bind_double (st, 15, r->recording_seconds);
  sqlite3_bind_int64 (st, 16, (sqlite3_int64)r->recording_dropped);
  rc = sqlite3_step (st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static gboolean
sqlite_insert (
    VaRecordsDb *db, VaCallRecord *const *records, guint n, GError **error)
{
  SqliteDb *s = (SqliteDb *)db;
  sqlite3_stmt *st = NULL;
  const gchar *step = "BEGIN";
  guint i;
  int rc;

  rc = sqlite3_exec (s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc == SQLITE_OK) {
    step = "INSERT";
    rc = sqlite3_prepare_v2 (s->db, insert_sql, -1, &st, NULL);
  }
  for (i = 0; rc == SQLITE_OK && i < n; i++)
    rc = insert_one (st, records[i]);
  sqlite3_finalize (st);
  if (rc == SQLITE_OK) {
    step = "COMMIT";
    rc = sqlite3_exec (s->db, "COMMIT", NULL, NULL, NULL);
  }
  if (rc == SQLITE_OK)
    return TRUE;
  set_error (s, rc, step, error);
  sqlite3_exec (s->db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

static gchar *
column_text (gpointer st, int i)
{
  return g_strdup ((const gchar *)sqlite3_column_text (st, i));
}

static gint64
column_integer (gpointer st, int i)
{
  return sqlite3_column_int64 (st, i);
}

static gdouble
column_real (gpointer st, int i)
{
  return sqlite3_column_double (st, i);
}

static const VaRecordsRow sqlite_row = { column_text, column_integer,
  column_real };

static GPtrArray *
sqlite_list (VaRecordsDb *db, GError **error)
{
  SqliteDb *s = (SqliteDb *)db;
  GPtrArray *rows =
      g_ptr_array_new_with_free_func ((GDestroyNotify)va_call_record_free);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2 (s->db, list_sql, -1, &st, NULL);

  while (rc == SQLITE_OK && (rc = sqlite3_step (st)) == SQLITE_ROW) {
    g_ptr_array_add (rows, va_records_read_row (&sqlite_row, st, FALSE));
    rc = SQLITE_OK;
  }
  if (rc != SQLITE_DONE) {
    set_error (s, rc, "listing calls", error);
    g_clear_pointer (&rows, g_ptr_array_unref);
  }
  sqlite3_finalize (st);
  return rows;
}

static VaCallRecord *
sqlite_show (VaRecordsDb *db, const gchar *id, GError **error)
{
  SqliteDb *s = (SqliteDb *)db;
  sqlite3_stmt *st = NULL;
  VaCallRecord *r = NULL;
  int rc = sqlite3_prepare_v2 (s->db, show_sql, -1, &st, NULL);

  if (rc == SQLITE_OK) {
    sqlite3_bind_text (st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step (st);
  }
  if (rc == SQLITE_ROW) {
    r = va_records_read_row (&sqlite_row, st, TRUE);
  } else if (rc != SQLITE_DONE) {
    set_error (s, rc, "reading the call", error);
  }
  sqlite3_finalize (st);
  return r;
}

static void
sqlite_close (VaRecordsDb *db)
{
  SqliteDb *s = (SqliteDb *)db;

  sqlite3_close (s->db);
  g_free (s->path);
  g_free (s);
}

const VaRecordsBackend va_records_sqlite = {
  .name = "SQLite",
  .describe = sqlite_describe,
  .open = sqlite_open,
  .ensure_schema = sqlite_ensure_schema,
  .insert = sqlite_insert,
  .list = sqlite_list,
  .show = sqlite_show,
  .close = sqlite_close,
};

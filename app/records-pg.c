/* voiceagent: the PostgreSQL backend of the call records
 * (records-backend.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * @target is a libpq connection URI (postgresql:// or postgres://). The
 * password may be in it, or come from libpq's own places when it is not:
 * PGPASSWORD, ~/.pgpass (PGPASSFILE). Every message this file makes says
 * where the database is (user, host, port, database) but never the
 * password: libpq's own messages are passed through redact() first,
 * because some of them quote the URI they could not parse.
 *
 * Every statement is constant text; values travel as PQexecParams
 * parameters. Several servers may share one database: the schema is
 * created under an advisory lock, and a record's id is its primary key
 * (a retry after an unknown outcome inserts nothing).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <libpq-fe.h>
#include "records-backend.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

/* Defaults a URI may override (it comes after them in open_conn): a dead
 * server or link must fail an attempt in seconds, so the writer retries
 * and va_records_close is not held up for long. */
#define CONNECT_TIMEOUT_S "5"
#define KEEPALIVES_IDLE_S "10"
#define KEEPALIVES_INTERVAL_S "5"
#define KEEPALIVES_COUNT "2"
#define TCP_USER_TIMEOUT_MS "15000"

/* Taken by every instance that creates the schema, so two servers
 * starting at once do not race on CREATE TABLE. Any constant will do. */
#define SCHEMA_LOCK_KEY "7238461"

typedef struct
{
  VaRecordsDb parent;
  PGconn *conn;
  gchar *target; /* with its password: only for redact() */
  gchar *where; /* user@host:port/db, for messages */
} PgDb;

static const gchar schema_sql[] =
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ");"
    "CREATE TABLE IF NOT EXISTS calls ("
    " id TEXT PRIMARY KEY, agent TEXT, started_us BIGINT, ended_us BIGINT,"
    " end_reason TEXT, transcript TEXT, turns TEXT,"
    " stt_seconds DOUBLE PRECISION, tts_characters BIGINT,"
    " llm_prompt_tokens BIGINT, llm_completion_tokens BIGINT,"
    " cost_usd DOUBLE PRECISION);"
    "CREATE INDEX IF NOT EXISTS calls_started ON calls (started_us);"
    "CREATE TABLE IF NOT EXISTS voiceagent_schema ("
    " version INTEGER PRIMARY KEY);"
    "INSERT INTO voiceagent_schema VALUES (1) ON CONFLICT DO NOTHING;"
    /* Version 2: recordings. */
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS recording TEXT,"
    " ADD COLUMN IF NOT EXISTS recording_bytes BIGINT,"
    " ADD COLUMN IF NOT EXISTS recording_seconds DOUBLE PRECISION,"
    " ADD COLUMN IF NOT EXISTS recording_dropped BIGINT;"
    "INSERT INTO voiceagent_schema VALUES (2) ON CONFLICT DO NOTHING;"
    "COMMIT";

static const gchar insert_sql[] =
    "INSERT INTO calls (id, agent, started_us, ended_us, end_reason, "
    "transcript, turns, stt_seconds, tts_characters, llm_prompt_tokens, "
    "llm_completion_tokens, cost_usd, recording, recording_bytes, "
    "recording_seconds, recording_dropped) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
    "$15, $16) "
    "ON CONFLICT (id) DO NOTHING";

/* Ties broken by id in byte order, as SQLite compares text. */
static const gchar list_sql[] =
    "SELECT " VA_RECORDS_LIST_COLUMNS " FROM calls "
    "ORDER BY started_us DESC, id COLLATE \"C\" DESC LIMIT 50";

static const gchar show_sql[] =
    "SELECT " VA_RECORDS_SHOW_COLUMNS " FROM calls WHERE id = $1";

G_STATIC_ASSERT (VA_RECORDS_LIST_LIMIT == 50);

/* ---- Passwords out of messages ---- */

static void
add_secret (GPtrArray *secrets, const gchar *raw, gsize len)
{
  gchar *text = g_strndup (raw, len);
  gchar *decoded = g_uri_unescape_string (text, NULL);

  if (*text)
    g_ptr_array_add (secrets, text);
  else
    g_free (text);
  if (decoded && *decoded)
    g_ptr_array_add (secrets, decoded);
  else
    g_free (decoded);
}

/* The password's text in @target as written and decoded, found without
 * libpq (whose parser may be what failed): user:PASSWORD@ up to the first
 * '@', as libpq reads it, and every password= parameter. */
static GPtrArray *
find_passwords (const gchar *target)
{
  GPtrArray *secrets = g_ptr_array_new_with_free_func (g_free);
  const gchar *authority = strstr (target, "://");
  const gchar *at, *colon, *p;

  if (authority && (at = strchr (authority + 3, '@')) &&
      (colon = memchr (authority + 3, ':', at - authority - 3)))
    add_secret (secrets, colon + 1, at - colon - 1);
  for (p = strstr (target, "password="); p; p = strstr (p + 1, "password=")) {
    const gchar *value = p + strlen ("password=");
    add_secret (secrets, value, strcspn (value, "&"));
  }
  return secrets;
}

/* @text (taken) with its whitespace runs made one space and its last
 * full stop dropped: it is quoted inside a sentence. */
static gchar *
one_line (gchar *text)
{
  gchar *from = text, *to = text;

  for (; *from; from++)
    if (!g_ascii_isspace (*from))
      *to++ = *from;
    else if (to > text && to[-1] != ' ')
      *to++ = ' ';
  while (to > text && (to[-1] == ' ' || to[-1] == '.'))
    to--;
  *to = '\0';
  return text;
}

/* @message with every form of @target's password masked, on one line
 * (libpq's messages end in a newline and may span several). */
static gchar *
redact (const gchar *message, const gchar *target)
{
  GPtrArray *secrets = find_passwords (target);
  GString *out = g_string_new (message);
  guint i;

  for (i = 0; i < secrets->len; i++)
    g_string_replace (out, g_ptr_array_index (secrets, i), "***", 0);
  g_ptr_array_unref (secrets);
  return one_line (g_string_free (out, FALSE));
}

/* ---- Connecting ---- */

static const gchar *
option (PQconninfoOption *options, const gchar *keyword)
{
  for (PQconninfoOption *o = options; o->keyword; o++)
    if (g_str_equal (o->keyword, keyword))
      return o->val && *o->val ? o->val : NULL;
  return NULL;
}

/* user@host:port/dbname from the URI's own parts (libpq fills in what it
 * leaves out from PGHOST, PGUSER... when connecting). */
static gchar *
where_from (PQconninfoOption *options)
{
  const gchar *user = option (options, "user");
  const gchar *host = option (options, "host");
  const gchar *port = option (options, "port");
  const gchar *db = option (options, "dbname");

  if (host == NULL)
    host = option (options, "hostaddr");
  return g_strdup_printf ("postgresql://%s%s%s%s%s/%s", user ? user : "",
      user ? "@" : "", host ? host : "", port ? ":" : "", port ? port : "",
      db ? db : "");
}

/* NULL, or a comma-separated list (one per host) of ports or empties. */
static gboolean
ports_valid (const gchar *ports)
{
  gchar **list = g_strsplit (ports ? ports : "", ",", -1);
  gboolean ok = TRUE;

  for (guint i = 0; ok && list[i]; i++)
    ok = !*list[i] ||
        g_ascii_string_to_unsigned (list[i], 10, 1, 65535, NULL, NULL);
  g_strfreev (list);
  return ok;
}

static gchar *
pg_describe (const gchar *target, GError **error)
{
  gchar *why = NULL;
  PQconninfoOption *options = PQconninfoParse (target, &why);
  gchar *where;

  if (options == NULL) {
    gchar *shown = redact (why ? why : "out of memory", target);
    g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
        "--database is not a valid PostgreSQL URI: %s. Expected "
        "postgresql://[user[:password]@]host[:port]/dbname[?param=value&...] "
        "(libpq's parameters); percent-encode @ : / ? # & in a password, "
        "or leave it out and set PGPASSWORD or ~/.pgpass",
        shown);
    g_free (shown);
    PQfreemem (why);
    return NULL;
  }
  /* libpq checks the port only when it connects, where a bad one would
   * look like a server that is down. */
  if (!ports_valid (option (options, "port"))) {
    g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
        "--database is not a valid PostgreSQL URI: its port is not a number "
        "from 1 to 65535. Expected "
        "postgresql://[user[:password]@]host[:port]/dbname[?param=value&...]");
    PQconninfoFree (options);
    return NULL;
  }
  where = where_from (options);
  PQconninfoFree (options);
  return where;
}

/* libpq prints NOTICEs ("relation calls already exists, skipping") on
 * stderr unless told otherwise. */
static void
on_notice (void *data, const char *message)
{
  GST_DEBUG ("postgresql: %s", message);
}

static PGconn *
open_conn (const gchar *target)
{
  /* The URI (dbname, expanded) comes last, so what it says wins. */
  const gchar *const keys[] = { "connect_timeout", "application_name",
    "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "dbname", NULL };
  const gchar *const values[] = { CONNECT_TIMEOUT_S, "voiceagent",
    KEEPALIVES_IDLE_S, KEEPALIVES_INTERVAL_S, KEEPALIVES_COUNT,
    TCP_USER_TIMEOUT_MS, target, NULL };

  return PQconnectdbParams (keys, values, 1);
}

static VaRecordsDb *
pg_open (const gchar *target, gboolean create, GError **error)
{
  gchar *where = pg_describe (target, error);
  PGconn *conn;
  PgDb *pg;

  if (where == NULL)
    return NULL;
  conn = open_conn (target);
  if (conn == NULL || PQstatus (conn) != CONNECTION_OK) {
    gchar *why =
        redact (conn ? PQerrorMessage (conn) : "out of memory", target);
    if (conn && PQconnectionNeedsPassword (conn))
      g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
          "PostgreSQL at %s asks for a password and none was given: put it "
          "in the URI through VOICEAGENT_DATABASE_URL, or set PGPASSWORD or "
          "~/.pgpass",
          where);
    else
      g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_RETRY,
          "cannot connect to PostgreSQL at %s: %s", where, why);
    g_free (why);
    g_free (where);
    PQfinish (conn);
    return NULL;
  }
  PQsetNoticeProcessor (conn, on_notice, NULL);
  pg = g_new0 (PgDb, 1);
  pg->parent.backend = &va_records_pg;
  pg->conn = conn;
  pg->target = g_strdup (target);
  pg->where = where;
  return &pg->parent;
}

/* ---- Statements ---- */

/* SQLSTATE classes 22 (data exception) and 23 (integrity constraint)
 * are about the row itself; anything else (connection, shutdown, lock,
 * disk, a table dropped under us) may pass on a later try. */
static VaRecordsError
classify (PgDb *pg, const PGresult *res)
{
  const gchar *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;

  if (PQstatus (pg->conn) != CONNECTION_OK || state == NULL)
    return VA_RECORDS_ERROR_RETRY;
  if (g_str_has_prefix (state, "22") || g_str_has_prefix (state, "23"))
    return VA_RECORDS_ERROR_REJECTED;
  return VA_RECORDS_ERROR_RETRY;
}

/* TRUE if @res (taken) has status @want; else sets @error about @step. */
static gboolean
check (PgDb *pg, PGresult *res, ExecStatusType want, const gchar *step,
    GError **error)
{
  gboolean ok = res && PQresultStatus (res) == want;

  if (!ok) {
    gchar *why =
        redact (res && *PQresultErrorMessage (res) ? PQresultErrorMessage (res)
                                                   : PQerrorMessage (pg->conn),
            pg->target);
    g_set_error (error, VA_RECORDS_ERROR, classify (pg, res),
        "PostgreSQL at %s: %s: %s", pg->where, step, why);
    g_free (why);
  }
  PQclear (res);
  return ok;
}

static gboolean
command (PgDb *pg, const gchar *sql, const gchar *step, GError **error)
{
  return check (pg, PQexec (pg->conn, sql), PGRES_COMMAND_OK, step, error);
}

static gboolean
pg_ensure_schema (VaRecordsDb *db, GError **error)
{
  PgDb *pg = (PgDb *)db;
  PGresult *res;
  gint64 version = 0;

  if (!command (pg, schema_sql, "creating the calls table", error)) {
    PQclear (PQexec (pg->conn, "ROLLBACK"));
    return FALSE;
  }
  res = PQexecParams (pg->conn, "SELECT max(version) FROM voiceagent_schema", 0,
      NULL, NULL, NULL, NULL, 0);
  if (res && PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1)
    version = g_ascii_strtoll (PQgetvalue (res, 0, 0), NULL, 10);
  if (!check (pg, res, PGRES_TUPLES_OK, "reading the schema version", error))
    return FALSE;
  if (version > VA_RECORDS_SCHEMA_VERSION) {
    g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
        "PostgreSQL at %s has call-record schema version %" G_GINT64_FORMAT
        ", newer than this voiceagent's (%d): run a newer voiceagent",
        pg->where, version, VA_RECORDS_SCHEMA_VERSION);
    return FALSE;
  }
  return TRUE;
}

/* One record's parameters, as text (libpq's default format). */
typedef struct
{
  gchar *numbers[10];
  const gchar *values[16];
} Params;

static void
params_fill (Params *p, const VaCallRecord *r)
{
  gchar num[G_ASCII_DTOSTR_BUF_SIZE];
  guint i;

  p->numbers[0] = g_strdup_printf ("%" G_GINT64_FORMAT, r->started_us);
  p->numbers[1] = g_strdup_printf ("%" G_GINT64_FORMAT, r->ended_us);
  /* Shortest text that reads back as the same double. */
  p->numbers[2] =
      g_strdup (g_ascii_dtostr (num, sizeof num, r->usage.stt_seconds));
  p->numbers[3] =
      g_strdup_printf ("%" G_GUINT64_FORMAT, r->usage.tts_characters);
  p->numbers[4] =
      g_strdup_printf ("%" G_GUINT64_FORMAT, r->usage.llm_prompt_tokens);
  p->numbers[5] =
      g_strdup_printf ("%" G_GUINT64_FORMAT, r->usage.llm_completion_tokens);
  p->numbers[6] = g_strdup (g_ascii_dtostr (num, sizeof num, r->cost_usd));
  p->values[0] = r->id;
  p->values[1] = r->agent;
  p->values[2] = p->numbers[0];
  p->values[3] = p->numbers[1];
  p->values[4] = r->end_reason;
  p->values[5] = r->transcript_json ? r->transcript_json : "[]";
  p->values[6] = r->turns_json ? r->turns_json : "[]";
  for (i = 2; i < 7; i++)
    p->values[5 + i] = p->numbers[i];
  p->numbers[7] = g_strdup_printf ("%" G_GUINT64_FORMAT, r->recording_bytes);
  p->numbers[8] =
      g_strdup (g_ascii_dtostr (num, sizeof num, r->recording_seconds));
  p->numbers[9] = g_strdup_printf ("%" G_GUINT64_FORMAT, r->recording_dropped);
  p->values[12] = r->recording; /* NULL: SQL NULL, not recorded */
  for (i = 7; i < 10; i++)
    p->values[6 + i] = p->numbers[i];
}

static void
params_clear (Params *p)
{
  for (guint i = 0; i < G_N_ELEMENTS (p->numbers); i++)
    g_free (p->numbers[i]);
}

static gboolean
insert_one (PgDb *pg, const VaCallRecord *r, GError **error)
{
  Params p = { 0 };
  PGresult *res;

  params_fill (&p, r);
  res = PQexecParams (pg->conn, insert_sql, G_N_ELEMENTS (p.values), NULL,
      p.values, NULL, NULL, 0);
  params_clear (&p);
  return check (pg, res, PGRES_COMMAND_OK, "INSERT", error);
}

static gboolean
pg_insert (
    VaRecordsDb *db, VaCallRecord *const *records, guint n, GError **error)
{
  PgDb *pg = (PgDb *)db;
  gboolean ok = command (pg, "BEGIN", "BEGIN", error);
  guint i;

  for (i = 0; ok && i < n; i++)
    ok = insert_one (pg, records[i], error);
  /* A COMMIT without an answer may still have committed: the caller
   * retries, and the ids make the second try insert nothing. */
  if (ok)
    return command (pg, "COMMIT", "COMMIT", error);
  if (PQstatus (pg->conn) == CONNECTION_OK)
    PQclear (PQexec (pg->conn, "ROLLBACK"));
  return FALSE;
}

/* A row of a result: what VaRecordsRow's getters read. */
typedef struct
{
  const PGresult *res;
  int row;
} PgRow;

static gchar *
pg_text (gpointer data, int column)
{
  const PgRow *r = data;

  return PQgetisnull (r->res, r->row, column)
      ? NULL
      : g_strdup (PQgetvalue (r->res, r->row, column));
}

static gint64
pg_integer (gpointer data, int column)
{
  const PgRow *r = data;

  return g_ascii_strtoll (PQgetvalue (r->res, r->row, column), NULL, 10);
}

static gdouble
pg_real (gpointer data, int column)
{
  const PgRow *r = data;

  return g_ascii_strtod (PQgetvalue (r->res, r->row, column), NULL);
}

static const VaRecordsRow pg_row = { pg_text, pg_integer, pg_real };

static GPtrArray *
pg_list (VaRecordsDb *db, GError **error)
{
  PgDb *pg = (PgDb *)db;
  PGresult *res =
      PQexecParams (pg->conn, list_sql, 0, NULL, NULL, NULL, NULL, 0);
  GPtrArray *rows;

  if (res == NULL || PQresultStatus (res) != PGRES_TUPLES_OK) {
    check (pg, res, PGRES_TUPLES_OK, "listing calls", error);
    return NULL;
  }
  rows = g_ptr_array_new_with_free_func ((GDestroyNotify)va_call_record_free);
  for (int i = 0; i < PQntuples (res); i++) {
    PgRow row = { res, i };
    g_ptr_array_add (rows, va_records_read_row (&pg_row, &row, FALSE));
  }
  PQclear (res);
  return rows;
}

static VaCallRecord *
pg_show (VaRecordsDb *db, const gchar *id, GError **error)
{
  PgDb *pg = (PgDb *)db;
  const gchar *const params[] = { id };
  PGresult *res =
      PQexecParams (pg->conn, show_sql, 1, NULL, params, NULL, NULL, 0);
  VaCallRecord *r;

  if (res == NULL || PQresultStatus (res) != PGRES_TUPLES_OK) {
    check (pg, res, PGRES_TUPLES_OK, "reading the call", error);
    return NULL;
  }
  if (PQntuples (res) == 0) {
    PQclear (res);
    return NULL;
  }
  r = va_records_read_row (&pg_row, &(PgRow){ res, 0 }, TRUE);
  PQclear (res);
  return r;
}

static void
pg_close (VaRecordsDb *db)
{
  PgDb *pg = (PgDb *)db;

  PQfinish (pg->conn);
  /* The URI may hold the password. */
  memset (pg->target, 0, strlen (pg->target));
  g_free (pg->target);
  g_free (pg->where);
  g_free (pg);
}

const VaRecordsBackend va_records_pg = {
  .name = "PostgreSQL",
  .describe = pg_describe,
  .open = pg_open,
  .ensure_schema = pg_ensure_schema,
  .insert = pg_insert,
  .list = pg_list,
  .show = pg_show,
  .close = pg_close,
};

/* voiceagent: what a call-record database backend provides (records.c
 * drives it; records-sqlite.c and records-pg.c implement it).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A VaRecordsDb is one open connection. It is used by one thread at a
 * time (the writer thread, or the `calls` command) and has no lock.
 */
#pragma once

#include <glib.h>
#include "records.h"

G_BEGIN_DECLS

/* The layout of the `calls` table both backends create (docs/http-api.md,
 * "Call records"). Version 1 is the layout SQLite databases have had
 * from the start, so such a database without a version row is version 1.
 * Version 2 adds the recording columns.
 * A later layout adds a migration step from the version before it and
 * bumps this. */
#define VA_RECORDS_SCHEMA_VERSION 2

/* Newest first, at most this many rows in `calls list`. */
#define VA_RECORDS_LIST_LIMIT 50

#define VA_RECORDS_ERROR (va_records_error_quark ())
GQuark va_records_error_quark (void);

typedef enum {
  /* The database could not be reached or did not commit: the same write
   * may succeed later (server down or restarting, connection lost, disk
   * busy). The writer reconnects and retries. */
  VA_RECORDS_ERROR_RETRY,
  /* The database refused this record and always will (a data or
   * constraint error): retrying cannot help. */
  VA_RECORDS_ERROR_REJECTED,
  /* Misconfiguration: a bad URI, a missing password, a schema newer than
   * this voiceagent. The message names the fix. */
  VA_RECORDS_ERROR_CONFIG,
} VaRecordsError;

typedef struct _VaRecordsBackend VaRecordsBackend;

/* A backend's connection starts with this; the rest is the backend's. */
typedef struct
{
  const VaRecordsBackend *backend;
} VaRecordsDb;

struct _VaRecordsBackend
{
  const gchar *name; /* "SQLite", "PostgreSQL": for messages */
  /* Checks @target's syntax without connecting, and returns a text that
   * names it for people, with any password left out (free it). */
  gchar *(*describe) (const gchar *target, GError **error);
  /* Connects. @create: the server (create an SQLite file); FALSE for the
   * read-only `calls` command. */
  VaRecordsDb *(*open) (const gchar *target, gboolean create, GError **error);
  /* Creates the table, index and version row if missing (idempotent, safe
   * with several instances at once); fails with CONFIG if the database
   * has a newer schema than VA_RECORDS_SCHEMA_VERSION. */
  gboolean (*ensure_schema) (VaRecordsDb *db, GError **error);
  /* Inserts @n records in one transaction: all are committed, or none.
   * A record whose id is present already is skipped (a retry after an
   * unknown outcome must not duplicate it). */
  gboolean (*insert) (
      VaRecordsDb *db, VaCallRecord *const *records, guint n, GError **error);
  /* The newest VA_RECORDS_LIST_LIMIT records, newest first (ties by id),
   * with empty transcript and turns: a GPtrArray of VaCallRecord*. */
  GPtrArray *(*list) (VaRecordsDb *db, GError **error);
  /* One record, or NULL: with @error when the query failed, without when
   * there is no such call. */
  VaCallRecord *(*show) (VaRecordsDb *db, const gchar *id, GError **error);
  void (*close) (VaRecordsDb *db);
};

/* The columns `calls list` and `calls show` read, in this order: both
 * backends select them so, and va_records_read_row() reads them so. */
#define VA_RECORDS_LIST_COLUMNS                                                \
  "id, agent, started_us, ended_us, end_reason, cost_usd"
#define VA_RECORDS_SHOW_COLUMNS                                                \
  VA_RECORDS_LIST_COLUMNS ", transcript, turns, stt_seconds, "                 \
                          "tts_characters, llm_prompt_tokens, "                \
                          "llm_completion_tokens, recording, "                 \
                          "recording_bytes, recording_seconds, "               \
                          "recording_dropped"

/* One result row, read by column index with a backend's getters. */
typedef struct
{
  gchar *(*text) (gpointer row, int column); /* NULL for SQL NULL; free */
  gint64 (*integer) (gpointer row, int column);
  gdouble (*real) (gpointer row, int column);
} VaRecordsRow;

/* A record from a row of VA_RECORDS_LIST_COLUMNS (empty transcript and
 * turns), or of VA_RECORDS_SHOW_COLUMNS when @full. */
VaCallRecord *va_records_read_row (
    const VaRecordsRow *reader, gpointer row, gboolean full);

extern const VaRecordsBackend va_records_sqlite;
#ifdef HAVE_LIBPQ
extern const VaRecordsBackend va_records_pg;
#endif

/* The backend @database names: PostgreSQL for postgresql:// and
 * postgres:// URIs, else SQLite (a file path). NULL with @error when it
 * names one this build lacks. */
const VaRecordsBackend *va_records_backend_for (
    const gchar *database, GError **error);

G_END_DECLS

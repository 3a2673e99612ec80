/* A real PostgreSQL server of the test's own, on 127.0.0.1, and what the
 * records tests share around it: a server with a database, their main.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <gst/check/gstcheck.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

typedef struct _PgServer PgServer;

/* The superuser the tests connect as (password authentication). */
#define PG_SERVER_USER "voiceagent"

/* Where initdb and postgres are (Debian's postgresql-15); NULL when they
 * are missing (the test then cannot run). */
const gchar *pg_server_bindir (void);

/* initdb into a temporary folder (scram-sha-256, superuser PG_SERVER_USER
 * with @password) and starts postgres on a free port of 127.0.0.1, its
 * socket in that folder. As root, both run as the `postgres` user
 * (PostgreSQL refuses root) and the folder is theirs. NULL with @error. */
PgServer *pg_server_new (const gchar *password, GError **error);

/* Stops it: @immediate is a crash (SIGQUIT: no checkpoint, in-flight
 * transactions lost, recovery at the next start), else a fast shutdown
 * (SIGINT). Waits until it has exited. */
void pg_server_stop (PgServer *pg, gboolean immediate);
/* Starts it again on the same folder and port; waits until it answers. */
gboolean pg_server_start (PgServer *pg, GError **error);
/* Stops it and removes its folder. */
void pg_server_free (PgServer *pg);

guint pg_server_get_port (PgServer *pg);
/* postgresql://voiceagent[:password]@127.0.0.1:PORT/@dbname (free it). */
gchar *pg_server_uri (PgServer *pg, const gchar *dbname, gboolean password);
/* Creates an empty database; returns its name (free it). */
gchar *pg_server_new_database (PgServer *pg);
/* A connection to @dbname, or NULL with the reason on stderr. */
PGconn *pg_server_connect (PgServer *pg, const gchar *dbname);
/* The first column of the first row of @sql with @n_params text
 * parameters, or NULL (free it). */
gchar *pg_server_query_value (
    PGconn *conn, const gchar *sql, int n_params, const gchar *const *params);

/* What a test starts from: a server of its own with one new database,
 * and the URI to that with the password. */
typedef struct
{
  PgServer *server;
  gchar *db;
  gchar *uri;
} PgTestDb;

/* Fails the test (check) when the server or the database cannot be
 * made. */
PgTestDb *pg_test_db_new (const gchar *password);
/* Stops the server and removes its folder. */
void pg_test_db_free (PgTestDb *pg);

/* A temporary folder for everything the test makes, servers included,
 * made TMPDIR (call it first in main, before anything asks GLib for the
 * temporary folder, gst_init included): pg_server_run_suite() removes it
 * whole at the end, even after a test failed in its forked child without
 * cleaning up. */
gchar *pg_server_tmpdir_new (void);

/* The rest of a records test's main, after gst_check_init(): runs the
 * suite @make_suite returns, or says the test cannot run (test-skip.h)
 * when PostgreSQL is not installed; then removes and frees @tmp_root
 * (from pg_server_tmpdir_new()). Returns main's exit status. */
int pg_server_run_suite (Suite *(*make_suite) (void), gchar *tmp_root);

G_END_DECLS

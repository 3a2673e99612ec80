/* A real PostgreSQL server of the test's own (pg-server.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include "pg-server.h"
#include "test-process.h"
#include "test-skip.h"

#define BINDIR "/usr/lib/postgresql/15/bin"
#define START_TIMEOUT_US (30 * G_USEC_PER_SEC)
#define STOP_TIMEOUT_US (30 * G_USEC_PER_SEC)

struct _PgServer
{
  gchar *dir; /* the folder: data/, the socket, the log, the password */
  gchar *data;
  gchar *password;
  guint port;
  GSubprocess *proc;
  /* As root, the server runs as this user: */
  gboolean as_postgres;
  uid_t uid;
  gid_t gid;
  guint databases; /* made so far, for names */
};

const gchar *
pg_server_bindir (void)
{
  return g_file_test (BINDIR "/postgres", G_FILE_TEST_IS_EXECUTABLE) &&
          g_file_test (BINDIR "/initdb", G_FILE_TEST_IS_EXECUTABLE)
      ? BINDIR
      : NULL;
}

/* @program of BINDIR with @args, as the postgres user when we are root.
 * Its output goes to @log. */
static GSubprocess *
spawn (PgServer *pg, const gchar *program, const gchar *const *args,
    const gchar *log, GError **error)
{
  /* SIGQUIT, an immediate shutdown, when the test dies; as root setpriv
   * sets it instead. */
  GSubprocessLauncher *l = test_process_launcher_new (
      G_SUBPROCESS_FLAGS_NONE, pg->as_postgres ? 0 : SIGQUIT);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  GSubprocess *proc;

  if (pg->as_postgres) {
    /* setpriv execs (the pid is the server's) and, unlike runuser, keeps
     * no PAM session in between; --pdeathsig survives the uid change. */
    g_ptr_array_add (argv, g_strdup ("setpriv"));
    g_ptr_array_add (argv, g_strdup_printf ("--reuid=%u", (guint)pg->uid));
    g_ptr_array_add (argv, g_strdup_printf ("--regid=%u", (guint)pg->gid));
    g_ptr_array_add (argv, g_strdup ("--clear-groups"));
    g_ptr_array_add (argv, g_strdup ("--pdeathsig=SIGQUIT"));
    g_ptr_array_add (argv, g_strdup ("--"));
  }
  g_ptr_array_add (argv, g_build_filename (BINDIR, program, NULL));
  for (; *args; args++)
    g_ptr_array_add (argv, g_strdup (*args));
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_set_cwd (l, pg->dir);
  g_subprocess_launcher_set_stdout_file_path (l, log);
  g_subprocess_launcher_set_stderr_file_path (l, log);
  /* The test's own settings must not reach the server. */
  g_subprocess_launcher_unsetenv (l, "PGPASSWORD");
  g_subprocess_launcher_unsetenv (l, "PGPASSFILE");
  proc = g_subprocess_launcher_spawnv (
      l, (const gchar *const *)argv->pdata, error);
  g_ptr_array_unref (argv);
  g_object_unref (l);
  return proc;
}

static gboolean
give_to_server (PgServer *pg, const gchar *path)
{
  return !pg->as_postgres || chown (path, pg->uid, pg->gid) == 0;
}

static gchar *
read_log (PgServer *pg, const gchar *name)
{
  gchar *path = g_build_filename (pg->dir, name, NULL);
  gchar *text = NULL;

  g_file_get_contents (path, &text, NULL, NULL);
  g_free (path);
  return text ? text : g_strdup ("");
}

static gboolean
init_cluster (PgServer *pg, GError **error)
{
  gchar *pwfile = g_build_filename (pg->dir, "password", NULL);
  gchar *log = g_build_filename (pg->dir, "initdb.log", NULL);
  gchar *pwarg = g_strconcat ("--pwfile=", pwfile, NULL);
  const gchar *args[] = { "-D", pg->data, "-U", PG_SERVER_USER, pwarg, "-A",
    "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", NULL };
  GSubprocess *proc = NULL;
  gboolean ok;

  ok = g_file_set_contents (pwfile, pg->password, -1, error) &&
      give_to_server (pg, pwfile) &&
      (proc = spawn (pg, "initdb", args, log, error)) &&
      g_subprocess_wait_check (proc, NULL, error);
  if (!ok && error && *error) {
    gchar *text = read_log (pg, "initdb.log");
    g_prefix_error (error, "initdb failed (%s): ", text);
    g_free (text);
  }
  g_clear_object (&proc);
  g_unlink (pwfile);
  g_free (pwarg);
  g_free (log);
  g_free (pwfile);
  return ok;
}

static gchar *
conninfo (PgServer *pg, const gchar *dbname)
{
  return g_strdup_printf ("host=127.0.0.1 port=%u user=%s password=%s "
                          "dbname=%s connect_timeout=2",
      pg->port, PG_SERVER_USER, pg->password, dbname);
}

static gboolean
answers (gpointer info)
{
  return PQping (info) == PQPING_OK;
}

gboolean
pg_server_start (PgServer *pg, GError **error)
{
  gchar *port = g_strdup_printf ("%u", pg->port);
  gchar *log = g_build_filename (pg->dir, "postgres.log", NULL);
  gchar *info = conninfo (pg, "postgres");
  const gchar *args[] = { "-D", pg->data, "-k", pg->dir, "-p", port, "-c",
    "listen_addresses=127.0.0.1", "-c", "shared_buffers=16MB", "-c",
    "max_connections=30", NULL };
  gboolean up;

  pg->proc = spawn (pg, "postgres", args, log, error);
  up = pg->proc &&
      test_process_wait_ready (
          pg->proc, "postgres", answers, info, START_TIMEOUT_US);
  if (pg->proc && !up) {
    gchar *text = read_log (pg, "postgres.log");
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "postgres did not answer on port %u: %s", pg->port, text);
    g_free (text);
    pg_server_stop (pg, TRUE);
  }
  g_free (info);
  g_free (log);
  g_free (port);
  return up;
}

void
pg_server_stop (PgServer *pg, gboolean immediate)
{
  test_process_stop (&pg->proc, immediate ? SIGQUIT : SIGINT, STOP_TIMEOUT_US);
}

PgServer *
pg_server_new (const gchar *password, GError **error)
{
  PgServer *pg = g_new0 (PgServer, 1);
  struct passwd *pw;

  pg->password = g_strdup (password);
  pg->port = test_process_free_port ();
  pg->dir = g_dir_make_tmp ("voiceagent-pg-XXXXXX", error);
  if (pg->dir == NULL) {
    pg_server_free (pg);
    return NULL;
  }
  pg->data = g_build_filename (pg->dir, "data", NULL);
  if (geteuid () == 0) {
    /* PostgreSQL refuses to run as root. */
    pw = getpwnam ("postgres");
    if (pw == NULL) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
          "running as root and there is no postgres user to run "
          "PostgreSQL as (Debian's postgresql package creates it)");
      pg_server_free (pg);
      return NULL;
    }
    pg->as_postgres = TRUE;
    pg->uid = pw->pw_uid;
    pg->gid = pw->pw_gid;
  }
  if (!give_to_server (pg, pg->dir)) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "chown %s: %s", pg->dir, g_strerror (errno));
    pg_server_free (pg);
    return NULL;
  }
  if (!init_cluster (pg, error) || !pg_server_start (pg, error)) {
    pg_server_free (pg);
    return NULL;
  }
  return pg;
}

void
pg_server_free (PgServer *pg)
{
  if (pg == NULL)
    return;
  pg_server_stop (pg, FALSE);
  if (pg->dir)
    test_process_remove_tree (pg->dir);
  g_free (pg->dir);
  g_free (pg->data);
  g_free (pg->password);
  g_free (pg);
}

guint
pg_server_get_port (PgServer *pg)
{
  return pg->port;
}

gchar *
pg_server_uri (PgServer *pg, const gchar *dbname, gboolean password)
{
  return g_strdup_printf ("postgresql://%s%s%s@127.0.0.1:%u/%s", PG_SERVER_USER,
      password ? ":" : "", password ? pg->password : "", pg->port, dbname);
}

PGconn *
pg_server_connect (PgServer *pg, const gchar *dbname)
{
  gchar *info = conninfo (pg, dbname);
  PGconn *conn = PQconnectdb (info);

  g_free (info);
  if (PQstatus (conn) != CONNECTION_OK) {
    g_printerr (
        "cannot connect to the test's PostgreSQL: %s", PQerrorMessage (conn));
    PQfinish (conn);
    return NULL;
  }
  return conn;
}

gchar *
pg_server_query_value (
    PGconn *conn, const gchar *sql, int n_params, const gchar *const *params)
{
  PGresult *res =
      PQexecParams (conn, sql, n_params, NULL, params, NULL, NULL, 0);
  gchar *value = NULL;

  if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) > 0 &&
      !PQgetisnull (res, 0, 0))
    value = g_strdup (PQgetvalue (res, 0, 0));
  else if (PQresultStatus (res) != PGRES_TUPLES_OK)
    g_printerr ("%s: %s", sql, PQresultErrorMessage (res));
  PQclear (res);
  return value;
}

gchar *
pg_server_new_database (PgServer *pg)
{
  PGconn *conn = pg_server_connect (pg, "postgres");
  gchar *name = g_strdup_printf ("records_%u", ++pg->databases);
  /* A name cannot be a parameter; this one is the test's own. */
  gchar *sql = g_strdup_printf ("CREATE DATABASE %s", name);
  PGresult *res = conn ? PQexec (conn, sql) : NULL;

  if (PQresultStatus (res) != PGRES_COMMAND_OK) {
    g_printerr ("%s: %s", sql, conn ? PQerrorMessage (conn) : "");
    g_clear_pointer (&name, g_free);
  }
  PQclear (res);
  PQfinish (conn);
  g_free (sql);
  return name;
}

gchar *
pg_server_tmpdir_new (void)
{
  const gchar *tmp = g_getenv ("TMPDIR");
  /* Not g_dir_make_tmp(): g_get_tmp_dir() keeps the first TMPDIR it
   * sees, and it must see this folder. */
  gchar *root = g_build_filename (
      tmp && *tmp ? tmp : "/tmp", "voiceagent-records-XXXXXX", NULL);

  /* The servers' own folders inside are theirs (as root, the postgres
   * user's): it only has to be able to pass through. */
  if (g_mkdtemp (root) == NULL || g_chmod (root, 0711) != 0)
    g_error ("cannot make a temporary folder");
  g_setenv ("TMPDIR", root, TRUE);
  g_assert (g_str_equal (g_get_tmp_dir (), root));
  return root;
}

PgTestDb *
pg_test_db_new (const gchar *password)
{
  PgTestDb *pg = g_new0 (PgTestDb, 1);
  GError *error = NULL;

  pg->server = pg_server_new (password, &error);
  fail_unless (pg->server != NULL, "cannot start PostgreSQL: %s",
      error ? error->message : "?");
  pg->db = pg_server_new_database (pg->server);
  fail_unless (pg->db != NULL, "cannot create a database");
  pg->uri = pg_server_uri (pg->server, pg->db, TRUE);
  return pg;
}

void
pg_test_db_free (PgTestDb *pg)
{
  g_free (pg->uri);
  g_free (pg->db);
  pg_server_free (pg->server);
  g_free (pg);
}

int
pg_server_run_suite (Suite *(*make_suite) (void), gchar *tmp_root)
{
  SRunner *sr;
  int failed;

  if (pg_server_bindir () == NULL) {
    test_process_remove_tree (tmp_root);
    g_free (tmp_root);
    return test_cannot_run (
        "PostgreSQL 15 is not installed "
        "(/usr/lib/postgresql/15/bin: Debian's postgresql)");
  }
  sr = srunner_create (make_suite ());
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  test_process_remove_tree (tmp_root);
  g_free (tmp_root);
  return failed == 0 ? 0 : 1;
}

/* A redis-server of the test's own (redis-process.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "redis-process.h"
#include "test-process.h"

#define START_TIMEOUT_US (10 * G_USEC_PER_SEC)

redisContext *
redis_process_connect (guint port)
{
  struct timeval tv = { 1, 0 };
  redisContext *ctx = redisConnectWithTimeout ("127.0.0.1", (int)port, tv);

  if (ctx && ctx->err) {
    redisFree (ctx);
    return NULL;
  }
  return ctx;
}

/* The process id of the redis-server on @port, or 0. */
static gint
server_pid (guint port)
{
  redisContext *ctx = redis_process_connect (port);
  redisReply *reply = ctx ? redisCommand (ctx, "INFO server") : NULL;
  const gchar *line = reply && reply->type == REDIS_REPLY_STRING
      ? strstr (reply->str, "process_id:")
      : NULL;
  gint pid = line ? atoi (line + strlen ("process_id:")) : 0;

  if (reply)
    freeReplyObject (reply);
  if (ctx)
    redisFree (ctx);
  return pid;
}

static gboolean
answers (gpointer data)
{
  RedisProcess *r = data;
  redisContext *ctx = redis_process_connect (r->port);

  if (ctx)
    redisFree (ctx);
  return ctx != NULL;
}

static GPtrArray *
command_line (RedisProcess *r, const gchar *conf, const gchar *const *extra)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  const gchar *memory_only[] = { "--bind", "127.0.0.1", "--save", "",
    "--appendonly", "no", NULL };

  g_ptr_array_add (argv, g_strdup ("redis-server"));
  if (conf) /* redis-server takes it first */
    g_ptr_array_add (argv, g_strdup (conf));
  g_ptr_array_add (argv, g_strdup ("--port"));
  g_ptr_array_add (argv, g_strdup_printf ("%u", r->port));
  for (guint i = 0; memory_only[i]; i++)
    g_ptr_array_add (argv, g_strdup (memory_only[i]));
  g_ptr_array_add (argv, g_strdup ("--dir"));
  g_ptr_array_add (argv, g_strdup (r->dir));
  for (guint i = 0; extra && extra[i]; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_ptr_array_add (argv, NULL);
  return argv;
}

static gboolean
spawn (RedisProcess *r, const gchar *conf, const gchar *const *extra)
{
  /* Its log on stdout would drown the test's. */
  GSubprocessLauncher *l =
      test_process_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE, SIGKILL);
  GPtrArray *argv = command_line (r, conf, extra);
  GError *error = NULL;

  r->proc = g_subprocess_launcher_spawnv (
      l, (const gchar *const *)argv->pdata, &error);
  g_object_unref (l);
  g_ptr_array_unref (argv);
  if (r->proc == NULL) {
    g_printerr ("cannot start redis-server: %s\n", error->message);
    g_error_free (error);
  }
  return r->proc != NULL;
}

/* A free port may be taken by another process before redis-server binds
 * it: then the test would talk to that one. */
static gboolean
is_ours (RedisProcess *r)
{
  gint pid = server_pid (r->port);

  if (pid == atoi (g_subprocess_get_identifier (r->proc)))
    return TRUE;
  g_printerr ("port %u is another process's (a free port was taken "
              "meanwhile)\n",
      r->port);
  return FALSE;
}

gboolean
redis_process_start (
    RedisProcess *r, guint port, const gchar *conf, const gchar *const *extra)
{
  r->port = port ? port : test_process_free_port ();
  r->dir = g_dir_make_tmp ("voiceagent-redis-XXXXXX", NULL);
  if (r->port == 0 || r->dir == NULL) {
    g_printerr ("no free port or temporary directory for redis-server\n");
    redis_process_stop (r);
    return FALSE;
  }
  if (!spawn (r, conf, extra) ||
      !test_process_wait_ready (
          r->proc, "redis-server", answers, r, START_TIMEOUT_US) ||
      !is_ours (r)) {
    redis_process_stop (r);
    return FALSE;
  }
  return TRUE;
}

void
redis_process_stop (RedisProcess *r)
{
  /* No signal it could take its time over: nothing of it is kept. */
  test_process_stop (&r->proc, SIGKILL, 0);
  if (r->dir)
    test_process_remove_tree (r->dir);
  g_clear_pointer (&r->dir, g_free);
}

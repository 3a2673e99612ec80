/* A redis-server of the test's own on 127.0.0.1 (a plain server, a
 * replica, a Sentinel or a Cluster node, by its arguments), and hiredis
 * connections to one.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <gio/gio.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

typedef struct
{
  GSubprocess *proc;
  guint port;
  /* Its working directory: a replica writes the primary's snapshot there,
   * and a server started in a directory holding one would load it. */
  gchar *dir;
} RedisProcess;

/* Starts redis-server on @port (0: a free one) in memory only (no
 * snapshots, no append-only file), in a new temporary directory, with the
 * configuration file @conf and the @extra arguments (NULL-terminated;
 * both may be NULL). The child gets SIGKILL if the test process dies.
 * Waits until it answers on @port as itself, not as another process that
 * took the free port meanwhile. FALSE, saying why on stderr, if not. */
gboolean redis_process_start (
    RedisProcess *r, guint port, const gchar *conf, const gchar *const *extra);

/* Kills it, waits, and removes its directory: a restart on the same port
 * starts empty. @r can be started again. */
void redis_process_stop (RedisProcess *r);

/* A connection to the redis-server on 127.0.0.1:@port (1 s timeout), or
 * NULL: free it with redisFree(). */
redisContext *redis_process_connect (guint port);

G_END_DECLS

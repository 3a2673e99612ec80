/* voiceagent: the connection to Redis, on its own thread.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

typedef struct _VaRedis VaRedis;

typedef struct
{
  /* Redis answers again (or for the first time) after writes were lost:
   * write the full state again. Main context. */
  void (*resync) (gpointer user_data);
  /* The connection went up or down; @detail names the server and the step
   * that failed (never the password). Main context. */
  void (*status) (gboolean up, const gchar *detail, gpointer user_data);
  /* Once a second while connected, on the Redis thread: @ctx may be used
   * for synchronous commands (the registry heartbeat). Returns FALSE with
   * @why (or NULL: see ctx->errstr) when the connection failed or Redis
   * refused a command. */
  gboolean (*tick) (redisContext *ctx, gchar **why, gpointer user_data);
  /* Once, on the Redis thread, before it disconnects for good. */
  void (*stop) (redisContext *ctx, gpointer user_data);
} VaRedisCallbacks;

/* A reply to va_redis_query(): @reply is NULL with @error set when Redis
 * is unreachable or the command failed. Main context; @reply is freed
 * after the call. */
typedef void (*VaRedisReplyFunc) (
    const redisReply *reply, const GError *error, gpointer user_data);

/* Checks @urls (see va_redis_parse_urls) and starts the thread, which
 * connects in the background. Returns NULL with @error on a bad URL. */
VaRedis *va_redis_new (const gchar *urls, const VaRedisCallbacks *callbacks,
    gpointer user_data, GError **error);
/* Writes what is queued (for at most a second), runs stop() and joins the
 * thread. Main context. */
void va_redis_free (VaRedis *redis);

/* Queues a write (@argv is copied; NULL-terminated). Never blocks: while
 * Redis is down, or when the queue is full, the command is dropped and a
 * resync() follows the next connection. Any thread. */
void va_redis_command (VaRedis *redis, const gchar *const *argv);
/* Runs @argv ahead of queued writes and calls @done on the main context.
 * Main context. */
void va_redis_query (VaRedis *redis, const gchar *const *argv,
    VaRedisReplyFunc done, gpointer user_data);

/* Why it is down, or NULL (free it). Any thread. */
gchar *va_redis_get_error (VaRedis *redis);

/* Every key starts with this hash tag, so that in a Redis Cluster all of
 * them live in one slot: the registry's MGET and the per-call Lua script
 * then work unchanged, on the one primary that serves it. */
#define VA_REDIS_KEY_TAG "{voiceagent}"

/* One address of a redis URL list. */
typedef struct
{
  gchar *host;
  guint port;
  gchar *user; /* ACL user, or NULL */
  gchar *password; /* or NULL; never logged */
  guint db;
  /* redis-sentinel://: the monitored group whose primary to ask this
   * Sentinel for; NULL for a data node */
  gchar *sentinel_group;
} VaRedisAddress;

/* Parses a comma-separated list of
 *   redis://[[user]:password@]host[:port][/db]        a node (6379)
 *   redis-sentinel://[[user]:password@]host[:port]/GROUP[/db]
 *                                     a Sentinel (26379) to ask for GROUP
 * tried in order until one gives a primary. A Cluster node is followed to
 * the primary of the slot VA_REDIS_KEY_TAG maps to. The credentials and db
 * are for the data node. Returns a GPtrArray of VaRedisAddress, or NULL
 * with @error. */
GPtrArray *va_redis_parse_urls (const gchar *urls, GError **error);

G_END_DECLS

/* voiceagent: the connection to Redis, on its own thread.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One thread owns a synchronous hiredis connection. The main context only
 * queues commands (a bounded FIFO, queries ahead of writes), so neither it
 * nor a streaming thread ever waits on Redis. Writes are idempotent (a
 * field set to its latest value), so what is lost while Redis is down is
 * simply written again: the thread drops writes it cannot deliver and asks
 * the main context to resync() once a connection is back. Reconnection
 * backs off exponentially (100 ms to 2 s, equal jitter).
 *
 * Finding the primary: a comma-separated list of addresses is tried in
 * order until one gives a primary (ROLE master). An address is a node, or
 * a Sentinel asked for its group's primary. hiredis 0.14 has no Cluster
 * client, and none is needed: every key shares one hash tag
 * (VA_REDIS_KEY_TAG), so a Cluster node only has to be followed to the
 * primary of that one slot. After a failover or a slot move, commands
 * answer READONLY, MOVED or the like; the thread then reconnects and finds
 * the primary again.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include "gstvoicehttp.h"
#include "redisstate.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define QUEUE_MAX 10000 /* commands */
#define BATCH_MAX 64 /* commands pipelined in one round trip */
#define TICK_US G_USEC_PER_SEC
#define CONNECT_TIMEOUT_MS 500
#define COMMAND_TIMEOUT_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define STOP_DRAIN_US G_USEC_PER_SEC

typedef struct
{
  gchar **argv;
  VaRedisReplyFunc done; /* NULL for a write */
  gpointer user_data;
} Cmd;

/* Who gets the callbacks. Shared by reference with the callbacks posted to
 * the main context, which may run after va_redis_free(): they then do
 * nothing. @alive is main context only; @ref is atomic. */
typedef struct
{
  gint ref;
  gboolean alive;
  VaRedisCallbacks callbacks;
  gpointer user_data;
} Owner;

struct _VaRedis
{
  /* Immutable after va_redis_new */
  GPtrArray *addresses; /* VaRedisAddress* */
  VaRedisCallbacks callbacks;
  gpointer user_data;
  Owner *owner;
  GMainContext *main_context;
  GThread *thread;

  /* Protected by lock */
  GMutex lock;
  GCond cond; /* queue gained a command, or stopping */
  GQueue queue; /* Cmd*, queries ahead of writes */
  gboolean up;
  gboolean stopping;
  gint64 stop_deadline;
  gboolean resync_needed; /* writes were dropped since the last resync */
  gchar *error; /* why it is down */
  guint64 dropped; /* writes dropped, for the log */

  /* Redis thread only */
  redisContext *ctx;
  redisContext *sentinel; /* a Sentinel watching @ctx's group, or NULL */
  const VaRedisAddress *watched; /* @sentinel's address */
  GstVoiceBackoff backoff; /* BACKOFF_MIN_MS to BACKOFF_MAX_MS */
  gint64 next_tick;
};

/* ---- Addresses ---- */

static void
address_free (VaRedisAddress *a)
{
  g_free (a->host);
  g_free (a->user);
  if (a->password)
    memset (a->password, 0, strlen (a->password));
  g_free (a->password);
  g_free (a->sentinel_group);
  g_free (a);
}

/* The path: "[/db]" for a node, "/GROUP[/db]" for a Sentinel. */
static gboolean
parse_path (VaRedisAddress *a, const gchar *path, gboolean sentinel)
{
  g_auto (GStrv) parts = g_strsplit (path && *path ? path : "/", "/", -1);
  guint n = g_strv_length (parts), first_db = sentinel ? 2 : 1;
  guint64 db = 0;

  /* parts[0] is the empty text before the leading '/' */
  if (n < 2 || *parts[0] || n > first_db + 1)
    return FALSE;
  if (sentinel) {
    a->sentinel_group = g_uri_unescape_string (parts[1], NULL);
    if (a->sentinel_group == NULL || !*a->sentinel_group)
      return FALSE;
  }
  if (n > first_db && *parts[first_db] &&
      !g_ascii_string_to_unsigned (parts[first_db], 10, 0, G_MAXINT, &db, NULL))
    return FALSE;
  a->db = (guint)db;
  return TRUE;
}

static VaRedisAddress *
parse_one (const gchar *text, GError **error)
{
  GUri *uri;
  VaRedisAddress *a = NULL;
  const gchar *scheme;
  gboolean sentinel;

  uri = g_uri_parse (g_strstrip ((gchar *)text),
      G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  sentinel = g_strcmp0 (scheme, "redis-sentinel") == 0;
  if (uri && (sentinel || g_strcmp0 (scheme, "redis") == 0) &&
      g_uri_get_host (uri) && *g_uri_get_host (uri) && !g_uri_get_query (uri) &&
      !g_uri_get_fragment (uri)) {
    a = g_new0 (VaRedisAddress, 1);
    a->host = g_strdup (g_uri_get_host (uri));
    a->port = g_uri_get_port (uri) > 0 ? (guint)g_uri_get_port (uri)
        : sentinel                     ? 26379
                                       : 6379;
    /* GUri has decoded them already ("p%40ss" is "p@ss"). */
    if (g_uri_get_user (uri) && *g_uri_get_user (uri))
      a->user = g_strdup (g_uri_get_user (uri));
    if (g_uri_get_password (uri))
      a->password = g_strdup (g_uri_get_password (uri));
    if (!parse_path (a, g_uri_get_path (uri), sentinel))
      g_clear_pointer (&a, address_free);
  }
  /* Neither the text nor GUri's message (which quotes parts of it) is
   * shown: it may hold a password. */
  if (a == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--redis takes redis://[[user]:password@]host[:port][/db] or "
        "redis-sentinel://[[user]:password@]host[:port]/GROUP[/db], "
        "comma-separated for several, each a whole URL; percent-encode "
        "@ : / ? # in a password (rediss:// is not supported)");
  g_clear_pointer (&uri, g_uri_unref);
  return a;
}

GPtrArray *
va_redis_parse_urls (const gchar *urls, GError **error)
{
  GPtrArray *list =
      g_ptr_array_new_with_free_func ((GDestroyNotify)address_free);
  gchar **parts = g_strsplit (urls ? urls : "", ",", -1);
  guint i;

  for (i = 0; parts[i]; i++) {
    VaRedisAddress *a;
    if (*g_strstrip (parts[i]) == '\0')
      continue;
    a = parse_one (parts[i], error);
    if (a == NULL) {
      g_ptr_array_unref (list);
      list = NULL;
      break;
    }
    g_ptr_array_add (list, a);
  }
  g_strfreev (parts);
  if (list && list->len == 0) {
    g_set_error (
        error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "--redis is empty");
    g_ptr_array_unref (list);
    list = NULL;
  }
  return list;
}

/* ---- Commands ---- */

static Owner *
owner_ref (Owner *o)
{
  g_atomic_int_inc (&o->ref);
  return o;
}

static void
owner_unref (Owner *o)
{
  if (g_atomic_int_dec_and_test (&o->ref))
    g_free (o);
}

static void
cmd_free (Cmd *c)
{
  g_strfreev (c->argv);
  g_free (c);
}

typedef struct
{
  Owner *owner;
  VaRedisReplyFunc done;
  gpointer user_data;
  redisReply *reply;
  GError *error;
} Delivery;

static gboolean
deliver (gpointer data)
{
  Delivery *d = data;

  if (d->owner->alive)
    d->done (d->reply, d->error, d->user_data);
  return G_SOURCE_REMOVE;
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  owner_unref (d->owner);
  if (d->reply)
    freeReplyObject (d->reply);
  g_clear_error (&d->error);
  g_free (d);
}

/* Always through an idle source, never at once: a caller on the main
 * context must not see its callback before the call returns. */
static void
post (VaRedis *r, GSourceFunc func, gpointer data, GDestroyNotify destroy)
{
  GSource *s = g_idle_source_new ();

  g_source_set_callback (s, func, data, destroy);
  g_source_attach (s, r->main_context);
  g_source_unref (s);
}

/* Hands @reply (taken) or @why to the query's callback on the main context. */
static void
answer (VaRedis *r, Cmd *c, redisReply *reply, const gchar *why)
{
  Delivery *d = g_new0 (Delivery, 1);

  d->owner = owner_ref (r->owner);
  d->done = c->done;
  d->user_data = c->user_data;
  d->reply = reply;
  if (reply == NULL)
    d->error = g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
        "Redis is unavailable: %s", why ? why : "not connected");
  post (r, deliver, d, delivery_free);
}

/* A command that will not run: a query is answered with @why. */
static void
drop (VaRedis *r, Cmd *c, const gchar *why)
{
  if (c->done)
    answer (r, c, NULL, why);
  cmd_free (c);
}

void
va_redis_command (VaRedis *r, const gchar *const *argv)
{
  Cmd *c;

  g_mutex_lock (&r->lock);
  if (!r->up || r->stopping || r->queue.length >= QUEUE_MAX) {
    /* Written again in full by the resync that follows reconnection. */
    r->resync_needed = TRUE;
    r->dropped++;
    g_mutex_unlock (&r->lock);
    return;
  }
  c = g_new0 (Cmd, 1);
  c->argv = g_strdupv ((gchar **)argv);
  g_queue_push_tail (&r->queue, c);
  g_cond_signal (&r->cond);
  g_mutex_unlock (&r->lock);
}

/* Inserts @c after the queries already queued, ahead of every write. */
static void
queue_query_locked (VaRedis *r, Cmd *c)
{
  GList *l = r->queue.head;

  while (l && ((Cmd *)l->data)->done)
    l = l->next;
  if (l)
    g_queue_insert_before (&r->queue, l, c);
  else
    g_queue_push_tail (&r->queue, c);
}

void
va_redis_query (VaRedis *r, const gchar *const *argv, VaRedisReplyFunc done,
    gpointer user_data)
{
  Cmd *c = g_new0 (Cmd, 1);
  gchar *why = NULL;

  c->argv = g_strdupv ((gchar **)argv);
  c->done = done;
  c->user_data = user_data;
  g_mutex_lock (&r->lock);
  if (r->up && !r->stopping) {
    queue_query_locked (r, c);
    g_cond_signal (&r->cond);
    c = NULL;
  } else {
    why = g_strdup (r->error);
  }
  g_mutex_unlock (&r->lock);
  if (c)
    drop (r, c, why);
  g_free (why);
}

gchar *
va_redis_get_error (VaRedis *r)
{
  gchar *why;

  g_mutex_lock (&r->lock);
  why = r->up ? NULL : g_strdup (r->error ? r->error : "not connected yet");
  g_mutex_unlock (&r->lock);
  return why;
}

/* ---- Status to the main context ---- */

typedef struct
{
  Owner *owner;
  gboolean changed; /* report @up and @detail */
  gboolean up;
  gboolean resync;
  gchar *detail;
} Status;

static gboolean
report_status (gpointer data)
{
  Status *s = data;
  Owner *o = s->owner;

  if (o->alive && s->changed && o->callbacks.status)
    o->callbacks.status (s->up, s->detail, o->user_data);
  if (o->alive && s->resync && o->callbacks.resync)
    o->callbacks.resync (o->user_data);
  return G_SOURCE_REMOVE;
}

static void
status_free (gpointer data)
{
  Status *s = data;

  owner_unref (s->owner);
  g_free (s->detail);
  g_free (s);
}

static void
post_status (VaRedis *r, gboolean changed, gboolean up, gboolean resync,
    const gchar *detail)
{
  Status *s = g_new0 (Status, 1);

  s->owner = owner_ref (r->owner);
  s->changed = changed;
  s->up = up;
  s->resync = resync;
  s->detail = g_strdup (detail);
  post (r, report_status, s, status_free);
}

/* ---- The Redis thread ---- */

/* Where a connection goes: the address's own host and port, or the
 * primary a Sentinel or a Cluster node pointed to. */
typedef struct
{
  const gchar *host;
  guint port;
} Node;

/* Runs one command synchronously. Returns the reply (free it) unless the
 * connection failed or Redis answered an error; then @why says which. */
static redisReply *
run (redisContext *ctx, const Node *n, gchar **why, const gchar *const *argv)
{
  redisReply *reply;
  guint argc = g_strv_length ((gchar **)argv);

  reply = redisCommandArgv (ctx, (int)argc, (const char **)argv, NULL);
  if (reply == NULL) {
    *why = g_strdup_printf (
        "%s:%u: %s: %s", n->host, n->port, argv[0], ctx->errstr);
  } else if (reply->type == REDIS_REPLY_ERROR) {
    *why = g_strdup_printf ("%s:%u: %s refused: %.*s", n->host, n->port,
        argv[0], (int)reply->len, reply->str);
    freeReplyObject (reply);
    reply = NULL;
  }
  return reply;
}

static gboolean
run_ok (redisContext *ctx, const Node *n, gchar **why, const gchar *const *argv)
{
  redisReply *reply = run (ctx, n, why, argv);

  if (reply)
    freeReplyObject (reply);
  return reply != NULL;
}

static redisContext *
open_socket (const Node *n, gchar **why)
{
  struct timeval tv = { 0, CONNECT_TIMEOUT_MS * 1000 };
  struct timeval cmd_tv = { COMMAND_TIMEOUT_MS / 1000,
    (COMMAND_TIMEOUT_MS % 1000) * 1000 };
  redisContext *ctx = redisConnectWithTimeout (n->host, (int)n->port, tv);

  if (ctx == NULL || ctx->err) {
    *why = g_strdup_printf ("%s:%u: connect: %s", n->host, n->port,
        ctx ? ctx->errstr : "out of memory");
    redisFree (ctx);
    return NULL;
  }
  redisSetTimeout (ctx, cmd_tv);
  return ctx;
}

static gboolean
authenticate (
    redisContext *ctx, const VaRedisAddress *a, const Node *n, gchar **why)
{
  const gchar *auth_user[] = { "AUTH", a->user, a->password, NULL };
  const gchar *auth[] = { "AUTH", a->password, NULL };

  /* ACL users since redis 6 */
  return !a->password || run_ok (ctx, n, why, a->user ? auth_user : auth);
}

static gboolean
is_cluster_node (
    redisContext *ctx, const Node *n, gboolean *cluster, gchar **why)
{
  const gchar *info[] = { "INFO", "cluster", NULL };
  redisReply *reply = run (ctx, n, why, info);

  if (reply == NULL)
    return FALSE;
  *cluster = reply->type == REDIS_REPLY_STRING &&
      strstr (reply->str, "cluster_enabled:1");
  freeReplyObject (reply);
  return TRUE;
}

/* The primary serving the slot of VA_REDIS_KEY_TAG, from CLUSTER SLOTS:
 * [[first, last, [host, port, id], replicas...], ...]. */
static gboolean
find_slot_owner (
    redisContext *ctx, const Node *n, gchar **host, guint *port, gchar **why)
{
  const gchar *keyslot[] = { "CLUSTER", "KEYSLOT", VA_REDIS_KEY_TAG, NULL };
  const gchar *slots[] = { "CLUSTER", "SLOTS", NULL };
  redisReply *slot = run (ctx, n, why, keyslot), *map;
  gsize i;

  if (slot == NULL || (map = run (ctx, n, why, slots)) == NULL) {
    if (slot)
      freeReplyObject (slot);
    return FALSE;
  }
  for (i = 0; *host == NULL && i < map->elements; i++) {
    redisReply *range = map->element[i], *owner;
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3 ||
        slot->integer < range->element[0]->integer ||
        slot->integer > range->element[1]->integer)
      continue;
    owner = range->element[2];
    if (owner->type != REDIS_REPLY_ARRAY || owner->elements < 2)
      continue;
    /* An empty host means "the node you asked"; "?" that the node has
     * no address of the preferred kind (cluster-preferred-endpoint-type) */
    if (owner->element[0]->type != REDIS_REPLY_STRING ||
        g_strcmp0 (owner->element[0]->str, "?") == 0) {
      *why = g_strdup_printf ("%s:%u: the Cluster gives no address for the "
                              "primary of slot %lld (set "
                              "cluster-preferred-endpoint-type ip)",
          n->host, n->port, slot->integer);
      break;
    }
    *host =
        g_strdup (owner->element[0]->len ? owner->element[0]->str : n->host);
    *port = (guint)owner->element[1]->integer;
  }
  if (*host == NULL && *why == NULL)
    *why = g_strdup_printf ("%s:%u: no Cluster node serves slot %lld "
                            "(is the cluster still forming?)",
        n->host, n->port, slot->integer);
  freeReplyObject (slot);
  freeReplyObject (map);
  return *host != NULL;
}

static gboolean
is_primary (redisContext *ctx, const Node *n, gchar **why)
{
  const gchar *role_cmd[] = { "ROLE", NULL };
  redisReply *reply = run (ctx, n, why, role_cmd);
  const gchar *role;
  gboolean ok;

  if (reply == NULL)
    return FALSE;
  role = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
          reply->element[0]->type == REDIS_REPLY_STRING
      ? reply->element[0]->str
      : "";
  ok = g_str_equal (role, "master");
  if (g_str_equal (role, "sentinel"))
    *why = g_strdup_printf ("%s:%u is a Sentinel: give it as "
                            "redis-sentinel://%s:%u/GROUP",
        n->host, n->port, n->host, n->port);
  else if (!ok)
    *why = g_strdup_printf (
        "%s:%u is a replica, not the primary", n->host, n->port);
  freeReplyObject (reply);
  return ok;
}

/* Connects to the data node @n: AUTH, then either SELECT, or in a Cluster
 * a hop to the slot's primary (@hops left); then checks it is a primary. */
static redisContext *
connect_node (const VaRedisAddress *a, const Node *n, guint hops, gchar **why)
{
  g_autofree gchar *db = g_strdup_printf ("%u", a->db);
  const gchar *select[] = { "SELECT", db, NULL };
  redisContext *ctx = open_socket (n, why);
  gboolean cluster = FALSE, ok;

  if (ctx == NULL)
    return NULL;
  ok = authenticate (ctx, a, n, why) && is_cluster_node (ctx, n, &cluster, why);
  if (ok && cluster) {
    g_autofree gchar *host = NULL;
    guint port = 0;
    if (a->db) {
      *why = g_strdup_printf ("%s:%u is a Cluster node: a Cluster has only "
                              "db 0 (drop /%u from the URL)",
          n->host, n->port, a->db);
      ok = FALSE;
    } else if ((ok = find_slot_owner (ctx, n, &host, &port, why)) &&
        (port != n->port || !g_str_equal (host, n->host))) {
      Node owner = { host, port };
      redisFree (ctx);
      if (hops == 0) {
        *why = g_strdup_printf (
            "%s:%u: the Cluster's slot map keeps moving", n->host, n->port);
        return NULL;
      }
      return connect_node (a, &owner, hops - 1, why);
    }
  } else if (ok && a->db) {
    ok = run_ok (ctx, n, why, select);
  }
  if (ok)
    ok = is_primary (ctx, n, why);
  if (!ok)
    g_clear_pointer (&ctx, redisFree);
  return ctx;
}

/* Asks @sentinel which node is its group's primary: TRUE with @host (free
 * it) and @port, or FALSE with @why. */
static gboolean
ask_sentinel (redisContext *sentinel, const VaRedisAddress *a, gchar **host,
    guint *port, gchar **why)
{
  const gchar *ask[] = { "SENTINEL", "get-master-addr-by-name",
    a->sentinel_group, NULL };
  Node n = { a->host, a->port };
  redisReply *reply = run (sentinel, &n, why, ask);
  gboolean ok;

  if (reply == NULL)
    return FALSE;
  ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
      reply->element[0]->type == REDIS_REPLY_STRING &&
      reply->element[1]->type == REDIS_REPLY_STRING;
  if (ok) {
    *host = g_strdup (reply->element[0]->str);
    *port = (guint)g_ascii_strtoull (reply->element[1]->str, NULL, 10);
  } else {
    *why = g_strdup_printf ("Sentinel %s:%u does not monitor a group named "
                            "\"%s\" (sentinel monitor GROUP ...)",
        a->host, a->port, a->sentinel_group);
  }
  freeReplyObject (reply);
  return ok;
}

/* Connects to the primary the Sentinel at @a names; the connection to the
 * Sentinel is kept in @sentinel, to watch for a failover. */
static redisContext *
connect_via_sentinel (
    const VaRedisAddress *a, redisContext **sentinel, gchar **why)
{
  Node n = { a->host, a->port };
  g_autofree gchar *host = NULL;
  guint port = 0;
  redisContext *ctx = NULL;

  *sentinel = open_socket (&n, why);
  if (*sentinel && ask_sentinel (*sentinel, a, &host, &port, why)) {
    Node primary = { host, port };
    ctx = connect_node (a, &primary, 1, why);
  }
  if (ctx == NULL)
    g_clear_pointer (sentinel, redisFree);
  return ctx;
}

static redisContext *
connect_one (const VaRedisAddress *a, redisContext **sentinel, gchar **why)
{
  Node n = { a->host, a->port };

  if (a->sentinel_group)
    return connect_via_sentinel (a, sentinel, why);
  /* A Cluster node hands us to the slot's primary: one hop, and one more
   * if the map changed in between. */
  return connect_node (a, &n, 2, why);
}

/* Replaces the watched Sentinel, which stopped answering, by the first
 * other one listed that takes a connection. */
static void
watch_another_sentinel (VaRedis *r)
{
  const VaRedisAddress *dead = r->watched;

  g_clear_pointer (&r->sentinel, redisFree);
  r->watched = NULL;
  for (guint i = 0; r->sentinel == NULL && i < r->addresses->len; i++) {
    const VaRedisAddress *a = g_ptr_array_index (r->addresses, i);
    Node n = { a->host, a->port };
    g_autofree gchar *why = NULL;
    if (a == dead || a->sentinel_group == NULL)
      continue;
    if ((r->sentinel = open_socket (&n, &why)))
      r->watched = a;
  }
  if (r->sentinel == NULL)
    GST_WARNING ("redis: no Sentinel answers; the primary is not watched "
                 "until the next connection");
}

/* Once a tick with a Sentinel: has it made another node the primary? The
 * old one takes writes until Sentinel demotes it, seconds later, and they
 * would be lost then. Returns why to reconnect, or NULL. */
static gchar *
sentinel_moved_primary (VaRedis *r)
{
  g_autofree gchar *host = NULL, *why = NULL;
  guint port = 0;

  if (r->sentinel == NULL)
    return NULL;
  if (!ask_sentinel (r->sentinel, r->watched, &host, &port, &why)) {
    GST_WARNING ("redis: %s", why);
    watch_another_sentinel (r);
    return NULL;
  }
  if (port == (guint)r->ctx->tcp.port && g_str_equal (host, r->ctx->tcp.host))
    return NULL;
  return g_strdup_printf ("Sentinel %s:%u made %s:%u the primary",
      r->watched->host, r->watched->port, host, port);
}

/* Tries every address in order. Returns TRUE once connected. */
static gboolean
try_connect (VaRedis *r)
{
  gchar *why = NULL;
  gboolean resync;
  guint i;

  for (i = 0; r->ctx == NULL && i < r->addresses->len; i++) {
    VaRedisAddress *a = g_ptr_array_index (r->addresses, i);
    g_clear_pointer (&why, g_free);
    r->ctx = connect_one (a, &r->sentinel, &why);
    r->watched = r->sentinel ? a : NULL;
    if (r->ctx)
      GST_INFO ("redis: connected to %s:%d (db %u) from %s:%u",
          r->ctx->tcp.host, r->ctx->tcp.port, a->db, a->host, a->port);
  }
  g_mutex_lock (&r->lock);
  if (r->ctx == NULL) {
    g_free (r->error);
    r->error = g_steal_pointer (&why);
    g_mutex_unlock (&r->lock);
    return FALSE;
  }
  r->up = TRUE;
  resync = r->resync_needed;
  r->resync_needed = FALSE;
  if (r->dropped)
    GST_INFO ("redis: %" G_GUINT64_FORMAT " writes were dropped while it "
              "was down; writing the state again",
        r->dropped);
  r->dropped = 0;
  g_mutex_unlock (&r->lock);
  /* The backoff is reset by the first heartbeat that succeeds, not here:
   * a server that accepts connections and then refuses every command
   * (CLUSTERDOWN, LOADING) would be retried in a tight loop. */
  r->next_tick = 0;
  post_status (r, TRUE, TRUE, resync, NULL);
  return TRUE;
}

/* Drops the connection: queued queries fail, queued writes are dropped
 * (a resync follows the next connection). */
static void
disconnect (VaRedis *r, const gchar *why)
{
  GQueue lost = G_QUEUE_INIT;
  Cmd *c;
  gboolean was_up;

  g_clear_pointer (&r->ctx, redisFree);
  g_clear_pointer (&r->sentinel, redisFree);
  r->watched = NULL;
  g_mutex_lock (&r->lock);
  was_up = r->up;
  r->up = FALSE;
  r->resync_needed = TRUE;
  g_free (r->error);
  r->error = g_strdup (why);
  lost = r->queue;
  g_queue_init (&r->queue);
  r->dropped += lost.length;
  g_mutex_unlock (&r->lock);
  while ((c = g_queue_pop_head (&lost)))
    drop (r, c, why);
  if (was_up) {
    GST_WARNING ("redis: lost: %s; new calls go on locally, state is "
                 "written again when it returns",
        why);
    post_status (r, TRUE, FALSE, FALSE, why);
  }
}

/* Waits (interruptibly) before the next connection attempt. */
static void
back_off (VaRedis *r)
{
  gint64 until;
  guint ms;

  /* Equal jitter: instances that lost the same server spread out. */
  ms = gst_voice_backoff_next (&r->backoff);
  until = g_get_monotonic_time () + ms * G_TIME_SPAN_MILLISECOND;
  g_mutex_lock (&r->lock);
  while (!r->stopping && g_cond_wait_until (&r->cond, &r->lock, until))
    ;
  g_mutex_unlock (&r->lock);
}

/* Takes up to BATCH_MAX commands, waiting until one is queued, the next
 * tick is due, or the thread must stop. */
static void
take_batch (VaRedis *r, GPtrArray *batch)
{
  g_mutex_lock (&r->lock);
  while (r->queue.length == 0 && !r->stopping &&
      g_cond_wait_until (&r->cond, &r->lock, r->next_tick))
    ;
  while (batch->len < BATCH_MAX && r->queue.length > 0)
    g_ptr_array_add (batch, g_queue_pop_head (&r->queue));
  g_mutex_unlock (&r->lock);
}

/* Errors that mean another node now serves our keys, or soon will: after
 * a failover (READONLY, MASTERDOWN), a Cluster change (MOVED, ASK,
 * CLUSTERDOWN, TRYAGAIN) or a restart (LOADING). Reconnecting, with
 * backoff, finds it again. */
static gboolean
is_elsewhere (const redisReply *reply)
{
  static const gchar *const codes[] = { "READONLY ", "MASTERDOWN ", "MOVED ",
    "ASK ", "CLUSTERDOWN ", "TRYAGAIN ", "LOADING ", NULL };

  for (guint i = 0; reply->type == REDIS_REPLY_ERROR && codes[i]; i++)
    if (g_str_has_prefix (reply->str, codes[i]))
      return TRUE;
  return FALSE;
}

/* Pipelines @batch in one round trip. Returns an error text (free it) if
 * the connection failed; the unanswered commands are then dropped. */
static gchar *
run_batch (VaRedis *r, GPtrArray *batch)
{
  gchar *why = NULL;
  guint i;

  for (i = 0; i < batch->len; i++) {
    Cmd *c = g_ptr_array_index (batch, i);
    redisAppendCommandArgv (
        r->ctx, (int)g_strv_length (c->argv), (const char **)c->argv, NULL);
  }
  for (i = 0; i < batch->len; i++) {
    Cmd *c = g_ptr_array_index (batch, i);
    redisReply *reply = NULL;
    if (why == NULL && redisGetReply (r->ctx, (void **)&reply) != REDIS_OK)
      why = g_strdup_printf ("%s: %s", c->argv[0], r->ctx->errstr);
    if (why == NULL && is_elsewhere (reply))
      why = g_strdup_printf ("%s: %s", c->argv[0], reply->str);
    else if (why == NULL && reply->type == REDIS_REPLY_ERROR && !c->done)
      GST_WARNING ("redis: %s refused: %s", c->argv[0], reply->str);
    if (why || c->done == NULL) {
      if (reply)
        freeReplyObject (reply);
      drop (r, c, why);
    } else {
      answer (r, c, reply, NULL);
      cmd_free (c);
    }
  }
  g_ptr_array_set_size (batch, 0);
  return why;
}

static gboolean
must_stop (VaRedis *r)
{
  gboolean stop;

  g_mutex_lock (&r->lock);
  stop = r->stopping &&
      (r->ctx == NULL || r->queue.length == 0 ||
          g_get_monotonic_time () > r->stop_deadline);
  g_mutex_unlock (&r->lock);
  return stop;
}

static void
tick (VaRedis *r)
{
  gint64 now = g_get_monotonic_time ();
  gchar *why = NULL, *refused = NULL;

  if (now < r->next_tick)
    return;
  r->next_tick = now + TICK_US;
  why = sentinel_moved_primary (r);
  if (why == NULL && r->callbacks.tick &&
      !r->callbacks.tick (r->ctx, &refused, r->user_data))
    why = g_strdup_printf ("heartbeat: %s",
        refused           ? refused
            : r->ctx->err ? r->ctx->errstr
                          : "failed");
  g_free (refused);
  if (why)
    disconnect (r, why);
  else
    gst_voice_backoff_reset (&r->backoff);
  g_free (why);
}

/* Writes were dropped while connected (the queue was full): once it has
 * drained, the state is written again. */
static void
resync_if_dropped (VaRedis *r)
{
  gboolean resync;

  g_mutex_lock (&r->lock);
  resync = r->up && r->resync_needed && r->queue.length == 0;
  if (resync) {
    GST_WARNING ("redis: the queue overflowed (%" G_GUINT64_FORMAT
                 " writes dropped); writing the state again",
        r->dropped);
    r->resync_needed = FALSE;
    r->dropped = 0;
  }
  g_mutex_unlock (&r->lock);
  if (resync)
    post_status (r, FALSE, TRUE, TRUE, NULL);
}

static gpointer
redis_main (gpointer data)
{
  VaRedis *r = data;
  GPtrArray *batch = g_ptr_array_new ();
  gchar *why;
  Cmd *c;

  while (!must_stop (r)) {
    if (r->ctx == NULL && !try_connect (r)) {
      back_off (r);
      continue;
    }
    tick (r);
    if (r->ctx == NULL) {
      back_off (r);
      continue;
    }
    take_batch (r, batch);
    if ((why = run_batch (r, batch))) {
      disconnect (r, why);
      g_free (why);
      back_off (r);
    } else {
      resync_if_dropped (r);
    }
  }
  if (r->ctx && r->callbacks.stop)
    r->callbacks.stop (r->ctx, r->user_data);
  g_clear_pointer (&r->ctx, redisFree);
  g_clear_pointer (&r->sentinel, redisFree);
  /* Whatever is left (stopped while down) is dropped. */
  g_mutex_lock (&r->lock);
  while ((c = g_queue_pop_head (&r->queue)))
    drop (r, c, "shutting down");
  g_mutex_unlock (&r->lock);
  g_ptr_array_unref (batch);
  return NULL;
}

/* ---- Life cycle ---- */

VaRedis *
va_redis_new (const gchar *urls, const VaRedisCallbacks *callbacks,
    gpointer user_data, GError **error)
{
  GPtrArray *addresses = va_redis_parse_urls (urls, error);
  VaRedis *r;

  if (addresses == NULL)
    return NULL;
  r = g_new0 (VaRedis, 1);
  r->addresses = addresses;
  r->backoff.initial_ms = BACKOFF_MIN_MS;
  r->backoff.max_ms = BACKOFF_MAX_MS;
  r->callbacks = *callbacks;
  r->user_data = user_data;
  r->owner = g_new0 (Owner, 1);
  r->owner->ref = 1;
  r->owner->alive = TRUE;
  r->owner->callbacks = *callbacks;
  r->owner->user_data = user_data;
  r->main_context = g_main_context_ref_thread_default ();
  r->resync_needed = TRUE; /* nothing was written yet */
  r->error = g_strdup ("not connected yet");
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  g_queue_init (&r->queue);
  r->thread = g_thread_new ("va-redis", redis_main, r);
  return r;
}

void
va_redis_free (VaRedis *r)
{
  if (r == NULL)
    return;
  g_mutex_lock (&r->lock);
  r->stopping = TRUE;
  r->stop_deadline = g_get_monotonic_time () + STOP_DRAIN_US;
  g_cond_broadcast (&r->cond);
  g_mutex_unlock (&r->lock);
  g_thread_join (r->thread);
  /* Callbacks still posted find their owner gone. */
  r->owner->alive = FALSE;
  owner_unref (r->owner);
  g_main_context_unref (r->main_context);
  g_ptr_array_unref (r->addresses);
  g_free (r->error);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r);
}

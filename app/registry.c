/* voiceagent: the instance registry in Redis (heartbeat, TTL, least load).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Keys:
 *   {voiceagent}:instance:<id>  JSON {"id","url","role","capacity","load",
 *                               "draining"}, written every heartbeat (1 s),
 *                               PX 3000: a dead instance disappears in 3 s
 *   {voiceagent}:instances      SET of ids; members whose key expired are
 *                               removed by whoever sees it first
 *
 * The role ("direct", "worker" or "front"; absent means "direct") keeps
 * the kinds apart: a direct instance redirects callers only to direct
 * ones, a gateway's front places calls only on workers.
 *
 * Every heartbeat also reads the others back, so choosing where to
 * redirect a caller is a lookup in memory, never a Redis round trip.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>
#include "redisstate.h"
#include "registry.h"

#define KEY_PREFIX VA_REDIS_KEY_TAG ":instance:"
#define SET_KEY VA_REDIS_KEY_TAG ":instances"
#define TTL_MS "3000"

typedef struct
{
  gchar *id;
  gchar *url;
  gchar *role;
  guint capacity;
  guint load;
  gboolean draining;
} Instance;

struct _VaRegistry
{
  /* Immutable after va_registry_new */
  gchar *id;
  gchar *key;
  gchar *url;
  gchar *role;
  guint capacity;

  /* Protected by lock */
  GMutex lock;
  guint active;
  gboolean draining;
  GPtrArray *others; /* Instance*, live at the last heartbeat */
  guint live; /* instances seen, this one included */
};

static void
instance_free (Instance *i)
{
  g_free (i->id);
  g_free (i->url);
  g_free (i->role);
  g_free (i);
}

VaRegistry *
va_registry_new (const gchar *url, const gchar *role, guint capacity)
{
  VaRegistry *r = g_new0 (VaRegistry, 1);

  r->role = g_strdup (role);
  r->id = g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
  r->key = g_strconcat (KEY_PREFIX, r->id, NULL);
  r->url = g_strdup (url);
  r->capacity = capacity;
  r->others = g_ptr_array_new_with_free_func ((GDestroyNotify)instance_free);
  g_mutex_init (&r->lock);
  return r;
}

void
va_registry_free (VaRegistry *r)
{
  if (r == NULL)
    return;
  g_ptr_array_unref (r->others);
  g_mutex_clear (&r->lock);
  g_free (r->id);
  g_free (r->key);
  g_free (r->url);
  g_free (r->role);
  g_free (r);
}

const gchar *
va_registry_get_id (VaRegistry *r)
{
  return r->id;
}

void
va_registry_set_load (VaRegistry *r, guint active, gboolean draining)
{
  g_mutex_lock (&r->lock);
  r->active = active;
  r->draining = draining;
  g_mutex_unlock (&r->lock);
}

/* This instance's entry, as JSON (free it). */
static gchar *
describe (VaRegistry *r)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "url");
  json_builder_add_string_value (b, r->url);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, r->role);
  json_builder_set_member_name (b, "capacity");
  json_builder_add_int_value (b, r->capacity);
  g_mutex_lock (&r->lock);
  json_builder_set_member_name (b, "load");
  json_builder_add_int_value (b, r->active);
  json_builder_set_member_name (b, "draining");
  json_builder_add_boolean_value (b, r->draining);
  g_mutex_unlock (&r->lock);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  return json;
}

static Instance *
parse_instance (const gchar *json, gsize len)
{
  JsonParser *p = json_parser_new ();
  Instance *i = NULL;
  JsonObject *o;

  if (json_parser_load_from_data (p, json, (gssize)len, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
    o = json_node_get_object (json_parser_get_root (p));
    i = g_new0 (Instance, 1);
    i->id = g_strdup (json_object_get_string_member_with_default (o, "id", ""));
    i->url =
        g_strdup (json_object_get_string_member_with_default (o, "url", ""));
    i->role = g_strdup (
        json_object_get_string_member_with_default (o, "role", "direct"));
    i->capacity = json_object_get_int_member_with_default (o, "capacity", 0);
    i->load = json_object_get_int_member_with_default (o, "load", 0);
    i->draining =
        json_object_get_boolean_member_with_default (o, "draining", FALSE);
  }
  g_object_unref (p);
  return i;
}

/* Runs @argv; NULL if the connection failed or, with @why set (unless
 * already set, or @why is NULL), if Redis refused it. */
static redisReply *
command (redisContext *ctx, const gchar *const *argv, gint argc, gchar **why)
{
  redisReply *reply = redisCommandArgv (ctx, argc, (const char **)argv, NULL);

  if (reply && reply->type == REDIS_REPLY_ERROR) {
    if (why && *why == NULL)
      *why = g_strdup_printf ("%s refused: %s", argv[0], reply->str);
    freeReplyObject (reply);
    reply = NULL;
  }
  return reply;
}

static gboolean
publish (VaRegistry *r, redisContext *ctx, gchar **why)
{
  gchar *json = describe (r);
  const gchar *set[] = { "SET", r->key, json, "PX", TTL_MS };
  const gchar *add[] = { "SADD", SET_KEY, r->id };
  redisReply *a = command (ctx, set, G_N_ELEMENTS (set), why);
  redisReply *b = a ? command (ctx, add, G_N_ELEMENTS (add), why) : NULL;

  g_free (json);
  if (a)
    freeReplyObject (a);
  if (b)
    freeReplyObject (b);
  return b != NULL;
}

/* Reads every member's entry; removes the members whose key expired. */
static gboolean
read_all (VaRegistry *r, redisContext *ctx, GPtrArray *others, guint *live,
    gchar **why)
{
  const gchar *members[] = { "SMEMBERS", SET_KEY };
  redisReply *ids = command (ctx, members, G_N_ELEMENTS (members), why), *vals;
  GPtrArray *argv;
  guint i;

  if (ids == NULL || ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) {
    if (ids)
      freeReplyObject (ids);
    return ids != NULL;
  }
  argv = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (argv, g_strdup ("MGET"));
  for (i = 0; i < ids->elements; i++)
    g_ptr_array_add (
        argv, g_strconcat (KEY_PREFIX, ids->element[i]->str, NULL));
  vals = command (ctx, (const gchar *const *)argv->pdata, argv->len, why);
  for (i = 0; vals && i < vals->elements && i < ids->elements; i++) {
    redisReply *v = vals->element[i];
    Instance *inst;
    if (v->type != REDIS_REPLY_STRING) {
      const gchar *rem[] = { "SREM", SET_KEY, ids->element[i]->str };
      redisReply *x = command (ctx, rem, G_N_ELEMENTS (rem), NULL);
      if (x)
        freeReplyObject (x);
      continue;
    }
    (*live)++;
    inst = parse_instance (v->str, v->len);
    if (inst && !g_str_equal (inst->id, r->id))
      g_ptr_array_add (others, inst);
    else if (inst)
      instance_free (inst);
  }
  g_ptr_array_unref (argv);
  freeReplyObject (ids);
  if (vals)
    freeReplyObject (vals);
  return vals != NULL;
}

gboolean
va_registry_beat (VaRegistry *r, redisContext *ctx, gchar **why)
{
  GPtrArray *others =
      g_ptr_array_new_with_free_func ((GDestroyNotify)instance_free);
  guint live = 0;
  gboolean ok = publish (r, ctx, why) && read_all (r, ctx, others, &live, why);

  g_mutex_lock (&r->lock);
  if (ok) {
    g_ptr_array_unref (r->others);
    r->others = g_steal_pointer (&others);
    r->live = live;
  }
  g_mutex_unlock (&r->lock);
  g_clear_pointer (&others, g_ptr_array_unref);
  return ok && ctx->err == 0;
}

void
va_registry_leave (VaRegistry *r, redisContext *ctx)
{
  const gchar *del[] = { "DEL", r->key };
  const gchar *rem[] = { "SREM", SET_KEY, r->id };
  redisReply *a = command (ctx, del, G_N_ELEMENTS (del), NULL);
  redisReply *b = command (ctx, rem, G_N_ELEMENTS (rem), NULL);

  if (a)
    freeReplyObject (a);
  if (b)
    freeReplyObject (b);
}

void
va_registry_forget (VaRegistry *r)
{
  g_mutex_lock (&r->lock);
  g_ptr_array_set_size (r->others, 0);
  r->live = 0;
  g_mutex_unlock (&r->lock);
}

gchar *
va_registry_pick (VaRegistry *r)
{
  return va_registry_pick_role (r, r->role, NULL);
}

gchar *
va_registry_pick_role (
    VaRegistry *r, const gchar *role, const gchar *const *exclude)
{
  Instance *best = NULL;
  gdouble best_free = 0;
  gchar *url = NULL;
  guint i;

  g_mutex_lock (&r->lock);
  for (i = 0; i < r->others->len; i++) {
    Instance *inst = g_ptr_array_index (r->others, i);
    gdouble room;
    if (inst->draining || inst->load >= inst->capacity || !*inst->url ||
        g_strcmp0 (inst->role, role) != 0 ||
        (exclude && g_strv_contains (exclude, inst->url)))
      continue;
    /* Free room as a share of capacity: small and big instances fill
     * evenly. */
    room = 1.0 - (gdouble)inst->load / inst->capacity;
    if (best == NULL || room > best_free) {
      best = inst;
      best_free = room;
    }
  }
  if (best) {
    best->load++;
    url = g_strdup (best->url);
  }
  g_mutex_unlock (&r->lock);
  return url;
}

guint
va_registry_count (VaRegistry *r)
{
  guint n;

  g_mutex_lock (&r->lock);
  n = r->live;
  g_mutex_unlock (&r->lock);
  return n;
}

/* voiceagent: a call's live state in Redis, for resuming it elsewhere.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One hash per call, keyed by its resume token:
 *
 *   {voiceagent}:call:<token>  owner, call, agent, vars, state, end_reason,
 *                              history, transcript, turns, started, resumes
 *
 * Every field is written whole with its latest value, so a write lost
 * while Redis was down is made good by writing again (VaRedis resync).
 * Writes after the first go through a small Lua script that checks the
 * owner: once another instance resumed the call, the old instance's late
 * writes are ignored.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gio/gio.h>
#include "callstate.h"

#define KEY_PREFIX VA_REDIS_KEY_TAG ":call:"

/* KEYS[1] the call, ARGV[1] the owner, ARGV[2] the TTL, then field/value
 * pairs. Returns 0 when another instance owns the call. */
static const gchar guarded_write[] =
    "local o = redis.call('HGET', KEYS[1], 'owner')\n"
    "if o and o ~= ARGV[1] then return 0 end\n"
    "if #ARGV > 2 then\n"
    "  redis.call('HSET', KEYS[1], 'owner', ARGV[1], unpack(ARGV, 3))\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return 1\n";

void
va_stored_call_free (VaStoredCall *c)
{
  if (c == NULL)
    return;
  g_free (c->owner);
  g_free (c->call_id);
  g_free (c->agent);
  g_free (c->vars);
  g_free (c->state);
  g_free (c->end_reason);
  g_free (c->history);
  g_free (c->transcript);
  g_free (c->turns);
  g_free (c);
}

static gchar *
key_of (const gchar *token)
{
  return g_strconcat (KEY_PREFIX, token, NULL);
}

/* EVAL guarded_write with @owner, @ttl_s and @fields. */
static void
write_guarded (VaRedis *redis, const gchar *token, const gchar *owner,
    guint ttl_s, const gchar *const *fields)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (argv, g_strdup ("EVAL"));
  g_ptr_array_add (argv, g_strdup (guarded_write));
  g_ptr_array_add (argv, g_strdup ("1"));
  g_ptr_array_add (argv, key_of (token));
  g_ptr_array_add (argv, g_strdup (owner));
  g_ptr_array_add (argv, g_strdup_printf ("%u", ttl_s));
  for (; fields && fields[0] && fields[1]; fields += 2) {
    g_ptr_array_add (argv, g_strdup (fields[0]));
    g_ptr_array_add (argv, g_strdup (fields[1]));
  }
  g_ptr_array_add (argv, NULL);
  va_redis_command (redis, (const gchar *const *)argv->pdata);
  g_ptr_array_unref (argv);
}

void
va_call_state_claim (VaRedis *redis, const gchar *token, const gchar *owner,
    const gchar *const *fields)
{
  gchar *key = key_of (token);
  const gchar *take[] = { "HSET", key, "owner", owner, "state", "live", NULL };

  /* Unconditional: the caller came to us with the token. */
  va_redis_command (redis, take);
  write_guarded (redis, token, owner, VA_CALL_STATE_LIVE_TTL_S, fields);
  g_free (key);
}

void
va_call_state_update (VaRedis *redis, const gchar *token, const gchar *owner,
    const gchar *const *fields)
{
  write_guarded (redis, token, owner, VA_CALL_STATE_LIVE_TTL_S, fields);
}

void
va_call_state_end (
    VaRedis *redis, const gchar *token, const gchar *owner, const gchar *reason)
{
  const gchar *fields[] = { "state", "ended", "end_reason", reason, NULL };

  write_guarded (redis, token, owner, VA_CALL_STATE_ENDED_TTL_S, fields);
}

/* ---- Loading ---- */

typedef struct
{
  VaCallStateLoaded done;
  gpointer user_data;
} Load;

static void
set_field (VaStoredCall *c, const gchar *name, const gchar *value)
{
  struct
  {
    const gchar *name;
    gchar **field;
  } map[] = {
    { "owner", &c->owner },
    { "call", &c->call_id },
    { "agent", &c->agent },
    { "vars", &c->vars },
    { "state", &c->state },
    { "end_reason", &c->end_reason },
    { "history", &c->history },
    { "transcript", &c->transcript },
    { "turns", &c->turns },
  };
  guint i;

  if (g_str_equal (name, "started"))
    c->started_us = g_ascii_strtoll (value, NULL, 10);
  else if (g_str_equal (name, "resumes"))
    c->resumes = (guint)g_ascii_strtoull (value, NULL, 10);
  for (i = 0; i < G_N_ELEMENTS (map); i++) {
    if (g_str_equal (name, map[i].name)) {
      g_free (*map[i].field);
      *map[i].field = g_strdup (value);
    }
  }
}

static VaStoredCall *
parse_hash (const redisReply *reply)
{
  VaStoredCall *c;
  gsize i;

  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2)
    return NULL;
  c = g_new0 (VaStoredCall, 1);
  for (i = 0; i + 1 < reply->elements; i += 2) {
    const redisReply *k = reply->element[i], *v = reply->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
      set_field (c, k->str, v->str);
  }
  if (c->agent == NULL || c->owner == NULL) {
    va_stored_call_free (c);
    return NULL;
  }
  return c;
}

static void
loaded (const redisReply *reply, const GError *error, gpointer data)
{
  Load *l = data;
  GError *err = NULL;
  VaStoredCall *c = NULL;

  if (reply && reply->type == REDIS_REPLY_ERROR)
    err = g_error_new (
        G_IO_ERROR, G_IO_ERROR_FAILED, "Redis refused: %s", reply->str);
  else if (reply)
    c = parse_hash (reply);
  l->done (c, error ? error : err, l->user_data);
  g_clear_error (&err);
  g_free (l);
}

void
va_call_state_load (VaRedis *redis, const gchar *token, VaCallStateLoaded done,
    gpointer user_data)
{
  Load *l = g_new0 (Load, 1);
  gchar *key = key_of (token);
  const gchar *argv[] = { "HGETALL", key, NULL };

  l->done = done;
  l->user_data = user_data;
  va_redis_query (redis, argv, loaded, l);
  g_free (key);
}

/* voiceagent: several instances as one service (--redis).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ties the Redis thread (redisstate.c) to the instance registry
 * (registry.c): the heartbeat runs on the Redis thread once a second, so
 * the main context only ever reads the registry's last snapshot.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include "registry.h"
#include "scaleout.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

struct _VaScaleout
{
  /* Immutable after va_scaleout_new */
  VaRegistry *registry; /* thread-safe */
  VaRedis *redis; /* thread-safe */
  VaScaleoutResync resync;
  gpointer user_data;
};

/* (Redis thread) */
static gboolean
on_tick (redisContext *ctx, gchar **why, gpointer data)
{
  VaScaleout *s = data;

  return va_registry_beat (s->registry, ctx, why);
}

/* (Redis thread) */
static void
on_stop (redisContext *ctx, gpointer data)
{
  VaScaleout *s = data;

  va_registry_leave (s->registry, ctx);
}

static void
on_status (gboolean up, const gchar *detail, gpointer data)
{
  VaScaleout *s = data;

  if (up) {
    g_print ("voiceagent: redis: connected; this instance is %s\n",
        va_registry_get_id (s->registry));
  } else {
    g_printerr ("voiceagent: redis: unavailable (%s); calls go on on this "
                "instance, state is written again when it returns\n",
        detail);
    va_registry_forget (s->registry);
  }
}

static void
on_resync (gpointer data)
{
  VaScaleout *s = data;

  s->resync (s->user_data);
}

gchar *
va_scaleout_default_url (const VaConfig *config, guint port)
{
  const gchar *host = config->host;

  gchar *url;

  if (config->advertise_url && *config->advertise_url) {
    url = g_strdup (config->advertise_url);
    while (g_str_has_suffix (url, "/"))
      url[strlen (url) - 1] = '\0';
    return url;
  }
  if (g_str_equal (host, "0.0.0.0") || g_str_equal (host, "::"))
    host = g_get_host_name ();
  if (strchr (host, ':'))
    return g_strdup_printf ("http://[%s]:%u", host, port);
  return g_strdup_printf ("http://%s:%u", host, port);
}

VaScaleout *
va_scaleout_new (const VaConfig *config, const gchar *url,
    VaScaleoutResync resync, gpointer user_data, GError **error)
{
  static const VaRedisCallbacks callbacks = { on_resync, on_status, on_tick,
    on_stop };
  VaScaleout *s = g_new0 (VaScaleout, 1);

  s->resync = resync;
  s->user_data = user_data;
  s->registry =
      va_registry_new (url, va_scaleout_role (config), config->max_calls);
  s->redis = va_redis_new (config->redis, &callbacks, s, error);
  if (s->redis == NULL) {
    va_registry_free (s->registry);
    g_free (s);
    return NULL;
  }
  GST_INFO (
      "scale-out: instance %s at %s", va_registry_get_id (s->registry), url);
  return s;
}

void
va_scaleout_free (VaScaleout *s)
{
  if (s == NULL)
    return;
  va_redis_free (s->redis);
  va_registry_free (s->registry);
  g_free (s);
}

VaRedis *
va_scaleout_get_redis (VaScaleout *s)
{
  return s->redis;
}

const gchar *
va_scaleout_get_instance_id (VaScaleout *s)
{
  return va_registry_get_id (s->registry);
}

void
va_scaleout_set_load (VaScaleout *s, guint active, gboolean draining)
{
  va_registry_set_load (s->registry, active, draining);
}

const gchar *
va_scaleout_role (const VaConfig *config)
{
  if (config->gateway)
    return "front";
  return config->cluster_token ? "worker" : "direct";
}

gchar *
va_scaleout_pick_worker (VaScaleout *s, const gchar *const *exclude)
{
  return va_registry_pick_role (s->registry, "worker", exclude);
}

gchar *
va_scaleout_pick (VaScaleout *s)
{
  return va_registry_pick (s->registry);
}

gchar *
va_scaleout_get_problem (VaScaleout *s)
{
  return va_redis_get_error (s->redis);
}

guint
va_scaleout_count_instances (VaScaleout *s)
{
  return va_registry_count (s->registry);
}

/* voiceagent: the instance registry in Redis (heartbeat, TTL, least load).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

typedef struct _VaRegistry VaRegistry;

/* This instance, reachable at @url (e.g. http://10.0.0.5:8080) in @role
 * ("direct", "worker" or "front"), taking at most @capacity calls. */
VaRegistry *va_registry_new (
    const gchar *url, const gchar *role, guint capacity);
void va_registry_free (VaRegistry *registry);

/* A random id, new each run. */
const gchar *va_registry_get_id (VaRegistry *registry);

/* What the next heartbeat publishes. Any thread. */
void va_registry_set_load (
    VaRegistry *registry, guint active, gboolean draining);

/* Redis thread: publishes this instance (its key lives 3 heartbeats) and
 * reads every live one. Returns FALSE if the connection failed (see
 * ctx->errstr) or Redis refused a command (then @why says which; free
 * it). */
gboolean va_registry_beat (
    VaRegistry *registry, redisContext *ctx, gchar **why);
/* Redis thread: removes this instance at a clean exit. */
void va_registry_leave (VaRegistry *registry, redisContext *ctx);
/* Forgets the other instances (Redis is down: they are unknown). */
void va_registry_forget (VaRegistry *registry);

/* Returns (free it) the URL of the live instance with the most free room,
 * other than this one, of this one's role, not draining and not full; or
 * NULL. The pick
 * counts as one more call there until the next heartbeat, so a burst of
 * redirects spreads out. Any thread. */
gchar *va_registry_pick (VaRegistry *registry);
/* The same among the instances of @role, but none whose URL is in
 * @exclude (NULL-terminated, or NULL): known dead before the registry
 * forgets them. */
gchar *va_registry_pick_role (
    VaRegistry *registry, const gchar *role, const gchar *const *exclude);
/* Live instances seen at the last heartbeat, this one included. */
guint va_registry_count (VaRegistry *registry);

G_END_DECLS

/* voiceagent: several instances as one service (--redis): the Redis
 * connection, the instance registry, and where to send a caller.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "redisstate.h"
#include "vaconfig.h"

G_BEGIN_DECLS

typedef struct _VaScaleout VaScaleout;

/* Redis came back after writes were lost: write every live call's state
 * again. Main context. */
typedef void (*VaScaleoutResync) (gpointer user_data);

/* Connects to config->redis in the background and joins the registry as
 * @url (what callers redirected here use). NULL with @error on a bad
 * --redis. Main context. */
VaScaleout *va_scaleout_new (const VaConfig *config, const gchar *url,
    VaScaleoutResync resync, gpointer user_data, GError **error);
/* Leaves the registry and disconnects. Main context. */
void va_scaleout_free (VaScaleout *scaleout);

VaRedis *va_scaleout_get_redis (VaScaleout *scaleout);
const gchar *va_scaleout_get_instance_id (VaScaleout *scaleout);

/* Published with the next heartbeat. */
void va_scaleout_set_load (
    VaScaleout *scaleout, guint active, gboolean draining);
/* Base URL of the least-loaded other live instance (free it), or NULL. */
gchar *va_scaleout_pick (VaScaleout *scaleout);
/* Gateway mode: the least-loaded live worker's base URL (free it), not
 * one of @exclude (or NULL), or NULL. */
gchar *va_scaleout_pick_worker (
    VaScaleout *scaleout, const gchar *const *exclude);
/* "front" with --gateway, "worker" with a cluster token, else "direct":
 * who this instance is in the registry. */
const gchar *va_scaleout_role (const VaConfig *config);
/* Why Redis is unusable right now (free it), or NULL when it is fine. */
gchar *va_scaleout_get_problem (VaScaleout *scaleout);
/* Live instances at the last heartbeat (this one included). */
guint va_scaleout_count_instances (VaScaleout *scaleout);

/* The URL this instance announces: @config's advertise-url, else
 * http://HOST:PORT (the host name when listening on every address). */
gchar *va_scaleout_default_url (const VaConfig *config, guint port);

G_END_DECLS

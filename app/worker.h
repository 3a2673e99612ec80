/* voiceagent: the worker side of gateway mode.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>
#include "server.h"

G_BEGIN_DECLS

/* /gateway/...: @parts is the path split at '/' ("gateway", ...). */
void va_worker_route (VaServer *server, SoupServerMessage *msg,
    const gchar *method, gchar **parts);

/* Serves /gateway/watch, the WebSocket the front watches a worker by. */
void va_worker_add_watch (VaServer *server);

/* Lets the fronts' watches go (the server is being freed). */
void va_worker_close_watches (VaServer *server);

/* Tells every watching front {"event": @event, "id": @id}. */
void va_worker_tell_fronts (
    VaServer *server, const gchar *event, const gchar *id);

G_END_DECLS

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

G_END_DECLS

/* voiceagent: the front of gateway mode (docs/architecture.md).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include "sdp.h"
#include "server.h"

G_BEGIN_DECLS

typedef struct _VaFront VaFront;

/* Talks to Janus at the config's --gateway and places calls on workers
 * from the registry. Main context, like everything here. */
VaFront *va_front_new (VaServer *server);
void va_front_free (VaFront *front);

/* POST /whip in gateway mode: the caller's peer connection goes to Janus,
 * its pipeline to a worker. Answers @msg (pausing it meanwhile). Takes
 * @offer. */
void va_front_post (VaFront *front, SoupServerMessage *msg, const gchar *agent,
    VaOffer *offer, gint64 post_us);
/* /calls/{id} on a front: every call is a gateway call. Answers @msg. */
gboolean va_front_route_session (VaFront *front, SoupServerMessage *msg,
    const gchar *method, gchar **parts, GHashTable *query);

/* Calls placed and being placed: what --max-calls counts on a front. */
guint va_front_count (VaFront *front);
/* Adds the live calls to @b (in an array) as GET /calls lists them, with
 * the "worker" each runs on. */
void va_front_list_calls (VaFront *front, JsonBuilder *b);
/* Ends every call (shutdown). */
void va_front_end_all (VaFront *front);

G_END_DECLS

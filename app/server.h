/* voiceagent: the HTTP server (WHIP, WHEP, demo page, metrics, health).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "vaconfig.h"

G_BEGIN_DECLS

typedef struct _VaServer VaServer;

/* Loads the templates and listens. Returns NULL with @error naming what
 * is wrong (a template file and line, a busy port). Main context only. */
VaServer *va_server_new (VaConfig *config, GError **error);
void va_server_free (VaServer *server);

guint va_server_get_port (VaServer *server);
guint va_server_get_active_calls (VaServer *server);

/* Stops taking calls; @done runs once every call has ended or after the
 * drain timeout (calls still running are then ended). */
void va_server_drain (VaServer *server, GSourceFunc done, gpointer data);

/* Ends every call now (the drain's done callback still follows). */
void va_server_end_calls (VaServer *server);

G_END_DECLS

/* voiceagent: the front's client of Janus's HTTP API (gateway mode).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _VaJanus VaJanus;

/* A request's outcome: @data is the plugin's answer (or, for an attach,
 * Janus's {"id": handle}), @jsep the SDP it came with; both borrowed, NULL
 * when absent. On failure only @error is set. Main context. */
typedef void (*VaJanusDone) (JsonObject *data, JsonObject *jsep,
    const GError *error, gpointer user_data);

/* Something happened to @handle that nobody asked for: @type is Janus's
 * ("event" with the plugin's @data, "hangup", "webrtcup", "detached",
 * ...), or "lost" when the session died with every handle in it. @handle
 * is 0 for "lost". Main context. */
typedef void (*VaJanusEvent) (
    guint64 handle, const gchar *type, JsonObject *data, gpointer user_data);

/* Opens a session on @url (http://HOST:PORT/janus) in the background,
 * again whenever it is lost, and long-polls its events. @api_secret:
 * Janus's api_secret, or NULL. */
VaJanus *va_janus_new (const gchar *url, const gchar *api_secret,
    VaJanusEvent on_event, gpointer user_data);
void va_janus_free (VaJanus *janus);

/* TRUE while a session is open: calls can be placed. */
gboolean va_janus_is_ready (VaJanus *janus);

/* Attaches a handle to @plugin; done() gets {"id": handle}. */
void va_janus_attach (
    VaJanus *janus, const gchar *plugin, VaJanusDone done, gpointer user_data);
/* Sends @body (and @jsep, or NULL) to @handle's plugin; done() gets the
 * plugin's answer, synchronous or the event that follows the ack. Takes
 * neither. */
void va_janus_message (VaJanus *janus, guint64 handle, JsonObject *body,
    JsonObject *jsep, VaJanusDone done, gpointer user_data);
/* Hands the caller's trickled @candidates (Janus's trickle objects:
 * {"sdpMid","sdpMLineIndex","candidate"}, or {"completed":true} for the
 * end) to @handle's peer connection; done() gets no data once Janus took
 * them (its "ack"), or the error. Takes none of them. */
void va_janus_trickle (VaJanus *janus, guint64 handle, JsonArray *candidates,
    VaJanusDone done, gpointer user_data);
/* Detaches @handle; nothing is reported. */
void va_janus_detach (VaJanus *janus, guint64 handle);
/* Forgets every request of @user_data: their done() is never called. */
void va_janus_cancel (VaJanus *janus, gpointer user_data);

G_END_DECLS

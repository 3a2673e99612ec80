/* A client of Janus's HTTP API (the "Janus API"), for tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct _JanusClient JanusClient;

/* Creates a Janus session at @url (e.g. "http://127.0.0.1:P/janus") and
 * long-polls its events on a thread of its own (each poll is also the
 * session's keep-alive). NULL and @error when Janus does not answer.
 * Every other function must be called from one thread. */
JanusClient *janus_client_new (const gchar *url, GError **error);

/* Destroys the session (if Janus still has it), stops the poll, frees. */
void janus_client_free (JanusClient *client);

guint64 janus_client_get_session (JanusClient *client);

/* Attaches a handle to @plugin (e.g. "janus.plugin.voiceagent"); 0 and
 * @error on failure. */
guint64 janus_client_attach (
    JanusClient *client, const gchar *plugin, GError **error);
gboolean janus_client_detach (
    JanusClient *client, guint64 handle, GError **error);
gboolean janus_client_keepalive (JanusClient *client, GError **error);

/* Sends a "message" to @handle with @body (a JSON object as text) and, if
 * @offer_sdp is not NULL, the jsep {"type":"offer","sdp":...,"trickle":
 * false}. Returns the plugin's data (unref it): from the synchronous
 * "success" or from the event with the request's transaction, whichever
 * the plugin answers with; sets *@answer_sdp (free it; may be NULL) to
 * that event's jsep SDP. NULL and @error on a Janus error ("janus":
 * "error") or after @timeout_ms. */
JsonObject *janus_client_message (JanusClient *client, guint64 handle,
    const gchar *body, const gchar *offer_sdp, gchar **answer_sdp,
    guint timeout_ms, GError **error);

/* Waits for an event from @handle and takes it from the queue. With @key,
 * a plugin event whose data has the string member @key equal to @value
 * (e.g. "voiceagent", "hangup"): returns that data. With @key NULL, a core
 * event whose "janus" is @value ("webrtcup", "hangup", "media"): returns
 * the whole event. Unref it. NULL after @timeout_ms. */
JsonObject *janus_client_wait_event (JanusClient *client, guint64 handle,
    const gchar *key, const gchar *value, guint timeout_ms);

/* GET @url/info: the server's description (unref), or NULL and @error. */
JsonObject *janus_client_get_info (const gchar *url, GError **error);

G_END_DECLS

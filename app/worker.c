/* voiceagent: the worker side of gateway mode (docs/architecture.md).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Behind a media gateway, the caller's peer connection ends in Janus and
 * the front (another voiceagent) asks a worker for the call's pipeline:
 *
 *   POST   /gateway/calls       {"id","agent","token","gateway_host",
 *                                "gateway_port","opus_pt"[,"call_token"]
 *                                [,"resume":true][,"record":true]}
 *                               → 201 {"id","rtp_host","rtp_port"}
 *
 * "resume" (failover: the call's worker died) loads the call's state from
 * Redis under "token" first, so the conversation goes on where it was.
 *   DELETE /gateway/calls/{id}  → 200
 *   GET    /gateway/watch       WebSocket the front holds open: it breaks
 *                               the moment this process dies (the kernel
 *                               closes its sockets), which is how the front
 *                               learns to move the calls at once; the
 *                               worker says {"event":"media","id"} on it
 *                               when a call's first datagram from the
 *                               gateway arrives (the failover gap's end),
 *                               and {"event":"ended","id"} when it ends a
 *                               call itself (an error, the time limit)
 *
 * Who may call: the front only, with `Authorization: Bearer` and the
 * --cluster-token (VOICEAGENT_CLUSTER_TOKEN); without one the routes do
 * not exist (404). Callers never reach a worker: its HTTP port belongs on
 * the cluster's private network.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>
#include "auth.h"
#include "server-private.h"
#include "worker.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define MAX_ID 64

static gboolean
is_front (VaServer *server, SoupServerMessage *msg)
{
  const gchar *bearer = va_auth_bearer_of (soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "Authorization"));

  return va_auth_token_equal (server->config->cluster_token, bearer);
}

static gboolean
is_call_id (const gchar *id)
{
  gsize n = id ? strlen (id) : 0;

  if (n == 0 || n > MAX_ID)
    return FALSE;
  for (; *id; id++)
    if (!g_ascii_isalnum (*id) && *id != '-' && *id != '_')
      return FALSE;
  return TRUE;
}

/* The RTP template for @agent: "NAME-rtp", or NAME itself if it is one. */
static const VaTemplate *
rtp_template (VaServer *server, const gchar *agent)
{
  gchar *name = g_strconcat (agent, "-rtp", NULL);
  const VaTemplate *t = g_hash_table_lookup (server->templates, name);

  g_free (name);
  if (t == NULL)
    t = g_hash_table_lookup (server->templates, agent);
  return t && va_template_get_kind (t) == VA_TEMPLATE_RTP ? t : NULL;
}

/* The request's members and the JSON type each must have. */
static const struct
{
  const gchar *name;
  GType type;
} request_members[] = {
  { "id", G_TYPE_STRING },
  { "agent", G_TYPE_STRING },
  { "token", G_TYPE_STRING },
  { "call_token", G_TYPE_STRING },
  { "gateway_host", G_TYPE_STRING },
  { "gateway_port", G_TYPE_INT64 },
  { "opus_pt", G_TYPE_INT64 },
  { "resume", G_TYPE_BOOLEAN },
  { "record", G_TYPE_BOOLEAN },
};

/* The first member of @o present with another type than its own, or
 * NULL: json-glib's getters would take a wrong one for the default (or
 * FALSE) and say nothing. */
static const gchar *
mistyped_member (JsonObject *o)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (request_members); i++) {
    JsonNode *n = json_object_get_member (o, request_members[i].name);
    if (n &&
        (!JSON_NODE_HOLDS_VALUE (n) ||
            json_node_get_value_type (n) != request_members[i].type))
      return request_members[i].name;
  }
  return NULL;
}

/* Fills @req from the body; FALSE, having answered, when it is not one. */
static gboolean
parse_request (VaServer *server, SoupServerMessage *msg, JsonParser *parser,
    VaRtpCallRequest *req)
{
  GBytes *body = va_http_guard_get_body (msg);
  gsize len = 0;
  const gchar *data = body ? g_bytes_get_data (body, &len) : NULL;
  JsonObject *o;
  const gchar *bad;
  gint64 port, pt;

  if (data == NULL || !json_parser_load_from_data (parser, data, len, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    va_respond_error (server, msg, SOUP_STATUS_BAD_REQUEST,
        "the body must be a JSON object (docs/architecture.md, gateway mode)");
    return FALSE;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  bad = mistyped_member (o);
  if (bad) {
    va_respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "\"%s\" has the wrong type: ids, \"agent\" and \"gateway_host\" "
        "are strings, ports and \"opus_pt\" integers, \"resume\" and "
        "\"record\" true or false",
        bad);
    return FALSE;
  }
  req->id = json_object_get_string_member_with_default (o, "id", NULL);
  req->agent = json_object_get_string_member_with_default (
      o, "agent", server->config->default_agent);
  req->token = json_object_get_string_member_with_default (o, "token", NULL);
  req->call_token =
      json_object_get_string_member_with_default (o, "call_token", NULL);
  req->gateway_host =
      json_object_get_string_member_with_default (o, "gateway_host", NULL);
  port = json_object_get_int_member_with_default (o, "gateway_port", 0);
  pt = json_object_get_int_member_with_default (o, "opus_pt", 111);
  if (!is_call_id (req->id) || req->gateway_host == NULL || port < 1 ||
      port > 65535 || pt < 96 || pt > 127 ||
      (req->call_token && !is_call_id (req->call_token)) ||
      (req->token && !is_call_id (req->token)) ||
      strlen (req->agent) > MAX_ID) {
    va_respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "needs \"id\" (1-64 of A-Z a-z 0-9 - _), \"gateway_host\", "
        "\"gateway_port\" (1-65535) and \"opus_pt\" (96-127); "
        "\"token\" and \"call_token\", if given, and \"agent\" are 1-64 "
        "of A-Z a-z 0-9 - _");
    return FALSE;
  }
  req->gateway_port = (guint)port;
  req->opus_pt = (gint)pt;
  req->resume =
      json_object_get_boolean_member_with_default (o, "resume", FALSE);
  /* The caller's ?record=1, for a worker with --record-calls opt-in. */
  req->record =
      json_object_get_boolean_member_with_default (o, "record", FALSE);
  if (req->resume && (req->token == NULL || server->scaleout == NULL)) {
    va_respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "\"resume\" needs the call's \"token\" and a worker with --redis");
    return FALSE;
  }
  return TRUE;
}

/* Starts @req's call (with @stored, a failed-over call's state) and
 * answers @msg. */
static void
start_and_answer (VaServer *server, SoupServerMessage *msg,
    const VaRtpCallRequest *req, const VaTemplate *tmpl,
    const VaStoredCall *stored)
{
  GError *error = NULL;
  guint port = 0;
  gchar *json;

  if (va_server_start_rtp_call (server, req, tmpl, stored, &port, &error) ==
      NULL) {
    /* The detail (a template's text) is for the log, not the front. */
    va_respond_error (server, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
        "the worker cannot start a call now; its log says why");
    g_error_free (error);
    return;
  }
  json = g_strdup_printf ("{\"id\":\"%s\",\"rtp_host\":\"%s\",\"rtp_port\":%u}",
      req->id, server->config->rtp_bind, port);
  va_respond_json (server, msg, SOUP_STATUS_CREATED, json);
  g_free (json);
}

typedef struct
{
  VaServer *server;
  SoupServerMessage *msg;
  JsonParser *parser; /* holds the request's strings */
  VaRtpCallRequest req;
} Resume;

static void
resume_loaded (VaStoredCall *stored, const GError *error, gpointer data)
{
  Resume *r = data;
  const VaTemplate *tmpl = rtp_template (r->server, r->req.agent);

  if (error) {
    GST_WARNING (
        "call %s: cannot load its state: %s", r->req.id, error->message);
    va_respond_error (r->server, r->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the call state store does not answer; retry");
  } else if (stored == NULL) {
    va_respond_error (r->server, r->msg, SOUP_STATUS_NOT_FOUND,
        "no state for this call's token in Redis");
  } else if (g_hash_table_contains (r->server->calls, r->req.id)) {
    va_respond_error (r->server, r->msg, SOUP_STATUS_CONFLICT,
        "call %s already runs here", r->req.id);
  } else {
    start_and_answer (r->server, r->msg, &r->req, tmpl, stored);
    r->server->resumed++;
  }
  va_stored_call_free (stored);
  soup_server_message_unpause (r->msg);
  g_object_unref (r->msg);
  g_object_unref (r->parser);
  g_free (r);
}

static void
start_call (VaServer *server, SoupServerMessage *msg)
{
  JsonParser *parser = json_parser_new ();
  VaRtpCallRequest req = { 0 };
  const VaTemplate *tmpl;

  if (!parse_request (server, msg, parser, &req))
    goto out;
  if (g_hash_table_contains (server->calls, req.id)) {
    va_respond_error (
        server, msg, SOUP_STATUS_CONFLICT, "call %s already runs here", req.id);
    goto out;
  }
  if (server->draining ||
      va_server_load (server) >= server->config->max_calls) {
    va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "this worker takes no more calls (draining or --max-calls)");
    goto out;
  }
  tmpl = rtp_template (server, req.agent);
  if (tmpl == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no RTP template for agent \"%s\" (pipelines/%s-rtp.pipeline with "
        "udpsrc rtp_in and udpsink rtp_out)",
        req.agent, req.agent);
    goto out;
  }
  if (req.resume) {
    Resume *r = g_new0 (Resume, 1);
    r->server = server;
    r->msg = g_object_ref (msg);
    r->parser = g_object_ref (parser);
    r->req = req;
    soup_server_message_pause (msg);
    va_call_state_load (
        va_scaleout_get_redis (server->scaleout), req.token, resume_loaded, r);
    goto out;
  }
  start_and_answer (server, msg, &req, tmpl, NULL);
out:
  g_object_unref (parser);
}

static void
end_call (VaServer *server, SoupServerMessage *msg, const gchar *id)
{
  CallEntry *e = g_hash_table_lookup (server->calls, id);

  if (e == NULL) {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no call %s on this worker", id);
    return;
  }
  va_call_end (e->call, VA_CALL_END_HANGUP, "the front ended it");
  va_respond_empty (server, msg, SOUP_STATUS_OK);
}

void
va_worker_route (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts)
{
  if (server->config->cluster_token == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "this instance is no gateway worker (set VOICEAGENT_CLUSTER_TOKEN)");
  } else if (!is_front (server, msg)) {
    va_respond_error (server, msg, SOUP_STATUS_UNAUTHORIZED,
        "only the front may call /gateway/: send Authorization: Bearer "
        "with the cluster token");
  } else if (g_strcmp0 (parts[1], "calls") != 0) {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no such gateway endpoint");
  } else if (parts[2] == NULL && g_str_equal (method, "POST")) {
    start_call (server, msg);
  } else if (parts[2] && parts[3] == NULL && g_str_equal (method, "DELETE")) {
    end_call (server, msg, parts[2]);
  } else {
    va_respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "POST /gateway/calls or DELETE /gateway/calls/{id}");
  }
}

/* ---- The front's watch ---- */

static void
on_watch_closed (SoupWebsocketConnection *conn, gpointer data)
{
  VaServer *server = data;

  g_ptr_array_remove_fast (server->watches, conn); /* unrefs it */
}

static void
send_event (SoupWebsocketConnection *conn, const gchar *event, const gchar *id)
{
  /* Events are words and ids [A-Za-z0-9_-] (is_call_id): nothing to
   * escape. */
  gchar *json = g_strdup_printf ("{\"event\":\"%s\",\"id\":\"%s\"}", event, id);

  if (soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text (conn, json);
  g_free (json);
}

/* A front that opens its watch after a call's media arrived (it placed
 * the call as the watch was still connecting) still learns of it. */
static void
tell_media_so_far (SoupWebsocketConnection *conn, VaServer *server)
{
  GHashTableIter iter;
  gpointer id, value;

  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, &id, &value))
    if (((CallEntry *)value)->media)
      send_event (conn, "media", id);
}

static void
on_watch (SoupServer *soup, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *conn, gpointer data)
{
  VaServer *server = data;

  if (server->config->cluster_token == NULL || !is_front (server, msg)) {
    soup_websocket_connection_close (
        conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "the cluster token only");
    return;
  }
  /* It has to break when this process dies; the only thing said on it is
   * which calls' media has arrived (va_worker_tell_fronts). Keepalive pings
   * keep idle timeouts on the way from closing it. */
  soup_websocket_connection_set_keepalive_interval (conn, 10);
  g_signal_connect (conn, "closed", G_CALLBACK (on_watch_closed), server);
  g_ptr_array_add (server->watches, g_object_ref (conn));
  tell_media_so_far (conn, server);
}

void
va_worker_tell_fronts (VaServer *server, const gchar *event, const gchar *id)
{
  for (guint i = 0; server->watches && i < server->watches->len; i++)
    send_event (g_ptr_array_index (server->watches, i), event, id);
}

void
va_worker_add_watch (VaServer *server)
{
  server->watches = g_ptr_array_new_with_free_func (g_object_unref);
  soup_server_add_websocket_handler (
      server->soup, "/gateway/watch", NULL, NULL, on_watch, server, NULL);
}

void
va_worker_close_watches (VaServer *server)
{
  if (server->watches == NULL)
    return;
  for (guint i = 0; i < server->watches->len; i++)
    g_signal_handlers_disconnect_by_data (
        g_ptr_array_index (server->watches, i), server);
  g_clear_pointer (&server->watches, g_ptr_array_unref);
}

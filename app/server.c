/* voiceagent: the HTTP server (WHIP, WHEP, demo page, metrics, health).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Resources:
 *   POST /whip[/{agent}]                 a call (RFC 9725), 201 + answer
 *   PATCH, DELETE, GET /calls/{id}       the call's WHIP session
 *   POST /whep/{id}                      listen to a call, 201 + answer
 *   PATCH, DELETE, GET /calls/{id}/listeners/{lid}
 *   GET /, /metrics, /healthz, /readyz, /calls
 * Every response carries CORS headers; errors have a JSON body
 * {"error": "...", "status": N}. Main context only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "call.h"
#include "conversation.h"
#include "metrics.h"
#include "records.h"
#include "sdp.h"
#include "server.h"
#include "template.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define SDP_TYPE "application/sdp"
#define SDPFRAG_TYPE "application/trickle-ice-sdpfrag"
#define RETRY_AFTER_FULL "5"
#define RETRY_AFTER_NO_AUDIO "1"

typedef struct _CallEntry CallEntry;

struct _VaServer
{
  VaConfig *config;
  SoupServer *soup;
  GHashTable *templates; /* name → VaTemplate* */
  GHashTable *calls; /* id → CallEntry* */
  VaMetrics *metrics;
  VaRecords *records;
  gboolean draining;
  GSourceFunc drain_done;
  gpointer drain_data;
  guint drain_timer;
};

struct _CallEntry
{
  VaServer *server;
  VaCall *call;
  gchar *agent;
  SoupServerMessage *pending; /* the POST waiting for its answer */
  GHashTable *pending_listeners; /* listener id → SoupServerMessage* */
  VaConversation *conversation;
};

/* ---- Responses ---- */

static void
add_cors (VaServer *server, SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  soup_message_headers_replace (
      h, "Access-Control-Allow-Origin", server->config->cors_origin);
  /* FIXME: libsoup 3.2's server never notices a client closing a kept-alive
   * connection (it stays in CLOSE-WAIT forever, one fd per request), so
   * every response closes its connection. WHIP clients make a handful of
   * requests per call; the cost is one TCP handshake each. */
  soup_message_headers_replace (h, "Connection", "close");
  soup_message_headers_replace (h, "Access-Control-Expose-Headers",
      "Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After");
}

static void
add_ice_links (VaServer *server, SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  gchar **s;

  for (s = server->config->stun_servers; s && *s; s++) {
    gchar *link = g_strdup_printf ("<%s>; rel=\"ice-server\"", *s);
    soup_message_headers_append (h, "Link", link);
    g_free (link);
  }
  for (s = server->config->turn_servers; s && *s; s++) {
    GUri *uri = g_uri_parse (*s, G_URI_FLAGS_HAS_PASSWORD, NULL);
    gchar *link;
    if (uri == NULL)
      continue;
    /* RFC 9725 §4.6: credentials go in link params, not in the URL. */
    link = g_strdup_printf (
        "<%s:%s:%d>; rel=\"ice-server\"; "
        "username=\"%s\"; credential=\"%s\"; credential-type=\"password\"",
        g_uri_get_scheme (uri), g_uri_get_host (uri), g_uri_get_port (uri),
        g_uri_get_user (uri) ? g_uri_get_user (uri) : "",
        g_uri_get_password (uri) ? g_uri_get_password (uri) : "");
    soup_message_headers_append (h, "Link", link);
    g_free (link);
    g_uri_unref (uri);
  }
}

static void
respond_json (
    VaServer *server, SoupServerMessage *msg, guint status, const gchar *json)
{
  add_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, "application/json", SOUP_MEMORY_COPY, json, strlen (json));
}

/* Error with a JSON body that names the cause and, where one exists, the fix. */
static void respond_error (VaServer *server, SoupServerMessage *msg,
    guint status, const gchar *format, ...) G_GNUC_PRINTF (4, 5);

static void
respond_error (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *format, ...)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *reason, *json;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, reason);
  json_builder_set_member_name (b, "status");
  json_builder_add_int_value (b, status);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  respond_json (server, msg, status, json);
  GST_DEBUG ("HTTP %u: %s", status, reason);
  g_free (json);
  g_free (reason);
  json_node_unref (root);
  g_object_unref (b);
}

static void
respond_empty (VaServer *server, SoupServerMessage *msg, guint status)
{
  add_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
}

static void
respond_sdp (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *sdp, const gchar *location, const gchar *etag)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  add_cors (server, msg);
  add_ice_links (server, msg);
  if (location)
    soup_message_headers_replace (h, "Location", location);
  if (etag)
    soup_message_headers_replace (h, "ETag", etag);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, SDP_TYPE, SOUP_MEMORY_COPY, sdp, strlen (sdp));
}

static void
respond_options (VaServer *server, SoupServerMessage *msg, const gchar *methods)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  add_cors (server, msg);
  add_ice_links (server, msg);
  soup_message_headers_replace (h, "Access-Control-Allow-Methods", methods);
  soup_message_headers_replace (h, "Access-Control-Allow-Headers",
      "Authorization, Content-Type, If-Match, ETag");
  soup_message_headers_replace (h, "Access-Control-Max-Age", "86400");
  soup_message_headers_replace (h, "Allow", methods);
  soup_message_headers_replace (h, "Accept-Post", SDP_TYPE);
  soup_message_headers_replace (h, "Accept-Patch", SDPFRAG_TYPE);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}

/* ---- Request checks ---- */

/* With no token configured every request passes, including the
 * "Bearer undefined" some browser clients send when they have none. */
static gboolean
check_auth (VaServer *server, SoupServerMessage *msg)
{
  const gchar *auth;

  if (server->config->token == NULL || *server->config->token == '\0')
    return TRUE;
  auth = soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "Authorization");
  if (auth && g_str_has_prefix (auth, "Bearer ") &&
      g_str_equal (auth + 7, server->config->token))
    return TRUE;
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "WWW-Authenticate", "Bearer realm=\"voiceagent\"");
  respond_error (server, msg, SOUP_STATUS_UNAUTHORIZED,
      "missing or wrong bearer token: send \"Authorization: Bearer TOKEN\"");
  return FALSE;
}

static gboolean
check_content_type (
    VaServer *server, SoupServerMessage *msg, const gchar *expected)
{
  const gchar *type = soup_message_headers_get_content_type (
      soup_server_message_get_request_headers (msg), NULL);

  if (type && g_ascii_strcasecmp (type, expected) == 0)
    return TRUE;
  respond_error (server, msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
      "Content-Type must be %s (got %s)", expected, type ? type : "none");
  return FALSE;
}

static gboolean
get_body (
    VaServer *server, SoupServerMessage *msg, const gchar **data, gsize *len)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  GBytes *bytes = soup_message_body_flatten (body);

  *data = g_bytes_get_data (bytes, len);
  g_bytes_unref (bytes); /* the body keeps its own reference */
  if (*len > server->config->max_body) {
    respond_error (server, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        "body of %" G_GSIZE_FORMAT " bytes is over the %" G_GSIZE_FORMAT
        "-byte limit (--max-body)",
        *len, server->config->max_body);
    return FALSE;
  }
  return TRUE;
}

static VaOffer *
parse_offer (VaServer *server, SoupServerMessage *msg)
{
  const gchar *data;
  gsize len;
  GError *error = NULL;
  VaOffer *offer;

  if (!check_content_type (server, msg, SDP_TYPE) ||
      !get_body (server, msg, &data, &len))
    return NULL;
  offer = va_offer_parse (data, len, &error);
  if (offer == NULL) {
    guint status = error->code == VA_SDP_ERROR_PARSE
        ? SOUP_STATUS_BAD_REQUEST
        : SOUP_STATUS_UNPROCESSABLE_ENTITY;
    va_metrics_call_rejected (
        server->metrics, status == 400 ? "bad-sdp" : "no-audio");
    respond_error (server, msg, status, "%s", error->message);
    g_error_free (error);
  }
  return offer;
}

/* ---- Calls ---- */

static void
unpause (SoupServerMessage **pending)
{
  SoupServerMessage *msg = g_steal_pointer (pending);

  if (msg) {
    soup_server_message_unpause (msg);
    g_object_unref (msg);
  }
}

static gchar *
call_location (CallEntry *e)
{
  return g_strdup_printf ("/calls/%s", va_call_get_id (e->call));
}

static void
on_call_answered (
    VaCall *call, const gchar *sdp, const GError *error, gpointer data)
{
  CallEntry *e = data;
  gchar *location;

  if (e->pending == NULL)
    return;
  if (error) {
    respond_error (e->server, e->pending, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
  } else {
    location = call_location (e);
    respond_sdp (e->server, e->pending, SOUP_STATUS_CREATED, sdp, location,
        va_peer_get_etag (va_call_get_peer (call)));
    g_free (location);
  }
  unpause (&e->pending);
}

static void
call_entry_free (CallEntry *e)
{
  GHashTableIter iter;
  gpointer value;

  if (e->pending) {
    respond_error (e->server, e->pending, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the call ended before it was answered");
    unpause (&e->pending);
  }
  g_hash_table_iter_init (&iter, e->pending_listeners);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    SoupServerMessage *m = value;
    respond_error (
        e->server, m, SOUP_STATUS_SERVICE_UNAVAILABLE, "the call ended");
    unpause (&m);
  }
  g_hash_table_unref (e->pending_listeners);
  va_conversation_free (e->conversation);
  va_call_free (e->call);
  g_free (e->agent);
  g_free (e);
}

static void check_drained (VaServer *server);

/* The call's durable record, written off the main thread by VaRecords. */
static void
write_record (CallEntry *e, VaCallEndReason reason)
{
  VaCallRecord *r;

  if (e->server->records == NULL)
    return;
  r = g_new0 (VaCallRecord, 1);
  r->id = g_strdup (va_call_get_id (e->call));
  r->agent = g_strdup (e->agent);
  r->started_us = va_call_get_start_time (e->call);
  r->ended_us = g_get_real_time ();
  r->end_reason = g_strdup (va_call_end_reason_name (reason));
  r->transcript_json = va_conversation_transcript_json (e->conversation);
  r->turns_json = va_conversation_turns_json (e->conversation);
  r->usage = *va_conversation_get_usage (e->conversation);
  r->cost_usd = va_usage_cost (&r->usage, e->server->config);
  va_records_write (e->server->records, r);
}

static void
on_call_ended (
    VaCall *call, VaCallEndReason reason, const gchar *detail, gpointer data)
{
  CallEntry *e = data;
  VaServer *server = e->server;
  gboolean failed = reason != VA_CALL_END_HANGUP &&
      reason != VA_CALL_END_SHUTDOWN && reason != VA_CALL_END_MAX_DURATION;

  va_metrics_call_ended (
      server->metrics, va_call_end_reason_name (reason), failed);
  va_metrics_add_usage (
      server->metrics, va_conversation_get_usage (e->conversation));
  write_record (e, reason);
  g_hash_table_remove (server->calls, va_call_get_id (call));
  check_drained (server);
}

static void
on_call_message (VaCall *call, const GstStructure *s, gpointer data)
{
  CallEntry *e = data;

  va_conversation_handle (e->conversation, s);
}

static void
conversation_send (const gchar *json, gpointer data)
{
  CallEntry *e = data;

  va_call_send_json (e->call, json);
}

static void
conversation_observe (const gchar *name, gdouble seconds, gpointer data)
{
  CallEntry *e = data;

  va_metrics_observe (e->server->metrics, name, seconds);
}

static void
conversation_underrun (gpointer data)
{
  CallEntry *e = data;

  va_metrics_playout_underrun (e->server->metrics);
}

static GHashTable *
call_variables (VaServer *server, const gchar *id, gint opus_pt)
{
  VaConfig *c = server->config;
  GHashTable *vars =
      g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  g_hash_table_insert (vars, (gpointer) "CALL_ID", g_strdup (id));
  g_hash_table_insert (vars, (gpointer) "SESSION", g_strdup (id));
  g_hash_table_insert (
      vars, (gpointer) "OPUS_PT", g_strdup_printf ("%d", opus_pt));
  g_hash_table_insert (
      vars, (gpointer) "DEEPGRAM_URL", g_strdup (c->deepgram_url));
  g_hash_table_insert (
      vars, (gpointer) "ELEVENLABS_URL", g_strdup (c->elevenlabs_url));
  g_hash_table_insert (
      vars, (gpointer) "ELEVENLABS_VOICE_ID", g_strdup (c->elevenlabs_voice));
  g_hash_table_insert (vars, (gpointer) "LLM_URL", g_strdup (c->llm_url));
  g_hash_table_insert (vars, (gpointer) "LLM_MODEL", g_strdup (c->llm_model));
  g_hash_table_insert (
      vars, (gpointer) "SYSTEM_PROMPT", g_strdup (c->system_prompt));
  g_hash_table_insert (vars, (gpointer) "GREETING", g_strdup (c->greeting));
  return vars;
}

static gchar *
new_id (void)
{
  return g_strdup_printf ("%08x%08x", g_random_int (), g_random_int ());
}

static gboolean
check_capacity (VaServer *server, SoupServerMessage *msg)
{
  const gchar *why = NULL;

  if (server->draining)
    why = "the server is draining for a restart; try another instance";
  else if (g_hash_table_size (server->calls) >= server->config->max_calls)
    why = "the server is at its call limit (--max-calls)";
  if (why == NULL)
    return TRUE;
  va_metrics_call_rejected (
      server->metrics, server->draining ? "draining" : "full");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", RETRY_AFTER_FULL);
  respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", why);
  return FALSE;
}

static void
whip_post (VaServer *server, SoupServerMessage *msg, const gchar *agent)
{
  static const VaCallCallbacks callbacks = { on_call_answered, on_call_ended,
    on_call_message };
  static const VaConversationOutput conversation_output = { conversation_send,
    conversation_observe, conversation_underrun };
  const VaTemplate *tmpl;
  VaOffer *offer;
  CallEntry *e;
  GHashTable *vars;
  GError *error = NULL;
  gchar *id;
  gint opus_pt;

  if (!check_capacity (server, msg))
    return;
  tmpl = g_hash_table_lookup (server->templates, agent);
  if (tmpl == NULL) {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no agent template \"%s\" (pipelines/%s.pipeline)", agent, agent);
    return;
  }
  offer = parse_offer (server, msg);
  if (offer == NULL)
    return;

  id = new_id ();
  e = g_new0 (CallEntry, 1);
  e->server = server;
  e->agent = g_strdup (agent);
  e->pending_listeners =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  e->call = va_call_new (id, server->config, &callbacks, e);
  e->conversation = va_conversation_new (&conversation_output, e);
  g_hash_table_insert (server->calls, id, e);
  opus_pt = offer->opus_pt;
  vars = call_variables (server, id, opus_pt);
  e->pending = g_object_ref (msg);
  soup_server_message_pause (msg);
  va_metrics_call_started (server->metrics);
  if (!va_call_start (e->call, tmpl, vars, offer, &error)) {
    respond_error (server, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
        "cannot start the call: %s", error->message);
    unpause (&e->pending);
    va_call_end (e->call, VA_CALL_END_ERROR, error->message);
    g_error_free (error);
  }
  g_hash_table_unref (vars);
}

/* ---- Sessions: PATCH (trickle / ICE restart) and DELETE ---- */

/* Lenient: some clients send their ETag in an "ETag" request header. */
static const gchar *
get_if_match (SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const gchar *v = soup_message_headers_get_one (h, "If-Match");

  return v ? v : soup_message_headers_get_one (h, "ETag");
}

static void
session_patch (VaServer *server, SoupServerMessage *msg, VaPeer *peer)
{
  const gchar *if_match = get_if_match (msg), *data;
  gsize len;
  VaSdpFrag *frag;
  GError *error = NULL;
  gboolean restart;

  if (!check_content_type (server, msg, SDPFRAG_TYPE) ||
      !get_body (server, msg, &data, &len))
    return;
  if (if_match == NULL) {
    respond_error (server, msg, 428 /* Precondition Required, RFC 6585 */,
        "PATCH needs If-Match with the session's ETag (or \"*\" for an "
        "ICE restart)");
    return;
  }
  frag = va_sdpfrag_parse (data, len, &error);
  if (frag == NULL) {
    respond_error (server, msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
    g_error_free (error);
    return;
  }
  restart = g_str_equal (if_match, "*") ||
      (frag->ufrag &&
          g_strcmp0 (frag->ufrag, va_peer_get_remote_ufrag (peer)) != 0);
  if (restart) {
    /* The session stays as it is; RFC 9725 §4.4.2 lets a server refuse. */
    respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "ICE restart is not supported: the session goes on with its current "
        "ICE credentials; to reconnect, DELETE it and POST a new offer");
  } else if (g_strcmp0 (if_match, va_peer_get_etag (peer)) != 0) {
    respond_error (server, msg, SOUP_STATUS_PRECONDITION_FAILED,
        "If-Match %s does not match the session's ETag", if_match);
  } else {
    va_peer_add_candidates (peer, frag);
    respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  }
  va_sdpfrag_free (frag);
}

static void
listener_answered (VaCall *call, const gchar *listener_id, const gchar *sdp,
    const GError *error, gpointer data)
{
  CallEntry *e = data;
  SoupServerMessage *msg =
      g_hash_table_lookup (e->pending_listeners, listener_id);
  gchar *location;

  if (msg == NULL)
    return;
  /* The table owns the key (a copy of the id); the message is ours now. */
  g_hash_table_remove (e->pending_listeners, listener_id);
  if (error) {
    respond_error (e->server, msg, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
    va_call_remove_listener (call, listener_id);
  } else {
    location = g_strdup_printf (
        "/calls/%s/listeners/%s", va_call_get_id (call), listener_id);
    respond_sdp (e->server, msg, SOUP_STATUS_CREATED, sdp, location,
        va_peer_get_etag (va_call_get_listener (call, listener_id)));
    g_free (location);
  }
  unpause (&msg);
}

static void
whep_post (VaServer *server, SoupServerMessage *msg, CallEntry *e)
{
  VaOffer *offer = parse_offer (server, msg);
  GError *error = NULL;
  gchar *lid;

  if (offer == NULL)
    return;
  lid = new_id ();
  if (!va_call_add_listener (
          e->call, lid, offer, listener_answered, e, &error)) {
    guint status =
        g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_BUSY)
        ? SOUP_STATUS_CONFLICT
        : SOUP_STATUS_INTERNAL_SERVER_ERROR;
    if (status == SOUP_STATUS_CONFLICT)
      soup_message_headers_replace (
          soup_server_message_get_response_headers (msg), "Retry-After",
          RETRY_AFTER_NO_AUDIO);
    respond_error (server, msg, status, "%s", error->message);
    g_error_free (error);
    g_free (lid);
    return;
  }
  g_hash_table_insert (e->pending_listeners, lid, g_object_ref (msg));
  soup_server_message_pause (msg);
}

/* ---- Routing ---- */

static CallEntry *
find_call (VaServer *server, SoupServerMessage *msg, const gchar *id)
{
  CallEntry *e = g_hash_table_lookup (server->calls, id);

  if (e == NULL || va_call_is_ending (e->call)) {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no call %s", id);
    return NULL;
  }
  return e;
}

static void
route_session (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts)
{
  CallEntry *e;
  const gchar *lid = NULL;
  VaPeer *peer;

  if (g_str_equal (method, "OPTIONS")) {
    respond_options (server, msg, "OPTIONS, GET, PATCH, DELETE");
    return;
  }
  if (!check_auth (server, msg) || !(e = find_call (server, msg, parts[1])))
    return;
  if (parts[2] && g_str_equal (parts[2], "listeners") && parts[3]) {
    lid = parts[3];
    peer = va_call_get_listener (e->call, lid);
    if (peer == NULL) {
      respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no listener %s", lid);
      return;
    }
  } else if (parts[2]) {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no such resource");
    return;
  } else {
    peer = va_call_get_peer (e->call);
  }

  if (g_str_equal (method, "DELETE")) {
    /* Always 200, whatever If-Match says: a client must be able to hang up. */
    if (lid)
      va_call_remove_listener (e->call, lid);
    else
      va_call_end (e->call, VA_CALL_END_HANGUP, NULL);
    respond_empty (server, msg, SOUP_STATUS_OK);
  } else if (g_str_equal (method, "PATCH")) {
    session_patch (server, msg, peer);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else {
    respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "%s is not allowed on a session", method);
  }
}

static void
route_endpoint (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts, gboolean whep)
{
  CallEntry *e;

  if (g_str_equal (method, "OPTIONS")) {
    respond_options (server, msg, "OPTIONS, GET, POST");
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else if (!g_str_equal (method, "POST")) {
    respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "use POST with an SDP offer");
  } else if (!check_auth (server, msg)) {
    return;
  } else if (!whep) {
    whip_post (
        server, msg, parts[1] ? parts[1] : server->config->default_agent);
  } else if (parts[1] == NULL) {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "WHEP needs the call: POST /whep/{call id}");
  } else if ((e = find_call (server, msg, parts[1]))) {
    whep_post (server, msg, e);
  }
}

static void
serve_text (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *type, gchar *text)
{
  add_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, type, SOUP_MEMORY_TAKE, text, strlen (text));
}

static void
serve_calls (VaServer *server, SoupServerMessage *msg)
{
  JsonBuilder *b = json_builder_new ();
  GHashTableIter iter;
  gpointer value;
  JsonNode *root;

  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    CallEntry *e = value;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, va_call_get_id (e->call));
    json_builder_set_member_name (b, "agent");
    json_builder_add_string_value (b, e->agent);
    json_builder_set_member_name (b, "started");
    json_builder_add_int_value (b, va_call_get_start_time (e->call) / 1000000);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  serve_text (server, msg, SOUP_STATUS_OK, "application/json",
      json_to_string (root, FALSE));
  json_node_unref (root);
  g_object_unref (b);
}

static void
serve_resource (VaServer *server, SoupServerMessage *msg, const gchar *path,
    const gchar *type)
{
  GBytes *bytes = g_resources_lookup_data (path, 0, NULL);

  if (bytes == NULL) {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no page here");
    return;
  }
  add_cors (server, msg);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY,
      g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_bytes_unref (bytes);
}

static void
route_ops (VaServer *server, SoupServerMessage *msg, const gchar *path)
{
  guint active = g_hash_table_size (server->calls);
  gboolean full = active >= server->config->max_calls;

  if (g_str_equal (path, "/metrics")) {
    serve_text (server, msg, SOUP_STATUS_OK,
        "text/plain; version=0.0.4; charset=utf-8",
        va_metrics_render (
            server->metrics, server->config, active, server->draining));
  } else if (g_str_equal (path, "/healthz")) {
    respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
  } else if (g_str_equal (path, "/readyz")) {
    if (server->draining || full)
      respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s",
          server->draining ? "draining" : "at the call limit");
    else
      respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ready\"}");
  } else if (g_str_equal (path, "/calls")) {
    serve_calls (server, msg);
  } else if (g_str_equal (path, "/") || g_str_equal (path, "/index.html")) {
    serve_resource (server, msg, "/org/voiceagent/www/index.html",
        "text/html; charset=utf-8");
  } else {
    respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no resource %s", path);
  }
}

static void
handle_request (SoupServer *soup, SoupServerMessage *msg, const gchar *path,
    GHashTable *query, gpointer data)
{
  VaServer *server = data;
  const gchar *method = soup_server_message_get_method (msg);
  gchar **parts = g_strsplit (path + 1, "/", 5);

  GST_LOG ("%s %s", method, path);
  if (g_strcmp0 (parts[0], "whip") == 0 &&
      (parts[1] == NULL || parts[2] == NULL))
    route_endpoint (server, msg, method, parts, FALSE);
  else if (g_strcmp0 (parts[0], "whep") == 0 &&
      (parts[1] == NULL || parts[2] == NULL))
    route_endpoint (server, msg, method, parts, TRUE);
  else if (g_strcmp0 (parts[0], "calls") == 0 && parts[1] && *parts[1])
    route_session (server, msg, method, parts);
  else if (g_str_equal (method, "OPTIONS"))
    respond_options (server, msg, "OPTIONS, GET");
  else
    route_ops (server, msg, path);
  g_strfreev (parts);
}

/* Refuses an oversized body from its Content-Length before reading it. */
static void
on_request_headers (SoupServerMessage *msg, gpointer data)
{
  VaServer *server = data;
  goffset len = soup_message_headers_get_content_length (
      soup_server_message_get_request_headers (msg));

  if (len > (goffset)server->config->max_body)
    respond_error (server, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
        "body of %" G_GOFFSET_FORMAT " bytes is over the %" G_GSIZE_FORMAT
        "-byte limit (--max-body)",
        len, server->config->max_body);
}

static void
on_request_started (SoupServer *soup, SoupServerMessage *msg, gpointer data)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_request_headers), data);
}

/* ---- Life cycle ---- */

VaServer *
va_server_new (VaConfig *config, GError **error)
{
  VaServer *server = g_new0 (VaServer, 1);
  GSocketAddress *address;
  gboolean listening;

  server->config = config;
  server->templates = va_templates_load (config->pipelines_dir, error);
  if (server->templates == NULL) {
    va_server_free (server);
    return NULL;
  }
  if (!g_hash_table_contains (server->templates, config->default_agent)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "the default agent \"%s\" has no template %s/%s.pipeline",
        config->default_agent, config->pipelines_dir, config->default_agent);
    va_server_free (server);
    return NULL;
  }
  server->calls = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)call_entry_free);
  server->metrics = va_metrics_new ();
  server->records = va_records_open (config->database, error);
  if (server->records == NULL) {
    va_server_free (server);
    return NULL;
  }
  server->soup = soup_server_new ("server-header", "voiceagent/" VERSION, NULL);
  soup_server_add_handler (server->soup, NULL, handle_request, server, NULL);
  g_signal_connect (
      server->soup, "request-started", G_CALLBACK (on_request_started), server);
  address = g_inet_socket_address_new_from_string (config->host, config->port);
  if (address == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--host %s is not an IP address", config->host);
    va_server_free (server);
    return NULL;
  }
  listening = soup_server_listen (server->soup, address, 0, error);
  g_object_unref (address);
  if (!listening) {
    va_server_free (server);
    return NULL;
  }
  return server;
}

guint
va_server_get_port (VaServer *server)
{
  GSList *uris = soup_server_get_uris (server->soup);
  guint port = uris ? (guint)g_uri_get_port (uris->data) : 0;

  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return port;
}

guint
va_server_get_active_calls (VaServer *server)
{
  return g_hash_table_size (server->calls);
}

static void
check_drained (VaServer *server)
{
  GSourceFunc done = server->drain_done;

  if (!server->draining || done == NULL ||
      g_hash_table_size (server->calls) > 0)
    return;
  server->drain_done = NULL;
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  done (server->drain_data);
}

static gboolean
drain_timeout (gpointer data)
{
  VaServer *server = data;
  GHashTableIter iter;
  gpointer value;

  server->drain_timer = 0;
  GST_WARNING (
      "drain timeout: ending %u calls", g_hash_table_size (server->calls));
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    va_call_end (((CallEntry *)value)->call, VA_CALL_END_SHUTDOWN, NULL);
  return G_SOURCE_REMOVE;
}

void
va_server_drain (VaServer *server, GSourceFunc done, gpointer data)
{
  server->draining = TRUE;
  server->drain_done = done;
  server->drain_data = data;
  if (server->drain_timer == 0)
    server->drain_timer = g_timeout_add_seconds (
        server->config->drain_timeout_s, drain_timeout, server);
  check_drained (server);
}

void
va_server_end_calls (VaServer *server)
{
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  drain_timeout (server);
}

void
va_server_free (VaServer *server)
{
  if (server == NULL)
    return;
  /* main() ends every call and waits for ended() before freeing. */
  g_warn_if_fail (
      server->calls == NULL || g_hash_table_size (server->calls) == 0);
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  if (server->soup) {
    soup_server_disconnect (server->soup);
    g_object_unref (server->soup);
  }
  g_clear_pointer (&server->calls, g_hash_table_unref);
  g_clear_pointer (&server->templates, g_hash_table_unref);
  va_metrics_free (server->metrics);
  va_records_close (server->records);
  g_free (server);
}

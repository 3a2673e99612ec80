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
 *
 * With --redis (docs/deployment.md): a full or draining instance answers
 * POST /whip with 307 to the least-loaded live one, every call's state
 * goes to Redis as it changes, and POST /whip with a resume token
 * rebuilds a call that lived on another instance.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "auth.h"
#include "server-private.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define SDP_TYPE "application/sdp"
#define SDPFRAG_TYPE "application/trickle-ice-sdpfrag"
#define RETRY_AFTER_FULL "5"
#define CALL_TOKEN_HEADER "Voiceagent-Call-Token"
#define REALM "Bearer realm=\"voiceagent\""

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
      "Location, ETag, Link, Accept-Post, Accept-Patch, Retry-After, "
      "WWW-Authenticate, " CALL_TOKEN_HEADER ", " RESUME_TOKEN_HEADER
      ", Server-Timing");
}

/* A configured STUN/TURN URL as RFC 7064/7065 write it for a client
 * (scheme:host:port[?transport=]), without any user:password; NULL if it
 * is not one. Both "turn:host" and GStreamer's "turn://user:pw@host"
 * are accepted. */
static gchar *
ice_url_for_clients (const gchar *configured)
{
  GUri *uri;
  gchar *url;

  if (strstr (configured, "://") == NULL)
    return g_str_has_prefix (configured, "stun:") ||
            g_str_has_prefix (configured, "turn:") ||
            g_str_has_prefix (configured, "turns:")
        ? g_strdup (configured)
        : NULL;
  uri = g_uri_parse (configured, G_URI_FLAGS_HAS_PASSWORD, NULL);
  if (uri == NULL || g_uri_get_host (uri) == NULL) {
    g_clear_pointer (&uri, g_uri_unref);
    return NULL;
  }
  url = g_strdup_printf ("%s:%s", g_uri_get_scheme (uri), g_uri_get_host (uri));
  if (g_uri_get_port (uri) > 0) {
    gchar *with_port = g_strdup_printf ("%s:%d", url, g_uri_get_port (uri));
    g_free (url);
    url = with_port;
  }
  if (g_uri_get_query (uri)) {
    gchar *with_query = g_strconcat (url, "?", g_uri_get_query (uri), NULL);
    g_free (url);
    url = with_query;
  }
  g_uri_unref (uri);
  return url;
}

/* RFC 9725 §4.6 ICE servers, for responses to authorized requests only.
 * TURN servers are announced only with --turn-secret, each time with
 * credentials made for @id alone that expire (coturn's REST API); a
 * long-term TURN password is never sent. */
static void
add_ice_links (VaServer *server, SoupServerMessage *msg, const gchar *id)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
  const VaConfig *c = server->config;
  gchar *username = NULL, *credential = NULL;
  gchar **s;

  for (s = c->stun_servers; s && *s; s++) {
    gchar *url = ice_url_for_clients (*s);
    gchar *link =
        url ? g_strdup_printf ("<%s>; rel=\"ice-server\"", url) : NULL;
    if (link)
      soup_message_headers_append (h, "Link", link);
    g_free (link);
    g_free (url);
  }
  if (c->turn_secret == NULL || c->turn_servers == NULL)
    return;
  credential = va_auth_turn_credential (c->turn_secret, id,
      g_get_real_time () / G_USEC_PER_SEC + c->turn_ttl_s, &username);
  for (s = c->turn_servers; *s; s++) {
    gchar *url = ice_url_for_clients (*s);
    gchar *link = url
        ? g_strdup_printf ("<%s>; rel=\"ice-server\"; username=\"%s\"; "
                           "credential=\"%s\"; credential-type=\"password\"",
              url, username, credential)
        : NULL;
    if (link)
      soup_message_headers_append (h, "Link", link);
    g_free (link);
    g_free (url);
  }
  g_free (username);
  g_free (credential);
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
void
va_respond_error (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *format, ...)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *text, *reason, *json;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  /* JSON is UTF-8; a path or header echoed in the text may not be. */
  reason = g_utf8_make_valid (text, -1);
  g_free (text);
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
respond_sdp (VaServer *server, SoupServerMessage *msg, const gchar *ice_id,
    const gchar *sdp, const gchar *location, const gchar *etag)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  add_cors (server, msg);
  add_ice_links (server, msg, ice_id);
  if (location)
    soup_message_headers_replace (h, "Location", location);
  if (etag)
    soup_message_headers_replace (h, "ETag", etag);
  soup_server_message_set_status (msg, SOUP_STATUS_CREATED, NULL);
  soup_server_message_set_response (
      msg, SDP_TYPE, SOUP_MEMORY_COPY, sdp, strlen (sdp));
}

/* @ice_id: the id TURN credentials are made for, when the request may
 * have them (RFC 9725 §4.6 lets OPTIONS carry ICE servers); else NULL. */
static void
respond_options (VaServer *server, SoupServerMessage *msg, const gchar *methods,
    const gchar *ice_id)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  add_cors (server, msg);
  if (ice_id)
    add_ice_links (server, msg, ice_id);
  soup_message_headers_replace (h, "Access-Control-Allow-Methods", methods);
  soup_message_headers_replace (h, "Access-Control-Allow-Headers",
      "Authorization, Content-Type, If-Match, ETag, " RESUME_HEADER);
  soup_message_headers_replace (h, "Access-Control-Max-Age", "86400");
  soup_message_headers_replace (h, "Allow", methods);
  soup_message_headers_replace (h, "Accept-Post", SDP_TYPE);
  soup_message_headers_replace (h, "Accept-Patch", SDPFRAG_TYPE);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}

/* ---- Authorization (docs/http-api.md, "Authorization") ----
 *
 * Who may do what:
 * - POST /whip: anyone holding the caller token (--token), or anyone at
 *   all when none is set (a demo);
 * - a call's own token (its capability: the 201's Location carries it as
 *   ?access_token=, and Voiceagent-Call-Token and the data channel's
 *   "call" event repeat it) may PATCH, DELETE and GET the call and POST
 *   /whep/{id} to listen to it;
 * - a listener's token (its Location's ?access_token=) may PATCH,
 *   DELETE and GET that listener;
 * - the admin token (--admin-token) may do all of that on any call, and
 *   read /calls and /metrics; a request to an --ops-listen address may
 *   read those with no token.
 * A token travels as "Authorization: Bearer" (RFC 6750 §2.1) or, in the
 * session URLs handed out, as ?access_token= (§2.3). Every comparison is
 * constant-time. A credential that does not grant a call gets 404 (RFC
 * 9110 §15.5.5) whether or not the call exists, so nothing tells a
 * stranger which ids are live; one that is nobody's at all gets 401.
 */

typedef struct
{
  const gchar *bearer; /* from the Authorization header, or NULL */
  const gchar *query; /* ?access_token=, or NULL */
} Credentials;

static Credentials
credentials_of (SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = {
    va_auth_bearer_of (soup_message_headers_get_one (
        soup_server_message_get_request_headers (msg), "Authorization")),
    query ? g_hash_table_lookup (query, "access_token") : NULL
  };

  return c;
}

static gboolean
presents (const Credentials *c, const gchar *token)
{
  /* Both are compared, whichever matches, to take the same time. */
  gboolean by_header = va_auth_token_equal (token, c->bearer);
  gboolean by_query = va_auth_token_equal (token, c->query);

  return by_header || by_query;
}

static gboolean
presents_nothing (const Credentials *c)
{
  return c->bearer == NULL && c->query == NULL;
}

static gboolean
is_admin (VaServer *server, const Credentials *c)
{
  return presents (c, server->config->admin_token);
}

/* What the credentials grant for the call @id (the listener @lid). */
static VaGrantResult
grant_of (
    VaServer *server, const Credentials *c, const gchar *id, const gchar *lid)
{
  VaGrantResult by_header =
      va_grants_check (server->grants, c->bearer, id, lid);
  VaGrantResult by_query = va_grants_check (server->grants, c->query, id, lid);

  return MAX (by_header, by_query);
}

/* TRUE when the credentials are somebody's, now or in the last hour: they
 * may not grant this request, but they are no guess (403 or 404, not
 * 401). */
static gboolean
is_known (VaServer *server, const Credentials *c)
{
  return presents (c, server->config->token) || is_admin (server, c) ||
      grant_of (server, c, NULL, NULL) != VA_GRANT_UNKNOWN;
}

/* 401 (RFC 6750 §3): no credentials, or @invalid ones nobody holds. */
static void
respond_unauthorized (VaServer *server, SoupServerMessage *msg,
    gboolean invalid, const gchar *what)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "WWW-Authenticate", invalid ? REALM ", error=\"invalid_token\"" : REALM);
  va_respond_error (server, msg, SOUP_STATUS_UNAUTHORIZED,
      invalid ? "the bearer token is not valid here: %s"
              : "this needs a bearer token: %s",
      what);
}

/* POST /whip: the caller token, or none configured. */
static gboolean
may_call (VaServer *server, const Credentials *c)
{
  const gchar *token = server->config->token;

  return token == NULL || *token == '\0' || presents (c, token) ||
      is_admin (server, c);
}

static gboolean is_known (VaServer *server, const Credentials *c);

/* A token that is somebody's but not the caller's (a call's own) is valid
 * for something else: 403, RFC 6750 §3.1 insufficient_scope. */
static gboolean
authorize_caller (VaServer *server, SoupServerMessage *msg)
{
  Credentials c = credentials_of (msg, NULL);
  const gchar *how =
      "send \"Authorization: Bearer TOKEN\" with the server's caller token";

  if (may_call (server, &c))
    return TRUE;
  if (c.bearer && is_known (server, &c)) {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "WWW-Authenticate",
        REALM ", error=\"insufficient_scope\"");
    va_respond_error (server, msg, SOUP_STATUS_FORBIDDEN,
        "this token may not place calls: %s", how);
  } else {
    respond_unauthorized (server, msg, c.bearer != NULL, how);
  }
  return FALSE;
}

/* The call @id, if the credentials grant it (the listener @lid, when
 * given, is granted by its own token, not the call's). Otherwise answers
 * 401 or 404 and returns NULL. An ending call is not found. */
static CallEntry *
authorize_call (VaServer *server, SoupServerMessage *msg, GHashTable *query,
    const gchar *id, const gchar *lid)
{
  Credentials c = credentials_of (msg, query);
  CallEntry *e = g_hash_table_lookup (server->calls, id);
  gboolean granted;

  if (presents_nothing (&c)) {
    respond_unauthorized (server, msg, FALSE,
        "use the Location the POST answered (it carries the call's token), "
        "or send the call's token as \"Authorization: Bearer TOKEN\"");
    return NULL;
  }
  granted =
      is_admin (server, &c) || grant_of (server, &c, id, lid) == VA_GRANT_YES;
  if (granted && e && !va_call_is_ending (e->call))
    return e;
  if (granted || is_known (server, &c))
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no call %s that this token grants (it ended, or the token is "
        "another call's)",
        id);
  else
    respond_unauthorized (server, msg, TRUE,
        "use the Location the POST answered, or the call's token");
  return NULL;
}

static gboolean
is_operator (VaServer *server, SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = credentials_of (msg, query);

  return va_http_guard_is_ops (server->guard, msg) || is_admin (server, &c);
}

/* /calls and /metrics: the admin token, or the --ops-listen address. */
static gboolean
authorize_ops (VaServer *server, SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = credentials_of (msg, query);
  const gchar *how = "send the operator token (--admin-token) as "
                     "\"Authorization: Bearer TOKEN\", or ask on the "
                     "--ops-listen address";

  if (is_operator (server, msg, query))
    return TRUE;
  if (presents_nothing (&c) || !is_known (server, &c)) {
    respond_unauthorized (server, msg, !presents_nothing (&c), how);
  } else {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "WWW-Authenticate",
        REALM ", error=\"insufficient_scope\"");
    va_respond_error (server, msg, SOUP_STATUS_FORBIDDEN,
        "this token may not read operator endpoints: %s", how);
  }
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
  va_respond_error (server, msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
      "Content-Type must be %s (got %s)", expected, type ? type : "none");
  return FALSE;
}

/* The body, already bounded by --max-body while it was read (httpguard.c
 * answered 413 past it). */
static void
get_body (SoupServerMessage *msg, const gchar **data, gsize *len)
{
  GBytes *bytes = va_http_guard_get_body (msg);

  *data = bytes ? g_bytes_get_data (bytes, len) : NULL;
  if (*data == NULL) {
    *data = "";
    *len = 0;
  }
}

static VaOffer *
parse_offer (VaServer *server, SoupServerMessage *msg)
{
  const gchar *data;
  gsize len;
  GError *error = NULL;
  VaOffer *offer;

  if (!check_content_type (server, msg, SDP_TYPE))
    return NULL;
  get_body (msg, &data, &len);
  offer = va_offer_parse (data, len, &error);
  if (offer == NULL) {
    guint status = error->code == VA_SDP_ERROR_PARSE
        ? SOUP_STATUS_BAD_REQUEST
        : SOUP_STATUS_UNPROCESSABLE_ENTITY;
    va_metrics_call_rejected (
        server->metrics, status == 400 ? "bad-sdp" : "no-audio");
    va_respond_error (server, msg, status, "%s", error->message);
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

/* The session URL, with the capability that grants it: WHIP clients use
 * it verbatim for PATCH and DELETE (sending their own bearer token, which
 * grants only POST). Absolute with --redis: behind a load balancer, PATCH
 * and DELETE must reach the instance that runs the call. */
static gchar *
session_location (CallEntry *e, const gchar *lid, const gchar *token)
{
  return g_strdup_printf ("%s/calls/%s%s%s?access_token=%s",
      e->server->base_url ? e->server->base_url : "", va_call_get_id (e->call),
      lid ? "/listeners/" : "", lid ? lid : "", token);
}

static void add_call_headers (CallEntry *e);

static void
on_call_answered (
    VaCall *call, const gchar *sdp, const GError *error, gpointer data)
{
  CallEntry *e = data;
  gchar *location;

  if (e->pending == NULL)
    return;
  if (error) {
    va_respond_error (e->server, e->pending, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
  } else {
    add_call_headers (e);
    location = session_location (e, NULL, e->call_token);
    respond_sdp (e->server, e->pending, va_call_get_id (call), sdp, location,
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
    va_respond_error (e->server, e->pending, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the call ended before it was answered");
    unpause (&e->pending);
  }
  g_hash_table_iter_init (&iter, e->pending_listeners);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    SoupServerMessage *m = value;
    va_respond_error (
        e->server, m, SOUP_STATUS_SERVICE_UNAVAILABLE, "the call ended");
    unpause (&m);
  }
  g_hash_table_unref (e->pending_listeners);
  g_hash_table_unref (e->listener_tokens);
  g_clear_handle_id (&e->state_write, g_source_remove);
  va_conversation_free (e->conversation);
  va_call_free (e->call);
  g_free (e->agent);
  g_free (e->call_token);
  g_free (e->token);
  g_free (e->vars_json);
  g_free (e);
}

static void check_drained (VaServer *server);
static guint load_of (VaServer *server);

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

/* glibc keeps what the calls' threads freed in its arenas: after 25 calls
 * the heap held 70 MB, 19 MB of it in use. Once no call is left (2 s after
 * the last one ended, when its pipeline is gone), that goes back to the
 * system. */
static gboolean
trim_heap (gpointer data)
{
  VaServer *server = data;

  server->trim_timer = 0;
#ifdef __GLIBC__
  if (g_hash_table_size (server->calls) == 0)
    malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

static void
trim_heap_when_idle (VaServer *server)
{
  g_clear_handle_id (&server->trim_timer, g_source_remove);
  if (g_hash_table_size (server->calls) == 0)
    server->trim_timer = g_timeout_add (2000, trim_heap, server);
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
  va_state_end (e, reason);
  va_grants_end (server->grants, va_call_get_id (call), NULL);
  g_hash_table_remove (server->calls, va_call_get_id (call));
  va_server_publish_load (server);
  trim_heap_when_idle (server);
  check_drained (server);
}

static void
on_call_message (VaCall *call, const GstStructure *s, gpointer data)
{
  CallEntry *e = data;

  va_conversation_handle (e->conversation, s);
  va_state_changed (e, s);
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

/* Ids name calls in URLs, logs and records; they grant nothing (the
 * tokens do), but they are random too, so one call's id says nothing of
 * another's. */
static gchar *
new_id (void)
{
  gchar *token = va_auth_new_token ();

  token[16] = '\0';
  return token;
}

/* 307 to @base's WHIP endpoint for @agent, keeping the resume token. */
static void
redirect (VaServer *server, SoupServerMessage *msg, const gchar *base,
    const gchar *agent, const gchar *token)
{
  gboolean named = !g_str_equal (agent, server->config->default_agent);
  gchar *location = g_strdup_printf ("%s/whip%s%s%s%s", base, named ? "/" : "",
      named ? agent : "", token ? "?resume=" : "", token ? token : "");
  gchar *json =
      g_strdup_printf ("{\"redirect\":\"%s/whip\",\"status\":307}", base);

  soup_message_headers_replace (
      soup_server_message_get_response_headers (msg), "Location", location);
  respond_json (server, msg, SOUP_STATUS_TEMPORARY_REDIRECT, json);
  GST_DEBUG (
      "HTTP 307 to %s/whip (%s)", base, server->draining ? "draining" : "full");
  va_metrics_call_rejected (server->metrics, "redirected");
  g_free (json);
  g_free (location);
}

static gboolean
check_capacity (VaServer *server, SoupServerMessage *msg, const gchar *agent,
    const gchar *token)
{
  const gchar *why = NULL;
  gchar *elsewhere;

  if (server->draining)
    why = "the server is draining for a restart; try another instance";
  /* Resumes still loading their state count: each becomes a call. */
  else if (load_of (server) >= server->config->max_calls)
    why = "the server is at its call limit (--max-calls)";
  if (why == NULL)
    return TRUE;
  /* RFC 9725 §4.5 lets a WHIP endpoint redirect with 307. */
  elsewhere = server->scaleout ? va_scaleout_pick (server->scaleout) : NULL;
  if (elsewhere) {
    redirect (server, msg, elsewhere, agent, token);
    g_free (elsewhere);
    return FALSE;
  }
  va_metrics_call_rejected (
      server->metrics, server->draining ? "draining" : "full");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", RETRY_AFTER_FULL);
  va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", why);
  return FALSE;
}

/* Creates the call and answers @offer (taken); @stored (a resumed call's
 * state, or NULL) gives its conversation. The POST is paused (unless
 * @paused says it already is) until the answer. Returns the call's entry,
 * owned by server->calls. */
CallEntry *
va_server_start_call (VaServer *server, SoupServerMessage *msg, gboolean paused,
    const VaTemplate *tmpl, const gchar *agent, VaOffer *offer,
    const gchar *token, const VaStoredCall *stored, gint64 post_us)
{
  static const VaCallCallbacks callbacks = { on_call_answered, on_call_ended,
    on_call_message };
  static const VaConversationOutput conversation_output = { conversation_send,
    conversation_observe, conversation_underrun };
  CallEntry *e;
  GHashTable *vars;
  GError *error = NULL;
  gchar *id;

  id = new_id ();
  e = g_new0 (CallEntry, 1);
  e->server = server;
  e->agent = g_strdup (agent);
  e->post_us = post_us;
  e->state_us = -1;
  e->pending_listeners =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  e->listener_tokens =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e->call_token = va_grants_issue (server->grants, id, NULL);
  e->call = va_call_new (id, server->config, &callbacks, e);
  va_call_set_call_token (e->call, e->call_token);
  e->conversation = va_conversation_new (&conversation_output, e);
  g_hash_table_insert (server->calls, id, e);
  vars = call_variables (server, id, offer->opus_pt);
  if (server->scaleout)
    va_state_prepare (e, vars, token, stored);
  e->pending = g_object_ref (msg);
  if (!paused)
    soup_server_message_pause (msg);
  va_metrics_call_started (server->metrics);
  va_server_publish_load (server);
  if (!va_call_start (e->call, tmpl, vars, offer, &error)) {
    /* The detail (a template's text) is for the log, not the caller. */
    GST_WARNING ("call %s: cannot start: %s", id, error->message);
    va_respond_error (server, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
        "the server cannot start a call now; its log says why");
    unpause (&e->pending);
    va_call_end (e->call, VA_CALL_END_ERROR, error->message);
    g_error_free (error);
  }
  e->pipeline_us = g_get_monotonic_time () - post_us;
  g_hash_table_unref (vars);
  return e;
}

static void
whip_post (VaServer *server, SoupServerMessage *msg, const gchar *agent,
    GHashTable *query)
{
  gint64 post_us = g_get_monotonic_time ();
  const gchar *token = va_resume_token_of (msg, query);
  const VaTemplate *tmpl;
  VaOffer *offer;

  if (token && !va_resume_check_token (server, msg, token))
    return;
  if (!check_capacity (server, msg, agent, token))
    return;
  tmpl = g_hash_table_lookup (server->templates, agent);
  if (tmpl == NULL && token == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no agent template \"%s\" (pipelines/%s.pipeline)", agent, agent);
    return;
  }
  offer = parse_offer (server, msg);
  if (offer == NULL)
    return;
  if (token)
    va_resume_call (server, msg, token, offer, post_us);
  else
    va_server_start_call (
        server, msg, FALSE, tmpl, agent, offer, NULL, NULL, post_us);
}

/* Voiceagent-Call-Token, Voiceagent-Resume-Token and Server-Timing on
 * the 201. */
static void
add_call_headers (CallEntry *e)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (e->pending);
  gdouble answer_ms = (g_get_monotonic_time () - e->post_us) / 1000.0;
  gchar *timing;

  soup_message_headers_replace (h, CALL_TOKEN_HEADER, e->call_token);
  if (e->token)
    soup_message_headers_replace (h, RESUME_TOKEN_HEADER, e->token);
  if (e->state_us >= 0) {
    timing =
        g_strdup_printf ("state;dur=%.1f, pipeline;dur=%.1f, answer;dur=%.1f",
            e->state_us / 1000.0, e->pipeline_us / 1000.0, answer_ms);
    GST_INFO ("call %s resumed: state loaded in %.1f ms, pipeline started "
              "in %.1f ms, answered in %.1f ms",
        va_call_get_id (e->call), e->state_us / 1000.0, e->pipeline_us / 1000.0,
        answer_ms);
  } else {
    timing = g_strdup_printf ("pipeline;dur=%.1f, answer;dur=%.1f",
        e->pipeline_us / 1000.0, answer_ms);
  }
  soup_message_headers_replace (h, "Server-Timing", timing);
  g_free (timing);
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

  if (!check_content_type (server, msg, SDPFRAG_TYPE))
    return;
  get_body (msg, &data, &len);
  if (if_match == NULL) {
    va_respond_error (server, msg, 428 /* Precondition Required, RFC 6585 */,
        "PATCH needs If-Match with the session's ETag (or \"*\" for an "
        "ICE restart)");
    return;
  }
  frag = va_sdpfrag_parse (data, len, &error);
  if (frag == NULL) {
    va_respond_error (
        server, msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
    g_error_free (error);
    return;
  }
  restart = g_str_equal (if_match, "*") ||
      (frag->ufrag &&
          g_strcmp0 (frag->ufrag, va_peer_get_remote_ufrag (peer)) != 0);
  if (restart) {
    /* The session stays as it is; RFC 9725 §4.4.2 lets a server refuse. */
    va_respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "ICE restart is not supported: the session goes on with its current "
        "ICE credentials; to reconnect, DELETE it and POST a new offer");
  } else if (g_strcmp0 (if_match, va_peer_get_etag (peer)) != 0) {
    va_respond_error (server, msg, SOUP_STATUS_PRECONDITION_FAILED,
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
    va_respond_error (e->server, msg, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
    va_call_remove_listener (call, listener_id);
  } else {
    location = session_location (
        e, listener_id, g_hash_table_lookup (e->listener_tokens, listener_id));
    respond_sdp (e->server, msg, va_call_get_id (call), sdp, location,
        va_peer_get_etag (va_call_get_listener (call, listener_id)));
    g_free (location);
  }
  unpause (&msg);
}

/* The call's listeners; ends the tokens of those that are gone (DELETE,
 * ICE failed, or the offer was refused). */
static guint
live_listeners (CallEntry *e)
{
  GHashTableIter iter;
  gpointer lid;

  g_hash_table_iter_init (&iter, e->listener_tokens);
  while (g_hash_table_iter_next (&iter, &lid, NULL))
    if (va_call_get_listener (e->call, lid) == NULL) {
      va_grants_end (e->server->grants, va_call_get_id (e->call), lid);
      g_hash_table_iter_remove (&iter);
    }
  return g_hash_table_size (e->listener_tokens);
}

/* Calls, resumes still loading and listeners: each holds a webrtcbin and
 * an encoder, so --max-calls counts them all. */
static guint
load_of (VaServer *server)
{
  GHashTableIter iter;
  gpointer value;
  guint load =
      g_hash_table_size (server->calls) + g_hash_table_size (server->resumes);

  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    load += live_listeners (value);
  return load;
}

static gboolean
check_listener_room (VaServer *server, SoupServerMessage *msg, CallEntry *e)
{
  const gchar *why = NULL;

  if (live_listeners (e) >= server->config->max_listeners)
    why = "the call has as many listeners as it may have (--max-listeners)";
  else if (load_of (server) >= server->config->max_calls)
    why = "the server is at its limit of calls and listeners (--max-calls)";
  if (why == NULL)
    return TRUE;
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", RETRY_AFTER_FULL);
  va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", why);
  return FALSE;
}

static void
whep_post (VaServer *server, SoupServerMessage *msg, CallEntry *e)
{
  VaOffer *offer;
  GError *error = NULL;
  gchar *lid;

  if (!check_listener_room (server, msg, e) ||
      (offer = parse_offer (server, msg)) == NULL)
    return;
  lid = new_id ();
  g_hash_table_insert (e->listener_tokens, g_strdup (lid),
      va_grants_issue (server->grants, va_call_get_id (e->call), lid));
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
    va_respond_error (server, msg, status, "%s", error->message);
    g_error_free (error);
    g_hash_table_remove (e->listener_tokens, lid);
    va_grants_end (server->grants, va_call_get_id (e->call), lid);
    g_free (lid);
    return;
  }
  g_hash_table_insert (e->pending_listeners, lid, g_object_ref (msg));
  soup_server_message_pause (msg);
}

/* ---- Routing ---- */

static void
route_session (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts, GHashTable *query)
{
  const gchar *lid = NULL;
  CallEntry *e;
  VaPeer *peer;

  if (g_str_equal (method, "OPTIONS")) {
    respond_options (server, msg, "OPTIONS, GET, PATCH, DELETE", NULL);
    return;
  }
  if (parts[2] &&
      (!g_str_equal (parts[2], "listeners") || !parts[3] || parts[4])) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no such resource");
    return;
  }
  lid = parts[2] ? parts[3] : NULL;
  if (!(e = authorize_call (server, msg, query, parts[1], lid)))
    return;
  peer = lid ? va_call_get_listener (e->call, lid) : va_call_get_peer (e->call);
  if (peer == NULL) {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no listener %s", lid);
    return;
  }

  if (g_str_equal (method, "DELETE")) {
    /* Always 200, whatever If-Match says: a client must be able to hang up. */
    if (lid) {
      va_call_remove_listener (e->call, lid);
      live_listeners (e); /* ends its token */
    } else
      va_call_end (e->call, VA_CALL_END_HANGUP, NULL);
    respond_empty (server, msg, SOUP_STATUS_OK);
  } else if (g_str_equal (method, "PATCH")) {
    session_patch (server, msg, peer);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else {
    va_respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "%s is not allowed on a session", method);
  }
}

/* OPTIONS on /whip: ICE servers (with TURN credentials made for this
 * answer alone) only for a request that may call. */
static void
endpoint_options (VaServer *server, SoupServerMessage *msg, gboolean whep)
{
  Credentials c = credentials_of (msg, NULL);
  gchar *ice_id = !whep && may_call (server, &c) ? new_id () : NULL;

  respond_options (server, msg, "OPTIONS, GET, POST", ice_id);
  g_free (ice_id);
}

static void
route_endpoint (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts, GHashTable *query, gboolean whep)
{
  CallEntry *e;

  if (g_str_equal (method, "OPTIONS")) {
    endpoint_options (server, msg, whep);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else if (!g_str_equal (method, "POST")) {
    va_respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "use POST with an SDP offer");
  } else if (!whep) {
    if (authorize_caller (server, msg))
      whip_post (server, msg,
          parts[1] ? parts[1] : server->config->default_agent, query);
  } else if (parts[1] == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "WHEP needs the call: POST /whep/{call id}");
  } else if ((e = authorize_call (server, msg, query, parts[1], NULL))) {
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
    /* Hung up, its pipeline still going down: not a live call. */
    if (va_call_is_ending (e->call))
      continue;
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
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no page here");
    return;
  }
  add_cors (server, msg);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY,
      g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_bytes_unref (bytes);
}

/* The metrics, and with --redis the scale-out ones. */
static gchar *
render_metrics (VaServer *server, guint active)
{
  VaScaleoutMetrics scaleout = { 0 };
  gchar *problem;

  if (server->scaleout == NULL)
    return va_metrics_render (
        server->metrics, server->config, active, server->draining, NULL);
  problem = va_scaleout_get_problem (server->scaleout);
  scaleout.redis_up = problem == NULL;
  scaleout.instances = va_scaleout_count_instances (server->scaleout);
  scaleout.resumed = server->resumed;
  g_free (problem);
  return va_metrics_render (
      server->metrics, server->config, active, server->draining, &scaleout);
}

/* Ready, and whether Redis works: without it calls are still taken here
 * (degraded: no redirects, no resume, no shared state). */
static void
serve_ready_scaleout (
    VaServer *server, SoupServerMessage *msg, gboolean operator)
{
  JsonBuilder *b = json_builder_new ();
  gchar *problem = va_scaleout_get_problem (server->scaleout);
  JsonNode *root;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, problem ? "degraded" : "ready");
  json_builder_set_member_name (b, "redis");
  json_builder_add_string_value (
      b, problem ? (operator? problem : "down") : "up");
  json_builder_set_member_name (b, "instance");
  json_builder_add_string_value (
      b, va_scaleout_get_instance_id (server->scaleout));
  json_builder_set_member_name (b, "instances");
  json_builder_add_int_value (
      b, va_scaleout_count_instances (server->scaleout));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  serve_text (server, msg, SOUP_STATUS_OK, "application/json",
      json_to_string (root, FALSE));
  json_node_unref (root);
  g_object_unref (b);
  g_free (problem);
}

/* /healthz and /readyz are for load balancers: anyone may ask; /readyz
 * tells why Redis is down only to operators. */
static void
route_ops (VaServer *server, SoupServerMessage *msg, const gchar *path,
    GHashTable *query)
{
  guint active = g_hash_table_size (server->calls);
  gboolean full = load_of (server) >= server->config->max_calls;

  if (g_str_equal (path, "/metrics")) {
    if (authorize_ops (server, msg, query))
      serve_text (server, msg, SOUP_STATUS_OK,
          "text/plain; version=0.0.4; charset=utf-8",
          render_metrics (server, active));
  } else if (g_str_equal (path, "/healthz")) {
    respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
  } else if (g_str_equal (path, "/readyz")) {
    if (server->draining || full)
      va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s",
          server->draining ? "draining" : "at the call limit");
    else if (server->scaleout)
      serve_ready_scaleout (server, msg, is_operator (server, msg, query));
    else
      respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ready\"}");
  } else if (g_str_equal (path, "/calls")) {
    if (authorize_ops (server, msg, query))
      serve_calls (server, msg);
  } else if (g_str_equal (path, "/") || g_str_equal (path, "/index.html")) {
    serve_resource (server, msg, "/org/voiceagent/www/index.html",
        "text/html; charset=utf-8");
  } else {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no resource %s", path);
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
    route_endpoint (server, msg, method, parts, query, FALSE);
  else if (g_strcmp0 (parts[0], "whep") == 0 &&
      (parts[1] == NULL || parts[2] == NULL))
    route_endpoint (server, msg, method, parts, query, TRUE);
  else if (g_strcmp0 (parts[0], "calls") == 0 && parts[1] && *parts[1])
    route_session (server, msg, method, parts, query);
  else if (g_str_equal (method, "OPTIONS"))
    respond_options (server, msg, "OPTIONS, GET", NULL);
  else
    route_ops (server, msg, path, query);
  g_strfreev (parts);
}

/* ---- Life cycle ---- */

static gboolean
start_scaleout (VaServer *server, GError **error)
{
  gchar *url =
      va_scaleout_default_url (server->config, va_server_get_port (server));

  server->scaleout =
      va_scaleout_new (server->config, url, va_state_resync, server, error);
  if (server->scaleout == NULL) {
    g_free (url);
    return FALSE;
  }
  g_print ("voiceagent: scale-out through Redis, announced as %s\n", url);
  server->base_url = url;
  server->state_refresh_timer =
      g_timeout_add_seconds (VA_CALL_STATE_REFRESH_S, va_state_refresh, server);
  va_server_publish_load (server);
  return TRUE;
}

/* --ops-listen ADDR:PORT (IPv6 as [ADDR]:PORT). */
static gboolean
listen_ops (VaServer *server, GError **error)
{
  GSocketConnectable *where =
      g_network_address_parse (server->config->ops_listen, 0, error);
  GSocketAddress *address = NULL;
  guint port = 0;

  if (where)
    address = g_inet_socket_address_new_from_string (
        g_network_address_get_hostname (G_NETWORK_ADDRESS (where)),
        g_network_address_get_port (G_NETWORK_ADDRESS (where)));
  if (address)
    port = va_http_guard_listen (server->guard, address, TRUE, error);
  else if (where)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--ops-listen %s: give an IP address and a port, e.g. "
        "127.0.0.1:9090",
        server->config->ops_listen);
  if (port)
    g_print ("voiceagent: operator endpoints on http://%s/ (no token)\n",
        server->config->ops_listen);
  g_clear_object (&address);
  g_clear_object (&where);
  return port != 0;
}

VaServer *
va_server_new (VaConfig *config, GError **error)
{
  VaServer *server = g_new0 (VaServer, 1);
  VaHttpGuardLimits limits = { config->max_body, config->max_connections,
    config->request_timeout_s, config->idle_timeout_s, config->cors_origin };
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
  server->resumes = g_hash_table_new (NULL, NULL);
  server->grants = va_grants_new ();
  server->metrics = va_metrics_new ();
  server->records = va_records_open (config->database, error);
  if (server->records == NULL) {
    va_server_free (server);
    return NULL;
  }
  server->soup = soup_server_new ("server-header", "voiceagent/" VERSION, NULL);
  soup_server_add_handler (server->soup, NULL, handle_request, server, NULL);
  server->guard = va_http_guard_new (server->soup, &limits);
  address = g_inet_socket_address_new_from_string (config->host, config->port);
  if (address == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--host %s is not an IP address", config->host);
    va_server_free (server);
    return NULL;
  }
  listening = va_http_guard_listen (server->guard, address, FALSE, error) &&
      (config->ops_listen == NULL || listen_ops (server, error));
  g_object_unref (address);
  if (!listening || (config->redis && !start_scaleout (server, error))) {
    va_server_free (server);
    return NULL;
  }
  return server;
}

guint
va_server_get_port (VaServer *server)
{
  return va_http_guard_get_port (server->guard, FALSE);
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
  va_server_publish_load (server);
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
  g_clear_handle_id (&server->state_refresh_timer, g_source_remove);
  g_clear_handle_id (&server->trim_timer, g_source_remove);
  /* The last writes (calls ended) go out before the registry entry goes. */
  g_clear_pointer (&server->scaleout, va_scaleout_free);
  g_queue_clear_full (
      &server->recently_ended, (GDestroyNotify)va_ended_call_free);
  if (server->resumes) {
    g_hash_table_foreach (server->resumes, (GHFunc)va_resume_free_key, NULL);
    g_hash_table_unref (server->resumes);
  }
  g_clear_pointer (&server->guard, va_http_guard_free);
  if (server->soup) {
    soup_server_disconnect (server->soup);
    g_object_unref (server->soup);
  }
  g_clear_pointer (&server->calls, g_hash_table_unref);
  g_clear_pointer (&server->grants, va_grants_free);
  g_clear_pointer (&server->templates, g_hash_table_unref);
  va_metrics_free (server->metrics);
  va_records_close (server->records);
  g_free (server->base_url);
  g_free (server);
}

/* voiceagent: the front of gateway mode (docs/architecture.md).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A caller's WHIP POST becomes, in order:
 *   1. attach a handle to janus.plugin.voiceagent (app/janus/);
 *   2. {"request":"call"} with the caller's offer: Janus answers and binds
 *      the call's relay socket (rtp_host:rtp_port);
 *   3. POST /gateway/calls on the least-loaded live worker (the registry,
 *      role "worker"): it starts the pipeline and names its own socket;
 *   4. {"request":"connect"} points the relay at the worker;
 *   5. 201 with Janus's answer.
 * Any failure answers the caller (502/503 with the cause) and undoes what
 * was done.
 *
 * Trickle ICE: the caller's PATCH /calls/{id} passes direct mode's checks
 * (va_server_read_patch: ETag, Content-Type, the fragment), and its
 * candidates go to Janus as a "trickle" on the call's handle; the PATCH is
 * answered once Janus acknowledged them. ICE restarts are refused (422)
 * as in direct mode: the plugin takes one offer per call.
 *
 * Failover: the front holds a WebSocket (/gateway/watch) to every worker
 * it has calls on. A worker that dies (even by SIGKILL: the kernel closes
 * its sockets) closes it; each of its calls is then started again on
 * another worker with "resume" (its state comes from Redis) and the relay
 * re-pointed. The caller's peer connection is Janus's and never moves. The call ends on the caller's DELETE, Janus's hangup (the
 * peer connection died) or a worker's error.
 *
 * Who may call what: the caller reaches only this front (its WHIP and
 * /calls/{id}, with the tokens of direct mode); Janus's API and the
 * workers' /gateway/ are the cluster's, on its private network, the
 * workers' behind --cluster-token.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>
#include "auth.h"
#include "front.h"
#include "janusapi.h"
#include "server-private.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define PLUGIN "janus.plugin.voiceagent"
#define WORKER_TIMEOUT_S 10

typedef struct
{
  VaFront *front;
  gchar *id;
  gchar *agent;
  gchar *call_token; /* the caller's capability (grants) */
  gchar *token; /* resume token: the call's key in Redis */
  gint opus_pt;
  gchar *offer_sdp;
  gchar *remote_ufrag; /* the offer's: a PATCH with another is a restart */
  gchar *etag; /* the WHIP session's, for If-Match */
  GPtrArray *patches; /* Patch*: PATCHes whose candidates Janus has not
                       * acknowledged yet */
  SoupServerMessage *pending; /* the POST, until answered */
  gint64 post_us;
  gboolean record; /* the caller asked for a recording (?record=1) */
  gint64 started_s; /* wall clock, for GET /calls */
  guint64 handle; /* Janus's, 0 before the attach */
  gchar *answer_sdp;
  gchar *relay_host; /* Janus's socket of the call */
  guint relay_port;
  gchar *worker_url; /* where the pipeline runs, or NULL */
  gboolean live; /* answered, not ended */
  gint64 failed_at; /* monotonic µs its worker died, while moving; else 0 */
} FrontCall;

typedef struct
{
  VaFront *front;
  gchar *url; /* the worker's base URL */
  GCancellable *cancel;
  SoupWebsocketConnection *conn; /* NULL while connecting */
} Watch;

struct _VaFront
{
  VaServer *server;
  VaJanus *janus;
  SoupSession *soup; /* to the workers */
  GHashTable *calls; /* id → FrontCall* */
  GHashTable *watches; /* worker URL → Watch* */
  GHashTable *dead; /* worker URL → monotonic µs it died (gint64*) */
  guint64 failovers; /* calls moved */
};

/* A PATCH waiting for Janus: the request's own data, since several may
 * be on their way at once and Janus may answer them in any order. */
typedef struct
{
  FrontCall *call;
  SoupServerMessage *msg;
} Patch;

static void watch_worker (VaFront *f, const gchar *url);

static void
front_call_free (FrontCall *c)
{
  g_free (c->id);
  g_free (c->agent);
  g_free (c->call_token);
  g_free (c->token);
  g_free (c->offer_sdp);
  g_free (c->remote_ufrag);
  g_free (c->etag);
  g_ptr_array_unref (c->patches);
  g_free (c->answer_sdp);
  g_free (c->relay_host);
  g_free (c->worker_url);
  g_clear_object (&c->pending);
  g_free (c);
}

static FrontCall *
call_of_handle (VaFront *f, guint64 handle)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, f->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((FrontCall *)value)->handle == handle)
      return value;
  return NULL;
}

/* ---- Workers ---- */

typedef void (*WorkerDone) (FrontCall *c, guint status, JsonObject *reply);

typedef struct
{
  VaFront *front;
  gchar *id; /* the call may be gone by the answer */
  WorkerDone done;
  SoupMessage *msg;
} WorkerRequest;

static JsonObject *
parse_object (GBytes *body)
{
  JsonParser *p = json_parser_new ();
  JsonObject *o = NULL;

  /* An empty body (a DELETE's) has no data to parse. */
  if (body && g_bytes_get_size (body) > 0 &&
      json_parser_load_from_data (p, g_bytes_get_data (body, NULL),
          (gssize)g_bytes_get_size (body), NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)))
    o = json_object_ref (json_node_get_object (json_parser_get_root (p)));
  g_object_unref (p);
  return o;
}

static void
on_worker_answer (GObject *source, GAsyncResult *res, gpointer data)
{
  WorkerRequest *r = data;
  GBytes *body =
      soup_session_send_and_read_finish (SOUP_SESSION (source), res, NULL);
  FrontCall *c = g_hash_table_lookup (r->front->calls, r->id);
  JsonObject *reply = parse_object (body);

  if (c && r->done)
    r->done (c, body ? soup_message_get_status (r->msg) : 0, reply);
  g_clear_pointer (&reply, json_object_unref);
  g_clear_pointer (&body, g_bytes_unref);
  g_object_unref (r->msg);
  g_free (r->id);
  g_free (r);
}

/* @method @path on @c's worker, as the front (the cluster token). */
static void
worker_request (FrontCall *c, const gchar *method, const gchar *path,
    const gchar *json, WorkerDone done)
{
  VaFront *f = c->front;
  gchar *url = g_strconcat (c->worker_url, path, NULL);
  gchar *bearer =
      g_strconcat ("Bearer ", f->server->config->cluster_token, NULL);
  WorkerRequest *r = g_new0 (WorkerRequest, 1);

  r->front = f;
  r->id = g_strdup (c->id);
  r->done = done;
  r->msg = soup_message_new (method, url);
  soup_message_headers_replace (
      soup_message_get_request_headers (r->msg), "Authorization", bearer);
  if (json) {
    GBytes *b = g_bytes_new (json, strlen (json));
    soup_message_set_request_body_from_bytes (r->msg, "application/json", b);
    g_bytes_unref (b);
  }
  soup_session_send_and_read_async (
      f->soup, r->msg, G_PRIORITY_DEFAULT, NULL, on_worker_answer, r);
  g_free (bearer);
  g_free (url);
}

/* ---- Ending ---- */

static void
respond_failure (FrontCall *c, guint status, const gchar *why)
{
  SoupServerMessage *msg = g_steal_pointer (&c->pending);

  if (msg == NULL)
    return;
  GST_WARNING ("gateway call %s not placed: %s", c->id, why);
  va_respond_error (c->front->server, msg, status, "%s", why);
  soup_server_message_unpause (msg);
  g_object_unref (msg);
}

/* Answers @p's PATCH and forgets it. */
static void
patch_done (Patch *p, guint status, const gchar *why)
{
  VaServer *server = p->call->front->server;

  if (why)
    va_respond_error (server, p->msg, status, "%s", why);
  else
    va_respond_empty (server, p->msg, status);
  soup_server_message_unpause (p->msg);
  g_object_unref (p->msg);
  g_ptr_array_remove_fast (p->call->patches, p);
  g_free (p);
}

/* Undoes everything @c holds and forgets it. */
static void
end_call (FrontCall *c, const gchar *why)
{
  VaFront *f = c->front;

  GST_INFO ("gateway call %s ends: %s", c->id, why);
  respond_failure (c, SOUP_STATUS_SERVICE_UNAVAILABLE, why);
  va_janus_cancel (f->janus, c);
  while (c->patches->len) {
    Patch *p = g_ptr_array_index (c->patches, 0);
    va_janus_cancel (f->janus, p);
    patch_done (p, SOUP_STATUS_NOT_FOUND,
        "the call ended before the media gateway took these candidates");
  }
  if (c->worker_url) {
    gchar *path = g_strconcat ("/gateway/calls/", c->id, NULL);
    worker_request (c, "DELETE", path, NULL, NULL);
    g_free (path);
  }
  va_janus_detach (f->janus, c->handle);
  va_metrics_call_ended (f->server->metrics, why, !c->live);
  va_grants_end (f->server->grants, c->id, NULL);
  g_hash_table_remove (f->calls, c->id);
  va_server_publish_load (f->server);
}

/* ---- Placing a call ---- */

static void
answer_caller (FrontCall *c)
{
  VaServer *server = c->front->server;
  SoupServerMessage *msg = g_steal_pointer (&c->pending);
  gchar *location;
  SoupMessageHeaders *h;

  if (msg == NULL)
    return;
  location =
      g_strdup_printf ("/calls/%s?access_token=%s", c->id, c->call_token);
  h = soup_server_message_get_response_headers (msg);
  soup_message_headers_replace (h, CALL_TOKEN_HEADER, c->call_token);
  soup_message_headers_replace (h, RESUME_TOKEN_HEADER, c->token);
  va_respond_sdp (server, msg, c->id, c->answer_sdp, location, c->etag);
  soup_server_message_unpause (msg);
  g_object_unref (msg);
  g_free (location);
  c->live = TRUE;
  GST_INFO ("gateway call %s placed on %s in %.0f ms", c->id, c->worker_url,
      (g_get_monotonic_time () - c->post_us) / 1000.0);
}

static void
on_connected (
    JsonObject *data, JsonObject *jsep, const GError *error, gpointer user_data)
{
  FrontCall *c = user_data;

  if (error || data == NULL ||
      g_strcmp0 (
          json_object_get_string_member_with_default (data, "voiceagent", ""),
          "connected") != 0) {
    end_call (c,
        error ? error->message
              : "the gateway did not point the call at its worker");
    return;
  }
  if (c->live) {
    /* A moved call: its gap ends when the new worker hears the caller
     * (on_watch_message), which may come before this answer. */
    GST_INFO ("gateway call %s re-pointed to %s", c->id, c->worker_url);
    return;
  }
  answer_caller (c);
}

static void
connect_relay (FrontCall *c, const gchar *host, guint port)
{
  JsonObject *body = json_object_new ();

  json_object_set_string_member (body, "request", "connect");
  json_object_set_string_member (body, "host", host);
  json_object_set_int_member (body, "port", port);
  va_janus_message (c->front->janus, c->handle, body, NULL, on_connected, c);
  json_object_unref (body);
}

static void
on_worker_started (FrontCall *c, guint status, JsonObject *reply)
{
  const gchar *host = reply
      ? json_object_get_string_member_with_default (reply, "rtp_host", NULL)
      : NULL;
  gint64 port = reply
      ? json_object_get_int_member_with_default (reply, "rtp_port", 0)
      : 0;

  if (status != SOUP_STATUS_CREATED || host == NULL || port < 1 ||
      port > 65535) {
    /* The worker's address is the cluster's business: the log has it,
     * the caller's answer does not. */
    GST_WARNING ("gateway call %s: the worker %s did not start it (HTTP %u)",
        c->id, c->worker_url, status);
    g_clear_pointer (&c->worker_url, g_free); /* nothing to end there */
    end_call (c,
        status == SOUP_STATUS_NOT_FOUND
            ? "no worker has this agent's RTP template (NAME-rtp.pipeline)"
            : "the worker picked for the call could not start it; try "
              "again");
    return;
  }
  connect_relay (c, host, (guint)port);
}

static void
start_on_worker (FrontCall *c)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;

  /* Watched before it is asked, so its "media" event finds the watch. */
  watch_worker (c->front, c->worker_url);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, c->id);
  json_builder_set_member_name (b, "agent");
  json_builder_add_string_value (b, c->agent);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, c->token);
  json_builder_set_member_name (b, "call_token");
  json_builder_add_string_value (b, c->call_token);
  json_builder_set_member_name (b, "gateway_host");
  json_builder_add_string_value (b, c->relay_host);
  json_builder_set_member_name (b, "gateway_port");
  json_builder_add_int_value (b, c->relay_port);
  json_builder_set_member_name (b, "opus_pt");
  json_builder_add_int_value (b, c->opus_pt);
  json_builder_set_member_name (b, "resume");
  json_builder_add_boolean_value (b, c->failed_at != 0);
  json_builder_set_member_name (b, "record");
  json_builder_add_boolean_value (b, c->record);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  worker_request (c, "POST", "/gateway/calls", json, on_worker_started);
  g_free (json);
  json_node_unref (root);
  g_object_unref (b);
}

/* Workers known dead stay excluded until the registry forgets them
 * (their key lives 3 heartbeats). */
#define DEAD_FOR_US (5 * G_USEC_PER_SEC)

static gchar *
pick_worker (VaFront *f)
{
  VaScaleout *s = f->server->scaleout;
  GPtrArray *exclude = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key, value;
  gchar *url;

  g_hash_table_iter_init (&iter, f->dead);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    if (g_get_monotonic_time () - *(gint64 *)value > DEAD_FOR_US)
      g_hash_table_iter_remove (&iter);
    else
      g_ptr_array_add (exclude, key);
  }
  g_ptr_array_add (exclude, NULL);
  url = s ? va_scaleout_pick_worker (s, (const gchar *const *)exclude->pdata)
          : NULL;
  g_ptr_array_unref (exclude);
  return url;
}

static void
on_called (
    JsonObject *data, JsonObject *jsep, const GError *error, gpointer user_data)
{
  FrontCall *c = user_data;
  const gchar *what = data
      ? json_object_get_string_member_with_default (data, "voiceagent", "")
      : "";
  const gchar *sdp = jsep
      ? json_object_get_string_member_with_default (jsep, "sdp", NULL)
      : NULL;

  if (error || !g_str_equal (what, "ready") || sdp == NULL) {
    gchar *why = g_strdup_printf ("the gateway did not take the offer: %s",
        error ? error->message
            : g_str_equal (what, "error")
            ? json_object_get_string_member_with_default (data, "error", "?")
            : "no answer");
    if (c->pending && !error && g_str_equal (what, "error")) {
      respond_failure (c, SOUP_STATUS_BAD_REQUEST, why);
    }
    end_call (c, why);
    g_free (why);
    return;
  }
  c->answer_sdp = g_strdup (sdp);
  c->relay_host = g_strdup (
      json_object_get_string_member_with_default (data, "rtp_host", ""));
  c->relay_port =
      (guint)json_object_get_int_member_with_default (data, "rtp_port", 0);
  c->worker_url = pick_worker (c->front);
  if (c->worker_url == NULL) {
    end_call (c, "no live worker has room (the registry in --redis)");
    return;
  }
  start_on_worker (c);
}

static void
on_attached (
    JsonObject *data, JsonObject *jsep, const GError *error, gpointer user_data)
{
  FrontCall *c = user_data;
  JsonObject *body, *offer;

  if (error || data == NULL || !json_object_has_member (data, "id")) {
    end_call (c, error ? error->message : "Janus attached no handle");
    return;
  }
  c->handle = (guint64)json_object_get_int_member (data, "id");
  body = json_object_new ();
  json_object_set_string_member (body, "request", "call");
  json_object_set_string_member (body, "call_id", c->id);
  offer = json_object_new ();
  json_object_set_string_member (offer, "type", "offer");
  json_object_set_string_member (offer, "sdp", c->offer_sdp);
  va_janus_message (c->front->janus, c->handle, body, offer, on_called, c);
  json_object_unref (body);
  json_object_unref (offer);
}

void
va_front_post (VaFront *f, SoupServerMessage *msg, const gchar *agent,
    VaOffer *offer, gint64 post_us)
{
  FrontCall *c;
  gchar *id;

  if (!va_janus_is_ready (f->janus)) {
    va_respond_error (f->server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the media gateway is not reachable; try again shortly");
    va_offer_free (offer);
    return;
  }
  id = va_server_new_call_id ();
  c = g_new0 (FrontCall, 1);
  c->front = f;
  c->id = id;
  c->agent = g_strdup (agent);
  c->post_us = post_us;
  c->record = va_server_asks_recording (msg);
  c->started_s = g_get_real_time () / G_USEC_PER_SEC;
  c->opus_pt = offer->opus_pt;
  c->offer_sdp = gst_sdp_message_as_text (offer->sdp);
  c->remote_ufrag = g_strdup (va_sdp_get_ice_ufrag (offer->sdp));
  c->etag = va_peer_new_etag ();
  c->patches = g_ptr_array_new ();
  c->call_token = va_grants_issue (f->server->grants, id, NULL);
  c->token = va_auth_new_token ();
  c->pending = g_object_ref (msg);
  va_offer_free (offer);
  g_hash_table_insert (f->calls, g_strdup (id), c);
  soup_server_message_pause (msg);
  va_metrics_call_started (f->server->metrics);
  va_server_publish_load (f->server);
  va_janus_attach (f->janus, PLUGIN, on_attached, c);
}

/* ---- Watching workers, failover ---- */

static void
move_call (FrontCall *c)
{
  g_clear_pointer (&c->worker_url, g_free);
  c->worker_url = pick_worker (c->front);
  if (c->worker_url == NULL) {
    end_call (c, "its worker died and no other has room");
    return;
  }
  GST_INFO ("gateway call %s: moving to %s", c->id, c->worker_url);
  start_on_worker (c);
}

static void
worker_died (VaFront *f, const gchar *url)
{
  gint64 *now = g_new (gint64, 1);
  GList *calls = g_hash_table_get_values (f->calls), *l;

  *now = g_get_monotonic_time ();
  GST_WARNING ("gateway: worker %s is gone; moving its calls", url);
  g_hash_table_replace (f->dead, g_strdup (url), now);
  for (l = calls; l; l = l->next) {
    FrontCall *c = l->data;
    if (c->live && g_strcmp0 (c->worker_url, url) == 0) {
      c->failed_at = *now;
      move_call (c);
    }
  }
  g_list_free (calls);
}

static void
watch_free (Watch *w)
{
  g_cancellable_cancel (w->cancel);
  if (w->conn) {
    g_signal_handlers_disconnect_by_data (w->conn, w);
    if (soup_websocket_connection_get_state (w->conn) ==
        SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (
          w->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    g_object_unref (w->conn);
  }
  g_object_unref (w->cancel);
  g_free (w->url);
  g_free (w);
}

/* The watch broke: the worker died (or cannot be watched, which is as
 * bad). */
static void
on_watch_closed (SoupWebsocketConnection *conn, gpointer data)
{
  Watch *w = data;
  VaFront *f = w->front;
  gchar *url = g_strdup (w->url);

  g_hash_table_remove (f->watches, url); /* frees w */
  worker_died (f, url);
  g_free (url);
}

/* A moved call's failover ends when its new worker hears the caller. */
static void
failover_done (FrontCall *c)
{
  gdouble ms = (g_get_monotonic_time () - c->failed_at) / 1000.0;

  c->failed_at = 0;
  c->front->failovers++;
  va_metrics_observe (
      c->front->server->metrics, "gateway_failover", ms / 1000.0);
  GST_INFO ("gateway call %s: %s hears the caller %.1f ms after its worker "
            "died",
      c->id, c->worker_url, ms);
}

/* {"event":"media","id"}: a call's first datagram reached the worker;
 * {"event":"ended","id"}: the worker ended the call itself. */
static void
on_watch_message (
    SoupWebsocketConnection *conn, gint type, GBytes *message, gpointer data)
{
  Watch *w = data;
  JsonObject *o =
      type == SOUP_WEBSOCKET_DATA_TEXT ? parse_object (message) : NULL;
  const gchar *id =
      o ? json_object_get_string_member_with_default (o, "id", NULL) : NULL;
  FrontCall *c = id ? g_hash_table_lookup (w->front->calls, id) : NULL;
  const gchar *event =
      o ? json_object_get_string_member_with_default (o, "event", "") : "";

  if (c && g_strcmp0 (c->worker_url, w->url) == 0) {
    if (c->failed_at && g_str_equal (event, "media"))
      failover_done (c);
    else if (!c->failed_at && g_str_equal (event, "ended"))
      end_call (c,
          "its worker ended it (an error, or the call's time "
          "limit: the worker's log says which)");
  }
  g_clear_pointer (&o, json_object_unref);
}

static void
on_watch_open (GObject *source, GAsyncResult *res, gpointer data)
{
  Watch *w = data;
  GError *error = NULL;
  SoupWebsocketConnection *conn = soup_session_websocket_connect_finish (
      SOUP_SESSION (source), res, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free (error);
    return; /* w is freed */
  }
  if (conn == NULL) {
    GST_WARNING ("gateway: cannot watch worker %s: %s", w->url, error->message);
    g_error_free (error);
    on_watch_closed (NULL, w);
    return;
  }
  w->conn = conn;
  soup_websocket_connection_set_keepalive_interval (conn, 10);
  g_signal_connect (conn, "closed", G_CALLBACK (on_watch_closed), w);
  g_signal_connect (conn, "message", G_CALLBACK (on_watch_message), w);
}

static void
watch_worker (VaFront *f, const gchar *url)
{
  Watch *w;
  gchar *ws, *bearer;
  SoupMessage *msg;

  if (g_hash_table_contains (f->watches, url))
    return;
  w = g_new0 (Watch, 1);
  w->front = f;
  w->url = g_strdup (url);
  w->cancel = g_cancellable_new ();
  g_hash_table_insert (f->watches, g_strdup (url), w);
  ws = g_strconcat ("ws", url + strlen ("http"), "/gateway/watch", NULL);
  msg = soup_message_new ("GET", ws);
  bearer = g_strconcat ("Bearer ", f->server->config->cluster_token, NULL);
  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "Authorization", bearer);
  soup_session_websocket_connect_async (f->soup, msg, NULL, NULL,
      G_PRIORITY_DEFAULT, w->cancel, on_watch_open, w);
  g_object_unref (msg);
  g_free (bearer);
  g_free (ws);
}

/* ---- Sessions, events ---- */

static void
on_trickled (
    JsonObject *data, JsonObject *jsep, const GError *error, gpointer user_data)
{
  Patch *p = user_data;
  gchar *why;

  if (error == NULL) {
    patch_done (p, SOUP_STATUS_NO_CONTENT, NULL);
    return;
  }
  why = g_strdup_printf ("the media gateway did not take the candidates: %s; "
                         "the call goes on with those it has (if its ICE "
                         "fails, DELETE it and POST a new offer)",
      error->message);
  GST_WARNING ("gateway call %s: %s", p->call->id, why);
  patch_done (p, SOUP_STATUS_BAD_GATEWAY, why);
  g_free (why);
}

/* @frag's candidates as Janus's trickle objects. */
static JsonArray *
janus_candidates (const VaSdpFrag *frag)
{
  JsonArray *a = json_array_new ();
  JsonObject *o;

  for (guint i = 0; i < frag->candidates->len; i++) {
    const VaCandidate *vc = g_ptr_array_index (frag->candidates, i);
    o = json_object_new ();
    /* The mid names the media section whatever the fragment's m= lines
     * are (RFC 8840); the index only counts those. */
    if (vc->mid)
      json_object_set_string_member (o, "sdpMid", vc->mid);
    else
      json_object_set_int_member (o, "sdpMLineIndex", vc->mline);
    json_object_set_string_member (o, "candidate", vc->candidate);
    json_array_add_object_element (a, o);
  }
  if (frag->end_of_candidates) {
    o = json_object_new ();
    json_object_set_boolean_member (o, "completed", TRUE);
    json_array_add_object_element (a, o);
  }
  return a;
}

/* Trickle ICE: the PATCH is answered once Janus took its candidates. */
static void
session_patch (FrontCall *c, SoupServerMessage *msg)
{
  VaSdpFrag *frag =
      va_server_read_patch (c->front->server, msg, c->etag, c->remote_ufrag);
  JsonArray *candidates;
  Patch *p;

  if (frag == NULL)
    return;
  candidates = janus_candidates (frag);
  va_sdpfrag_free (frag);
  if (json_array_get_length (candidates) == 0) {
    va_respond_empty (c->front->server, msg, SOUP_STATUS_NO_CONTENT);
    json_array_unref (candidates);
    return;
  }
  p = g_new0 (Patch, 1);
  p->call = c;
  p->msg = g_object_ref (msg);
  g_ptr_array_add (c->patches, p);
  soup_server_message_pause (msg);
  va_janus_trickle (c->front->janus, c->handle, candidates, on_trickled, p);
  json_array_unref (candidates);
}

gboolean
va_front_route_session (VaFront *f, SoupServerMessage *msg, const gchar *method,
    gchar **parts, GHashTable *query)
{
  FrontCall *c = g_hash_table_lookup (f->calls, parts[1]);

  if (!va_access_grants (f->server, msg, query, parts[1], NULL,
          c && c->live && parts[2] == NULL))
    return TRUE;
  if (g_str_equal (method, "DELETE")) {
    end_call (c, "hangup");
    va_respond_empty (f->server, msg, SOUP_STATUS_OK);
  } else if (g_str_equal (method, "PATCH")) {
    session_patch (c, msg);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    va_respond_empty (f->server, msg, SOUP_STATUS_NO_CONTENT);
  } else {
    va_respond_error (f->server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "%s is not allowed on a call: use PATCH, DELETE or GET", method);
  }
  return TRUE;
}

static void
on_janus_event (
    guint64 handle, const gchar *type, JsonObject *data, gpointer user_data)
{
  VaFront *f = user_data;
  FrontCall *c;

  if (g_str_equal (type, "lost")) {
    va_front_end_all (f);
    return;
  }
  c = call_of_handle (f, handle);
  if (c == NULL)
    return;
  if (g_str_equal (type, "hangup") || g_str_equal (type, "detached") ||
      (data &&
          g_strcmp0 (json_object_get_string_member_with_default (
                         data, "voiceagent", ""),
              "hangup") == 0))
    end_call (c, "the caller's peer connection closed");
}

void
va_front_list_calls (VaFront *f, JsonBuilder *b)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, f->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    FrontCall *c = value;
    if (!c->live)
      continue;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, c->id);
    json_builder_set_member_name (b, "agent");
    json_builder_add_string_value (b, c->agent);
    json_builder_set_member_name (b, "started");
    json_builder_add_int_value (b, c->started_s);
    json_builder_set_member_name (b, "worker");
    json_builder_add_string_value (b, c->worker_url ? c->worker_url : "");
    json_builder_end_object (b);
  }
}

guint
va_front_count (VaFront *f)
{
  return g_hash_table_size (f->calls);
}

void
va_front_end_all (VaFront *f)
{
  GList *calls = g_hash_table_get_values (f->calls);

  for (GList *l = calls; l; l = l->next)
    end_call (l->data, "shutdown");
  g_list_free (calls);
}

VaFront *
va_front_new (VaServer *server)
{
  VaFront *f = g_new0 (VaFront, 1);

  f->server = server;
  f->calls = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)front_call_free);
  f->watches = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)watch_free);
  f->dead = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  f->soup = soup_session_new_with_options (
      "timeout", WORKER_TIMEOUT_S, "max-conns-per-host", 32, NULL);
  f->janus = va_janus_new (server->config->gateway,
      g_getenv ("VOICEAGENT_GATEWAY_SECRET"), on_janus_event, f);
  return f;
}

void
va_front_free (VaFront *f)
{
  if (f == NULL)
    return;
  va_front_end_all (f);
  va_janus_free (f->janus);
  g_hash_table_unref (f->calls);
  g_hash_table_unref (f->watches);
  g_hash_table_unref (f->dead);
  g_object_unref (f->soup);
  g_free (f);
}

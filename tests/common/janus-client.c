/* A client of Janus's HTTP API (the "Janus API"), for tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Requests are plain POSTs from the test's thread. Events (answers to
 * asynchronous requests and unsolicited ones) come from GET
 * /janus/<session>?maxev=N, which Janus holds open for up to 30 s: a
 * thread of our own keeps one open and queues what it returns, and the
 * test thread takes events from the queue by transaction or by kind.
 * Janus may deliver an event before the HTTP "ack" of its request, so
 * nothing here depends on the order of the two.
 */
#include <string.h>
#include <gio/gio.h>
#include <libsoup/soup.h>
#include "janus-client.h"

#define POLL_MAXEV 10

struct _JanusClient
{
  gchar *url; /* .../janus */
  guint64 session;
  SoupSession *http; /* the test's thread only */
  guint next_transaction; /* the test's thread only */

  GThread *poller;
  SoupSession *poll_http; /* the poll thread only */
  GCancellable *cancel; /* stops the poll */

  GMutex lock;
  GCond cond;
  GQueue events; /* of JsonObject*, protected by lock */
};

/* @o's member @name when it is an object, else NULL (Janus leaves members
 * out: an event without plugindata, a reply without jsep). */
static JsonObject *
object_member (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* A success reply's data.id (a session's or a handle's), 0 if none. */
static guint64
data_id (JsonObject *reply)
{
  JsonObject *data = object_member (reply, "data");

  return data ? (guint64)json_object_get_int_member_with_default (data, "id", 0)
              : 0;
}

static JsonObject *
parse_object (GBytes *bytes, GError **error)
{
  JsonParser *parser = json_parser_new ();
  JsonObject *obj = NULL;
  gsize size;
  const gchar *data = g_bytes_get_data (bytes, &size);

  if (json_parser_load_from_data (parser, data, (gssize)size, error)) {
    JsonNode *root = json_parser_get_root (parser);
    if (JSON_NODE_HOLDS_OBJECT (root))
      obj = json_object_ref (json_node_get_object (root));
    else
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "Janus answered with JSON that is not an object: %.*s", (int)size,
          data);
  }
  g_object_unref (parser);
  return obj;
}

/* Sends @method @url with @body (a JSON object, may be NULL) and parses
 * the answer. */
static JsonObject *
request (SoupSession *http, const gchar *method, const gchar *url,
    JsonObject *body, GCancellable *cancel, GError **error)
{
  SoupMessage *msg = soup_message_new (method, url);
  GBytes *reply;
  JsonObject *obj = NULL;

  if (msg == NULL) {
    g_set_error (
        error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "invalid URL %s", url);
    return NULL;
  }
  if (body) {
    JsonNode *node = json_node_init_object (json_node_alloc (), body);
    gchar *text = json_to_string (node, FALSE);
    GBytes *b = g_bytes_new_take (text, strlen (text));
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
    g_bytes_unref (b);
    json_node_unref (node);
  }
  reply = soup_session_send_and_read (http, msg, cancel, error);
  if (reply && soup_message_get_status (msg) != SOUP_STATUS_OK)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s %s: HTTP %u", method,
        url, soup_message_get_status (msg));
  else if (reply)
    obj = parse_object (reply, error);
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  return obj;
}

/* A new request object {"janus":@verb,"transaction":...}. */
static JsonObject *
new_request (JanusClient *c, const gchar *verb, gchar **transaction)
{
  JsonObject *obj = json_object_new ();
  gchar *t = g_strdup_printf ("t%u", ++c->next_transaction);

  json_object_set_string_member (obj, "janus", verb);
  json_object_set_string_member (obj, "transaction", t);
  if (transaction)
    *transaction = t;
  else
    g_free (t);
  return obj;
}

/* POSTs @body (taking it) to @path (under the API URL) and checks that
 * the answer is not an error. */
static JsonObject *
post (JanusClient *c, const gchar *path, JsonObject *body, GError **error)
{
  gchar *url = g_strconcat (c->url, path, NULL);
  JsonObject *reply = request (c->http, "POST", url, body, NULL, error);

  json_object_unref (body);
  g_free (url);
  if (reply &&
      g_strcmp0 (
          json_object_get_string_member_with_default (reply, "janus", ""),
          "error") == 0) {
    JsonObject *e = object_member (reply, "error");
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "Janus error %" G_GINT64_FORMAT ": %s",
        e ? json_object_get_int_member_with_default (e, "code", 0) : 0,
        e ? json_object_get_string_member_with_default (e, "reason", "") : "");
    json_object_unref (reply);
    return NULL;
  }
  return reply;
}

static void
queue_event (JanusClient *c, JsonNode *node)
{
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return;
  g_mutex_lock (&c->lock);
  g_queue_push_tail (&c->events, json_object_ref (json_node_get_object (node)));
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

/* GET with maxev>1 answers an array of events (or a keepalive). */
static gboolean
poll_once (JanusClient *c, const gchar *url)
{
  SoupMessage *msg = soup_message_new ("GET", url);
  GBytes *reply =
      soup_session_send_and_read (c->poll_http, msg, c->cancel, NULL);
  JsonParser *parser = json_parser_new ();
  gboolean ok = reply && soup_message_get_status (msg) == SOUP_STATUS_OK;

  if (ok &&
      json_parser_load_from_data (parser, g_bytes_get_data (reply, NULL),
          (gssize)g_bytes_get_size (reply), NULL)) {
    JsonNode *root = json_parser_get_root (parser);
    if (JSON_NODE_HOLDS_ARRAY (root)) {
      JsonArray *a = json_node_get_array (root);
      for (guint i = 0; i < json_array_get_length (a); i++)
        queue_event (c, json_array_get_element (a, i));
    } else {
      queue_event (c, root);
    }
  }
  g_object_unref (parser);
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  return ok;
}

static gpointer
poll_thread (gpointer data)
{
  JanusClient *c = data;
  gchar *url = g_strdup_printf (
      "%s/%" G_GUINT64_FORMAT "?maxev=%d", c->url, c->session, POLL_MAXEV);

  while (!g_cancellable_is_cancelled (c->cancel)) {
    if (!poll_once (c, url) && !g_cancellable_is_cancelled (c->cancel))
      g_usleep (100 * 1000); /* Janus restarting, or the session gone */
  }
  g_free (url);
  return NULL;
}

JanusClient *
janus_client_new (const gchar *url, GError **error)
{
  JanusClient *c = g_new0 (JanusClient, 1);
  JsonObject *reply;

  c->url = g_strdup (url);
  c->http = soup_session_new_with_options ("timeout", 10, NULL);
  c->poll_http = soup_session_new_with_options ("timeout", 45, NULL);
  c->cancel = g_cancellable_new ();
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  g_queue_init (&c->events);
  reply = post (c, "", new_request (c, "create", NULL), error);
  if (reply == NULL) {
    janus_client_free (c);
    return NULL;
  }
  c->session = data_id (reply);
  json_object_unref (reply);
  c->poller = g_thread_new ("janus-poll", poll_thread, c);
  return c;
}

void
janus_client_free (JanusClient *c)
{
  if (c == NULL)
    return;
  if (c->session) {
    gchar *path = g_strdup_printf ("/%" G_GUINT64_FORMAT, c->session);
    JsonObject *reply = post (c, path, new_request (c, "destroy", NULL), NULL);
    g_clear_pointer (&reply, json_object_unref);
    g_free (path);
  }
  g_cancellable_cancel (c->cancel);
  if (c->poller)
    g_thread_join (c->poller);
  g_object_unref (c->cancel);
  g_object_unref (c->http);
  g_object_unref (c->poll_http);
  g_queue_clear_full (&c->events, (GDestroyNotify)json_object_unref);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c->url);
  g_free (c);
}

guint64
janus_client_get_session (JanusClient *c)
{
  return c->session;
}

guint64
janus_client_attach (JanusClient *c, const gchar *plugin, GError **error)
{
  gchar *path = g_strdup_printf ("/%" G_GUINT64_FORMAT, c->session);
  JsonObject *body = new_request (c, "attach", NULL);
  JsonObject *reply;
  guint64 handle = 0;

  json_object_set_string_member (body, "plugin", plugin);
  reply = post (c, path, body, error);
  if (reply) {
    handle = data_id (reply);
    json_object_unref (reply);
  }
  g_free (path);
  return handle;
}

static gboolean
post_simple (
    JanusClient *c, const gchar *path, const gchar *verb, GError **error)
{
  JsonObject *reply = post (c, path, new_request (c, verb, NULL), error);
  gboolean ok = reply != NULL;

  g_clear_pointer (&reply, json_object_unref);
  return ok;
}

gboolean
janus_client_detach (JanusClient *c, guint64 handle, GError **error)
{
  gchar *path = g_strdup_printf (
      "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, c->session, handle);
  gboolean ok = post_simple (c, path, "detach", error);

  g_free (path);
  return ok;
}

gboolean
janus_client_keepalive (JanusClient *c, GError **error)
{
  gchar *path = g_strdup_printf ("/%" G_GUINT64_FORMAT, c->session);
  gboolean ok = post_simple (c, path, "keepalive", error);

  g_free (path);
  return ok;
}

typedef gboolean (*EventMatch) (
    JsonObject *event, gconstpointer a, gconstpointer b, guint64 handle);

/* Takes the first queued event that @match accepts, waiting until
 * @deadline (monotonic µs). */
static JsonObject *
take_event (JanusClient *c, EventMatch match, gconstpointer a, gconstpointer b,
    guint64 handle, gint64 deadline)
{
  JsonObject *found = NULL;

  g_mutex_lock (&c->lock);
  while (found == NULL) {
    for (GList *l = c->events.head; l; l = l->next) {
      if (match (l->data, a, b, handle)) {
        found = l->data;
        g_queue_delete_link (&c->events, l);
        break;
      }
    }
    if (found == NULL && !g_cond_wait_until (&c->cond, &c->lock, deadline))
      break;
  }
  g_mutex_unlock (&c->lock);
  return found;
}

static gboolean
match_transaction (JsonObject *event, gconstpointer transaction,
    gconstpointer unused, guint64 handle)
{
  return g_strcmp0 (json_object_get_string_member_with_default (
                        event, "transaction", ""),
             transaction) == 0 &&
      g_strcmp0 (
          json_object_get_string_member_with_default (event, "janus", ""),
          "ack") != 0;
}

static JsonObject *
plugin_data (JsonObject *event)
{
  JsonObject *pd = object_member (event, "plugindata");

  if (pd == NULL || !json_object_has_member (pd, "data"))
    return NULL;
  return object_member (pd, "data");
}

static gboolean
match_kind (
    JsonObject *event, gconstpointer key, gconstpointer value, guint64 handle)
{
  JsonObject *data;

  if ((guint64)json_object_get_int_member_with_default (event, "sender", 0) !=
      handle)
    return FALSE;
  if (key == NULL)
    return g_strcmp0 (
               json_object_get_string_member_with_default (event, "janus", ""),
               value) == 0;
  data = plugin_data (event);
  return data &&
      g_strcmp0 (json_object_get_string_member_with_default (data, key, ""),
          value) == 0;
}

/* The plugin's data of @reply (a "success" or an "event"), as a new
 * reference, and its jsep's SDP. */
static JsonObject *
reply_data (JsonObject *reply, gchar **answer_sdp, GError **error)
{
  JsonObject *data = plugin_data (reply);
  JsonObject *jsep = object_member (reply, "jsep");

  if (answer_sdp)
    *answer_sdp = jsep ? g_strdup (json_object_get_string_member_with_default (
                             jsep, "sdp", ""))
                       : NULL;
  if (data == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "Janus reply without plugin data");
  return data ? json_object_ref (data) : NULL;
}

static JsonObject *
message_body (JanusClient *c, const gchar *body, const gchar *offer_sdp,
    gchar **transaction, GError **error)
{
  JsonParser *parser = json_parser_new ();
  JsonObject *obj = NULL;

  if (json_parser_load_from_data (parser, body, -1, error)) {
    obj = new_request (c, "message", transaction);
    json_object_set_member (
        obj, "body", json_node_copy (json_parser_get_root (parser)));
    if (offer_sdp) {
      JsonObject *jsep = json_object_new ();
      json_object_set_string_member (jsep, "type", "offer");
      json_object_set_string_member (jsep, "sdp", offer_sdp);
      json_object_set_boolean_member (jsep, "trickle", FALSE);
      json_object_set_object_member (obj, "jsep", jsep);
    }
  }
  g_object_unref (parser);
  return obj;
}

JsonObject *
janus_client_message (JanusClient *c, guint64 handle, const gchar *body,
    const gchar *offer_sdp, gchar **answer_sdp, guint timeout_ms,
    GError **error)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * (gint64)1000;
  gchar *transaction = NULL;
  gchar *path = g_strdup_printf (
      "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, c->session, handle);
  JsonObject *req = message_body (c, body, offer_sdp, &transaction, error);
  JsonObject *reply = req ? post (c, path, req, error) : NULL;
  JsonObject *data = NULL;

  if (answer_sdp)
    *answer_sdp = NULL;
  if (reply &&
      g_strcmp0 (json_object_get_string_member (reply, "janus"), "ack") == 0) {
    json_object_unref (reply);
    reply =
        take_event (c, match_transaction, transaction, NULL, handle, deadline);
    if (reply == NULL)
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
          "no event for transaction %s in %u ms", transaction, timeout_ms);
  }
  if (reply)
    data = reply_data (reply, answer_sdp, error);
  g_clear_pointer (&reply, json_object_unref);
  g_free (transaction);
  g_free (path);
  return data;
}

JsonObject *
janus_client_wait_event (JanusClient *c, guint64 handle, const gchar *key,
    const gchar *value, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * (gint64)1000;
  JsonObject *event = take_event (c, match_kind, key, value, handle, deadline);
  JsonObject *data;

  if (event == NULL || key == NULL)
    return event;
  data = json_object_ref (plugin_data (event));
  json_object_unref (event);
  return data;
}

JsonObject *
janus_client_get_info (const gchar *url, GError **error)
{
  SoupSession *http = soup_session_new_with_options ("timeout", 5, NULL);
  gchar *info = g_strconcat (url, "/info", NULL);
  JsonObject *reply = request (http, "GET", info, NULL, NULL, error);

  g_free (info);
  g_object_unref (http);
  return reply;
}

/* voiceagent: the front's client of Janus's HTTP API (gateway mode).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One Janus session per front, kept open by a long poll (each GET also
 * counts as Janus's keepalive; it answers within 30 s), reopened when
 * Janus forgets it (a restart, a timeout). Requests carry a transaction;
 * an asynchronous plugin answers "ack" first and its event follows on
 * the long poll, sometimes before the ack itself, so a request is matched
 * by transaction whichever comes first. Everything runs on the main
 * context.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <libsoup/soup.h>
#include "janusapi.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define RETRY_MS 1000
#define MAX_EVENTS "10"
/* Janus answers a long poll within 30 s. */
#define POLL_TIMEOUT_S 45
#define REQUEST_TIMEOUT_S 10
#define MAX_REPLY (1024 * 1024)

typedef struct
{
  VaJanusDone done;
  gpointer user_data;
  gboolean ack_is_answer; /* a trickle: no event follows its ack */
} Pending;

struct _VaJanus
{
  gchar *url;
  gchar *api_secret;
  VaJanusEvent on_event;
  gpointer user_data;
  SoupSession *soup; /* requests: REQUEST_TIMEOUT_S */
  SoupSession *poll_soup; /* the long poll: POLL_TIMEOUT_S */
  GCancellable *cancel; /* every request in flight */
  guint64 session; /* 0 while none is open */
  guint retry;
  GHashTable *pending; /* transaction → Pending* */
  guint64 next_transaction;
};

static void open_session (VaJanus *j);
static void poll_events (VaJanus *j);

static gchar *
new_transaction (VaJanus *j)
{
  return g_strdup_printf ("va%" G_GUINT64_FORMAT, ++j->next_transaction);
}

static JsonObject *
new_request (VaJanus *j, const gchar *verb, const gchar *transaction)
{
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "janus", verb);
  json_object_set_string_member (o, "transaction", transaction);
  if (j->api_secret)
    json_object_set_string_member (o, "apisecret", j->api_secret);
  return o;
}

/* The parsed reply of @msg, or NULL with @error. */
static JsonNode *
read_reply (SoupMessage *msg, GBytes *body, GError **error)
{
  JsonParser *parser;
  JsonNode *root = NULL;

  if (body == NULL)
    return NULL;
  if (soup_message_get_status (msg) != SOUP_STATUS_OK) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "Janus answered HTTP %u",
        soup_message_get_status (msg));
    return NULL;
  }
  parser = json_parser_new ();
  if (json_parser_load_from_data (parser, g_bytes_get_data (body, NULL),
          (gssize)g_bytes_get_size (body), error))
    root = json_node_ref (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

typedef void (*ReplyFunc) (
    VaJanus *j, JsonNode *reply, const GError *error, const gchar *transaction);

typedef struct
{
  VaJanus *j;
  ReplyFunc func;
  gchar *transaction;
  SoupMessage *msg;
} Call;

static void
on_sent (GObject *source, GAsyncResult *res, gpointer data)
{
  Call *c = data;
  GError *error = NULL;
  GBytes *body =
      soup_session_send_and_read_finish (SOUP_SESSION (source), res, &error);
  JsonNode *reply = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_clear_error (&error);
    goto out; /* freed: c->j is gone */
  }
  if (body && g_bytes_get_size (body) > MAX_REPLY)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
        "Janus's reply is over %u bytes", MAX_REPLY);
  else if (error == NULL)
    reply = read_reply (c->msg, body, &error);
  c->func (c->j, reply, error, c->transaction);
out:
  g_clear_pointer (&reply, json_node_unref);
  g_clear_pointer (&body, g_bytes_unref);
  g_clear_error (&error);
  g_object_unref (c->msg);
  g_free (c->transaction);
  g_free (c);
}

/* POSTs @request (taken) to @path under the API URL, or GETs @path when
 * @request is NULL. */
static void
send_request (VaJanus *j, const gchar *path, JsonObject *request,
    const gchar *transaction, ReplyFunc func)
{
  gchar *url = g_strconcat (j->url, path, NULL);
  Call *c = g_new0 (Call, 1);

  c->j = j;
  c->func = func;
  c->transaction = g_strdup (transaction);
  c->msg = soup_message_new (request ? "POST" : "GET", url);
  g_free (url);
  if (c->msg == NULL) {
    GError *error = g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--gateway %s is not an HTTP URL", j->url);
    func (j, NULL, error, transaction);
    g_error_free (error);
    g_free (c->transaction);
    g_free (c);
    if (request)
      json_object_unref (request);
    return;
  }
  if (request) {
    JsonNode *node = json_node_init_object (json_node_alloc (), request);
    gchar *text = json_to_string (node, FALSE);
    GBytes *b = g_bytes_new_take (text, strlen (text));

    soup_message_set_request_body_from_bytes (c->msg, "application/json", b);
    g_bytes_unref (b);
    json_node_unref (node);
    json_object_unref (request);
  }
  soup_session_send_and_read_async (request ? j->soup : j->poll_soup, c->msg,
      G_PRIORITY_DEFAULT, j->cancel, on_sent, c);
}

/* ---- Session ---- */

static gboolean
retry_session (gpointer data)
{
  VaJanus *j = data;

  j->retry = 0;
  open_session (j);
  return G_SOURCE_REMOVE;
}

static void
fail_pending (VaJanus *j, const gchar *why)
{
  GHashTable *pending = g_steal_pointer (&j->pending);
  GHashTableIter iter;
  gpointer value;
  GError *error = g_error_new (G_IO_ERROR, G_IO_ERROR_CLOSED, "%s", why);

  j->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_iter_init (&iter, pending);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    Pending *p = value;
    p->done (NULL, NULL, error, p->user_data);
  }
  g_hash_table_unref (pending);
  g_error_free (error);
}

static void
session_lost (VaJanus *j, const gchar *why)
{
  gboolean had = j->session != 0;

  if (had)
    GST_WARNING ("gateway: Janus session lost (%s); reopening", why);
  j->session = 0;
  fail_pending (j, why);
  if (had && j->on_event)
    j->on_event (0, "lost", NULL, j->user_data);
  if (j->retry == 0)
    j->retry = g_timeout_add (RETRY_MS, retry_session, j);
}

static const gchar *
verb_of (JsonObject *o)
{
  return json_object_get_string_member_with_default (o, "janus", "");
}

static void
on_created (
    VaJanus *j, JsonNode *reply, const GError *error, const gchar *transaction)
{
  JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT (reply)
      ? json_node_get_object (reply)
      : NULL;
  JsonObject *data = o && g_str_equal (verb_of (o), "success")
      ? json_object_get_object_member (o, "data")
      : NULL;

  if (data == NULL) {
    GST_INFO ("gateway: no Janus session yet (%s)",
        error ? error->message : "Janus refused to create one");
    if (j->retry == 0)
      j->retry = g_timeout_add (RETRY_MS, retry_session, j);
    return;
  }
  j->session = (guint64)json_object_get_int_member (data, "id");
  GST_INFO ("gateway: Janus session %" G_GUINT64_FORMAT " open", j->session);
  poll_events (j);
}

static void
open_session (VaJanus *j)
{
  gchar *t = new_transaction (j);

  send_request (j, "", new_request (j, "create", t), t, on_created);
  g_free (t);
}

/* ---- Events ---- */

static void
complete (VaJanus *j, const gchar *transaction, JsonObject *data,
    JsonObject *jsep, const GError *error)
{
  gchar *key;
  Pending *p;

  if (transaction == NULL ||
      !g_hash_table_steal_extended (
          j->pending, transaction, (gpointer *)&key, (gpointer *)&p))
    return;
  g_free (key); /* the table's copy; @transaction is the caller's */
  p->done (data, jsep, error, p->user_data);
  g_free (p);
}

static JsonObject *
object_member (JsonObject *o, const gchar *name)
{
  JsonNode *n = o ? json_object_get_member (o, name) : NULL;

  return n && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

static void
take_event (VaJanus *j, JsonObject *o)
{
  const gchar *verb = verb_of (o);
  const gchar *transaction =
      json_object_get_string_member_with_default (o, "transaction", NULL);
  JsonObject *data = object_member (object_member (o, "plugindata"), "data");
  guint64 handle =
      (guint64)json_object_get_int_member_with_default (o, "sender", 0);
  gboolean awaited =
      transaction && g_hash_table_contains (j->pending, transaction);

  if (g_str_equal (verb, "keepalive") || g_str_equal (verb, "ack"))
    return;
  if (g_str_equal (verb, "event") && awaited) {
    complete (j, transaction, data, object_member (o, "jsep"), NULL);
    return;
  }
  if (handle && j->on_event)
    j->on_event (handle, verb, data, j->user_data);
}

static void
on_events (
    VaJanus *j, JsonNode *reply, const GError *error, const gchar *transaction)
{
  if (reply == NULL) {
    session_lost (j, error ? error->message : "no answer to the long poll");
    return;
  }
  if (JSON_NODE_HOLDS_ARRAY (reply)) {
    JsonArray *a = json_node_get_array (reply);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      JsonNode *n = json_array_get_element (a, i);
      if (JSON_NODE_HOLDS_OBJECT (n))
        take_event (j, json_node_get_object (n));
    }
  } else if (JSON_NODE_HOLDS_OBJECT (reply)) {
    JsonObject *o = json_node_get_object (reply);
    if (g_str_equal (verb_of (o), "error")) {
      session_lost (j, "Janus no longer knows the session");
      return;
    }
    take_event (j, o);
  }
  if (j->session)
    poll_events (j);
}

static void
poll_events (VaJanus *j)
{
  gchar *path =
      g_strdup_printf ("/%" G_GUINT64_FORMAT "?maxev=" MAX_EVENTS, j->session);

  if (j->api_secret) {
    gchar *escaped = g_uri_escape_string (j->api_secret, NULL, FALSE);
    gchar *with = g_strconcat (path, "&apisecret=", escaped, NULL);
    g_free (escaped);
    g_free (path);
    path = with;
  }
  send_request (j, path, NULL, NULL, on_events);
  g_free (path);
}

/* ---- Requests ---- */

/* The synchronous part of a request's answer. */
static void
on_answered (
    VaJanus *j, JsonNode *reply, const GError *error, const gchar *transaction)
{
  JsonObject *o = reply && JSON_NODE_HOLDS_OBJECT (reply)
      ? json_node_get_object (reply)
      : NULL;
  const gchar *verb = o ? verb_of (o) : "";
  GError *refused = NULL;

  if (g_str_equal (verb, "ack")) {
    Pending *p = g_hash_table_lookup (j->pending, transaction);
    if (p && p->ack_is_answer)
      complete (j, transaction, NULL, NULL, NULL);
    return; /* else the event follows on the long poll */
  }
  if (g_str_equal (verb, "success")) {
    JsonObject *data = object_member (object_member (o, "plugindata"), "data");
    complete (j, transaction, data ? data : object_member (o, "data"),
        object_member (o, "jsep"), NULL);
    return;
  }
  if (o && g_str_equal (verb, "error")) {
    JsonObject *e = object_member (o, "error");
    refused = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
        "Janus refused the request: %s (%" G_GINT64_FORMAT ")",
        e ? json_object_get_string_member_with_default (e, "reason", "?") : "?",
        e ? json_object_get_int_member_with_default (e, "code", 0) : 0);
  }
  complete (j, transaction, NULL, NULL,
      refused     ? refused
          : error ? error
                  : (refused = g_error_new_literal (G_IO_ERROR,
                         G_IO_ERROR_FAILED, "Janus gave no answer")));
  g_clear_error (&refused);
}

/* Sends @req (taken) to @path; done() gets its answer. */
static void
request (VaJanus *j, const gchar *path, JsonObject *req, gboolean ack_is_answer,
    VaJanusDone done, gpointer user_data)
{
  Pending *p = g_new0 (Pending, 1);
  gchar *t = g_strdup (json_object_get_string_member (req, "transaction"));

  p->done = done;
  p->user_data = user_data;
  p->ack_is_answer = ack_is_answer;
  g_hash_table_insert (j->pending, g_strdup (t), p);
  send_request (j, path, req, t, on_answered);
  g_free (t);
}

/* Sends @req (taken) to @handle. */
static void
handle_request (VaJanus *j, guint64 handle, JsonObject *req,
    gboolean ack_is_answer, VaJanusDone done, gpointer user_data)
{
  gchar *path = g_strdup_printf (
      "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, j->session, handle);

  request (j, path, req, ack_is_answer, done, user_data);
  g_free (path);
}

/* A new request @verb with its transaction; NULL, having told done(),
 * while no session is open. */
static JsonObject *
begin_request (
    VaJanus *j, const gchar *verb, VaJanusDone done, gpointer user_data)
{
  GError *error;
  gchar *t;
  JsonObject *req;

  if (j->session == 0) {
    error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
        "no Janus session: is Janus up at --gateway?");
    done (NULL, NULL, error, user_data);
    g_error_free (error);
    return NULL;
  }
  t = new_transaction (j);
  req = new_request (j, verb, t);
  g_free (t);
  return req;
}

void
va_janus_attach (
    VaJanus *j, const gchar *plugin, VaJanusDone done, gpointer user_data)
{
  JsonObject *req = begin_request (j, "attach", done, user_data);
  gchar *path;

  if (req == NULL)
    return;
  json_object_set_string_member (req, "plugin", plugin);
  path = g_strdup_printf ("/%" G_GUINT64_FORMAT, j->session);
  request (j, path, req, FALSE, done, user_data);
  g_free (path);
}

void
va_janus_message (VaJanus *j, guint64 handle, JsonObject *body,
    JsonObject *jsep, VaJanusDone done, gpointer user_data)
{
  JsonObject *req = begin_request (j, "message", done, user_data);

  if (req == NULL)
    return;
  json_object_set_object_member (req, "body", json_object_ref (body));
  if (jsep)
    json_object_set_object_member (req, "jsep", json_object_ref (jsep));
  handle_request (j, handle, req, FALSE, done, user_data);
}

void
va_janus_trickle (VaJanus *j, guint64 handle, JsonArray *candidates,
    VaJanusDone done, gpointer user_data)
{
  JsonObject *req = begin_request (j, "trickle", done, user_data);

  if (req == NULL)
    return;
  /* One candidate goes as "candidate", so that Janus says why it refuses
   * it; it takes an array's members without checking them. */
  if (json_array_get_length (candidates) == 1)
    json_object_set_object_member (req, "candidate",
        json_object_ref (json_array_get_object_element (candidates, 0)));
  else
    json_object_set_array_member (
        req, "candidates", json_array_ref (candidates));
  handle_request (j, handle, req, TRUE, done, user_data);
}

static void
ignore (JsonObject *data, JsonObject *jsep, const GError *error, gpointer u)
{}

void
va_janus_detach (VaJanus *j, guint64 handle)
{
  gchar *t;

  if (j->session == 0 || handle == 0)
    return;
  t = new_transaction (j);
  handle_request (j, handle, new_request (j, "detach", t), FALSE, ignore, NULL);
  g_free (t);
}

static gboolean
belongs_to (gpointer key, gpointer value, gpointer user_data)
{
  return ((Pending *)value)->user_data == user_data;
}

void
va_janus_cancel (VaJanus *j, gpointer user_data)
{
  g_hash_table_foreach_remove (j->pending, belongs_to, user_data);
}

gboolean
va_janus_is_ready (VaJanus *j)
{
  return j->session != 0;
}

VaJanus *
va_janus_new (const gchar *url, const gchar *api_secret, VaJanusEvent on_event,
    gpointer user_data)
{
  VaJanus *j = g_new0 (VaJanus, 1);

  j->url = g_strdup (url);
  if (g_str_has_suffix (j->url, "/"))
    j->url[strlen (j->url) - 1] = '\0';
  j->api_secret = g_strdup (api_secret);
  j->on_event = on_event;
  j->user_data = user_data;
  j->soup = soup_session_new_with_options (
      "max-conns-per-host", 32, "timeout", REQUEST_TIMEOUT_S, NULL);
  j->poll_soup =
      soup_session_new_with_options ("timeout", POLL_TIMEOUT_S, NULL);
  j->cancel = g_cancellable_new ();
  j->pending = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  open_session (j);
  return j;
}

void
va_janus_free (VaJanus *j)
{
  if (j == NULL)
    return;
  g_cancellable_cancel (j->cancel);
  g_clear_handle_id (&j->retry, g_source_remove);
  g_hash_table_unref (j->pending);
  g_object_unref (j->cancel);
  g_object_unref (j->soup);
  g_object_unref (j->poll_soup);
  g_free (j->url);
  g_free (j->api_secret);
  g_free (j);
}

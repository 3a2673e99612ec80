/* voiceagent: the server's responses: CORS, JSON errors, SDP answers,
 * ICE servers (RFC 9725 §4.6).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every response carries CORS headers and closes its connection; every
 * error has a JSON body that names the cause and, where one exists, the
 * fix. Main context only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include "auth.h"
#include "server-private.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

/* ---- Responses ---- */

void
va_respond_cors (VaServer *server, SoupServerMessage *msg)
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
void
va_respond_ice_links (VaServer *server, SoupServerMessage *msg, const gchar *id)
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

void
va_respond_json (
    VaServer *server, SoupServerMessage *msg, guint status, const gchar *json)
{
  va_respond_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, "application/json", SOUP_MEMORY_COPY, json, strlen (json));
}

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
  va_respond_json (server, msg, status, json);
  GST_DEBUG ("HTTP %u: %s", status, reason);
  g_free (json);
  g_free (reason);
  json_node_unref (root);
  g_object_unref (b);
}

void
va_respond_empty (VaServer *server, SoupServerMessage *msg, guint status)
{
  va_respond_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
}

void
va_respond_sdp (VaServer *server, SoupServerMessage *msg, const gchar *ice_id,
    const gchar *sdp, const gchar *location, const gchar *etag)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  va_respond_cors (server, msg);
  va_respond_ice_links (server, msg, ice_id);
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
void
va_respond_options (VaServer *server, SoupServerMessage *msg,
    const gchar *methods, const gchar *ice_id)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  va_respond_cors (server, msg);
  if (ice_id)
    va_respond_ice_links (server, msg, ice_id);
  soup_message_headers_replace (h, "Access-Control-Allow-Methods", methods);
  soup_message_headers_replace (h, "Access-Control-Allow-Headers",
      "Authorization, Content-Type, If-Match, ETag, " RESUME_HEADER);
  soup_message_headers_replace (h, "Access-Control-Max-Age", "86400");
  soup_message_headers_replace (h, "Allow", methods);
  soup_message_headers_replace (h, "Accept-Post", SDP_TYPE);
  soup_message_headers_replace (h, "Accept-Patch", SDPFRAG_TYPE);
  soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
}


void
va_respond_text (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *type, gchar *text)
{
  va_respond_cors (server, msg);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, type, SOUP_MEMORY_TAKE, text, strlen (text));
}

/* An HTTP server on a thread of its own (http-receiver.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include "http-receiver.h"

struct _HttpReceiver
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  SoupServer *soup;
  guint port;
  HttpReceiverHandler handler;
  gpointer user_data;
};

gboolean
http_signature_ok (
    const gchar *header, const gchar *secret, const gchar *body, gsize len)
{
  gchar **parts;
  gint64 t;
  GHmac *hmac;
  gboolean ok;

  if (header == NULL || !g_str_has_prefix (header, "t="))
    return FALSE;
  parts = g_strsplit (header + 2, ",v1=", 2);
  if (g_strv_length (parts) != 2) {
    g_strfreev (parts);
    return FALSE;
  }
  t = g_ascii_strtoll (parts[0], NULL, 10);
  hmac =
      g_hmac_new (G_CHECKSUM_SHA256, (const guchar *)secret, strlen (secret));
  g_hmac_update (hmac, (const guchar *)parts[0], -1);
  g_hmac_update (hmac, (const guchar *)".", 1);
  g_hmac_update (hmac, (const guchar *)body, len);
  ok = g_str_equal (g_hmac_get_string (hmac), parts[1]) &&
      ABS (g_get_real_time () / G_USEC_PER_SEC - t) < 300;
  g_hmac_unref (hmac);
  g_strfreev (parts);
  return ok;
}

static void
on_request (SoupServer *soup, SoupServerMessage *msg, const gchar *path,
    GHashTable *query, gpointer data)
{
  HttpReceiver *r = data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  GBytes *bytes = soup_message_body_flatten (body);
  GString *reply = g_string_new (NULL);
  gsize len;
  const gchar *text = g_bytes_get_data (bytes, &len);
  guint status = r->handler (soup_server_message_get_request_headers (msg),
      text, len, reply, r->user_data);

  soup_server_message_set_status (msg, status, NULL);
  if (reply->len > 0)
    soup_server_message_set_response (
        msg, "application/json", SOUP_MEMORY_COPY, reply->str, reply->len);
  g_string_free (reply, TRUE);
  g_bytes_unref (bytes);
}

static gpointer
receiver_main (gpointer data)
{
  HttpReceiver *r = data;

  g_main_context_push_thread_default (r->context);
  g_main_loop_run (r->loop);
  g_main_context_pop_thread_default (r->context);
  return NULL;
}

HttpReceiver *
http_receiver_new (guint port, const gchar *path, HttpReceiverHandler handler,
    gpointer user_data)
{
  HttpReceiver *r = g_new0 (HttpReceiver, 1);
  GError *error = NULL;
  GSList *uris;

  r->handler = handler;
  r->user_data = user_data;
  r->context = g_main_context_new ();
  r->loop = g_main_loop_new (r->context, FALSE);
  g_main_context_push_thread_default (r->context);
  r->soup = soup_server_new (NULL, NULL);
  soup_server_add_handler (r->soup, path, on_request, r, NULL);
  if (!soup_server_listen_local (r->soup, port, 0, &error))
    g_error ("test receiver cannot listen on %u: %s", port, error->message);
  g_main_context_pop_thread_default (r->context);
  uris = soup_server_get_uris (r->soup);
  r->port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  r->thread = g_thread_new ("receiver", receiver_main, r);
  return r;
}

guint
http_receiver_get_port (HttpReceiver *r)
{
  return r->port;
}

static gboolean
quit_loop (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

void
http_receiver_free (HttpReceiver *r)
{
  /* From the loop itself: a quit before it runs would be lost. */
  g_main_context_invoke (r->context, quit_loop, r->loop);
  g_thread_join (r->thread);
  soup_server_disconnect (r->soup);
  g_object_unref (r->soup);
  g_main_loop_unref (r->loop);
  g_main_context_unref (r->context);
  g_free (r);
}

/* Unit tests of GstVoiceClient against servers the tests run themselves:
 * SoupServer for well-behaved peers and raw GSocketService for peers that
 * never answer or never read. Every server listens on 127.0.0.1, port 0, on
 * its own thread and GMainContext.
 *
 * Nothing here measures wall-clock time: tests wait for conditions with a
 * generous deadline (the machine is shared and slow under sanitizers). Where
 * a test must show that something does NOT happen, it waits a quiet period
 * many times longer than the configured backoff.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "voice.h"

/* tests/lsan.supp names GLib's by-design leaks by the frames that made them
 * (its quark table is reallocated, and the first block dropped, once a
 * process has 2048 quarks, as one using libsoup has). GLib is built without
 * frame pointers, so the fast unwinder loses those frames; unwind slowly.
 * Only read by an AddressSanitizer build; ASAN_OPTIONS still wins. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

#define WAIT_SECONDS 30
#define KEY "test-key-0123456789abcdef"

/* One lock and condition for all shared state: client callbacks (I/O
 * thread), server handlers (server thread) and the test thread. */
static GMutex lock;
static GCond cond;

static void
changed_locked (void)
{
  g_cond_broadcast (&cond);
}

/* Waits, lock held while @expr is evaluated, until @expr holds; fails the
 * test after WAIT_SECONDS. Wakes on every change and polls every 20 ms, so
 * @expr may also call client getters. */
#define WAIT_UNTIL(expr)                                                       \
  G_STMT_START                                                                 \
  {                                                                            \
    gint64 deadline_ =                                                         \
        g_get_monotonic_time () + WAIT_SECONDS * G_TIME_SPAN_SECOND;           \
    gboolean met_;                                                             \
    g_mutex_lock (&lock);                                                      \
    while (!(met_ = (expr)) && g_get_monotonic_time () < deadline_)            \
      g_cond_wait_until (&cond, &lock,                                         \
          MIN (deadline_,                                                      \
              g_get_monotonic_time () + 20 * G_TIME_SPAN_MILLISECOND));        \
    g_mutex_unlock (&lock);                                                    \
    fail_unless (met_, "timed out waiting for: %s", #expr);                    \
  }                                                                            \
  G_STMT_END

/* Lets @ms pass without anything to wait for: only used to show that
 * something does not happen, with @ms far above any configured delay. */
static void
quiet_period (guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&lock);
  while (g_cond_wait_until (&cond, &lock, end))
    ;
  g_mutex_unlock (&lock);
}

/* ---- A server thread ---- */

typedef guint (*ServerStart) (gpointer data);
typedef void (*ServerStop) (gpointer data);

typedef struct
{
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  ServerStart start; /* on the server thread: listens, returns the port */
  ServerStop stop; /* on the server thread, after the loop quit */
  gpointer data;
  guint port; /* protected by lock */
  gboolean ready;
} ServerThread;

static gpointer
server_thread_main (gpointer user_data)
{
  ServerThread *st = user_data;
  guint port;

  g_main_context_push_thread_default (st->context);
  port = st->start (st->data);
  g_mutex_lock (&lock);
  st->port = port;
  st->ready = TRUE;
  changed_locked ();
  g_mutex_unlock (&lock);
  g_main_loop_run (st->loop);
  st->stop (st->data);
  /* Let closed connections and cancelled operations finish. */
  while (g_main_context_iteration (st->context, FALSE))
    ;
  g_main_context_pop_thread_default (st->context);
  return NULL;
}

static ServerThread *
server_thread_new (ServerStart start, ServerStop stop, gpointer data)
{
  ServerThread *st = g_new0 (ServerThread, 1);

  st->context = g_main_context_new ();
  st->loop = g_main_loop_new (st->context, FALSE);
  st->start = start;
  st->stop = stop;
  st->data = data;
  st->thread = g_thread_new ("test-server", server_thread_main, st);
  WAIT_UNTIL (st->ready);
  fail_unless (st->port != 0);
  return st;
}

static void
server_thread_free (ServerThread *st)
{
  g_main_loop_quit (st->loop);
  g_thread_join (st->thread);
  g_main_loop_unref (st->loop);
  g_main_context_unref (st->context);
  g_free (st);
}

static guint
port_of_soup_server (SoupServer *server)
{
  GSList *uris = soup_server_get_uris (server);
  guint port;

  fail_unless (uris != NULL);
  port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  return port;
}

/* ---- The WebSocket server (SoupServer) ---- */

typedef struct
{
  /* Behaviour, set before the server starts */
  guint reject_status; /* answer every handshake with this HTTP status */
  const gchar *retry_after; /* ... and this Retry-After, unless NULL */
  gushort close_with; /* close connections 1..close_count with this code */
  guint close_count; /* ... on their first message */
  gboolean greet; /* send "hello" and 4 binary bytes on open */
  gushort close_on_open; /* close every connection at once with this code */
  gboolean ticker; /* send "tick" every 20 ms while connected */

  /* Protected by lock */
  guint handshakes; /* handshake requests seen (accepted or rejected) */
  guint connections; /* WebSocket connections accepted */
  gchar *authorization;
  gchar *protocol_header;
  GPtrArray *texts; /* received text messages, in order */
  GPtrArray *binaries; /* received binary messages (GBytes) */
  GPtrArray *conn_of_text; /* connection number of each text message */
  gushort client_close_code;
  gchar *client_close_reason;
  guint closed_connections;

  /* Server thread only */
  SoupServer *server;
  GPtrArray *conns; /* of SoupWebsocketConnection* */
  GSource *tick_source;
} WsServer;

static void
ws_on_message (SoupWebsocketConnection *conn, gint type, GBytes *message,
    gpointer user_data)
{
  WsServer *ws = user_data;
  guint number = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (conn), "n"));
  gboolean close_it;

  g_mutex_lock (&lock);
  if (type == SOUP_WEBSOCKET_DATA_TEXT) {
    gsize size;
    const gchar *data = g_bytes_get_data (message, &size);
    g_ptr_array_add (ws->texts, g_strndup (data, size));
    g_ptr_array_add (ws->conn_of_text, GUINT_TO_POINTER (number));
  } else {
    g_ptr_array_add (ws->binaries, g_bytes_ref (message));
  }
  close_it = number <= ws->close_count &&
      !g_object_get_data (G_OBJECT (conn), "closing");
  changed_locked ();
  g_mutex_unlock (&lock);

  if (close_it) {
    g_object_set_data (G_OBJECT (conn), "closing", GINT_TO_POINTER (1));
    soup_websocket_connection_close (conn, ws->close_with, "server says bye");
  }
}

static void
ws_on_closed (SoupWebsocketConnection *conn, gpointer user_data)
{
  WsServer *ws = user_data;

  g_mutex_lock (&lock);
  ws->closed_connections++;
  if (soup_websocket_connection_get_close_code (conn) != 0) {
    ws->client_close_code = soup_websocket_connection_get_close_code (conn);
    g_free (ws->client_close_reason);
    ws->client_close_reason =
        g_strdup (soup_websocket_connection_get_close_data (conn));
  }
  changed_locked ();
  g_mutex_unlock (&lock);
}

static void
ws_on_connection (SoupServer *server, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *conn, gpointer user_data)
{
  WsServer *ws = user_data;
  guint number;

  g_mutex_lock (&lock);
  number = ++ws->connections;
  changed_locked ();
  g_mutex_unlock (&lock);

  g_object_set_data (G_OBJECT (conn), "n", GUINT_TO_POINTER (number));
  g_ptr_array_add (ws->conns, g_object_ref (conn));
  g_signal_connect (conn, "message", G_CALLBACK (ws_on_message), ws);
  g_signal_connect (conn, "closed", G_CALLBACK (ws_on_closed), ws);
  if (ws->close_on_open)
    soup_websocket_connection_close (conn, ws->close_on_open, "go away");
  if (ws->greet) {
    static const guint8 bin[] = { 0, 1, 2, 3 };
    GBytes *b = g_bytes_new_static (bin, sizeof (bin));
    soup_websocket_connection_send_text (conn, "hello");
    soup_websocket_connection_send_message (
        conn, SOUP_WEBSOCKET_DATA_BINARY, b);
    g_bytes_unref (b);
  }
}

/* Sees every handshake first: records it and, if asked, rejects it. */
static void
ws_early_handler (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  WsServer *ws = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  guint reject_status;

  g_mutex_lock (&lock);
  ws->handshakes++;
  g_free (ws->authorization);
  ws->authorization =
      g_strdup (soup_message_headers_get_one (req, "Authorization"));
  g_free (ws->protocol_header);
  ws->protocol_header =
      g_strdup (soup_message_headers_get_list (req, "Sec-WebSocket-Protocol"));
  reject_status = ws->reject_status;
  changed_locked ();
  g_mutex_unlock (&lock);

  if (reject_status) {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "dg-error",
        "rejected by test server");
    if (ws->retry_after)
      soup_message_headers_replace (
          soup_server_message_get_response_headers (msg), "Retry-After",
          ws->retry_after);
    soup_server_message_set_status (msg, ws->reject_status, NULL);
    soup_server_message_set_response (
        msg, "text/plain", SOUP_MEMORY_STATIC, "no", 2);
  }
}

static gboolean
ws_tick (gpointer user_data)
{
  WsServer *ws = user_data;
  guint i;

  for (i = 0; i < ws->conns->len; i++) {
    SoupWebsocketConnection *c = g_ptr_array_index (ws->conns, i);
    if (soup_websocket_connection_get_state (c) == SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_send_text (c, "tick");
  }
  return G_SOURCE_CONTINUE;
}

static guint
ws_server_start (gpointer data)
{
  WsServer *ws = data;
  const gchar *protocols[] = { "token", NULL };
  GError *error = NULL;

  ws->server = soup_server_new (NULL, NULL);
  ws->conns = g_ptr_array_new_with_free_func (g_object_unref);
  soup_server_add_early_handler (ws->server, "/ws", ws_early_handler, ws, NULL);
  soup_server_add_websocket_handler (
      ws->server, "/ws", NULL, (gchar **)protocols, ws_on_connection, ws, NULL);
  fail_unless (soup_server_listen_local (
      ws->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  if (ws->ticker) {
    ws->tick_source = g_timeout_source_new (20);
    g_source_set_callback (ws->tick_source, ws_tick, ws, NULL);
    g_source_attach (ws->tick_source, g_main_context_get_thread_default ());
  }
  return port_of_soup_server (ws->server);
}

static void
ws_server_stop (gpointer data)
{
  WsServer *ws = data;
  guint i;

  if (ws->tick_source) {
    g_source_destroy (ws->tick_source);
    g_clear_pointer (&ws->tick_source, g_source_unref);
  }
  for (i = 0; i < ws->conns->len; i++)
    g_signal_handlers_disconnect_by_data (g_ptr_array_index (ws->conns, i), ws);
  g_clear_pointer (&ws->conns, g_ptr_array_unref);
  soup_server_disconnect (ws->server);
  g_clear_object (&ws->server);
}

static WsServer *
ws_server_new (void)
{
  WsServer *ws = g_new0 (WsServer, 1);

  ws->texts = g_ptr_array_new_with_free_func (g_free);
  ws->binaries = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  ws->conn_of_text = g_ptr_array_new ();
  return ws;
}

static void
ws_server_free (WsServer *ws)
{
  g_ptr_array_unref (ws->texts);
  g_ptr_array_unref (ws->binaries);
  g_ptr_array_unref (ws->conn_of_text);
  g_free (ws->authorization);
  g_free (ws->protocol_header);
  g_free (ws->client_close_reason);
  g_free (ws);
}

/* Index of @text among the server's received texts, or -1. Lock held. */
static gint
ws_text_index (WsServer *ws, const gchar *text)
{
  guint i;

  for (i = 0; i < ws->texts->len; i++) {
    if (g_str_equal (g_ptr_array_index (ws->texts, i), text))
      return (gint)i;
  }
  return -1;
}

/* ---- Raw peers (GSocketService) ---- */

typedef struct
{
  /* Behaviour */
  gboolean handshake; /* complete the WebSocket handshake, then never read */
  guint drop_first; /* ... but close the first N connections' TCP at once */

  /* Protected by lock */
  guint accepted;
  guint handshakes;

  /* Server thread only */
  GSocketService *service;
  GPtrArray *conns; /* of GSocketConnection* */
} RawServer;

/* Sec-WebSocket-Accept for @key (RFC 6455 section 4.2.2). */
static gchar *
websocket_accept_for (const gchar *key)
{
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA1);
  guint8 digest[20];
  gsize len = sizeof (digest);

  g_checksum_update (sum, (const guchar *)key, -1);
  g_checksum_update (
      sum, (const guchar *)"258EAFA5-E914-47DA-95CA-C5AB0DC85B11", -1);
  g_checksum_get_digest (sum, digest, &len);
  g_checksum_free (sum);
  return g_base64_encode (digest, len);
}

/* Reads the request head (blocking: the client sends it at once) and
 * answers 101. Returns FALSE if the request was not a handshake. */
static gboolean
raw_handshake (GSocketConnection *conn)
{
  GDataInputStream *in = g_data_input_stream_new (
      g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  gchar *line, *key = NULL, *accept, *reply;
  gboolean ok;

  g_filter_input_stream_set_close_base_stream (
      G_FILTER_INPUT_STREAM (in), FALSE);
  /* Small reads: nothing past the request head may be swallowed. */
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (in), 1);
  while ((line = g_data_input_stream_read_line (in, NULL, NULL, NULL))) {
    g_strchomp (line);
    if (*line == '\0') {
      g_free (line);
      break;
    }
    if (g_ascii_strncasecmp (line, "Sec-WebSocket-Key:", 18) == 0)
      key = g_strdup (g_strstrip (line + 18));
    g_free (line);
  }
  g_object_unref (in);
  if (key == NULL)
    return FALSE;
  accept = websocket_accept_for (key);
  reply = g_strdup_printf ("HTTP/1.1 101 Switching Protocols\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: %s\r\n\r\n",
      accept);
  ok = g_output_stream_write_all (
      g_io_stream_get_output_stream (G_IO_STREAM (conn)), reply, strlen (reply),
      NULL, NULL, NULL);
  g_free (reply);
  g_free (accept);
  g_free (key);
  return ok;
}

static gboolean
raw_on_incoming (GSocketService *service, GSocketConnection *conn,
    GObject *source, gpointer user_data)
{
  RawServer *raw = user_data;
  gboolean handshaken = FALSE;

  g_ptr_array_add (raw->conns, g_object_ref (conn));
  if (raw->handshake) {
    /* A small receive buffer makes the client's data back up sooner. */
    g_socket_set_option (g_socket_connection_get_socket (conn), SOL_SOCKET,
        SO_RCVBUF, 4096, NULL);
    handshaken = raw_handshake (conn);
  }
  g_mutex_lock (&lock);
  raw->accepted++;
  if (handshaken)
    raw->handshakes++;
  if (handshaken && raw->handshakes <= raw->drop_first)
    g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  changed_locked ();
  g_mutex_unlock (&lock);
  return TRUE;
}

static guint
raw_server_start (gpointer data)
{
  RawServer *raw = data;
  GInetAddress *any = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *addr = g_inet_socket_address_new (any, 0);
  GSocketAddress *effective = NULL;
  guint port;

  raw->conns = g_ptr_array_new_with_free_func (g_object_unref);
  raw->service = g_socket_service_new ();
  fail_unless (
      g_socket_listener_add_address (G_SOCKET_LISTENER (raw->service), addr,
          G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &effective, NULL));
  g_signal_connect (
      raw->service, "incoming", G_CALLBACK (raw_on_incoming), raw);
  g_socket_service_start (raw->service);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_object_unref (effective);
  g_object_unref (addr);
  g_object_unref (any);
  return port;
}

static void
raw_server_stop (gpointer data)
{
  RawServer *raw = data;
  guint i;

  g_socket_service_stop (raw->service);
  g_socket_listener_close (G_SOCKET_LISTENER (raw->service));
  g_signal_handlers_disconnect_by_data (raw->service, raw);
  g_clear_object (&raw->service);
  for (i = 0; i < raw->conns->len; i++)
    g_io_stream_close (g_ptr_array_index (raw->conns, i), NULL, NULL);
  g_clear_pointer (&raw->conns, g_ptr_array_unref);
}

/* ---- The HTTP streaming server (SoupServer) ---- */

typedef struct
{
  /* Behaviour */
  guint chunks; /* chunks per response; 0: endless */

  /* Protected by lock */
  guint requests;
  gchar *authorization;
  gchar *body; /* request body of the last request */
  gsize client_received; /* set by the test: gates the next chunk */
  gboolean gate; /* send chunk n+1 only once the client has n */
  guint sent_chunks;
  gboolean completed; /* the whole response was written */
  gboolean client_gone; /* finished early, or a write failed */
  guint finished;

  /* Server thread only */
  SoupServer *server;
  GPtrArray *streams; /* of Stream* */
} HttpServer;

typedef struct
{
  HttpServer *http;
  SoupServerMessage *msg;
  GSource *ticker;
  gsize sent_bytes;
  guint sent;
  guint total; /* chunks to send; 0: endless */
  gboolean finished;
} Stream;

static void
stream_stop_ticker (Stream *s)
{
  if (s->ticker) {
    g_source_destroy (s->ticker);
    g_clear_pointer (&s->ticker, g_source_unref);
  }
}

static void
stream_free (Stream *s)
{
  stream_stop_ticker (s);
  if (s->msg)
    g_signal_handlers_disconnect_by_data (s->msg, s);
  g_clear_object (&s->msg);
  g_free (s);
}

static void
stream_on_finished (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;
  HttpServer *http = s->http;

  stream_stop_ticker (s);
  g_mutex_lock (&lock);
  http->finished++;
  if (!s->finished && !(s->total && s->sent == s->total))
    http->client_gone = TRUE;
  else if (s->total && s->sent == s->total)
    http->completed = TRUE;
  s->finished = TRUE;
  changed_locked ();
  g_mutex_unlock (&lock);
}

static void
stream_on_disconnected (SoupServerMessage *msg, gpointer user_data)
{
  Stream *s = user_data;

  stream_stop_ticker (s);
  g_mutex_lock (&lock);
  if (!s->finished)
    s->http->client_gone = TRUE;
  changed_locked ();
  g_mutex_unlock (&lock);
}

static gboolean
stream_tick (gpointer user_data)
{
  Stream *s = user_data;
  HttpServer *http = s->http;
  SoupMessageBody *body = soup_server_message_get_response_body (s->msg);
  gchar *piece;
  gboolean last;

  g_mutex_lock (&lock);
  if (s->finished || (http->gate && http->client_received < s->sent_bytes)) {
    g_mutex_unlock (&lock);
    return G_SOURCE_CONTINUE;
  }
  g_mutex_unlock (&lock);

  piece = g_strdup_printf ("chunk-%u;", s->sent);
  s->sent_bytes += strlen (piece);
  soup_message_body_append (body, SOUP_MEMORY_TAKE, piece, strlen (piece));
  s->sent++;
  last = s->total && s->sent == s->total;
  if (last)
    soup_message_body_complete (body);
  g_mutex_lock (&lock);
  http->sent_chunks++;
  changed_locked ();
  g_mutex_unlock (&lock);
  soup_server_message_unpause (s->msg);
  if (last) {
    g_clear_pointer (&s->ticker, g_source_unref);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static void
http_stream_handler (SoupServer *server, SoupServerMessage *msg,
    const char *path, GHashTable *query, gpointer user_data)
{
  HttpServer *http = user_data;
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  SoupMessageBody *req_body = soup_server_message_get_request_body (msg);
  Stream *s = g_new0 (Stream, 1);

  g_mutex_lock (&lock);
  http->requests++;
  g_free (http->authorization);
  http->authorization = g_strdup (soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "Authorization"));
  g_free (http->body);
  http->body = g_strndup (req_body->data, req_body->length);
  changed_locked ();
  g_mutex_unlock (&lock);

  s->http = http;
  s->msg = g_object_ref (msg);
  /* ?n=N overrides the server's chunk count for this response. */
  s->total = query && g_hash_table_lookup (query, "n")
      ? (guint)atoi (g_hash_table_lookup (query, "n"))
      : http->chunks;
  g_ptr_array_add (http->streams, s);
  g_signal_connect (msg, "finished", G_CALLBACK (stream_on_finished), s);
  g_signal_connect (
      msg, "disconnected", G_CALLBACK (stream_on_disconnected), s);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_encoding (resp, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (resp, "Content-Type", "text/plain");
  soup_message_headers_replace (resp, "X-Test", "streaming");
  soup_server_message_pause (msg);
  s->ticker = g_timeout_source_new (15);
  g_source_set_callback (s->ticker, stream_tick, s, NULL);
  g_source_attach (s->ticker, g_main_context_get_thread_default ());
}

static void
http_status_handler (SoupServer *server, SoupServerMessage *msg,
    const char *path, GHashTable *query, gpointer user_data)
{
  HttpServer *http = user_data;

  g_mutex_lock (&lock);
  http->requests++;
  changed_locked ();
  g_mutex_unlock (&lock);
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
  soup_server_message_set_response (
      msg, "text/plain", SOUP_MEMORY_STATIC, "not here", 8);
}

static guint
http_server_start (gpointer data)
{
  HttpServer *http = data;
  GError *error = NULL;

  http->server = soup_server_new (NULL, NULL);
  http->streams = g_ptr_array_new_with_free_func ((GDestroyNotify)stream_free);
  soup_server_add_handler (
      http->server, "/stream", http_stream_handler, http, NULL);
  soup_server_add_handler (
      http->server, "/missing", http_status_handler, http, NULL);
  fail_unless (soup_server_listen_local (
      http->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  return port_of_soup_server (http->server);
}

static void
http_server_stop (gpointer data)
{
  HttpServer *http = data;

  g_clear_pointer (&http->streams, g_ptr_array_unref);
  soup_server_disconnect (http->server);
  g_clear_object (&http->server);
}

static void
http_server_free (HttpServer *http)
{
  g_free (http->authorization);
  g_free (http->body);
  g_free (http);
}

/* ---- What the client reports ---- */

typedef struct
{
  /* Behaviour */
  GstVoiceClient *client; /* for callbacks that act on it */
  const gchar *send_when_closed; /* sent from closed() while disconnected */
  gboolean shutdown_on_message; /* call shutdown from message() */

  /* Protected by lock */
  GString *events;
  guint opened;
  guint reopened; /* opened with reconnected == TRUE */
  gboolean open_in_opened; /* is_open() answered TRUE inside opened() */
  guint closed;
  gushort close_code;
  gboolean close_will_retry;
  gboolean open_in_closed; /* is_open() answered TRUE inside closed() */
  gboolean queued_when_closed;
  guint failed;
  guint fail_status;
  GQuark fail_domain;
  gint fail_code;
  gboolean fail_will_retry;
  guint fail_retries; /* connect_failed with will_retry TRUE */
  gchar *fail_header;
  GPtrArray *texts;
  GPtrArray *binaries;
  guint stalled;
  gsize stalled_bytes;
  gboolean shut_down; /* set by the test once shutdown returned */
  guint late_calls; /* callbacks after shutdown returned */
  guint notified;
} Recorder;

static Recorder *
recorder_new (void)
{
  Recorder *r = g_new0 (Recorder, 1);

  r->events = g_string_new (NULL);
  r->texts = g_ptr_array_new_with_free_func (g_free);
  r->binaries = g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  return r;
}

static void
recorder_free (Recorder *r)
{
  g_string_free (r->events, TRUE);
  g_ptr_array_unref (r->texts);
  g_ptr_array_unref (r->binaries);
  g_free (r->fail_header);
  g_free (r);
}

static void
recorder_notify (gpointer data)
{
  Recorder *r = data;

  g_mutex_lock (&lock);
  r->notified++;
  changed_locked ();
  g_mutex_unlock (&lock);
}

/* Lock held. */
static void
note_call (Recorder *r)
{
  if (r->shut_down)
    r->late_calls++;
  changed_locked ();
}

static void
rec_opened (GstVoiceClient *client, gboolean reconnected, gpointer data)
{
  Recorder *r = data;
  gboolean open = gst_voice_client_is_open (client);

  g_mutex_lock (&lock);
  note_call (r);
  r->opened++;
  if (reconnected)
    r->reopened++;
  r->open_in_opened = open;
  g_string_append_printf (r->events, "opened(%d) ", reconnected);
  g_mutex_unlock (&lock);
}

static void
rec_message (GstVoiceClient *client, SoupWebsocketDataType type,
    GBytes *message, gpointer data)
{
  Recorder *r = data;

  g_mutex_lock (&lock);
  note_call (r);
  if (type == SOUP_WEBSOCKET_DATA_TEXT) {
    gsize size;
    const gchar *text = g_bytes_get_data (message, &size);
    g_ptr_array_add (r->texts, g_strndup (text, size));
  } else {
    g_ptr_array_add (r->binaries, g_bytes_ref (message));
  }
  g_mutex_unlock (&lock);
  if (r->shutdown_on_message) {
    gst_voice_client_shutdown (client);
    gst_voice_client_shutdown (client);
  }
}

static void
rec_closed (GstVoiceClient *client, gushort code, const gchar *reason,
    gboolean will_retry, gpointer data)
{
  Recorder *r = data;
  gboolean open = gst_voice_client_is_open (client);
  gboolean queued = FALSE;

  if (r->send_when_closed && will_retry)
    queued = gst_voice_client_send_text (client, r->send_when_closed);
  g_mutex_lock (&lock);
  note_call (r);
  r->closed++;
  r->close_code = code;
  r->close_will_retry = will_retry;
  r->open_in_closed |= open;
  r->queued_when_closed |= queued;
  g_string_append_printf (r->events, "closed(%u,%d) ", code, will_retry);
  g_mutex_unlock (&lock);
}

static void
rec_connect_failed (GstVoiceClient *client, guint http_status,
    SoupMessageHeaders *headers, const GError *error, gboolean will_retry,
    gpointer data)
{
  Recorder *r = data;

  g_mutex_lock (&lock);
  note_call (r);
  r->failed++;
  r->fail_status = http_status;
  r->fail_domain = error ? error->domain : 0;
  r->fail_code = error ? error->code : 0;
  r->fail_will_retry = will_retry;
  if (will_retry)
    r->fail_retries++;
  g_free (r->fail_header);
  r->fail_header = headers
      ? g_strdup (soup_message_headers_get_one (headers, "dg-error"))
      : NULL;
  g_string_append_printf (r->events, "failed(%u,%d) ", http_status, will_retry);
  g_mutex_unlock (&lock);
}

static void
rec_stalled (GstVoiceClient *client, gsize queued_bytes, gpointer data)
{
  Recorder *r = data;

  g_mutex_lock (&lock);
  note_call (r);
  r->stalled++;
  r->stalled_bytes = queued_bytes;
  g_string_append (r->events, "stalled ");
  g_mutex_unlock (&lock);
}

static const GstVoiceClientCallbacks rec_callbacks = {
  rec_opened,
  rec_message,
  rec_closed,
  rec_connect_failed,
  rec_stalled,
};

/* A client reporting to @r, with quick retries. */
static GstVoiceClient *
client_new (Recorder *r)
{
  GstVoiceClient *c = gst_voice_client_new ("test-client");

  r->client = c;
  gst_voice_client_set_callbacks (c, &rec_callbacks, r, recorder_notify);
  gst_voice_client_set_backoff (c, 10, 20, 0);
  return c;
}

/* Shuts @c down, drops it and waits until it was finalized (the callbacks'
 * user data is released in finalize). */
static void
client_free (GstVoiceClient *c, Recorder *r)
{
  gst_voice_client_shutdown (c);
  g_mutex_lock (&lock);
  r->shut_down = TRUE;
  g_mutex_unlock (&lock);
  gst_object_unref (c);
  WAIT_UNTIL (r->notified == 1);
}

static gchar *
ws_url (ServerThread *st, const gchar *path_and_query)
{
  return g_strdup_printf ("ws://127.0.0.1:%u%s", st->port, path_and_query);
}

static gchar *
http_url (ServerThread *st, const gchar *path_and_query)
{
  return g_strdup_printf ("http://127.0.0.1:%u%s", st->port, path_and_query);
}

/* ---- WebSocket tests ---- */

/* Connect, opened(FALSE), both directions of text and binary, and the
 * request header and subprotocols reach the server. */
GST_START_TEST (test_ws_basic)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  SoupMessageHeaders *headers =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  const gchar *protocols[] = { "token", KEY, NULL };
  static const guint8 payload[] = { 9, 8, 7, 0, 6 };
  GBytes *bin = g_bytes_new_static (payload, sizeof (payload));
  gchar *url;

  ws->greet = TRUE;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws?model=nova");
  soup_message_headers_append (headers, "Authorization", "Token " KEY);
  fail_if (gst_voice_client_is_open (c));
  gst_voice_client_open_websocket (c, url, headers, protocols, TRUE);
  soup_message_headers_unref (headers);

  WAIT_UNTIL (r->opened == 1);
  fail_unless_equals_int (r->reopened, 0);
  fail_unless (r->open_in_opened);
  fail_unless (gst_voice_client_is_open (c));
  fail_unless_equals_string (ws->authorization, "Token " KEY);
  fail_unless (ws->protocol_header != NULL);
  fail_unless_equals_string (ws->protocol_header, "token, " KEY);

  /* What the server greets with arrives via message(). */
  WAIT_UNTIL (r->texts->len == 1 && r->binaries->len == 1);
  fail_unless_equals_string (g_ptr_array_index (r->texts, 0), "hello");
  fail_unless_equals_int (
      g_bytes_get_size (g_ptr_array_index (r->binaries, 0)), 4);

  fail_unless (gst_voice_client_send_text (c, "ping"));
  fail_unless (gst_voice_client_send_binary (c, bin));
  WAIT_UNTIL (ws->texts->len == 1 && ws->binaries->len == 1);
  fail_unless_equals_string (g_ptr_array_index (ws->texts, 0), "ping");
  fail_unless (g_bytes_equal (g_ptr_array_index (ws->binaries, 0), bin));
  WAIT_UNTIL (gst_voice_client_get_queued_bytes (c) == 0);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 0);
  fail_unless_equals_int (r->failed, 0);
  fail_unless_equals_int (r->closed, 0);

  client_free (c, r);
  server_thread_free (st);
  fail_unless_equals_int (r->late_calls, 0);
  g_bytes_unref (bin);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A URL that does not parse, has no host or another scheme is reported at
 * once (no critical warning) and never retried. */
GST_START_TEST (test_ws_invalid_url)
{
  const gchar *urls[] = { "not a url", "ws:///path", "ftp://host/x" };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (urls); i++) {
    Recorder *r = recorder_new ();
    GstVoiceClient *c = client_new (r);

    gst_voice_client_open_websocket (c, urls[i], NULL, NULL, TRUE);
    WAIT_UNTIL (r->failed == 1);
    fail_unless (r->fail_domain == G_IO_ERROR);
    fail_unless_equals_int (r->fail_code, G_IO_ERROR_INVALID_ARGUMENT);
    fail_unless_equals_int (r->fail_status, 0);
    fail_if (r->fail_will_retry);
    quiet_period (100);
    fail_unless_equals_int (r->failed, 1);
    client_free (c, r);
    recorder_free (r);
  }
}

GST_END_TEST;

/* A 401 handshake is final: connect_failed(401) with the response headers,
 * will_retry FALSE, and no second attempt. */
GST_START_TEST (test_ws_rejected_401)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->reject_status = SOUP_STATUS_UNAUTHORIZED;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  WAIT_UNTIL (r->failed == 1);
  fail_unless_equals_int (r->fail_status, 401);
  fail_unless_equals_string (r->fail_header, "rejected by test server");
  fail_if (r->fail_will_retry);
  fail_unless (r->fail_domain != 0);
  /* Backoff is 10-20 ms: a retry would have come long before this. */
  quiet_period (500);
  fail_unless_equals_int (ws->handshakes, 1);
  fail_unless_equals_int (r->failed, 1);
  fail_unless_equals_int (r->opened, 0);
  fail_if (gst_voice_client_is_open (c));

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A 503 handshake is retried with backoff: every failure but the last says
 * will_retry, and the client stops after max_attempts retries. */
GST_START_TEST (test_ws_rejected_503_retries)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->reject_status = SOUP_STATUS_SERVICE_UNAVAILABLE;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_set_backoff (c, 10, 40, 3);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  /* The first attempt and three retries. */
  WAIT_UNTIL (r->failed == 4);
  fail_unless_equals_int (r->fail_retries, 3);
  fail_if (r->fail_will_retry);
  fail_unless_equals_int (r->fail_status, 503);
  fail_unless_equals_string (r->fail_header, "rejected by test server");
  quiet_period (500);
  fail_unless_equals_int (ws->handshakes, 4);
  fail_unless_equals_int (r->failed, 4);
  fail_unless_equals_int (r->opened, 0);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A 429 with Retry-After delays the retry at least that long, though the
 * backoff alone would retry at once; a Retry-After beyond the longest
 * backoff waits only that long. */
static gint64
retry_gap_ms (const gchar *retry_after, guint backoff_max_ms)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;
  gint64 failed_at, gap_ms;

  ws->reject_status = 429;
  ws->retry_after = retry_after;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_set_backoff (c, 10, backoff_max_ms, 1);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->failed == 1);
  failed_at = g_get_monotonic_time ();
  WAIT_UNTIL (r->failed == 2);
  gap_ms = (g_get_monotonic_time () - failed_at) / 1000;
  fail_unless_equals_int (r->fail_status, 429);
  fail_unless_equals_int (ws->handshakes, 2);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
  return gap_ms;
}

GST_START_TEST (test_ws_retry_after)
{
  gint64 gap = retry_gap_ms ("1", 5000);

  fail_unless (gap >= 950, "retried after %" G_GINT64_FORMAT " ms", gap);
  gap = retry_gap_ms ("3600", 300);
  fail_unless (
      gap >= 250 && gap < 3000, "retried after %" G_GINT64_FORMAT " ms", gap);
}

GST_END_TEST;

/* A peer that accepts TCP and never answers makes the connect time out with
 * G_IO_ERROR_TIMED_OUT, and the timeout is retried like any network error. */
GST_START_TEST (test_ws_connect_timeout)
{
  RawServer *raw = g_new0 (RawServer, 1);
  ServerThread *st = server_thread_new (raw_server_start, raw_server_stop, raw);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url = ws_url (st, "/ws");

  gst_voice_client_set_connect_timeout (c, 500);
  gst_voice_client_set_backoff (c, 10, 10, 1);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  WAIT_UNTIL (r->failed == 1);
  fail_unless (r->fail_domain == G_IO_ERROR);
  fail_unless_equals_int (r->fail_code, G_IO_ERROR_TIMED_OUT);
  fail_unless_equals_int (r->fail_status, 0);
  fail_unless (r->fail_will_retry);
  fail_unless (r->fail_header == NULL);

  /* The one retry allowed times out too, and is final. */
  WAIT_UNTIL (r->failed == 2);
  fail_unless (r->fail_domain == G_IO_ERROR);
  fail_unless_equals_int (r->fail_code, G_IO_ERROR_TIMED_OUT);
  fail_if (r->fail_will_retry);
  /* The peer got at least one of them (on a loaded machine the second may
   * time out before its TCP connect), and no third one. */
  WAIT_UNTIL (raw->accepted >= 1);
  quiet_period (500);
  fail_unless (raw->accepted <= 2);
  fail_unless_equals_int (r->failed, 2);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  g_free (raw);
  recorder_free (r);
}

GST_END_TEST;

/* A server close with 1011 is retried: closed(1011, will_retry) then
 * opened(reconnected); what was sent while down arrives after reconnect. */
GST_START_TEST (test_ws_reconnect_after_1011)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->close_with = SOUP_WEBSOCKET_CLOSE_SERVER_ERROR;
  ws->close_count = 1;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  r->send_when_closed = "sent-while-down";
  gst_voice_client_set_backoff (c, 100, 200, 0);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  WAIT_UNTIL (r->opened == 1);
  fail_unless (gst_voice_client_send_text (c, "first"));
  WAIT_UNTIL (r->closed == 1);
  fail_unless_equals_int (r->close_code, 1011);
  fail_unless (r->close_will_retry);
  fail_if (r->open_in_closed);
  fail_unless (r->queued_when_closed);

  WAIT_UNTIL (r->opened == 2);
  fail_unless_equals_int (r->reopened, 1);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 1);
  fail_unless_equals_string (
      r->events->str, "opened(0) closed(1011,1) opened(1) ");

  /* Queued while down, delivered on the second connection. */
  WAIT_UNTIL (ws_text_index (ws, "sent-while-down") >= 0);
  fail_unless_equals_int (GPOINTER_TO_UINT (g_ptr_array_index (ws->conn_of_text,
                              ws_text_index (ws, "sent-while-down"))),
      2);
  fail_unless (gst_voice_client_send_text (c, "after"));
  WAIT_UNTIL (ws_text_index (ws, "after") >= 0);
  fail_unless (
      ws_text_index (ws, "sent-while-down") < ws_text_index (ws, "after"));
  fail_unless_equals_int (ws->connections, 2);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A server that accepts and drops every connection at once does not reset
 * the retry count: the client gives up after max_attempts reconnects. */
GST_START_TEST (test_ws_flapping_gives_up)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->close_on_open = SOUP_WEBSOCKET_CLOSE_SERVER_ERROR;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  /* The connections last far less than the longest backoff (5 s). */
  gst_voice_client_set_backoff (c, 10, 5000, 2);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  WAIT_UNTIL (r->closed == 3);
  fail_if (r->close_will_retry);
  fail_unless_equals_string (r->events->str,
      "opened(0) closed(1011,1) opened(1) closed(1011,1) opened(1) "
      "closed(1011,0) ");
  quiet_period (500);
  fail_unless_equals_int (ws->connections, 3);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A connection lost without a close frame reports code 0 and is
 * reconnected. */
GST_START_TEST (test_ws_tcp_drop_reconnects)
{
  RawServer *raw = g_new0 (RawServer, 1);
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  raw->handshake = TRUE;
  raw->drop_first = 1;
  st = server_thread_new (raw_server_start, raw_server_stop, raw);
  url = ws_url (st, "/ws");
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->opened == 2);
  fail_unless_equals_int (r->closed, 1);
  fail_unless_equals_int (r->close_code, 0);
  fail_unless (r->close_will_retry);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 1);
  fail_unless (gst_voice_client_is_open (c));

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  g_free (raw);
  recorder_free (r);
}

GST_END_TEST;

/* A normal close (1000) chosen by the server is final: no reconnect. */
GST_START_TEST (test_ws_server_close_1000_final)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->close_with = SOUP_WEBSOCKET_CLOSE_NORMAL;
  ws->close_count = 100;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);

  WAIT_UNTIL (r->opened == 1);
  fail_unless (gst_voice_client_send_text (c, "CloseStream"));
  WAIT_UNTIL (r->closed == 1);
  fail_unless_equals_int (r->close_code, 1000);
  fail_if (r->close_will_retry);
  fail_if (gst_voice_client_is_open (c));
  quiet_period (500);
  fail_unless_equals_int (ws->connections, 1);
  fail_unless_equals_int (r->opened, 1);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 0);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* gst_voice_client_close() sends everything queued before the close frame
 * and does not reconnect afterwards. */
GST_START_TEST (test_ws_close_flushes_queue)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  GBytes *big;
  gchar *url, *data;
  guint i;

  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->opened == 1);

  /* More than the client hands the socket at once, so some of it is still
   * queued when close() is called. */
  data = g_malloc0 (64 * 1024);
  big = g_bytes_new_take (data, 64 * 1024);
  for (i = 0; i < 8; i++)
    fail_unless (gst_voice_client_send_binary (c, big));
  fail_unless (gst_voice_client_send_text (c, "last"));
  gst_voice_client_close (c, SOUP_WEBSOCKET_CLOSE_NORMAL, "done");

  WAIT_UNTIL (ws->closed_connections == 1);
  fail_unless_equals_int (ws->binaries->len, 8);
  fail_unless_equals_int (ws->texts->len, 1);
  fail_unless_equals_string (g_ptr_array_index (ws->texts, 0), "last");
  fail_unless_equals_int (ws->client_close_code, 1000);
  fail_unless_equals_string (ws->client_close_reason, "done");

  WAIT_UNTIL (r->closed == 1);
  fail_if (r->close_will_retry);
  quiet_period (500);
  fail_unless_equals_int (ws->connections, 1);
  fail_unless_equals_int (r->opened, 1);
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 0);

  client_free (c, r);
  server_thread_free (st);
  g_bytes_unref (big);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* gst_voice_client_reconnect() drops a working connection and opens a new
 * one, counted by get_reconnect_count(). */
GST_START_TEST (test_ws_reconnect_call)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  /* Even without automatic reconnects, an explicit one reconnects. */
  gst_voice_client_open_websocket (c, url, NULL, NULL, FALSE);
  WAIT_UNTIL (r->opened == 1);
  gst_voice_client_reconnect (c);
  WAIT_UNTIL (r->opened == 2);
  fail_unless_equals_int (r->reopened, 1);
  fail_unless_equals_int (r->closed, 1);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 1);
  fail_unless (gst_voice_client_send_text (c, "on the new one"));
  WAIT_UNTIL (ws_text_index (ws, "on the new one") >= 0);
  fail_unless_equals_int (ws->connections, 2);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* While not connected the queue is bounded in bytes: sends are refused once
 * full, never exceed the limit, and clear_queue() empties it. */
GST_START_TEST (test_queue_bound)
{
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar text[101];
  guint accepted = 0, i;

  memset (text, 'x', 100);
  text[100] = '\0';
  gst_voice_client_set_queue_limit (c, 1050);
  for (i = 0; i < 100; i++) {
    if (!gst_voice_client_send_text (c, text))
      break;
    accepted++;
    fail_unless (gst_voice_client_get_queued_bytes (c) <= 1050);
  }
  fail_unless_equals_int (accepted, 10);
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 1000);
  /* Refused again, and a refusal does not change the queue. */
  fail_if (gst_voice_client_send_text (c, text));
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 1000);
  /* A smaller message still fits. */
  fail_unless (gst_voice_client_send_text (c, "small"));
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 1005);

  fail_unless_equals_int (gst_voice_client_clear_queue (c), 11);
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 0);
  fail_unless_equals_int (gst_voice_client_clear_queue (c), 0);
  fail_unless (gst_voice_client_send_text (c, text));
  fail_unless_equals_int (gst_voice_client_get_queued_bytes (c), 100);

  client_free (c, r);
  recorder_free (r);
}

GST_END_TEST;

/* A peer that completes the handshake and then never reads: the client's
 * data backs up, stalled() is reported, and with reconnecting on the client
 * drops the connection and connects again. */
GST_START_TEST (test_ws_stall_reconnects)
{
  RawServer *raw = g_new0 (RawServer, 1);
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  GBytes *chunk = g_bytes_new_take (g_malloc0 (16384), 16384);
  gchar *url;
  gsize sent = 0;

  raw->handshake = TRUE;
  st = server_thread_new (raw_server_start, raw_server_stop, raw);
  url = ws_url (st, "/ws");
  gst_voice_client_set_queue_limit (c, 512 * 1024);
  gst_voice_client_set_stall_timeout (c, 300);
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->opened == 1);

  /* Until the queue refuses: the socket backed up and the rest waits in
   * the bounded queue. 64 MiB would mean the bound does not hold. */
  while (gst_voice_client_send_binary (c, chunk)) {
    sent += 16384;
    fail_unless (gst_voice_client_get_queued_bytes (c) <= 512 * 1024);
    fail_unless (sent < 64 * 1024 * 1024,
        "queue never filled: data is not held back for a peer that does "
        "not read");
  }
  WAIT_UNTIL (r->stalled >= 1);
  fail_unless (r->stalled_bytes > 0);
  WAIT_UNTIL (r->opened == 2);
  fail_unless_equals_int (r->closed, 1);
  fail_unless (r->close_will_retry);
  fail_unless_equals_int (r->reopened, 1);
  fail_unless_equals_int (raw->handshakes, 2);
  fail_unless_equals_int (gst_voice_client_get_reconnect_count (c), 1);

  client_free (c, r);
  server_thread_free (st);
  g_bytes_unref (chunk);
  g_free (url);
  g_free (raw);
  recorder_free (r);
}

GST_END_TEST;

/* Without reconnecting, a stall is reported once and the connection kept;
 * a close() that cannot flush to that peer gives up after the stall timeout
 * instead of waiting forever. */
GST_START_TEST (test_ws_stall_no_reconnect_then_close)
{
  RawServer *raw = g_new0 (RawServer, 1);
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  GBytes *chunk = g_bytes_new_take (g_malloc0 (16384), 16384);
  gchar *url;
  gsize sent = 0;

  raw->handshake = TRUE;
  st = server_thread_new (raw_server_start, raw_server_stop, raw);
  url = ws_url (st, "/ws");
  gst_voice_client_set_queue_limit (c, 256 * 1024);
  gst_voice_client_set_stall_timeout (c, 200);
  gst_voice_client_open_websocket (c, url, NULL, NULL, FALSE);
  WAIT_UNTIL (r->opened == 1);
  while (gst_voice_client_send_binary (c, chunk)) {
    sent += 16384;
    fail_unless (sent < 64 * 1024 * 1024, "queue never filled");
  }
  WAIT_UNTIL (r->stalled == 1);
  /* Many stall timeouts later: still one report, still connected. */
  quiet_period (1000);
  fail_unless_equals_int (r->stalled, 1);
  fail_unless_equals_int (r->closed, 0);
  fail_unless (gst_voice_client_is_open (c));

  gst_voice_client_close (c, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  WAIT_UNTIL (r->closed == 1);
  fail_unless_equals_int (r->close_code, SOUP_WEBSOCKET_CLOSE_ABNORMAL);
  fail_if (r->close_will_retry);
  fail_if (gst_voice_client_is_open (c));
  quiet_period (300);
  fail_unless_equals_int (raw->handshakes, 1);
  fail_unless_equals_int (r->opened, 1);

  client_free (c, r);
  server_thread_free (st);
  g_bytes_unref (chunk);
  g_free (url);
  g_free (raw);
  recorder_free (r);
}

GST_END_TEST;

/* Handshake statuses that retrying cannot fix are final; transient ones
 * (timeouts, rate limits, server errors) are retried. */
GST_START_TEST (test_ws_status_classes)
{
  static const guint final_statuses[] = { 400, 401, 403, 404, 422 };
  static const guint retried_statuses[] = { 408, 429, 500, 502, 503 };
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  gchar *url;
  guint i;

  ws->reject_status = 400;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  for (i = 0; i < G_N_ELEMENTS (final_statuses) * 2; i++) {
    gboolean final = i < G_N_ELEMENTS (final_statuses);
    guint status = final ? final_statuses[i]
                         : retried_statuses[i - G_N_ELEMENTS (final_statuses)];
    Recorder *r = recorder_new ();
    GstVoiceClient *c = client_new (r);

    g_mutex_lock (&lock);
    ws->reject_status = status;
    g_mutex_unlock (&lock);
    gst_voice_client_set_backoff (c, 10, 10, 1);
    gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
    WAIT_UNTIL (r->failed >= 1);
    fail_unless_equals_int (r->fail_status, status);
    if (final) {
      fail_if (r->fail_will_retry, "HTTP %u was retried", status);
    } else {
      fail_unless (r->fail_will_retry, "HTTP %u was not retried", status);
      WAIT_UNTIL (r->failed == 2);
      fail_if (r->fail_will_retry);
    }
    client_free (c, r);
    recorder_free (r);
  }
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
}

GST_END_TEST;

/* shutdown() returns with no callback invoked afterwards (the server keeps
 * sending), is safe twice, and finalize releases the user data. */
GST_START_TEST (test_shutdown_stops_callbacks)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->ticker = TRUE;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->texts->len >= 3);

  gst_voice_client_shutdown (c);
  g_mutex_lock (&lock);
  r->shut_down = TRUE;
  g_mutex_unlock (&lock);
  gst_voice_client_shutdown (c);
  fail_if (gst_voice_client_is_open (c));
  fail_if (gst_voice_client_send_text (c, "too late"));
  /* The server ticks every 20 ms. */
  quiet_period (300);
  fail_unless_equals_int (r->late_calls, 0);
  /* The server saw the client go. */
  WAIT_UNTIL (ws->closed_connections == 1);

  gst_object_unref (c);
  WAIT_UNTIL (r->notified == 1);
  fail_unless_equals_int (r->late_calls, 0);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* shutdown() may be called from inside a callback (twice, even) without a
 * deadlock, and stops the callbacks there. */
GST_START_TEST (test_shutdown_from_callback)
{
  WsServer *ws = ws_server_new ();
  ServerThread *st;
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  ws->ticker = TRUE;
  st = server_thread_new (ws_server_start, ws_server_stop, ws);
  url = ws_url (st, "/ws");
  r->shutdown_on_message = TRUE;
  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (r->texts->len >= 1);
  WAIT_UNTIL (ws->closed_connections == 1);
  quiet_period (300);
  fail_unless_equals_int (r->texts->len, 1);
  fail_unless_equals_int (r->closed, 0);
  fail_unless_equals_int (ws->connections, 1);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  ws_server_free (ws);
  recorder_free (r);
}

GST_END_TEST;

/* A client dropped right after opening (connect still in flight) is
 * finalized once the attempt ends, without callbacks. */
GST_START_TEST (test_shutdown_while_connecting)
{
  RawServer *raw = g_new0 (RawServer, 1);
  ServerThread *st = server_thread_new (raw_server_start, raw_server_stop, raw);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url = ws_url (st, "/ws");

  gst_voice_client_open_websocket (c, url, NULL, NULL, TRUE);
  WAIT_UNTIL (raw->accepted == 1);
  client_free (c, r);
  fail_unless_equals_int (r->failed, 0);
  fail_unless_equals_int (r->late_calls, 0);
  server_thread_free (st);
  g_free (url);
  g_free (raw);
  recorder_free (r);
}

GST_END_TEST;

/* ---- Streamed HTTP ---- */

typedef struct
{
  /* Behaviour */
  HttpServer *http; /* to report received bytes to, for gating */
  gboolean refuse; /* response() returns FALSE */

  /* Protected by lock */
  guint responses;
  guint status;
  gchar *x_test;
  guint chunks;
  GString *body;
  guint done;
  gboolean done_error;
  GQuark done_domain;
  gint done_code;
  guint after_done; /* callbacks after done() */
  guint notified;
} HttpRecorder;

static HttpRecorder *
http_recorder_new (HttpServer *http)
{
  HttpRecorder *h = g_new0 (HttpRecorder, 1);

  h->http = http;
  h->body = g_string_new (NULL);
  return h;
}

static void
http_recorder_free (HttpRecorder *h)
{
  g_string_free (h->body, TRUE);
  g_free (h->x_test);
  g_free (h);
}

static gboolean
hrec_response (GstVoiceClient *client, guint id, guint status,
    SoupMessageHeaders *headers, gpointer data)
{
  HttpRecorder *h = data;

  g_mutex_lock (&lock);
  if (h->done)
    h->after_done++;
  h->responses++;
  h->status = status;
  h->x_test = g_strdup (soup_message_headers_get_one (headers, "X-Test"));
  changed_locked ();
  g_mutex_unlock (&lock);
  return !h->refuse;
}

static void
hrec_chunk (GstVoiceClient *client, guint id, GBytes *bytes, gpointer data)
{
  HttpRecorder *h = data;
  gsize size;
  const gchar *d = g_bytes_get_data (bytes, &size);

  g_mutex_lock (&lock);
  if (h->done)
    h->after_done++;
  h->chunks++;
  g_string_append_len (h->body, d, size);
  if (h->http)
    h->http->client_received = h->body->len;
  changed_locked ();
  g_mutex_unlock (&lock);
}

static void
hrec_done (GstVoiceClient *client, guint id, const GError *error, gpointer data)
{
  HttpRecorder *h = data;

  g_mutex_lock (&lock);
  if (h->done)
    h->after_done++;
  h->done++;
  h->done_error = error != NULL;
  h->done_domain = error ? error->domain : 0;
  h->done_code = error ? error->code : 0;
  changed_locked ();
  g_mutex_unlock (&lock);
}

static void
hrec_notify (gpointer data)
{
  HttpRecorder *h = data;

  g_mutex_lock (&lock);
  h->notified++;
  changed_locked ();
  g_mutex_unlock (&lock);
}

static const GstVoiceHttpCallbacks hrec_callbacks = {
  hrec_response,
  hrec_chunk,
  hrec_done,
};

static SoupMessage *
post_message (const gchar *url)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, url);
  GBytes *body = g_bytes_new_static ("{\"prompt\":\"hi\"}", 15);

  fail_unless (msg != NULL);
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  soup_message_headers_append (
      soup_message_get_request_headers (msg), "Authorization", "Bearer " KEY);
  g_bytes_unref (body);
  return msg;
}

/* A chunked response arrives as it is sent: response(), then several
 * chunk() calls in order, then done(NULL) once. */
GST_START_TEST (test_http_stream)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (http);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;
  guint id;

  http->chunks = 5;
  http->gate = TRUE; /* the next chunk only once the client has this one */
  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/stream?x=1");
  id = gst_voice_client_http_request (
      c, post_message (url), &hrec_callbacks, h, hrec_notify);
  fail_unless (id != 0);

  WAIT_UNTIL (h->done == 1);
  fail_if (h->done_error);
  fail_unless_equals_int (h->responses, 1);
  fail_unless_equals_int (h->status, 200);
  fail_unless_equals_string (h->x_test, "streaming");
  fail_unless (h->chunks >= 5, "only %u chunk() calls", h->chunks);
  fail_unless_equals_string (
      h->body->str, "chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;");
  fail_unless_equals_string (http->body, "{\"prompt\":\"hi\"}");
  fail_unless_equals_string (http->authorization, "Bearer " KEY);
  WAIT_UNTIL (h->notified == 1);
  WAIT_UNTIL (http->completed);
  fail_unless_equals_int (h->after_done, 0);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  http_server_free (http);
  http_recorder_free (h);
  recorder_free (r);
}

GST_END_TEST;

/* Cancelling mid-stream ends with done(G_IO_ERROR_CANCELLED) exactly once,
 * no chunk after it, and the server sees the client go away (what lets the
 * LLM element abort a generation on barge-in). */
GST_START_TEST (test_http_cancel_mid_stream)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (http);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;
  guint id, chunks_at_done;

  http->chunks = 0; /* endless */
  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/stream");
  id = gst_voice_client_http_request (
      c, post_message (url), &hrec_callbacks, h, hrec_notify);
  WAIT_UNTIL (h->chunks >= 3);
  gst_voice_client_cancel_request (c, id);

  WAIT_UNTIL (h->done == 1);
  fail_unless (h->done_error);
  fail_unless (h->done_domain == G_IO_ERROR);
  fail_unless_equals_int (h->done_code, G_IO_ERROR_CANCELLED);
  chunks_at_done = h->chunks;
  WAIT_UNTIL (http->client_gone);
  WAIT_UNTIL (h->notified == 1);
  /* Cancelling a finished request is harmless. */
  gst_voice_client_cancel_request (c, id);
  quiet_period (200);
  fail_unless_equals_int (h->done, 1);
  fail_unless_equals_int (h->after_done, 0);
  fail_unless_equals_int (h->chunks, chunks_at_done);
  fail_if (http->completed);

  /* The I/O thread is free and the aborted connection is not reused: a new
   * request on the same client streams to its end. */
  {
    HttpRecorder *h2 = http_recorder_new (NULL);
    gchar *url2 = http_url (st, "/stream?n=3");

    gst_voice_client_http_request (
        c, post_message (url2), &hrec_callbacks, h2, hrec_notify);
    WAIT_UNTIL (h2->done == 1 && h2->notified == 1);
    fail_if (h2->done_error);
    fail_unless_equals_string (h2->body->str, "chunk-0;chunk-1;chunk-2;");
    g_free (url2);
    http_recorder_free (h2);
  }

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  http_server_free (http);
  http_recorder_free (h);
  recorder_free (r);
}

GST_END_TEST;

/* response() returning FALSE cancels: done(CANCELLED), no chunk, and the
 * server sees the client go away. */
GST_START_TEST (test_http_refuse_response)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (NULL);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  http->chunks = 0;
  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/stream");
  h->refuse = TRUE;
  gst_voice_client_http_request (
      c, post_message (url), &hrec_callbacks, h, hrec_notify);
  WAIT_UNTIL (h->done == 1);
  fail_unless_equals_int (h->responses, 1);
  fail_unless_equals_int (h->done_code, G_IO_ERROR_CANCELLED);
  fail_unless_equals_int (h->chunks, 0);
  WAIT_UNTIL (http->client_gone);
  WAIT_UNTIL (h->notified == 1);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  http_server_free (http);
  http_recorder_free (h);
  recorder_free (r);
}

GST_END_TEST;

/* An HTTP error status is a normal response (the element reads the error
 * body); a refused connection is done(error) without response(). */
GST_START_TEST (test_http_errors)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (NULL);
  HttpRecorder *h2 = http_recorder_new (NULL);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url, *dead_url;
  GSocket *sock;
  GSocketAddress *addr;
  GInetAddress *lo;

  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/missing");
  gst_voice_client_http_request (
      c, post_message (url), &hrec_callbacks, h, hrec_notify);
  WAIT_UNTIL (h->done == 1);
  fail_if (h->done_error);
  fail_unless_equals_int (h->status, 404);
  fail_unless_equals_string (h->body->str, "not here");

  /* A port nobody listens on: bound, never listening. */
  sock = g_socket_new (
      G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  addr = g_inet_socket_address_new (lo, 0);
  fail_unless (g_socket_bind (sock, addr, FALSE, NULL));
  g_object_unref (addr);
  addr = g_socket_get_local_address (sock, NULL);
  dead_url = g_strdup_printf ("http://127.0.0.1:%u/x",
      g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)));
  gst_voice_client_http_request (
      c, post_message (dead_url), &hrec_callbacks, h2, hrec_notify);
  WAIT_UNTIL (h2->done == 1);
  fail_unless (h2->done_error);
  fail_unless_equals_int (h2->responses, 0);
  WAIT_UNTIL (h->notified == 1 && h2->notified == 1);

  client_free (c, r);
  server_thread_free (st);
  g_object_unref (addr);
  g_object_unref (lo);
  g_object_unref (sock);
  g_free (url);
  g_free (dead_url);
  http_server_free (http);
  http_recorder_free (h);
  http_recorder_free (h2);
  recorder_free (r);
}

GST_END_TEST;

/* shutdown() with a request streaming: done() is not called afterwards, the
 * server sees the client go, and the request's user data is released. */
GST_START_TEST (test_http_shutdown_mid_stream)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (NULL);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  http->chunks = 0;
  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/stream");
  gst_voice_client_http_request (
      c, post_message (url), &hrec_callbacks, h, hrec_notify);
  WAIT_UNTIL (h->chunks >= 2);
  gst_voice_client_shutdown (c);
  g_mutex_lock (&lock);
  h->done += 100; /* any later callback counts as after_done */
  g_mutex_unlock (&lock);
  WAIT_UNTIL (http->client_gone);
  WAIT_UNTIL (h->notified == 1);
  fail_unless_equals_int (h->after_done, 0);
  fail_unless_equals_int (h->done, 100);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  http_server_free (http);
  http_recorder_free (h);
  recorder_free (r);
}

GST_END_TEST;

/* A request made after shutdown() never reaches the network, and its user
 * data is still released. */
GST_START_TEST (test_http_after_shutdown)
{
  HttpServer *http = g_new0 (HttpServer, 1);
  ServerThread *st;
  HttpRecorder *h = http_recorder_new (NULL);
  Recorder *r = recorder_new ();
  GstVoiceClient *c = client_new (r);
  gchar *url;

  http->chunks = 1;
  st = server_thread_new (http_server_start, http_server_stop, http);
  url = http_url (st, "/stream");
  gst_voice_client_shutdown (c);
  fail_unless (gst_voice_client_http_request (c, post_message (url),
                   &hrec_callbacks, h, hrec_notify) != 0);
  WAIT_UNTIL (h->notified == 1);
  quiet_period (200);
  fail_unless_equals_int (http->requests, 0);
  fail_unless_equals_int (h->responses + h->chunks + h->done, 0);

  client_free (c, r);
  server_thread_free (st);
  g_free (url);
  http_server_free (http);
  http_recorder_free (h);
  recorder_free (r);
}

GST_END_TEST;

/* A critical warning from any library on any thread (libsoup's on the I/O
 * thread included) fails the test. */
static void
criticals_are_fatal (void)
{
  g_log_set_always_fatal (
      g_log_set_always_fatal (G_LOG_FATAL_MASK) | G_LOG_LEVEL_CRITICAL);
}

static Suite *
voice_client_suite (void)
{
  Suite *s = suite_create ("voice-client");
  TCase *ws = tcase_create ("websocket");
  TCase *http = tcase_create ("http");
  TCase *life = tcase_create ("lifecycle");

  suite_add_tcase (s, ws);
  tcase_add_checked_fixture (ws, criticals_are_fatal, NULL);
  tcase_add_test (ws, test_ws_basic);
  tcase_add_test (ws, test_ws_invalid_url);
  tcase_add_test (ws, test_ws_rejected_401);
  tcase_add_test (ws, test_ws_rejected_503_retries);
  tcase_add_test (ws, test_ws_retry_after);
  tcase_add_test (ws, test_ws_connect_timeout);
  tcase_add_test (ws, test_ws_reconnect_after_1011);
  tcase_add_test (ws, test_ws_server_close_1000_final);
  tcase_add_test (ws, test_ws_flapping_gives_up);
  tcase_add_test (ws, test_ws_tcp_drop_reconnects);
  tcase_add_test (ws, test_ws_close_flushes_queue);
  tcase_add_test (ws, test_ws_reconnect_call);
  tcase_add_test (ws, test_queue_bound);
  tcase_add_test (ws, test_ws_stall_reconnects);
  tcase_add_test (ws, test_ws_stall_no_reconnect_then_close);
  tcase_add_test (ws, test_ws_status_classes);

  suite_add_tcase (s, http);
  tcase_add_checked_fixture (http, criticals_are_fatal, NULL);
  tcase_add_test (http, test_http_stream);
  tcase_add_test (http, test_http_cancel_mid_stream);
  tcase_add_test (http, test_http_refuse_response);
  tcase_add_test (http, test_http_errors);
  tcase_add_test (http, test_http_shutdown_mid_stream);
  tcase_add_test (http, test_http_after_shutdown);

  suite_add_tcase (s, life);
  tcase_add_checked_fixture (life, criticals_are_fatal, NULL);
  tcase_add_test (life, test_shutdown_stops_callbacks);
  tcase_add_test (life, test_shutdown_from_callback);
  tcase_add_test (life, test_shutdown_while_connecting);
  return s;
}

GST_CHECK_MAIN (voice_client);

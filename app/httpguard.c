/* voiceagent: the HTTP front door.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libsoup 3.2's server has no limit on connections, no timeout, and reads
 * a request body whole into memory even after a got-headers handler has
 * answered it (its io loop goes on to the body whatever the status). So
 * the sockets are accepted here and handed to libsoup
 * (soup_server_accept_iostream), and each request is watched:
 *
 * - at max_connections open, a new connection gets a 503 and is closed;
 * - a connection's request head is read here first, without taking it
 *   from the socket (MSG_PEEK), and checked (httphead.c): what libsoup
 *   would leak memory on, or refuse with an empty answer, is refused here
 *   with a JSON error; the head must arrive whole within
 *   request_timeout_s of the connection, and be at most 64 KiB (431);
 * - every socket has an idle timeout (before libsoup has it, here;
 *   then GSocket:timeout): a peer silent in either direction that long is
 *   dropped, whether it never sent a byte or stopped reading our answer;
 * - a request must then be read whole within request_timeout_s of the
 *   point libsoup starts on it, or it gets 408 and is closed (slowloris
 *   trickles one byte per idle period);
 * - a body is collected here, not by libsoup, and at the first byte past
 *   max_body (declared by Content-Length, or counted across chunks of a
 *   chunked body) the connection is taken from libsoup, answered 413 and
 *   closed;
 * - a refusal written here closes lingering: our side is shut down and
 *   what the client still sends is read and dropped (2 s, 64 KiB at most),
 *   because closing with unread bytes sends a reset that can destroy the
 *   answer before the client reads it.
 *
 * Errors this file writes itself carry the same JSON body and CORS
 * header as the server's own. Main context only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <sys/socket.h>
#include <gst/gst.h>
#include "httpguard.h"
#include "httphead.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define REQUEST_KEY "va-http-request"
/* RFC 6585; libsoup 3.2 has no name for it. */
#define STATUS_HEADERS_TOO_LARGE 431

struct _VaHttpGuard
{
  SoupServer *soup;
  VaHttpGuardLimits limits;
  GSocketService *service;
  guint public_port; /* first public listener, or 0 */
  GArray *ops_ports; /* guint: listeners for operators */
  GHashTable *connections; /* GSocketConnection* (weak) set */
  GHashTable *heads; /* Head* whose request head is awaited (owned) */
  gulong request_started_id;
};

/* One request being read; owned by its SoupServerMessage's data. */
typedef struct
{
  VaHttpGuard *guard;
  GByteArray *body;
  GBytes *body_bytes; /* frozen once read whole */
  guint deadline; /* source id, until the request is read */
} Request;

/* A refusal written on a connection taken from (or never given to)
 * libsoup; frees itself once the socket is closed. */
typedef struct
{
  GIOStream *stream;
  GSocket *socket; /* under @stream, to shut our side down; or NULL */
  gchar *text;
  /* Lingering close: what the client still sends is read and dropped for
   * a while, since closing a socket with unread bytes sends a reset that
   * can destroy the answer before the client reads it. */
  GCancellable *linger;
  guint linger_timer;
  gsize drained;
  guint8 scratch[4096];
} Refusal;

#define LINGER_MS 2000
#define LINGER_MAX_BYTES (64 * 1024)

/* ---- Writing a refusal ourselves ---- */

static void
refusal_closed (GObject *source, GAsyncResult *result, gpointer data)
{
  Refusal *r = data;

  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  g_clear_object (&r->socket);
  g_object_unref (r->stream);
  g_free (r->text);
  g_free (r);
}

static void
refusal_close (Refusal *r)
{
  g_clear_handle_id (&r->linger_timer, g_source_remove);
  g_clear_object (&r->linger);
  g_io_stream_close_async (
      r->stream, G_PRIORITY_DEFAULT, NULL, refusal_closed, r);
}

static gboolean
linger_over (gpointer data)
{
  Refusal *r = data;

  r->linger_timer = 0;
  g_cancellable_cancel (r->linger);
  return G_SOURCE_REMOVE;
}

static void drain (Refusal *r);

static void
drained (GObject *source, GAsyncResult *result, gpointer data)
{
  Refusal *r = data;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);

  if (n <= 0 || (r->drained += n) > LINGER_MAX_BYTES)
    refusal_close (r); /* the client closed, or stalled, or sent too much */
  else
    drain (r);
}

static void
drain (Refusal *r)
{
  g_input_stream_read_async (g_io_stream_get_input_stream (r->stream),
      r->scratch, sizeof r->scratch, G_PRIORITY_DEFAULT, r->linger, drained, r);
}

static void
refusal_written (GObject *source, GAsyncResult *result, gpointer data)
{
  Refusal *r = data;

  if (!g_output_stream_write_all_finish (
          G_OUTPUT_STREAM (source), result, NULL, NULL)) {
    refusal_close (r);
    return;
  }
  /* The client sees the answer end at once, and closes. */
  if (r->socket)
    g_socket_shutdown (r->socket, FALSE, TRUE, NULL);
  r->linger = g_cancellable_new ();
  r->linger_timer = g_timeout_add (LINGER_MS, linger_over, r);
  drain (r);
}

/* The socket under @stream: ours (a GSocketConnection), or the one under
 * the SoupIOStream libsoup wraps it in (taken back from libsoup). */
static GSocket *
socket_under (GIOStream *stream)
{
  GIOStream *base = NULL;
  GSocket *socket = NULL;

  if (G_IS_SOCKET_CONNECTION (stream))
    return g_object_ref (
        g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream)));
  if (g_object_class_find_property (
          G_OBJECT_GET_CLASS (stream), "base-iostream"))
    g_object_get (stream, "base-iostream", &base, NULL);
  if (base && G_IS_SOCKET_CONNECTION (base))
    socket = g_object_ref (
        g_socket_connection_get_socket (G_SOCKET_CONNECTION (base)));
  g_clear_object (&base);
  return socket;
}

static void
write_refusal (VaHttpGuard *guard, GIOStream *stream, guint status,
    const gchar *extra_header, const gchar *reason)
{
  Refusal *r = g_new0 (Refusal, 1);
  gchar *json =
      g_strdup_printf ("{\"error\":\"%s\",\"status\":%u}", reason, status);

  r->stream = stream;
  r->socket = socket_under (stream);
  r->text = g_strdup_printf ("HTTP/1.1 %u %s\r\n"
                             "Content-Type: application/json\r\n"
                             "Access-Control-Allow-Origin: %s\r\n"
                             "%s"
                             "Connection: close\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
      status,
      status == STATUS_HEADERS_TOO_LARGE ? "Request Header Fields Too Large"
                                         : soup_status_get_phrase (status),
      guard->limits.cors_origin, extra_header ? extra_header : "",
      strlen (json), json);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (stream),
      r->text, strlen (r->text), G_PRIORITY_DEFAULT, NULL, refusal_written, r);
  g_free (json);
}

/* Takes @msg's connection from libsoup (which then forgets @msg), answers
 * @status and closes it. @reason is a fixed text: it is not escaped. */
static void
refuse_request (
    VaHttpGuard *guard, SoupServerMessage *msg, guint status, const gchar *why)
{
  GIOStream *stream;

  GST_INFO ("HTTP %u before the request was read: %s", status, why);
  stream = soup_server_message_steal_connection (msg);
  if (stream)
    write_refusal (guard, stream, status, NULL, why);
}

/* ---- Requests ---- */

static void
request_free (Request *r)
{
  g_clear_handle_id (&r->deadline, g_source_remove);
  if (r->body)
    g_byte_array_unref (r->body);
  g_clear_pointer (&r->body_bytes, g_bytes_unref);
  g_free (r);
}

static gboolean
request_too_slow (gpointer data)
{
  SoupServerMessage *msg = data;
  Request *r = g_object_get_data (G_OBJECT (msg), REQUEST_KEY);

  r->deadline = 0;
  refuse_request (r->guard, msg, SOUP_STATUS_REQUEST_TIMEOUT,
      "the request was not sent whole in time (--request-timeout)");
  return G_SOURCE_REMOVE;
}

static void
body_too_large (Request *r, SoupServerMessage *msg)
{
  refuse_request (r->guard, msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
      "the body is over the size limit (--max-body)");
}

static void
on_got_headers (SoupServerMessage *msg, gpointer data)
{
  Request *r = data;
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);

  if (soup_message_headers_get_encoding (h) == SOUP_ENCODING_CONTENT_LENGTH &&
      soup_message_headers_get_content_length (h) >
          (goffset)r->guard->limits.max_body) {
    body_too_large (r, msg);
    return;
  }
  soup_message_body_set_accumulate (
      soup_server_message_get_request_body (msg), FALSE);
}

static void
on_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
  Request *r = data;
  gsize size = g_bytes_get_size (chunk);

  if (r->body->len + size > r->guard->limits.max_body) {
    body_too_large (r, msg);
    return;
  }
  g_byte_array_append (r->body, g_bytes_get_data (chunk, NULL), size);
}

/* libsoup's own got-body handler (which calls the server's handler) may
 * run before this one or after: va_http_guard_get_body does the same. */
static void
request_read (Request *r)
{
  g_clear_handle_id (&r->deadline, g_source_remove);
  if (r->body)
    r->body_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&r->body));
}

static void
on_got_body (SoupServerMessage *msg, gpointer data)
{
  request_read (data);
}

static void
on_request_started (SoupServer *soup, SoupServerMessage *msg, gpointer data)
{
  VaHttpGuard *guard = data;
  Request *r = g_new0 (Request, 1);

  r->guard = guard;
  r->body = g_byte_array_new ();
  r->deadline = g_timeout_add_seconds (
      guard->limits.request_timeout_s, request_too_slow, msg);
  g_object_set_data_full (
      G_OBJECT (msg), REQUEST_KEY, r, (GDestroyNotify)request_free);
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_got_headers), r);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), r);
  g_signal_connect (msg, "got-body", G_CALLBACK (on_got_body), r);
}

GBytes *
va_http_guard_get_body (SoupServerMessage *msg)
{
  Request *r = g_object_get_data (G_OBJECT (msg), REQUEST_KEY);

  if (r == NULL)
    return NULL;
  request_read (r);
  return r->body_bytes;
}

/* ---- Request heads, before libsoup ---- */

/* A connection whose request head is awaited. */
typedef struct
{
  VaHttpGuard *guard;
  GSocketConnection *connection; /* owned */
  GSource *wait; /* readable, or a retry timer once part of it came */
  GSource *deadline; /* while waiting for readable: the next deadline */
  gint64 deadline_us; /* monotonic: the whole head by then, or 408 */
  gint64 progress_us; /* when bytes last came (or the connection) */
  gssize seen; /* bytes of it seen so far */
  guint retry_ms;
} Head;

/* Silent for --idle-timeout: dropped without an answer, as libsoup's
 * sockets are. */
static gint64
idle_deadline (Head *h)
{
  return h->progress_us + h->guard->limits.idle_timeout_s * G_USEC_PER_SEC;
}

static void
stop_waiting (Head *h)
{
  if (h->wait) {
    g_source_destroy (h->wait);
    g_clear_pointer (&h->wait, g_source_unref);
  }
  if (h->deadline) {
    g_source_destroy (h->deadline);
    g_clear_pointer (&h->deadline, g_source_unref);
  }
}

static void
head_free (Head *h)
{
  stop_waiting (h);
  g_clear_object (&h->connection);
  g_free (h);
}

static void serve (VaHttpGuard *guard, GSocketConnection *connection);
static void wait_for_head (Head *h, gboolean some_came);

/* Ends the wait for @h's head: libsoup gets the connection, or a refusal
 * is written (@status), or it is dropped (0 with no @status). */
static void
head_done (Head *h, guint status, const gchar *why, gboolean serve_it)
{
  VaHttpGuard *guard = h->guard;
  GSocketConnection *connection = g_steal_pointer (&h->connection);

  g_hash_table_remove (guard->heads, h);
  if (serve_it) {
    serve (guard, connection);
  } else if (status) {
    GST_INFO ("HTTP %u before libsoup: %s", status, why);
    write_refusal (
        guard, G_IO_STREAM (g_object_ref (connection)), status, NULL, why);
  }
  g_object_unref (connection);
}

/* Looks at what has come without taking it (MSG_PEEK): libsoup reads it
 * all again once the head is whole and passes. */
static gboolean
check_head (Head *h)
{
  GSocket *socket = g_socket_connection_get_socket (h->connection);
  gchar *buf = g_malloc (VA_HTTP_HEAD_MAX);
  GInputVector v = { buf, VA_HTTP_HEAD_MAX };
  gint flags = G_SOCKET_MSG_PEEK;
  GError *error = NULL;
  gssize n = g_socket_receive_message (
      socket, NULL, &v, 1, NULL, NULL, &flags, NULL, &error);
  const gchar *why = NULL;
  gsize end;
  guint status;

  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    n = -2;
  g_clear_error (&error);
  if (n > h->seen) {
    h->seen = n;
    h->progress_us = g_get_monotonic_time ();
  }
  if (n == 0 || n == -1 || g_get_monotonic_time () > idle_deadline (h)) {
    /* closed, failed or silent before a whole request */
    head_done (h, 0, NULL, FALSE);
  } else if (n > 0 && (end = va_http_head_end (buf, n))) {
    status = va_http_head_check (buf, end, h->guard->limits.max_body, &why);
    head_done (h, status, why, status == 0);
  } else if (n == VA_HTTP_HEAD_MAX) {
    head_done (
        h, STATUS_HEADERS_TOO_LARGE, "the request head is over 64 KiB", FALSE);
  } else if (g_get_monotonic_time () > h->deadline_us) {
    head_done (h, SOUP_STATUS_REQUEST_TIMEOUT,
        "the request was not sent whole in time (--request-timeout)", FALSE);
  } else {
    wait_for_head (h, n > 0);
  }
  g_free (buf);
  return G_SOURCE_REMOVE;
}

static gboolean
head_readable (GSocket *socket, GIOCondition condition, gpointer data)
{
  return check_head (data);
}

/* Until bytes come, the socket says when; once some came (it stays
 * readable while they are unread), a timer backs off to 200 ms. */
static void
wait_for_head (Head *h, gboolean some_came)
{
  gint64 next_us = MIN (h->deadline_us, idle_deadline (h));
  gint64 left_ms = MAX ((next_us - g_get_monotonic_time ()) / 1000 + 1, 1);

  stop_waiting (h);
  if (some_came) {
    h->retry_ms = CLAMP (h->retry_ms * 2, 2, 200);
    h->wait = g_timeout_source_new (MIN (h->retry_ms, (guint)left_ms));
    g_source_set_callback (h->wait, (GSourceFunc)check_head, h, NULL);
  } else {
    /* The deadline is a source of its own, not the socket source's ready
     * time: at that, GSocket would mark itself timed out and fail the
     * next read. */
    h->wait = g_socket_create_source (
        g_socket_connection_get_socket (h->connection), G_IO_IN, NULL);
    g_source_set_callback (h->wait, (GSourceFunc)head_readable, h, NULL);
    h->deadline = g_timeout_source_new ((guint)left_ms);
    g_source_set_callback (h->deadline, (GSourceFunc)check_head, h, NULL);
    g_source_attach (h->deadline, NULL);
  }
  g_source_attach (h->wait, NULL);
}

/* ---- Connections ---- */

static void
connection_gone (gpointer data, GObject *where_it_was)
{
  VaHttpGuard *guard = data;

  g_hash_table_remove (guard->connections, where_it_was);
}

/* Hands @connection, its request head checked, to libsoup. */
static void
serve (VaHttpGuard *guard, GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  GSocketAddress *local, *remote;
  GError *error = NULL;

  g_socket_set_blocking (socket, TRUE); /* as GIO gave it (on_incoming) */
  g_socket_set_timeout (socket, guard->limits.idle_timeout_s);
  local = g_socket_connection_get_local_address (connection, NULL);
  remote = g_socket_connection_get_remote_address (connection, NULL);
  if (!soup_server_accept_iostream (
          guard->soup, G_IO_STREAM (connection), local, remote, &error)) {
    GST_WARNING ("cannot serve a connection: %s", error->message);
    g_clear_error (&error);
  }
  g_clear_object (&local);
  g_clear_object (&remote);
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *connection,
    GObject *source, gpointer data)
{
  VaHttpGuard *guard = data;
  Head *h;

  if (g_hash_table_size (guard->connections) >= guard->limits.max_connections) {
    GST_WARNING ("refusing a connection: %u open (--max-connections)",
        g_hash_table_size (guard->connections));
    write_refusal (guard, g_object_ref (G_IO_STREAM (connection)),
        SOUP_STATUS_SERVICE_UNAVAILABLE, "Retry-After: 1\r\n",
        "too many open connections; try again");
    return TRUE;
  }
  /* The head is peeked at from the main context: never wait in it. */
  g_socket_set_blocking (g_socket_connection_get_socket (connection), FALSE);
  /* Counted from here until GIO drops it, whoever holds it. */
  g_hash_table_add (guard->connections, connection);
  g_object_weak_ref (G_OBJECT (connection), connection_gone, guard);
  h = g_new0 (Head, 1);
  h->guard = guard;
  h->connection = g_object_ref (connection);
  h->progress_us = g_get_monotonic_time ();
  h->deadline_us =
      h->progress_us + guard->limits.request_timeout_s * G_USEC_PER_SEC;
  g_hash_table_add (guard->heads, h);
  check_head (h);
  return TRUE;
}

guint
va_http_guard_listen (
    VaHttpGuard *guard, GSocketAddress *address, gboolean ops, GError **error)
{
  GSocketAddress *effective = NULL;
  guint port;

  if (!g_socket_listener_add_address (G_SOCKET_LISTENER (guard->service),
          address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
          &effective, error))
    return 0;
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  g_object_unref (effective);
  if (ops)
    g_array_append_val (guard->ops_ports, port);
  else if (guard->public_port == 0)
    guard->public_port = port;
  g_socket_service_start (guard->service);
  return port;
}

guint
va_http_guard_get_port (VaHttpGuard *guard, gboolean ops)
{
  if (!ops)
    return guard->public_port;
  return guard->ops_ports->len ? g_array_index (guard->ops_ports, guint, 0) : 0;
}

/* Listeners differ by port: an ops address is never the public one. */
gboolean
va_http_guard_is_ops (VaHttpGuard *guard, SoupServerMessage *msg)
{
  GSocketAddress *local = soup_server_message_get_local_address (msg);
  guint port, i;

  if (!G_IS_INET_SOCKET_ADDRESS (local))
    return FALSE;
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local));
  for (i = 0; i < guard->ops_ports->len; i++)
    if (g_array_index (guard->ops_ports, guint, i) == port)
      return TRUE;
  return FALSE;
}

guint
va_http_guard_get_connections (VaHttpGuard *guard)
{
  return g_hash_table_size (guard->connections);
}

VaHttpGuard *
va_http_guard_new (SoupServer *soup, const VaHttpGuardLimits *limits)
{
  VaHttpGuard *guard = g_new0 (VaHttpGuard, 1);

  guard->soup = g_object_ref (soup);
  guard->limits = *limits;
  guard->service = g_socket_service_new ();
  /* GLib's default backlog (10) stalls a burst of connects for seconds
   * (SYN-ACK retries) before on_incoming can even refuse them. */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (guard->service), SOMAXCONN);
  guard->ops_ports = g_array_new (FALSE, FALSE, sizeof (guint));
  guard->connections = g_hash_table_new (NULL, NULL);
  guard->heads =
      g_hash_table_new_full (NULL, NULL, (GDestroyNotify)head_free, NULL);
  g_signal_connect (
      guard->service, "incoming", G_CALLBACK (on_incoming), guard);
  guard->request_started_id = g_signal_connect (
      soup, "request-started", G_CALLBACK (on_request_started), guard);
  return guard;
}

void
va_http_guard_free (VaHttpGuard *guard)
{
  GHashTableIter iter;
  gpointer connection;

  if (guard == NULL)
    return;
  g_socket_service_stop (guard->service);
  g_socket_listener_close (G_SOCKET_LISTENER (guard->service));
  g_signal_handler_disconnect (guard->soup, guard->request_started_id);
  g_hash_table_unref (guard->heads);
  g_hash_table_iter_init (&iter, guard->connections);
  while (g_hash_table_iter_next (&iter, &connection, NULL))
    g_object_weak_unref (connection, connection_gone, guard);
  g_hash_table_unref (guard->connections);
  g_array_unref (guard->ops_ports);
  g_object_unref (guard->service);
  g_object_unref (guard->soup);
  g_free (guard);
}

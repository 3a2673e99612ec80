/* Client helpers for the emulator's own protocol tests.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "control-client.h"

#include <string.h>

void
emu_http_reply_free (EmuHttpReply *r)
{
  if (!r)
    return;
  g_free (r->body);
  if (r->headers)
    soup_message_headers_unref (r->headers);
  g_free (r);
}

EmuHttpReply *
emu_http (EmuProcess *emu, const gchar *method, const gchar *path,
    const gchar *body, const gchar *const *headers)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *url =
      g_strconcat (emu_process_get_http_url (emu), path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) reply = NULL;
  EmuHttpReply *r;

  g_assert_nonnull (msg);
  for (guint i = 0; headers && headers[i] && headers[i + 1]; i += 2)
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), headers[i], headers[i + 1]);
  if (body) {
    g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
  }
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  r = g_new0 (EmuHttpReply, 1);
  r->status = soup_message_get_status (msg);
  r->length = g_bytes_get_size (reply);
  r->body = g_strndup (g_bytes_get_data (reply, NULL), r->length);
  r->headers =
      soup_message_headers_ref (soup_message_get_response_headers (msg));
  return r;
}

JsonNode *
emu_json (const gchar *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!json_parser_load_from_data (parser, text, -1, &error))
    g_error ("not JSON (%s): %s", error->message, text);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_copy (json_parser_get_root (parser));
}

static void
mute_exited_critical (const gchar *domain, GLogLevelFlags level,
    const gchar *message, gpointer data)
{
  if (!strstr (message, "g_subprocess_get_if_exited"))
    g_log_default_handler (domain, level, message, data);
}

EmuProcess *
emu_check_start (const gchar *const *args)
{
  guint id = g_log_set_handler (
      "GLib-GIO", G_LOG_LEVEL_CRITICAL, mute_exited_critical, NULL);
  EmuProcess *emu = emu_process_start (args);

  g_log_remove_handler ("GLib-GIO", id);
  return emu;
}

void
emu_spin (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64)ms * 1000;

  while (g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, FALSE) || (g_usleep (1000), TRUE);
}

static void
message_cb (
    SoupWebsocketConnection *ws, gint type, GBytes *data, gpointer user_data)
{
  EmuWs *w = user_data;
  gsize len;
  const gchar *p = g_bytes_get_data (data, &len);

  g_queue_push_tail (&w->messages, g_strndup (p, len));
}

static void
closed_cb (SoupWebsocketConnection *ws, gpointer user_data)
{
  EmuWs *w = user_data;

  w->closed = TRUE;
  w->close_code = soup_websocket_connection_get_close_code (ws);
  w->close_reason = g_strdup (soup_websocket_connection_get_close_data (ws));
}

typedef struct
{
  gboolean done;
  SoupWebsocketConnection *ws;
  GError *error;
} ConnectWait;

static void
connected_cb (GObject *source, GAsyncResult *res, gpointer data)
{
  ConnectWait *cw = data;

  cw->ws = soup_session_websocket_connect_finish (
      SOUP_SESSION (source), res, &cw->error);
  cw->done = TRUE;
}

EmuWs *
emu_ws_connect (
    EmuProcess *emu, const gchar *path, const gchar *xi_api_key, guint *status)
{
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *url =
      g_strconcat (emu_process_get_ws_url (emu), path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  ConnectWait cw = { 0 };
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  EmuWs *w;

  g_assert_nonnull (msg);
  if (xi_api_key)
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), "xi-api-key", xi_api_key);
  soup_session_websocket_connect_async (
      session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL, connected_cb, &cw);
  while (!cw.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (cw.done);
  if (status)
    *status = soup_message_get_status (msg);
  if (!cw.ws) {
    g_clear_error (&cw.error);
    return NULL;
  }
  w = g_new0 (EmuWs, 1);
  w->ws = cw.ws;
  g_queue_init (&w->messages);
  g_signal_connect (w->ws, "message", G_CALLBACK (message_cb), w);
  g_signal_connect (w->ws, "closed", G_CALLBACK (closed_cb), w);
  return w;
}

void
emu_ws_send (EmuWs *w, const gchar *text)
{
  g_assert_cmpint (soup_websocket_connection_get_state (w->ws), ==,
      SOUP_WEBSOCKET_STATE_OPEN);
  soup_websocket_connection_send_text (w->ws, text);
}

gchar *
emu_ws_next (EmuWs *w, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  while (g_queue_is_empty (&w->messages) && !w->closed &&
      g_get_monotonic_time () < deadline) {
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  }
  return g_queue_pop_head (&w->messages);
}

gboolean
emu_ws_wait_closed (EmuWs *w, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;

  while (!w->closed && g_get_monotonic_time () < deadline) {
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  }
  return w->closed;
}

void
emu_ws_free (EmuWs *w)
{
  if (!w)
    return;
  g_signal_handlers_disconnect_by_data (w->ws, w);
  if (soup_websocket_connection_get_state (w->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (w->ws, 1000, NULL);
  g_object_unref (w->ws);
  g_queue_clear_full (&w->messages, g_free);
  g_free (w->close_reason);
  g_free (w);
  /* Let the close frame go out. */
  emu_spin (20);
}

void
emu_control_reset_all (EmuProcess *emu)
{
  g_autoptr (EmuHttpReply) r =
      emu_http (emu, "POST", "/emulator/reset", "{}", NULL);

  g_assert_cmpuint (r->status, ==, 200);
}

void
emu_control_arm (
    EmuProcess *emu, const gchar *service, const gchar *fault, gint count)
{
  g_autofree gchar *body = g_strdup_printf ("{\"service\":\"%s\",\"fault\":"
                                            "\"%s\",\"count\":%d}",
      service, fault, count);
  g_autoptr (EmuHttpReply) r =
      emu_http (emu, "POST", "/emulator/faults", body, NULL);

  g_assert_cmpuint (r->status, ==, 200);
}

guint
emu_control_count_events (
    EmuProcess *emu, const gchar *service, const gchar *event, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64)timeout_ms * 1000;
  g_autofree gchar *path = service
      ? g_strdup_printf ("/emulator/events?service=%s&event=%s", service, event)
      : g_strdup_printf ("/emulator/events?event=%s", event);

  for (;;) {
    g_autoptr (EmuHttpReply) r = emu_http (emu, "GET", path, NULL, NULL);
    g_autoptr (JsonNode) root = emu_json (r->body);
    JsonArray *a =
        json_object_get_array_member (json_node_get_object (root), "events");
    guint n = json_array_get_length (a);
    if (n > 0 || g_get_monotonic_time () >= deadline)
      return n;
    emu_spin (20);
  }
}

void
sse_free (Sse *s)
{
  g_ptr_array_unref (s->events);
  g_array_unref (s->times_ms);
  g_free (s);
}


Sse *
sse_request (
    EmuProcess *e, const gchar *query, const gchar *key, const gchar *body)
{
  g_autofree gchar *bearer = g_strconcat ("Bearer ", key, NULL);
  g_autoptr (SoupSession) session = soup_session_new ();
  g_autofree gchar *url = g_strconcat (emu_process_get_http_url (e),
      "/v1/chat/completions", query ? query : "", NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", url);
  g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));
  g_autoptr (GError) error = NULL;
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GDataInputStream) data = NULL;
  gint64 t0 = g_get_monotonic_time ();
  Sse *s = g_new0 (Sse, 1);
  gboolean expect_blank = FALSE;

  s->events = g_ptr_array_new_with_free_func (g_free);
  s->times_ms = g_array_new (FALSE, FALSE, sizeof (gint64));
  s->blank_after_each = TRUE;
  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "Authorization", bearer);
  soup_message_set_request_body_from_bytes (msg, "application/json", b);
  in = soup_session_send (session, msg, NULL, &error);
  g_assert_no_error (error);
  s->status = soup_message_get_status (msg);
  data = g_data_input_stream_new (in);
  g_data_input_stream_set_newline_type (data, G_DATA_STREAM_NEWLINE_TYPE_LF);
  for (;;) {
    gsize len;
    g_autofree gchar *line =
        g_data_input_stream_read_line (data, &len, NULL, &error);
    if (!line) {
      s->clean_end = error == NULL;
      break;
    }
    if (expect_blank) {
      if (len != 0)
        s->blank_after_each = FALSE;
      expect_blank = FALSE;
      continue;
    }
    if (len == 0)
      continue;
    {
      gint64 ms = (g_get_monotonic_time () - t0) / 1000;
      g_array_append_val (s->times_ms, ms);
    }
    g_ptr_array_add (s->events, g_steal_pointer (&line));
    expect_blank = TRUE;
  }
  return s;
}

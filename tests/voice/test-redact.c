/* Unit tests of gst_voice_redact() and of the rule that an API key never
 * reaches the debug log, checked against a full client session with a
 * local server (127.0.0.1, port 0, on its own thread and GMainContext).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <string.h>
#include "voice.h"
#include "gstvoiceredact.h"

/* See test-client.c: GLib's by-design leaks are matched on full stacks. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

#define WAIT_SECONDS 30

static void
check_redact (const gchar *in, const gchar *expected)
{
  gchar *out = gst_voice_redact (in);

  fail_unless_equals_string (out, expected);
  g_free (out);
}

/* Each place a vendor protocol carries a credential is masked, and the
 * text around it is kept. */
GST_START_TEST (test_redact_known_places)
{
  /* Deepgram's header and its subprotocol pair. */
  check_redact (
      "Authorization: Token 0123456789abcdef0123", "Authorization: Token ***");
  check_redact ("Sec-WebSocket-Protocol: token, 0123456789abcdef0123",
      "Sec-WebSocket-Protocol: token, ***");
  /* OAuth style, any case. */
  check_redact (
      "Authorization: Bearer sk-proj-AbC_123.xyz", "Authorization: Bearer ***");
  check_redact (
      "authorization: bearer sk-proj-AbC_123", "authorization: bearer ***");
  /* ElevenLabs' header and first-message field. */
  check_redact ("xi-api-key: sk_3f9a8b7c6d5e", "xi-api-key: ***");
  check_redact ("{\"text\":\" \",\"xi_api_key\":\"sk_3f9a8b7c6d5e\"}",
      "{\"text\":\" \",\"xi_api_key\":\"***\"}");
  check_redact ("{\"xi_api_key\": \"sk_3f9a8b7c6d5e\", \"a\": 1}",
      "{\"xi_api_key\": \"***\", \"a\": 1}");
  /* Query parameters: only the value, the rest of the URL stays. */
  check_redact ("wss://api.example.com/v1/tts?api_key=KEY123456&x=1",
      "wss://api.example.com/v1/tts?api_key=***&x=1");
  check_redact ("GET /v1/listen?model=nova&apikey=KEY123456 HTTP/1.1",
      "GET /v1/listen?model=nova&apikey=*** HTTP/1.1");
  check_redact (
      "https://h/x?access_token=KEY123456", "https://h/x?access_token=***");
  /* Several in one text. */
  check_redact (
      "Token aaaaaaaa1 and Bearer bbbbbbbb2", "Token *** and Bearer ***");
}

GST_END_TEST;

/* Ordinary log text is left alone, numbers included. */
GST_START_TEST (test_redact_ordinary_text)
{
  const gchar *texts[] = {
    "the first token took 110 ms",
    "first token, 110 ms after the request",
    "one token, then another",
    "received 42 tokens in 1.5 s (28 tokens/s)",
    "WebSocket open (reconnected)",
    "request 3: POST http://127.0.0.1:8080/v1/chat/completions",
    "queue: 1048576 bytes, 12 messages",
    "connecting failed: HTTP 401: Server rejected WebSocket handshake",
    "",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (texts); i++)
    check_redact (texts[i], texts[i]);
  fail_unless (gst_voice_redact (NULL) == NULL);
}

GST_END_TEST;

/* A registered secret is masked anywhere, every time it occurs, even where
 * no pattern would find it; too-short secrets are not registered. */
GST_START_TEST (test_redact_registered_secrets)
{
  check_redact ("invalid key s3cr3t-abcdef!", "invalid key s3cr3t-abcdef!");
  gst_voice_redact_add_secret ("s3cr3t-abcdef");
  gst_voice_redact_add_secret ("s3cr3t-abcdef"); /* twice is harmless */
  check_redact ("invalid key s3cr3t-abcdef!", "invalid key ***!");
  check_redact ("s3cr3t-abcdefs3cr3t-abcdef|s3cr3t-abcdef", "******|***");
  /* Too short to mask without mangling ordinary text. */
  gst_voice_redact_add_secret ("ms");
  gst_voice_redact_add_secret (NULL);
  check_redact ("the first token took 110 ms", "the first token took 110 ms");
  /* A secret holding a character the patterns stop at is still masked
   * whole, not cut at that character. */
  gst_voice_redact_add_secret ("abc,defgh12");
  check_redact ("Authorization: Token abc,defgh12", "Authorization: Token ***");
  check_redact ("echo: abc,defgh12.", "echo: ***.");
}

GST_END_TEST;

/* Text that is not UTF-8 is never echoed raw. */
GST_START_TEST (test_redact_invalid_utf8)
{
  check_redact ("Token \xff\xfe secret", "(unprintable)");
}

GST_END_TEST;

/* ---- The key never reaches the debug log ---- */

#define LOG_KEY "sk_live_4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"

static GMutex lock;
static GCond cond;
static GString *captured; /* protected by lock */

/* Lock held while @expr is evaluated; fails after WAIT_SECONDS. */
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

static void
capture_log (GstDebugCategory *category, GstDebugLevel level, const gchar *file,
    const gchar *function, gint line, GObject *object, GstDebugMessage *message,
    gpointer user_data)
{
  /* The line as the default log function would print it, and the message
   * itself formatted once more on its own. */
  gchar *text = gst_debug_log_get_line (
      category, level, file, function, line, object, message);

  g_mutex_lock (&lock);
  /* NULL once the test is done: a late line (the client's finalize on the
   * I/O thread logs after the test stopped waiting, and removing a log
   * function does not wait for calls under way) is dropped. */
  if (captured) {
    g_string_append (captured, text);
    g_string_append (captured, gst_debug_message_get (message));
    g_string_append_c (captured, '\n');
  }
  g_mutex_unlock (&lock);
  g_free (text);
}

typedef struct
{
  /* Protected by lock */
  gchar *authorization; /* as the server saw it, to show the key went out */
  gchar *xi_api_key;
  gchar *protocols;
  gchar *query;
  guint ws_connections;
  guint http_requests;

  /* Server thread only */
  SoupServer *server;
  GPtrArray *conns;
} KeyServer;

static void
key_server_note_request (KeyServer *ks, SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);

  g_mutex_lock (&lock);
  g_free (ks->authorization);
  ks->authorization =
      g_strdup (soup_message_headers_get_one (h, "Authorization"));
  g_free (ks->xi_api_key);
  ks->xi_api_key = g_strdup (soup_message_headers_get_one (h, "xi-api-key"));
  g_free (ks->protocols);
  ks->protocols =
      g_strdup (soup_message_headers_get_list (h, "Sec-WebSocket-Protocol"));
  g_free (ks->query);
  ks->query = g_strdup (g_uri_get_query (soup_server_message_get_uri (msg)));
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

/* Every handshake is seen here; /reject ones are refused, echoing the key
 * in a header the way vendors put error details there. */
static void
key_early_handler (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  KeyServer *ks = user_data;

  key_server_note_request (ks, msg);
  if (g_str_equal (path, "/reject")) {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "dg-error",
        "invalid credentials " LOG_KEY);
    soup_server_message_set_status (msg, SOUP_STATUS_UNAUTHORIZED, NULL);
    soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
        "invalid key " LOG_KEY, strlen ("invalid key " LOG_KEY));
  }
}

static void
key_ws_message (SoupWebsocketConnection *conn, gint type, GBytes *message,
    gpointer user_data)
{
  /* Whatever the client says, the key is refused, and echoed. */
  if (soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (
        conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "invalid key " LOG_KEY);
}

static void
key_ws_connection (SoupServer *server, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *conn, gpointer user_data)
{
  KeyServer *ks = user_data;

  g_ptr_array_add (ks->conns, g_object_ref (conn));
  g_signal_connect (conn, "message", G_CALLBACK (key_ws_message), ks);
  soup_websocket_connection_send_text (conn, "{\"error\":\"key " LOG_KEY "\"}");
  g_mutex_lock (&lock);
  ks->ws_connections++;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static void
key_http_handler (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  KeyServer *ks = user_data;

  key_server_note_request (ks, msg);
  g_mutex_lock (&lock);
  ks->http_requests++;
  g_mutex_unlock (&lock);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "x-error", "bad key " LOG_KEY);
  soup_server_message_set_status (msg, SOUP_STATUS_UNAUTHORIZED, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
      "{\"detail\":\"invalid api key " LOG_KEY "\"}",
      strlen ("{\"detail\":\"invalid api key " LOG_KEY "\"}"));
}

typedef struct
{
  GMainContext *context;
  GMainLoop *loop;
  KeyServer *ks;
  guint port; /* protected by lock */
} ServerThread;

static gpointer
key_server_thread (gpointer data)
{
  ServerThread *st = data;
  KeyServer *ks = st->ks;
  const gchar *protocols[] = { "token", NULL };
  GSList *uris;
  guint port;

  g_main_context_push_thread_default (st->context);
  ks->server = soup_server_new (NULL, NULL);
  ks->conns = g_ptr_array_new_with_free_func (g_object_unref);
  soup_server_add_early_handler (
      ks->server, "/ws", key_early_handler, ks, NULL);
  soup_server_add_early_handler (
      ks->server, "/reject", key_early_handler, ks, NULL);
  soup_server_add_websocket_handler (ks->server, "/ws", NULL,
      (gchar **)protocols, key_ws_connection, ks, NULL);
  soup_server_add_handler (ks->server, "/http", key_http_handler, ks, NULL);
  fail_unless (soup_server_listen_local (
      ks->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, NULL));
  uris = soup_server_get_uris (ks->server);
  port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  g_mutex_lock (&lock);
  st->port = port;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);

  g_main_loop_run (st->loop);

  g_clear_pointer (&ks->conns, g_ptr_array_unref);
  soup_server_disconnect (ks->server);
  g_clear_object (&ks->server);
  while (g_main_context_iteration (st->context, FALSE))
    ;
  g_main_context_pop_thread_default (st->context);
  return NULL;
}

typedef struct
{
  /* Protected by lock */
  guint opened, closed, failed, messages;
  gushort close_code;
  guint fail_status;
  guint http_status;
  guint http_done;
  GString *http_body;
  guint notified;
} Session;

static void
on_opened (GstVoiceClient *c, gboolean reconnected, gpointer data)
{
  Session *s = data;

  /* ElevenLabs' first message carries the key in JSON. */
  gst_voice_client_send_text (
      c, "{\"text\":\" \",\"xi_api_key\":\"" LOG_KEY "\"}");
  g_mutex_lock (&lock);
  s->opened++;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static void
on_message (GstVoiceClient *c, SoupWebsocketDataType type, GBytes *message,
    gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->messages++;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static void
on_closed (GstVoiceClient *c, gushort code, const gchar *reason,
    gboolean will_retry, gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->closed++;
  s->close_code = code;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static void
on_connect_failed (GstVoiceClient *c, guint status, SoupMessageHeaders *h,
    const GError *error, gboolean will_retry, gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->failed++;
  s->fail_status = status;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static void
on_notify (gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->notified++;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static gboolean
on_response (GstVoiceClient *c, guint id, guint status, SoupMessageHeaders *h,
    gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->http_status = status;
  g_mutex_unlock (&lock);
  return TRUE;
}

static void
on_chunk (GstVoiceClient *c, guint id, GBytes *bytes, gpointer data)
{
  Session *s = data;
  gsize size;
  const gchar *d = g_bytes_get_data (bytes, &size);

  g_mutex_lock (&lock);
  g_string_append_len (s->http_body, d, size);
  g_mutex_unlock (&lock);
}

static void
on_done (GstVoiceClient *c, guint id, const GError *error, gpointer data)
{
  Session *s = data;

  g_mutex_lock (&lock);
  s->http_done++;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);
}

static const GstVoiceClientCallbacks session_callbacks = {
  on_opened,
  on_message,
  on_closed,
  on_connect_failed,
  NULL,
};

static const GstVoiceHttpCallbacks http_callbacks = {
  on_response,
  on_chunk,
  on_done,
};

static SoupMessageHeaders *
key_headers (void)
{
  SoupMessageHeaders *h =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);

  soup_message_headers_append (h, "Authorization", "Token " LOG_KEY);
  soup_message_headers_append (h, "xi-api-key", LOG_KEY);
  return h;
}

/* The rule: with every category at MEMDUMP (so the client's wire
 * tracing is on), a WebSocket session and an HTTP request that carry the key
 * in every vendor place, against a server that echoes it in its close
 * reason, error headers and bodies, leave no trace of the key in the log;
 * and the test does not tell the library the key. */
GST_START_TEST (test_key_never_logged)
{
  KeyServer *ks = g_new0 (KeyServer, 1);
  ServerThread st = { 0 };
  Session s = { 0 };
  GThread *thread;
  GstVoiceClient *c, *c2;
  const gchar *protocols[] = { "token", LOG_KEY, NULL };
  SoupMessageHeaders *h;
  SoupMessage *msg;
  gchar *url;
  const gchar *leak;

  captured = g_string_new (NULL);
  gst_debug_remove_log_function (gst_debug_log_default);
  gst_debug_add_log_function (capture_log, NULL, NULL);
  gst_debug_set_active (TRUE);
  gst_debug_set_threshold_from_string ("*:9", TRUE);
  gst_debug_set_default_threshold (GST_LEVEL_MEMDUMP);

  st.ks = ks;
  st.context = g_main_context_new ();
  st.loop = g_main_loop_new (st.context, FALSE);
  thread = g_thread_new ("key-server", key_server_thread, &st);
  WAIT_UNTIL (st.port != 0);
  s.http_body = g_string_new (NULL);

  /* A WebSocket session that the server ends with the key in its reason. */
  c = gst_voice_client_new ("keyclient");
  gst_voice_client_set_callbacks (c, &session_callbacks, &s, on_notify);
  h = key_headers ();
  url = g_strdup_printf (
      "ws://127.0.0.1:%u/ws?api_key=" LOG_KEY "&model=nova", st.port);
  gst_voice_client_open_websocket (c, url, h, protocols, FALSE);
  g_free (url);
  WAIT_UNTIL (s.opened == 1);
  WAIT_UNTIL (s.closed == 1);
  fail_unless_equals_int (s.close_code, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION);
  fail_unless_equals_string (ks->authorization, "Token " LOG_KEY);
  fail_unless_equals_string (ks->xi_api_key, LOG_KEY);
  fail_unless_equals_string (ks->protocols, "token, " LOG_KEY);
  fail_unless (strstr (ks->query, LOG_KEY) != NULL);

  /* A handshake refused with the key in the response headers and body. */
  url = g_strdup_printf ("ws://127.0.0.1:%u/reject?api_key=" LOG_KEY, st.port);
  gst_voice_client_open_websocket (c, url, h, protocols, FALSE);
  g_free (url);
  WAIT_UNTIL (s.failed == 1);
  fail_unless_equals_int (s.fail_status, 401);

  /* An HTTP request refused the same way, by a second client. */
  c2 = gst_voice_client_new ("keyclient-http");
  url = g_strdup_printf (
      "http://127.0.0.1:%u/http?api_key=" LOG_KEY "&x=1", st.port);
  msg = soup_message_new (SOUP_METHOD_POST, url);
  g_free (url);
  soup_message_headers_append (soup_message_get_request_headers (msg),
      "Authorization", "Token " LOG_KEY);
  soup_message_headers_append (
      soup_message_get_request_headers (msg), "xi-api-key", LOG_KEY);
  gst_voice_client_http_request (c2, msg, &http_callbacks, &s, on_notify);
  WAIT_UNTIL (s.http_done == 1);
  fail_unless_equals_int (s.http_status, 401);
  fail_unless (strstr (s.http_body->str, LOG_KEY) != NULL);
  fail_unless_equals_int (ks->http_requests, 1);
  fail_unless_equals_string (ks->authorization, "Token " LOG_KEY);

  gst_voice_client_shutdown (c);
  gst_voice_client_shutdown (c2);
  gst_object_unref (c);
  gst_object_unref (c2);
  WAIT_UNTIL (s.notified == 2);
  g_main_loop_quit (st.loop);
  g_thread_join (thread);

  gst_debug_set_threshold_from_string ("*:0", TRUE);
  gst_debug_remove_log_function (capture_log);
  /* Leave the debug system as gst_init made it for gst_deinit at exit. */
  gst_debug_add_log_function (gst_debug_log_default, NULL, NULL);

  g_mutex_lock (&lock);
  /* The log is real: the tracing path ran and named the host. */
  fail_unless (captured->len > 10000, "only %" G_GSIZE_FORMAT " bytes logged",
      captured->len);
  fail_unless (strstr (captured->str, "127.0.0.1") != NULL);
  fail_unless (strstr (captured->str, "Sec-WebSocket-Protocol") != NULL,
      "the wire tracing did not run");
  fail_unless (strstr (captured->str, "***") != NULL);
  leak = strstr (captured->str, LOG_KEY);
  if (leak) {
    const gchar *start = leak;
    while (start > captured->str && start[-1] != '\n')
      start--;
    fail ("the key reached the log: %.*s", (int)(strchr (leak, '\n') - start),
        start);
  }
  /* Not even a good part of it. */
  fail_unless (strstr (captured->str, "4f9a8b7c6d5e4f3a") == NULL);
  g_mutex_unlock (&lock);

  soup_message_headers_unref (h);
  g_string_free (s.http_body, TRUE);
  g_mutex_lock (&lock);
  g_string_free (g_steal_pointer (&captured), TRUE);
  g_mutex_unlock (&lock);
  g_main_loop_unref (st.loop);
  g_main_context_unref (st.context);
  g_free (ks->authorization);
  g_free (ks->xi_api_key);
  g_free (ks->protocols);
  g_free (ks->query);
  g_free (ks);
}

GST_END_TEST;

static Suite *
voice_redact_suite (void)
{
  Suite *s = suite_create ("voice-redact");
  TCase *tc = tcase_create ("general");
  TCase *log = tcase_create ("log");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_redact_known_places);
  tcase_add_test (tc, test_redact_ordinary_text);
  tcase_add_test (tc, test_redact_registered_secrets);
  tcase_add_test (tc, test_redact_invalid_utf8);
  suite_add_tcase (s, log);
  tcase_add_test (log, test_key_never_logged);
  return s;
}

GST_CHECK_MAIN (voice_redact);

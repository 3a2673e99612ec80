/* voiceagent-emulator: the Deepgram live service, from the outside.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Starts the emulator ($VOICEAGENT_EMULATOR, or argv[1]) on a free port with the scripted engine and a
 * fixed key, talks to /v1/listen with libsoup's WebSocket client and checks
 * the handshake, the messages, the control messages, the timeouts, the error
 * closes, the faults, replay and (one case) pocketsphinx recognition.
 *
 * Usage: deepgram-protocol [EMULATOR] [GTest options]
 */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include "test-process.h"

#define KEY "dg-test-key"
#define RATE 16000

typedef struct
{
  GSubprocess *proc;
  guint port;
  gchar *dir;
} Emulator;

static const gchar *emulator_path;
static Emulator main_emu;
static SoupSession *session;

/* ---------- the emulator process ---------- */

static void
emulator_start (Emulator *e, const gchar *const *extra)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_autofree gchar *port_file = NULL;
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  e->dir = g_dir_make_tmp ("deepgram-test-XXXXXX", &error);
  g_assert_no_error (error);
  port_file = g_build_filename (e->dir, "port", NULL);
  g_ptr_array_add (argv, (gpointer)emulator_path);
  g_ptr_array_add (argv, "--port=0");
  g_ptr_array_add (argv, "--port-file");
  g_ptr_array_add (argv, port_file);
  g_ptr_array_add (argv, "--deepgram-key=" KEY);
  g_ptr_array_add (argv, "--stt-engine=scripted");
  g_ptr_array_add (argv, "--tts-engine=tone");
  for (guint i = 0; extra && extra[i]; i++)
    g_ptr_array_add (argv, (gpointer)extra[i]);
  g_ptr_array_add (argv, NULL);
  /* a failed assertion must not leave the emulator holding the test's
   * stdout (meson would wait for it): it dies with the test */
  e->proc = test_process_spawn (
      (const gchar *const *)argv->pdata, NULL, G_SUBPROCESS_FLAGS_NONE, &error);
  g_assert_no_error (error);

  while (g_get_monotonic_time () < deadline) {
    g_autofree gchar *text = NULL;
    if (g_file_get_contents (port_file, &text, NULL, NULL) &&
        strchr (text, '\n')) {
      e->port = atoi (text);
      break;
    }
    g_assert_nonnull (g_subprocess_get_identifier (e->proc));
    g_usleep (20000);
  }
  g_assert_cmpuint (e->port, >, 0);
}

/* Stops the emulator with SIGTERM; it must exit 0 (under ASan that also
 * means no leak). */
static void
emulator_stop (Emulator *e)
{
  g_autoptr (GError) error = NULL;
  g_autofree gchar *port_file = g_build_filename (e->dir, "port", NULL);

  g_subprocess_send_signal (e->proc, SIGTERM);
  g_subprocess_wait (e->proc, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (e->proc));
  g_assert_cmpint (g_subprocess_get_exit_status (e->proc), ==, 0);
  g_clear_object (&e->proc);
  g_unlink (port_file);
  g_rmdir (e->dir);
  g_clear_pointer (&e->dir, g_free);
}

/* ---------- a client ---------- */

typedef struct
{
  SoupMessage *msg;
  SoupWebsocketConnection *ws;
  GError *error;
  gboolean done; /* the handshake finished, well or not */
  GPtrArray *texts; /* (element-type utf8) every text frame */
  guint cursor; /* next text wait_type() looks at */
  gboolean closed;
  gushort close_code;
  gchar *close_reason;
} Client;

static void
on_text (SoupWebsocketConnection *ws, gint type, GBytes *b, Client *c)
{
  gsize len;
  const gchar *d = g_bytes_get_data (b, &len);

  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    g_ptr_array_add (c->texts, g_strndup (d, len));
}

static void
on_closed (SoupWebsocketConnection *ws, Client *c)
{
  c->closed = TRUE;
  c->close_code = soup_websocket_connection_get_close_code (ws);
  c->close_reason = g_strdup (soup_websocket_connection_get_close_data (ws));
}

static void
connected (GObject *src, GAsyncResult *res, gpointer data)
{
  Client *c = data;

  c->ws = soup_session_websocket_connect_finish (
      SOUP_SESSION (src), res, &c->error);
  c->done = TRUE;
  if (c->ws) {
    g_signal_connect (c->ws, "message", G_CALLBACK (on_text), c);
    g_signal_connect (c->ws, "closed", G_CALLBACK (on_closed), c);
  }
}

static gboolean
timeout_flag (gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until *@flag or @ms pass; returns *@flag. */
static gboolean
spin_until (gboolean *flag, guint ms)
{
  gboolean expired = FALSE;
  guint id = g_timeout_add (ms, timeout_flag, &expired);

  while (!*flag && !expired)
    g_main_context_iteration (NULL, TRUE);
  if (!expired)
    g_source_remove (id);
  return *flag;
}

static void
spin_for (guint ms)
{
  gboolean never = FALSE;

  spin_until (&never, ms);
}

static Client *
client_connect_full (Emulator *e, const gchar *query, const gchar *auth,
    const gchar *const *protocols)
{
  Client *c = g_new0 (Client, 1);
  g_autofree gchar *url = g_strdup_printf ("ws://127.0.0.1:%u/v1/listen%s%s",
      e->port, query ? "?" : "", query ? query : "");

  c->texts = g_ptr_array_new_with_free_func (g_free);
  c->msg = soup_message_new ("GET", url);
  if (auth)
    soup_message_headers_replace (
        soup_message_get_request_headers (c->msg), "Authorization", auth);
  soup_session_websocket_connect_async (session, c->msg, NULL,
      (gchar **)protocols, G_PRIORITY_DEFAULT, NULL, connected, c);
  g_assert_true (spin_until (&c->done, 10000));
  return c;
}

static Client *
client_connect (const gchar *query)
{
  Client *c = client_connect_full (&main_emu, query, "Token " KEY, NULL);

  g_assert_no_error (c->error);
  g_assert_nonnull (c->ws);
  return c;
}

static void
client_free (Client *c)
{
  if (c->ws) {
    g_signal_handlers_disconnect_by_data (c->ws, c);
    if (soup_websocket_connection_get_state (c->ws) ==
        SOUP_WEBSOCKET_STATE_OPEN)
      soup_websocket_connection_close (c->ws, 1000, NULL);
    g_object_unref (c->ws);
  }
  g_clear_error (&c->error);
  g_object_unref (c->msg);
  g_ptr_array_unref (c->texts);
  g_free (c->close_reason);
  g_free (c);
}

static JsonObject *
parse (const gchar *text)
{
  g_autoptr (JsonParser) p = json_parser_new ();
  g_autoptr (GError) error = NULL;
  JsonObject *o;

  json_parser_load_from_data (p, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p)));
  o = json_node_get_object (json_parser_get_root (p));
  return json_object_ref (o);
}

/* Waits for the next text frame of @type (skipping others); NULL when none
 * came within @ms. Free with json_object_unref(). */
static JsonObject *
wait_type (Client *c, const gchar *type, guint ms)
{
  gint64 deadline = g_get_monotonic_time () + ms * 1000;

  for (;;) {
    while (c->cursor < c->texts->len) {
      JsonObject *o = parse (c->texts->pdata[c->cursor++]);
      if (g_strcmp0 (json_object_get_string_member_with_default (o, "type", ""),
              type) == 0)
        return o;
      json_object_unref (o);
    }
    if (g_get_monotonic_time () >= deadline || c->closed)
      return NULL;
    g_main_context_iteration (NULL, FALSE);
    g_usleep (1000);
  }
}

static void
wait_closed (Client *c, guint ms)
{
  g_assert_true (spin_until (&c->closed, ms));
}

static void
send_json (Client *c, const gchar *text)
{
  soup_websocket_connection_send_text (c->ws, text);
}

/* ---------- audio ---------- */

/* @ms of a 300 Hz tone at -15 dBFS ("speech" for the energy detector) or of
 * digital silence, sent as linear16 16 kHz in 20 ms frames. */
static void
send_audio (Client *c, guint ms, gboolean tone)
{
  guint n = RATE * ms / 1000;
  g_autofree gint16 *pcm = g_new0 (gint16, n);
  static guint64 phase;

  for (guint i = 0; tone && i < n; i++)
    pcm[i] = 5800 * sin (2 * G_PI * 300 * (phase + i) / RATE);
  phase += n;
  for (guint off = 0; off < n; off += RATE / 50) {
    guint len = MIN (RATE / 50, n - off);
    soup_websocket_connection_send_binary (
        c->ws, pcm + off, len * sizeof (gint16));
  }
}

static gboolean
has_member_bool (JsonObject *o, const gchar *name, gboolean value)
{
  return json_object_has_member (o, name) &&
      json_object_get_boolean_member (o, name) == value;
}

static const gchar *
transcript_of (JsonObject *r)
{
  JsonObject *ch = json_object_get_object_member (r, "channel");
  JsonArray *alts = json_object_get_array_member (ch, "alternatives");

  return json_object_get_string_member (
      json_array_get_object_element (alts, 0), "transcript");
}

static JsonArray *
words_of (JsonObject *r)
{
  JsonObject *ch = json_object_get_object_member (r, "channel");
  JsonArray *alts = json_object_get_array_member (ch, "alternatives");

  return json_object_get_array_member (
      json_array_get_object_element (alts, 0), "words");
}

/* Waits for the next final Results. */
static JsonObject *
wait_final (Client *c, guint ms)
{
  JsonObject *o;

  while ((o = wait_type (c, "Results", ms))) {
    if (json_object_get_boolean_member (o, "is_final"))
      return o;
    json_object_unref (o);
  }
  return NULL;
}

/* ---------- handshake ---------- */

/* Authorization: Token KEY opens; CloseStream gives Metadata and close 1000. */
static void
test_auth_token (void)
{
  Client *c = client_connect ("encoding=linear16&sample_rate=16000");
  JsonObject *m;

  g_assert_nonnull (soup_message_headers_get_one (
      soup_message_get_response_headers (c->msg), "dg-request-id"));
  send_json (c, "{\"type\":\"CloseStream\"}");
  m = wait_type (c, "Metadata", 5000);
  g_assert_nonnull (m);
  g_assert_cmpstr (json_object_get_string_member (m, "request_id"), ==,
      soup_message_headers_get_one (
          soup_message_get_response_headers (c->msg), "dg-request-id"));
  g_assert_cmpstr (
      json_object_get_string_member (m, "transaction_key"), ==, "deprecated");
  g_assert_cmpint (
      strlen (json_object_get_string_member (m, "sha256")), ==, 64);
  g_assert_true (json_object_has_member (m, "created"));
  g_assert_cmpfloat (json_object_get_double_member (m, "duration"), ==, 0);
  g_assert_cmpint (json_object_get_int_member (m, "channels"), ==, 1);
  g_assert_cmpint (
      json_array_get_length (json_object_get_array_member (m, "models")), ==,
      1);
  g_assert_true (json_object_has_member (m, "model_info"));
  json_object_unref (m);
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 1000);
  client_free (c);
}

/* Authorization: Bearer JWT is accepted like a key. */
static void
test_auth_bearer (void)
{
  Client *c = client_connect_full (&main_emu, NULL, "Bearer " KEY, NULL);

  g_assert_no_error (c->error);
  client_free (c);
}

/* Sec-WebSocket-Protocol: token, KEY opens and the server picks "token". */
static void
test_auth_subprotocol (void)
{
  const gchar *protocols[] = { "token", KEY, NULL };
  Client *c = client_connect_full (&main_emu, NULL, NULL, protocols);

  g_assert_no_error (c->error);
  g_assert_cmpstr (soup_websocket_connection_get_protocol (c->ws), ==, "token");
  client_free (c);
}

/* A wrong key, in the header or the subprotocol, or none fails with 401. */
static void
test_auth_wrong (void)
{
  const gchar *protocols[] = { "token", "nope", NULL };
  Client *c = client_connect_full (&main_emu, NULL, "Token nope", NULL);

  g_assert_null (c->ws);
  g_assert_cmpuint (soup_message_get_status (c->msg), ==, 401);
  g_assert_cmpstr (soup_message_headers_get_one (
                       soup_message_get_response_headers (c->msg), "dg-error"),
      ==, "Invalid credentials.");
  client_free (c);

  c = client_connect_full (&main_emu, NULL, NULL, protocols);
  g_assert_cmpuint (soup_message_get_status (c->msg), ==, 401);
  client_free (c);

  c = client_connect_full (&main_emu, NULL, NULL, NULL);
  g_assert_cmpuint (soup_message_get_status (c->msg), ==, 401);
  client_free (c);
}

/* Bad query parameters fail the handshake with 400. */
static void
test_bad_query (void)
{
  const gchar *bad[] = { "encoding=opus&sample_rate=48000", "encoding=linear16",
    "interim_results=maybe", "endpointing=soon", NULL };

  for (guint i = 0; bad[i]; i++) {
    Client *c = client_connect_full (&main_emu, bad[i], "Token " KEY, NULL);
    g_assert_null (c->ws);
    g_assert_cmpuint (soup_message_get_status (c->msg), ==, 400);
    client_free (c);
  }
}

/* ---------- messages (scripted engine) ---------- */

/* One utterance: SpeechStarted, interim and final Results with Deepgram's
 * fields, speech_final at the endpoint, UtteranceEnd, then Metadata. */
static void
test_scripted_utterance (void)
{
  Client *c = client_connect (
      "encoding=linear16&sample_rate=16000"
      "&channels=1&interim_results=true&vad_events=true"
      "&utterance_end_ms=1000&punctuate=true&model=nova-3"
      "&keyterm=pizza&keyterm=cheese&emu_transcript=hello%20world");
  JsonObject *o, *md;
  JsonArray *words;

  send_audio (c, 500, FALSE);
  send_audio (c, 1000, TRUE);
  send_audio (c, 1300, FALSE);

  o = wait_type (c, "SpeechStarted", 5000);
  g_assert_nonnull (o);
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "timestamp"), 0.5, 0.02);
  g_assert_cmpint (json_array_get_int_element (
                       json_object_get_array_member (o, "channel"), 0),
      ==, 0);
  json_object_unref (o);

  o = wait_type (c, "Results", 5000);
  g_assert_nonnull (o);
  g_assert_true (has_member_bool (o, "is_final", FALSE));
  g_assert_true (has_member_bool (o, "speech_final", FALSE));
  g_assert_cmpstr (transcript_of (o), ==, "Hello");
  json_object_unref (o);

  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_true (has_member_bool (o, "speech_final", TRUE));
  g_assert_true (has_member_bool (o, "from_finalize", FALSE));
  g_assert_cmpstr (transcript_of (o), ==, "Hello world.");
  g_assert_cmpfloat (json_object_get_double_member (o, "start"), ==, 0);
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "duration"), 1.7, 0.05);
  g_assert_cmpint (
      json_array_get_length (json_object_get_array_member (o, "channel_index")),
      ==, 2);
  md = json_object_get_object_member (o, "metadata");
  g_assert_true (json_object_has_member (md, "request_id"));
  g_assert_true (json_object_has_member (md, "model_uuid"));
  g_assert_cmpstr (
      json_object_get_string_member (
          json_object_get_object_member (md, "model_info"), "arch"),
      ==, "nova-3");
  words = words_of (o);
  g_assert_cmpuint (json_array_get_length (words), ==, 2);
  {
    JsonObject *w0 = json_array_get_object_element (words, 0);
    JsonObject *w1 = json_array_get_object_element (words, 1);
    g_assert_cmpstr (json_object_get_string_member (w0, "word"), ==, "hello");
    g_assert_cmpstr (
        json_object_get_string_member (w0, "punctuated_word"), ==, "Hello");
    g_assert_cmpstr (
        json_object_get_string_member (w1, "punctuated_word"), ==, "world.");
    g_assert_cmpfloat_with_epsilon (
        json_object_get_double_member (w0, "start"), 0.5, 0.02);
    g_assert_cmpfloat_with_epsilon (
        json_object_get_double_member (w1, "end"), 1.5, 0.02);
    g_assert_cmpfloat (
        json_object_get_double_member (w0, "confidence"), >, 0.5);
  }
  json_object_unref (o);

  o = wait_type (c, "UtteranceEnd", 5000);
  g_assert_nonnull (o);
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "last_word_end"), 1.5, 0.02);
  json_object_unref (o);

  send_json (c, "{\"type\":\"CloseStream\"}");
  o = wait_type (c, "Metadata", 5000);
  g_assert_nonnull (o);
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "duration"), 2.8, 0.001);
  json_object_unref (o);
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 1000);
  client_free (c);
}

/* Without interim_results only finals come; without punctuate no
 * punctuated_word; endpointing=false gives is_final without speech_final;
 * the script's utterances are used in order. */
static void
test_scripted_plain (void)
{
  Client *c =
      client_connect ("encoding=linear16&sample_rate=16000"
                      "&endpointing=false&emu_transcript=one%20two|three");
  JsonObject *o;

  send_audio (c, 300, TRUE);
  send_audio (c, 1200, FALSE);
  send_audio (c, 300, TRUE);
  send_audio (c, 1200, FALSE);
  o = wait_type (c, "Results", 5000);
  g_assert_nonnull (o);
  g_assert_true (has_member_bool (o, "is_final", TRUE));
  g_assert_true (has_member_bool (o, "speech_final", FALSE));
  g_assert_cmpstr (transcript_of (o), ==, "one two");
  g_assert_false (json_object_has_member (
      json_array_get_object_element (words_of (o), 0), "punctuated_word"));
  json_object_unref (o);
  o = wait_type (c, "Results", 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (transcript_of (o), ==, "three");
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "start"), 1.3, 0.02);
  json_object_unref (o);
  g_assert_null (wait_type (c, "SpeechStarted", 100));
  client_free (c);
}

/* Finalize flushes the open utterance as a final marked from_finalize; with
 * nothing open it still answers with an empty one, also on a WAV stream
 * whose header has not come yet. */
static void
test_finalize (void)
{
  Client *c = client_connect ("encoding=linear16&sample_rate=16000"
                              "&emu_transcript=flush+me");
  JsonObject *o;

  send_audio (c, 600, TRUE);
  send_json (c, "{\"type\":\"Finalize\"}");
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_true (has_member_bool (o, "from_finalize", TRUE));
  g_assert_cmpstr (transcript_of (o), ==, "flush me");
  json_object_unref (o);

  send_json (c, "{\"type\":\"Finalize\"}");
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_true (has_member_bool (o, "from_finalize", TRUE));
  g_assert_cmpstr (transcript_of (o), ==, "");
  json_object_unref (o);
  client_free (c);

  /* a WAV stream (8 kHz) finalized before its header, then after speech */
  c = client_connect ("emu_transcript=wav%20words");
  send_json (c, "{\"type\":\"Finalize\"}");
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (transcript_of (o), ==, "");
  json_object_unref (o);
  {
    guint8 hdr[44] = "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0"
                     "\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\0\0\0";
    gint16 pcm[4800];
    for (guint i = 0; i < G_N_ELEMENTS (pcm); i++)
      pcm[i] = 5800 * sin (2 * G_PI * 300 * i / 8000);
    soup_websocket_connection_send_binary (c->ws, hdr, sizeof hdr);
    soup_websocket_connection_send_binary (c->ws, pcm, sizeof pcm);
  }
  send_json (c, "{\"type\":\"Finalize\"}");
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (transcript_of (o), ==, "wav words");
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "duration"), 0.6, 0.001);
  json_object_unref (o);
  client_free (c);
}

/* CloseStream with speech still open: its final result, then Metadata, then
 * close 1000. The legacy empty binary frame does the same. */
static void
test_close_stream (void)
{
  for (guint legacy = 0; legacy < 2; legacy++) {
    Client *c = client_connect ("encoding=linear16&sample_rate=16000"
                                "&emu_transcript=last%20words");
    JsonObject *o;

    send_audio (c, 600, TRUE);
    if (legacy)
      soup_websocket_connection_send_binary (c->ws, "", 0);
    else
      send_json (c, "{\"type\":\"CloseStream\"}");
    o = wait_final (c, 5000);
    g_assert_nonnull (o);
    g_assert_cmpstr (transcript_of (o), ==, "last words");
    g_assert_true (has_member_bool (o, "from_finalize", FALSE));
    json_object_unref (o);
    o = wait_type (c, "Metadata", 5000);
    g_assert_nonnull (o);
    json_object_unref (o);
    wait_closed (c, 5000);
    g_assert_cmpuint (c->close_code, ==, 1000);
    client_free (c);
  }
}

/* A WAV container without `encoding`, stereo, and mu-law 8 kHz decode. */
static void
test_encodings (void)
{
  Client *c = client_connect ("emu_transcript=from%20wav");
  guint8 hdr[44] = "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0"
                   "\x80\x3e\0\0\0\xfa\0\0\x04\0\x10\0data\xff\xff\xff\xff";
  guint n = 16000;
  g_autofree gint16 *st = g_new0 (gint16, 2 * n);
  g_autofree guint8 *mu = g_new (guint8, 8000);
  JsonObject *o;

  for (guint i = 0; i < n / 2; i++)
    st[2 * i] = st[2 * i + 1] = 5800 * sin (2 * G_PI * 300 * i / RATE);
  soup_websocket_connection_send_binary (c->ws, hdr, 20);
  soup_websocket_connection_send_binary (c->ws, hdr + 20, 24);
  soup_websocket_connection_send_binary (c->ws, st, 2 * n * 2);
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (transcript_of (o), ==, "from wav");
  json_object_unref (o);
  client_free (c);

  c = client_connect ("encoding=mulaw&sample_rate=8000"
                      "&emu_transcript=from%20mulaw");
  for (guint i = 0; i < 8000; i++) {
    /* 0x8f/0x0f: about +-16000, a square wave; 0xff is silence */
    mu[i] = i < 4000 ? ((i / 8) % 2 ? 0x8f : 0x0f) : 0xff;
  }
  soup_websocket_connection_send_binary (c->ws, mu, 8000);
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (transcript_of (o), ==, "from mulaw");
  g_assert_cmpfloat_with_epsilon (
      json_object_get_double_member (o, "duration"), 0.7, 0.02);
  json_object_unref (o);
  client_free (c);
}

/* ---------- timeouts and errors ---------- */

/* No audio and no message for the timeout closes 1011 NET-0001; KeepAlive
 * holds it open. */
static void
test_idle_timeout (void)
{
  Client *c = client_connect ("encoding=linear16&sample_rate=16000"
                              "&emu_timeout_ms=1000");
  gint64 t0;

  for (guint i = 0; i < 6; i++) {
    spin_for (250);
    g_assert_false (c->closed);
    send_json (c, "{\"type\":\"KeepAlive\"}");
  }
  t0 = g_get_monotonic_time ();
  wait_closed (c, 3000);
  g_assert_cmpuint (c->close_code, ==, 1011);
  g_assert_cmpstr (c->close_reason, ==, "NET-0001");
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 900000);
  client_free (c);
}

/* Bytes that are no audio (no WAV header without `encoding`) close 1008
 * DATA-0000; so does a text frame that is not JSON, after an Error
 * message. */
static void
test_bad_data (void)
{
  Client *c = client_connect (NULL);
  JsonObject *o;

  soup_websocket_connection_send_binary (c->ws, "this is not audio", 17);
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 1008);
  g_assert_cmpstr (c->close_reason, ==, "DATA-0000");
  client_free (c);

  c = client_connect ("encoding=linear16&sample_rate=16000");
  send_json (c, "KeepAlive please");
  o = wait_type (c, "Error", 5000);
  g_assert_nonnull (o);
  g_assert_cmpstr (
      json_object_get_string_member (o, "variant"), ==, "SchemaError");
  json_object_unref (o);
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 1008);
  g_assert_cmpstr (c->close_reason, ==, "DATA-0000");
  client_free (c);
}

/* ---------- faults, latency, events ---------- */

static gchar *
http (Emulator *e, const gchar *method, const gchar *path, const gchar *body)
{
  g_autofree gchar *url =
      g_strdup_printf ("http://127.0.0.1:%u%s", e->port, path);
  g_autoptr (SoupMessage) msg = soup_message_new (method, url);
  g_autoptr (GBytes) reply = NULL;
  g_autoptr (GError) error = NULL;

  if (body) {
    g_autoptr (GBytes) b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
  }
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  return g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
}

static gboolean
json_validate_text (const gchar *text)
{
  g_autoptr (JsonParser) p = json_parser_new ();

  return json_parser_load_from_data (p, text, -1, NULL);
}

/* Faults from emu_fault: HTTP status with Retry-After, close after N
 * messages with a code, one malformed frame, stall. */
static void
test_faults (void)
{
  Client *c = client_connect_full (
      &main_emu, "emu_fault=http:429:retry=3", "Token " KEY, NULL);
  JsonObject *o;

  g_assert_cmpuint (soup_message_get_status (c->msg), ==, 429);
  g_assert_cmpstr (
      soup_message_headers_get_one (
          soup_message_get_response_headers (c->msg), "Retry-After"),
      ==, "3");
  client_free (c);

  c = client_connect ("encoding=linear16&sample_rate=16000"
                      "&emu_fault=close:messages=1:code=4001:reason=bye");
  send_json (c, "{\"type\":\"Finalize\"}");
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 4001);
  g_assert_cmpstr (c->close_reason, ==, "bye");
  g_assert_cmpuint (c->texts->len, ==, 1);
  client_free (c);

  c = client_connect ("encoding=linear16&sample_rate=16000"
                      "&emu_fault=malformed");
  send_json (c, "{\"type\":\"Finalize\"}");
  while (c->texts->len < 2 && !c->closed)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (json_validate_text (c->texts->pdata[0]));
  c->cursor = 1;
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  json_object_unref (o);
  client_free (c);

  c = client_connect ("encoding=linear16&sample_rate=16000"
                      "&emu_timeout_ms=200&emu_fault=stall");
  send_json (c, "{\"type\":\"Finalize\"}");
  spin_for (600);
  g_assert_false (c->closed);
  g_assert_cmpuint (c->texts->len, ==, 0);
  client_free (c);

  c = client_connect ("encoding=linear16&sample_rate=16000"
                      "&emu_fault=close:ms=200:code=1011");
  wait_closed (c, 5000);
  g_assert_cmpuint (c->close_code, ==, 1011);
  client_free (c);
}

/* The STT latency set on the control endpoint delays finals after the
 * endpoint; Finalize, KeepAlive and CloseStream are recorded as events. */
static void
test_latency_and_events (void)
{
  g_autofree gchar *r =
      http (&main_emu, "POST", "/emulator/latency", "{\"stt_final_ms\":400}");
  g_autofree gchar *events = NULL;
  Client *c = client_connect ("encoding=linear16&sample_rate=16000"
                              "&emu_transcript=slow");
  JsonObject *o;
  gint64 t0;

  send_audio (c, 400, TRUE);
  send_json (c, "{\"type\":\"KeepAlive\"}");
  t0 = g_get_monotonic_time ();
  send_audio (c, 400, FALSE);
  o = wait_final (c, 5000);
  g_assert_nonnull (o);
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 380000);
  json_object_unref (o);
  g_free (
      http (&main_emu, "POST", "/emulator/latency", "{\"stt_final_ms\":0}"));

  send_json (c, "{\"type\":\"Finalize\"}");
  o = wait_final (c, 5000);
  json_object_unref (o);
  send_json (c, "{\"type\":\"CloseStream\"}");
  wait_closed (c, 5000);
  client_free (c);

  events = http (&main_emu, "GET", "/emulator/events?service=deepgram", NULL);
  g_assert_nonnull (strstr (events, "keepalive"));
  g_assert_nonnull (strstr (events, "finalize"));
  g_assert_nonnull (strstr (events, "close-stream"));
}

/* ---------- replay ---------- */

/* --deepgram-replay sends the recorded lines verbatim, paced by the audio
 * received, and its Metadata at CloseStream; --deepgram-timeout-ms. */
static void
test_replay (void)
{
  Emulator e = { 0 };
  g_autofree gchar *dir = g_dir_make_tmp ("deepgram-replay-XXXXXX", NULL);
  g_autofree gchar *file = g_build_filename (dir, "replay.jsonl", NULL);
  g_autofree gchar *arg = g_strconcat ("--deepgram-replay=", file, NULL);
  const gchar *extra[] = { arg, "-q", "--deepgram-timeout-ms=300", NULL };
  const gchar *lines[] = {
    "{\"type\":\"SpeechStarted\",\"channel\":[0,1],\"timestamp\":0.2}",
    "{\"type\":\"Results\",\"channel_index\":[0,1],\"duration\":1.0,"
    "\"start\":0.0,\"is_final\":true,\"speech_final\":true,"
    "\"channel\":{\"alternatives\":[{\"transcript\":\"recorded words\","
    "\"confidence\":0.98,\"words\":[]}]},\"metadata\":{\"request_id\":"
    "\"r\",\"model_info\":{\"name\":\"n\",\"version\":\"v\",\"arch\":"
    "\"a\"},\"model_uuid\":\"u\"},\"from_finalize\":false}",
    "{\"type\":\"Metadata\",\"transaction_key\":\"deprecated\","
    "\"request_id\":\"recorded\",\"sha256\":\"x\",\"created\":\"y\","
    "\"duration\":1.0,\"channels\":1}",
    NULL
  };
  g_autofree gchar *text = g_strjoinv ("\n", (gchar **)lines);
  Client *c;

  g_assert_true (g_file_set_contents (file, text, -1, NULL));
  emulator_start (&e, extra);
  c = client_connect_full (
      &e, "encoding=linear16&sample_rate=16000", "Token " KEY, NULL);
  g_assert_no_error (c->error);
  send_audio (c, 500, FALSE);
  while (c->texts->len < 1)
    g_main_context_iteration (NULL, TRUE);
  spin_for (200); /* the Results line needs audio up to 1.0 s */
  g_assert_cmpuint (c->texts->len, ==, 1);
  g_assert_cmpstr (c->texts->pdata[0], ==, lines[0]);
  send_audio (c, 500, FALSE);
  while (c->texts->len < 2)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (c->texts->pdata[1], ==, lines[1]);
  send_json (c, "{\"type\":\"CloseStream\"}");
  wait_closed (c, 5000);
  g_assert_cmpuint (c->texts->len, ==, 3);
  g_assert_cmpstr (c->texts->pdata[2], ==, lines[2]);
  g_assert_cmpuint (c->close_code, ==, 1000);
  client_free (c);

  /* --deepgram-timeout-ms sets the NET-0001 timeout for every connection */
  c = client_connect_full (
      &e, "encoding=linear16&sample_rate=16000", "Token " KEY, NULL);
  g_assert_no_error (c->error);
  wait_closed (c, 3000);
  g_assert_cmpuint (c->close_code, ==, 1011);
  g_assert_cmpstr (c->close_reason, ==, "NET-0001");
  client_free (c);
  emulator_stop (&e);
  g_unlink (file);
  g_rmdir (dir);
}

/* ---------- shutdown ---------- */

/* SIGTERM with live sessions of both engines (a pocketsphinx worker busy
 * decoding, the preloaded decoder in use or pooled) closes them and
 * exits 0, which under ASan means nothing leaked. */
static void
test_shutdown_live (void)
{
  Emulator e = { 0 };
  const gchar *extra[] = { "-q", "--stt-engine=pocketsphinx", "--stt-preload=2",
    NULL };
  Client *c1, *c2;

  emulator_start (&e, extra);
  c1 = client_connect_full (&e,
      "encoding=linear16&sample_rate=16000&emu_engine=pocketsphinx",
      "Token " KEY, NULL);
  c2 = client_connect_full (&e,
      "encoding=linear16&sample_rate=16000&emu_engine=scripted&emu_transcript=x",
      "Token " KEY, NULL);
  g_assert_no_error (c1->error);
  g_assert_no_error (c2->error);
  send_audio (c1, 2000, TRUE);
  send_audio (c2, 300, TRUE);
  spin_for (100);
  emulator_stop (&e);
  wait_closed (c1, 5000);
  wait_closed (c2, 5000);
  client_free (c1);
  client_free (c2);
}

/* ---------- pocketsphinx ---------- */

static guint
count_words (const gchar *transcript, const gchar *const *expected)
{
  g_autofree gchar *lower = g_utf8_strdown (transcript, -1);
  g_auto (GStrv) got = g_strsplit_set (lower, " .,?!", -1);
  guint n = 0;

  for (guint i = 0; expected[i]; i++)
    if (g_strv_contains ((const gchar *const *)got, expected[i]))
      n++;
  return n;
}

/* Streams @wav (16 kHz mono WAV with a 44-byte header) in 100 ms chunks to
 * pocketsphinx and returns the final transcripts joined (free it); checks
 * word timings and counts interim results into @interims. */
static gchar *
recognise (const gchar *wav, gsize len, guint *interims)
{
  gdouble duration = (len - 44) / 2.0 / RATE;
  Client *c = client_connect ("encoding=linear16&sample_rate=16000"
                              "&interim_results=true&emu_engine=pocketsphinx");
  GString *all = g_string_new (NULL);
  JsonObject *o;

  for (gsize off = 44; off < len; off += 3200)
    soup_websocket_connection_send_binary (
        c->ws, wav + off, MIN (3200, len - off));
  send_audio (c, 500, FALSE);
  send_json (c, "{\"type\":\"CloseStream\"}");
  while ((o = wait_type (c, "Results", 30000))) {
    if (json_object_get_boolean_member (o, "is_final")) {
      JsonArray *words = words_of (o);
      gdouble start = json_object_get_double_member (o, "start");
      gdouble end = start + json_object_get_double_member (o, "duration");
      g_string_append_printf (all, "%s ", transcript_of (o));
      for (guint i = 0; i < json_array_get_length (words); i++) {
        JsonObject *w = json_array_get_object_element (words, i);
        gdouble ws = json_object_get_double_member (w, "start");
        gdouble we = json_object_get_double_member (w, "end");
        g_assert_cmpfloat (ws, <, we);
        g_assert_cmpfloat (ws, >=, start - 0.001);
        g_assert_cmpfloat (we, <=, MIN (end, duration) + 0.011);
      }
    } else {
      (*interims)++;
    }
    json_object_unref (o);
  }
  wait_closed (c, 10000);
  g_assert_cmpuint (c->close_code, ==, 1000);
  client_free (c);
  return g_string_free (all, FALSE);
}

/* An espeak-ng sentence (data/deepgram-pizza.wav) to pocketsphinx: most of
 * its words come back in final results, with interim results before them
 * and word timings inside the results and the audio. A second time, on the
 * decoder the first connection returned to the pool, the same words come
 * back. */
static void
test_pocketsphinx (void)
{
  const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");
  g_autofree gchar *path = g_build_filename (src ? src : ".", "tests",
      "emulator", "check", "data", "deepgram-pizza.wav", NULL);
  const gchar *expected[] = { "want", "order", "large", "pizza", "cheese",
    NULL };
  g_autofree gchar *wav = NULL;
  g_autofree gchar *first = NULL, *second = NULL;
  gsize len;
  guint interims = 0;

  g_assert_true (g_file_get_contents (path, &wav, &len, NULL));
  first = recognise (wav, len, &interims);
  g_test_message (
      "pocketsphinx heard: %s (%u interim results)", first, interims);
  g_assert_cmpuint (count_words (first, expected), >=, 3);
  g_assert_cmpuint (interims, >=, 1);
  second = recognise (wav, len, &interims);
  g_assert_cmpstr (second, ==, first);
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  emulator_path = argc > 1 ? argv[1] : g_getenv ("VOICEAGENT_EMULATOR");
  if (!emulator_path) {
    g_printerr ("usage: %s EMULATOR (or set VOICEAGENT_EMULATOR)\n", argv[0]);
    return 2;
  }
  session = soup_session_new ();
  emulator_start (&main_emu, (const gchar *[]){ "-q", NULL });

  g_test_add_func ("/deepgram/auth/token", test_auth_token);
  g_test_add_func ("/deepgram/auth/bearer", test_auth_bearer);
  g_test_add_func ("/deepgram/auth/subprotocol", test_auth_subprotocol);
  g_test_add_func ("/deepgram/auth/wrong", test_auth_wrong);
  g_test_add_func ("/deepgram/handshake/bad-query", test_bad_query);
  g_test_add_func ("/deepgram/scripted/utterance", test_scripted_utterance);
  g_test_add_func ("/deepgram/scripted/plain", test_scripted_plain);
  g_test_add_func ("/deepgram/finalize", test_finalize);
  g_test_add_func ("/deepgram/close-stream", test_close_stream);
  g_test_add_func ("/deepgram/encodings", test_encodings);
  g_test_add_func ("/deepgram/idle-timeout", test_idle_timeout);
  g_test_add_func ("/deepgram/bad-data", test_bad_data);
  g_test_add_func ("/deepgram/faults", test_faults);
  g_test_add_func ("/deepgram/latency-and-events", test_latency_and_events);
  g_test_add_func ("/deepgram/replay", test_replay);
  g_test_add_func ("/deepgram/pocketsphinx", test_pocketsphinx);
  g_test_add_func ("/deepgram/shutdown-live", test_shutdown_live);
  ret = g_test_run ();

  emulator_stop (&main_emu);
  g_object_unref (session);
  return ret;
}

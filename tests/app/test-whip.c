/* WHIP/WHEP conformance of the voiceagent server (RFC 9725 and our
 * documented extensions), against the real binary with a test template
 * that echoes the caller's voice.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "whip-caller.h"

static EmuProcess *server;
static SoupSession *http;

typedef struct
{
  guint status;
  SoupMessageHeaders *headers;
  gchar *body;
} Reply;

static void
reply_clear (Reply *r)
{
  g_clear_pointer (&r->headers, soup_message_headers_unref);
  g_clear_pointer (&r->body, g_free);
}

static EmuProcess *
start_server (const gchar *const *extra)
{
  const gchar *exe = g_getenv ("VOICEAGENT_BIN");
  gchar *pipelines = g_build_filename (
      g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests", "app", "pipelines", NULL);
  gchar *db = g_build_filename (g_get_tmp_dir (), "voiceagent-test.db", NULL);
  GPtrArray *args = g_ptr_array_new ();
  EmuProcess *p;

  g_ptr_array_add (args, (gpointer) "--pipelines");
  g_ptr_array_add (args, pipelines);
  g_ptr_array_add (args, (gpointer) "--database");
  g_ptr_array_add (args, db);
  g_ptr_array_add (args, (gpointer) "--stun-server");
  g_ptr_array_add (args, (gpointer) "stun://127.0.0.1:3478");
  g_ptr_array_add (args, (gpointer) "--ice-timeout-ms");
  g_ptr_array_add (args, (gpointer) "1000");
  g_ptr_array_add (args, (gpointer) "--drain-timeout");
  g_ptr_array_add (args, (gpointer) "1");
  for (; extra && *extra; extra++)
    g_ptr_array_add (args, (gpointer)*extra);
  g_ptr_array_add (args, NULL);
  fail_unless (exe != NULL, "VOICEAGENT_BIN is not set");
  p = emu_process_start_program (exe, (const gchar *const *)args->pdata);
  g_ptr_array_free (args, TRUE);
  g_free (pipelines);
  g_free (db);
  fail_unless (p != NULL, "voiceagent did not start");
  return p;
}

static void
setup (void)
{
  /* Keys are set so the server does not start an emulator: the echo
   * template uses no service. */
  g_setenv ("DEEPGRAM_API_KEY", "test-key-dg", TRUE);
  g_setenv ("ELEVENLABS_API_KEY", "test-key-el", TRUE);
  g_setenv ("LLM_API_KEY", "test-key-llm", TRUE);
  server = start_server (NULL);
  http = soup_session_new ();
}

static void
teardown (void)
{
  emu_process_stop (server);
  g_clear_object (&http);
}

static Reply
request (EmuProcess *srv, const gchar *method, const gchar *path,
    const gchar *type, const gchar *body, const gchar *const *headers)
{
  gchar *url = g_strconcat (emu_process_get_http_url (srv), path, NULL);
  SoupMessage *msg = soup_message_new (method, url);
  Reply r = { 0 };
  GBytes *bytes;

  if (body) {
    GBytes *b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, type, b);
    g_bytes_unref (b);
  }
  for (; headers && headers[0] && headers[1]; headers += 2)
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), headers[0], headers[1]);
  bytes = soup_session_send_and_read (http, msg, NULL, NULL);
  r.status = soup_message_get_status (msg);
  r.headers =
      soup_message_headers_ref (soup_message_get_response_headers (msg));
  if (bytes)
    r.body =
        g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_clear_pointer (&bytes, g_bytes_unref);
  g_object_unref (msg);
  g_free (url);
  return r;
}

static const gchar *
header (Reply *r, const gchar *name)
{
  return soup_message_headers_get_one (r->headers, name);
}

static WhipCaller *
new_caller (EmuProcess *srv, const gchar *path, WhipCallerOptions *o)
{
  gchar *url = g_strconcat (emu_process_get_http_url (srv), path, NULL);
  WhipCaller *c;

  o->url = url;
  c = whip_caller_new (o);
  g_free (url);
  return c;
}

/* The operator's credentials (the test environment's admin token). */
static const gchar *const admin[] = { "Authorization",
  "Bearer test-admin-token", NULL };

/* A valid offer for calls that need no media (the peer never connects). */
static const gchar audio_offer[] =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n";

/* OPTIONS answers CORS preflights and advertises what POST takes. */
GST_START_TEST (test_options)
{
  Reply r = request (server, "OPTIONS", "/whip", NULL, NULL, NULL);

  fail_unless (r.status == 200 || r.status == 204);
  fail_unless_equals_string (header (&r, "Accept-Post"), "application/sdp");
  fail_unless (strstr (header (&r, "Access-Control-Allow-Methods"), "POST"));
  fail_unless (
      strstr (header (&r, "Access-Control-Expose-Headers"), "Location"));
  fail_unless (strstr (header (&r, "Access-Control-Expose-Headers"), "ETag"));
  fail_unless (strstr (header (&r, "Access-Control-Expose-Headers"), "Link"));
  fail_unless (strstr (header (&r, "Link"), "rel=\"ice-server\""));
  reply_clear (&r);
  r = request (server, "OPTIONS", "/calls/whatever", NULL, NULL, NULL);
  fail_unless (strstr (header (&r, "Access-Control-Allow-Methods"), "PATCH"));
  reply_clear (&r);
}

GST_END_TEST;

/* Bad input gets the documented status and a JSON reason. */
GST_START_TEST (test_bad_input)
{
  gchar *big = g_strnfill (70000, 'a');
  const gchar video_only[] =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
      "a=rtpmap:96 VP8/90000\r\n";
  Reply r;

  r = request (server, "POST", "/whip", "text/plain", "v=0", NULL);
  fail_unless_equals_int (r.status, 415);
  fail_unless (strstr (r.body, "\"error\""));
  reply_clear (&r);
  r = request (server, "POST", "/whip", "application/sdp", "hello", NULL);
  fail_unless_equals_int (r.status, 400);
  reply_clear (&r);
  r = request (server, "POST", "/whip", "application/sdp", video_only, NULL);
  fail_unless_equals_int (r.status, 422);
  reply_clear (&r);
  r = request (server, "POST", "/whip", "application/sdp", big, NULL);
  fail_unless_equals_int (r.status, 413);
  reply_clear (&r);
  r = request (server, "POST", "/whip/nosuchagent", "application/sdp",
      audio_offer, NULL);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  r = request (server, "DELETE", "/calls/0123456789abcdef", NULL, NULL, admin);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  r = request (server, "POST", "/whep/0123456789abcdef", "application/sdp",
      audio_offer, admin);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  g_free (big);
}

GST_END_TEST;

/* GET on the endpoint and on a session are 2xx without a body. */
GST_START_TEST (test_get)
{
  Reply r = request (server, "GET", "/whip", NULL, NULL, NULL);

  fail_unless (r.status >= 200 && r.status < 300);
  fail_unless (r.body == NULL || *r.body == '\0');
  reply_clear (&r);
  r = request (server, "GET", "/healthz", NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 200);
  reply_clear (&r);
  r = request (server, "GET", "/readyz", NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 200);
  reply_clear (&r);
}

GST_END_TEST;

/* A browser-style sendrecv call: 201 with every required header, an answer
 * with candidates and end-of-candidates, sendrecv, and the agent's audio
 * (here the echo) comes back on the same connection. */
GST_START_TEST (test_call_sendrecv)
{
  WhipCallerOptions o = { .tone_hz = 440, .data_channel = TRUE };
  WhipCaller *c = new_caller (server, "/whip", &o);
  GError *error = NULL;
  const gchar *answer;
  Reply r;

  fail_unless_equals_int (whip_caller_connect (c, &error), 201);
  answer = whip_caller_get_answer (c);
  fail_unless (strstr (answer, "a=candidate:"));
  fail_unless (strstr (answer, "a=end-of-candidates"));
  fail_unless (strstr (answer, "a=sendrecv"));
  fail_unless (whip_caller_get_etag (c) != NULL);
  fail_unless (g_str_has_prefix (
      whip_caller_get_session_url (c), emu_process_get_http_url (server)));
  fail_unless (whip_caller_wait_audio (c, 0.05, 15000),
      "no audio came back (peak RMS %f)", whip_caller_get_peak_rms (c));

  r = request (server, "GET", "/metrics", NULL, NULL, admin);
  fail_unless (strstr (r.body, "voiceagent_calls_active 1"));
  reply_clear (&r);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
}

GST_END_TEST;

/* A caller that offers without candidates and PATCHes them as it gathers
 * (RFC 9725 §4.3.1), ignoring the answer's: ICE comes up only because the
 * server took them, and the audio comes back. */
GST_START_TEST (test_call_trickled)
{
  WhipCallerOptions o = {
    .tone_hz = 440, .trickle = TRUE, .ignore_answer_candidates = TRUE
  };
  WhipCaller *c = new_caller (server, "/whip", &o);
  GError *error = NULL;
  guint status = whip_caller_connect (c, &error);

  fail_unless (
      status == 201, "HTTP %u: %s", status, error ? error->message : "");
  fail_unless (whip_caller_wait_audio (c, 0.05, 15000),
      "no audio came back (peak RMS %f)", whip_caller_get_peak_rms (c));
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
}

GST_END_TEST;

/* A strict WHIP client's sendonly offer gets a recvonly answer. */
GST_START_TEST (test_call_sendonly)
{
  WhipCallerOptions o = { .tone_hz = 440, .sendonly = TRUE };
  WhipCaller *c = new_caller (server, "/whip", &o);

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  fail_unless (strstr (whip_caller_get_answer (c), "a=recvonly"));
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
}

GST_END_TEST;

static void
call_with_setup (const gchar *setup)
{
  WhipCallerOptions o = { .tone_hz = 300, .setup = setup };
  WhipCaller *c = new_caller (server, "/whip", &o);

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  fail_unless (whip_caller_wait_audio (c, 0.05, 15000),
      "setup:%s: no audio (peak %f)", setup, whip_caller_get_peak_rms (c));
  whip_caller_hangup (c);
  whip_caller_free (c);
}

/* Offers that fix the DTLS role either way both connect. */
GST_START_TEST (test_call_setup_roles)
{
  call_with_setup ("active");
  call_with_setup ("passive");
}

GST_END_TEST;

/* PATCH: 428 without If-Match, 412 on a stale ETag, 204 for a trickled
 * candidate, 422 for an ICE restart we refuse (session kept), 415 for a
 * wrong type; DELETE is 200 whatever If-Match says; then 404. */
GST_START_TEST (test_patch_and_delete)
{
  WhipCallerOptions o = { 0 };
  WhipCaller *c = new_caller (server, "/whip", &o);
  const gchar frag[] =
      "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 "
      "UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 UDP 2130706431 "
      "127.0.0.1 9999 typ host\r\n";
  const gchar *stale[] = { "If-Match", "\"stale\"", NULL };
  const gchar *star[] = { "If-Match", "*", NULL };
  const gchar *etag_header[3] = { "ETag", NULL, NULL };
  const gchar *if_match[3] = { "If-Match", NULL, NULL };
  gchar *body, *restart;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  if_match[1] = whip_caller_get_etag (c);
  etag_header[1] = whip_caller_get_etag (c);
  body =
      g_strdup ("a=candidate:1 1 UDP 2130706431 127.0.0.1 9999 typ host\r\n");
  restart = g_strdup_printf (frag, "newufrag", "newpasswordnewpassword");

  fail_unless_equals_int (whip_caller_request (c, "PATCH",
                              "application/trickle-ice-sdpfrag", body, NULL),
      428);
  fail_unless_equals_int (whip_caller_request (c, "PATCH",
                              "application/trickle-ice-sdpfrag", body, stale),
      412);
  fail_unless_equals_int (
      whip_caller_request (c, "PATCH", "text/plain", body, if_match), 415);
  fail_unless_equals_int (
      whip_caller_request (c, "PATCH", "application/trickle-ice-sdpfrag",
          "a=candidate:1 1 UDP 2130706431 127.0.0.1 9999 typ host\r\n",
          if_match),
      204);
  /* Lenient: an ETag header in place of If-Match. */
  fail_unless_equals_int (
      whip_caller_request (c, "PATCH", "application/trickle-ice-sdpfrag",
          "a=candidate:2 1 UDP 2130706431 127.0.0.1 9998 typ host\r\n",
          etag_header),
      204);
  fail_unless_equals_int (whip_caller_request (c, "PATCH",
                              "application/trickle-ice-sdpfrag", restart, star),
      422);
  /* The session is still there after the refused restart. */
  fail_unless_equals_int (
      whip_caller_request (c, "GET", NULL, NULL, NULL), 204);
  fail_unless_equals_int (
      whip_caller_request (c, "DELETE", NULL, NULL, stale), 200);
  fail_unless_equals_int (
      whip_caller_request (
          c, "PATCH", "application/trickle-ice-sdpfrag", body, if_match),
      404);
  g_free (body);
  g_free (restart);
  whip_caller_free (c);
}

GST_END_TEST;

/* At the call limit: 503 with Retry-After, and /readyz says not ready. */
GST_START_TEST (test_call_limit)
{
  const gchar *args[] = { "--max-calls", "1", NULL };
  EmuProcess *small = start_server (args);
  Reply first_call, second_call, ready;

  first_call =
      request (small, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (first_call.status, 201);
  second_call =
      request (small, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (second_call.status, 503);
  fail_unless (header (&second_call, "Retry-After") != NULL);
  ready = request (small, "GET", "/readyz", NULL, NULL, NULL);
  fail_unless_equals_int (ready.status, 503);
  reply_clear (&first_call);
  reply_clear (&second_call);
  reply_clear (&ready);
  emu_process_stop (small);
}

GST_END_TEST;

/* With a token: 401 + WWW-Authenticate without it, 201 with it. Without a
 * token configured, "Bearer undefined" (seen from browser clients) passes. */
GST_START_TEST (test_auth)
{
  const gchar *args[] = { "--token", "s3cret", NULL };
  const gchar *good[] = { "Authorization", "Bearer s3cret", NULL };
  const gchar *undefined[] = { "Authorization", "Bearer undefined", NULL };
  EmuProcess *secured = start_server (args);
  Reply r;

  r = request (secured, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (r.status, 401);
  fail_unless (g_str_has_prefix (header (&r, "WWW-Authenticate"), "Bearer"));
  reply_clear (&r);
  r = request (secured, "POST", "/whip", "application/sdp", audio_offer, good);
  fail_unless_equals_int (r.status, 201);
  reply_clear (&r);
  emu_process_stop (secured);

  r = request (
      server, "POST", "/whip", "application/sdp", audio_offer, undefined);
  fail_unless_equals_int (r.status, 201);
  reply_clear (&r);
}

GST_END_TEST;

static gchar *
path_of (Reply *r)
{
  const gchar *location = header (r, "Location");

  fail_unless (location && g_str_has_prefix (location, "/calls/"));
  return g_strdup (location);
}

/* "/calls/ID" without the Location's access_token. */
static gchar *
bare_path_of (Reply *r)
{
  gchar *path = path_of (r);

  *strchr (path, '?') = '\0';
  return path;
}

/* Each call's token grants that call alone: its Location works verbatim,
 * the caller token and another call's token get 404 (the same as a call
 * that does not exist), no token 401, and only the operator lists calls. */
GST_START_TEST (test_capabilities)
{
  const gchar *args[] = { "--token", "s3cret", NULL };
  const gchar *caller[] = { "Authorization", "Bearer s3cret", NULL };
  const gchar *garbage[] = { "Authorization", "Bearer nobodys", NULL };
  EmuProcess *secured = start_server (args);
  Reply a, b, r;
  gchar *a_path, *a_bare, *b_bare, *b_whep, *a_auth;
  const gchar *a_as_bearer[3] = { "Authorization", NULL, NULL };

  a = request (
      secured, "POST", "/whip", "application/sdp", audio_offer, caller);
  b = request (
      secured, "POST", "/whip", "application/sdp", audio_offer, caller);
  fail_unless_equals_int (a.status, 201);
  fail_unless_equals_int (b.status, 201);
  a_path = path_of (&a);
  a_bare = bare_path_of (&a);
  b_bare = bare_path_of (&b);
  b_whep = g_strdup_printf ("/whep/%s", b_bare + strlen ("/calls/"));
  fail_unless (strstr (a_path, header (&a, "Voiceagent-Call-Token")));
  a_auth = g_strconcat ("Bearer ", header (&a, "Voiceagent-Call-Token"), NULL);
  a_as_bearer[1] = a_auth;

  r = request (secured, "GET", a_path, NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 204);
  reply_clear (&r);
  r = request (secured, "GET", a_bare, NULL, NULL, a_as_bearer);
  fail_unless_equals_int (r.status, 204);
  reply_clear (&r);
  r = request (secured, "GET", a_bare, NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 401);
  fail_unless (header (&r, "WWW-Authenticate") != NULL);
  reply_clear (&r);
  r = request (secured, "GET", a_bare, NULL, NULL, garbage);
  fail_unless_equals_int (r.status, 401);
  fail_unless (strstr (header (&r, "WWW-Authenticate"), "invalid_token"));
  reply_clear (&r);
  r = request (secured, "DELETE", a_bare, NULL, NULL, caller);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  r = request (secured, "DELETE", b_bare, NULL, NULL, a_as_bearer);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  r = request (
      secured, "DELETE", "/calls/0123456789abcdef", NULL, NULL, a_as_bearer);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  r = request (
      secured, "POST", b_whep, "application/sdp", audio_offer, a_as_bearer);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);

  r = request (secured, "GET", "/calls", NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 401);
  reply_clear (&r);
  r = request (secured, "GET", "/calls", NULL, NULL, caller);
  fail_unless_equals_int (r.status, 403);
  reply_clear (&r);
  r = request (secured, "GET", "/metrics", NULL, NULL, a_as_bearer);
  fail_unless_equals_int (r.status, 403);
  reply_clear (&r);
  r = request (secured, "GET", "/calls", NULL, NULL, admin);
  fail_unless_equals_int (r.status, 200);
  fail_unless (strstr (r.body, b_bare + strlen ("/calls/")));
  reply_clear (&r);

  /* B is untouched by all of the above; A ends with its own token. */
  r = request (secured, "DELETE", b_bare, NULL, NULL, admin);
  fail_unless_equals_int (r.status, 200);
  reply_clear (&r);
  r = request (secured, "DELETE", a_path, NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 200);
  reply_clear (&r);
  /* An ended call's token is still known: 404 "ended", not 401. */
  r = request (secured, "DELETE", a_path, NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 404);
  reply_clear (&r);
  reply_clear (&a);
  reply_clear (&b);
  g_free (a_path);
  g_free (a_bare);
  g_free (b_bare);
  g_free (b_whep);
  g_free (a_auth);
  emu_process_stop (secured);
}

GST_END_TEST;

/* TURN servers reach callers only with per-call credentials made from
 * --turn-secret (coturn's REST form), never a long-term password, and
 * only in answers to requests that may call. */
GST_START_TEST (test_turn_credentials)
{
  const gchar *args[] = { "--token", "s3cret", "--turn-server",
    "turn://alice:longtermpw@127.0.0.1:3478", "--turn-secret", "tsecret",
    NULL };
  const gchar *caller[] = { "Authorization", "Bearer s3cret", NULL };
  EmuProcess *secured = start_server (args);
  Reply r;
  const gchar *links;
  gchar *id;

  r = request (secured, "OPTIONS", "/whip", NULL, NULL, NULL);
  fail_unless_equals_int (r.status, 204);
  fail_if (soup_message_headers_get_list (r.headers, "Link"));
  reply_clear (&r);
  r = request (
      secured, "POST", "/whip", "application/sdp", audio_offer, caller);
  fail_unless_equals_int (r.status, 201);
  links = soup_message_headers_get_list (r.headers, "Link");
  id = bare_path_of (&r);
  fail_unless (links && strstr (links, "<turn:127.0.0.1:3478>"), "%s", links);
  fail_unless (strstr (links, id + strlen ("/calls/")), "%s", links);
  fail_if (strstr (links, "longtermpw") || strstr (links, "alice"));
  g_free (id);
  reply_clear (&r);
  r = request (secured, "OPTIONS", "/whip", NULL, NULL, caller);
  links = soup_message_headers_get_list (r.headers, "Link");
  fail_unless (links && strstr (links, "credential="));
  fail_if (strstr (links, "longtermpw"));
  reply_clear (&r);
  emu_process_stop (secured);
}

GST_END_TEST;

/* A caller whose DTLS certificate is not the one its offer names (what a
 * man in the middle of the media path presents) is cut off once DTLS is
 * up; GStreamer itself accepts any certificate. */
GST_START_TEST (test_forged_fingerprint)
{
  WhipCallerOptions o = { .tone_hz = 440, .forge_fingerprint = TRUE };
  WhipCaller *c = new_caller (server, "/whip", &o);
  guint status = 0, i;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  for (i = 0; i < 150 && status != 404; i++) {
    g_usleep (100 * 1000);
    status = whip_caller_request (c, "GET", NULL, NULL, NULL);
  }
  fail_unless_equals_int (status, 404);
  whip_caller_free (c);
}

GST_END_TEST;

/* A call whose caller never connects gives its place back after
 * --connect-timeout: one POST per slot cannot hold --max-calls. */
GST_START_TEST (test_connect_timeout)
{
  const gchar *args[] = { "--connect-timeout", "1", "--max-calls", "1", NULL };
  EmuProcess *quick = start_server (args);
  Reply r, again = { 0 };
  gchar *path;
  guint i;

  r = request (quick, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless (r.status == 201, "%u %s", r.status, r.body);
  path = path_of (&r);
  /* An offer with no candidates: ICE waits for some, and neither fails
   * nor connects by itself (measured: still waiting after 40 s). */
  for (i = 0; i < 100; i++) {
    g_usleep (100 * 1000);
    reply_clear (&again);
    again = request (quick, "GET", "/metrics", NULL, NULL, admin);
    if (strstr (again.body, "reason=\"never-connected\"} 1"))
      break;
  }
  fail_unless (strstr (again.body, "reason=\"never-connected\"} 1"),
      "the call did not end for --connect-timeout: %s", again.body);
  reply_clear (&again);
  again = request (quick, "GET", path, NULL, NULL, NULL);
  fail_unless_equals_int (again.status, 404);
  reply_clear (&again);
  again =
      request (quick, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (again.status, 201);
  reply_clear (&again);
  reply_clear (&r);
  g_free (path);
  emu_process_stop (quick);
}

GST_END_TEST;

/* Secrets given as flags are gone from the process's command line once
 * parsed (ps shows x's), with the TURN URL's password too. */
GST_START_TEST (test_argv_scrubbed)
{
  const gchar *args[] = { "--token", "argv-secret-token", "--turn-server",
    "turn://alice:longtermpw@127.0.0.1:3478", NULL };
  EmuProcess *p = start_server (args);
  gchar *path = g_strdup_printf ("/proc/%u/cmdline", emu_process_get_pid (p));
  gchar *cmdline = NULL;
  gsize len = 0, i;

  fail_unless (g_file_get_contents (path, &cmdline, &len, NULL));
  for (i = 0; i < len; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  fail_if (strstr (cmdline, "argv-secret-token"), "%s", cmdline);
  fail_if (strstr (cmdline, "longtermpw"), "%s", cmdline);
  fail_unless (strstr (cmdline, "turn://alice:"), "%s", cmdline);
  g_free (cmdline);
  g_free (path);
  emu_process_stop (p);
}

GST_END_TEST;

/* WHEP: a supervisor hears a live call; 409 + Retry-After while the call
 * has no audio; DELETE removes the listener and the call goes on. */
GST_START_TEST (test_whep)
{
  WhipCallerOptions o = { .tone_hz = 440 };
  WhipCallerOptions v = { .recvonly = TRUE };
  WhipCaller *c = new_caller (server, "/whip", &o), *viewer;
  Reply silent, r;
  gchar *path, *silent_path;
  const gchar *id;

  /* A call whose peer never connects has no audio yet. */
  silent =
      request (server, "POST", "/whip", "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (silent.status, 201);
  silent_path = g_strdup_printf (
      "/whep/%s", strrchr (header (&silent, "Location"), '/') + 1);
  r = request (
      server, "POST", silent_path, "application/sdp", audio_offer, NULL);
  fail_unless_equals_int (r.status, 409);
  fail_unless (header (&r, "Retry-After") != NULL);
  reply_clear (&r);

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  fail_unless (whip_caller_wait_audio (c, 0.05, 15000));
  id = strrchr (whip_caller_get_session_url (c), '/') + 1;
  path = g_strdup_printf ("/whep/%s", id);
  viewer = new_caller (server, path, &v);
  fail_unless_equals_int (whip_caller_connect (viewer, NULL), 201);
  fail_unless (strstr (whip_caller_get_session_url (viewer), "/listeners/"));
  fail_unless (whip_caller_wait_audio (viewer, 0.02, 15000),
      "the listener heard nothing (peak %f)",
      whip_caller_get_peak_rms (viewer));
  fail_unless_equals_int (whip_caller_hangup (viewer), 200);
  fail_unless_equals_int (
      whip_caller_request (c, "GET", NULL, NULL, NULL), 204);
  whip_caller_hangup (c);
  whip_caller_free (viewer);
  whip_caller_free (c);
  reply_clear (&silent);
  g_free (path);
  g_free (silent_path);
}

GST_END_TEST;

/* The data channel answers a malformed message with an error event. */
GST_START_TEST (test_data_channel)
{
  WhipCallerOptions o = { .tone_hz = 440, .data_channel = TRUE };
  WhipCaller *c = new_caller (server, "/whip", &o);
  gchar *m, *token;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  fail_unless (whip_caller_wait_audio (c, 0.05, 15000));
  m = whip_caller_wait_message (c, "\"type\":\"call\"", 10000);
  fail_unless (m && strstr (m, "\"call_token\":\""), "call event: %s", m);
  /* The event's token is the one the session URL carries. */
  token = g_strndup (strstr (m, "\"call_token\":\"") + 14, 32);
  fail_unless (g_str_has_suffix (whip_caller_get_session_url (c), token),
      "%s does not carry %s", whip_caller_get_session_url (c), token);
  g_free (token);
  g_free (m);
  fail_unless (whip_caller_send (c, "not json"));
  m = whip_caller_wait_message (c, "\"error\"", 10000);
  fail_unless (m != NULL, "no error event for a malformed message");
  g_free (m);
  /* Members of the wrong JSON type are named, not read as defaults. */
  fail_unless (whip_caller_send (c, "{\"type\":\"text\",\"text\":{}}"));
  m = whip_caller_wait_message (c, "needs \\\"text\\\" as a string", 10000);
  fail_unless (m != NULL, "no error event for a text that is not a string");
  g_free (m);
  fail_unless (whip_caller_send (c, "{\"event\":[\"user_interrupted\"]}"));
  m = whip_caller_wait_message (c, "unknown message", 10000);
  fail_unless (m != NULL, "no error event for an event that is not a string");
  g_free (m);
  fail_unless (whip_caller_send (c, "{\"event\":\"user_interrupted\"}"));
  whip_caller_hangup (c);
  whip_caller_free (c);
}

GST_END_TEST;

static Suite *
whip_suite (void)
{
  Suite *s = suite_create ("whip");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  tcase_add_checked_fixture (tc, setup, teardown);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_options);
  tcase_add_test (tc, test_bad_input);
  tcase_add_test (tc, test_get);
  tcase_add_test (tc, test_call_sendrecv);
  tcase_add_test (tc, test_call_sendonly);
  tcase_add_test (tc, test_call_trickled);
  tcase_add_test (tc, test_call_setup_roles);
  tcase_add_test (tc, test_patch_and_delete);
  tcase_add_test (tc, test_call_limit);
  tcase_add_test (tc, test_auth);
  tcase_add_test (tc, test_capabilities);
  tcase_add_test (tc, test_turn_credentials);
  tcase_add_test (tc, test_forged_fingerprint);
  tcase_add_test (tc, test_connect_timeout);
  tcase_add_test (tc, test_argv_scrubbed);
  tcase_add_test (tc, test_whep);
  tcase_add_test (tc, test_data_channel);
  return s;
}

GST_CHECK_MAIN (whip);

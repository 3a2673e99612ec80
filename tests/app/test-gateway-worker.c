/* Gateway mode, the worker's side: the front's /gateway/calls on the real
 * voiceagent binary (local emulator for every service), with this test as
 * the gateway: one UDP socket standing for Janus's socket of the call.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "test-process.h"

#define CLUSTER_TOKEN "test-cluster-token"

/* A worker; with @record_dir, recording the calls that ask for it. */
static EmuProcess *
start_worker (const gchar *record_dir)
{
  const gchar *args[] = { "--database", NULL, "--emulator-args", "--quiet",
    "--greeting", "Hello there, how can I help you today?", NULL, NULL, NULL,
    NULL, NULL };
  gchar *db = g_build_filename (g_get_tmp_dir (), "voiceagent-gw.db", NULL);
  EmuProcess *p;

  g_unsetenv ("DEEPGRAM_API_KEY");
  g_unsetenv ("ELEVENLABS_API_KEY");
  g_unsetenv ("LLM_API_KEY");
  g_setenv ("VOICEAGENT_CLUSTER_TOKEN", CLUSTER_TOKEN, TRUE);
  args[1] = db;
  if (record_dir) {
    args[6] = "--record";
    args[7] = record_dir;
    args[8] = "--record-calls";
    args[9] = "opt-in";
  }
  p = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);
  g_unsetenv ("VOICEAGENT_CLUSTER_TOKEN");
  g_free (db);
  fail_unless (p != NULL, "voiceagent did not start");
  return p;
}

/* Sends @method @path with @body as the front would (@token as Bearer);
 * returns the status, the body in *@out. */
static guint
front_request (EmuProcess *w, const gchar *method, const gchar *path,
    const gchar *token, const gchar *body, gchar **out)
{
  SoupSession *session = soup_session_new ();
  gchar *url = g_strconcat (emu_process_get_http_url (w), path, NULL);
  SoupMessage *msg = soup_message_new (method, url);
  GBytes *reply;
  guint status;

  if (token)
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), "Authorization", token);
  if (body) {
    GBytes *b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, "application/json", b);
    g_bytes_unref (b);
  }
  reply = soup_session_send_and_read (session, msg, NULL, NULL);
  status = soup_message_get_status (msg);
  if (out)
    *out = reply
        ? g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply))
        : NULL;
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  g_object_unref (session);
  g_free (url);
  return status;
}

static GSocket *
gateway_socket (guint *port)
{
  GSocket *s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
      G_SOCKET_PROTOCOL_UDP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *a = g_inet_socket_address_new (lo, 0), *bound;

  fail_unless (g_socket_bind (s, a, FALSE, NULL));
  bound = g_socket_get_local_address (s, NULL);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (a);
  g_object_unref (lo);
  return s;
}

typedef struct
{
  guint rtp; /* RTP datagrams */
  guint source_port; /* where they came from */
  gboolean wrong_source; /* any from another port */
  GString *texts; /* data-channel messages, one per line */
} Received;

/* Reads the gateway socket for @ms, sorting datagrams as the plugin does
 * (RTP version in the first byte's top bits, else a message). */
static void
receive_for (GSocket *s, guint ms, Received *r)
{
  gint64 end = g_get_monotonic_time () + ms * (gint64)1000;
  gchar buf[2048];

  while (g_get_monotonic_time () < end) {
    GSocketAddress *from = NULL;
    gssize n;

    if (!g_socket_condition_timed_wait (
            s, G_IO_IN, MAX (end - g_get_monotonic_time (), 1), NULL, NULL))
      break;
    n = g_socket_receive_from (s, &from, buf, sizeof buf, NULL, NULL);
    if (n <= 0) {
      g_clear_object (&from);
      continue;
    }
    guint port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (from));
    if (r->source_port == 0)
      r->source_port = port;
    r->wrong_source |= port != r->source_port;
    if (((guint8)buf[0] & 0xc0) == 0x80) {
      r->rtp++;
    } else {
      g_string_append_len (r->texts, buf, n);
      g_string_append_c (r->texts, '\n');
    }
    g_object_unref (from);
  }
}

static void
send_text (GSocket *s, guint port, const gchar *text)
{
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *to = g_inet_socket_address_new (lo, port);

  fail_unless (g_socket_send_to (s, to, text, strlen (text), NULL, NULL) > 0);
  g_object_unref (to);
  g_object_unref (lo);
}

/* POSTs @body to @w's /gateway/calls as the front; returns the worker's
 * rtp_port from the 201. */
static guint
start_call (EmuProcess *w, const gchar *body)
{
  gchar *out = NULL;
  const gchar *p;
  guint rtp_port;

  fail_unless_equals_int (front_request (w, "POST", "/gateway/calls",
                              "Bearer " CLUSTER_TOKEN, body, &out),
      201);
  p = strstr (out, "\"rtp_port\":");
  fail_unless (p != NULL, "%s", out);
  rtp_port = (guint)g_ascii_strtoull (p + strlen ("\"rtp_port\":"), NULL, 10);
  g_free (out);
  return rtp_port;
}

/* Only the front, with the cluster token and a well-formed request. */
GST_START_TEST (test_front_only)
{
  EmuProcess *w = start_worker (NULL);
  gchar *out = NULL;

  fail_unless_equals_int (
      front_request (w, "POST", "/gateway/calls", NULL, "{}", &out), 401);
  fail_unless (strstr (out, "cluster token") != NULL, "%s", out);
  g_free (out);
  fail_unless_equals_int (front_request (w, "POST", "/gateway/calls",
                              "Bearer "
                              "test-admin-token",
                              "{}", NULL),
      401);
  fail_unless_equals_int (front_request (w, "POST", "/gateway/calls",
                              "Bearer " CLUSTER_TOKEN, "not json", NULL),
      400);
  fail_unless_equals_int (
      front_request (w, "POST", "/gateway/calls", "Bearer " CLUSTER_TOKEN,
          "{\"id\":\"a b\",\"gateway_host\":\"127.0.0.1\","
          "\"gateway_port\":9}",
          &out),
      422);
  fail_unless (strstr (out, "\\\"id\\\"") != NULL, "%s", out);
  g_free (out);
  /* A member of the wrong type is named, not read as its default. */
  fail_unless_equals_int (
      front_request (w, "POST", "/gateway/calls", "Bearer " CLUSTER_TOKEN,
          "{\"id\":\"c2\",\"gateway_host\":\"127.0.0.1\","
          "\"gateway_port\":9,\"record\":\"yes\"}",
          &out),
      422);
  fail_unless (
      strstr (out, "\\\"record\\\" has the wrong type") != NULL, "%s", out);
  g_free (out);
  fail_unless_equals_int (
      front_request (w, "POST", "/gateway/calls", "Bearer " CLUSTER_TOKEN,
          "{\"id\":{},\"gateway_host\":\"127.0.0.1\",\"gateway_port\":9}",
          &out),
      422);
  fail_unless (
      strstr (out, "\\\"id\\\" has the wrong type") != NULL, "%s", out);
  g_free (out);
  fail_unless_equals_int (
      front_request (w, "POST", "/gateway/calls", "Bearer " CLUSTER_TOKEN,
          "{\"id\":\"c1\",\"agent\":\"nosuch\",\"gateway_host\":\"127.0.0.1\","
          "\"gateway_port\":9}",
          NULL),
      404);
  fail_unless_equals_int (front_request (w, "DELETE", "/gateway/calls/c9",
                              "Bearer " CLUSTER_TOKEN, NULL, NULL),
      404);
  /* A WebRTC caller may not use the RTP template directly. */
  fail_unless_equals_int (
      front_request (w, "POST", "/whip/agent-rtp", NULL, "v=0", NULL), 404);
  emu_process_stop (w);
}

GST_END_TEST;

/* A call on plain RTP: the agent's greeting and its data-channel events
 * come from the one port the worker named, typed text is answered, a
 * datagram from anyone but the gateway is not, and DELETE ends it. */
GST_START_TEST (test_rtp_call)
{
  EmuProcess *w = start_worker (NULL);
  guint gw_port, rtp_port;
  GSocket *gw = gateway_socket (&gw_port);
  Received r = { 0, 0, FALSE, g_string_new (NULL) };
  GSocket *stranger;
  guint stranger_port;
  gchar *body;

  body = g_strdup_printf ("{\"id\":\"call-1\",\"gateway_host\":\"127.0.0.1\","
                          "\"gateway_port\":%u,\"opus_pt\":111}",
      gw_port);
  rtp_port = start_call (w, body);
  fail_unless_equals_int (front_request (w, "POST", "/gateway/calls",
                              "Bearer " CLUSTER_TOKEN, body, NULL),
      409);
  g_free (body);

  /* Anyone else's datagram is dropped: no greeting, no answer. */
  stranger = gateway_socket (&stranger_port);
  send_text (stranger, rtp_port, "{\"type\":\"text\",\"text\":\"intruder\"}");
  /* The worker greets the caller once the gateway relays to it: its
   * first datagram (here a typed message). */
  receive_for (gw, 1000, &r);
  fail_if (strstr (r.texts->str, "\"type\":\"call\""),
      "greeted before the gateway relayed: %s", r.texts->str);
  fail_unless_equals_int (
      g_socket_condition_check (stranger, G_IO_IN) & G_IO_IN, 0);
  g_object_unref (stranger);
  send_text (gw, rtp_port, "{\"type\":\"text\",\"text\":\"hello\"}");
  receive_for (gw, 8000, &r);
  fail_unless (r.rtp > 20, "only %u RTP packets of the greeting", r.rtp);
  fail_unless_equals_int (r.source_port, rtp_port);
  fail_unless (!r.wrong_source);
  fail_unless (strstr (r.texts->str, "\"type\":\"call\",\"id\":\"call-1\""),
      "%s", r.texts->str);
  fail_unless (strstr (r.texts->str, "\"role\":\"agent\""), "%s", r.texts->str);

  fail_unless_equals_int (front_request (w, "DELETE", "/gateway/calls/call-1",
                              "Bearer " CLUSTER_TOKEN, NULL, NULL),
      200);
  g_string_free (r.texts, TRUE);
  g_object_unref (gw);
  emu_process_stop (w);
}

GST_END_TEST;

/* Starts @id on @w ("record": @record), lets the greeting play for a
 * while, ends it. */
static void
greeted_call (EmuProcess *w, const gchar *id, gboolean record)
{
  guint gw_port, rtp_port;
  GSocket *gw = gateway_socket (&gw_port);
  Received r = { 0, 0, FALSE, g_string_new (NULL) };
  gchar *body, *path;

  body = g_strdup_printf ("{\"id\":\"%s\",\"gateway_host\":\"127.0.0.1\","
                          "\"gateway_port\":%u,\"opus_pt\":111,\"record\":%s}",
      id, gw_port, record ? "true" : "false");
  rtp_port = start_call (w, body);
  send_text (gw, rtp_port, "{\"type\":\"text\",\"text\":\"hello\"}");
  receive_for (gw, 4000, &r);
  fail_unless (r.rtp > 20, "only %u RTP packets of the greeting", r.rtp);
  path = g_strconcat ("/gateway/calls/", id, NULL);
  fail_unless_equals_int (
      front_request (w, "DELETE", path, "Bearer " CLUSTER_TOKEN, NULL, NULL),
      200);
  g_free (path);
  g_free (body);
  g_string_free (r.texts, TRUE);
  g_object_unref (gw);
}

/* A worker with --record-calls opt-in records the call the front says its
 * caller asked to be recorded ("record": true, from POST /whip?record=1),
 * and not the other. */
GST_START_TEST (test_record_opt_in)
{
  gchar *dir = g_dir_make_tmp ("voiceagent-gwrec-XXXXXX", NULL);
  EmuProcess *w = start_worker (dir);
  gchar *recorded = g_build_filename (dir, "call-rec.opus", NULL);
  GStatBuf st;
  GDir *d;
  const gchar *name;
  gint i;

  greeted_call (w, "call-rec", TRUE);
  greeted_call (w, "call-plain", FALSE);
  /* The file is renamed from .part once the recording's end is written. */
  for (i = 0; i < 50 && g_stat (recorded, &st) != 0; i++)
    g_usleep (100 * 1000);
  fail_unless (g_stat (recorded, &st) == 0, "no %s", recorded);
  fail_unless (
      st.st_size > 1000, "%s is %ld bytes", recorded, (glong)st.st_size);
  emu_process_stop (w);
  /* Nothing else: the call that did not ask left no file, not even a
   * .part. */
  d = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (d)) != NULL)
    fail_unless_equals_string (name, "call-rec.opus");
  g_dir_close (d);
  test_process_remove_tree (dir);
  g_free (recorded);
  g_free (dir);
}

GST_END_TEST;

static Suite *
gateway_worker_suite (void)
{
  Suite *s = suite_create ("gateway-worker");
  TCase *tc = tcase_create ("worker");

  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_front_only);
  tcase_add_test (tc, test_rtp_call);
  tcase_add_test (tc, test_record_opt_in);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (gateway_worker);

/* Recordings and webhooks: the webhook sender against a local receiver
 * (signature, retries, a receiver down for a while, 4xx), and a whole
 * call through voiceagent --record --webhook whose file is decoded and
 * whose channels are checked.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/app/gstappsink.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "http-receiver.h"
#include "test-speech.h"
#include "whip-check.h"
#include "webhook.h"

#define SECRET "whsec-test-7f3a9c1e5b2d4f60"

GST_DEBUG_CATEGORY (voiceagent_debug);

/* ---- A webhook receiver (tests/common/http-receiver) ---- */

typedef struct
{
  HttpReceiver *http;
  guint port;
  GMutex lock;
  /* Protected by lock */
  guint fail_first; /* answer the first N with fail_status */
  guint fail_status;
  guint requests;
  guint ok; /* 2xx answered */
  GPtrArray *bodies; /* gchar*, every request's */
  GPtrArray *deliveries; /* X-Voiceagent-Delivery of each */
  gboolean bad_signature; /* some request's did not verify */
} Receiver;

static guint
on_hook (SoupMessageHeaders *h, const gchar *text, gsize len, GString *reply,
    gpointer data)
{
  Receiver *r = data;
  guint status;

  g_mutex_lock (&r->lock);
  r->requests++;
  status = r->requests <= r->fail_first ? r->fail_status : 200;
  if (status == 200)
    r->ok++;
  g_ptr_array_add (r->bodies, g_strndup (text, len));
  g_ptr_array_add (r->deliveries,
      g_strdup (soup_message_headers_get_one (h, "X-Voiceagent-Delivery")));
  if (!http_signature_ok (
          soup_message_headers_get_one (h, "X-Voiceagent-Signature"), SECRET,
          text, len) ||
      g_strcmp0 (soup_message_headers_get_one (h, "X-Voiceagent-Event"),
          "call.ended") != 0)
    r->bad_signature = TRUE;
  g_mutex_unlock (&r->lock);
  return status;
}

/* Listens on @port (0: any free one); answers the first @fail_first
 * requests with @fail_status, the rest with 200. */
static Receiver *
receiver_new (guint port, guint fail_first, guint fail_status)
{
  Receiver *r = g_new0 (Receiver, 1);

  g_mutex_init (&r->lock);
  r->fail_first = fail_first;
  r->fail_status = fail_status;
  r->bodies = g_ptr_array_new_with_free_func (g_free);
  r->deliveries = g_ptr_array_new_with_free_func (g_free);
  r->http = http_receiver_new (port, "/hook", on_hook, r);
  r->port = http_receiver_get_port (r->http);
  return r;
}

static void
receiver_free (Receiver *r)
{
  http_receiver_free (r->http);
  g_ptr_array_unref (r->bodies);
  g_ptr_array_unref (r->deliveries);
  g_mutex_clear (&r->lock);
  g_free (r);
}

static guint
receiver_count (Receiver *r, guint *ok)
{
  guint n;

  g_mutex_lock (&r->lock);
  n = r->requests;
  if (ok)
    *ok = r->ok;
  g_mutex_unlock (&r->lock);
  return n;
}

/* Waits until the receiver has answered @n with 2xx, or @timeout_s. */
static void
wait_ok (Receiver *r, guint n, guint timeout_s)
{
  gint64 deadline = g_get_monotonic_time () + timeout_s * G_USEC_PER_SEC;
  guint ok = 0;

  while (g_get_monotonic_time () < deadline) {
    receiver_count (r, &ok);
    if (ok >= n)
      return;
    g_usleep (20000);
  }
  fail_unless (ok >= n, "the receiver got %u deliveries, wanted %u", ok, n);
}

static gchar *
hook_url (guint port)
{
  return g_strdup_printf ("http://127.0.0.1:%u/hook", port);
}

/* ---- The sender, as a unit ---- */

/* Two 503s, then 200: delivered once, on the third attempt, with the same
 * delivery id and a valid signature on every attempt. */
GST_START_TEST (test_webhook_retries_until_delivered)
{
  Receiver *r = receiver_new (0, 2, 503);
  gchar *url = hook_url (r->port);
  VaWebhookOptions o = { .attempts = 5, .backoff_ms = 50 };
  VaWebhook *hook = va_webhook_new (url, SECRET, &o);
  VaWebhookMetrics m;
  guint ok;

  va_webhook_send (hook, "call.ended", "c1", g_strdup ("{\"id\":\"c1\"}"));
  wait_ok (r, 1, 10);
  fail_unless (va_webhook_close (hook) == 0);
  fail_unless_equals_int (receiver_count (r, &ok), 3);
  fail_unless_equals_int (ok, 1);
  fail_if (r->bad_signature, "a signature did not verify");
  fail_unless_equals_string (g_ptr_array_index (r->deliveries, 0),
      g_ptr_array_index (r->deliveries, 2));
  fail_unless_equals_string (
      g_ptr_array_index (r->bodies, 2), "{\"id\":\"c1\"}");
  receiver_free (r);
  g_free (url);
  (void)m;
}

GST_END_TEST;

/* Nobody listens for a while (connection refused), then the receiver
 * comes up on that port: the delivery arrives, once. */
GST_START_TEST (test_webhook_receiver_down_for_a_while)
{
  Receiver *probe = receiver_new (0, 0, 200);
  guint port = probe->port;
  gchar *url = hook_url (port);
  VaWebhookOptions o = { .attempts = 8, .backoff_ms = 100 };
  VaWebhook *hook;
  VaWebhookMetrics m;
  Receiver *r;
  guint ok;

  receiver_free (probe); /* the port is free again, and closed */
  hook = va_webhook_new (url, SECRET, &o);
  va_webhook_send (hook, "call.ended", "c2", g_strdup ("{\"id\":\"c2\"}"));
  g_usleep (700 * 1000); /* attempts 1..3 or so are refused */
  va_webhook_get_stats (hook, &m);
  fail_unless (m.retried >= 1, "no attempt was retried");
  fail_unless_equals_int ((gint)m.delivered, 0);
  r = receiver_new (port, 0, 200);
  wait_ok (r, 1, 30);
  /* The sender counts it once the reply is read, after the receiver. */
  for (gint i = 0; i < 200 && m.delivered == 0; i++) {
    g_usleep (20000);
    va_webhook_get_stats (hook, &m);
  }
  fail_unless_equals_int ((gint)m.delivered, 1);
  fail_unless (va_webhook_close (hook) == 0);
  fail_unless_equals_int (receiver_count (r, &ok), 1);
  fail_unless_equals_int (ok, 1);
  fail_if (r->bad_signature);
  receiver_free (r);
  g_free (url);
}

GST_END_TEST;

/* 400 is the receiver saying no: one attempt, counted failed. 429 is
 * retried. */
GST_START_TEST (test_webhook_4xx_not_retried)
{
  Receiver *r = receiver_new (0, 100, 400);
  gchar *url = hook_url (r->port);
  VaWebhookOptions o = { .attempts = 5, .backoff_ms = 30 };
  VaWebhook *hook = va_webhook_new (url, SECRET, &o);
  VaWebhookMetrics m = { 0 };
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  va_webhook_send (hook, "call.ended", "c3", g_strdup ("{}"));
  while (m.failed == 0 && g_get_monotonic_time () < deadline) {
    g_usleep (20000);
    va_webhook_get_stats (hook, &m);
  }
  g_usleep (300 * 1000); /* a retry would have come by now */
  fail_unless_equals_int ((gint)m.failed, 1);
  fail_unless_equals_int (receiver_count (r, NULL), 1);
  va_webhook_close (hook);
  receiver_free (r);

  r = receiver_new (0, 1, 429);
  g_free (url);
  url = hook_url (r->port);
  hook = va_webhook_new (url, SECRET, &o);
  va_webhook_send (hook, "call.ended", "c4", g_strdup ("{}"));
  wait_ok (r, 1, 10);
  va_webhook_close (hook);
  fail_unless_equals_int (receiver_count (r, NULL), 2);
  receiver_free (r);
  g_free (url);
}

GST_END_TEST;

/* ---- A whole call ---- */

typedef struct
{
  gint channels, rate;
  gdouble seconds;
  guint caller_alone; /* 100 ms windows: left loud, right silent */
  guint agent_alone; /* right loud, left silent */
} Decoded;

/* Decodes @path (oggdemux ! opusdec) and measures each channel's RMS in
 * 100 ms windows. */
static Decoded
decode (const gchar *path)
{
  gchar *desc = g_strdup_printf ("filesrc location=\"%s\" ! oggdemux "
                                 "! opusdec ! audioconvert "
                                 "! audio/x-raw,format=F32LE "
                                 "! appsink name=out sync=false",
      path);
  GstElement *p = gst_parse_launch (desc, NULL);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p), "out");
  Decoded d = { 0 };
  gdouble sum[2] = { 0 };
  guint64 frames = 0, in_window = 0;
  GstSample *s;

  fail_unless (p != NULL);
  gst_element_set_state (p, GST_STATE_PLAYING);
  while ((s = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstStructure *st = gst_caps_get_structure (gst_sample_get_caps (s), 0);
    GstMapInfo map;
    const gfloat *x;
    gsize n;

    gst_structure_get_int (st, "channels", &d.channels);
    gst_structure_get_int (st, "rate", &d.rate);
    fail_unless_equals_int (d.channels, 2);
    gst_buffer_map (gst_sample_get_buffer (s), &map, GST_MAP_READ);
    x = (const gfloat *)map.data;
    n = map.size / (2 * sizeof (gfloat));
    for (gsize i = 0; i < n; i++) {
      sum[0] += x[2 * i] * x[2 * i];
      sum[1] += x[2 * i + 1] * x[2 * i + 1];
      if (++in_window == (guint64)d.rate / 10) {
        gdouble left = sqrt (sum[0] / in_window);
        gdouble right = sqrt (sum[1] / in_window);
        if (left > 0.02 && right < 0.002)
          d.caller_alone++;
        if (right > 0.02 && left < 0.002)
          d.agent_alone++;
        sum[0] = sum[1] = 0;
        in_window = 0;
      }
    }
    frames += n;
    gst_buffer_unmap (gst_sample_get_buffer (s), &map);
    gst_sample_unref (s);
  }
  gst_element_set_state (p, GST_STATE_NULL);
  if (d.rate)
    d.seconds = (gdouble)frames / d.rate;
  gst_object_unref (sink);
  gst_object_unref (p);
  g_free (desc);
  return d;
}

/* The server with --record and --webhook: the call's recording is stereo
 * Ogg/Opus at 48 kHz as long as the call, the caller on the left and the
 * agent on the right; the webhook (after two 503s) brings the record with
 * the recording's path; the secret is in no log line. */
GST_START_TEST (test_call_recorded_and_posted)
{
  gchar *dir = g_dir_make_tmp ("voiceagent-rec-XXXXXX", NULL);
  gchar *db = g_build_filename (dir, "calls.db", NULL);
  gchar *log = g_build_filename (dir, "server.log", NULL);
  gchar *rec_dir = g_build_filename (dir, "rec", NULL);
  Receiver *r = receiver_new (0, 2, 503);
  gchar *url = hook_url (r->port);
  const gchar *args[] = { "--database", db, "--record", rec_dir, "--webhook",
    url, "--emulator-args", "--quiet --stt-engine scripted --tts-engine tone",
    "--drain-timeout", "1", "--ice-timeout-ms", "1000", NULL };
  GError *error = NULL;
  gchar *wav = test_speech_wav (
      "Hello, I would like a pizza", "recweb-caller", 1, &error);
  gchar *whip, *path, *logged = NULL, *id;
  WhipCallerOptions o = { .wav = wav, .data_channel = TRUE };
  WhipCaller *c;
  EmuProcess *server;
  gint64 started;
  gdouble call_s;
  Decoded d;
  JsonNode *body;
  JsonObject *rec;
  GStatBuf st;

  fail_unless (wav != NULL, "%s", error ? error->message : "");
  g_mkdir (rec_dir, 0750);
  g_unsetenv ("DEEPGRAM_API_KEY");
  g_unsetenv ("ELEVENLABS_API_KEY");
  g_unsetenv ("LLM_API_KEY");
  g_unsetenv ("OPENAI_API_KEY");
  g_setenv ("VOICEAGENT_WEBHOOK_SECRET", SECRET, TRUE);
  g_setenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS", "100", TRUE);
  server = emu_process_start_logged (g_getenv ("VOICEAGENT_BIN"), args, log);
  fail_unless (server != NULL, "voiceagent did not start");
  whip = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  o.url = whip;
  c = whip_caller_new (&o);
  started = g_get_monotonic_time ();
  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  id = g_path_get_basename (whip_caller_get_session_url (c));
  if (strchr (id, '?'))
    *strchr (id, '?') = '\0'; /* ?access_token=... */
  g_free (whip_check_message (c, "\"type\":\"call\"", 30000));
  /* The caller's words play first; then the agent speaks (a tone). */
  g_usleep (4 * G_USEC_PER_SEC);
  fail_unless (whip_caller_send_text (c, "Tell me a long story please."));
  fail_unless (whip_caller_wait_audio (c, 0.05, 30000), "no agent audio");
  g_usleep (2 * G_USEC_PER_SEC);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  call_s = (g_get_monotonic_time () - started) / 1e6;
  whip_caller_free (c);

  wait_ok (r, 1, 60);
  fail_unless_equals_int (receiver_count (r, NULL), 3);
  fail_if (r->bad_signature, "a signature did not verify");
  fail_unless_equals_string (g_ptr_array_index (r->deliveries, 0),
      g_ptr_array_index (r->deliveries, 2));
  body = json_from_string (g_ptr_array_index (r->bodies, 2), NULL);
  fail_unless (body && JSON_NODE_HOLDS_OBJECT (body));
  fail_unless_equals_string (
      json_object_get_string_member (json_node_get_object (body), "id"), id);
  rec =
      json_object_get_object_member (json_node_get_object (body), "recording");
  fail_unless (rec != NULL, "the record has no recording");
  path = g_strdup (json_object_get_string_member (rec, "path"));
  fail_unless (g_str_has_prefix (path, rec_dir) &&
          g_str_has_suffix (path, ".opus") && strstr (path, id),
      "%s", path);
  fail_unless (json_object_get_array_member (
                   json_node_get_object (body), "transcript") != NULL);
  json_node_unref (body);

  fail_unless (g_stat (path, &st) == 0, "no file %s", path);
  fail_unless_equals_int (st.st_mode & 0777, 0640);
  d = decode (path);
  g_print ("recording: %d ch, %d Hz, %.2f s (call %.2f s); caller alone "
           "%u, agent alone %u windows\n",
      d.channels, d.rate, d.seconds, call_s, d.caller_alone, d.agent_alone);
  fail_unless_equals_int (d.channels, 2);
  fail_unless_equals_int (d.rate, 48000);
  fail_unless (d.seconds > call_s - 4 && d.seconds < call_s + 1,
      "recording %.2f s, call %.2f s", d.seconds, call_s);
  fail_unless (d.caller_alone >= 5, "the caller is not on the left alone");
  fail_unless (d.agent_alone >= 5, "the agent is not on the right alone");

  emu_process_stop (server);
  g_file_get_contents (log, &logged, NULL, NULL);
  fail_unless (logged != NULL);
  fail_if (strstr (logged, SECRET), "the webhook secret is in the log");
  g_free (logged);
  g_unsetenv ("VOICEAGENT_WEBHOOK_SECRET");
  g_unsetenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS");
  receiver_free (r);
  g_free (path);
  g_free (id);
  g_free (whip);
  g_free (wav);
  g_free (url);
  g_free (db);
  g_free (log);
  g_free (rec_dir);
  g_free (dir);
}

GST_END_TEST;

/* Bad settings stop the server at start with a message naming the fix. */
GST_START_TEST (test_refuses_bad_settings)
{
  const gchar *bin = g_getenv ("VOICEAGENT_BIN");
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  gchar *argv1[] = { (gchar *)bin, "--webhook", "http://127.0.0.1:9/hook",
    "--port", "0", NULL };
  gchar *argv2[] = { (gchar *)bin, "--record", "/nonexistent/rec", "--port",
    "0", "--database", ":memory:", NULL };

  g_unsetenv ("VOICEAGENT_WEBHOOK_SECRET");
  fail_unless (g_spawn_sync (NULL, argv1, NULL, G_SPAWN_DEFAULT, NULL, NULL,
      &out, &err, &status, NULL));
  fail_if (g_spawn_check_wait_status (status, NULL));
  fail_unless (strstr (err, "VOICEAGENT_WEBHOOK_SECRET") != NULL, "%s", err);
  g_free (out);
  g_free (err);
  fail_unless (g_spawn_sync (NULL, argv2, NULL, G_SPAWN_DEFAULT, NULL, NULL,
      &out, &err, &status, NULL));
  fail_if (g_spawn_check_wait_status (status, NULL));
  fail_unless (strstr (err, "--record /nonexistent/rec") != NULL, "%s", err);
  g_free (out);
  g_free (err);
}

GST_END_TEST;

static Suite *
recweb_suite (void)
{
  Suite *s = suite_create ("recweb");
  TCase *tc = tcase_create ("recweb");

  GST_DEBUG_CATEGORY_INIT (voiceagent_debug, "voiceagent", 0, "webhook");
  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_webhook_retries_until_delivered);
  tcase_add_test (tc, test_webhook_receiver_down_for_a_while);
  tcase_add_test (tc, test_webhook_4xx_not_retried);
  tcase_add_test (tc, test_refuses_bad_settings);
  tcase_add_test (tc, test_call_recorded_and_posted);
  return s;
}

GST_CHECK_MAIN (recweb);

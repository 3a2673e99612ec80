/* Recordings and webhooks: the webhook sender against a local receiver
 * (signature, retries, a receiver down for a while, 4xx), and whole calls
 * through voiceagent --record --record-calls opt-in --webhook: the one
 * that asked (?record=1) has its file decoded and its channels checked,
 * the one that did not has none; the webhook's body is the whole record,
 * the same as `voiceagent calls json ID`.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <gst/app/gstappsink.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "http-receiver.h"
#include "test-process.h"
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

/* The data channel's word that the agent started, or stopped, speaking. */
#define AGENT_SPEAKS "\"type\":\"agent\",\"speaking\":true"
#define AGENT_DONE "\"type\":\"agent\",\"speaking\":false"

/* A JSON number: json-glib reads 3.0 as a double and 3 as an int. */
static gboolean
is_number (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
      (json_node_get_value_type (n) == G_TYPE_DOUBLE ||
          json_node_get_value_type (n) == G_TYPE_INT64);
}

static gboolean
is_int (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
      json_node_get_value_type (n) == G_TYPE_INT64;
}

static gchar *
iso_utc (gint64 us)
{
  GDateTime *t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  gchar *s = g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ");

  g_date_time_unref (t);
  return s;
}

/* @o, a call record (docs/operations.md, "Webhooks"), has every field with
 * a value that fits call @id, which the test measured as @call_s long and
 * in which the caller and the agent both spoke. */
static void
check_record_fields (JsonObject *o, const gchar *id, gdouble call_s)
{
  gint64 started, ended;
  gchar *at;
  JsonArray *a;
  JsonObject *usage;
  guint user = 0, agent = 0;

  fail_unless_equals_string (json_object_get_string_member (o, "id"), id);
  fail_unless (
      *json_object_get_string_member_with_default (o, "agent", "") != '\0');
  fail_unless (is_int (o, "started_us") && is_int (o, "ended_us"));
  started = json_object_get_int_member (o, "started_us");
  ended = json_object_get_int_member (o, "ended_us");
  fail_unless (started > 0 && ended > started);
  fail_unless_equals_string (
      json_object_get_string_member (o, "started_at"), at = iso_utc (started));
  g_free (at);
  fail_unless_equals_string (
      json_object_get_string_member (o, "ended_at"), at = iso_utc (ended));
  g_free (at);
  fail_unless (is_number (o, "duration_s"));
  fail_unless (fabs (json_object_get_double_member (o, "duration_s") -
                   (ended - started) / 1e6) < 1e-3);
  /* The server's clock starts at the offer and stops at the teardown; the
   * test's brackets both, give or take the answer and the teardown. */
  fail_unless (fabs ((ended - started) / 1e6 - call_s) < 3,
      "the record says %.2f s, the call took %.2f s", (ended - started) / 1e6,
      call_s);
  fail_unless_equals_string (
      json_object_get_string_member (o, "end_reason"), "hangup");

  fail_unless (json_object_has_member (o, "transcript") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "transcript")));
  a = json_object_get_array_member (o, "transcript");
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonObject *e = json_array_get_object_element (a, i);
    const gchar *role;
    fail_unless (e != NULL, "transcript entry %u is not an object", i);
    role = json_object_get_string_member_with_default (e, "role", "");
    fail_unless (
        *json_object_get_string_member_with_default (e, "text", "") != '\0',
        "transcript entry %u has no text", i);
    fail_unless (is_number (e, "t") && is_int (e, "turn"));
    user += g_str_equal (role, "user");
    agent += g_str_equal (role, "agent");
    fail_unless (g_str_equal (role, "user") || g_str_equal (role, "agent") ||
            g_str_equal (role, "tool"),
        "transcript entry %u: role \"%s\"", i, role);
  }
  fail_unless (user >= 1 && agent >= 1,
      "the transcript has %u caller and %u agent entries: %s", user, agent,
      json_to_string (json_object_get_member (o, "transcript"), FALSE));

  fail_unless (json_object_has_member (o, "turns") &&
      JSON_NODE_HOLDS_ARRAY (json_object_get_member (o, "turns")));
  a = json_object_get_array_member (o, "turns");
  fail_unless (json_array_get_length (a) >= 1, "no turn in the record");
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonObject *t = json_array_get_object_element (a, i);
    fail_unless (t && is_int (t, "turn") &&
            json_object_has_member (t, "voice_to_voice_ms") &&
            json_object_has_member (t, "tts_ttfb_ms"),
        "turn %u lacks its metrics", i);
  }

  usage = json_object_get_object_member (o, "usage");
  fail_unless (usage != NULL, "the record has no usage");
  fail_unless (is_number (usage, "stt_seconds") &&
      is_int (usage, "tts_characters") && is_int (usage, "llm_prompt_tokens") &&
      is_int (usage, "llm_completion_tokens"));
  fail_unless (json_object_get_double_member (usage, "stt_seconds") > 0,
      "the caller spoke, yet stt_seconds is 0");
  fail_unless (json_object_get_int_member (usage, "tts_characters") > 0,
      "the agent spoke, yet tts_characters is 0");
  fail_unless (is_number (o, "cost_usd") &&
      json_object_get_double_member (o, "cost_usd") >= 0);
}

/* `voiceagent --database @db calls json @id`, parsed. */
static JsonNode *
calls_json (const gchar *db, const gchar *id)
{
  gchar *argv[] = { (gchar *)g_getenv ("VOICEAGENT_BIN"), "--database",
    (gchar *)db, "calls", "json", (gchar *)id, NULL };
  gchar *out = NULL, *err = NULL;
  gint status = -1;
  JsonNode *node;

  fail_unless (g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
      &out, &err, &status, NULL));
  fail_unless (g_spawn_check_wait_status (status, NULL),
      "voiceagent calls json %s: %s", id, err);
  node = json_from_string (out, NULL);
  fail_unless (node && JSON_NODE_HOLDS_OBJECT (node),
      "voiceagent calls json %s: not a JSON object: %s", id, out);
  g_free (out);
  g_free (err);
  return node;
}

/* The call's id: the last segment of its session URL, without the query
 * (?access_token=...). */
static gchar *
call_id_of (WhipCaller *c)
{
  gchar *id = g_path_get_basename (whip_caller_get_session_url (c));

  if (strchr (id, '?'))
    *strchr (id, '?') = '\0';
  return id;
}

/* A second call on the opt-in server, without ?record=1: the caller
 * speaks (a tone) and the agent answers, so a recording, had it been
 * made, would have audio and a file. Returns its id. */
static gchar *
unrecorded_call (const gchar *whip)
{
  WhipCallerOptions o = { .url = whip, .tone_hz = 440, .data_channel = TRUE };
  WhipCaller *c = whip_caller_new (&o);
  gchar *id;

  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  id = call_id_of (c);
  g_free (whip_check_message (c, "\"type\":\"call\"", 30000));
  fail_unless (whip_caller_send_text (c, "Say something short."));
  fail_unless (whip_caller_wait_audio (c, 0.05, 30000), "no agent audio");
  g_usleep (G_USEC_PER_SEC / 2);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  return id;
}

/* The names in @dir, sorted, joined by spaces. */
static gchar *
dir_listing (const gchar *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  GPtrArray *names = g_ptr_array_new ();
  const gchar *name;
  gchar *joined;

  fail_unless (d != NULL, "cannot list %s", dir);
  while ((name = g_dir_read_name (d)))
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, (GCompareFunc)g_strcmp0);
  g_ptr_array_add (names, NULL);
  joined = g_strjoinv (" ", (gchar **)names->pdata);
  g_strfreev ((gchar **)g_ptr_array_free (names, FALSE));
  g_dir_close (d);
  return joined;
}

/* The server with --record --record-calls opt-in and --webhook. The call
 * placed with POST /whip?record=1 is recorded: stereo Ogg/Opus at 48 kHz
 * as long as the call, the caller on the left and the agent on the right;
 * its webhook (after two 503s) brings the whole record with the
 * recording's path, the same JSON as `voiceagent calls json ID`. A second
 * call, without ?record=1, leaves no file and its record says so. The
 * secret is in no log line. */
GST_START_TEST (test_call_recorded_and_posted)
{
  gchar *dir = g_dir_make_tmp ("voiceagent-rec-XXXXXX", NULL);
  gchar *db = g_build_filename (dir, "calls.db", NULL);
  gchar *log = g_build_filename (dir, "server.log", NULL);
  gchar *rec_dir = g_build_filename (dir, "rec", NULL);
  Receiver *r = receiver_new (0, 2, 503);
  gchar *url = hook_url (r->port);
  gchar *script = g_build_filename (dir, "stt-script", NULL);
  gchar *emu_args = g_strdup_printf (
      "--quiet --stt-engine scripted --stt-script '%s' --tts-engine tone",
      script);
  const gchar *args[] = { "--database", db, "--record", rec_dir,
    "--record-calls", "opt-in", "--webhook", url, "--emulator-args", emu_args,
    "--drain-timeout", "1", "--ice-timeout-ms", "1000", NULL };
  GError *error = NULL;
  gchar *wav = test_speech_wav (
      "I would like a large pizza with extra cheese and olives", "recweb-order",
      1, &error);
  gchar *whip, *whip_rec, *path, *logged = NULL, *id, *id2, *files, *want;
  WhipCallerOptions o = { .wav = wav, .data_channel = TRUE };
  WhipCaller *c;
  EmuProcess *server;
  gint64 started, media_started;
  gdouble call_s, media_s;
  Decoded d;
  JsonNode *body, *body2, *stored;
  JsonObject *rec;
  GStatBuf st;

  fail_unless (wav != NULL, "%s", error ? error->message : "");
  fail_unless (g_file_set_contents (script,
      "I would like a large pizza with extra cheese and olives\n", -1, NULL));
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
  whip_rec = g_strconcat (whip, "?record=1", NULL);
  o.url = whip_rec;
  c = whip_caller_new (&o);
  started = g_get_monotonic_time ();
  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  id = call_id_of (c);
  g_free (whip_check_message (c, "\"type\":\"call\"", 30000));
  /* Media flows by now: the recording (from the first audio) is at least
   * as long as the call from here, whatever the set-up took. */
  media_started = g_get_monotonic_time ();
  /* One spoken turn, the caller's words alone on the left, then the
   * agent's answer (a tone) alone on the right, said to the end: the
   * record has both sides' words (the agent's once it said them) and the
   * turn's metrics. */
  g_free (whip_check_message (c, AGENT_SPEAKS, 30000));
  g_free (whip_check_message (c, AGENT_DONE, 30000));
  g_usleep (G_USEC_PER_SEC / 2);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  call_s = (g_get_monotonic_time () - started) / 1e6;
  media_s = (g_get_monotonic_time () - media_started) / 1e6;
  whip_caller_free (c);

  wait_ok (r, 1, 60);
  fail_unless_equals_int (receiver_count (r, NULL), 3);
  fail_if (r->bad_signature, "a signature did not verify");
  fail_unless_equals_string (g_ptr_array_index (r->deliveries, 0),
      g_ptr_array_index (r->deliveries, 2));
  body = json_from_string (g_ptr_array_index (r->bodies, 2), NULL);
  fail_unless (body && JSON_NODE_HOLDS_OBJECT (body));
  check_record_fields (json_node_get_object (body), id, call_s);
  rec =
      json_object_get_object_member (json_node_get_object (body), "recording");
  fail_unless (rec != NULL, "the record has no recording");
  path = g_strdup (json_object_get_string_member (rec, "path"));
  fail_unless (g_str_has_prefix (path, rec_dir) &&
          g_str_has_suffix (path, ".opus") && strstr (path, id),
      "%s", path);

  fail_unless (g_stat (path, &st) == 0, "no file %s", path);
  fail_unless_equals_int (st.st_mode & 0777, 0640);
  fail_unless_equals_int64 (
      json_object_get_int_member (rec, "bytes"), (gint64)st.st_size);
  d = decode (path);
  g_print ("recording: %d ch, %d Hz, %.2f s (call %.2f s, record %.2f s); "
           "caller alone %u, agent alone %u windows\n",
      d.channels, d.rate, d.seconds, call_s,
      json_object_get_double_member (rec, "seconds"), d.caller_alone,
      d.agent_alone);
  fail_unless_equals_int (d.channels, 2);
  fail_unless_equals_int (d.rate, 48000);
  fail_unless (d.seconds > media_s - 1 && d.seconds < call_s + 1,
      "recording %.2f s, call %.2f s (%.2f s since its media flowed)",
      d.seconds, call_s, media_s);
  fail_unless (
      fabs (json_object_get_double_member (rec, "seconds") - d.seconds) < 0.5,
      "the record says %.2f s, the file has %.2f s",
      json_object_get_double_member (rec, "seconds"), d.seconds);
  fail_unless (d.caller_alone >= 5, "the caller is not on the left alone");
  fail_unless (d.agent_alone >= 5, "the agent is not on the right alone");

  /* Not asked for: not recorded (its delivery is the 4th request). */
  id2 = unrecorded_call (whip);
  wait_ok (r, 2, 60);
  fail_unless_equals_int (receiver_count (r, NULL), 4);
  body2 = json_from_string (g_ptr_array_index (r->bodies, 3), NULL);
  fail_unless (body2 && JSON_NODE_HOLDS_OBJECT (body2));
  fail_unless_equals_string (
      json_object_get_string_member (json_node_get_object (body2), "id"), id2);
  fail_unless (
      json_object_has_member (json_node_get_object (body2), "recording") &&
          json_object_get_null_member (
              json_node_get_object (body2), "recording"),
      "the call without ?record=1 has a recording: %s",
      (gchar *)g_ptr_array_index (r->bodies, 3));
  files = dir_listing (rec_dir);
  want = g_strdup_printf ("%s.opus", id);
  fail_unless_equals_string (files, want);

  emu_process_stop (server);
  g_file_get_contents (log, &logged, NULL, NULL);
  fail_unless (logged != NULL);
  fail_if (strstr (logged, SECRET), "the webhook secret is in the log");

  /* What the database kept is what the webhook posted. */
  stored = calls_json (db, id);
  fail_unless (json_node_equal (stored, body),
      "calls json %s differs from the webhook's body:\n%s\n%s", id,
      json_to_string (stored, FALSE),
      (gchar *)g_ptr_array_index (r->bodies, 2));
  json_node_unref (stored);
  stored = calls_json (db, id2);
  fail_unless (json_node_equal (stored, body2),
      "calls json %s differs from the webhook's body:\n%s\n%s", id2,
      json_to_string (stored, FALSE),
      (gchar *)g_ptr_array_index (r->bodies, 3));
  json_node_unref (stored);

  json_node_unref (body);
  json_node_unref (body2);
  g_free (logged);
  g_unsetenv ("VOICEAGENT_WEBHOOK_SECRET");
  g_unsetenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS");
  receiver_free (r);
  g_free (files);
  g_free (want);
  g_free (path);
  g_free (id);
  g_free (id2);
  g_free (whip);
  g_free (whip_rec);
  g_free (wav);
  g_free (url);
  g_free (db);
  g_free (log);
  g_free (rec_dir);
  g_free (script);
  g_free (emu_args);
  test_process_remove_tree (dir);
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

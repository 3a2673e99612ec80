/* Scale-out: several voiceagent instances sharing one redis-server, all on
 * loopback, every service on one shared emulator: redirects when full,
 * resume on another instance after kill -9, Redis restarted mid-call; one
 * instance behind a Sentinel through a failover, and behind a three-node
 * Cluster through a slot move.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>
#include <hiredis/hiredis.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "emulator-process.h"
#include "redis-process.h"
#include "redisstate.h"
#include "test-process.h"
#include "whip-check.h"

#define REPLY_TIMEOUT_MS 30000

/* redisstate.c logs here (main.c defines it in the server). */
GST_DEBUG_CATEGORY (voiceagent_debug);
#define EMULATOR_KEY "local-emulator-key"

/* ---- redis-server ---- */

/* Starts redis-server on @port (0: a free one) with the configuration
 * file @conf and @extra arguments (both may be NULL), or fails the test. */
static void
redis_start_args (
    RedisProcess *r, guint port, const gchar *conf, const gchar *const *extra)
{
  fail_unless (redis_process_start (r, port, conf, extra),
      "redis-server did not start (why is above)");
}

static void
redis_start (RedisProcess *r, guint port)
{
  redis_start_args (r, port, NULL, NULL);
}

/* HGET {voiceagent}:call:<token> @field on 127.0.0.1:@port, or NULL (free
 * it). */
static gchar *
call_field (guint port, const gchar *token, const gchar *field)
{
  redisContext *ctx = redis_process_connect (port);
  redisReply *reply;
  gchar *value = NULL;

  if (ctx == NULL)
    return NULL;
  reply = redisCommand (ctx, "HGET {voiceagent}:call:%s %s", token, field);
  if (reply && reply->type == REDIS_REPLY_STRING)
    value = g_strdup (reply->str);
  if (reply)
    freeReplyObject (reply);
  redisFree (ctx);
  return value;
}

/* Waits until the call's @field on @port contains @needle; returns it
 * (free). */
static gchar *
wait_call_field (
    guint port, const gchar *token, const gchar *field, const gchar *needle)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gchar *v = NULL;

  while (g_get_monotonic_time () < deadline) {
    g_free (v);
    v = call_field (port, token, field);
    if (v && strstr (v, needle))
      return v;
    g_usleep (50000);
  }
  fail ("call %s: %s never held \"%s\" (last: %s)", token, field, needle,
      v ? v : "(none)");
  return v;
}

/* ---- Services and instances ---- */

static EmuProcess *
emulator_start (void)
{
  const gchar *args[] = { "--quiet", "--stt-engine", "scripted", "--tts-engine",
    "tone", NULL };
  EmuProcess *emu = emu_process_start (args);

  fail_unless (emu != NULL, "the emulator did not start");
  return emu;
}

/* A voiceagent with --redis @redis, every service on @emu. */
static EmuProcess *
instance_start_url (EmuProcess *emu, const gchar *redis, guint max_calls)
{
  static guint n;
  gchar *dg = g_strdup_printf ("%s/v1/listen", emu_process_get_ws_url (emu));
  gchar *llm = g_strdup_printf ("%s/v1", emu_process_get_http_url (emu));
  gchar *max = g_strdup_printf ("%u", max_calls);
  gchar *db = g_strdup_printf (
      "%s/voiceagent-scaleout-%d-%u.db", g_get_tmp_dir (), getpid (), n++);
  const gchar *args[] = { "--redis", redis, "--database", db, "--deepgram-url",
    dg, "--deepgram-key", EMULATOR_KEY, "--elevenlabs-url",
    emu_process_get_ws_url (emu), "--elevenlabs-key", EMULATOR_KEY, "--llm-url",
    llm, "--llm-key", EMULATOR_KEY, "--max-calls", max, "--ice-timeout-ms",
    "1000", "--drain-timeout", "1", NULL };
  EmuProcess *p = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);

  fail_unless (p != NULL, "voiceagent did not start");
  g_free (dg);
  g_free (llm);
  g_free (max);
  g_free (db);
  return p;
}

/* A voiceagent with --redis on @redis_port. */
static EmuProcess *
instance_start (EmuProcess *emu, guint redis_port, guint max_calls)
{
  gchar *redis = g_strdup_printf ("redis://127.0.0.1:%u", redis_port);
  EmuProcess *p = instance_start_url (emu, redis, max_calls);

  g_free (redis);
  return p;
}

/* GET /readyz, parsed. Returns a JsonObject (unref) or NULL. */
static JsonObject *
readyz (EmuProcess *p)
{
  gchar *body = emu_process_request (p, "/readyz", NULL, NULL);
  JsonParser *parser = json_parser_new ();
  JsonObject *o = NULL;

  if (body && json_parser_load_from_data (parser, body, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    o = json_object_ref (json_node_get_object (json_parser_get_root (parser)));
  g_object_unref (parser);
  g_free (body);
  return o;
}

/* Waits until /readyz says @status and sees @instances live ones. */
static void
wait_ready (EmuProcess *p, const gchar *status, gint instances)
{
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  gchar *last = NULL;

  while (g_get_monotonic_time () < deadline) {
    JsonObject *o = readyz (p);
    gboolean ok = o &&
        g_strcmp0 (json_object_get_string_member_with_default (o, "status", ""),
            status) == 0 &&
        (instances < 0 ||
            json_object_get_int_member_with_default (o, "instances", 0) ==
                instances);
    g_free (last);
    last = o
        ? g_strdup (json_object_get_string_member_with_default (o, "redis", ""))
        : NULL;
    if (o)
      json_object_unref (o);
    if (ok) {
      g_free (last);
      return;
    }
    g_usleep (100000);
  }
  fail ("/readyz never said %s with %d instances (redis: %s)", status,
      instances, last ? last : "?");
}

static gchar *
instance_id (EmuProcess *p)
{
  JsonObject *o = readyz (p);
  gchar *id;

  fail_unless (o != NULL);
  id =
      g_strdup (json_object_get_string_member_with_default (o, "instance", ""));
  json_object_unref (o);
  return id;
}

/* ---- Callers ---- */

static WhipCaller *
caller_new (EmuProcess *server, const gchar *resume)
{
  gchar *url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  WhipCallerOptions o = { .url = url, .data_channel = TRUE, .resume = resume };
  WhipCaller *c = whip_caller_new (&o);

  g_free (url);
  return c;
}

static WhipCaller *
call (EmuProcess *server, const gchar *resume)
{
  WhipCaller *c = caller_new (server, resume);
  GError *error = NULL;
  guint status = whip_caller_connect (c, &error);

  fail_unless_equals_int (status, 201);
  g_clear_error (&error);
  return c;
}

static void
hang_up (WhipCaller *c)
{
  whip_caller_hangup (c);
  whip_caller_free (c);
}

/* Waits until GET /calls on @server lists @n calls. */
static void
wait_calls (EmuProcess *server, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  guint seen = G_MAXUINT;

  while (seen != n && g_get_monotonic_time () < deadline) {
    gchar *body = emu_process_request (server, "/calls", NULL, NULL);
    JsonNode *root = body ? json_from_string (body, NULL) : NULL;
    seen = root && JSON_NODE_HOLDS_ARRAY (root)
        ? json_array_get_length (json_node_get_array (root))
        : G_MAXUINT;
    g_clear_pointer (&root, json_node_unref);
    g_free (body);
    if (seen != n)
      g_usleep (50000);
  }
  fail_unless_equals_int (seen, n);
}

static gchar *
resume_token (WhipCaller *c)
{
  const gchar *t =
      whip_caller_get_response_header (c, "Voiceagent-Resume-Token");

  fail_unless (t != NULL, "no Voiceagent-Resume-Token");
  return g_strdup (t);
}

/* Says @text and waits until the call's history on @redis_port holds it. */
static void
tell (WhipCaller *c, guint redis_port, const gchar *token, const gchar *text)
{
  g_free (whip_check_ask (c, text, REPLY_TIMEOUT_MS));
  g_free (wait_call_field (redis_port, token, "history", text));
}

static gboolean
port_in (const gchar *url, EmuProcess *p)
{
  gchar *needle = g_strdup_printf (":%u/", emu_process_get_port (p));
  gboolean in = url && strstr (url, needle) != NULL;

  g_free (needle);
  return in;
}

/* POSTs an offer-less body to @server's /whip without following
 * redirects: capacity is decided before the body is read. */
static guint
raw_post (EmuProcess *server, gchar **location)
{
  SoupSession *s = soup_session_new ();
  gchar *url = g_strconcat (emu_process_get_http_url (server), "/whip", NULL);
  SoupMessage *msg = soup_message_new ("POST", url);
  GBytes *body = g_bytes_new_static ("v=0\r\n", 5);
  GBytes *reply;
  guint status;

  soup_message_set_request_body_from_bytes (msg, "application/sdp", body);
  soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
  reply = soup_session_send_and_read (s, msg, NULL, NULL);
  status = soup_message_get_status (msg);
  *location = g_strdup (soup_message_headers_get_one (
      soup_message_get_response_headers (msg), "Location"));
  g_clear_pointer (&reply, g_bytes_unref);
  g_bytes_unref (body);
  g_object_unref (msg);
  g_free (url);
  g_object_unref (s);
  return status;
}

/* A full instance (max-calls 1) answers 307 to a live instance with room;
 * a caller that follows it is answered there; with every instance full
 * the answer is 503. */
GST_START_TEST (test_redirect_when_full)
{
  RedisProcess redis = { 0 };
  EmuProcess *emu = emulator_start (), *in[3];
  WhipCaller *c[3];
  gchar *location = NULL;
  guint i, status;

  redis_start (&redis, 0);
  for (i = 0; i < 3; i++)
    in[i] = instance_start (emu, redis.port, 1);
  for (i = 0; i < 3; i++)
    wait_ready (in[i], "ready", 3);

  c[0] = call (in[0], NULL);
  fail_unless_equals_int (whip_caller_get_redirects (c[0]), 0);
  fail_unless_equals_int (raw_post (in[0], &location), 307);
  fail_unless (port_in (location, in[1]) || port_in (location, in[2]),
      "redirected to %s", location);
  g_free (location);
  /* in[0] counts that redirect as a call on its target until its own
   * next heartbeat (1 s) reads the registry again. */
  g_usleep (1500 * G_TIME_SPAN_MILLISECOND);

  /* Both followers land on the two other instances, one each (a stale
   * heartbeat may send one through a second redirect first). */
  c[1] = call (in[0], NULL);
  c[2] = call (in[0], NULL);
  fail_unless (whip_caller_get_redirects (c[1]) >= 1);
  fail_unless (whip_caller_get_redirects (c[2]) >= 1);
  fail_if (port_in (whip_caller_get_session_url (c[1]), in[0]));
  fail_if (port_in (whip_caller_get_session_url (c[2]), in[0]));
  fail_if (g_str_equal (
      whip_caller_get_session_url (c[1]), whip_caller_get_session_url (c[2])));
  /* The registry is eventually consistent: a heartbeat sent just before
   * an instance took its call may still count it empty for up to one
   * heartbeat (1 s) plus the time a call takes to start. */
  status = 0;
  for (i = 0; i < 50 && status != 503; i++) {
    if (i > 0)
      g_usleep (100 * 1000);
    status = raw_post (in[0], &location);
    g_clear_pointer (&location, g_free);
  }
  fail_unless_equals_int (status, 503);

  for (i = 0; i < 3; i++) {
    whip_caller_hangup (c[i]);
    whip_caller_free (c[i]);
  }
  for (i = 0; i < 3; i++)
    emu_process_stop (in[i]);
  emu_process_stop (emu);
  redis_process_stop (&redis);
}

GST_END_TEST;

/* kill -9 of the caller's instance: the caller POSTs again with its
 * resume token to another instance, which rebuilds the call with the
 * stored history (the agent remembers what was said) within 100 ms of
 * server time for the state. */
GST_START_TEST (test_resume_after_kill)
{
  RedisProcess redis = { 0 };
  EmuProcess *emu = emulator_start (), *a, *b;
  WhipCaller *c, *again;
  gchar *token, *m, *history, *owner, *b_id;
  const gchar *timing;

  redis_start (&redis, 0);
  a = instance_start (emu, redis.port, 10);
  b = instance_start (emu, redis.port, 10);
  wait_ready (a, "ready", 2);
  wait_ready (b, "ready", 2);

  c = call (a, NULL);
  token =
      g_strdup (whip_caller_get_response_header (c, "Voiceagent-Resume-Token"));
  fail_unless (token != NULL && strlen (token) == 32);
  m = whip_check_message (c, "\"type\":\"call\"", REPLY_TIMEOUT_MS);
  fail_unless (strstr (m, token) != NULL, "no resume token in %s", m);
  g_free (m);
  m = whip_check_ask (c, "My favourite colour is green.", REPLY_TIMEOUT_MS);
  g_free (m);
  /* The answer too: a turn the caller heard no answer to would be
   * answered again, together with the next one. */
  history = wait_call_field (redis.port, token, "history", "assistant");
  fail_unless (strstr (history, "green") != NULL, "history: %s", history);
  g_free (history);
  timing = whip_caller_get_response_header (c, "Server-Timing");
  g_print ("new call Server-Timing: %s\n", timing ? timing : "(none)");

  kill ((pid_t)emu_process_get_pid (a), SIGKILL);
  emu_process_stop (a);

  again = call (b, token);
  timing = whip_caller_get_response_header (again, "Server-Timing");
  g_print ("resume Server-Timing: %s\n", timing ? timing : "(none)");
  fail_unless (timing && g_str_has_prefix (timing, "state;dur="));
  fail_unless (g_ascii_strtod (timing + strlen ("state;dur="), NULL) < 100.0,
      "state took %s", timing);
  fail_unless_equals_string (
      whip_caller_get_response_header (again, "Voiceagent-Resume-Token"),
      token);
  m = whip_check_message (again, "\"type\":\"call\"", REPLY_TIMEOUT_MS);
  g_free (m);
  /* The emulator answers this from the earlier user message. */
  m = whip_check_ask (again, "What did I say?", REPLY_TIMEOUT_MS);
  fail_unless (strstr (m, "green") != NULL, "the agent forgot: %s", m);
  g_free (m);
  m = emu_process_request (b, "/metrics", NULL, NULL);
  fail_unless (m && strstr (m, "voiceagent_calls_resumed_total 1\n"));
  g_free (m);
  b_id = instance_id (b);
  owner = call_field (redis.port, token, "owner");
  fail_unless_equals_string (owner, b_id);
  g_free (owner);
  g_free (b_id);

  /* Hung up: the token resumes nothing any more. */
  fail_unless_equals_int (whip_caller_hangup (again), 200);
  history = wait_call_field (redis.port, token, "state", "ended");
  g_free (history);
  whip_caller_free (again);
  again = caller_new (b, token);
  fail_unless_equals_int (whip_caller_connect (again, NULL), 404);
  whip_caller_free (again);

  whip_caller_free (c);
  g_free (token);
  emu_process_stop (b);
  emu_process_stop (emu);
  redis_process_stop (&redis);
}

GST_END_TEST;

/* Redis stops mid-call: the call goes on, new calls are still taken
 * (/readyz says degraded); when Redis is back, every live call's state is
 * written again, including what was said during the outage, and the end
 * of a call that ended meanwhile. */
GST_START_TEST (test_redis_restart)
{
  RedisProcess redis = { 0 };
  EmuProcess *emu = emulator_start (), *a;
  WhipCaller *c, *during, *brief;
  gchar *token, *token2, *token3, *m, *v;
  guint port;

  redis_start (&redis, 0);
  port = redis.port;
  a = instance_start (emu, port, 10);
  wait_ready (a, "ready", 1);
  c = call (a, NULL);
  token = resume_token (c);
  tell (c, redis.port, token, "I live in Paris.");

  redis_process_stop (&redis);
  wait_ready (a, "degraded", -1);
  m = whip_check_ask (c, "My dog is called Rex.", REPLY_TIMEOUT_MS);
  g_free (m);
  during = call (a, NULL);
  token2 = resume_token (during);
  brief = call (a, NULL);
  token3 = resume_token (brief);
  hang_up (brief);
  wait_calls (a, 2);

  redis_start (&redis, port);
  wait_ready (a, "ready", 1);
  v = wait_call_field (redis.port, token, "history", "Rex");
  fail_unless (strstr (v, "Paris") != NULL, "history lost: %s", v);
  g_free (v);
  v = wait_call_field (redis.port, token2, "state", "live");
  g_free (v);
  /* Its end was written once Redis was back. */
  v = wait_call_field (redis.port, token3, "state", "ended");
  g_free (v);
  v = wait_call_field (redis.port, token3, "end_reason", "hangup");
  g_free (v);
  /* The call itself never noticed. */
  m = whip_check_ask (c, "What did I say?", REPLY_TIMEOUT_MS);
  fail_unless (strstr (m, "Rex") != NULL, "the agent forgot: %s", m);
  g_free (m);

  whip_caller_hangup (c);
  whip_caller_hangup (during);
  whip_caller_free (c);
  whip_caller_free (during);
  g_free (token);
  g_free (token2);
  g_free (token3);
  emu_process_stop (a);
  emu_process_stop (emu);
  redis_process_stop (&redis);
}

GST_END_TEST;

/* Runs @argv on 127.0.0.1:@port; returns the reply (free it) or NULL. */
static redisReply *
redis_run (guint port, const gchar *const *argv)
{
  redisContext *ctx = redis_process_connect (port);
  redisReply *reply;

  if (ctx == NULL)
    return NULL;
  reply = redisCommandArgv (
      ctx, (int)g_strv_length ((gchar **)argv), (const char **)argv, NULL);
  redisFree (ctx);
  return reply;
}

/* The key's remaining time to live on 127.0.0.1:@port, in ms: -2 when it
 * does not exist there. */
static long long
key_pttl (guint port, const gchar *key)
{
  redisReply *reply = redis_run (port, (const gchar *[]){ "PTTL", key, NULL });
  long long ttl =
      reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -2;

  if (reply)
    freeReplyObject (reply);
  return ttl;
}

/* Waits until this instance's registry entry on @port was refreshed by a
 * heartbeat no longer than 1.5 s ago (its TTL is 3 s). With @erase, the
 * entry is deleted first: one copied there by replication does not count. */
static void
wait_heartbeat_on (guint port, EmuProcess *instance, gboolean erase)
{
  gchar *id = instance_id (instance);
  gchar *key = g_strconcat (VA_REDIS_KEY_TAG ":instance:", id, NULL);
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  redisReply *reply =
      erase ? redis_run (port, (const gchar *[]){ "DEL", key, NULL }) : NULL;

  fail_if (erase && (reply == NULL || reply->type != REDIS_REPLY_INTEGER));
  if (reply)
    freeReplyObject (reply);

  while (g_get_monotonic_time () < deadline && key_pttl (port, key) < 1500)
    g_usleep (50000);
  fail_unless (key_pttl (port, key) >= 1500,
      "instance %s sends no heartbeat to 127.0.0.1:%u", id, port);
  g_free (key);
  g_free (id);
}

/* Whether INFO on @port contains @text. */
static gboolean
info_has (guint port, const gchar *text)
{
  redisReply *reply = redis_run (port, (const gchar *[]){ "INFO", NULL });
  gboolean has =
      reply && reply->type == REDIS_REPLY_STRING && strstr (reply->str, text);

  if (reply)
    freeReplyObject (reply);
  return has;
}

static gboolean
is_primary (guint port)
{
  redisReply *reply = redis_run (port, (const gchar *[]){ "ROLE", NULL });
  gboolean primary = reply && reply->type == REDIS_REPLY_ARRAY &&
      reply->elements > 0 && g_strcmp0 (reply->element[0]->str, "master") == 0;

  if (reply)
    freeReplyObject (reply);
  return primary;
}

/* --redis redis-sentinel://: the instance asks Sentinel for the primary,
 * keeps the call's state there, and after a failover writes to the new
 * primary (its heartbeat refreshes its registry entry there). */
GST_START_TEST (test_sentinel_failover)
{
  RedisProcess primary = { 0 }, replica = { 0 }, sentinel = { 0 };
  gchar *dir = g_dir_make_tmp ("voiceagent-sentinel-XXXXXX", NULL);
  gchar *conf = g_build_filename (dir, "sentinel.conf", NULL);
  gchar *text, *port, *url, *token, *v;
  EmuProcess *emu = emulator_start (), *a;
  WhipCaller *c;
  redisReply *reply;
  guint i;

  redis_start (&primary, 0);
  port = g_strdup_printf ("%u", primary.port);
  redis_start_args (&replica, 0, NULL,
      (const gchar *[]){ "--replicaof", "127.0.0.1", port, NULL });
  /* Sentinel learns of replicas from the primary: attached first. */
  for (i = 0; i < 100 && !info_has (primary.port, "connected_slaves:1"); i++)
    g_usleep (100000);
  fail_unless (info_has (primary.port, "connected_slaves:1"));
  text = g_strdup_printf ("sentinel monitor grp 127.0.0.1 %s 1\n"
                          "sentinel down-after-milliseconds grp 1000\n"
                          "sentinel failover-timeout grp 3000\n",
      port);
  fail_unless (g_file_set_contents (conf, text, -1, NULL));
  redis_start_args (
      &sentinel, 0, conf, (const gchar *[]){ "--sentinel", NULL });
  url = g_strdup_printf ("redis-sentinel://127.0.0.1:%u/grp", sentinel.port);
  a = instance_start_url (emu, url, 10);
  wait_ready (a, "ready", 1);
  wait_heartbeat_on (primary.port, a, FALSE);
  c = call (a, NULL);
  token = resume_token (c);
  tell (c, primary.port, token, "I live in Paris.");

  /* NOGOODSLAVE until Sentinel has seen the replica */
  for (i = 0; i < 100; i++) {
    reply = redis_run (sentinel.port,
        (const gchar *[]){ "SENTINEL", "FAILOVER", "grp", NULL });
    fail_unless (reply != NULL);
    if (reply->type == REDIS_REPLY_STATUS)
      break;
    freeReplyObject (reply);
    reply = NULL;
    g_usleep (100000);
  }
  fail_unless (reply != NULL, "SENTINEL FAILOVER was refused for 10 s");
  freeReplyObject (reply);
  for (i = 0; i < 100 && !is_primary (replica.port); i++)
    g_usleep (100000);
  fail_unless (is_primary (replica.port), "Sentinel did not fail over");
  wait_heartbeat_on (replica.port, a, TRUE);
  tell (c, replica.port, token, "My dog is called Rex.");
  v = call_field (replica.port, token, "history");
  fail_unless (strstr (v, "Paris") != NULL, "history lost: %s", v);
  g_free (v);

  hang_up (c);
  emu_process_stop (a);
  emu_process_stop (emu);
  redis_process_stop (&sentinel);
  redis_process_stop (&replica);
  redis_process_stop (&primary);
  g_unlink (conf);
  g_rmdir (dir);
  g_free (conf);
  g_free (dir);
  g_free (url);
  g_free (text);
  g_free (port);
  g_free (token);
}

GST_END_TEST;

/* The 127.0.0.1 port of the Cluster primary that serves @slot. */
static guint
slot_owner (guint port, long long slot)
{
  redisReply *map =
      redis_run (port, (const gchar *[]){ "CLUSTER", "SLOTS", NULL });
  guint owner = 0;

  for (gsize i = 0; map && i < map->elements; i++) {
    redisReply *range = map->element[i];
    if (slot >= range->element[0]->integer &&
        slot <= range->element[1]->integer)
      owner = (guint)range->element[2]->element[1]->integer;
  }
  if (map)
    freeReplyObject (map);
  return owner;
}

static gboolean
cluster_ok (guint port)
{
  redisReply *reply =
      redis_run (port, (const gchar *[]){ "CLUSTER", "INFO", NULL });
  gboolean ok = reply && reply->type == REDIS_REPLY_STRING &&
      strstr (reply->str, "cluster_state:ok");

  if (reply)
    freeReplyObject (reply);
  return ok;
}

/* CLUSTER MYID of the node on @port (free it). */
static gchar *
node_id (guint port)
{
  redisReply *reply =
      redis_run (port, (const gchar *[]){ "CLUSTER", "MYID", NULL });
  gchar *id;

  fail_unless (reply && reply->type == REDIS_REPLY_STRING);
  id = g_strdup (reply->str);
  freeReplyObject (reply);
  return id;
}

static gboolean
all_cluster_ok (const RedisProcess *nodes)
{
  return cluster_ok (nodes[0].port) && cluster_ok (nodes[1].port) &&
      cluster_ok (nodes[2].port);
}

/* Runs redis-cli --cluster with @args against the node on @port. */
static void
cluster_tool (guint port, const gchar *const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  GError *error = NULL;
  gint status = -1;
  gchar *out = NULL;

  g_ptr_array_add (argv, g_strdup ("redis-cli"));
  g_ptr_array_add (argv, g_strdup ("--cluster"));
  g_ptr_array_add (argv, g_strdup (args[0]));
  g_ptr_array_add (argv, g_strdup_printf ("127.0.0.1:%u", port));
  for (guint i = 1; args[i]; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, g_strdup ("--cluster-yes"));
  g_ptr_array_add (argv, NULL);
  fail_unless (g_spawn_sync (NULL, (gchar **)argv->pdata, NULL,
                   G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                   &out, NULL, &status, &error),
      "redis-cli: %s", error ? error->message : "");
  fail_unless (g_spawn_check_wait_status (status, NULL),
      "redis-cli --cluster %s failed: %s", args[0], out);
  g_free (out);
  g_ptr_array_unref (argv);
}

/* --redis naming any node of a Redis Cluster: the instance follows it to
 * the primary of the one slot all its keys hash to (VA_REDIS_KEY_TAG),
 * keeps a call's state there, and after that slot moves to another node
 * (MOVED) follows it again. */
GST_START_TEST (test_cluster)
{
  RedisProcess nodes[3] = { { 0 } };
  guint ports[6];
  gchar *url, *token, *v, *from, *to;
  EmuProcess *emu = emulator_start (), *a;
  redisReply *reply;
  guint owner, other, i;
  long long slot;
  WhipCaller *c;

  /* Data ports, then bus ports: the bus port defaults to port + 10000,
   * past 65535 for most free ports. */
  fail_unless (test_process_free_ports (6, ports));
  for (i = 0; i < 3; i++) {
    gchar *bus = g_strdup_printf ("%u", ports[3 + i]);
    /* nodes.conf goes to the node's --dir */
    redis_start_args (&nodes[i], ports[i], NULL,
        (const gchar *[]){ "--cluster-enabled", "yes", "--cluster-config-file",
            "nodes.conf", "--cluster-port", bus, "--cluster-node-timeout",
            "2000", NULL });
    g_free (bus);
  }
  from = g_strdup_printf ("127.0.0.1:%u", nodes[1].port);
  to = g_strdup_printf ("127.0.0.1:%u", nodes[2].port);
  cluster_tool (nodes[0].port,
      (const gchar *[]){ "create", from, to, "--cluster-replicas", "0", NULL });
  g_free (from);
  g_free (to);
  for (i = 0; i < 100 && !all_cluster_ok (nodes); i++)
    g_usleep (100000);
  fail_unless (all_cluster_ok (nodes), "the Cluster did not form");
  reply = redis_run (nodes[0].port,
      (const gchar *[]){ "CLUSTER", "KEYSLOT", VA_REDIS_KEY_TAG, NULL });
  fail_unless (reply && reply->type == REDIS_REPLY_INTEGER);
  slot = reply->integer;
  freeReplyObject (reply);
  owner = slot_owner (nodes[0].port, slot);
  other = owner == nodes[0].port ? nodes[1].port : nodes[0].port;

  /* Named: a node that does not serve the slot. */
  url = g_strdup_printf ("redis://127.0.0.1:%u", other);
  a = instance_start_url (emu, url, 10);
  wait_ready (a, "ready", 1);
  wait_heartbeat_on (owner, a, FALSE);
  c = call (a, NULL);
  token = resume_token (c);
  tell (c, owner, token, "I live in Paris.");

  /* Every slot of the owner moves to @other. */
  from = node_id (owner);
  to = node_id (other);
  cluster_tool (owner,
      (const gchar *[]){ "reshard", "--cluster-from", from, "--cluster-to", to,
          "--cluster-slots", "16384", NULL });
  fail_unless_equals_int (slot_owner (other, slot), other);
  wait_heartbeat_on (other, a, TRUE);
  tell (c, other, token, "My dog is called Rex.");
  v = call_field (other, token, "history");
  fail_unless (strstr (v, "Paris") != NULL, "history lost: %s", v);
  g_free (v);

  hang_up (c);
  emu_process_stop (a);
  emu_process_stop (emu);
  for (i = 0; i < 3; i++)
    redis_process_stop (&nodes[i]);
  g_free (url);
  g_free (from);
  g_free (to);
  g_free (token);
}

GST_END_TEST;

/* --redis URL forms: password (percent-decoded), ACL user, db, default
 * ports, Sentinel groups, lists; bad ones refused without quoting the
 * password. */
GST_START_TEST (test_redis_urls)
{
  const gchar *bad[] = { "redis-sentinel://:secret@s1",
    "redis-sentinel://h/%zz", "redis-sentinel://h//2", "redis://h/1/2",
    "redis://h/x", "redis://h?db=1", "rediss://:secret@h:6379",
    "redis://:secret/x@h", "10.0.0.2:6379", " , " };
  GError *error = NULL;
  GPtrArray *list = va_redis_parse_urls (
      "redis://:p%40ss@10.0.0.2:6380/3, redis://app:pw@host-b", &error);
  VaRedisAddress *a;

  fail_unless (list != NULL && list->len == 2);
  a = g_ptr_array_index (list, 0);
  fail_unless_equals_string (a->host, "10.0.0.2");
  fail_unless_equals_int (a->port, 6380);
  fail_unless_equals_int (a->db, 3);
  fail_unless (a->user == NULL);
  fail_unless_equals_string (a->password, "p@ss");
  a = g_ptr_array_index (list, 1);
  fail_unless_equals_string (a->host, "host-b");
  fail_unless_equals_int (a->port, 6379);
  fail_unless_equals_string (a->user, "app");
  fail_unless_equals_string (a->password, "pw");
  fail_unless (a->sentinel_group == NULL);
  g_ptr_array_unref (list);

  list = va_redis_parse_urls ("redis-sentinel://:pw@s1/my%20group/2,"
                              "redis-sentinel://s2:26380/g",
      &error);
  fail_unless (list != NULL && list->len == 2);
  a = g_ptr_array_index (list, 0);
  fail_unless_equals_string (a->host, "s1");
  fail_unless_equals_int (a->port, 26379);
  fail_unless_equals_string (a->sentinel_group, "my group");
  fail_unless_equals_int (a->db, 2);
  fail_unless_equals_string (a->password, "pw");
  a = g_ptr_array_index (list, 1);
  fail_unless_equals_int (a->port, 26380);
  fail_unless_equals_string (a->sentinel_group, "g");
  fail_unless_equals_int (a->db, 0);
  g_ptr_array_unref (list);

  /* A Sentinel needs its group; a node takes no more than a db. */
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    fail_if (va_redis_parse_urls (bad[i], &error), "%s accepted", bad[i]);
    fail_if (strstr (error->message, "secret"), "%s", error->message);
    g_clear_error (&error);
  }
}

GST_END_TEST;

static Suite *
scaleout_suite (void)
{
  Suite *s = suite_create ("scaleout");
  TCase *tc = tcase_create ("redis");

  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_redis_urls);
  tcase_add_test (tc, test_redirect_when_full);
  tcase_add_test (tc, test_resume_after_kill);
  tcase_add_test (tc, test_redis_restart);
  tcase_add_test (tc, test_sentinel_failover);
  tcase_add_test (tc, test_cluster);
  return s;
}

GST_CHECK_MAIN (scaleout);

/* Gateway mode end to end: a real Janus with janus.plugin.voiceagent, a
 * redis-server, voiceagent workers and a voiceagent front, all of the
 * test's own on loopback; a webrtcbin caller (tests/common/whip-caller)
 * that knows nothing of gateways.
 * - failover: the worker serving the call is killed with SIGKILL
 *   mid-conversation: the caller's connection stays up and the next turn
 *   is answered by the other worker, with the history intact; the call's
 *   one record, in the workers' shared PostgreSQL, holds both workers'
 *   turns;
 * - trickle: a caller that offers without candidates and PATCHes them
 *   (RFC 9725 §4.3.1) gets media through the gateway; the PATCH contract
 *   (If-Match, Content-Type, fragment, ICE restart) holds as in direct
 *   mode.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <gio/gio.h>
#include <gst/check/gstcheck.h>
#include "emulator-process.h"
#include "janus-process.h"
#include "pg-server.h"
#include "redis-process.h"
#include "test-process.h"
#include "test-skip.h"
#include "whip-check.h"

#define CLUSTER_TOKEN "test-cluster-token"
#define EMULATOR_KEY "local-emulator-key"
#define REPLY_TIMEOUT_MS 30000
#define PG_PASSWORD "gateway-test-password"

/* A voiceagent with --redis, every service on @emu, and the flags of
 * @extra (NULL-terminated, at most 4). Its records go to @database_url
 * (the environment, not argv: it holds a password), or to a SQLite file of
 * its own when NULL. */
static EmuProcess *
instance_start (EmuProcess *emu, const gchar *redis, const gchar *database_url,
    const gchar *const *extra)
{
  static guint n;
  gchar *dg = g_strdup_printf ("%s/v1/listen", emu_process_get_ws_url (emu));
  gchar *llm = g_strdup_printf ("%s/v1", emu_process_get_http_url (emu));
  gchar *db = g_strdup_printf (
      "%s/voiceagent-gateway-%d-%u.db", g_get_tmp_dir (), getpid (), n++);
  const gchar *args[] = { "--redis", redis, "--deepgram-url", dg,
    "--deepgram-key", EMULATOR_KEY, "--elevenlabs-url",
    emu_process_get_ws_url (emu), "--elevenlabs-key", EMULATOR_KEY, "--llm-url",
    llm, "--llm-key", EMULATOR_KEY, "--drain-timeout", "1", NULL, NULL, NULL,
    NULL, NULL };
  EmuProcess *p;
  guint i, first = G_N_ELEMENTS (args) - 5;

  for (i = 0; extra && extra[i]; i++) {
    g_assert (first + i < G_N_ELEMENTS (args) - 1);
    args[first + i] = extra[i];
  }

  g_setenv ("VOICEAGENT_CLUSTER_TOKEN", CLUSTER_TOKEN, TRUE);
  g_setenv ("VOICEAGENT_DATABASE_URL", database_url ? database_url : db, TRUE);
  p = emu_process_start_program (g_getenv ("VOICEAGENT_BIN"), args);
  fail_unless (p != NULL, "voiceagent did not start");
  g_unsetenv ("VOICEAGENT_DATABASE_URL");
  g_free (dg);
  g_free (llm);
  g_free (db);
  return p;
}

/* Waits until the front's /readyz sees @n live instances. */
static void
wait_instances (EmuProcess *front, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  gchar *needle = g_strdup_printf ("\"instances\":%u", n);
  gboolean ok = FALSE;

  while (!ok && g_get_monotonic_time () < deadline) {
    gchar *body = emu_process_request (front, "/readyz", NULL, NULL);
    ok = body && strstr (body, needle);
    g_free (body);
    if (!ok)
      g_usleep (100000);
  }
  fail_unless (ok, "the front never saw %u instances", n);
  g_free (needle);
}

/* Which of @workers runs the call @id (its /calls lists it), or -1. */
static gint
serving (EmuProcess **workers, guint n, const gchar *id)
{
  for (guint i = 0; i < n; i++) {
    gchar *body = emu_process_request (workers[i], "/calls", NULL, NULL);
    gboolean here = body && strstr (body, id);
    g_free (body);
    if (here)
      return (gint)i;
  }
  return -1;
}

/* Waits until the front's /metrics counts one failover, and prints how
 * long it took. */
static void
wait_failover (EmuProcess *front)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gchar *m = NULL;
  const gchar *sum;

  while (g_get_monotonic_time () < deadline) {
    g_free (m);
    m = emu_process_request (front, "/metrics", NULL, NULL);
    if (m && strstr (m, "voiceagent_gateway_failover_seconds_count 1"))
      break;
    g_usleep (20000);
  }
  fail_unless (m && strstr (m, "voiceagent_gateway_failover_seconds_count 1"),
      "no call moved, or its new worker never heard the caller: %s",
      m ? m : "(no metrics)");
  sum = strstr (m, "voiceagent_gateway_failover_seconds_sum ");
  if (sum)
    g_print ("failover: %.1f ms from the worker's death to the new worker "
             "hearing the caller\n",
        1000 *
            g_ascii_strtod (
                sum + strlen ("voiceagent_gateway_failover_seconds_sum "),
                NULL));
  g_free (m);
}

/* Everything a gateway call needs: the emulated services, Janus, Redis,
 * workers and the front. */
typedef struct
{
  EmuProcess *emu;
  JanusProcess *janus;
  RedisProcess redis;
  gchar *redis_url;
  EmuProcess *workers[2];
  guint n_workers;
  EmuProcess *front;
  gchar *whip_url; /* the front's WHIP endpoint */
  gchar *record_dir; /* the workers' --record (opt-in), or NULL */
  PgTestDb *pg; /* the workers' call records, or NULL: SQLite each */
} Cluster;

/* With @record, the workers record the calls whose caller asked for it. */
static void
cluster_start (
    Cluster *k, guint n_workers, gboolean postgresql, gboolean record)
{
  const gchar *emu_args[] = { "--quiet", "--stt-engine", "scripted",
    "--tts-engine", "tone", NULL };
  const gchar *worker_args[] = { "--record", NULL, "--record-calls", "opt-in",
    NULL };
  const gchar *front_args[] = { "--gateway", NULL, NULL };
  JanusProcessOptions jopts = { 0 };

  memset (k, 0, sizeof *k);
  k->emu = emu_process_start (emu_args);
  k->janus = janus_process_start (&jopts);
  fail_unless (k->emu != NULL && k->janus != NULL);
  fail_unless (redis_process_start (&k->redis, 0, NULL, NULL));
  k->redis_url = g_strdup_printf ("redis://127.0.0.1:%u", k->redis.port);
  if (postgresql)
    k->pg = pg_test_db_new (PG_PASSWORD);
  if (record)
    worker_args[1] = k->record_dir =
        g_dir_make_tmp ("voiceagent-gwrec-XXXXXX", NULL);
  for (k->n_workers = 0; k->n_workers < n_workers; k->n_workers++)
    k->workers[k->n_workers] = instance_start (k->emu, k->redis_url,
        k->pg ? k->pg->uri : NULL, record ? worker_args : NULL);
  front_args[1] = janus_process_get_url (k->janus);
  k->front = instance_start (k->emu, k->redis_url, NULL, front_args);
  wait_instances (k->front, n_workers + 1);
  k->whip_url =
      g_strconcat (emu_process_get_http_url (k->front), "/whip", NULL);
}

/* Stops what runs; a worker the test stopped itself is NULL. */
static void
cluster_stop (Cluster *k)
{
  emu_process_stop (k->front);
  for (guint i = 0; i < k->n_workers; i++)
    if (k->workers[i])
      emu_process_stop (k->workers[i]);
  janus_process_stop (k->janus, FALSE);
  redis_process_stop (&k->redis);
  g_free (k->redis_url);
  g_free (k->whip_url);
  if (k->record_dir)
    test_process_remove_tree (k->record_dir);
  g_free (k->record_dir);
  emu_process_stop (k->emu);
  g_clear_pointer (&k->pg, pg_test_db_free);
}

/* The call's record in the fleet's PostgreSQL: exactly one row, written
 * by the worker that ran it last, after hang-up (waits for it). Returns
 * its "turns" and "transcript" joined. */
static gchar *
expect_record (PgTestDb *pg, const gchar *id)
{
  PGconn *conn = pg_server_connect (pg->server, pg->db);
  const gchar *params[] = { id };
  gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
  gchar *n = NULL, *record = NULL;

  while (g_get_monotonic_time () < deadline) {
    g_free (n);
    n = pg_server_query_value (
        conn, "SELECT count(*) FROM calls WHERE id = $1", 1, params);
    if (g_strcmp0 (n, "1") == 0)
      break;
    g_usleep (100000);
  }
  fail_unless_equals_string (n, "1");
  record = pg_server_query_value (
      conn, "SELECT turns || transcript FROM calls WHERE id = $1", 1, params);
  g_free (n);
  PQfinish (conn);
  return record;
}

GST_START_TEST (test_failover)
{
  Cluster k;
  gchar *m, *id, *token;
  WhipCallerOptions o = { .data_channel = TRUE };
  WhipCaller *c;
  gint dead;
  const gchar *p;

  cluster_start (&k, 2, TRUE, FALSE);
  o.url = k.whip_url;
  c = whip_caller_new (&o);
  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  token = g_strdup_printf ("\"call_token\":\"%s\"",
      whip_caller_get_response_header (c, "Voiceagent-Call-Token"));
  m = whip_check_message (c, "\"type\":\"call\"", REPLY_TIMEOUT_MS);
  p = strstr (m, "\"id\":\"");
  fail_unless (p != NULL, "%s", m);
  id = g_strndup (p + 6, 16);
  /* The token the front answered with: the one its /calls/{id} takes. */
  fail_unless (
      strstr (m, token) != NULL, "%s has not the front's %s", m, token);
  g_free (m);
  g_free (
      whip_check_ask (c, "My favourite colour is green.", REPLY_TIMEOUT_MS));
  m = emu_process_request (k.front, "/calls", NULL, NULL);
  fail_unless (m && strstr (m, id), "the front does not list %s: %s", id, m);
  g_free (m);

  dead = serving (k.workers, 2, id);
  fail_unless (dead >= 0, "no worker lists call %s", id);
  /* Let the turn's state reach Redis (writes are coalesced over 50 ms). */
  g_usleep (300000);
  kill ((pid_t)emu_process_get_pid (k.workers[dead]), SIGKILL);
  emu_process_stop (k.workers[dead]);
  k.workers[dead] = NULL;

  /* The front moves the call within a fraction of a second; what the
   * caller says meanwhile is lost as it would be on a bad link, so the
   * next turn comes once it has moved, as a person's would. */
  wait_failover (k.front);
  /* Nothing on the caller's side: the same connection, the next turn. */
  m = whip_check_ask (c, "What did I say?", REPLY_TIMEOUT_MS);
  fail_unless (strstr (m, "green") != NULL, "the agent forgot: %s", m);
  /* The new worker's pipeline counts from 1; the call goes on at 2. */
  fail_unless (strstr (m, "\"turn\":2") != NULL, "not turn 2: %s", m);
  g_free (m);
  fail_unless_equals_int (serving (&k.workers[1 - dead], 1, id), 0);

  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
  /* One record for the fleet, both workers' turns in it (typed turns
   * have no transcript lines: only heard speech and recognized words
   * do). */
  m = expect_record (k.pg, id);
  fail_unless (strstr (m, "{\"turn\":1,") && strstr (m, "{\"turn\":2,"),
      "the record lost part of the call: %s", m);
  g_free (m);
  g_free (token);
  g_free (id);
  cluster_stop (&k);
}

GST_END_TEST;

#define SDPFRAG "application/trickle-ice-sdpfrag"

/* PATCHes @frag with @if_match (no If-Match if NULL) and @type; checks
 * the status and, for an error, that the JSON body names @fault. */
static void
expect_patch (WhipCaller *c, const gchar *type, const gchar *if_match,
    const gchar *frag, guint status, const gchar *fault)
{
  const gchar *headers[] = { "If-Match", if_match, NULL };
  const gchar *reply;

  fail_unless_equals_int (
      whip_caller_request (c, "PATCH", type, frag, if_match ? headers : NULL),
      status);
  if (fault == NULL)
    return;
  reply = whip_caller_get_reply (c);
  fail_unless (reply && strstr (reply, "\"error\"") && strstr (reply, fault),
      "PATCH %u: the body does not say \"%s\": %s", status, fault,
      reply ? reply : "(none)");
}

/* The checks direct mode makes, on a gateway call. */
static void
check_patch_contract (WhipCaller *c)
{
  const gchar *etag = whip_caller_get_etag (c);
  const gchar late[] =
      "a=candidate:9 1 UDP 2130706431 127.0.0.1 9 typ host\r\n";
  GString *many = g_string_new (NULL);

  expect_patch (c, SDPFRAG, NULL, late, 428, "If-Match");
  expect_patch (c, SDPFRAG, "\"stale\"", late, 412, "ETag");
  expect_patch (c, "text/plain", etag, late, 415, SDPFRAG);
  expect_patch (c, SDPFRAG, etag, "garbage\r\n", 400, "not an SDP fragment");
  for (guint i = 0; i <= 64; i++)
    g_string_append (many, late);
  expect_patch (c, SDPFRAG, etag, many->str, 400, "more than 64 candidates");
  g_string_free (many, TRUE);
  expect_patch (c, SDPFRAG, "*",
      "a=ice-ufrag:newufrag\r\na=ice-pwd:newpasswordnewpassword\r\n", 422,
      "not supported in gateway mode");
  /* A late candidate still goes to Janus; nothing was restarted. */
  expect_patch (c, SDPFRAG, etag, late, 204, NULL);
}

GST_START_TEST (test_trickle)
{
  Cluster k;
  WhipCallerOptions o = {
    .data_channel = TRUE, .trickle = TRUE, .ignore_answer_candidates = TRUE
  };
  WhipCaller *c;
  GError *error = NULL;
  guint status;
  gchar *url, *m, *recording;
  const gchar *id;
  gint i;

  /* The caller asks to be recorded: the front passes it on to the worker
   * (--record-calls opt-in). */
  cluster_start (&k, 1, FALSE, TRUE);
  url = g_strconcat (k.whip_url, "?record=1", NULL);
  o.url = url;
  c = whip_caller_new (&o);
  /* Each PATCH of the caller's candidates answered 204. */
  status = whip_caller_connect (c, &error);
  fail_unless (
      status == 201, "HTTP %u: %s", status, error ? error->message : "");
  fail_unless (whip_caller_get_etag (c) != NULL, "the 201 has no ETag");
  /* The caller ignored Janus's candidates: ICE came up only because
   * Janus had the caller's by trickle. Text and the agent's voice. */
  m = whip_check_message (c, "\"type\":\"call\"", REPLY_TIMEOUT_MS);
  id = strstr (m, "\"id\":\"");
  fail_unless (id != NULL, "%s", m);
  id += strlen ("\"id\":\"");
  recording = g_strdup_printf (
      "%s/%.*s.opus", k.record_dir, (gint)strcspn (id, "\""), id);
  g_free (m);
  g_free (whip_check_ask (c, "Hello there.", REPLY_TIMEOUT_MS));
  fail_unless (whip_caller_wait_audio (c, 0.05, REPLY_TIMEOUT_MS),
      "no audio from the agent through the gateway (peak RMS %.3f)",
      whip_caller_get_peak_rms (c));

  check_patch_contract (c);
  fail_unless_equals_int (
      whip_caller_request (c, "GET", NULL, NULL, NULL), 204);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  expect_patch (c, SDPFRAG, whip_caller_get_etag (c), "a=end-of-candidates\r\n",
      404, NULL);
  whip_caller_free (c);
  /* Renamed from .part once the recording's end is written. */
  for (i = 0; i < 50 && !g_file_test (recording, G_FILE_TEST_EXISTS); i++)
    g_usleep (100 * 1000);
  fail_unless (g_file_test (recording, G_FILE_TEST_EXISTS),
      "the front did not pass ?record=1 on: no %s", recording);
  g_free (recording);
  g_free (url);
  cluster_stop (&k);
}

GST_END_TEST;

static Suite *
gateway_suite (void)
{
  Suite *s = suite_create ("gateway");
  TCase *tc = tcase_create ("failover");

  tcase_set_timeout (tc, 180);
  tcase_add_test (tc, test_failover);
  suite_add_tcase (s, tc);
  tc = tcase_create ("trickle");
  tcase_set_timeout (tc, 180);
  tcase_add_test (tc, test_trickle);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gchar *missing = janus_process_missing ();
  gchar *tmp_root;

  if (missing) {
    int status = test_cannot_run ("%s", missing);
    g_free (missing);
    return status;
  }
  /* PostgreSQL's folders (and everything else temporary) go in there. */
  tmp_root = pg_server_tmpdir_new ();
  gst_check_init (&argc, &argv);
  return pg_server_run_suite (gateway_suite, tmp_root);
}

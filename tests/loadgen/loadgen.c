/* voiceagent-loadgen: many WebRTC callers in one process, measured from
 * the caller's side (docs/benchmarks.md, "Load and latency").
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each step runs N callers for a fixed time. Every caller plays a scripted
 * conversation (lg-caller.c) and measures voice-to-voice and barge-in on
 * what it hears back; the server's (and emulator's) CPU, RSS, threads and
 * open files are sampled from /proc while they talk.
 */
#include <math.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <gst/gst.h>
#include <libsoup/soup.h>
#include "lg-report.h"

typedef struct
{
  gchar **urls; /* callers are spread over them, round robin */
  gchar *script_path, *steps, *json_path, *markdown_path, *token;
  gchar **pid_args[LG_N_COSTS]; /* --server-pid, --emulator-pid, ... */
  GArray *pids[LG_N_COSTS]; /* of guint */
  gboolean resume;
  gint step_seconds, arrival_ms, connect_threads;
  gboolean ramp, verbose, no_data_channel;
  gdouble loud_rms;
  gint barge_after_ms, reply_timeout_ms, quiet_ms, think_ms;
  LgTargets targets;
} Options;

/* The 20 ms clock every caller speaks by is LgFeeder (lg-audio.h). */
typedef LgFeeder Feeder;

/* ---------- resume: is every call's instance still there? ---------- */

typedef struct
{
  GPtrArray *callers; /* the feeder's */
  gint running; /* atomic */
  gint pending; /* checks in the pool; atomic */
} Checker;

static void
check_one (gpointer caller, gpointer data)
{
  Checker *k = data;

  lg_caller_check (caller);
  g_atomic_int_dec_and_test (&k->pending);
}

/* Every second (after the last round is done), each call is checked on a
 * small pool: a dead instance's calls resume in parallel. */
static gpointer
checker_thread (gpointer data)
{
  Checker *k = data;
  GThreadPool *pool = g_thread_pool_new (check_one, k, 8, FALSE, NULL);
  guint i;

  while (g_atomic_int_get (&k->running)) {
    g_usleep (G_USEC_PER_SEC);
    if (g_atomic_int_get (&k->pending) > 0)
      continue;
    for (i = 0; i < k->callers->len; i++) {
      g_atomic_int_inc (&k->pending);
      g_thread_pool_push (pool, g_ptr_array_index (k->callers, i), NULL);
    }
  }
  g_thread_pool_free (pool, FALSE, TRUE);
  return NULL;
}

/* ---------- costs ---------- */

static gdouble
own_cpu_s (void)
{
  struct rusage u;

  getrusage (RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
      (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static void
cost_begin (LgCost *c, const GArray *pids, const LgProcSample *before)
{
  if (!lg_proc_sample_all (pids, &c->idle))
    return;
  c->valid = TRUE;
  c->idle_cpu_pct = lg_proc_cpu_percent (before, &c->idle);
  c->peak = c->idle;
}

static void
cost_sample (LgCost *c, const GArray *pids, LgProcSample *last)
{
  if (!c->valid || !lg_proc_sample_all (pids, last))
    return;
  c->peak.rss_mb = MAX (c->peak.rss_mb, last->rss_mb);
  c->peak.threads = MAX (c->peak.threads, last->threads);
  c->peak.fds = MAX (c->peak.fds, last->fds);
}

/* ---------- the server's own counters (/metrics) ---------- */

/* The counters a step reads before and after; -1 when unknown. */
typedef struct
{
  gdouble underruns; /* voiceagent_playout_underruns_total */
  gdouble failures; /* voiceagent_call_failures_total */
} ServerCounters;

static void
add_known (gdouble *sum, gdouble v)
{
  if (v >= 0)
    *sum = MAX (*sum, 0) + v;
}

/* One GET of /metrics per instance (as the operator: the server's
 * VOICEAGENT_ADMIN_TOKEN, which tests/bench/run sets for both); summed
 * over those that answer. */
static ServerCounters
scrape_counters (SoupSession *http, gchar **metrics_urls)
{
  ServerCounters c = { -1, -1 };

  const gchar *admin = g_getenv ("VOICEAGENT_ADMIN_TOKEN");

  for (; *metrics_urls; metrics_urls++) {
    SoupMessage *msg = soup_message_new ("GET", *metrics_urls);
    GBytes *body = NULL;

    if (msg && admin) {
      gchar *auth = g_strconcat ("Bearer ", admin, NULL);
      soup_message_headers_replace (
          soup_message_get_request_headers (msg), "Authorization", auth);
      g_free (auth);
    }
    if (msg)
      body = soup_session_send_and_read (http, msg, NULL, NULL);

    if (body && soup_message_get_status (msg) == 200) {
      gchar *text =
          g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
      gchar **lines = g_strsplit (text, "\n", -1);

      add_known (&c.underruns,
          lg_counter_in (lines, "voiceagent_playout_underruns_total"));
      add_known (
          &c.failures, lg_counter_in (lines, "voiceagent_call_failures_total"));
      g_strfreev (lines);
      g_free (text);
    }
    g_clear_pointer (&body, g_bytes_unref);
    g_clear_object (&msg);
  }
  return c;
}

static gdouble
known_difference (gdouble before, gdouble after)
{
  return before >= 0 && after >= 0 ? after - before : -1;
}

static gchar *
metrics_url_of (const gchar *whip_url)
{
  GUri *uri = g_uri_parse (whip_url, G_URI_FLAGS_NONE, NULL);
  GUri *metrics = uri ? g_uri_parse_relative (uri, "/metrics", 0, NULL) : NULL;
  gchar *s = metrics ? g_uri_to_string (metrics) : NULL;

  g_clear_pointer (&uri, g_uri_unref);
  g_clear_pointer (&metrics, g_uri_unref);
  return s;
}

/* ---------- one step ---------- */

static void
connect_one (gpointer caller, gpointer unused)
{
  lg_caller_connect (caller);
}

static void
start_calls (const Options *o, GPtrArray *callers)
{
  GThreadPool *pool =
      g_thread_pool_new (connect_one, NULL, o->connect_threads, TRUE, NULL);
  guint i;

  for (i = 0; i < callers->len; i++) {
    g_thread_pool_push (pool, g_ptr_array_index (callers, i), NULL);
    g_usleep (o->arrival_ms * 1000);
  }
  g_thread_pool_free (pool, FALSE, TRUE);
}

static void
watch_costs (const Options *o, LgStep *s)
{
  LgProcSample first[LG_N_COSTS] = { 0 }, last[LG_N_COSTS];
  gint64 end = g_get_monotonic_time () + o->step_seconds * G_USEC_PER_SEC;
  gdouble cpu0 = own_cpu_s ();
  gint64 t0 = g_get_monotonic_time ();
  guint g;

  for (g = 0; g < LG_N_COSTS; g++)
    cost_sample (&s->costs[g], o->pids[g], &first[g]);
  while (g_get_monotonic_time () < end) {
    g_usleep (G_USEC_PER_SEC);
    for (g = 0; g < LG_N_COSTS; g++)
      cost_sample (&s->costs[g], o->pids[g], &last[g]);
  }
  for (g = 0; g < LG_N_COSTS; g++)
    s->costs[g].cpu_pct = lg_proc_cpu_percent (&first[g], &last[g]);
  s->seconds = (g_get_monotonic_time () - t0) / 1e6;
  s->loadgen_cpu_pct = 100.0 * (own_cpu_s () - cpu0) / s->seconds;
}

static void
measure_idle (const Options *o, LgStep *s)
{
  LgProcSample before[LG_N_COSTS];
  gboolean have[LG_N_COSTS];
  guint g;

  for (g = 0; g < LG_N_COSTS; g++)
    have[g] = lg_proc_sample_all (o->pids[g], &before[g]);
  g_usleep (2 * G_USEC_PER_SEC);
  for (g = 0; g < LG_N_COSTS; g++)
    if (have[g])
      cost_begin (&s->costs[g], o->pids[g], &before[g]);
}

static void
run_step (const Options *o, const LgScript *script, SoupSession *http,
    gchar **metrics_urls, LgStep *s)
{
  Feeder f = { .callers = g_ptr_array_new_with_free_func (
                   (GDestroyNotify)lg_caller_free),
    .tick = (LgTickFunc)lg_caller_tick,
    .running = 1 };
  Checker k = { .callers = f.callers, .running = 1 };
  GThread *feeder, *checker = NULL;
  ServerCounters before, after;
  guint i;

  lg_results_init (&s->results);
  measure_idle (o, s);
  before = scrape_counters (http, metrics_urls);
  for (i = 0; i < s->calls; i++)
    g_ptr_array_add (f.callers, lg_caller_new (o->urls, script, i, o->token));
  feeder = g_thread_new ("loadgen-feeder", lg_feeder_thread, &f);
  if (o->resume)
    checker = g_thread_new ("loadgen-checker", checker_thread, &k);
  start_calls (o, f.callers);
  g_print ("  %u calls up; measuring for %d s\n", s->calls, o->step_seconds);
  watch_costs (o, s);
  if (checker) {
    g_atomic_int_set (&k.running, 0);
    g_thread_join (checker);
  }
  for (i = 0; i < f.callers->len; i++)
    lg_caller_finish (g_ptr_array_index (f.callers, i), &s->results);
  g_atomic_int_set (&f.running, 0);
  g_thread_join (feeder);
  s->feeder_late = f.late;
  g_ptr_array_unref (f.callers);
  after = scrape_counters (http, metrics_urls);
  s->underruns = known_difference (before.underruns, after.underruns);
  s->server_failures = known_difference (before.failures, after.failures);
  lg_step_judge (s, &o->targets);
}

/* ---------- output ---------- */

static void
write_outputs (const Options *o, GPtrArray *steps, guint last_held)
{
  JsonBuilder *b = json_builder_new ();
  GString *md = g_string_new (NULL);
  JsonNode *root;
  gchar *json;
  guint i;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "last_held");
  json_builder_add_int_value (b, last_held);
  json_builder_set_member_name (b, "targets");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "eot_silence_ms");
  json_builder_add_int_value (b, o->targets.eot_silence_ms);
  json_builder_set_member_name (b, "service_ms");
  json_builder_add_int_value (b, o->targets.service_ms);
  json_builder_set_member_name (b, "max_overhead_p95_ms");
  json_builder_add_int_value (b, o->targets.max_overhead_p95_ms);
  json_builder_set_member_name (b, "barge_in_p95_ms");
  json_builder_add_int_value (
      b, o->targets.min_speech_ms + o->targets.barge_slack_ms);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "steps");
  json_builder_begin_array (b);
  lg_step_print_header (md);
  for (i = 0; i < steps->len; i++) {
    lg_step_add_json (b, g_ptr_array_index (steps, i), &o->targets);
    lg_step_print_row (md, g_ptr_array_index (steps, i), &o->targets);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, TRUE);
  g_print ("\n%s\nlast step that held: %u calls\n", md->str, last_held);
  if (o->json_path && !g_file_set_contents (o->json_path, json, -1, NULL))
    g_printerr ("loadgen: cannot write %s\n", o->json_path);
  if (o->markdown_path &&
      !g_file_set_contents (o->markdown_path, md->str, md->len, NULL))
    g_printerr ("loadgen: cannot write %s\n", o->markdown_path);
  g_free (json);
  json_node_unref (root);
  g_object_unref (b);
  g_string_free (md, TRUE);
}

static void
free_step (gpointer data)
{
  lg_step_clear (data);
  g_free (data);
}

/* One short call first: the server loads its plugins and the VAD model
 * on the first call, which is not what a call costs. */
static void
warm_up (const Options *o, const LgScript *script)
{
  LgCaller *c = lg_caller_new (o->urls, script, 0, o->token);
  LgResults discard;

  lg_results_init (&discard);
  if (lg_caller_connect (c))
    g_usleep (2 * G_USEC_PER_SEC);
  lg_caller_finish (c, &discard);
  lg_caller_free (c);
  lg_results_clear (&discard);
}

static guint
run_steps (const Options *o, const LgScript *script, GPtrArray *steps)
{
  SoupSession *http = soup_session_new_with_options ("timeout", 10, NULL);
  gchar **metrics_urls = g_new0 (gchar *, g_strv_length (o->urls) + 1);
  gchar **counts = g_strsplit (o->steps, ",", -1);
  guint last_held = 0, i;

  for (i = 0; o->urls[i]; i++)
    metrics_urls[i] = metrics_url_of (o->urls[i]);

  for (i = 0; counts[i]; i++) {
    LgStep *s = g_new0 (LgStep, 1);

    s->calls = (guint)g_ascii_strtoull (counts[i], NULL, 10);
    if (s->calls == 0) {
      g_free (s);
      continue;
    }
    g_print ("step %u: %u concurrent calls\n", i + 1, s->calls);
    run_step (o, script, http, metrics_urls, s);
    g_ptr_array_add (steps, s);
    g_print ("  %s%s\n", s->held ? "held" : "broke: ", s->held ? "" : s->why);
    if (s->held)
      last_held = MAX (last_held, s->calls);
    else if (o->ramp)
      break;
  }
  g_strfreev (counts);
  g_strfreev (metrics_urls);
  g_object_unref (http);
  return last_held;
}

/* ---------- main ---------- */

static gboolean
parse_options (int argc, char **argv, Options *o)
{
  GOptionEntry entries[] = {
    { "url", 'u', 0, G_OPTION_ARG_STRING_ARRAY, &o->urls,
        "WHIP endpoint (default http://127.0.0.1:8080/whip); repeat it to "
        "spread the callers over several instances",
        "URL" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &o->resume,
        "Check every second that each call's instance answers; when it does "
        "not, offer again with the call's resume token",
        NULL },
    { "script", 's', 0, G_OPTION_ARG_FILENAME, &o->script_path,
        "Conversation: lines \"say TEXT\" / \"interrupt TEXT\"", "FILE" },
    { "steps", 'n', 0, G_OPTION_ARG_STRING, &o->steps,
        "Concurrent calls per step, comma-separated (default 1)", "N,N,..." },
    { "step-seconds", 't', 0, G_OPTION_ARG_INT, &o->step_seconds,
        "How long each step runs once its calls are up (default 45)", "S" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
        "Print every measurement", NULL },
    { "no-data-channel", 0, 0, G_OPTION_ARG_NONE, &o->no_data_channel,
        "Callers open no data channel (no server-side timings then)", NULL },
    { "ramp", 0, 0, G_OPTION_ARG_NONE, &o->ramp,
        "Stop at the first step that does not hold", NULL },
    { "server-pid", 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &o->pid_args[LG_COST_SERVER],
        "Sample this process's CPU, RSS, threads, files (repeat it for "
        "several instances, or a gateway's workers: their sum)",
        "PID" },
    { "emulator-pid", 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &o->pid_args[LG_COST_EMULATOR], "And this one's (the emulator)",
        "PID" },
    { "gateway-pid", 0, 0, G_OPTION_ARG_STRING_ARRAY,
        &o->pid_args[LG_COST_GATEWAY], "And this one's (Janus, gateway mode)",
        "PID" },
    { "front-pid", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->pid_args[LG_COST_FRONT],
        "And this one's (the gateway's voiceagent front)", "PID" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &o->json_path,
        "Write the results as JSON", "FILE" },
    { "markdown", 0, 0, G_OPTION_ARG_FILENAME, &o->markdown_path,
        "Write the results as a markdown table", "FILE" },
    { "token", 0, 0, G_OPTION_ARG_STRING, &o->token,
        "Bearer token for the server", "TOKEN" },
    { "arrival-ms", 0, 0, G_OPTION_ARG_INT, &o->arrival_ms,
        "Time between two calls starting (default 150)", "MS" },
    { "eot-silence-ms", 0, 0, G_OPTION_ARG_INT, &o->targets.eot_silence_ms,
        "End-of-turn silence the pipeline waits for (default 300: "
        "the deepgram element's endpointing-ms, which ends a turn before "
        "silerovad's min-silence-ms of 500)",
        "MS" },
    { "service-ms", 0, 0, G_OPTION_ARG_INT, &o->targets.service_ms,
        "The services' own latency (default 285: emulator reference)", "MS" },
    { "min-speech-ms", 0, 0, G_OPTION_ARG_INT, &o->targets.min_speech_ms,
        "silerovad min-speech-ms in the pipeline (default 96)", "MS" },
    { "max-overhead-ms", 0, 0, G_OPTION_ARG_INT,
        &o->targets.max_overhead_p95_ms,
        "A step holds while overhead p95 stays within this (default 80)",
        "MS" },
    { "barge-after-ms", 0, 0, G_OPTION_ARG_INT, &o->barge_after_ms,
        "Talk over a reply this long after it starts (default 1500)", "MS" },
    { "loud-rms", 0, 0, G_OPTION_ARG_DOUBLE, &o->loud_rms,
        "Received audio above this RMS (0..1) is the agent (default 0.02)",
        "RMS" },
    { NULL },
  };
  GOptionContext *ctx = g_option_context_new ("- WebRTC load generator");
  GError *error = NULL;
  gboolean ok;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  ok = g_option_context_parse (ctx, &argc, &argv, &error);
  if (!ok)
    g_printerr ("voiceagent-loadgen: %s\n", error->message);
  else if (o->script_path == NULL) {
    g_printerr ("voiceagent-loadgen: --script FILE is required "
                "(see tests/bench/conversation.txt)\n");
    ok = FALSE;
  }
  g_clear_error (&error);
  g_option_context_free (ctx);
  return ok;
}

static GArray *
parse_pids (gchar **args)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (guint));

  for (; args && *args; args++) {
    guint pid = (guint)g_ascii_strtoull (*args, NULL, 10);
    if (pid > 0)
      g_array_append_val (pids, pid);
  }
  return pids;
}

static void
set_defaults (Options *o)
{
  o->step_seconds = 45;
  o->arrival_ms = 150;
  o->connect_threads = 4;
  o->loud_rms = 0.02;
  o->barge_after_ms = 1500;
  o->reply_timeout_ms = 8000;
  o->quiet_ms = 1000;
  o->think_ms = 600;
  o->targets = (LgTargets){ .eot_silence_ms = 300,
    .service_ms = 285,
    .min_speech_ms = 96,
    .max_overhead_p95_ms = 80,
    .max_overhead_p50_one_call_ms = 40,
    .barge_slack_ms = 60 };
}

static void
free_options (Options *o)
{
  g_strfreev (o->urls);
  for (guint g = 0; g < LG_N_COSTS; g++) {
    g_strfreev (o->pid_args[g]);
    g_clear_pointer (&o->pids[g], g_array_unref);
  }
  g_free (o->script_path);
  g_free (o->steps);
  g_free (o->json_path);
  g_free (o->markdown_path);
  g_free (o->token);
}

int
main (int argc, char **argv)
{
  Options o = { 0 };
  LgScript *script = NULL;
  GPtrArray *steps = g_ptr_array_new_with_free_func (free_step);
  GError *error = NULL;
  guint last_held;
  int status = 1;

  set_defaults (&o);
  if (!parse_options (argc, argv, &o))
    goto out;
  if (o.urls == NULL)
    o.urls = g_strsplit ("http://127.0.0.1:8080/whip", " ", -1);
  for (guint g = 0; g < LG_N_COSTS; g++)
    o.pids[g] = parse_pids (o.pid_args[g]);
  if (o.steps == NULL)
    o.steps = g_strdup ("1");
  script = lg_script_load (o.script_path, &error);
  if (script == NULL) {
    g_printerr ("voiceagent-loadgen: %s: %s\n", o.script_path, error->message);
    goto out;
  }
  script->loud_rms = o.loud_rms;
  script->barge_after_ms = o.barge_after_ms;
  script->reply_timeout_ms = o.reply_timeout_ms;
  script->quiet_ms = o.quiet_ms;
  script->think_ms = o.think_ms;
  script->verbose = o.verbose;
  script->no_data_channel = o.no_data_channel;
  warm_up (&o, script);
  last_held = run_steps (&o, script, steps);
  write_outputs (&o, steps, last_held);
  status = 0;
out:
  g_clear_error (&error);
  lg_script_free (script);
  g_ptr_array_unref (steps);
  free_options (&o);
  return status;
}

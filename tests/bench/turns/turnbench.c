/* voiceagent-turnbench: plays the turn-taking corpus to a voiceagent server
 * and measures how it takes turns (docs/benchmarks.md, "Turn-taking").
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   voiceagent-turnbench --corpus FILE --write-stt-script FILE
 *       renders the corpus and writes the emulator's recognizer script
 *   voiceagent-turnbench --corpus FILE --url WHIP --emulator URL
 *       [--metrics URL] [--calls N] [--json FILE] [--markdown FILE]
 *       plays it with N callers and reports; tests/bench/turns/run starts
 *       the emulator and the server and runs both.
 */
#include <math.h>
#include <string.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "lg-proc.h"
#include "lg-report.h"
#include "tb-caller.h"

#define MS 1000
#define RESUME_LIMIT_US (3000 * MS)

typedef struct
{
  gchar *corpus, *url, *emulator, *metrics, *json, *markdown, *stt_script;
  gint calls, seconds_limit, lag_ms;
  gdouble loud_rms;
  gboolean verbose;
} Options;

/* ---------- what the services counted ---------- */

typedef struct
{
  gdouble llm_requests, llm_cancelled, tts_chars; /* -1 = unknown */
  gdouble tts_unheard; /* the server's counter; -1 = it has none */
} ServiceCounts;

static gchar *
http_get (SoupSession *http, const gchar *url, const gchar *bearer)
{
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr (GBytes) body = NULL;

  if (!msg)
    return NULL;
  if (bearer) {
    g_autofree gchar *auth = g_strconcat ("Bearer ", bearer, NULL);
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), "Authorization", auth);
  }
  body = soup_session_send_and_read (http, msg, NULL, NULL);
  if (!body || soup_message_get_status (msg) != 200)
    return NULL;
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* The emulator's event log: LLM requests, streams the client cut, and the
 * characters its ElevenLabs service synthesised. */
static void
read_emulator (SoupSession *http, const gchar *base, ServiceCounts *n)
{
  g_autofree gchar *url = g_strconcat (base, "/emulator/events", NULL);
  g_autofree gchar *text = http_get (http, url, NULL);
  g_autoptr (JsonNode) root = text ? json_from_string (text, NULL) : NULL;
  JsonArray *events;

  if (!root || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  events = json_object_get_array_member (json_node_get_object (root), "events");
  if (json_object_get_int_member (json_node_get_object (root), "dropped"))
    g_printerr ("turnbench: the emulator dropped events; counts are low\n");
  n->llm_requests = n->llm_cancelled = n->tts_chars = 0;
  for (guint i = 0; events && i < json_array_get_length (events); i++) {
    JsonObject *e = json_array_get_object_element (events, i);
    const gchar *svc = json_object_get_string_member (e, "service");
    const gchar *ev = json_object_get_string_member (e, "event");
    if (g_str_equal (svc, "llm") && g_str_equal (ev, "request"))
      n->llm_requests++;
    else if (g_str_equal (svc, "llm") && g_str_equal (ev, "llm-aborted"))
      n->llm_cancelled++;
    else if (g_str_equal (svc, "elevenlabs") && g_str_equal (ev, "synthesize"))
      n->tts_chars += g_ascii_strtod (
          json_object_get_string_member_with_default (e, "detail", "0"), NULL);
  }
}

/* A call's usage reaches /metrics when the server has ended it, a moment
 * after the hang-up: wait (up to 10 s) until no call is active. */
static void
read_metrics (SoupSession *http, const gchar *url, ServiceCounts *n)
{
  for (guint i = 0; i < 50; i++) {
    g_autofree gchar *text =
        http_get (http, url, g_getenv ("VOICEAGENT_ADMIN_TOKEN"));
    g_auto (GStrv) lines = text ? g_strsplit (text, "\n", -1) : NULL;

    if (lines == NULL)
      return;
    n->tts_unheard =
        lg_counter_in (lines, "voiceagent_tts_characters_unheard_total");
    if (lg_counter_in (lines, "voiceagent_calls_active") <= 0)
      return;
    g_usleep (200 * 1000);
  }
}

/* ---------- the numbers ---------- */

typedef struct
{
  guint turns, turns_no_reply, cut_ins;
  guint pauses, pauses_incomplete, cut_ins_incomplete;
  guint backchannels, noises, interrupts, false_barge_ins, unmeasured;
  guint barge_failed, commits_from_event;
  GArray *eot_ms, *v2v_ms, *barge_ms, *resume_ms; /* gdouble */
} Summary;

static void
add_ms (GArray *a, gdouble v)
{
  g_array_append_val (a, v);
}

static gboolean
action_false_barge (const TbAction *a)
{
  return a->interrupted_event ||
      (a->gap_start &&
          (!a->resumed_at || a->resumed_at - a->gap_start > RESUME_LIMIT_US));
}

static void
summarise_action (Summary *s, const TbAction *a)
{
  if (a->item->kind == TB_INTERRUPT) {
    s->interrupts++;
    if (a->barge_ms >= 0)
      add_ms (s->barge_ms, a->barge_ms);
    s->barge_failed += a->barge_failed;
    return;
  }
  if (a->item->kind == TB_BACKCHANNEL)
    s->backchannels++;
  else
    s->noises++;
  s->unmeasured += !a->agent_was_talking;
  s->false_barge_ins += action_false_barge (a);
  if (a->gap_start && a->resumed_at)
    add_ms (s->resume_ms, (a->resumed_at - a->onset) / (gdouble)MS);
}

/* The server committed the turn: its "turn committed" event, or else the
 * last final user transcript before the reply. 0 when neither came. */
static gint64
commit_time (const TbTurn *t)
{
  return t->committed_at ? t->committed_at : t->last_final_at;
}

static void
summarise_turn (Summary *s, const TbTurn *t)
{
  const GArray *pauses = t->item->pauses;

  s->turns++;
  s->pauses += pauses->len;
  for (guint i = 0; i < pauses->len; i++) {
    gboolean inc = g_array_index (pauses, TbPause, i).incomplete;
    s->pauses_incomplete += inc;
    s->cut_ins_incomplete += inc && t->cut_in_at && t->cut_in_pause == (gint)i;
  }
  s->cut_ins += t->cut_in_at != 0;
  s->turns_no_reply += !t->reply_at;
  s->commits_from_event += t->committed_at != 0;
  if (commit_time (t))
    add_ms (s->eot_ms, (commit_time (t) - t->speech_end) / (gdouble)MS);
  if (t->reply_at && !t->cut_in_at)
    add_ms (s->v2v_ms, (t->reply_at - t->speech_end) / (gdouble)MS);
  for (guint i = 0; i < t->actions->len; i++)
    summarise_action (s, &g_array_index (t->actions, TbAction, i));
}

/* ---------- report ---------- */

static void
set_num (JsonBuilder *b, const gchar *name, gdouble v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v) || v < 0)
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, round (v * 1000) / 1000);
}

static void
set_int (JsonBuilder *b, const gchar *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static gdouble
ratio (guint a, guint b)
{
  return b ? (gdouble)a / b : NAN;
}

static gdouble
since_ms (gint64 t, gint64 from)
{
  return t ? (t - from) / (gdouble)MS : NAN;
}

static void
add_action_json (JsonBuilder *b, const TbAction *a, gint64 reply_at)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, tb_kind_name (a->item->kind));
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, a->item->text);
  set_num (
      b, "onset_after_reply_ms", since_ms (reply_at ? a->onset : 0, reply_at));
  json_builder_set_member_name (b, "agent_was_talking");
  json_builder_add_boolean_value (b, a->agent_was_talking);
  json_builder_set_member_name (b, "interrupted_event");
  json_builder_add_boolean_value (b, a->interrupted_event);
  set_num (b, "agent_silent_after_ms", since_ms (a->gap_start, a->onset));
  set_num (b, "agent_back_after_ms", since_ms (a->resumed_at, a->onset));
  if (a->item->kind == TB_INTERRUPT) {
    set_num (b, "barge_in_ms", a->barge_ms);
  } else {
    json_builder_set_member_name (b, "false_barge_in");
    json_builder_add_boolean_value (b, action_false_barge (a));
  }
  json_builder_end_object (b);
}

static void
add_turn_json (JsonBuilder *b, const TbTurn *t)
{
  json_builder_begin_object (b);
  set_int (b, "line", t->item->line);
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, t->item->text);
  json_builder_set_member_name (b, "pauses");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->item->pauses->len; i++) {
    const TbPause *p = &g_array_index (t->item->pauses, TbPause, i);
    json_builder_begin_object (b);
    set_int (b, "ms", p->ms);
    json_builder_set_member_name (b, "incomplete");
    json_builder_add_boolean_value (b, p->incomplete);
    json_builder_set_member_name (b, "after");
    json_builder_add_string_value (b, p->before);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  set_num (b, "speech_ms", (t->speech_end - t->t0) / (gdouble)MS);
  set_num (b, "cut_in_after_onset_ms", since_ms (t->cut_in_at, t->t0));
  json_builder_set_member_name (b, "cut_in_pause");
  if (t->cut_in_at)
    json_builder_add_int_value (b, t->cut_in_pause);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "commit_source");
  json_builder_add_string_value (b,
      t->committed_at        ? "turn-event"
          : t->last_final_at ? "final-transcript"
                             : "none");
  /* may be negative: committed before the caller finished */
  json_builder_set_member_name (b, "eot_delay_ms");
  if (commit_time (t))
    json_builder_add_double_value (
        b, (commit_time (t) - t->speech_end) / (gdouble)MS);
  else
    json_builder_add_null_value (b);
  set_num (
      b, "v2v_ms", t->cut_in_at ? NAN : since_ms (t->reply_at, t->speech_end));
  json_builder_set_member_name (b, "actions");
  json_builder_begin_array (b);
  for (guint i = 0; i < t->actions->len; i++)
    add_action_json (b, &g_array_index (t->actions, TbAction, i), t->reply_at);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

typedef struct
{
  const gchar *key, *label;
  gdouble value;
  const gchar *unit;
} Row;

static guint
summary_rows (const Summary *s, const ServiceCounts *n, guint calls, Row *rows)
{
  guint turns_all = s->turns;
  gdouble unheard = n->tts_unheard;
  Row r[] = {
    { "turns", "turns", s->turns, "" },
    { "false_cut_in_rate", "false cut-in rate", ratio (s->cut_ins, s->turns),
        "" },
    { "false_cut_in_rate_incomplete",
        "false cut-in rate, pauses after incomplete phrases",
        ratio (s->cut_ins_incomplete, s->pauses_incomplete), "" },
    { "eot_delay_p50_ms", "end of speech → turn committed, p50",
        lg_percentile (s->eot_ms, 50), "ms" },
    { "eot_delay_p90_ms", "end of speech → turn committed, p90",
        lg_percentile (s->eot_ms, 90), "ms" },
    { "v2v_p50_ms", "voice to voice, p50", lg_percentile (s->v2v_ms, 50),
        "ms" },
    { "v2v_p90_ms", "voice to voice, p90", lg_percentile (s->v2v_ms, 90),
        "ms" },
    { "false_barge_in_rate", "false barge-in rate (backchannels, noise)",
        ratio (s->false_barge_ins, s->backchannels + s->noises), "" },
    { "barge_in_p95_ms", "barge-in (interrupt → agent silent), p95",
        lg_percentile (s->barge_ms, 95), "ms" },
    { "resume_p50_ms", "false barge-in → agent audible again, p50",
        lg_percentile (s->resume_ms, 50), "ms" },
    { "llm_requests_per_turn", "LLM requests per turn",
        n->llm_requests >= 0 && turns_all ? n->llm_requests / turns_all : NAN,
        "" },
    { "tts_chars_unheard", "TTS characters synthesised, never played",
        unheard >= 0 ? unheard : NAN, "" },
  };

  (void)calls;
  memcpy (rows, r, sizeof r);
  return G_N_ELEMENTS (r);
}

static void
write_json (const Options *o, const Summary *s, const ServiceCounts *n,
    GPtrArray *turns, const gchar *path)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) error = NULL;
  Row rows[16];
  guint nr = summary_rows (s, n, o->calls, rows);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "corpus");
  json_builder_add_string_value (b, o->corpus);
  set_int (b, "calls", o->calls);
  for (guint i = 0; i < nr; i++)
    if (g_str_equal (rows[i].key, "turns"))
      set_int (b, "turns", s->turns);
    else
      set_num (b, rows[i].key, rows[i].value);
  set_int (b, "turns_without_reply", s->turns_no_reply);
  set_int (b, "cut_ins", s->cut_ins);
  set_int (b, "pauses", s->pauses);
  set_int (b, "pauses_incomplete", s->pauses_incomplete);
  set_int (b, "cut_ins_incomplete", s->cut_ins_incomplete);
  set_int (b, "backchannels", s->backchannels);
  set_int (b, "noise_bursts", s->noises);
  set_int (b, "over_silence", s->unmeasured);
  set_int (b, "false_barge_ins", s->false_barge_ins);
  set_int (b, "interrupts", s->interrupts);
  set_int (b, "barge_in_measured", s->barge_ms->len);
  set_int (b, "barge_in_failed", s->barge_failed);
  set_int (b, "resumes_measured", s->resume_ms->len);
  set_int (b, "commits_from_turn_event", s->commits_from_event);
  set_num (b, "llm_requests", n->llm_requests);
  set_num (b, "llm_requests_cancelled", n->llm_cancelled);
  set_num (b, "tts_chars_synthesized", n->tts_chars);
  json_builder_set_member_name (b, "tts_chars_unheard_source");
  json_builder_add_string_value (b,
      n->tts_unheard >= 0 ? "voiceagent_tts_characters_unheard_total"
                          : "none: the server does not export it");
  json_builder_set_member_name (b, "per_turn");
  json_builder_begin_array (b);
  for (guint i = 0; i < turns->len; i++)
    add_turn_json (b, turns->pdata[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  json_generator_set_pretty (gen, TRUE);
  if (!json_generator_to_file (gen, path, &error))
    g_printerr ("turnbench: %s\n", error->message);
}

static gchar *
markdown (const Summary *s, const ServiceCounts *n, guint calls)
{
  GString *md = g_string_new (NULL);
  Row rows[16];
  guint nr = summary_rows (s, n, calls, rows);

  g_string_append_printf (md, "| metric (%u call%s) | value |\n|---|---:|\n",
      calls, calls == 1 ? "" : "s");
  for (guint i = 0; i < nr; i++) {
    g_string_append_printf (md, "| %s (`%s`) | ", rows[i].label, rows[i].key);
    if (isnan (rows[i].value))
      g_string_append (md, "–");
    else if (g_str_equal (rows[i].unit, "ms"))
      g_string_append_printf (md, "%.0f ms", rows[i].value);
    else if (g_str_has_suffix (rows[i].key, "_rate") ||
        g_str_has_suffix (rows[i].key, "_incomplete"))
      g_string_append_printf (md, "%.1f %%", 100 * rows[i].value);
    else if (g_str_equal (rows[i].key, "llm_requests_per_turn"))
      g_string_append_printf (md, "%.2f", rows[i].value);
    else
      g_string_append_printf (md, "%.0f", rows[i].value);
    g_string_append (md, " |\n");
  }
  return g_string_free (md, FALSE);
}

/* ---------- main ---------- */

/* Calls with o->calls callers (added to @callers) until they played the
 * corpus; their turns go to @turns (owned by the callers). */
static gboolean
play (const Options *o, const TbScript *script, GPtrArray *callers,
    GPtrArray *turns)
{
  LgFeeder f = { callers, (LgTickFunc)tb_caller_tick, 1, 0 };
  GThread *feeder;
  gint64 deadline;
  gboolean ok = TRUE;

  for (gint i = 0; i < o->calls; i++) {
    TbCaller *c = tb_caller_new (o->url, script, i);
    g_ptr_array_add (callers, c);
    ok = tb_caller_connect (c) && ok;
  }
  deadline = g_get_monotonic_time () + o->seconds_limit * G_USEC_PER_SEC;
  feeder = g_thread_new ("turnbench-feeder", lg_feeder_thread, &f);
  for (;;) {
    gboolean all = TRUE;
    for (guint i = 0; i < callers->len; i++)
      all = all && tb_caller_done (callers->pdata[i]);
    if (all)
      break;
    if (g_get_monotonic_time () > deadline) {
      g_printerr ("turnbench: --seconds-limit reached; reporting what was "
                  "played\n");
      break;
    }
    g_usleep (100 * MS);
  }
  g_atomic_int_set (&f.running, 0);
  g_thread_join (feeder);
  for (guint i = 0; i < callers->len; i++) {
    GPtrArray *t = tb_caller_finish (callers->pdata[i]);
    for (guint j = 0; j < t->len; j++)
      g_ptr_array_add (turns, t->pdata[j]);
  }
  return ok;
}

static void
options_clear (Options *o)
{
  g_free (o->corpus);
  g_free (o->url);
  g_free (o->emulator);
  g_free (o->metrics);
  g_free (o->json);
  g_free (o->markdown);
  g_free (o->stt_script);
}

static gboolean
parse_options (int *argc, char ***argv, Options *o)
{
  GOptionEntry entries[] = {
    { "corpus", 0, 0, G_OPTION_ARG_FILENAME, &o->corpus, "The corpus", "FILE" },
    { "write-stt-script", 0, 0, G_OPTION_ARG_FILENAME, &o->stt_script,
        "Write the emulator's recognizer script and exit", "FILE" },
    { "lag-ms", 0, 0, G_OPTION_ARG_INT, &o->lag_ms,
        "In that script: a word is heard this long after it ends (80)", "MS" },
    { "url", 0, 0, G_OPTION_ARG_STRING, &o->url, "WHIP endpoint", "URL" },
    { "emulator", 0, 0, G_OPTION_ARG_STRING, &o->emulator,
        "The emulator's base URL (its event log)", "URL" },
    { "metrics", 0, 0, G_OPTION_ARG_STRING, &o->metrics,
        "The server's /metrics (VOICEAGENT_ADMIN_TOKEN)", "URL" },
    { "calls", 0, 0, G_OPTION_ARG_INT, &o->calls,
        "Concurrent callers, each plays the corpus once (1)", "N" },
    { "seconds-limit", 0, 0, G_OPTION_ARG_INT, &o->seconds_limit,
        "Stop after this long (1800)", "S" },
    { "loud-rms", 0, 0, G_OPTION_ARG_DOUBLE, &o->loud_rms,
        "Received audio above this RMS is the agent (0.02)", "RMS" },
    { "json", 0, 0, G_OPTION_ARG_FILENAME, &o->json, "Write turns.json here",
        "FILE" },
    { "markdown", 0, 0, G_OPTION_ARG_FILENAME, &o->markdown,
        "Write the table here too", "FILE" },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &o->verbose,
        "Print every event and measurement", NULL },
    { NULL },
  };
  g_autoptr (GOptionContext) ctx =
      g_option_context_new ("- the turn-taking benchmark");
  g_autoptr (GError) error = NULL;

  o->calls = 1;
  o->seconds_limit = 1800;
  o->loud_rms = 0.02;
  o->lag_ms = 80;
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, argc, argv, &error)) {
    g_printerr ("turnbench: %s\n", error->message);
    return FALSE;
  }
  if (!o->corpus || (!o->stt_script && (!o->url || !o->emulator)) ||
      o->calls < 1) {
    g_printerr ("turnbench: --corpus and either --write-stt-script or --url "
                "and --emulator are needed (see --help)\n");
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  Options o = { 0 };
  g_autoptr (GError) error = NULL;
  TbCorpus *corpus;
  TbScript script = { 0 };
  g_autoptr (GPtrArray) turns = NULL;
  g_autoptr (GPtrArray) callers = NULL;
  g_autoptr (SoupSession) http = NULL;
  Summary s = { 0 };
  ServiceCounts n = { -1, -1, -1, -1 };
  g_autofree gchar *md = NULL;
  gboolean ok;

  if (!parse_options (&argc, &argv, &o))
    return 2;
  corpus = tb_corpus_load (o.corpus, &error);
  if (!corpus) {
    g_printerr ("turnbench: %s\n", error->message);
    return 1;
  }
  if (o.stt_script) {
    g_autofree gchar *text = tb_corpus_stt_script (corpus, o.lag_ms);
    ok = g_file_set_contents (o.stt_script, text, -1, &error);
    if (!ok)
      g_printerr ("turnbench: %s\n", error->message);
    tb_corpus_free (corpus);
    options_clear (&o);
    return ok ? 0 : 1;
  }

  script.corpus = corpus;
  script.loud_rms = o.loud_rms;
  script.silence = lg_silence_packet ();
  script.verbose = o.verbose;
  turns = g_ptr_array_new ();
  callers = g_ptr_array_new_with_free_func ((GDestroyNotify)tb_caller_free);
  ok = play (&o, &script, callers, turns);

  http = soup_session_new ();
  read_emulator (http, o.emulator, &n);
  if (o.metrics)
    read_metrics (http, o.metrics, &n);
  s.eot_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  s.v2v_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  s.barge_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  s.resume_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  for (guint i = 0; i < turns->len; i++)
    summarise_turn (&s, turns->pdata[i]);
  md = markdown (&s, &n, o.calls);
  g_print ("%s", md);
  if (o.markdown && !g_file_set_contents (o.markdown, md, -1, &error))
    g_printerr ("turnbench: %s\n", error->message);
  if (o.json)
    write_json (&o, &s, &n, turns, o.json);
  ok = ok && s.turns > 0;
  g_array_unref (s.eot_ms);
  g_array_unref (s.v2v_ms);
  g_array_unref (s.barge_ms);
  g_array_unref (s.resume_ms);
  g_ptr_array_set_size (turns, 0);
  g_ptr_array_set_size (callers, 0);
  g_bytes_unref (script.silence);
  tb_corpus_free (corpus);
  options_clear (&o);
  return ok ? 0 : 1;
}

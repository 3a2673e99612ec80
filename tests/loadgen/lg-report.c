/* voiceagent-loadgen: one step's numbers, as JSON and as a table row.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>
#include "lg-report.h"

const gchar *const lg_cost_names[LG_N_COSTS] = { "server", "emulator",
  "gateway", "front" };

static gint
compare_doubles (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

gdouble
lg_percentile (const GArray *values, gdouble p)
{
  GArray *sorted;
  gdouble rank, v;
  guint lo;

  if (values->len == 0)
    return NAN;
  sorted = g_array_copy ((GArray *)values);
  g_array_sort (sorted, compare_doubles);
  rank = p / 100.0 * (sorted->len - 1);
  lo = (guint)floor (rank);
  v = g_array_index (sorted, gdouble, lo);
  if (lo + 1 < sorted->len)
    v += (rank - lo) * (g_array_index (sorted, gdouble, lo + 1) - v);
  g_array_unref (sorted);
  return v;
}

/* Voice-to-voice minus what is configured or the services' own time. */
static GArray *
overheads (const LgStep *s, const LgTargets *t)
{
  GArray *o = g_array_sized_new (
      FALSE, FALSE, sizeof (gdouble), s->results.v2v_ms->len);
  guint i;

  for (i = 0; i < s->results.v2v_ms->len; i++) {
    gdouble v = g_array_index (s->results.v2v_ms, gdouble, i) -
        t->eot_silence_ms - t->service_ms;
    g_array_append_val (o, v);
  }
  return o;
}

static gdouble
per_call (const LgStep *s, gdouble total)
{
  return s->calls ? total / s->calls : NAN;
}

void
lg_step_judge (LgStep *s, const LgTargets *t)
{
  const LgResults *r = &s->results;
  GArray *o = overheads (s, t);
  gdouble p95 = lg_percentile (o, 95);
  gdouble barge = lg_percentile (r->barge_ms, 95);
  GString *why = g_string_new (NULL);

  if (r->calls_failed || r->calls_dropped)
    g_string_append_printf (why, "%u calls failed, %u dropped; ",
        r->calls_failed, r->calls_dropped);
  if (r->turns_failed)
    g_string_append_printf (why, "%u turns unanswered; ", r->turns_failed);
  if (r->barge_failed)
    g_string_append_printf (why, "%u barge-ins failed; ", r->barge_failed);
  if (s->underruns > 0)
    g_string_append_printf (why, "%.0f playout underruns; ", s->underruns);
  if (s->calls == 1 &&
      !(lg_percentile (o, 50) <= t->max_overhead_p50_one_call_ms))
    g_string_append_printf (why, "overhead p50 %.0f ms > %u ms; ",
        lg_percentile (o, 50), t->max_overhead_p50_one_call_ms);
  if (isnan (p95) || p95 > t->max_overhead_p95_ms)
    g_string_append_printf (
        why, "overhead p95 %.0f ms > %u ms; ", p95, t->max_overhead_p95_ms);
  if (!isnan (barge) && barge > t->min_speech_ms + t->barge_slack_ms)
    g_string_append_printf (why, "barge-in p95 %.0f ms > %u ms; ", barge,
        t->min_speech_ms + t->barge_slack_ms);
  s->held = why->len == 0;
  if (why->len >= 2)
    g_string_truncate (why, why->len - 2);
  s->why = g_string_free (why, FALSE);
  g_array_unref (o);
}

static void
add_number (JsonBuilder *b, const gchar *name, gdouble v)
{
  json_builder_set_member_name (b, name);
  if (isnan (v) || isinf (v))
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, round (v * 100) / 100);
}

static void
add_distribution (JsonBuilder *b, const gchar *name, const GArray *v)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "n");
  json_builder_add_int_value (b, v->len);
  add_number (b, "p50", lg_percentile (v, 50));
  add_number (b, "p95", lg_percentile (v, 95));
  add_number (b, "p99", lg_percentile (v, 99));
  add_number (b, "max", lg_percentile (v, 100));
  json_builder_end_object (b);
}

static void
add_cost (JsonBuilder *b, const gchar *name, const LgStep *s, const LgCost *c)
{
  if (!c->valid)
    return;
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  add_number (b, "idle_cpu_pct", c->idle_cpu_pct);
  add_number (b, "cpu_pct", c->cpu_pct);
  add_number (
      b, "cpu_pct_per_call", per_call (s, c->cpu_pct - c->idle_cpu_pct));
  add_number (b, "idle_rss_mb", c->idle.rss_mb);
  add_number (b, "rss_mb", c->peak.rss_mb);
  add_number (
      b, "rss_mb_per_call", per_call (s, c->peak.rss_mb - c->idle.rss_mb));
  add_number (b, "idle_threads", c->idle.threads);
  add_number (b, "threads", c->peak.threads);
  add_number (b, "threads_per_call",
      per_call (s, (gdouble)c->peak.threads - c->idle.threads));
  add_number (b, "idle_fds", c->idle.fds);
  add_number (b, "fds", c->peak.fds);
  add_number (
      b, "fds_per_call", per_call (s, (gdouble)c->peak.fds - c->idle.fds));
  json_builder_end_object (b);
}

static void
add_counts (JsonBuilder *b, const LgStep *s)
{
  const LgResults *r = &s->results;
  const struct
  {
    const gchar *name;
    gdouble value;
  } counts[] = {
    { "calls_started", r->calls },
    { "calls_failed", r->calls_failed },
    { "calls_dropped", r->calls_dropped },
    { "calls_lost", r->calls_lost },
    { "calls_resumed", r->calls_resumed },
    { "turns", r->turns },
    { "turns_failed", r->turns_failed },
    { "barge_ins", r->barge_ins },
    { "barge_ins_failed", r->barge_failed },
    { "barge_ins_unmeasured", r->barge_unmeasured },
    { "rtp_packets_received", r->packets_received },
    { "rtp_packets_lost", r->packets_lost },
    { "underruns", s->underruns },
    { "server_call_failures", s->server_failures },
    { "loadgen_late_ticks", s->feeder_late },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (counts); i++)
    add_number (b, counts[i].name, counts[i].value);
}

void
lg_step_add_json (JsonBuilder *b, const LgStep *s, const LgTargets *t)
{
  GArray *o = overheads (s, t);
  const LgResults *r = &s->results;

  json_builder_begin_object (b);
  add_number (b, "calls", s->calls);
  add_number (b, "seconds", s->seconds);
  json_builder_set_member_name (b, "held");
  json_builder_add_boolean_value (b, s->held);
  json_builder_set_member_name (b, "why");
  json_builder_add_string_value (b, s->why ? s->why : "");
  add_distribution (b, "voice_to_voice_ms", r->v2v_ms);
  add_distribution (b, "overhead_ms", o);
  add_distribution (b, "barge_in_ms", r->barge_ms);
  add_distribution (b, "barge_in_vad_event_ms", r->barge_vad_ms);
  add_distribution (b, "server_stt_ms", r->server_stt_ms);
  add_distribution (b, "server_llm_ttft_ms", r->server_llm_ms);
  add_distribution (b, "server_tts_ttfb_ms", r->server_tts_ms);
  add_distribution (b, "server_voice_to_voice_ms", r->server_v2v_ms);
  add_distribution (b, "rtp_jitter_ms", r->jitter_ms);
  add_distribution (b, "resume_ms", r->resume_ms);
  add_counts (b, s);
  add_number (b, "rtp_loss_pct",
      r->packets_received
          ? 100.0 * r->packets_lost / (r->packets_received + r->packets_lost)
          : NAN);
  for (guint g = 0; g < LG_N_COSTS; g++)
    add_cost (b, lg_cost_names[g], s, &s->costs[g]);
  add_number (b, "loadgen_cpu_pct", s->loadgen_cpu_pct);
  json_builder_end_object (b);
  g_array_unref (o);
}

void
lg_step_print_header (GString *md)
{
  g_string_append (md,
      "| calls | turns | v2v p50 / p95 ms | overhead p50 / p95 ms | "
      "barge-in p50 / p95 ms | failed | underruns | RTP loss | jitter p95 ms | "
      "server CPU / call | RSS / call | threads / call | fds / call | "
      "load gen CPU | held |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

void
lg_step_print_row (GString *md, const LgStep *s, const LgTargets *t)
{
  const LgResults *r = &s->results;
  GArray *o = overheads (s, t);
  const LgCost *c = &s->costs[LG_COST_SERVER];

  g_string_append_printf (md,
      "| %u | %u | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f | %u | %.0f | "
      "%.2f %% | %.1f | %.2f %% | %.2f MB | %.1f | %.1f | %.0f %% | %s |\n",
      s->calls, r->turns, lg_percentile (r->v2v_ms, 50),
      lg_percentile (r->v2v_ms, 95), lg_percentile (o, 50),
      lg_percentile (o, 95), lg_percentile (r->barge_ms, 50),
      lg_percentile (r->barge_ms, 95),
      r->calls_failed + r->calls_dropped + r->turns_failed + r->barge_failed,
      s->underruns,
      r->packets_received
          ? 100.0 * r->packets_lost / (r->packets_received + r->packets_lost)
          : NAN,
      lg_percentile (r->jitter_ms, 95),
      per_call (s, c->cpu_pct - c->idle_cpu_pct),
      per_call (s, c->peak.rss_mb - c->idle.rss_mb),
      per_call (s, (gdouble)c->peak.threads - c->idle.threads),
      per_call (s, (gdouble)c->peak.fds - c->idle.fds), s->loadgen_cpu_pct,
      s->held ? "yes" : s->why);
  g_array_unref (o);
}

void
lg_step_clear (LgStep *s)
{
  lg_results_clear (&s->results);
  g_free (s->why);
}

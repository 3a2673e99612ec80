/* voiceagent: Prometheus metrics. Main context only.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "metrics.h"

/* Seconds; voice-to-voice lives around 0.3–1 s, so resolve that well. */
static const gdouble buckets[] = {
  0.025,
  0.05,
  0.1,
  0.15,
  0.2,
  0.25,
  0.3,
  0.4,
  0.5,
  0.6,
  0.75,
  1.0,
  1.5,
  2.0,
  3.0,
  5.0,
};

#define N_BUCKETS G_N_ELEMENTS (buckets)

typedef struct
{
  const gchar *name;
  const gchar *help;
  guint64 counts[N_BUCKETS];
  guint64 total;
  gdouble sum;
} Histogram;

struct _VaMetrics
{
  guint64 calls_total;
  GHashTable *ended; /* reason → guint64* */
  GHashTable *failed; /* reason → guint64* */
  GHashTable *rejected; /* cause → guint64* */
  Histogram hist[7];
  VaUsage usage;
  guint64 playout_underruns;
};

gdouble
va_usage_cost (const VaUsage *u, const VaConfig *c)
{
  return u->stt_seconds / 60.0 * c->price_stt_per_min +
      u->tts_characters / 1000.0 * c->price_tts_per_1k_chars +
      u->llm_prompt_tokens / 1e6 * c->price_llm_per_m_input +
      u->llm_completion_tokens / 1e6 * c->price_llm_per_m_output;
}

VaMetrics *
va_metrics_new (void)
{
  VaMetrics *m = g_new0 (VaMetrics, 1);

  m->ended = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->failed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->rejected = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->hist[0].name = "stt";
  m->hist[0].help = "End of the caller's speech to the final transcript";
  m->hist[1].name = "llm_ttft";
  m->hist[1].help = "End of turn to the LLM's first token";
  m->hist[2].name = "tts_ttfb";
  m->hist[2].help = "Text sent to TTS to its first audio";
  m->hist[3].name = "voice_to_voice";
  m->hist[3].help = "End of the caller's speech to the agent's first audio";
  m->hist[4].name = "end_of_turn";
  m->hist[4].help = "End of the caller's last word to the turn being committed";
  m->hist[5].name = "gateway_failover";
  m->hist[5].help = "Gateway front: a worker's death to its call's relay "
                    "pointing at the next worker";
  m->hist[6].name = "tool_webhook";
  m->hist[6].help = "A tool's webhook, from the call's start to its result "
                    "(built-ins, which take no time, are not counted)";
  return m;
}

void
va_metrics_free (VaMetrics *m)
{
  if (m == NULL)
    return;
  g_hash_table_unref (m->ended);
  g_hash_table_unref (m->failed);
  g_hash_table_unref (m->rejected);
  g_free (m);
}

static void
count (GHashTable *table, const gchar *key)
{
  guint64 *v = g_hash_table_lookup (table, key);

  if (v == NULL) {
    v = g_new0 (guint64, 1);
    g_hash_table_insert (table, g_strdup (key), v);
  }
  (*v)++;
}

void
va_metrics_call_started (VaMetrics *m)
{
  m->calls_total++;
}

void
va_metrics_call_ended (VaMetrics *m, const gchar *reason, gboolean failed)
{
  count (m->ended, reason);
  if (failed)
    count (m->failed, reason);
}

void
va_metrics_call_rejected (VaMetrics *m, const gchar *cause)
{
  count (m->rejected, cause);
}

void
va_metrics_observe (VaMetrics *m, const gchar *name, gdouble seconds)
{
  guint i, b;

  for (i = 0; i < G_N_ELEMENTS (m->hist); i++) {
    Histogram *h = &m->hist[i];
    if (!g_str_equal (h->name, name))
      continue;
    for (b = 0; b < N_BUCKETS; b++) {
      if (seconds <= buckets[b])
        h->counts[b]++;
    }
    h->total++;
    h->sum += seconds;
  }
}

void
va_metrics_add_usage (VaMetrics *m, const VaUsage *u)
{
  m->usage.stt_seconds += u->stt_seconds;
  m->usage.tts_characters += u->tts_characters;
  m->usage.llm_prompt_tokens += u->llm_prompt_tokens;
  m->usage.llm_completion_tokens += u->llm_completion_tokens;
  m->usage.tts_characters_unheard += u->tts_characters_unheard;
  m->usage.llm_requests += u->llm_requests;
  m->usage.llm_speculative += u->llm_speculative;
  m->usage.llm_speculative_used += u->llm_speculative_used;
  m->usage.turns += u->turns;
  m->usage.barge_ins += u->barge_ins;
  m->usage.tool_calls += u->tool_calls;
  m->usage.tool_failures += u->tool_failures;
  m->usage.false_interruptions += u->false_interruptions;
  m->usage.backchannels += u->backchannels;
}

void
va_metrics_playout_underrun (VaMetrics *m)
{
  m->playout_underruns++;
}

static void
render_labeled (
    GString *out, const gchar *metric, const gchar *label, GHashTable *table)
{
  GHashTableIter iter;
  gpointer k, v;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_string_append_printf (out, "%s{%s=\"%s\"} %" G_GUINT64_FORMAT "\n",
        metric, label, (gchar *)k, *(guint64 *)v);
}

static void
render_histogram (GString *out, const Histogram *h)
{
  gchar num[G_ASCII_DTOSTR_BUF_SIZE];
  guint b;

  g_string_append_printf (out,
      "# HELP voiceagent_%s_seconds %s.\n"
      "# TYPE voiceagent_%s_seconds histogram\n",
      h->name, h->help, h->name);
  for (b = 0; b < N_BUCKETS; b++)
    g_string_append_printf (out,
        "voiceagent_%s_seconds_bucket{le=\"%s\"} %" G_GUINT64_FORMAT "\n",
        h->name, g_ascii_formatd (num, sizeof (num), "%g", buckets[b]),
        h->counts[b]);
  g_string_append_printf (out,
      "voiceagent_%s_seconds_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n",
      h->name, h->total);
  g_string_append_printf (out, "voiceagent_%s_seconds_sum %s\n", h->name,
      g_ascii_formatd (num, sizeof (num), "%.6f", h->sum));
  g_string_append_printf (out,
      "voiceagent_%s_seconds_count %" G_GUINT64_FORMAT "\n", h->name, h->total);
}

static void
render_gauge (GString *out, const gchar *name, const gchar *type,
    const gchar *help, gdouble value)
{
  gchar num[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, "# HELP %s %s.\n# TYPE %s %s\n%s %s\n", name,
      help, name, type, name,
      g_ascii_formatd (num, sizeof (num), "%.9g", value));
}

static void
render_scaleout (GString *out, const VaScaleoutMetrics *s)
{
  render_gauge (out, "voiceagent_redis_up", "gauge", "1 while Redis answers",
      s->redis_up);
  render_gauge (out, "voiceagent_instances", "gauge",
      "Live instances seen in the registry", s->instances);
  render_gauge (out, "voiceagent_calls_resumed_total", "counter",
      "Calls resumed here from their stored state", s->resumed);
}

static void
render_records (GString *out, const VaRecordsMetrics *r)
{
  render_gauge (out, "voiceagent_records_database_up", "gauge",
      "1 while the call-record database takes writes", r->database_up);
  render_gauge (out, "voiceagent_records_queued", "gauge",
      "Call records waiting to be written", (gdouble)r->queued);
  render_gauge (out, "voiceagent_records_written_total", "counter",
      "Call records committed to the database", (gdouble)r->written);
  render_gauge (out, "voiceagent_records_retried_total", "counter",
      "Attempts to write call records that failed and were retried",
      (gdouble)r->retried);
  render_gauge (out, "voiceagent_records_dropped_total", "counter",
      "Call records never written: the oldest, over the queue's bound, or "
      "refused by the database",
      (gdouble)r->dropped);
}

static void
render_webhook (GString *out, const VaWebhookMetrics *w)
{
  render_gauge (out, "voiceagent_webhook_queued", "gauge",
      "Webhook deliveries waiting or in progress", (gdouble)w->queued);
  render_gauge (out, "voiceagent_webhook_delivered_total", "counter",
      "Webhook deliveries the receiver answered with 2xx",
      (gdouble)w->delivered);
  render_gauge (out, "voiceagent_webhook_failed_total", "counter",
      "Webhook deliveries given up: refused with 4xx, or out of attempts",
      (gdouble)w->failed);
  render_gauge (out, "voiceagent_webhook_retried_total", "counter",
      "Webhook attempts that failed and were tried again", (gdouble)w->retried);
  render_gauge (out, "voiceagent_webhook_dropped_total", "counter",
      "Webhook deliveries dropped, the oldest, over the queue's bound",
      (gdouble)w->dropped);
}

static void
render_recording (GString *out, const VaRecordingMetrics *r)
{
  render_gauge (out, "voiceagent_recordings_written_total", "counter",
      "Call recordings written", (gdouble)r->written);
  render_gauge (out, "voiceagent_recording_bytes_total", "counter",
      "Bytes of call recordings written", (gdouble)r->bytes);
  render_gauge (out, "voiceagent_recording_dropped_buffers_total", "counter",
      "Audio buffers recordings dropped because the disk was too slow",
      (gdouble)r->dropped);
  render_gauge (out, "voiceagent_recordings_skipped_total", "counter",
      "Calls not recorded though they should have been (disk full, "
      "no audio)",
      (gdouble)r->skipped);
}

gchar *
va_metrics_render (VaMetrics *m, const VaConfig *c, guint active,
    gboolean draining, const VaScaleoutMetrics *scaleout,
    const VaRecordsMetrics *records, const VaWebhookMetrics *webhook,
    const VaRecordingMetrics *recording)
{
  GString *out = g_string_new (NULL);
  guint i;

  render_gauge (
      out, "voiceagent_calls_active", "gauge", "Calls in progress", active);
  render_gauge (out, "voiceagent_calls_total", "counter", "Calls accepted",
      m->calls_total);
  render_gauge (out, "voiceagent_draining", "gauge",
      "1 while SIGTERM drains calls", draining);
  g_string_append (out,
      "# HELP voiceagent_calls_ended_total Calls ended, by reason.\n"
      "# TYPE voiceagent_calls_ended_total counter\n");
  render_labeled (out, "voiceagent_calls_ended_total", "reason", m->ended);
  g_string_append (out,
      "# HELP voiceagent_call_failures_total Calls that "
      "failed, by cause.\n# TYPE voiceagent_call_failures_total counter\n");
  render_labeled (out, "voiceagent_call_failures_total", "cause", m->failed);
  g_string_append (out,
      "# HELP voiceagent_calls_rejected_total Call "
      "requests refused, by cause.\n"
      "# TYPE voiceagent_calls_rejected_total counter\n");
  render_labeled (out, "voiceagent_calls_rejected_total", "cause", m->rejected);
  for (i = 0; i < G_N_ELEMENTS (m->hist); i++)
    render_histogram (out, &m->hist[i]);
  render_gauge (out, "voiceagent_playout_underruns_total", "counter",
      "Times the agent's audio ran dry mid-turn and silence played",
      m->playout_underruns);
  render_gauge (out, "voiceagent_stt_audio_seconds_total", "counter",
      "Audio seconds sent to speech-to-text", m->usage.stt_seconds);
  render_gauge (out, "voiceagent_tts_characters_total", "counter",
      "Characters sent to text-to-speech", m->usage.tts_characters);
  render_gauge (out, "voiceagent_tts_characters_unheard_total", "counter",
      "Characters synthesized that the caller never heard (cut off, "
      "dropped or speculative)",
      m->usage.tts_characters_unheard);
  render_gauge (out, "voiceagent_turns_total", "counter",
      "Caller turns committed", m->usage.turns);
  render_gauge (out, "voiceagent_llm_requests_total", "counter",
      "LLM chat requests, speculative ones included", m->usage.llm_requests);
  render_gauge (out, "voiceagent_llm_speculative_requests_total", "counter",
      "Speculative LLM requests started before the turn was committed",
      m->usage.llm_speculative);
  render_gauge (out, "voiceagent_llm_speculative_used_total", "counter",
      "Speculative LLM requests whose reply answered the committed turn",
      m->usage.llm_speculative_used);
  render_gauge (out, "voiceagent_tool_calls_total", "counter",
      "Tool calls whose result the model got (docs/elements/llmtransform.md)",
      m->usage.tool_calls);
  render_gauge (out, "voiceagent_tool_failures_total", "counter",
      "Tool calls whose result was an error (timeout, HTTP status, bad "
      "arguments, unknown tool)",
      m->usage.tool_failures);
  render_gauge (out, "voiceagent_barge_ins_total", "counter",
      "Barge-ins confirmed: the agent was cut off", m->usage.barge_ins);
  render_gauge (out, "voiceagent_false_interruptions_total", "counter",
      "Times the agent paused for the caller's speech and resumed",
      m->usage.false_interruptions);
  render_gauge (out, "voiceagent_backchannels_total", "counter",
      "Backchannels over the agent (not taken as turns)",
      m->usage.backchannels);
  render_gauge (out, "voiceagent_llm_prompt_tokens_total", "counter",
      "LLM prompt tokens", m->usage.llm_prompt_tokens);
  render_gauge (out, "voiceagent_llm_completion_tokens_total", "counter",
      "LLM completion tokens", m->usage.llm_completion_tokens);
  render_gauge (out, "voiceagent_cost_usd_total", "counter",
      "Estimated service cost from the configured price table",
      va_usage_cost (&m->usage, c));
  if (scaleout)
    render_scaleout (out, scaleout);
  if (records)
    render_records (out, records);
  if (webhook)
    render_webhook (out, webhook);
  if (recording)
    render_recording (out, recording);
  return g_string_free (out, FALSE);
}

/* voiceagent: Prometheus metrics. Main context only.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "vaconfig.h"

G_BEGIN_DECLS

typedef struct _VaMetrics VaMetrics;

/* Usage of one call or of the whole server. */
typedef struct
{
  gdouble stt_seconds; /* audio sent to speech-to-text */
  guint64 tts_characters; /* characters sent to text-to-speech */
  guint64 llm_prompt_tokens;
  guint64 llm_completion_tokens;
  /* Turn taking (docs/turn-taking.md) */
  guint64 tts_characters_unheard; /* synthesized, never played */
  guint64 llm_requests; /* chat requests, speculative ones included */
  guint64 llm_speculative; /* speculative requests started */
  guint64 llm_speculative_used; /* ... whose reply was the turn's */
  guint64 turns; /* caller turns committed */
  guint64 barge_ins; /* confirmed: the agent was cut off */
  guint64 false_interruptions; /* paused, then resumed */
  guint64 backchannels; /* "mhm" over the agent, not a turn */
  /* Tool calls (docs/elements/llmtransform.md, Tools) */
  guint64 tool_calls; /* results the model got */
  guint64 tool_failures; /* ... that were errors */
} VaUsage;

gdouble va_usage_cost (const VaUsage *usage, const VaConfig *config);

VaMetrics *va_metrics_new (void);
void va_metrics_free (VaMetrics *m);

void va_metrics_call_started (VaMetrics *m);
void va_metrics_call_ended (VaMetrics *m, const gchar *reason, gboolean failed);
void va_metrics_call_rejected (VaMetrics *m, const gchar *cause);

/* @name: stt, llm_ttft, tts_ttfb, voice_to_voice, end_of_turn,
 * gateway_failover or tool_webhook. */
void va_metrics_observe (VaMetrics *m, const gchar *name, gdouble seconds);
void va_metrics_add_usage (VaMetrics *m, const VaUsage *usage);
/* The agent's audio ran dry mid-turn (elevenlabssrc `underrun`). */
void va_metrics_playout_underrun (VaMetrics *m);

/* With --redis: what the scale-out adds to /metrics. */
typedef struct
{
  gboolean redis_up; /* Redis answers */
  guint instances; /* live instances in the registry */
  guint64 resumed; /* calls resumed here */
} VaScaleoutMetrics;

/* The call records' writer (records.h): what waits for the database. */
typedef struct
{
  gboolean database_up; /* the last attempt reached the database */
  guint64 queued; /* waiting, or being written */
  guint64 written; /* committed */
  guint64 retried; /* attempts that failed and will be retried */
  guint64 dropped; /* the oldest, over the queue's bound; or refused */
} VaRecordsMetrics;

/* With --webhook (webhook.h). */
typedef struct
{
  guint64 queued; /* waiting, or being attempted */
  guint64 delivered; /* answered 2xx */
  guint64 failed; /* given up: refused (4xx) or out of attempts */
  guint64 retried; /* attempts that failed and were tried again */
  guint64 dropped; /* the oldest, over the queue's bound */
} VaWebhookMetrics;

/* With --record (recorder.h). */
typedef struct
{
  guint64 written; /* recordings kept */
  guint64 bytes; /* their size */
  guint64 dropped; /* audio buffers the slow disk cost them */
  guint64 skipped; /* calls that should have been recorded and were not */
} VaRecordingMetrics;

/* The Prometheus text (free it); @scaleout NULL without --redis, @records
 * NULL without a records writer, @webhook without --webhook, @recording
 * without --record. */
gchar *va_metrics_render (VaMetrics *m, const VaConfig *config,
    guint active_calls, gboolean draining, const VaScaleoutMetrics *scaleout,
    const VaRecordsMetrics *records, const VaWebhookMetrics *webhook,
    const VaRecordingMetrics *recording);

G_END_DECLS

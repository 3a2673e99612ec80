/* voiceagent-loadgen: one step's numbers, as JSON and as a table row.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include "lg-caller.h"
#include "lg-proc.h"

G_BEGIN_DECLS

/* What the run is judged against (the targets by default). */
typedef struct
{
  guint eot_silence_ms; /* silerovad min-silence-ms in the pipeline */
  guint service_ms; /* the emulator's STT + LLM + TTS latency */
  guint min_speech_ms; /* silerovad min-speech-ms */
  guint max_overhead_p95_ms;
  guint max_overhead_p50_one_call_ms; /* judged on a step of 1 call */
  guint barge_slack_ms; /* barge-in p95 may be min-speech + this */
} LgTargets;

/* A process's cost: idle before the step, and while the calls ran. */
typedef struct
{
  gboolean valid;
  gdouble idle_cpu_pct, cpu_pct;
  LgProcSample idle, peak;
} LgCost;

/* The processes whose costs a step samples (--server-pid, ...). */
typedef enum {
  LG_COST_SERVER, /* voiceagent instances: direct mode, or the workers */
  LG_COST_EMULATOR,
  LG_COST_GATEWAY, /* Janus (gateway mode) */
  LG_COST_FRONT, /* the gateway's voiceagent front */
  LG_N_COSTS
} LgCostGroup;

/* "server", "emulator", "gateway", "front": JSON member names. */
extern const gchar *const lg_cost_names[LG_N_COSTS];

typedef struct
{
  guint calls;
  gdouble seconds;
  LgResults results;
  LgCost costs[LG_N_COSTS];
  gdouble loadgen_cpu_pct;
  gdouble underruns; /* from the server's /metrics, -1 if unknown */
  gdouble server_failures; /* same */
  guint feeder_late; /* ticks the load generator itself sent late */
  gboolean held;
  gchar *why; /* what broke, when !held */
} LgStep;

void lg_step_judge (LgStep *step, const LgTargets *t);
void lg_step_add_json (JsonBuilder *b, const LgStep *step, const LgTargets *t);
void lg_step_print_row (GString *md, const LgStep *step, const LgTargets *t);
void lg_step_print_header (GString *md);
void lg_step_clear (LgStep *step);

/* Percentile @p (0..100) of a gdouble array; NAN when empty. */
gdouble lg_percentile (const GArray *values, gdouble p);

G_END_DECLS

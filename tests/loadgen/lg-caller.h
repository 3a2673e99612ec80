/* voiceagent-loadgen: one scripted caller and what it measured.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "lg-audio.h"

G_BEGIN_DECLS

typedef enum {
  LG_TURN_SAY, /* speak, then listen to the whole reply */
  LG_TURN_INTERRUPT, /* speak, then talk over the reply with the next turn */
} LgTurnKind;

typedef struct
{
  LgTurnKind kind;
  LgClip *clip;
} LgTurn;

/* Shared by every caller, read-only while calls run. */
typedef struct
{
  GPtrArray *turns; /* of LgTurn*, spoken in order and repeated */
  GBytes *silence;
  gdouble loud_rms; /* received audio louder than this is the agent */
  guint barge_after_ms; /* talk over a reply this long after it starts */
  guint reply_timeout_ms; /* no reply this long after speech: turn failed */
  guint quiet_ms; /* a reply has ended after this much silence */
  guint think_ms; /* pause before the next turn */
  gboolean verbose; /* print every measurement */
  gboolean no_data_channel; /* callers open no "events" channel */
} LgScript;

LgScript *lg_script_load (const gchar *path, GError **error);
void lg_script_free (LgScript *script);

/* Everything measured, by one caller or summed over a step. */
typedef struct
{
  GArray *v2v_ms; /* gdouble: end of speech sent → agent audio received */
  GArray *barge_ms; /* gdouble: onset of talking over → agent audio stops */
  GArray *barge_vad_ms; /* gdouble: that onset → the server's "vad" event */
  GArray *server_stt_ms, *server_llm_ms, *server_tts_ms, *server_v2v_ms;
  GArray *jitter_ms; /* gdouble, one per call */
  guint turns, turns_failed;
  guint barge_ins, barge_failed, barge_unmeasured;
  guint calls, calls_failed, calls_dropped;
  guint calls_lost, calls_resumed; /* the instance died; taken up again */
  GArray *resume_ms; /* gdouble: loss noticed → answer from the new one */
  guint64 packets_received;
  gint64 packets_lost;
} LgResults;

void lg_results_init (LgResults *r);
void lg_results_clear (LgResults *r);
void lg_results_merge (LgResults *into, const LgResults *from);

typedef struct _LgCaller LgCaller;

/* Caller @index calls urls[index % n]; a resume tries the others in turn,
 * as a load balancer or DNS round robin in front of them would. */
LgCaller *lg_caller_new (
    gchar **urls, const LgScript *script, guint index, const gchar *token);
/* Offers, POSTs and applies the answer (blocks). FALSE if the call failed. */
gboolean lg_caller_connect (LgCaller *caller);
/* Every 20 ms, from one thread: sends the next packet, moves the script. */
void lg_caller_tick (LgCaller *caller, gint64 now_us);
/* With --resume: asks the call's instance whether it still holds the call
 * (GET on the session URL); if it cannot be reached, offers again with the
 * call's resume token and goes on with the script. Blocks; call from a
 * thread of its own, never the tick. */
void lg_caller_check (LgCaller *caller);

/* Hangs up and folds what the call measured into @into. */
void lg_caller_finish (LgCaller *caller, LgResults *into);
void lg_caller_free (LgCaller *caller);

G_END_DECLS

/* voiceagent-turnbench: one caller playing the corpus, and what it saw.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "corpus.h"

G_BEGIN_DECLS

/* A backchannel, noise burst or interrupt, said over a reply. Times are
 * g_get_monotonic_time() microseconds on the caller's clock. */
typedef struct
{
  const TbItem *item;
  gint64 onset; /* its first audible sample left the caller */
  gint64 end; /* its last one */
  gboolean interrupted_event; /* the server said it cut the agent off */
  gint64 gap_start; /* the agent fell silent after the onset; 0 = never */
  gint64 resumed_at; /* the agent was audible again; 0 = not yet */
  gboolean agent_was_talking; /* the agent was audible just before it */
  /* interrupts: onset → agent silent; -1 = not measured */
  gdouble barge_ms;
  gboolean barge_failed; /* the agent went on talking for 3 s */
} TbAction;

typedef struct
{
  const TbItem *item;
  gint64 t0; /* the turn's first audible sample left the caller */
  gint64 speech_end; /* its last one */
  gint64 cut_in_at; /* agent audio reached the caller before speech_end */
  gint cut_in_pause; /* the pause it came in (index), -1 before any */
  gint64 committed_at; /* a {"type":"turn","state":"committed"} arrived */
  gint64 last_final_at; /* the last final user transcript before the reply */
  gint64 reply_at; /* the first agent audio after speech_end; 0 = none */
  GArray *actions; /* (element-type TbAction) */
} TbTurn;

typedef struct
{
  const TbCorpus *corpus;
  gdouble loud_rms; /* received audio louder than this is the agent */
  GBytes *silence; /* a 20 ms Opus packet of silence */
  gboolean verbose;
} TbScript;

typedef struct _TbCaller TbCaller;

TbCaller *tb_caller_new (const gchar *url, const TbScript *script, guint index);
/* Offers, POSTs and applies the answer (blocks). FALSE if the call failed. */
gboolean tb_caller_connect (TbCaller *caller);
/* Every 20 ms from one thread: sends the next packet, moves the script. */
void tb_caller_tick (TbCaller *caller, gint64 now_us);
/* The corpus has been played to its end. */
gboolean tb_caller_done (TbCaller *caller);
/* Hangs up; the turns it played (element-type TbTurn*, owned by @caller). */
GPtrArray *tb_caller_finish (TbCaller *caller);
void tb_caller_free (TbCaller *caller);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* What gstllmtransform.c (pads, src task, events, state changes, property
 * glue) and llmreply.c (the reply, its attempts and retry, the HTTP
 * callbacks and timers, the output queue) both see: the element's struct,
 * the reply's state, and the functions one file calls in the other. Not
 * installed; nothing outside gst/llm/ includes it.
 *
 * Threads: the sink pad's streaming thread, the src pad's task, the
 * application (properties, action signals, state changes), the I/O thread
 * of the GstVoiceClient (HTTP callbacks) and the clock thread (timers).
 *
 * Lock order: GstLlmTransform.lock, then OBJECT_LOCK (never the reverse).
 * Neither is held while calling the client or the bus: a handler records
 * that work in a Deferred and runs it after unlocking. The clock is read
 * and armed under GstLlmTransform.lock (arm_timer_locked, the running time
 * of turn messages): clocks call on_timer back without a lock of their
 * own, so that cannot deadlock. Functions named *_locked expect
 * GstLlmTransform.lock held. */
#pragma once

#include <gst/gst.h>

#include "voice.h"
#include "gstllmtransform.h"
#include "llmchat.h"
#include "llmchunker.h"
#include "llmhistory.h"
#include "llmoptions.h"
#include "llmsse.h"
#include "llmtools.h"

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (gst_llm_transform_debug);
#define GST_CAT_DEFAULT gst_llm_transform_debug

/* The timers a reply may have running, one of each at most. */
typedef enum {
  TIMER_TOKEN, /* first-token-timeout */
  TIMER_CHUNK, /* clause-max-wait-ms */
  TIMER_RETRY, /* the wait before the retry */
  N_TIMERS,
} TimerKind;

/* The reply being generated: at most one at a time. Every field is
 * protected by the element's lock. */
typedef struct
{
  guint id;
  guint turn;
  guint exchange_id;
  gboolean combined;
  gchar *url; /* the endpoint */
  gchar *auth; /* Authorization header value, or NULL */
  gchar *model;
  GBytes *body; /* the request, kept for the retry */
  guint n_messages;
  gchar *fallback_text;
  guint min_chars;
  guint max_wait_ms;
  guint token_timeout_ms;
  GPtrArray *after; /* texts of `say` to speak when the reply ends */
  gint64 start_us; /* when the reply was asked for */
  GString *queued; /* text queued for downstream */
  guint pieces; /* buffers queued */
  guint deltas; /* content and reasoning deltas received */
  gboolean usage_reported;
  gint64 prompt_tokens;
  gint64 completion_tokens;
  gint64 total_tokens;
  GstClockID timers[N_TIMERS];

  /* The current attempt */
  guint attempt; /* 1, or 2 for the retry */
  guint attempt_id; /* ties HTTP callbacks to it; 0 between attempts */
  guint request_id; /* the client's id, 0 until known or when over */
  gint64 request_us;
  guint http_status;
  GByteArray *error_body; /* body of a non-2xx answer */
  gint64 retry_after_ms;
  LlmSseParser sse;
  JsonParser *json;
  LlmChunker chunker;
  gboolean got_token;
  gboolean got_done; /* data: [DONE] */
  gboolean got_finish; /* a finish_reason */
  gchar *stream_error;
  gchar *finish_reason;

  /* Speculative (started on turn-likely): pieces wait in @held until the
   * turn is committed with the same words (adopt_speculation_locked), or
   * are dropped with the reply and its exchange. */
  gboolean speculative;
  gchar *spec_words; /* gst_voice_turn_normalize() of the words answered */
  GQueue held; /* OutItem* */
  gchar *held_end; /* it completed while held: the finish reason */

  /* Tool calls (llmtoolrun.c) */
  LlmOptions opts; /* the options it started with, for follow-ups */
  LlmToolSet *tools; /* ref; NULL: no tools offered */
  gchar *call_id; /* sent to webhooks */
  gchar *tools_secret; /* signs webhook requests; NULL: unsigned */
  guint max_tool_rounds;
  gchar *filler_text;
  guint filler_ms;
  LlmToolCalls calls; /* of the current attempt, being assembled */
  guint round; /* tool rounds run in this turn */
  guint pending; /* webhooks of this round not answered yet */
  GSource *filler; /* the filler timer (I/O context), or NULL */
  gboolean filler_said;
  gboolean end_call; /* end_call called: hang up once the reply was heard */
  gboolean waiting; /* wait called: no follow-up until the caller speaks */
  gboolean transferring; /* transfer called */
} Reply;

/* What the src task pushes: a buffer or a serialized event. Protected by
 * the element's lock while queued; the src task owns it once popped. */
typedef struct
{
  GstMiniObject *obj;
  guint exchange_id; /* buffers: the exchange their text belongs to */
} OutItem;

/* A request to send, prepared under the lock and sent outside it; owned by
 * the one thread that does so. */
typedef struct
{
  guint attempt_id;
  gchar *url;
  gchar *auth;
  GBytes *body;
} Attempt;

/* What a handler decided under the lock and does after releasing it:
 * client calls can complete synchronously on the I/O thread and re-enter
 * our callbacks, clock calls take the clock's lock, and bus sync handlers
 * may call our action signals. A local of that one handler. */
typedef GstVoiceDeferred Deferred;

struct _GstLlmTransform
{
  GstElement parent;

  GstPad *sinkpad; /* set in init, read-only after */
  GstPad *srcpad; /* set in init, read-only after */

  /* Properties except `history`: protected by OBJECT_LOCK. A reply copies
   * them under it (llm_options_copy) and uses the copy. */
  LlmOptions opts;

  /* Conversation state: protected by lock. Lock order: lock, then
   * OBJECT_LOCK (never the reverse). */
  GMutex lock;
  GCond cond; /* @out gained an item or @flushing changed */
  GCond requests_cond; /* @requests_alive dropped */
  GstVoiceClient *client; /* from NULL→READY to READY→NULL */
  GQueue out; /* OutItem*, pushed by the src task in order */
  gboolean flushing; /* the src task is not running: accept nothing */
  GstFlowReturn src_result; /* last flow return downstream */
  gboolean need_stream_start; /* src task sends stream-start and caps */
  gboolean need_segment; /* src task sends a segment and a gap */
  GString *user_text; /* the caller's final words of the turn so far */
  LlmHistory history;
  gboolean history_preset; /* `history` was written: the next start keeps it */
  Reply *reply; /* being generated, or NULL */
  guint next_id; /* ids of replies and attempts */
  guint last_turn; /* highest turn number seen */
  gboolean greeted;
  gboolean eos_pending; /* EOS goes out once the reply is over */
  guint32 eos_seqnum;
  guint requests_alive; /* HTTP requests whose callbacks may still run */
  guint spec_turn; /* the turn spec_attempts counts for */
  guint spec_attempts; /* speculative requests made for spec_turn */
  /* interruption=confirmed (llmturn.c), also protected by lock */
  guint speaking_turn; /* its text went downstream, no `spoken` back; 0 */
  gboolean paused; /* agent-pause sent; no resume or interrupt yet */
  gint64 pause_start_us; /* the speech-start that paused (monotonic) */
  gint64 pause_speech_end_us; /* its speech-stop; 0 while talking */
  GString *pause_words; /* the caller's final words since the pause */
  gchar *pause_interim; /* the latest interim after them, or NULL */
  GstVoiceTurnWords *turn_words; /* backchannels; loaded on first use */
  LlmToolSet *tools; /* from tools_path, NULL: none; protected by lock */
  gchar *tools_path; /* the file @tools came from; protected by lock */
  guint end_call_turn; /* end-call posted once its turn is heard; 0: none */
};

/* Defined in llmreply.c and llmdeferred.c, called from gstllmtransform.c
 * too. Hidden
 * (G_GNUC_INTERNAL): short names that must not clash in the process. */

/* Returns: the running time now, or GST_CLOCK_TIME_NONE without a clock. */
G_GNUC_INTERNAL GstClockTime running_time_now (GstLlmTransform *self);

/* llmdeferred.c: work recorded under the lock, run by deferred_run()
 * after releasing it: first cancels, then unschedules (taking *@id), then
 * sends (taking @a), then posts, each kind in the order recorded. */
G_GNUC_INTERNAL GstStructure *turn_message_new (
    GstLlmTransform *self, const gchar *event, guint turn);
G_GNUC_INTERNAL void defer_structure (
    GstLlmTransform *self, Deferred *d, GstStructure *s);
G_GNUC_INTERNAL void defer_warning (
    GstLlmTransform *self, Deferred *d, const gchar *text, const gchar *debug);
G_GNUC_INTERNAL void defer_error (GstLlmTransform *self, Deferred *d,
    GstResourceError code, const gchar *text, const gchar *debug);
G_GNUC_INTERNAL void defer_http_error (GstLlmTransform *self, Deferred *d,
    guint status, const gchar *text, const gchar *debug);
G_GNUC_INTERNAL void defer_unschedule (Deferred *d, GstClockID *id);
G_GNUC_INTERNAL void defer_cancel (
    GstLlmTransform *self, Deferred *d, guint request_id);
G_GNUC_INTERNAL void defer_send (
    GstLlmTransform *self, Deferred *d, Attempt *a);
G_GNUC_INTERNAL void defer_call (Deferred *d, GstVoiceDeferredFunc func,
    gpointer data, GDestroyNotify destroy);
G_GNUC_INTERNAL void deferred_run (GstLlmTransform *self, Deferred *d);

/* llmreply.c: sends @a on @client; call without the lock. */
G_GNUC_INTERNAL void send_attempt (
    GstLlmTransform *self, GstVoiceClient *client, Attempt *a);

/* The output queue the src task pushes from. */
G_GNUC_INTERNAL void out_item_free (OutItem *item);
G_GNUC_INTERNAL void queue_object_locked (
    GstLlmTransform *self, GstMiniObject *obj, guint exchange_id);
G_GNUC_INTERNAL gboolean reply_active_locked (GstLlmTransform *self);
G_GNUC_INTERNAL void speak_locked (GstLlmTransform *self, const gchar *text,
    guint turn, const gchar *origin, Deferred *d);
G_GNUC_INTERNAL void maybe_queue_eos_locked (GstLlmTransform *self);

/* The reply: started on a turn, cancelled on barge-in, flush and stop. */
G_GNUC_INTERNAL void cancel_reply_locked (
    GstLlmTransform *self, const gchar *why, Deferred *d);
G_GNUC_INTERNAL void start_reply_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d);

G_GNUC_INTERNAL Reply *begin_reply_locked (GstLlmTransform *self, guint turn,
    const gchar *user, gboolean combined, Deferred *d);
G_GNUC_INTERNAL void end_reply_locked (GstLlmTransform *self,
    const gchar *outcome, const gchar *reason, Deferred *d);

/* Speculative replies (llmturn.c): started on turn-likely, adopted on an
 * end-of-turn with the same words, dropped otherwise. */
G_GNUC_INTERNAL gboolean start_speculation_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d);
G_GNUC_INTERNAL gboolean adopt_speculation_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d);
G_GNUC_INTERNAL void drop_speculation_locked (
    GstLlmTransform *self, const gchar *why, Deferred *d);

/* The caller's turn events (llmturn.c), from the sink pad's event
 * function; each takes @event. */
G_GNUC_INTERNAL gchar *take_user_text_locked (
    GstLlmTransform *self, const gchar *transcript);
G_GNUC_INTERNAL gboolean queue_serialized_event (
    GstLlmTransform *self, GstEvent *event);
G_GNUC_INTERNAL gboolean handle_end_of_turn (
    GstLlmTransform *self, GstEvent *event);
G_GNUC_INTERNAL gboolean handle_barge_in (
    GstLlmTransform *self, GstEvent *event, gboolean is_vad);
G_GNUC_INTERNAL gboolean handle_turn_hint (
    GstLlmTransform *self, GstEvent *event);

/* The confirmed barge-in (llmturn.c). */
G_GNUC_INTERNAL gboolean agent_active_locked (GstLlmTransform *self);
G_GNUC_INTERNAL void queue_head_locked (GstLlmTransform *self, GstEvent *event);
G_GNUC_INTERNAL gboolean barge_speech_start (
    GstLlmTransform *self, GstEvent *event);
G_GNUC_INTERNAL void barge_speech_stop_locked (GstLlmTransform *self);
G_GNUC_INTERNAL void barge_transcript_locked (
    GstLlmTransform *self, const gchar *text, gboolean is_final, Deferred *d);
G_GNUC_INTERNAL gint64 barge_due_locked (GstLlmTransform *self);
G_GNUC_INTERNAL void barge_tick_locked (GstLlmTransform *self, Deferred *d);
G_GNUC_INTERNAL gboolean barge_is_backchannel_locked (
    GstLlmTransform *self, const gchar *text, Deferred *d);
G_GNUC_INTERNAL gboolean barge_backchannel_turn_locked (
    GstLlmTransform *self, const gchar *text, Deferred *d);
G_GNUC_INTERNAL void barge_turn_locked (GstLlmTransform *self, Deferred *d);
G_GNUC_INTERNAL void barge_reset_locked (GstLlmTransform *self);
G_GNUC_INTERNAL void barge_spoken_locked (GstLlmTransform *self, guint turn);

/* llmreply.c, for the tool rounds. */
G_GNUC_INTERNAL void queue_text_locked (
    GstLlmTransform *self, Reply *r, const gchar *text);
G_GNUC_INTERNAL void finish_reply_locked (
    GstLlmTransform *self, Reply *r, Deferred *d);
G_GNUC_INTERNAL void restart_reply_locked (
    GstLlmTransform *self, Reply *r, gboolean last_round, Deferred *d);

/* Tool calls (llmtoolrun.c). */
G_GNUC_INTERNAL gboolean tools_load_locked (
    GstLlmTransform *self, gboolean fatal, Deferred *d);
G_GNUC_INTERNAL void run_tool_round_locked (
    GstLlmTransform *self, Reply *r, Deferred *d);
G_GNUC_INTERNAL void tools_stop_filler_locked (Reply *r);
G_GNUC_INTERNAL void tools_reply_completed_locked (
    GstLlmTransform *self, Reply *r, Deferred *d);
G_GNUC_INTERNAL void tools_spoken_locked (
    GstLlmTransform *self, guint turn, gboolean complete, Deferred *d);
G_GNUC_INTERNAL void tools_barge_in_locked (GstLlmTransform *self, Deferred *d);

G_END_DECLS

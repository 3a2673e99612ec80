/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* llmtransform's reply machine: a reply is asked for (start_reply_locked),
 * sent as one HTTP attempt or two (one retry), streamed back through the
 * SSE parser and the clause chunker into the output queue the src task
 * pushes from, and ended as completed, failed (fallback text), error
 * (401/403) or cancelled (barge-in, flush, stop). Also the HTTP callbacks
 * (I/O thread) and the timers (clock thread); the work a handler defers
 * until it has released the lock is recorded by llmdeferred.c. GStreamer
 * pads, events and state changes stay in gstllmtransform.c; the lock order
 * is written in llmtransform-private.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "llmtransform-private.h"

/* Retry after this long when the server gives no Retry-After. */
#define RETRY_DELAY_MS 250
/* A longer Retry-After is not waited for: the caller would sit in silence;
 * the fallback text is spoken instead. */
#define MAX_RETRY_WAIT_MS 5000
/* Error bodies are kept up to this size, to quote the server. */
#define MAX_ERROR_BODY (64 * 1024)

/* user_data of an HTTP request; read-only after creation. */
typedef struct
{
  GstLlmTransform *self; /* ref */
  guint attempt_id;
} RequestCtx;

/* user_data of a clock timer; read-only after creation. */
typedef struct
{
  GstLlmTransform *self; /* ref */
  guint reply_id;
  TimerKind kind;
} TimerCtx;

/* ---- Timers ---- */

static void
timer_ctx_free (gpointer data)
{
  TimerCtx *t = data;

  gst_object_unref (t->self);
  g_free (t);
}

static gboolean on_timer (
    GstClock *clock, GstClockTime time, GstClockID id, gpointer user_data);

/* Starts a timer of @kind for @r on the pipeline clock (so tests drive it
 * with a GstTestClock), or the system clock outside a pipeline.
 *
 * Returns: (transfer full): the clock id; the reply keeps it. */
static GstClockID
arm_timer_locked (GstLlmTransform *self, Reply *r, TimerKind kind, guint ms)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  TimerCtx *t = g_new0 (TimerCtx, 1);
  GstClockID id;

  if (clock == NULL)
    clock = gst_system_clock_obtain ();
  id = gst_clock_new_single_shot_id (
      clock, gst_clock_get_time (clock) + ms * GST_MSECOND);
  t->self = gst_object_ref (self);
  t->reply_id = r->id;
  t->kind = kind;
  gst_clock_id_wait_async (id, on_timer, t, timer_ctx_free);
  gst_object_unref (clock);
  return id;
}

/* ---- Output ---- */

void
out_item_free (OutItem *item)
{
  if (item->obj)
    gst_mini_object_unref (item->obj);
  g_free (item);
}

void
queue_object_locked (
    GstLlmTransform *self, GstMiniObject *obj, guint exchange_id)
{
  OutItem *item = g_new0 (OutItem, 1);

  item->obj = obj;
  item->exchange_id = exchange_id;
  g_queue_push_tail (&self->out, item);
  g_cond_signal (&self->cond);
}

/* Returns: (transfer full): a buffer of agent text for @turn. */
static GstBuffer *
text_buffer_new (const gchar *text, guint turn, gboolean last)
{
  gsize len = strlen (text);
  GstBuffer *buf = len ? gst_buffer_new_memdup (text, len) : gst_buffer_new ();

  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_AGENT, TRUE, last, 1.0f, turn);
  return buf;
}

static void
queue_piece_locked (
    GstLlmTransform *self, Reply *r, const gchar *text, gboolean last)
{
  if (!last && *text == '\0')
    return;
  GST_LOG_OBJECT (
      self, "turn %u: piece \"%s\"%s", r->turn, text, last ? " (last)" : "");
  g_string_append (r->queued, text);
  r->pieces++;
  if (r->speculative) {
    OutItem *item = g_new0 (OutItem, 1);
    item->obj = GST_MINI_OBJECT (text_buffer_new (text, r->turn, last));
    item->exchange_id = r->exchange_id;
    g_queue_push_tail (&r->held, item);
    return;
  }
  queue_object_locked (self,
      GST_MINI_OBJECT (text_buffer_new (text, r->turn, last)), r->exchange_id);
}

/* Drops text not pushed yet: after barge-in nothing stale may be said.
 * Queued events stay: they mark points of the stream. */
static void
drop_queued_text_locked (GstLlmTransform *self)
{
  GList *l = self->out.head;

  while (l) {
    GList *next = l->next;
    OutItem *item = l->data;
    if (GST_IS_BUFFER (item->obj)) {
      g_queue_delete_link (&self->out, l);
      out_item_free (item);
    }
    l = next;
  }
}

gboolean
reply_active_locked (GstLlmTransform *self)
{
  GList *l;

  if (self->reply)
    return TRUE;
  for (l = self->out.head; l; l = l->next) {
    if (GST_IS_BUFFER (((OutItem *)l->data)->obj))
      return TRUE;
  }
  return FALSE;
}

/* Queues text the agent says unprompted (greeting, say) as one piece of
 * @turn, and keeps it in the history. Unprompted text answers no turn, so
 * `say` numbers it after the last one: reusing the number of a turn the
 * caller interrupted would get it dropped as stale by the TTS. */
void
speak_locked (GstLlmTransform *self, const gchar *text, guint turn,
    const gchar *origin, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "say", turn);
  LlmExchange *e;
  guint keep;

  /* An application that only ever says things must not grow the history
   * without bound. */
  GST_OBJECT_LOCK (self);
  keep = self->opts.history_size;
  GST_OBJECT_UNLOCK (self);
  llm_history_trim (&self->history, keep);
  e = llm_history_add (&self->history, turn, NULL);
  e->answered = TRUE;
  queue_object_locked (
      self, GST_MINI_OBJECT (text_buffer_new (text, turn, TRUE)), e->id);
  gst_structure_set (
      s, "text", G_TYPE_STRING, text, "origin", G_TYPE_STRING, origin, NULL);
  defer_structure (self, d, s);
}

void
maybe_queue_eos_locked (GstLlmTransform *self)
{
  GstEvent *eos;

  if (!self->eos_pending || self->reply)
    return;
  eos = gst_event_new_eos ();
  if (self->eos_seqnum)
    gst_event_set_seqnum (eos, self->eos_seqnum);
  queue_object_locked (self, GST_MINI_OBJECT (eos), 0);
  self->eos_pending = FALSE;
}

/* ---- Replies ---- */

static void
reply_free_locked (Reply *r, Deferred *d)
{
  guint i;

  for (i = 0; i < N_TIMERS; i++)
    defer_unschedule (d, &r->timers[i]);
  g_free (r->url);
  g_free (r->auth);
  g_free (r->model);
  g_bytes_unref (r->body);
  g_free (r->fallback_text);
  g_ptr_array_unref (r->after);
  g_string_free (r->queued, TRUE);
  if (r->error_body)
    g_byte_array_unref (r->error_body);
  llm_sse_parser_clear (&r->sse);
  g_object_unref (r->json);
  llm_chunker_clear (&r->chunker);
  g_free (r->stream_error);
  g_free (r->finish_reason);
  g_free (r->spec_words);
  g_queue_clear_full (&r->held, (GDestroyNotify)out_item_free);
  g_free (r->held_end);
  tools_stop_filler_locked (r);
  llm_tool_calls_clear (&r->calls);
  llm_tool_set_unref (r->tools);
  g_free (r->call_id);
  g_free (r->tools_secret);
  g_free (r->filler_text);
  llm_options_clear (&r->opts);
  g_free (r);
}

static void
done_message_locked (GstLlmTransform *self, Reply *r, const gchar *outcome,
    const gchar *reason, const gchar *text, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "done", r->turn);
  gint64 completion = r->usage_reported ? r->completion_tokens : r->deltas;

  gst_structure_set (s, "outcome", G_TYPE_STRING, outcome, "reason",
      G_TYPE_STRING, reason ? reason : "", "attempts", G_TYPE_UINT, r->attempt,
      "text", G_TYPE_STRING, text, "prompt-tokens", G_TYPE_INT64,
      r->prompt_tokens, "completion-tokens", G_TYPE_INT64, completion,
      "total-tokens", G_TYPE_INT64,
      r->usage_reported ? r->total_tokens : completion, "usage-reported",
      G_TYPE_BOOLEAN, r->usage_reported, "speculative", G_TYPE_BOOLEAN,
      r->speculative, "tool-rounds", G_TYPE_UINT, r->round, "duration",
      G_TYPE_UINT64, (guint64)(g_get_monotonic_time () - r->start_us) * 1000,
      NULL);
  defer_structure (self, d, s);
}

/* The reply is over: says so on the bus, lets what waited for it (say,
 * EOS) go out, and forgets it. */
void
end_reply_locked (GstLlmTransform *self, const gchar *outcome,
    const gchar *reason, Deferred *d)
{
  Reply *r = self->reply;
  LlmExchange *e = llm_history_find (&self->history, r->exchange_id);
  gboolean cancelled = g_str_equal (outcome, "cancelled");
  guint i;

  GST_DEBUG_OBJECT (self, "turn %u: %s (%s)", r->turn, outcome, reason);
  if (e && !cancelled)
    e->answered = r->queued->len > 0;
  done_message_locked (self, r, outcome, reason,
      cancelled ? (e ? e->agent->str : "") : r->queued->str, d);
  self->reply = NULL;
  if (g_str_equal (outcome, "completed"))
    tools_reply_completed_locked (self, r, d);
  for (i = 0; !cancelled && i < r->after->len; i++)
    speak_locked (
        self, g_ptr_array_index (r->after, i), self->last_turn + 1, "say", d);
  reply_free_locked (r, d);
  maybe_queue_eos_locked (self);
}

/* Stops the reply being generated (its request is aborted: the server sees
 * the connection close) and drops text not pushed yet. */
void
cancel_reply_locked (GstLlmTransform *self, const gchar *why, Deferred *d)
{
  drop_queued_text_locked (self);
  if (self->reply == NULL)
    return;
  if (self->reply->speculative) {
    drop_speculation_locked (self, why, d);
    return;
  }
  defer_cancel (self, d, self->reply->request_id);
  end_reply_locked (self, "cancelled", why, d);
}

/* Forgets what the previous attempt received. */
static void
reset_attempt_locked (Reply *r)
{
  llm_sse_parser_reset (&r->sse);
  llm_chunker_clear (&r->chunker);
  llm_chunker_init (&r->chunker, r->min_chars);
  r->http_status = 0;
  g_clear_pointer (&r->error_body, g_byte_array_unref);
  r->retry_after_ms = -1;
  r->got_token = FALSE;
  r->got_done = FALSE;
  r->got_finish = FALSE;
  g_clear_pointer (&r->stream_error, g_free);
  g_clear_pointer (&r->finish_reason, g_free);
  llm_tool_calls_clear (&r->calls);
  llm_tool_calls_init (&r->calls);
}

static void
start_attempt_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  Attempt *a = g_new0 (Attempt, 1);
  GstStructure *s = turn_message_new (self, "request-start", r->turn);
  gchar *safe_url = gst_voice_redact (r->url);

  r->attempt++;
  r->attempt_id = ++self->next_id;
  r->request_id = 0;
  r->request_us = g_get_monotonic_time ();
  reset_attempt_locked (r);
  if (r->token_timeout_ms)
    r->timers[TIMER_TOKEN] =
        arm_timer_locked (self, r, TIMER_TOKEN, r->token_timeout_ms);

  a->attempt_id = r->attempt_id;
  a->url = g_strdup (r->url);
  a->auth = g_strdup (r->auth);
  a->body = g_bytes_ref (r->body);
  defer_send (self, d, a);

  gst_structure_set (s, "attempt", G_TYPE_UINT, r->attempt, "model",
      G_TYPE_STRING, r->model, "url", G_TYPE_STRING, safe_url, "messages",
      G_TYPE_UINT, r->n_messages, "combined", G_TYPE_BOOLEAN, r->combined,
      "round", G_TYPE_UINT, r->round, NULL);
  defer_structure (self, d, s);
  GST_DEBUG_OBJECT (
      self, "turn %u: attempt %u to %s", r->turn, r->attempt, safe_url);
  g_free (safe_url);
}

/* Returns: (transfer full): where requests go for the base URL @base. */
static gchar *
endpoint_url (const gchar *base)
{
  gchar *b = g_strdup (base ? base : "");
  gchar *url;
  gsize n = strlen (b);

  while (n > 0 && b[n - 1] == '/')
    b[--n] = '\0';
  if (g_str_has_suffix (b, "/chat/completions"))
    return b;
  url = g_strconcat (b, "/chat/completions", NULL);
  g_free (b);
  return url;
}

/* Returns: (transfer full): the request body answering @user after the
 * history, or NULL (error posted) when it cannot be built. */
static GBytes *
build_body_locked (GstLlmTransform *self, const LlmOptions *s,
    const gchar *user, LlmToolSet *tools, gboolean last_round,
    guint *n_messages, Deferred *d)
{
  GArray *msgs = llm_history_messages (&self->history, s->system_prompt, user);
  LlmChatRequest req = { 0 };
  GError *err = NULL;
  gchar *body;

  req.model = s->model;
  req.messages = (const LlmChatMessage *)msgs->data;
  req.n_messages = msgs->len;
  req.temperature = s->temperature;
  req.max_tokens = s->max_tokens;
  req.extra_body = s->extra_body;
  if (tools && llm_tool_set_size (tools) > 0 && s->max_tool_rounds > 0) {
    req.tools = llm_tool_set_request_json (tools);
    /* After the last round the model must answer in words. */
    req.tool_choice = last_round ? "none" : NULL;
  }
  body = llm_chat_build_request (&req, &err);
  if (body == NULL) {
    gchar *text = g_strdup_printf ("extra-body is not a JSON object (%s): "
                                   "sending the request without it",
        err->message);
    defer_warning (self, d, text, s->extra_body);
    g_free (text);
    g_clear_error (&err);
    req.extra_body = NULL;
    body = llm_chat_build_request (&req, NULL);
  }
  *n_messages = msgs->len;
  g_array_unref (msgs);
  return g_bytes_new_take (body, strlen (body));
}

static Reply *
reply_new_locked (GstLlmTransform *self, const LlmOptions *s, guint turn,
    const gchar *user, gboolean combined, Deferred *d)
{
  Reply *r;
  LlmExchange *e;
  gchar *url = endpoint_url (s->url);
  gchar *key;

  if (!llm_url_is_http (url)) {
    gchar *debug = g_strdup_printf ("url=\"%s\"", s->url ? s->url : "");
    defer_error (self, d, GST_RESOURCE_ERROR_SETTINGS,
        "The url property is not an http:// or https:// URL: set it to the "
        "API's base, e.g. https://api.openai.com/v1",
        debug);
    g_free (debug);
    g_free (url);
    return NULL;
  }
  llm_history_trim (&self->history, s->history_size);

  r = g_new0 (Reply, 1);
  r->id = ++self->next_id;
  r->turn = turn;
  r->combined = combined;
  r->url = url;
  key = llm_options_resolve_api_key (s);
  if (key)
    r->auth = g_strconcat ("Bearer ", key, NULL);
  g_free (key);
  r->model = g_strdup (s->model ? s->model : "");
  r->tools = self->tools ? llm_tool_set_ref (self->tools) : NULL;
  r->body =
      build_body_locked (self, s, user, r->tools, FALSE, &r->n_messages, d);
  llm_options_copy (s, &r->opts);
  r->call_id = g_strdup (s->call_id);
  r->tools_secret = llm_options_resolve_tools_secret (s);
  r->max_tool_rounds = s->max_tool_rounds;
  r->filler_text = g_strdup (s->tool_filler_text ? s->tool_filler_text : "");
  r->filler_ms = s->tool_filler_ms;
  llm_tool_calls_init (&r->calls);
  r->fallback_text = g_strdup (s->fallback_text ? s->fallback_text : "");
  r->min_chars = MAX (s->clause_min_chars, 1);
  r->max_wait_ms = s->clause_max_wait_ms;
  r->token_timeout_ms = s->first_token_timeout_ms;
  r->after = g_ptr_array_new_with_free_func (g_free);
  r->start_us = g_get_monotonic_time ();
  r->queued = g_string_new (NULL);
  r->retry_after_ms = -1;
  r->json = json_parser_new_immutable ();
  llm_sse_parser_init (&r->sse);
  llm_chunker_init (&r->chunker, r->min_chars);

  e = llm_history_add (&self->history, turn, user);
  r->exchange_id = e->id;
  return r;
}

/* Creates and starts the reply to @user (the reply slot is free). */
Reply *
begin_reply_locked (GstLlmTransform *self, guint turn, const gchar *user,
    gboolean combined, Deferred *d)
{
  LlmOptions s;
  Reply *r;

  tools_load_locked (self, FALSE, d);
  GST_OBJECT_LOCK (self);
  llm_options_copy (&self->opts, &s);
  GST_OBJECT_UNLOCK (self);
  r = self->reply = reply_new_locked (self, &s, turn, user, combined, d);
  if (r)
    start_attempt_locked (self, r, d);
  llm_options_clear (&s);
  return r;
}

/* Starts answering @text for @turn. A reply still being generated is
 * cancelled; if the caller heard none of the previous answer (the caller
 * kept talking), the previous words and @text are answered together. */
void
start_reply_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d)
{
  LlmExchange *last;
  gchar *user;
  gboolean combined = FALSE;

  if (self->client == NULL || self->flushing)
    return;
  if (self->reply)
    cancel_reply_locked (self, "combined", d);
  last = llm_history_last (&self->history);
  if (last && llm_exchange_unanswered (last)) {
    user = g_strconcat (last->user, " ", text, NULL);
    llm_history_drop_last (&self->history);
    combined = TRUE;
  } else {
    user = g_strdup (text);
  }
  GST_DEBUG_OBJECT (self, "turn %u: answering \"%s\"%s", turn, user,
      combined ? " (combined)" : "");
  begin_reply_locked (self, turn, user, combined, d);
  g_free (user);
}

/* ---- The streamed answer ---- */

typedef struct
{
  GstLlmTransform *self;
  Reply *reply;
  Deferred *d;
} SseCtx;

static void
note_token_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  gint64 now = g_get_monotonic_time ();
  GstStructure *s;

  if (r->got_token)
    return;
  r->got_token = TRUE;
  defer_unschedule (d, &r->timers[TIMER_TOKEN]);
  s = turn_message_new (self, "first-token", r->turn);
  gst_structure_set (s, "attempt", G_TYPE_UINT, r->attempt, "round",
      G_TYPE_UINT, r->round, "ttft", G_TYPE_UINT64,
      (guint64)(now - r->request_us) * 1000, "since-turn-end", G_TYPE_UINT64,
      (guint64)(now - r->start_us) * 1000, NULL);
  defer_structure (self, d, s);
}

static void
take_usage (Reply *r, const LlmChatChunk *chunk)
{
  r->usage_reported = TRUE;
  r->prompt_tokens = chunk->prompt_tokens;
  r->completion_tokens = chunk->completion_tokens;
  r->total_tokens = chunk->total_tokens;
}

/* One SSE event of the answer. Returns FALSE to stop reading (the server
 * reported an error). */
static gboolean
on_sse_event (
    const gchar *event, const gchar *data, gsize len, gpointer user_data)
{
  SseCtx *c = user_data;
  Reply *r = c->reply;
  LlmChatChunk chunk;
  GError *err = NULL;

  if (g_str_equal (event, "error")) {
    r->stream_error = llm_chat_error_message (data, len);
    return FALSE;
  }
  if (llm_chat_is_done_marker (data, len)) {
    r->got_done = TRUE;
    return TRUE;
  }
  if (!llm_chat_parse_chunk (r->json, data, len, &chunk, &err)) {
    /* One bad chunk is skipped, not fatal: the rest is still speakable. */
    GST_WARNING_OBJECT (c->self, "turn %u: skipping a malformed chunk: %s",
        r->turn, err->message);
    g_error_free (err);
    return TRUE;
  }
  if (chunk.error) {
    r->stream_error = g_steal_pointer (&chunk.error);
    llm_chat_chunk_clear (&chunk);
    return FALSE;
  }
  if (chunk.content || chunk.reasoning || chunk.tool_deltas) {
    note_token_locked (c->self, r, c->d);
    r->deltas++;
  }
  for (guint i = 0; chunk.tool_deltas && i < chunk.tool_deltas->len; i++)
    llm_tool_calls_feed (&r->calls, g_ptr_array_index (chunk.tool_deltas, i));
  if (chunk.content)
    llm_chunker_push (&r->chunker, chunk.content);
  if (chunk.finish_reason) {
    r->got_finish = TRUE;
    g_free (r->finish_reason);
    r->finish_reason = g_steal_pointer (&chunk.finish_reason);
  }
  if (chunk.has_usage)
    take_usage (r, &chunk);
  llm_chat_chunk_clear (&chunk);
  return TRUE;
}

/* Restarts the clause timer after a cut, starts it when text waits, stops
 * it when nothing does. */
static void
update_chunk_timer_locked (
    GstLlmTransform *self, Reply *r, gboolean restart, Deferred *d)
{
  gboolean pending = llm_chunker_has_pending (&r->chunker);

  if (r->timers[TIMER_CHUNK] && (restart || !pending))
    defer_unschedule (d, &r->timers[TIMER_CHUNK]);
  if (pending && r->timers[TIMER_CHUNK] == NULL && r->max_wait_ms > 0)
    r->timers[TIMER_CHUNK] =
        arm_timer_locked (self, r, TIMER_CHUNK, r->max_wait_ms);
}

static void
cut_clauses_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  gboolean cut = FALSE;
  gchar *piece;

  while ((piece = llm_chunker_pop_clause (&r->chunker))) {
    queue_piece_locked (self, r, piece, FALSE);
    g_free (piece);
    cut = TRUE;
  }
  update_chunk_timer_locked (self, r, cut, d);
}

static void
feed_stream_locked (GstLlmTransform *self, Reply *r, GBytes *data, Deferred *d)
{
  SseCtx c = { self, r, d };
  GError *err = NULL;
  gsize len;
  const gchar *bytes = g_bytes_get_data (data, &len);

  if (r->stream_error)
    return;
  if (!llm_sse_parser_feed (&r->sse, bytes, len, on_sse_event, &c, &err)) {
    if (err) {
      r->stream_error = g_strdup (err->message);
      g_error_free (err);
    }
    /* Stop reading; done() follows and reports the failure. */
    defer_cancel (self, d, r->request_id);
  }
  cut_clauses_locked (self, r, d);
}

static void
complete_reply_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  gchar *rest;

  if (r->calls.calls->len > 0 && r->speculative) {
    /* A tool may have side effects: only a committed turn runs one. */
    drop_speculation_locked (self, "tool call", d);
    return;
  }
  if (r->calls.calls->len > 0) {
    /* The text before the calls goes out now, whole. */
    cut_clauses_locked (self, r, d);
    rest = llm_chunker_finish (&r->chunker);
    queue_piece_locked (self, r, rest, FALSE);
    g_free (rest);
    defer_unschedule (d, &r->timers[TIMER_CHUNK]);
    run_tool_round_locked (self, r, d);
    return;
  }
  cut_clauses_locked (self, r, d);
  rest = llm_chunker_finish (&r->chunker);
  queue_piece_locked (self, r, rest, TRUE);
  g_free (rest);
  if (r->speculative) {
    /* Kept, whole, until the turn is committed or the caller goes on. */
    r->held_end = g_strdup (r->finish_reason ? r->finish_reason : "stop");
    return;
  }
  end_reply_locked (
      self, "completed", r->finish_reason ? r->finish_reason : "stop", d);
}

void
queue_text_locked (GstLlmTransform *self, Reply *r, const gchar *text)
{
  queue_piece_locked (self, r, text, FALSE);
}

/* Ends @r after its tool round when no follow-up is asked for (wait,
 * end_call after its goodbye, the round limit): the last piece goes out;
 * a turn that said nothing says the fallback, except after `wait`. */
void
finish_reply_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  if (r->queued->len == 0 && !r->waiting && *r->fallback_text)
    queue_piece_locked (self, r, r->fallback_text, TRUE);
  else if (r->pieces > 0)
    queue_piece_locked (self, r, "", TRUE);
  end_reply_locked (self, "completed", "tool_calls", d);
}

/* Asks the model to go on after a tool round: the history now holds the
 * calls and their results. @last_round: tools may no longer be called. */
void
restart_reply_locked (
    GstLlmTransform *self, Reply *r, gboolean last_round, Deferred *d)
{
  g_bytes_unref (r->body);
  r->body = build_body_locked (
      self, &r->opts, NULL, r->tools, last_round, &r->n_messages, d);
  r->attempt = 0;
  start_attempt_locked (self, r, d);
}

/* The attempt failed with the server's @message. One retry when it may
 * help and the caller heard nothing of the reply yet; else the fallback
 * text, so the caller is never left in silence. */
static void
fail_locked (GstLlmTransform *self, Reply *r, const gchar *message,
    gboolean retryable, Deferred *d)
{
  gint64 wait_ms = r->retry_after_ms >= 0 ? r->retry_after_ms : RETRY_DELAY_MS;
  gboolean retry = retryable && r->attempt == 1 && r->pieces == 0 &&
      wait_ms <= MAX_RETRY_WAIT_MS;
  gchar *text, *debug, *safe_url;

  if (r->speculative) {
    /* Nobody waits for it: the committed turn asks again. */
    drop_speculation_locked (self, "failed", d);
    return;
  }
  safe_url = gst_voice_redact (r->url);
  defer_cancel (self, d, r->request_id);
  r->request_id = 0;
  r->attempt_id = 0;
  defer_unschedule (d, &r->timers[TIMER_TOKEN]);
  defer_unschedule (d, &r->timers[TIMER_CHUNK]);
  text = g_strdup_printf ("LLM request for turn %u failed: %s (%s)", r->turn,
      message,
      retry ? "retrying"
            : (*r->fallback_text ? "saying the fallback text" : "giving up"));
  debug = g_strdup_printf ("POST %s, attempt %u, retry-after %" G_GINT64_FORMAT
                           " ms",
      safe_url, r->attempt, r->retry_after_ms);
  defer_warning (self, d, text, debug);
  g_free (text);
  g_free (debug);
  g_free (safe_url);

  if (retry) {
    r->timers[TIMER_RETRY] =
        arm_timer_locked (self, r, TIMER_RETRY, (guint)MAX (wait_ms, 1));
    return;
  }
  if (*r->fallback_text)
    queue_piece_locked (self, r, r->fallback_text, TRUE);
  else if (r->pieces > 0)
    queue_piece_locked (self, r, "", TRUE);
  end_reply_locked (self, "failed", message, d);
}

/* 401 / 403: retrying cannot help and every later turn would fail too. */
static void
fail_auth_locked (
    GstLlmTransform *self, Reply *r, const gchar *message, Deferred *d)
{
  if (r->speculative) {
    /* The committed turn's request meets the same answer and reports it. */
    drop_speculation_locked (self, "failed", d);
    return;
  }
  gchar *safe_url = gst_voice_redact (r->url);
  gchar *debug = g_strdup_printf (
      "POST %s: HTTP %u: %s", safe_url, r->http_status, message);
  gchar *text = g_strdup_printf (r->http_status == 401
          ? "The LLM server rejected the API key (%s): set the api-key "
            "property or the LLM_API_KEY (or OPENAI_API_KEY) environment "
            "variable"
          : "The LLM server refused access (%s): check that the key in "
            "api-key, LLM_API_KEY or OPENAI_API_KEY may use this model",
      message);

  defer_http_error (self, d, r->http_status, text, debug);
  g_free (text);
  g_free (debug);
  g_free (safe_url);
  r->attempt_id = 0;
  end_reply_locked (self, "error", message, d);
}

/* The HTTP request of the current attempt is over. */
static void
finish_attempt_locked (
    GstLlmTransform *self, Reply *r, const GError *error, Deferred *d)
{
  guint status = r->http_status;
  gchar *message = NULL;

  r->request_id = 0;
  if (r->error_body)
    message = llm_chat_error_message (
        (const gchar *)r->error_body->data, r->error_body->len);

  if (status == 401 || status == 403) {
    fail_auth_locked (self, r, message, d);
  } else if (message) {
    gchar *m = g_strdup_printf ("HTTP %u: %s", status, message);
    fail_locked (self, r, m, gst_voice_http_status_is_retryable (status), d);
    g_free (m);
  } else {
    SseCtx c = { self, r, d };
    if (!r->stream_error)
      llm_sse_parser_finish (&r->sse, on_sse_event, &c, NULL);
    if (r->stream_error)
      fail_locked (self, r, r->stream_error, TRUE, d);
    else if (r->got_done || r->got_finish)
      complete_reply_locked (self, r, d);
    else if (error)
      fail_locked (self, r, error->message, TRUE, d);
    else
      fail_locked (self, r, "the stream ended before [DONE]", TRUE, d);
  }
  g_free (message);
}

/* ---- HTTP callbacks (I/O thread) ---- */

static Reply *
current_attempt_locked (GstLlmTransform *self, guint attempt_id)
{
  Reply *r = self->reply;

  return r && attempt_id != 0 && r->attempt_id == attempt_id ? r : NULL;
}

static gboolean
on_http_response (GstVoiceClient *client, guint request_id, guint status,
    SoupMessageHeaders *headers, gpointer user_data)
{
  RequestCtx *ctx = user_data;
  GstLlmTransform *self = ctx->self;
  Reply *r;

  g_mutex_lock (&self->lock);
  r = current_attempt_locked (self, ctx->attempt_id);
  if (r) {
    r->http_status = status;
    if (!SOUP_STATUS_IS_SUCCESSFUL (status)) {
      r->error_body = g_byte_array_new ();
      r->retry_after_ms = gst_voice_http_retry_after_ms (headers);
    }
  }
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "request %u: HTTP %u%s", request_id, status,
      r ? "" : " (stale, cancelling)");
  return r != NULL;
}

static void
on_http_chunk (
    GstVoiceClient *client, guint request_id, GBytes *data, gpointer user_data)
{
  RequestCtx *ctx = user_data;
  GstLlmTransform *self = ctx->self;
  Deferred d = { 0 };
  Reply *r;

  g_mutex_lock (&self->lock);
  r = current_attempt_locked (self, ctx->attempt_id);
  if (r && r->error_body) {
    if (r->error_body->len < MAX_ERROR_BODY)
      g_byte_array_append (r->error_body, g_bytes_get_data (data, NULL),
          MIN (g_bytes_get_size (data), MAX_ERROR_BODY - r->error_body->len));
  } else if (r) {
    feed_stream_locked (self, r, data, &d);
  }
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
}

static void
on_http_done (GstVoiceClient *client, guint request_id, const GError *error,
    gpointer user_data)
{
  RequestCtx *ctx = user_data;
  GstLlmTransform *self = ctx->self;
  Deferred d = { 0 };
  Reply *r;

  g_mutex_lock (&self->lock);
  r = current_attempt_locked (self, ctx->attempt_id);
  if (r)
    finish_attempt_locked (self, r, error, &d);
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "request %u done%s%s", request_id, error ? ": " : "",
      error ? error->message : "");
  deferred_run (self, &d);
}

static void
request_ctx_free (gpointer data)
{
  RequestCtx *ctx = data;
  GstLlmTransform *self = ctx->self;

  g_mutex_lock (&self->lock);
  self->requests_alive--;
  g_cond_broadcast (&self->requests_cond);
  g_mutex_unlock (&self->lock);
  gst_object_unref (self);
  g_free (ctx);
}

static const GstVoiceHttpCallbacks http_callbacks = {
  on_http_response,
  on_http_chunk,
  on_http_done,
};

/* Sends attempt @a unless it went stale while the lock was released. */
void
send_attempt (GstLlmTransform *self, GstVoiceClient *client, Attempt *a)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, a->url);
  SoupMessageHeaders *h;
  RequestCtx *ctx;
  gboolean current;
  guint id;

  /* msg is never NULL for a URL llm_url_is_http() accepted (the same
   * parse); were it, nothing must wait for callbacks that never come. */
  g_mutex_lock (&self->lock);
  current = current_attempt_locked (self, a->attempt_id) != NULL;
  if (current && msg)
    self->requests_alive++;
  g_mutex_unlock (&self->lock);
  if (!current || msg == NULL) {
    g_clear_object (&msg);
    return;
  }

  h = soup_message_get_request_headers (msg);
  soup_message_headers_replace (h, "Accept", "text/event-stream");
  if (a->auth)
    soup_message_headers_replace (h, "Authorization", a->auth);
  soup_message_set_request_body_from_bytes (msg, "application/json", a->body);
  ctx = g_new0 (RequestCtx, 1);
  ctx->self = gst_object_ref (self);
  ctx->attempt_id = a->attempt_id;
  id = gst_voice_client_http_request (
      client, msg, &http_callbacks, ctx, request_ctx_free);

  g_mutex_lock (&self->lock);
  current = current_attempt_locked (self, a->attempt_id) != NULL;
  if (current)
    self->reply->request_id = id;
  g_mutex_unlock (&self->lock);
  /* Cancelled (barge-in, timeout) before its id was known. */
  if (!current)
    gst_voice_client_cancel_request (client, id);
}

/* ---- Timers (clock thread, or the test cranking a GstTestClock) ---- */

static void
timed_cut_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  gchar *piece = llm_chunker_pop_timed (&r->chunker);

  if (piece) {
    GST_DEBUG_OBJECT (
        self, "turn %u: no punctuation within %u ms", r->turn, r->max_wait_ms);
    queue_piece_locked (self, r, piece, FALSE);
    g_free (piece);
  }
}

static void
token_timeout_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  gchar *m;

  if (r->got_token)
    return;
  m = g_strdup_printf ("no first token within %u ms", r->token_timeout_ms);
  fail_locked (self, r, m, TRUE, d);
  g_free (m);
}

static gboolean
on_timer (GstClock *clock, GstClockTime time, GstClockID id, gpointer user_data)
{
  TimerCtx *t = user_data;
  GstLlmTransform *self = t->self;
  Deferred d = { 0 };
  Reply *r;

  g_mutex_lock (&self->lock);
  r = self->reply;
  if (r && r->id == t->reply_id && r->timers[t->kind] == id) {
    defer_unschedule (&d, &r->timers[t->kind]);
    switch (t->kind) {
      case TIMER_TOKEN:
        token_timeout_locked (self, r, &d);
        break;
      case TIMER_CHUNK:
        timed_cut_locked (self, r, &d);
        break;
      case TIMER_RETRY:
        start_attempt_locked (self, r, &d);
        break;
      default:
        break;
    }
  }
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  return TRUE;
}

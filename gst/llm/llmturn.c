/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* llmtransform's turn taking: speculative replies (started on turn-likely,
 * used on an end-of-turn with the same words) and the confirmed barge-in
 * (speech over the agent pauses it; words that are not a backchannel, or
 * long speech, cancel the reply; otherwise the agent resumes). The rules
 * of what ends a turn and what is a backchannel are gstvoiceturn.c's.
 * Everything here runs under GstLlmTransform.lock (the *_locked names) or
 * takes it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "llmtransform-private.h"

/* ---- The caller's turn events (sink pad) ---- */

/* Returns: (transfer full): the words of the turn that just ended: the
 * event's transcript (deepgramsrc puts the whole turn there), else the
 * final transcripts received. */
gchar *
take_user_text_locked (GstLlmTransform *self, const gchar *transcript)
{
  gchar *text = g_utf8_make_valid (transcript ? transcript : "", -1);

  g_strstrip (text);
  if (*text == '\0') {
    g_free (text);
    text = g_strdup (self->user_text->str);
  }
  g_string_truncate (self->user_text, 0);
  return text;
}

gboolean
handle_end_of_turn (GstLlmTransform *self, GstEvent *event)
{
  const gchar *transcript = NULL;
  GstStructure *s;
  Deferred d = { 0 };
  gchar *text;
  guint turn = 0;

  gst_voice_event_parse_end_of_turn (event, NULL, &turn, &transcript);
  g_mutex_lock (&self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_event_unref (event);
    return FALSE;
  }
  text = take_user_text_locked (self, transcript);
  self->last_turn = MAX (self->last_turn, turn);
  /* A backchannel ("mhm") over the agent is not a turn to answer. */
  if (*text && barge_backchannel_turn_locked (self, text, &d)) {
    *text = '\0';
  } else if (*text) {
    barge_turn_locked (self, &d);
    /* A turn of the caller's, even with no speech-start before it (typed,
     * or a speech-to-text without VAD), means they go on: the goodbye's
     * end_call is withdrawn. */
    tools_barge_in_locked (self, &d);
  }
  s = gst_voice_event_to_message_structure (
      event, "llmtransform", *text ? "acted" : "forwarded");
  defer_structure (self, &d, s);
  /* Forwarded in order, before the reply it starts. */
  queue_object_locked (self, GST_MINI_OBJECT (event), 0);
  if (*text && !adopt_speculation_locked (self, turn, text, &d))
    start_reply_locked (self, turn, text, &d);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (text);
  return TRUE;
}

/* speech-start and interrupt: out-of-band, acted on at once. The event goes
 * out through the src task at the head of its queue, ahead of everything
 * queued but never ahead of a buffer being pushed: no stale text reaches
 * the TTS after it. */
gboolean
handle_barge_in (GstLlmTransform *self, GstEvent *event, gboolean is_vad)
{
  GstLlmInterruption mode;
  gboolean acted = FALSE;
  Deferred d = { 0 };
  OutItem *item;

  GST_OBJECT_LOCK (self);
  mode = self->opts.interruption;
  GST_OBJECT_UNLOCK (self);

  g_mutex_lock (&self->lock);
  if (!is_vad)
    barge_reset_locked (self);
  if (!is_vad || mode == GST_LLM_INTERRUPTION_VAD)
    tools_barge_in_locked (self, &d);
  if ((!is_vad || mode == GST_LLM_INTERRUPTION_VAD) &&
      reply_active_locked (self)) {
    cancel_reply_locked (self, is_vad ? "speech-start" : "interrupt", &d);
    acted = TRUE;
  }
  defer_structure (self, &d,
      gst_voice_event_to_message_structure (
          event, "llmtransform", acted ? "acted" : "forwarded"));
  if (self->flushing) {
    gst_event_unref (event);
  } else {
    item = g_new0 (OutItem, 1);
    item->obj = GST_MINI_OBJECT (event);
    g_queue_push_head (&self->out, item);
    g_cond_signal (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  /* Cancelling the request comes first: the server must stop generating. */
  deferred_run (self, &d);
  return TRUE;
}

gboolean
queue_serialized_event (GstLlmTransform *self, GstEvent *event)
{
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = !self->flushing;
  if (ok)
    queue_object_locked (self, GST_MINI_OBJECT (event), 0);
  g_mutex_unlock (&self->lock);
  if (!ok)
    gst_event_unref (event);
  return ok;
}

/* turn-likely starts a speculative reply (unless the caller is only
 * backchanneling over the agent); turn-resumed drops it. Both are
 * forwarded in order. */
gboolean
handle_turn_hint (GstLlmTransform *self, GstEvent *event)
{
  const gchar *transcript = NULL;
  Deferred d = { 0 };
  guint turn = 0;

  g_mutex_lock (&self->lock);
  if (gst_voice_event_parse_turn_likely (event, NULL, &turn, &transcript)) {
    if (transcript && *transcript &&
        !barge_is_backchannel_locked (self, transcript, &d)) {
      barge_turn_locked (self, &d);
      start_speculation_locked (self, turn, transcript, &d);
    }
  } else {
    drop_speculation_locked (self, "resumed", &d);
  }
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  return queue_serialized_event (self, event);
}


/* ---- Speculative replies ---- */

static void
speculation_message_locked (GstLlmTransform *self, guint turn,
    const gchar *outcome, const gchar *reason, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "speculation", turn);

  gst_structure_set (s, "outcome", G_TYPE_STRING, outcome, "reason",
      G_TYPE_STRING, reason ? reason : "", NULL);
  defer_structure (self, d, s);
}

static guint
count_words (const gchar *normalized)
{
  guint n = *normalized ? 1 : 0;

  for (const gchar *p = normalized; *p; p++)
    n += *p == ' ';
  return n;
}

/* Why no speculative reply may start for @turn now, or NULL. */
static const gchar *
speculation_refused_locked (
    GstLlmTransform *self, guint turn, const gchar *words, const LlmOptions *s)
{
  LlmExchange *last = llm_history_last (&self->history);

  if (!s->speculative || self->client == NULL || self->flushing)
    return "off";
  if (self->reply && !self->reply->speculative)
    return "a reply is in progress";
  /* Answering together with an unheard turn rewrites the history; only a
   * committed turn may do that. */
  if (last && llm_exchange_unanswered (last) &&
      !(self->reply && self->reply->exchange_id == last->id))
    return "an earlier turn is unanswered";
  if (count_words (words) > s->speculative_max_words)
    return "long turn";
  if (self->spec_turn == turn && self->spec_attempts >= s->speculative_max)
    return "attempts used";
  return NULL;
}

/**
 * start_speculation_locked:
 *
 * turn-likely with @text: starts a reply whose text is held
 * (Reply.speculative), unless one for the same words is under way or the
 * bounds refuse (speculative, speculative-max, speculative-max-words).
 * Returns: TRUE if a speculative reply to @text exists afterwards.
 */
gboolean
start_speculation_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d)
{
  gchar *words = gst_voice_turn_normalize (text);
  const gchar *refused;
  gboolean ok = FALSE;
  LlmOptions s;

  GST_OBJECT_LOCK (self);
  llm_options_copy (&self->opts, &s);
  GST_OBJECT_UNLOCK (self);
  if (self->reply && self->reply->speculative &&
      g_str_equal (self->reply->spec_words, words)) {
    ok = TRUE;
  } else if ((refused = speculation_refused_locked (self, turn, words, &s))) {
    GST_DEBUG_OBJECT (self, "turn %u: no speculation (%s)", turn, refused);
  } else {
    if (self->reply)
      drop_speculation_locked (self, "superseded", d);
    if (self->spec_turn != turn) {
      self->spec_turn = turn;
      self->spec_attempts = 0;
    }
    self->spec_attempts++;
    GST_DEBUG_OBJECT (self, "turn %u: speculating on \"%s\"", turn, text);
    if (begin_reply_locked (self, turn, text, FALSE, d)) {
      self->reply->speculative = TRUE;
      self->reply->spec_words = g_strdup (words);
      speculation_message_locked (self, turn, "started", NULL, d);
      ok = TRUE;
    }
  }
  llm_options_clear (&s);
  g_free (words);
  return ok;
}

/**
 * drop_speculation_locked:
 *
 * The speculative reply (if that is what is in progress) is cancelled: its
 * request aborted, its held text dropped, its exchange forgotten.
 */
void
drop_speculation_locked (GstLlmTransform *self, const gchar *why, Deferred *d)
{
  Reply *r = self->reply;
  guint exchange_id, turn;

  if (r == NULL || !r->speculative)
    return;
  GST_DEBUG_OBJECT (self, "turn %u: speculation dropped (%s)", r->turn, why);
  exchange_id = r->exchange_id;
  turn = r->turn;
  defer_cancel (self, d, r->request_id);
  end_reply_locked (self, "cancelled", why, d);
  llm_history_remove (&self->history, exchange_id);
  speculation_message_locked (self, turn, "dropped", why, d);
}

/**
 * adopt_speculation_locked:
 *
 * The turn is committed with @text. A speculative reply to the same words
 * (gst_voice_turn_normalize()) becomes the reply: its held text is queued
 * and it goes on; one to other words is dropped.
 * Returns: TRUE if the speculative reply was adopted.
 */
gboolean
adopt_speculation_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d)
{
  Reply *r = self->reply;
  gchar *words;
  OutItem *item;
  gboolean same;

  if (r == NULL || !r->speculative)
    return FALSE;
  words = gst_voice_turn_normalize (text);
  same = g_str_equal (words, r->spec_words);
  g_free (words);
  if (!same) {
    drop_speculation_locked (self, "different words", d);
    return FALSE;
  }
  r->speculative = FALSE;
  r->turn = turn;
  while ((item = g_queue_pop_head (&r->held))) {
    g_queue_push_tail (&self->out, item);
    g_cond_signal (&self->cond);
  }
  speculation_message_locked (self, turn, "used", NULL, d);
  if (r->held_end) {
    gchar *reason = g_steal_pointer (&r->held_end);
    end_reply_locked (self, "completed", reason, d);
    g_free (reason);
  }
  return TRUE;
}

/* ---- Confirmed barge-in ---- */

/* After the caller's speech-stop, how long a pause waits for the words of
 * what was said (the answer to the Finalize the VAD's stop sends) before
 * the agent resumes. */
#define SETTLE_MS 300

/* The backchannel list, loaded on first use from turn-words (the built-in
 * lists when unset or unreadable, with a warning). */
static GstVoiceTurnWords *
turn_words_locked (GstLlmTransform *self, Deferred *d)
{
  gchar *path, *language;
  GError *error = NULL;

  if (self->turn_words)
    return self->turn_words;
  GST_OBJECT_LOCK (self);
  path = g_strdup (self->opts.turn_words);
  language = g_strdup (self->opts.turn_language);
  GST_OBJECT_UNLOCK (self);
  if (path && *path)
    self->turn_words =
        gst_voice_turn_words_new_from_file (path, language, &error);
  if (error) {
    gchar *debug = g_strdup_printf ("turn-words=%s: %s", path, error->message);
    defer_warning (self, d,
        "Cannot read the turn word lists; using the built-in English ones: "
        "fix the file or unset turn-words",
        debug);
    g_free (debug);
    g_error_free (error);
  }
  if (self->turn_words == NULL)
    self->turn_words = gst_voice_turn_words_get_default (language);
  g_free (path);
  g_free (language);
  return self->turn_words;
}

static gboolean
is_backchannel_locked (GstLlmTransform *self, const gchar *text, Deferred *d)
{
  return gst_voice_turn_is_backchannel (turn_words_locked (self, d), text);
}

static GstLlmInterruption
interruption_mode (GstLlmTransform *self)
{
  GstLlmInterruption mode;

  GST_OBJECT_LOCK (self);
  mode = self->opts.interruption;
  GST_OBJECT_UNLOCK (self);
  return mode;
}

/* The agent is (about to be) heard: a reply is generated or queued, or
 * text went downstream and its `spoken` has not come back. */
gboolean
agent_active_locked (GstLlmTransform *self)
{
  if (self->reply && !self->reply->speculative)
    return TRUE;
  if (self->speaking_turn != 0)
    return TRUE;
  for (GList *l = self->out.head; l; l = l->next)
    if (GST_IS_BUFFER (((OutItem *)l->data)->obj))
      return TRUE;
  return FALSE;
}

/* Puts @event (transfer full) at the head of the output: barge-in control
 * overtakes queued text. */
void
queue_head_locked (GstLlmTransform *self, GstEvent *event)
{
  OutItem *item;

  if (self->flushing) {
    gst_event_unref (event);
    return;
  }
  item = g_new0 (OutItem, 1);
  item->obj = GST_MINI_OBJECT (event);
  g_queue_push_head (&self->out, item);
  g_cond_signal (&self->cond);
}

static void
barge_message_locked (GstLlmTransform *self, const gchar *outcome,
    const gchar *reason, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "barge-in", self->last_turn);
  gint64 now = g_get_monotonic_time ();

  gst_structure_set (s, "outcome", G_TYPE_STRING, outcome, "reason",
      G_TYPE_STRING, reason, "paused", G_TYPE_UINT64,
      (guint64)(self->pause_start_us ? (now - self->pause_start_us) * 1000 : 0),
      NULL);
  defer_structure (self, d, s);
}

static void
end_pause_locked (GstLlmTransform *self)
{
  self->paused = FALSE;
  self->pause_start_us = 0;
  self->pause_speech_end_us = 0;
  g_string_truncate (self->pause_words, 0);
  g_clear_pointer (&self->pause_interim, g_free);
}

/* A barge-in: the reply is cancelled, the TTS flushed, the pause over. */
static void
confirm_locked (GstLlmTransform *self, const gchar *why, Deferred *d)
{
  GST_DEBUG_OBJECT (self, "barge-in confirmed (%s)", why);
  barge_message_locked (self, "confirmed", why, d);
  end_pause_locked (self);
  tools_barge_in_locked (self, d);
  cancel_reply_locked (self, "barge-in", d);
  queue_head_locked (self,
      gst_voice_event_new_interrupt (
          running_time_now (self), self->last_turn, why));
}

/* A false interruption: the agent goes on where it paused. */
static void
resume_locked (GstLlmTransform *self, const gchar *why, Deferred *d)
{
  GST_DEBUG_OBJECT (self, "false interruption (%s): resuming", why);
  barge_message_locked (self, "resumed", why, d);
  end_pause_locked (self);
  queue_head_locked (self,
      gst_voice_event_new (
          GST_VOICE_EVENT_RESUME, running_time_now (self), self->last_turn));
}

/* What the caller said since the pause. */
static gchar *
pause_words_locked (GstLlmTransform *self)
{
  if (self->pause_interim == NULL)
    return g_strdup (self->pause_words->str);
  return g_strjoin (self->pause_words->len ? " " : "", self->pause_words->str,
      self->pause_interim, NULL);
}

/* Words that are not a backchannel confirm the barge-in. */
static void
judge_words_locked (GstLlmTransform *self, Deferred *d)
{
  gchar *words = pause_words_locked (self);

  if (*words && !is_backchannel_locked (self, words, d))
    confirm_locked (self, "words", d);
  g_free (words);
}

/**
 * barge_speech_start:
 * @event: (transfer full): a `speech-start`
 *
 * With interruption=confirmed: pauses the agent if it is heard, and
 * forwards @event marked `barge-in=deferred`, so the TTS leaves the
 * decision to us. The pause's reason is "speech-start", or "caller-vad"
 * when @event carries `source` = "caller" (the caller's own VAD).
 * Returns: FALSE if the mode is another one (@event is then untouched and
 * the caller handles it).
 */
gboolean
barge_speech_start (GstLlmTransform *self, GstEvent *event)
{
  const gchar *reason;
  Deferred d = { 0 };

  if (interruption_mode (self) != GST_LLM_INTERRUPTION_CONFIRMED)
    return FALSE;
  /* The caller's own VAD (voiceagent's data channel) marks its events. */
  reason = g_strcmp0 (gst_structure_get_string (
                          gst_event_get_structure (event), "source"),
               "caller") == 0
      ? "caller-vad"
      : "speech-start";
  event = gst_voice_event_mark_barge_in_deferred (event);
  g_mutex_lock (&self->lock);
  defer_structure (self, &d,
      gst_voice_event_to_message_structure (event, "llmtransform",
          agent_active_locked (self) ? "acted" : "forwarded"));
  /* Both overtake queued text; the pause goes out first. */
  queue_head_locked (self, event);
  if (self->paused) {
    self->pause_speech_end_us = 0; /* talking again */
  } else if (agent_active_locked (self)) {
    self->paused = TRUE;
    self->pause_start_us = g_get_monotonic_time ();
    self->pause_speech_end_us = 0;
    barge_message_locked (self, "paused", reason, &d);
    queue_head_locked (self,
        gst_voice_event_new_pause (
            running_time_now (self), self->last_turn, reason));
  }
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  return TRUE;
}

/* speech-stop: a pause now waits SETTLE_MS for words, then resumes. */
void
barge_speech_stop_locked (GstLlmTransform *self)
{
  if (self->paused && self->pause_speech_end_us == 0) {
    self->pause_speech_end_us = g_get_monotonic_time ();
    g_cond_signal (&self->cond);
  }
}

/* A transcript buffer of the caller (@is_final or interim) while paused. */
void
barge_transcript_locked (
    GstLlmTransform *self, const gchar *text, gboolean is_final, Deferred *d)
{
  if (!self->paused)
    return;
  if (is_final) {
    if (self->pause_words->len && *text)
      g_string_append_c (self->pause_words, ' ');
    g_string_append (self->pause_words, text);
    g_clear_pointer (&self->pause_interim, g_free);
  } else {
    g_free (self->pause_interim);
    self->pause_interim = g_strdup (text);
  }
  judge_words_locked (self, d);
}

static void
pause_limits (GstLlmTransform *self, gint64 *min_us, gint64 *timeout_us)
{
  GST_OBJECT_LOCK (self);
  *min_us = (gint64)self->opts.min_interruption_ms * 1000;
  *timeout_us = (gint64)self->opts.false_interruption_timeout_ms * 1000;
  GST_OBJECT_UNLOCK (self);
}

/* When barge_tick_locked() has something to decide (monotonic µs), or -1:
 * the caller still talking reaches min-interruption-ms, a stopped caller
 * has settled, or the pause times out. */
gint64
barge_due_locked (GstLlmTransform *self)
{
  gint64 min_us, timeout_us, next;

  if (!self->paused)
    return -1;
  pause_limits (self, &min_us, &timeout_us);
  next = self->pause_speech_end_us == 0
      ? self->pause_start_us + min_us
      : self->pause_speech_end_us + SETTLE_MS * 1000;
  return MIN (next, self->pause_start_us + timeout_us);
}

/* The src task's timer: long speech confirms; a settled or timed-out pause
 * resumes. */
void
barge_tick_locked (GstLlmTransform *self, Deferred *d)
{
  gint64 now = g_get_monotonic_time (), min_us, timeout_us;

  if (!self->paused)
    return;
  pause_limits (self, &min_us, &timeout_us);
  if (self->pause_speech_end_us == 0 && now >= self->pause_start_us + min_us)
    confirm_locked (self, "long speech", d);
  else if (now >= self->pause_start_us + timeout_us)
    resume_locked (self, "timeout", d);
  else if (self->pause_speech_end_us != 0 &&
      now >= self->pause_speech_end_us + SETTLE_MS * 1000)
    resume_locked (self, "no words", d);
}

/* TRUE if @text is a backchannel said over the agent (confirmed mode,
 * the agent heard or paused): never a turn to answer. */
gboolean
barge_is_backchannel_locked (
    GstLlmTransform *self, const gchar *text, Deferred *d)
{
  return interruption_mode (self) == GST_LLM_INTERRUPTION_CONFIRMED &&
      (self->paused || agent_active_locked (self)) &&
      is_backchannel_locked (self, text, d);
}

/* The end of a turn that was a backchannel: reported, and a pause is over
 * (the agent resumes). Returns TRUE if @text is one. */
gboolean
barge_backchannel_turn_locked (
    GstLlmTransform *self, const gchar *text, Deferred *d)
{
  if (!barge_is_backchannel_locked (self, text, d))
    return FALSE;
  GST_DEBUG_OBJECT (self, "backchannel \"%s\": not a turn", text);
  if (self->paused)
    resume_locked (self, "backchannel", d);
  else
    barge_message_locked (self, "backchannel", text, d);
  return TRUE;
}

/* A real turn while paused: the barge-in it is. */
void
barge_turn_locked (GstLlmTransform *self, Deferred *d)
{
  if (self->paused)
    confirm_locked (self, "turn", d);
}

/* `interrupt`, a flush or a stop end any pause. */
void
barge_reset_locked (GstLlmTransform *self)
{
  end_pause_locked (self);
}

/* The TTS reported what was heard of @turn: it is no longer playing. */
void
barge_spoken_locked (GstLlmTransform *self, guint turn)
{
  if (self->speaking_turn != 0 && turn >= self->speaking_turn)
    self->speaking_turn = 0;
}

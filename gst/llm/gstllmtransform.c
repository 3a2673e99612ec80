/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-llmtransform
 * @title: llmtransform
 *
 * Turns the caller's words into the agent's answer with any
 * OpenAI-compatible chat completions server (OpenAI, vLLM, SGLang,
 * llama.cpp's server, Ollama). Input is the caller's transcripts
 * (`text/x-raw,format=utf8`, as deepgramsrc sends them); output is what the
 * agent will say, in clause-sized pieces so speech starts on the first
 * clause rather than after the whole answer.
 *
 * Final transcripts of a turn are collected; on `end-of-turn` (or EOS)
 * llmtransform sends `POST {url}/chat/completions` with `stream: true`, the
 * system prompt and the conversation so far. The streamed reply is cut at
 * sentence or clause punctuation once a piece holds `clause-min-chars`
 * characters, or at a word boundary when text waited `clause-max-wait-ms`.
 * Every output buffer carries a #GstVoiceTranscriptMeta (role agent,
 * is_final, confidence 1, the turn it answers); the last buffer of a reply
 * has speech_final set (it may be empty when the reply ended on a cut).
 * Reasoning (`reasoning`, `reasoning_content`, a leading `<think>` block)
 * is never spoken.
 *
 * Barge-in: `interrupt` aborts the reply in flight at once (the HTTP
 * request is closed, so the server stops generating), drops text not
 * pushed yet and is forwarded. With `interruption=confirmed` (the
 * default) a `speech-start` while the agent is heard (a reply generated,
 * queued, or pushed and not yet reported `spoken`) first sends
 * `agent-pause`: the TTS holds its audio. Words of the caller that are not
 * a backchannel (interim or final transcripts; "mhm", "uh huh", "okay"
 * are backchannels, turn-words can change the list), or speech lasting
 * `min-interruption-ms`, confirm it: the reply is cancelled and
 * `interrupt` (reason `words`, `long speech` or `turn`) sent. Otherwise,
 * 300 ms after the caller's `speech-stop` with no such words, or after
 * `false-interruption-timeout-ms`, `agent-resume` plays the agent on from
 * where it paused. A backchannel's `end-of-turn` while the agent is heard
 * is forwarded but not answered. `speech-start` goes on marked
 * `barge-in=deferred`, so the TTS leaves the decision to llmtransform.
 * With `interruption=vad` every `speech-start` during a reply cancels it,
 * as `interrupt` does. The history then keeps only what the caller heard:
 * the text pushed downstream, refined by the `spoken` event the TTS source
 * sends upstream. Another `end-of-turn` while a reply is generated cancels
 * it; when the caller heard none of it, the two turns are answered
 * together.
 *
 * Speculative replies (`speculative`, on by default): `turn-likely`
 * (deepgramsrc's likely pause, with the words so far) starts the request
 * and its text is held; the `end-of-turn` that follows with the same words
 * (compared without case and punctuation) releases it, so the first
 * clause is ready when the turn is committed. `turn-resumed`, or an
 * `end-of-turn` with other words, cancels it (the server stops
 * generating) and it never enters the history. At most `speculative-max`
 * requests a turn, none for a turn over `speculative-max-words` words.
 *
 * Failures: HTTP 401/403 is an element error naming the key variables;
 * 408, 429, 5xx, network errors, a mid-stream error and a first token later
 * than `first-token-timeout` get one retry (after Retry-After when the
 * server sends one, if it is at most 5 s), then `fallback-text` is spoken.
 * Every failure is a bus warning quoting the server's message.
 *
 * Events: `end-of-turn` starts a reply and is forwarded before it;
 * `turn-likely`, `turn-resumed`, `speech-start`, `interrupt` (out-of-band)
 * and other custom events are forwarded; it sends `agent-pause`,
 * `agent-resume` and `interrupt` (barge-in) itself; the upstream `spoken`
 * event is consumed. Stream-start, caps
 * and segment are llmtransform's own (text/x-raw,format=utf8, TIME; a GAP
 * right after, so sparse text never blocks a prerolling sink). EOS goes out
 * after the reply in flight.
 *
 * Element messages (structure name `llmtransform`, all with `event`,
 * `turn`, `wallclock` (monotonic µs) and `running-time`):
 * - `user-text`: `text`: a typed turn (push-user-text) begins
 * - `request-start`: `attempt` (1 or 2), `model`, `url`, `messages`
 *   (count sent), `combined` (the turn absorbed an unanswered one).
 * - `first-token`: `attempt`, `ttft` (ns from this attempt's request),
 *   `since-turn-end` (ns from the end-of-turn or typed text, retries
 *   included).
 * - `done`: `speculative` (the reply was dropped while speculative),
 *   `outcome` (completed, failed, cancelled, error), `reason`
 *   (finish reason, failure or cancel cause), `attempts`, `text` (what was
 *   said), `prompt-tokens`, `completion-tokens`, `total-tokens`,
 *   `usage-reported` (FALSE: the server sent no usage; completion-tokens is
 *   then the number of deltas), `duration` (ns).
 * - `say`: `text`, `origin` (greeting or say).
 * - tools (`tools-file`): `tool-call` (`round`, `tool-call-id`, `name`,
 *   `arguments`, `kind`), `tool-result` (`round`, `tool-call-id`, `name`,
 *   `ok`, `error`, `result`, `duration-ms`), and from the built-ins
 *   `end-call` (`heard`: TRUE once the goodbye was heard, FALSE when the
 *   caller barged in on it: then do not hang up), `transfer` and
 *   `wait` (`tool-call-id`, `arguments`). Webhooks get a POST with
 *   `name`, `tool_call_id`, `call_id`, `turn`, `arguments`, signed with
 *   `X-Voiceagent-Signature` when a secret is set.
 * - `speculation`: `outcome` (started, used, dropped), `reason` (why it
 *   was dropped: resumed, different words, failed, superseded, ...).
 * - `barge-in`: `outcome` (paused, resumed, confirmed, backchannel),
 *   `reason` (for paused: `speech-start`, or `caller-vad` when the
 *   `speech-start` carries `source` = "caller", the caller's own VAD),
 *   `paused` (ns the agent was paused so far).
 * - conversation events (`end-of-turn`, `speech-start`, `interrupt`,
 *   `spoken`) as gst_voice_event_to_message_structure() builds them, with
 *   `action` "acted" or "forwarded".
 *
 * Action signals: `push-user-text` (typed input: a complete user turn) and
 * `say` (speak a text, after the reply in flight if there is one).
 *
 * ## Example launch line
 * |[
 * voiceagent-emulator --port 8790 &
 * echo "Hello, who are you?" | gst-launch-1.0 -q fdsrc ! \
 *     text/x-raw,format=utf8 ! \
 *     llmtransform url=http://127.0.0.1:8790/v1 api-key=local ! fdsink
 * ]| asks the local emulator and prints the agent's answer.
 * |[
 * gst-launch-1.0 autoaudiosrc ! audioconvert ! audioresample ! silerovad ! \
 *     deepgram ! llmtransform greeting="Hi, how can I help?" ! \
 *     elevenlabs ! audioconvert ! autoaudiosink
 * ]| a voice agent (keys from DEEPGRAM_API_KEY, OPENAI_API_KEY and
 * ELEVENLABS_API_KEY).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

/* This file is the GStreamer side: pads, the src task, events, action
 * signals, state changes and the property glue (the options themselves are
 * in llmoptions.c). The reply, its HTTP attempts and its timers are in
 * llmreply.c; the struct both share and the lock order are in
 * llmtransform-private.h. */
#include "llmtransform-private.h"

/* Shared with llmreply.c, so GST_DEBUG=llmtransform:6 shows both. */
GST_DEBUG_CATEGORY (gst_llm_transform_debug);

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

/* The options (llmoptions.h) take the ids from PROP_OPTIONS_FIRST on, in
 * LlmOption order; `history` is the element's own. */
enum {
  PROP_0,
  PROP_OPTIONS_FIRST,
  PROP_HISTORY = PROP_OPTIONS_FIRST + LLM_OPT_COUNT,
};

enum {
  SIGNAL_PUSH_USER_TEXT,
  SIGNAL_SAY,
  N_SIGNALS,
};

/* Stopping waits this long for cancelled requests to wind down. */
#define STOP_WAIT_US (5 * G_USEC_PER_SEC)

#define gst_llm_transform_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstLlmTransform, gst_llm_transform, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE (
    llmtransform, "llmtransform", GST_RANK_NONE, GST_TYPE_LLM_TRANSFORM);

static guint signals[N_SIGNALS];

static void gst_llm_transform_finalize (GObject *object);
static void gst_llm_transform_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_llm_transform_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_llm_transform_change_state (
    GstElement *element, GstStateChange transition);
static GstFlowReturn gst_llm_transform_sink_chain (
    GstPad *pad, GstObject *parent, GstBuffer *buf);
static gboolean gst_llm_transform_sink_event (
    GstPad *pad, GstObject *parent, GstEvent *event);
static gboolean gst_llm_transform_src_event (
    GstPad *pad, GstObject *parent, GstEvent *event);
static gboolean gst_llm_transform_src_activate_mode (
    GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active);
static gboolean gst_llm_transform_push_user_text (
    GstLlmTransform *self, const gchar *text);
static gboolean gst_llm_transform_say (
    GstLlmTransform *self, const gchar *text);
static void src_loop (gpointer data);

GType
gst_llm_interruption_get_type (void)
{
  static gsize type = 0;
  static const GEnumValue values[] = {
    { GST_LLM_INTERRUPTION_VAD,
        "speech-start (VAD) or an interrupt event cancels a reply", "vad" },
    { GST_LLM_INTERRUPTION_EVENT, "Only an interrupt event cancels a reply",
        "event" },
    { GST_LLM_INTERRUPTION_CONFIRMED,
        "speech-start pauses the agent; words that are not a backchannel "
        "(or long speech) cancel the reply, else the agent resumes",
        "confirmed" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLlmInterruption", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- Class ---- */

static void
install_properties (GObjectClass *gobject_class)
{
  llm_options_install (gobject_class, PROP_OPTIONS_FIRST);
  /**
   * GstLlmTransform:history:
   *
   * The conversation so far as OpenAI chat messages: a JSON array of
   * `{"role":"user"|"assistant","content":"..."}`, oldest first, without
   * the system prompt; the assistant's side is what the caller heard.
   * Writing it replaces the conversation, so a call moved to another
   * process continues where it was: written before the element starts
   * (NULL or READY), it survives the start, and the greeting is then not
   * said (the conversation is not new). Other roles are skipped; a value
   * that is not such an array is refused with a warning.
   */
  g_object_class_install_property (gobject_class, PROP_HISTORY,
      g_param_spec_string ("history", "History",
          "The conversation as a JSON array of OpenAI chat messages "
          "({\"role\":\"user\"|\"assistant\",\"content\"}); writing it "
          "replaces the conversation (a resumed call), and a call started "
          "with one says no greeting",
          NULL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
}

static void
install_signals (GObjectClass *gobject_class)
{
  /**
   * GstLlmTransform::push-user-text:
   * @text: what the caller typed
   *
   * A complete user turn from outside the audio path (a data channel):
   * answered like an `end-of-turn` with @text, numbered after the last
   * turn seen.
   *
   * Returns: FALSE if the element is not running or @text is empty.
   */
  signals[SIGNAL_PUSH_USER_TEXT] = g_signal_new_class_handler ("push-user-text",
      G_TYPE_FROM_CLASS (gobject_class), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_llm_transform_push_user_text), NULL, NULL, NULL,
      G_TYPE_BOOLEAN, 1, G_TYPE_STRING);
  /**
   * GstLlmTransform::say:
   * @text: what the agent should say
   *
   * Makes the agent say @text as is: at once, or after the reply being
   * generated (dropped with it on barge-in). Kept in the history. The text
   * is marked with the turn after the last one seen.
   *
   * Returns: FALSE if the element is not running or @text is empty.
   */
  signals[SIGNAL_SAY] = g_signal_new_class_handler ("say",
      G_TYPE_FROM_CLASS (gobject_class), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_llm_transform_say), NULL, NULL, NULL, G_TYPE_BOOLEAN, 1,
      G_TYPE_STRING);
}

static void
gst_llm_transform_class_init (GstLlmTransformClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_llm_transform_debug, "llmtransform", 0,
      "LLM turns over OpenAI-compatible chat completions");

  gobject_class->finalize = gst_llm_transform_finalize;
  gobject_class->set_property = gst_llm_transform_set_property;
  gobject_class->get_property = gst_llm_transform_get_property;
  install_properties (gobject_class);
  install_signals (gobject_class);

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_llm_transform_change_state);
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "LLM transform",
      "Filter/Text/Network",
      "Answers the caller's turns with a streamed OpenAI-compatible chat "
      "completion, cut into speakable clauses, cancellable on barge-in",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "voiceagent-emulator --port 8790 & echo \"Hello, who are you?\" | "
      "gst-launch-1.0 -q fdsrc ! text/x-raw,format=utf8 ! llmtransform "
      "url=http://127.0.0.1:8790/v1 api-key=local ! fdsink");
  gst_type_mark_as_plugin_api (GST_TYPE_LLM_INTERRUPTION, 0);
}

static void
gst_llm_transform_init (GstLlmTransform *self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (
      self->sinkpad, GST_DEBUG_FUNCPTR (gst_llm_transform_sink_chain));
  gst_pad_set_event_function (
      self->sinkpad, GST_DEBUG_FUNCPTR (gst_llm_transform_sink_event));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_set_event_function (
      self->srcpad, GST_DEBUG_FUNCPTR (gst_llm_transform_src_event));
  gst_pad_set_activatemode_function (
      self->srcpad, GST_DEBUG_FUNCPTR (gst_llm_transform_src_activate_mode));
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);

  llm_options_init (&self->opts);

  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_cond_init (&self->requests_cond);
  g_queue_init (&self->out);
  llm_history_init (&self->history);
  self->user_text = g_string_new (NULL);
  self->pause_words = g_string_new (NULL);
  self->flushing = TRUE;
  self->src_result = GST_FLOW_OK;
}

static void
gst_llm_transform_finalize (GObject *object)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (object);

  llm_options_clear (&self->opts);
  g_queue_clear_full (&self->out, (GDestroyNotify)out_item_free);
  llm_history_clear (&self->history);
  g_string_free (self->user_text, TRUE);
  g_string_free (self->pause_words, TRUE);
  g_free (self->pause_interim);
  gst_voice_turn_words_unref (self->turn_words);
  llm_tool_set_unref (self->tools);
  g_free (self->tools_path);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_cond_clear (&self->requests_cond);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

/* Warns about an extra-body that is not a JSON object. It is stored
 * anyway: the request says so again, and NULL→READY fails. */
static void
check_extra_body (GstLlmTransform *self, const GValue *value)
{
  GError *err = NULL;

  if (!llm_chat_check_extra_body (g_value_get_string (value), &err)) {
    GST_WARNING_OBJECT (
        self, "extra-body is not a JSON object: %s", err->message);
    g_error_free (err);
  }
}

/* Takes the conversation lock, so it runs outside OBJECT_LOCK (lock order). */
static void
set_history (GstLlmTransform *self, const gchar *json)
{
  GError *err = NULL;

  g_mutex_lock (&self->lock);
  if (llm_history_from_json (&self->history, json, &err)) {
    GST_OBJECT_LOCK (self);
    self->history_preset = GST_STATE (self) <= GST_STATE_READY;
    GST_OBJECT_UNLOCK (self);
    GST_DEBUG_OBJECT (
        self, "history replaced: %u exchanges", self->history.exchanges.length);
  } else {
    GST_WARNING_OBJECT (self, "history refused: %s", err->message);
    g_error_free (err);
  }
  g_mutex_unlock (&self->lock);
}

static gchar *
get_history (GstLlmTransform *self)
{
  gchar *json;

  g_mutex_lock (&self->lock);
  json = llm_history_to_json (&self->history);
  g_mutex_unlock (&self->lock);
  return json;
}

static void
gst_llm_transform_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (object);

  if (prop_id == PROP_HISTORY) {
    set_history (self, g_value_get_string (value));
    return;
  }
  if (prop_id == PROP_OPTIONS_FIRST + LLM_OPT_EXTRA_BODY)
    check_extra_body (self, value);
  GST_OBJECT_LOCK (self);
  if (prop_id >= PROP_OPTIONS_FIRST &&
      prop_id < PROP_OPTIONS_FIRST + LLM_OPT_COUNT)
    llm_options_set (&self->opts, prop_id - PROP_OPTIONS_FIRST, value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_llm_transform_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (object);

  if (prop_id == PROP_HISTORY) {
    g_value_take_string (value, get_history (self));
    return;
  }
  GST_OBJECT_LOCK (self);
  if (prop_id >= PROP_OPTIONS_FIRST &&
      prop_id < PROP_OPTIONS_FIRST + LLM_OPT_COUNT)
    llm_options_get (&self->opts, prop_id - PROP_OPTIONS_FIRST, value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

/* ---- Input (streaming thread of the sink pad) ---- */

static GstFlowReturn
gst_llm_transform_sink_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);
  GstVoiceTranscriptMeta *meta = gst_buffer_get_voice_transcript_meta (buf);
  gboolean is_final = meta == NULL || meta->is_final;
  Deferred d = { 0 };
  gchar *text = NULL;
  GstFlowReturn ret;
  GstMapInfo map;

  /* The caller's words; no meta means plain user text. Interim words only
   * judge a barge-in: a turn is made of final ones. */
  if ((meta == NULL || meta->role == GST_VOICE_ROLE_USER) &&
      gst_buffer_map (buf, &map, GST_MAP_READ)) {
    text = g_utf8_make_valid ((const gchar *)map.data, map.size);
    g_strstrip (text);
    gst_buffer_unmap (buf, &map);
  }
  g_mutex_lock (&self->lock);
  if (text && *text) {
    if (is_final && self->user_text->len)
      g_string_append_c (self->user_text, ' ');
    if (is_final)
      g_string_append (self->user_text, text);
    barge_transcript_locked (self, text, is_final, &d);
  }
  ret = self->src_result;
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (text);
  gst_buffer_unref (buf);
  return ret;
}

static gboolean
handle_eos (GstLlmTransform *self, GstEvent *event)
{
  Deferred d = { 0 };

  g_mutex_lock (&self->lock);
  /* Text without an end-of-turn (a file, a plain text source): its end
   * ends the turn. */
  if (self->user_text->len > 0) {
    gchar *text = take_user_text_locked (self, NULL);
    start_reply_locked (self, ++self->last_turn, text, &d);
    g_free (text);
  }
  self->eos_pending = TRUE;
  self->eos_seqnum = gst_event_get_seqnum (event);
  maybe_queue_eos_locked (self);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  gst_event_unref (event);
  return TRUE;
}

static void
clear_out_locked (GstLlmTransform *self)
{
  g_queue_clear_full (&self->out, (GDestroyNotify)out_item_free);
  g_queue_init (&self->out);
}

static gboolean
handle_flush_start (GstLlmTransform *self, GstEvent *event)
{
  Deferred d = { 0 };
  gboolean ret;

  /* Downstream first: it unblocks the src task if it waits there. */
  ret = gst_pad_push_event (self->srcpad, event);
  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  cancel_reply_locked (self, "flush", &d);
  barge_reset_locked (self);
  self->speaking_turn = 0;
  clear_out_locked (self);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  gst_pad_pause_task (self->srcpad);
  return ret;
}

static gboolean
handle_flush_stop (GstLlmTransform *self, GstEvent *event)
{
  gboolean ret;

  g_mutex_lock (&self->lock);
  clear_out_locked (self);
  self->flushing = FALSE;
  self->src_result = GST_FLOW_OK;
  self->need_segment = TRUE;
  self->eos_pending = FALSE;
  g_string_truncate (self->user_text, 0);
  g_mutex_unlock (&self->lock);
  ret = gst_pad_push_event (self->srcpad, event);
  if (GST_PAD_MODE (self->srcpad) == GST_PAD_MODE_PUSH)
    gst_pad_start_task (self->srcpad, src_loop, self, NULL);
  return ret;
}


static gboolean
gst_llm_transform_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);

  switch (gst_voice_event_get_voice_type (event)) {
    case GST_VOICE_EVENT_END_OF_TURN:
      return handle_end_of_turn (self, event);
    case GST_VOICE_EVENT_SPEECH_START:
      if (barge_speech_start (self, event))
        return TRUE;
      return handle_barge_in (self, event, TRUE);
    case GST_VOICE_EVENT_SPEECH_STOP:
      g_mutex_lock (&self->lock);
      barge_speech_stop_locked (self);
      g_mutex_unlock (&self->lock);
      return queue_serialized_event (self, event);
    case GST_VOICE_EVENT_TURN_LIKELY:
    case GST_VOICE_EVENT_TURN_RESUMED:
      return handle_turn_hint (self, event);
    case GST_VOICE_EVENT_INTERRUPT:
      return handle_barge_in (self, event, FALSE);
    default:
      break;
  }
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      return handle_flush_start (self, event);
    case GST_EVENT_FLUSH_STOP:
      return handle_flush_stop (self, event);
    case GST_EVENT_EOS:
      return handle_eos (self, event);
    case GST_EVENT_CUSTOM_DOWNSTREAM:
    case GST_EVENT_CUSTOM_BOTH:
      return queue_serialized_event (self, event);
    case GST_EVENT_CUSTOM_DOWNSTREAM_OOB:
    case GST_EVENT_CUSTOM_BOTH_OOB:
      return gst_pad_push_event (self->srcpad, event);
    default:
      /* The output is a stream of its own (stream-start, caps, segment,
       * gaps); the caller's text stream's events end here. */
      gst_event_unref (event);
      return TRUE;
  }
}

/* ---- Upstream: what the caller heard ---- */

static gboolean
handle_spoken (GstLlmTransform *self, GstEvent *event)
{
  const gchar *text = NULL;
  gboolean complete = FALSE;
  Deferred d = { 0 };
  guint turn = 0;
  LlmExchange *e;

  gst_voice_event_parse_spoken (event, NULL, &turn, &text, &complete);
  g_mutex_lock (&self->lock);
  barge_spoken_locked (self, turn);
  tools_spoken_locked (self, turn, complete, &d);
  e = llm_history_find_turn (&self->history, turn);
  if (e) {
    llm_exchange_set_heard (e, text, complete);
    GST_DEBUG_OBJECT (self, "turn %u: caller heard %s", turn,
        complete ? "all of it" : e->heard);
  }
  defer_structure (self, &d,
      gst_voice_event_to_message_structure (
          event, "llmtransform", e ? "acted" : "received"));
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  gst_event_unref (event);
  return TRUE;
}

static gboolean
gst_llm_transform_src_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);

  if (gst_voice_event_get_voice_type (event) == GST_VOICE_EVENT_SPOKEN)
    return handle_spoken (self, event);
  return gst_pad_event_default (pad, parent, event);
}

/* ---- Output (the src pad's task) ---- */

/* Sends stream-start, caps, segment and a gap when due. */
static void
push_stream_header (GstLlmTransform *self)
{
  gboolean start, segment;

  g_mutex_lock (&self->lock);
  start = self->need_stream_start;
  segment = self->need_segment;
  self->need_stream_start = self->need_segment = FALSE;
  g_mutex_unlock (&self->lock);

  if (start) {
    gchar *id =
        gst_pad_create_stream_id (self->srcpad, GST_ELEMENT (self), NULL);
    GstCaps *caps = gst_static_pad_template_get_caps (&src_template);
    gst_pad_push_event (self->srcpad, gst_event_new_stream_start (id));
    gst_pad_push_event (self->srcpad, gst_event_new_caps (caps));
    gst_caps_unref (caps);
    g_free (id);
  }
  if (segment) {
    GstClockTime now = running_time_now (self);
    GstSegment seg;
    gst_segment_init (&seg, GST_FORMAT_TIME);
    gst_pad_push_event (self->srcpad, gst_event_new_segment (&seg));
    /* Text is sparse: a sink prerolls on the gap instead of waiting for the
     * first answer. */
    gst_pad_push_event (self->srcpad,
        gst_event_new_gap (
            GST_CLOCK_TIME_IS_VALID (now) ? now : 0, GST_CLOCK_TIME_NONE));
  }
}

/* A buffer is on its way to the caller: its text joins the history. */
static void
credit_text_locked (GstLlmTransform *self, OutItem *item)
{
  LlmExchange *e = llm_history_find (&self->history, item->exchange_id);
  GstVoiceTranscriptMeta *meta =
      gst_buffer_get_voice_transcript_meta (GST_BUFFER (item->obj));
  GstMapInfo map;

  if (meta && gst_buffer_get_size (GST_BUFFER (item->obj)) > 0)
    self->speaking_turn = meta->turn;
  if (e && gst_buffer_map (GST_BUFFER (item->obj), &map, GST_MAP_READ)) {
    g_string_append_len (e->agent, (const gchar *)map.data, map.size);
    gst_buffer_unmap (GST_BUFFER (item->obj), &map);
  }
}

static GstFlowReturn
push_item (GstLlmTransform *self, OutItem *item)
{
  GstMiniObject *obj = g_steal_pointer (&item->obj);

  if (GST_IS_BUFFER (obj)) {
    GstBuffer *buf = GST_BUFFER (obj);
    GST_BUFFER_PTS (buf) = running_time_now (self);
    return gst_pad_push (self->srcpad, buf);
  }
  if (GST_EVENT_TYPE (obj) == GST_EVENT_EOS) {
    gst_pad_push_event (self->srcpad, GST_EVENT (obj));
    return GST_FLOW_EOS;
  }
  gst_pad_push_event (self->srcpad, GST_EVENT (obj));
  return GST_FLOW_OK;
}

static void
src_loop (gpointer data)
{
  GstLlmTransform *self = data;
  Deferred d = { 0 };
  GstFlowReturn ret;
  OutItem *item;

  push_stream_header (self);
  g_mutex_lock (&self->lock);
  while (!self->flushing && g_queue_is_empty (&self->out)) {
    /* A barge-in pause is decided on this thread when nothing else is. */
    gint64 due = barge_due_locked (self);
    if (due < 0)
      g_cond_wait (&self->cond, &self->lock);
    else if (!g_cond_wait_until (&self->cond, &self->lock, due))
      barge_tick_locked (self, &d);
  }
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    deferred_run (self, &d);
    gst_pad_pause_task (self->srcpad);
    return;
  }
  item = g_queue_pop_head (&self->out);
  if (GST_IS_BUFFER (item->obj))
    credit_text_locked (self, item);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);

  ret = push_item (self, item);
  out_item_free (item);
  if (ret == GST_FLOW_OK)
    return;

  g_mutex_lock (&self->lock);
  self->src_result = ret;
  g_mutex_unlock (&self->lock);
  GST_DEBUG_OBJECT (self, "pausing: %s", gst_flow_get_name (ret));
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR (self, ret);
    gst_pad_push_event (self->srcpad, gst_event_new_eos ());
  }
  gst_pad_pause_task (self->srcpad);
}

static gboolean
gst_llm_transform_src_activate_mode (
    GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);

  if (mode != GST_PAD_MODE_PUSH)
    return FALSE;
  g_mutex_lock (&self->lock);
  self->flushing = !active;
  if (active)
    self->src_result = GST_FLOW_OK;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (active)
    return gst_pad_start_task (pad, src_loop, self, NULL);
  return gst_pad_stop_task (pad);
}

/* ---- Action signals ---- */

static gboolean
gst_llm_transform_push_user_text (GstLlmTransform *self, const gchar *text)
{
  gchar *t = g_utf8_make_valid (text ? text : "", -1);
  Deferred d = { 0 };
  gboolean ok;

  g_strstrip (t);
  g_mutex_lock (&self->lock);
  ok = !self->flushing && self->client && *t;
  if (ok) {
    GstStructure *s = turn_message_new (self, "user-text", ++self->last_turn);

    /* The typed turn's words, for the application's transcript (spoken
     * words reach it from the speech-to-text element). */
    gst_structure_set (s, "text", G_TYPE_STRING, t, NULL);
    defer_structure (self, &d, s);
    /* The caller goes on: a goodbye's end_call is withdrawn. */
    tools_barge_in_locked (self, &d);
    start_reply_locked (self, self->last_turn, t, &d);
  }
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (t);
  return ok;
}

static gboolean
gst_llm_transform_say (GstLlmTransform *self, const gchar *text)
{
  gchar *t = g_utf8_make_valid (text ? text : "", -1);
  Deferred d = { 0 };
  gboolean ok;

  g_mutex_lock (&self->lock);
  ok = !self->flushing && *t;
  if (ok && self->reply && !self->reply->speculative)
    g_ptr_array_add (self->reply->after, g_strdup (t));
  else if (ok)
    speak_locked (self, t, self->last_turn + 1, "say", &d);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (t);
  return ok;
}

/* ---- State changes ---- */

static gboolean
start_client (GstLlmTransform *self)
{
  GError *err = NULL;
  gboolean ok;

  GST_OBJECT_LOCK (self);
  ok = llm_chat_check_extra_body (self->opts.extra_body, &err);
  GST_OBJECT_UNLOCK (self);
  if (!ok) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("The extra-body property must be a JSON object, e.g. "
         "{\"top_p\": 0.9}"),
        ("%s", err->message));
    g_error_free (err);
    return FALSE;
  }
  {
    Deferred d = { 0 };
    g_mutex_lock (&self->lock);
    ok = tools_load_locked (self, TRUE, &d);
    if (ok)
      self->client = gst_voice_client_new (GST_OBJECT_NAME (self));
    g_mutex_unlock (&self->lock);
    deferred_run (self, &d);
  }
  return ok;
}

static void
stop_client (GstLlmTransform *self)
{
  GstVoiceClient *client;

  g_mutex_lock (&self->lock);
  client = g_steal_pointer (&self->client);
  g_mutex_unlock (&self->lock);
  if (client) {
    gst_voice_client_shutdown (client);
    gst_object_unref (client);
  }
}

/* A new call: nothing from a previous one carries over, except a history
 * written for it (a resumed call). */
static void
reset_conversation (GstLlmTransform *self)
{
  g_mutex_lock (&self->lock);
  if (!self->history_preset)
    llm_history_clear (&self->history);
  self->history_preset = FALSE;
  g_string_truncate (self->user_text, 0);
  clear_out_locked (self);
  self->greeted = FALSE;
  self->eos_pending = FALSE;
  self->last_turn = 0;
  self->speaking_turn = 0;
  self->end_call_turn = 0;
  self->spec_turn = self->spec_attempts = 0;
  barge_reset_locked (self);
  /* turn-words may have changed since the last call. */
  g_clear_pointer (&self->turn_words, gst_voice_turn_words_unref);
  self->need_stream_start = TRUE;
  self->need_segment = TRUE;
  self->src_result = GST_FLOW_OK;
  g_mutex_unlock (&self->lock);
}

static void
greet (GstLlmTransform *self)
{
  Deferred d = { 0 };
  gchar *greeting;

  GST_OBJECT_LOCK (self);
  greeting = g_strdup (self->opts.greeting);
  GST_OBJECT_UNLOCK (self);
  g_mutex_lock (&self->lock);
  /* A resumed conversation (history written before the start) goes on. */
  if (!self->greeted && !self->flushing && greeting && *greeting &&
      self->history.exchanges.length == 0)
    speak_locked (self, greeting, 0, "greeting", &d);
  self->greeted = TRUE;
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (greeting);
}

/* Cancels the reply and waits (bounded) until no request callback can run:
 * they hold a reference and could otherwise outlive the state change. */
static void
stop_conversation (GstLlmTransform *self)
{
  gint64 deadline = g_get_monotonic_time () + STOP_WAIT_US;
  Deferred d = { 0 };
  gboolean on_io;

  g_mutex_lock (&self->lock);
  cancel_reply_locked (self, "stopped", &d);
  clear_out_locked (self);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);

  /* A state change from a request callback cannot wait for itself. */
  on_io = g_main_context_is_owner (gst_voice_client_get_io_context ());
  g_mutex_lock (&self->lock);
  while (!on_io && self->requests_alive > 0) {
    if (!g_cond_wait_until (&self->requests_cond, &self->lock, deadline)) {
      GST_WARNING_OBJECT (
          self, "%u requests still winding down", self->requests_alive);
      break;
    }
  }
  g_mutex_unlock (&self->lock);
}

static GstStateChangeReturn
gst_llm_transform_change_state (GstElement *element, GstStateChange transition)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (element);
  GstStateChangeReturn ret;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!start_client (self))
        return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      reset_conversation (self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE)
    return ret;

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      greet (self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      stop_conversation (self);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      stop_client (self);
      break;
    default:
      break;
  }
  return ret;
}

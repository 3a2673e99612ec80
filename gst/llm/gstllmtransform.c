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
 * Barge-in: `interrupt`, and `speech-start` while a reply is in flight with
 * `interruption=vad`, abort the HTTP request at once (the connection is
 * closed, so the server stops generating), drop text not pushed yet and are
 * forwarded. The history then keeps only what the caller heard: the text
 * pushed downstream, refined by the `spoken` event the TTS source sends
 * upstream. Another `end-of-turn` while a reply is generated cancels it;
 * when the caller heard none of it, the two turns are answered together.
 *
 * Failures: HTTP 401/403 is an element error naming the key variables;
 * 408, 429, 5xx, network errors, a mid-stream error and a first token later
 * than `first-token-timeout` get one retry (after Retry-After when the
 * server sends one, if it is at most 5 s), then `fallback-text` is spoken.
 * Every failure is a bus warning quoting the server's message.
 *
 * Events: `end-of-turn` starts a reply and is forwarded before it;
 * `speech-start`, `interrupt` (out-of-band) and other custom events are
 * forwarded; the upstream `spoken` event is consumed. Stream-start, caps
 * and segment are llmtransform's own (text/x-raw,format=utf8, TIME; a GAP
 * right after, so sparse text never blocks a prerolling sink). EOS goes out
 * after the reply in flight.
 *
 * Element messages (structure name `llmtransform`, all with `event`,
 * `turn`, `wallclock` (monotonic µs) and `running-time`):
 * - `request-start`: `attempt` (1 or 2), `model`, `url`, `messages`
 *   (count sent), `combined` (the turn absorbed an unanswered one).
 * - `first-token`: `attempt`, `ttft` (ns from this attempt's request),
 *   `since-turn-end` (ns from the end-of-turn or typed text, retries
 *   included).
 * - `done`: `outcome` (completed, failed, cancelled, error), `reason`
 *   (finish reason, failure or cancel cause), `attempts`, `text` (what was
 *   said), `prompt-tokens`, `completion-tokens`, `total-tokens`,
 *   `usage-reported` (FALSE: the server sent no usage; completion-tokens is
 *   then the number of deltas), `duration` (ns).
 * - `say`: `text`, `origin` (greeting or say).
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

#include <string.h>

#include "voice.h"
#include "gstllmtransform.h"
#include "llmchat.h"
#include "llmchunker.h"
#include "llmhistory.h"
#include "llmoptions.h"
#include "llmsse.h"

GST_DEBUG_CATEGORY_STATIC (gst_llm_transform_debug);
#define GST_CAT_DEFAULT gst_llm_transform_debug

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

/* Retry after this long when the server gives no Retry-After. */
#define RETRY_DELAY_MS 250
/* A longer Retry-After is not waited for: the caller would sit in silence;
 * the fallback text is spoken instead. */
#define MAX_RETRY_WAIT_MS 5000
/* Error bodies are kept up to this size, to quote the server. */
#define MAX_ERROR_BODY (64 * 1024)
/* Stopping waits this long for cancelled requests to wind down. */
#define STOP_WAIT_US (5 * G_USEC_PER_SEC)

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
typedef struct
{
  GstVoiceClient *client; /* ref, for the two calls below */
  guint cancel_request;
  Attempt *send;
  GPtrArray *clock_ids; /* GstClockID to unschedule and unref */
  GPtrArray *messages; /* GstMessage to post, in order */
} Deferred;

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
};

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
      "Filter/Text",
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
  self->flushing = TRUE;
  self->src_result = GST_FLOW_OK;
}

static void
out_item_free (OutItem *item)
{
  if (item->obj)
    gst_mini_object_unref (item->obj);
  g_free (item);
}

static void
gst_llm_transform_finalize (GObject *object)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (object);

  llm_options_clear (&self->opts);
  g_queue_clear_full (&self->out, (GDestroyNotify)out_item_free);
  llm_history_clear (&self->history);
  g_string_free (self->user_text, TRUE);
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

/* ---- Clock, bus messages and deferred work ---- */

/* Returns: the running time now, or GST_CLOCK_TIME_NONE without a clock. */
static GstClockTime
running_time_now (GstLlmTransform *self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  GstClockTime now, base;

  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  base = gst_element_get_base_time (GST_ELEMENT (self));
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  return now >= base ? now - base : 0;
}

/* Returns: (transfer full): the structure of a per-turn message. */
static GstStructure *
turn_message_new (GstLlmTransform *self, const gchar *event, guint turn)
{
  return gst_structure_new ("llmtransform", "event", G_TYPE_STRING, event,
      "turn", G_TYPE_UINT, turn, "wallclock", G_TYPE_INT64,
      g_get_monotonic_time (), "running-time", G_TYPE_UINT64,
      (guint64)running_time_now (self), NULL);
}

static void
defer_structure (GstLlmTransform *self, Deferred *d, GstStructure *s)
{
  if (s == NULL)
    return;
  if (d->messages == NULL)
    d->messages = g_ptr_array_new ();
  g_ptr_array_add (d->messages, gst_message_new_element (GST_OBJECT (self), s));
}

/* A bus warning: @text says what failed in the server's words. */
static void
defer_warning (
    GstLlmTransform *self, Deferred *d, const gchar *text, const gchar *debug)
{
  GError *err =
      g_error_new_literal (GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, text);

  GST_WARNING_OBJECT (self, "%s (%s)", text, debug);
  if (d->messages == NULL)
    d->messages = g_ptr_array_new ();
  g_ptr_array_add (
      d->messages, gst_message_new_warning (GST_OBJECT (self), err, debug));
  g_error_free (err);
}

static void
defer_error (GstLlmTransform *self, Deferred *d, GstResourceError code,
    const gchar *text, const gchar *debug)
{
  GError *err = g_error_new_literal (GST_RESOURCE_ERROR, code, text);

  GST_ERROR_OBJECT (self, "%s (%s)", text, debug);
  if (d->messages == NULL)
    d->messages = g_ptr_array_new ();
  g_ptr_array_add (
      d->messages, gst_message_new_error (GST_OBJECT (self), err, debug));
  g_error_free (err);
}

/* Takes *@id for unscheduling once the lock is released. */
static void
defer_unschedule (Deferred *d, GstClockID *id)
{
  if (*id == NULL)
    return;
  if (d->clock_ids == NULL)
    d->clock_ids = g_ptr_array_new ();
  g_ptr_array_add (d->clock_ids, *id);
  *id = NULL;
}

static void
defer_cancel (GstLlmTransform *self, Deferred *d, guint request_id)
{
  if (request_id == 0 || self->client == NULL)
    return;
  if (d->client == NULL)
    d->client = gst_object_ref (self->client);
  d->cancel_request = request_id;
}

static void
attempt_free (Attempt *a)
{
  g_free (a->url);
  g_free (a->auth);
  g_bytes_unref (a->body);
  g_free (a);
}

static void send_attempt (
    GstLlmTransform *self, GstVoiceClient *client, Attempt *a);

/* Does what a handler decided under the lock, in this order: stop the
 * request (the first thing barge-in must do), stop timers, send, post. */
static void
deferred_run (GstLlmTransform *self, Deferred *d)
{
  guint i;

  if (d->cancel_request)
    gst_voice_client_cancel_request (d->client, d->cancel_request);
  for (i = 0; d->clock_ids && i < d->clock_ids->len; i++) {
    gst_clock_id_unschedule (g_ptr_array_index (d->clock_ids, i));
    gst_clock_id_unref (g_ptr_array_index (d->clock_ids, i));
  }
  if (d->send) {
    if (d->client)
      send_attempt (self, d->client, d->send);
    attempt_free (d->send);
  }
  for (i = 0; d->messages && i < d->messages->len; i++)
    gst_element_post_message (
        GST_ELEMENT (self), g_ptr_array_index (d->messages, i));
  if (d->clock_ids)
    g_ptr_array_unref (d->clock_ids);
  if (d->messages)
    g_ptr_array_unref (d->messages);
  gst_clear_object (&d->client);
}

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

static void
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

static gboolean
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
static void
speak_locked (GstLlmTransform *self, const gchar *text, guint turn,
    const gchar *origin, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "say", turn);
  LlmExchange *e;
  guint keep;

  /* An application that only ever says things must not grow the history
   * without bound. */
  GST_OBJECT_LOCK (self);
  keep = self->opts.history_turns;
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

static void
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
      G_TYPE_BOOLEAN, r->usage_reported, "duration", G_TYPE_UINT64,
      (guint64)(g_get_monotonic_time () - r->start_us) * 1000, NULL);
  defer_structure (self, d, s);
}

/* The reply is over: says so on the bus, lets what waited for it (say,
 * EOS) go out, and forgets it. */
static void
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
  for (i = 0; !cancelled && i < r->after->len; i++)
    speak_locked (
        self, g_ptr_array_index (r->after, i), self->last_turn + 1, "say", d);
  reply_free_locked (r, d);
  maybe_queue_eos_locked (self);
}

/* Stops the reply being generated (its request is aborted: the server sees
 * the connection close) and drops text not pushed yet. */
static void
cancel_reply_locked (GstLlmTransform *self, const gchar *why, Deferred *d)
{
  drop_queued_text_locked (self);
  if (self->reply == NULL)
    return;
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
  d->send = a;
  if (d->client == NULL)
    d->client = gst_object_ref (self->client);

  gst_structure_set (s, "attempt", G_TYPE_UINT, r->attempt, "model",
      G_TYPE_STRING, r->model, "url", G_TYPE_STRING, safe_url, "messages",
      G_TYPE_UINT, r->n_messages, "combined", G_TYPE_BOOLEAN, r->combined,
      NULL);
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

static gboolean
url_is_http (const gchar *url)
{
  GUri *uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  gboolean ok;

  if (uri == NULL)
    return FALSE;
  ok = (g_strcmp0 (g_uri_get_scheme (uri), "http") == 0 ||
           g_strcmp0 (g_uri_get_scheme (uri), "https") == 0) &&
      g_uri_get_host (uri) && *g_uri_get_host (uri);
  g_uri_unref (uri);
  return ok;
}

/* Returns: (transfer full): the request body answering @user after the
 * history, or NULL (error posted) when it cannot be built. */
static GBytes *
build_body_locked (GstLlmTransform *self, const LlmOptions *s,
    const gchar *user, guint *n_messages, Deferred *d)
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

  if (!url_is_http (url)) {
    gchar *debug = g_strdup_printf ("url=\"%s\"", s->url ? s->url : "");
    defer_error (self, d, GST_RESOURCE_ERROR_SETTINGS,
        "The url property is not an http:// or https:// URL: set it to the "
        "API's base, e.g. https://api.openai.com/v1",
        debug);
    g_free (debug);
    g_free (url);
    return NULL;
  }
  llm_history_trim (&self->history, s->history_turns);

  r = g_new0 (Reply, 1);
  r->id = ++self->next_id;
  r->turn = turn;
  r->combined = combined;
  r->url = url;
  if (s->api_key && *s->api_key)
    r->auth = g_strconcat ("Bearer ", s->api_key, NULL);
  r->model = g_strdup (s->model ? s->model : "");
  r->body = build_body_locked (self, s, user, &r->n_messages, d);
  r->fallback_text = g_strdup (s->fallback_text ? s->fallback_text : "");
  r->min_chars = MAX (s->clause_min_chars, 1);
  r->max_wait_ms = s->clause_max_wait_ms;
  r->token_timeout_ms = s->first_token_timeout;
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

/* Starts answering @text for @turn. A reply still being generated is
 * cancelled; if the caller heard none of the previous answer (the caller
 * kept talking), the previous words and @text are answered together. */
static void
start_reply_locked (
    GstLlmTransform *self, guint turn, const gchar *text, Deferred *d)
{
  LlmExchange *last;
  gchar *user;
  gboolean combined = FALSE;
  LlmOptions s;

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

  GST_OBJECT_LOCK (self);
  llm_options_copy (&self->opts, &s);
  GST_OBJECT_UNLOCK (self);
  self->reply = reply_new_locked (self, &s, turn, user, combined, d);
  if (self->reply)
    start_attempt_locked (self, self->reply, d);
  llm_options_clear (&s);
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
  gst_structure_set (s, "attempt", G_TYPE_UINT, r->attempt, "ttft",
      G_TYPE_UINT64, (guint64)(now - r->request_us) * 1000, "since-turn-end",
      G_TYPE_UINT64, (guint64)(now - r->start_us) * 1000, NULL);
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
  if (chunk.content || chunk.reasoning) {
    note_token_locked (c->self, r, c->d);
    r->deltas++;
  }
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

  cut_clauses_locked (self, r, d);
  rest = llm_chunker_finish (&r->chunker);
  queue_piece_locked (self, r, rest, TRUE);
  g_free (rest);
  end_reply_locked (
      self, "completed", r->finish_reason ? r->finish_reason : "stop", d);
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
  gchar *text, *debug, *safe_url = gst_voice_redact (r->url);

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

  defer_error (self, d, GST_RESOURCE_ERROR_NOT_AUTHORIZED, text, debug);
  g_free (text);
  g_free (debug);
  g_free (safe_url);
  r->attempt_id = 0;
  end_reply_locked (self, "error", message, d);
}

static gboolean
status_is_retryable (guint status)
{
  return status == 408 || status == 429 || status >= 500;
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
    fail_locked (self, r, m, status_is_retryable (status), d);
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
      r->retry_after_ms = llm_chat_retry_after_ms (headers);
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
static void
send_attempt (GstLlmTransform *self, GstVoiceClient *client, Attempt *a)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, a->url);
  SoupMessageHeaders *h;
  RequestCtx *ctx;
  gboolean current;
  guint id;

  g_mutex_lock (&self->lock);
  current = current_attempt_locked (self, a->attempt_id) != NULL;
  if (current)
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

/* ---- Input (streaming thread of the sink pad) ---- */

static GstFlowReturn
gst_llm_transform_sink_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);
  GstVoiceTranscriptMeta *meta = gst_buffer_get_voice_transcript_meta (buf);
  gchar *text = NULL;
  GstFlowReturn ret;
  GstMapInfo map;

  /* Only the caller's final words count; no meta means plain user text. */
  if ((meta == NULL || (meta->role == GST_VOICE_ROLE_USER && meta->is_final)) &&
      gst_buffer_map (buf, &map, GST_MAP_READ)) {
    text = g_utf8_make_valid ((const gchar *)map.data, map.size);
    g_strstrip (text);
    gst_buffer_unmap (buf, &map);
  }
  g_mutex_lock (&self->lock);
  if (text && *text) {
    if (self->user_text->len)
      g_string_append_c (self->user_text, ' ');
    g_string_append (self->user_text, text);
  }
  ret = self->src_result;
  g_mutex_unlock (&self->lock);
  g_free (text);
  gst_buffer_unref (buf);
  return ret;
}

/* Returns: (transfer full): the words of the turn that just ended: the
 * event's transcript (deepgramsrc puts the whole turn there), else the
 * final transcripts received. */
static gchar *
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

static gboolean
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
  s = gst_voice_event_to_message_structure (
      event, "llmtransform", *text ? "acted" : "forwarded");
  defer_structure (self, &d, s);
  /* Forwarded in order, before the reply it starts. */
  queue_object_locked (self, GST_MINI_OBJECT (event), 0);
  if (*text)
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
static gboolean
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

static gboolean
gst_llm_transform_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  GstLlmTransform *self = GST_LLM_TRANSFORM (parent);

  switch (gst_voice_event_get_voice_type (event)) {
    case GST_VOICE_EVENT_END_OF_TURN:
      return handle_end_of_turn (self, event);
    case GST_VOICE_EVENT_SPEECH_START:
      return handle_barge_in (self, event, TRUE);
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
  GstMapInfo map;

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
  GstFlowReturn ret;
  OutItem *item;

  push_stream_header (self);
  g_mutex_lock (&self->lock);
  while (!self->flushing && g_queue_is_empty (&self->out))
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_pad_pause_task (self->srcpad);
    return;
  }
  item = g_queue_pop_head (&self->out);
  if (GST_IS_BUFFER (item->obj))
    credit_text_locked (self, item);
  g_mutex_unlock (&self->lock);

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
  if (ok)
    start_reply_locked (self, ++self->last_turn, t, &d);
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
  if (ok && self->reply)
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
  g_mutex_lock (&self->lock);
  self->client = gst_voice_client_new (GST_OBJECT_NAME (self));
  g_mutex_unlock (&self->lock);
  return TRUE;
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

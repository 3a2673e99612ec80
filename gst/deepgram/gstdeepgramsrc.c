/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-deepgramsrc
 * @title: deepgramsrc
 * @see_also: deepgramsink, deepgram, llmtransform
 *
 * Live source of the transcripts its partner #deepgramsink (same `session`)
 * gets from Deepgram: one `text/x-raw,format=utf8` buffer per final result
 * with words (and per interim result with #GstDeepgramSrc:interim=true),
 * timestamped with the pipeline running time of the audio it transcribes
 * and carrying a #GstVoiceTranscriptMeta (role user, is_final,
 * speech_final, confidence, turn). Results without words make no buffer.
 *
 * Turns: the src numbers the conversation's turns from 1 and sends the
 * serialized `end-of-turn` event, with the turn's final text in
 * `transcript`, when the turn is over; then the turn number goes up. A
 * turn without words ends silently. At EOS an unfinished turn ends before
 * EOS goes downstream.
 *
 * With `turn-detection=endpointing` the turn is over when Deepgram says
 * `speech_final`, when a final result answers the `Finalize` the sink sent
 * on `speech-stop` (`from_finalize`), or on `UtteranceEnd`, whichever comes
 * first. With `turn-detection=transcript` (the default) Deepgram's end of
 * utterance is only the earliest point: the turn is over once the silence
 * after the last word has lasted as long as its words ask for — short
 * after a sentence with terminal punctuation (`turn-complete-ms`), longer
 * without it (`turn-unsure-ms`), after a number or a spelled letter
 * (`turn-number-ms`) and after an article, preposition, conjunction or
 * filler (`turn-open-ms`) — and never while the VAD's `speech-start` is not
 * followed by its `speech-stop` or a word is still interim, up to
 * `turn-max-ms` after the last word. Meanwhile it sends `turn-likely` (the
 * words so far, once all are final and the VAD is quiet: a reply may start
 * speculatively) and `turn-resumed` (new words came after a `turn-likely`).
 * `end-of-turn` then carries `ending` (complete, unsure, number, open) and
 * `eot-delay` (uint64 ns from the end of the last word). The silence is
 * timed on the monotonic clock, as a caller keeps it: audio decoded from a
 * file faster than real time needs `sync=true` on deepgramsink, or
 * `turn-detection=endpointing`.
 *
 * The partner's `speech-start`, `speech-stop` and `interrupt` events are
 * pushed downstream in order with the transcripts. Upstream custom events
 * (e.g. `spoken`) are handed to the partner sink, which sends them on
 * upstream.
 *
 * ## Bus messages
 *
 * - `deepgram-transcript`, one per result: `text` (string), `is_final`,
 *   `speech_final`, `from_finalize` (booleans), `confidence` (double),
 *   `words` (array of `word` structures: `word`, `punctuated-word`,
 *   `start`, `end` (running times, uint64 ns), `confidence`),
 *   `running-time` and `duration` (uint64 ns, of the audio transcribed),
 *   `latency` (uint64 ns: from the moment the end of that audio reached
 *   deepgramsink to the result's arrival; GST_CLOCK_TIME_NONE if unknown),
 *   `wallclock` (int64, monotonic µs of the arrival), `request-id`
 *   (string), `turn` (uint). Field names follow Deepgram's JSON.
 * - `deepgramsrc` (per conversation event it pushes): the event's fields
 *   plus `event`, `action` ("sent" for end-of-turn, "forwarded" for the
 *   partner's events) and `wallclock`.
 *
 * deepgramsink posts the connection, backlog and usage messages.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav ! wavparse \
 *   ! deepgramsink url=ws://127.0.0.1:8790/v1/listen api-key=local \
 *   deepgramsrc interim=true ! fakesink dump=true
 * ]| Interim and final transcripts of a sentence from voiceagent-emulator
 * (running on its default port), dumped as text.
 * |[
 * gst-launch-1.0 -m filesrc location=speech.wav ! wavparse ! audioconvert ! audioresample \
 *   ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! deepgramsink sync=true \
 *   deepgramsrc ! fakesink dump=true
 * ]| Transcribes a WAV file with Deepgram at real-time speed
 * (DEEPGRAM_API_KEY set).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "voice.h"
#include "gstdeepgramsrc.h"
#include "options.h"
#include "turnoptions.h"

GST_DEBUG_CATEGORY_STATIC (deepgram_src_debug);
#define GST_CAT_DEFAULT deepgram_src_debug

#define DEFAULT_SESSION "default"
#define DEFAULT_INTERIM DG_DEFAULT_INTERIM
#define FIRST_TURN 1

enum {
  PROP_0,
  PROP_SESSION,
  PROP_INTERIM,
  PROP_TURN_FIRST,
};

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

struct _GstDeepgramSrc
{
  GstPushSrc parent;

  /* Protected by OBJECT_LOCK */
  gchar *session_name;
  gboolean interim;
  DgTurnOptions turn_opts;

  /* Written under OBJECT_LOCK by gst_voice_pair_join/leave (NULL→READY,
   * READY→NULL); read without a lock in between. Its queues are asked for
   * at each use rather than cached, so nothing else changes with it. */
  GstVoiceSession *session;

  /* Streaming thread only (and start/stop) */
  GQueue out; /* of GstMiniObject: buffers and events to output, in order */
  gboolean segment_sent; /* our own segment went out before any event */
  guint turn;
  GString *turn_text; /* final text of the current turn */
  GstClockTime turn_end; /* running time its last final result ends */
  GstVoiceTurnTracker *tracker; /* turn-detection=transcript, else NULL */
};

#define gst_deepgram_src_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstDeepgramSrc, gst_deepgram_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (deepgramsrc, "deepgramsrc",
    GST_RANK_NONE, GST_TYPE_DEEPGRAM_SRC, gst_voice_init ());

static void gst_deepgram_src_finalize (GObject *object);
static void gst_deepgram_src_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_deepgram_src_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_deepgram_src_change_state (
    GstElement *element, GstStateChange transition);
static gboolean gst_deepgram_src_start (GstBaseSrc *bsrc);
static gboolean gst_deepgram_src_stop (GstBaseSrc *bsrc);
static gboolean gst_deepgram_src_unlock (GstBaseSrc *bsrc);
static gboolean gst_deepgram_src_unlock_stop (GstBaseSrc *bsrc);
static gboolean gst_deepgram_src_event (GstBaseSrc *bsrc, GstEvent *event);
static GstFlowReturn gst_deepgram_src_create (
    GstPushSrc *psrc, GstBuffer **outbuf);

static void
gst_deepgram_src_class_init (GstDeepgramSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *bsrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *psrc_class = GST_PUSH_SRC_CLASS (klass);

  gobject_class->finalize = gst_deepgram_src_finalize;
  gobject_class->set_property = gst_deepgram_src_set_property;
  gobject_class->get_property = gst_deepgram_src_get_property;

  /**
   * GstDeepgramSrc:session:
   *
   * Pairs this src with the deepgramsink of the same session name.
   */
  g_object_class_install_property (gobject_class, PROP_SESSION,
      g_param_spec_string ("session", "Session",
          "Name that pairs this src with the deepgramsink of the same "
          "session in this process",
          DEFAULT_SESSION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  /**
   * GstDeepgramSrc:interim:
   *
   * Also push interim results as buffers (is_final FALSE in the meta).
   * Their messages are posted either way.
   */
  g_object_class_install_property (gobject_class, PROP_INTERIM,
      g_param_spec_boolean ("interim", "Interim",
          "Also push a buffer per interim result (needs the sink's "
          "interim-results=true); messages are posted either way",
          DEFAULT_INTERIM,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  dg_turn_options_install (gobject_class, PROP_TURN_FIRST);

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Deepgram speech-to-text source", "Source/Text/Network",
      "Pushes the transcripts the paired deepgramsink receives from "
      "Deepgram, with end-of-turn events",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav "
      "! wavparse ! deepgramsink url=ws://127.0.0.1:8790/v1/listen "
      "api-key=local deepgramsrc interim=true ! fakesink dump=true");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_deepgram_src_change_state);
  bsrc_class->start = GST_DEBUG_FUNCPTR (gst_deepgram_src_start);
  bsrc_class->stop = GST_DEBUG_FUNCPTR (gst_deepgram_src_stop);
  bsrc_class->unlock = GST_DEBUG_FUNCPTR (gst_deepgram_src_unlock);
  bsrc_class->unlock_stop = GST_DEBUG_FUNCPTR (gst_deepgram_src_unlock_stop);
  bsrc_class->event = GST_DEBUG_FUNCPTR (gst_deepgram_src_event);
  psrc_class->create = GST_DEBUG_FUNCPTR (gst_deepgram_src_create);

  GST_DEBUG_CATEGORY_INIT (
      deepgram_src_debug, "deepgramsrc", 0, "Deepgram speech-to-text source");
}

static void
gst_deepgram_src_init (GstDeepgramSrc *self)
{
  self->session_name = g_strdup (DEFAULT_SESSION);
  self->interim = DEFAULT_INTERIM;
  dg_turn_options_init (&self->turn_opts);
  g_queue_init (&self->out);
  self->turn_text = g_string_new (NULL);
  self->turn = FIRST_TURN;
  self->turn_end = GST_CLOCK_TIME_NONE;
  gst_base_src_set_live (GST_BASE_SRC (self), TRUE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
}

static void
gst_deepgram_src_finalize (GObject *object)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (object);

  g_queue_clear_full (&self->out, (GDestroyNotify)gst_mini_object_unref);
  g_string_free (self->turn_text, TRUE);
  g_free (self->session_name);
  dg_turn_options_clear (&self->turn_opts);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_deepgram_src_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SESSION:
      g_free (self->session_name);
      self->session_name = g_value_dup_string (value);
      if (self->session_name == NULL)
        self->session_name = g_strdup (DEFAULT_SESSION);
      break;
    case PROP_INTERIM:
      self->interim = g_value_get_boolean (value);
      break;
    default:
      if (prop_id >= PROP_TURN_FIRST &&
          prop_id < PROP_TURN_FIRST + DG_TURN_OPT_COUNT)
        dg_turn_options_set (
            &self->turn_opts, prop_id - PROP_TURN_FIRST, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_deepgram_src_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_SESSION:
      g_value_set_string (value, self->session_name);
      break;
    case PROP_INTERIM:
      g_value_set_boolean (value, self->interim);
      break;
    default:
      if (prop_id >= PROP_TURN_FIRST &&
          prop_id < PROP_TURN_FIRST + DG_TURN_OPT_COUNT)
        dg_turn_options_get (
            &self->turn_opts, prop_id - PROP_TURN_FIRST, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- Pairing ---- */

static const GstVoicePairInfo pair_info = {
  .kind = DG_SESSION_KIND,
  .name_offset = G_STRUCT_OFFSET (GstDeepgramSrc, session_name),
  .session_offset = G_STRUCT_OFFSET (GstDeepgramSrc, session),
};

static GstStateChangeReturn
gst_deepgram_src_change_state (GstElement *element, GstStateChange transition)
{
  return gst_voice_pair_change_state (
      element, transition, &pair_info, GST_ELEMENT_CLASS (parent_class));
}

/* The session's queues; only between NULL→READY and READY→NULL. */
static GstVoiceQueue *
to_src (GstDeepgramSrc *self)
{
  return gst_voice_session_get_queue (self->session, GST_VOICE_SESSION_TO_SRC);
}

static GstVoiceQueue *
to_sink (GstDeepgramSrc *self)
{
  return gst_voice_session_get_queue (self->session, GST_VOICE_SESSION_TO_SINK);
}

static void
reset_turn (GstDeepgramSrc *self)
{
  g_string_truncate (self->turn_text, 0);
  self->turn_end = GST_CLOCK_TIME_NONE;
  if (self->tracker)
    gst_voice_turn_tracker_reset (self->tracker);
}

/* The tracker of turn-detection=transcript; FALSE (after posting an error)
 * when its word lists cannot be read. */
static gboolean
make_tracker (GstDeepgramSrc *self)
{
  DgTurnOptions opts;
  GError *error = NULL;

  GST_OBJECT_LOCK (self);
  dg_turn_options_copy (&self->turn_opts, &opts);
  GST_OBJECT_UNLOCK (self);
  if (opts.detection == GST_DEEPGRAM_TURN_DETECTION_TRANSCRIPT)
    self->tracker = dg_turn_options_make_tracker (&opts, &error);
  if (error) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("Cannot use the turn word lists: %s", error->message),
        ("turn-words=%s turn-language=%s: fix the file or unset turn-words",
            opts.words_file, opts.language));
    g_error_free (error);
  }
  dg_turn_options_clear (&opts);
  return error == NULL;
}

static gboolean
gst_deepgram_src_start (GstBaseSrc *bsrc)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (bsrc);

  if (!make_tracker (self))
    return FALSE;
  gst_voice_queue_set_flushing (to_src (self), FALSE);
  self->segment_sent = FALSE;
  self->turn = FIRST_TURN;
  reset_turn (self);
  return TRUE;
}

static gboolean
gst_deepgram_src_stop (GstBaseSrc *bsrc)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (bsrc);

  g_queue_clear_full (&self->out, (GDestroyNotify)gst_mini_object_unref);
  g_queue_init (&self->out);
  reset_turn (self);
  g_clear_pointer (&self->tracker, gst_voice_turn_tracker_free);
  return TRUE;
}

/* Wakes create() for a flush or a state change. */
static gboolean
gst_deepgram_src_unlock (GstBaseSrc *bsrc)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (bsrc);

  gst_voice_queue_set_flushing (to_src (self), TRUE);
  return TRUE;
}

static gboolean
gst_deepgram_src_unlock_stop (GstBaseSrc *bsrc)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (bsrc);

  gst_voice_queue_set_flushing (to_src (self), FALSE);
  return TRUE;
}

/* Upstream custom events go to the partner sink, which sends them on
 * upstream (the two halves are not linked by pads). */
static gboolean
gst_deepgram_src_event (GstBaseSrc *bsrc, GstEvent *event)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (bsrc);

  if (GST_EVENT_TYPE (event) == GST_EVENT_CUSTOM_UPSTREAM) {
    GST_DEBUG_OBJECT (self, "to partner: %" GST_PTR_FORMAT, event);
    return gst_voice_queue_push (
        to_sink (self), GST_MINI_OBJECT (gst_event_ref (event)));
  }
  return GST_BASE_SRC_CLASS (parent_class)->event (bsrc, event);
}

/* ---- Results → buffers, messages, turns (streaming thread) ---- */

static void
post_structure (GstDeepgramSrc *self, GstStructure *s)
{
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* The turn's words: the tracker's (which may hold words Deepgram never
 * finalized) or the final results'. */
static const gchar *
turn_text (GstDeepgramSrc *self)
{
  return self->tracker ? gst_voice_turn_tracker_get_text (self->tracker)
                       : self->turn_text->str;
}

/* The decision's details on the end-of-turn event (transcript mode). */
static void
add_decision (GstDeepgramSrc *self, GstEvent *event)
{
  gint64 last = gst_voice_turn_tracker_get_last_word_end (self->tracker);
  gint64 now = g_get_monotonic_time ();

  gst_structure_set (gst_event_writable_structure (event), "ending",
      G_TYPE_STRING,
      gst_voice_turn_ending_get_name (
          gst_voice_turn_tracker_get_ending (self->tracker)),
      "eot-delay", G_TYPE_UINT64,
      (guint64)(last >= 0 && now > last ? (now - last) * GST_USECOND : 0),
      NULL);
}

/* Queues the end-of-turn of the current turn, if it has words. */
static void
end_turn (GstDeepgramSrc *self, GstClockTime running_time)
{
  const gchar *text = turn_text (self);
  GstEvent *event;

  if (*text == '\0')
    return;
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    running_time = self->turn_end;
  GST_DEBUG_OBJECT (self, "end of turn %u: \"%s\"", self->turn, text);
  event = gst_voice_event_new_end_of_turn (running_time, self->turn, text);
  if (self->tracker)
    add_decision (self, event);
  g_queue_push_tail (&self->out, event);
  self->turn++;
  reset_turn (self);
}

/* Queues what the tracker asked for. */
static void
run_actions (GstDeepgramSrc *self, GstVoiceTurnAction act)
{
  if (act & GST_VOICE_TURN_ACTION_RESUMED) {
    GST_DEBUG_OBJECT (self, "turn %u resumed", self->turn);
    g_queue_push_tail (&self->out,
        gst_voice_event_new (
            GST_VOICE_EVENT_TURN_RESUMED, self->turn_end, self->turn));
  }
  if (act & GST_VOICE_TURN_ACTION_LIKELY) {
    GST_DEBUG_OBJECT (
        self, "turn %u likely over: \"%s\"", self->turn, turn_text (self));
    g_queue_push_tail (&self->out,
        gst_voice_event_new_turn_likely (
            self->turn_end, self->turn, turn_text (self)));
  }
  if (act & GST_VOICE_TURN_ACTION_COMMIT)
    end_turn (self, self->turn_end);
}

/* A result further behind its audio than this came from audio sent faster
 * than real time (a file) or from a lagging service: its latency says
 * nothing about the silence the caller kept. */
#define MAX_TRUSTED_LATENCY (1500 * GST_MSECOND)

/* When the audio of the result's last word reached deepgramsink
 * (monotonic µs): its arrival, less the result's latency, less the audio
 * after that word. -1 when the result cannot tell. */
static gint64
last_word_end_us (const GstStructure *s)
{
  const GValue *words = gst_structure_get_value (s, "words");
  guint64 rt = 0, duration = 0, latency = 0, word_end = 0;
  gint64 wallclock = 0;
  guint n;

  if (words == NULL || !GST_VALUE_HOLDS_ARRAY (words) ||
      (n = gst_value_array_get_size (words)) == 0 ||
      !gst_structure_get_uint64 (s, "running-time", &rt) ||
      !gst_structure_get_uint64 (s, "duration", &duration) ||
      !gst_structure_get_uint64 (s, "latency", &latency) ||
      !gst_structure_get_int64 (s, "wallclock", &wallclock) ||
      !GST_CLOCK_TIME_IS_VALID (duration) || !GST_CLOCK_TIME_IS_VALID (latency))
    return -1;
  if (!gst_structure_get_uint64 (
          gst_value_get_structure (gst_value_array_get_value (words, n - 1)),
          "end", &word_end) ||
      !GST_CLOCK_TIME_IS_VALID (word_end) || word_end > rt + duration)
    return -1;
  if (latency > MAX_TRUSTED_LATENCY)
    latency = 0;
  return wallclock - (gint64)(latency / GST_USECOND) -
      (gint64)((rt + duration - word_end) / GST_USECOND);
}

static GstBuffer *
make_buffer (GstDeepgramSrc *self, const gchar *text, const GstStructure *s,
    gboolean is_final, gboolean speech_final)
{
  GstBuffer *buf = gst_buffer_new_memdup (text, strlen (text));
  GstClockTime rt = GST_CLOCK_TIME_NONE, duration = GST_CLOCK_TIME_NONE;
  gdouble confidence = 0;

  gst_structure_get_uint64 (s, "running-time", &rt);
  gst_structure_get_uint64 (s, "duration", &duration);
  gst_structure_get_double (s, "confidence", &confidence);
  GST_BUFFER_PTS (buf) = rt;
  GST_BUFFER_DURATION (buf) = duration;
  gst_buffer_add_voice_transcript_meta (buf, GST_VOICE_ROLE_USER, is_final,
      speech_final, (gfloat)confidence, self->turn);
  return buf;
}

static void
handle_result (GstDeepgramSrc *self, const GstStructure *s)
{
  const gchar *text = gst_structure_get_string (s, "text");
  gboolean is_final = FALSE, speech_final = FALSE, from_finalize = FALSE;
  gboolean interim;
  GstClockTime rt = GST_CLOCK_TIME_NONE, duration = 0;
  GstStructure *msg;

  gst_structure_get_boolean (s, "is_final", &is_final);
  gst_structure_get_boolean (s, "speech_final", &speech_final);
  gst_structure_get_boolean (s, "from_finalize", &from_finalize);
  gst_structure_get_uint64 (s, "running-time", &rt);
  gst_structure_get_uint64 (s, "duration", &duration);
  if (text == NULL)
    text = "";
  GST_OBJECT_LOCK (self);
  interim = self->interim;
  GST_OBJECT_UNLOCK (self);

  msg = gst_structure_copy (s);
  gst_structure_set_name (msg, "deepgram-transcript");
  gst_structure_set (msg, "turn", G_TYPE_UINT, self->turn, NULL);
  post_structure (self, msg);

  if (*text && (is_final || interim))
    g_queue_push_tail (
        &self->out, make_buffer (self, text, s, is_final, speech_final));
  if (is_final && *text) {
    if (self->turn_text->len > 0)
      g_string_append_c (self->turn_text, ' ');
    g_string_append (self->turn_text, text);
    if (GST_CLOCK_TIME_IS_VALID (rt) && GST_CLOCK_TIME_IS_VALID (duration))
      self->turn_end = rt + duration;
  }
  if (self->tracker) {
    gint64 now = g_get_monotonic_time (), end = last_word_end_us (s);
    GST_LOG_OBJECT (self,
        "result \"%s\" final %d endpoint %d, last word ended %" G_GINT64_FORMAT
        " ms ago",
        text, is_final, speech_final || from_finalize,
        end >= 0 ? (now - end) / 1000 : -1);
    run_actions (self,
        gst_voice_turn_tracker_push_result (self->tracker, text, is_final,
            speech_final || from_finalize, end, now));
  } else if (is_final && (speech_final || from_finalize))
    end_turn (self, self->turn_end);
}

/* Where (monotonic µs) the VAD says speech started or ended: it decides a
 * while after that, and the event says where on the running time. */
static gint64
vad_time_us (GstDeepgramSrc *self, GstEvent *event, gint64 now)
{
  GstClockTime at = GST_CLOCK_TIME_NONE, rt_now;

  gst_voice_event_parse (event, NULL, &at, NULL);
  rt_now = gst_element_get_current_running_time (GST_ELEMENT (self));
  if (!GST_CLOCK_TIME_IS_VALID (at) || !GST_CLOCK_TIME_IS_VALID (rt_now) ||
      at > rt_now)
    return now;
  return now - (gint64)((rt_now - at) / GST_USECOND);
}

/* The VAD's decisions hold a commit back or release it. */
static void
track_speech (GstDeepgramSrc *self, GstEvent *event)
{
  GstVoiceEventType type = gst_voice_event_get_voice_type (event);
  gint64 now = g_get_monotonic_time (), at;

  if (self->tracker == NULL ||
      (type != GST_VOICE_EVENT_SPEECH_START &&
          type != GST_VOICE_EVENT_SPEECH_STOP))
    return;
  at = vad_time_us (self, event, now);
  GST_LOG_OBJECT (self, "VAD: %s %" G_GINT64_FORMAT " ms ago",
      gst_voice_event_type_get_name (type), (now - at) / 1000);
  run_actions (self,
      gst_voice_turn_tracker_push_speech (
          self->tracker, type == GST_VOICE_EVENT_SPEECH_START, at));
}

/* Turns one item from the partner into output queued in self->out. */
static void
handle_input (GstDeepgramSrc *self, GstEvent *event)
{
  const GstStructure *s = gst_event_get_structure (event);

  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    end_turn (self, GST_CLOCK_TIME_NONE);
    g_queue_push_tail (&self->out, event);
    return;
  }
  if (s && gst_structure_has_name (s, "deepgram-result")) {
    handle_result (self, s);
    gst_event_unref (event);
  } else if (s && gst_structure_has_name (s, "deepgram-utterance-end")) {
    GST_DEBUG_OBJECT (self, "UtteranceEnd");
    if (self->tracker)
      run_actions (self,
          gst_voice_turn_tracker_push_endpoint (
              self->tracker, g_get_monotonic_time ()));
    else
      end_turn (self, self->turn_end);
    gst_event_unref (event);
  } else if (gst_voice_event_get_voice_type (event) != GST_VOICE_EVENT_NONE) {
    g_queue_push_tail (&self->out, event);
    track_speech (self, event);
  } else {
    GST_DEBUG_OBJECT (self, "dropping %" GST_PTR_FORMAT, event);
    gst_event_unref (event);
  }
}

/* Pushes @event (transfer full) downstream from create(). basesrc sends
 * its segment only before the first buffer, so one goes out first here:
 * a serialized event must not precede the segment. */
static void
push_event (GstDeepgramSrc *self, GstEvent *event)
{
  GstBaseSrc *bsrc = GST_BASE_SRC (self);
  GstVoiceEventType type = gst_voice_event_get_voice_type (event);

  if (!self->segment_sent) {
    gst_pad_push_event (
        GST_BASE_SRC_PAD (bsrc), gst_event_new_segment (&bsrc->segment));
    self->segment_sent = TRUE;
  }
  if (type != GST_VOICE_EVENT_NONE) {
    GstStructure *s =
        gst_voice_event_to_message_structure (event, "deepgramsrc",
            type == GST_VOICE_EVENT_END_OF_TURN ? "sent" : "forwarded");
    post_structure (self, s);
  }
  gst_pad_push_event (GST_BASE_SRC_PAD (bsrc), event);
}

/* Commits the turn when its silence has lasted long enough. Returns how
 * long to wait for input before asking again (µs; -1: until input). */
static gint64
poll_turn (GstDeepgramSrc *self)
{
  gint64 now = g_get_monotonic_time (), next = -1;

  if (self->tracker == NULL)
    return -1;
  run_actions (self, gst_voice_turn_tracker_poll (self->tracker, now, &next));
  return next < 0 ? -1 : MAX (next - now, 1000);
}

static GstFlowReturn
gst_deepgram_src_create (GstPushSrc *psrc, GstBuffer **outbuf)
{
  GstDeepgramSrc *self = GST_DEEPGRAM_SRC (psrc);

  for (;;) {
    GstMiniObject *obj = g_queue_pop_head (&self->out);

    if (obj == NULL) {
      gint64 wait = poll_turn (self);
      if (!g_queue_is_empty (&self->out))
        continue;
      obj = gst_voice_queue_pop (to_src (self), wait);
      if (obj == NULL && gst_voice_queue_is_flushing (to_src (self)))
        return GST_FLOW_FLUSHING;
      if (obj == NULL)
        continue;
      if (GST_IS_EVENT (obj))
        handle_input (self, GST_EVENT (obj));
      else
        gst_mini_object_unref (obj);
      continue;
    }
    if (GST_IS_BUFFER (obj)) {
      self->segment_sent = TRUE;
      *outbuf = GST_BUFFER (obj);
      return GST_FLOW_OK;
    }
    if (GST_EVENT_TYPE (obj) == GST_EVENT_EOS) {
      gst_mini_object_unref (obj);
      return GST_FLOW_EOS;
    }
    push_event (self, GST_EVENT (obj));
  }
}

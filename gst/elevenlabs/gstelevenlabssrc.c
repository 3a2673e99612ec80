/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-elevenlabssrc
 * @title: elevenlabssrc
 * @see_also: elevenlabssink, elevenlabs
 *
 * The audio half of ElevenLabs text-to-speech: a live source of
 * `audio/x-raw` S16LE mono at the rate of #GstElevenLabsSrc:output-format,
 * paced by the pipeline clock in buffers of #GstElevenLabsSrc:buffer-ms,
 * with continuous timestamps. It plays the speech its elevenlabssink
 * (same #GstElevenLabsSrc:session) receives, and silence while the agent is
 * quiet, so an RTP stream behind it never stalls (opusenc's DTX makes the
 * silence cheap).
 *
 * A small playout buffer sits between the network and the clock: a turn
 * starts at the first buffer after its audio arrived once
 * #GstElevenLabsSrc:prebuffer-ms of it is queued (or all of it, for a short
 * turn). If the audio runs dry mid-turn, silence plays, the underrun is
 * counted, and the turn resumes when the prebuffer is there again. The
 * buffer's content is decided when the clock reaches its timestamp, not
 * before, so a barge-in is heard at most one buffer period late.
 *
 * Barge-in: `interrupt`, and `speech-start` with
 * #GstElevenLabsSrc:interruption=vad, arriving through the sink (or sent to
 * this element with gst_element_send_event()) drop all queued audio: the
 * next buffer out is silence. The element then sends a `spoken` event to
 * its sink half, which pushes it upstream to llmtransform: `text` is what
 * the caller heard of the turn (from the service's character alignment, cut
 * at a word boundary) and `complete` is FALSE. A turn that plays to its end
 * sends `spoken` with `complete` TRUE.
 *
 * Pause: `agent-pause` (from llmtransform with `interruption=confirmed`,
 * while it decides whether the caller's speech is a barge-in) holds the
 * audio where it is: silence goes out, nothing queued is dropped and the
 * service goes on synthesizing into the buffer. `agent-resume` plays on
 * from the same sample; `interrupt` drops everything and ends the pause. A
 * `speech-start` marked `barge-in=deferred` is left to those events even
 * with interruption=vad. Both are honoured unless interruption=none.
 *
 * Standalone, the element speaks on its own connection: the text of
 * #GstElevenLabsSrc:text when it starts, and whatever the `speak` action
 * signal is given. With #GstElevenLabsSrc:eos-after-text it ends after
 * that speech, so a file can be rendered.
 *
 * Element messages named `elevenlabssrc`, with `event` (string), `turn`
 * (guint), `own` (gboolean, spoken on the src's own connection),
 * `running-time` (guint64, of the sample concerned) and `wallclock`
 * (gint64, g_get_monotonic_time()):
 *
 * - `agent-speaking-started`: `latency` (guint64 ns, from the first audio
 *   byte's arrival to the buffer holding the first sample leaving)
 * - `agent-speaking-stopped`: `interrupted` (gboolean), `spoken-text`
 *   (string), `audio-duration` (guint64 ns) and `audio-seconds` (gdouble)
 *   played, `characters` (guint, billed for the turn; 0 when interrupted:
 *   see the sink's `turn-cancelled`), `ttfb` (guint64 ns, as in the
 *   sink's `first-audio`; GST_CLOCK_TIME_NONE when interrupted),
 *   `underruns` (guint)
 * - `underrun`: `underruns` (guint, so far in the turn)
 * - for each conversation event it acts on (barge-in, `agent-pause`,
 *   `agent-resume`) or sends (`spoken`):
 *   the fields of gst_voice_event_to_message_structure() with `action`
 *   `acted` or `sent`.
 *
 * The conversation events that come through the sink half are pushed
 * downstream after being acted on.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 elevenlabssrc text="Hello, how can I help?" eos-after-text=true ! audioconvert ! autoaudiosink
 * ]| Speaks one sentence and ends (with ELEVENLABS_API_KEY set).
 * |[
 * gst-launch-1.0 elevenlabssrc text="Hello" eos-after-text=true ! wavenc ! filesink location=hello.wav
 * ]| Renders it to a WAV file.
 */

/* Locking order: OBJECT_LOCK and PLAYOUT_LOCK never nest; each is taken
 * alone. Under OBJECT_LOCK only the clock's lock (unlock() unschedules the
 * wait) and gst/voice's redaction lock (the api-key property and
 * el_synth_new() register the key) are taken; under PLAYOUT_LOCK only the
 * session's TO_SRC queue lock (draining it). The session registry and a
 * session's own lock (gst_voice_session_*) and the synth's lock
 * (el_synth_*) are always taken with neither held. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstelevenlabssrc.h"
#include "options.h"
#include "pair.h"
#include "playout.h"
#include "synth.h"

#include <voice.h>

GST_DEBUG_CATEGORY_STATIC (gst_elevenlabs_src_debug);
#define GST_CAT_DEFAULT gst_elevenlabs_src_debug

#define SRC_CAPS                                                               \
  "audio/x-raw, format = (string) S16LE, layout = (string) interleaved, "      \
  "channels = (int) 1, rate = (int) { 8000, 16000, 22050, 24000, 44100 }"

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (SRC_CAPS));

enum {
  PROP_BUFFER_MS = EL_PROP_LAST,
  PROP_PREBUFFER_MS,
  PROP_TEXT,
  PROP_EOS_AFTER_TEXT,
};

enum {
  SIGNAL_SPEAK,
  LAST_SIGNAL,
};

#define DEFAULT_BUFFER_MS EL_DEFAULT_BUFFER_MS
#define DEFAULT_PREBUFFER_MS EL_DEFAULT_PREBUFFER_MS
#define DEFAULT_EOS_AFTER_TEXT FALSE

static guint signals[LAST_SIGNAL];

struct _GstElevenLabsSrc
{
  GstPushSrc parent;

  /* protected by OBJECT_LOCK */
  ElConfig config;
  guint buffer_ms;
  guint prebuffer_ms;
  gchar *text;
  gboolean eos_after_text;
  /* Written under OBJECT_LOCK by gst_voice_pair_join/leave (NULL→READY,
   * READY→NULL); between start and stop it cannot change and is read
   * without a lock. */
  GstVoiceSession *session;
  ElSynth *synth; /* own connection, for `text` and `speak` */
  gboolean running; /* between start and stop */
  GQueue pending_speak; /* of gchar*, spoken before start */
  guint own_turn; /* last own turn number */
  guint own_pending; /* own turns not played yet */
  gboolean own_any; /* an own turn was queued */
  GstClockID clock_id; /* the wait in progress */
  gboolean unlocked; /* unlock() until unlock_stop() */

  /* PLAYOUT_LOCK: the streaming thread reads the playout while an
   * application thread may interrupt it (send_event); never nested with
   * OBJECT_LOCK. */
  GMutex playout_lock;
  ElPlayout *playout; /* protected by PLAYOUT_LOCK; NULL outside start..stop */

  /* streaming thread only */
  guint rate; /* of the negotiated caps, 0 before */
  gboolean started; /* timing set up by the first create() */
  GstClockTime ts_base; /* running time of the first buffer at this rate */
  guint64 samples_out; /* since ts_base */
  guint64 offset; /* samples since start */
  gboolean eos_next; /* the next create() returns EOS */
};

#define PLAYOUT_LOCK(self) g_mutex_lock (&(self)->playout_lock)
#define PLAYOUT_UNLOCK(self) g_mutex_unlock (&(self)->playout_lock)

#define gst_elevenlabs_src_parent_class parent_class
G_DEFINE_TYPE (GstElevenLabsSrc, gst_elevenlabs_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE (
    elevenlabssrc, "elevenlabssrc", GST_RANK_NONE, GST_TYPE_ELEVENLABS_SRC);

static void gst_elevenlabs_src_finalize (GObject *object);
static void gst_elevenlabs_src_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_elevenlabs_src_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_elevenlabs_src_change_state (
    GstElement *element, GstStateChange transition);
static gboolean gst_elevenlabs_src_send_event (
    GstElement *element, GstEvent *event);
static GstCaps *gst_elevenlabs_src_get_caps (GstBaseSrc *bsrc, GstCaps *filter);
static gboolean gst_elevenlabs_src_start (GstBaseSrc *bsrc);
static gboolean gst_elevenlabs_src_stop (GstBaseSrc *bsrc);
static gboolean gst_elevenlabs_src_query (GstBaseSrc *bsrc, GstQuery *query);
static gboolean gst_elevenlabs_src_unlock (GstBaseSrc *bsrc);
static gboolean gst_elevenlabs_src_unlock_stop (GstBaseSrc *bsrc);
static GstFlowReturn gst_elevenlabs_src_create (
    GstPushSrc *psrc, GstBuffer **buf);
static gboolean gst_elevenlabs_src_speak (
    GstElevenLabsSrc *self, const gchar *text);

static void
gst_elevenlabs_src_class_init (GstElevenLabsSrcClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS (klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_elevenlabs_src_debug, "elevenlabssrc", 0,
      "ElevenLabs text-to-speech, audio half");

  gobject_class->finalize = gst_elevenlabs_src_finalize;
  gobject_class->set_property = gst_elevenlabs_src_set_property;
  gobject_class->get_property = gst_elevenlabs_src_get_property;

  el_config_install_properties (gobject_class);
  g_object_class_install_property (
      gobject_class, PROP_BUFFER_MS, el_pspec_buffer_ms ());
  g_object_class_install_property (
      gobject_class, PROP_PREBUFFER_MS, el_pspec_prebuffer_ms ());
  /**
   * GstElevenLabsSrc:text:
   *
   * Spoken on the element's own connection when it starts.
   */
  g_object_class_install_property (gobject_class, PROP_TEXT,
      g_param_spec_string ("text", "Text",
          "Text to speak when the element starts, on its own connection "
          "(standalone use)",
          NULL,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY |
              G_PARAM_STATIC_STRINGS));
  /**
   * GstElevenLabsSrc:eos-after-text:
   *
   * End the stream once the element's own speech (#GstElevenLabsSrc:text
   * and `speak`) has played, e.g. to render a file.
   */
  g_object_class_install_property (gobject_class, PROP_EOS_AFTER_TEXT,
      g_param_spec_boolean ("eos-after-text", "EOS after text",
          "End the stream once the element's own speech (text, speak) has "
          "played",
          DEFAULT_EOS_AFTER_TEXT,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY |
              G_PARAM_STATIC_STRINGS));

  /**
   * GstElevenLabsSrc::speak:
   * @src: the element
   * @text: what to say
   *
   * Speaks @text as one turn on the element's own connection, after what
   * is already queued. Returns FALSE if it could not be queued.
   */
  signals[SIGNAL_SPEAK] = g_signal_new_class_handler ("speak",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_elevenlabs_src_speak), NULL, NULL, NULL, G_TYPE_BOOLEAN,
      1, G_TYPE_STRING);

  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "ElevenLabs text-to-speech (audio out)", "Source/Audio/Network",
      "Plays ElevenLabs speech as a clock-paced live stream, silence "
      "between turns, stopping within one buffer on barge-in",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 elevenlabssrc text=\"Hello, how can I help?\" "
      "eos-after-text=true ! audioconvert ! autoaudiosink");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_elevenlabs_src_change_state);
  element_class->send_event = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_send_event);
  basesrc_class->get_caps = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_get_caps);
  basesrc_class->start = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_start);
  basesrc_class->stop = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_stop);
  basesrc_class->query = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_query);
  basesrc_class->unlock = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_unlock);
  basesrc_class->unlock_stop =
      GST_DEBUG_FUNCPTR (gst_elevenlabs_src_unlock_stop);
  pushsrc_class->create = GST_DEBUG_FUNCPTR (gst_elevenlabs_src_create);
}

static void
gst_elevenlabs_src_init (GstElevenLabsSrc *self)
{
  el_config_init (&self->config);
  self->buffer_ms = DEFAULT_BUFFER_MS;
  self->prebuffer_ms = DEFAULT_PREBUFFER_MS;
  self->eos_after_text = DEFAULT_EOS_AFTER_TEXT;
  g_queue_init (&self->pending_speak);
  g_mutex_init (&self->playout_lock);
  gst_base_src_set_live (GST_BASE_SRC (self), TRUE);
  gst_base_src_set_format (GST_BASE_SRC (self), GST_FORMAT_TIME);
}

static void
gst_elevenlabs_src_finalize (GObject *object)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (object);

  el_config_clear (&self->config);
  g_free (self->text);
  g_queue_clear_full (&self->pending_speak, g_free);
  g_mutex_clear (&self->playout_lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_elevenlabs_src_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BUFFER_MS:
      self->buffer_ms = g_value_get_uint (value);
      break;
    case PROP_PREBUFFER_MS:
      self->prebuffer_ms = g_value_get_uint (value);
      break;
    case PROP_TEXT:
      g_free (self->text);
      self->text = g_value_dup_string (value);
      break;
    case PROP_EOS_AFTER_TEXT:
      self->eos_after_text = g_value_get_boolean (value);
      break;
    case EL_PROP_SESSION:
      if (self->session) {
        g_warning ("elevenlabssrc: session can only be set in the NULL state");
        break;
      }
      /* fall through */
    default:
      if (!el_config_set_property_locked (
              &self->config, object, prop_id, value, pspec))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_elevenlabs_src_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_BUFFER_MS:
      g_value_set_uint (value, self->buffer_ms);
      break;
    case PROP_PREBUFFER_MS:
      g_value_set_uint (value, self->prebuffer_ms);
      break;
    case PROP_TEXT:
      g_value_set_string (value, self->text);
      break;
    case PROP_EOS_AFTER_TEXT:
      g_value_set_boolean (value, self->eos_after_text);
      break;
    default:
      if (!el_config_get_property_locked (&self->config, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- Session and state ---- */

static const GstVoicePairInfo pair_info = {
  .kind = EL_SESSION_KIND,
  .name_offset = G_STRUCT_OFFSET (GstElevenLabsSrc, config.session),
  .session_offset = G_STRUCT_OFFSET (GstElevenLabsSrc, session),
};

static GstStateChangeReturn
gst_elevenlabs_src_change_state (GstElement *element, GstStateChange transition)
{
  return gst_voice_pair_change_state (
      element, transition, &pair_info, GST_ELEMENT_CLASS (parent_class));
}

static GstVoiceQueue *
queue_to_src (GstElevenLabsSrc *self)
{
  return gst_voice_session_get_queue (self->session, GST_VOICE_SESSION_TO_SRC);
}

/* The own connection (for `text` and `speak`), started on first use, with
 * a reference; NULL (after posting an error) if the settings are unusable.
 * Call without the object lock: errors and messages get posted. */
static ElSynth *
own_synth (GstElevenLabsSrc *self)
{
  ElSynth *synth = NULL;
  GError *error = NULL;
  gboolean created = FALSE;

  GST_OBJECT_LOCK (self);
  if (self->synth) {
    synth = el_synth_ref (self->synth);
  } else if (el_config_validate_locked (&self->config, &error)) {
    self->synth = el_synth_new (GST_ELEMENT (self), "elevenlabssrc",
        &self->config.synth, queue_to_src (self), TRUE);
    synth = el_synth_ref (self->synth);
    created = TRUE;
  }
  GST_OBJECT_UNLOCK (self);
  if (error) {
    el_config_post_error (GST_ELEMENT (self), error);
    g_error_free (error);
  }
  if (created)
    el_synth_start (synth);
  return synth;
}

/* Queues @text as the next own turn. */
static gboolean
speak_now (GstElevenLabsSrc *self, const gchar *text)
{
  ElSynth *synth = own_synth (self);
  guint turn;

  if (synth == NULL)
    return FALSE;
  GST_OBJECT_LOCK (self);
  turn = ++self->own_turn;
  self->own_pending++;
  self->own_any = TRUE;
  GST_OBJECT_UNLOCK (self);
  el_synth_push_text (synth, turn, text);
  el_synth_end_turn (synth, turn);
  el_synth_unref (synth);
  return TRUE;
}

static gboolean
gst_elevenlabs_src_start (GstBaseSrc *bsrc)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (bsrc);
  GQueue texts = G_QUEUE_INIT;
  ElPlayout *playout;
  gchar *text;
  gboolean ok = TRUE;

  GST_OBJECT_LOCK (self);
  self->running = TRUE;
  self->own_turn = 0;
  self->own_pending = 0;
  self->own_any = FALSE;
  if (self->text && *self->text)
    g_queue_push_tail (&texts, g_strdup (self->text));
  while ((text = g_queue_pop_head (&self->pending_speak)))
    g_queue_push_tail (&texts, text);
  playout = el_playout_new (el_output_format_rate (self->config.synth.format));
  el_playout_set_prebuffer (
      playout, (GstClockTime)self->prebuffer_ms * GST_MSECOND);
  GST_OBJECT_UNLOCK (self);
  /* Published outside OBJECT_LOCK: the two locks never nest. Until then a
   * barge-in finds no playout, as it would find an empty one. */
  PLAYOUT_LOCK (self);
  self->playout = playout;
  PLAYOUT_UNLOCK (self);

  while ((text = g_queue_pop_head (&texts))) {
    ok = ok && speak_now (self, text);
    g_free (text);
  }
  self->rate = 0;
  self->started = FALSE;
  self->offset = 0;
  self->eos_next = FALSE;
  return ok;
}

static gboolean
gst_elevenlabs_src_stop (GstBaseSrc *bsrc)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (bsrc);
  ElSynth *synth;

  GST_OBJECT_LOCK (self);
  synth = g_steal_pointer (&self->synth);
  self->running = FALSE;
  GST_OBJECT_UNLOCK (self);
  if (synth)
    el_synth_free (synth);

  PLAYOUT_LOCK (self);
  g_clear_pointer (&self->playout, el_playout_free);
  PLAYOUT_UNLOCK (self);
  /* What the sink queued for this run is stale now. */
  gst_voice_queue_clear (queue_to_src (self));
  return TRUE;
}

static gboolean
gst_elevenlabs_src_speak (GstElevenLabsSrc *self, const gchar *text)
{
  gboolean running;

  if (text == NULL || *text == '\0')
    return FALSE;
  GST_OBJECT_LOCK (self);
  running = self->running;
  if (!running)
    g_queue_push_tail (&self->pending_speak, g_strdup (text));
  GST_OBJECT_UNLOCK (self);
  return running ? speak_now (self, text) : TRUE;
}

/* ---- Caps and latency ---- */

static GstCaps *
make_caps (guint rate)
{
  return gst_caps_new_simple ("audio/x-raw", "format", G_TYPE_STRING, "S16LE",
      "layout", G_TYPE_STRING, "interleaved", "channels", G_TYPE_INT, 1, "rate",
      G_TYPE_INT, (gint)rate, NULL);
}

static guint
current_rate (GstElevenLabsSrc *self)
{
  guint rate;

  PLAYOUT_LOCK (self);
  rate = self->playout ? el_playout_get_rate (self->playout) : 0;
  PLAYOUT_UNLOCK (self);
  if (rate == 0) {
    GST_OBJECT_LOCK (self);
    rate = el_output_format_rate (self->config.synth.format);
    GST_OBJECT_UNLOCK (self);
  }
  return rate;
}

static GstCaps *
gst_elevenlabs_src_get_caps (GstBaseSrc *bsrc, GstCaps *filter)
{
  GstCaps *caps = make_caps (current_rate (GST_ELEVENLABS_SRC (bsrc)));

  if (filter) {
    GstCaps *tmp =
        gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = tmp;
  }
  return caps;
}

static GstClockTime
period (GstElevenLabsSrc *self)
{
  GstClockTime p;

  GST_OBJECT_LOCK (self);
  p = (GstClockTime)self->buffer_ms * GST_MSECOND;
  GST_OBJECT_UNLOCK (self);
  return p;
}

static gboolean
gst_elevenlabs_src_query (GstBaseSrc *bsrc, GstQuery *query)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (bsrc);

  if (GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* A buffer is pushed when the clock reaches its start: downstream must
     * allow one period to take it. Nothing is lost if it waits longer. */
    gst_query_set_latency (query, TRUE, period (self), GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return GST_BASE_SRC_CLASS (parent_class)->query (bsrc, query);
}

/* ---- Pacing ---- */

static gboolean
gst_elevenlabs_src_unlock (GstBaseSrc *bsrc)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (bsrc);

  GST_OBJECT_LOCK (self);
  self->unlocked = TRUE;
  if (self->clock_id)
    gst_clock_id_unschedule (self->clock_id);
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static gboolean
gst_elevenlabs_src_unlock_stop (GstBaseSrc *bsrc)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (bsrc);

  GST_OBJECT_LOCK (self);
  self->unlocked = FALSE;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

/* Running time of the clock now, or NONE without a clock. */
static GstClockTime
running_time_now (GstElevenLabsSrc *self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  GstClockTime now, base;

  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  now = gst_clock_get_time (clock);
  base = gst_element_get_base_time (GST_ELEMENT (self));
  gst_object_unref (clock);
  return now > base ? now - base : 0;
}

/* Waits until the clock reaches @running_time. Returns FALSE if unlocked
 * (flush or pause). */
static gboolean
wait_until (GstElevenLabsSrc *self, GstClockTime running_time)
{
  GstClock *clock;
  GstClockID id;
  GstClockReturn ret;

  GST_OBJECT_LOCK (self);
  if (self->unlocked) {
    GST_OBJECT_UNLOCK (self);
    return FALSE;
  }
  clock = GST_ELEMENT_CLOCK (self);
  if (clock == NULL) {
    GST_OBJECT_UNLOCK (self);
    return TRUE;
  }
  id = gst_clock_new_single_shot_id (
      clock, GST_ELEMENT_CAST (self)->base_time + running_time);
  self->clock_id = id;
  GST_OBJECT_UNLOCK (self);

  ret = gst_clock_id_wait (id, NULL);

  GST_OBJECT_LOCK (self);
  self->clock_id = NULL;
  GST_OBJECT_UNLOCK (self);
  gst_clock_id_unref (id);
  return ret != GST_CLOCK_UNSCHEDULED;
}

/* ---- Draining the session queue ---- */

/* What one drain found; a local of the streaming thread. */
typedef struct
{
  GArray *notes; /* of ElNote */
  GQueue forward; /* of GstEvent*, to push downstream */
  GQueue acted; /* of GstEvent*, barge-ins acted on */
  GQueue paused; /* of GstEvent*, agent-pause / agent-resume acted on */
  guint rate; /* 0, or a new rate */
} Drained;

/* agent-pause and agent-resume: honoured unless interruption=none. */
static gboolean
is_pause_event (GstElevenLabsInterruption mode, GstEvent *event)
{
  GstVoiceEventType type = gst_voice_event_get_voice_type (event);

  return mode != GST_ELEVENLABS_INTERRUPTION_NONE &&
      (type == GST_VOICE_EVENT_PAUSE || type == GST_VOICE_EVENT_RESUME);
}

/* Moves what the network side queued into the playout buffer. Call with
 * PLAYOUT_LOCK held. */
static void
drain_queue_locked (
    GstElevenLabsSrc *self, GstElevenLabsInterruption mode, Drained *out)
{
  GstVoiceQueue *q = queue_to_src (self);
  GstMiniObject *item;

  while ((item = gst_voice_queue_try_pop (q))) {
    GstEvent *event;
    const GstStructure *s;

    if (GST_IS_BUFFER (item) ||
        (GST_IS_EVENT (item) && GST_EVENT_TYPE (item) == GST_EVENT_EOS)) {
      el_playout_push (self->playout, item);
      continue;
    }
    if (!GST_IS_EVENT (item)) {
      gst_mini_object_unref (item);
      continue;
    }
    event = GST_EVENT (item);
    s = gst_event_get_structure (event);
    if (s && gst_structure_has_name (s, EL_EVENT_FORMAT)) {
      gint rate = 0;
      if (gst_structure_get_int (s, "rate", &rate) && rate > 0 &&
          (guint)rate != el_playout_get_rate (self->playout)) {
        el_playout_set_rate (self->playout, (guint)rate);
        out->rate = (guint)rate;
      }
      gst_event_unref (event);
    } else if (s && gst_structure_has_name (s, EL_EVENT_TURN_END)) {
      el_playout_push (self->playout, item);
    } else if (is_pause_event (mode, event)) {
      if (el_playout_set_paused (self->playout,
              gst_voice_event_get_voice_type (event) == GST_VOICE_EVENT_PAUSE))
        g_queue_push_tail (&out->paused, gst_event_ref (event));
      g_queue_push_tail (&out->forward, event);
    } else if (el_config_is_barge_in (mode, event)) {
      el_playout_interrupt (self->playout, out->notes);
      g_queue_push_tail (&out->acted, gst_event_ref (event));
      g_queue_push_tail (&out->forward, event);
    } else if (gst_voice_event_get_voice_type (event) != GST_VOICE_EVENT_NONE) {
      g_queue_push_tail (&out->forward, event);
    } else {
      gst_event_unref (event);
    }
  }
}

/* ---- Reporting ---- */

static void
post (GstElevenLabsSrc *self, GstStructure *s)
{
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

static GstStructure *
note_structure (const ElNote *note, const gchar *event, GstClockTime rt)
{
  return gst_structure_new ("elevenlabssrc", "event", G_TYPE_STRING, event,
      "turn", G_TYPE_UINT, note->turn, "own", G_TYPE_BOOLEAN, note->own,
      "running-time", G_TYPE_UINT64, (guint64)rt, "wallclock", G_TYPE_INT64,
      g_get_monotonic_time (), NULL);
}

/* Tells the sink half (and so llmtransform) what the caller heard. */
static void
send_spoken (GstElevenLabsSrc *self, const ElNote *note, GstClockTime rt)
{
  GstEvent *event;
  GstStructure *s;

  if (note->own)
    return; /* our own speech has no sink half to report to */
  event = gst_voice_event_new_spoken (
      rt, note->turn, note->spoken ? note->spoken : "", note->complete);
  s = gst_voice_event_to_message_structure (event, "elevenlabssrc", "sent");
  post (self, s);
  gst_voice_session_push_upstream (self->session, event);
}

static void
post_stopped (
    GstElevenLabsSrc *self, const ElNote *note, GstClockTime rt, guint rate)
{
  GstClockTime duration =
      gst_util_uint64_scale (note->samples, GST_SECOND, rate);
  GstStructure *s = note_structure (note, "agent-speaking-stopped", rt);

  gst_structure_set (s, "interrupted", G_TYPE_BOOLEAN, !note->complete,
      "spoken-text", G_TYPE_STRING, note->spoken ? note->spoken : "",
      "audio-duration", G_TYPE_UINT64, (guint64)duration, "audio-seconds",
      G_TYPE_DOUBLE, (gdouble)duration / GST_SECOND, "characters", G_TYPE_UINT,
      note->characters, "ttfb", G_TYPE_UINT64, (guint64)note->ttfb, "underruns",
      G_TYPE_UINT, note->underruns, NULL);
  post (self, s);
}

/* Posts what @notes say happened in the buffer starting at @pts. Returns
 * TRUE if the stream ended (EOS, or the own speech is done). */
static gboolean
report (GstElevenLabsSrc *self, GArray *notes, GstClockTime pts, guint rate)
{
  gboolean eos = FALSE;
  gboolean own_done = FALSE;

  for (guint i = 0; i < notes->len; i++) {
    ElNote *note = &g_array_index (notes, ElNote, i);
    GstClockTime rt =
        pts + gst_util_uint64_scale (note->offset, GST_SECOND, rate);
    GstStructure *s;

    switch (note->type) {
      case EL_NOTE_STARTED:
        s = note_structure (note, "agent-speaking-started", rt);
        gst_structure_set (s, "latency", G_TYPE_UINT64,
            (guint64)(g_get_monotonic_time () - note->received_us) *
                GST_USECOND,
            NULL);
        post (self, s);
        break;
      case EL_NOTE_STOPPED:
      case EL_NOTE_DROPPED:
        if (note->samples > 0)
          post_stopped (self, note, rt, rate);
        send_spoken (self, note, rt);
        if (note->own) {
          GST_OBJECT_LOCK (self);
          if (self->own_pending > 0)
            self->own_pending--;
          own_done =
              self->eos_after_text && self->own_any && self->own_pending == 0;
          GST_OBJECT_UNLOCK (self);
        }
        break;
      case EL_NOTE_UNDERRUN:
        s = note_structure (note, "underrun", rt);
        gst_structure_set (s, "underruns", G_TYPE_UINT, note->underruns, NULL);
        post (self, s);
        break;
      case EL_NOTE_EOS:
        eos = TRUE;
        break;
    }
  }
  return eos || own_done;
}

static void
post_acted (GstElevenLabsSrc *self, GstEvent *event)
{
  GstStructure *s =
      gst_voice_event_to_message_structure (event, "elevenlabssrc", "acted");

  if (s)
    post (self, s);
}

/* Barge-in on the own connection too: its audio would come back. */
static void
interrupt_own (GstElevenLabsSrc *self)
{
  ElSynth *synth;

  GST_OBJECT_LOCK (self);
  synth = self->synth ? el_synth_ref (self->synth) : NULL;
  GST_OBJECT_UNLOCK (self);
  if (synth) {
    el_synth_interrupt (synth, NULL);
    el_synth_unref (synth);
  }
}

/* An application may send the barge-in events to this element directly. */
static gboolean
gst_elevenlabs_src_send_event (GstElement *element, GstEvent *event)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (element);
  GstElevenLabsInterruption mode;
  GArray *notes;
  GstClockTime rt;

  GST_OBJECT_LOCK (self);
  mode = self->config.interruption;
  GST_OBJECT_UNLOCK (self);
  if (!el_config_is_barge_in (mode, event))
    return GST_ELEMENT_CLASS (parent_class)->send_event (element, event);

  notes = el_notes_new ();
  PLAYOUT_LOCK (self);
  if (self->playout)
    el_playout_interrupt (self->playout, notes);
  PLAYOUT_UNLOCK (self);
  interrupt_own (self);
  post_acted (self, event);
  rt = running_time_now (self);
  report (
      self, notes, GST_CLOCK_TIME_IS_VALID (rt) ? rt : 0, current_rate (self));
  g_array_unref (notes);
  gst_event_unref (event);
  return TRUE;
}

/* ---- Producing buffers ---- */

/* Renegotiates when the sink half announced another rate. */
static gboolean
set_rate (GstElevenLabsSrc *self, guint rate, GstClockTime next_ts)
{
  GstCaps *caps = make_caps (rate);
  gboolean ok = gst_base_src_set_caps (GST_BASE_SRC (self), caps);

  gst_caps_unref (caps);
  GST_INFO_OBJECT (self, "rate %u", rate);
  self->rate = rate;
  self->ts_base = next_ts;
  self->samples_out = 0;
  return ok;
}

static GstClockTime
next_timestamp (GstElevenLabsSrc *self)
{
  return self->ts_base +
      gst_util_uint64_scale (self->samples_out, GST_SECOND, self->rate);
}

/* A buffer of @n samples read from the playout. Call with PLAYOUT_LOCK
 * held. */
static GstBuffer *
fill_buffer_locked (GstElevenLabsSrc *self, guint n, GArray *notes)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, (gsize)n * 2, NULL);
  GstMapInfo map;
  gint16 *samples;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  samples = (gint16 *)map.data;
  el_playout_read (self->playout, samples, n, notes);
  for (guint i = 0; i < n; i++)
    samples[i] = GINT16_TO_LE (samples[i]);
  gst_buffer_unmap (buf, &map);
  return buf;
}

static GstFlowReturn
gst_elevenlabs_src_create (GstPushSrc *psrc, GstBuffer **outbuf)
{
  GstElevenLabsSrc *self = GST_ELEVENLABS_SRC (psrc);
  Drained d = { 0 };
  GstElevenLabsInterruption mode;
  GstClockTime pts, dur;
  GstEvent *event;
  GstBuffer *buf;
  guint n, buffer_ms;
  gboolean ended;

  if (self->eos_next)
    return GST_FLOW_EOS;
  if (self->rate == 0 && !set_rate (self, current_rate (self), 0))
    return GST_FLOW_NOT_NEGOTIATED;
  if (!self->started) {
    GstClockTime now = running_time_now (self);
    self->ts_base = GST_CLOCK_TIME_IS_VALID (now) ? now : 0;
    self->samples_out = 0;
    self->started = TRUE;
  }

  pts = next_timestamp (self);
  if (!wait_until (self, pts) && GST_PAD_IS_FLUSHING (GST_BASE_SRC_PAD (self)))
    return GST_FLOW_FLUSHING;
  /* On a pause the buffer is made now and pushed once playing again. */

  GST_OBJECT_LOCK (self);
  mode = self->config.interruption;
  buffer_ms = self->buffer_ms;
  GST_OBJECT_UNLOCK (self);

  d.notes = el_notes_new ();
  g_queue_init (&d.forward);
  g_queue_init (&d.acted);
  g_queue_init (&d.paused);
  PLAYOUT_LOCK (self);
  drain_queue_locked (self, mode, &d);
  PLAYOUT_UNLOCK (self);
  if (d.rate && d.rate != self->rate)
    set_rate (self, d.rate, pts);

  n = self->rate * buffer_ms / 1000;
  PLAYOUT_LOCK (self);
  buf = fill_buffer_locked (self, n, d.notes);
  PLAYOUT_UNLOCK (self);
  dur = gst_util_uint64_scale (n, GST_SECOND, self->rate);

  if (!g_queue_is_empty (&d.acted))
    interrupt_own (self);
  while ((event = g_queue_pop_head (&d.acted))) {
    post_acted (self, event);
    gst_event_unref (event);
  }
  while ((event = g_queue_pop_head (&d.paused))) {
    post_acted (self, event);
    gst_event_unref (event);
  }
  ended = report (self, d.notes, pts, self->rate);
  g_array_unref (d.notes);
  while ((event = g_queue_pop_head (&d.forward)))
    gst_pad_push_event (GST_BASE_SRC_PAD (self), event);

  GST_BUFFER_PTS (buf) = pts;
  GST_BUFFER_DURATION (buf) = dur;
  GST_BUFFER_OFFSET (buf) = self->offset;
  GST_BUFFER_OFFSET_END (buf) = self->offset + n;
  self->offset += n;
  self->samples_out += n;
  self->eos_next = ended;
  *outbuf = buf;
  return GST_FLOW_OK;
}

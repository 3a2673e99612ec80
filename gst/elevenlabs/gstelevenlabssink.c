/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-elevenlabssink
 * @title: elevenlabssink
 * @see_also: elevenlabssrc, elevenlabs
 *
 * The text half of ElevenLabs text-to-speech: takes the agent's text
 * (`text/x-raw,format=utf8`, usually from llmtransform) and streams it to
 * the ElevenLabs multi-context WebSocket; the audio that comes back is
 * played, at the pace of the clock, by the elevenlabssrc with the same
 * #GstElevenLabsSink:session (or use the `elevenlabs` bin, which holds
 * both). The element never waits on the network: text is queued, and all
 * network I/O runs on the shared voice I/O thread.
 *
 * Turns: a buffer's #GstVoiceTranscriptMeta gives its turn (text without
 * the meta belongs to one running turn; user text is ignored). Each turn
 * gets its own context of the one WebSocket. A turn ends, with `flush` so
 * its last words are spoken and `close_context`, when text of another turn
 * arrives, on a buffer whose meta has `speech_final`, at EOS, or when its
 * text has stopped for #GstElevenLabsSink:turn-timeout-ms.
 *
 * Barge-in: `interrupt`, and `speech-start` with
 * #GstElevenLabsSink:interruption=vad, close the contexts in progress at
 * once (audio still arriving for them is dropped), drop text that still
 * comes for the interrupted turn, and travel on to elevenlabssrc, which
 * silences the queued audio. The next turn opens a fresh context. Contexts
 * count until the service confirms them closed and never more than four
 * are open: ElevenLabs closes a socket that opens a fifth, which rapid
 * barge-ins trip in other frameworks.
 *
 * The socket is kept open between turns (keep-alives at half of
 * #GstElevenLabsSink:inactivity-timeout-ms) and re-opened when it drops; after
 * an error frame (invalid input, timeouts) the element reconnects and
 * re-sends the text of the current turn that had not been spoken yet (the
 * alignment data tell which). #GstElevenLabsSink:protocol=http uses HTTP
 * streaming instead, one request per sentence.
 *
 * Upstream, the `spoken` event elevenlabssrc sends when a turn ends or is
 * interrupted (fields `text`, what the caller heard, and `complete`) leaves
 * this element's sink pad for llmtransform's history.
 *
 * Element messages named `elevenlabssink`, with `event` (string) and
 * `wallclock` (gint64, g_get_monotonic_time()):
 *
 * - `connected`: the WebSocket is open; `reconnected`: open again after a
 *   drop or an error frame, `resent-characters` (guint) says how much of
 *   the unfinished turns' text was sent again
 * - `disconnected`: `code` (guint), `reason` (string), `will-retry`
 *   (gboolean)
 * - `connect-failed`: `http-status` (guint), `error` (string),
 *   `will-retry` (gboolean)
 * - `error-frame`: `error` (string, e.g. `input_timeout_exceeded`),
 *   `message` (string), `turn` (guint)
 * - `invalid-frame`: `size` (guint64): a message that is not JSON, ignored
 * - `http-error`: `http-status` (guint), `error` (string), `turn` (guint)
 * - `context-opened`: `context-id` (string), `open` (guint, contexts open
 *   on the socket now, this one included; never more than four)
 * - `first-audio`: `turn` (guint), `ttfb` (guint64 ns: from the moment
 *   the turn's text became speakable, i.e. its first complete sentence
 *   (auto-mode) or the flush at its end left for the service, to its first
 *   audio byte)
 * - `turn-sent`: `turn`, `characters` (guint): the turn's end was sent
 * - `turn-done`: `turn`, `characters` (guint, billed, re-sends included):
 *   all its audio arrived
 * - `turn-cancelled`: `turn`, `characters`: interrupted
 * - for each conversation event: the fields of
 *   gst_voice_event_to_message_structure() with `action` `acted` (it
 *   stopped the agent; `cancelled` (gboolean) says whether a turn was in
 *   progress) or `forwarded`; `spoken` events going upstream are
 *   `forwarded` too.
 *
 * Errors: a rejected key (HTTP 401 or an `invalid_api_key` frame) is a
 * `RESOURCE/NOT_AUTHORIZED` error naming `ELEVENLABS_API_KEY`; a refused
 * handshake (voice or model not found, bad format) is `RESOURCE/OPEN_READ`.
 *
 * ## Example launch line
 * |[
 * echo "Hello there, how can I help?" | gst-launch-1.0 -m fdsrc ! text/x-raw,format=utf8 ! elevenlabssink elevenlabssrc ! audioconvert ! autoaudiosink
 * ]| Speaks a line of text and ends (with ELEVENLABS_API_KEY set).
 * |[
 * voiceagent-emulator --port 8790 &
 * echo "Hello there." | gst-launch-1.0 fdsrc ! text/x-raw,format=utf8 ! elevenlabssink url=ws://127.0.0.1:8790 api-key=any elevenlabssrc ! audioconvert ! autoaudiosink
 * ]| The same against the local emulator, with no account.
 */

/* Locking order: OBJECT_LOCK is this element's only lock. Under it only
 * gst/voice's redaction lock is taken (the api-key property and
 * el_synth_new() register the key). The session registry and a session's
 * own lock (gst_voice_session_*) and the synth's lock (el_synth_*) are
 * always taken without it, so none of them nests with OBJECT_LOCK in
 * either direction. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstelevenlabssink.h"
#include "options.h"
#include "pair.h"
#include "synth.h"

#include <voice.h>

GST_DEBUG_CATEGORY_STATIC (gst_elevenlabs_sink_debug);
#define GST_CAT_DEFAULT gst_elevenlabs_sink_debug

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

enum {
  PROP_TURN_TIMEOUT_MS = EL_PROP_LAST,
};

#define DEFAULT_TURN_TIMEOUT_MS EL_DEFAULT_TURN_TIMEOUT_MS

struct _GstElevenLabsSink
{
  GstBaseSink parent;

  ElConfig config; /* protected by OBJECT_LOCK */
  guint turn_timeout_ms; /* protected by OBJECT_LOCK */

  /* Written under OBJECT_LOCK by gst_voice_pair_join/leave (NULL→READY,
   * READY→NULL); between start and stop it cannot change and is read
   * without a lock. */
  GstVoiceSession *session;
  /* protected by OBJECT_LOCK; set by start, stolen by stop; other threads
   * take a reference under the lock (get_synth) and use it outside. */
  ElSynth *synth;

  guint implicit_turn; /* streaming thread only: turn of text without meta */
};

#define gst_elevenlabs_sink_parent_class parent_class
G_DEFINE_TYPE (GstElevenLabsSink, gst_elevenlabs_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE (
    elevenlabssink, "elevenlabssink", GST_RANK_NONE, GST_TYPE_ELEVENLABS_SINK);

static void gst_elevenlabs_sink_finalize (GObject *object);
static void gst_elevenlabs_sink_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_elevenlabs_sink_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_elevenlabs_sink_change_state (
    GstElement *element, GstStateChange transition);
static gboolean gst_elevenlabs_sink_start (GstBaseSink *bsink);
static gboolean gst_elevenlabs_sink_stop (GstBaseSink *bsink);
static GstFlowReturn gst_elevenlabs_sink_render (
    GstBaseSink *bsink, GstBuffer *buffer);
static gboolean gst_elevenlabs_sink_event (GstBaseSink *bsink, GstEvent *event);

static void
gst_elevenlabs_sink_class_init (GstElevenLabsSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *basesink_class = GST_BASE_SINK_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_elevenlabs_sink_debug, "elevenlabssink", 0,
      "ElevenLabs text-to-speech, text half");

  gobject_class->finalize = gst_elevenlabs_sink_finalize;
  gobject_class->set_property = gst_elevenlabs_sink_set_property;
  gobject_class->get_property = gst_elevenlabs_sink_get_property;

  el_config_install_properties (gobject_class);
  g_object_class_install_property (
      gobject_class, PROP_TURN_TIMEOUT_MS, el_pspec_turn_timeout_ms ());

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class,
      "ElevenLabs text-to-speech (text in)", "Sink/Text/Network",
      "Streams text to ElevenLabs' multi-context WebSocket; the paired "
      "elevenlabssrc plays the speech",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "echo \"Hello there.\" | gst-launch-1.0 fdsrc ! text/x-raw,format=utf8 "
      "! elevenlabssink elevenlabssrc ! audioconvert ! autoaudiosink");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_elevenlabs_sink_change_state);
  basesink_class->start = GST_DEBUG_FUNCPTR (gst_elevenlabs_sink_start);
  basesink_class->stop = GST_DEBUG_FUNCPTR (gst_elevenlabs_sink_stop);
  basesink_class->render = GST_DEBUG_FUNCPTR (gst_elevenlabs_sink_render);
  basesink_class->event = GST_DEBUG_FUNCPTR (gst_elevenlabs_sink_event);
}

static void
gst_elevenlabs_sink_init (GstElevenLabsSink *self)
{
  el_config_init (&self->config);
  self->turn_timeout_ms = DEFAULT_TURN_TIMEOUT_MS;
  /* Text goes out as soon as it comes: no clock sync, no preroll wait (a
   * conversation may be silent for minutes). */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
  gst_base_sink_set_async_enabled (GST_BASE_SINK (self), FALSE);
}

static void
gst_elevenlabs_sink_finalize (GObject *object)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (object);

  el_config_clear (&self->config);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_elevenlabs_sink_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (object);

  GST_OBJECT_LOCK (self);
  if (prop_id == EL_PROP_SESSION && self->session) {
    GST_OBJECT_UNLOCK (self);
    g_warning ("elevenlabssink: session can only be set in the NULL state");
    return;
  }
  if (prop_id == PROP_TURN_TIMEOUT_MS)
    self->turn_timeout_ms = g_value_get_uint (value);
  else if (!el_config_set_property_locked (
               &self->config, object, prop_id, value, pspec))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

static void
gst_elevenlabs_sink_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (object);

  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_TURN_TIMEOUT_MS)
    g_value_set_uint (value, self->turn_timeout_ms);
  else if (!el_config_get_property_locked (&self->config, prop_id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

/* ---- Session and state ---- */

static const GstVoicePairInfo pair_info = {
  .kind = EL_SESSION_KIND,
  .name_offset = G_STRUCT_OFFSET (GstElevenLabsSink, config.session),
  .session_offset = G_STRUCT_OFFSET (GstElevenLabsSink, session),
};

static GstStateChangeReturn
gst_elevenlabs_sink_change_state (
    GstElement *element, GstStateChange transition)
{
  return gst_voice_pair_change_state (
      element, transition, &pair_info, GST_ELEMENT_CLASS (parent_class));
}

/* The synth, with a reference, or NULL when stopped. */
static ElSynth *
get_synth (GstElevenLabsSink *self)
{
  ElSynth *s;

  GST_OBJECT_LOCK (self);
  s = self->synth ? el_synth_ref (self->synth) : NULL;
  GST_OBJECT_UNLOCK (self);
  return s;
}

/* (elevenlabssrc's streaming thread) Forwards what the src half sends back
 * (`spoken`) upstream. The src's thread runs while the agent speaks; this
 * element's own streaming thread may be idle for minutes, and a thread of
 * its own just for this cost one per call. */
static void
forward_upstream (GstPad *pad, GstEvent *event)
{
  GstElement *self = gst_pad_get_parent_element (pad);
  GstStructure *s;

  if (self == NULL) {
    gst_event_unref (event);
    return;
  }
  s = gst_voice_event_to_message_structure (
      event, "elevenlabssink", "forwarded");
  if (s)
    gst_element_post_message (
        self, gst_message_new_element (GST_OBJECT (self), s));
  gst_pad_push_event (pad, event);
  gst_object_unref (self);
}

static gboolean
gst_elevenlabs_sink_start (GstBaseSink *bsink)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (bsink);
  GstVoiceQueue *to_src;
  ElSynth *synth = NULL;
  GError *error = NULL;
  guint rate;

  GST_OBJECT_LOCK (self);
  to_src =
      gst_voice_session_get_queue (self->session, GST_VOICE_SESSION_TO_SRC);
  if (el_config_validate_locked (&self->config, &error)) {
    self->config.synth.turn_timeout_ms = self->turn_timeout_ms;
    synth = el_synth_new (GST_ELEMENT (self), "elevenlabssink",
        &self->config.synth, to_src, FALSE);
    self->synth = el_synth_ref (synth);
  }
  rate = el_output_format_rate (self->config.synth.format);
  GST_OBJECT_UNLOCK (self);
  if (synth == NULL) {
    el_config_post_error (GST_ELEMENT (self), error);
    g_error_free (error);
    return FALSE;
  }

  /* The src half learns the rate before any audio. */
  gst_voice_queue_push_force (
      to_src, GST_MINI_OBJECT (el_format_event_new (rate)));
  self->implicit_turn = 1;
  el_synth_start (synth);
  el_synth_unref (synth);
  gst_voice_session_set_upstream (
      self->session, GST_BASE_SINK_PAD (self), forward_upstream);
  return TRUE;
}

static gboolean
gst_elevenlabs_sink_stop (GstBaseSink *bsink)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (bsink);
  ElSynth *synth;

  GST_OBJECT_LOCK (self);
  synth = g_steal_pointer (&self->synth);
  GST_OBJECT_UNLOCK (self);
  if (synth)
    el_synth_free (synth);
  gst_voice_session_set_upstream (self->session, NULL, NULL);
  return TRUE;
}

/* ---- Text ---- */

static GstFlowReturn
gst_elevenlabs_sink_render (GstBaseSink *bsink, GstBuffer *buffer)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (bsink);
  GstVoiceTranscriptMeta *meta = gst_buffer_get_voice_transcript_meta (buffer);
  ElSynth *synth;
  GstMapInfo map;
  gchar *text;
  guint turn;
  GstFlowReturn ret = GST_FLOW_OK;

  if (meta && meta->role == GST_VOICE_ROLE_USER) {
    GST_LOG_OBJECT (self, "ignoring the caller's text");
    return GST_FLOW_OK;
  }
  synth = get_synth (self);
  if (synth == NULL)
    return GST_FLOW_FLUSHING;
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ)) {
    el_synth_unref (synth);
    return GST_FLOW_ERROR;
  }
  /* An empty buffer may just mark the end of a reply (speech_final). */
  text = map.size
      ? g_utf8_make_valid ((const gchar *)map.data, (gssize)map.size)
      : g_strdup ("");
  gst_buffer_unmap (buffer, &map);

  turn = meta ? meta->turn : self->implicit_turn;
  GST_DEBUG_OBJECT (self, "turn %u: \"%s\"", turn, text);
  el_synth_push_text (synth, turn, text);
  if (meta && meta->speech_final)
    el_synth_end_turn (synth, turn);
  if (el_synth_has_failed (synth))
    ret = GST_FLOW_ERROR;
  g_free (text);
  el_synth_unref (synth);
  return ret;
}

/* ---- Events ---- */

static void
post_event_message (GstElevenLabsSink *self, GstEvent *event,
    const gchar *action, gboolean cancelled)
{
  GstStructure *s =
      gst_voice_event_to_message_structure (event, "elevenlabssink", action);

  if (s == NULL)
    return;
  if (g_str_equal (action, "acted"))
    gst_structure_set (s, "cancelled", G_TYPE_BOOLEAN, cancelled, NULL);
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* Conversation events: barge-in is acted on here and passed to the src
 * half, which silences what it queued; the others just travel on. */
static gboolean
handle_voice_event (GstElevenLabsSink *self, ElSynth *synth, GstEvent *event)
{
  GstElevenLabsInterruption mode;

  GST_OBJECT_LOCK (self);
  mode = self->config.interruption;
  GST_OBJECT_UNLOCK (self);

  if (el_config_is_barge_in (mode, event)) {
    gboolean cancelled = el_synth_interrupt (synth, gst_event_ref (event));
    post_event_message (self, event, "acted", cancelled);
    GST_DEBUG_OBJECT (self, "barge-in (%s): %s",
        gst_voice_event_type_get_name (gst_voice_event_get_voice_type (event)),
        cancelled ? "turn cancelled" : "nothing in progress");
    if (cancelled)
      self->implicit_turn++;
  } else {
    post_event_message (self, event, "forwarded", FALSE);
    el_synth_forward (synth, gst_event_ref (event));
  }
  gst_event_unref (event);
  return TRUE;
}

static gboolean
gst_elevenlabs_sink_event (GstBaseSink *bsink, GstEvent *event)
{
  GstElevenLabsSink *self = GST_ELEVENLABS_SINK (bsink);
  ElSynth *synth;
  gboolean ret;

  if (gst_voice_event_get_voice_type (event) != GST_VOICE_EVENT_NONE) {
    synth = get_synth (self);
    if (synth == NULL) {
      gst_event_unref (event);
      return FALSE;
    }
    ret = handle_voice_event (self, synth, event);
    el_synth_unref (synth);
    return ret;
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
    synth = get_synth (self);
    if (synth) {
      el_synth_eos (synth);
      el_synth_unref (synth);
    }
  }
  return GST_BASE_SINK_CLASS (parent_class)->event (bsink, event);
}

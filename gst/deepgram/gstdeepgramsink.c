/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-deepgramsink
 * @title: deepgramsink
 * @see_also: deepgramsrc, deepgram, silerovad
 *
 * Streams audio to Deepgram's live speech-to-text WebSocket
 * (`/v1/listen`); its partner #deepgramsrc, paired by the `session`
 * property, pushes the transcripts. The `deepgram` bin wraps the pair.
 *
 * The streaming thread only queues audio: the WebSocket runs on the shared
 * voice I/O thread. What the network cannot take yet waits, bounded by
 * #GstDeepgramSink:max-backlog-ms; beyond that the oldest audio is dropped
 * and a warning posted, never blocking the pipeline.
 *
 * Cost control with `silerovad gate=true`: while the VAD sends GAP events no
 * audio goes out, only a `KeepAlive` every 5 s; on `speech-stop` the sink
 * sends `Finalize`, so the final transcript arrives without waiting for
 * Deepgram's own endpointing; on EOS it sends `CloseStream` and its partner
 * pushes EOS once the last results and Metadata arrived (or once Deepgram
 * has been silent for 10 s after EOS; 60 s at most).
 *
 * A dropped or stalled connection (including Deepgram's 1011 NET-0001 idle
 * timeout) is re-opened with exponential backoff. Audio since the last final
 * result is kept and sent again on the new connection, and Deepgram's times
 * (seconds of audio received on a connection) are mapped back to the
 * pipeline's running time across connections and gaps: a drop in
 * mid-sentence loses no words.
 *
 * The conversation events `speech-start`, `speech-stop` and `interrupt` are
 * forwarded, in order with the results, to the partner deepgramsrc.
 *
 * ## Bus messages
 *
 * - `deepgramsink` (for each conversation event it receives): the event's
 *   fields plus `event`, `action` ("acted" for speech-stop, which sends
 *   Finalize; "received" for the others) and `wallclock`.
 * - `deepgram-connection`: `event` (string: "opened", "closed",
 *   "connect-failed", "stalled"), `reconnected` (boolean), `reconnects`
 *   (uint), `code` (uint, close code or HTTP status), `reason` (string),
 *   `will-retry` (boolean).
 * - `deepgram-backlog`: `event` ("dropping" when the backlog overflowed,
 *   "recovered" once it drained), `dropped-ms` (uint64, audio dropped in
 *   this episode), `backlog-ms` (uint64).
 * - `deepgram-speech-started` (vad-events=true): `running-time` (uint64).
 * - `deepgram-usage`: `audio-seconds` (double, audio sent, re-sent audio
 *   included: what Deepgram bills), `connections` (uint), `request-id`
 *   (string, of the last connection), `final` (boolean, TRUE when the
 *   element stops). Posted on every Metadata, at EOS and when stopping.
 *
 * ## Errors
 *
 * - HTTP 401/403: `RESOURCE/NOT_AUTHORIZED` "Deepgram rejected the API key:
 *   set DEEPGRAM_API_KEY or api-key".
 * - HTTP 400: `RESOURCE/SETTINGS` with Deepgram's own message (a bad model,
 *   language or extra parameter).
 * - Close 1008 DATA-0000: `STREAM/FORMAT`, Deepgram could not decode the
 *   audio: the message names the caps sent.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav ! wavparse \
 *   ! deepgramsink url=ws://127.0.0.1:8790/v1/listen api-key=local  deepgramsrc ! fakesink
 * ]| Transcribes a sentence with voiceagent-emulator (started on its default
 * port, from the source tree) and prints the transcript messages.
 * |[
 * gst-launch-1.0 -m autoaudiosrc ! audioconvert ! audioresample \
 *   ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! deepgramsink  deepgramsrc ! fakesink
 * ]| Transcribes the microphone with Deepgram (DEEPGRAM_API_KEY set).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "deepgramsink-private.h"

GST_DEBUG_CATEGORY (deepgram_sink_debug);

#define DEFAULT_SESSION "default"

#define CONNECT_TIMEOUT_MS 5000
#define BACKOFF_INITIAL_MS 250
#define BACKOFF_MAX_MS 5000
/* No progress on the socket for this long with data waiting: re-open. */
#define STALL_TIMEOUT_MS 2000

/* Results the partner src has not read yet, at most. */
#define MAX_UNREAD 10000

enum {
  PROP_0,
  PROP_SESSION,
  PROP_OPTIONS_FIRST,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) S16LE, "
                     "layout = (string) interleaved, "
                     "rate = (int) [ 8000, 48000 ], channels = (int) 1; "
                     "audio/x-mulaw, rate = (int) 8000, channels = (int) 1"));

#define gst_deepgram_sink_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstDeepgramSink, gst_deepgram_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (deepgramsink, "deepgramsink",
    GST_RANK_NONE, GST_TYPE_DEEPGRAM_SINK, gst_voice_init ());

static void gst_deepgram_sink_finalize (GObject *object);
static void gst_deepgram_sink_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_deepgram_sink_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static GstStateChangeReturn gst_deepgram_sink_change_state (
    GstElement *element, GstStateChange transition);
static gboolean gst_deepgram_sink_set_caps (GstBaseSink *bsink, GstCaps *caps);
static gboolean gst_deepgram_sink_start (GstBaseSink *bsink);
static gboolean gst_deepgram_sink_stop (GstBaseSink *bsink);
static GstFlowReturn gst_deepgram_sink_render (
    GstBaseSink *bsink, GstBuffer *buffer);
static gboolean gst_deepgram_sink_event (GstBaseSink *bsink, GstEvent *event);

static void
gst_deepgram_sink_class_init (GstDeepgramSinkClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *bsink_class = GST_BASE_SINK_CLASS (klass);

  gobject_class->finalize = gst_deepgram_sink_finalize;
  gobject_class->set_property = gst_deepgram_sink_set_property;
  gobject_class->get_property = gst_deepgram_sink_get_property;

  /**
   * GstDeepgramSink:session:
   *
   * Pairs this sink with the deepgramsrc of the same session name in the
   * process, as intervideosink/intervideosrc pair by channel.
   */
  g_object_class_install_property (gobject_class, PROP_SESSION,
      g_param_spec_string ("session", "Session",
          "Name that pairs this sink with the deepgramsrc of the same "
          "session in this process",
          DEFAULT_SESSION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));
  dg_options_install (gobject_class, PROP_OPTIONS_FIRST);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_set_static_metadata (element_class,
      "Deepgram speech-to-text sink", "Sink/Audio/Network",
      "Streams audio to Deepgram live transcription; the paired deepgramsrc "
      "pushes the transcripts",
      "gst-voiceagent contributors");
  /* gst-inspect-1.0 prints every metadata key: the example shows there.
   * It runs as written with voiceagent-emulator listening on its default
   * port; without url= it goes to Deepgram with $DEEPGRAM_API_KEY. */
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav "
      "! wavparse ! deepgramsink url=ws://127.0.0.1:8790/v1/listen "
      "api-key=local deepgramsrc ! fakesink");

  element_class->change_state =
      GST_DEBUG_FUNCPTR (gst_deepgram_sink_change_state);
  bsink_class->set_caps = GST_DEBUG_FUNCPTR (gst_deepgram_sink_set_caps);
  bsink_class->start = GST_DEBUG_FUNCPTR (gst_deepgram_sink_start);
  bsink_class->stop = GST_DEBUG_FUNCPTR (gst_deepgram_sink_stop);
  bsink_class->render = GST_DEBUG_FUNCPTR (gst_deepgram_sink_render);
  bsink_class->event = GST_DEBUG_FUNCPTR (gst_deepgram_sink_event);

  GST_DEBUG_CATEGORY_INIT (
      deepgram_sink_debug, "deepgramsink", 0, "Deepgram speech-to-text sink");
}

static void
gst_deepgram_sink_init (GstDeepgramSink *self)
{
  g_mutex_init (&self->lock);
  self->session_name = g_strdup (DEFAULT_SESSION);
  dg_options_init (&self->opts);
  dg_options_init (&self->conf);
  /* Audio goes out the moment it arrives: waiting for the clock would add
   * the pipeline latency to every transcript. */
  gst_base_sink_set_sync (GST_BASE_SINK (self), FALSE);
  /* The partner src is live, so the pipeline does not preroll; a sink that
   * waited for preroll would hold a non-live upstream in PAUSED for good. */
  gst_base_sink_set_async_enabled (GST_BASE_SINK (self), FALSE);
}

static void
gst_deepgram_sink_finalize (GObject *object)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (object);

  dg_options_clear (&self->opts);
  dg_options_clear (&self->conf);
  g_free (self->session_name);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_deepgram_sink_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (object);

  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_SESSION) {
    g_free (self->session_name);
    self->session_name = g_value_dup_string (value);
    if (self->session_name == NULL)
      self->session_name = g_strdup (DEFAULT_SESSION);
  } else if (prop_id >= PROP_OPTIONS_FIRST &&
      prop_id < PROP_OPTIONS_FIRST + DG_OPT_COUNT) {
    dg_options_set (&self->opts, prop_id - PROP_OPTIONS_FIRST, value);
  } else {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_deepgram_sink_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (object);

  GST_OBJECT_LOCK (self);
  if (prop_id == PROP_SESSION)
    g_value_set_string (value, self->session_name);
  else if (prop_id >= PROP_OPTIONS_FIRST &&
      prop_id < PROP_OPTIONS_FIRST + DG_OPT_COUNT)
    dg_options_get (&self->opts, prop_id - PROP_OPTIONS_FIRST, value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  GST_OBJECT_UNLOCK (self);
}

/* ---- Pairing ---- */

static const GstVoicePairInfo pair_info = {
  .kind = DG_SESSION_KIND,
  .name_offset = G_STRUCT_OFFSET (GstDeepgramSink, session_name),
  .session_offset = G_STRUCT_OFFSET (GstDeepgramSink, session),
};

static GstStateChangeReturn
gst_deepgram_sink_change_state (GstElement *element, GstStateChange transition)
{
  return gst_voice_pair_change_state (
      element, transition, &pair_info, GST_ELEMENT_CLASS (parent_class));
}

/* Hands @obj (transfer full) to the partner src; dropped if it is flushing
 * or absent. */
void
to_partner (GstDeepgramSink *self, GstMiniObject *obj)
{
  if (!gst_voice_queue_push_force (
          gst_voice_session_get_queue (self->session, GST_VOICE_SESSION_TO_SRC),
          obj))
    GST_DEBUG_OBJECT (
        self, "partner not running, dropped %" GST_PTR_FORMAT, obj);
}

/* Upstream events the partner src received (e.g. `spoken`) continue
 * upstream from here. Streaming thread. */
static void
forward_upstream_events (GstDeepgramSink *self)
{
  GstMiniObject *obj;

  while ((obj = gst_voice_queue_try_pop (gst_voice_session_get_queue (
              self->session, GST_VOICE_SESSION_TO_SINK)))) {
    if (GST_IS_EVENT (obj))
      gst_pad_push_event (GST_BASE_SINK_PAD (self), GST_EVENT (obj));
    else
      gst_mini_object_unref (obj);
  }
}

/* ---- Bus messages ---- */

void
post_structure (GstDeepgramSink *self, GstStructure *s)
{
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

void
post_usage (GstDeepgramSink *self, gboolean final)
{
  gdouble seconds = 0;
  guint connections;
  gchar *request_id;

  g_mutex_lock (&self->lock);
  if (self->timeline)
    seconds = (gdouble)dg_timeline_get_sent_total (self->timeline) /
        dg_timeline_get_rate (self->timeline);
  connections = self->connections;
  request_id = g_strdup (self->request_id ? self->request_id : "");
  g_mutex_unlock (&self->lock);
  post_structure (self,
      gst_structure_new ("deepgram-usage", "audio-seconds", G_TYPE_DOUBLE,
          seconds, "connections", G_TYPE_UINT, connections, "request-id",
          G_TYPE_STRING, request_id, "final", G_TYPE_BOOLEAN, final, NULL));
  g_free (request_id);
}

/* ---- Start / caps / stop ---- */

static gboolean
gst_deepgram_sink_start (GstBaseSink *bsink)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (bsink);
  GstVoiceClientCallbacks callbacks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .connect_failed = on_connect_failed,
    .stalled = on_stalled,
  };
  static const gchar *const env_key[] = { "DEEPGRAM_API_KEY", NULL };
  gchar *key;

  GST_OBJECT_LOCK (self);
  dg_options_clear (&self->conf);
  dg_options_copy (&self->opts, &self->conf);
  GST_OBJECT_UNLOCK (self);

  key = gst_voice_api_key_resolve (self->conf.api_key, env_key);
  g_free (self->conf.api_key);
  self->conf.api_key = key;
  if (key == NULL) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_AUTHORIZED,
        ("No Deepgram API key: set DEEPGRAM_API_KEY or api-key"), (NULL));
    return FALSE;
  }

  self->client = gst_voice_client_new (GST_OBJECT_NAME (self));
  gst_voice_client_set_callbacks (self->client, &callbacks, self, NULL);
  gst_voice_client_set_connect_timeout (self->client, CONNECT_TIMEOUT_MS);
  gst_voice_client_set_backoff (
      self->client, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, 0);
  gst_voice_client_set_stall_timeout (self->client, STALL_TIMEOUT_MS);
  start_tick (self);
  return TRUE;
}

static gboolean
gst_deepgram_sink_set_caps (GstBaseSink *bsink, GstCaps *caps)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (bsink);
  GstStructure *s = gst_caps_get_structure (caps, 0);
  gboolean mulaw = gst_structure_has_name (s, "audio/x-mulaw");
  const gchar *encoding = mulaw ? "mulaw" : "linear16";
  guint bpf = mulaw ? 1 : 2;
  gint rate = 0;
  gchar *desc;

  if (!gst_structure_get_int (s, "rate", &rate) || rate <= 0)
    return FALSE;
  desc =
      g_strdup_printf ("encoding=%s sample_rate=%d channels=1", encoding, rate);

  g_mutex_lock (&self->lock);
  if (self->caps_desc && g_str_equal (self->caps_desc, desc)) {
    g_mutex_unlock (&self->lock);
    g_free (desc);
    return TRUE;
  }
  /* FIXME: a format change mid-stream opens a new connection; results the
   * old one still owed are lost. Audio sources do not change format. */
  g_free (self->caps_desc);
  self->caps_desc = desc;
  self->bpf = bpf;
  dg_timeline_free (self->timeline);
  self->timeline = dg_timeline_new ((guint)rate, bpf);
  self->connected = FALSE;
  g_mutex_unlock (&self->lock);

  open_connection (self, encoding, (guint)rate, bpf);
  return TRUE;
}

static gboolean
gst_deepgram_sink_stop (GstBaseSink *bsink)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (bsink);
  gboolean connected_once;

  if (self->tick) {
    g_source_destroy (self->tick);
    g_source_unref (self->tick);
    self->tick = NULL;
  }
  /* Without our lock: callbacks waiting for it must be able to finish. */
  if (self->client)
    gst_voice_client_shutdown (self->client);
  g_mutex_lock (&self->lock);
  connected_once = self->connections > 0;
  g_mutex_unlock (&self->lock);
  if (connected_once)
    post_usage (self, TRUE);

  g_mutex_lock (&self->lock);
  g_clear_pointer (&self->timeline, dg_timeline_free);
  g_clear_pointer (&self->caps_desc, g_free);
  g_clear_pointer (&self->url, g_free);
  g_clear_pointer (&self->request_id, g_free);
  g_clear_object (&self->client);
  self->connected = FALSE;
  self->connections = 0;
  self->finalize_deadline_us = 0;
  self->eos = self->eos_done = self->close_sent = FALSE;
  self->failed = self->outage_warned = self->dropping = FALSE;
  self->dropped_frames = 0;
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* ---- Audio (streaming thread) ---- */

static GstClockTime
buffer_running_time (GstBaseSink *bsink, GstBuffer *buffer)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);

  if (!GST_CLOCK_TIME_IS_VALID (pts) ||
      bsink->segment.format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  return gst_segment_to_running_time (&bsink->segment, GST_FORMAT_TIME, pts);
}

static GstFlowReturn
gst_deepgram_sink_render (GstBaseSink *bsink, GstBuffer *buffer)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (bsink);
  GstClockTime rt = buffer_running_time (bsink, buffer);
  gint64 now = g_get_monotonic_time ();
  BacklogReport report;
  GstMapInfo map;
  GBytes *bytes;

  forward_upstream_events (self);
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;

  g_mutex_lock (&self->lock);
  if (self->timeline == NULL) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unmap (buffer, &map);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (self->failed) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unmap (buffer, &map);
    return GST_FLOW_ERROR;
  }
  /* Whole frames only. */
  bytes = g_bytes_new (map.data, map.size - map.size % self->bpf);
  gst_buffer_unmap (buffer, &map);
  if (g_bytes_get_size (bytes) > 0)
    dg_timeline_push (self->timeline, bytes, rt, now);
  g_bytes_unref (bytes);
  send_pending_locked (self);
  bound_backlog_locked (self, &report);
  g_mutex_unlock (&self->lock);

  post_backlog_report (self, &report);
  return GST_FLOW_OK;
}

/* ---- Events ---- */

/* speech-stop: Finalize goes right after the audio received so far, now if
 * that audio is already out, else when it is sent. */
static void
request_finalize (GstDeepgramSink *self)
{
  g_mutex_lock (&self->lock);
  if (self->timeline && !self->eos &&
      dg_timeline_mark_finalize (self->timeline) && self->connected)
    send_finalize_locked (self);
  g_mutex_unlock (&self->lock);
}

static void
start_eos (GstDeepgramSink *self)
{
  gboolean finish_now;

  g_mutex_lock (&self->lock);
  self->eos = TRUE;
  self->eos_start_us = g_get_monotonic_time ();
  /* Never connected (no caps, or failed): nothing to wait for. */
  finish_now = self->timeline == NULL || self->failed || self->client == NULL;
  if (!finish_now)
    send_pending_locked (self);
  g_mutex_unlock (&self->lock);
  if (finish_now)
    finish_eos (self, FALSE);
}

static void
post_voice_event (GstDeepgramSink *self, GstEvent *event, const gchar *action)
{
  GstStructure *s =
      gst_voice_event_to_message_structure (event, "deepgramsink", action);

  if (s)
    post_structure (self, s);
}

static gboolean
gst_deepgram_sink_event (GstBaseSink *bsink, GstEvent *event)
{
  GstDeepgramSink *self = GST_DEEPGRAM_SINK (bsink);

  switch (gst_voice_event_get_voice_type (event)) {
    case GST_VOICE_EVENT_SPEECH_STOP:
      request_finalize (self);
      post_voice_event (self, event, "acted");
      to_partner (self, GST_MINI_OBJECT (gst_event_ref (event)));
      break;
    case GST_VOICE_EVENT_SPEECH_START:
    case GST_VOICE_EVENT_INTERRUPT:
      post_voice_event (self, event, "received");
      to_partner (self, GST_MINI_OBJECT (gst_event_ref (event)));
      break;
    default:
      break;
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_EOS)
    start_eos (self);
  if (GST_EVENT_IS_SERIALIZED (event))
    forward_upstream_events (self);
  return GST_BASE_SINK_CLASS (parent_class)->event (bsink, event);
}

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

#include <string.h>

#include "voice.h"
#include "gstvoiceredact.h"
#include "gstdeepgramsink.h"
#include "options.h"
#include "protocol.h"
#include "timeline.h"

GST_DEBUG_CATEGORY_STATIC (deepgram_sink_debug);
#define GST_CAT_DEFAULT deepgram_sink_debug

#define DEFAULT_SESSION "default"

/* Deepgram closes a connection after 10 s without audio or a message
 * (NET-0001); it asks for a KeepAlive every 3-5 s. */
#define KEEPALIVE_INTERVAL_US (5 * G_USEC_PER_SEC)
#define TICK_MS 250
/* After EOS, the wait for the last results ends when Deepgram has been
 * silent this long (it may still be working through audio that arrived
 * faster than real time, sending results as it goes). Deepgram's own idle
 * limit is the same 10 s... */
#define EOS_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* ...or at the latest after this long. */
#define EOS_MAX_WAIT_US (60 * G_USEC_PER_SEC)
/* Deepgram answers Finalize in well under a second; no answer in this long
 * means the connection is stalled and is re-opened. */
#define FINALIZE_TIMEOUT_US (5 * G_USEC_PER_SEC)
/* Audio kept for re-sending after a drop, at most (normally a final result
 * covers it within seconds). */
#define RETAIN_MAX_MS 30000
#define CONNECT_TIMEOUT_MS 5000
#define BACKOFF_INITIAL_MS 250
#define BACKOFF_MAX_MS 5000
/* No progress on the socket for this long with data waiting: re-open. */
#define STALL_TIMEOUT_MS 2000

/* Results the partner src has not read yet, at most. */
#define MAX_UNREAD 10000

#define MSG_KEEPALIVE "{\"type\":\"KeepAlive\"}"
#define MSG_FINALIZE "{\"type\":\"Finalize\"}"
#define MSG_CLOSE_STREAM "{\"type\":\"CloseStream\"}"

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

struct _GstDeepgramSink
{
  GstBaseSink parent;

  /* Protected by OBJECT_LOCK */
  DgOptions opts;
  gchar *session_name;

  /* Written under OBJECT_LOCK by gst_voice_pair_join/leave (NULL→READY,
   * READY→NULL); read without a lock in between. Its queues are asked for
   * at each use rather than cached, so nothing else changes with it. */
  GstVoiceSession *session;

  /* Set in start() and stop(), read-only in between */
  DgOptions conf; /* the options, copied at start */
  GstVoiceClient *client;
  GSource *tick; /* on the I/O context */

  /* Protected by lock (streaming thread, I/O thread, tick) */
  GMutex lock;
  DgTimeline *timeline; /* NULL until caps */
  gchar *caps_desc; /* what Deepgram was told the audio is */
  guint bpf; /* bytes per frame of that audio */
  gchar *url; /* for error messages; may hold no key */
  gboolean connected;
  guint connections;
  gint64 last_send_us; /* anything handed to the client */
  gint64 finalize_deadline_us; /* a Finalize is unanswered until then */
  gboolean eos; /* EOS received: CloseStream when all audio is out */
  gboolean close_sent; /* CloseStream sent on this connection */
  gint64 eos_start_us;
  gint64 last_rx_us; /* last message from Deepgram */
  gboolean eos_done; /* EOS went to the partner */
  gboolean failed; /* a final error was posted: no more retries */
  gboolean outage_warned; /* a warning for the current outage was posted */
  gboolean dropping; /* the backlog overflowed and has not drained yet */
  guint64 dropped_frames; /* in the current overflow episode */
  gchar *request_id; /* of the last connection */
};

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
static void
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

static void
post_structure (GstDeepgramSink *self, GstStructure *s)
{
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

static void
post_connection (GstDeepgramSink *self, const gchar *event, guint code,
    const gchar *reason, gboolean will_retry)
{
  guint reconnects =
      self->client ? gst_voice_client_get_reconnect_count (self->client) : 0;

  post_structure (self,
      gst_structure_new ("deepgram-connection", "event", G_TYPE_STRING, event,
          "reconnected", G_TYPE_BOOLEAN, reconnects > 0, "reconnects",
          G_TYPE_UINT, reconnects, "code", G_TYPE_UINT, code, "reason",
          G_TYPE_STRING, reason ? reason : "", "will-retry", G_TYPE_BOOLEAN,
          will_retry, NULL));
}

static void
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

static void
post_backlog (GstDeepgramSink *self, const gchar *event, guint64 dropped,
    guint64 backlog, guint rate)
{
  post_structure (self,
      gst_structure_new ("deepgram-backlog", "event", G_TYPE_STRING, event,
          "dropped-ms", G_TYPE_UINT64, dropped * 1000 / rate, "backlog-ms",
          G_TYPE_UINT64, backlog * 1000 / rate, NULL));
}

/* ---- Sending (lock held; any thread) ---- */

static void
send_text_locked (GstDeepgramSink *self, const gchar *text)
{
  if (!gst_voice_client_send_text (self->client, text))
    GST_WARNING_OBJECT (self, "send queue full, %s not sent", text);
  self->last_send_us = g_get_monotonic_time ();
}

static void
send_finalize_locked (GstDeepgramSink *self)
{
  GST_DEBUG_OBJECT (self, "Finalize");
  send_text_locked (self, MSG_FINALIZE);
  /* Only audio no final result covers yet gets a certain answer. */
  if (dg_timeline_get_pending (self->timeline) > 0)
    self->finalize_deadline_us = g_get_monotonic_time () + FINALIZE_TIMEOUT_US;
}

/* Sends what the connection has not had yet, as far as the client queue
 * takes it, each Finalize right after the audio it follows; then
 * CloseStream if EOS is waiting for that. */
static void
send_pending_locked (GstDeepgramSink *self)
{
  GBytes *data;
  gboolean finalize;

  if (!self->connected || self->timeline == NULL)
    return;
  while ((data = dg_timeline_peek_unsent (self->timeline, &finalize))) {
    if (!gst_voice_client_send_binary (self->client, data))
      break;
    dg_timeline_mark_sent (self->timeline);
    self->last_send_us = g_get_monotonic_time ();
    if (finalize)
      send_finalize_locked (self);
  }
  if (self->eos && !self->close_sent &&
      dg_timeline_get_unsent (self->timeline) == 0) {
    GST_DEBUG_OBJECT (self, "all audio out: CloseStream");
    send_text_locked (self, MSG_CLOSE_STREAM);
    self->close_sent = TRUE;
  }
}

typedef struct
{
  guint64 dropped; /* frames dropped now */
  guint64 episode; /* frames dropped in this episode */
  guint64 backlog;
  guint rate;
  gboolean started; /* an episode started now */
  gboolean recovered; /* an episode ended now */
  gboolean connected;
} BacklogReport;

/* Keeps the never-sent audio within max-backlog-ms and re-sent audio within
 * RETAIN_MAX_MS. Fills @report for the caller to post without the lock. */
static void
bound_backlog_locked (GstDeepgramSink *self, BacklogReport *report)
{
  DgTimeline *tl = self->timeline;
  guint rate = dg_timeline_get_rate (tl);

  memset (report, 0, sizeof (*report));
  report->rate = rate;
  report->connected = self->connected;
  report->dropped = dg_timeline_drop_fresh (
      tl, (guint64)self->conf.max_backlog_ms * rate / 1000);
  dg_timeline_drop_retained (tl, (guint64)RETAIN_MAX_MS * rate / 1000);
  report->backlog = dg_timeline_get_unsent (tl);
  if (report->dropped > 0) {
    report->started = !self->dropping;
    self->dropping = TRUE;
    self->dropped_frames += report->dropped;
  } else if (self->dropping && report->backlog == 0) {
    report->recovered = TRUE;
    self->dropping = FALSE;
  }
  report->episode = self->dropped_frames;
  if (report->recovered)
    self->dropped_frames = 0;
}

static void
post_backlog_report (GstDeepgramSink *self, const BacklogReport *r)
{
  if (r->started) {
    GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
        ("Deepgram is not taking audio fast enough: dropping the oldest "
         "audio beyond max-backlog-ms"),
        ("%" G_GUINT64_FORMAT " ms waiting, connected: %d",
            r->backlog * 1000 / r->rate, r->connected));
    post_backlog (self, "dropping", r->episode, r->backlog, r->rate);
  } else if (r->recovered) {
    post_backlog (self, "recovered", r->episode, r->backlog, r->rate);
  }
}

/* ---- Results (I/O thread) ---- */

static GValue *
words_value (GstDeepgramSink *self, const DgMessage *m)
{
  GValue *array = g_new0 (GValue, 1);

  g_value_init (array, GST_TYPE_ARRAY);
  for (guint i = 0; i < m->words->len; i++) {
    const DgWord *w = &g_array_index (m->words, DgWord, i);
    GValue v = G_VALUE_INIT;
    GstStructure *s = gst_structure_new ("word", "word", G_TYPE_STRING, w->word,
        "punctuated-word", G_TYPE_STRING, w->punctuated_word, "start",
        G_TYPE_UINT64, dg_timeline_running_time (self->timeline, w->start),
        "end", G_TYPE_UINT64, dg_timeline_running_time (self->timeline, w->end),
        "confidence", G_TYPE_DOUBLE, w->confidence, NULL);

    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&v, s);
    gst_value_array_append_and_take_value (array, &v);
  }
  return array;
}

/* Builds the "deepgram-result" structure deepgramsrc turns into a buffer
 * and a message. Times become running times; latency is from the moment
 * the end of the transcribed audio reached this sink to now. */
static GstStructure *
result_structure_locked (GstDeepgramSink *self, const DgMessage *m, gint64 now)
{
  gdouble end = m->start + m->duration;
  GstClockTime start_rt = dg_timeline_running_time (self->timeline, m->start);
  GstClockTime end_rt = dg_timeline_running_time (self->timeline, end);
  gint64 wall = dg_timeline_wall_time (self->timeline, end);
  GstClockTime latency = wall >= 0
      ? (GstClockTime)MAX (now - wall, 0) * GST_USECOND
      : GST_CLOCK_TIME_NONE;
  GValue *words = words_value (self, m);
  GstStructure *s = gst_structure_new ("deepgram-result", "text", G_TYPE_STRING,
      m->transcript, "is_final", G_TYPE_BOOLEAN, m->is_final, "speech_final",
      G_TYPE_BOOLEAN, m->speech_final, "from_finalize", G_TYPE_BOOLEAN,
      m->from_finalize, "confidence", G_TYPE_DOUBLE, m->confidence,
      "running-time", G_TYPE_UINT64, start_rt, "duration", G_TYPE_UINT64,
      GST_CLOCK_TIME_IS_VALID (start_rt) && GST_CLOCK_TIME_IS_VALID (end_rt)
          ? end_rt - MIN (start_rt, end_rt)
          : GST_CLOCK_TIME_NONE,
      "latency", G_TYPE_UINT64, latency, "wallclock", G_TYPE_INT64, now,
      "request-id", G_TYPE_STRING, m->request_id ? m->request_id : "", NULL);

  gst_structure_take_value (s, "words", words);
  g_free (words);
  return s;
}

static void
handle_results (GstDeepgramSink *self, const DgMessage *m, gint64 now)
{
  GstStructure *s;

  g_mutex_lock (&self->lock);
  if (self->timeline == NULL) {
    g_mutex_unlock (&self->lock);
    return;
  }
  s = result_structure_locked (self, m, now);
  if (m->request_id && g_strcmp0 (m->request_id, self->request_id) != 0) {
    g_free (self->request_id);
    self->request_id = g_strdup (m->request_id);
  }
  if (m->is_final)
    dg_timeline_finalized (self->timeline, m->start + m->duration);
  if (m->from_finalize)
    self->finalize_deadline_us = 0;
  g_mutex_unlock (&self->lock);

  GST_LOG_OBJECT (self, "result %" GST_PTR_FORMAT, s);
  to_partner (self,
      GST_MINI_OBJECT (gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s)));
}

static GstClockTime
running_time_of (GstDeepgramSink *self, gdouble seconds)
{
  GstClockTime rt = GST_CLOCK_TIME_NONE;

  g_mutex_lock (&self->lock);
  if (self->timeline)
    rt = dg_timeline_running_time (self->timeline, seconds);
  g_mutex_unlock (&self->lock);
  return rt;
}

static void
handle_utterance_end (GstDeepgramSink *self, const DgMessage *m)
{
  GstStructure *s = gst_structure_new ("deepgram-utterance-end", "running-time",
      G_TYPE_UINT64, running_time_of (self, m->timestamp), NULL);

  to_partner (self,
      GST_MINI_OBJECT (gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s)));
}

static void
handle_metadata (GstDeepgramSink *self, const DgMessage *m)
{
  GST_DEBUG_OBJECT (self, "Metadata: request %s, %.3f s of audio",
      m->request_id, m->metadata_duration);
  g_mutex_lock (&self->lock);
  if (m->request_id) {
    g_free (self->request_id);
    self->request_id = g_strdup (m->request_id);
  }
  g_mutex_unlock (&self->lock);
  post_usage (self, FALSE);
}

static void
handle_message (GstDeepgramSink *self, DgMessage *m, gint64 now)
{
  switch (m->type) {
    case DG_MESSAGE_RESULTS:
      handle_results (self, m, now);
      break;
    case DG_MESSAGE_UTTERANCE_END:
      handle_utterance_end (self, m);
      break;
    case DG_MESSAGE_SPEECH_STARTED:
      post_structure (self,
          gst_structure_new ("deepgram-speech-started", "running-time",
              G_TYPE_UINT64, running_time_of (self, m->timestamp), NULL));
      break;
    case DG_MESSAGE_METADATA:
      handle_metadata (self, m);
      break;
    case DG_MESSAGE_ERROR:
    case DG_MESSAGE_WARNING:
      GST_ELEMENT_WARNING (self, RESOURCE, READ,
          ("Deepgram reported: %s", m->description), ("%s", m->type_name));
      break;
    case DG_MESSAGE_UNKNOWN:
      GST_DEBUG_OBJECT (self, "ignoring message of type %s", m->type_name);
      break;
  }
}

/* ---- Client callbacks (I/O thread) ---- */

static void
on_message (GstVoiceClient *client, SoupWebsocketDataType type, GBytes *message,
    gpointer user_data)
{
  GstDeepgramSink *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gsize len;
  const gchar *data = g_bytes_get_data (message, &len);
  GError *error = NULL;
  DgMessage *m;

  g_mutex_lock (&self->lock);
  self->last_rx_us = now;
  g_mutex_unlock (&self->lock);
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    return;
  m = dg_message_parse (data, len, &error);
  if (m == NULL) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Deepgram sent a message that is not valid JSON; ignored"),
        ("%s: %.*s", error->message, (int)MIN (len, 200), data));
    g_error_free (error);
    return;
  }
  handle_message (self, m, now);
  dg_message_free (m);
}

static void
on_opened (GstVoiceClient *client, gboolean reconnected, gpointer user_data)
{
  GstDeepgramSink *self = user_data;
  guint64 resend = 0;

  g_mutex_lock (&self->lock);
  /* Nothing queued for the old connection may reach the new one. */
  gst_voice_client_clear_queue (client);
  if (self->timeline) {
    dg_timeline_new_connection (self->timeline);
    resend = dg_timeline_get_unsent (self->timeline);
  }
  self->connected = TRUE;
  self->connections++;
  self->close_sent = FALSE;
  self->outage_warned = FALSE;
  self->last_send_us = g_get_monotonic_time ();
  self->finalize_deadline_us = 0;
  send_pending_locked (self);
  g_mutex_unlock (&self->lock);

  GST_INFO_OBJECT (self,
      "connected%s, sending %" G_GUINT64_FORMAT " frames retained",
      reconnected ? " again" : "", resend);
  post_connection (self, "opened", 0, NULL, FALSE);
}

static void
finish_eos (GstDeepgramSink *self, gboolean timed_out)
{
  g_mutex_lock (&self->lock);
  if (self->eos_done || !self->eos) {
    g_mutex_unlock (&self->lock);
    return;
  }
  self->eos_done = TRUE;
  g_mutex_unlock (&self->lock);

  if (timed_out) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Deepgram sent nothing for %d s after the end of the stream; "
         "ending it without waiting for more results",
            (int)(EOS_TIMEOUT_US / G_USEC_PER_SEC)),
        (NULL));
    gst_voice_client_close (self->client, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  }
  post_usage (self, FALSE);
  to_partner (self, GST_MINI_OBJECT (gst_event_new_eos ()));
}

static void
fail (GstDeepgramSink *self)
{
  g_mutex_lock (&self->lock);
  self->failed = TRUE;
  g_mutex_unlock (&self->lock);
  /* Safe from a callback: stops reconnecting for good. */
  gst_voice_client_shutdown (self->client);
}

static void
on_closed (GstVoiceClient *client, gushort code, const gchar *reason,
    gboolean will_retry, gpointer user_data)
{
  GstDeepgramSink *self = user_data;
  gboolean eos;

  g_mutex_lock (&self->lock);
  self->connected = FALSE;
  gst_voice_client_clear_queue (client);
  eos = self->eos;
  g_mutex_unlock (&self->lock);

  GST_INFO_OBJECT (self, "closed: %u %s (retry: %d)", code,
      reason ? reason : "", will_retry);
  post_connection (self, "closed", code, reason, will_retry);

  if (code == SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION ||
      dg_close_reason_has (reason, "DATA-0000")) {
    gchar *caps;

    g_mutex_lock (&self->lock);
    caps = g_strdup (self->caps_desc);
    g_mutex_unlock (&self->lock);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT,
        ("Deepgram could not decode the audio sent as %s: check the caps "
         "(S16LE mono 8000-48000 Hz, or mu-law 8000 Hz)",
            caps),
        ("close %u %s", code, reason ? reason : ""));
    g_free (caps);
    fail (self);
    return;
  }
  if (eos) {
    /* CloseStream answered (1000), or the connection is gone: what came
     * before is all there is, unless a retry sends it again. */
    if (!will_retry)
      finish_eos (self, FALSE);
    return;
  }
  if (!will_retry) {
    /* Deepgram closed normally without being asked: open a new one. */
    GST_INFO_OBJECT (self, "closed by the server, reconnecting");
    gst_voice_client_reconnect (client);
  } else if (dg_close_reason_has (reason, "NET-0001")) {
    GST_INFO_OBJECT (self, "Deepgram's idle timeout: reconnecting");
  }
}

static gchar *
connect_error_detail (
    GstDeepgramSink *self, guint status, SoupMessageHeaders *headers)
{
  const gchar *dg_error =
      headers ? soup_message_headers_get_one (headers, "dg-error") : NULL;
  const gchar *request_id =
      headers ? soup_message_headers_get_one (headers, "dg-request-id") : NULL;
  gchar *text = dg_error_text (dg_error);
  gchar *safe_url, *safe_text, *detail;

  g_mutex_lock (&self->lock);
  safe_url = gst_voice_redact (self->url ? self->url : "");
  g_mutex_unlock (&self->lock);
  safe_text = gst_voice_redact (text ? text : "");
  detail = g_strdup_printf ("HTTP %u from %s (dg-request-id %s): %s", status,
      safe_url, request_id ? request_id : "none", safe_text);
  g_free (safe_url);
  g_free (safe_text);
  g_free (text);
  return detail;
}

static void
report_connect_error (GstDeepgramSink *self, guint status,
    SoupMessageHeaders *headers, const GError *error)
{
  gchar *detail = connect_error_detail (self, status, headers);
  gchar *dg_text = dg_error_text (
      headers ? soup_message_headers_get_one (headers, "dg-error") : NULL);
  const gchar *fix;

  /* The code follows the status (gstvoicehttp.c); the text names the fix. */
  if (status == 401 || status == 403)
    fix = "Deepgram rejected the API key: set DEEPGRAM_API_KEY or api-key";
  else if (status == 400)
    fix = dg_text ? dg_text : "Deepgram refused the request options";
  else if (status == 404)
    fix = "Deepgram has no live transcription at this URL: check the url "
          "property";
  else
    fix = NULL;
  if (fix)
    GST_VOICE_HTTP_ERROR (self, status, ("%s", fix), ("%s", detail));
  else
    GST_VOICE_HTTP_ERROR (self, status,
        ("Cannot connect to Deepgram: %s",
            status ? (dg_text ? dg_text : "request refused") : error->message),
        ("%s", detail));
  g_free (dg_text);
  g_free (detail);
}

static void
on_connect_failed (GstVoiceClient *client, guint http_status,
    SoupMessageHeaders *response_headers, const GError *error,
    gboolean will_retry, gpointer user_data)
{
  GstDeepgramSink *self = user_data;
  gboolean warn;

  post_connection (self, "connect-failed", http_status,
      error ? error->message : NULL, will_retry);
  if (!will_retry) {
    report_connect_error (self, http_status, response_headers, error);
    fail (self);
    return;
  }
  g_mutex_lock (&self->lock);
  warn = !self->outage_warned;
  self->outage_warned = TRUE;
  g_mutex_unlock (&self->lock);
  if (warn) {
    gchar *detail = connect_error_detail (self, http_status, response_headers);
    GST_ELEMENT_WARNING (self, RESOURCE, OPEN_READ_WRITE,
        ("Cannot reach Deepgram (%s); retrying, audio waits up to "
         "max-backlog-ms",
            error ? error->message : "no answer"),
        ("%s", detail));
    g_free (detail);
  }
}

static void
on_stalled (GstVoiceClient *client, gsize queued_bytes, gpointer user_data)
{
  GstDeepgramSink *self = user_data;

  GST_ELEMENT_WARNING (self, RESOURCE, WRITE,
      ("The connection to Deepgram stalled; reconnecting"),
      ("%" G_GSIZE_FORMAT " bytes waiting without progress", queued_bytes));
  post_connection (self, "stalled", 0, NULL, TRUE);
}

/* ---- Timer (I/O thread, every TICK_MS) ---- */

/* Retries audio the client queue refused, keeps an idle connection alive,
 * re-opens a connection that does not answer Finalize, and bounds the wait
 * for the last results after EOS. */
static gboolean
tick (gpointer user_data)
{
  GstDeepgramSink *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gboolean eos_timed_out = FALSE, stalled = FALSE;

  g_mutex_lock (&self->lock);
  if (self->client == NULL || self->failed) {
    g_mutex_unlock (&self->lock);
    return G_SOURCE_CONTINUE;
  }
  send_pending_locked (self);
  if (self->connected && !self->close_sent &&
      now - self->last_send_us >= KEEPALIVE_INTERVAL_US) {
    GST_LOG_OBJECT (self, "KeepAlive");
    send_text_locked (self, MSG_KEEPALIVE);
  }
  if (self->connected && self->finalize_deadline_us > 0 &&
      now > self->finalize_deadline_us) {
    self->finalize_deadline_us = 0;
    stalled = TRUE;
  }
  if (self->eos && !self->eos_done &&
      (now - MAX (self->eos_start_us, self->last_rx_us) > EOS_TIMEOUT_US ||
          now - self->eos_start_us > EOS_MAX_WAIT_US))
    eos_timed_out = TRUE;
  g_mutex_unlock (&self->lock);

  if (stalled) {
    GST_ELEMENT_WARNING (self, RESOURCE, READ,
        ("Deepgram did not answer Finalize; reconnecting"), (NULL));
    gst_voice_client_reconnect (self->client);
  }
  if (eos_timed_out)
    finish_eos (self, TRUE);
  return G_SOURCE_CONTINUE;
}

static void
start_tick (GstDeepgramSink *self)
{
  self->tick = g_timeout_source_new (TICK_MS);
  g_source_set_callback (
      self->tick, tick, gst_object_ref (self), gst_object_unref);
  g_source_attach (self->tick, gst_voice_client_get_io_context ());
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

static SoupMessageHeaders *
auth_headers (GstDeepgramSink *self)
{
  SoupMessageHeaders *h =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  gchar *value = g_strconcat ("Token ", self->conf.api_key, NULL);

  soup_message_headers_append (h, "Authorization", value);
  g_free (value);
  return h;
}

/* Opens the connection for audio of @encoding at @rate. Streaming thread. */
static void
open_connection (
    GstDeepgramSink *self, const gchar *encoding, guint rate, guint bpf)
{
  DgRequest req = {
    .model = self->conf.model,
    .language = self->conf.language,
    .encoding = encoding,
    .sample_rate = rate,
    .interim_results = self->conf.interim_results,
    .endpointing_ms = self->conf.endpointing_ms,
    .utterance_end_ms = self->conf.utterance_end_ms,
    .smart_format = self->conf.smart_format,
    .punctuate = self->conf.punctuate,
    .vad_events = self->conf.vad_events,
    .keyterms = (const gchar *const *)self->conf.keyterms,
    .extra_params = self->conf.extra_params,
  };
  gchar *url = dg_request_build_url (self->conf.url, &req);
  gchar *safe = gst_voice_redact (url);
  SoupMessageHeaders *headers = auth_headers (self);
  gsize limit =
      ((gsize)self->conf.max_backlog_ms + RETAIN_MAX_MS) * rate / 1000 * bpf;

  if (self->conf.utterance_end_ms > 0 && !self->conf.interim_results)
    GST_WARNING_OBJECT (self,
        "utterance-end-ms needs interim-results=true; "
        "not asking for UtteranceEnd");
  GST_INFO_OBJECT (self, "connecting to %s", safe);
  g_free (safe);

  g_mutex_lock (&self->lock);
  g_free (self->url);
  self->url = g_strdup (url);
  g_mutex_unlock (&self->lock);

  gst_voice_client_set_queue_limit (self->client, limit);
  gst_voice_client_open_websocket (self->client, url, headers, NULL, TRUE);
  soup_message_headers_unref (headers);
  g_free (url);
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

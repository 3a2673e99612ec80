/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* deepgramsink's connection to Deepgram (see gstdeepgramsink.c for the
 * element): opening the WebSocket, the GstVoiceClient callbacks (results,
 * connect errors, reconnects and outages), sending the audio timeline with
 * Finalize and CloseStream, the bounded backlog, and the timer that sends
 * KeepAlive and bounds the wait after EOS. The callbacks and the timer run
 * on the voice I/O thread; what ends in _locked expects the element's
 * lock held. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "deepgramsink-private.h"
#include "gstvoiceredact.h"
#include "protocol.h"

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

#define MSG_KEEPALIVE "{\"type\":\"KeepAlive\"}"
#define MSG_FINALIZE "{\"type\":\"Finalize\"}"
#define MSG_CLOSE_STREAM "{\"type\":\"CloseStream\"}"

/* ---- Connecting (streaming thread) ---- */

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
void
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

/* ---- Bus messages ---- */

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

void
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
void
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


/* Keeps the never-sent audio within max-backlog-ms and re-sent audio within
 * RETAIN_MAX_MS. Fills @report for the caller to post without the lock. */
void
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

void
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

void
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

void
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

void
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

void
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

void
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

void
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

void
start_tick (GstDeepgramSink *self)
{
  self->tick = g_timeout_source_new (TICK_MS);
  g_source_set_callback (
      self->tick, tick, gst_object_ref (self), gst_object_unref);
  g_source_attach (self->tick, gst_voice_client_get_io_context ());
}

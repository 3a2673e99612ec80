/* A WHIP caller built on webrtcbin, for tests and the load generator.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The caller's pipeline runs on GStreamer's threads; the negotiation waits
 * on promises, and received audio and data-channel messages are handed to
 * the test thread under a mutex, so a test can block without a main loop.
 */
#include <math.h>
#include <string.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "iceagent.h"
#include "whip-caller.h"

#define ICE_WAIT_US (5 * G_USEC_PER_SEC)

struct _WhipCaller
{
  WhipCallerOptions options; /* strings owned below */
  gchar *url, *wav, *token, *setup, *resume;
  gboolean forge_fingerprint;
  GstElement *pipeline;
  GstElement *webrtc;
  GstElement *appsrc; /* opus_source only */
  guint ssrc; /* of the audio it sends; in the offer too */
  SoupSession *http;
  gchar *session_url;
  gchar *etag;
  gchar *answer;
  SoupMessageHeaders *response_headers; /* of the last POST */
  guint redirects;
  gchar *reply; /* of the last whip_caller_request */
  gchar *frag_head; /* trickle: the fragments' ufrag, pwd, m= and mid */

  GMutex lock;
  GCond cond;
  gdouble peak_rms; /* protected by lock */
  GQueue messages; /* of gchar*, protected by lock */
  GstWebRTCDataChannel *channel; /* protected by lock */
  gboolean gathered; /* protected by lock */
  GQueue candidates; /* trickle: gchar* not sent yet, protected by lock */
};

static GstFlowReturn
on_sample (GstAppSink *sink, gpointer data)
{
  WhipCaller *c = data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstBuffer *buf = gst_sample_get_buffer (sample);
  GstMapInfo map;
  gdouble sum = 0, rms;
  gsize i, n;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  n = map.size / 2;
  if (c->options.on_audio)
    c->options.on_audio ((const gint16 *)map.data, n, g_get_monotonic_time (),
        c->options.user_data);
  for (i = 0; i < n; i++) {
    gdouble s = ((gint16 *)map.data)[i] / 32768.0;
    sum += s * s;
  }
  gst_buffer_unmap (buf, &map);
  gst_sample_unref (sample);
  rms = n ? sqrt (sum / n) : 0;
  g_mutex_lock (&c->lock);
  if (rms > c->peak_rms) {
    c->peak_rms = rms;
    g_cond_broadcast (&c->cond);
  }
  g_mutex_unlock (&c->lock);
  return GST_FLOW_OK;
}

/* The answerer's audio arrives: decode it to measure its level. */
static void
on_pad_added (GstElement *webrtc, GstPad *pad, gpointer data)
{
  WhipCaller *c = data;
  GstElement *bin;
  GstElement *sink;
  GstPad *sinkpad;
  GstAppSinkCallbacks cb = { 0 };

  if (GST_PAD_DIRECTION (pad) != GST_PAD_SRC)
    return;
  /* Opus packets are 20 ms: so is each buffer, without a splitter. */
  bin = gst_parse_bin_from_description (
      "rtpopusdepay ! opusdec ! "
      "audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,"
      "channels=1 ! appsink name=sink sync=false",
      TRUE, NULL);
  g_assert (bin);
  sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  cb.new_sample = on_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &cb, c, NULL);
  gst_object_unref (sink);
  gst_bin_add (GST_BIN (c->pipeline), bin);
  gst_element_sync_state_with_parent (bin);
  sinkpad = gst_element_get_static_pad (bin, "sink");
  gst_pad_link (pad, sinkpad);
  gst_object_unref (sinkpad);
}

static GstPadProbeReturn
on_rtp_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  WhipCaller *c = data;
  gint64 now = g_get_monotonic_time ();
  GstBufferList *list = (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST)
      ? GST_PAD_PROBE_INFO_BUFFER_LIST (info)
      : NULL;
  guint i, n = list ? gst_buffer_list_length (list) : 1;

  for (i = 0; i < n; i++) {
    GstBuffer *buf =
        list ? gst_buffer_list_get (list, i) : GST_PAD_PROBE_INFO_BUFFER (info);
    GstMapInfo map;
    if (buf && gst_buffer_map (buf, &map, GST_MAP_READ)) {
      c->options.on_rtp (map.data, map.size, now, c->options.user_data);
      gst_buffer_unmap (buf, &map);
    }
  }
  return GST_PAD_PROBE_OK;
}

/* webrtcbin's rtpbin gets a recv_rtp_sink pad per transport: what enters
 * it is the decrypted RTP as it arrived. */
static void
on_rtpbin_pad_added (GstElement *rtpbin, GstPad *pad, gpointer data)
{
  if (GST_PAD_DIRECTION (pad) != GST_PAD_SINK ||
      !g_str_has_prefix (GST_PAD_NAME (pad), "recv_rtp_sink_"))
    return;
  gst_pad_add_probe (pad,
      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, on_rtp_probe,
      data, NULL);
}

static void
on_channel_message (
    GstWebRTCDataChannel *channel, const gchar *text, gpointer data)
{
  WhipCaller *c = data;

  g_mutex_lock (&c->lock);
  g_queue_push_tail (&c->messages, g_strdup (text));
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static void
on_gathering (GObject *webrtc, GParamSpec *pspec, gpointer data)
{
  WhipCaller *c = data;
  GstWebRTCICEGatheringState state;

  g_object_get (webrtc, "ice-gathering-state", &state, NULL);
  if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    return;
  g_mutex_lock (&c->lock);
  c->gathered = TRUE;
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

/* With max-bundle every candidate is the first section's. */
static void
on_ice_candidate (
    GstElement *webrtc, guint mline, const gchar *candidate, gpointer data)
{
  WhipCaller *c = data;

  if (mline != 0 || candidate == NULL || *candidate == '\0')
    return;
  g_mutex_lock (&c->lock);
  g_queue_push_tail (&c->candidates, g_strdup (candidate));
  g_cond_broadcast (&c->cond);
  g_mutex_unlock (&c->lock);
}

static gchar *
build_description (WhipCaller *c)
{
  gchar *src, *desc;

  /* WAV files are mixed into live silence once connected (whip_caller_play):
   * the stream goes on between utterances, as a microphone's does. */
  if (c->options.opus_source)
    src = g_strdup ("appsrc name=src is-live=true format=time "
                    "do-timestamp=true caps=audio/x-opus,channels=1,"
                    "rate=48000,channel-mapping-family=0");
  else if (c->options.tone_hz > 0)
    src = g_strdup_printf ("audiotestsrc is-live=true wave=sine freq=%.0f "
                           "volume=0.3",
        c->options.tone_hz);
  else
    src =
        g_strdup ("audiotestsrc is-live=true wave=silence "
                  "! audio/x-raw,rate=48000,channels=1 ! audiomixer name=mix");
  if (c->options.recvonly) {
    g_free (src);
    return g_strdup ("webrtcbin name=webrtc bundle-policy=max-bundle");
  }

  desc = g_strdup_printf (
      "webrtcbin name=webrtc bundle-policy=max-bundle "
      "%s%s ! rtpopuspay pt=111 ssrc=%u ! "
      "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"
      "clock-rate=48000 ! webrtc.",
      src,
      c->options.opus_source ? ""
                             : " ! audio/x-raw,rate=48000,channels=1 "
                               "! opusenc frame-size=20",
      c->ssrc);
  g_free (src);
  return desc;
}

WhipCaller *
whip_caller_new (const WhipCallerOptions *o)
{
  WhipCaller *c = g_new0 (WhipCaller, 1);
  gchar *desc;

  c->options = *o;
  c->url = g_strdup (o->url);
  c->wav = g_strdup (o->wav);
  c->token = g_strdup (o->token);
  c->setup = g_strdup (o->setup);
  c->forge_fingerprint = o->forge_fingerprint;
  c->resume = g_strdup (o->resume);
  g_mutex_init (&c->lock);
  g_cond_init (&c->cond);
  g_queue_init (&c->messages);
  g_queue_init (&c->candidates);
  c->http = soup_session_new_with_options ("timeout", 30, NULL);
  c->ssrc = g_random_int_range (1, G_MAXINT32);
  desc = build_description (c);
  c->pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  g_assert (c->pipeline);
  if (!GST_IS_PIPELINE (c->pipeline)) {
    GstElement *outer = gst_pipeline_new (NULL);
    gst_bin_add (GST_BIN (outer), c->pipeline);
    c->pipeline = outer;
  }
  c->webrtc = gst_bin_get_by_name (GST_BIN (c->pipeline), "webrtc");
  /* as the server does */
  va_ice_agent_disable_upnp (c->webrtc);
  c->appsrc = gst_bin_get_by_name (GST_BIN (c->pipeline), "src");
  g_signal_connect (c->webrtc, "pad-added", G_CALLBACK (on_pad_added), c);
  g_signal_connect (
      c->webrtc, "notify::ice-gathering-state", G_CALLBACK (on_gathering), c);
  if (o->trickle)
    g_signal_connect (
        c->webrtc, "on-ice-candidate", G_CALLBACK (on_ice_candidate), c);
  if (o->on_rtp) {
    GstElement *rtpbin = gst_bin_get_by_name (GST_BIN (c->webrtc), "rtpbin");
    g_assert (rtpbin);
    g_signal_connect (rtpbin, "pad-added", G_CALLBACK (on_rtpbin_pad_added), c);
    gst_object_unref (rtpbin);
  }
  return c;
}

#define OPUS_SEND_CAPS                                                         \
  "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,"              \
  "clock-rate=48000,encoding-params=(string)2"

static void
set_direction (WhipCaller *c)
{
  GstWebRTCRTPTransceiver *t = NULL;
  GstCaps *caps;

  if (c->options.recvonly) {
    caps = gst_caps_from_string (OPUS_SEND_CAPS);
    g_signal_emit_by_name (c->webrtc, "add-transceiver",
        GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &t);
    gst_caps_unref (caps);
    gst_clear_object (&t);
    return;
  }
  g_signal_emit_by_name (c->webrtc, "get-transceiver", 0, &t);
  if (t == NULL)
    return;
  /* The offer then says "opus/48000/2" (RFC 7587) even before any caps
   * flow, which an opus_source caller's never do in time: strict
   * answerers (Janus) refuse "OPUS/48000". With the payloader's SSRC: an
   * answerer that maps RTP to its m-line by the offer's a=ssrc (Janus,
   * without the mid extension) drops packets of any other. */
  caps = gst_caps_from_string (OPUS_SEND_CAPS);
  gst_caps_set_simple (caps, "ssrc", G_TYPE_UINT, c->ssrc, NULL);
  g_object_set (t, "codec-preferences", caps, NULL);
  gst_caps_unref (caps);
  if (c->options.sendonly)
    g_object_set (
        t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, NULL);
  gst_object_unref (t);
}

static void
open_channel (WhipCaller *c)
{
  GstWebRTCDataChannel *channel = NULL;

  if (!c->options.data_channel)
    return;
  g_signal_emit_by_name (
      c->webrtc, "create-data-channel", "events", NULL, &channel);
  g_assert (channel);
  g_signal_connect (
      channel, "on-message-string", G_CALLBACK (on_channel_message), c);
  g_mutex_lock (&c->lock);
  c->channel = channel;
  g_mutex_unlock (&c->lock);
}

static GstWebRTCSessionDescription *
make_offer (WhipCaller *c)
{
  GstPromise *p = gst_promise_new ();
  GstWebRTCSessionDescription *offer = NULL;

  g_signal_emit_by_name (c->webrtc, "create-offer", NULL, p);
  gst_promise_wait (p);
  gst_structure_get (gst_promise_get_reply (p), "offer",
      GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, NULL);
  gst_promise_unref (p);
  p = gst_promise_new ();
  g_signal_emit_by_name (c->webrtc, "set-local-description", offer, p);
  gst_promise_wait (p);
  gst_promise_unref (p);
  return offer;
}

/* @sdp without its a=candidate and a=end-of-candidates lines (takes it). */
static gchar *
without_candidates (gchar *sdp)
{
  gchar **lines = g_strsplit (sdp, "\r\n", -1);
  GString *out = g_string_new (NULL);

  for (gchar **l = lines; *l && **l; l++)
    if (!g_str_has_prefix (*l, "a=candidate:") &&
        !g_str_has_prefix (*l, "a=end-of-candidates"))
      g_string_append_printf (out, "%s\r\n", *l);
  g_strfreev (lines);
  g_free (sdp);
  return g_string_free (out, FALSE);
}

/* What each trickled fragment starts with (RFC 8840): the first
 * section's ICE credentials and mid. */
static gchar *
fragment_head (const GstSDPMessage *sdp)
{
  const GstSDPMedia *m = gst_sdp_message_get_media (sdp, 0);

  return g_strdup_printf ("a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
                          "m=%s 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:%s\r\n",
      gst_sdp_media_get_attribute_val (m, "ice-ufrag"),
      gst_sdp_media_get_attribute_val (m, "ice-pwd"),
      gst_sdp_media_get_media (m), gst_sdp_media_get_attribute_val (m, "mid"));
}

/* The local offer: after gathering, or at once without candidates to
 * trickle them. */
static gchar *
local_sdp_after_gathering (WhipCaller *c)
{
  GstWebRTCSessionDescription *local = NULL;
  gint64 deadline = g_get_monotonic_time () + ICE_WAIT_US;
  gchar *text, *tmp;

  g_mutex_lock (&c->lock);
  while (!c->options.trickle && !c->gathered &&
      g_cond_wait_until (&c->cond, &c->lock, deadline))
    ;
  g_mutex_unlock (&c->lock);
  g_object_get (c->webrtc, "local-description", &local, NULL);
  text = gst_sdp_message_as_text (local->sdp);
  if (c->options.trickle) {
    text = without_candidates (text);
    g_free (c->frag_head);
    c->frag_head = fragment_head (local->sdp);
  }
  gst_webrtc_session_description_free (local);
  if (c->setup) {
    gchar *repl = g_strdup_printf ("a=setup:%s", c->setup);
    gchar **parts = g_strsplit (text, "a=setup:actpass", -1);
    tmp = g_strjoinv (repl, parts);
    g_strfreev (parts);
    g_free (repl);
    g_free (text);
    text = tmp;
  }
  if (c->forge_fingerprint) {
    /* The first hex digit of every fingerprint, changed. */
    for (tmp = strstr (text, "a=fingerprint:"); tmp;
         tmp = strstr (tmp + 1, "a=fingerprint:")) {
      gchar *digit = strchr (tmp, ' ') + 1;
      *digit = *digit == 'A' ? 'B' : 'A';
    }
  }
  return text;
}

static SoupMessage *
new_request (WhipCaller *c, const gchar *method, const gchar *url,
    const gchar *type, const gchar *body)
{
  SoupMessage *msg = soup_message_new (method, url);

  if (c->token) {
    gchar *auth = g_strdup_printf ("Bearer %s", c->token);
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), "Authorization", auth);
    g_free (auth);
  }
  if (body) {
    GBytes *b = g_bytes_new (body, strlen (body));
    soup_message_set_request_body_from_bytes (msg, type, b);
    g_bytes_unref (b);
  }
  return msg;
}

/* POSTs @sdp, following 307/308 redirects itself (libsoup does not
 * redirect a POST). Returns the last message; *@reply its body. */
static SoupMessage *
post_offer (WhipCaller *c, const gchar *sdp, GBytes **reply, GError **error)
{
  gchar *url = g_strdup (c->url);
  SoupMessage *msg = NULL;
  guint status;

  c->redirects = 0;
  while (TRUE) {
    const gchar *location;
    GUri *next;
    g_clear_object (&msg);
    msg = new_request (c, "POST", url, "application/sdp", sdp);
    soup_message_add_flags (msg, SOUP_MESSAGE_NO_REDIRECT);
    if (c->resume)
      soup_message_headers_replace (soup_message_get_request_headers (msg),
          "Voiceagent-Resume", c->resume);
    *reply = soup_session_send_and_read (c->http, msg, NULL, error);
    status = soup_message_get_status (msg);
    location = soup_message_headers_get_one (
        soup_message_get_response_headers (msg), "Location");
    if ((status != 307 && status != 308) || location == NULL ||
        c->redirects >= 3 || *reply == NULL)
      break;
    next = g_uri_parse_relative (
        soup_message_get_uri (msg), location, G_URI_FLAGS_NONE, NULL);
    if (next == NULL)
      break;
    g_free (url);
    url = g_uri_to_string (next);
    g_uri_unref (next);
    g_clear_pointer (reply, g_bytes_unref);
    c->redirects++;
  }
  g_free (url);
  g_clear_pointer (&c->response_headers, soup_message_headers_unref);
  c->response_headers =
      soup_message_headers_ref (soup_message_get_response_headers (msg));
  return msg;
}

static gboolean
apply_answer (WhipCaller *c, GError **error)
{
  GstSDPMessage *sdp;
  GstWebRTCSessionDescription *answer;
  GstPromise *p;

  gst_sdp_message_new_from_text (c->answer, &sdp);
  answer = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  p = gst_promise_new ();
  g_signal_emit_by_name (c->webrtc, "set-remote-description", answer, p);
  gst_promise_wait (p);
  gst_promise_unref (p);
  gst_webrtc_session_description_free (answer);
  return TRUE;
}

/* Waits (at most 5 s) until the audio reaching webrtcbin has caps: an
 * offer made before says "OPUS/48000" without the channel count RFC 7587
 * requires ("opus/48000/2"), which strict answerers (Janus) refuse. An
 * opus_source caller's caps come with its first packet, pushed only once
 * connected: it does not wait. */
static void
wait_send_caps (WhipCaller *c)
{
  GstPad *pad = c->options.opus_source
      ? NULL
      : gst_element_get_static_pad (c->webrtc, "sink_0");
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (pad && !gst_pad_has_current_caps (pad) &&
      g_get_monotonic_time () < deadline)
    g_usleep (10000);
  gst_clear_object (&pad);
}

gchar *
whip_caller_create_offer (WhipCaller *c)
{
  GstWebRTCSessionDescription *offer;

  gst_element_set_state (c->pipeline, GST_STATE_PLAYING);
  wait_send_caps (c);
  set_direction (c);
  open_channel (c);
  offer = make_offer (c);
  gst_webrtc_session_description_free (offer);
  return local_sdp_after_gathering (c);
}

void
whip_caller_set_answer (WhipCaller *c, const gchar *sdp)
{
  g_free (c->answer);
  c->answer = g_strdup (sdp);
  if (c->options.ignore_answer_candidates)
    c->answer = without_candidates (c->answer);
  apply_answer (c, NULL);
  if (c->wav)
    whip_caller_play (c, c->wav);
}

/* The next fragment to PATCH: the candidates gathered since the last
 * one (waits for one), and a=end-of-candidates once gathering is over.
 * Sets @last then. */
static gchar *
next_fragment (WhipCaller *c, gint64 deadline, gboolean *last)
{
  GString *frag = g_string_new (c->frag_head);
  gchar *candidate;

  g_mutex_lock (&c->lock);
  while (g_queue_is_empty (&c->candidates) && !c->gathered &&
      g_cond_wait_until (&c->cond, &c->lock, deadline))
    ;
  while ((candidate = g_queue_pop_head (&c->candidates))) {
    g_string_append_printf (frag, "a=%s\r\n", candidate);
    g_free (candidate);
  }
  *last = c->gathered || g_get_monotonic_time () >= deadline;
  g_mutex_unlock (&c->lock);
  if (*last)
    g_string_append (frag, "a=end-of-candidates\r\n");
  return g_string_free (frag, FALSE);
}

/* RFC 9725 §4.3.1: each fragment with If-Match, until the last. Returns
 * 201, or the status of the PATCH that was refused. */
static guint
trickle_candidates (WhipCaller *c, GError **error)
{
  const gchar *if_match[] = { "If-Match", c->etag, NULL };
  gint64 deadline = g_get_monotonic_time () + ICE_WAIT_US;
  gboolean last = FALSE;
  guint status = 201;

  while (!last && status == 201) {
    gchar *frag = next_fragment (c, deadline, &last);
    guint s = whip_caller_request (
        c, "PATCH", "application/trickle-ice-sdpfrag", frag, if_match);
    if (s != SOUP_STATUS_NO_CONTENT) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
          "PATCH of candidates: HTTP %u: %s", s, c->reply ? c->reply : "");
      status = s;
    }
    g_free (frag);
  }
  return status;
}

guint
whip_caller_connect (WhipCaller *c, GError **error)
{
  SoupMessage *msg;
  GBytes *reply;
  gchar *sdp;
  guint status;
  const gchar *location;

  sdp = whip_caller_create_offer (c);
  msg = post_offer (c, sdp, &reply, error);
  g_free (sdp);
  status = soup_message_get_status (msg);
  if (reply && status == 201) {
    GUri *abs;
    gchar *answer;
    location = soup_message_headers_get_one (
        soup_message_get_response_headers (msg), "Location");
    c->etag = g_strdup (soup_message_headers_get_one (
        soup_message_get_response_headers (msg), "ETag"));
    abs = location ? g_uri_parse_relative (soup_message_get_uri (msg), location,
                         G_URI_FLAGS_NONE, NULL)
                   : NULL;
    c->session_url = abs ? g_uri_to_string (abs) : NULL;
    g_clear_pointer (&abs, g_uri_unref);
    answer =
        g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply));
    whip_caller_set_answer (c, answer);
    g_free (answer);
    if (c->options.trickle)
      status = trickle_candidates (c, error);
  } else if (reply && error && *error == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "HTTP %u: %.*s", status,
        (int)g_bytes_get_size (reply),
        (const gchar *)g_bytes_get_data (reply, NULL));
  }
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  return status;
}

/* Starts @wav now: its branch's timestamps are offset to the current
 * running time so the mixer takes it as live, not late. */
gboolean
whip_caller_play (WhipCaller *c, const gchar *wav)
{
  gchar *desc = g_strdup_printf (
      "filesrc location=\"%s\" ! wavparse "
      "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1",
      wav);
  GstElement *bin = gst_parse_bin_from_description (desc, TRUE, NULL);
  GstElement *mix = gst_bin_get_by_name (GST_BIN (c->pipeline), "mix");
  GstClock *clock = gst_element_get_clock (c->pipeline);
  GstPad *src, *sink;
  gboolean ok = FALSE;

  g_free (desc);
  if (bin && mix && clock) {
    GstClockTime now =
        gst_clock_get_time (clock) - gst_element_get_base_time (c->pipeline);
    gst_bin_add (GST_BIN (c->pipeline), bin);
    src = gst_element_get_static_pad (bin, "src");
    gst_pad_set_offset (src, (gint64)(now + 40 * GST_MSECOND));
    sink = gst_element_request_pad_simple (mix, "sink_%u");
    ok = gst_pad_link (src, sink) == GST_PAD_LINK_OK;
    gst_element_sync_state_with_parent (bin);
    gst_object_unref (src);
    gst_object_unref (sink);
  }
  gst_clear_object (&mix);
  gst_clear_object (&clock);
  return ok;
}

gboolean
whip_caller_push_opus (WhipCaller *c, const guint8 *packet, gsize size)
{
  GstBuffer *buf;

  if (c->appsrc == NULL)
    return FALSE;
  buf = gst_buffer_new_memdup (packet, size);
  GST_BUFFER_DURATION (buf) = 20 * GST_MSECOND;
  return gst_app_src_push_buffer (GST_APP_SRC (c->appsrc), buf) == GST_FLOW_OK;
}

static gboolean
find_inbound_rtp (GQuark field, const GValue *value, gpointer data)
{
  WhipCallerRtpStats *stats = data;
  const GstStructure *s;
  GstWebRTCStatsType type;
  guint64 received = 0;

  if (!GST_VALUE_HOLDS_STRUCTURE (value))
    return TRUE;
  s = gst_value_get_structure (value);
  if (!gst_structure_get (s, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, NULL) ||
      type != GST_WEBRTC_STATS_INBOUND_RTP)
    return TRUE;
  gst_structure_get_uint64 (s, "packets-received", &received);
  stats->packets_received += received;
  if (gst_structure_has_field (s, "packets-lost")) {
    gint64 lost = 0;
    gst_structure_get_int64 (s, "packets-lost", &lost);
    stats->packets_lost += lost;
  }
  if (gst_structure_has_field (s, "jitter")) {
    gdouble jitter = 0;
    gst_structure_get_double (s, "jitter", &jitter);
    stats->jitter_ms = MAX (stats->jitter_ms, jitter * 1000.0);
  }
  return TRUE;
}

gboolean
whip_caller_get_rtp_stats (WhipCaller *c, WhipCallerRtpStats *stats)
{
  GstPromise *p = gst_promise_new ();
  const GstStructure *reply;
  gboolean ok = FALSE;

  memset (stats, 0, sizeof *stats);
  g_signal_emit_by_name (c->webrtc, "get-stats", NULL, p);
  if (gst_promise_wait (p) == GST_PROMISE_RESULT_REPLIED &&
      (reply = gst_promise_get_reply (p)) != NULL) {
    gst_structure_foreach (reply, find_inbound_rtp, stats);
    ok = stats->packets_received > 0;
  }
  gst_promise_unref (p);
  return ok;
}

gboolean
whip_caller_wait_audio (WhipCaller *c, gdouble rms, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * (gint64)1000;
  gboolean ok;

  g_mutex_lock (&c->lock);
  while (c->peak_rms <= rms && g_cond_wait_until (&c->cond, &c->lock, deadline))
    ;
  ok = c->peak_rms > rms;
  g_mutex_unlock (&c->lock);
  return ok;
}

gdouble
whip_caller_get_peak_rms (WhipCaller *c)
{
  gdouble v;

  g_mutex_lock (&c->lock);
  v = c->peak_rms;
  g_mutex_unlock (&c->lock);
  return v;
}

gchar *
whip_caller_pop_message (WhipCaller *c, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * (gint64)1000;
  gchar *m;

  g_mutex_lock (&c->lock);
  while (g_queue_is_empty (&c->messages) &&
      g_cond_wait_until (&c->cond, &c->lock, deadline))
    ;
  m = g_queue_pop_head (&c->messages);
  g_mutex_unlock (&c->lock);
  return m;
}

gchar *
whip_caller_wait_message (WhipCaller *c, const gchar *needle, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + timeout_ms * (gint64)1000;
  gchar *m;

  while (g_get_monotonic_time () < deadline) {
    gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
    m = whip_caller_pop_message (c, (guint)MAX (left, 1));
    if (m && strstr (m, needle))
      return m;
    g_free (m);
  }
  return NULL;
}

gboolean
whip_caller_send (WhipCaller *c, const gchar *json)
{
  GstWebRTCDataChannel *channel;
  GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  g_mutex_lock (&c->lock);
  channel = c->channel ? g_object_ref (c->channel) : NULL;
  g_mutex_unlock (&c->lock);
  if (channel == NULL)
    return FALSE;
  /* The channel opens once SCTP is up, shortly after ICE and DTLS. */
  while (g_get_monotonic_time () < deadline) {
    g_object_get (channel, "ready-state", &state, NULL);
    if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
      break;
    g_usleep (10000);
  }
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
    gst_webrtc_data_channel_send_string (channel, json);
  g_object_unref (channel);
  return state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN;
}

gboolean
whip_caller_send_text (WhipCaller *c, const gchar *text)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;
  gboolean sent;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "text");
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  sent = whip_caller_send (c, json);
  g_free (json);
  json_node_unref (root);
  g_object_unref (b);
  return sent;
}

gchar *
whip_caller_ask (WhipCaller *c, const gchar *text, guint timeout_ms)
{
  if (!whip_caller_send_text (c, text))
    return NULL;
  return whip_caller_wait_message (c, "\"role\":\"agent\"", timeout_ms);
}

const gchar *
whip_caller_get_session_url (WhipCaller *c)
{
  return c->session_url;
}

const gchar *
whip_caller_get_etag (WhipCaller *c)
{
  return c->etag;
}

const gchar *
whip_caller_get_answer (WhipCaller *c)
{
  return c->answer;
}

guint
whip_caller_request (WhipCaller *c, const gchar *method,
    const gchar *content_type, const gchar *body, const gchar *const *headers)
{
  SoupMessage *msg;
  GBytes *reply;
  guint status;

  if (c->session_url == NULL)
    return 0;
  msg = new_request (c, method, c->session_url, content_type, body);
  for (; headers && headers[0] && headers[1]; headers += 2)
    soup_message_headers_replace (
        soup_message_get_request_headers (msg), headers[0], headers[1]);
  reply = soup_session_send_and_read (c->http, msg, NULL, NULL);
  status = soup_message_get_status (msg);
  g_free (c->reply);
  c->reply = reply
      ? g_strndup (g_bytes_get_data (reply, NULL), g_bytes_get_size (reply))
      : NULL;
  g_clear_pointer (&reply, g_bytes_unref);
  g_object_unref (msg);
  return status;
}

const gchar *
whip_caller_get_reply (WhipCaller *c)
{
  return c->reply;
}

guint
whip_caller_hangup (WhipCaller *c)
{
  return whip_caller_request (c, "DELETE", NULL, NULL, NULL);
}

void
whip_caller_free (WhipCaller *c)
{
  if (c == NULL)
    return;
  gst_element_set_state (c->pipeline, GST_STATE_NULL);
  gst_object_unref (c->webrtc);
  gst_clear_object (&c->appsrc);
  gst_object_unref (c->pipeline);
  g_clear_object (&c->channel);
  g_object_unref (c->http);
  g_queue_clear_full (&c->messages, g_free);
  g_queue_clear_full (&c->candidates, g_free);
  g_mutex_clear (&c->lock);
  g_cond_clear (&c->cond);
  g_free (c->url);
  g_free (c->wav);
  g_free (c->token);
  g_free (c->setup);
  g_free (c->resume);
  g_clear_pointer (&c->response_headers, soup_message_headers_unref);
  g_free (c->session_url);
  g_free (c->etag);
  g_free (c->answer);
  g_free (c->reply);
  g_free (c->frag_head);
  g_free (c);
}

const gchar *
whip_caller_get_response_header (WhipCaller *c, const gchar *name)
{
  return c->response_headers
      ? soup_message_headers_get_one (c->response_headers, name)
      : NULL;
}

guint
whip_caller_get_redirects (WhipCaller *c)
{
  return c->redirects;
}

/* A WHIP caller built on webrtcbin, for tests and the load generator.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _WhipCaller WhipCaller;

typedef struct
{
  const gchar *url; /* WHIP endpoint, e.g. http://127.0.0.1:P/whip */
  const gchar *wav; /* audio to send; NULL sends silence */
  gboolean sendonly; /* offer sendonly (OBS-style) instead of sendrecv */
  gboolean recvonly; /* offer recvonly and send nothing (a WHEP viewer) */
  gdouble tone_hz; /* without a WAV: a sine of this frequency, 0 = silence */
  gboolean data_channel; /* open the "events" data channel */
  const gchar *token; /* Bearer token, or NULL */
  const gchar *setup; /* rewrite a=setup:actpass to "active"/"passive" */
  /* Offer an a=fingerprint that is not our certificate's, as a man in the
   * middle of the media path would present another certificate. */
  gboolean forge_fingerprint;
  const gchar *resume; /* resume token: sent as Voiceagent-Resume */
  /* Trickle ICE (RFC 9725 §4.3.1): POST the offer at once, without
   * candidates, then PATCH them to the session as they are gathered, and
   * a=end-of-candidates last. */
  gboolean trickle;
  /* Drop the answer's candidates: ICE then works only if ours reached
   * the answerer (by trickle), whose checks we answer. */
  gboolean ignore_answer_candidates;
  /* Send Opus packets given to whip_caller_push_opus() instead of an
   * encoded source (the load generator encodes its audio once). */
  gboolean opus_source;
  /* Called on a streaming thread with every buffer of received audio
   * (16 kHz mono S16), and when it arrived (g_get_monotonic_time). */
  void (*on_audio) (const gint16 *pcm, gsize n_samples, gint64 arrival_us,
      gpointer user_data);
  /* Called on a streaming thread with every received RTP packet as it
   * enters the RTP session (decrypted, before the jitter buffer), and when
   * it arrived (g_get_monotonic_time). */
  void (*on_rtp) (
      const guint8 *packet, gsize size, gint64 arrival_us, gpointer user_data);
  gpointer user_data;
} WhipCallerOptions;

typedef struct
{
  guint64 packets_received;
  gint64 packets_lost;
  gdouble jitter_ms;
} WhipCallerRtpStats;

WhipCaller *whip_caller_new (const WhipCallerOptions *options);
void whip_caller_free (WhipCaller *caller);

/* For signalling other than WHIP (e.g. Janus's API): starts the
 * pipeline, makes the offer and returns its SDP once ICE gathering is
 * complete (free it). Blocks (at most ~5 s). */
gchar *whip_caller_create_offer (WhipCaller *caller);
/* Applies the answerer's @sdp to an offer of whip_caller_create_offer(). */
void whip_caller_set_answer (WhipCaller *caller, const gchar *sdp);

/* Offers, POSTs, applies the answer. Returns the HTTP status (201 on
 * success) and sets @error on failure. Follows up to 3 307/308 redirects
 * (same body and headers: RFC 9725 §4.5). Blocks (at most ~20 s). With
 * the trickle option, returns once every candidate went by PATCH, or the
 * status of the first PATCH that was not answered 204. */
guint whip_caller_connect (WhipCaller *caller, GError **error);

/* Plays @wav (any WAV) into the call from now on, mixed with what is
 * already playing. The `wav` option plays one as soon as connected. */
gboolean whip_caller_play (WhipCaller *caller, const gchar *wav);

/* With the opus_source option: sends one 20 ms Opus packet now. */
gboolean whip_caller_push_opus (
    WhipCaller *caller, const guint8 *packet, gsize size);

/* Received-audio RTP statistics from webrtcbin (inbound-rtp). */
gboolean whip_caller_get_rtp_stats (
    WhipCaller *caller, WhipCallerRtpStats *stats);

/* Waits until the received audio's RMS (0..1) goes above @rms, or
 * @timeout_ms passes. Returns TRUE if it did. */
gboolean whip_caller_wait_audio (
    WhipCaller *caller, gdouble rms, guint timeout_ms);
/* Peak RMS of any 20 ms of received audio so far. */
gdouble whip_caller_get_peak_rms (WhipCaller *caller);

/* The next data-channel message (free it), or NULL after @timeout_ms. */
gchar *whip_caller_pop_message (WhipCaller *caller, guint timeout_ms);
/* Waits for a message containing @needle; returns it (free) or NULL. */
gchar *whip_caller_wait_message (
    WhipCaller *caller, const gchar *needle, guint timeout_ms);
gboolean whip_caller_send (WhipCaller *caller, const gchar *json);
/* Types @text: sends {"type":"text","text":@text} (JSON-escaped). */
gboolean whip_caller_send_text (WhipCaller *caller, const gchar *text);
/* Types @text and waits for the agent's written answer (its transcript
 * event, free it); NULL if it could not be sent or no answer came. */
gchar *whip_caller_ask (
    WhipCaller *caller, const gchar *text, guint timeout_ms);

/* WHIP session URL (absolute) and ETag from the 201. */
const gchar *whip_caller_get_session_url (WhipCaller *caller);
const gchar *whip_caller_get_etag (WhipCaller *caller);
const gchar *whip_caller_get_answer (WhipCaller *caller);
/* A header of the last POST's response, or NULL. */
const gchar *whip_caller_get_response_header (
    WhipCaller *caller, const gchar *name);
/* Redirects followed by the last connect. */
guint whip_caller_get_redirects (WhipCaller *caller);

/* Sends an HTTP request to the session URL; returns the status. */
guint whip_caller_request (WhipCaller *caller, const gchar *method,
    const gchar *content_type, const gchar *body, const gchar *const *headers);

/* The body of the last whip_caller_request()'s response, or NULL. */
const gchar *whip_caller_get_reply (WhipCaller *caller);

/* DELETE the session; returns the status. */
guint whip_caller_hangup (WhipCaller *caller);

G_END_DECLS

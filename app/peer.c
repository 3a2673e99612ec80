/* voiceagent: one WebRTC peer (a webrtcbin) and its offer/answer exchange.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WHIP answers once, with every server candidate in it (no server-side
 * trickle): set-remote-description → create-answer → set-local-description
 * run on webrtcbin's own thread, then the main context waits for ICE
 * gathering to complete (or the timeout) and reads local-description.
 *
 * GStreamer 1.22's DTLS accepts any certificate the peer presents
 * (dtlsdec's on-peer-certificate handler returns TRUE) and webrtcbin never
 * compares it with the offer's a=fingerprint, which is what binds the
 * media to the signalling (RFC 8842 §5). So the peer does: once the DTLS
 * transport of the audio section is connected, its remote-certificate is
 * hashed and compared, and a mismatch is reported (impostor()).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/webrtc/webrtc.h>
#include "iceagent.h"
#include "peer.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

struct _VaPeer
{
  gatomicrefcount refs;
  /* Immutable */
  GstElement *webrtc;
  guint ice_timeout_ms;
  gchar *public_ip;
  VaPeerCallbacks callbacks;
  gpointer user_data;
  gulong gathering_id, ice_id;

  /* Main context only */
  gboolean freed; /* va_peer_free called: no more callbacks */
  gboolean local_set; /* local description is in place */
  gboolean answered; /* answered() was called */
  GSource *gather_timeout;
  gchar *etag;
  gchar *remote_ufrag;
  gchar *fingerprint; /* the offer's a=fingerprint for the audio section */
  guint audio_index;
  GstWebRTCDTLSTransport *dtls; /* the audio section's, once known */
  gulong dtls_state_id;
  gboolean certificate_checked;
  /* From the offer, for the answer (set before the negotiation starts) */
  guint32 reject_mask;
  gint inactive_index;
};

static VaPeer *
peer_ref (VaPeer *peer)
{
  g_atomic_ref_count_inc (&peer->refs);
  return peer;
}

static void
peer_unref (VaPeer *peer)
{
  if (!g_atomic_ref_count_dec (&peer->refs))
    return;
  gst_object_unref (peer->webrtc);
  g_free (peer->public_ip);
  g_free (peer->etag);
  g_free (peer->remote_ufrag);
  g_free (peer->fingerprint);
  g_free (peer);
}

typedef void (*PeerFunc) (VaPeer *peer, gpointer data);

typedef struct
{
  VaPeer *peer;
  PeerFunc func;
  gpointer data;
  GDestroyNotify free_data;
} PeerCall;

static gboolean
peer_call_dispatch (gpointer user_data)
{
  PeerCall *c = user_data;

  if (!c->peer->freed)
    c->func (c->peer, c->data);
  return G_SOURCE_REMOVE;
}

static void
peer_call_free (gpointer user_data)
{
  PeerCall *c = user_data;

  if (c->free_data && c->data)
    c->free_data (c->data);
  peer_unref (c->peer);
  g_free (c);
}

/* These notifications come on webrtcbin's threads, and disconnecting a
 * handler does not wait for a call of it already under way: each handler
 * holds a reference of its own, so the peer outlives a call that races
 * va_peer_free (ASan caught one in peer_call_dispatch). */
static void
peer_unref_notify (gpointer peer, GClosure *closure)
{
  peer_unref (peer);
}

static gulong
connect_held (
    VaPeer *peer, GObject *object, const gchar *signal, GCallback callback)
{
  return g_signal_connect_data (
      object, signal, callback, peer_ref (peer), peer_unref_notify, 0);
}

/* Runs @func on the main context, where all peer state lives. */
static void
on_main (VaPeer *peer, PeerFunc func, gpointer data, GDestroyNotify free_data)
{
  PeerCall *c = g_new0 (PeerCall, 1);

  c->peer = peer_ref (peer);
  c->func = func;
  c->data = data;
  c->free_data = free_data;
  g_main_context_invoke_full (
      NULL, G_PRIORITY_DEFAULT, peer_call_dispatch, c, peer_call_free);
}

/* Reports @error (borrowed) as the outcome of the negotiation, once. */
static void
fail (VaPeer *peer, gpointer data)
{
  GError *error = data;

  if (peer->answered)
    return;
  peer->answered = TRUE;
  peer->callbacks.answered (peer, NULL, error, peer->user_data);
}

static void
fail_async (VaPeer *peer, const gchar *what)
{
  GST_WARNING ("negotiation failed: %s", what);
  on_main (peer, fail,
      g_error_new (GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "WebRTC negotiation failed: %s", what),
      (GDestroyNotify)g_error_free);
}

gchar *
va_peer_new_etag (void)
{
  return g_strdup_printf ("\"%08x%08x\"", g_random_int (), g_random_int ());
}

static void
deliver_answer (VaPeer *peer)
{
  GstWebRTCSessionDescription *local = NULL;
  gchar *text;

  if (peer->answered || !peer->local_set)
    return;
  g_object_get (peer->webrtc, "local-description", &local, NULL);
  if (local == NULL) {
    GError *error = g_error_new (GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "webrtcbin has no local description");
    fail (peer, error);
    g_error_free (error);
    return;
  }
  if (peer->gather_timeout) {
    g_source_destroy (peer->gather_timeout);
    g_clear_pointer (&peer->gather_timeout, g_source_unref);
  }
  va_sdp_add_end_of_candidates (local->sdp);
  va_sdp_announce_address (local->sdp, peer->public_ip);
  text = gst_sdp_message_as_text (local->sdp);
  gst_webrtc_session_description_free (local);
  peer->answered = TRUE;
  g_free (peer->etag);
  peer->etag = va_peer_new_etag ();
  peer->callbacks.answered (peer, text, NULL, peer->user_data);
  g_free (text);
}

static gboolean
gather_timeout_fired (gpointer data)
{
  VaPeer *peer = data;

  GST_INFO ("ICE gathering not complete after %u ms: answering with the "
            "candidates found so far",
      peer->ice_timeout_ms);
  g_clear_pointer (&peer->gather_timeout, g_source_unref);
  deliver_answer (peer);
  return G_SOURCE_REMOVE;
}

static void
check_certificate (VaPeer *peer, gpointer data)
{
  GstWebRTCDTLSTransportState state;
  gchar *pem = NULL;

  if (peer->certificate_checked || peer->dtls == NULL)
    return;
  g_object_get (peer->dtls, "state", &state, "remote-certificate", &pem, NULL);
  if (state != GST_WEBRTC_DTLS_TRANSPORT_STATE_CONNECTED || pem == NULL) {
    g_free (pem);
    return;
  }
  peer->certificate_checked = TRUE;
  if (va_sdp_certificate_matches (pem, peer->fingerprint)) {
    GST_DEBUG ("the peer's DTLS certificate matches its a=fingerprint");
  } else {
    GST_WARNING ("the peer's DTLS certificate does not match its offer's "
                 "a=fingerprint %s: ending it",
        peer->fingerprint);
    if (peer->callbacks.impostor)
      peer->callbacks.impostor (peer, peer->user_data);
  }
  g_free (pem);
}

/* (any thread) */
static void
on_dtls_state (GObject *dtls, GParamSpec *pspec, gpointer data)
{
  on_main (data, check_certificate, NULL, NULL);
}

/* The DTLS transport of the audio section exists once both descriptions
 * are set. */
static void
watch_certificate (VaPeer *peer)
{
  GArray *transceivers = NULL;
  guint i;

  g_signal_emit_by_name (peer->webrtc, "get-transceivers", &transceivers);
  for (i = 0; transceivers && i < transceivers->len && !peer->dtls; i++) {
    GstWebRTCRTPTransceiver *t =
        g_array_index (transceivers, GstWebRTCRTPTransceiver *, i);
    GstWebRTCRTPReceiver *receiver = NULL;
    guint mline = G_MAXUINT;

    g_object_get (t, "mlineindex", &mline, "receiver", &receiver, NULL);
    if (receiver && mline == peer->audio_index)
      g_object_get (receiver, "transport", &peer->dtls, NULL);
    gst_clear_object (&receiver);
  }
  g_clear_pointer (&transceivers, g_array_unref);
  if (peer->dtls == NULL) {
    GST_WARNING ("no DTLS transport for section %u: its certificate cannot "
                 "be checked",
        peer->audio_index);
    return;
  }
  peer->dtls_state_id = connect_held (
      peer, G_OBJECT (peer->dtls), "notify::state", G_CALLBACK (on_dtls_state));
  check_certificate (peer, NULL);
}

static void
local_description_set (VaPeer *peer, gpointer data)
{
  GstWebRTCICEGatheringState state;

  peer->local_set = TRUE;
  watch_certificate (peer);
  g_object_get (peer->webrtc, "ice-gathering-state", &state, NULL);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
    deliver_answer (peer);
    return;
  }
  peer->gather_timeout = g_timeout_source_new (peer->ice_timeout_ms);
  g_source_set_callback (
      peer->gather_timeout, gather_timeout_fired, peer, NULL);
  g_source_attach (peer->gather_timeout, NULL);
}

static void
gathering_changed (VaPeer *peer, gpointer data)
{
  GstWebRTCICEGatheringState state;

  g_object_get (peer->webrtc, "ice-gathering-state", &state, NULL);
  if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE)
    deliver_answer (peer);
}

static void
on_gathering_state (GObject *webrtc, GParamSpec *pspec, gpointer data)
{
  on_main (data, gathering_changed, NULL, NULL);
}

static void
ice_changed (VaPeer *peer, gpointer data)
{
  GstWebRTCICEConnectionState state;

  g_object_get (peer->webrtc, "ice-connection-state", &state, NULL);
  if (peer->callbacks.ice_state)
    peer->callbacks.ice_state (peer, state, peer->user_data);
}

static void
on_ice_state (GObject *webrtc, GParamSpec *pspec, gpointer data)
{
  on_main (data, ice_changed, NULL, NULL);
}

/* Returns TRUE if the promise was answered without an error. */
static gboolean
promise_ok (GstPromise *promise, const gchar *step, VaPeer *peer)
{
  const GstStructure *reply;
  GError *error = NULL;

  if (gst_promise_wait (promise) != GST_PROMISE_RESULT_REPLIED) {
    fail_async (peer, step);
    return FALSE;
  }
  reply = gst_promise_get_reply (promise);
  if (reply && gst_structure_get (reply, "error", G_TYPE_ERROR, &error, NULL)) {
    gchar *what = g_strdup_printf ("%s: %s", step, error->message);
    fail_async (peer, what);
    g_free (what);
    g_error_free (error);
    return FALSE;
  }
  return TRUE;
}

static void
on_local_set (GstPromise *promise, gpointer data)
{
  VaPeer *peer = data;

  if (promise_ok (promise, "set-local-description", peer))
    on_main (peer, local_description_set, NULL, NULL);
  gst_promise_unref (promise);
}

static void
on_answer_created (GstPromise *promise, gpointer data)
{
  VaPeer *peer = data;
  GstWebRTCSessionDescription *answer = NULL;

  if (promise_ok (promise, "create-answer", peer)) {
    gst_structure_get (gst_promise_get_reply (promise), "answer",
        GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, NULL);
    if (answer == NULL) {
      fail_async (peer, "create-answer gave no answer");
    } else {
      GstPromise *next = gst_promise_new_with_change_func (
          on_local_set, peer_ref (peer), (GDestroyNotify)peer_unref);

      va_sdp_restrict_answer (
          answer->sdp, peer->reject_mask, peer->inactive_index);
      g_signal_emit_by_name (
          peer->webrtc, "set-local-description", answer, next);
      gst_webrtc_session_description_free (answer);
    }
  }
  gst_promise_unref (promise);
}

static void
on_remote_set (GstPromise *promise, gpointer data)
{
  VaPeer *peer = data;

  if (promise_ok (promise, "set-remote-description", peer)) {
    GstPromise *next = gst_promise_new_with_change_func (
        on_answer_created, peer_ref (peer), (GDestroyNotify)peer_unref);
    g_signal_emit_by_name (peer->webrtc, "create-answer", NULL, next);
  }
  gst_promise_unref (promise);
}

VaPeer *
va_peer_new (GstElement *webrtc, guint ice_timeout_ms, const gchar *public_ip,
    const VaPeerCallbacks *callbacks, gpointer user_data)
{
  VaPeer *peer = g_new0 (VaPeer, 1);

  g_atomic_ref_count_init (&peer->refs);
  peer->webrtc = gst_object_ref (webrtc);
  peer->ice_timeout_ms = ice_timeout_ms;
  peer->public_ip = g_strdup (public_ip);
  peer->callbacks = *callbacks;
  peer->user_data = user_data;
  va_ice_agent_disable_upnp (webrtc);
  peer->gathering_id = connect_held (peer, G_OBJECT (webrtc),
      "notify::ice-gathering-state", G_CALLBACK (on_gathering_state));
  peer->ice_id = connect_held (peer, G_OBJECT (webrtc),
      "notify::ice-connection-state", G_CALLBACK (on_ice_state));
  return peer;
}

void
va_peer_free (VaPeer *peer)
{
  if (peer == NULL)
    return;
  peer->freed = TRUE;
  g_signal_handler_disconnect (peer->webrtc, peer->gathering_id);
  g_signal_handler_disconnect (peer->webrtc, peer->ice_id);
  if (peer->dtls_state_id)
    g_signal_handler_disconnect (peer->dtls, peer->dtls_state_id);
  /* Now, not with the last reference: a DTLS transport kept past the
   * pipeline's teardown outlived OpenSSL's cleanup at exit (SSL_free
   * crashed on a clock thread). */
  gst_clear_object (&peer->dtls);
  if (peer->gather_timeout) {
    g_source_destroy (peer->gather_timeout);
    g_clear_pointer (&peer->gather_timeout, g_source_unref);
  }
  peer_unref (peer);
}

void
va_peer_answer (VaPeer *peer, VaOffer *offer)
{
  GstWebRTCSessionDescription *desc;
  GstSDPMessage *sdp = NULL;
  GstPromise *promise;
  const gchar *ufrag = va_sdp_get_ice_ufrag (offer->sdp);

  g_free (peer->remote_ufrag);
  peer->remote_ufrag = g_strdup (ufrag);
  peer->reject_mask = offer->reject_mask;
  peer->inactive_index = offer->inactive_index;
  peer->audio_index = offer->audio_index;
  g_free (peer->fingerprint);
  peer->fingerprint =
      g_strdup (va_sdp_get_fingerprint (offer->sdp, offer->audio_index));
  gst_sdp_message_copy (offer->sdp, &sdp);
  desc = gst_webrtc_session_description_new (GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  promise = gst_promise_new_with_change_func (
      on_remote_set, peer_ref (peer), (GDestroyNotify)peer_unref);
  g_signal_emit_by_name (peer->webrtc, "set-remote-description", desc, promise);
  gst_webrtc_session_description_free (desc);
}

guint
va_peer_add_candidates (VaPeer *peer, const VaSdpFrag *frag)
{
  guint i, added = 0;

  for (i = 0; i < frag->candidates->len; i++) {
    const VaCandidate *c = g_ptr_array_index (frag->candidates, i);
    g_signal_emit_by_name (
        peer->webrtc, "add-ice-candidate", c->mline, c->candidate);
    added++;
  }
  return added;
}

void
va_peer_add_ice_servers (VaPeer *peer, gchar **stun, gchar **turn)
{
  gboolean ok;

  if (stun && stun[0])
    g_object_set (peer->webrtc, "stun-server", stun[0], NULL);
  /* Only servers given with their own user:password (turn://u:p@host)
   * serve this side; the others are the callers' (--turn-secret). */
  for (; turn && *turn; turn++)
    if (strstr (*turn, "://") && strchr (*turn, '@'))
      g_signal_emit_by_name (peer->webrtc, "add-turn-server", *turn, &ok);
}

const gchar *
va_peer_get_etag (VaPeer *peer)
{
  return peer->etag;
}

const gchar *
va_peer_get_remote_ufrag (VaPeer *peer)
{
  return peer->remote_ufrag;
}

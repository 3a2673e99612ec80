/* voiceagent: one WebRTC peer (a webrtcbin) and its offer/answer exchange.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "sdp.h"

G_BEGIN_DECLS

typedef struct _VaPeer VaPeer;

typedef struct
{
  /* The answer is ready (@answer_sdp) or negotiation failed (@error). Once. */
  void (*answered) (VaPeer *peer, const gchar *answer_sdp, const GError *error,
      gpointer user_data);
  /* ICE connection state changed. */
  void (*ice_state) (
      VaPeer *peer, GstWebRTCICEConnectionState state, gpointer user_data);
  /* The peer's DTLS certificate is not the one its offer's a=fingerprint
   * names: someone on the media path sits between it and us. End it. */
  void (*impostor) (VaPeer *peer, gpointer user_data);
} VaPeerCallbacks;

/* Takes a reference to @webrtc (already in a playing pipeline). Callbacks
 * run on the main context. */
VaPeer *va_peer_new (GstElement *webrtc, guint ice_timeout_ms,
    const gchar *public_ip, const VaPeerCallbacks *callbacks,
    gpointer user_data);
/* Stops callbacks and drops the peer (not the webrtcbin's pipeline). */
void va_peer_free (VaPeer *peer);

/* Starts negotiation with @offer (ownership of its SDP moves to the peer). */
void va_peer_answer (VaPeer *peer, VaOffer *offer);

/* Hands trickled candidates to ICE. Returns how many were added. */
guint va_peer_add_candidates (VaPeer *peer, const VaSdpFrag *frag);

const gchar *va_peer_get_etag (VaPeer *peer);
/* A new WHIP session ETag (free it): a peer's, or a gateway call's, whose
 * peer is in the media gateway. */
gchar *va_peer_new_etag (void);
const gchar *va_peer_get_remote_ufrag (VaPeer *peer);

void va_peer_add_ice_servers (VaPeer *peer, gchar **stun, gchar **turn);

G_END_DECLS

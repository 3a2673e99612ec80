/* voiceagent: SDP checks and edits for WHIP/WHEP.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

G_BEGIN_DECLS

typedef enum {
  VA_SDP_ERROR_PARSE, /* not SDP at all → 400 */
  VA_SDP_ERROR_NO_AUDIO, /* no usable audio section → 422 */
  VA_SDP_ERROR_NO_OPUS, /* audio without Opus → 422 */
} VaSdpError;

/* Limits on what a client may send, far above what real clients do (a
 * browser's offer has 1 to 5 media sections, its longest line is a
 * candidate or an fmtp of a few hundred bytes, and it trickles a handful
 * of candidates at a time): anything over them is refused with a 400. */
#define VA_SDP_MAX_MEDIA 32 /* m= lines in an offer or a fragment */
#define VA_SDP_MAX_LINE 4096 /* bytes in one line */
#define VA_SDPFRAG_MAX_CANDIDATES 64 /* a=candidate lines in a fragment */
#define VA_SDPFRAG_MAX_LINES 1024

#define VA_SDP_ERROR (va_sdp_error_quark ())
GQuark va_sdp_error_quark (void);

typedef struct
{
  GstSDPMessage *sdp; /* owned */
  guint audio_index; /* first audio m-line in use */
  gint opus_pt; /* its Opus payload type */
  GstWebRTCRTPTransceiverDirection direction; /* as the offerer sees it */
  gboolean has_data_channel; /* an m=application webrtc-datachannel section */
  /* What the answer must say for the media sections the agent does not use
   * (video, a second audio, one the offerer rejected): bit i set rejects
   * m-line i (port 0, out of the BUNDLE group). */
  guint32 reject_mask;
  /* The offerer-tagged section when it is one of those: RFC 8843 §7.3.3
   * forbids rejecting it, so it is answered inactive instead. -1 if none. */
  gint inactive_index;
} VaOffer;

/* Parses and checks an offer, and rewrites what webrtcbin would refuse in
 * an offer the RFCs allow (see normalize_offer in sdp.c). Returns NULL with
 * @error on bad input: VA_SDP_ERROR_PARSE for text that is not SDP or goes
 * over the limits above, or an Opus payload type outside 0..127. */
VaOffer *va_offer_parse (const gchar *text, gsize len, GError **error);
void va_offer_free (VaOffer *offer);

/* Applies @offer's reject_mask and inactive_index to webrtcbin's answer to
 * it, before it is set as the local description: webrtcbin 1.22 accepts
 * every media section it can receive. */
void va_sdp_restrict_answer (
    GstSDPMessage *answer, guint32 reject_mask, gint inactive_index);

/* Adds a=end-of-candidates to every media section that lacks it. */
void va_sdp_add_end_of_candidates (GstSDPMessage *sdp);

/* For a server behind NAT: for every host candidate, adds the same one with
 * @public_ip in place of its address (as mediasoup's announcedIp does). */
void va_sdp_announce_address (GstSDPMessage *sdp, const gchar *public_ip);

/* Trickle-ICE fragment (RFC 8840) sent with PATCH. */
typedef struct
{
  gchar *ufrag; /* a=ice-ufrag, or NULL */
  gchar *pwd; /* a=ice-pwd, or NULL */
  GPtrArray *candidates; /* of VaCandidate* */
  gboolean end_of_candidates; /* a=end-of-candidates: no more will come */
} VaSdpFrag;

typedef struct
{
  gchar *mid; /* the a=mid the candidate follows, or NULL */
  guint mline; /* index of the m= line it follows */
  gchar *candidate; /* "candidate:..." without "a=" */
} VaCandidate;

VaSdpFrag *va_sdpfrag_parse (const gchar *text, gsize len, GError **error);
void va_sdpfrag_free (VaSdpFrag *frag);

/* The ufrag of the first media section (or the session), or NULL. */
const gchar *va_sdp_get_ice_ufrag (const GstSDPMessage *sdp);

/* The a=fingerprint ("sha-256 AB:CD:…") of media section @index, else of
 * the session, or NULL. */
const gchar *va_sdp_get_fingerprint (const GstSDPMessage *sdp, guint index);

/* TRUE when the first certificate in @pem hashes to @fingerprint, an
 * a=fingerprint value (RFC 8122: "sha-256 AB:CD:…"; sha-1, sha-256,
 * sha-384 and sha-512 are known, hex case ignored). */
gboolean va_sdp_certificate_matches (
    const gchar *pem, const gchar *fingerprint);

G_END_DECLS

/* voiceagent: SDP checks and edits for WHIP/WHEP.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>
#include "sdp.h"

G_DEFINE_QUARK (va - sdp - error - quark, va_sdp_error);

static GstWebRTCRTPTransceiverDirection
media_direction (const GstSDPMedia *media, const GstSDPMessage *sdp)
{
  static const struct
  {
    const gchar *attr;
    GstWebRTCRTPTransceiverDirection dir;
  } dirs[] = {
    { "sendrecv", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV },
    { "sendonly", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY },
    { "recvonly", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY },
    { "inactive", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE },
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (dirs); i++) {
    if (gst_sdp_media_get_attribute_val (media, dirs[i].attr))
      return dirs[i].dir;
  }
  for (i = 0; i < G_N_ELEMENTS (dirs); i++) {
    if (gst_sdp_message_get_attribute_val (sdp, dirs[i].attr))
      return dirs[i].dir;
  }
  return GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV; /* RFC 4566 default */
}

/* Returns the payload type of Opus in @media, or -1. */
static gint
find_opus (const GstSDPMedia *media)
{
  guint i;

  for (i = 0; i < gst_sdp_media_attributes_len (media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute (media, i);
    gint pt;
    gchar codec[32];

    if (g_strcmp0 (a->key, "rtpmap") != 0 || a->value == NULL)
      continue;
    if (sscanf (a->value, "%d %31[^/]", &pt, codec) == 2 &&
        g_ascii_strcasecmp (codec, "opus") == 0)
      return pt;
  }
  return -1;
}

static gboolean
looks_like_sdp (const gchar *text, gsize len)
{
  /* gst_sdp_message_parse_buffer accepts almost anything; insist on the
   * mandatory first line so garbage is a 400, not an empty offer. */
  return len >= 4 && strncmp (text, "v=0", 3) == 0 &&
      (text[3] == '\r' || text[3] == '\n');
}

VaOffer *
va_offer_parse (const gchar *text, gsize len, GError **error)
{
  VaOffer *offer;
  guint i;
  gboolean saw_audio = FALSE;

  if (!looks_like_sdp (text, len)) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the body is not an SDP offer (it must start with \"v=0\")");
    return NULL;
  }
  offer = g_new0 (VaOffer, 1);
  offer->opus_pt = -1;
  gst_sdp_message_new (&offer->sdp);
  if (gst_sdp_message_parse_buffer (
          (const guint8 *)text, (guint)len, offer->sdp) != GST_SDP_OK ||
      gst_sdp_message_medias_len (offer->sdp) == 0) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the SDP offer could not be parsed or has no media section");
    va_offer_free (offer);
    return NULL;
  }
  for (i = 0; i < gst_sdp_message_medias_len (offer->sdp); i++) {
    const GstSDPMedia *m = gst_sdp_message_get_media (offer->sdp, i);
    const gchar *kind = gst_sdp_media_get_media (m);

    if (g_strcmp0 (kind, "application") == 0 &&
        g_strstr_len (gst_sdp_media_get_proto (m), -1, "SCTP"))
      offer->has_data_channel = TRUE;
    if (g_strcmp0 (kind, "audio") != 0 || gst_sdp_media_get_port (m) == 0 ||
        offer->opus_pt >= 0)
      continue;
    saw_audio = TRUE;
    offer->opus_pt = find_opus (m);
    offer->audio_index = i;
    offer->direction = media_direction (m, offer->sdp);
  }
  if (!saw_audio) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_NO_AUDIO,
        "the offer has no audio section: a voice call needs one");
  } else if (offer->opus_pt < 0) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_NO_OPUS,
        "the offer's audio section does not offer Opus, the only codec "
        "the agent speaks");
  } else {
    return offer;
  }
  va_offer_free (offer);
  return NULL;
}

void
va_offer_free (VaOffer *offer)
{
  if (offer == NULL)
    return;
  if (offer->sdp)
    gst_sdp_message_free (offer->sdp);
  g_free (offer);
}

void
va_sdp_add_end_of_candidates (GstSDPMessage *sdp)
{
  guint i;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, i);
    if (gst_sdp_media_get_attribute_val (m, "end-of-candidates") == NULL)
      gst_sdp_media_add_attribute (m, "end-of-candidates", "");
  }
}

/* Replaces the connection address (5th field) of a candidate line. */
static gchar *
candidate_with_address (const gchar *candidate, const gchar *address)
{
  gchar **f = g_strsplit (candidate, " ", -1);
  gchar *out = NULL;

  if (g_strv_length (f) >= 8 && g_str_equal (f[6], "typ") &&
      g_str_equal (f[7], "host") && !g_str_equal (f[4], address)) {
    g_free (f[4]);
    f[4] = g_strdup (address);
    out = g_strjoinv (" ", f);
  }
  g_strfreev (f);
  return out;
}

void
va_sdp_announce_address (GstSDPMessage *sdp, const gchar *public_ip)
{
  guint i, j;

  for (i = 0; public_ip && i < gst_sdp_message_medias_len (sdp); i++) {
    GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, i);
    GPtrArray *extra = g_ptr_array_new_with_free_func (g_free);

    for (j = 0; j < gst_sdp_media_attributes_len (m); j++) {
      const GstSDPAttribute *a = gst_sdp_media_get_attribute (m, j);
      gchar *c;
      if (g_strcmp0 (a->key, "candidate") == 0 &&
          (c = candidate_with_address (a->value, public_ip)))
        g_ptr_array_add (extra, c);
    }
    for (j = 0; j < extra->len; j++)
      gst_sdp_media_add_attribute (
          m, "candidate", g_ptr_array_index (extra, j));
    g_ptr_array_unref (extra);
  }
}

static void
candidate_free (VaCandidate *c)
{
  g_free (c->mid);
  g_free (c->candidate);
  g_free (c);
}

void
va_sdpfrag_free (VaSdpFrag *frag)
{
  if (frag == NULL)
    return;
  g_free (frag->ufrag);
  g_free (frag->pwd);
  g_ptr_array_unref (frag->candidates);
  g_free (frag);
}

VaSdpFrag *
va_sdpfrag_parse (const gchar *text, gsize len, GError **error)
{
  VaSdpFrag *frag = g_new0 (VaSdpFrag, 1);
  gchar *copy = g_strndup (text, len);
  gchar **lines = g_strsplit (copy, "\n", -1);
  gchar *mid = NULL;
  gint mline = -1;
  gboolean ok = TRUE;
  guint i;

  frag->candidates =
      g_ptr_array_new_with_free_func ((GDestroyNotify)candidate_free);
  for (i = 0; ok && lines[i]; i++) {
    gchar *l = g_strstrip (lines[i]);
    if (*l == '\0')
      continue;
    if (g_str_has_prefix (l, "a=ice-ufrag:")) {
      g_free (frag->ufrag);
      frag->ufrag = g_strdup (l + 12);
    } else if (g_str_has_prefix (l, "a=ice-pwd:")) {
      g_free (frag->pwd);
      frag->pwd = g_strdup (l + 10);
    } else if (g_str_has_prefix (l, "m=")) {
      mline++;
      g_clear_pointer (&mid, g_free);
    } else if (g_str_has_prefix (l, "a=mid:")) {
      g_free (mid);
      mid = g_strdup (l + 6);
    } else if (g_str_has_prefix (l, "a=candidate:")) {
      VaCandidate *c = g_new0 (VaCandidate, 1);
      c->mid = g_strdup (mid);
      c->mline = MAX (mline, 0);
      c->candidate = g_strdup (l + 2);
      g_ptr_array_add (frag->candidates, c);
    } else if (l[0] == '\0' || l[1] != '=') {
      ok = FALSE;
    }
  }
  g_free (mid);
  g_strfreev (lines);
  g_free (copy);
  if (!ok) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the body is not an SDP fragment (RFC 8840): lines must be \"x=...\"");
    va_sdpfrag_free (frag);
    return NULL;
  }
  return frag;
}

const gchar *
va_sdp_get_ice_ufrag (const GstSDPMessage *sdp)
{
  const gchar *ufrag = NULL;

  if (gst_sdp_message_medias_len (sdp) > 0)
    ufrag = gst_sdp_media_get_attribute_val (
        gst_sdp_message_get_media (sdp, 0), "ice-ufrag");
  return ufrag ? ufrag : gst_sdp_message_get_attribute_val (sdp, "ice-ufrag");
}

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

/* Parses a payload type the way RFC 3550 defines it: 7 bits, digits only
 * (sscanf's "%d" would take "-1", "+5" or " 7"). Returns -1 if it is not. */
static gint
parse_pt (const gchar *text, gsize len)
{
  gint pt = 0;
  gsize i;

  if (len == 0 || len > 3)
    return -1;
  for (i = 0; i < len; i++) {
    if (!g_ascii_isdigit (text[i]))
      return -1;
    pt = pt * 10 + (text[i] - '0');
  }
  return pt <= 127 ? pt : -1;
}

/* Returns the payload type of Opus in @media, in the offerer's order of
 * preference (the m= line's format list), or -1 if there is none. The
 * number is substituted into pipeline descriptions (${OPUS_PT}), so an
 * rtpmap naming Opus with anything but a payload type is an error, not a
 * codec to skip. */
static gint
find_opus (const GstSDPMedia *media, guint index, GError **error)
{
  gint opus[128];
  guint i;

  memset (opus, 0, sizeof (opus));
  for (i = 0; i < gst_sdp_media_attributes_len (media); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute (media, i);
    const gchar *sp;
    gint pt;

    if (g_strcmp0 (a->key, "rtpmap") != 0 || a->value == NULL ||
        (sp = strchr (a->value, ' ')) == NULL ||
        g_ascii_strncasecmp (sp + 1, "opus/", 5) != 0)
      continue;
    pt = parse_pt (a->value, sp - a->value);
    if (pt < 0) {
      g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
          "media %u: \"a=rtpmap:%.*s\": an RTP payload type is a number "
          "from 0 to 127",
          index, (gint)MIN (sp - a->value, 16), a->value);
      return -1;
    }
    opus[pt] = 1;
  }
  for (i = 0; i < gst_sdp_media_formats_len (media); i++) {
    const gchar *f = gst_sdp_media_get_format (media, i);
    gint pt = parse_pt (f, strlen (f));

    if (pt >= 0 && opus[pt])
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

/* Checks what the SDP parser would otherwise take silently, before it
 * runs: NUL bytes (GstSDPMessage's strings would end there), bytes that
 * are not UTF-8 (RFC 8866 §5: SDP text is UTF-8), lines longer than
 * VA_SDP_MAX_LINE and more than @max_media m= lines, so that an offer with
 * thousands of media sections is refused in one pass over its bytes instead
 * of being parsed and handed to webrtcbin. */
static gboolean
check_text (const gchar *text, gsize len, guint max_media, guint max_lines,
    const gchar *what, GError **error)
{
  const gchar *line = text, *end = text + len, *bad;
  guint n_media = 0, n_lines = 0;

  if (memchr (text, '\0', len)) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the %s contains a NUL byte (at byte %" G_GSIZE_FORMAT ")", what,
        (gsize)((const gchar *)memchr (text, '\0', len) - text));
    return FALSE;
  }
  if (!g_utf8_validate_len (text, len, &bad)) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the %s is not UTF-8 (invalid byte 0x%02x at byte %" G_GSIZE_FORMAT ")",
        what, (guint)(guchar)*bad, (gsize)(bad - text));
    return FALSE;
  }
  while (line < end) {
    const gchar *nl = memchr (line, '\n', end - line);
    gsize n = (nl ? nl : end) - line;

    if (n > VA_SDP_MAX_LINE) {
      g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
          "line %u of the %s is %" G_GSIZE_FORMAT
          " bytes long, over the limit of %u",
          n_lines + 1, what, n, VA_SDP_MAX_LINE);
      return FALSE;
    }
    if (++n_lines > max_lines) {
      g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
          "the %s has more than %u lines", what, max_lines);
      return FALSE;
    }
    if (n >= 2 && line[0] == 'm' && line[1] == '=' && ++n_media > max_media) {
      g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
          "the %s has more than %u media sections (m= lines)", what, max_media);
      return FALSE;
    }
    line = nl ? nl + 1 : end;
  }
  return TRUE;
}

/* ---- Offer normalization: what webrtcbin 1.22 refuses but RFCs allow ---- */

static gint
media_find_attribute (const GstSDPMedia *m, const gchar *key)
{
  guint i;

  for (i = 0; i < gst_sdp_media_attributes_len (m); i++) {
    if (g_strcmp0 (gst_sdp_media_get_attribute (m, i)->key, key) == 0)
      return (gint)i;
  }
  return -1;
}

static void
media_remove_all (GstSDPMedia *m, const gchar *key)
{
  gint i;

  while ((i = media_find_attribute (m, key)) >= 0)
    gst_sdp_media_remove_attribute (m, (guint)i);
}

/* Gives @dst every @key attribute of @src, in place of its own. */
static void
media_copy_attributes (
    GstSDPMedia *dst, const GstSDPMedia *src, const gchar *key)
{
  guint i;

  media_remove_all (dst, key);
  for (i = 0; i < gst_sdp_media_attributes_len (src); i++) {
    const GstSDPAttribute *a = gst_sdp_media_get_attribute (src, i);
    if (g_strcmp0 (a->key, key) == 0)
      gst_sdp_media_add_attribute (dst, a->key, a->value);
  }
}

/* The transport attributes: ICE credentials and DTLS identity and role. */
static const gchar *const transport_keys[] = { "ice-ufrag", "ice-pwd",
  "fingerprint", "setup" };

/* RFC 8866 lets these stand at session level as the default of every media
 * section, and a media-level one overrides it. webrtcbin 1.22 gets both
 * cases wrong: it prefers a session-level ice-ufrag/ice-pwd over the media
 * section's own, it refuses a fingerprint given at both levels ("No
 * fingerprint lines in sdp for media N": its test is inverted) and it only
 * looks for a=setup in the media section. So each media section gets its
 * own copy of the session-level values it does not override, and the
 * session-level ones go. */
static void
push_session_transport_down (GstSDPMessage *sdp)
{
  guint i, k, j;

  for (k = 0; k < G_N_ELEMENTS (transport_keys); k++) {
    const gchar *key = transport_keys[k];

    if (gst_sdp_message_get_attribute_val (sdp, key) == NULL)
      continue;
    for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
      GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, i);

      if (media_find_attribute (m, key) >= 0)
        continue;
      for (j = 0; j < gst_sdp_message_attributes_len (sdp); j++) {
        const GstSDPAttribute *a = gst_sdp_message_get_attribute (sdp, j);
        if (g_strcmp0 (a->key, key) == 0)
          gst_sdp_media_add_attribute (m, a->key, a->value);
      }
    }
    for (j = gst_sdp_message_attributes_len (sdp); j > 0; j--) {
      if (g_strcmp0 (gst_sdp_message_get_attribute (sdp, j - 1)->key, key) == 0)
        gst_sdp_message_remove_attribute (sdp, j - 1);
    }
  }
}

/* webrtcbin needs an a=mid on every media section (its transceivers are
 * found by mid). An offer from before RFC 5888 was common, or from a
 * non-JSEP client, may have none: give those a mid of their own. */
static void
add_missing_mids (GstSDPMessage *sdp)
{
  guint i, next = 0;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, i);
    const gchar *mid = gst_sdp_media_get_attribute_val (m, "mid");
    gchar *name = NULL;
    guint j;
    gboolean taken;

    if (mid && *mid)
      continue;
    media_remove_all (m, "mid");
    do {
      g_free (name);
      name = g_strdup_printf ("va%u", next++);
      taken = FALSE;
      for (j = 0; j < gst_sdp_message_medias_len (sdp) && !taken; j++)
        taken = g_strcmp0 (gst_sdp_media_get_attribute_val (
                               gst_sdp_message_get_media (sdp, j), "mid"),
                    name) == 0;
    } while (taken);
    gst_sdp_media_add_attribute (m, "mid", name);
    g_free (name);
  }
}

static gint
find_mid (const GstSDPMessage *sdp, const gchar *mid)
{
  guint i;

  for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
    if (g_strcmp0 (gst_sdp_media_get_attribute_val (
                       gst_sdp_message_get_media (sdp, i), "mid"),
            mid) == 0)
      return (gint)i;
  }
  return -1;
}

/* Returns the mids of the offer's BUNDLE group (NULL if it has none), and
 * rewrites the group as webrtcbin reads it: as the first a=group attribute
 * (it reads no other), with one space between mids (it splits on each
 * single space, so "BUNDLE 0  1" would name an empty mid). */
static gchar **
normalize_bundle_group (GstSDPMessage *sdp)
{
  gint bundle = -1, first = -1;
  guint i;
  gchar **words, **mids, *joined, *value;
  GPtrArray *kept;
  GstSDPAttribute attr;

  for (i = 0; i < gst_sdp_message_attributes_len (sdp); i++) {
    const GstSDPAttribute *a = gst_sdp_message_get_attribute (sdp, i);

    if (g_strcmp0 (a->key, "group") != 0 || a->value == NULL)
      continue;
    if (first < 0)
      first = (gint)i;
    if (g_str_has_prefix (a->value, "BUNDLE")) {
      bundle = (gint)i;
      break;
    }
  }
  if (bundle < 0)
    return NULL;
  words = g_strsplit_set (
      gst_sdp_message_get_attribute (sdp, bundle)->value + 6, " \t", -1);
  kept = g_ptr_array_new ();
  for (i = 0; words[i]; i++) {
    if (*words[i])
      g_ptr_array_add (kept, g_strdup (words[i]));
  }
  g_ptr_array_add (kept, NULL);
  g_strfreev (words);
  mids = (gchar **)g_ptr_array_free (kept, FALSE);
  if (mids[0] == NULL) {
    g_strfreev (mids);
    return NULL;
  }
  joined = g_strjoinv (" ", mids);
  value = g_strconcat ("BUNDLE ", joined, NULL);
  g_free (joined);
  if (first != bundle) {
    gst_sdp_attribute_set (
        &attr, "group", gst_sdp_message_get_attribute (sdp, first)->value);
    gst_sdp_message_replace_attribute (sdp, bundle, &attr);
  }
  gst_sdp_attribute_set (&attr, "group", value);
  gst_sdp_message_replace_attribute (sdp, first, &attr);
  g_free (value);
  return mids;
}

/* RFC 8843 §7.1 (and JSEP's "balanced" bundle policy, aiortc's default):
 * an offerer may give each bundled media section its own ICE credentials,
 * fingerprint and DTLS role, in case the answerer does not accept the
 * bundle. webrtcbin 1.22 refuses such an offer ("media 1 has different
 * ice-ufrag values in bundle"). Our answer always accepts the bundle, and
 * then only the offerer-tagged m= section's transport is used (§7.3.1; the
 * offerer must be ready for that), so every other section of the group is
 * given the tagged section's transport attributes. Their own candidates
 * belong to transports that will not be used: they go. */
static void
unify_bundle_transport (GstSDPMessage *sdp, gchar **mids)
{
  gint tagged = find_mid (sdp, mids[0]);
  const GstSDPMedia *t;
  guint i, k;

  if (tagged < 0)
    return; /* webrtcbin says what is wrong with the group */
  t = gst_sdp_message_get_media (sdp, tagged);
  for (i = 1; mids[i]; i++) {
    gint idx = find_mid (sdp, mids[i]);
    GstSDPMedia *m;
    gboolean own_transport;

    if (idx < 0 || idx == tagged)
      continue;
    m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, idx);
    own_transport = g_strcmp0 (gst_sdp_media_get_attribute_val (m, "ice-ufrag"),
                        gst_sdp_media_get_attribute_val (t, "ice-ufrag")) != 0;
    for (k = 0; k < G_N_ELEMENTS (transport_keys); k++)
      media_copy_attributes (m, t, transport_keys[k]);
    if (own_transport)
      media_remove_all (m, "candidate");
  }
}

/* webrtcbin insists on ICE credentials and a=setup in every media section,
 * even one the offerer rejected (port 0, usually without them). Such a
 * section is answered rejected, so any values do: those of the first
 * section that has them. An offer with no a=setup at all (RFC 5763 §5: the
 * offerer MUST say actpass) is taken as actpass. */
static void
fill_missing_transport (GstSDPMessage *sdp)
{
  guint i, k, j;

  for (k = 0; k < G_N_ELEMENTS (transport_keys); k++) {
    const GstSDPMedia *donor = NULL;

    for (j = 0; j < gst_sdp_message_medias_len (sdp) && !donor; j++) {
      const GstSDPMedia *m = gst_sdp_message_get_media (sdp, j);
      if (media_find_attribute (m, transport_keys[k]) >= 0)
        donor = m;
    }
    for (i = 0; i < gst_sdp_message_medias_len (sdp); i++) {
      GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (sdp, i);

      if (media_find_attribute (m, transport_keys[k]) >= 0)
        continue;
      if (donor)
        media_copy_attributes (m, donor, transport_keys[k]);
      else if (g_str_equal (transport_keys[k], "setup"))
        gst_sdp_media_add_attribute (m, "setup", "actpass");
    }
  }
}

/* Returns the index of the offerer-tagged m= line, or -1 (no BUNDLE). */
static gint
normalize_offer (GstSDPMessage *sdp)
{
  gchar **mids;
  gint tagged = -1;

  push_session_transport_down (sdp);
  add_missing_mids (sdp);
  mids = normalize_bundle_group (sdp);
  if (mids) {
    unify_bundle_transport (sdp, mids);
    tagged = find_mid (sdp, mids[0]);
  }
  g_strfreev (mids);
  fill_missing_transport (sdp);
  return tagged;
}

static gboolean
is_data_channel (const GstSDPMedia *m)
{
  return g_strcmp0 (gst_sdp_media_get_media (m), "application") == 0 &&
      g_strstr_len (gst_sdp_media_get_proto (m), -1, "SCTP") != NULL;
}

/* The agent answers one audio section and the data channel; every other
 * section is rejected, as is one the offerer rejected itself (port 0 and
 * not bundle-only). */
static void
plan_answer (VaOffer *offer, gint tagged)
{
  guint i;

  offer->inactive_index = -1;
  for (i = 0; i < gst_sdp_message_medias_len (offer->sdp); i++) {
    const GstSDPMedia *m = gst_sdp_message_get_media (offer->sdp, i);
    gboolean offerer_rejected = gst_sdp_media_get_port (m) == 0 &&
        media_find_attribute (m, "bundle-only") < 0;

    if (!offerer_rejected && (i == offer->audio_index || is_data_channel (m)))
      continue;
    if ((gint)i == tagged && !offerer_rejected)
      offer->inactive_index = (gint)i;
    else
      offer->reject_mask |= 1u << i;
  }
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
  if (!check_text (text, len, VA_SDP_MAX_MEDIA, G_MAXUINT, "SDP offer", error))
    return NULL;
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
    GError *opus_error = NULL;

    if (is_data_channel (m))
      offer->has_data_channel = TRUE;
    if (g_strcmp0 (kind, "audio") != 0 || gst_sdp_media_get_port (m) == 0 ||
        offer->opus_pt >= 0)
      continue;
    saw_audio = TRUE;
    offer->opus_pt = find_opus (m, i, &opus_error);
    if (opus_error) {
      g_propagate_error (error, opus_error);
      va_offer_free (offer);
      return NULL;
    }
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
    plan_answer (offer, normalize_offer (offer->sdp));
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

static void
remove_from_bundle (GstSDPMessage *sdp, const gchar *mid)
{
  guint i, j;

  for (i = 0; mid && i < gst_sdp_message_attributes_len (sdp); i++) {
    const GstSDPAttribute *a = gst_sdp_message_get_attribute (sdp, i);
    GString *value;
    gchar **words;
    GstSDPAttribute attr;

    if (g_strcmp0 (a->key, "group") != 0 || a->value == NULL ||
        !g_str_has_prefix (a->value, "BUNDLE"))
      continue;
    words = g_strsplit (a->value, " ", -1);
    value = g_string_new ("BUNDLE");
    for (j = 1; words[j]; j++) {
      if (*words[j] && !g_str_equal (words[j], mid))
        g_string_append_printf (value, " %s", words[j]);
    }
    g_strfreev (words);
    gst_sdp_attribute_set (&attr, "group", value->str);
    gst_sdp_message_replace_attribute (sdp, i, &attr);
    g_string_free (value, TRUE);
  }
}

void
va_sdp_restrict_answer (
    GstSDPMessage *answer, guint32 reject_mask, gint inactive_index)
{
  static const gchar *const directions[] = { "sendrecv", "sendonly", "recvonly",
    "inactive" };
  guint i, k;

  for (i = 0; i < gst_sdp_message_medias_len (answer) && i < 32; i++) {
    GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media (answer, i);

    if ((gint)i == inactive_index) {
      for (k = 0; k < G_N_ELEMENTS (directions); k++)
        media_remove_all (m, directions[k]);
      gst_sdp_media_add_attribute (m, "inactive", "");
    }
    if (!(reject_mask & (1u << i)))
      continue;
    /* RFC 8843 §7.3.3: port 0, out of the group, no bundle-only. */
    gst_sdp_media_set_port_info (m, 0, 0);
    media_remove_all (m, "bundle-only");
    remove_from_bundle (answer, gst_sdp_media_get_attribute_val (m, "mid"));
  }
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
  VaSdpFrag *frag;
  gchar *copy;
  gchar **lines;
  gchar *mid = NULL;
  gint mline = -1;
  gboolean ok = TRUE, too_many = FALSE;
  guint i;

  /* Each candidate becomes a remote candidate that ICE checks: their
   * number is bounded like the offer's size. */
  if (!check_text (text, len, VA_SDP_MAX_MEDIA, VA_SDPFRAG_MAX_LINES,
          "SDP fragment", error))
    return NULL;
  frag = g_new0 (VaSdpFrag, 1);
  copy = g_strndup (text, len);
  lines = g_strsplit (copy, "\n", -1);
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
    } else if (g_str_equal (l, "a=end-of-candidates")) {
      frag->end_of_candidates = TRUE;
    } else if (g_str_has_prefix (l, "a=mid:")) {
      g_free (mid);
      mid = g_strdup (l + 6);
    } else if (g_str_has_prefix (l, "a=candidate:")) {
      VaCandidate *c;

      if (frag->candidates->len == VA_SDPFRAG_MAX_CANDIDATES) {
        too_many = TRUE;
        break;
      }
      c = g_new0 (VaCandidate, 1);
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
  if (too_many) {
    g_set_error (error, VA_SDP_ERROR, VA_SDP_ERROR_PARSE,
        "the SDP fragment has more than %u candidates",
        VA_SDPFRAG_MAX_CANDIDATES);
    va_sdpfrag_free (frag);
    return NULL;
  }
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

const gchar *
va_sdp_get_fingerprint (const GstSDPMessage *sdp, guint index)
{
  const gchar *fingerprint = NULL;

  if (index < gst_sdp_message_medias_len (sdp))
    fingerprint = gst_sdp_media_get_attribute_val (
        gst_sdp_message_get_media (sdp, index), "fingerprint");
  return fingerprint ? fingerprint
                     : gst_sdp_message_get_attribute_val (sdp, "fingerprint");
}

static gboolean
checksum_type_of (const gchar *name, GChecksumType *type)
{
  static const struct
  {
    const gchar *name;
    GChecksumType type;
  } known[] = { { "sha-1", G_CHECKSUM_SHA1 }, { "sha-256", G_CHECKSUM_SHA256 },
    { "sha-384", G_CHECKSUM_SHA384 }, { "sha-512", G_CHECKSUM_SHA512 } };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (known); i++)
    if (g_ascii_strcasecmp (name, known[i].name) == 0) {
      *type = known[i].type;
      return TRUE;
    }
  return FALSE;
}

/* "AB:CD:…" of @der hashed with @type (free it). */
static gchar *
hex_fingerprint (GChecksumType type, const guint8 *der, gsize len)
{
  GChecksum *c = g_checksum_new (type);
  guint8 digest[64];
  gsize size = sizeof digest, i;
  GString *hex = g_string_new (NULL);

  g_checksum_update (c, der, len);
  g_checksum_get_digest (c, digest, &size);
  g_checksum_free (c);
  for (i = 0; i < size; i++)
    g_string_append_printf (hex, i ? ":%02X" : "%02X", digest[i]);
  return g_string_free (hex, FALSE);
}

gboolean
va_sdp_certificate_matches (const gchar *pem, const gchar *fingerprint)
{
  const gchar *begin, *end;
  gchar **words, *body, *hex;
  guint8 *der;
  gsize len;
  GChecksumType type;
  gboolean matches = FALSE;

  if (pem == NULL || fingerprint == NULL ||
      (begin = strstr (pem, "-----BEGIN CERTIFICATE-----")) == NULL ||
      (end = strstr (begin, "-----END CERTIFICATE-----")) == NULL)
    return FALSE;
  begin += strlen ("-----BEGIN CERTIFICATE-----");
  words = g_strsplit (fingerprint, " ", 2);
  if (words[0] && words[1] && checksum_type_of (words[0], &type)) {
    /* g_base64_decode skips the line breaks of the PEM body. */
    body = g_strndup (begin, end - begin);
    der = g_base64_decode (body, &len);
    hex = hex_fingerprint (type, der, len);
    matches = g_ascii_strcasecmp (hex, g_strstrip (words[1])) == 0;
    g_free (hex);
    g_free (der);
    g_free (body);
  }
  g_strfreev (words);
  return matches;
}

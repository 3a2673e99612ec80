/* Unit tests of app/sdp.c: what offers and trickle fragments are accepted,
 * refused, and rewritten before webrtcbin sees them.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include "sdp.h"

#define FP                                                                     \
  "sha-256 2A:5B:DC:6B:B6:50:9F:AA:E7:FB:E6:5D:81:FF:DD:1D:47:36:1C:63:EB:"    \
  "EF:F4:1D:F8:18:86:D7:39:B8:07:32"

/* aiortc 1.4's offer (default, balanced bundle policy): each bundled
 * section has its own ICE credentials and candidates. */
static const gchar aiortc_offer[] =
    "v=0\r\no=- 4005603337 4005603337 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=msid-semantic:WMS *\r\n"
    "m=audio 53547 UDP/TLS/RTP/SAVPF 96 0 8\r\nc=IN IP4 192.0.2.2\r\n"
    "a=sendrecv\r\na=mid:0\r\na=rtcp-mux\r\n"
    "a=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=candidate:f957 1 udp 2130706431 192.0.2.2 53547 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:ajEo\r\na=ice-pwd:1XGKqyETiB50OHTB4l6TvO\r\n"
    "a=fingerprint:" FP "\r\na=setup:actpass\r\n"
    "m=application 54498 DTLS/SCTP 5000\r\nc=IN IP4 192.0.2.2\r\n"
    "a=mid:1\r\na=sctpmap:5000 webrtc-datachannel 65535\r\n"
    "a=candidate:f957 1 udp 2130706431 192.0.2.2 54498 typ host\r\n"
    "a=end-of-candidates\r\n"
    "a=ice-ufrag:OGoj\r\na=ice-pwd:hTeuDxIcWyYbslEnTHixsk\r\n"
    "a=fingerprint:sha-256 00:11\r\na=setup:active\r\n";

static VaOffer *
parse_ok (const gchar *text)
{
  GError *error = NULL;
  VaOffer *offer = va_offer_parse (text, strlen (text), &error);

  fail_unless (offer != NULL, "refused: %s", error ? error->message : "?");
  return offer;
}

static void
parse_fails (const gchar *text, gsize len, gint code, const gchar *reason)
{
  GError *error = NULL;
  VaOffer *offer = va_offer_parse (text, len, &error);

  fail_unless (offer == NULL);
  fail_unless (error != NULL);
  fail_unless_equals_int (error->code, code);
  fail_unless (strstr (error->message, reason) != NULL,
      "\"%s\" does not say \"%s\"", error->message, reason);
  g_error_free (error);
}

static const gchar *
media_attr (const VaOffer *offer, guint i, const gchar *key)
{
  return gst_sdp_media_get_attribute_val (
      gst_sdp_message_get_media (offer->sdp, i), key);
}

/* The bundled data channel takes the tagged audio section's transport:
 * ufrag, pwd, fingerprint and setup; its own candidates go. */
GST_START_TEST (test_bundle_transport_unified)
{
  VaOffer *offer = parse_ok (aiortc_offer);
  const GstSDPMedia *dc = gst_sdp_message_get_media (offer->sdp, 1);
  guint i;

  fail_unless_equals_int (offer->opus_pt, 96);
  fail_unless (offer->has_data_channel);
  fail_unless_equals_string (media_attr (offer, 1, "ice-ufrag"), "ajEo");
  fail_unless_equals_string (
      media_attr (offer, 1, "ice-pwd"), "1XGKqyETiB50OHTB4l6TvO");
  fail_unless_equals_string (media_attr (offer, 1, "fingerprint"), FP);
  fail_unless_equals_string (media_attr (offer, 1, "setup"), "actpass");
  fail_unless (media_attr (offer, 1, "candidate") == NULL);
  for (i = 0; i < gst_sdp_media_attributes_len (dc); i++)
    fail_if (
        g_str_equal (gst_sdp_media_get_attribute (dc, i)->key, "ice-ufrag") &&
        !g_str_equal (gst_sdp_media_get_attribute (dc, i)->value, "ajEo"));
  /* The tagged section keeps its own. */
  fail_unless (media_attr (offer, 0, "candidate") != NULL);
  fail_unless_equals_string (media_attr (offer, 0, "ice-ufrag"), "ajEo");
  fail_unless_equals_int (offer->reject_mask, 0);
  fail_unless_equals_int (offer->inactive_index, -1);
  va_offer_free (offer);
}

GST_END_TEST;

/* Session-level transport attributes (libdatachannel, pion, Firefox) move
 * into each media section; a missing mid is made up; the BUNDLE group
 * becomes the first a=group with single spaces. */
GST_START_TEST (test_session_level_moved_down)
{
  const gchar text[] =
      "v=0\r\no=rtc 1 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
      "a=group:LS 0 1\r\na=group:BUNDLE  0   1 \r\n"
      "a=setup:actpass\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpassword00000000\r\n"
      "a=fingerprint:" FP "\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
      "a=sendonly\r\na=rtpmap:111 opus/48000/2\r\n"
      "a=fingerprint:" FP "\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
      "a=ice-ufrag:own\r\na=ice-pwd:ownpasswordownpassword00\r\n"
      "a=sendonly\r\na=rtpmap:96 H264/90000\r\n"
      "m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n";
  VaOffer *offer = parse_ok (text);
  guint i;

  for (i = 0; i < gst_sdp_message_attributes_len (offer->sdp); i++) {
    const gchar *key = gst_sdp_message_get_attribute (offer->sdp, i)->key;
    fail_if (g_str_equal (key, "ice-ufrag") || g_str_equal (key, "ice-pwd") ||
        g_str_equal (key, "fingerprint") || g_str_equal (key, "setup"));
  }
  fail_unless_equals_string (
      gst_sdp_message_get_attribute_val (offer->sdp, "group"), "BUNDLE 0 1");
  fail_unless_equals_string (media_attr (offer, 0, "ice-ufrag"), "sess");
  fail_unless_equals_string (media_attr (offer, 0, "setup"), "actpass");
  fail_unless_equals_string (media_attr (offer, 0, "fingerprint"), FP);
  /* Bundled: the tagged section's transport wins over its own. */
  fail_unless_equals_string (media_attr (offer, 1, "ice-ufrag"), "sess");
  /* Not bundled, rejected by the offerer: made valid for webrtcbin. */
  fail_unless_equals_string (media_attr (offer, 2, "mid"), "va0");
  fail_unless (media_attr (offer, 2, "ice-ufrag") != NULL);
  fail_unless (media_attr (offer, 2, "setup") != NULL);
  fail_unless_equals_int (
      offer->direction, GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY);
  /* Video and the offerer-rejected section are rejected in the answer. */
  fail_unless_equals_int (offer->reject_mask, (1 << 1) | (1 << 2));
  va_offer_free (offer);
}

GST_END_TEST;

/* Video first: the tagged section may not be rejected, it is inactive. */
GST_START_TEST (test_answer_plan)
{
  const gchar text[] =
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=group:BUNDLE v a a2\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=rtpmap:96 VP8/90000\r\n"
      "a=ice-ufrag:u\r\na=ice-pwd:pppppppppppppppppppppp\r\na=setup:actpass\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:a\r\na=rtpmap:109 opus/48000/2\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:a2\r\na=rtpmap:109 opus/48000/2\r\n";
  VaOffer *offer = parse_ok (text);
  GstSDPMessage *answer;

  fail_unless_equals_int (offer->audio_index, 1);
  fail_unless_equals_int (offer->opus_pt, 109);
  fail_unless_equals_int (offer->inactive_index, 0);
  fail_unless_equals_int (offer->reject_mask, 1 << 2);

  /* What that does to an answer. */
  gst_sdp_message_new_from_text (
      "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"
      "t=0 0\r\na=group:BUNDLE v a a2\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n"
      "a=recvonly\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:a\r\n"
      "a=sendrecv\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109\r\n"
      "a=mid:a2\r\na=recvonly\r\n",
      &answer);
  va_sdp_restrict_answer (answer, offer->reject_mask, offer->inactive_index);
  fail_unless_equals_string (
      gst_sdp_message_get_attribute_val (answer, "group"), "BUNDLE v a");
  fail_unless (gst_sdp_media_get_attribute_val (
                   gst_sdp_message_get_media (answer, 0), "inactive") != NULL);
  fail_unless (gst_sdp_media_get_attribute_val (
                   gst_sdp_message_get_media (answer, 0), "recvonly") == NULL);
  fail_unless_equals_int (
      gst_sdp_media_get_port (gst_sdp_message_get_media (answer, 1)), 9);
  fail_unless_equals_int (
      gst_sdp_media_get_port (gst_sdp_message_get_media (answer, 2)), 0);
  gst_sdp_message_free (answer);
  va_offer_free (offer);
}

GST_END_TEST;

/* Opus is taken in the m= line's order; a payload type outside 0..127 (it
 * would be substituted into a pipeline description) is refused. */
GST_START_TEST (test_opus_payload_type)
{
  const gchar *head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
  const gchar *bad[] = { "128", "300", "-1", "+5", "1e2", "96abc",
    "99999999999999999999", "" };
  gchar *text;
  VaOffer *offer;
  guint i;

  text = g_strconcat (head,
      "m=audio 9 UDP/TLS/RTP/SAVPF 0 100 101\r\na=rtpmap:0 PCMU/8000\r\n"
      "a=rtpmap:101 OPUS/48000/2\r\na=rtpmap:100 opus/48000/2\r\n"
      "a=rtpmap:102 opus/48000/2\r\n",
      NULL);
  offer = parse_ok (text);
  fail_unless_equals_int (offer->opus_pt, 100);
  va_offer_free (offer);
  g_free (text);

  for (i = 0; i < G_N_ELEMENTS (bad); i++) {
    text = g_strdup_printf ("%sm=audio 9 UDP/TLS/RTP/SAVPF %s\r\n"
                            "a=rtpmap:%s opus/48000/2\r\n",
        head, bad[i], bad[i]);
    parse_fails (text, strlen (text), VA_SDP_ERROR_PARSE, "0 to 127");
    g_free (text);
  }
  /* Opus named by an rtpmap but not offered in the m= line. */
  text = g_strconcat (head,
      "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:111 opus/48000/2\r\n", NULL);
  parse_fails (text, strlen (text), VA_SDP_ERROR_NO_OPUS, "Opus");
  g_free (text);
}

GST_END_TEST;

/* Size and encoding limits: refused with a reason, and fast. */
GST_START_TEST (test_limits)
{
  GString *s =
      g_string_new ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
  gchar *line;
  gint64 start;
  guint i;

  for (i = 0; i < 1000; i++)
    g_string_append_printf (s,
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:%u\r\n"
        "a=rtpmap:111 opus/48000/2\r\n",
        i);
  start = g_get_monotonic_time ();
  parse_fails (s->str, s->len, VA_SDP_ERROR_PARSE, "more than 32 media");
  fail_unless (g_get_monotonic_time () - start < G_USEC_PER_SEC);
  g_string_free (s, TRUE);

  /* 32 is fine. */
  s = g_string_new ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
  for (i = 0; i < VA_SDP_MAX_MEDIA; i++)
    g_string_append_printf (s,
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:%u\r\n"
        "a=rtpmap:111 opus/48000/2\r\n",
        i);
  va_offer_free (parse_ok (s->str));
  g_string_free (s, TRUE);

  line = g_strnfill (VA_SDP_MAX_LINE + 1, 'x');
  s = g_string_new ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=x:");
  g_string_append (s, line);
  parse_fails (s->str, s->len, VA_SDP_ERROR_PARSE, "over the limit");
  g_string_free (s, TRUE);
  g_free (line);

  parse_fails ("v=0\r\ns=\0x\r\n", 11, VA_SDP_ERROR_PARSE, "NUL byte");
  parse_fails ("v=0\r\ns=\xff\xfe\r\n", 11, VA_SDP_ERROR_PARSE, "not UTF-8");
  parse_fails ("hello", 5, VA_SDP_ERROR_PARSE, "not an SDP offer");
}

GST_END_TEST;

/* Trickle fragments: bounded and strict too. */
GST_START_TEST (test_sdpfrag)
{
  const gchar cand[] =
      "a=candidate:1 1 UDP 2130706431 127.0.0.1 9999 typ host\r\n";
  GString *s = g_string_new ("a=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=audio 9 "
                             "UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n");
  GError *error = NULL;
  VaSdpFrag *frag;
  guint i;

  for (i = 0; i < VA_SDPFRAG_MAX_CANDIDATES; i++)
    g_string_append (s, cand);
  frag = va_sdpfrag_parse (s->str, s->len, &error);
  fail_unless (frag != NULL);
  fail_unless_equals_int (frag->candidates->len, VA_SDPFRAG_MAX_CANDIDATES);
  fail_unless_equals_string (frag->ufrag, "abcd");
  fail_unless_equals_string (
      ((VaCandidate *)g_ptr_array_index (frag->candidates, 0))->mid, "0");
  fail_if (frag->end_of_candidates);
  va_sdpfrag_free (frag);

  /* The end of the caller's gathering, alone or after candidates. */
  frag = va_sdpfrag_parse ("a=end-of-candidates\r\n", 21, &error);
  fail_unless (frag != NULL && frag->end_of_candidates);
  fail_unless_equals_int (frag->candidates->len, 0);
  va_sdpfrag_free (frag);

  g_string_append (s, cand);
  fail_unless (va_sdpfrag_parse (s->str, s->len, &error) == NULL);
  fail_unless (strstr (error->message, "more than 64 candidates"));
  g_clear_error (&error);
  g_string_free (s, TRUE);

  s = g_string_new ("");
  for (i = 0; i <= VA_SDP_MAX_MEDIA; i++)
    g_string_append (s, "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n");
  fail_unless (va_sdpfrag_parse (s->str, s->len, &error) == NULL);
  fail_unless (strstr (error->message, "media sections"));
  g_clear_error (&error);
  g_string_free (s, TRUE);

  fail_unless (va_sdpfrag_parse ("a=candidate:\0", 13, &error) == NULL);
  fail_unless (strstr (error->message, "NUL"));
  g_clear_error (&error);
  fail_unless (va_sdpfrag_parse ("a=x\xc3", 4, &error) == NULL);
  fail_unless (strstr (error->message, "UTF-8"));
  g_clear_error (&error);
  fail_unless (va_sdpfrag_parse ("garbage\r\n", 9, &error) == NULL);
  g_clear_error (&error);
}

GST_END_TEST;

static Suite *
sdp_suite (void)
{
  Suite *s = suite_create ("sdp");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_bundle_transport_unified);
  tcase_add_test (tc, test_session_level_moved_down);
  tcase_add_test (tc, test_answer_plan);
  tcase_add_test (tc, test_opus_payload_type);
  tcase_add_test (tc, test_limits);
  tcase_add_test (tc, test_sdpfrag);
  return s;
}

GST_CHECK_MAIN (sdp);

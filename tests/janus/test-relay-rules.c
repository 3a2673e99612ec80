/* Unit tests of app/janus/relay-rules.c: the demultiplexing rule, call
 * ids, text messages, worker_networks and address parsing of
 * janus.plugin.voiceagent, without Janus.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <arpa/inet.h>
#include <gst/check/gstcheck.h>
#include "relay-rules.h"

static VaDatagramKind
classify (const gchar *bytes, gsize size)
{
  return va_datagram_classify ((const guint8 *)bytes, size);
}

/* The first byte splits RTP from text; RTCP's packet types come next. */
GST_START_TEST (test_demux)
{
  const gchar rtp[12] = { (gchar)0x80, 111 };
  const gchar rtp_marker_ext[12] = { (gchar)0x90, (gchar)(0x80 | 111) };
  const gchar rtcp_sr[8] = { (gchar)0x80, (gchar)200 };
  const gchar rtcp_psfb[8] = { (gchar)0x81, (gchar)206 };
  const gchar rtp_pt_207[12] = { (gchar)0x80, (gchar)207 };

  fail_unless_equals_int (classify (rtp, 12), VA_DATAGRAM_RTP);
  fail_unless_equals_int (classify (rtp_marker_ext, 12), VA_DATAGRAM_RTP);
  fail_unless_equals_int (classify (rtcp_sr, 8), VA_DATAGRAM_RTCP);
  fail_unless_equals_int (classify (rtcp_psfb, 8), VA_DATAGRAM_RTCP);
  fail_unless_equals_int (classify (rtp_pt_207, 12), VA_DATAGRAM_RTP);
  fail_unless_equals_int (classify (rtp, 11), VA_DATAGRAM_INVALID);
  fail_unless_equals_int (classify ("", 0), VA_DATAGRAM_INVALID);
  fail_unless_equals_int (classify ("{\"a\":1}", 7), VA_DATAGRAM_TEXT);
  /* 0xC3 starts "é": top bits 0b11, not RTP. */
  fail_unless_equals_int (classify ("\xc3\xa9t\xc3\xa9", 6), VA_DATAGRAM_TEXT);
  fail_unless_equals_int (classify ("\x40", 1), VA_DATAGRAM_TEXT);
}

GST_END_TEST;

/* Valid UTF-8 text never begins with 0x80-0xBF, so it is never RTP. */
GST_START_TEST (test_text_valid)
{
  gchar *big = g_malloc (VA_DATA_MAX + 1);

  fail_unless (va_text_valid ("hello", 5));
  fail_unless (va_text_valid ("\xc3\xa9", 2));
  fail_if (va_text_valid ("", 0));
  fail_if (va_text_valid ("\x80hello", 6));
  fail_if (va_text_valid ("\xc3", 1));
  fail_if (va_text_valid ("a\0b", 3));
  memset (big, 'x', VA_DATA_MAX + 1);
  fail_unless (va_text_valid (big, VA_DATA_MAX));
  fail_if (va_text_valid (big, VA_DATA_MAX + 1));
  g_free (big);
}

GST_END_TEST;

GST_START_TEST (test_call_id)
{
  gchar id[VA_CALL_ID_MAX + 2];

  fail_unless (va_call_id_valid ("call-1_A"));
  fail_unless (va_call_id_valid ("x"));
  fail_if (va_call_id_valid (NULL));
  fail_if (va_call_id_valid (""));
  fail_if (va_call_id_valid ("bad id"));
  fail_if (va_call_id_valid ("a/b"));
  fail_if (va_call_id_valid ("caf\xc3\xa9"));
  memset (id, 'a', sizeof id);
  id[VA_CALL_ID_MAX] = '\0';
  fail_unless (va_call_id_valid (id));
  id[VA_CALL_ID_MAX] = 'a';
  id[VA_CALL_ID_MAX + 1] = '\0';
  fail_if (va_call_id_valid (id));
}

GST_END_TEST;

static gboolean
contains (GArray *nets, const gchar *host)
{
  struct sockaddr_storage addr;
  socklen_t len;

  fail_unless (va_address_parse (host, 5000, &addr, &len, NULL), host);
  return va_networks_contain (nets, (struct sockaddr *)&addr);
}

/* The default list, and that nothing outside it gets through. */
GST_START_TEST (test_networks)
{
  GArray *nets = va_networks_parse (" 127.0.0.0/8, ::1/128,10.8.0.0/13", NULL);

  fail_unless (nets != NULL);
  fail_unless_equals_int (nets->len, 3);
  fail_unless (contains (nets, "127.0.0.1"));
  fail_unless (contains (nets, "127.255.1.2"));
  fail_unless (contains (nets, "::1"));
  fail_unless (contains (nets, "10.15.255.255"));
  fail_if (contains (nets, "10.16.0.1"));
  fail_if (contains (nets, "10.1.2.3"));
  fail_if (contains (nets, "128.0.0.1"));
  fail_if (contains (nets, "::2"));
  /* Mapped IPv4 is refused even when its IPv4 address is listed. */
  fail_if (contains (nets, "::ffff:127.0.0.1"));
  g_array_unref (nets);

  nets = va_networks_parse ("0.0.0.0/0", NULL);
  fail_unless (contains (nets, "192.0.2.1"));
  fail_if (contains (nets, "fd00::1"));
  g_array_unref (nets);
}

GST_END_TEST;

GST_START_TEST (test_networks_invalid)
{
  const gchar *bad[] = { "", " , ", "10.0.0.0/33", "10.1.2.3/8", "::1/129",
    "example.com/8", "10.0.0.0/x", "10.0.0.0/-1", "fe80::1/10", NULL };
  GString *many = g_string_new ("10.0.0.1");

  for (guint i = 0; bad[i]; i++) {
    GError *error = NULL;
    fail_unless (va_networks_parse (bad[i], &error) == NULL, bad[i]);
    fail_unless (error != NULL && error->message[0] != '\0', bad[i]);
    g_error_free (error);
  }
  for (guint i = 0; i < VA_NETWORKS_MAX; i++)
    g_string_append (many, ",10.0.0.1");
  fail_unless (va_networks_parse (many->str, NULL) == NULL);
  g_string_free (many, TRUE);
}

GST_END_TEST;

GST_START_TEST (test_port_range)
{
  guint16 lo = 0, hi = 0;

  fail_unless (va_port_range_parse ("20000-29999", &lo, &hi, NULL));
  fail_unless_equals_int (lo, 20000);
  fail_unless_equals_int (hi, 29999);
  fail_unless (va_port_range_parse (" 5 - 5 ", &lo, &hi, NULL));
  fail_unless_equals_int (lo, 5);
  fail_unless_equals_int (hi, 5);
  fail_if (va_port_range_parse ("0-10", &lo, &hi, NULL));
  fail_if (va_port_range_parse ("10-9", &lo, &hi, NULL));
  fail_if (va_port_range_parse ("10-65536", &lo, &hi, NULL));
  fail_if (va_port_range_parse ("10", &lo, &hi, NULL));
  fail_if (va_port_range_parse (NULL, &lo, &hi, NULL));
}

GST_END_TEST;

/* Literals only: nothing is resolved, and no address a worker cannot
 * have. */
GST_START_TEST (test_address)
{
  struct sockaddr_storage a, b;
  socklen_t len;
  gchar text[64];
  const gchar *bad[] = { "localhost", "127.0.0.1:5000", "0.0.0.0",
    "::", "224.0.0.1", "255.255.255.255", "ff02::1", "", NULL };

  fail_unless (va_address_parse ("127.0.0.1", 5004, &a, &len, NULL));
  fail_unless_equals_int (len, sizeof (struct sockaddr_in));
  fail_unless_equals_int (va_address_port (&a), 5004);
  fail_unless_equals_string (
      va_address_to_string (&a, text, sizeof text), "127.0.0.1");
  fail_unless (va_address_parse ("127.0.0.1", 5004, &b, &len, NULL));
  fail_unless (va_address_equal (&a, &b));
  fail_unless (va_address_parse ("127.0.0.1", 5005, &b, &len, NULL));
  fail_if (va_address_equal (&a, &b));
  fail_unless (va_address_parse ("::1", 5004, &b, &len, NULL));
  fail_unless_equals_int (len, sizeof (struct sockaddr_in6));
  fail_if (va_address_equal (&a, &b));
  fail_unless_equals_string (
      va_address_to_string (&b, text, sizeof text), "::1");
  for (guint i = 0; bad[i]; i++)
    fail_if (va_address_parse (bad[i], 1, &a, &len, NULL), bad[i]);
}

GST_END_TEST;

static Suite *
relay_rules_suite (void)
{
  Suite *s = suite_create ("relay-rules");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_demux);
  tcase_add_test (tc, test_text_valid);
  tcase_add_test (tc, test_call_id);
  tcase_add_test (tc, test_networks);
  tcase_add_test (tc, test_networks_invalid);
  tcase_add_test (tc, test_port_range);
  tcase_add_test (tc, test_address);
  return s;
}

GST_CHECK_MAIN (relay_rules);

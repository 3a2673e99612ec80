/* Unit tests of app/httphead.c: which request heads reach libsoup, and
 * with which status the others are refused.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include "httphead.h"

#define MAX_BODY 65536

static guint
check (const gchar *head)
{
  const gchar *why = NULL;
  guint status = va_http_head_check (head, strlen (head), MAX_BODY, &why);

  fail_unless (status == 0 || why != NULL, "%u without a reason", status);
  return status;
}

/* The end of a head: CRLF CRLF, a bare LF LF, or not yet. */
GST_START_TEST (test_head_end)
{
  const gchar crlf[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nbody";
  const gchar lf[] = "GET / HTTP/1.1\nHost: x\n\nbody";

  fail_unless_equals_int (
      va_http_head_end (crlf, strlen (crlf)), strlen (crlf) - strlen ("body"));
  fail_unless_equals_int (
      va_http_head_end (lf, strlen (lf)), strlen (lf) - strlen ("body"));
  fail_unless_equals_int (va_http_head_end (crlf, 20), 0);
}

GST_END_TEST;

/* What WHIP clients send passes. */
GST_START_TEST (test_valid_heads)
{
  fail_unless_equals_int (check ("POST /whip HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Type: application/sdp\r\n"
                                 "Content-Length: 300\r\n\r\n"),
      0);
  fail_unless_equals_int (
      check ("POST /whip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
             "Expect: 100-continue\r\n\r\n"),
      0);
  fail_unless_equals_int (check ("GET /healthz HTTP/1.0\r\n\r\n"), 0);
  fail_unless_equals_int (
      check ("POST /whip HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"),
      0);
}

GST_END_TEST;

/* What libsoup 3.2 would leak memory on never reaches it. */
GST_START_TEST (test_framing_libsoup_leaks_on)
{
  fail_unless_equals_int (
      check (
          "POST /whip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
      501);
  fail_unless_equals_int (
      check ("POST /whip HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n"),
      400);
  fail_unless_equals_int (check ("POST /whip HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 5\r\nContent-Length: 6\r\n"
                                 "\r\n"),
      400);
}

GST_END_TEST;

/* Each refusal has its status. */
GST_START_TEST (test_refusals)
{
  fail_unless_equals_int (check ("GARBAGE\r\n\r\n"), 400);
  fail_unless_equals_int (check ("GET /healthz\r\n\r\n"), 400);
  fail_unless_equals_int (check ("GET /healthz HTTP/1.1\r\n\r\n"), 400);
  fail_unless_equals_int (check ("PRI * HTTP/2.0\r\n\r\n"), 505);
  fail_unless_equals_int (
      check ("POST /whip HTTP/1.1\r\nHost: x\r\nExpect: 999-no\r\n\r\n"), 417);
  fail_unless_equals_int (check ("POST /whip HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 65537\r\n\r\n"),
      413);
  fail_unless_equals_int (check ("POST /whip HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 99999999999999999999999\r\n"
                                 "\r\n"),
      413);
  fail_unless_equals_int (
      check ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
  fail_unless_equals_int (va_http_head_check ("GET /\0 HTTP/1.1\r\n\r\n", 20,
                              MAX_BODY, &(const gchar *){ NULL }),
      400);
}

GST_END_TEST;

static Suite *
httphead_suite (void)
{
  Suite *s = suite_create ("httphead");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_head_end);
  tcase_add_test (tc, test_valid_heads);
  tcase_add_test (tc, test_framing_libsoup_leaks_on);
  tcase_add_test (tc, test_refusals);
  return s;
}

GST_CHECK_MAIN (httphead);

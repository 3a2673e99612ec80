/* Unit tests of the shared HTTP policy (gstvoicehttp.c): which statuses
 * are retried, which error each refusal becomes, Retry-After, the backoff
 * bounds, the error macro's details, and GstVoiceDeferred's order.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "voice.h"

/* See test-client.c: GLib's by-design leaks are matched on full stacks. */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

GST_START_TEST (test_http_classify)
{
  static const guint retry[] = { 0, 408, 429, 500, 502, 503, 504, 599 };
  static const guint final[] = { 400, 401, 403, 404, 410, 418, 422, 301 };

  fail_unless_equals_int (
      gst_voice_http_classify (200), GST_VOICE_HTTP_SUCCESS);
  fail_unless_equals_int (
      gst_voice_http_classify (204), GST_VOICE_HTTP_SUCCESS);
  for (guint i = 0; i < G_N_ELEMENTS (retry); i++) {
    fail_unless_equals_int (
        gst_voice_http_classify (retry[i]), GST_VOICE_HTTP_RETRY);
    fail_unless (gst_voice_http_status_is_retryable (retry[i]));
  }
  for (guint i = 0; i < G_N_ELEMENTS (final); i++) {
    fail_unless_equals_int (
        gst_voice_http_classify (final[i]), GST_VOICE_HTTP_FINAL);
    fail_if (gst_voice_http_status_is_retryable (final[i]));
  }
}

GST_END_TEST;

GST_START_TEST (test_http_error_codes)
{
  static const struct
  {
    guint status;
    gint code;
  } table[] = {
    { 401, GST_RESOURCE_ERROR_NOT_AUTHORIZED },
    { 403, GST_RESOURCE_ERROR_NOT_AUTHORIZED },
    { 400, GST_RESOURCE_ERROR_SETTINGS },
    { 422, GST_RESOURCE_ERROR_SETTINGS },
    { 404, GST_RESOURCE_ERROR_NOT_FOUND },
    { 500, GST_RESOURCE_ERROR_OPEN_READ_WRITE },
    { 0, GST_RESOURCE_ERROR_OPEN_READ_WRITE },
    { 418, GST_RESOURCE_ERROR_OPEN_READ_WRITE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (table); i++) {
    GQuark domain = 0;
    gint code = -1;
    gst_voice_http_error_code (table[i].status, &domain, &code);
    fail_unless (domain == GST_RESOURCE_ERROR);
    fail_unless_equals_int (code, table[i].code);
  }
}

GST_END_TEST;

GST_START_TEST (test_http_parse_retry_after)
{
  GDateTime *now = g_date_time_new_utc (2026, 1, 2, 3, 4, 5);
  GDateTime *later = g_date_time_add_seconds (now, 30);
  GDateTime *earlier = g_date_time_add_seconds (now, -30);
  gchar *d_later = soup_date_time_to_string (later, SOUP_DATE_HTTP);
  gchar *d_earlier = soup_date_time_to_string (earlier, SOUP_DATE_HTTP);

  fail_unless_equals_int64 (gst_voice_http_parse_retry_after (NULL, now), -1);
  fail_unless_equals_int64 (gst_voice_http_parse_retry_after ("", now), -1);
  fail_unless_equals_int64 (gst_voice_http_parse_retry_after ("soon", now), -1);
  fail_unless_equals_int64 (gst_voice_http_parse_retry_after ("5x", now), -1);
  fail_unless_equals_int64 (gst_voice_http_parse_retry_after ("0", now), 0);
  fail_unless_equals_int64 (
      gst_voice_http_parse_retry_after (" 120 ", now), 120000);
  /* Bounded, also where seconds × 1000 would overflow. */
  fail_unless_equals_int64 (
      gst_voice_http_parse_retry_after ("99999999999999999999", now),
      GST_VOICE_HTTP_RETRY_AFTER_MAX_MS);
  fail_unless_equals_int64 (gst_voice_http_parse_retry_after ("604800", now),
      GST_VOICE_HTTP_RETRY_AFTER_MAX_MS);
  fail_unless_equals_int64 (
      gst_voice_http_parse_retry_after (d_later, now), 30000);
  fail_unless_equals_int64 (
      gst_voice_http_parse_retry_after (d_earlier, now), 0);
  fail_unless_equals_int64 (
      gst_voice_http_parse_retry_after ("Fri, 31 Dec 2100 23:59:59 GMT", now),
      GST_VOICE_HTTP_RETRY_AFTER_MAX_MS);
  g_free (d_later);
  g_free (d_earlier);
  g_date_time_unref (later);
  g_date_time_unref (earlier);
  g_date_time_unref (now);
}

GST_END_TEST;

/* From headers: OpenAI's retry-after-ms first, then Retry-After. */
GST_START_TEST (test_http_retry_after_headers)
{
  SoupMessageHeaders *h =
      soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  GDateTime *now = g_date_time_new_now_utc ();
  GDateTime *later = g_date_time_add_seconds (now, 30);
  gchar *date;
  gint64 ms;

  fail_unless_equals_int64 (gst_voice_http_retry_after_ms (NULL), -1);
  fail_unless_equals_int64 (gst_voice_http_retry_after_ms (h), -1);
  soup_message_headers_replace (h, "Retry-After", "2");
  fail_unless_equals_int64 (gst_voice_http_retry_after_ms (h), 2000);
  soup_message_headers_replace (h, "retry-after-ms", "150.5");
  fail_unless_equals_int64 (gst_voice_http_retry_after_ms (h), 150);
  soup_message_headers_replace (h, "retry-after-ms", "junk");
  fail_unless_equals_int64 (gst_voice_http_retry_after_ms (h), 2000);
  soup_message_headers_remove (h, "retry-after-ms");
  date = soup_date_time_to_string (later, SOUP_DATE_HTTP);
  soup_message_headers_replace (h, "Retry-After", date);
  ms = gst_voice_http_retry_after_ms (h);
  fail_unless (ms > 25000 && ms <= 30000, "%" G_GINT64_FORMAT, ms);
  g_free (date);
  g_date_time_unref (later);
  g_date_time_unref (now);
  soup_message_headers_unref (h);
}

GST_END_TEST;

/* Equal jitter: each delay is within [base / 2, base], the base doubles
 * from the initial delay and stops at the maximum, however many tries. */
GST_START_TEST (test_backoff_bounds)
{
  GstVoiceBackoff b = { 100, 2000, 0 };
  static const guint bases[] = { 100, 200, 400, 800, 1600, 2000, 2000 };

  for (guint i = 0; i < G_N_ELEMENTS (bases); i++) {
    for (guint k = 0; k < 50; k++) {
      guint ms = gst_voice_backoff_delay_ms (100, 2000, i);
      fail_unless (ms >= bases[i] / 2 && ms <= bases[i], "%u: %u", i, ms);
    }
  }
  for (guint i = 0; i < G_N_ELEMENTS (bases); i++) {
    guint ms = gst_voice_backoff_next (&b);
    fail_unless (ms >= bases[i] / 2 && ms <= bases[i], "%u: %u", i, ms);
  }
  fail_unless_equals_int (b.attempt, G_N_ELEMENTS (bases));
  gst_voice_backoff_reset (&b);
  fail_unless (gst_voice_backoff_next (&b) <= 100);
  /* Huge attempt counts and limits neither overflow nor go past max. */
  fail_unless (gst_voice_backoff_delay_ms (1000, 30000, G_MAXUINT) <= 30000);
  fail_unless (
      gst_voice_backoff_delay_ms (G_MAXUINT, G_MAXUINT, 3) <= G_MAXINT32);
  fail_unless_equals_int (gst_voice_backoff_delay_ms (0, 0, 5), 0);
}

GST_END_TEST;

/* The macro picks the code from the table, carries the status in the
 * details and names the caller's file and line in the debug text. */
GST_START_TEST (test_http_error_macro)
{
  GstElement *e = gst_element_factory_make ("fakesink", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;
  GError *err = NULL;
  gchar *debug = NULL;
  const GstStructure *details = NULL;
  guint status = 0;

  gst_element_set_bus (e, bus);
  GST_VOICE_HTTP_ERROR (
      e, 403, ("refused: set %s", "THE_KEY"), ("HTTP %u", 403u));
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  gst_message_parse_error (msg, &err, &debug);
  fail_unless (g_error_matches (
      err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED));
  fail_unless_equals_string (err->message, "refused: set THE_KEY");
  fail_unless (strstr (debug, "test-http.c") != NULL, "%s", debug);
  fail_unless (strstr (debug, "HTTP 403") != NULL, "%s", debug);
  gst_message_parse_error_details (msg, &details);
  fail_unless (details != NULL);
  fail_unless (gst_structure_get_uint (details, "http-status-code", &status));
  fail_unless_equals_int (status, 403);
  g_clear_error (&err);
  g_free (debug);
  gst_message_unref (msg);

  /* The deferred form: same code and details. */
  msg = gst_voice_http_error_message_new (
      GST_OBJECT (e), 404, "no such thing", NULL);
  gst_message_parse_error (msg, &err, NULL);
  fail_unless (
      g_error_matches (err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  gst_message_parse_error_details (msg, &details);
  fail_unless (gst_structure_get_uint (details, "http-status-code", &status));
  fail_unless_equals_int (status, 404);
  g_clear_error (&err);
  gst_message_unref (msg);

  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
}

GST_END_TEST;

static void
append_run (gpointer data)
{
  GString *log = ((gpointer *)data)[0];

  g_string_append (log, ((gpointer *)data)[1]);
}

static void
append_free (gpointer data)
{
  GString *log = ((gpointer *)data)[0];

  g_string_append_c (log, '.');
  g_free (data);
}

static void
add_append (GstVoiceDeferred *d, guint stage, GString *log, const gchar *what)
{
  gpointer *data = g_new (gpointer, 2);

  data[0] = log;
  data[1] = (gpointer)what;
  gst_voice_deferred_add (d, stage, append_run, data, append_free);
}

/* By stage, then in the order added; each entry's data freed after it
 * ran; a message is posted in its turn; the struct is reusable. */
GST_START_TEST (test_deferred_order)
{
  GstVoiceDeferred d = GST_VOICE_DEFERRED_INIT;
  GString *log = g_string_new (NULL);
  GstElement *e = gst_element_factory_make ("fakesink", NULL);
  GstBus *bus = gst_bus_new ();
  GstMessage *msg;

  gst_element_set_bus (e, bus);
  gst_voice_deferred_run (&d);
  add_append (&d, 1, log, "c");
  add_append (&d, 0, log, "a");
  gst_voice_deferred_add_message (&d, 2, e,
      gst_message_new_element (
          GST_OBJECT (e), gst_structure_new_empty ("posted")));
  add_append (&d, 1, log, "d");
  add_append (&d, 0, log, "b");
  fail_if (gst_bus_have_pending (bus));
  gst_voice_deferred_run (&d);
  fail_unless_equals_string (log->str, "a.b.c.d.");
  msg = gst_bus_pop (bus);
  fail_unless (msg != NULL);
  fail_unless (gst_message_has_name (msg, "posted"));
  gst_message_unref (msg);

  g_string_truncate (log, 0);
  add_append (&d, 0, log, "x");
  gst_voice_deferred_run (&d);
  fail_unless_equals_string (log->str, "x.");
  gst_voice_deferred_run (&d);
  fail_unless_equals_string (log->str, "x.");

  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  g_string_free (log, TRUE);
}

GST_END_TEST;

static Suite *
http_suite (void)
{
  Suite *s = suite_create ("voice-http");
  TCase *tc = tcase_create ("http");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_http_classify);
  tcase_add_test (tc, test_http_error_codes);
  tcase_add_test (tc, test_http_parse_retry_after);
  tcase_add_test (tc, test_http_retry_after_headers);
  tcase_add_test (tc, test_backoff_bounds);
  tcase_add_test (tc, test_http_error_macro);
  tcase_add_test (tc, test_deferred_order);
  return s;
}

GST_CHECK_MAIN (http);

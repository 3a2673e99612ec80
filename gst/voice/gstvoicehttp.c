/* gst-voiceagent: the HTTP status policy, Retry-After and backoff shared
 * by every element and GstVoiceClient (see gstvoicehttp.h).
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoicehttp.h"

/**
 * gst_voice_http_classify:
 * @status: an HTTP status, or 0 when no response arrived.
 *
 * Status 0 (DNS, refused connection, TLS, a reset mid-request) is
 * retryable: it says nothing about the request, only that this try did
 * not reach a server, which is the textbook case for a retry. Callers
 * that must not repeat a request that may have been acted on (the server
 * saw it, then the connection dropped) limit the number of retries
 * themselves, as llmtransform does with its single one.
 *
 * Returns: whether @status is a success, worth retrying, or final.
 */
GstVoiceHttpVerdict
gst_voice_http_classify (guint status)
{
  if (SOUP_STATUS_IS_SUCCESSFUL (status))
    return GST_VOICE_HTTP_SUCCESS;
  if (status == 0 || status == SOUP_STATUS_REQUEST_TIMEOUT || status == 429 ||
      status >= 500)
    return GST_VOICE_HTTP_RETRY;
  return GST_VOICE_HTTP_FINAL;
}

/**
 * gst_voice_http_status_is_retryable:
 * @status: an HTTP status, or 0 when no response arrived.
 *
 * Returns: TRUE if gst_voice_http_classify() says GST_VOICE_HTTP_RETRY.
 */
gboolean
gst_voice_http_status_is_retryable (guint status)
{
  return gst_voice_http_classify (status) == GST_VOICE_HTTP_RETRY;
}

/**
 * gst_voice_http_error_code:
 * @status: an HTTP status, or 0 when no response arrived.
 * @domain: (out): GST_RESOURCE_ERROR.
 * @code: (out): the GstResourceError that tells the user what to fix:
 *   NOT_AUTHORIZED for 401/403 (the key), SETTINGS for 400/422 (the
 *   request options), NOT_FOUND for 404/410 (the URL), OPEN_READ_WRITE
 *   for the rest (the server or the network).
 */
void
gst_voice_http_error_code (guint status, GQuark *domain, gint *code)
{
  *domain = GST_RESOURCE_ERROR;
  switch (status) {
    case SOUP_STATUS_UNAUTHORIZED:
    case SOUP_STATUS_FORBIDDEN:
    case SOUP_STATUS_PROXY_AUTHENTICATION_REQUIRED:
      *code = GST_RESOURCE_ERROR_NOT_AUTHORIZED;
      break;
    case SOUP_STATUS_BAD_REQUEST:
    case SOUP_STATUS_UNPROCESSABLE_ENTITY:
    case SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE:
      *code = GST_RESOURCE_ERROR_SETTINGS;
      break;
    case SOUP_STATUS_NOT_FOUND:
    case SOUP_STATUS_GONE:
      *code = GST_RESOURCE_ERROR_NOT_FOUND;
      break;
    default:
      *code = GST_RESOURCE_ERROR_OPEN_READ_WRITE;
      break;
  }
}

/**
 * gst_voice_http_error_message_new:
 * @src: the element the error is from.
 * @status: the HTTP status (0: no response at all).
 * @text: the message for the user.
 * @debug: (nullable): the debug message.
 *
 * What GST_VOICE_HTTP_ERROR() posts, as a message to post later: for an
 * element that decides on the error under its lock and posts after
 * releasing it (a sync bus handler may call back into the element).
 *
 * Returns: (transfer full): an error message with the code from
 * gst_voice_http_error_code() and "http-status-code" in its details.
 */
GstMessage *
gst_voice_http_error_message_new (
    GstObject *src, guint status, const gchar *text, const gchar *debug)
{
  GQuark domain;
  gint code;
  GError *err;
  GstMessage *msg;

  gst_voice_http_error_code (status, &domain, &code);
  err = g_error_new_literal (domain, code, text);
  msg = gst_message_new_error_with_details (src, err, debug,
      gst_structure_new (
          "details", "http-status-code", G_TYPE_UINT, status, NULL));
  g_error_free (err);
  return msg;
}

/**
 * gst_voice_http_parse_retry_after:
 * @value: (nullable): a Retry-After value: delta-seconds or an HTTP-date.
 * @now: (nullable): the time an HTTP-date is measured from; NULL for now
 *   (tests pass a fixed time).
 *
 * Returns: the wait in milliseconds, at most
 * GST_VOICE_HTTP_RETRY_AFTER_MAX_MS (a date in the past is 0), or -1 when
 * @value is missing or neither form.
 */
gint64
gst_voice_http_parse_retry_after (const gchar *value, GDateTime *now)
{
  const gint64 max_s = GST_VOICE_HTTP_RETRY_AFTER_MAX_MS / 1000;
  GDateTime *when, *ref;
  gchar *end = NULL;
  gint64 ms;

  if (value == NULL)
    return -1;
  while (g_ascii_isspace (*value))
    value++;
  if (g_ascii_isdigit (*value)) {
    guint64 s = g_ascii_strtoull (value, &end, 10);
    while (g_ascii_isspace (*end))
      end++;
    if (*end != '\0')
      return -1;
    return (gint64)MIN (s, (guint64)max_s) * 1000;
  }
  when = soup_date_time_new_from_http_string (value);
  if (when == NULL)
    return -1;
  ref = now ? g_date_time_ref (now) : g_date_time_new_now_utc ();
  ms = g_date_time_difference (when, ref) / 1000;
  g_date_time_unref (when);
  g_date_time_unref (ref);
  return CLAMP (ms, 0, GST_VOICE_HTTP_RETRY_AFTER_MAX_MS);
}

/**
 * gst_voice_http_retry_after_ms:
 * @headers: (nullable): response headers.
 *
 * Reads `retry-after-ms` (OpenAI's, finer than a second) if present and
 * valid, else `Retry-After`.
 *
 * Returns: the wait the server asked for in milliseconds (bounded as in
 * gst_voice_http_parse_retry_after()), or -1 if it did not say.
 */
gint64
gst_voice_http_retry_after_ms (SoupMessageHeaders *headers)
{
  const gchar *v;

  if (headers == NULL)
    return -1;
  v = soup_message_headers_get_one (headers, "retry-after-ms");
  if (v) {
    gchar *end = NULL;
    gdouble ms = g_ascii_strtod (v, &end);
    if (end != v && ms >= 0)
      return (gint64)MIN (ms, (gdouble)GST_VOICE_HTTP_RETRY_AFTER_MAX_MS);
  }
  return gst_voice_http_parse_retry_after (
      soup_message_headers_get_one (headers, "Retry-After"), NULL);
}

/**
 * gst_voice_backoff_delay_ms:
 * @initial_ms: the first delay.
 * @max_ms: the longest delay.
 * @attempt: retries so far (0 for the first).
 *
 * Exponential backoff with "equal jitter": the delay doubles from
 * @initial_ms up to @max_ms, and half of it is random, so a fleet of
 * clients that lost the same server spreads out while none retries in a
 * tight loop (the fixed half).
 *
 * Returns: a delay in [base / 2, base], base = min (@initial_ms ×
 * 2^@attempt, @max_ms).
 */
guint
gst_voice_backoff_delay_ms (guint initial_ms, guint max_ms, guint attempt)
{
  guint64 base =
      MIN ((guint64)initial_ms << MIN (attempt, 16), (guint64)max_ms);

  base = MIN (base, (guint64)G_MAXINT32);
  return (guint)(base / 2 +
      (guint64)g_random_int_range (0, (gint32)(base / 2) + 1));
}

/**
 * gst_voice_backoff_next:
 * @backoff: the backoff state.
 *
 * Returns: the delay before the next retry; counts the attempt.
 */
guint
gst_voice_backoff_next (GstVoiceBackoff *backoff)
{
  guint ms = gst_voice_backoff_delay_ms (
      backoff->initial_ms, backoff->max_ms, backoff->attempt);

  if (backoff->attempt < G_MAXUINT)
    backoff->attempt++;
  return ms;
}

/**
 * gst_voice_backoff_reset:
 * @backoff: the backoff state.
 *
 * Starts over from the initial delay, after a success.
 */
void
gst_voice_backoff_reset (GstVoiceBackoff *backoff)
{
  backoff->attempt = 0;
}

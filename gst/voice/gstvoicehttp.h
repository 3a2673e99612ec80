/* gst-voiceagent: the one HTTP status policy of every element (success,
 * retry or give up, and which GStreamer error a refusal is), Retry-After,
 * reconnect backoff, and the error macro that carries the status.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/**
 * GstVoiceHttpVerdict:
 * @GST_VOICE_HTTP_SUCCESS: 2xx.
 * @GST_VOICE_HTTP_RETRY: no answer (status 0), 408, 429 or 5xx: the same
 *   request may well succeed later.
 * @GST_VOICE_HTTP_FINAL: any other status: repeating the request gets the
 *   same answer until someone changes the configuration.
 */
typedef enum {
  GST_VOICE_HTTP_SUCCESS,
  GST_VOICE_HTTP_RETRY,
  GST_VOICE_HTTP_FINAL,
} GstVoiceHttpVerdict;

/* A Retry-After longer than this (a day) is read as this: no caller waits
 * that long, and the bound keeps the arithmetic far from overflowing. */
#define GST_VOICE_HTTP_RETRY_AFTER_MAX_MS ((gint64)24 * 3600 * 1000)

GstVoiceHttpVerdict gst_voice_http_classify (guint status);
gboolean gst_voice_http_status_is_retryable (guint status);
void gst_voice_http_error_code (guint status, GQuark *domain, gint *code);
gint64 gst_voice_http_parse_retry_after (const gchar *value, GDateTime *now);
gint64 gst_voice_http_retry_after_ms (SoupMessageHeaders *headers);
GstMessage *gst_voice_http_error_message_new (
    GstObject *src, guint status, const gchar *text, const gchar *debug);

/**
 * GstVoiceBackoff:
 * @initial_ms: the first delay (before jitter).
 * @max_ms: the longest delay (before jitter).
 * @attempt: delays handed out since the last reset.
 *
 * Exponential backoff with equal jitter. Not thread-safe: the owner guards
 * all three fields, usually by using it from one thread only.
 */
typedef struct
{
  guint initial_ms;
  guint max_ms;
  guint attempt;
} GstVoiceBackoff;

guint gst_voice_backoff_delay_ms (
    guint initial_ms, guint max_ms, guint attempt);
guint gst_voice_backoff_next (GstVoiceBackoff *backoff);
void gst_voice_backoff_reset (GstVoiceBackoff *backoff);

/**
 * GST_VOICE_HTTP_ERROR:
 * @el: the element posting the error.
 * @status: the HTTP status (0: no response at all).
 * @text: the message for the user, printf arguments in parentheses.
 * @debug: the debug message, printf arguments in parentheses.
 *
 * Posts an error whose domain and code follow the status (see
 * gst_voice_http_error_code()) and whose details carry the status as
 * "http-status-code" (G_TYPE_UINT), the way souphttpsrc does, so an
 * application can tell a bad key from an outage without parsing text.
 * Like GST_ELEMENT_ERROR, it names the caller's file, function and line.
 */
#define GST_VOICE_HTTP_ERROR(el, status, text, debug)                          \
  G_STMT_START                                                                 \
  {                                                                            \
    guint __voice_status = (status);                                           \
    GQuark __voice_domain;                                                     \
    gint __voice_code;                                                         \
    gchar *__voice_txt = _gst_element_error_printf text;                       \
    gchar *__voice_dbg = _gst_element_error_printf debug;                      \
    gst_voice_http_error_code (                                                \
        __voice_status, &__voice_domain, &__voice_code);                       \
    if (__voice_txt)                                                           \
      GST_WARNING_OBJECT (el, "error: %s", __voice_txt);                       \
    if (__voice_dbg)                                                           \
      GST_WARNING_OBJECT (el, "error: %s", __voice_dbg);                       \
    gst_element_message_full_with_details (GST_ELEMENT (el),                   \
        GST_MESSAGE_ERROR, __voice_domain, __voice_code, __voice_txt,          \
        __voice_dbg, __FILE__, GST_FUNCTION, __LINE__,                         \
        gst_structure_new ("details", "http-status-code", G_TYPE_UINT,         \
            __voice_status, NULL));                                            \
  }                                                                            \
  G_STMT_END

G_END_DECLS

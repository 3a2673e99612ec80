/* voiceagent: checks of an HTTP/1.x request head before libsoup parses it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most a request head (request line and headers) may have. */
#define VA_HTTP_HEAD_MAX (64 * 1024)

/* Where the head in @data ends (just past its blank line), or 0 when
 * @data holds no whole head yet. */
gsize va_http_head_end (const gchar *data, gsize len);

/* Checks a whole request head (@len bytes, ending with its blank line).
 * Returns 0 when libsoup may have it, else the HTTP status to refuse it
 * with and, in @why, a fixed text saying why:
 * - 400: a NUL byte, a request line that is not METHOD TARGET HTTP/1.x,
 *   an HTTP/1.1 request without Host, a Content-Length that is not
 *   digits, or two that differ;
 * - 413: a Content-Length over @max_body;
 * - 417: an Expect other than 100-continue;
 * - 501: a Transfer-Encoding other than chunked;
 * - 505: an HTTP version other than 1.0 and 1.1 (the HTTP/2 preface). */
guint va_http_head_check (
    const gchar *head, gsize len, gsize max_body, const gchar **why);

G_END_DECLS

/* voiceagent: checks of an HTTP/1.x request head before libsoup parses it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libsoup 3.2 (Debian 12) leaks the whole request target, up to 64 KiB,
 * of every request whose body framing it cannot read: an unknown
 * Transfer-Encoding, or a Content-Length that is not a number (its
 * parse_headers returns early without freeing it; fixed upstream in
 * 3.5.2). Anyone could grow the server's memory that way with no token.
 * So httpguard.c shows every request head to this file first, and such a
 * request never reaches libsoup. The same pass answers, with the server's
 * JSON errors, what libsoup would refuse with an empty body: a request
 * line it cannot read, an HTTP version it does not speak, an unknown
 * expectation. No GStreamer, no socket: a buffer in, a status out.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "httphead.h"

gsize
va_http_head_end (const gchar *data, gsize len)
{
  gsize i;

  /* HTTP/1.1 lets a server accept a bare LF as a line end (RFC 9112
   * §2.2); libsoup does. */
  for (i = 0; i + 1 < len; i++) {
    if (data[i] != '\n')
      continue;
    if (data[i + 1] == '\n')
      return i + 2;
    if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
      return i + 3;
  }
  return 0;
}

static gboolean
all_digits (const gchar *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

/* The head's framing and expectations, gathered from its headers. */
typedef struct
{
  gboolean host;
  gint64 content_length; /* -1: none */
  gboolean bad_length; /* not digits, or two that differ */
  gboolean unknown_coding; /* a Transfer-Encoding other than chunked */
  gboolean unknown_expectation;
} Framing;

static void
read_content_length (Framing *f, const gchar *value)
{
  gchar **items = g_strsplit (value, ",", -1);
  gchar **item;

  for (item = items; *item; item++) {
    gint64 n;
    g_strstrip (*item);
    if (!all_digits (*item)) {
      f->bad_length = TRUE;
      break;
    }
    /* Too many digits for an int64 is simply too big (413). */
    n = strlen (*item) > 18 ? G_MAXINT64 : g_ascii_strtoll (*item, NULL, 10);
    if (f->content_length >= 0 && n != f->content_length)
      f->bad_length = TRUE;
    f->content_length = n;
  }
  g_strfreev (items);
}

/* Returns FALSE for a line that is not "Name: value". */
static gboolean
read_header (Framing *f, gchar *line)
{
  gchar *colon = strchr (line, ':');
  gchar *value;

  if (colon == NULL || colon == line || *line == ' ' || *line == '\t')
    return FALSE;
  *colon = '\0';
  value = g_strstrip (colon + 1);
  if (g_ascii_strcasecmp (line, "Host") == 0)
    f->host = TRUE;
  else if (g_ascii_strcasecmp (line, "Content-Length") == 0)
    read_content_length (f, value);
  else if (g_ascii_strcasecmp (line, "Transfer-Encoding") == 0)
    f->unknown_coding |= g_ascii_strcasecmp (value, "chunked") != 0;
  else if (g_ascii_strcasecmp (line, "Expect") == 0)
    f->unknown_expectation |= g_ascii_strcasecmp (value, "100-continue") != 0;
  return TRUE;
}

/* 0, or the status for a request line that is not METHOD TARGET HTTP/1.x. */
static guint
check_request_line (const gchar *line, gboolean *http11, const gchar **why)
{
  gchar **words = g_strsplit (line, " ", -1);
  guint status = 0;

  if (g_strv_length (words) != 3 || *words[0] == '\0' || *words[1] == '\0' ||
      !g_str_has_prefix (words[2], "HTTP/")) {
    status = 400;
    *why = "the request line is not METHOD TARGET HTTP/1.1";
  } else if (!g_str_equal (words[2], "HTTP/1.1") &&
      !g_str_equal (words[2], "HTTP/1.0")) {
    status = 505;
    *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
  }
  *http11 = status == 0 && g_str_equal (words[2], "HTTP/1.1");
  g_strfreev (words);
  return status;
}

static guint
judge (const Framing *f, gboolean http11, gsize max_body, const gchar **why)
{
  if (http11 && !f->host) {
    *why = "an HTTP/1.1 request needs a Host header";
    return 400;
  }
  if (f->bad_length) {
    *why = "Content-Length must be one number of bytes";
    return 400;
  }
  if (f->unknown_coding) {
    *why = "the only Transfer-Encoding taken is chunked";
    return 501;
  }
  if (f->unknown_expectation) {
    *why = "the only expectation met is 100-continue";
    return 417;
  }
  if (f->content_length > (gint64)max_body) {
    *why = "the body is over the size limit (--max-body)";
    return 413;
  }
  return 0;
}

guint
va_http_head_check (
    const gchar *head, gsize len, gsize max_body, const gchar **why)
{
  Framing f = { .content_length = -1 };
  gchar *text, **lines;
  gboolean http11 = FALSE;
  guint status, i;

  if (memchr (head, '\0', len)) {
    *why = "the request head holds a NUL byte";
    return 400;
  }
  text = g_strndup (head, len);
  lines = g_strsplit (text, "\n", -1);
  for (i = 0; lines[i]; i++)
    g_strchomp (lines[i]); /* the CR of CRLF */
  status = check_request_line (lines[0], &http11, why);
  for (i = 1; status == 0 && lines[i] && *lines[i]; i++) {
    if (!read_header (&f, lines[i])) {
      status = 400;
      *why = "a header line is not Name: value";
    }
  }
  if (status == 0)
    status = judge (&f, http11, max_body, why);
  g_strfreev (lines);
  g_free (text);
  return status;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Server-Sent Events framing for streamed chat completions. The grammar is
 * the WHATWG one (https://html.spec.whatwg.org/#event-stream-interpretation)
 * with two concessions to real LLM servers:
 * - llama.cpp builds of 2024-2025 report mid-stream failures as a
 *   non-standard `error: {...}` field; it is delivered as an event named
 *   "error" instead of being ignored as the spec would.
 * - Some servers end the body right after `data: [DONE]` with no blank
 *   line; llm_sse_parser_finish() dispatches that last event instead of
 *   discarding it. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "llmsse.h"

void
llm_sse_parser_init (LlmSseParser *parser)
{
  memset (parser, 0, sizeof (*parser));
  parser->line = g_string_new (NULL);
  parser->data = g_string_new (NULL);
  parser->event = g_string_new (NULL);
}

void
llm_sse_parser_clear (LlmSseParser *parser)
{
  if (parser->line)
    g_string_free (parser->line, TRUE);
  if (parser->data)
    g_string_free (parser->data, TRUE);
  if (parser->event)
    g_string_free (parser->event, TRUE);
  memset (parser, 0, sizeof (*parser));
}

static void
reset_event (LlmSseParser *parser)
{
  g_string_truncate (parser->data, 0);
  g_string_truncate (parser->event, 0);
  parser->has_data = FALSE;
  parser->error_field = FALSE;
}

/* Forgets everything buffered: the next byte starts a new stream. */
void
llm_sse_parser_reset (LlmSseParser *parser)
{
  reset_event (parser);
  g_string_truncate (parser->line, 0);
  parser->after_cr = FALSE;
  parser->bom_checked = FALSE;
}

/* Hands the assembled event to @func; returns what @func returned. */
static gboolean
dispatch (LlmSseParser *parser, LlmSseEventFunc func, gpointer user_data)
{
  gboolean go_on = TRUE;
  const gchar *event;

  if (parser->has_data) {
    if (parser->error_field)
      event = "error";
    else if (parser->event->len > 0)
      event = parser->event->str;
    else
      event = "message";
    go_on = func (event, parser->data->str, parser->data->len, user_data);
  }
  reset_event (parser);
  return go_on;
}

/* Interprets one complete line (without its end-of-line). */
static gboolean
process_line (LlmSseParser *parser, LlmSseEventFunc func, gpointer user_data)
{
  const gchar *line = parser->line->str;
  gsize len = parser->line->len;
  const gchar *colon, *value;
  gsize name_len, value_len;

  if (!parser->bom_checked) {
    parser->bom_checked = TRUE;
    if (len >= 3 && memcmp (line, "\xEF\xBB\xBF", 3) == 0) {
      line += 3;
      len -= 3;
    }
  }
  if (len == 0)
    return dispatch (parser, func, user_data);
  if (line[0] == ':')
    return TRUE; /* comment, e.g. a keep-alive ": ping" */

  colon = memchr (line, ':', len);
  if (colon) {
    name_len = colon - line;
    value = colon + 1;
    value_len = len - name_len - 1;
    if (value_len > 0 && value[0] == ' ') {
      value++;
      value_len--;
    }
  } else {
    name_len = len;
    value = "";
    value_len = 0;
  }

  if (name_len == 4 && memcmp (line, "data", 4) == 0) {
    if (parser->has_data && !parser->error_field)
      g_string_append_c (parser->data, '\n');
    else if (parser->error_field)
      g_string_truncate (parser->data, 0);
    g_string_append_len (parser->data, value, value_len);
    parser->has_data = TRUE;
    parser->error_field = FALSE;
  } else if (name_len == 5 && memcmp (line, "event", 5) == 0) {
    g_string_truncate (parser->event, 0);
    g_string_append_len (parser->event, value, value_len);
  } else if (name_len == 5 && memcmp (line, "error", 5) == 0) {
    g_string_truncate (parser->data, 0);
    g_string_append_len (parser->data, value, value_len);
    parser->has_data = TRUE;
    parser->error_field = TRUE;
  }
  /* id, retry and unknown fields mean nothing for a one-shot POST. */
  return TRUE;
}

static gboolean
line_too_long (GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
      "server sent an event-stream line longer than %u bytes",
      LLM_SSE_MAX_LINE);
  return FALSE;
}

/**
 * llm_sse_parser_feed:
 * @bytes: the next bytes of the body, split anywhere
 *
 * Calls @func for every event completed by @bytes.
 *
 * Returns: FALSE if parsing stopped: with @error set when the stream is
 * malformed, without when @func returned FALSE.
 */
gboolean
llm_sse_parser_feed (LlmSseParser *parser, const gchar *bytes, gsize len,
    LlmSseEventFunc func, gpointer user_data, GError **error)
{
  const gchar *p = bytes, *end = bytes + len;

  while (p < end) {
    const gchar *run = p;

    if (parser->after_cr) {
      parser->after_cr = FALSE;
      if (*p == '\n') {
        p++;
        continue;
      }
    }
    while (p < end && *p != '\n' && *p != '\r')
      p++;
    if (parser->line->len + (p - run) > LLM_SSE_MAX_LINE)
      return line_too_long (error);
    g_string_append_len (parser->line, run, p - run);
    if (p == end)
      break;
    parser->after_cr = (*p == '\r');
    p++;
    if (!process_line (parser, func, user_data)) {
      g_string_truncate (parser->line, 0);
      return FALSE;
    }
    g_string_truncate (parser->line, 0);
  }
  return TRUE;
}

/**
 * llm_sse_parser_finish:
 *
 * The body ended: interprets an unterminated last line and dispatches an
 * event that was not followed by a blank line.
 *
 * Returns: as llm_sse_parser_feed().
 */
gboolean
llm_sse_parser_finish (LlmSseParser *parser, LlmSseEventFunc func,
    gpointer user_data, GError **error)
{
  gboolean go_on = TRUE;

  if (parser->line->len > 0) {
    go_on = process_line (parser, func, user_data);
    g_string_truncate (parser->line, 0);
  }
  if (go_on)
    go_on = dispatch (parser, func, user_data);
  parser->after_cr = FALSE;
  return go_on;
}

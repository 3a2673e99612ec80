/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Largest line the parser accepts; a server sending more is broken or
 * hostile, and the stream is failed rather than buffered without bound. */
#define LLM_SSE_MAX_LINE (1024 * 1024)

/**
 * LlmSseEventFunc:
 * @event: the event type: "message" unless an `event:` field named it, or
 *   "error" for llama.cpp's non-standard `error:` field
 * @data: the event's data (its `data:` lines joined with '\n'), NUL-ended
 * @len: length of @data in bytes
 *
 * Called once per complete event. Return FALSE to stop parsing.
 */
typedef gboolean (*LlmSseEventFunc) (
    const gchar *event, const gchar *data, gsize len, gpointer user_data);

/**
 * LlmSseParser:
 *
 * A Server-Sent Events parser (the WHATWG event-stream grammar) fed with
 * bytes as they arrive: lines may be split anywhere across reads, end with
 * LF, CRLF or CR, comments (`: ping`) are skipped, several `data:` lines
 * make one event, a leading BOM is dropped.
 */
typedef struct
{
  GString *line; /* the unfinished line */
  GString *data; /* data of the event being assembled */
  GString *event; /* its `event:` field, empty for "message" */
  gboolean has_data; /* a data (or error) field was seen */
  gboolean error_field; /* the data came from an `error:` field */
  gboolean after_cr; /* the last byte was CR: a LF right after belongs to it */
  gboolean bom_checked;
} LlmSseParser;

void llm_sse_parser_init (LlmSseParser *parser);
void llm_sse_parser_clear (LlmSseParser *parser);
void llm_sse_parser_reset (LlmSseParser *parser);

gboolean llm_sse_parser_feed (LlmSseParser *parser, const gchar *bytes,
    gsize len, LlmSseEventFunc func, gpointer user_data, GError **error);
gboolean llm_sse_parser_finish (LlmSseParser *parser, LlmSseEventFunc func,
    gpointer user_data, GError **error);

G_END_DECLS

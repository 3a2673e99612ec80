/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "llmtools.h"

G_BEGIN_DECLS

/* The OpenAI Chat Completions wire format, as spoken by OpenAI, vLLM,
 * SGLang, llama.cpp's server and Ollama. */

typedef struct
{
  const gchar *role; /* "system", "user", "assistant" or "tool" */
  const gchar *content; /* NULL: sent as null (an assistant's tool calls) */
  const gchar *tool_calls; /* assistant: JSON array text, or NULL */
  const gchar *tool_call_id; /* tool: the call it answers, or NULL */
} LlmChatMessage;

typedef struct
{
  const gchar *model;
  const LlmChatMessage *messages;
  guint n_messages;
  gdouble temperature; /* < 0: not sent (the server's default) */
  gint max_tokens; /* <= 0: not sent */
  const gchar *extra_body; /* JSON object merged at the top level, or NULL */
  const gchar *tools; /* the `tools` array as JSON text, or NULL */
  const gchar *tool_choice; /* e.g. "none" after the last round, or NULL */
} LlmChatRequest;

gchar *llm_chat_build_request (const LlmChatRequest *req, GError **error);
gboolean llm_chat_check_extra_body (const gchar *extra_body, GError **error);

/* What one streamed chunk says. Strings are owned; clear with
 * llm_chat_chunk_clear(). */
typedef struct
{
  gchar *content; /* text for the caller, NULL if the delta has none */
  gchar *reasoning; /* reasoning / reasoning_content: never spoken */
  gchar *finish_reason; /* NULL until the last choice chunk */
  gchar *error; /* the server reported a failure mid-stream */
  GPtrArray *tool_deltas; /* LlmToolDelta* of `tool_calls`, or NULL */
  gboolean has_usage;
  gint64 prompt_tokens;
  gint64 completion_tokens;
  gint64 total_tokens;
} LlmChatChunk;

void llm_chat_chunk_clear (LlmChatChunk *chunk);
gboolean llm_chat_is_done_marker (const gchar *data, gsize len);
gboolean llm_chat_parse_chunk (JsonParser *parser, const gchar *data, gsize len,
    LlmChatChunk *chunk, GError **error);

gchar *llm_chat_error_message (const gchar *body, gsize len);

G_END_DECLS

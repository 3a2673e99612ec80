/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Tool calls of the Chat Completions API, apart from GStreamer so the
 * tests and the benchmark use them without a pipeline: the tools file,
 * the streamed `tool_calls` deltas assembled into calls, the webhook's
 * request body and signature, and the results given back to the model. */

/* Bounds: the tools file is the operator's (trusted), but nothing a model
 * or a webhook sends may grow without limit. */
#define LLM_TOOLS_MAX_FILE (256 * 1024) /* bytes of the tools file */
#define LLM_TOOLS_MAX_TOOLS 64 /* tools in one file */
#define LLM_TOOLS_MAX_CALLS 8 /* calls run in one round; more get errors */
#define LLM_TOOLS_MAX_ANSWER_CALLS                                             \
  16 /* calls assembled per answer; more are
                                       * ignored */
#define LLM_TOOLS_MAX_ID 128 /* bytes of a call id kept (longer: ours) */
#define LLM_TOOLS_MAX_NAME 64 /* bytes of a called name kept (longer: cut) */
#define LLM_TOOLS_MAX_ARGUMENTS (16 * 1024) /* bytes of one call's arguments */
#define LLM_TOOLS_MAX_RESULT (8 * 1024) /* bytes of one result given back */
#define LLM_TOOLS_MAX_RESPONSE (256 * 1024) /* bytes read of a webhook answer */
#define LLM_TOOLS_DEFAULT_TIMEOUT_MS 5000
#define LLM_TOOLS_MAX_TIMEOUT_MS 60000

typedef enum {
  LLM_TOOL_WEBHOOK,
  LLM_TOOL_END_CALL,
  LLM_TOOL_TRANSFER,
  LLM_TOOL_WAIT,
} LlmToolKind;

/* One tool of the file. Read-only once loaded. */
typedef struct
{
  gchar *name;
  LlmToolKind kind;
  gchar *url; /* webhook only */
  guint timeout_ms; /* webhook only */
  gchar **header_names; /* webhook headers whose values come from ... */
  gchar **header_envs; /* ... these environment variables; NULL-ended */
} LlmTool;

/* The tools of one file. Immutable once loaded, so threads share it by
 * reference. */
typedef struct _LlmToolSet LlmToolSet;

LlmToolSet *llm_tool_set_load (const gchar *path, GError **error);
LlmToolSet *llm_tool_set_parse (const gchar *json, gsize len, GError **error);
LlmToolSet *llm_tool_set_ref (LlmToolSet *set);
void llm_tool_set_unref (LlmToolSet *set);
guint llm_tool_set_size (const LlmToolSet *set);
const LlmTool *llm_tool_set_find (const LlmToolSet *set, const gchar *name);
const gchar *llm_tool_set_request_json (const LlmToolSet *set);
const gchar *llm_tool_kind_name (LlmToolKind kind);

/* One `tool_calls` delta of a streamed chunk. Strings are owned; NULL when
 * the delta has no such member. */
typedef struct
{
  gint index; /* -1 when the server sent none */
  gchar *id;
  gchar *name;
  gchar *arguments;
} LlmToolDelta;

void llm_tool_delta_free (LlmToolDelta *delta);

/* A call assembled from deltas. */
typedef struct
{
  gint index;
  gchar *id; /* the server's, or made up when it sent none */
  GString *name;
  GString *arguments;
  gboolean too_long; /* arguments beyond LLM_TOOLS_MAX_ARGUMENTS dropped */
  gboolean name_cut; /* the name was longer than LLM_TOOLS_MAX_NAME */
} LlmToolCall;

/* The calls of one streamed answer, in the order they began. Not
 * thread-safe. */
typedef struct
{
  GPtrArray *calls; /* LlmToolCall* */
  guint made_up_ids; /* ids we had to invent */
  guint ignored; /* deltas dropped: calls past LLM_TOOLS_MAX_ANSWER_CALLS */
} LlmToolCalls;

void llm_tool_calls_init (LlmToolCalls *calls);
void llm_tool_calls_clear (LlmToolCalls *calls);
void llm_tool_calls_feed (LlmToolCalls *calls, const LlmToolDelta *delta);
void llm_tool_calls_finish (LlmToolCalls *calls, guint round);
gchar *llm_tool_calls_to_json (const LlmToolCalls *calls);

JsonNode *llm_tool_parse_arguments (const LlmToolCall *call, GError **error);

gchar *llm_tool_webhook_body (const gchar *name, const gchar *tool_call_id,
    const gchar *call_id, guint turn, JsonNode *arguments);
gchar *llm_tool_signature (
    const gchar *secret, gint64 timestamp, const gchar *body, gsize len);

gchar *llm_tool_error_result (const gchar *message);
gchar *llm_tool_result_from_http (
    guint status, const gchar *body, gsize len, gchar **error);
gchar *llm_tool_result_bound (const gchar *result);

gboolean llm_url_is_http (const gchar *url);
gchar *llm_url_for_log (const gchar *url);

G_END_DECLS

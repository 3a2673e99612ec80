/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

#include "gstvoiceoptions.h"

#include "gstllmtransform.h"

G_BEGIN_DECLS

/* The request options of llmtransform: its properties, except `history`
 * (that is conversation state, not an option). Defined once here as a
 * table, so the element keeps one struct of values and copies it for a
 * request instead of mirroring every field. */

#define LLM_DEFAULT_URL "https://api.openai.com/v1"
#define LLM_DEFAULT_MODEL "gpt-4o-mini"
#define LLM_DEFAULT_SYSTEM_PROMPT                                              \
  "You are a helpful voice assistant on a call. Answer in one to three "       \
  "short spoken sentences, in plain words: no lists, markdown, emoji or "      \
  "links."
#define LLM_DEFAULT_GREETING NULL
#define LLM_DEFAULT_TEMPERATURE (-1.0)
#define LLM_DEFAULT_MAX_TOKENS 0
#define LLM_DEFAULT_HISTORY_SIZE 20
#define LLM_DEFAULT_EXTRA_BODY NULL
#define LLM_DEFAULT_FIRST_TOKEN_TIMEOUT_MS 3000
#define LLM_DEFAULT_FALLBACK_TEXT                                              \
  "Sorry, I'm having trouble answering right now. Could you say that again?"
#define LLM_DEFAULT_INTERRUPTION GST_LLM_INTERRUPTION_CONFIRMED
#define LLM_DEFAULT_CLAUSE_MIN_CHARS 10
#define LLM_DEFAULT_CLAUSE_MAX_WAIT_MS 250
#define LLM_DEFAULT_MIN_INTERRUPTION_MS 1000
#define LLM_DEFAULT_FALSE_INTERRUPTION_TIMEOUT_MS 2000
#define LLM_DEFAULT_SPECULATIVE TRUE
#define LLM_DEFAULT_SPECULATIVE_MAX 2
#define LLM_DEFAULT_SPECULATIVE_MAX_WORDS 60
#define LLM_DEFAULT_TURN_LANGUAGE "en"
#define LLM_DEFAULT_MAX_TOOL_ROUNDS 3
#define LLM_DEFAULT_TOOL_FILLER_TEXT "One moment."
#define LLM_DEFAULT_TOOL_FILLER_MS 1000

/* Option ids, relative to the first id the class gives llm_options_install;
 * in the order the properties always had. */
typedef enum {
  LLM_OPT_URL = 0,
  LLM_OPT_API_KEY,
  LLM_OPT_MODEL,
  LLM_OPT_SYSTEM_PROMPT,
  LLM_OPT_GREETING,
  LLM_OPT_TEMPERATURE,
  LLM_OPT_MAX_TOKENS,
  LLM_OPT_HISTORY_SIZE,
  LLM_OPT_EXTRA_BODY,
  LLM_OPT_FIRST_TOKEN_TIMEOUT_MS,
  LLM_OPT_FALLBACK_TEXT,
  LLM_OPT_INTERRUPTION,
  LLM_OPT_CLAUSE_MIN_CHARS,
  LLM_OPT_CLAUSE_MAX_WAIT_MS,
  LLM_OPT_MIN_INTERRUPTION_MS,
  LLM_OPT_FALSE_INTERRUPTION_TIMEOUT_MS,
  LLM_OPT_SPECULATIVE,
  LLM_OPT_SPECULATIVE_MAX,
  LLM_OPT_SPECULATIVE_MAX_WORDS,
  LLM_OPT_TURN_WORDS,
  LLM_OPT_TURN_LANGUAGE,
  LLM_OPT_TOOLS_FILE,
  LLM_OPT_TOOLS_SECRET,
  LLM_OPT_CALL_ID,
  LLM_OPT_MAX_TOOL_ROUNDS,
  LLM_OPT_TOOL_FILLER_TEXT,
  LLM_OPT_TOOL_FILLER_MS,
  /* Deprecated names (docs/elements/README.md, "Migration"), kept for one
   * release: history-turns, first-token-timeout. */
  LLM_OPT_DEPRECATED_HISTORY_TURNS,
  LLM_OPT_DEPRECATED_FIRST_TOKEN_TIMEOUT,
  LLM_OPT_COUNT
} LlmOption;

/* One set of option values. The element's copy is protected by its
 * OBJECT_LOCK; a copy made with llm_options_copy belongs to its maker. */
typedef struct
{
  gchar *url; /* base URL of the API; NULL when set to NULL */
  gchar *api_key; /* the property; llm_options_resolve_api_key reads it */
  gchar *model;
  gchar *system_prompt;
  gchar *greeting;
  gdouble temperature; /* -1: not sent */
  gint max_tokens; /* 0: not sent */
  guint history_size; /* in exchanges */
  gchar *extra_body; /* JSON object text, checked when set and at start */
  guint first_token_timeout_ms; /* 0: none */
  gchar *fallback_text;
  GstLlmInterruption interruption;
  guint clause_min_chars;
  guint clause_max_wait_ms;
  guint min_interruption_ms;
  guint false_interruption_timeout_ms;
  gboolean speculative;
  guint speculative_max;
  guint speculative_max_words;
  gchar *turn_words; /* NULL: the built-in lists */
  gchar *turn_language;
  gchar *tools_file; /* NULL: no tools */
  gchar *tools_secret; /* NULL: $VOICEAGENT_TOOLS_SECRET */
  gchar *call_id;
  guint max_tool_rounds;
  gchar *tool_filler_text;
  guint tool_filler_ms; /* 0: no filler */
} LlmOptions;

void llm_options_install (GObjectClass *klass, guint first_prop_id);
/* The struct's init (defaults from the pspecs), clear, deep copy, and set
 * and get (under the element's OBJECT_LOCK), all from the one table. */
extern GstVoiceOptionTable llm_options_table;
GST_VOICE_OPTIONS_DEFINE_ACCESSORS (
    llm, LlmOptions, LlmOption, llm_options_table)
gchar *llm_options_resolve_api_key (const LlmOptions *opts);
gchar *llm_options_resolve_tools_secret (const LlmOptions *opts);

G_END_DECLS

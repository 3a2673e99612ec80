/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

#include "llmchat.h"

G_BEGIN_DECLS

/**
 * LlmToolRound:
 *
 * One round of tool calls within an exchange: the assistant message that
 * asked for them (the text said before them, and the calls) and a result
 * per call. A result still NULL is pending (the caller spoke before it
 * came back): requests send a placeholder for it, so every call id always
 * has its result, and the real one replaces it when it arrives.
 */
typedef struct
{
  gsize text_end; /* bytes of the answer's text said before the calls */
  gchar *text; /* the text said in this round before the calls */
  gchar *calls_json; /* the `tool_calls` array */
  guint n_calls;
  gchar **ids; /* n_calls call ids */
  gchar **results; /* n_calls results (JSON text), NULL while pending */
} LlmToolRound;

/**
 * LlmExchange:
 *
 * One exchange of the conversation: what the caller said and what the
 * caller heard of the answer.
 */
typedef struct
{
  guint id; /* unique in its history */
  guint turn;
  gchar *user; /* NULL for text the agent said unprompted (greeting, say) */
  GString *agent; /* text pushed towards the caller */
  gchar *heard; /* what the TTS says the caller heard, when cut short */
  gboolean answered; /* a reply ended with text queued for the caller */
  GPtrArray *rounds; /* LlmToolRound*, NULL when no tool was called */
} LlmExchange;

/**
 * LlmHistory:
 *
 * The conversation so far, oldest exchange first. Not thread-safe.
 */
typedef struct
{
  GQueue exchanges; /* LlmExchange* */
  guint next_id;
} LlmHistory;

void llm_history_init (LlmHistory *history);
void llm_history_clear (LlmHistory *history);

LlmExchange *llm_history_add (
    LlmHistory *history, guint turn, const gchar *user);
LlmExchange *llm_history_find (LlmHistory *history, guint id);
LlmExchange *llm_history_find_turn (LlmHistory *history, guint turn);
LlmExchange *llm_history_last (LlmHistory *history);
void llm_history_drop_last (LlmHistory *history);
void llm_history_remove (LlmHistory *history, guint id);
void llm_history_trim (LlmHistory *history, guint keep);
LlmToolRound *llm_exchange_add_round (LlmExchange *exchange, const gchar *said,
    const gchar *calls_json, const gchar *const *ids, guint n_calls);
gboolean llm_tool_round_complete (const LlmToolRound *round);
GArray *llm_history_messages (
    LlmHistory *history, const gchar *system_prompt, const gchar *user);

gchar *llm_history_to_json (LlmHistory *history);
gboolean llm_history_from_json (
    LlmHistory *history, const gchar *json, GError **error);

const gchar *llm_exchange_heard (LlmExchange *exchange);
gboolean llm_exchange_unanswered (LlmExchange *exchange);
void llm_exchange_set_heard (
    LlmExchange *exchange, const gchar *text, gboolean complete);

G_END_DECLS

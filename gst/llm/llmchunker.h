/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * LlmChunker:
 *
 * Cuts a model's streamed reply into speakable pieces. A piece ends at
 * sentence or clause punctuation (or a line break) once it holds at least
 * @min_chars characters; the caller asks for a timed cut (at the last word
 * boundary) when text waited too long, and takes the rest at the end. The
 * pieces, concatenated, are exactly the text pushed in, minus a leading
 * `<think>…</think>` block (reasoning models served without a reasoning
 * parser put their thoughts there; they must never be spoken).
 *
 * Not thread-safe: the caller serialises access.
 */
typedef struct
{
  GString *pending; /* speakable text not handed out yet */
  gsize scanned; /* bytes of @pending already known to hold no cut */
  guint min_chars;
  gint think; /* ThinkState */
  GString *held; /* text held while deciding whether it is a think block */
  gboolean strip_leading; /* drop whitespace before the first spoken char */
} LlmChunker;

void llm_chunker_init (LlmChunker *chunker, guint min_chars);
void llm_chunker_clear (LlmChunker *chunker);

void llm_chunker_push (LlmChunker *chunker, const gchar *text);
gchar *llm_chunker_pop_clause (LlmChunker *chunker);
gchar *llm_chunker_pop_timed (LlmChunker *chunker);
gchar *llm_chunker_finish (LlmChunker *chunker);
gboolean llm_chunker_has_pending (LlmChunker *chunker);

G_END_DECLS

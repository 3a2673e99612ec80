/* Unit tests of the clause chunker and the conversation history.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <string.h>

#include "llmchunker.h"
#include "llmhistory.h"

/* Pushes @tokens one by one, collecting every clause cut on the way, then
 * the rest; returns the pieces joined with '|'. */
static gchar *
chunk_tokens (const gchar *const *tokens, guint min_chars)
{
  GString *out = g_string_new (NULL);
  LlmChunker c;
  gchar *piece;

  llm_chunker_init (&c, min_chars);
  for (; *tokens; tokens++) {
    llm_chunker_push (&c, *tokens);
    while ((piece = llm_chunker_pop_clause (&c))) {
      g_string_append_printf (out, "%s|", piece);
      g_free (piece);
    }
  }
  piece = llm_chunker_finish (&c);
  g_string_append (out, piece);
  g_free (piece);
  llm_chunker_clear (&c);
  return g_string_free (out, FALSE);
}

static gchar *
chunk_text (const gchar *text, guint min_chars)
{
  const gchar *tokens[] = { text, NULL };

  return chunk_tokens (tokens, min_chars);
}

/* Streamed tokens are cut at clause punctuation as soon as the cut is
 * certain: "!" at once, "," and "." once the next character shows. */
GST_START_TEST (test_clauses_streamed)
{
  static const gchar *tokens[] = { "It", " is", " sunny", " today", ",",
    " with", " a", " light", " breeze", ".", " Tomorrow", ",", " rain", " is",
    " expected", "!", " Take", " an", " umbrella", ".", NULL };
  gchar *got = chunk_tokens (tokens, 10);

  fail_unless_equals_string (got,
      "It is sunny today, |with a light breeze. |Tomorrow, |"
      "rain is expected!| Take an umbrella.");
  g_free (got);
}

GST_END_TEST;

/* Boundaries that would leave a piece under the minimum are skipped. */
GST_START_TEST (test_clauses_min_chars)
{
  gchar *got = chunk_text ("Yes. No. Maybe so, I think.", 10);

  fail_unless_equals_string (got, "Yes. No. Maybe so, |I think.");
  g_free (got);
  got = chunk_text ("Yes. No. Maybe so, I think.", 1);
  fail_unless_equals_string (got, "Yes. |No. |Maybe so, |I think.");
  g_free (got);
}

GST_END_TEST;

/* Decimals, thousands, times, initials and titles are not boundaries;
 * closing quotes stay with their sentence. */
GST_START_TEST (test_clauses_not_boundaries)
{
  gchar *got = chunk_text ("It costs 3.50 dollars, 1,000 in all at 10:30, "
                           "e.g. in Paris. Dr. Smith agrees. J. R. R. "
                           "Tolkien wrote it.",
      1);

  fail_unless_equals_string (got,
      "It costs 3.50 dollars, |1,000 in all at 10:30, |e.g. in Paris. |"
      "Dr. Smith agrees. |J. R. R. Tolkien wrote it.");
  g_free (got);
  got = chunk_text ("He said \"stop!\" and left. She said (\"fine.\") too.", 1);
  fail_unless_equals_string (
      got, "He said \"stop!\"| and left. |She said (\"fine.\") |too.");
  g_free (got);
}

GST_END_TEST;

/* Line breaks and CJK punctuation are boundaries. */
GST_START_TEST (test_clauses_lines_and_cjk)
{
  gchar *got = chunk_text ("Steps:\n1. Mix\n2. Bake", 5);

  fail_unless_equals_string (got, "Steps:\n|1. Mix\n|2. Bake");
  g_free (got);
  got = chunk_text ("你好。今天天气很好，我们去公园吧！", 1);
  fail_unless_equals_string (got, "你好。|今天天气很好，|我们去公园吧！|");
  g_free (got);
}

GST_END_TEST;

/* A timed cut ends at the last word boundary and never splits a word. */
GST_START_TEST (test_timed_cut)
{
  LlmChunker c;
  gchar *piece;

  llm_chunker_init (&c, 10);
  llm_chunker_push (&c, "Well I think th");
  fail_unless (llm_chunker_pop_clause (&c) == NULL);
  fail_unless (llm_chunker_has_pending (&c));
  piece = llm_chunker_pop_timed (&c);
  fail_unless_equals_string (piece, "Well I think ");
  g_free (piece);
  fail_unless (llm_chunker_pop_timed (&c) == NULL);
  llm_chunker_push (&c, "at");
  piece = llm_chunker_finish (&c);
  fail_unless_equals_string (piece, "that");
  g_free (piece);
  fail_if (llm_chunker_has_pending (&c));
  piece = llm_chunker_finish (&c);
  fail_unless_equals_string (piece, "");
  g_free (piece);
  llm_chunker_clear (&c);
}

GST_END_TEST;

/* A leading <think> block is never spoken, however it is split; text that
 * only looks like it at first is kept. */
GST_START_TEST (test_think_block)
{
  static const gchar *split[] = { "  \n<thi", "nk>Let me reason. The user",
    " wants 4.</th", "ink>\n\nThe answer", " is 4.", NULL };
  static const gchar *unterminated[] = { "<think>forever", NULL };
  static const gchar *lookalike[] = { "<",
    "3 is less than 4. <think> is "
    "fine here.",
    NULL };
  gchar *got = chunk_tokens (split, 1);

  fail_unless_equals_string (got, "The answer is 4.");
  g_free (got);
  got = chunk_tokens (unterminated, 1);
  fail_unless_equals_string (got, "");
  g_free (got);
  got = chunk_tokens (lookalike, 1);
  fail_unless_equals_string (got, "<3 is less than 4. |<think> is fine here.");
  g_free (got);
}

GST_END_TEST;

/* Pieces always add up to exactly the text, whatever the splits. */
GST_START_TEST (test_exact_partition)
{
  static const gchar text[] =
      "Sure! The capital of France is Paris, which is known for the "
      "Eiffel Tower... It has 2.1 million people; the metro area, about "
      "12 million.\nAnything else? Ask away: I'm here — always.";
  GRand *rand = g_rand_new_with_seed (42);
  guint round;

  for (round = 0; round < 200; round++) {
    GString *joined = g_string_new (NULL);
    LlmChunker c;
    gsize pos = 0, len = strlen (text);
    gchar *piece;

    llm_chunker_init (&c, g_rand_int_range (rand, 1, 30));
    while (pos < len) {
      gsize n = g_rand_int_range (rand, 1, 8);
      gchar *tok;
      /* Split on UTF-8 character boundaries, as JSON strings arrive. */
      while (pos + n < len && (text[pos + n] & 0xC0) == 0x80)
        n++;
      tok = g_strndup (text + pos, MIN (n, len - pos));
      llm_chunker_push (&c, tok);
      g_free (tok);
      pos += n;
      while ((piece = llm_chunker_pop_clause (&c))) {
        g_string_append (joined, piece);
        g_free (piece);
      }
      if (g_rand_int_range (rand, 0, 10) == 0 &&
          (piece = llm_chunker_pop_timed (&c))) {
        g_string_append (joined, piece);
        g_free (piece);
      }
    }
    piece = llm_chunker_finish (&c);
    g_string_append (joined, piece);
    g_free (piece);
    fail_unless_equals_string (joined->str, text);
    g_string_free (joined, TRUE);
    llm_chunker_clear (&c);
  }
  g_rand_free (rand);
}

GST_END_TEST;

/* Requests carry the system prompt, the kept exchanges (with what the
 * caller heard) and the new words; the cap keeps the most recent. */
GST_START_TEST (test_history_messages)
{
  LlmHistory h;
  LlmExchange *e;
  GArray *m;

  llm_history_init (&h);
  e = llm_history_add (&h, 0, NULL);
  g_string_append (e->agent, "Welcome!");
  e = llm_history_add (&h, 1, "one");
  g_string_append (e->agent, "Answer one. And more.");
  e = llm_history_add (&h, 2, "two");
  g_string_append (e->agent, "Answer two. Cut here.");
  llm_exchange_set_heard (e, "Answer two.", FALSE);

  m = llm_history_messages (&h, "Be brief.", "three");
  fail_unless_equals_int (m->len, 7);
  fail_unless_equals_string (
      g_array_index (m, LlmChatMessage, 0).role, "system");
  fail_unless_equals_string (
      g_array_index (m, LlmChatMessage, 1).content, "Welcome!");
  fail_unless_equals_string (
      g_array_index (m, LlmChatMessage, 5).content, "Answer two.");
  fail_unless_equals_string (g_array_index (m, LlmChatMessage, 6).role, "user");
  g_array_unref (m);

  llm_history_trim (&h, 1);
  m = llm_history_messages (&h, "", "three");
  fail_unless_equals_int (m->len, 3);
  fail_unless_equals_string (
      g_array_index (m, LlmChatMessage, 0).content, "two");
  g_array_unref (m);

  fail_unless (llm_history_find_turn (&h, 2) == e);
  llm_exchange_set_heard (e, NULL, TRUE);
  fail_unless_equals_string (llm_exchange_heard (e), "Answer two. Cut here.");
  llm_history_clear (&h);
}

GST_END_TEST;

/* An exchange whose answer the caller never heard is "unanswered". */
GST_START_TEST (test_history_unanswered)
{
  LlmHistory h;
  LlmExchange *e;

  llm_history_init (&h);
  e = llm_history_add (&h, 1, "what is");
  fail_unless (llm_exchange_unanswered (e));
  e->answered = TRUE;
  fail_if (llm_exchange_unanswered (e));
  llm_exchange_set_heard (e, "", FALSE);
  fail_unless (llm_exchange_unanswered (e));
  e = llm_history_add (&h, 1, NULL);
  fail_if (llm_exchange_unanswered (e));
  llm_history_drop_last (&h);
  /* An answer that went straight to a tool call, cut before any text: its
   * calls ran (or run), so it is kept, never merged into the next turn. */
  {
    static const gchar *ids[] = { "c1", NULL };
    LlmExchange *t = llm_history_add (&h, 2, "where is my order");
    llm_exchange_add_round (t, "", "[]", ids, 1);
    fail_if (llm_exchange_unanswered (t));
    llm_exchange_set_heard (t, "", FALSE);
    fail_if (llm_exchange_unanswered (t));
    llm_history_drop_last (&h);
  }
  fail_unless (llm_history_last (&h)->turn == 1);
  llm_history_clear (&h);
}

GST_END_TEST;

static Suite *
chunker_suite (void)
{
  Suite *s = suite_create ("llm-chunker");
  TCase *tc = tcase_create ("chunker");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_clauses_streamed);
  tcase_add_test (tc, test_clauses_min_chars);
  tcase_add_test (tc, test_clauses_not_boundaries);
  tcase_add_test (tc, test_clauses_lines_and_cjk);
  tcase_add_test (tc, test_timed_cut);
  tcase_add_test (tc, test_think_block);
  tcase_add_test (tc, test_exact_partition);
  tcase_add_test (tc, test_history_messages);
  tcase_add_test (tc, test_history_unanswered);
  return s;
}

GST_CHECK_MAIN (chunker);

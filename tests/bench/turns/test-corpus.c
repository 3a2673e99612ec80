/* voiceagent-turnbench: the corpus parser, the incomplete-phrase rule and
 * the recognizer script, without a server.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include "corpus.h"

static void
test_incomplete (void)
{
  const gchar *incomplete[] = { "I would like to book a", "transfer it to",
    "I tried but", "My name is um", "The order number is",
    "My phone number is 5 5 5", "I was born in nineteen", "spelled K",
    "The code is A B", "and the," };
  const gchar *complete[] = { "I need to change my address.", "I got the email",
    "Thanks for that", "Do you have any tables?", "Thank you,",
    "It arrived yesterday", "" };

  for (guint i = 0; i < G_N_ELEMENTS (incomplete); i++)
    g_assert_true (tb_phrase_incomplete (incomplete[i]));
  for (guint i = 0; i < G_N_ELEMENTS (complete); i++)
    g_assert_false (tb_phrase_incomplete (complete[i]));
}

/* The smoke corpus: every kind of line, a pause of the exact length, word
 * times in order, the script in corpus order. */
static void
test_smoke_corpus (void)
{
  g_autofree gchar *path = g_build_filename (g_getenv ("VOICEAGENT_SOURCE_DIR"),
      "tests", "bench", "turns", "smoke.txt", NULL);
  g_autoptr (GError) error = NULL;
  TbCorpus *c = tb_corpus_load (path, &error);
  const TbItem *it;
  const TbPause *p;
  g_autofree gchar *script = NULL;
  g_auto (GStrv) lines = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (c->turns, ==, 3);
  g_assert_cmpuint (c->items->len, ==, 6);
  it = c->items->pdata[0];
  g_assert_cmpuint (it->pauses->len, ==, 1);
  p = &g_array_index (it->pauses, TbPause, 0);
  g_assert_cmpuint (p->ms, ==, 600);
  g_assert_true (p->incomplete);
  g_assert_cmpstr (p->before, ==, "I would like to book a");
  g_assert_cmpuint (it->words->len, ==, 9);
  for (guint i = 1; i < it->words->len; i++)
    g_assert_cmpuint (g_array_index (it->words, TbWord, i - 1).end_ms, <=,
        g_array_index (it->words, TbWord, i).start_ms);
  /* "table" starts after the pause */
  g_assert_cmpuint (
      g_array_index (it->words, TbWord, 6).start_ms, >=, p->start_ms + p->ms);
  g_assert_cmpint (((TbItem *)c->items->pdata[3])->kind, ==, TB_NOISE);
  g_assert_cmpuint (((TbItem *)c->items->pdata[3])->duration_ms, ==, 200);

  script = tb_corpus_stt_script (c, 80);
  lines = g_strsplit (script, "\n", -1);
  g_assert_cmpstr (lines[1], ==, "@lag 80");
  g_assert_true (g_str_has_prefix (lines[2], "@turn "));
  g_assert_nonnull (strstr (lines[3], ":hours?"));
  g_assert_true (g_str_has_prefix (lines[4], "@backchannel "));
  g_assert_cmpstr (lines[5], ==, "@noise 0.200");
  g_assert_true (g_str_has_prefix (lines[6], "@interrupt "));
  tb_corpus_free (c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/turnbench/incomplete", test_incomplete);
  g_test_add_func ("/turnbench/smoke-corpus", test_smoke_corpus);
  return g_test_run ();
}

/* voiceagent-turnbench: the turn-taking corpus, parsed and rendered.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   # comment
 *   turn TEXT [<pause MS> TEXT]...   one caller turn; <pause MS> is silence inside it
 *   backchannel TEXT                 said while the agent is talking: must not stop it
 *   noise MS                         a noise burst while the agent talks: must not stop it
 *   interrupt TEXT                   said while the agent is talking: must stop it
 *
 * Speech is rendered with libespeak-ng (its word events give each word's
 * place), noise with sox (pink noise). Times are milliseconds from the
 * item's first audible sample.
 */
#pragma once

#include "lg-audio.h"

G_BEGIN_DECLS

typedef enum {
  TB_TURN,
  TB_BACKCHANNEL,
  TB_NOISE,
  TB_INTERRUPT,
} TbKind;

typedef struct
{
  guint start_ms, end_ms;
  gchar *text; /* as written, punctuation included */
} TbWord;

typedef struct
{
  guint start_ms; /* the speech before it ended here */
  guint ms; /* silence */
  gboolean incomplete; /* after an incomplete phrase */
  gchar *before; /* the text before it, from the turn's start */
} TbPause;

typedef struct
{
  TbKind kind;
  guint line;
  gchar *text; /* the corpus line after its keyword */
  LgClip *clip; /* its first audible sample at clip->speech_start_ms */
  GArray *words; /* (element-type TbWord) */
  GArray *pauses; /* (element-type TbPause) */
  guint duration_ms; /* first audible sample to the last */
} TbItem;

typedef struct
{
  GPtrArray *items; /* (element-type TbItem) in corpus order */
  guint turns;
} TbCorpus;

const gchar *tb_kind_name (TbKind kind);

/* Reads and renders @path; NULL with @error set on a bad line or when a
 * renderer fails. */
TbCorpus *tb_corpus_load (const gchar *path, GError **error);
void tb_corpus_free (TbCorpus *corpus);

/* TRUE when a caller who stops after @text has not finished the phrase:
 * its last word is an article, preposition, conjunction, filler,
 * determiner, auxiliary, subject pronoun, a number (digits or a number
 * word) or a single spelled letter, and no '.', '?' or '!' ends it. */
gboolean tb_phrase_incomplete (const gchar *text);

/* The emulator's scripted recognizer's script (stt.h, timed entries): the
 * items in the order the caller says them. */
gchar *tb_corpus_stt_script (const TbCorpus *corpus, guint lag_ms);

G_END_DECLS

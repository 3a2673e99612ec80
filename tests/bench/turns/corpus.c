/* voiceagent-turnbench: the turn-taking corpus, parsed and rendered.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * espeak-ng runs synchronously on the calling thread (it is not
 * re-entrant): the corpus is rendered once, before any call starts.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <espeak-ng/speak_lib.h>
#include "corpus.h"

/* 5 ms windows louder than -40 dBFS are speech: espeak-ng's silence is
 * digital, its speech far above this. */
#define LOUD_RMS 0.01
#define SPEECH_RATE_WPM 150 /* as tests/loadgen renders (espeak-ng -s 150) */
#define NOISE_VOLUME "0.3" /* pink noise about as loud as the speech */

/* Last words after which a phrase is not finished. Lower case. */
/* Last words after which a phrase is not finished. Lower case. Words that
 * often end a finished phrase as well ("thanks for that", "thank you",
 * "I'll take it", "it's over", "that's all I need") are left out. */
static const gchar *const incomplete_words[] = {
  /* articles and determiners */
  "a", "an", "the", "my", "your", "our", "their", "his", "its", "some", "every",
  "each",
  /* prepositions */
  "to", "for", "of", "in", "on", "at", "with", "from", "by", "about", "into",
  "onto", "under", "between", "during", "without", "until", "than", "via",
  "per",
  /* conjunctions */
  "and", "but", "or", "so", "because", "if", "when", "while", "although",
  "though", "unless", "whether", "where", "which", "who", "nor",
  /* fillers */
  "um", "uh", "er", "erm", "hmm", "like",
  /* auxiliaries and copulas: the predicate is still to come */
  "is", "are", "was", "were", "be", "am", "will", "would", "can", "could",
  "should",
  /* subject pronouns */
  "i", "we", "he", "she", "they",
  /* number words: a number may go on */
  "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight",
  "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
  "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty",
  "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand",
  "million", "point", "dot", "dash", NULL
};

const gchar *
tb_kind_name (TbKind kind)
{
  static const gchar *const names[] = { "turn", "backchannel", "noise",
    "interrupt" };
  return names[kind];
}

gboolean
tb_phrase_incomplete (const gchar *text)
{
  g_autofree gchar *t = g_strstrip (g_ascii_strdown (text, -1));
  gchar *last = strrchr (t, ' ');
  gsize n;

  last = last ? last + 1 : t;
  n = strlen (last);
  if (n == 0 || strchr (".?!", last[n - 1]))
    return FALSE;
  while (n > 0 && strchr (",;:-", last[n - 1]))
    last[--n] = '\0';
  if (n == 0)
    return FALSE;
  /* a digit, or a single spelled letter */
  if (g_ascii_isdigit (last[0]) || (n == 1 && g_ascii_isalpha (last[0])))
    return TRUE;
  return g_strv_contains (incomplete_words, last);
}

/* ---------- rendering ---------- */

typedef struct
{
  GArray *pcm; /* gint16 at the espeak rate */
  GArray *word_pos; /* guint: character offset (0-based) */
  GArray *word_sample; /* guint: first sample */
  gint text_chars;
} Synth;

static gint espeak_rate;
/* What the running espeak_Synth() collects into (it calls back from inside,
 * on this thread). */
static Synth *synth_current;

static int
synth_cb (short *wav, int n, espeak_EVENT *events)
{
  Synth *s = synth_current;

  if (!s)
    return 0;
  for (espeak_EVENT *e = events; e->type != espeakEVENT_LIST_TERMINATED; e++) {
    /* a word event may point nowhere (text_position 0): skip it */
    if (e->type == espeakEVENT_WORD && e->text_position > 0 &&
        e->text_position <= s->text_chars) {
      guint pos = e->text_position - 1;
      guint sample = (guint)((gint64)e->audio_position * espeak_rate / 1000);
      g_array_append_val (s->word_pos, pos);
      g_array_append_val (s->word_sample, sample);
    }
  }
  if (wav && n > 0)
    g_array_append_vals (s->pcm, wav, n);
  return 0;
}

static gboolean
espeak_ready (GError **error)
{
  if (espeak_rate > 0)
    return TRUE;
  espeak_rate = espeak_Initialize (AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, 0);
  if (espeak_rate <= 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "espeak-ng did not start; is espeak-ng-data installed?");
    return FALSE;
  }
  espeak_SetSynthCallback (synth_cb);
  espeak_SetVoiceByName ("en-us");
  espeak_SetParameter (espeakRATE, SPEECH_RATE_WPM, 0);
  return TRUE;
}

static gboolean
window_loud (const gint16 *x, gsize n)
{
  gdouble acc = 0;

  for (gsize i = 0; i < n; i++)
    acc += (gdouble)x[i] * x[i];
  return n && sqrt (acc / n) / 32768.0 > LOUD_RMS;
}

/* The first and last loud sample of @pcm in [from, to); FALSE if none. */
static gboolean
loud_span (GArray *pcm, guint from, guint to, guint *first, guint *last)
{
  const guint w = espeak_rate / 200;
  const gint16 *x = (const gint16 *)pcm->data;
  gboolean found = FALSE;

  to = MIN (to, pcm->len);
  for (guint i = from; i + w <= to; i += w) {
    if (!window_loud (x + i, w))
      continue;
    if (!found)
      *first = i;
    found = TRUE;
    *last = i + w;
  }
  return found;
}

/* Linear interpolation to LG_RATE: the audio only has to sound like speech
 * to an energy detector and a VAD. */
static void
append_resampled (GArray *out, const gint16 *in, gsize n)
{
  gsize m = (gsize)((guint64)n * LG_RATE / espeak_rate);

  for (gsize j = 0; j < m; j++) {
    gdouble t = (gdouble)j * espeak_rate / LG_RATE;
    gsize i = (gsize)t;
    gdouble f = t - i;
    gint16 a = in[MIN (i, n - 1)], b = in[MIN (i + 1, n - 1)];
    gint16 v = (gint16)lrint (a + f * (b - a));
    g_array_append_val (out, v);
  }
}

static guint
samples_ms (guint samples, guint rate)
{
  return (guint)((guint64)samples * 1000 / rate);
}

/* The words in [p, q), said from @start_ms to @end_ms: espeak-ng gives
 * unstressed words ("I am", "for an") no event of their own, so the
 * words of one event share its time by their length. */
static void
add_words (
    GArray *words, const gchar *p, const gchar *q, guint start_ms, guint end_ms)
{
  g_autofree gchar *span = g_strndup (p, q - p);
  g_auto (GStrv) toks = g_strsplit_set (g_strstrip (span), " \t", -1);
  guint total = 0, done = 0;

  for (guint i = 0; toks[i]; i++)
    total += strlen (toks[i]);
  for (guint i = 0; toks[i]; i++) {
    TbWord w = { 0 };
    if (!toks[i][0])
      continue;
    w.start_ms = start_ms + (end_ms - start_ms) * done / MAX (total, 1);
    done += strlen (toks[i]);
    w.end_ms = start_ms + (end_ms - start_ms) * done / MAX (total, 1);
    w.text = g_strdup (toks[i]);
    g_array_append_val (words, w);
  }
}

/* Renders @text, trimmed to its audible part, onto @out (LG_RATE) and its
 * words onto @words, their times offset by @at_ms. */
static gboolean
render_segment (
    const gchar *text, guint at_ms, GArray *out, GArray *words, GError **error)
{
  Synth s = { g_array_new (FALSE, FALSE, sizeof (gint16)),
    g_array_new (FALSE, FALSE, sizeof (guint)),
    g_array_new (FALSE, FALSE, sizeof (guint)) };
  guint first = 0, last = 0;
  gboolean ok;

  s.text_chars = (gint)g_utf8_strlen (text, -1);
  synth_current = &s;
  ok = espeak_Synth (text, strlen (text) + 1, 0, POS_CHARACTER, 0,
           espeakCHARS_UTF8, NULL, NULL) == EE_OK;
  synth_current = NULL;
  ok = ok && loud_span (s.pcm, 0, G_MAXUINT, &first, &last);

  if (!ok)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "espeak-ng rendered no audible speech for \"%s\"", text);
  for (guint i = 0; ok && i < s.word_pos->len; i++) {
    guint from = g_array_index (s.word_sample, guint, i);
    guint to = i + 1 < s.word_pos->len
        ? g_array_index (s.word_sample, guint, i + 1)
        : last;
    guint w0 = from, w1 = to;
    const gchar *p =
        g_utf8_offset_to_pointer (text, g_array_index (s.word_pos, guint, i));
    const gchar *q = i + 1 < s.word_pos->len
        ? g_utf8_offset_to_pointer (
              text, g_array_index (s.word_pos, guint, i + 1))
        : text + strlen (text);
    if (!loud_span (s.pcm, from, to, &w0, &w1))
      w1 = MAX (from, first);
    w0 = CLAMP (w0, first, last);
    w1 = CLAMP (w1, w0, last);
    add_words (words, p, q, at_ms + samples_ms (w0 - first, espeak_rate),
        at_ms + samples_ms (w1 - first, espeak_rate));
  }
  if (ok)
    append_resampled (out, (gint16 *)s.pcm->data + first, last - first);
  g_array_unref (s.pcm);
  g_array_unref (s.word_pos);
  g_array_unref (s.word_sample);
  return ok;
}

static void
append_silence (GArray *out, guint ms)
{
  guint n = (guint)((guint64)ms * LG_RATE / 1000);
  gsize at = out->len;

  g_array_set_size (out, at + n);
  memset ((gint16 *)out->data + at, 0, n * sizeof (gint16));
}

/* sox writes @ms of pink noise as raw samples (through a file: the
 * samples hold zero bytes). */
static gboolean
render_noise (guint ms, GArray *out, GError **error)
{
  g_autofree gchar *secs = g_strdup_printf ("%.3f", ms / 1000.0);
  g_autofree gchar *rate = g_strdup_printf ("%d", LG_RATE);
  g_autofree gchar *path = NULL, *data = NULL;
  const gchar *argv[] = { "sox", "-n", "-r", rate, "-c", "1", "-b", "16", "-e",
    "signed-integer", "-t", "raw", NULL, "synth", secs, "pinknoise", "vol",
    NOISE_VOLUME, NULL };
  gsize size = 0;
  gint status = 0, fd = g_file_open_tmp ("turnbench-XXXXXX.raw", &path, error);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  close (fd);
  argv[12] = path;
  ok = g_spawn_sync (NULL, (gchar **)argv, NULL,
           G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
           NULL, &status, error) &&
      g_spawn_check_wait_status (status, error) &&
      g_file_get_contents (path, &data, &size, error);
  g_unlink (path);
  if (ok)
    g_array_append_vals (out, data, size / sizeof (gint16));
  return ok;
}

/* ---------- parsing ---------- */

static void
item_free (TbItem *it)
{
  for (guint i = 0; it->words && i < it->words->len; i++)
    g_free (g_array_index (it->words, TbWord, i).text);
  for (guint i = 0; it->pauses && i < it->pauses->len; i++)
    g_free (g_array_index (it->pauses, TbPause, i).before);
  g_clear_pointer (&it->words, g_array_unref);
  g_clear_pointer (&it->pauses, g_array_unref);
  lg_clip_free (it->clip);
  g_free (it->text);
  g_free (it);
}

/* Splits "TEXT <pause MS> TEXT ..." into segments and pause lengths. */
static gboolean
split_pauses (const gchar *text, GPtrArray *segs, GArray *ms, GError **error)
{
  const gchar *p = text;

  for (;;) {
    const gchar *open = strstr (p, "<pause ");
    const gchar *close;
    gchar *end = NULL;
    guint v;
    gsize len = open ? (gsize)(open - p) : strlen (p);
    g_ptr_array_add (segs, g_strstrip (g_strndup (p, len)));
    if (!open)
      break;
    v = (guint)g_ascii_strtoull (open + 7, &end, 10);
    close = strchr (open, '>');
    if (!close || end == open + 7 || end != close || v == 0 || v > 10000) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "expected <pause MS> with 1 to 10000 ms");
      return FALSE;
    }
    g_array_append_val (ms, v);
    p = close + 1;
  }
  for (guint i = 0; i < segs->len; i++)
    if (!*(gchar *)segs->pdata[i]) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "a pause needs text on both sides");
      return FALSE;
    }
  return TRUE;
}

/* Renders the segments of a speech item, @ms of silence between them. */
static gboolean
render_speech (TbItem *it, GArray *pcm, GError **error)
{
  g_autoptr (GPtrArray) segs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) ms = g_array_new (FALSE, FALSE, sizeof (guint));
  GString *before = g_string_new (NULL);
  guint at = 0;
  gboolean ok = split_pauses (it->text, segs, ms, error);

  for (guint i = 0; ok && i < segs->len; i++) {
    guint len0 = pcm->len;
    ok = render_segment (segs->pdata[i], at, pcm, it->words, error);
    at += samples_ms (pcm->len - len0, LG_RATE);
    if (before->len)
      g_string_append_c (before, ' ');
    g_string_append (before, segs->pdata[i]);
    if (ok && i < ms->len) {
      TbPause p = { at, g_array_index (ms, guint, i), FALSE,
        g_strdup (before->str) };
      p.incomplete = tb_phrase_incomplete (segs->pdata[i]);
      g_array_append_val (it->pauses, p);
      append_silence (pcm, p.ms);
      at += p.ms;
    }
  }
  it->duration_ms = at;
  g_string_free (before, TRUE);
  return ok;
}

static TbItem *
parse_line (const gchar *line, guint lineno, GError **error)
{
  static const gchar *const kinds[] = { "turn ", "backchannel ", "noise ",
    "interrupt " };
  TbItem *it = g_new0 (TbItem, 1);
  g_autoptr (GArray) pcm = g_array_new (FALSE, FALSE, sizeof (gint16));
  gboolean ok = FALSE, known = FALSE;

  it->line = lineno;
  it->words = g_array_new (FALSE, TRUE, sizeof (TbWord));
  it->pauses = g_array_new (FALSE, TRUE, sizeof (TbPause));
  for (guint k = 0; k < G_N_ELEMENTS (kinds) && !known; k++) {
    if (!g_str_has_prefix (line, kinds[k]))
      continue;
    known = TRUE;
    it->kind = (TbKind)k;
    it->text = g_strstrip (g_strdup (line + strlen (kinds[k])));
  }
  if (!known) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "expected turn, backchannel, noise or interrupt");
  } else if (it->kind == TB_NOISE) {
    gchar *end = NULL;
    guint ms = (guint)g_ascii_strtoull (it->text, &end, 10);
    if (ms == 0 || ms > 10000 || *end)
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "expected noise MS (1 to 10000)");
    else
      ok = render_noise (ms, pcm, error);
    it->duration_ms = ms;
  } else if (it->kind != TB_TURN && strstr (it->text, "<pause")) {
    g_set_error (
        error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "only a turn has pauses");
  } else {
    ok = render_speech (it, pcm, error);
  }
  if (ok)
    it->clip =
        lg_clip_new_from_pcm (it->text, (gint16 *)pcm->data, pcm->len, error);
  if (!it->clip) {
    g_prefix_error (error, "line %u: ", lineno);
    item_free (it);
    return NULL;
  }
  return it;
}

TbCorpus *
tb_corpus_load (const gchar *path, GError **error)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  TbCorpus *c;

  if (!espeak_ready (error) || !g_file_get_contents (path, &text, NULL, error))
    return NULL;
  c = g_new0 (TbCorpus, 1);
  c->items = g_ptr_array_new_with_free_func ((GDestroyNotify)item_free);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    gchar *line = g_strstrip (lines[i]);
    TbItem *it;
    if (!line[0] || line[0] == '#')
      continue;
    it = parse_line (line, i + 1, error);
    if (!it) {
      g_prefix_error (error, "%s:", path);
      tb_corpus_free (c);
      return NULL;
    }
    if (it->kind != TB_TURN && c->turns == 0) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
          "%s:%u: %s before any turn", path, i + 1, tb_kind_name (it->kind));
      item_free (it);
      tb_corpus_free (c);
      return NULL;
    }
    c->turns += it->kind == TB_TURN;
    g_ptr_array_add (c->items, it);
  }
  if (c->turns == 0) {
    g_set_error (
        error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: no turn", path);
    tb_corpus_free (c);
    return NULL;
  }
  return c;
}

void
tb_corpus_free (TbCorpus *c)
{
  if (!c)
    return;
  g_ptr_array_unref (c->items);
  g_free (c);
}

gchar *
tb_corpus_stt_script (const TbCorpus *c, guint lag_ms)
{
  GString *s = g_string_new (NULL);

  g_string_append_printf (
      s, "# written by voiceagent-turnbench\n@lag %u\n", lag_ms);
  for (guint i = 0; i < c->items->len; i++) {
    const TbItem *it = c->items->pdata[i];
    g_string_append_printf (
        s, "@%s %.3f", tb_kind_name (it->kind), it->duration_ms / 1000.0);
    for (guint j = 0; j < it->words->len; j++) {
      const TbWord *w = &g_array_index (it->words, TbWord, j);
      g_string_append_printf (s, " %.3f-%.3f:%s", w->start_ms / 1000.0,
          w->end_ms / 1000.0, w->text);
    }
    g_string_append_c (s, '\n');
  }
  return g_string_free (s, FALSE);
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Where to cut a streamed reply so speech can start on the first clause.
 *
 * A cut goes right after a boundary:
 * - `!`, `?`, `;` (and the CJK full stops and commas): certain as soon as
 *   they arrive, so they cut at once, even at the end of what has arrived;
 * - `.`, `,`, `:`, `…`, `—`: only when followed by whitespace, because
 *   "3.5", "1,000", "10:30" and "e.g." are not boundaries; they wait for the
 *   next character. A `.` after a single letter (initials, "e.g.") or a
 *   title ("Dr.") does not cut;
 * - a line break.
 * Closing quotes and brackets right after the punctuation stay with it.
 * A cut that would leave a piece shorter than min_chars characters (or only
 * whitespace) is skipped: tiny pieces make choppy speech. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "llmchunker.h"

typedef enum {
  THINK_UNDECIDED, /* reply start: may still open with <think> */
  THINK_INSIDE, /* dropping a think block */
  THINK_NONE, /* plain text from here on */
} ThinkState;

#define THINK_OPEN "<think>"
#define THINK_CLOSE "</think>"

void
llm_chunker_init (LlmChunker *chunker, guint min_chars)
{
  memset (chunker, 0, sizeof (*chunker));
  chunker->pending = g_string_new (NULL);
  chunker->held = g_string_new (NULL);
  chunker->min_chars = min_chars;
  chunker->think = THINK_UNDECIDED;
}

void
llm_chunker_clear (LlmChunker *chunker)
{
  if (chunker->pending)
    g_string_free (chunker->pending, TRUE);
  if (chunker->held)
    g_string_free (chunker->held, TRUE);
  memset (chunker, 0, sizeof (*chunker));
}

/* Appends speakable text, dropping leading whitespace after a think
 * block. */
static void
append_pending (LlmChunker *chunker, const gchar *text, gsize len)
{
  if (chunker->strip_leading) {
    while (len > 0 && g_ascii_isspace (*text)) {
      text++;
      len--;
    }
    if (len == 0)
      return;
    chunker->strip_leading = FALSE;
  }
  g_string_append_len (chunker->pending, text, len);
}

/* Drops held text up to the end of a think block, if it is there. */
static void
scan_think_close (LlmChunker *chunker)
{
  const gchar *close = strstr (chunker->held->str, THINK_CLOSE);
  gsize keep;

  if (close) {
    const gchar *rest = close + strlen (THINK_CLOSE);
    chunker->think = THINK_NONE;
    chunker->strip_leading = TRUE;
    append_pending (chunker, rest, strlen (rest));
    g_string_truncate (chunker->held, 0);
    return;
  }
  /* Keep only what could be the start of a split "</think>". */
  keep = strlen (THINK_CLOSE) - 1;
  if (chunker->held->len > keep)
    g_string_erase (chunker->held, 0, chunker->held->len - keep);
}

/* Decides, from the start of the reply, whether it opens a think block. */
static void
decide_think (LlmChunker *chunker)
{
  const gchar *s = chunker->held->str;
  gsize n, open_len = strlen (THINK_OPEN);

  while (g_ascii_isspace (*s))
    s++;
  n = strlen (s);
  if (n < open_len && strncmp (s, THINK_OPEN, n) == 0)
    return; /* still could be "<think>": wait */
  if (strncmp (s, THINK_OPEN, open_len) == 0) {
    chunker->think = THINK_INSIDE;
    g_string_erase (chunker->held, 0, (s + open_len) - chunker->held->str);
    scan_think_close (chunker);
    return;
  }
  chunker->think = THINK_NONE;
  append_pending (chunker, chunker->held->str, chunker->held->len);
  g_string_truncate (chunker->held, 0);
}

/**
 * llm_chunker_push:
 * @text: the next piece of the model's content, valid UTF-8
 */
void
llm_chunker_push (LlmChunker *chunker, const gchar *text)
{
  switch (chunker->think) {
    case THINK_NONE:
      append_pending (chunker, text, strlen (text));
      break;
    case THINK_UNDECIDED:
      g_string_append (chunker->held, text);
      decide_think (chunker);
      break;
    case THINK_INSIDE:
      g_string_append (chunker->held, text);
      scan_think_close (chunker);
      break;
  }
}

static gboolean
is_closer (gunichar c)
{
  return c == '"' || c == '\'' || c == ')' || c == ']' || c == 0x201D ||
      c == 0x2019 || c == 0x00BB || c == 0x300D || c == 0xFF09;
}

/* Punctuation that is a boundary without any lookahead. */
static gboolean
is_certain_boundary (gunichar c)
{
  switch (c) {
    case '!':
    case '?':
    case ';':
    case 0x3002: /* 。 */
    case 0xFF01: /* ！ */
    case 0xFF1F: /* ？ */
    case 0xFF1B: /* ； */
    case 0xFF0C: /* ， */
    case 0x3001: /* 、 */
    case 0xFF1A: /* ： */
      return TRUE;
    default:
      return FALSE;
  }
}

/* Punctuation that is a boundary only when whitespace follows. */
static gboolean
is_spaced_boundary (gunichar c)
{
  return c == '.' || c == ',' || c == ':' || c == 0x2026 || c == 0x2014;
}

/* TRUE if the '.' at @dot ends an abbreviation or an initial rather than a
 * sentence. */
static gboolean
is_abbreviation (const gchar *start, const gchar *dot)
{
  static const gchar *const titles[] = { "mr", "mrs", "ms", "dr", "prof", "sr",
    "jr", "st", "vs", "mt", "approx", NULL };
  const gchar *w = dot;
  gsize n;
  guint i;

  while (w > start && g_ascii_isalpha (w[-1]))
    w--;
  n = dot - w;
  if (n == 1)
    return TRUE;
  for (i = 0; titles[i]; i++) {
    if (n == strlen (titles[i]) && g_ascii_strncasecmp (w, titles[i], n) == 0)
      return TRUE;
  }
  return FALSE;
}

/* Skips closing quotes and brackets at @p. */
static const gchar *
skip_closers (const gchar *p, const gchar *end)
{
  while (p < end && is_closer (g_utf8_get_char (p)))
    p = g_utf8_next_char (p);
  return p;
}

/* Returns where a cut after the boundary at @p goes, @p itself if @p is no
 * boundary, or NULL if the text after @p must arrive first. */
static const gchar *
boundary_end (const gchar *start, const gchar *p, const gchar *end)
{
  gunichar c = g_utf8_get_char (p);
  const gchar *next = g_utf8_next_char (p);

  if (c == '\n')
    return next;
  if (is_certain_boundary (c))
    return skip_closers (next, end);
  if (!is_spaced_boundary (c))
    return p;
  if (c == '.' && is_abbreviation (start, p))
    return p;
  next = skip_closers (next, end);
  if (next >= end)
    return NULL;
  if (*next == ' ' || *next == '\t' || *next == '\n' || *next == '\r')
    return next + 1;
  return p;
}

static gboolean
has_non_space (const gchar *s, gsize len)
{
  gsize i;

  for (i = 0; i < len; i++) {
    if (!g_ascii_isspace (s[i]))
      return TRUE;
  }
  return FALSE;
}

/* Takes the first @len bytes of pending text out as a new string. */
static gchar *
take (LlmChunker *chunker, gsize len)
{
  gchar *piece = g_strndup (chunker->pending->str, len);

  g_string_erase (chunker->pending, 0, len);
  chunker->scanned = 0;
  return piece;
}

/**
 * llm_chunker_pop_clause:
 *
 * Returns: (transfer full) (nullable): the next piece that ends at a
 * boundary and is long enough, or NULL until more text arrives.
 */
gchar *
llm_chunker_pop_clause (LlmChunker *chunker)
{
  const gchar *start = chunker->pending->str;
  const gchar *end = start + chunker->pending->len;
  const gchar *p = start + chunker->scanned;

  while (p < end) {
    const gchar *cut = boundary_end (start, p, end);

    if (cut == NULL)
      break; /* look at this character again when more text is in */
    if (cut != p) {
      gsize len = cut - start;
      if (has_non_space (start, len) &&
          (guint)g_utf8_strlen (start, len) >= chunker->min_chars)
        return take (chunker, len);
      p = cut;
      continue;
    }
    p = g_utf8_next_char (p);
  }
  chunker->scanned = p - start;
  return NULL;
}

/**
 * llm_chunker_pop_timed:
 *
 * The text waited long enough: cut at the last word boundary, so no word
 * is split.
 *
 * Returns: (transfer full) (nullable): the piece, or NULL if the pending
 * text is one unfinished word (or only whitespace).
 */
gchar *
llm_chunker_pop_timed (LlmChunker *chunker)
{
  const gchar *s = chunker->pending->str;
  gsize i = chunker->pending->len;

  while (i > 0 && !g_ascii_isspace (s[i - 1]))
    i--;
  if (i == 0 || !has_non_space (s, i))
    return NULL;
  return take (chunker, i);
}

/**
 * llm_chunker_finish:
 *
 * The reply is complete. An unterminated think block is dropped; text held
 * while deciding whether one starts is spoken.
 *
 * Returns: (transfer full): everything pending, possibly "".
 */
gchar *
llm_chunker_finish (LlmChunker *chunker)
{
  if (chunker->think == THINK_UNDECIDED)
    append_pending (chunker, chunker->held->str, chunker->held->len);
  g_string_truncate (chunker->held, 0);
  chunker->think = THINK_NONE;
  return take (chunker, chunker->pending->len);
}

/**
 * llm_chunker_has_pending:
 *
 * Returns: TRUE if speakable text waits for a cut.
 */
gboolean
llm_chunker_has_pending (LlmChunker *chunker)
{
  return has_non_space (chunker->pending->str, chunker->pending->len);
}

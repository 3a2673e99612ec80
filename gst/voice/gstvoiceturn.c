/* gst-voiceagent: the end-of-turn decision and backchannel detection.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * No GStreamer here (gstvoiceturn.h says why): transcripts, VAD decisions
 * and times in, actions out.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "gstvoiceturn.h"

/* ---------- word lists ---------- */

struct _GstVoiceTurnWords
{
  gint ref; /* atomic */
  GHashTable *open; /* normalized words: the phrase is not finished */
  GHashTable *open_soft; /* ... unless terminal punctuation follows */
  GHashTable *number; /* normalized words that count as numbers */
  GHashTable *backchannel; /* normalized phrases of up to MAX_PHRASE words */
};

/* Backchannel phrases are matched word by word up to this length. */
#define MAX_PHRASE 3
/* A longer utterance is never a backchannel, whatever its words: "yeah
 * okay right sure yeah" is someone taking the floor. */
#define MAX_BACKCHANNEL_WORDS 4

/* English. Open: what a speaker says before the rest of a phrase (Vapi's
 * and Pipecat's rule sets end the same way), even with a full stop after
 * it: a speech service ends every segment with one ("My name is um."). */
static const gchar *const en_open[] = { "a", "an", "the", "of", "to", "into",
  "onto", "between", "during", "under", "than", "per", "via", "and", "or",
  "but", "because", "if", "although", "though", "unless", "whether", "while",
  "nor", "plus", "um", "uh", "er", "erm", "umm", "uhh", "my", "your", "its",
  "our", "their", "every", "each", "i", "we", "they", "he", "she", "i'm",
  "it's", "there's", "that's", "what's", "let's", "i'd", "i'll", "we're",
  "you're", "very", "whose", NULL };
/* Open only without terminal punctuation: words that also end a sentence
 * ("I can't log in.", "Yes it is.", "I think so.", "See you then."). */
static const gchar *const en_open_soft[] = { "in", "on", "at", "for", "with",
  "from", "by", "about", "over", "through", "up", "out", "off", "down", "back",
  "around", "after", "before", "without", "within", "until", "as", "like", "so",
  "that", "then", "when", "where", "which", "who", "what", "how", "her", "his",
  "this", "these", "those", "some", "any", "is", "are", "was", "were", "am",
  "be", "been", "being", "have", "has", "had", "do", "does", "did", "will",
  "would", "can", "could", "should", "may", "might", "must", "shall", "just",
  "also", "maybe", "actually", "basically", "really", "mean", NULL };
static const gchar *const en_number[] = { "zero", "oh", "one", "two", "three",
  "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
  "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
  "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
  "eighty", "ninety", "hundred", "thousand", "million", "double", "triple",
  "dash", "hyphen", "point", "dot", NULL };
static const gchar *const en_backchannel[] = { "mhm", "mm", "mmm", "hmm",
  "mm-hmm", "mm hmm", "mmhmm", "uh-huh", "uh huh", "uhhuh", "yeah", "yep",
  "yup", "yes", "ok", "okay", "right", "sure", "alright", "all right", "got it",
  "i see", "oh", "ah", "aha", "cool", "great", "nice", "wow", "exactly", "true",
  "indeed", "uh", "um", NULL };

static GHashTable *
set_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static void
set_add_all (GHashTable *set, const gchar *const *items)
{
  for (guint i = 0; items && items[i]; i++) {
    gchar *n = gst_voice_turn_normalize (items[i]);
    if (*n)
      g_hash_table_add (set, n);
    else
      g_free (n);
  }
}

static GstVoiceTurnWords *
words_new (void)
{
  GstVoiceTurnWords *w = g_new0 (GstVoiceTurnWords, 1);

  w->ref = 1;
  w->open = set_new ();
  w->open_soft = set_new ();
  w->number = set_new ();
  w->backchannel = set_new ();
  return w;
}

/**
 * gst_voice_turn_words_get_default:
 * @language: (nullable): a BCP-47 tag; only its primary subtag is read
 *
 * Returns: (transfer full): the built-in lists. English is the only
 * built-in language; any other gets the English lists (numbers and
 * punctuation still count), so load a file for it
 * (gst_voice_turn_words_new_from_file()).
 */
GstVoiceTurnWords *
gst_voice_turn_words_get_default (const gchar *language)
{
  static GstVoiceTurnWords *en;

  (void)language;
  if (g_once_init_enter (&en)) {
    GstVoiceTurnWords *w = words_new ();
    set_add_all (w->open, en_open);
    set_add_all (w->open_soft, en_open_soft);
    set_add_all (w->number, en_number);
    set_add_all (w->backchannel, en_backchannel);
    g_once_init_leave (&en, w);
  }
  return gst_voice_turn_words_ref (en);
}

/* Size limits of a word file: it is configuration, but read from disk. */
#define MAX_FILE_BYTES (256 * 1024)

/**
 * gst_voice_turn_words_new_from_file:
 * @path: a key file with one group per language (`[en]`, `[de]`) holding
 *   the lists `open`, `open-soft`, `number` and `backchannel`
 *   (`;`-separated)
 * @language: the group to read; its primary subtag is tried when the full
 *   tag has no group ("en-GB" falls back to "en")
 * @error: where a file that cannot be read or has no such group is told
 *
 * A list the group leaves out is empty, not the built-in one: a file says
 * everything about its language.
 *
 * Returns: (transfer full) (nullable): the lists, or NULL with @error set.
 */
GstVoiceTurnWords *
gst_voice_turn_words_new_from_file (
    const gchar *path, const gchar *language, GError **error)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autofree gchar *contents = NULL, *primary = NULL;
  const gchar *group = language && *language ? language : "en";
  const gchar *lists[] = { "open", "open-soft", "number", "backchannel" };
  GstVoiceTurnWords *w;
  gsize len = 0;

  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  if (len > MAX_FILE_BYTES) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
        "%s: %" G_GSIZE_FORMAT " bytes; a word list file holds at most %d",
        path, len, MAX_FILE_BYTES);
    return NULL;
  }
  if (!g_key_file_load_from_data (kf, contents, len, G_KEY_FILE_NONE, error)) {
    g_prefix_error (error, "%s: ", path);
    return NULL;
  }
  if (!g_key_file_has_group (kf, group)) {
    primary = g_strndup (group, strcspn (group, "-_"));
    group = primary;
  }
  if (!g_key_file_has_group (kf, group)) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
        "%s has no [%s] group: add one with open=, number= and "
        "backchannel= lists",
        path, group);
    return NULL;
  }
  w = words_new ();
  for (guint i = 0; i < G_N_ELEMENTS (lists); i++) {
    g_auto (GStrv) items =
        g_key_file_get_string_list (kf, group, lists[i], NULL, NULL);
    GHashTable *sets[] = { w->open, w->open_soft, w->number, w->backchannel };
    GHashTable *set = sets[i];
    set_add_all (set, (const gchar *const *)items);
  }
  return w;
}

GstVoiceTurnWords *
gst_voice_turn_words_ref (GstVoiceTurnWords *words)
{
  g_atomic_int_inc (&words->ref);
  return words;
}

void
gst_voice_turn_words_unref (GstVoiceTurnWords *words)
{
  if (words == NULL || !g_atomic_int_dec_and_test (&words->ref))
    return;
  g_hash_table_unref (words->open);
  g_hash_table_unref (words->open_soft);
  g_hash_table_unref (words->number);
  g_hash_table_unref (words->backchannel);
  g_free (words);
}

/* ---------- text ---------- */

/* A character that belongs to a word: letters, digits, and an apostrophe
 * or hyphen between two of them ("it's", "mm-hmm"). */
static gboolean
is_word_char (const gchar *s, const gchar *p)
{
  gunichar c = g_utf8_get_char (p), next;

  if (g_unichar_isalnum (c))
    return TRUE;
  if (c != '\'' && c != '-' && c != 0x2019)
    return FALSE;
  next = g_utf8_get_char (g_utf8_next_char (p));
  return p > s && g_unichar_isalnum (g_utf8_get_char (g_utf8_prev_char (p))) &&
      g_unichar_isalnum (next);
}

/**
 * gst_voice_turn_normalize:
 * @text: a transcript
 *
 * Lower case, punctuation dropped, words separated by one space: two
 * transcripts of the same words compare equal whatever the speech service
 * did with capitals and commas ("Hello, world." and "hello world").
 *
 * Returns: (transfer full): the normalized text.
 */
gchar *
gst_voice_turn_normalize (const gchar *text)
{
  g_autofree gchar *lower = g_utf8_strdown (text ? text : "", -1);
  GString *out = g_string_new (NULL);
  gboolean space = FALSE;

  for (const gchar *p = lower; *p; p = g_utf8_next_char (p)) {
    if (!is_word_char (lower, p)) {
      space = out->len > 0;
      continue;
    }
    if (space)
      g_string_append_c (out, ' ');
    space = FALSE;
    /* Typographic apostrophes read as plain ones ("it’s" = "it's"). */
    if (g_utf8_get_char (p) == 0x2019)
      g_string_append_c (out, '\'');
    else
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
  }
  return g_string_free (out, FALSE);
}

static gboolean
has_digit (const gchar *word)
{
  for (; *word; word++)
    if (g_ascii_isdigit (*word))
      return TRUE;
  return FALSE;
}

/* The last character that is not space or a closing quote. */
static gunichar
last_mark (const gchar *text)
{
  const gchar *end = text + strlen (text);

  while (end > text) {
    const gchar *p = g_utf8_prev_char (end);
    gunichar c = g_utf8_get_char (p);
    if (!g_unichar_isspace (c) && c != '"' && c != '\'' && c != 0x201D)
      return c;
    end = p;
  }
  return 0;
}

/**
 * gst_voice_turn_classify:
 * @words: the language's lists
 * @text: (nullable): what the caller said so far in this turn
 *
 * A question mark ends a turn ("Where are you from?", "Is it 42?"). Then
 * the last word decides before a full stop does, for the words of the
 * `open` list ("My name is um." is not finished: speech services end every
 * segment with a full stop); the `open-soft` list is open only without
 * one ("I can't log in." is finished, "my number is" is not).
 *
 * Returns: how @text ends.
 */
GstVoiceTurnEnding
gst_voice_turn_classify (const GstVoiceTurnWords *words, const gchar *text)
{
  g_autofree gchar *norm = gst_voice_turn_normalize (text);
  const gchar *last = strrchr (norm, ' ');
  gunichar mark = last_mark (text ? text : "");
  gboolean terminal = mark == '.' || mark == '?' || mark == '!';

  last = last ? last + 1 : norm;
  if (*last == '\0')
    return GST_VOICE_TURN_ENDING_UNSURE;
  if (mark == '?')
    return GST_VOICE_TURN_ENDING_COMPLETE;
  if (g_hash_table_contains (words->open, last) ||
      (!terminal && g_hash_table_contains (words->open_soft, last)))
    return GST_VOICE_TURN_ENDING_OPEN;
  if (has_digit (last) || g_hash_table_contains (words->number, last) ||
      (g_utf8_strlen (last, -1) == 1 &&
          g_unichar_isalpha (g_utf8_get_char (last))))
    return GST_VOICE_TURN_ENDING_NUMBER;
  return terminal ? GST_VOICE_TURN_ENDING_COMPLETE
                  : GST_VOICE_TURN_ENDING_UNSURE;
}

/* TRUE if the @len words at @tok form one backchannel phrase. */
static gboolean
phrase_is_backchannel (
    const GstVoiceTurnWords *words, gchar *const *tok, guint len)
{
  GString *p = g_string_new (tok[0]);
  gboolean found;

  for (guint k = 1; k < len; k++)
    g_string_append_printf (p, " %s", tok[k]);
  found = g_hash_table_contains (words->backchannel, p->str);
  g_string_free (p, TRUE);
  return found;
}

/**
 * gst_voice_turn_is_backchannel:
 * @words: the language's lists
 * @text: (nullable): what the caller said while the agent talked
 *
 * Returns: TRUE if @text is made only of backchannel phrases ("mhm",
 * "uh huh, yeah") and is short; FALSE for anything else, and for no words
 * at all (silence or noise is not a backchannel: it has no words to judge).
 */
gboolean
gst_voice_turn_is_backchannel (
    const GstVoiceTurnWords *words, const gchar *text)
{
  g_autofree gchar *norm = gst_voice_turn_normalize (text);
  g_auto (GStrv) tok = g_strsplit (norm, " ", -1);
  guint n = *norm ? g_strv_length (tok) : 0, i = 0;

  if (n == 0 || n > MAX_BACKCHANNEL_WORDS)
    return FALSE;
  while (i < n) {
    guint len = MIN (MAX_PHRASE, n - i);
    while (len > 0 && !phrase_is_backchannel (words, tok + i, len))
      len--;
    if (len == 0)
      return FALSE;
    i += len;
  }
  return TRUE;
}

const gchar *
gst_voice_turn_ending_get_name (GstVoiceTurnEnding ending)
{
  static const gchar *const names[] = { "complete", "unsure", "number",
    "open" };

  return (guint)ending < G_N_ELEMENTS (names) ? names[ending] : "unknown";
}

/* ---------- the tracker ---------- */

/* Without a VAD, an interim result whose words have not changed for this
 * long is as good as final for a speculative start: Deepgram finalizes it
 * only at its endpointing. With a VAD, its speech-stop marks the pause:
 * the interim words then start the reply a Finalize round trip before the
 * final ones come (if those differ, the reply is redone). */
#define STABLE_INTERIM_US (250 * 1000)

struct _GstVoiceTurnTracker
{
  GstVoiceTurnConfig config; /* config.words holds a reference */
  GString *final_text; /* final results of the turn, joined by spaces */
  gchar *interim; /* the latest interim result after them, or NULL */
  GString *text; /* final_text and interim: what get_text() returns */
  gchar *words; /* normalized @text: what "new words" compares */
  gchar *likely_words; /* normalized text a LIKELY was sent for, or NULL */
  GstVoiceTurnEnding ending; /* of final_text */
  gint64 last_word_end; /* -1: no word yet */
  gint64 interim_since; /* when the interim's words last changed */
  gboolean speaking; /* the VAD hears speech */
  gboolean has_vad; /* a VAD decision came (never reset) */
  gint64 speech_start; /* the VAD's latest speech-start (-1: none) */
  gint64 speech_end; /* where the VAD says speech last ended (-1: none) */
  gboolean endpoint; /* the service ended an utterance since the last word */
};

/**
 * gst_voice_turn_tracker_new:
 * @config: the delays and word lists (copied; the words are referenced)
 *
 * Returns: (transfer full): a tracker with no turn in progress. Free with
 * gst_voice_turn_tracker_free().
 */
GstVoiceTurnTracker *
gst_voice_turn_tracker_new (const GstVoiceTurnConfig *config)
{
  GstVoiceTurnTracker *t = g_new0 (GstVoiceTurnTracker, 1);

  t->config = *config;
  t->config.words = config->words ? gst_voice_turn_words_ref (config->words)
                                  : gst_voice_turn_words_get_default (NULL);
  t->final_text = g_string_new (NULL);
  t->text = g_string_new (NULL);
  t->speech_start = -1;
  t->words = g_strdup ("");
  gst_voice_turn_tracker_reset (t);
  return t;
}

void
gst_voice_turn_tracker_free (GstVoiceTurnTracker *tracker)
{
  if (tracker == NULL)
    return;
  gst_voice_turn_words_unref (tracker->config.words);
  g_string_free (tracker->final_text, TRUE);
  g_string_free (tracker->text, TRUE);
  g_free (tracker->interim);
  g_free (tracker->words);
  g_free (tracker->likely_words);
  g_free (tracker);
}

/**
 * gst_voice_turn_tracker_reset:
 *
 * Forgets the turn (after a commit, a flush or a stop). The VAD state is
 * kept: the caller may still be talking.
 */
void
gst_voice_turn_tracker_reset (GstVoiceTurnTracker *tracker)
{
  g_string_truncate (tracker->final_text, 0);
  g_string_truncate (tracker->text, 0);
  g_clear_pointer (&tracker->interim, g_free);
  g_free (tracker->words);
  tracker->words = g_strdup ("");
  g_clear_pointer (&tracker->likely_words, g_free);
  tracker->ending = GST_VOICE_TURN_ENDING_UNSURE;
  tracker->last_word_end = -1;
  tracker->interim_since = -1;
  tracker->endpoint = FALSE;
  tracker->speech_end = -1;
}

/* A pause is likely once the VAD hears nothing (after its speech-stop,
 * interim words too), or without a VAD once every word is final or the
 * interim ones have stood still for STABLE_INTERIM_US; unless the words
 * leave the phrase open. */
static GstVoiceTurnAction
check_likely (GstVoiceTurnTracker *t, gint64 now)
{
  if (t->likely_words || *t->words == '\0' || t->speaking)
    return GST_VOICE_TURN_ACTION_NONE;
  if (t->interim && !t->has_vad && now - t->interim_since < STABLE_INTERIM_US)
    return GST_VOICE_TURN_ACTION_NONE;
  /* "My number is" will go on: a reply to it would be thrown away. */
  if (gst_voice_turn_classify (t->config.words, t->text->str) ==
      GST_VOICE_TURN_ENDING_OPEN)
    return GST_VOICE_TURN_ACTION_NONE;
  t->likely_words = g_strdup (t->words);
  return GST_VOICE_TURN_ACTION_LIKELY;
}

/* Recomputes the text after a result. Other words than before move the
 * last word's end and void an endpoint; other words than a LIKELY was sent
 * for void it (RESUMED). The same words again (Deepgram repeats interim
 * results, and the final one restates them) change nothing. */
static GstVoiceTurnAction
update_words (GstVoiceTurnTracker *t, gint64 last_word_end, gint64 now)
{
  GstVoiceTurnAction act = GST_VOICE_TURN_ACTION_NONE;
  gchar *words;

  g_string_assign (t->text, t->final_text->str);
  if (t->interim) {
    if (t->text->len)
      g_string_append_c (t->text, ' ');
    g_string_append (t->text, t->interim);
  }
  words = gst_voice_turn_normalize (t->text->str);
  if (g_str_equal (words, t->words)) {
    g_free (words);
    return act;
  }
  g_free (t->words);
  t->words = words;
  t->last_word_end = last_word_end >= 0 ? last_word_end : now;
  t->endpoint = FALSE;
  t->interim_since = now;
  if (t->likely_words && !g_str_equal (t->likely_words, words)) {
    g_clear_pointer (&t->likely_words, g_free);
    act |= GST_VOICE_TURN_ACTION_RESUMED;
  }
  return act;
}

/**
 * gst_voice_turn_tracker_push_result:
 * @text: (nullable): the result's transcript (empty or NULL: no words)
 * @is_final: the words will not change
 * @endpoint: the service ended an utterance with this result (Deepgram's
 *   speech_final, or the answer to a Finalize)
 * @last_word_end: when the audio of the result's last word ended (-1:
 *   unknown, @now_us is used)
 * @now_us: the current time
 *
 * Returns: the actions due now.
 */
GstVoiceTurnAction
gst_voice_turn_tracker_push_result (GstVoiceTurnTracker *tracker,
    const gchar *text, gboolean is_final, gboolean endpoint,
    gint64 last_word_end, gint64 now_us)
{
  GstVoiceTurnAction act;
  gboolean has_words = text && *text;

  if (!is_final && !has_words)
    return GST_VOICE_TURN_ACTION_NONE;
  if (!is_final) {
    g_free (tracker->interim);
    tracker->interim = g_strdup (text);
  } else {
    g_clear_pointer (&tracker->interim, g_free);
    if (has_words) {
      if (tracker->final_text->len)
        g_string_append_c (tracker->final_text, ' ');
      g_string_append (tracker->final_text, text);
      tracker->ending = gst_voice_turn_classify (
          tracker->config.words, tracker->final_text->str);
    }
  }
  act = update_words (tracker, last_word_end, now_us);
  if (is_final)
    tracker->endpoint |= endpoint;
  return act | check_likely (tracker, now_us);
}

/**
 * gst_voice_turn_tracker_push_endpoint:
 *
 * The service says the utterance ended without new words (Deepgram's
 * UtteranceEnd).
 *
 * Returns: the actions due now.
 */
GstVoiceTurnAction
gst_voice_turn_tracker_push_endpoint (
    GstVoiceTurnTracker *tracker, gint64 now_us)
{
  tracker->endpoint = TRUE;
  return check_likely (tracker, now_us);
}

/**
 * gst_voice_turn_tracker_push_speech:
 * @speaking: the VAD's speech-start (TRUE) or speech-stop (FALSE)
 * @at_us: where the speech started or ended (the VAD decides later than
 *   that; the current time if unknown)
 *
 * Speech alone voids nothing (a cough, a breath): only words do. It holds
 * the commit back while it lasts, and the silence is counted from where it
 * ended if that is after the last word's end (a speech service's word
 * times can be early).
 *
 * Returns: the actions due now.
 */
GstVoiceTurnAction
gst_voice_turn_tracker_push_speech (
    GstVoiceTurnTracker *tracker, gboolean speaking, gint64 at_us)
{
  tracker->speaking = speaking;
  tracker->has_vad = TRUE;
  if (speaking) {
    tracker->speech_start = at_us;
    return GST_VOICE_TURN_ACTION_NONE;
  }
  tracker->speech_end = at_us;
  return check_likely (tracker, at_us);
}

/**
 * gst_voice_turn_tracker_poll:
 * @now_us: the current time
 * @next_us: (out) (optional): when to poll again (-1: only after new input)
 *
 * Returns: %GST_VOICE_TURN_ACTION_COMMIT when the turn is over,
 * %GST_VOICE_TURN_ACTION_LIKELY when interim words have stood still, else
 * %GST_VOICE_TURN_ACTION_NONE.
 */
GstVoiceTurnAction
gst_voice_turn_tracker_poll (
    GstVoiceTurnTracker *tracker, gint64 now_us, gint64 *next_us)
{
  gint64 base, hard, due;

  if (next_us)
    *next_us = -1;
  /* An interim word holds the commit: the service will finalize it (on
   * its own endpointing, or on the Finalize a VAD's speech-stop sends). */
  if (tracker->interim) {
    GstVoiceTurnAction act = check_likely (tracker, now_us);
    if (next_us && !tracker->likely_words && !tracker->has_vad)
      *next_us = tracker->interim_since + STABLE_INTERIM_US;
    return act;
  }
  if (tracker->final_text->len == 0)
    return GST_VOICE_TURN_ACTION_NONE;
  /* Silence counts from the last word, or from the VAD's end of speech if
   * later; the hard limit gives new speech time to become words. */
  base = MAX (tracker->last_word_end, tracker->speech_end);
  hard = MAX (tracker->last_word_end,
             tracker->speaking ? tracker->speech_start : -1) +
      (gint64)tracker->config.max_ms * 1000;
  due = base + (gint64)tracker->config.delay_ms[tracker->ending] * 1000;
  if (now_us >= hard)
    return GST_VOICE_TURN_ACTION_COMMIT;
  if (tracker->speaking || !tracker->endpoint || now_us < due) {
    if (next_us)
      *next_us = tracker->speaking || !tracker->endpoint ? hard : due;
    return GST_VOICE_TURN_ACTION_NONE;
  }
  return GST_VOICE_TURN_ACTION_COMMIT;
}

/**
 * gst_voice_turn_tracker_get_text:
 *
 * Returns: (transfer none): the turn's words so far: the final results,
 * then the interim one (at a commit, only final words remain).
 */
const gchar *
gst_voice_turn_tracker_get_text (GstVoiceTurnTracker *tracker)
{
  return tracker->text->str;
}

GstVoiceTurnEnding
gst_voice_turn_tracker_get_ending (GstVoiceTurnTracker *tracker)
{
  return tracker->ending;
}

gint64
gst_voice_turn_tracker_get_last_word_end (GstVoiceTurnTracker *tracker)
{
  return tracker->last_word_end;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * SECTION:gstvoiceturn
 * @title: Turn taking
 *
 * When has the caller finished, and is what they said while the agent
 * talks an interruption or a backchannel ("mhm")? Plain C over GLib, no
 * GStreamer: deepgramsrc feeds a #GstVoiceTurnTracker with transcripts and
 * the VAD's decisions and sends the events it asks for; llmtransform asks
 * gst_voice_turn_is_backchannel(). A trained turn model can replace the
 * rules here behind the same interface.
 *
 * The rules (docs/turn-taking.md has the reasoning and the numbers):
 * the silence that must follow the last word before a turn is committed
 * depends on how the words end (#GstVoiceTurnEnding): short after a
 * sentence or a question with terminal punctuation, long after an article,
 * a preposition, a conjunction, a filler or an auxiliary verb, in between
 * after a number or a spelled letter (a sequence that may go on) and after
 * words with no punctuation. Nothing is committed while the VAD hears
 * speech or a word is still interim, and never before the speech service
 * itself marked the end of an utterance (its endpointing is the floor).
 */

/**
 * GstVoiceTurnEnding:
 * @GST_VOICE_TURN_ENDING_COMPLETE: terminal punctuation after a word that
 *   can end a sentence
 * @GST_VOICE_TURN_ENDING_UNSURE: no terminal punctuation, nothing else known
 * @GST_VOICE_TURN_ENDING_NUMBER: a digit, a number word or a spelled letter:
 *   a sequence (an account number, a spelling) that may go on
 * @GST_VOICE_TURN_ENDING_OPEN: an article, preposition, conjunction,
 *   filler, determiner or auxiliary verb: the phrase is not finished
 *
 * How a transcript ends, from most to least likely to be a finished turn.
 */
typedef enum {
  GST_VOICE_TURN_ENDING_COMPLETE,
  GST_VOICE_TURN_ENDING_UNSURE,
  GST_VOICE_TURN_ENDING_NUMBER,
  GST_VOICE_TURN_ENDING_OPEN,
} GstVoiceTurnEnding;

#define GST_VOICE_TURN_N_ENDINGS 4

/**
 * GstVoiceTurnWords:
 *
 * The word lists of one language: which last words leave a phrase open,
 * which count as numbers, which phrases are backchannels. Immutable once
 * made, so many trackers on many threads may share one.
 */
typedef struct _GstVoiceTurnWords GstVoiceTurnWords;

GstVoiceTurnWords *gst_voice_turn_words_get_default (const gchar *language);
GstVoiceTurnWords *gst_voice_turn_words_new_from_file (
    const gchar *path, const gchar *language, GError **error);
GstVoiceTurnWords *gst_voice_turn_words_ref (GstVoiceTurnWords *words);
void gst_voice_turn_words_unref (GstVoiceTurnWords *words);

GstVoiceTurnEnding gst_voice_turn_classify (
    const GstVoiceTurnWords *words, const gchar *text);
gboolean gst_voice_turn_is_backchannel (
    const GstVoiceTurnWords *words, const gchar *text);
gchar *gst_voice_turn_normalize (const gchar *text);
const gchar *gst_voice_turn_ending_get_name (GstVoiceTurnEnding ending);

/**
 * GstVoiceTurnConfig:
 * @delay_ms: silence after the last word before a commit, per
 *   #GstVoiceTurnEnding
 * @max_ms: a commit happens this long after the last word (or after a
 *   speech-start with no word since) even while the VAD hears speech
 *   (noise) or the service has not ended the utterance; an interim word
 *   still holds it
 * @words: (transfer none): the language's word lists
 *
 * What a #GstVoiceTurnTracker decides with. Copied by the tracker.
 */
typedef struct
{
  guint delay_ms[GST_VOICE_TURN_N_ENDINGS];
  guint max_ms;
  GstVoiceTurnWords *words;
} GstVoiceTurnConfig;

/* The defaults the elements document (docs/turn-taking.md). */
#define GST_VOICE_TURN_DEFAULT_COMPLETE_MS 150
#define GST_VOICE_TURN_DEFAULT_UNSURE_MS 700
#define GST_VOICE_TURN_DEFAULT_NUMBER_MS 1000
#define GST_VOICE_TURN_DEFAULT_OPEN_MS 1500
#define GST_VOICE_TURN_DEFAULT_MAX_MS 2500

/**
 * GstVoiceTurnAction:
 * @GST_VOICE_TURN_ACTION_NONE: nothing to send
 * @GST_VOICE_TURN_ACTION_LIKELY: the caller paused where a turn may end
 *   (not after an open phrase, see #GST_VOICE_TURN_ENDING_OPEN):
 *   send `turn-likely` with gst_voice_turn_tracker_get_text() (a reply may
 *   start speculatively)
 * @GST_VOICE_TURN_ACTION_RESUMED: the caller went on after a LIKELY: send
 *   `turn-resumed` (a speculative reply is void)
 * @GST_VOICE_TURN_ACTION_COMMIT: the turn is over: send `end-of-turn`
 *   with gst_voice_turn_tracker_get_text(), then call
 *   gst_voice_turn_tracker_reset()
 *
 * What the tracker asks its owner to do; several may be due at once.
 */
typedef enum {
  GST_VOICE_TURN_ACTION_NONE = 0,
  GST_VOICE_TURN_ACTION_LIKELY = 1 << 0,
  GST_VOICE_TURN_ACTION_RESUMED = 1 << 1,
  GST_VOICE_TURN_ACTION_COMMIT = 1 << 2,
} GstVoiceTurnAction;

/**
 * GstVoiceTurnTracker:
 *
 * One caller's turn in progress. Times are in microseconds of one
 * monotonic clock of the owner's choosing (g_get_monotonic_time() in the
 * elements; a counter in the tests). Not thread-safe: the owner serialises
 * calls.
 */
typedef struct _GstVoiceTurnTracker GstVoiceTurnTracker;

GstVoiceTurnTracker *gst_voice_turn_tracker_new (
    const GstVoiceTurnConfig *config);
void gst_voice_turn_tracker_free (GstVoiceTurnTracker *tracker);

GstVoiceTurnAction gst_voice_turn_tracker_push_result (
    GstVoiceTurnTracker *tracker, const gchar *text, gboolean is_final,
    gboolean endpoint, gint64 last_word_end_us, gint64 now_us);
GstVoiceTurnAction gst_voice_turn_tracker_push_endpoint (
    GstVoiceTurnTracker *tracker, gint64 now_us);
GstVoiceTurnAction gst_voice_turn_tracker_push_speech (
    GstVoiceTurnTracker *tracker, gboolean speaking, gint64 at_us);
GstVoiceTurnAction gst_voice_turn_tracker_poll (
    GstVoiceTurnTracker *tracker, gint64 now_us, gint64 *next_us);

const gchar *gst_voice_turn_tracker_get_text (GstVoiceTurnTracker *tracker);
GstVoiceTurnEnding gst_voice_turn_tracker_get_ending (
    GstVoiceTurnTracker *tracker);
gint64 gst_voice_turn_tracker_get_last_word_end (GstVoiceTurnTracker *tracker);
void gst_voice_turn_tracker_reset (GstVoiceTurnTracker *tracker);

G_END_DECLS

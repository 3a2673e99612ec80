/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* deepgramsrc's turn-taking properties (shared with the deepgram bin),
 * and the tracker they configure. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "voice.h"
#include "turnoptions.h"

/* Read when the element starts: changes take effect in NULL and READY. */
#define OPT_FLAGS                                                              \
  (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

#define MAX_DELAY_MS 30000

GType
gst_deepgram_turn_detection_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    { GST_DEEPGRAM_TURN_DETECTION_ENDPOINTING,
        "Deepgram's end of utterance ends the turn", "endpointing" },
    { GST_DEEPGRAM_TURN_DETECTION_TRANSCRIPT,
        "A silence that depends on the words ends the turn", "transcript" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (
        &type, g_enum_register_static ("GstDeepgramTurnDetection", values));
  return type;
}

static GParamSpec *
delay_pspec (
    const gchar *name, const gchar *nick, const gchar *blurb, guint def)
{
  return g_param_spec_uint (name, nick, blurb, 0, MAX_DELAY_MS, def, OPT_FLAGS);
}

static GParamSpec *
make_pspec (DgTurnOption opt)
{
  switch (opt) {
    case DG_TURN_OPT_DETECTION:
      /**
       * GstDeepgramSrc:turn-detection:
       *
       * `transcript`: people pause inside sentences ("my number is … four
       * seven two"); a silence rule alone cuts them off or answers late.
       * The words tell how long to wait (docs/turn-taking.md).
       */
      return g_param_spec_enum ("turn-detection", "Turn detection",
          "What ends the caller's turn: Deepgram's end of utterance, or a "
          "silence that depends on how the words end",
          GST_TYPE_DEEPGRAM_TURN_DETECTION, DG_TURN_DEFAULT_DETECTION,
          OPT_FLAGS);
    case DG_TURN_OPT_COMPLETE_MS:
      return delay_pspec ("turn-complete-ms", "Complete turn delay",
          "With turn-detection=transcript: silence (in milliseconds) after "
          "a last word with terminal punctuation before the turn ends",
          GST_VOICE_TURN_DEFAULT_COMPLETE_MS);
    case DG_TURN_OPT_UNSURE_MS:
      return delay_pspec ("turn-unsure-ms", "Unpunctuated turn delay",
          "With turn-detection=transcript: silence (in milliseconds) after "
          "a last word without terminal punctuation",
          GST_VOICE_TURN_DEFAULT_UNSURE_MS);
    case DG_TURN_OPT_NUMBER_MS:
      return delay_pspec ("turn-number-ms", "Number turn delay",
          "With turn-detection=transcript: silence (in milliseconds) after "
          "a number or a spelled letter, which may go on",
          GST_VOICE_TURN_DEFAULT_NUMBER_MS);
    case DG_TURN_OPT_OPEN_MS:
      return delay_pspec ("turn-open-ms", "Open phrase turn delay",
          "With turn-detection=transcript: silence (in milliseconds) after "
          "an article, preposition, conjunction, filler or auxiliary verb",
          GST_VOICE_TURN_DEFAULT_OPEN_MS);
    case DG_TURN_OPT_MAX_MS:
      return g_param_spec_uint ("turn-max-ms", "Maximum turn delay",
          "With turn-detection=transcript: a turn ends this long (in "
          "milliseconds) after the last word, whatever holds it",
          100, MAX_DELAY_MS, GST_VOICE_TURN_DEFAULT_MAX_MS, OPT_FLAGS);
    case DG_TURN_OPT_WORDS:
      /**
       * GstDeepgramSrc:turn-words:
       *
       * A key file with a group per language, e.g.
       * `[de]` / `open=und;oder;der;die;das` / `number=eins;zwei` /
       * `backchannel=ja;genau;mhm`. The built-in lists are English.
       */
      return g_param_spec_string ("turn-words", "Turn word lists",
          "Key file of word lists per language (open, number, backchannel; "
          "NULL: the built-in English lists)",
          NULL, OPT_FLAGS);
    case DG_TURN_OPT_LANGUAGE:
      return g_param_spec_string ("turn-language", "Turn language",
          "Group of turn-words to use (a BCP-47 tag; \"en-GB\" falls back "
          "to \"en\")",
          DG_TURN_DEFAULT_LANGUAGE, OPT_FLAGS);
    case DG_TURN_OPT_COUNT:
      break;
  }
  g_assert_not_reached ();
  return NULL;
}

/* Each option's field; delay_ms[] is indexed by GstVoiceTurnEnding. */
#define DELAY(ending)                                                          \
  {                                                                            \
    G_STRUCT_OFFSET (DgTurnOptions, delay_ms) + (ending) * sizeof (guint),     \
        GST_VOICE_OPTION_NONE, NULL                                            \
  }

static const GstVoiceOption options[DG_TURN_OPT_COUNT] = {
  [DG_TURN_OPT_DETECTION] = { G_STRUCT_OFFSET (DgTurnOptions, detection) },
  [DG_TURN_OPT_COMPLETE_MS] = DELAY (GST_VOICE_TURN_ENDING_COMPLETE),
  [DG_TURN_OPT_UNSURE_MS] = DELAY (GST_VOICE_TURN_ENDING_UNSURE),
  [DG_TURN_OPT_NUMBER_MS] = DELAY (GST_VOICE_TURN_ENDING_NUMBER),
  [DG_TURN_OPT_OPEN_MS] = DELAY (GST_VOICE_TURN_ENDING_OPEN),
  [DG_TURN_OPT_MAX_MS] = { G_STRUCT_OFFSET (DgTurnOptions, max_ms) },
  [DG_TURN_OPT_WORDS] = { G_STRUCT_OFFSET (DgTurnOptions, words_file) },
  [DG_TURN_OPT_LANGUAGE] = { G_STRUCT_OFFSET (DgTurnOptions, language),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
};

static GParamSpec *
make_option_pspec (guint i)
{
  return make_pspec ((DgTurnOption)i);
}

GstVoiceOptionTable dg_turn_options_table =
    GST_VOICE_OPTION_TABLE_INIT (options, make_option_pspec);

/**
 * dg_turn_options_install:
 * @first_prop_id: the property id of %DG_TURN_OPT_DETECTION; the others
 *   follow in #DgTurnOption order
 */
void
dg_turn_options_install (GObjectClass *klass, guint first_prop_id)
{
  gst_voice_options_install (&dg_turn_options_table, klass, first_prop_id);
  gst_type_mark_as_plugin_api (GST_TYPE_DEEPGRAM_TURN_DETECTION, 0);
}

/**
 * dg_turn_options_make_tracker:
 *
 * Returns: (transfer full) (nullable): a tracker with @opts' delays and
 * word lists, or NULL with @error set when the word file cannot be used.
 */
GstVoiceTurnTracker *
dg_turn_options_make_tracker (const DgTurnOptions *opts, GError **error)
{
  GstVoiceTurnConfig config = { .max_ms = opts->max_ms };
  GstVoiceTurnTracker *tracker;

  memcpy (config.delay_ms, opts->delay_ms, sizeof (config.delay_ms));
  config.words = opts->words_file && *opts->words_file
      ? gst_voice_turn_words_new_from_file (
            opts->words_file, opts->language, error)
      : gst_voice_turn_words_get_default (opts->language);
  if (config.words == NULL)
    return NULL;
  tracker = gst_voice_turn_tracker_new (&config);
  gst_voice_turn_words_unref (config.words);
  return tracker;
}

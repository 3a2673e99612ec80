/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "options.h"
#include "gstvoiceoptions.h"

/* Every option is read when the element connects (on its first caps), so
 * changes take effect in NULL and READY only. */
#define OPT_FLAGS                                                              \
  (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY)

static GParamSpec *
make_pspec (guint opt)
{
  switch ((DgOption)opt) {
    case DG_OPT_API_KEY:
      /**
       * GstDeepgramSink:api-key:
       *
       * The Deepgram API key. Registered with the redaction list, so it never
       * reaches a log, and write-only, so pipeline dumps (.dot files,
       * gst-inspect of a running element) never show it, as llmtransform's
       * and elevenlabs' keys. Without it, $DEEPGRAM_API_KEY is read when
       * the element starts.
       */
      return g_param_spec_string ("api-key", "API key",
          "Deepgram API key, sent as \"Authorization: Token KEY\"; "
          "write-only and never logged (NULL: the DEEPGRAM_API_KEY "
          "environment variable when the element starts)",
          NULL, OPT_FLAGS & ~G_PARAM_READABLE);
    case DG_OPT_URL:
      /**
       * GstDeepgramSink:url:
       *
       * The live transcription endpoint; point it at voiceagent-emulator
       * (ws://127.0.0.1:8790/v1/listen) or a self-hosted Deepgram.
       */
      return g_param_spec_string ("url", "URL",
          "Deepgram live transcription WebSocket URL (ws:// or wss://); the "
          "element adds the query parameters",
          DG_DEFAULT_URL, OPT_FLAGS);
    case DG_OPT_MODEL:
      /**
       * GstDeepgramSink:model:
       *
       * nova-3: Deepgram's most accurate real-time model, and the one
       * keyterm prompting works with.
       */
      return g_param_spec_string ("model", "Model",
          "Deepgram model, e.g. nova-3, nova-3-medical, nova-2-phonecall",
          DG_DEFAULT_MODEL, OPT_FLAGS);
    case DG_OPT_LANGUAGE_CODE:
      /**
       * GstDeepgramSink:language-code:
       *
       * The spoken language; "multi" for code switching (nova-3). Named as
       * gst-plugins-rs's deepgramtranscriber names it (formerly
       * `language`, still accepted, deprecated).
       */
      return g_param_spec_string ("language-code", "Language code",
          "BCP-47 language tag (en, en-US, es, multi, ...); empty for the "
          "model's default",
          DG_DEFAULT_LANGUAGE, OPT_FLAGS);
    case DG_OPT_INTERIM_RESULTS:
      /**
       * GstDeepgramSink:interim-results:
       *
       * On by default: UtteranceEnd needs it, and interim text lets the
       * application show the caller's words as they speak. It costs nothing.
       */
      return g_param_spec_boolean ("interim-results", "Interim results",
          "Ask for interim (not yet final) results; needed for "
          "utterance-end-ms and for deepgramsrc interim=true",
          DG_DEFAULT_INTERIM_RESULTS, OPT_FLAGS);
    case DG_OPT_ENDPOINTING_MS:
      /**
       * GstDeepgramSink:endpointing-ms:
       *
       * 300 ms: long enough not to split a sentence at a breath, short
       * enough for quick turns when no VAD sends speech-stop. With silerovad
       * gate=true, the VAD's speech-stop (Finalize) usually ends the turn.
       * Formerly `endpointing` (still accepted, deprecated): every duration
       * property names its unit.
       */
      return g_param_spec_uint ("endpointing-ms", "Endpointing",
          "Silence (in milliseconds) after which Deepgram ends an utterance "
          "with speech_final (an end-of-turn); 0 turns Deepgram's "
          "endpointing off",
          0, 60000, DG_DEFAULT_ENDPOINTING_MS, OPT_FLAGS);
    case DG_OPT_UTTERANCE_END_MS:
      /**
       * GstDeepgramSink:utterance-end-ms:
       *
       * 1000 ms (Deepgram's minimum): the fallback end of turn when noise
       * keeps endpointing from firing.
       */
      return g_param_spec_uint ("utterance-end-ms", "Utterance end",
          "Gap after the last word (in milliseconds) after which Deepgram "
          "sends UtteranceEnd (an end-of-turn when endpointing misses it in "
          "noise); 0 off, Deepgram's minimum is 1000; needs interim-results",
          0, 60000, DG_DEFAULT_UTTERANCE_END_MS, OPT_FLAGS);
    case DG_OPT_SMART_FORMAT:
      /**
       * GstDeepgramSink:smart-format:
       *
       * Off: an LLM reads "two people" as well as "2 people", and
       * formatting can hold a final result back.
       */
      return g_param_spec_boolean ("smart-format", "Smart format",
          "Format numbers, dates, currency and more in the transcript",
          DG_DEFAULT_SMART_FORMAT, OPT_FLAGS);
    case DG_OPT_PUNCTUATE:
      /**
       * GstDeepgramSink:punctuate:
       *
       * On: sentences with punctuation read better to an LLM and in
       * call records.
       */
      return g_param_spec_boolean ("punctuate", "Punctuate",
          "Add punctuation and capitalization to the transcript",
          DG_DEFAULT_PUNCTUATE, OPT_FLAGS);
    case DG_OPT_KEYTERMS:
      /**
       * GstDeepgramSink:keyterms:
       *
       * Names and jargon the caller is likely to say (nova-3 only).
       */
      return gst_param_spec_array ("keyterms", "Key terms",
          "Words or phrases to recognise better (nova-3 keyterm prompting), "
          "e.g. <\"Deepgram\", \"GStreamer\">",
          g_param_spec_string ("keyterm", "Key term", "A word or phrase", NULL,
              G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS),
          OPT_FLAGS);
    case DG_OPT_VAD_EVENTS:
      /**
       * GstDeepgramSink:vad-events:
       *
       * Off: silerovad already tells the pipeline when speech starts.
       */
      return g_param_spec_boolean ("vad-events", "VAD events",
          "Ask for Deepgram's SpeechStarted messages (posted as "
          "deepgram-speech-started)",
          DG_DEFAULT_VAD_EVENTS, OPT_FLAGS);
    case DG_OPT_EXTRA_PARAMS:
      /**
       * GstDeepgramSink:extra-params:
       *
       * Options added to Deepgram later, or without a property here
       * (diarize, numerals, redact, tag, ...), passed through as given.
       */
      return g_param_spec_string ("extra-params", "Extra parameters",
          "More query parameters, passed as given (URL-encoded), for options "
          "without a property, e.g. \"diarize=true&numerals=true\"",
          NULL, OPT_FLAGS);
    case DG_OPT_MAX_BACKLOG_MS:
      /**
       * GstDeepgramSink:max-backlog-ms:
       *
       * Bounds the audio waiting while the connection is slow or down: a
       * conversation wants the newest words, not a growing delay.
       */
      return g_param_spec_uint ("max-backlog-ms", "Max backlog",
          "Most audio (in milliseconds) waiting for the network while it is "
          "slow or reconnecting; beyond it the oldest is dropped and a "
          "warning posted (the streaming thread never blocks)",
          100, 600000, DG_DEFAULT_MAX_BACKLOG_MS, OPT_FLAGS);
    case DG_OPT_DEPRECATED_LANGUAGE:
    case DG_OPT_DEPRECATED_ENDPOINTING:
    case DG_OPT_COUNT:
      /* Aliases get their pspec from the option's (gstvoiceoptions.c). */
      break;
  }
  g_assert_not_reached ();
  return NULL;
}

static const GstVoiceOption options[DG_OPT_COUNT] = {
  [DG_OPT_API_KEY] = { G_STRUCT_OFFSET (DgOptions, api_key),
      GST_VOICE_OPTION_SECRET },
  [DG_OPT_URL] = { G_STRUCT_OFFSET (DgOptions, url),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  [DG_OPT_MODEL] = { G_STRUCT_OFFSET (DgOptions, model),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  /* NULL is the model's default language, as "" is. */
  [DG_OPT_LANGUAGE_CODE] = { G_STRUCT_OFFSET (DgOptions, language), 0, "" },
  [DG_OPT_INTERIM_RESULTS] = { G_STRUCT_OFFSET (DgOptions, interim_results) },
  [DG_OPT_ENDPOINTING_MS] = { G_STRUCT_OFFSET (DgOptions, endpointing_ms) },
  [DG_OPT_UTTERANCE_END_MS] = { G_STRUCT_OFFSET (DgOptions, utterance_end_ms) },
  [DG_OPT_SMART_FORMAT] = { G_STRUCT_OFFSET (DgOptions, smart_format) },
  [DG_OPT_PUNCTUATE] = { G_STRUCT_OFFSET (DgOptions, punctuate) },
  [DG_OPT_KEYTERMS] = { G_STRUCT_OFFSET (DgOptions, keyterms) },
  [DG_OPT_VAD_EVENTS] = { G_STRUCT_OFFSET (DgOptions, vad_events) },
  [DG_OPT_EXTRA_PARAMS] = { G_STRUCT_OFFSET (DgOptions, extra_params) },
  [DG_OPT_MAX_BACKLOG_MS] = { G_STRUCT_OFFSET (DgOptions, max_backlog_ms) },
  [DG_OPT_DEPRECATED_LANGUAGE] =
      GST_VOICE_OPTION_ALIAS ("language", DG_OPT_LANGUAGE_CODE, 1),
  [DG_OPT_DEPRECATED_ENDPOINTING] =
      GST_VOICE_OPTION_ALIAS ("endpointing", DG_OPT_ENDPOINTING_MS, 1),
};

GstVoiceOptionTable dg_options_table =
    GST_VOICE_OPTION_TABLE_INIT (options, make_pspec);

/**
 * dg_options_install:
 * @first_prop_id: the property id of %DG_OPT_API_KEY; the others follow in
 *   #DgOption order
 *
 * Installs the Deepgram options as properties of @klass.
 */
void
dg_options_install (GObjectClass *klass, guint first_prop_id)
{
  gst_voice_options_install (&dg_options_table, klass, first_prop_id);
}

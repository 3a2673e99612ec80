/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "gstvoiceoptions.h"
#include "gstvoiceturn.h"

G_BEGIN_DECLS

/**
 * GstDeepgramTurnDetection:
 * @GST_DEEPGRAM_TURN_DETECTION_ENDPOINTING: a turn ends when Deepgram ends
 *   an utterance (speech_final, the answer to Finalize, UtteranceEnd)
 * @GST_DEEPGRAM_TURN_DETECTION_TRANSCRIPT: a turn ends after a silence that
 *   depends on the words (gstvoiceturn.h); Deepgram's end of utterance is
 *   the earliest it can end
 *
 * Who decides that the caller has finished.
 */
typedef enum {
  GST_DEEPGRAM_TURN_DETECTION_ENDPOINTING = 0,
  GST_DEEPGRAM_TURN_DETECTION_TRANSCRIPT = 1,
} GstDeepgramTurnDetection;

#define GST_TYPE_DEEPGRAM_TURN_DETECTION                                       \
  (gst_deepgram_turn_detection_get_type ())
GType gst_deepgram_turn_detection_get_type (void);

typedef enum {
  DG_TURN_OPT_DETECTION,
  DG_TURN_OPT_COMPLETE_MS,
  DG_TURN_OPT_UNSURE_MS,
  DG_TURN_OPT_NUMBER_MS,
  DG_TURN_OPT_OPEN_MS,
  DG_TURN_OPT_MAX_MS,
  DG_TURN_OPT_WORDS,
  DG_TURN_OPT_LANGUAGE,
  DG_TURN_OPT_COUNT,
} DgTurnOption;

#define DG_TURN_DEFAULT_DETECTION GST_DEEPGRAM_TURN_DETECTION_TRANSCRIPT
#define DG_TURN_DEFAULT_LANGUAGE "en"

/* Protected by the owner's OBJECT_LOCK. */
typedef struct
{
  GstDeepgramTurnDetection detection;
  guint delay_ms[GST_VOICE_TURN_N_ENDINGS]; /* by GstVoiceTurnEnding */
  guint max_ms;
  gchar *words_file; /* NULL: the built-in lists */
  gchar *language;
} DgTurnOptions;

extern GstVoiceOptionTable dg_turn_options_table;
void dg_turn_options_install (GObjectClass *klass, guint first_prop_id);
GST_VOICE_OPTIONS_DEFINE_ACCESSORS (
    dg_turn, DgTurnOptions, DgTurnOption, dg_turn_options_table)
GstVoiceTurnTracker *dg_turn_options_make_tracker (
    const DgTurnOptions *opts, GError **error);

G_END_DECLS

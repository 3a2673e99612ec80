/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

#include "gstvoiceoptions.h"

G_BEGIN_DECLS

/* The Deepgram request options: properties of deepgramsink, and of the
 * deepgram bin, which forwards them to its deepgramsink. Defined once here
 * so both show the same names, blurbs, ranges and defaults. */

/* The session kind deepgramsink and deepgramsrc both acquire. */
#define DG_SESSION_KIND "deepgram"

#define DG_DEFAULT_URL "wss://api.deepgram.com/v1/listen"
#define DG_DEFAULT_MODEL "nova-3"
#define DG_DEFAULT_LANGUAGE "en"
#define DG_DEFAULT_INTERIM_RESULTS TRUE
#define DG_DEFAULT_ENDPOINTING_MS 300
#define DG_DEFAULT_UTTERANCE_END_MS 1000
#define DG_DEFAULT_SMART_FORMAT FALSE
#define DG_DEFAULT_PUNCTUATE TRUE
#define DG_DEFAULT_VAD_EVENTS FALSE
#define DG_DEFAULT_MAX_BACKLOG_MS 5000
/* deepgramsrc's interim, which the bin forwards: the bin's blurb differs
 * (there interim-results is a property of the same element). */
#define DG_DEFAULT_INTERIM FALSE

/* Option ids, relative to the first id the class gives dg_options_install. */
typedef enum {
  DG_OPT_API_KEY = 0,
  DG_OPT_URL,
  DG_OPT_MODEL,
  DG_OPT_LANGUAGE_CODE,
  DG_OPT_INTERIM_RESULTS,
  DG_OPT_ENDPOINTING_MS,
  DG_OPT_UTTERANCE_END_MS,
  DG_OPT_SMART_FORMAT,
  DG_OPT_PUNCTUATE,
  DG_OPT_KEYTERMS,
  DG_OPT_VAD_EVENTS,
  DG_OPT_EXTRA_PARAMS,
  DG_OPT_MAX_BACKLOG_MS,
  /* Deprecated names (docs/elements/README.md, "Migration"), kept for one
   * release: language, endpointing. */
  DG_OPT_DEPRECATED_LANGUAGE,
  DG_OPT_DEPRECATED_ENDPOINTING,
  DG_OPT_COUNT
} DgOption;

typedef struct
{
  gchar *api_key; /* NULL: $DEEPGRAM_API_KEY when the element starts */
  gchar *url;
  gchar *model;
  gchar *language;
  gboolean interim_results;
  guint endpointing_ms;
  guint utterance_end_ms;
  gboolean smart_format;
  gboolean punctuate;
  gchar **keyterms; /* NULL-terminated, never NULL */
  gboolean vad_events;
  gchar *extra_params;
  guint max_backlog_ms;
} DgOptions;

void dg_options_install (GObjectClass *klass, guint first_prop_id);
/* The struct's init (defaults from the pspecs), clear, deep copy, and set
 * and get (under the element's OBJECT_LOCK), all from the one table. */
extern GstVoiceOptionTable dg_options_table;
GST_VOICE_OPTIONS_DEFINE_ACCESSORS (dg, DgOptions, DgOption, dg_options_table)

G_END_DECLS

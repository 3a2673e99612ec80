/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Deepgram's live speech-to-text protocol (/v1/listen), without GStreamer:
 * the request URL, the server's messages, its error texts. Pure functions,
 * unit-tested on their own (tests/deepgram/test-protocol.c). */

/* What the request URL asks for; strings are borrowed. */
typedef struct
{
  const gchar *model;
  const gchar *language; /* NULL or "" for Deepgram's default */
  const gchar *encoding; /* "linear16" or "mulaw" */
  guint sample_rate;
  gboolean interim_results;
  guint endpointing_ms; /* 0: endpointing=false */
  guint utterance_end_ms; /* 0: not sent */
  gboolean smart_format;
  gboolean punctuate;
  gboolean vad_events;
  const gchar *const *keyterms; /* NULL-terminated, may be NULL */
  const gchar *extra_params; /* "a=1&b=2", appended as given; may be NULL */
} DgRequest;

gchar *dg_request_build_url (const gchar *base_url, const DgRequest *req);

typedef enum {
  DG_MESSAGE_UNKNOWN = 0,
  DG_MESSAGE_RESULTS,
  DG_MESSAGE_METADATA,
  DG_MESSAGE_SPEECH_STARTED,
  DG_MESSAGE_UTTERANCE_END,
  DG_MESSAGE_ERROR,
  DG_MESSAGE_WARNING,
} DgMessageType;

typedef struct
{
  gchar *word;
  gchar *punctuated_word; /* the word itself when Deepgram sent none */
  gdouble start; /* seconds of audio on the connection */
  gdouble end;
  gdouble confidence;
} DgWord;

/* One server message. Times are seconds of audio sent on the connection. */
typedef struct
{
  DgMessageType type;
  gchar *type_name; /* the "type" field as sent */

  /* Results */
  gdouble start;
  gdouble duration;
  gboolean is_final;
  gboolean speech_final;
  gboolean from_finalize;
  gchar *transcript; /* of the first alternative, never NULL for Results */
  gdouble confidence;
  GArray *words; /* of DgWord, never NULL for Results */

  /* SpeechStarted: timestamp; UtteranceEnd: last_word_end */
  gdouble timestamp;

  /* Metadata */
  gdouble metadata_duration;
  gchar *request_id; /* Results (metadata.request_id) and Metadata */

  /* Error / Warning: description, else message */
  gchar *description;
} DgMessage;

DgMessage *dg_message_parse (const gchar *data, gsize len, GError **error);
void dg_message_free (DgMessage *msg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgMessage, dg_message_free)

gchar *dg_error_text (const gchar *dg_error_header);
gboolean dg_close_reason_has (const gchar *reason, const gchar *code);

G_END_DECLS

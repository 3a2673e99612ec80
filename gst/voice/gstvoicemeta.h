/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstVoiceRole:
 * @GST_VOICE_ROLE_USER: words the caller said
 * @GST_VOICE_ROLE_AGENT: words the agent says
 */
typedef enum {
  GST_VOICE_ROLE_USER = 0,
  GST_VOICE_ROLE_AGENT = 1,
} GstVoiceRole;

#define GST_VOICE_TRANSCRIPT_META_API_TYPE                                     \
  (gst_voice_transcript_meta_api_get_type ())
#define GST_VOICE_TRANSCRIPT_META_INFO (gst_voice_transcript_meta_get_info ())

typedef struct _GstVoiceTranscriptMeta GstVoiceTranscriptMeta;

/**
 * GstVoiceTranscriptMeta:
 * @meta: parent
 * @role: who spoke the text
 * @is_final: the text of this span will not change any more
 * @speech_final: the speaker paused: this final result ends an utterance
 * @confidence: recogniser confidence 0..1 (1 for agent text)
 * @turn: conversation turn number the text belongs to
 *
 * Describes one `text/x-raw,format=utf8` buffer of conversation text.
 */
struct _GstVoiceTranscriptMeta
{
  GstMeta meta;

  GstVoiceRole role;
  gboolean is_final;
  gboolean speech_final;
  gfloat confidence;
  guint turn;
};

GType gst_voice_transcript_meta_api_get_type (void);
const GstMetaInfo *gst_voice_transcript_meta_get_info (void);

GstVoiceTranscriptMeta *gst_buffer_add_voice_transcript_meta (GstBuffer *buffer,
    GstVoiceRole role, gboolean is_final, gboolean speech_final,
    gfloat confidence, guint turn);

#define gst_buffer_get_voice_transcript_meta(b)                                \
  ((GstVoiceTranscriptMeta *)gst_buffer_get_meta (                             \
      (b), GST_VOICE_TRANSCRIPT_META_API_TYPE))

const gchar *gst_voice_role_to_string (GstVoiceRole role);

G_END_DECLS

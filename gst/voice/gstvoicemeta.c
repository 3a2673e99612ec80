/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:gstvoicemeta
 * @title: GstVoiceTranscriptMeta
 *
 * Describes a `text/x-raw,format=utf8` buffer of conversation text: who
 * said it, whether it is final, and which turn it belongs to. The meta has
 * no tags, so it survives every transform (copies, text converters): the
 * text it describes does not change meaning when the buffer is copied.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoicemeta.h"

GType
gst_voice_transcript_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("GstVoiceTranscriptMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
transcript_meta_init (GstMeta *meta, gpointer params, GstBuffer *buffer)
{
  GstVoiceTranscriptMeta *tmeta = (GstVoiceTranscriptMeta *)meta;

  tmeta->role = GST_VOICE_ROLE_USER;
  tmeta->is_final = FALSE;
  tmeta->speech_final = FALSE;
  tmeta->confidence = 0.0f;
  tmeta->turn = 0;
  return TRUE;
}

static gboolean
transcript_meta_transform (GstBuffer *dest, GstMeta *meta, GstBuffer *buffer,
    GQuark type, gpointer data)
{
  GstVoiceTranscriptMeta *src = (GstVoiceTranscriptMeta *)meta;

  /* Copies and any other transform keep the description: it is about the
   * words, not the memory layout. */
  return gst_buffer_add_voice_transcript_meta (dest, src->role, src->is_final,
             src->speech_final, src->confidence, src->turn) != NULL;
}

const GstMetaInfo *
gst_voice_transcript_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **)&info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_VOICE_TRANSCRIPT_META_API_TYPE,
            "GstVoiceTranscriptMeta", sizeof (GstVoiceTranscriptMeta),
            transcript_meta_init, NULL, transcript_meta_transform);
    g_once_init_leave ((GstMetaInfo **)&info, (GstMetaInfo *)mi);
  }
  return info;
}

/**
 * gst_buffer_add_voice_transcript_meta:
 * @buffer: a writable buffer
 *
 * Returns: (transfer none): the meta, owned by @buffer.
 */
GstVoiceTranscriptMeta *
gst_buffer_add_voice_transcript_meta (GstBuffer *buffer, GstVoiceRole role,
    gboolean is_final, gboolean speech_final, gfloat confidence, guint turn)
{
  GstVoiceTranscriptMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);

  meta = (GstVoiceTranscriptMeta *)gst_buffer_add_meta (
      buffer, GST_VOICE_TRANSCRIPT_META_INFO, NULL);
  meta->role = role;
  meta->is_final = is_final;
  meta->speech_final = speech_final;
  meta->confidence = confidence;
  meta->turn = turn;
  return meta;
}

const gchar *
gst_voice_role_to_string (GstVoiceRole role)
{
  return role == GST_VOICE_ROLE_AGENT ? "agent" : "user";
}

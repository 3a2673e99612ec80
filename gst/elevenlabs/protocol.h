/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The ElevenLabs wire format: URLs, the client messages of the multi-context
 * WebSocket (/v1/text-to-speech/{voice_id}/multi-stream-input) and of the
 * HTTP streaming fallback (/v1/text-to-speech/{voice_id}/stream), and the
 * parsing of what the server sends back. Pure functions: no GStreamer, no
 * network, so the unit tests cover them directly. */

typedef enum {
  EL_FORMAT_PCM_8000,
  EL_FORMAT_PCM_16000,
  EL_FORMAT_PCM_22050,
  EL_FORMAT_PCM_24000,
  EL_FORMAT_PCM_44100,
  EL_FORMAT_ULAW_8000,
} ElOutputFormat;

/* The `output_format` query value, e.g. "pcm_16000". */
const gchar *el_output_format_to_string (ElOutputFormat format);
guint el_output_format_rate (ElOutputFormat format);
gboolean el_output_format_is_ulaw (ElOutputFormat format);

typedef struct
{
  gdouble stability;
  gdouble similarity_boost;
  gdouble speed;
  /* chunk_length_schedule, NULL for the service default. */
  GArray *chunk_schedule; /* (element-type gint) */
} ElVoiceSettings;

/* Parses "120,160,250,290" (each 50..500, at most 8). An empty or NULL
 * string gives NULL (the service default). Returns FALSE on a bad value. */
gboolean el_chunk_schedule_parse (const gchar *text, GArray **schedule);

/* Returns (transfer full) the WebSocket URL of the multi-context endpoint
 * under @base (ws:// or wss://, an http(s):// base is mapped). */
gchar *el_ws_url (const gchar *base, const gchar *voice_id,
    const gchar *model_id, ElOutputFormat format, gboolean auto_mode,
    guint inactivity_timeout_s);
/* Returns (transfer full) the HTTP streaming URL under @base (a ws(s)://
 * base is mapped to http(s)://). */
gchar *el_http_stream_url (
    const gchar *base, const gchar *voice_id, ElOutputFormat format);

/* Client messages of the multi-context WebSocket; each returns a newly
 * allocated JSON text. @settings (nullable) go with a context's first
 * message: voice_settings and generation_config. */
gchar *el_msg_text (const gchar *context_id, const gchar *text,
    const ElVoiceSettings *settings);
gchar *el_msg_flush (const gchar *context_id);
gchar *el_msg_close_context (const gchar *context_id);
gchar *el_msg_keepalive (const gchar *context_id);
gchar *el_msg_close_socket (void);

/* Body of the HTTP streaming request; @previous_text (nullable) is what the
 * turn already said, for continuous prosody across requests. */
gchar *el_http_body (const gchar *text, const gchar *model_id,
    const ElVoiceSettings *settings, const gchar *previous_text);

typedef enum {
  EL_MSG_INVALID, /* not JSON, or not an object */
  EL_MSG_AUDIO, /* carries audio (is_final may be set too) */
  EL_MSG_FINAL, /* isFinal without audio: the context is done */
  EL_MSG_ERROR, /* an error frame: {"message", "error", "code"} */
  EL_MSG_OTHER, /* anything else: ignored */
} ElMsgType;

typedef struct
{
  ElMsgType type;
  gchar *context_id; /* contextId, NULL on the single-context endpoint */
  GBytes *audio; /* decoded base64, in the output format */
  gboolean is_final;
  /* Alignment of this chunk's audio: the characters as one string (NULL if
   * the message had none) and, per character, when it ends in ms from the
   * start of the chunk. */
  gchar *text;
  GArray *char_end_ms; /* (element-type gint) */
  gchar *
      error; /* error frames: machine-readable code, e.g. "input_timeout_exceeded" */
  gchar *message; /* error frames: human-readable text */
} ElServerMsg;

/* Fills @msg (zeroed by the caller) from one WebSocket text message;
 * returns its type. Clear with el_server_msg_clear(). */
ElMsgType el_server_msg_parse (const gchar *data, gsize len, ElServerMsg *msg);
void el_server_msg_clear (ElServerMsg *msg);

/* G.711 mu-law to S16LE; returns (transfer full) 2 * @len bytes. */
GBytes *el_ulaw_to_s16le (const guint8 *data, gsize len);

/* Characters other than whitespace in @text (UTF-8 characters). */
gsize el_count_nonspace (const gchar *text, gssize len);
/* Byte offset in @text after its first @nonspace non-whitespace characters
 * and the whitespace that follows them: where text not yet spoken by the
 * service begins, given how many characters its alignment covered. */
gsize el_offset_after_nonspace (const gchar *text, gsize nonspace);

G_END_DECLS

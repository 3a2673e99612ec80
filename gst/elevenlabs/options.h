/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

#include "synth.h"

G_BEGIN_DECLS

/**
 * GstElevenLabsInterruption:
 * @GST_ELEVENLABS_INTERRUPTION_VAD: `speech-start` (the caller talks over
 *   the agent) and `interrupt` both stop the agent
 * @GST_ELEVENLABS_INTERRUPTION_EVENT: only an `interrupt` event does
 * @GST_ELEVENLABS_INTERRUPTION_NONE: nothing does: every turn is spoken to
 *   the end (announcements)
 */
typedef enum {
  GST_ELEVENLABS_INTERRUPTION_VAD = 0,
  GST_ELEVENLABS_INTERRUPTION_EVENT = 1,
  GST_ELEVENLABS_INTERRUPTION_NONE = 2,
} GstElevenLabsInterruption;

#define GST_TYPE_ELEVENLABS_INTERRUPTION                                       \
  (gst_elevenlabs_interruption_get_type ())
GType gst_elevenlabs_interruption_get_type (void);
#define GST_TYPE_ELEVENLABS_OUTPUT_FORMAT                                      \
  (gst_elevenlabs_output_format_get_type ())
GType gst_elevenlabs_output_format_get_type (void);
#define GST_TYPE_ELEVENLABS_PROTOCOL (gst_elevenlabs_protocol_get_type ())
GType gst_elevenlabs_protocol_get_type (void);

/* The properties elevenlabssink, elevenlabssrc and the elevenlabs bin share,
 * with the same ids in all three. */
enum {
  EL_PROP_0,
  EL_PROP_API_KEY,
  EL_PROP_URL,
  EL_PROP_VOICE_ID,
  EL_PROP_MODEL_ID,
  EL_PROP_OUTPUT_FORMAT,
  EL_PROP_STABILITY,
  EL_PROP_SIMILARITY_BOOST,
  EL_PROP_SPEED,
  EL_PROP_CHUNK_LENGTH_SCHEDULE,
  EL_PROP_AUTO_MODE,
  EL_PROP_FLUSH_FIRST_CLAUSE,
  EL_PROP_PROTOCOL,
  EL_PROP_INACTIVITY_TIMEOUT_MS,
  EL_PROP_INTERRUPTION,
  EL_PROP_SESSION,
  /* Deprecated names (docs/elements/README.md, "Migration"), kept for one
   * release: inactivity-timeout (in seconds). */
  EL_PROP_DEPRECATED_INACTIVITY_TIMEOUT,
  EL_PROP_LAST /* element properties start here */
};

#define EL_DEFAULT_URL "wss://api.elevenlabs.io"
#define EL_DEFAULT_VOICE_ID "JBFqnCBsd6RMkjVDRZzb"
#define EL_DEFAULT_MODEL_ID "eleven_flash_v2_5"
#define EL_DEFAULT_OUTPUT_FORMAT EL_FORMAT_PCM_16000
#define EL_DEFAULT_STABILITY 0.5
#define EL_DEFAULT_SIMILARITY_BOOST 0.75
#define EL_DEFAULT_SPEED 1.0
#define EL_DEFAULT_AUTO_MODE TRUE
#define EL_DEFAULT_FLUSH_FIRST_CLAUSE TRUE
#define EL_DEFAULT_PROTOCOL EL_PROTOCOL_WEBSOCKET
#define EL_DEFAULT_INACTIVITY_TIMEOUT_MS 20000
#define EL_DEFAULT_INTERRUPTION GST_ELEVENLABS_INTERRUPTION_VAD
#define EL_DEFAULT_SESSION "default"
/* Defaults of the properties only one half has; the bin forwards them and
 * advertises the same defaults, so they live here once. */
#define EL_DEFAULT_TURN_TIMEOUT_MS 2000 /* elevenlabssink */
#define EL_DEFAULT_BUFFER_MS 20 /* elevenlabssrc */
#define EL_DEFAULT_PREBUFFER_MS 40 /* elevenlabssrc */

typedef struct
{
  /* The api-key property; synth.api_key is the key resolved from it (or
   * the environment) when the element starts. */
  gchar *api_key;
  ElSynthConfig synth;
  gchar *chunk_length_schedule;
  GstElevenLabsInterruption interruption;
  gchar *session;
} ElConfig;

void el_config_init (ElConfig *cfg);
void el_config_clear (ElConfig *cfg);
void el_config_install_properties (GObjectClass *klass);
/* The pspecs of the properties only one half has, for that half and the
 * bin. */
GParamSpec *el_pspec_turn_timeout_ms (void);
GParamSpec *el_pspec_buffer_ms (void);
GParamSpec *el_pspec_prebuffer_ms (void);
/* Both return FALSE for a property id that is not a shared one. Call with
 * the object lock held. */
gboolean el_config_set_property_locked (ElConfig *cfg, GObject *object,
    guint prop_id, const GValue *value, GParamSpec *pspec);
gboolean el_config_get_property_locked (
    ElConfig *cfg, guint prop_id, GValue *value);

/* Resolves the API key (property, else $ELEVENLABS_API_KEY) into
 * cfg->synth.api_key and checks what the service needs (and parses the
 * chunk schedule), so it runs when the element starts. Call
 * with the object lock held; post @error with el_config_post_error()
 * without it. */
gboolean el_config_validate_locked (ElConfig *cfg, GError **error);
void el_config_post_error (GstElement *element, const GError *error);

/* Whether @event (a conversation event) stops the agent under @mode. */
gboolean el_config_is_barge_in (
    GstElevenLabsInterruption mode, GstEvent *event);

G_END_DECLS

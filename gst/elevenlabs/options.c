/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The properties the two halves and the bin share. Installed by one helper
 * so all three elements document and validate them the same way; the bin
 * forwards each to both of its children. */

/* Locking order: no lock of its own. The _locked functions work on the
 * caller's ElConfig, which the element guards with OBJECT_LOCK; under it
 * only gst/voice's redaction lock is taken (the api-key property). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "options.h"
#include "gstvoiceredact.h"

#include <string.h>

GType
gst_elevenlabs_interruption_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    { GST_ELEVENLABS_INTERRUPTION_VAD,
        "speech-start from the VAD and interrupt events stop the agent",
        "vad" },
    { GST_ELEVENLABS_INTERRUPTION_EVENT, "Only interrupt events stop the agent",
        "event" },
    { GST_ELEVENLABS_INTERRUPTION_NONE, "Nothing stops the agent", "none" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (
        &type, g_enum_register_static ("GstElevenLabsInterruption", values));
  return type;
}

GType
gst_elevenlabs_output_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    { EL_FORMAT_PCM_8000, "PCM 8 kHz", "pcm_8000" },
    { EL_FORMAT_PCM_16000, "PCM 16 kHz", "pcm_16000" },
    { EL_FORMAT_PCM_22050, "PCM 22.05 kHz", "pcm_22050" },
    { EL_FORMAT_PCM_24000, "PCM 24 kHz", "pcm_24000" },
    { EL_FORMAT_PCM_44100, "PCM 44.1 kHz", "pcm_44100" },
    { EL_FORMAT_ULAW_8000, "G.711 mu-law 8 kHz (decoded to S16LE)",
        "ulaw_8000" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (
        &type, g_enum_register_static ("GstElevenLabsOutputFormat", values));
  return type;
}

GType
gst_elevenlabs_protocol_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    { EL_PROTOCOL_WEBSOCKET, "Multi-context WebSocket (stream-input)",
        "websocket" },
    { EL_PROTOCOL_HTTP, "HTTP streaming, one request per sentence", "http" },
    { 0, NULL, NULL },
  };

  if (g_once_init_enter (&type))
    g_once_init_leave (
        &type, g_enum_register_static ("GstElevenLabsProtocol", values));
  return type;
}

void
el_config_init (ElConfig *cfg)
{
  const gchar *key = g_getenv ("ELEVENLABS_API_KEY");

  memset (cfg, 0, sizeof (*cfg));
  cfg->synth.api_key = g_strdup (key && *key ? key : NULL);
  cfg->synth.url = g_strdup (EL_DEFAULT_URL);
  cfg->synth.voice_id = g_strdup (EL_DEFAULT_VOICE_ID);
  cfg->synth.model_id = g_strdup (EL_DEFAULT_MODEL_ID);
  cfg->synth.format = EL_DEFAULT_OUTPUT_FORMAT;
  cfg->synth.settings.stability = EL_DEFAULT_STABILITY;
  cfg->synth.settings.similarity_boost = EL_DEFAULT_SIMILARITY_BOOST;
  cfg->synth.settings.speed = EL_DEFAULT_SPEED;
  cfg->synth.auto_mode = EL_DEFAULT_AUTO_MODE;
  cfg->synth.flush_first_clause = EL_DEFAULT_FLUSH_FIRST_CLAUSE;
  cfg->synth.protocol = EL_DEFAULT_PROTOCOL;
  cfg->synth.inactivity_timeout_s = EL_DEFAULT_INACTIVITY_TIMEOUT;
  cfg->interruption = EL_DEFAULT_INTERRUPTION;
  cfg->session = g_strdup (EL_DEFAULT_SESSION);
}

void
el_config_clear (ElConfig *cfg)
{
  el_synth_config_clear (&cfg->synth);
  g_clear_pointer (&cfg->chunk_length_schedule, g_free);
  g_clear_pointer (&cfg->session, g_free);
}

#define RW_READY                                                               \
  (G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS)

void
el_config_install_properties (GObjectClass *klass)
{
  /* api-key: write-only, so gst-inspect and `gst-launch-1.0 -v` never print
   * it. */
  g_object_class_install_property (klass, EL_PROP_API_KEY,
      g_param_spec_string ("api-key", "API key",
          "ElevenLabs API key, sent as the xi-api-key header (default: the "
          "ELEVENLABS_API_KEY environment variable; never logged)",
          NULL,
          G_PARAM_WRITABLE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (klass, EL_PROP_URL,
      g_param_spec_string ("url", "URL",
          "Base URL of the service (wss:// or ws://; http(s):// for the same "
          "host also works)",
          EL_DEFAULT_URL, RW_READY));
  g_object_class_install_property (klass, EL_PROP_VOICE_ID,
      g_param_spec_string ("voice-id", "Voice ID",
          "ElevenLabs voice to speak with", EL_DEFAULT_VOICE_ID, RW_READY));
  g_object_class_install_property (klass, EL_PROP_MODEL_ID,
      g_param_spec_string ("model-id", "Model ID",
          "ElevenLabs model (eleven_flash_v2_5 has the lowest latency; "
          "eleven_v3 has no multi-context WebSocket)",
          EL_DEFAULT_MODEL_ID, RW_READY));
  g_object_class_install_property (klass, EL_PROP_OUTPUT_FORMAT,
      g_param_spec_enum ("output-format", "Output format",
          "Audio format asked of the service; the src outputs S16LE mono at "
          "its rate",
          GST_TYPE_ELEVENLABS_OUTPUT_FORMAT, EL_DEFAULT_OUTPUT_FORMAT,
          RW_READY));
  g_object_class_install_property (klass, EL_PROP_STABILITY,
      g_param_spec_double ("stability", "Stability",
          "Voice stability: lower is more expressive, higher more even", 0.0,
          1.0, EL_DEFAULT_STABILITY, RW_READY));
  g_object_class_install_property (klass, EL_PROP_SIMILARITY_BOOST,
      g_param_spec_double ("similarity-boost", "Similarity boost",
          "How closely to stick to the original voice", 0.0, 1.0,
          EL_DEFAULT_SIMILARITY_BOOST, RW_READY));
  g_object_class_install_property (klass, EL_PROP_SPEED,
      g_param_spec_double ("speed", "Speed",
          "Speaking rate (1.0 is normal; the service accepts 0.7 to 1.2)", 0.7,
          1.2, EL_DEFAULT_SPEED, RW_READY));
  g_object_class_install_property (klass, EL_PROP_CHUNK_LENGTH_SCHEDULE,
      g_param_spec_string ("chunk-length-schedule", "Chunk length schedule",
          "Characters buffered by the service before each generation, e.g. "
          "\"50,120,160,290\" (each 50 to 500; empty: the service default "
          "120,160,250,290; ignored with auto-mode)",
          NULL, RW_READY));
  g_object_class_install_property (klass, EL_PROP_AUTO_MODE,
      g_param_spec_boolean ("auto-mode", "Auto mode",
          "Let the service generate as soon as a sentence is complete instead "
          "of following the chunk length schedule (lowest latency for the "
          "clause-sized text an LLM streams)",
          EL_DEFAULT_AUTO_MODE, RW_READY));
  g_object_class_install_property (klass, EL_PROP_FLUSH_FIRST_CLAUSE,
      g_param_spec_boolean ("flush-first-clause", "Flush first clause",
          "Have the service speak the first text of each turn (the LLM's "
          "first clause) at once, without waiting for the sentence to end",
          EL_DEFAULT_FLUSH_FIRST_CLAUSE, RW_READY));
  g_object_class_install_property (klass, EL_PROP_PROTOCOL,
      g_param_spec_enum ("protocol", "Protocol",
          "WebSocket streaming, or HTTP streaming (one request per sentence) "
          "where WebSockets cannot be used",
          GST_TYPE_ELEVENLABS_PROTOCOL, EL_DEFAULT_PROTOCOL, RW_READY));
  g_object_class_install_property (klass, EL_PROP_INACTIVITY_TIMEOUT,
      g_param_spec_uint ("inactivity-timeout", "Inactivity timeout",
          "Seconds the service keeps an idle connection (inactivity_timeout); "
          "keep-alives go out at half of it between turns",
          1, 180, EL_DEFAULT_INACTIVITY_TIMEOUT, RW_READY));
  g_object_class_install_property (klass, EL_PROP_INTERRUPTION,
      g_param_spec_enum ("interruption", "Interruption",
          "What stops the agent mid-turn (barge-in)",
          GST_TYPE_ELEVENLABS_INTERRUPTION, EL_DEFAULT_INTERRUPTION,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
              G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (klass, EL_PROP_SESSION,
      g_param_spec_string ("session", "Session",
          "Name that pairs an elevenlabssink with an elevenlabssrc in the "
          "same process (set while in the NULL state)",
          EL_DEFAULT_SESSION, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));

  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_INTERRUPTION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_OUTPUT_FORMAT, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_PROTOCOL, 0);
}

static void
replace_string (gchar **dst, const GValue *value, const gchar *fallback)
{
  const gchar *s = g_value_get_string (value);

  g_free (*dst);
  *dst = g_strdup (s ? s : fallback);
}

gboolean
el_config_set_property_locked (ElConfig *cfg, GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  ElSynthConfig *sc = &cfg->synth;

  switch (prop_id) {
    case EL_PROP_API_KEY:
      replace_string (&sc->api_key, value, NULL);
      if (sc->api_key && *sc->api_key)
        gst_voice_redact_add_secret (sc->api_key);
      break;
    case EL_PROP_URL:
      replace_string (&sc->url, value, EL_DEFAULT_URL);
      break;
    case EL_PROP_VOICE_ID:
      replace_string (&sc->voice_id, value, EL_DEFAULT_VOICE_ID);
      break;
    case EL_PROP_MODEL_ID:
      replace_string (&sc->model_id, value, EL_DEFAULT_MODEL_ID);
      break;
    case EL_PROP_OUTPUT_FORMAT:
      sc->format = g_value_get_enum (value);
      break;
    case EL_PROP_STABILITY:
      sc->settings.stability = g_value_get_double (value);
      break;
    case EL_PROP_SIMILARITY_BOOST:
      sc->settings.similarity_boost = g_value_get_double (value);
      break;
    case EL_PROP_SPEED:
      sc->settings.speed = g_value_get_double (value);
      break;
    case EL_PROP_CHUNK_LENGTH_SCHEDULE:
      replace_string (&cfg->chunk_length_schedule, value, NULL);
      break;
    case EL_PROP_AUTO_MODE:
      sc->auto_mode = g_value_get_boolean (value);
      break;
    case EL_PROP_FLUSH_FIRST_CLAUSE:
      sc->flush_first_clause = g_value_get_boolean (value);
      break;
    case EL_PROP_PROTOCOL:
      sc->protocol = g_value_get_enum (value);
      break;
    case EL_PROP_INACTIVITY_TIMEOUT:
      sc->inactivity_timeout_s = g_value_get_uint (value);
      break;
    case EL_PROP_INTERRUPTION:
      cfg->interruption = g_value_get_enum (value);
      break;
    case EL_PROP_SESSION:
      replace_string (&cfg->session, value, EL_DEFAULT_SESSION);
      break;
    default:
      return FALSE;
  }
  return TRUE;
}

gboolean
el_config_get_property_locked (ElConfig *cfg, guint prop_id, GValue *value)
{
  ElSynthConfig *sc = &cfg->synth;

  switch (prop_id) {
    case EL_PROP_URL:
      g_value_set_string (value, sc->url);
      break;
    case EL_PROP_VOICE_ID:
      g_value_set_string (value, sc->voice_id);
      break;
    case EL_PROP_MODEL_ID:
      g_value_set_string (value, sc->model_id);
      break;
    case EL_PROP_OUTPUT_FORMAT:
      g_value_set_enum (value, sc->format);
      break;
    case EL_PROP_STABILITY:
      g_value_set_double (value, sc->settings.stability);
      break;
    case EL_PROP_SIMILARITY_BOOST:
      g_value_set_double (value, sc->settings.similarity_boost);
      break;
    case EL_PROP_SPEED:
      g_value_set_double (value, sc->settings.speed);
      break;
    case EL_PROP_CHUNK_LENGTH_SCHEDULE:
      g_value_set_string (value, cfg->chunk_length_schedule);
      break;
    case EL_PROP_AUTO_MODE:
      g_value_set_boolean (value, sc->auto_mode);
      break;
    case EL_PROP_FLUSH_FIRST_CLAUSE:
      g_value_set_boolean (value, sc->flush_first_clause);
      break;
    case EL_PROP_PROTOCOL:
      g_value_set_enum (value, sc->protocol);
      break;
    case EL_PROP_INACTIVITY_TIMEOUT:
      g_value_set_uint (value, sc->inactivity_timeout_s);
      break;
    case EL_PROP_INTERRUPTION:
      g_value_set_enum (value, cfg->interruption);
      break;
    case EL_PROP_SESSION:
      g_value_set_string (value, cfg->session);
      break;
    default:
      return FALSE;
  }
  return TRUE;
}

gboolean
el_config_validate_locked (ElConfig *cfg, GError **error)
{
  GArray *schedule = NULL;

  if (cfg->synth.api_key == NULL || *cfg->synth.api_key == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
        "No ElevenLabs API key: set ELEVENLABS_API_KEY or the api-key "
        "property.");
    return FALSE;
  }
  if (!el_chunk_schedule_parse (cfg->chunk_length_schedule, &schedule)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
        "chunk-length-schedule \"%s\" is not a list of numbers from 50 to "
        "500, e.g. \"50,120,160,290\".",
        cfg->chunk_length_schedule);
    return FALSE;
  }
  g_clear_pointer (&cfg->synth.settings.chunk_schedule, g_array_unref);
  cfg->synth.settings.chunk_schedule = schedule;
  return TRUE;
}

void
el_config_post_error (GstElement *element, const GError *error)
{
  gst_element_message_full (element, GST_MESSAGE_ERROR, error->domain,
      error->code, g_strdup (error->message), NULL, __FILE__, GST_FUNCTION,
      __LINE__);
}

gboolean
el_config_is_barge_in (GstElevenLabsInterruption mode, GstEvent *event)
{
  switch (gst_voice_event_get_voice_type (event)) {
    case GST_VOICE_EVENT_INTERRUPT:
      return mode != GST_ELEVENLABS_INTERRUPTION_NONE;
    case GST_VOICE_EVENT_SPEECH_START:
      return mode == GST_ELEVENLABS_INTERRUPTION_VAD;
    default:
      return FALSE;
  }
}

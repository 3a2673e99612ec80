/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The properties the two halves and the bin share. Installed by one helper
 * so all three elements document and validate them the same way; the bin
 * forwards each to both of its children. */

/* Locking order: no lock of its own. The _locked functions work on the
 * caller's ElConfig, which the element guards with OBJECT_LOCK; under it
 * only gst/voice's redaction lock is taken (the api-key property, and the
 * key read when validating). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "options.h"
#include "gstvoiceoptions.h"

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

#define RW_READY                                                               \
  (G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS)

/* The shared properties, by EL_PROP_ id; the bin and both halves install
 * the same pspecs, so the names, blurbs, ranges and defaults are here only. */
static GParamSpec *
make_pspec (guint prop_id)
{
  switch (prop_id) {
    case EL_PROP_API_KEY:
      /* Write-only, so gst-inspect and `gst-launch-1.0 -v` never print it.
       * Without it, $ELEVENLABS_API_KEY is read when the element starts, so
       * a key set after the element was made is used. */
      return g_param_spec_string ("api-key", "API key",
          "ElevenLabs API key, sent as the xi-api-key header (default: the "
          "ELEVENLABS_API_KEY environment variable; never logged)",
          NULL,
          G_PARAM_WRITABLE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS);
    case EL_PROP_URL:
      return g_param_spec_string ("url", "URL",
          "Base URL of the service (wss:// or ws://; http(s):// for the same "
          "host also works)",
          EL_DEFAULT_URL, RW_READY);
    case EL_PROP_VOICE_ID:
      return g_param_spec_string ("voice-id", "Voice ID",
          "ElevenLabs voice to speak with", EL_DEFAULT_VOICE_ID, RW_READY);
    case EL_PROP_MODEL_ID:
      return g_param_spec_string ("model-id", "Model ID",
          "ElevenLabs model (eleven_flash_v2_5 has the lowest latency; "
          "eleven_v3 has no multi-context WebSocket)",
          EL_DEFAULT_MODEL_ID, RW_READY);
    case EL_PROP_OUTPUT_FORMAT:
      return g_param_spec_enum ("output-format", "Output format",
          "Audio format asked of the service; the src outputs S16LE mono at "
          "its rate",
          GST_TYPE_ELEVENLABS_OUTPUT_FORMAT, EL_DEFAULT_OUTPUT_FORMAT,
          RW_READY);
    case EL_PROP_STABILITY:
      return g_param_spec_double ("stability", "Stability",
          "Voice stability: lower is more expressive, higher more even", 0.0,
          1.0, EL_DEFAULT_STABILITY, RW_READY);
    case EL_PROP_SIMILARITY_BOOST:
      return g_param_spec_double ("similarity-boost", "Similarity boost",
          "How closely to stick to the original voice", 0.0, 1.0,
          EL_DEFAULT_SIMILARITY_BOOST, RW_READY);
    case EL_PROP_SPEED:
      return g_param_spec_double ("speed", "Speed",
          "Speaking rate (1.0 is normal; the service accepts 0.7 to 1.2)", 0.7,
          1.2, EL_DEFAULT_SPEED, RW_READY);
    case EL_PROP_CHUNK_LENGTH_SCHEDULE:
      return g_param_spec_string ("chunk-length-schedule",
          "Chunk length schedule",
          "Characters buffered by the service before each generation, e.g. "
          "\"50,120,160,290\" (each 50 to 500; empty: the service default "
          "120,160,250,290; ignored with auto-mode)",
          NULL, RW_READY);
    case EL_PROP_AUTO_MODE:
      return g_param_spec_boolean ("auto-mode", "Auto mode",
          "Let the service generate as soon as a sentence is complete instead "
          "of following the chunk length schedule (lowest latency for the "
          "clause-sized text an LLM streams)",
          EL_DEFAULT_AUTO_MODE, RW_READY);
    case EL_PROP_FLUSH_FIRST_CLAUSE:
      return g_param_spec_boolean ("flush-first-clause", "Flush first clause",
          "Have the service speak the first text of each turn (the LLM's "
          "first clause) at once, without waiting for the sentence to end",
          EL_DEFAULT_FLUSH_FIRST_CLAUSE, RW_READY);
    case EL_PROP_PROTOCOL:
      return g_param_spec_enum ("protocol", "Protocol",
          "WebSocket streaming, or HTTP streaming (one request per sentence) "
          "where WebSockets cannot be used",
          GST_TYPE_ELEVENLABS_PROTOCOL, EL_DEFAULT_PROTOCOL, RW_READY);
    case EL_PROP_INACTIVITY_TIMEOUT_MS:
      /* Formerly inactivity-timeout, in seconds (still accepted,
       * deprecated): every duration property is in milliseconds, though
       * the service counts whole seconds. */
      return g_param_spec_uint ("inactivity-timeout-ms", "Inactivity timeout",
          "How long the service keeps an idle connection, in milliseconds "
          "(sent as inactivity_timeout, rounded up to whole seconds); "
          "keep-alives go out at half of it between turns",
          1000, 180000, EL_DEFAULT_INACTIVITY_TIMEOUT_MS, RW_READY);
    case EL_PROP_INTERRUPTION:
      return g_param_spec_enum ("interruption", "Interruption",
          "What stops the agent mid-turn (barge-in)",
          GST_TYPE_ELEVENLABS_INTERRUPTION, EL_DEFAULT_INTERRUPTION,
          G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
              G_PARAM_STATIC_STRINGS);
    case EL_PROP_SESSION:
      return g_param_spec_string ("session", "Session",
          "Name that pairs an elevenlabssink with an elevenlabssrc in the "
          "same process (set while in the NULL state)",
          EL_DEFAULT_SESSION, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
    default:
      break;
  }
  g_assert_not_reached ();
  return NULL;
}

static const GstVoiceOption options[] = {
  { G_STRUCT_OFFSET (ElConfig, api_key), GST_VOICE_OPTION_SECRET },
  { G_STRUCT_OFFSET (ElConfig, synth.url), GST_VOICE_OPTION_NULL_IS_DEFAULT },
  { G_STRUCT_OFFSET (ElConfig, synth.voice_id),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  { G_STRUCT_OFFSET (ElConfig, synth.model_id),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  { G_STRUCT_OFFSET (ElConfig, synth.format) },
  { G_STRUCT_OFFSET (ElConfig, synth.settings.stability) },
  { G_STRUCT_OFFSET (ElConfig, synth.settings.similarity_boost) },
  { G_STRUCT_OFFSET (ElConfig, synth.settings.speed) },
  { G_STRUCT_OFFSET (ElConfig, chunk_length_schedule) },
  { G_STRUCT_OFFSET (ElConfig, synth.auto_mode) },
  { G_STRUCT_OFFSET (ElConfig, synth.flush_first_clause) },
  { G_STRUCT_OFFSET (ElConfig, synth.protocol) },
  { G_STRUCT_OFFSET (ElConfig, synth.inactivity_timeout_ms) },
  { G_STRUCT_OFFSET (ElConfig, interruption) },
  { G_STRUCT_OFFSET (ElConfig, session), GST_VOICE_OPTION_NULL_IS_DEFAULT },
  GST_VOICE_OPTION_ALIAS (
      "inactivity-timeout", EL_PROP_INACTIVITY_TIMEOUT_MS - 1, 1000),
};
G_STATIC_ASSERT (G_N_ELEMENTS (options) == EL_PROP_LAST - 1);

/* Table ids start at 0, property ids at EL_PROP_API_KEY. */
static GParamSpec *
make_pspec_by_id (guint i)
{
  return make_pspec (i + 1);
}

static GstVoiceOptionTable table =
    GST_VOICE_OPTION_TABLE_INIT (options, make_pspec_by_id);

void
el_config_init (ElConfig *cfg)
{
  memset (cfg, 0, sizeof (*cfg));
  gst_voice_options_init (&table, cfg);
}

void
el_config_clear (ElConfig *cfg)
{
  gst_voice_options_clear (&table, cfg);
  el_synth_config_clear (&cfg->synth);
}

void
el_config_install_properties (GObjectClass *klass)
{
  gst_voice_options_install (&table, klass, EL_PROP_API_KEY);

  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_INTERRUPTION, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_OUTPUT_FORMAT, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_ELEVENLABS_PROTOCOL, 0);
}

/**
 * el_pspec_turn_timeout_ms:
 *
 * elevenlabssink's turn-timeout-ms, which the bin forwards and shows too.
 *
 * Returns: (transfer floating): a new pspec
 */
GParamSpec *
el_pspec_turn_timeout_ms (void)
{
  /**
   * GstElevenLabsSink:turn-timeout-ms:
   *
   * Ends the current turn when no text came for it for this long, so its
   * tail is spoken even if nothing upstream marks the end of the reply.
   */
  return g_param_spec_uint ("turn-timeout-ms", "Turn timeout",
      "End a turn (flush its tail) when its text stopped for this long, "
      "in milliseconds (0: only at a new turn, speech_final or EOS)",
      0, 60000, EL_DEFAULT_TURN_TIMEOUT_MS,
      G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS);
}

/**
 * el_pspec_buffer_ms:
 *
 * elevenlabssrc's buffer-ms, which the bin forwards and shows too.
 *
 * Returns: (transfer floating): a new pspec
 */
GParamSpec *
el_pspec_buffer_ms (void)
{
  /**
   * GstElevenLabsSrc:buffer-ms:
   *
   * Duration of each buffer; also the longest the agent goes on speaking
   * after a barge-in.
   */
  return g_param_spec_uint ("buffer-ms", "Buffer duration",
      "Duration of each output buffer, in milliseconds (the longest "
      "speech goes on after a barge-in)",
      5, 200, EL_DEFAULT_BUFFER_MS,
      G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY | G_PARAM_STATIC_STRINGS);
}

/**
 * el_pspec_prebuffer_ms:
 *
 * elevenlabssrc's prebuffer-ms, which the bin forwards and shows too.
 *
 * Returns: (transfer floating): a new pspec
 */
GParamSpec *
el_pspec_prebuffer_ms (void)
{
  /**
   * GstElevenLabsSrc:prebuffer-ms:
   *
   * Audio a turn must have queued before it starts (or resumes after an
   * underrun): absorbs network jitter.
   */
  return g_param_spec_uint ("prebuffer-ms", "Prebuffer",
      "Audio queued before a turn starts or resumes after an underrun, "
      "in milliseconds (absorbs network jitter)",
      0, 1000, EL_DEFAULT_PREBUFFER_MS,
      G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING | G_PARAM_STATIC_STRINGS);
}

gboolean
el_config_set_property_locked (ElConfig *cfg, GObject *object, guint prop_id,
    const GValue *value, GParamSpec *pspec)
{
  return prop_id > EL_PROP_0 &&
      gst_voice_options_set (&table, cfg, prop_id - 1, value);
}

gboolean
el_config_get_property_locked (ElConfig *cfg, guint prop_id, GValue *value)
{
  return prop_id > EL_PROP_0 &&
      gst_voice_options_get (&table, cfg, prop_id - 1, value);
}

gboolean
el_config_validate_locked (ElConfig *cfg, GError **error)
{
  static const gchar *const env_key[] = { "ELEVENLABS_API_KEY", NULL };
  GArray *schedule = NULL;

  g_free (cfg->synth.api_key);
  cfg->synth.api_key = gst_voice_api_key_resolve (cfg->api_key, env_key);
  if (cfg->synth.api_key == NULL) {
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
      /* A deferred one is decided upstream (llmtransform
       * interruption=confirmed), which sends agent-pause, agent-resume or
       * interrupt. */
      return mode == GST_ELEVENLABS_INTERRUPTION_VAD &&
          !gst_voice_event_is_barge_in_deferred (event);
    default:
      return FALSE;
  }
}

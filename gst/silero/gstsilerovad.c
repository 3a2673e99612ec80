/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-silerovad
 * @title: silerovad
 *
 * Voice activity detection with the Silero VAD v5 network, evaluated by our
 * own C code (no onnxruntime, no Python) from the weights in the official
 * silero_vad.onnx. Audio passes through unchanged; every 32 ms chunk
 * (512 samples at 16 kHz, 256 at 8 kHz) gets a speech probability, and a
 * hysteresis like Silero's own VADIterator turns the probabilities into
 * speech segments:
 *
 * - speech starts when a chunk reaches #GstSileroVad:threshold and the
 *   probability stays at or above #GstSileroVad:neg-threshold for
 *   #GstSileroVad:min-speech-ms;
 * - speech stops when the probability falls below
 *   #GstSileroVad:neg-threshold and does not reach
 *   #GstSileroVad:threshold again for #GstSileroVad:min-silence-ms.
 *
 * On each decision the element sends the shared `speech-start` (out of
 * band) or `speech-stop` (serialized) event downstream (see gstvoiceevents.h),
 * stamped with the running time at which speech really began or ended, not
 * the later time at which it was decided, and posts an element message
 * named `silerovad` with the event's fields:
 *
 * - `event` (string): `speech-start` or `speech-stop`
 * - `action` (string): `sent`
 * - `running-time` (guint64): where speech began / ended, in running time
 * - `decision-running-time` (guint64): running time of the end of the
 *   chunk that made the decision (minus `running-time`, the decision delay)
 * - `turn` (guint): 1 for the first utterance after the element started,
 *   then 2, ...
 * - `duration` (guint64, speech-stop only): length of the utterance
 * - `wallclock` (gint64): g_get_monotonic_time() when it was sent
 *
 * With #GstSileroVad:post-probabilities, one more `silerovad` message per
 * chunk carries `probability` (gdouble), `running-time` and `duration`
 * (guint64) of the chunk, and `speaking` (gboolean, the state after it).
 *
 * With #GstSileroVad:gate, audio outside speech is not sent: GAP events
 * take its place, so downstream (a speech-to-text service billed by the
 * second) sees only speech while timestamps stay continuous. A ring buffer
 * keeps the recent audio, so the #GstSileroVad:speech-pad-ms before the
 * detected onset is still sent when speech starts, and the first word is
 * never clipped; after the stop, audio up to #GstSileroVad:speech-pad-ms
 * past the end is sent too.
 *
 * The network state (LSTM and the 64-sample context) carries from chunk to
 * chunk and is reset at stream start, on flush, on a new segment and on a
 * discontinuity (an utterance in progress then gets its speech-stop, as at
 * EOS). Several complete chunks in one buffer share one pass over the
 * weights; no chunk waits for another.
 *
 * Accepted audio: mono S16LE or F32LE at 8000 or 16000 Hz; put
 * `audioconvert ! audioresample` in front for anything else.
 *
 * The model file is read once per process and shared by all instances
 * using the same path. A missing or unreadable model is an error when the
 * element starts: install it with `scripts/setup`.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=speech.wav ! wavparse ! audioconvert ! audioresample ! silerovad ! fakesink
 * ]| Prints a `silerovad` message at each speech start and stop.
 * |[
 * gst-launch-1.0 autoaudiosrc ! audioconvert ! audioresample ! silerovad gate=true ! deepgram ! fakesink
 * ]| Sends only speech (plus padding) to speech-to-text.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstsilerovad.h"
#include "model.h"

#include <errno.h>
#include <math.h>
#include <glib/gstdio.h>
#include <gst/audio/audio.h>
#include <string.h>
#include <voice.h>

GST_DEBUG_CATEGORY_STATIC (gst_silero_vad_debug);
#define GST_CAT_DEFAULT gst_silero_vad_debug

#define CAPS_STR                                                               \
  "audio/x-raw, format = (string) { S16LE, F32LE }, "                          \
  "rate = (int) { 16000, 8000 }, channels = (int) 1, "                         \
  "layout = (string) interleaved"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE (
    "sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS_STR));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE (
    "src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (CAPS_STR));

enum {
  PROP_0,
  PROP_MODEL,
  PROP_THRESHOLD,
  PROP_NEG_THRESHOLD,
  PROP_MIN_SPEECH_MS,
  PROP_MIN_SILENCE_MS,
  PROP_SPEECH_PAD_MS,
  PROP_GATE,
  PROP_POST_PROBABILITIES,
};

#define DEFAULT_MODEL VOICEAGENT_MODEL_DIR "/silero_vad.onnx"
#define DEFAULT_THRESHOLD 0.5
#define DEFAULT_NEG_THRESHOLD -1.0
#define DEFAULT_MIN_SPEECH_MS 96
#define DEFAULT_MIN_SILENCE_MS 500
#define DEFAULT_SPEECH_PAD_MS 300
#define DEFAULT_GATE FALSE
#define DEFAULT_POST_PROBABILITIES FALSE

/* Where the segmentation is; see the section comment. ONSET and OFFSET are
 * the undecided states in which min-speech / min-silence is being timed. */
typedef enum {
  VAD_SILENCE,
  VAD_ONSET,
  VAD_SPEECH,
  VAD_OFFSET,
} VadState;

/* The properties, copied under the object lock once per buffer. */
typedef struct
{
  gfloat threshold, neg_threshold;
  guint64 min_speech, min_silence, pad; /* in samples */
  gboolean gate, post_probabilities;
} Params;

/* A buffer held by the gate, and the stream sample at which it starts. */
typedef struct
{
  GstBuffer *buf;
  guint64 pos;
  guint64 len;
} Held;

struct _GstSileroVad
{
  GstBaseTransform parent;

  /* Properties: protected by the object lock. */
  gchar *model_path;
  gfloat threshold;
  gfloat neg_threshold;
  guint min_speech_ms, min_silence_ms, speech_pad_ms;
  gboolean gate, post_probabilities;

  /* Set in start(), cleared in stop(); streaming thread only in between. */
  SileroModel *model;

  /* Streaming thread only. */
  GstAudioInfo info;
  SileroState *net;
  gfloat *chunk; /* samples waiting for analysis (SILERO_MAX_BATCH chunks) */
  guint chunk_fill;
  guint chunk_size;
  gboolean synced; /* base_pts is valid */
  GstClockTime base_pts; /* PTS of stream sample 0 */
  guint64 pos; /* samples received since the last reset */
  guint64 analysed; /* samples handed to the network */
  VadState state;
  guint64 onset, offset; /* sample where speech began / ended */
  guint64 gate_until; /* the gate stays open until this sample */
  guint turn;
  GQueue held; /* Held *, oldest first */
  gboolean started_now; /* speech-start decided in the current buffer */
};

#define gst_silero_vad_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstSileroVad, gst_silero_vad, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (
    silerovad, "silerovad", GST_RANK_NONE, GST_TYPE_SILERO_VAD);

static void gst_silero_vad_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_silero_vad_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static void gst_silero_vad_finalize (GObject *object);
static gboolean gst_silero_vad_query (
    GstBaseTransform *trans, GstPadDirection direction, GstQuery *query);
static gboolean gst_silero_vad_accept_caps (
    GstBaseTransform *trans, GstPadDirection direction, GstCaps *caps);
static gboolean gst_silero_vad_set_caps (
    GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps);
static gboolean gst_silero_vad_start (GstBaseTransform *trans);
static gboolean gst_silero_vad_stop (GstBaseTransform *trans);
static GstFlowReturn gst_silero_vad_transform_ip (
    GstBaseTransform *trans, GstBuffer *buf);
static gboolean gst_silero_vad_sink_event (
    GstBaseTransform *trans, GstEvent *event);

static void
gst_silero_vad_class_init (GstSileroVadClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  const GParamFlags flags =
      G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING;

  GST_DEBUG_CATEGORY_INIT (
      gst_silero_vad_debug, "silerovad", 0, "Silero voice activity detection");

  gobject_class->set_property = gst_silero_vad_set_property;
  gobject_class->get_property = gst_silero_vad_get_property;
  gobject_class->finalize = gst_silero_vad_finalize;

  /**
   * GstSileroVad:model:
   *
   * The silero_vad.onnx (v5) to load when the element starts. The default
   * is $VOICEAGENT_MODEL_DIR/silero_vad.onnx when that variable is set,
   * else the copy in the installed tree the plugin was loaded from
   * (<prefix>/share/gst-voiceagent), else the file scripts/setup installs.
   */
  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "Path of silero_vad.onnx (Silero VAD v5; scripts/setup installs "
          "it). Read when the element starts",
          DEFAULT_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_READY));

  /**
   * GstSileroVad:threshold:
   *
   * Speech probability at or above which a chunk counts as speech. 0.5 is
   * Silero's own default, tuned on its validation sets.
   */
  g_object_class_install_property (gobject_class, PROP_THRESHOLD,
      g_param_spec_float ("threshold", "Threshold",
          "Speech probability at or above which a chunk is speech", 0.0, 1.0,
          DEFAULT_THRESHOLD, flags));

  /**
   * GstSileroVad:neg-threshold:
   *
   * Probability below which a chunk counts as silence; between the two
   * thresholds the current state holds (hysteresis). Negative means
   * threshold - 0.15, as in Silero.
   */
  g_object_class_install_property (gobject_class, PROP_NEG_THRESHOLD,
      g_param_spec_float ("neg-threshold", "Negative threshold",
          "Speech probability below which a chunk is silence; between the "
          "two thresholds nothing changes. Negative: threshold - 0.15",
          -1.0, 1.0, DEFAULT_NEG_THRESHOLD, flags));

  /**
   * GstSileroVad:min-speech-ms:
   *
   * How long speech must last before speech-start is sent. 96 ms (exactly
   * three chunks at either rate; the decision falls on a chunk boundary, so
   * 100 would wait for a fourth) ignores clicks and short noises yet keeps
   * barge-in quick; the event is stamped at the onset anyway.
   */
  g_object_class_install_property (gobject_class, PROP_MIN_SPEECH_MS,
      g_param_spec_uint ("min-speech-ms", "Minimum speech",
          "Speech shorter than this (in milliseconds) is ignored; "
          "speech-start is decided this long after the onset",
          0, 10000, DEFAULT_MIN_SPEECH_MS, flags));

  /**
   * GstSileroVad:min-silence-ms:
   *
   * How long silence must last before speech-stop is sent. 500 ms rides
   * over the pauses inside a sentence (mostly 150 - 400 ms) so a turn is
   * not cut in two, while still ending it quickly; the event is stamped at
   * the end of speech anyway.
   */
  g_object_class_install_property (gobject_class, PROP_MIN_SILENCE_MS,
      g_param_spec_uint ("min-silence-ms", "Minimum silence",
          "Silence shorter than this (in milliseconds) does not end speech; "
          "speech-stop is decided this long after the end",
          0, 10000, DEFAULT_MIN_SILENCE_MS, flags));

  /**
   * GstSileroVad:speech-pad-ms:
   *
   * With gate=true, audio sent before the detected onset and after the
   * detected end. Soft onsets (an "h", an "f") score low for a chunk or
   * two; 300 ms keeps them, so speech-to-text hears the whole first word.
   */
  g_object_class_install_property (gobject_class, PROP_SPEECH_PAD_MS,
      g_param_spec_uint ("speech-pad-ms", "Speech padding",
          "With gate=true, audio kept before the onset and after the end of "
          "speech (in milliseconds)",
          0, 5000, DEFAULT_SPEECH_PAD_MS, flags));

  /**
   * GstSileroVad:gate:
   *
   * Drop audio outside speech (plus speech-pad-ms) and send GAP events in
   * its place.
   */
  g_object_class_install_property (gobject_class, PROP_GATE,
      g_param_spec_boolean ("gate", "Gate",
          "Send only speech (plus speech-pad-ms on each side) downstream; "
          "GAP events replace the rest",
          DEFAULT_GATE, flags));

  /**
   * GstSileroVad:post-probabilities:
   *
   * Post a silerovad element message for every chunk with its speech
   * probability (for tests, tuning and debugging).
   */
  g_object_class_install_property (gobject_class, PROP_POST_PROBABILITIES,
      g_param_spec_boolean ("post-probabilities", "Post probabilities",
          "Post a silerovad message with the speech probability of every "
          "chunk (32 ms)",
          DEFAULT_POST_PROBABILITIES, flags));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Silero voice activity detector", "Filter/Analyzer/Audio",
      "Detects speech with Silero VAD v5 (plain C, no onnxruntime): sends "
      "speech-start / speech-stop events, posts silerovad messages, can "
      "gate out non-speech. Example: gst-launch-1.0 -m filesrc "
      "location=speech.wav ! wavparse ! audioconvert ! audioresample ! "
      "silerovad ! fakesink",
      "gst-voiceagent contributors");

  trans_class->query = GST_DEBUG_FUNCPTR (gst_silero_vad_query);
  trans_class->accept_caps = GST_DEBUG_FUNCPTR (gst_silero_vad_accept_caps);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_silero_vad_set_caps);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_silero_vad_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_silero_vad_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_silero_vad_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_silero_vad_sink_event);
  trans_class->transform_ip_on_passthrough = TRUE;
  trans_class->passthrough_on_same_caps = TRUE;
}

/* The model of the tree this plugin was installed in: an installed tree
 * is relocatable (a --destdir copy, /opt), so the data directory is found
 * from the plugin file, not from the prefix it was configured with. NULL
 * when the plugin is not in an installed layout (the build tree). */
static gchar *
installed_model_path (GstSileroVad *self)
{
  GstElementFactory *factory = gst_element_get_factory (GST_ELEMENT (self));
  GstPlugin *plugin = factory
      ? gst_plugin_feature_get_plugin (GST_PLUGIN_FEATURE (factory))
      : NULL;
  const gchar *file = plugin ? gst_plugin_get_filename (plugin) : NULL;
  gchar *dir, *path = NULL;

  if (file) {
    dir = g_path_get_dirname (file);
    path = g_build_filename (dir, VOICEAGENT_PLUGINS_TO_PREFIX,
        VOICEAGENT_REL_DATADIR, "silero_vad.onnx", NULL);
    g_free (dir);
    if (!g_file_test (path, G_FILE_TEST_EXISTS))
      g_clear_pointer (&path, g_free);
  }
  if (plugin)
    gst_object_unref (plugin);
  return path;
}

/* $VOICEAGENT_MODEL_DIR, else the installed tree's own copy, else the
 * configured data directory (where scripts/setup puts it). */
static gchar *
default_model_path (GstSileroVad *self)
{
  const gchar *dir = g_getenv ("VOICEAGENT_MODEL_DIR");
  gchar *installed;

  if (dir && *dir)
    return g_build_filename (dir, "silero_vad.onnx", NULL);
  installed = installed_model_path (self);
  return installed ? installed : g_strdup (DEFAULT_MODEL);
}

static void
gst_silero_vad_init (GstSileroVad *self)
{
  self->model_path = default_model_path (self);
  self->threshold = DEFAULT_THRESHOLD;
  self->neg_threshold = DEFAULT_NEG_THRESHOLD;
  self->min_speech_ms = DEFAULT_MIN_SPEECH_MS;
  self->min_silence_ms = DEFAULT_MIN_SILENCE_MS;
  self->speech_pad_ms = DEFAULT_SPEECH_PAD_MS;
  self->gate = DEFAULT_GATE;
  self->post_probabilities = DEFAULT_POST_PROBABILITIES;
  g_queue_init (&self->held);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
}

static void
gst_silero_vad_finalize (GObject *object)
{
  GstSileroVad *self = GST_SILERO_VAD (object);

  g_free (self->model_path);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_silero_vad_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstSileroVad *self = GST_SILERO_VAD (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      break;
    case PROP_THRESHOLD:
      self->threshold = g_value_get_float (value);
      break;
    case PROP_NEG_THRESHOLD:
      self->neg_threshold = g_value_get_float (value);
      break;
    case PROP_MIN_SPEECH_MS:
      self->min_speech_ms = g_value_get_uint (value);
      break;
    case PROP_MIN_SILENCE_MS:
      self->min_silence_ms = g_value_get_uint (value);
      break;
    case PROP_SPEECH_PAD_MS:
      self->speech_pad_ms = g_value_get_uint (value);
      break;
    case PROP_GATE:
      self->gate = g_value_get_boolean (value);
      break;
    case PROP_POST_PROBABILITIES:
      self->post_probabilities = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_silero_vad_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstSileroVad *self = GST_SILERO_VAD (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_THRESHOLD:
      g_value_set_float (value, self->threshold);
      break;
    case PROP_NEG_THRESHOLD:
      g_value_set_float (value, self->neg_threshold);
      break;
    case PROP_MIN_SPEECH_MS:
      g_value_set_uint (value, self->min_speech_ms);
      break;
    case PROP_MIN_SILENCE_MS:
      g_value_set_uint (value, self->min_silence_ms);
      break;
    case PROP_SPEECH_PAD_MS:
      g_value_set_uint (value, self->speech_pad_ms);
      break;
    case PROP_GATE:
      g_value_set_boolean (value, self->gate);
      break;
    case PROP_POST_PROBABILITIES:
      g_value_set_boolean (value, self->post_probabilities);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- Caps ----
 *
 * The templates say what we take. But a refused CAPS event or an empty
 * caps query only makes upstream fail with a bare "not-negotiated" (or
 * gst-launch with "could not link"), which does not tell the user what to
 * do. So when a caps query would answer nothing at all, we answer plain
 * audio/x-raw instead, and accept any raw audio: negotiation then goes on
 * to our CAPS event, which fails with an error naming the fix. Whenever
 * supported caps are possible the answer stays exact, so converters in
 * front (audioconvert ! audioresample) still pick a supported format. */

static gboolean
gst_silero_vad_query (
    GstBaseTransform *trans, GstPadDirection direction, GstQuery *query)
{
  GstCaps *filter, *caps;

  if (!GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query))
    return FALSE;
  if (GST_QUERY_TYPE (query) != GST_QUERY_CAPS)
    return TRUE;

  gst_query_parse_caps_result (query, &caps);
  if (caps && !gst_caps_is_empty (caps))
    return TRUE;
  gst_query_parse_caps (query, &filter);
  caps = gst_caps_new_empty_simple ("audio/x-raw");
  if (filter) {
    GstCaps *tmp =
        gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);

    gst_caps_unref (caps);
    caps = tmp;
  }
  GST_DEBUG_OBJECT (trans,
      "no supported caps possible, answering %" GST_PTR_FORMAT
      " to explain the failure later",
      caps);
  gst_query_set_caps_result (query, caps);
  gst_caps_unref (caps);
  return TRUE;
}

static gboolean
gst_silero_vad_accept_caps (
    GstBaseTransform *trans, GstPadDirection direction, GstCaps *caps)
{
  GstStructure *s;

  /* Let any raw audio through to the CAPS event, which explains a
   * refusal. */
  if (direction == GST_PAD_SINK && gst_caps_get_size (caps) == 1) {
    s = gst_caps_get_structure (caps, 0);
    if (gst_structure_has_name (s, "audio/x-raw"))
      return TRUE;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)
      ->accept_caps (trans, direction, caps);
}

/* Returns TRUE if @caps are ours; else posts an error that says what to
 * put in front of us (the base class would only fail with a warning). */
static gboolean
check_caps (GstSileroVad *self, GstCaps *caps)
{
  GstCaps *ok = gst_static_pad_template_get_caps (&sink_template);
  gboolean subset = gst_caps_is_subset (caps, ok);

  gst_caps_unref (ok);
  if (subset)
    return TRUE;
  GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
      ("silerovad takes mono S16LE or F32LE audio at 16000 or 8000 Hz: "
       "put \"audioconvert ! audioresample\" in front of it"),
      ("unsupported caps %" GST_PTR_FORMAT, caps));
  return FALSE;
}

static gboolean
gst_silero_vad_set_caps (
    GstBaseTransform *trans, GstCaps *incaps, GstCaps *outcaps)
{
  GstSileroVad *self = GST_SILERO_VAD (trans);

  if (!gst_audio_info_from_caps (&self->info, incaps))
    return FALSE;
  g_clear_pointer (&self->net, silero_state_free);
  self->net = silero_state_new (self->model, GST_AUDIO_INFO_RATE (&self->info));
  self->chunk_size = silero_state_get_chunk_size (self->net);
  g_free (self->chunk);
  self->chunk = g_new0 (gfloat, SILERO_MAX_BATCH * self->chunk_size);
  self->chunk_fill = 0;
  GST_DEBUG_OBJECT (self, "%d Hz %s, chunks of %u samples",
      GST_AUDIO_INFO_RATE (&self->info), GST_AUDIO_INFO_NAME (&self->info),
      self->chunk_size);
  return TRUE;
}

/* ---- Start / stop: the model ---- */

G_LOCK_DEFINE_STATIC (models);
static GHashTable *models; /* "path|size|mtime" -> SileroModel, never freed */

/* Returns: (transfer full): the model at @path, shared with every other
 * instance that loaded the same file (same path, size and mtime). */
static SileroModel *
get_model (const gchar *path, GError **error)
{
  GStatBuf st;
  gchar *key;
  SileroModel *model;

  if (g_stat (path, &st) != 0) {
    int saved = errno;

    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s",
        path, g_strerror (saved));
    return NULL;
  }
  key = g_strdup_printf ("%s|%" G_GINT64_FORMAT "|%" G_GINT64_FORMAT, path,
      (gint64)st.st_size, (gint64)st.st_mtime);
  G_LOCK (models);
  if (!models)
    models = g_hash_table_new_full (
        g_str_hash, g_str_equal, g_free, (GDestroyNotify)silero_model_unref);
  model = g_hash_table_lookup (models, key);
  if (model) {
    silero_model_ref (model);
    g_free (key);
  } else if ((model = silero_model_load (path, error))) {
    g_hash_table_insert (models, key, silero_model_ref (model));
  } else {
    g_free (key);
  }
  G_UNLOCK (models);
  return model;
}

static void reset (GstSileroVad *self);
static void drop_held (GstSileroVad *self);

static gboolean
gst_silero_vad_start (GstBaseTransform *trans)
{
  GstSileroVad *self = GST_SILERO_VAD (trans);
  gchar *path;
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->model_path);
  GST_OBJECT_UNLOCK (self);

  self->model = path ? get_model (path, &err) : NULL;
  if (!self->model) {
    if (!err || g_error_matches (err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
          ("Silero VAD model \"%s\" not found. Install it with scripts/setup "
           "(it puts silero_vad.onnx in %s), or point the model property "
           "or $VOICEAGENT_MODEL_DIR at a copy",
              GST_STR_NULL (path), VOICEAGENT_MODEL_DIR),
          ("%s", err ? err->message : "no path"));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, READ,
          ("Silero VAD model \"%s\" is not a usable silero_vad.onnx (v5). "
           "Reinstall it with scripts/setup",
              path),
          ("%s", err->message));
    g_clear_error (&err);
    g_free (path);
    return FALSE;
  }
  GST_DEBUG_OBJECT (self, "model %s, kernels %s, 16 kHz STFT by %s", path,
      silero_simd_get ()->name,
      silero_model_stft_is_dft (self->model, 16000) ? "FFT" : "convolution");
  g_free (path);
  reset (self);
  self->turn = 0;
  return TRUE;
}

static gboolean
gst_silero_vad_stop (GstBaseTransform *trans)
{
  GstSileroVad *self = GST_SILERO_VAD (trans);

  drop_held (self);
  g_clear_pointer (&self->net, silero_state_free);
  g_clear_pointer (&self->chunk, g_free);
  g_clear_pointer (&self->model, silero_model_unref);
  return TRUE;
}

/* ---- Time ---- */

static GstClockTime
samples_to_time (GstSileroVad *self, guint64 samples)
{
  return gst_util_uint64_scale_int (
      samples, GST_SECOND, GST_AUDIO_INFO_RATE (&self->info));
}

/* PTS of stream sample @pos (samples counted since the last reset). */
static GstClockTime
pos_to_pts (GstSileroVad *self, guint64 pos)
{
  return self->base_pts + samples_to_time (self, pos);
}

/* Running time of stream sample @pos, or GST_CLOCK_TIME_NONE outside the
 * segment (or without a TIME segment). */
static GstClockTime
pos_to_running_time (GstSileroVad *self, guint64 pos)
{
  const GstSegment *seg = &GST_BASE_TRANSFORM (self)->segment;

  if (seg->format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  return gst_segment_to_running_time (
      seg, GST_FORMAT_TIME, pos_to_pts (self, pos));
}

static void
get_params (GstSileroVad *self, Params *p)
{
  guint rate = GST_AUDIO_INFO_RATE (&self->info);

  GST_OBJECT_LOCK (self);
  p->threshold = self->threshold;
  p->neg_threshold = self->neg_threshold >= 0
      ? self->neg_threshold
      : MAX (self->threshold - 0.15f, 0.0f);
  p->min_speech = (guint64)self->min_speech_ms * rate / 1000;
  p->min_silence = (guint64)self->min_silence_ms * rate / 1000;
  p->pad = (guint64)self->speech_pad_ms * rate / 1000;
  p->gate = self->gate;
  p->post_probabilities = self->post_probabilities;
  GST_OBJECT_UNLOCK (self);
}

/* ---- Events and messages ---- */

static void
post (GstSileroVad *self, GstStructure *s)
{
  gst_element_post_message (
      GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), s));
}

/* Sends speech-start / speech-stop downstream for speech that began / ended
 * at stream sample @at, decided at sample @decided, and posts the
 * matching message. */
static void
send_decision (GstSileroVad *self, gboolean start, guint64 at, guint64 decided)
{
  GstClockTime rt = pos_to_running_time (self, at);
  GstEvent *event;
  GstStructure *s;

  if (start)
    self->turn++;
  event = start ? gst_voice_event_new_speech_start (rt, self->turn)
                : gst_voice_event_new_speech_stop (rt, self->turn);
  s = gst_voice_event_to_message_structure (event, "silerovad", "sent");
  gst_structure_set (s, "decision-running-time", G_TYPE_UINT64,
      (guint64)pos_to_running_time (self, decided), NULL);
  if (!start)
    gst_structure_set (s, "duration", G_TYPE_UINT64,
        (guint64)samples_to_time (self, at - self->onset), NULL);
  GST_INFO_OBJECT (self,
      "speech-%s at %" GST_TIME_FORMAT " (turn %u), "
      "decided %" GST_TIME_FORMAT " later",
      start ? "start" : "stop", GST_TIME_ARGS (rt), self->turn,
      GST_TIME_ARGS (samples_to_time (self, decided - at)));
  post (self, s);
  gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self), event);
}

static void
post_probability (GstSileroVad *self, gfloat p, guint64 at)
{
  GstClockTime rt = pos_to_running_time (self, at);
  GstClockTime end = pos_to_running_time (self, at + self->chunk_size);

  post (self,
      gst_structure_new ("silerovad", "probability", G_TYPE_DOUBLE, (gdouble)p,
          "running-time", G_TYPE_UINT64, (guint64)rt, "duration", G_TYPE_UINT64,
          (guint64)(end - rt), "speaking", G_TYPE_BOOLEAN,
          self->state >= VAD_SPEECH, NULL));
}

/* ---- Segmentation ---- */

/* Advances the hysteresis by one chunk [start, end) of probability @p;
 * sends the events of any decision. Mirrors Silero's VADIterator, plus
 * min-speech (which Silero applies only offline). */
static void
segment (
    GstSileroVad *self, const Params *prm, gfloat p, guint64 start, guint64 end)
{
  switch (self->state) {
    case VAD_SILENCE:
      if (p < prm->threshold)
        break;
      self->state = VAD_ONSET;
      self->onset = start;
      /* min-speech may already be met */
      G_GNUC_FALLTHROUGH;
    case VAD_ONSET:
      if (p < prm->neg_threshold) {
        self->state = VAD_SILENCE;
      } else if (end - self->onset >= MAX (prm->min_speech, 1)) {
        self->state = VAD_SPEECH;
        self->started_now = TRUE;
        send_decision (self, TRUE, self->onset, end);
      }
      break;
    case VAD_SPEECH:
      if (p >= prm->neg_threshold)
        break;
      self->state = VAD_OFFSET;
      self->offset = start;
      G_GNUC_FALLTHROUGH;
    case VAD_OFFSET:
      if (p >= prm->threshold) {
        self->state = VAD_SPEECH;
      } else if (p < prm->neg_threshold &&
          end - self->offset >= prm->min_silence) {
        self->state = VAD_SILENCE;
        self->gate_until = self->offset + prm->pad;
        send_decision (self, FALSE, self->offset, end);
      }
      break;
  }
}

/* Ends an utterance in progress at the end of the audio received (used on
 * EOS, discontinuities and new streams), so every start has a stop. */
static void
finish_speech (GstSileroVad *self)
{
  if (self->state >= VAD_SPEECH && self->synced)
    send_decision (self, FALSE,
        self->state == VAD_OFFSET ? self->offset : self->pos, self->pos);
  self->state = VAD_SILENCE;
}

/* Forgets the stream: network state, partial chunk, segmentation. The next
 * buffer's PTS becomes the time base. */
static void
reset (GstSileroVad *self)
{
  if (self->net)
    silero_state_reset (self->net);
  self->chunk_fill = 0;
  self->synced = FALSE;
  self->pos = self->analysed = 0;
  self->state = VAD_SILENCE;
  self->gate_until = 0;
}

/* ---- Gate ---- */

static void
push_gap (GstSileroVad *self, guint64 from, guint64 to)
{
  GstClockTime pts = pos_to_pts (self, from);

  if (to <= from)
    return;
  gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self),
      gst_event_new_gap (pts, pos_to_pts (self, to) - pts));
}

static void
drop_held (GstSileroVad *self)
{
  Held *h;

  while ((h = g_queue_pop_head (&self->held))) {
    gst_buffer_unref (h->buf);
    g_free (h);
  }
}

/* Replaces everything held by one GAP (the audio was not speech). */
static void
gap_held (GstSileroVad *self)
{
  Held *first = g_queue_peek_head (&self->held);
  Held *last = g_queue_peek_tail (&self->held);

  if (first)
    push_gap (self, first->pos, last->pos + last->len);
  drop_held (self);
}

/* Sends the held audio from stream sample @from on (a GAP for what is
 * before it), splitting the buffer that straddles @from. */
static GstFlowReturn
push_held (GstSileroVad *self, guint64 from)
{
  GstFlowReturn ret = GST_FLOW_OK;
  guint bpf = GST_AUDIO_INFO_BPF (&self->info);
  Held *h;

  while ((h = g_queue_pop_head (&self->held))) {
    GstBuffer *buf = h->buf;

    if (h->pos + h->len <= from) {
      push_gap (self, h->pos, h->pos + h->len);
      gst_buffer_unref (buf);
    } else {
      if (h->pos < from) {
        guint64 skip = from - h->pos;

        push_gap (self, h->pos, from);
        buf = gst_buffer_copy_region (
            h->buf, GST_BUFFER_COPY_ALL, skip * bpf, (h->len - skip) * bpf);
        gst_buffer_unref (h->buf);
        GST_BUFFER_PTS (buf) = pos_to_pts (self, from);
        GST_BUFFER_DURATION (buf) =
            pos_to_pts (self, h->pos + h->len) - GST_BUFFER_PTS (buf);
      }
      if (ret == GST_FLOW_OK)
        ret = gst_pad_push (GST_BASE_TRANSFORM_SRC_PAD (self), buf);
      else
        gst_buffer_unref (buf);
    }
    g_free (h);
  }
  return ret;
}

/* Holds @buf (at stream samples [@pos, @pos + @len)) and turns into GAPs
 * the held audio that can no longer be needed: more than pad + min-speech
 * + two chunks old (the onset of speech not yet confirmed is never older
 * than min-speech + a chunk + the partial chunk). */
static void
hold (GstSileroVad *self, const Params *prm, GstBuffer *buf, guint64 pos,
    guint64 len)
{
  guint64 keep = prm->pad + prm->min_speech + 2 * self->chunk_size;
  Held *h = g_new (Held, 1);

  h->buf = gst_buffer_ref (buf);
  h->pos = pos;
  h->len = len;
  g_queue_push_tail (&self->held, h);
  while ((h = g_queue_peek_head (&self->held)) &&
      h->pos + h->len + keep <= pos + len) {
    g_queue_pop_head (&self->held);
    push_gap (self, h->pos, h->pos + h->len);
    gst_buffer_unref (h->buf);
    g_free (h);
  }
}

static gboolean
gate_open (GstSileroVad *self)
{
  return self->state >= VAD_SPEECH || self->pos < self->gate_until;
}

/* Decides what happens to @buf ([@pos, self->pos) in stream samples) once
 * analysed: passed on (returns GST_FLOW_OK), or held (returns
 * GST_BASE_TRANSFORM_FLOW_DROPPED). */
static GstFlowReturn
apply_gate (GstSileroVad *self, const Params *prm, GstBuffer *buf, guint64 pos,
    gboolean was_open)
{
  GstFlowReturn ret;

  if (self->started_now) {
    guint64 from = self->onset > prm->pad ? self->onset - prm->pad : 0;

    ret = push_held (self, MIN (from, pos));
    return ret;
  }
  if (was_open || gate_open (self)) {
    gap_held (self);
    return GST_FLOW_OK;
  }
  hold (self, prm, buf, pos, self->pos - pos);
  return GST_BASE_TRANSFORM_FLOW_DROPPED;
}

/* ---- Data ---- */

/* Runs the network on the @n full chunks at the start of self->chunk (in
 * one batch: several chunks share one pass over the weights), advances
 * the segmentation, and keeps the partial chunk that follows. */
static void
run_chunks (GstSileroVad *self, const Params *prm, guint n)
{
  gfloat probs[SILERO_MAX_BATCH];

  silero_state_process_many (self->net, self->chunk, n, probs);
  for (guint c = 0; c < n; c++) {
    guint64 start = self->analysed;

    /* NaN or infinite F32 input would poison the LSTM state for good. */
    if (!isfinite (probs[c])) {
      GST_WARNING_OBJECT (self, "non-finite input, resetting the network");
      silero_state_reset (self->net);
      probs[c] = 0.0f;
    }
    self->analysed += self->chunk_size;
    segment (self, prm, probs[c], start, self->analysed);
    if (prm->post_probabilities)
      post_probability (self, probs[c], start);
  }
  self->chunk_fill -= n * self->chunk_size;
  memmove (self->chunk, self->chunk + n * self->chunk_size,
      self->chunk_fill * sizeof (gfloat));
}

/* Appends @n samples of @data (in the negotiated format) to the samples
 * waiting for analysis, and analyses every full chunk. */
static void
analyse (GstSileroVad *self, const Params *prm, const guint8 *data, gsize n)
{
  gboolean f32 = GST_AUDIO_INFO_FORMAT (&self->info) == GST_AUDIO_FORMAT_F32LE;
  guint cap = SILERO_MAX_BATCH * self->chunk_size;

  for (gsize i = 0; i < n;) {
    gsize take = MIN (n - i, cap - self->chunk_fill);
    gfloat *dst = self->chunk + self->chunk_fill;
    guint full;

    if (f32) {
      memcpy (dst, data + i * 4, take * 4);
    } else {
      for (gsize k = 0; k < take; k++)
        dst[k] = (gint16)GST_READ_UINT16_LE (data + (i + k) * 2) / 32768.0f;
    }
    self->chunk_fill += take;
    i += take;
    full = self->chunk_fill / self->chunk_size;
    if (full > 0 && (self->chunk_fill == cap || i == n))
      run_chunks (self, prm, full);
  }
}

static GstFlowReturn
gst_silero_vad_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  GstSileroVad *self = GST_SILERO_VAD (trans);
  GstMapInfo map;
  Params prm;
  guint64 pos;
  gboolean was_open;

  if (!self->net)
    return GST_FLOW_NOT_NEGOTIATED;
  get_params (self, &prm);
  if (GST_BUFFER_IS_DISCONT (buf) && self->synced) {
    GST_DEBUG_OBJECT (self, "discontinuity: resetting");
    finish_speech (self);
    gap_held (self);
    reset (self);
  }
  if (!self->synced) {
    if (GST_BUFFER_PTS_IS_VALID (buf))
      self->base_pts = GST_BUFFER_PTS (buf);
    else if (trans->segment.format == GST_FORMAT_TIME)
      self->base_pts = trans->segment.start;
    else
      self->base_pts = 0;
    self->synced = TRUE;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return GST_FLOW_ERROR;

  pos = self->pos;
  was_open = gate_open (self);
  self->started_now = FALSE;
  self->pos += map.size / GST_AUDIO_INFO_BPF (&self->info);
  analyse (self, &prm, map.data, self->pos - pos);
  gst_buffer_unmap (buf, &map);

  if (!prm.gate) {
    gap_held (self);
    return GST_FLOW_OK;
  }
  return apply_gate (self, &prm, buf, pos, was_open);
}

static gboolean
same_format (GstSileroVad *self, GstCaps *caps)
{
  GstAudioInfo info;

  return self->net && gst_audio_info_from_caps (&info, caps) &&
      gst_audio_info_is_equal (&info, &self->info);
}

static gboolean
gst_silero_vad_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  GstSileroVad *self = GST_SILERO_VAD (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      drop_held (self);
      reset (self);
      break;
    case GST_EVENT_STREAM_START:
    case GST_EVENT_SEGMENT:
    case GST_EVENT_EOS:
      /* A new stream or segment restarts the analysis and its time base
       * (handled before the base class stores the new segment, so the
       * stop is stamped in the old one). */
      finish_speech (self);
      gap_held (self);
      reset (self);
      break;
    case GST_EVENT_CAPS: {
      GstCaps *caps;

      gst_event_parse_caps (event, &caps);
      if (!check_caps (self, caps)) {
        gst_event_unref (event);
        return FALSE;
      }
      /* New audio format: the held buffers, the time base and the
       * network state belong to the old one. */
      if (!same_format (self, caps)) {
        finish_speech (self);
        gap_held (self);
        reset (self);
      }
      break;
    }
    default:
      /* FIXME: other serialized events overtake audio held by the gate
       * (at most pad + min-speech + 64 ms); none we know of cares. */
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

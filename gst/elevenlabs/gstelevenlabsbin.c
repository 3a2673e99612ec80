/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-elevenlabs
 * @title: elevenlabs
 * @see_also: elevenlabssink, elevenlabssrc
 *
 * Text in, speech out: an elevenlabssink and an elevenlabssrc paired on a
 * session name of their own, so a pipeline reads left to right:
 * `llmtransform ! elevenlabs ! audioconvert ! ...`. Text (with the shared
 * transcript meta) goes to ElevenLabs through the sink; the src plays the
 * speech as a clock-paced live stream with silence between turns. The
 * `speak` action signal speaks a text on the src's own connection (e.g. a
 * greeting).
 *
 * Every property is set on both children where both have it; see
 * elevenlabssink and elevenlabssrc for their meaning, bus messages
 * (structure names `elevenlabssink` and `elevenlabssrc`) and errors.
 *
 * ## Example launch line
 * |[
 * echo "Hello there, how can I help?" | gst-launch-1.0 fdsrc ! text/x-raw,format=utf8 ! elevenlabs ! audioconvert ! autoaudiosink
 * ]| Speaks a line of text and ends (with ELEVENLABS_API_KEY set).
 * |[
 * gst-launch-1.0 filesrc location=question.wav ! wavparse ! audioconvert ! audioresample ! silerovad ! deepgram ! llmtransform ! elevenlabs ! audioconvert ! autoaudiosink
 * ]| Answers a recorded question out loud (with ELEVENLABS_API_KEY,
 * DEEPGRAM_API_KEY and OPENAI_API_KEY set).
 */

/* Locking order: no lock of its own. Properties and `speak` are forwarded
 * to the children with no lock held; their locks are theirs (see
 * gstelevenlabssink.c and gstelevenlabssrc.c). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstelevenlabsbin.h"
#include "options.h"

#include <voice.h>

GST_DEBUG_CATEGORY_STATIC (gst_elevenlabs_bin_debug);
#define GST_CAT_DEFAULT gst_elevenlabs_bin_debug

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("audio/x-raw, format = (string) S16LE, "
                         "layout = (string) interleaved, channels = (int) 1, "
                         "rate = (int) { 8000, 16000, 22050, 24000, 44100 }"));

/* Properties of only one child, forwarded by name. */
enum {
  PROP_TURN_TIMEOUT_MS = EL_PROP_LAST,
  PROP_BUFFER_MS,
  PROP_PREBUFFER_MS,
};

enum {
  SIGNAL_SPEAK,
  LAST_SIGNAL,
};

static guint signals[LAST_SIGNAL];

struct _GstElevenLabsBin
{
  GstBin parent;

  /* Immutable after init: the children (owned by the bin). */
  GstElement *sink;
  GstElement *src;
};

#define gst_elevenlabs_bin_parent_class parent_class
G_DEFINE_TYPE (GstElevenLabsBin, gst_elevenlabs_bin, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE (
    elevenlabs, "elevenlabs", GST_RANK_NONE, GST_TYPE_ELEVENLABS_BIN);

static void gst_elevenlabs_bin_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_elevenlabs_bin_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);
static gboolean gst_elevenlabs_bin_speak (
    GstElevenLabsBin *self, const gchar *text);

static void
gst_elevenlabs_bin_class_init (GstElevenLabsBinClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_elevenlabs_bin_debug, "elevenlabs", 0,
      "ElevenLabs text-to-speech bin");

  gobject_class->set_property = gst_elevenlabs_bin_set_property;
  gobject_class->get_property = gst_elevenlabs_bin_get_property;

  el_config_install_properties (gobject_class);
  g_object_class_install_property (
      gobject_class, PROP_TURN_TIMEOUT_MS, el_pspec_turn_timeout_ms ());
  g_object_class_install_property (
      gobject_class, PROP_BUFFER_MS, el_pspec_buffer_ms ());
  g_object_class_install_property (
      gobject_class, PROP_PREBUFFER_MS, el_pspec_prebuffer_ms ());

  /**
   * GstElevenLabsBin::speak:
   * @bin: the element
   * @text: what to say
   *
   * Speaks @text on the src's own connection (see elevenlabssrc's `speak`).
   */
  signals[SIGNAL_SPEAK] = g_signal_new_class_handler ("speak",
      G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST | G_SIGNAL_ACTION,
      G_CALLBACK (gst_elevenlabs_bin_speak), NULL, NULL, NULL, G_TYPE_BOOLEAN,
      1, G_TYPE_STRING);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "ElevenLabs text-to-speech", "Filter/Text/Audio/Network",
      "Text in, clock-paced speech out: elevenlabssink and elevenlabssrc "
      "paired in one bin",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "echo \"Hello there.\" | gst-launch-1.0 fdsrc ! text/x-raw,format=utf8 "
      "! elevenlabs ! audioconvert ! autoaudiosink");
}

static void
add_ghost (GstElevenLabsBin *self, GstElement *child, const gchar *name)
{
  GstPad *target = gst_element_get_static_pad (child, name);
  GstPad *ghost = gst_ghost_pad_new_from_template (name, target,
      gst_element_class_get_pad_template (GST_ELEMENT_GET_CLASS (self), name));

  gst_object_unref (target);
  gst_element_add_pad (GST_ELEMENT (self), ghost);
}

static void
gst_elevenlabs_bin_init (GstElevenLabsBin *self)
{
  gchar *session = gst_voice_session_make_unique_name ("elevenlabs");

  self->sink = gst_element_factory_make ("elevenlabssink", "sink");
  self->src = gst_element_factory_make ("elevenlabssrc", "src");
  g_object_set (self->sink, "session", session, NULL);
  g_object_set (self->src, "session", session, NULL);
  g_free (session);
  gst_bin_add_many (GST_BIN (self), self->sink, self->src, NULL);
  add_ghost (self, self->sink, "sink");
  add_ghost (self, self->src, "src");
}

static void
gst_elevenlabs_bin_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstElevenLabsBin *self = GST_ELEVENLABS_BIN (object);

  switch (prop_id) {
    case PROP_TURN_TIMEOUT_MS:
      g_object_set_property (G_OBJECT (self->sink), pspec->name, value);
      break;
    case PROP_BUFFER_MS:
    case PROP_PREBUFFER_MS:
      g_object_set_property (G_OBJECT (self->src), pspec->name, value);
      break;
    default:
      if (prop_id > EL_PROP_0 && prop_id < EL_PROP_LAST) {
        g_object_set_property (G_OBJECT (self->sink), pspec->name, value);
        g_object_set_property (G_OBJECT (self->src), pspec->name, value);
      } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      }
      break;
  }
}

static void
gst_elevenlabs_bin_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstElevenLabsBin *self = GST_ELEVENLABS_BIN (object);

  switch (prop_id) {
    case PROP_BUFFER_MS:
    case PROP_PREBUFFER_MS:
      g_object_get_property (G_OBJECT (self->src), pspec->name, value);
      break;
    default:
      if (prop_id > EL_PROP_0 && prop_id <= PROP_TURN_TIMEOUT_MS)
        g_object_get_property (G_OBJECT (self->sink), pspec->name, value);
      else
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static gboolean
gst_elevenlabs_bin_speak (GstElevenLabsBin *self, const gchar *text)
{
  gboolean ok = FALSE;

  g_signal_emit_by_name (self->src, "speak", text, &ok);
  return ok;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:element-deepgram
 * @title: deepgram
 * @see_also: deepgramsink, deepgramsrc, silerovad, llmtransform
 *
 * Audio in, transcripts out: a bin holding a #deepgramsink and a
 * #deepgramsrc paired by a session name of their own, so a pipeline reads
 * left to right. Its properties are deepgramsink's Deepgram options and
 * deepgramsrc's `interim`; messages come from the two children (see their
 * pages): `deepgram-transcript`, `deepgram-connection`, `deepgram-usage`,
 * `deepgram-backlog`, and the conversation-event messages.
 *
 * The src side is live and pushes on its own thread: end-of-turn and the
 * forwarded speech-start / speech-stop / interrupt events come out of the
 * src pad in order with the transcripts.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav ! wavparse \
 *   ! deepgram url=ws://127.0.0.1:8790/v1/listen api-key=local ! fakesink
 * ]| Transcribes a sentence with voiceagent-emulator running on its default
 * port (from the source tree).
 * |[
 * gst-launch-1.0 -m autoaudiosrc ! audioconvert ! audioresample \
 *   ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! silerovad gate=true \
 *   ! deepgram ! fakesink dump=true
 * ]| Transcribes the microphone, sending audio only while someone speaks
 * (DEEPGRAM_API_KEY set).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voice.h"
#include "gstdeepgrambin.h"
#include "gstdeepgramsink.h"
#include "gstdeepgramsrc.h"
#include "options.h"
#include "turnoptions.h"

GST_DEBUG_CATEGORY_STATIC (deepgram_bin_debug);
#define GST_CAT_DEFAULT deepgram_bin_debug

enum {
  PROP_0,
  PROP_INTERIM,
  PROP_OPTIONS_FIRST,
  PROP_TURN_FIRST = PROP_OPTIONS_FIRST + DG_OPT_COUNT,
  PROP_LAST = PROP_TURN_FIRST + DG_TURN_OPT_COUNT,
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("audio/x-raw, format = (string) S16LE, "
                     "layout = (string) interleaved, "
                     "rate = (int) [ 8000, 48000 ], channels = (int) 1; "
                     "audio/x-mulaw, rate = (int) 8000, channels = (int) 1"));

static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC, GST_PAD_ALWAYS,
        GST_STATIC_CAPS ("text/x-raw, format = (string) utf8"));

struct _GstDeepgramBin
{
  GstBin parent;

  /* Set in init, immutable; owned by the bin */
  GstElement *sink;
  GstElement *src;
};

#define gst_deepgram_bin_parent_class parent_class
G_DEFINE_FINAL_TYPE (GstDeepgramBin, gst_deepgram_bin, GST_TYPE_BIN);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (deepgram, "deepgram", GST_RANK_NONE,
    GST_TYPE_DEEPGRAM_BIN, gst_voice_init ());

static void gst_deepgram_bin_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec);
static void gst_deepgram_bin_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);

static void
gst_deepgram_bin_class_init (GstDeepgramBinClass *klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->set_property = gst_deepgram_bin_set_property;
  gobject_class->get_property = gst_deepgram_bin_get_property;

  /**
   * GstDeepgramBin:interim:
   *
   * deepgramsrc's `interim`: also push interim results as buffers.
   */
  g_object_class_install_property (gobject_class, PROP_INTERIM,
      g_param_spec_boolean ("interim", "Interim",
          "Also push a buffer per interim result (needs interim-results=true)",
          DG_DEFAULT_INTERIM,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
              GST_PARAM_MUTABLE_PLAYING));
  dg_options_install (gobject_class, PROP_OPTIONS_FIRST);
  dg_turn_options_install (gobject_class, PROP_TURN_FIRST);

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class,
      "Deepgram speech-to-text", "Filter/Audio/Text/Network",
      "Transcribes audio with Deepgram live streaming: deepgramsink and "
      "deepgramsrc in one bin",
      "gst-voiceagent contributors");
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 -m filesrc location=tests/deepgram/data/order-pizza.wav "
      "! wavparse ! deepgram url=ws://127.0.0.1:8790/v1/listen api-key=local "
      "! fakesink");

  GST_DEBUG_CATEGORY_INIT (
      deepgram_bin_debug, "deepgram", 0, "Deepgram speech-to-text bin");
}

static void
add_ghost_pad (GstDeepgramBin *self, GstElement *child, const gchar *name,
    GstStaticPadTemplate *templ)
{
  GstPad *target = gst_element_get_static_pad (child, name);
  GstPadTemplate *t = gst_static_pad_template_get (templ);

  gst_element_add_pad (
      GST_ELEMENT (self), gst_ghost_pad_new_from_template (name, target, t));
  gst_object_unref (t);
  gst_object_unref (target);
}

static void
gst_deepgram_bin_init (GstDeepgramBin *self)
{
  gchar *session = gst_voice_session_make_unique_name ("deepgram");

  self->sink = g_object_new (
      GST_TYPE_DEEPGRAM_SINK, "name", "sink", "session", session, NULL);
  self->src = g_object_new (
      GST_TYPE_DEEPGRAM_SRC, "name", "src", "session", session, NULL);
  GST_DEBUG_OBJECT (self, "pairing its children by session %s", session);
  g_free (session);
  gst_bin_add_many (GST_BIN (self), self->sink, self->src, NULL);
  add_ghost_pad (self, self->sink, "sink", &sink_template);
  add_ghost_pad (self, self->src, "src", &src_template);
}

/* Properties live on the children; the bin forwards them by name. */
static GObject *
property_owner (GstDeepgramBin *self, guint prop_id)
{
  return G_OBJECT (prop_id == PROP_INTERIM || prop_id >= PROP_TURN_FIRST
          ? self->src
          : self->sink);
}

static void
gst_deepgram_bin_set_property (
    GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  GstDeepgramBin *self = GST_DEEPGRAM_BIN (object);

  if (prop_id == PROP_0 || prop_id >= PROP_LAST) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    return;
  }
  g_object_set_property (property_owner (self, prop_id), pspec->name, value);
}

static void
gst_deepgram_bin_get_property (
    GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  GstDeepgramBin *self = GST_DEEPGRAM_BIN (object);

  if (prop_id == PROP_0 || prop_id >= PROP_LAST) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    return;
  }
  g_object_get_property (property_owner (self, prop_id), pspec->name, value);
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * SECTION:gstvoiceevents
 * @title: Conversation events
 *
 * The custom events that carry conversation control alongside the media.
 * Every event's structure has the fields `running-time` (#GstClockTime, the
 * pipeline running time the event refers to, e.g. where speech really began)
 * and `turn` (#guint). Some carry more:
 *
 * - `end-of-turn`: `transcript` (string, the caller's final words)
 * - `interrupt`: `reason` (string, e.g. "vad", "user_interrupted")
 * - `spoken`: `text` (string, what the caller heard of the turn), `complete`
 *   (boolean, the whole turn was played)
 * - `turn-likely`: `transcript` (string, the caller's words so far)
 * - `agent-pause`: `reason` (string, e.g. "speech-start", "speculative")
 * - `speech-start` may carry `barge-in` = "deferred": an element upstream
 *   (llmtransform with `interruption=confirmed`) decides whether this is a
 *   barge-in and will send `agent-pause`, `agent-resume` or `interrupt`;
 *   elements downstream then leave their own barge-in to those events.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoiceevents.h"

typedef struct
{
  const gchar *name;
  GstEventType gst_type;
} VoiceEventInfo;

/* Indexed by GstVoiceEventType. speech-start and interrupt are out-of-band
 * so they overtake queued data: barge-in must act at once. speech-stop and
 * end-of-turn are serialized because they mark a point in the data. */
static const VoiceEventInfo voice_events[] = {
  [GST_VOICE_EVENT_NONE] = { NULL, GST_EVENT_UNKNOWN },
  [GST_VOICE_EVENT_SPEECH_START] = { GST_VOICE_EVENT_NAME_SPEECH_START,
      GST_EVENT_CUSTOM_DOWNSTREAM_OOB },
  [GST_VOICE_EVENT_SPEECH_STOP] = { GST_VOICE_EVENT_NAME_SPEECH_STOP,
      GST_EVENT_CUSTOM_DOWNSTREAM },
  [GST_VOICE_EVENT_END_OF_TURN] = { GST_VOICE_EVENT_NAME_END_OF_TURN,
      GST_EVENT_CUSTOM_DOWNSTREAM },
  [GST_VOICE_EVENT_INTERRUPT] = { GST_VOICE_EVENT_NAME_INTERRUPT,
      GST_EVENT_CUSTOM_DOWNSTREAM_OOB },
  [GST_VOICE_EVENT_SPOKEN] = { GST_VOICE_EVENT_NAME_SPOKEN,
      GST_EVENT_CUSTOM_UPSTREAM },
  [GST_VOICE_EVENT_TURN_LIKELY] = { GST_VOICE_EVENT_NAME_TURN_LIKELY,
      GST_EVENT_CUSTOM_DOWNSTREAM },
  [GST_VOICE_EVENT_TURN_RESUMED] = { GST_VOICE_EVENT_NAME_TURN_RESUMED,
      GST_EVENT_CUSTOM_DOWNSTREAM },
  [GST_VOICE_EVENT_PAUSE] = { GST_VOICE_EVENT_NAME_PAUSE,
      GST_EVENT_CUSTOM_DOWNSTREAM_OOB },
  [GST_VOICE_EVENT_RESUME] = { GST_VOICE_EVENT_NAME_RESUME,
      GST_EVENT_CUSTOM_DOWNSTREAM_OOB },
};

/**
 * gst_voice_event_type_get_name:
 *
 * Returns: (transfer none): the structure name of @type, or NULL for
 * %GST_VOICE_EVENT_NONE.
 */
const gchar *
gst_voice_event_type_get_name (GstVoiceEventType type)
{
  if (type <= GST_VOICE_EVENT_NONE || type > GST_VOICE_EVENT_LAST)
    return NULL;
  return voice_events[type].name;
}

/**
 * gst_voice_event_new:
 * @type: which event
 * @running_time: running time the event refers to, or GST_CLOCK_TIME_NONE
 * @turn: conversation turn number
 *
 * Returns: (transfer full): a new event of the right #GstEventType for @type.
 */
GstEvent *
gst_voice_event_new (
    GstVoiceEventType type, GstClockTime running_time, guint turn)
{
  GstStructure *s;

  g_return_val_if_fail (
      type > GST_VOICE_EVENT_NONE && type <= GST_VOICE_EVENT_LAST, NULL);

  s = gst_structure_new (voice_events[type].name, "running-time", G_TYPE_UINT64,
      (guint64)running_time, "turn", G_TYPE_UINT, turn, NULL);
  return gst_event_new_custom (voice_events[type].gst_type, s);
}

GstEvent *
gst_voice_event_new_speech_start (GstClockTime running_time, guint turn)
{
  return gst_voice_event_new (GST_VOICE_EVENT_SPEECH_START, running_time, turn);
}

GstEvent *
gst_voice_event_new_speech_stop (GstClockTime running_time, guint turn)
{
  return gst_voice_event_new (GST_VOICE_EVENT_SPEECH_STOP, running_time, turn);
}

GstEvent *
gst_voice_event_new_end_of_turn (
    GstClockTime running_time, guint turn, const gchar *transcript)
{
  GstEvent *event;

  event = gst_voice_event_new (GST_VOICE_EVENT_END_OF_TURN, running_time, turn);
  gst_structure_set (gst_event_writable_structure (event), "transcript",
      G_TYPE_STRING, transcript ? transcript : "", NULL);
  return event;
}

/* Sets a string field on a new event (transfer full in and out). */
static GstEvent *
with_string (GstEvent *event, const gchar *field, const gchar *value)
{
  gst_structure_set (gst_event_writable_structure (event), field, G_TYPE_STRING,
      value ? value : "", NULL);
  return event;
}

GstEvent *
gst_voice_event_new_turn_likely (
    GstClockTime running_time, guint turn, const gchar *transcript)
{
  return with_string (
      gst_voice_event_new (GST_VOICE_EVENT_TURN_LIKELY, running_time, turn),
      "transcript", transcript);
}

GstEvent *
gst_voice_event_new_pause (
    GstClockTime running_time, guint turn, const gchar *reason)
{
  return with_string (
      gst_voice_event_new (GST_VOICE_EVENT_PAUSE, running_time, turn), "reason",
      reason);
}

/**
 * gst_voice_event_mark_barge_in_deferred:
 * @speech_start: (transfer full): a `speech-start` event
 *
 * Returns: (transfer full): @speech_start (or a copy of it, when it was
 * shared) marked `barge-in` = "deferred".
 */
GstEvent *
gst_voice_event_mark_barge_in_deferred (GstEvent *speech_start)
{
  speech_start = GST_EVENT (
      gst_mini_object_make_writable (GST_MINI_OBJECT_CAST (speech_start)));
  return with_string (speech_start, "barge-in", "deferred");
}

/**
 * gst_voice_event_is_barge_in_deferred:
 *
 * Returns: TRUE if @event is a `speech-start` whose barge-in an element
 * upstream decides (gst_voice_event_mark_barge_in_deferred()).
 */
gboolean
gst_voice_event_is_barge_in_deferred (GstEvent *event)
{
  return gst_voice_event_get_voice_type (event) ==
      GST_VOICE_EVENT_SPEECH_START &&
      g_strcmp0 (gst_structure_get_string (
                     gst_event_get_structure (event), "barge-in"),
          "deferred") == 0;
}

GstEvent *
gst_voice_event_new_interrupt (
    GstClockTime running_time, guint turn, const gchar *reason)
{
  GstEvent *event;

  event = gst_voice_event_new (GST_VOICE_EVENT_INTERRUPT, running_time, turn);
  gst_structure_set (gst_event_writable_structure (event), "reason",
      G_TYPE_STRING, reason ? reason : "", NULL);
  return event;
}

GstEvent *
gst_voice_event_new_spoken (GstClockTime running_time, guint turn,
    const gchar *spoken_text, gboolean complete)
{
  GstEvent *event;

  event = gst_voice_event_new (GST_VOICE_EVENT_SPOKEN, running_time, turn);
  gst_structure_set (gst_event_writable_structure (event), "text",
      G_TYPE_STRING, spoken_text ? spoken_text : "", "complete", G_TYPE_BOOLEAN,
      complete, NULL);
  return event;
}

/**
 * gst_voice_event_get_voice_type:
 *
 * Returns: which conversation event @event is, or %GST_VOICE_EVENT_NONE.
 */
GstVoiceEventType
gst_voice_event_get_voice_type (GstEvent *event)
{
  const GstStructure *s;
  guint i;

  g_return_val_if_fail (GST_IS_EVENT (event), GST_VOICE_EVENT_NONE);

  s = gst_event_get_structure (event);
  if (s == NULL)
    return GST_VOICE_EVENT_NONE;

  for (i = GST_VOICE_EVENT_SPEECH_START; i <= GST_VOICE_EVENT_LAST; i++) {
    if (GST_EVENT_TYPE (event) == voice_events[i].gst_type &&
        gst_structure_has_name (s, voice_events[i].name))
      return (GstVoiceEventType)i;
  }
  return GST_VOICE_EVENT_NONE;
}

/**
 * gst_voice_event_parse:
 * @type: (out) (optional):
 * @running_time: (out) (optional):
 * @turn: (out) (optional):
 *
 * Returns: TRUE if @event is a conversation event (outputs are then set).
 */
gboolean
gst_voice_event_parse (GstEvent *event, GstVoiceEventType *type,
    GstClockTime *running_time, guint *turn)
{
  GstVoiceEventType t = gst_voice_event_get_voice_type (event);
  const GstStructure *s;
  guint64 rt = GST_CLOCK_TIME_NONE;
  guint n = 0;

  if (t == GST_VOICE_EVENT_NONE)
    return FALSE;

  s = gst_event_get_structure (event);
  gst_structure_get_uint64 (s, "running-time", &rt);
  gst_structure_get_uint (s, "turn", &n);
  if (type)
    *type = t;
  if (running_time)
    *running_time = rt;
  if (turn)
    *turn = n;
  return TRUE;
}

static gboolean
parse_with_string (GstEvent *event, GstVoiceEventType expected,
    const gchar *field, GstClockTime *running_time, guint *turn,
    const gchar **value)
{
  GstVoiceEventType t;

  if (!gst_voice_event_parse (event, &t, running_time, turn) || t != expected)
    return FALSE;
  if (value)
    *value = gst_structure_get_string (gst_event_get_structure (event), field);
  return TRUE;
}

/**
 * gst_voice_event_parse_end_of_turn:
 * @event: a conversation event
 * @running_time: (out) (optional): the running time it refers to
 * @turn: (out) (optional): its turn number
 * @transcript: (out) (optional) (transfer none): the words of the turn, valid while @event lives
 *
 * Returns: TRUE if @event is an `end-of-turn` event (outputs are then set).
 */
gboolean
gst_voice_event_parse_end_of_turn (GstEvent *event, GstClockTime *running_time,
    guint *turn, const gchar **transcript)
{
  return parse_with_string (event, GST_VOICE_EVENT_END_OF_TURN, "transcript",
      running_time, turn, transcript);
}

/**
 * gst_voice_event_parse_turn_likely:
 * @event: a conversation event
 * @running_time: (out) (optional): the running time it refers to
 * @turn: (out) (optional): its turn number
 * @transcript: (out) (optional) (transfer none): the words so far, valid while @event lives
 *
 * Returns: TRUE if @event is an `turn-likely` event (outputs are then set).
 */
gboolean
gst_voice_event_parse_turn_likely (GstEvent *event, GstClockTime *running_time,
    guint *turn, const gchar **transcript)
{
  return parse_with_string (event, GST_VOICE_EVENT_TURN_LIKELY, "transcript",
      running_time, turn, transcript);
}

/**
 * gst_voice_event_parse_interrupt:
 * @event: a conversation event
 * @running_time: (out) (optional): the running time it refers to
 * @turn: (out) (optional): its turn number
 * @reason: (out) (optional) (transfer none): why, valid while @event lives
 *
 * Returns: TRUE if @event is an `interrupt` event (outputs are then set).
 */
gboolean
gst_voice_event_parse_interrupt (GstEvent *event, GstClockTime *running_time,
    guint *turn, const gchar **reason)
{
  return parse_with_string (
      event, GST_VOICE_EVENT_INTERRUPT, "reason", running_time, turn, reason);
}

/**
 * gst_voice_event_parse_spoken:
 * @event: a conversation event
 * @running_time: (out) (optional): the running time it refers to
 * @turn: (out) (optional): its turn number
 * @spoken_text: (out) (optional) (transfer none): what the caller heard, valid while @event lives
 * @complete: (out) (optional): whether the whole reply was heard
 *
 * Returns: TRUE if @event is a `spoken` event (outputs are then set).
 */
gboolean
gst_voice_event_parse_spoken (GstEvent *event, GstClockTime *running_time,
    guint *turn, const gchar **spoken_text, gboolean *complete)
{
  if (!parse_with_string (event, GST_VOICE_EVENT_SPOKEN, "text", running_time,
          turn, spoken_text))
    return FALSE;
  if (complete) {
    *complete = FALSE;
    gst_structure_get_boolean (
        gst_event_get_structure (event), "complete", complete);
  }
  return TRUE;
}

/**
 * gst_voice_event_to_message_structure:
 * @event: a conversation event
 * @element_name: structure name of the bus message (the element's factory name)
 * @action: what the element did with it: "sent", "received", "forwarded", ...
 *
 * Builds the structure of the element message every element posts for each
 * conversation event it emits or acts on: all fields of the event, plus
 * `event` (its name), `action` and `wallclock` (monotonic µs, so the app can
 * measure latencies between elements).
 *
 * Returns: (transfer full): the structure, or NULL if @event is not a
 * conversation event.
 */
GstStructure *
gst_voice_event_to_message_structure (
    GstEvent *event, const gchar *element_name, const gchar *action)
{
  GstVoiceEventType type = gst_voice_event_get_voice_type (event);
  GstStructure *s;

  if (type == GST_VOICE_EVENT_NONE)
    return NULL;

  s = gst_structure_copy (gst_event_get_structure (event));
  gst_structure_set_name (s, element_name);
  gst_structure_set (s, "event", G_TYPE_STRING, voice_events[type].name,
      "action", G_TYPE_STRING, action, "wallclock", G_TYPE_INT64,
      g_get_monotonic_time (), NULL);
  return s;
}

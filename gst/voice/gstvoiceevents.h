/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstVoiceEventType:
 * @GST_VOICE_EVENT_NONE: not one of the conversation events
 * @GST_VOICE_EVENT_SPEECH_START: the caller started talking (downstream, out-of-band)
 * @GST_VOICE_EVENT_SPEECH_STOP: the caller stopped talking (downstream, serialized)
 * @GST_VOICE_EVENT_END_OF_TURN: the caller's turn is complete (downstream, serialized)
 * @GST_VOICE_EVENT_INTERRUPT: stop the agent now (downstream, out-of-band)
 * @GST_VOICE_EVENT_SPOKEN: how much of an agent turn the caller has heard
 *   (upstream, out-of-band; sent by the TTS source towards the LLM)
 * @GST_VOICE_EVENT_TURN_LIKELY: the caller paused where the turn may end;
 *   `transcript` holds the words so far (downstream, serialized; a reply
 *   may start speculatively)
 * @GST_VOICE_EVENT_TURN_RESUMED: the caller went on after a `turn-likely`:
 *   a speculative reply is void (downstream, serialized)
 * @GST_VOICE_EVENT_PAUSE: hold the agent's audio where it is, without
 *   dropping anything (downstream, out-of-band)
 * @GST_VOICE_EVENT_RESUME: play the held audio on (downstream, out-of-band)
 *
 * The conversation-control events every gst-voiceagent element understands.
 * Each carries the running time it refers to and a turn number; the structure
 * may carry extra fields (documented by the element that sends it).
 */
typedef enum {
  GST_VOICE_EVENT_NONE = 0,
  GST_VOICE_EVENT_SPEECH_START,
  GST_VOICE_EVENT_SPEECH_STOP,
  GST_VOICE_EVENT_END_OF_TURN,
  GST_VOICE_EVENT_INTERRUPT,
  GST_VOICE_EVENT_SPOKEN,
  GST_VOICE_EVENT_TURN_LIKELY,
  GST_VOICE_EVENT_TURN_RESUMED,
  GST_VOICE_EVENT_PAUSE,
  GST_VOICE_EVENT_RESUME,
} GstVoiceEventType;

#define GST_VOICE_EVENT_LAST GST_VOICE_EVENT_RESUME

/* Structure names, also used as bus-message field values. */
#define GST_VOICE_EVENT_NAME_SPEECH_START "speech-start"
#define GST_VOICE_EVENT_NAME_SPEECH_STOP "speech-stop"
#define GST_VOICE_EVENT_NAME_END_OF_TURN "end-of-turn"
#define GST_VOICE_EVENT_NAME_INTERRUPT "interrupt"
#define GST_VOICE_EVENT_NAME_SPOKEN "spoken"
#define GST_VOICE_EVENT_NAME_TURN_LIKELY "turn-likely"
#define GST_VOICE_EVENT_NAME_TURN_RESUMED "turn-resumed"
#define GST_VOICE_EVENT_NAME_PAUSE "agent-pause"
#define GST_VOICE_EVENT_NAME_RESUME "agent-resume"

GstEvent *gst_voice_event_new (
    GstVoiceEventType type, GstClockTime running_time, guint turn);

GstEvent *gst_voice_event_new_speech_start (
    GstClockTime running_time, guint turn);
GstEvent *gst_voice_event_new_speech_stop (
    GstClockTime running_time, guint turn);
GstEvent *gst_voice_event_new_end_of_turn (
    GstClockTime running_time, guint turn, const gchar *transcript);
GstEvent *gst_voice_event_new_interrupt (
    GstClockTime running_time, guint turn, const gchar *reason);
GstEvent *gst_voice_event_new_spoken (GstClockTime running_time, guint turn,
    const gchar *spoken_text, gboolean complete);

GstEvent *gst_voice_event_new_turn_likely (
    GstClockTime running_time, guint turn, const gchar *transcript);
GstEvent *gst_voice_event_new_pause (
    GstClockTime running_time, guint turn, const gchar *reason);

GstEvent *gst_voice_event_mark_barge_in_deferred (GstEvent *speech_start);
gboolean gst_voice_event_is_barge_in_deferred (GstEvent *event);

GstVoiceEventType gst_voice_event_get_voice_type (GstEvent *event);

gboolean gst_voice_event_parse (GstEvent *event, GstVoiceEventType *type,
    GstClockTime *running_time, guint *turn);

gboolean gst_voice_event_parse_end_of_turn (GstEvent *event,
    GstClockTime *running_time, guint *turn, const gchar **transcript);
gboolean gst_voice_event_parse_turn_likely (GstEvent *event,
    GstClockTime *running_time, guint *turn, const gchar **transcript);
gboolean gst_voice_event_parse_interrupt (GstEvent *event,
    GstClockTime *running_time, guint *turn, const gchar **reason);
gboolean gst_voice_event_parse_spoken (GstEvent *event,
    GstClockTime *running_time, guint *turn, const gchar **spoken_text,
    gboolean *complete);

const gchar *gst_voice_event_type_get_name (GstVoiceEventType type);

GstStructure *gst_voice_event_to_message_structure (
    GstEvent *event, const gchar *element_name, const gchar *action);

G_END_DECLS

/* voiceagent: a call's conversation as the elements report it on the bus:
 * caller events, per-turn latencies, the transcript and usage.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "metrics.h"

G_BEGIN_DECLS

typedef struct _VaConversation VaConversation;

typedef struct
{
  /* A data-channel event for the caller (JSON object text). */
  void (*send) (const gchar *json, gpointer user_data);
  /* A latency sample: stt, llm_ttft, tts_ttfb or voice_to_voice. */
  void (*observe) (const gchar *name, gdouble seconds, gpointer user_data);
  /* The agent's audio ran dry mid-turn (an elevenlabssrc `underrun`). */
  void (*underrun) (gpointer user_data);
  /* The model called the end_call tool and its goodbye was heard: hang
   * up. Called from va_conversation_handle(): must not free the
   * conversation before it returns. */
  void (*end_call) (gpointer user_data);
} VaConversationOutput;

VaConversation *va_conversation_new (
    const VaConversationOutput *output, gpointer user_data);
void va_conversation_free (VaConversation *conv);

/* Consumes one element message of the call's pipeline. Main context. */
void va_conversation_handle (VaConversation *conv, const GstStructure *s);

/* A resumed call: the transcript and turns so far (as
 * va_conversation_transcript_json() and va_conversation_turns_json() wrote
 * them; either may be NULL) open this one's, and its turns are numbered on
 * from the last. */
void va_conversation_restore (
    VaConversation *conv, const gchar *transcript, const gchar *turns);

/* [{"role","text","t","turn"}], t in seconds since the conversation began. */
gchar *va_conversation_transcript_json (VaConversation *conv);
/* [{"turn","stt_ms","llm_ttft_ms","tts_ttfb_ms","voice_to_voice_ms"}] */
gchar *va_conversation_turns_json (VaConversation *conv);
const VaUsage *va_conversation_get_usage (VaConversation *conv);
guint va_conversation_get_turn (VaConversation *conv);

G_END_DECLS

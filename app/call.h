/* voiceagent: one call: its pipeline, its caller and its WHEP listeners.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include "vaconfig.h"
#include "peer.h"
#include "recorder.h"
#include "template.h"
#include "rtplink.h"

G_BEGIN_DECLS

typedef struct _VaCall VaCall;

typedef enum {
  VA_CALL_END_HANGUP, /* DELETE */
  VA_CALL_END_NEGOTIATION, /* no answer could be made */
  VA_CALL_END_ICE_FAILED,
  VA_CALL_END_DISCONNECTED, /* ICE disconnected past the timeout */
  VA_CALL_END_ERROR, /* pipeline error */
  VA_CALL_END_MAX_DURATION,
  VA_CALL_END_SHUTDOWN,
  VA_CALL_END_NEVER_CONNECTED, /* no ICE connection within --connect-timeout */
  VA_CALL_END_AGENT_HANGUP, /* the model called the end_call tool */
} VaCallEndReason;

const gchar *va_call_end_reason_name (VaCallEndReason reason);

typedef struct
{
  /* The caller's answer is ready, or negotiation failed. Once. */
  void (*answered) (VaCall *call, const gchar *answer_sdp, const GError *error,
      gpointer user_data);
  /* The call ended and released everything; free it now. Once. */
  void (*ended) (VaCall *call, VaCallEndReason reason, const gchar *detail,
      gpointer user_data);
  /* An element message from the pipeline (transcripts, VAD, metrics). */
  void (*message) (VaCall *call, const GstStructure *s, gpointer user_data);
  /* Gateway mode: the gateway's first datagram reached the call, so the
   * caller's media flows here now. Once; may be NULL. */
  void (*first_media) (VaCall *call, gpointer user_data);
} VaCallCallbacks;

/* Everything runs on the main context. */
VaCall *va_call_new (const gchar *id, const VaConfig *config,
    const VaCallCallbacks *callbacks, gpointer user_data);
void va_call_free (VaCall *call);

/* Before va_call_start: the resume token the data channel's "call" event
 * tells the caller, and the conversation (llmtransform `history`) the
 * call goes on from. */
void va_call_set_resume_token (VaCall *call, const gchar *token);
/* Before va_call_start: the call's capability (docs/http-api.md,
 * "Authorization"), told to the caller in the "call" event. */
void va_call_set_call_token (VaCall *call, const gchar *token);
void va_call_set_history (VaCall *call, const gchar *history_json);
/* Before va_call_start: record the call into @dir (recorder.h), at most
 * @max_bytes (0: no bound). */
void va_call_set_recording (VaCall *call, const gchar *dir, guint64 max_bytes);
/* In and after ended(): the call's recording (path NULL: none). */
const VaRecording *va_call_get_recording (VaCall *call);
/* The LLM's conversation so far (JSON chat messages; free it), or NULL
 * when the template has no llmtransform named "llm". */
gchar *va_call_get_history (VaCall *call);

/* Builds the pipeline from @tmpl with @vars and answers @offer (taken). */
gboolean va_call_start (VaCall *call, const VaTemplate *tmpl, GHashTable *vars,
    VaOffer *offer, GError **error);

/* Gateway mode: builds the pipeline from the RTP template @tmpl and links
 * it to the gateway through @link (taken), whose socket @vars' RTP_HOST
 * and RTP_PORT already name the far end of. No answer: the gateway holds
 * the caller's peer connection. */
gboolean va_call_start_rtp (VaCall *call, const VaTemplate *tmpl,
    GHashTable *vars, VaRtpLink *link, GError **error);

/* Ends the call; ended() follows once the pipeline is down. */
void va_call_end (VaCall *call, VaCallEndReason reason, const gchar *detail);

const gchar *va_call_get_id (VaCall *call);
VaPeer *va_call_get_peer (VaCall *call);
gboolean va_call_is_ending (VaCall *call);
gint64 va_call_get_start_time (VaCall *call);

/* Sends a JSON text to the caller over the data channel, if it is open. */
void va_call_send_json (VaCall *call, const gchar *json);

/* Data channel input from the caller, also callable by the server. */
void va_call_interrupt (VaCall *call, const gchar *reason);
void va_call_user_speech (VaCall *call, gboolean speaking);
void va_call_push_user_text (VaCall *call, const gchar *text);

/* WHEP: a listener hears the caller and the agent mixed. */
typedef void (*VaListenerAnswered) (VaCall *call, const gchar *listener_id,
    const gchar *answer_sdp, const GError *error, gpointer user_data);
gboolean va_call_add_listener (VaCall *call, const gchar *listener_id,
    VaOffer *offer, VaListenerAnswered answered, gpointer user_data,
    GError **error);
VaPeer *va_call_get_listener (VaCall *call, const gchar *listener_id);
gboolean va_call_remove_listener (VaCall *call, const gchar *listener_id);

G_END_DECLS

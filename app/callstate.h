/* voiceagent: a call's live state in Redis, for resuming it elsewhere.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "redisstate.h"

G_BEGIN_DECLS

/* While a call lives its key expires VA_CALL_STATE_LIVE_TTL_S after the
 * last write (refreshed at least every VA_CALL_STATE_REFRESH_S); once it
 * ended, VA_CALL_STATE_ENDED_TTL_S after the end. */
#define VA_CALL_STATE_LIVE_TTL_S 300
#define VA_CALL_STATE_REFRESH_S 60
#define VA_CALL_STATE_ENDED_TTL_S 3600

/* A call as Redis holds it. */
typedef struct
{
  gchar *owner; /* instance id that runs it */
  gchar *call_id;
  gchar *agent; /* template name */
  gchar *vars; /* template variables, JSON object */
  gchar *state; /* "live" or "ended" */
  gchar *end_reason; /* when ended */
  gchar *history; /* the LLM's conversation, JSON chat messages */
  gchar *transcript; /* [{"role","text","t","turn"}] */
  gchar *turns; /* per-turn metrics */
  gint64 started_us; /* wall clock of the first start */
  guint resumes; /* times it moved */
} VaStoredCall;

void va_stored_call_free (VaStoredCall *call);

/* Makes @owner the call's owner (a new or a resumed call) and writes
 * @fields (name, value, ..., NULL), state "live". */
void va_call_state_claim (VaRedis *redis, const gchar *token,
    const gchar *owner, const gchar *const *fields);
/* Writes @fields if @owner still owns the call (a call resumed elsewhere
 * is not overwritten by its old instance) and refreshes the TTL. */
void va_call_state_update (VaRedis *redis, const gchar *token,
    const gchar *owner, const gchar *const *fields);
/* The call ended: state "ended", @reason, and the ended TTL. */
void va_call_state_end (VaRedis *redis, const gchar *token, const gchar *owner,
    const gchar *reason);

/* @call is NULL (and @error NULL) when the token is unknown or expired;
 * @error is set when Redis could not answer. Main context; @call is
 * yours. */
typedef void (*VaCallStateLoaded) (
    VaStoredCall *call, const GError *error, gpointer user_data);
void va_call_state_load (VaRedis *redis, const gchar *token,
    VaCallStateLoaded done, gpointer user_data);

G_END_DECLS

/* voiceagent: the capabilities handed out with calls and listeners.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _VaGrants VaGrants;

typedef enum {
  VA_GRANT_UNKNOWN, /* never issued here, or forgotten long ago */
  VA_GRANT_OTHER, /* issued, but for something else, or ended */
  VA_GRANT_YES,
} VaGrantResult;

/* Main context only. */
VaGrants *va_grants_new (void);
void va_grants_free (VaGrants *grants);

/* A new token (free it) that grants the call @call_id, or with
 * @listener_id only that listener of it. */
gchar *va_grants_issue (
    VaGrants *grants, const gchar *call_id, const gchar *listener_id);

/* The call (with all its listeners), or with @listener_id that listener,
 * ended: its tokens grant nothing any more, but they are remembered for
 * an hour (at most VA_GRANTS_ENDED_MAX of them), so a late DELETE gets
 * "404 ended", not "401 who are you". */
void va_grants_end (
    VaGrants *grants, const gchar *call_id, const gchar *listener_id);

/* What @token grants for the call @call_id or, with @listener_id, that
 * listener (which the call's own token grants too). @token may be NULL
 * (UNKNOWN). Tokens are looked up by their SHA-256, so the time taken
 * says nothing about a token's bytes. */
VaGrantResult va_grants_check (VaGrants *grants, const gchar *token,
    const gchar *call_id, const gchar *listener_id);

#define VA_GRANTS_ENDED_MAX 16384

G_END_DECLS

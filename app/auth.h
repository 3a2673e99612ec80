/* voiceagent: credentials: random tokens, their comparison, and the
 * ephemeral TURN credentials of coturn's REST API.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 128 bits from the kernel's CSPRNG as 32 lowercase hex digits (free it). */
gchar *va_auth_new_token (void);

/* TRUE when @given equals @expected. Takes the same time whatever the
 * first difference (both are hashed, then every byte of the digests is
 * compared), so a remote timer learns nothing. NULL never matches. */
gboolean va_auth_token_equal (const gchar *expected, const gchar *given);

/* The token of an "Authorization: Bearer TOKEN" header value, or NULL
 * (scheme case-insensitive, RFC 6750 §2.1). Points into @authorization. */
const gchar *va_auth_bearer_of (const gchar *authorization);

/* coturn's REST-API credentials (`use-auth-secret`, draft-uberti-behave-
 * turn-rest): username "EXPIRY:ID" with EXPIRY in Unix seconds, password
 * base64(HMAC-SHA1(@secret, username)). Returns the password (free it)
 * and sets @username (free it). */
gchar *va_auth_turn_credential (const gchar *secret, const gchar *id,
    gint64 expiry_unix_s, gchar **username);

/* Reads a secret from @path: the first line, without its line end (as
 * container images mount them). NULL with @error if it cannot be read or
 * is empty. */
gchar *va_auth_read_secret_file (const gchar *path, GError **error);

G_END_DECLS

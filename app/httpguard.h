/* voiceagent: the HTTP front door: listening sockets, connection and
 * request limits that libsoup's server does not have.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _VaHttpGuard VaHttpGuard;

typedef struct
{
  gsize max_body; /* bytes a request body may have, chunked or not */
  guint max_connections; /* open connections; more are refused with 503 */
  guint request_timeout_s; /* headers + body must arrive within this */
  guint idle_timeout_s; /* a socket silent this long (either way) closes */
  const gchar *cors_origin; /* for the errors it writes itself */
} VaHttpGuardLimits;

/* Accepts connections for @soup (which must not listen itself) within
 * @limits (copied; cors_origin must outlive the guard). Main context. */
VaHttpGuard *va_http_guard_new (
    SoupServer *soup, const VaHttpGuardLimits *limits);
void va_http_guard_free (VaHttpGuard *guard);

/* Listens on @address (port 0 picks one); @ops marks it as the operators'
 * address (va_http_guard_is_ops). Returns the port, or 0 with @error. */
guint va_http_guard_listen (
    VaHttpGuard *guard, GSocketAddress *address, gboolean ops, GError **error);

/* The port of the first public (@ops FALSE) or ops listener, or 0. */
guint va_http_guard_get_port (VaHttpGuard *guard, gboolean ops);

/* TRUE when @msg came in on an ops listener. */
gboolean va_http_guard_is_ops (VaHttpGuard *guard, SoupServerMessage *msg);

/* @msg's request body, at most max_body bytes (libsoup's own copy is
 * turned off: see httpguard.c). Owned by @msg. */
GBytes *va_http_guard_get_body (SoupServerMessage *msg);

/* Open connections now, and requests refused by each limit so far. */
guint va_http_guard_get_connections (VaHttpGuard *guard);

G_END_DECLS

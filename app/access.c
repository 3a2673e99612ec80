/* voiceagent: who may do what (docs/http-api.md, "Authorization").
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Each va_access_ function that decides answers the request itself (401,
 * 403 or 404 with the server's JSON error) when it refuses. Main context
 * only.
 *
 * Who may do what:
 * - POST /whip: anyone holding the caller token (--token), or anyone at
 *   all when none is set (a demo);
 * - a call's own token (its capability: the 201's Location carries it as
 *   ?access_token=, and Voiceagent-Call-Token and the data channel's
 *   "call" event repeat it) may PATCH, DELETE and GET the call and POST
 *   /whep/{id} to listen to it;
 * - a listener's token (its Location's ?access_token=) may PATCH,
 *   DELETE and GET that listener;
 * - the admin token (--admin-token) may do all of that on any call, and
 *   read /calls and /metrics; a request to an --ops-listen address may
 *   read those with no token.
 * A token travels as "Authorization: Bearer" (RFC 6750 §2.1) or, in the
 * session URLs handed out, as ?access_token= (§2.3). Every comparison is
 * constant-time. A credential that does not grant a call gets 404 (RFC
 * 9110 §15.5.5) whether or not the call exists, so nothing tells a
 * stranger which ids are live; one that is nobody's at all gets 401.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "auth.h"
#include "server-private.h"

#define REALM "Bearer realm=\"voiceagent\""

typedef struct
{
  const gchar *bearer; /* from the Authorization header, or NULL */
  const gchar *query; /* ?access_token=, or NULL */
} Credentials;

static Credentials
credentials_of (SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = {
    va_auth_bearer_of (soup_message_headers_get_one (
        soup_server_message_get_request_headers (msg), "Authorization")),
    query ? g_hash_table_lookup (query, "access_token") : NULL
  };

  return c;
}

static gboolean
presents (const Credentials *c, const gchar *token)
{
  /* Both are compared, whichever matches, to take the same time. */
  gboolean by_header = va_auth_token_equal (token, c->bearer);
  gboolean by_query = va_auth_token_equal (token, c->query);

  return by_header || by_query;
}

static gboolean
presents_nothing (const Credentials *c)
{
  return c->bearer == NULL && c->query == NULL;
}

static gboolean
is_admin (VaServer *server, const Credentials *c)
{
  return presents (c, server->config->admin_token);
}

/* What the credentials grant for the call @id (the listener @lid). */
static VaGrantResult
grant_of (
    VaServer *server, const Credentials *c, const gchar *id, const gchar *lid)
{
  VaGrantResult by_header =
      va_grants_check (server->grants, c->bearer, id, lid);
  VaGrantResult by_query = va_grants_check (server->grants, c->query, id, lid);

  return MAX (by_header, by_query);
}

/* TRUE when the credentials are somebody's, now or in the last hour: they
 * may not grant this request, but they are no guess (403 or 404, not
 * 401). */
static gboolean
is_known (VaServer *server, const Credentials *c)
{
  return presents (c, server->config->token) || is_admin (server, c) ||
      grant_of (server, c, NULL, NULL) != VA_GRANT_UNKNOWN;
}

/* 401 (RFC 6750 §3): no credentials, or @invalid ones nobody holds. */
static void
respond_unauthorized (VaServer *server, SoupServerMessage *msg,
    gboolean invalid, const gchar *what)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "WWW-Authenticate", invalid ? REALM ", error=\"invalid_token\"" : REALM);
  va_respond_error (server, msg, SOUP_STATUS_UNAUTHORIZED,
      invalid ? "the bearer token is not valid here: %s"
              : "this needs a bearer token: %s",
      what);
}

/* POST /whip: the caller token, or none configured. */
static gboolean
may_call (VaServer *server, const Credentials *c)
{
  const gchar *token = server->config->token;

  return token == NULL || *token == '\0' || presents (c, token) ||
      is_admin (server, c);
}

static gboolean is_known (VaServer *server, const Credentials *c);

/* A token that is somebody's but not the caller's (a call's own) is valid
 * for something else: 403, RFC 6750 §3.1 insufficient_scope. */
gboolean
va_access_caller (VaServer *server, SoupServerMessage *msg)
{
  Credentials c = credentials_of (msg, NULL);
  const gchar *how =
      "send \"Authorization: Bearer TOKEN\" with the server's caller token";

  if (may_call (server, &c))
    return TRUE;
  if (c.bearer && is_known (server, &c)) {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "WWW-Authenticate",
        REALM ", error=\"insufficient_scope\"");
    va_respond_error (server, msg, SOUP_STATUS_FORBIDDEN,
        "this token may not place calls: %s", how);
  } else {
    respond_unauthorized (server, msg, c.bearer != NULL, how);
  }
  return FALSE;
}

/* TRUE if the credentials grant the call @id (the listener @lid, when
 * given, is granted by its own token, not the call's) and @live says it
 * runs. Otherwise answers 401 or 404. */
gboolean
va_access_grants (VaServer *server, SoupServerMessage *msg, GHashTable *query,
    const gchar *id, const gchar *lid, gboolean live)
{
  Credentials c = credentials_of (msg, query);
  gboolean granted;

  if (presents_nothing (&c)) {
    respond_unauthorized (server, msg, FALSE,
        "use the Location the POST answered (it carries the call's token), "
        "or send the call's token as \"Authorization: Bearer TOKEN\"");
    return FALSE;
  }
  granted =
      is_admin (server, &c) || grant_of (server, &c, id, lid) == VA_GRANT_YES;
  if (granted && live)
    return TRUE;
  if (granted || is_known (server, &c))
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no call %s that this token grants (it ended, or the token is "
        "another call's)",
        id);
  else
    respond_unauthorized (server, msg, TRUE,
        "use the Location the POST answered, or the call's token");
  return FALSE;
}

/* The call @id, if the credentials grant it; otherwise answers 401 or 404
 * and returns NULL. An ending call is not found. */
CallEntry *
va_access_call (VaServer *server, SoupServerMessage *msg, GHashTable *query,
    const gchar *id, const gchar *lid)
{
  CallEntry *e = g_hash_table_lookup (server->calls, id);
  gboolean live = e && !va_call_is_ending (e->call);

  return va_access_grants (server, msg, query, id, lid, live) ? e : NULL;
}

gboolean
va_access_is_operator (
    VaServer *server, SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = credentials_of (msg, query);

  return va_http_guard_is_ops (server->guard, msg) || is_admin (server, &c);
}

/* /calls and /metrics: the admin token, or the --ops-listen address. */
gboolean
va_access_ops (VaServer *server, SoupServerMessage *msg, GHashTable *query)
{
  Credentials c = credentials_of (msg, query);
  const gchar *how = "send the operator token (--admin-token) as "
                     "\"Authorization: Bearer TOKEN\", or ask on the "
                     "--ops-listen address";

  if (va_access_is_operator (server, msg, query))
    return TRUE;
  if (presents_nothing (&c) || !is_known (server, &c)) {
    respond_unauthorized (server, msg, !presents_nothing (&c), how);
  } else {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "WWW-Authenticate",
        REALM ", error=\"insufficient_scope\"");
    va_respond_error (server, msg, SOUP_STATUS_FORBIDDEN,
        "this token may not read operator endpoints: %s", how);
  }
  return FALSE;
}

gboolean
va_access_may_call (VaServer *server, SoupServerMessage *msg)
{
  Credentials c = credentials_of (msg, NULL);

  return may_call (server, &c);
}

/* Client helpers for the emulator's own protocol tests: blocking HTTP,
 * a WebSocket that queues what it receives, SSE reading, control endpoint.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything runs on the test's main thread; the waits iterate the default
 * main context with a deadline, so a test never hangs.
 */
#pragma once

#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include "emulator-process.h"

G_BEGIN_DECLS

typedef struct
{
  guint status;
  gchar *body; /* NUL-terminated */
  gsize length;
  SoupMessageHeaders *headers; /* response headers */
} EmuHttpReply;

void emu_http_reply_free (EmuHttpReply *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EmuHttpReply, emu_http_reply_free);

/* Sends @method @path (with @body as JSON when non-NULL) and reads the whole
 * answer. @headers: NULL-terminated name, value, name, value... or NULL. */
EmuHttpReply *emu_http (EmuProcess *emu, const gchar *method, const gchar *path,
    const gchar *body, const gchar *const *headers);

/* Parses @text as a JSON object, failing the test when it is not one. The
 * returned node is owned by the caller. */
JsonNode *emu_json (const gchar *text);

/* A client WebSocket. */
typedef struct
{
  SoupWebsocketConnection *ws;
  GQueue messages; /* (element-type utf8) received text frames */
  gboolean closed;
  gushort close_code;
  gchar *close_reason;
  guint handshake_status; /* HTTP status when the upgrade failed */
} EmuWs;

/* Connects to @path (with query) with an optional xi-api-key header; NULL
 * when the handshake failed, with @status set to its HTTP status. */
EmuWs *emu_ws_connect (
    EmuProcess *emu, const gchar *path, const gchar *xi_api_key, guint *status);
void emu_ws_send (EmuWs *w, const gchar *text);
/* Next received text frame (free it), or NULL after @timeout_ms or once the
 * socket closed with nothing queued. */
gchar *emu_ws_next (EmuWs *w, guint timeout_ms);
/* Waits until the socket closed; FALSE after @timeout_ms. */
gboolean emu_ws_wait_closed (EmuWs *w, guint timeout_ms);
void emu_ws_free (EmuWs *w);

/* emu_process_start() for these tests: call it before g_test_init().
 * FIXME: tests/common's helper polls g_subprocess_get_if_exited() on a
 * running process, a GLib critical (fatal under g_test_init); this mutes
 * exactly that critical until the helper checks g_subprocess_get_identifier()
 * instead. */
EmuProcess *emu_check_start (const gchar *const *args);

/* Iterates the default main context for @ms. */
void emu_spin (guint ms);

/* POSTs /emulator/reset. */
void emu_control_reset_all (EmuProcess *emu);

/* Arms @fault for @service on the control endpoint (count connections). */
void emu_control_arm (
    EmuProcess *emu, const gchar *service, const gchar *fault, gint count);

/* Number of recorded events named @event (of @service, when non-NULL);
 * waits up to @timeout_ms for at least one. */
guint emu_control_count_events (EmuProcess *emu, const gchar *service,
    const gchar *event, guint timeout_ms);

/* A streamed chat completion read line by line, with when each event
 * arrived. */
typedef struct
{
  guint status;
  GPtrArray *events; /* (element-type utf8) "data: ..." lines */
  GArray *times_ms; /* (element-type gint64) since the request */
  gboolean blank_after_each; /* every data line followed by a blank line */
  gboolean clean_end; /* the body ended without an error */
} Sse;

void sse_free (Sse *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Sse, sse_free);

/* POSTs @body to /v1/chat/completions@query with Bearer @key and reads the
 * SSE stream to its end. */
Sse *sse_request (
    EmuProcess *e, const gchar *query, const gchar *key, const gchar *body);

G_END_DECLS

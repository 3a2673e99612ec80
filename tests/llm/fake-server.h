/* A scripted chat-completions server for the llm tests: it records request
 * bodies and answers with exact bytes, so tests can check the history sent
 * and feed the element framings the emulator does not produce.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _FakeServer FakeServer;

/* Listens on 127.0.0.1 with a free port; runs on its own thread. */
FakeServer *fake_server_new (void);
void fake_server_free (FakeServer *fs);

/* "http://127.0.0.1:PORT/v1": owned by @fs. */
const gchar *fake_server_url (FakeServer *fs);

/* Queues the answer to the next request: @status, then the body pieces
 * @chunks (NULL-terminated), each written on its own; before piece
 * @hold_at (-1: never) the answer waits for fake_server_release(). A
 * non-200 answer is sent at once, as JSON, with @retry_after (may be
 * NULL) as Retry-After. */
void fake_server_add_answer (FakeServer *fs, guint status,
    const gchar *const *chunks, gint hold_at, const gchar *retry_after);
/* Queues an OpenAI-style stream of @text cut into @pieces (NULL-ended). */
void fake_server_add_stream (FakeServer *fs, const gchar *const *pieces);
void fake_server_release (FakeServer *fs);

/* Requests received so far, and a copy of the body of request @i. */
guint fake_server_n_requests (FakeServer *fs);
gchar *fake_server_get_body (FakeServer *fs, guint i);
/* Waits (up to @timeout_ms) until @n requests arrived. */
gboolean fake_server_wait_requests (FakeServer *fs, guint n, guint timeout_ms);

/* Webhooks: POST {hook_url} answers with the queued answers in order
 * (@status, @body as application/json or as given, after @delay_ms), or
 * 500 when none is queued; requests are recorded with their signature. */
const gchar *fake_server_hook_url (FakeServer *fs);
void fake_server_add_hook (
    FakeServer *fs, guint status, const gchar *body, guint delay_ms);
guint fake_server_n_hooks (FakeServer *fs);
gchar *fake_server_get_hook (FakeServer *fs, guint i, gchar **signature);
gboolean fake_server_wait_hooks (FakeServer *fs, guint n, guint timeout_ms);

G_END_DECLS

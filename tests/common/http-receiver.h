/* An HTTP server on a thread of its own, for the tests of what the server
 * sends out: end-of-call webhooks, tool webhooks. And the check of their
 * signature as a receiver would make it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _HttpReceiver HttpReceiver;

/* Called on the receiver's thread for every request to @path: returns
 * the status to answer; @reply is the JSON body to send with it (empty:
 * none). */
typedef guint (*HttpReceiverHandler) (SoupMessageHeaders *headers,
    const gchar *body, gsize len, GString *reply, gpointer user_data);

/* Listens on 127.0.0.1:@port (0: any free one) for requests to @path. */
HttpReceiver *http_receiver_new (guint port, const gchar *path,
    HttpReceiverHandler handler, gpointer user_data);
guint http_receiver_get_port (HttpReceiver *r);
/* Stops listening (the port is free again) and frees @r. */
void http_receiver_free (HttpReceiver *r);

/* Verifies "t=<unix>,v1=<hex>" as docs/operations.md tells receivers to:
 * HMAC-SHA256 with @secret over "<t>.<body>", and t within 5 minutes. */
gboolean http_signature_ok (
    const gchar *header, const gchar *secret, const gchar *body, gsize len);

G_END_DECLS

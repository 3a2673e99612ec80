/* voiceagent: webhooks: each ended call's record, POSTed and signed from
 * a thread of their own.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "metrics.h"

G_BEGIN_DECLS

typedef struct _VaWebhook VaWebhook;

/* Deliveries waiting in memory; more drop the oldest (counted, logged). */
#define VA_WEBHOOK_QUEUE_MAX 1000
/* The first retry waits this long, each next one twice as long (equal
 * jitter), up to VA_WEBHOOK_BACKOFF_MAX_MS. */
#define VA_WEBHOOK_BACKOFF_MS 5000
#define VA_WEBHOOK_BACKOFF_MAX_MS 120000
/* va_webhook_close keeps delivering for this long. */
#define VA_WEBHOOK_FLUSH_TIMEOUT_MS 10000

typedef struct
{
  guint attempts; /* per delivery, the first included; 0: 6 */
  guint timeout_s; /* per attempt; 0: 10 */
  guint backoff_ms; /* 0: VA_WEBHOOK_BACKOFF_MS */
  guint max_queued; /* 0: VA_WEBHOOK_QUEUE_MAX */
  guint flush_timeout_ms; /* 0: VA_WEBHOOK_FLUSH_TIMEOUT_MS */
} VaWebhookOptions;

/* Starts the delivery thread for @url (http or https), signing with
 * @secret (copied; never logged). @options may be NULL;
 * VOICEAGENT_WEBHOOK_BACKOFF_MS overrides its backoff (tests). */
VaWebhook *va_webhook_new (
    const gchar *url, const gchar *secret, const VaWebhookOptions *options);
/* Queues @body (taken) as event @event about call @call_id; returns at
 * once. Any thread. */
void va_webhook_send (
    VaWebhook *hook, const gchar *event, const gchar *call_id, gchar *body);
void va_webhook_get_stats (VaWebhook *hook, VaWebhookMetrics *stats);
/* Delivers what is queued for at most the flush timeout, then stops.
 * Returns how many deliveries were given up (said on stderr). */
guint va_webhook_close (VaWebhook *hook);

/* The X-Voiceagent-Signature value for @body sent at @timestamp (unix
 * seconds): "t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">". */
gchar *va_webhook_signature (
    const gchar *secret, gint64 timestamp, const gchar *body, gsize len);

G_END_DECLS

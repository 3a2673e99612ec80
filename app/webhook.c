/* voiceagent: webhooks: each ended call's record, POSTed and signed from
 * a thread of their own (docs/operations.md, "Webhooks").
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The main context only queues a delivery (va_webhook_send: no I/O,
 * constant time). One sender thread owns a SoupSession and sends one
 * delivery at a time, synchronously, with a timeout per attempt:
 *
 *   2xx                     delivered
 *   4xx but 408 and 429     refused: given up at once (a retry gets the same)
 *   408, 429, 5xx, no reply retried after a backoff (GstVoiceBackoff from
 *                           VA_WEBHOOK_BACKOFF_MS, doubling, equal jitter)
 *                           until the attempts run out
 *
 * Each delivery keeps one id (X-Voiceagent-Delivery) across its attempts,
 * so a receiver that answered too late can drop the repeat; each attempt is
 * signed anew with its own timestamp. While a delivery waits for its retry,
 * later ones go ahead of it. The queue is bounded: past it the oldest is
 * dropped, counted and said.
 *
 * Locking: VaWebhook.lock is a leaf; no I/O and no output under it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <libsoup/soup.h>
#include "gstvoicehttp.h"
#include "oplog.h"
#include "webhook.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define DEFAULT_ATTEMPTS 6
#define DEFAULT_TIMEOUT_S 10

typedef struct
{
  gchar *id; /* X-Voiceagent-Delivery: one per delivery, every attempt */
  gchar *event; /* X-Voiceagent-Event */
  gchar *call_id; /* for log lines */
  gchar *body;
  guint attempt; /* attempts made */
  gint64 due_us; /* monotonic: not before */
  GstVoiceBackoff backoff;
} Delivery;

struct _VaWebhook
{
  /* Immutable after va_webhook_new */
  gchar *url;
  gchar *where; /* scheme://host[:port] for messages: no path, no secret */
  gchar *secret;
  guint attempts;
  guint timeout_s;
  guint backoff_ms;
  guint max_queued;
  gint64 flush_timeout_us;
  GThread *thread;

  /* Protected by lock */
  GMutex lock;
  GCond cond; /* a delivery was queued, or stopping */
  GQueue queue; /* Delivery*, in the order queued */
  gboolean sending; /* one is out of the queue, being attempted */
  gboolean stopping;
  gint64 stop_deadline; /* monotonic */
  VaWebhookMetrics stats; /* all but queued */
};

static void
delivery_free (Delivery *d)
{
  g_free (d->id);
  g_free (d->event);
  g_free (d->call_id);
  g_free (d->body);
  g_free (d);
}

gchar *
va_webhook_signature (
    const gchar *secret, gint64 timestamp, const gchar *body, gsize len)
{
  GHmac *hmac =
      g_hmac_new (G_CHECKSUM_SHA256, (const guchar *)secret, strlen (secret));
  gchar *t = g_strdup_printf ("%" G_GINT64_FORMAT, timestamp);
  gchar *header;

  g_hmac_update (hmac, (const guchar *)t, -1);
  g_hmac_update (hmac, (const guchar *)".", 1);
  g_hmac_update (hmac, (const guchar *)body, len);
  header = g_strdup_printf ("t=%s,v1=%s", t, g_hmac_get_string (hmac));
  g_hmac_unref (hmac);
  g_free (t);
  return header;
}

/* ---- The queue ---- */

void
va_webhook_send (
    VaWebhook *hook, const gchar *event, const gchar *call_id, gchar *body)
{
  Delivery *d = g_new0 (Delivery, 1), *oldest = NULL;

  d->id = g_uuid_string_random ();
  d->event = g_strdup (event);
  d->call_id = g_strdup (call_id);
  d->body = body;
  d->backoff.initial_ms = hook->backoff_ms;
  d->backoff.max_ms = MAX (hook->backoff_ms, VA_WEBHOOK_BACKOFF_MAX_MS);
  g_mutex_lock (&hook->lock);
  g_queue_push_tail (&hook->queue, d);
  if (hook->queue.length > hook->max_queued) {
    oldest = g_queue_pop_head (&hook->queue);
    hook->stats.dropped++;
  }
  g_cond_signal (&hook->cond);
  g_mutex_unlock (&hook->lock);
  if (oldest) {
    VaLogLine *l =
        va_log_begin (VA_LOG_WARNING, "webhook.dropped", oldest->call_id, 0);

    va_log_add_string (l, "delivery", oldest->id);
    va_log_add_int (l, "queue", hook->max_queued);
    va_log_add_string (l, "why", "the queue is full: the oldest goes");
    va_log_end (l);
    delivery_free (oldest);
  }
}

void
va_webhook_get_stats (VaWebhook *hook, VaWebhookMetrics *stats)
{
  g_mutex_lock (&hook->lock);
  *stats = hook->stats;
  stats->queued = hook->queue.length + (hook->sending ? 1 : 0);
  g_mutex_unlock (&hook->lock);
}

/* The first delivery that is due, out of the queue; else NULL with
 * *@next_us the monotonic time the earliest one is due (G_MAXINT64: none). */
static Delivery *
take_due_locked (VaWebhook *hook, gint64 now, gint64 *next_us)
{
  *next_us = G_MAXINT64;
  for (GList *l = hook->queue.head; l; l = l->next) {
    Delivery *d = l->data;
    if (d->due_us <= now) {
      g_queue_delete_link (&hook->queue, l);
      return d;
    }
    *next_us = MIN (*next_us, d->due_us);
  }
  return NULL;
}

/* Waits for a due delivery. NULL when it is time to stop: stopping, and
 * nothing is left or the flush deadline has passed. */
static Delivery *
next_delivery (VaWebhook *hook)
{
  Delivery *d = NULL;
  gint64 next_us;

  g_mutex_lock (&hook->lock);
  for (;;) {
    gint64 now = g_get_monotonic_time ();
    if (hook->stopping &&
        (hook->queue.length == 0 || now >= hook->stop_deadline))
      break;
    if ((d = take_due_locked (hook, now, &next_us)))
      break;
    if (hook->stopping)
      next_us = MIN (next_us, hook->stop_deadline);
    if (next_us == G_MAXINT64)
      g_cond_wait (&hook->cond, &hook->lock);
    else
      g_cond_wait_until (&hook->cond, &hook->lock, next_us);
  }
  hook->sending = d != NULL;
  g_mutex_unlock (&hook->lock);
  return d;
}

/* ---- The sender thread ---- */

typedef enum {
  OUTCOME_DELIVERED,
  OUTCOME_REFUSED, /* not to be retried */
  OUTCOME_RETRY,
} Outcome;

/* The one table from an HTTP status to what happens next. */
static Outcome
outcome_of (guint status)
{
  if (status >= 200 && status < 300)
    return OUTCOME_DELIVERED;
  if (status >= 400 && status < 500 && status != 408 && status != 429)
    return OUTCOME_REFUSED;
  return OUTCOME_RETRY;
}

/* One attempt: the HTTP status, or 0 with @why set when no reply came. */
static guint
attempt (VaWebhook *hook, SoupSession *session, Delivery *d, gchar **why)
{
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, hook->url);
  SoupMessageHeaders *headers;
  gsize len = strlen (d->body);
  gchar *signature = va_webhook_signature (
      hook->secret, g_get_real_time () / G_USEC_PER_SEC, d->body, len);
  GBytes *body = g_bytes_new_static (d->body, len);
  GBytes *reply;
  GError *error = NULL;
  guint status = 0;

  headers = soup_message_get_request_headers (msg);
  soup_message_headers_append (headers, "X-Voiceagent-Signature", signature);
  soup_message_headers_append (headers, "X-Voiceagent-Delivery", d->id);
  soup_message_headers_append (headers, "X-Voiceagent-Event", d->event);
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  reply = soup_session_send_and_read (session, msg, NULL, &error);
  if (reply) {
    status = soup_message_get_status (msg);
    g_bytes_unref (reply);
  } else {
    *why = g_strdup (error->message);
    g_error_free (error);
  }
  g_bytes_unref (body);
  g_free (signature);
  g_object_unref (msg);
  return status;
}

/* One line per attempt: delivered, retrying, refused (4xx: the receiver
 * must be fixed, not retried) or given up. */
static void
log_attempt (VaWebhook *hook, Delivery *d, Outcome outcome, gboolean retry,
    const gchar *what, guint delay_ms)
{
  const gchar *event = outcome == OUTCOME_REFUSED ? "refused"
      : retry                                     ? "retrying"
      : outcome == OUTCOME_RETRY                  ? "gave_up"
                                                  : "delivered";
  VaLogLine *l = va_log_begin (
      g_str_equal (event, "delivered") ? VA_LOG_INFO : VA_LOG_WARNING,
      "webhook.delivery", d->call_id, 0);

  va_log_add_string (l, "outcome", event);
  va_log_add_string (l, "delivery", d->id);
  va_log_add_string (l, "to", hook->where);
  va_log_add_int (l, "attempt", d->attempt);
  va_log_add_int (l, "attempts", hook->attempts);
  va_log_add_string (l, "result", what);
  if (retry)
    va_log_add_double (l, "retry_in_s", delay_ms / 1000.0);
  va_log_end (l);
}

/* After an attempt at @d: counts it, and puts it back to retry, or frees
 * it. Says what went wrong; a delivery says nothing when it succeeds. */
static void
settle (VaWebhook *hook, Delivery *d, guint status, const gchar *why)
{
  Outcome outcome = status ? outcome_of (status) : OUTCOME_RETRY;
  gchar *what = status ? g_strdup_printf ("HTTP %u", status) : g_strdup (why);
  gboolean retry = outcome == OUTCOME_RETRY && d->attempt < hook->attempts;
  guint delay_ms = retry ? gst_voice_backoff_next (&d->backoff) : 0;

  g_mutex_lock (&hook->lock);
  hook->sending = FALSE;
  if (outcome == OUTCOME_DELIVERED)
    hook->stats.delivered++;
  else if (retry)
    hook->stats.retried++;
  else
    hook->stats.failed++;
  if (retry) {
    d->due_us = g_get_monotonic_time () + delay_ms * G_TIME_SPAN_MILLISECOND;
    g_queue_push_tail (&hook->queue, d);
  }
  g_mutex_unlock (&hook->lock);

  log_attempt (hook, d, outcome, retry, what, delay_ms);
  g_free (what);
  if (!retry)
    delivery_free (d);
}

static gpointer
sender_main (gpointer data)
{
  VaWebhook *hook = data;
  GMainContext *context = g_main_context_new ();
  SoupSession *session;
  Delivery *d;

  /* The session's I/O runs on this thread's own context. */
  g_main_context_push_thread_default (context);
  session = soup_session_new_with_options ("timeout", hook->timeout_s,
      "user-agent", "voiceagent/" VERSION " webhook", NULL);
  while ((d = next_delivery (hook))) {
    gchar *why = NULL;
    guint status;

    d->attempt++;
    status = attempt (hook, session, d, &why);
    settle (hook, d, status, why);
    g_free (why);
  }
  g_object_unref (session);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  return NULL;
}

/* ---- Start and stop ---- */

/* scheme://host[:port] of @url: what log lines name. */
static gchar *
describe (const gchar *url)
{
  GUri *uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  gchar *where;

  if (uri == NULL)
    return g_strdup ("the webhook");
  where = g_uri_get_port (uri) > 0
      ? g_strdup_printf ("%s://%s:%d", g_uri_get_scheme (uri),
            g_uri_get_host (uri), g_uri_get_port (uri))
      : g_strdup_printf (
            "%s://%s", g_uri_get_scheme (uri), g_uri_get_host (uri));
  g_uri_unref (uri);
  return where;
}

VaWebhook *
va_webhook_new (
    const gchar *url, const gchar *secret, const VaWebhookOptions *options)
{
  VaWebhook *hook = g_new0 (VaWebhook, 1);
  VaWebhookOptions o = { 0 };
  const gchar *backoff = g_getenv ("VOICEAGENT_WEBHOOK_BACKOFF_MS");

  if (options)
    o = *options;
  hook->url = g_strdup (url);
  hook->where = describe (url);
  hook->secret = g_strdup (secret);
  hook->attempts = o.attempts ? o.attempts : DEFAULT_ATTEMPTS;
  hook->timeout_s = o.timeout_s ? o.timeout_s : DEFAULT_TIMEOUT_S;
  hook->backoff_ms = o.backoff_ms ? o.backoff_ms : VA_WEBHOOK_BACKOFF_MS;
  if (backoff && *backoff)
    hook->backoff_ms = MAX (1, (guint)g_ascii_strtoull (backoff, NULL, 10));
  hook->max_queued = o.max_queued ? o.max_queued : VA_WEBHOOK_QUEUE_MAX;
  hook->flush_timeout_us =
      (o.flush_timeout_ms ? o.flush_timeout_ms : VA_WEBHOOK_FLUSH_TIMEOUT_MS) *
      G_TIME_SPAN_MILLISECOND;
  g_mutex_init (&hook->lock);
  g_cond_init (&hook->cond);
  g_queue_init (&hook->queue);
  hook->thread = g_thread_new ("va-webhook", sender_main, hook);
  return hook;
}

guint
va_webhook_close (VaWebhook *hook)
{
  Delivery *d;
  guint lost;

  if (hook == NULL)
    return 0;
  g_mutex_lock (&hook->lock);
  hook->stopping = TRUE;
  hook->stop_deadline = g_get_monotonic_time () + hook->flush_timeout_us;
  g_cond_broadcast (&hook->cond);
  g_mutex_unlock (&hook->lock);
  g_thread_join (hook->thread);

  lost = hook->queue.length;
  if (lost > 0)
    g_printerr ("voiceagent: webhook: %u deliveries to %s were not made "
                "within %.1f s of shutting down; they are lost (the calls' "
                "records are in the database)\n",
        lost, hook->where, hook->flush_timeout_us / 1e6);
  while ((d = g_queue_pop_head (&hook->queue)))
    delivery_free (d);
  g_mutex_clear (&hook->lock);
  g_cond_clear (&hook->cond);
  memset (hook->secret, 0, strlen (hook->secret));
  g_free (hook->secret);
  g_free (hook->url);
  g_free (hook->where);
  g_free (hook);
  return lost;
}

/* gst-voiceagent: GstVoiceClient's reconnect policy: exponential
 * backoff with equal jitter, a cap on attempts in a row, and which HTTP
 * statuses are worth retrying.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voiceclient-private.h"

/* Exponential backoff with "equal jitter": half the delay is fixed, half is
 * random, so a fleet of clients that lost the same server spreads out
 * without any of them retrying at once in a tight loop. */
static guint
backoff_delay_ms (GstVoiceClient *self)
{
  guint64 base;
  guint shift = MIN (self->attempt, 16);

  GST_OBJECT_LOCK (self);
  base = MIN ((guint64)self->backoff_initial_ms << shift,
      (guint64)self->backoff_max_ms);
  GST_OBJECT_UNLOCK (self);
  return (guint)(base / 2 + g_random_int_range (0, (gint32)(base / 2) + 1));
}

gboolean
http_status_is_retryable (guint status)
{
  return status == 0 || status == 408 || status == 429 || status >= 500;
}

static gboolean
retry_timer_fired (gpointer data)
{
  GstVoiceClient *self = data;

  clear_source (&self->retry_timer);
  start_connect (self);
  return G_SOURCE_REMOVE;
}

/* Returns TRUE if a retry was scheduled. @forced: the caller asked for a
 * reconnect, so it happens even with reconnecting off. */
gboolean
schedule_retry_full (GstVoiceClient *self, gboolean forced)
{
  guint delay, max_attempts;
  gboolean shut_down;

  GST_OBJECT_LOCK (self);
  max_attempts = self->max_attempts;
  shut_down = self->shut_down;
  GST_OBJECT_UNLOCK (self);

  if (shut_down || (!self->reconnect && !forced) || self->closing)
    return FALSE;
  if (max_attempts > 0 && self->attempt >= max_attempts) {
    GST_WARNING_OBJECT (self, "giving up after %u attempts", self->attempt);
    return FALSE;
  }
  delay = backoff_delay_ms (self);
  self->attempt++;
  GST_INFO_OBJECT (
      self, "reconnecting in %u ms (attempt %u)", delay, self->attempt);
  clear_source (&self->retry_timer);
  self->retry_timer = add_timeout (delay, retry_timer_fired, self);
  return TRUE;
}

gboolean
schedule_retry (GstVoiceClient *self)
{
  return schedule_retry_full (self, FALSE);
}

/* A connection ended. Only one that lasted (as long as the longest backoff)
 * resets the retry count: a server that accepts and drops at once would
 * otherwise be reconnected to forever at the shortest delay. */
void
connection_ended (GstVoiceClient *self)
{
  guint max_ms;

  GST_OBJECT_LOCK (self);
  max_ms = self->backoff_max_ms;
  GST_OBJECT_UNLOCK (self);
  if (g_get_monotonic_time () - self->opened_at_us >= (gint64)max_ms * 1000)
    self->attempt = 0;
}

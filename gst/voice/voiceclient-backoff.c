/* gst-voiceagent: GstVoiceClient's reconnect policy: exponential
 * backoff (gstvoicehttp.c) honouring Retry-After, and a cap on attempts
 * in a row.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voiceclient-private.h"

/* The policy itself (doubling, jitter, which statuses) is gstvoicehttp.c's,
 * shared with the elements; this file applies it to the client. */
static guint
backoff_delay_ms (GstVoiceClient *self, guint *max_ms)
{
  guint initial;

  GST_OBJECT_LOCK (self);
  initial = self->backoff_initial_ms;
  *max_ms = self->backoff_max_ms;
  GST_OBJECT_UNLOCK (self);
  return gst_voice_backoff_delay_ms (initial, *max_ms, self->attempt);
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
 * reconnect, so it happens even with reconnecting off. @retry_after_ms:
 * what the server's Retry-After asked for (-1: nothing); the delay is at
 * least that, but no more than the longest backoff, so a server asking
 * for an hour cannot park the client beyond what its owner configured. */
gboolean
schedule_retry_full (
    GstVoiceClient *self, gboolean forced, gint64 retry_after_ms)
{
  guint delay, max_attempts, max_ms;
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
  delay = backoff_delay_ms (self, &max_ms);
  if (retry_after_ms > delay)
    delay = (guint)MIN (retry_after_ms, (gint64)max_ms);
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
  return schedule_retry_full (self, FALSE, -1);
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

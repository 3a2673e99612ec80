/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* llmtransform's deferred work: what a handler decides under
 * GstLlmTransform.lock (bus messages, timers to stop, a request to cancel
 * or send) recorded in a GstVoiceDeferred and done after unlocking, by
 * stage; and the per-turn bus messages' common fields. Split from
 * llmreply.c, which decides, so the reply machine reads on its own. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "llmtransform-private.h"

/* Returns: the running time now, or GST_CLOCK_TIME_NONE without a clock. */
GstClockTime
running_time_now (GstLlmTransform *self)
{
  GstClock *clock = gst_element_get_clock (GST_ELEMENT (self));
  GstClockTime now, base;

  if (clock == NULL)
    return GST_CLOCK_TIME_NONE;
  base = gst_element_get_base_time (GST_ELEMENT (self));
  now = gst_clock_get_time (clock);
  gst_object_unref (clock);
  return now >= base ? now - base : 0;
}

GstStructure *
turn_message_new (GstLlmTransform *self, const gchar *event, guint turn)
{
  return gst_structure_new ("llmtransform", "event", G_TYPE_STRING, event,
      "turn", G_TYPE_UINT, turn, "wallclock", G_TYPE_INT64,
      g_get_monotonic_time (), "running-time", G_TYPE_UINT64,
      (guint64)running_time_now (self), NULL);
}

/* The stages of a Deferred, in the order they run: stop the request (the
 * first thing barge-in must do), stop timers, send, post. */
enum {
  STAGE_CANCEL,
  STAGE_UNSCHEDULE,
  STAGE_SEND,
  STAGE_POST,
};

void
defer_structure (GstLlmTransform *self, Deferred *d, GstStructure *s)
{
  if (s != NULL)
    gst_voice_deferred_add_message (d, STAGE_POST, GST_ELEMENT (self),
        gst_message_new_element (GST_OBJECT (self), s));
}

/* A bus warning (@error FALSE: always RESOURCE READ, the server failed
 * this turn) or error (RESOURCE @code). */
static void
defer_gerror (GstLlmTransform *self, Deferred *d, gboolean error,
    GstResourceError code, const gchar *text, const gchar *debug)
{
  GError *err = g_error_new_literal (
      GST_RESOURCE_ERROR, error ? code : GST_RESOURCE_ERROR_READ, text);

  GST_CAT_LEVEL_LOG (GST_CAT_DEFAULT,
      error ? GST_LEVEL_ERROR : GST_LEVEL_WARNING, self, "%s (%s)", text,
      debug);
  gst_voice_deferred_add_message (d, STAGE_POST, GST_ELEMENT (self),
      error ? gst_message_new_error (GST_OBJECT (self), err, debug)
            : gst_message_new_warning (GST_OBJECT (self), err, debug));
  g_error_free (err);
}

void
defer_warning (
    GstLlmTransform *self, Deferred *d, const gchar *text, const gchar *debug)
{
  defer_gerror (self, d, FALSE, 0, text, debug);
}

void
defer_error (GstLlmTransform *self, Deferred *d, GstResourceError code,
    const gchar *text, const gchar *debug)
{
  defer_gerror (self, d, TRUE, code, text, debug);
}

void
defer_http_error (GstLlmTransform *self, Deferred *d, guint status,
    const gchar *text, const gchar *debug)
{
  GST_ERROR_OBJECT (self, "%s (%s)", text, debug);
  gst_voice_deferred_add_message (d, STAGE_POST, GST_ELEMENT (self),
      gst_voice_http_error_message_new (
          GST_OBJECT (self), status, text, debug));
}

static void
unschedule_run (gpointer id)
{
  gst_clock_id_unschedule (id);
}

void
defer_unschedule (Deferred *d, GstClockID *id)
{
  if (*id != NULL)
    gst_voice_deferred_add (d, STAGE_UNSCHEDULE, unschedule_run,
        g_steal_pointer (id), (GDestroyNotify)gst_clock_id_unref);
}

/* A client call made after unlocking; read-only after creation. */
typedef struct
{
  GstLlmTransform *self; /* ref */
  GstVoiceClient *client; /* ref */
  guint request_id; /* to cancel */
  Attempt *send; /* to send, owned */
} ClientCall;

static void attempt_free (Attempt *a);

static void
client_call_free (gpointer data)
{
  ClientCall *c = data;

  gst_object_unref (c->self);
  gst_object_unref (c->client);
  g_clear_pointer (&c->send, attempt_free);
  g_free (c);
}

static ClientCall *
client_call_new (GstLlmTransform *self)
{
  ClientCall *c = g_new0 (ClientCall, 1);

  c->self = gst_object_ref (self);
  c->client = gst_object_ref (self->client);
  return c;
}

static void
cancel_run (gpointer data)
{
  ClientCall *c = data;

  gst_voice_client_cancel_request (c->client, c->request_id);
}

void
defer_cancel (GstLlmTransform *self, Deferred *d, guint request_id)
{
  ClientCall *c;

  if (request_id == 0 || self->client == NULL)
    return;
  c = client_call_new (self);
  c->request_id = request_id;
  gst_voice_deferred_add (d, STAGE_CANCEL, cancel_run, c, client_call_free);
}

static void
attempt_free (Attempt *a)
{
  g_free (a->url);
  g_free (a->auth);
  g_bytes_unref (a->body);
  g_free (a);
}

static void
send_run (gpointer data)
{
  ClientCall *c = data;

  send_attempt (c->self, c->client, c->send);
}

void
defer_send (GstLlmTransform *self, Deferred *d, Attempt *a)
{
  ClientCall *c = client_call_new (self);

  c->send = a;
  gst_voice_deferred_add (d, STAGE_SEND, send_run, c, client_call_free);
}

/* Runs @func (@data) with the sends, after the lock is released. */
void
defer_call (Deferred *d, GstVoiceDeferredFunc func, gpointer data,
    GDestroyNotify destroy)
{
  gst_voice_deferred_add (d, STAGE_SEND, func, data, destroy);
}

void
deferred_run (GstLlmTransform *self, Deferred *d)
{
  gst_voice_deferred_run (d);
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/base/gstqueuearray.h>
#include "gstvoicequeue.h"

struct _GstVoiceQueue
{
  GMutex lock;
  GCond cond; /* signalled on push and on flushing */
  GstQueueArray *items; /* of GstMiniObject*, protected by lock */
  gsize bytes; /* buffer payload queued, protected by lock */
  gsize max_bytes; /* protected by lock */
  gboolean flushing; /* protected by lock */
};

static gsize
item_size (GstMiniObject *item)
{
  return GST_IS_BUFFER (item) ? gst_buffer_get_size (GST_BUFFER (item)) : 0;
}

/**
 * gst_voice_queue_new:
 * @max_bytes: most buffer payload it holds; 0 for no bound
 *
 * Returns: (transfer full): a new empty queue; free with gst_voice_queue_free().
 */
GstVoiceQueue *
gst_voice_queue_new (gsize max_bytes)
{
  GstVoiceQueue *q = g_new0 (GstVoiceQueue, 1);

  g_mutex_init (&q->lock);
  g_cond_init (&q->cond);
  q->items = gst_queue_array_new (16);
  q->max_bytes = max_bytes;
  return q;
}

void
gst_voice_queue_free (GstVoiceQueue *q)
{
  if (q == NULL)
    return;
  gst_voice_queue_clear (q);
  gst_queue_array_free (q->items);
  g_cond_clear (&q->cond);
  g_mutex_clear (&q->lock);
  g_free (q);
}

static gboolean
push_locked (GstVoiceQueue *q, GstMiniObject *item, gboolean force)
{
  gsize size = item_size (item);

  if (q->flushing)
    return FALSE;
  if (!force && size > 0 && q->max_bytes > 0 && q->bytes + size > q->max_bytes)
    return FALSE;
  gst_queue_array_push_tail (q->items, item);
  q->bytes += size;
  g_cond_signal (&q->cond);
  return TRUE;
}

static gboolean
push (GstVoiceQueue *q, GstMiniObject *item, gboolean force)
{
  gboolean ok;

  g_mutex_lock (&q->lock);
  ok = push_locked (q, item, force);
  g_mutex_unlock (&q->lock);
  if (!ok)
    gst_mini_object_unref (item);
  return ok;
}

/**
 * gst_voice_queue_push:
 * @item: (transfer full): buffer, event or other mini object
 *
 * Appends @item unless the queue is flushing or a buffer would exceed the
 * byte bound; never blocks.
 *
 * Returns: TRUE if queued; FALSE if refused (@item is then unreffed).
 */
gboolean
gst_voice_queue_push (GstVoiceQueue *q, GstMiniObject *item)
{
  return push (q, item, FALSE);
}

/**
 * gst_voice_queue_push_force:
 * @item: (transfer full):
 *
 * Like gst_voice_queue_push() but ignores the byte bound (for data that must
 * not be lost, e.g. a transcript). Refused only while flushing.
 */
gboolean
gst_voice_queue_push_force (GstVoiceQueue *q, GstMiniObject *item)
{
  return push (q, item, TRUE);
}

static GstMiniObject *
pop_locked (GstVoiceQueue *q)
{
  GstMiniObject *item = gst_queue_array_pop_head (q->items);

  if (item)
    q->bytes -= item_size (item);
  return item;
}

/**
 * gst_voice_queue_pop:
 * @timeout_us: how long to wait for an item; -1 waits until flushing
 *
 * Returns: (transfer full) (nullable): the oldest item, or NULL on timeout
 * or while flushing.
 */
GstMiniObject *
gst_voice_queue_pop (GstVoiceQueue *q, gint64 timeout_us)
{
  GstMiniObject *item = NULL;
  gint64 deadline = timeout_us < 0 ? -1 : g_get_monotonic_time () + timeout_us;

  g_mutex_lock (&q->lock);
  while (!q->flushing && gst_queue_array_is_empty (q->items)) {
    if (deadline < 0)
      g_cond_wait (&q->cond, &q->lock);
    else if (!g_cond_wait_until (&q->cond, &q->lock, deadline))
      break;
  }
  if (!q->flushing)
    item = pop_locked (q);
  g_mutex_unlock (&q->lock);
  return item;
}

/**
 * gst_voice_queue_try_pop:
 *
 * Returns: (transfer full) (nullable): the oldest item without waiting.
 */
GstMiniObject *
gst_voice_queue_try_pop (GstVoiceQueue *q)
{
  GstMiniObject *item;

  g_mutex_lock (&q->lock);
  item = q->flushing ? NULL : pop_locked (q);
  g_mutex_unlock (&q->lock);
  return item;
}

/**
 * gst_voice_queue_peek:
 *
 * Returns: (transfer full) (nullable): a new reference to the oldest item,
 * left in the queue.
 */
GstMiniObject *
gst_voice_queue_peek (GstVoiceQueue *q)
{
  GstMiniObject *item;

  g_mutex_lock (&q->lock);
  item = gst_queue_array_peek_head (q->items);
  if (item)
    gst_mini_object_ref (item);
  g_mutex_unlock (&q->lock);
  return item;
}

/**
 * gst_voice_queue_clear:
 *
 * Drops everything queued (barge-in, flush).
 *
 * Returns: how many items were dropped.
 */
guint
gst_voice_queue_clear (GstVoiceQueue *q)
{
  GstMiniObject *item;
  guint n = 0;

  g_mutex_lock (&q->lock);
  while ((item = gst_queue_array_pop_head (q->items))) {
    gst_mini_object_unref (item);
    n++;
  }
  q->bytes = 0;
  g_mutex_unlock (&q->lock);
  return n;
}

/**
 * gst_voice_queue_set_flushing:
 *
 * While flushing, pushes are refused and waiting pops return NULL at once.
 * Entering flushing drops what is queued.
 */
void
gst_voice_queue_set_flushing (GstVoiceQueue *q, gboolean flushing)
{
  g_mutex_lock (&q->lock);
  q->flushing = flushing;
  g_cond_broadcast (&q->cond);
  g_mutex_unlock (&q->lock);
  if (flushing)
    gst_voice_queue_clear (q);
}

gboolean
gst_voice_queue_is_flushing (GstVoiceQueue *q)
{
  gboolean flushing;

  g_mutex_lock (&q->lock);
  flushing = q->flushing;
  g_mutex_unlock (&q->lock);
  return flushing;
}

gsize
gst_voice_queue_get_bytes (GstVoiceQueue *q)
{
  gsize bytes;

  g_mutex_lock (&q->lock);
  bytes = q->bytes;
  g_mutex_unlock (&q->lock);
  return bytes;
}

guint
gst_voice_queue_get_length (GstVoiceQueue *q)
{
  guint len;

  g_mutex_lock (&q->lock);
  len = gst_queue_array_get_length (q->items);
  g_mutex_unlock (&q->lock);
  return len;
}

gsize
gst_voice_queue_get_max_bytes (GstVoiceQueue *q)
{
  gsize max;

  g_mutex_lock (&q->lock);
  max = q->max_bytes;
  g_mutex_unlock (&q->lock);
  return max;
}

void
gst_voice_queue_set_max_bytes (GstVoiceQueue *q, gsize max_bytes)
{
  g_mutex_lock (&q->lock);
  q->max_bytes = max_bytes;
  g_mutex_unlock (&q->lock);
}

/* gst-voiceagent: GstVoiceDeferred, work run after an element's lock is
 * released (see gstvoicedeferred.h).
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoicedeferred.h"

typedef struct
{
  guint stage;
  GstVoiceDeferredFunc func;
  gpointer data;
  GDestroyNotify destroy;
} Entry;

typedef struct
{
  GstElement *element; /* ref */
  GstMessage *msg; /* owned until posted */
} Post;

/**
 * gst_voice_deferred_add:
 * @d: the deferred work.
 * @stage: when to run it: all of stage 0 first, then 1, and so on.
 * @func: (nullable): what to run.
 * @data: passed to @func and @destroy.
 * @destroy: (nullable): frees @data after @func ran.
 *
 * Records @func (@data) for gst_voice_deferred_run().
 */
void
gst_voice_deferred_add (GstVoiceDeferred *d, guint stage,
    GstVoiceDeferredFunc func, gpointer data, GDestroyNotify destroy)
{
  Entry e = { stage, func, data, destroy };

  if (d->entries == NULL)
    d->entries = g_array_new (FALSE, FALSE, sizeof (Entry));
  g_array_append_val (d->entries, e);
  d->max_stage = MAX (d->max_stage, stage);
}

static void
post_run (gpointer data)
{
  Post *p = data;

  gst_element_post_message (p->element, g_steal_pointer (&p->msg));
}

static void
post_free (gpointer data)
{
  Post *p = data;

  if (p->msg)
    gst_message_unref (p->msg);
  gst_object_unref (p->element);
  g_free (p);
}

/**
 * gst_voice_deferred_add_message:
 * @d: the deferred work.
 * @stage: as for gst_voice_deferred_add().
 * @element: the element to post from.
 * @msg: (transfer full): the message.
 *
 * Records posting @msg on @element's bus.
 */
void
gst_voice_deferred_add_message (
    GstVoiceDeferred *d, guint stage, GstElement *element, GstMessage *msg)
{
  Post *p = g_new (Post, 1);

  p->element = gst_object_ref (element);
  p->msg = msg;
  gst_voice_deferred_add (d, stage, post_run, p, post_free);
}

/**
 * gst_voice_deferred_run:
 * @d: the deferred work; call without the lock it was filled under.
 *
 * Runs and frees every entry, by stage and then in the order added, and
 * leaves @d empty for reuse.
 */
void
gst_voice_deferred_run (GstVoiceDeferred *d)
{
  GArray *entries = d->entries;
  guint max_stage = d->max_stage;

  d->entries = NULL;
  d->max_stage = 0;
  if (entries == NULL)
    return;
  for (guint stage = 0; stage <= max_stage; stage++) {
    for (guint i = 0; i < entries->len; i++) {
      Entry *e = &g_array_index (entries, Entry, i);
      if (e->stage != stage)
        continue;
      if (e->func)
        e->func (e->data);
      if (e->destroy)
        e->destroy (e->data);
    }
  }
  g_array_unref (entries);
}

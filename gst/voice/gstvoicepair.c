/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Locking order: the element's OBJECT_LOCK is never held while the session
 * registry's lock (gst_voice_session_acquire/release) is taken, so a pair
 * element never nests the two in either direction, whatever its other half
 * is doing. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoicepair.h"

GST_DEBUG_CATEGORY_STATIC (voice_pair_debug);
#define GST_CAT_DEFAULT voice_pair_debug

#define PAIR_NAME(element, info)                                               \
  G_STRUCT_MEMBER (gchar *, (element), (info)->name_offset)
#define PAIR_SESSION(element, info)                                            \
  G_STRUCT_MEMBER (GstVoiceSession *, (element), (info)->session_offset)

static void
pair_debug_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    GST_DEBUG_CATEGORY_INIT (
        voice_pair_debug, "voicepair", 0, "Voice sink/src pair sessions");
    g_once_init_leave (&done, 1);
  }
}

/**
 * gst_voice_pair_join:
 * @element: a pair element, in the NULL state
 * @info: its pair description
 *
 * Acquires the session of @info's kind named by the element's name field
 * and publishes it in the session field. The name is copied under the
 * element's OBJECT_LOCK, the registry lock is taken outside it, and the
 * pointer is stored under OBJECT_LOCK again. The element owns the acquired
 * session (one gst_voice_session_acquire()) until gst_voice_pair_leave();
 * @info is borrowed.
 */
void
gst_voice_pair_join (GstElement *element, const GstVoicePairInfo *info)
{
  GstVoiceSession *session;
  gchar *name;

  g_return_if_fail (GST_IS_ELEMENT (element) && info != NULL);
  pair_debug_init ();

  GST_OBJECT_LOCK (element);
  name = g_strdup (PAIR_NAME (element, info));
  GST_OBJECT_UNLOCK (element);
  session = gst_voice_session_acquire (info->kind, name);
  GST_OBJECT_LOCK (element);
  g_warn_if_fail (PAIR_SESSION (element, info) == NULL);
  PAIR_SESSION (element, info) = session;
  GST_OBJECT_UNLOCK (element);
  GST_DEBUG_OBJECT (element, "joined %s session %s", info->kind, name);
  g_free (name);
}

/**
 * gst_voice_pair_leave:
 * @element: a pair element
 * @info: its pair description
 *
 * Undoes gst_voice_pair_join(); nothing if the element holds no session.
 * The session field is cleared under OBJECT_LOCK and the session released
 * outside it; the element's streaming threads must be stopped by then (as
 * they are after PAUSED→READY), since they read the field without a lock.
 */
void
gst_voice_pair_leave (GstElement *element, const GstVoicePairInfo *info)
{
  GstVoiceSession *session;

  g_return_if_fail (GST_IS_ELEMENT (element) && info != NULL);

  GST_OBJECT_LOCK (element);
  session = g_steal_pointer (&PAIR_SESSION (element, info));
  GST_OBJECT_UNLOCK (element);
  if (session)
    gst_voice_session_release (session);
}

/**
 * gst_voice_pair_change_state:
 * @element: a pair element
 * @transition: the transition
 * @info: the element's pair description
 * @parent_class: the element's parent class, whose change_state runs
 *
 * A pair element's whole change_state: joins the session at NULL→READY
 * (before the parent's, so start() finds it) and leaves it at READY→NULL
 * or when NULL→READY failed. Locks as gst_voice_pair_join() and
 * gst_voice_pair_leave().
 *
 * Returns: what the parent's change_state returned.
 */
GstStateChangeReturn
gst_voice_pair_change_state (GstElement *element, GstStateChange transition,
    const GstVoicePairInfo *info, GstElementClass *parent_class)
{
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_NULL_TO_READY)
    gst_voice_pair_join (element, info);
  ret = parent_class->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_NULL ||
      (transition == GST_STATE_CHANGE_NULL_TO_READY &&
          ret == GST_STATE_CHANGE_FAILURE))
    gst_voice_pair_leave (element, info);
  return ret;
}

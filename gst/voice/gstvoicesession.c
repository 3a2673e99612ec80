/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoicesession.h"

/* Queue bounds: audio for the TTS src is bounded by the src itself (it
 * drops on barge-in); these only stop a runaway producer. */
#define TO_SRC_MAX_BYTES (16 * 1024 * 1024)
#define TO_SINK_MAX_BYTES (1024 * 1024)

struct _GstVoiceSession
{
  GObject parent;

  gchar *kind; /* immutable */
  gchar *name; /* immutable */
  GstVoiceQueue *queues[2]; /* immutable pointers; queues lock themselves */
  guint users; /* protected by registry_lock */

  GMutex lock;
  GstPad *upstream_pad; /* protected by lock */
  GstVoiceUpstreamFunc upstream_func; /* protected by lock */
};

G_DEFINE_FINAL_TYPE (GstVoiceSession, gst_voice_session, G_TYPE_OBJECT);

/* kind + "\n" + name → GstVoiceSession* (one reference, the registry's). */
static GMutex registry_lock;
static GHashTable *registry; /* protected by registry_lock */
static guint unique_counter; /* atomic */

static void
gst_voice_session_finalize (GObject *object)
{
  GstVoiceSession *self = GST_VOICE_SESSION (object);

  gst_voice_queue_free (self->queues[GST_VOICE_SESSION_TO_SRC]);
  gst_voice_queue_free (self->queues[GST_VOICE_SESSION_TO_SINK]);
  gst_clear_object (&self->upstream_pad);
  g_mutex_clear (&self->lock);
  g_free (self->kind);
  g_free (self->name);
  G_OBJECT_CLASS (gst_voice_session_parent_class)->finalize (object);
}

static void
gst_voice_session_class_init (GstVoiceSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gst_voice_session_finalize;
}

static void
gst_voice_session_init (GstVoiceSession *self)
{
  self->queues[GST_VOICE_SESSION_TO_SRC] =
      gst_voice_queue_new (TO_SRC_MAX_BYTES);
  self->queues[GST_VOICE_SESSION_TO_SINK] =
      gst_voice_queue_new (TO_SINK_MAX_BYTES);
  g_mutex_init (&self->lock);
}

static gchar *
registry_key (const gchar *kind, const gchar *name)
{
  return g_strconcat (kind, "\n", name, NULL);
}

/**
 * gst_voice_session_acquire:
 * @kind: what pairs meet here, e.g. "deepgram"
 * @name: the elements' `session` property
 *
 * Finds the session of @kind named @name, creating it if nobody holds one.
 * Thread-safe. Pair every call with gst_voice_session_release().
 *
 * Returns: (transfer none): the session, valid until released.
 */
GstVoiceSession *
gst_voice_session_acquire (const gchar *kind, const gchar *name)
{
  GstVoiceSession *session;
  gchar *key;

  g_return_val_if_fail (kind != NULL && name != NULL, NULL);

  key = registry_key (kind, name);
  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry =
        g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  session = g_hash_table_lookup (registry, key);
  if (session == NULL) {
    session = g_object_new (GST_TYPE_VOICE_SESSION, NULL);
    session->kind = g_strdup (kind);
    session->name = g_strdup (name);
    g_hash_table_insert (registry, key, session);
    key = NULL;
  }
  session->users++;
  g_mutex_unlock (&registry_lock);
  g_free (key);
  return session;
}

/**
 * gst_voice_session_release:
 *
 * Gives back what gst_voice_session_acquire() returned. The last release
 * removes the session from the registry and frees it (unless someone holds
 * an extra g_object_ref()).
 */
void
gst_voice_session_release (GstVoiceSession *session)
{
  gchar *key;

  g_return_if_fail (GST_IS_VOICE_SESSION (session));

  g_mutex_lock (&registry_lock);
  g_assert (session->users > 0);
  if (--session->users == 0) {
    key = registry_key (session->kind, session->name);
    g_hash_table_remove (registry, key);
    g_free (key);
    if (g_hash_table_size (registry) == 0)
      g_clear_pointer (&registry, g_hash_table_unref);
  }
  g_mutex_unlock (&registry_lock);
}

const gchar *
gst_voice_session_get_kind (GstVoiceSession *session)
{
  return session->kind;
}

const gchar *
gst_voice_session_get_name (GstVoiceSession *session)
{
  return session->name;
}

/**
 * gst_voice_session_get_queue:
 *
 * Returns: (transfer none): the queue for @direction, valid while the
 * session is held.
 */
GstVoiceQueue *
gst_voice_session_get_queue (
    GstVoiceSession *session, GstVoiceSessionDirection direction)
{
  g_return_val_if_fail (direction <= GST_VOICE_SESSION_TO_SINK, NULL);
  return session->queues[direction];
}

/**
 * gst_voice_session_set_upstream:
 * @pad: (nullable): the sink half's pad, kept referenced while registered
 * @func: (nullable): what forwards an event from @pad
 *
 * Registers (or with %NULL, removes) the sink half's forwarder. Events
 * already waiting in @GST_VOICE_SESSION_TO_SINK are forwarded now, on the
 * caller's thread. After removal, an event being forwarded may still reach
 * @pad: the pad is referenced for that, and a flushing pad refuses it.
 */
void
gst_voice_session_set_upstream (
    GstVoiceSession *session, GstPad *pad, GstVoiceUpstreamFunc func)
{
  GstVoiceQueue *q = session->queues[GST_VOICE_SESSION_TO_SINK];
  GstMiniObject *item;
  GstPad *old;

  g_return_if_fail ((pad == NULL) == (func == NULL));

  g_mutex_lock (&session->lock);
  old = session->upstream_pad;
  session->upstream_pad = pad ? gst_object_ref (pad) : NULL;
  session->upstream_func = func;
  g_mutex_unlock (&session->lock);
  gst_clear_object (&old);
  if (pad == NULL)
    return;
  while ((item = gst_voice_queue_try_pop (q))) {
    if (GST_IS_EVENT (item))
      func (pad, GST_EVENT (item));
    else
      gst_mini_object_unref (item);
  }
}

/**
 * gst_voice_session_push_upstream:
 * @event: (transfer full): an upstream event
 *
 * Hands @event to the sink half: through its forwarder, on this thread, if
 * one is registered, or else into @GST_VOICE_SESSION_TO_SINK.
 */
void
gst_voice_session_push_upstream (GstVoiceSession *session, GstEvent *event)
{
  GstVoiceUpstreamFunc func;
  GstPad *pad;

  g_mutex_lock (&session->lock);
  pad = session->upstream_pad ? gst_object_ref (session->upstream_pad) : NULL;
  func = session->upstream_func;
  /* Queued under the lock, so a forwarder being registered drains it. */
  if (pad == NULL)
    gst_voice_queue_push_force (
        session->queues[GST_VOICE_SESSION_TO_SINK], GST_MINI_OBJECT (event));
  g_mutex_unlock (&session->lock);
  if (pad == NULL)
    return;
  func (pad, event);
  gst_object_unref (pad);
}

/**
 * gst_voice_session_count:
 *
 * Returns: how many sessions are alive (tests use it to see that none leak).
 */
guint
gst_voice_session_count (void)
{
  guint n;

  g_mutex_lock (&registry_lock);
  n = registry ? g_hash_table_size (registry) : 0;
  g_mutex_unlock (&registry_lock);
  return n;
}

/**
 * gst_voice_session_make_unique_name:
 * @prefix: e.g. the bin's name
 *
 * Returns: (transfer full): a session name no other caller of this function
 * in the process gets, for bins that pair their own children.
 */
gchar *
gst_voice_session_make_unique_name (const gchar *prefix)
{
  return g_strdup_printf (
      "%s-%u", prefix, (guint)g_atomic_int_add (&unique_counter, 1));
}

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

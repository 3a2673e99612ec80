/* voiceagent: the capabilities handed out with calls and listeners.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A token is kept as its SHA-256 only: a look-up by digest takes the same
 * time whatever the presented token shares with a real one (finding a
 * token whose digest shares a prefix with another's is a preimage
 * search), and the table holds nothing that would let a memory dump be
 * replayed as a credential.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "auth.h"
#include "grants.h"

#define ENDED_TTL_US ((gint64)3600 * G_USEC_PER_SEC)

typedef struct
{
  gchar *call_id;
  gchar *listener_id; /* NULL: the call's own token */
  gint64 ended_us; /* monotonic; 0 while it grants */
} Grant;

struct _VaGrants
{
  GHashTable *by_digest; /* SHA-256 hex → Grant* */
  GQueue ended; /* digests (owned by by_digest), oldest end first */
};

static void
grant_free (Grant *g)
{
  g_free (g->call_id);
  g_free (g->listener_id);
  g_free (g);
}

static gchar *
digest_of (const gchar *token)
{
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, token, -1);
}

VaGrants *
va_grants_new (void)
{
  VaGrants *grants = g_new0 (VaGrants, 1);

  grants->by_digest = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)grant_free);
  g_queue_init (&grants->ended);
  return grants;
}

void
va_grants_free (VaGrants *grants)
{
  if (grants == NULL)
    return;
  g_queue_clear (&grants->ended);
  g_hash_table_unref (grants->by_digest);
  g_free (grants);
}

gchar *
va_grants_issue (
    VaGrants *grants, const gchar *call_id, const gchar *listener_id)
{
  gchar *token = va_auth_new_token ();
  Grant *g = g_new0 (Grant, 1);

  g->call_id = g_strdup (call_id);
  g->listener_id = g_strdup (listener_id);
  g_hash_table_insert (grants->by_digest, digest_of (token), g);
  return token;
}

/* Forgets ended tokens past their hour, and the oldest past the cap. */
static void
prune (VaGrants *grants)
{
  gint64 oldest = g_get_monotonic_time () - ENDED_TTL_US;
  const gchar *digest;

  while ((digest = g_queue_peek_head (&grants->ended))) {
    Grant *g = g_hash_table_lookup (grants->by_digest, digest);
    if (g->ended_us >= oldest && grants->ended.length <= VA_GRANTS_ENDED_MAX)
      break;
    g_queue_pop_head (&grants->ended);
    g_hash_table_remove (grants->by_digest, digest);
  }
}

void
va_grants_end (VaGrants *grants, const gchar *call_id, const gchar *listener_id)
{
  GHashTableIter iter;
  gpointer digest, value;
  gint64 now = g_get_monotonic_time ();

  g_hash_table_iter_init (&iter, grants->by_digest);
  while (g_hash_table_iter_next (&iter, &digest, &value)) {
    Grant *g = value;
    if (g->ended_us || g_strcmp0 (g->call_id, call_id) != 0 ||
        (listener_id && g_strcmp0 (g->listener_id, listener_id) != 0))
      continue;
    g->ended_us = now;
    g_queue_push_tail (&grants->ended, digest);
  }
  prune (grants);
}

VaGrantResult
va_grants_check (VaGrants *grants, const gchar *token, const gchar *call_id,
    const gchar *listener_id)
{
  gchar *digest;
  Grant *g;
  gboolean grants_it;

  if (token == NULL)
    return VA_GRANT_UNKNOWN;
  digest = digest_of (token);
  g = g_hash_table_lookup (grants->by_digest, digest);
  g_free (digest);
  if (g == NULL)
    return VA_GRANT_UNKNOWN;
  /* A call's token grants its listeners too; a listener's only itself. */
  grants_it = g->ended_us == 0 && g_strcmp0 (g->call_id, call_id) == 0 &&
      (g->listener_id == NULL || g_strcmp0 (g->listener_id, listener_id) == 0);
  return grants_it ? VA_GRANT_YES : VA_GRANT_OTHER;
}

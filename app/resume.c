/* voiceagent: with --redis, each call's state in Redis, and resuming a
 * call that lived on another instance (docs/deployment.md).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A call's state is one hash keyed by its resume token, written when the
 * conversation changes (coalesced), refreshed while it lives, marked ended
 * when it ends, and written whole again after Redis comes back. A POST
 * with a resume token loads that hash (off the main context) and starts
 * the call here with its conversation. Main context only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include "auth.h"
#include "server-private.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

/* ---- Scale-out: call state in Redis, resume ---- */

void
va_server_publish_load (VaServer *server)
{
  if (server->scaleout)
    va_scaleout_set_load (
        server->scaleout, g_hash_table_size (server->calls), server->draining);
}

static const gchar *
owner_id (VaServer *server)
{
  return va_scaleout_get_instance_id (server->scaleout);
}

static gchar *
vars_to_json (GHashTable *vars)
{
  JsonObject *o = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  GHashTableIter iter;
  gpointer k, v;
  gchar *json;

  g_hash_table_iter_init (&iter, vars);
  while (g_hash_table_iter_next (&iter, &k, &v))
    json_object_set_string_member (o, k, v ? v : "");
  json_node_take_object (node, o);
  json = json_to_string (node, FALSE);
  json_node_unref (node);
  return json;
}

/* A resumed call keeps its stored variables, except what belongs to this
 * instance or this connection (service URLs, ids, the payload type). */
static void
restore_vars (GHashTable *vars, const gchar *json)
{
  JsonParser *p = json_parser_new ();
  JsonObjectIter iter;
  const gchar *name;
  JsonNode *value;

  if (json && json_parser_load_from_data (p, json, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (p))) {
    json_object_iter_init (
        &iter, json_node_get_object (json_parser_get_root (p)));
    while (json_object_iter_next (&iter, &name, &value)) {
      gpointer key;
      /* Only the template's own variables (the table owns its keys). */
      if (g_str_has_suffix (name, "_URL") || g_str_equal (name, "CALL_ID") ||
          g_str_equal (name, "SESSION") || g_str_equal (name, "OPUS_PT") ||
          !JSON_NODE_HOLDS_VALUE (value) ||
          !g_hash_table_lookup_extended (vars, name, &key, NULL))
        continue;
      g_hash_table_insert (vars, key, g_strdup (json_node_get_string (value)));
    }
  }
  g_object_unref (p);
}

/* Every field of the call's hash: @full adds what never changes. Returns
 * name/value pairs, NULL-terminated (free with g_strfreev). */
static gchar **
state_fields (CallEntry *e, gboolean full)
{
  GPtrArray *a = g_ptr_array_new ();
  gchar *history = va_call_get_history (e->call);

  if (history) {
    g_ptr_array_add (a, g_strdup ("history"));
    g_ptr_array_add (a, history);
  }
  g_ptr_array_add (a, g_strdup ("transcript"));
  g_ptr_array_add (a, va_conversation_transcript_json (e->conversation));
  g_ptr_array_add (a, g_strdup ("turns"));
  g_ptr_array_add (a, va_conversation_turns_json (e->conversation));
  if (full) {
    g_ptr_array_add (a, g_strdup ("call"));
    g_ptr_array_add (a, g_strdup (va_call_get_id (e->call)));
    g_ptr_array_add (a, g_strdup ("agent"));
    g_ptr_array_add (a, g_strdup (e->agent));
    g_ptr_array_add (a, g_strdup ("vars"));
    g_ptr_array_add (a, g_strdup (e->vars_json));
    g_ptr_array_add (a, g_strdup ("state"));
    g_ptr_array_add (a, g_strdup ("live"));
  }
  g_ptr_array_add (a, NULL);
  return (gchar **)g_ptr_array_free (a, FALSE);
}

/* Before the call starts: its token (new, or the resumed one), its
 * variables and, when resumed, its conversation. The first write claims
 * the call for this instance. */
void
va_state_prepare (CallEntry *e, GHashTable *vars, const gchar *token,
    const VaStoredCall *stored)
{
  VaServer *server = e->server;
  gchar **fields;
  gchar *started, *resumes;
  const gchar *extra[5];

  if (stored) {
    restore_vars (vars, stored->vars);
    va_call_set_history (e->call, stored->history);
    va_conversation_restore (
        e->conversation, stored->transcript, stored->turns);
  }
  e->token = token ? g_strdup (token) : va_auth_new_token ();
  e->vars_json = vars_to_json (vars);
  va_call_set_resume_token (e->call, e->token);
  fields = state_fields (e, TRUE);
  started = g_strdup_printf ("%" G_GINT64_FORMAT,
      stored ? stored->started_us : va_call_get_start_time (e->call));
  resumes = g_strdup_printf ("%u", stored ? stored->resumes + 1 : 0);
  extra[0] = "started";
  extra[1] = started;
  extra[2] = "resumes";
  extra[3] = resumes;
  extra[4] = NULL;
  va_call_state_claim (va_scaleout_get_redis (server->scaleout), e->token,
      owner_id (server), (const gchar *const *)fields);
  va_call_state_update (va_scaleout_get_redis (server->scaleout), e->token,
      owner_id (server), extra);
  g_strfreev (fields);
  g_free (started);
  g_free (resumes);
}

static void
state_write (CallEntry *e, gboolean full)
{
  gchar **fields;

  if (va_call_is_ending (e->call))
    return;
  fields = state_fields (e, full);
  va_call_state_update (va_scaleout_get_redis (e->server->scaleout), e->token,
      owner_id (e->server), (const gchar *const *)fields);
  g_strfreev (fields);
}

static gboolean
state_write_due (gpointer data)
{
  CallEntry *e = data;

  e->state_write = 0;
  state_write (e, FALSE);
  return G_SOURCE_REMOVE;
}

/* TRUE for the element messages after which the conversation changed:
 * a final transcript, the LLM taking a turn or ending a reply, what the
 * caller heard. */
static gboolean
changes_conversation (const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");
  gboolean is_final = FALSE;

  if (gst_structure_has_name (s, "deepgram-transcript"))
    return gst_structure_get_boolean (s, "is_final", &is_final) && is_final;
  if (gst_structure_has_name (s, "llmtransform"))
    return g_strcmp0 (event, "request-start") == 0 ||
        g_strcmp0 (event, "done") == 0 || g_strcmp0 (event, "say") == 0 ||
        g_strcmp0 (event, "spoken") == 0;
  if (gst_structure_has_name (s, "elevenlabssrc"))
    return g_strcmp0 (event, "agent-speaking-stopped") == 0;
  return FALSE;
}

/* Writes are coalesced: one per STATE_WRITE_DELAY_MS at most. */
void
va_state_changed (CallEntry *e, const GstStructure *s)
{
  if (e->token == NULL || e->state_write || !changes_conversation (s))
    return;
  e->state_write = g_timeout_add (STATE_WRITE_DELAY_MS, state_write_due, e);
}

void
va_ended_call_free (EndedCall *c)
{
  g_free (c->token);
  g_free (c);
}

/* Forgets the ended calls whose live key has expired by now anyway. */
static void
prune_recently_ended (VaServer *server)
{
  gint64 oldest =
      g_get_monotonic_time () - VA_CALL_STATE_LIVE_TTL_S * G_USEC_PER_SEC;
  EndedCall *c;

  while (
      (c = g_queue_peek_head (&server->recently_ended)) && c->ended_us < oldest)
    va_ended_call_free (g_queue_pop_head (&server->recently_ended));
}

void
va_state_end (CallEntry *e, VaCallEndReason reason)
{
  EndedCall *c;

  if (e->token == NULL)
    return;
  g_clear_handle_id (&e->state_write, g_source_remove);
  c = g_new0 (EndedCall, 1);
  c->token = g_strdup (e->token);
  c->reason = va_call_end_reason_name (reason);
  c->ended_us = g_get_monotonic_time ();
  va_call_state_end (va_scaleout_get_redis (e->server->scaleout), c->token,
      owner_id (e->server), c->reason);
  prune_recently_ended (e->server);
  g_queue_push_tail (&e->server->recently_ended, c);
}

/* The resume tokens of the live calls (a set; free it). */
static GHashTable *
live_tokens (VaServer *server)
{
  GHashTable *set = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((CallEntry *)value)->token)
      g_hash_table_add (set, ((CallEntry *)value)->token);
  return set;
}

/* Redis is back after writes were lost: every live call in full, and the
 * end of those that ended meanwhile (an idempotent write). */
void
va_state_resync (gpointer data)
{
  VaServer *server = data;
  GHashTableIter iter;
  GHashTable *live;
  gpointer value;

  prune_recently_ended (server);
  GST_INFO ("redis: writing the state of %u calls again, and the end of %u",
      g_hash_table_size (server->calls), server->recently_ended.length);
  va_server_publish_load (server);
  live = live_tokens (server);
  for (GList *l = server->recently_ended.head; l; l = l->next) {
    EndedCall *c = l->data;
    /* A call resumed here since is live again */
    if (!g_hash_table_contains (live, c->token))
      va_call_state_end (va_scaleout_get_redis (server->scaleout), c->token,
          owner_id (server), c->reason);
  }
  g_hash_table_unref (live);
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    CallEntry *e = value;
    if (e->token)
      state_write (e, TRUE);
  }
}

/* Keeps live calls' keys from expiring while nothing changes. */
gboolean
va_state_refresh (gpointer data)
{
  VaServer *server = data;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    CallEntry *e = value;
    if (e->token && !va_call_is_ending (e->call))
      va_call_state_update (va_scaleout_get_redis (server->scaleout), e->token,
          owner_id (server), NULL);
  }
  return G_SOURCE_CONTINUE;
}

/* The header, else ?resume= (what a redirect carries). */
const gchar *
va_resume_token_of (SoupServerMessage *msg, GHashTable *query)
{
  const gchar *token = soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), RESUME_HEADER);

  if (token == NULL && query)
    token = g_hash_table_lookup (query, "resume");
  return token && *token ? token : NULL;
}

gboolean
va_resume_check_token (
    VaServer *server, SoupServerMessage *msg, const gchar *token)
{
  const gchar *p;

  for (p = token; g_ascii_isxdigit (*p); p++)
    ;
  if (*p != '\0' || p - token != 32) {
    va_respond_error (server, msg, SOUP_STATUS_BAD_REQUEST,
        "%s must be the token of the first answer's %s header", RESUME_HEADER,
        RESUME_TOKEN_HEADER);
    return FALSE;
  }
  if (server->scaleout == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "this server keeps no call state (no --redis): POST without %s for "
        "a new call",
        RESUME_HEADER);
    return FALSE;
  }
  return TRUE;
}

typedef struct
{
  VaServer *server;
  SoupServerMessage *msg;
  VaOffer *offer;
  gchar *token;
  gint64 post_us;
} Resume;

static void
resume_free (Resume *r)
{
  if (r->msg) {
    soup_server_message_unpause (r->msg);
    g_object_unref (r->msg);
  }
  va_offer_free (r->offer);
  g_free (r->token);
  g_free (r);
}

/* A call still here under the same token (the caller reconnected to the
 * same instance) gives way to the new connection. */
static void
end_local_copy (VaServer *server, const gchar *token)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    CallEntry *e = value;
    if (g_strcmp0 (e->token, token) == 0 && !va_call_is_ending (e->call)) {
      g_free (e->token); /* the new call owns the state now */
      e->token = NULL;
      va_call_end (e->call, VA_CALL_END_HANGUP, "resumed on a new connection");
    }
  }
}

/* Why @stored cannot be resumed, or NULL. */
static const gchar *
unresumable (const VaStoredCall *stored)
{
  if (stored == NULL)
    return "no call to resume for this token (it ended long ago or never "
           "existed): POST without " RESUME_HEADER " for a new call";
  if (g_strcmp0 (stored->state, "ended") == 0 &&
      (g_strcmp0 (stored->end_reason, "hangup") == 0 ||
          g_strcmp0 (stored->end_reason, "max-duration") == 0))
    return "the call was hung up: POST without " RESUME_HEADER
           " for a new call";
  return NULL;
}

void
va_resume_free_key (gpointer key, gpointer value, gpointer unused)
{
  resume_free (key);
}

static void
resume_loaded (VaStoredCall *stored, const GError *error, gpointer data)
{
  Resume *r = data;
  VaServer *server = r->server;
  const VaTemplate *tmpl = NULL;
  const gchar *why = unresumable (stored);
  gint64 state_us = g_get_monotonic_time () - r->post_us;
  CallEntry *e;

  g_hash_table_remove (server->resumes, r);
  if (error) {
    soup_message_headers_replace (
        soup_server_message_get_response_headers (r->msg), "Retry-After",
        RETRY_AFTER_NO_AUDIO);
    /* Redis's error may name internal hosts: the log has it. */
    GST_WARNING ("cannot load a call's state: %s", error->message);
    va_respond_error (server, r->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "cannot resume the call now: the call state store does not answer; "
        "retry");
  } else if (why) {
    va_respond_error (server, r->msg, SOUP_STATUS_NOT_FOUND, "%s", why);
  } else if (!(tmpl = g_hash_table_lookup (server->templates, stored->agent))) {
    va_respond_error (server, r->msg, SOUP_STATUS_NOT_FOUND,
        "the call's agent template \"%s\" is not on this instance",
        stored->agent);
  } else {
    end_local_copy (server, r->token);
    /* Still paused: va_server_start_call() keeps it so until the answer. */
    e = va_server_start_call (server, r->msg, TRUE, tmpl, stored->agent,
        g_steal_pointer (&r->offer), r->token, stored, r->post_us);
    e->state_us = state_us;
    server->resumed++;
    g_clear_object (&r->msg);
  }
  va_stored_call_free (stored);
  resume_free (r);
}

/* Loads the call's state from Redis (off the main context), then starts
 * it here with its conversation. */
void
va_resume_call (VaServer *server, SoupServerMessage *msg, const gchar *token,
    VaOffer *offer, gint64 post_us)
{
  Resume *r = g_new0 (Resume, 1);

  r->server = server;
  r->msg = g_object_ref (msg);
  r->offer = offer;
  r->token = g_strdup (token);
  r->post_us = post_us;
  soup_server_message_pause (msg);
  g_hash_table_add (server->resumes, r);
  va_call_state_load (
      va_scaleout_get_redis (server->scaleout), token, resume_loaded, r);
}

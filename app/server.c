/* voiceagent: the HTTP server (WHIP, WHEP, demo page, metrics, health).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Resources:
 *   POST /whip[/{agent}]                 a call (RFC 9725), 201 + answer
 *   PATCH, DELETE, GET /calls/{id}       the call's WHIP session
 *   POST /whep/{id}                      listen to a call, 201 + answer
 *   PATCH, DELETE, GET /calls/{id}/listeners/{lid}
 *   GET /, /metrics, /healthz, /readyz, /calls
 * Every response carries CORS headers; errors have a JSON body
 * {"error": "...", "status": N}. Main context only.
 *
 * With --redis (docs/deployment.md): a full or draining instance answers
 * POST /whip with 307 to the least-loaded live one, every call's state
 * goes to Redis as it changes, and POST /whip with a resume token
 * rebuilds a call that lived on another instance.
 *
 * This file holds the calls (their registry, WHIP and WHEP, sessions),
 * the routing and the life cycle; beside it, sharing server-private.h:
 * access.c (who may do what), respond.c (responses), ops.c (operator
 * endpoints), resume.c (state in Redis, resume), and httpguard.c in front
 * (connections and request limits).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "auth.h"
#include "oplog.h"
#include "server-private.h"
#include "front.h"
#include "worker.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug


static gboolean
check_content_type (
    VaServer *server, SoupServerMessage *msg, const gchar *expected)
{
  const gchar *type = soup_message_headers_get_content_type (
      soup_server_message_get_request_headers (msg), NULL);

  if (type && g_ascii_strcasecmp (type, expected) == 0)
    return TRUE;
  va_respond_error (server, msg, SOUP_STATUS_UNSUPPORTED_MEDIA_TYPE,
      "Content-Type must be %s (got %s)", expected, type ? type : "none");
  return FALSE;
}

/* The body, already bounded by --max-body while it was read (httpguard.c
 * answered 413 past it). */
static void
get_body (SoupServerMessage *msg, const gchar **data, gsize *len)
{
  GBytes *bytes = va_http_guard_get_body (msg);

  *data = bytes ? g_bytes_get_data (bytes, len) : NULL;
  if (*data == NULL) {
    *data = "";
    *len = 0;
  }
}

static VaOffer *
parse_offer (VaServer *server, SoupServerMessage *msg)
{
  const gchar *data;
  gsize len;
  GError *error = NULL;
  VaOffer *offer;

  if (!check_content_type (server, msg, SDP_TYPE))
    return NULL;
  get_body (msg, &data, &len);
  offer = va_offer_parse (data, len, &error);
  if (offer == NULL) {
    guint status = error->code == VA_SDP_ERROR_PARSE
        ? SOUP_STATUS_BAD_REQUEST
        : SOUP_STATUS_UNPROCESSABLE_ENTITY;
    va_metrics_call_rejected (
        server->metrics, status == 400 ? "bad-sdp" : "no-audio");
    va_respond_error (server, msg, status, "%s", error->message);
    g_error_free (error);
  }
  return offer;
}

/* ---- Calls ---- */

static void
unpause (SoupServerMessage **pending)
{
  SoupServerMessage *msg = g_steal_pointer (pending);

  if (msg) {
    soup_server_message_unpause (msg);
    g_object_unref (msg);
  }
}

/* The session URL, with the capability that grants it: WHIP clients use
 * it verbatim for PATCH and DELETE (sending their own bearer token, which
 * grants only POST). Absolute with --redis: behind a load balancer, PATCH
 * and DELETE must reach the instance that runs the call. */
static gchar *
session_location (CallEntry *e, const gchar *lid, const gchar *token)
{
  return g_strdup_printf ("%s/calls/%s%s%s?access_token=%s",
      e->server->base_url ? e->server->base_url : "", va_call_get_id (e->call),
      lid ? "/listeners/" : "", lid ? lid : "", token);
}

static void add_call_headers (CallEntry *e);

static void
on_call_answered (
    VaCall *call, const gchar *sdp, const GError *error, gpointer data)
{
  CallEntry *e = data;
  gchar *location;

  if (e->pending == NULL)
    return;
  if (error) {
    va_respond_error (e->server, e->pending, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
  } else {
    add_call_headers (e);
    location = session_location (e, NULL, e->call_token);
    va_respond_sdp (e->server, e->pending, va_call_get_id (call), sdp, location,
        va_peer_get_etag (va_call_get_peer (call)));
    g_free (location);
  }
  unpause (&e->pending);
}

static void
call_entry_free (CallEntry *e)
{
  GHashTableIter iter;
  gpointer value;

  g_clear_handle_id (&e->agent_hangup, g_source_remove);
  if (e->pending) {
    va_respond_error (e->server, e->pending, SOUP_STATUS_SERVICE_UNAVAILABLE,
        "the call ended before it was answered");
    unpause (&e->pending);
  }
  g_hash_table_iter_init (&iter, e->pending_listeners);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    SoupServerMessage *m = value;
    va_respond_error (
        e->server, m, SOUP_STATUS_SERVICE_UNAVAILABLE, "the call ended");
    unpause (&m);
  }
  g_hash_table_unref (e->pending_listeners);
  g_hash_table_unref (e->listener_tokens);
  g_clear_handle_id (&e->state_write, g_source_remove);
  va_conversation_free (e->conversation);
  va_call_free (e->call);
  g_free (e->agent);
  g_free (e->call_token);
  g_free (e->token);
  g_free (e->vars_json);
  g_free (e);
}

static void check_drained (VaServer *server);

/* Dropped buffers mean the disk was too slow; truncated, that the call
 * outgrew --record-max-mb: both make it a warning. */
static void
log_recording (const gchar *call_id, const VaRecording *rec)
{
  gboolean lossy = rec->dropped > 0 || rec->truncated;
  VaLogLine *l = va_log_begin (
      lossy ? VA_LOG_WARNING : VA_LOG_INFO, "recording.end", call_id, 0);

  va_log_add_string (l, "path", rec->path);
  va_log_add_int (l, "bytes", rec->bytes);
  va_log_add_double (l, "seconds", rec->seconds);
  va_log_add_int (l, "dropped_buffers", rec->dropped);
  va_log_add_bool (l, "truncated", rec->truncated);
  va_log_end (l);
}

/* Adds the call's recording to @r and to the totals in /metrics. */
static void
add_recording (CallEntry *e, VaCallRecord *r)
{
  const VaRecording *rec = va_call_get_recording (e->call);
  VaRecordingMetrics *m = &e->server->recording;

  if (!e->record)
    return;
  if (rec->path == NULL) {
    m->skipped++;
    return;
  }
  r->recording = g_strdup (rec->path);
  r->recording_bytes = rec->bytes;
  r->recording_seconds = rec->seconds;
  r->recording_dropped = rec->dropped;
  m->written++;
  m->bytes += rec->bytes;
  m->dropped += rec->dropped;
  log_recording (r->id, rec);
}

/* The call's durable record, written off the main thread by VaRecords,
 * and with --webhook sent off it by VaWebhook. */
static void
write_record (CallEntry *e, VaCallEndReason reason)
{
  VaCallRecord *r;

  if (e->server->records == NULL && e->server->webhook == NULL)
    return;
  r = g_new0 (VaCallRecord, 1);
  r->id = g_strdup (va_call_get_id (e->call));
  r->agent = g_strdup (e->agent);
  r->started_us = va_call_get_start_time (e->call);
  r->ended_us = g_get_real_time ();
  r->end_reason = g_strdup (va_call_end_reason_name (reason));
  r->transcript_json = va_conversation_transcript_json (e->conversation);
  r->turns_json = va_conversation_turns_json (e->conversation);
  r->usage = *va_conversation_get_usage (e->conversation);
  r->cost_usd = va_usage_cost (&r->usage, e->server->config);
  add_recording (e, r);
  if (e->server->webhook)
    va_webhook_send (
        e->server->webhook, "call.ended", r->id, va_call_record_to_json (r));
  if (e->server->records)
    va_records_write (e->server->records, r);
  else
    va_call_record_free (r);
}

gboolean
va_server_asks_recording (SoupServerMessage *msg)
{
  const gchar *query = g_uri_get_query (soup_server_message_get_uri (msg));
  GHashTable *params;
  gboolean yes;

  if (query == NULL)
    return FALSE;
  params = soup_form_decode (query);
  yes = g_strcmp0 (g_hash_table_lookup (params, "record"), "1") == 0;
  g_hash_table_unref (params);
  return yes;
}

/* Whether --record applies to a call: every call, or with --record-calls
 * opt-in those whose caller @asked (?record=1, passed on by a front). */
static gboolean
wants_recording (VaServer *server, gboolean asked)
{
  if (server->config->record_dir == NULL)
    return FALSE;
  return asked || g_str_equal (server->config->record_calls, "all");
}

/* Before the call starts: where it records, if it does. */
static void
set_recording (CallEntry *e, gboolean record)
{
  const VaConfig *c = e->server->config;

  e->record = record;
  if (record)
    va_call_set_recording (
        e->call, c->record_dir, (guint64)c->record_max_mb * 1024 * 1024);
}

/* glibc keeps what the calls' threads freed in its arenas: after 25 calls
 * the heap held 70 MB, 19 MB of it in use. Once no call is left (2 s after
 * the last one ended, when its pipeline is gone), that goes back to the
 * system. */
static gboolean
trim_heap (gpointer data)
{
  VaServer *server = data;

  server->trim_timer = 0;
#ifdef __GLIBC__
  if (g_hash_table_size (server->calls) == 0)
    malloc_trim (0);
#endif
  return G_SOURCE_REMOVE;
}

static void
trim_heap_when_idle (VaServer *server)
{
  g_clear_handle_id (&server->trim_timer, g_source_remove);
  if (g_hash_table_size (server->calls) == 0)
    server->trim_timer = g_timeout_add (2000, trim_heap, server);
}

static void
log_call_end (CallEntry *e, VaCallEndReason reason, const gchar *detail)
{
  const VaUsage *usage = va_conversation_get_usage (e->conversation);
  VaLogLine *l = va_log_begin (
      reason == VA_CALL_END_ERROR ? VA_LOG_WARNING : VA_LOG_INFO, "call.end",
      va_call_get_id (e->call), va_conversation_get_turn (e->conversation));

  va_log_add_string (l, "reason", va_call_end_reason_name (reason));
  va_log_add_string (l, "detail", detail);
  va_log_add_double (l, "duration_s",
      (g_get_real_time () - va_call_get_start_time (e->call)) /
          (gdouble)G_USEC_PER_SEC);
  va_log_add_int (l, "spoken_turns", usage->turns);
  va_log_add_int (l, "barge_ins", usage->barge_ins);
  va_log_add_int (l, "tool_calls", usage->tool_calls);
  va_log_end (l);
}

static void
on_call_ended (
    VaCall *call, VaCallEndReason reason, const gchar *detail, gpointer data)
{
  CallEntry *e = data;
  VaServer *server = e->server;
  gboolean failed = reason != VA_CALL_END_HANGUP &&
      reason != VA_CALL_END_SHUTDOWN && reason != VA_CALL_END_MAX_DURATION &&
      reason != VA_CALL_END_AGENT_HANGUP;

  log_call_end (e, reason, detail);
  va_metrics_call_ended (
      server->metrics, va_call_end_reason_name (reason), failed);
  va_metrics_add_usage (
      server->metrics, va_conversation_get_usage (e->conversation));
  write_record (e, reason);
  va_state_end (e, reason);
  /* Gateway mode: the caller is on Janus, which only the front can hang
   * up. (A hang-up came from the front; a shutdown's calls move.) */
  if (reason != VA_CALL_END_HANGUP && reason != VA_CALL_END_SHUTDOWN)
    va_worker_tell_fronts (server, "ended", va_call_get_id (call));
  va_grants_end (server->grants, va_call_get_id (call), NULL);
  g_hash_table_remove (server->calls, va_call_get_id (call));
  va_server_publish_load (server);
  trim_heap_when_idle (server);
  check_drained (server);
}

static void
on_call_message (VaCall *call, const GstStructure *s, gpointer data)
{
  CallEntry *e = data;

  va_conversation_handle (e->conversation, s);
  va_state_changed (e, s);
}

static void
conversation_send (const gchar *json, gpointer data)
{
  CallEntry *e = data;

  va_log_data_channel_event (va_call_get_id (e->call), json,
      va_conversation_get_turn (e->conversation));
  va_call_send_json (e->call, json);
}

static void
conversation_observe (const gchar *name, gdouble seconds, gpointer data)
{
  CallEntry *e = data;

  va_metrics_observe (e->server->metrics, name, seconds);
}

static gboolean
end_call_by_agent (gpointer data)
{
  CallEntry *e = data;

  e->agent_hangup = 0;
  va_call_end (
      e->call, VA_CALL_END_AGENT_HANGUP, "the agent ended the call (end_call)");
  return G_SOURCE_REMOVE;
}

/* The end_call event must reach the caller's page before its connection
 * goes (SCTP sends it after this returns): a moment's grace. */
#define AGENT_HANGUP_GRACE_MS 500

/* From inside the conversation's message handling: the call (and its
 * conversation) must outlive that, so it ends from the main loop later. */
static void
conversation_end_call (gpointer data)
{
  CallEntry *e = data;

  if (e->agent_hangup == 0)
    e->agent_hangup =
        g_timeout_add (AGENT_HANGUP_GRACE_MS, end_call_by_agent, e);
}

static void
conversation_underrun (gpointer data)
{
  CallEntry *e = data;

  va_metrics_playout_underrun (e->server->metrics);
}

static GHashTable *
call_variables (VaServer *server, const gchar *id, gint opus_pt)
{
  VaConfig *c = server->config;
  GHashTable *vars =
      g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);

  g_hash_table_insert (vars, (gpointer) "CALL_ID", g_strdup (id));
  g_hash_table_insert (vars, (gpointer) "SESSION", g_strdup (id));
  g_hash_table_insert (
      vars, (gpointer) "OPUS_PT", g_strdup_printf ("%d", opus_pt));
  g_hash_table_insert (
      vars, (gpointer) "DEEPGRAM_URL", g_strdup (c->deepgram_url));
  g_hash_table_insert (
      vars, (gpointer) "ELEVENLABS_URL", g_strdup (c->elevenlabs_url));
  g_hash_table_insert (
      vars, (gpointer) "ELEVENLABS_VOICE_ID", g_strdup (c->elevenlabs_voice));
  g_hash_table_insert (vars, (gpointer) "LLM_URL", g_strdup (c->llm_url));
  g_hash_table_insert (vars, (gpointer) "LLM_MODEL", g_strdup (c->llm_model));
  g_hash_table_insert (
      vars, (gpointer) "SYSTEM_PROMPT", g_strdup (c->system_prompt));
  g_hash_table_insert (vars, (gpointer) "GREETING", g_strdup (c->greeting));
  return vars;
}

/* Ids name calls in URLs, logs and records; they grant nothing (the
 * tokens do), but they are random too, so one call's id says nothing of
 * another's. */
gchar *
va_server_new_call_id (void)
{
  gchar *token = va_auth_new_token ();

  token[16] = '\0';
  return token;
}

/* 307 to @base's WHIP endpoint for @agent, keeping the resume token. */
static void
redirect (VaServer *server, SoupServerMessage *msg, const gchar *base,
    const gchar *agent, const gchar *token)
{
  gboolean named = !g_str_equal (agent, server->config->default_agent);
  gchar *location = g_strdup_printf ("%s/whip%s%s%s%s", base, named ? "/" : "",
      named ? agent : "", token ? "?resume=" : "", token ? token : "");
  gchar *json =
      g_strdup_printf ("{\"redirect\":\"%s/whip\",\"status\":307}", base);

  soup_message_headers_replace (
      soup_server_message_get_response_headers (msg), "Location", location);
  va_respond_json (server, msg, SOUP_STATUS_TEMPORARY_REDIRECT, json);
  GST_DEBUG (
      "HTTP 307 to %s/whip (%s)", base, server->draining ? "draining" : "full");
  va_metrics_call_rejected (server->metrics, "redirected");
  g_free (json);
  g_free (location);
}

static gboolean
check_capacity (VaServer *server, SoupServerMessage *msg, const gchar *agent,
    const gchar *token)
{
  const gchar *why = NULL;
  gchar *elsewhere;

  if (server->draining)
    why = "the server is draining for a restart; try another instance";
  /* Resumes still loading their state count: each becomes a call. */
  else if (va_server_load (server) >= server->config->max_calls)
    why = "the server is at its call limit (--max-calls)";
  if (why == NULL)
    return TRUE;
  /* RFC 9725 §4.5 lets a WHIP endpoint redirect with 307. */
  elsewhere = server->scaleout ? va_scaleout_pick (server->scaleout) : NULL;
  if (elsewhere) {
    redirect (server, msg, elsewhere, agent, token);
    g_free (elsewhere);
    return FALSE;
  }
  va_metrics_call_rejected (
      server->metrics, server->draining ? "draining" : "full");
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", RETRY_AFTER_FULL);
  va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", why);
  return FALSE;
}

/* Gateway mode: the front times a failover up to this moment. */
static void
on_call_first_media (VaCall *call, gpointer data)
{
  CallEntry *e = data;

  e->media = TRUE;
  va_worker_tell_fronts (e->server, "media", va_call_get_id (call));
}

/* Creates the call and answers @offer (taken); @stored (a resumed call's
 * state, or NULL) gives its conversation. The POST is paused (unless
 * @paused says it already is) until the answer. Returns the call's entry,
 * owned by server->calls. */
static void
log_call_start (CallEntry *e)
{
  VaLogLine *l =
      va_log_begin (VA_LOG_INFO, "call.start", va_call_get_id (e->call), 0);

  va_log_add_string (l, "agent", e->agent);
  va_log_add_int (l, "active", g_hash_table_size (e->server->calls));
  va_log_end (l);
}

/* A new call's entry, registered under @id (taken). */
static CallEntry *
new_entry (VaServer *server, gchar *id, const gchar *agent, gint64 post_us)
{
  static const VaCallCallbacks callbacks = { on_call_answered, on_call_ended,
    on_call_message, on_call_first_media };
  static const VaConversationOutput conversation_output = { conversation_send,
    conversation_observe, conversation_underrun, conversation_end_call };
  CallEntry *e = g_new0 (CallEntry, 1);

  e->server = server;
  e->agent = g_strdup (agent);
  e->post_us = post_us;
  e->state_us = -1;
  e->pending_listeners =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  e->listener_tokens =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  e->call_token = va_grants_issue (server->grants, id, NULL);
  e->call = va_call_new (id, server->config, &callbacks, e);
  va_call_set_call_token (e->call, e->call_token);
  e->conversation = va_conversation_new (&conversation_output, e);
  g_hash_table_insert (server->calls, id, e);
  log_call_start (e);
  va_metrics_call_started (server->metrics);
  va_server_publish_load (server);
  return e;
}

CallEntry *
va_server_start_call (VaServer *server, SoupServerMessage *msg, gboolean paused,
    const VaTemplate *tmpl, const gchar *agent, VaOffer *offer,
    const gchar *token, const VaStoredCall *stored, gint64 post_us)
{
  gchar *id = va_server_new_call_id ();
  CallEntry *e = new_entry (server, id, agent, post_us);
  GHashTable *vars = call_variables (server, id, offer->opus_pt);
  GError *error = NULL;

  if (server->scaleout)
    va_state_prepare (e, vars, token, stored);
  set_recording (e, wants_recording (server, va_server_asks_recording (msg)));
  e->pending = g_object_ref (msg);
  if (!paused)
    soup_server_message_pause (msg);
  if (!va_call_start (e->call, tmpl, vars, offer, &error)) {
    /* The detail (a template's text) is for the log, not the caller. */
    GST_WARNING ("call %s: cannot start: %s", id, error->message);
    va_respond_error (server, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR,
        "the server cannot start a call now; its log says why");
    unpause (&e->pending);
    va_call_end (e->call, VA_CALL_END_ERROR, error->message);
    g_error_free (error);
  }
  e->pipeline_us = g_get_monotonic_time () - post_us;
  g_hash_table_unref (vars);
  return e;
}

CallEntry *
va_server_start_rtp_call (VaServer *server, const VaRtpCallRequest *req,
    const VaTemplate *tmpl, const VaStoredCall *stored, guint *rtp_port,
    GError **error)
{
  VaRtpLink *link = va_rtp_link_new (server->config->rtp_bind, error);
  GHashTable *vars;
  CallEntry *e;

  if (link == NULL)
    return NULL;
  *rtp_port = va_rtp_link_get_port (link);
  e = new_entry (
      server, g_strdup (req->id), req->agent, g_get_monotonic_time ());
  if (req->call_token) {
    /* The caller knows the front's (the front checks it, not us). */
    g_free (e->call_token);
    e->call_token = g_strdup (req->call_token);
    va_call_set_call_token (e->call, e->call_token);
  }
  vars = call_variables (server, req->id, req->opus_pt);
  g_hash_table_insert (
      vars, (gpointer) "RTP_HOST", g_strdup (req->gateway_host));
  g_hash_table_insert (
      vars, (gpointer) "RTP_PORT", g_strdup_printf ("%u", req->gateway_port));
  if (server->scaleout)
    va_state_prepare (e, vars, req->token, stored);
  set_recording (e, wants_recording (server, req->record));
  if (!va_call_start_rtp (e->call, tmpl, vars, link, error)) {
    GST_WARNING ("call %s: cannot start: %s", req->id, (*error)->message);
    va_call_end (e->call, VA_CALL_END_ERROR, (*error)->message);
    e = NULL;
  } else {
    e->pipeline_us = g_get_monotonic_time () - e->post_us;
  }
  g_hash_table_unref (vars);
  return e;
}

static void
whip_post (VaServer *server, SoupServerMessage *msg, const gchar *agent,
    GHashTable *query)
{
  gint64 post_us = g_get_monotonic_time ();
  const gchar *token = va_resume_token_of (msg, query);
  const VaTemplate *tmpl;
  VaOffer *offer;

  if (token && !va_resume_check_token (server, msg, token))
    return;
  if (!check_capacity (server, msg, agent, token))
    return;
  if (server->front) {
    /* The workers hold the templates; the front only relays. */
    if ((offer = parse_offer (server, msg)))
      va_front_post (server->front, msg, agent, offer, post_us);
    return;
  }
  tmpl = g_hash_table_lookup (server->templates, agent);
  if (tmpl && va_template_get_kind (tmpl) != VA_TEMPLATE_WEBRTC)
    tmpl = NULL; /* plain RTP: only a gateway's worker call may use it */
  if (tmpl == NULL && token == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no agent template \"%s\" (pipelines/%s.pipeline with a "
        "webrtcbin)",
        agent, agent);
    return;
  }
  offer = parse_offer (server, msg);
  if (offer == NULL)
    return;
  if (token)
    va_resume_call (server, msg, token, offer, post_us);
  else
    va_server_start_call (
        server, msg, FALSE, tmpl, agent, offer, NULL, NULL, post_us);
}

/* Voiceagent-Call-Token, Voiceagent-Resume-Token and Server-Timing on
 * the 201. */
static void
add_call_headers (CallEntry *e)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (e->pending);
  gdouble answer_ms = (g_get_monotonic_time () - e->post_us) / 1000.0;
  gchar *timing;

  soup_message_headers_replace (h, CALL_TOKEN_HEADER, e->call_token);
  if (e->token)
    soup_message_headers_replace (h, RESUME_TOKEN_HEADER, e->token);
  if (e->state_us >= 0) {
    timing =
        g_strdup_printf ("state;dur=%.1f, pipeline;dur=%.1f, answer;dur=%.1f",
            e->state_us / 1000.0, e->pipeline_us / 1000.0, answer_ms);
    GST_INFO ("call %s resumed: state loaded in %.1f ms, pipeline started "
              "in %.1f ms, answered in %.1f ms",
        va_call_get_id (e->call), e->state_us / 1000.0, e->pipeline_us / 1000.0,
        answer_ms);
  } else {
    timing = g_strdup_printf ("pipeline;dur=%.1f, answer;dur=%.1f",
        e->pipeline_us / 1000.0, answer_ms);
  }
  soup_message_headers_replace (h, "Server-Timing", timing);
  g_free (timing);
}

/* ---- Sessions: PATCH (trickle / ICE restart) and DELETE ---- */

/* Lenient: some clients send their ETag in an "ETag" request header. */
static const gchar *
get_if_match (SoupServerMessage *msg)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers (msg);
  const gchar *v = soup_message_headers_get_one (h, "If-Match");

  return v ? v : soup_message_headers_get_one (h, "ETag");
}

/* RFC 9725 §4.3.2: If-Match "*", or credentials other than the offer's. */
static gboolean
is_ice_restart (
    const gchar *if_match, const VaSdpFrag *frag, const gchar *remote_ufrag)
{
  return g_str_equal (if_match, "*") ||
      (frag->ufrag && g_strcmp0 (frag->ufrag, remote_ufrag) != 0);
}

VaSdpFrag *
va_server_read_patch (VaServer *server, SoupServerMessage *msg,
    const gchar *etag, const gchar *remote_ufrag)
{
  const gchar *if_match = get_if_match (msg), *data;
  gsize len;
  VaSdpFrag *frag;
  GError *error = NULL;

  if (!check_content_type (server, msg, SDPFRAG_TYPE))
    return NULL;
  get_body (msg, &data, &len);
  if (if_match == NULL) {
    va_respond_error (server, msg, 428 /* Precondition Required, RFC 6585 */,
        "PATCH needs If-Match with the session's ETag (or \"*\" for an "
        "ICE restart)");
    return NULL;
  }
  frag = va_sdpfrag_parse (data, len, &error);
  if (frag == NULL) {
    va_respond_error (
        server, msg, SOUP_STATUS_BAD_REQUEST, "%s", error->message);
    g_error_free (error);
    return NULL;
  }
  if (is_ice_restart (if_match, frag, remote_ufrag)) {
    /* The session stays as it is: RFC 9725 §4.3 has a server that
     * trickles but does not restart answer 422. */
    va_respond_error (server, msg, SOUP_STATUS_UNPROCESSABLE_ENTITY,
        "ICE restart is not supported%s: the session goes on with its "
        "current ICE credentials; to reconnect, DELETE it and POST a new "
        "offer",
        server->front ? " in gateway mode (the media gateway's plugin takes "
                        "one offer per call)"
                      : "");
  } else if (g_strcmp0 (if_match, etag) != 0) {
    va_respond_error (server, msg, SOUP_STATUS_PRECONDITION_FAILED,
        "If-Match %s does not match the session's ETag (the 201's ETag "
        "header)",
        if_match);
  } else {
    return frag;
  }
  va_sdpfrag_free (frag);
  return NULL;
}

static void
session_patch (VaServer *server, SoupServerMessage *msg, VaPeer *peer)
{
  VaSdpFrag *frag = va_server_read_patch (
      server, msg, va_peer_get_etag (peer), va_peer_get_remote_ufrag (peer));

  if (frag == NULL)
    return;
  va_peer_add_candidates (peer, frag);
  va_respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  va_sdpfrag_free (frag);
}

static void
listener_answered (VaCall *call, const gchar *listener_id, const gchar *sdp,
    const GError *error, gpointer data)
{
  CallEntry *e = data;
  SoupServerMessage *msg =
      g_hash_table_lookup (e->pending_listeners, listener_id);
  gchar *location;

  if (msg == NULL)
    return;
  /* The table owns the key (a copy of the id); the message is ours now. */
  g_hash_table_remove (e->pending_listeners, listener_id);
  if (error) {
    va_respond_error (e->server, msg, SOUP_STATUS_BAD_REQUEST,
        "the offer was not accepted: %s", error->message);
    va_call_remove_listener (call, listener_id);
  } else {
    location = session_location (
        e, listener_id, g_hash_table_lookup (e->listener_tokens, listener_id));
    va_respond_sdp (e->server, msg, va_call_get_id (call), sdp, location,
        va_peer_get_etag (va_call_get_listener (call, listener_id)));
    g_free (location);
  }
  unpause (&msg);
}

/* The call's listeners; ends the tokens of those that are gone (DELETE,
 * ICE failed, or the offer was refused). */
static guint
live_listeners (CallEntry *e)
{
  GHashTableIter iter;
  gpointer lid;

  g_hash_table_iter_init (&iter, e->listener_tokens);
  while (g_hash_table_iter_next (&iter, &lid, NULL))
    if (va_call_get_listener (e->call, lid) == NULL) {
      va_grants_end (e->server->grants, va_call_get_id (e->call), lid);
      g_hash_table_iter_remove (&iter);
    }
  return g_hash_table_size (e->listener_tokens);
}

/* Calls, resumes still loading and listeners: each holds a webrtcbin and
 * an encoder, so --max-calls counts them all. */
guint
va_server_load (VaServer *server)
{
  GHashTableIter iter;
  gpointer value;
  guint load =
      g_hash_table_size (server->calls) + g_hash_table_size (server->resumes);

  if (server->front)
    load += va_front_count (server->front);
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    load += live_listeners (value);
  return load;
}

static gboolean
check_listener_room (VaServer *server, SoupServerMessage *msg, CallEntry *e)
{
  const gchar *why = NULL;

  if (live_listeners (e) >= server->config->max_listeners)
    why = "the call has as many listeners as it may have (--max-listeners)";
  else if (va_server_load (server) >= server->config->max_calls)
    why = "the server is at its limit of calls and listeners (--max-calls)";
  if (why == NULL)
    return TRUE;
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
      "Retry-After", RETRY_AFTER_FULL);
  va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", why);
  return FALSE;
}

static void
whep_post (VaServer *server, SoupServerMessage *msg, CallEntry *e)
{
  VaOffer *offer;
  GError *error = NULL;
  gchar *lid;

  if (!check_listener_room (server, msg, e) ||
      (offer = parse_offer (server, msg)) == NULL)
    return;
  lid = va_server_new_call_id ();
  g_hash_table_insert (e->listener_tokens, g_strdup (lid),
      va_grants_issue (server->grants, va_call_get_id (e->call), lid));
  if (!va_call_add_listener (
          e->call, lid, offer, listener_answered, e, &error)) {
    guint status =
        g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_BUSY)
        ? SOUP_STATUS_CONFLICT
        : SOUP_STATUS_INTERNAL_SERVER_ERROR;
    if (status == SOUP_STATUS_CONFLICT)
      soup_message_headers_replace (
          soup_server_message_get_response_headers (msg), "Retry-After",
          RETRY_AFTER_NO_AUDIO);
    va_respond_error (server, msg, status, "%s", error->message);
    g_error_free (error);
    g_hash_table_remove (e->listener_tokens, lid);
    va_grants_end (server->grants, va_call_get_id (e->call), lid);
    g_free (lid);
    return;
  }
  g_hash_table_insert (e->pending_listeners, lid, g_object_ref (msg));
  soup_server_message_pause (msg);
}

/* ---- Routing ---- */

static void
route_session (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts, GHashTable *query)
{
  const gchar *lid = NULL;
  CallEntry *e;
  VaPeer *peer;

  if (g_str_equal (method, "OPTIONS")) {
    va_respond_options (server, msg, "OPTIONS, GET, PATCH, DELETE", NULL);
    return;
  }
  if (server->front &&
      va_front_route_session (server->front, msg, method, parts, query))
    return;
  if (parts[2] &&
      (!g_str_equal (parts[2], "listeners") || !parts[3] || parts[4])) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no such resource");
    return;
  }
  lid = parts[2] ? parts[3] : NULL;
  if (!(e = va_access_call (server, msg, query, parts[1], lid)))
    return;
  peer = lid ? va_call_get_listener (e->call, lid) : va_call_get_peer (e->call);
  if (peer == NULL) {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no listener %s", lid);
    return;
  }

  if (g_str_equal (method, "DELETE")) {
    /* Always 200, whatever If-Match says: a client must be able to hang up. */
    if (lid) {
      va_call_remove_listener (e->call, lid);
      live_listeners (e); /* ends its token */
    } else
      va_call_end (e->call, VA_CALL_END_HANGUP, NULL);
    va_respond_empty (server, msg, SOUP_STATUS_OK);
  } else if (g_str_equal (method, "PATCH")) {
    session_patch (server, msg, peer);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    va_respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else {
    va_respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "%s is not allowed on a session", method);
  }
}

/* OPTIONS on /whip: ICE servers (with TURN credentials made for this
 * answer alone) only for a request that may call. */
static void
endpoint_options (VaServer *server, SoupServerMessage *msg, gboolean whep)
{
  gchar *ice_id = !whep && va_access_may_call (server, msg)
      ? va_server_new_call_id ()
      : NULL;

  va_respond_options (server, msg, "OPTIONS, GET, POST", ice_id);
  g_free (ice_id);
}

static void
route_endpoint (VaServer *server, SoupServerMessage *msg, const gchar *method,
    gchar **parts, GHashTable *query, gboolean whep)
{
  CallEntry *e;

  if (g_str_equal (method, "OPTIONS")) {
    endpoint_options (server, msg, whep);
  } else if (g_str_equal (method, "GET") || g_str_equal (method, "HEAD")) {
    va_respond_empty (server, msg, SOUP_STATUS_NO_CONTENT);
  } else if (!g_str_equal (method, "POST")) {
    va_respond_error (server, msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "use POST with an SDP offer");
  } else if (!whep) {
    if (va_access_caller (server, msg))
      whip_post (server, msg,
          parts[1] ? parts[1] : server->config->default_agent, query);
  } else if (parts[1] == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "WHEP needs the call: POST /whep/{call id}");
  } else if ((e = va_access_call (server, msg, query, parts[1], NULL))) {
    whep_post (server, msg, e);
  }
}

static void
handle_request (SoupServer *soup, SoupServerMessage *msg, const gchar *path,
    GHashTable *query, gpointer data)
{
  VaServer *server = data;
  const gchar *method = soup_server_message_get_method (msg);
  gchar **parts = g_strsplit (path + 1, "/", 5);

  GST_LOG ("%s %s", method, path);
  if (g_strcmp0 (parts[0], "whip") == 0 &&
      (parts[1] == NULL || parts[2] == NULL))
    route_endpoint (server, msg, method, parts, query, FALSE);
  else if (g_strcmp0 (parts[0], "whep") == 0 &&
      (parts[1] == NULL || parts[2] == NULL))
    route_endpoint (server, msg, method, parts, query, TRUE);
  else if (g_strcmp0 (parts[0], "calls") == 0 && parts[1] && *parts[1])
    route_session (server, msg, method, parts, query);
  else if (g_strcmp0 (parts[0], "gateway") == 0)
    va_worker_route (server, msg, method, parts);
  else if (g_str_equal (method, "OPTIONS"))
    va_respond_options (server, msg, "OPTIONS, GET", NULL);
  else
    va_ops_route (server, msg, path, query);
  g_strfreev (parts);
}

/* ---- Life cycle ---- */

static gboolean
start_scaleout (VaServer *server, GError **error)
{
  gchar *url =
      va_scaleout_default_url (server->config, va_server_get_port (server));

  server->scaleout =
      va_scaleout_new (server->config, url, va_state_resync, server, error);
  if (server->scaleout == NULL) {
    g_free (url);
    return FALSE;
  }
  g_print ("voiceagent: scale-out through Redis, announced as %s\n", url);
  server->base_url = url;
  server->state_refresh_timer =
      g_timeout_add_seconds (VA_CALL_STATE_REFRESH_S, va_state_refresh, server);
  va_server_publish_load (server);
  return TRUE;
}

/* --ops-listen ADDR:PORT (IPv6 as [ADDR]:PORT). */
static gboolean
listen_ops (VaServer *server, GError **error)
{
  GSocketConnectable *where =
      g_network_address_parse (server->config->ops_listen, 0, error);
  GSocketAddress *address = NULL;
  guint port = 0;

  if (where)
    address = g_inet_socket_address_new_from_string (
        g_network_address_get_hostname (G_NETWORK_ADDRESS (where)),
        g_network_address_get_port (G_NETWORK_ADDRESS (where)));
  if (address)
    port = va_http_guard_listen (server->guard, address, TRUE, error);
  else if (where)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--ops-listen %s: give an IP address and a port, e.g. "
        "127.0.0.1:9090",
        server->config->ops_listen);
  if (port)
    g_print ("voiceagent: operator endpoints on http://%s/ (no token)\n",
        server->config->ops_listen);
  g_clear_object (&address);
  g_clear_object (&where);
  return port != 0;
}

/* Gateway mode: the front needs workers (the registry) and their token. */
static gboolean
start_front (VaServer *server, GError **error)
{
  if (server->scaleout == NULL || server->config->cluster_token == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--gateway needs --redis (where workers register) and "
        "VOICEAGENT_CLUSTER_TOKEN (the workers' token)");
    return FALSE;
  }
  server->front = va_front_new (server);
  return TRUE;
}

VaServer *
va_server_new (VaConfig *config, GError **error)
{
  VaServer *server = g_new0 (VaServer, 1);
  VaHttpGuardLimits limits = { config->max_body, config->max_connections,
    config->request_timeout_s, config->idle_timeout_s, config->cors_origin };
  GSocketAddress *address;
  gboolean listening;

  server->config = config;
  server->templates = va_templates_load (config->pipelines_dir, error);
  if (server->templates == NULL) {
    va_server_free (server);
    return NULL;
  }
  if (!g_hash_table_contains (server->templates, config->default_agent)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "the default agent \"%s\" has no template %s/%s.pipeline",
        config->default_agent, config->pipelines_dir, config->default_agent);
    va_server_free (server);
    return NULL;
  }
  server->calls = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)call_entry_free);
  server->resumes = g_hash_table_new (NULL, NULL);
  server->grants = va_grants_new ();
  server->metrics = va_metrics_new ();
  server->records = va_records_open (config->database, error);
  if (server->records == NULL ||
      (config->record_dir &&
          !va_recorder_check_dir (config->record_dir, error))) {
    va_server_free (server);
    return NULL;
  }
  if (config->webhook_url) {
    VaWebhookOptions hook = { .attempts = config->webhook_retries,
      .timeout_s = config->webhook_timeout_s };
    server->webhook =
        va_webhook_new (config->webhook_url, config->webhook_secret, &hook);
  }
  server->soup = soup_server_new ("server-header", "voiceagent/" VERSION, NULL);
  soup_server_add_handler (server->soup, NULL, handle_request, server, NULL);
  va_worker_add_watch (server);
  server->guard = va_http_guard_new (server->soup, &limits);
  address = g_inet_socket_address_new_from_string (config->host, config->port);
  if (address == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--host %s is not an IP address", config->host);
    va_server_free (server);
    return NULL;
  }
  listening = va_http_guard_listen (server->guard, address, FALSE, error) &&
      (config->ops_listen == NULL || listen_ops (server, error));
  g_object_unref (address);
  if (!listening || (config->redis && !start_scaleout (server, error)) ||
      (config->gateway && !start_front (server, error))) {
    va_server_free (server);
    return NULL;
  }
  return server;
}

guint
va_server_get_port (VaServer *server)
{
  return va_http_guard_get_port (server->guard, FALSE);
}

guint
va_server_get_active_calls (VaServer *server)
{
  return g_hash_table_size (server->calls);
}

static void
check_drained (VaServer *server)
{
  GSourceFunc done = server->drain_done;

  if (!server->draining || done == NULL ||
      g_hash_table_size (server->calls) > 0)
    return;
  server->drain_done = NULL;
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  done (server->drain_data);
}

static gboolean
drain_timeout (gpointer data)
{
  VaServer *server = data;
  GHashTableIter iter;
  gpointer value;

  server->drain_timer = 0;
  GST_WARNING (
      "drain timeout: ending %u calls", g_hash_table_size (server->calls));
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    va_call_end (((CallEntry *)value)->call, VA_CALL_END_SHUTDOWN, NULL);
  return G_SOURCE_REMOVE;
}

void
va_server_drain (VaServer *server, GSourceFunc done, gpointer data)
{
  server->draining = TRUE;
  va_server_publish_load (server);
  server->drain_done = done;
  server->drain_data = data;
  if (server->drain_timer == 0)
    server->drain_timer = g_timeout_add_seconds (
        server->config->drain_timeout_s, drain_timeout, server);
  check_drained (server);
}

void
va_server_end_calls (VaServer *server)
{
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  drain_timeout (server);
}

void
va_server_free (VaServer *server)
{
  if (server == NULL)
    return;
  /* main() ends every call and waits for ended() before freeing. */
  g_warn_if_fail (
      server->calls == NULL || g_hash_table_size (server->calls) == 0);
  g_clear_handle_id (&server->drain_timer, g_source_remove);
  g_clear_handle_id (&server->state_refresh_timer, g_source_remove);
  g_clear_handle_id (&server->trim_timer, g_source_remove);
  g_clear_pointer (&server->front, va_front_free);
  /* The last writes (calls ended) go out before the registry entry goes. */
  g_clear_pointer (&server->scaleout, va_scaleout_free);
  g_queue_clear_full (
      &server->recently_ended, (GDestroyNotify)va_ended_call_free);
  if (server->resumes) {
    g_hash_table_foreach (server->resumes, (GHFunc)va_resume_free_key, NULL);
    g_hash_table_unref (server->resumes);
  }
  va_worker_close_watches (server);
  g_clear_pointer (&server->guard, va_http_guard_free);
  if (server->soup) {
    soup_server_disconnect (server->soup);
    g_object_unref (server->soup);
  }
  g_clear_pointer (&server->calls, g_hash_table_unref);
  g_clear_pointer (&server->grants, va_grants_free);
  g_clear_pointer (&server->templates, g_hash_table_unref);
  va_metrics_free (server->metrics);
  va_webhook_close (server->webhook);
  va_records_close (server->records);
  g_free (server->base_url);
  g_free (server);
}

/* voiceagent: what server.c and resume.c share: the server and its calls.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Private to app/: VaServer's fields and one CallEntry per live call.
 * Everything here is main-context only.
 */
#pragma once

#include <libsoup/soup.h>
#include "call.h"
#include "callstate.h"
#include "conversation.h"
#include "grants.h"
#include "httpguard.h"
#include "metrics.h"
#include "records.h"
#include "scaleout.h"
#include "sdp.h"
#include "server.h"
#include "template.h"
#include "webhook.h"

G_BEGIN_DECLS

#define SDP_TYPE "application/sdp"
#define SDPFRAG_TYPE "application/trickle-ice-sdpfrag"
#define RETRY_AFTER_FULL "5"
#define CALL_TOKEN_HEADER "Voiceagent-Call-Token"
#define RETRY_AFTER_NO_AUDIO "1"
#define RESUME_HEADER "Voiceagent-Resume"
#define RESUME_TOKEN_HEADER "Voiceagent-Resume-Token"
/* Writes of a call's state are coalesced over this long. */
#define STATE_WRITE_DELAY_MS 50

typedef struct _CallEntry CallEntry;

struct _VaServer
{
  VaConfig *config;
  SoupServer *soup;
  VaHttpGuard *guard; /* accepts its connections, bounds its requests */
  VaGrants *grants; /* the tokens of calls and listeners */
  GHashTable *templates; /* name → VaTemplate* */
  GHashTable *calls; /* id → CallEntry* */
  VaMetrics *metrics;
  VaRecords *records;
  VaWebhook *webhook; /* --webhook, or NULL */
  VaRecordingMetrics recording; /* --record: totals of ended calls */
  gboolean draining;
  GSourceFunc drain_done;
  gpointer drain_data;
  guint drain_timer;
  VaScaleout *scaleout; /* NULL without --redis */
  struct _VaFront *front; /* a gateway's front (--gateway), or NULL */
  guint state_refresh_timer; /* keeps live calls' keys from expiring */
  GHashTable *resumes; /* Resume* waiting for Redis (a set) */
  gchar *base_url; /* this instance as announced (--redis only), or NULL */
  guint64 resumed; /* calls resumed here */
  /* EndedCall*, oldest first: calls that ended within the live TTL, whose
   * "ended" write a resync repeats (it is lost if Redis was down then) */
  GQueue recently_ended;
  guint trim_timer; /* gives the heap back once idle */
  /* The fronts' /gateway/watch WebSockets (SoupWebsocketConnection*,
   * owned); main thread */
  GPtrArray *watches;
};

typedef struct
{
  gchar *token;
  const gchar *reason; /* static */
  gint64 ended_us; /* monotonic */
} EndedCall;

struct _CallEntry
{
  VaServer *server;
  VaCall *call;
  gchar *agent;
  gchar *call_token; /* the caller's capability for this call (grants) */
  GHashTable *listener_tokens; /* listener id → its capability (grants) */
  SoupServerMessage *pending; /* the POST waiting for its answer */
  GHashTable *pending_listeners; /* listener id → SoupServerMessage* */
  VaConversation *conversation;
  /* Scale-out (NULL/0 without --redis) */
  gchar *token; /* resume token: the call's key in Redis */
  gchar *vars_json; /* the template variables, as stored */
  guint state_write; /* a coalesced state write is due */
  gint64 post_us; /* monotonic time the POST arrived */
  gint64 state_us; /* time taken to load a resumed call's state, or -1 */
  gint64 pipeline_us; /* POST to the pipeline playing and the offer set */
  gboolean media; /* gateway mode: the caller's media has arrived */
  guint agent_hangup; /* idle source ending the call for end_call, or 0 */
  gboolean record; /* --record applies to this call */
};

/* respond.c */
void va_respond_cors (VaServer *server, SoupServerMessage *msg);
/* RFC 9725 §4.6 ICE servers, with TURN credentials made for @id. */
void va_respond_ice_links (
    VaServer *server, SoupServerMessage *msg, const gchar *id);
void va_respond_json (
    VaServer *server, SoupServerMessage *msg, guint status, const gchar *json);
/* Error with a JSON body that names the cause and, where one exists, the
 * fix. */
void va_respond_error (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *format, ...) G_GNUC_PRINTF (4, 5);
void va_respond_empty (VaServer *server, SoupServerMessage *msg, guint status);
/* 201 with the SDP answer; ICE servers with credentials for @ice_id. */
void va_respond_sdp (VaServer *server, SoupServerMessage *msg,
    const gchar *ice_id, const gchar *sdp, const gchar *location,
    const gchar *etag);
/* @ice_id: the id TURN credentials are made for, when the request may
 * have them; else NULL. */
void va_respond_options (VaServer *server, SoupServerMessage *msg,
    const gchar *methods, const gchar *ice_id);
/* Takes @text. */
void va_respond_text (VaServer *server, SoupServerMessage *msg, guint status,
    const gchar *type, gchar *text);

/* ops.c: /calls, /metrics, /healthz, /readyz, the demo page. */
void va_ops_route (VaServer *server, SoupServerMessage *msg, const gchar *path,
    GHashTable *query);

/* server.c */
/* A new id (free it) for a call, a listener or an ICE answer: random,
 * 64 bits, grants nothing. */
gchar *va_server_new_call_id (void);

/* Whether @msg (a POST /whip) asks for a recording: ?record=1. */
gboolean va_server_asks_recording (SoupServerMessage *msg);
/* Calls, resumes loading and listeners: what --max-calls counts. */
guint va_server_load (VaServer *server);
/* Creates the call and answers @offer (taken); @stored (a resumed call's
 * state, or NULL) gives its conversation. The POST is paused (unless
 * @paused says it already is) until the answer. Returns the call's entry,
 * owned by server->calls. */
CallEntry *va_server_start_call (VaServer *server, SoupServerMessage *msg,
    gboolean paused, const VaTemplate *tmpl, const gchar *agent, VaOffer *offer,
    const gchar *token, const VaStoredCall *stored, gint64 post_us);

/* A WHIP PATCH (RFC 9725 §4.3) of a session whose ETag is @etag and
 * whose offer had @remote_ufrag, in direct and gateway mode alike:
 * answers 415 (Content-Type), 428 (no If-Match), 400 (a malformed or
 * oversized fragment), 422 (an ICE restart, which neither mode does) or
 * 412 (a stale If-Match) and returns NULL; else returns the fragment to
 * apply (free it), the request still to answer. */
VaSdpFrag *va_server_read_patch (VaServer *server, SoupServerMessage *msg,
    const gchar *etag, const gchar *remote_ufrag);

/* Gateway mode (worker.c): a call whose caller is on the media gateway. */
typedef struct
{
  const gchar *id; /* the front's call id */
  const gchar *agent; /* an RTP template */
  const gchar *token; /* the resume token: the call's key in Redis */
  /* the caller's capability the front issued, told to the caller in the
   * "call" event; NULL: the worker issues one */
  const gchar *call_token;
  const gchar *gateway_host; /* the gateway's socket for this call */
  guint gateway_port;
  gint opus_pt;
  gboolean resume; /* go on from the state stored under token */
  gboolean record; /* the caller asked for a recording (POST /whip?record=1) */
} VaRtpCallRequest;

/* Starts @req's call from @tmpl (and @stored, a failed-over call's state,
 * or NULL); *@rtp_port is where the gateway sends the caller. NULL with
 * @error if it cannot start (the entry, if one was made, is ending). */
CallEntry *va_server_start_rtp_call (VaServer *server,
    const VaRtpCallRequest *req, const VaTemplate *tmpl,
    const VaStoredCall *stored, guint *rtp_port, GError **error);

/* access.c: the model is in its opening comment. Each returns FALSE (or
 * NULL), having answered, when the request may not go on. */
gboolean va_access_caller (VaServer *server, SoupServerMessage *msg);
CallEntry *va_access_call (VaServer *server, SoupServerMessage *msg,
    GHashTable *query, const gchar *id, const gchar *lid);
/* The same check for a call that is not a CallEntry (a gateway front's):
 * @live says whether it runs. */
gboolean va_access_grants (VaServer *server, SoupServerMessage *msg,
    GHashTable *query, const gchar *id, const gchar *lid, gboolean live);
gboolean va_access_ops (
    VaServer *server, SoupServerMessage *msg, GHashTable *query);
/* Operators: the admin token, or the --ops-listen address. No answer. */
gboolean va_access_is_operator (
    VaServer *server, SoupServerMessage *msg, GHashTable *query);
/* The request may place calls (and so be told ICE servers). No answer. */
gboolean va_access_may_call (VaServer *server, SoupServerMessage *msg);

/* resume.c: with --redis, each call's state in Redis, and resuming a call
 * that lived on another instance. Without --redis they do nothing. */
void va_server_publish_load (VaServer *server);
void va_state_prepare (CallEntry *e, GHashTable *vars, const gchar *token,
    const VaStoredCall *stored);
void va_state_changed (CallEntry *e, const GstStructure *s);
void va_state_end (CallEntry *e, VaCallEndReason reason);
void va_state_resync (gpointer server);
gboolean va_state_refresh (gpointer server);
void va_ended_call_free (EndedCall *c);
const gchar *va_resume_token_of (SoupServerMessage *msg, GHashTable *query);
gboolean va_resume_check_token (
    VaServer *server, SoupServerMessage *msg, const gchar *token);
void va_resume_call (VaServer *server, SoupServerMessage *msg,
    const gchar *token, VaOffer *offer, gint64 post_us);
void va_resume_free_key (gpointer key, gpointer value, gpointer unused);

G_END_DECLS

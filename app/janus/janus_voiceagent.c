/* janus.plugin.voiceagent: relays one caller's WebRTC audio and data
 * channel to a voice-agent worker over plain UDP, without transcoding.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A Janus 1.1 plugin (built as libjanus_voiceagent.so; the manual is
 * docs/janus-plugin.md). This file is the plugin: Janus's callbacks,
 * sessions, requests, events; relay.c has the call's socket and relay
 * thread, relay-rules.c the rules that need no Janus, plugin-private.h
 * what they share (and the lock order). The front attaches a handle per
 * caller and sends:
 *
 *   {"request":"call","call_id":ID} + jsep offer  (async, on our thread)
 *     -> event {"voiceagent":"ready","call_id":ID,"rtp_host":H,"rtp_port":P}
 *        with the answer (Opus sendrecv, data channel, video refused)
 *   {"request":"connect","host":IP,"port":N}  -> {"voiceagent":"connected",
 *                                                 "epoch":E}
 *   {"request":"disconnect"}                  -> {"voiceagent":"disconnected",
 *                                                 "epoch":E}
 *   {"request":"hangup"}                      -> {"voiceagent":"hangingup"}
 *   {"request":"status"}                      -> {"voiceagent":"status",...}
 *
 * and gets unsolicited events {"voiceagent":"media","up":true} (setup_media)
 * and {"voiceagent":"hangup","reason":R} (hangup_media). Errors are
 * {"voiceagent":"error","error_code":N,"error":"cause and fix"}: an event
 * for "call", the synchronous reply for the others.
 *
 * Each call has one UDP socket bound on local_ip:P (from rtp_port_range).
 * After "connect" the caller's RTP and text messages leave it for the
 * worker's host:port, and what arrives on it from exactly that address goes
 * to the caller. One socket carries both; the first byte tells them apart
 * (va_datagram_classify in relay-rules.h): top two bits 0b10 is RTP (or
 * RTCP, PT 200-206, which is dropped), anything else is a text message.
 * A later "connect" moves the call to another worker (failover): the
 * caller's stream goes on with contiguous sequence numbers and timestamps
 * that advance with the wall clock, since every RTP packet to the caller
 * passes one janus_rtp_switching_context that rebases at each epoch.
 *
 * Threads:
 * - Janus's request threads run handle_message: connect, disconnect,
 *   hangup and status are answered there; call is queued for
 * - the handler thread ("va-handler", one for the plugin): SDP answer,
 *   port, push_event with the jsep (which, half-trickle, waits for Janus's
 *   ICE gathering: never on a media thread);
 * - the handle's loop thread (Janus): setup_media, incoming_rtp,
 *   hangup_media, destroy_session; incoming_data from the SCTP stack;
 * - one relay thread per call ("va-relay"), from setup_media to
 *   hangup_media: poll() on the call's socket and a wake-up pipe, worker
 *   to caller through relay_rtp / relay_data (which only queue).
 *
 * Locks, in the order they may be taken: sessions_lock, then a session's
 * lock, then its peer_lock. ports_lock is taken with none of them held.
 * peer_lock guards a few words (the socket pointer, the worker's address,
 * the epoch, the label) and is never held across I/O or a call into Janus,
 * so incoming_rtp may take it: it copies and sends outside. A socket is
 * reference-counted (VaSocket) so a sender holding it never writes to a
 * descriptor that hangup_media closed and the system gave to another file.
 */
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <plugins/plugin.h>
#include <config.h>
#include <debug.h>
#include <rtp.h>
#include <sdp-utils.h>
#include <utils.h>

#include "plugin-private.h"
#include "relay-rules.h"

#define VA_NAME "gst-voiceagent media gateway"
#define VA_DESCRIPTION                                                         \
  "Relays a caller's WebRTC Opus audio and data channel to a voice-agent "     \
  "worker over plain UDP, without transcoding"
#define VA_VERSION 1
#define VA_VERSION_STRING "0.1.0"
#define VA_AUTHOR "gst-voiceagent"

#define DEFAULT_LOCAL_IP "127.0.0.1"
#define DEFAULT_RTP_PORT_RANGE "20000-29999"
#define DEFAULT_WORKER_NETWORKS "127.0.0.0/8,::1/128"

/* Bounds on what a request may carry. */
#define VA_REQUEST_MEMBERS_MAX 8
#define VA_REQUEST_NAME_MAX 16
#define VA_HOST_MAX 45 /* INET6_ADDRSTRLEN - 1 */
#define VA_SDP_MAX (64 * 1024)

/* error_code values of {"voiceagent":"error"} (docs/janus-plugin.md). */
typedef enum {
  VA_ERROR_BAD_REQUEST = 470, /* not an object, unknown "request" */
  VA_ERROR_BAD_CALL_ID = 471,
  VA_ERROR_NO_JSEP = 472,
  VA_ERROR_BAD_JSEP = 473,
  VA_ERROR_NO_AUDIO = 474,
  VA_ERROR_NO_OPUS = 475,
  VA_ERROR_CALL_EXISTS = 476,
  VA_ERROR_NO_PORT = 477,
  VA_ERROR_NO_CALL = 478,
  VA_ERROR_BAD_WORKER = 479,
  VA_ERROR_WORKER_NOT_ALLOWED = 480,
  VA_ERROR_INTERNAL = 481, /* the relay could not start */
} VaError;

janus_plugin *create (void);

/* A queued "call" request. Owns everything it points to. */
typedef struct
{
  VaSession *session; /* a reference */
  gchar *transaction;
  json_t *message;
  json_t *jsep;
} VaMessage;

janus_callbacks *va_gateway;
VaConfig va_config;
static gint initialized, stopping; /* atomic */

static GMutex sessions_lock;
static GHashTable *sessions; /* sessions_lock: handle -> VaSession (ref) */

static GAsyncQueue *messages; /* of VaMessage, for the handler thread */
static VaMessage exit_message;
static GThread *handler_thread;

static void hangup_call (VaSession *s, gboolean notify);

/* ---------------------------------------------------------------------
 * Configuration
 */

/* The value of @key in "general" of @cfg, or @fallback. */
static const gchar *
config_value (janus_config *cfg, const gchar *key, const gchar *fallback)
{
  janus_config_category *general;
  janus_config_item *item;

  if (cfg == NULL)
    return fallback;
  general = janus_config_get (cfg, NULL, janus_config_type_category, "general");
  item = general ? janus_config_get (cfg, general, janus_config_type_item, key)
                 : NULL;
  return item && item->value ? item->value : fallback;
}

static gboolean
config_apply (janus_config *cfg, GError **error)
{
  const gchar *ip = config_value (cfg, "local_ip", DEFAULT_LOCAL_IP);
  const gchar *range =
      config_value (cfg, "rtp_port_range", DEFAULT_RTP_PORT_RANGE);
  const gchar *nets =
      config_value (cfg, "worker_networks", DEFAULT_WORKER_NETWORKS);

  if (!va_address_parse (
          ip, 0, &va_config.local, &va_config.local_len, error)) {
    g_prefix_error (error, "local_ip '%s': ", ip);
    return FALSE;
  }
  if (!va_port_range_parse (
          range, &va_config.port_min, &va_config.port_max, error)) {
    g_prefix_error (error, "rtp_port_range: ");
    return FALSE;
  }
  va_config.worker_networks = va_networks_parse (nets, error);
  if (va_config.worker_networks == NULL) {
    g_prefix_error (error, "worker_networks: ");
    return FALSE;
  }
  va_config.local_ip = g_strdup (ip);
  va_ports_reset ();
  return TRUE;
}

/* Reads <config_path>/janus.plugin.voiceagent.jcfg; a missing file means
 * every default. */
static gboolean
config_load (const gchar *config_path)
{
  gchar *file = g_strdup_printf ("%s/%s.jcfg", config_path, VA_PACKAGE);
  janus_config *cfg = NULL;
  GError *error = NULL;
  gboolean ok;

  if (g_file_test (file, G_FILE_TEST_EXISTS)) {
    cfg = janus_config_parse (file);
    if (cfg == NULL) {
      JANUS_LOG (LOG_FATAL, "%s: cannot parse %s (fix its syntax)\n",
          VA_PACKAGE, file);
      g_free (file);
      return FALSE;
    }
  } else {
    JANUS_LOG (LOG_INFO, "%s: no %s, using the defaults\n", VA_PACKAGE, file);
  }
  ok = config_apply (cfg, &error);
  if (!ok) {
    JANUS_LOG (LOG_FATAL, "%s: %s in %s\n", VA_PACKAGE, error->message, file);
    g_error_free (error);
  }
  if (cfg)
    janus_config_destroy (cfg);
  g_free (file);
  return ok;
}

static void
config_clear (void)
{
  g_clear_pointer (&va_config.local_ip, g_free);
  g_clear_pointer (&va_config.worker_networks, g_array_unref);
}

/* ---------------------------------------------------------------------
 * Sessions
 */

VaSession *
va_session_ref (VaSession *s)
{
  g_atomic_ref_count_inc (&s->ref);
  return s;
}

void
va_session_unref (VaSession *s)
{
  if (s == NULL || !g_atomic_ref_count_dec (&s->ref))
    return;
  /* The core keeps the handle until the plugin lets it go. */
  s->handle->plugin_handle = NULL;
  janus_refcount_decrease (&s->handle->ref);
  va_socket_release (s->sock);
  g_free (s->call_id);
  g_free (s->label);
  g_mutex_clear (&s->lock);
  g_mutex_clear (&s->peer_lock);
  g_free (s);
}

/* The session of @handle with a reference, or NULL. */
static VaSession *
session_lookup (janus_plugin_session *handle)
{
  VaSession *s = NULL;

  g_mutex_lock (&sessions_lock);
  if (sessions)
    s = g_hash_table_lookup (sessions, handle);
  if (s)
    va_session_ref (s);
  g_mutex_unlock (&sessions_lock);
  return s;
}

static void
va_create_session (janus_plugin_session *handle, int *error)
{
  VaSession *s;

  if (g_atomic_int_get (&stopping) || !g_atomic_int_get (&initialized)) {
    *error = -1;
    return;
  }
  s = g_new0 (VaSession, 1);
  s->handle = handle;
  g_atomic_ref_count_init (&s->ref);
  g_mutex_init (&s->lock);
  g_mutex_init (&s->peer_lock);
  s->wake[0] = s->wake[1] = -1;
  s->opus_pt = -1;
  handle->plugin_handle = s;
  g_mutex_lock (&sessions_lock);
  g_hash_table_insert (sessions, handle, s);
  g_mutex_unlock (&sessions_lock);
  *error = 0;
}

static void
va_destroy_session (janus_plugin_session *handle, int *error)
{
  VaSession *s = session_lookup (handle);

  if (s == NULL) {
    *error = -2;
    return;
  }
  g_atomic_int_set (&s->destroyed, 1);
  hangup_call (s, FALSE);
  g_mutex_lock (&sessions_lock);
  g_hash_table_remove (sessions, handle);
  g_mutex_unlock (&sessions_lock);
  va_session_unref (s);
  *error = 0;
}

/* ---------------------------------------------------------------------
 * Events and replies
 */

/* {"voiceagent":"error","error_code":@code,"error":...}; the text says
 * what went wrong and what to do. */
static json_t *error_json (VaError code, const gchar *format, ...)
    G_GNUC_PRINTF (2, 3);

static json_t *
error_json (VaError code, const gchar *format, ...)
{
  va_list args;
  gchar *text;
  json_t *j;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  j = json_pack ("{sssiss}", "voiceagent", "error", "error_code", (int)code,
      "error", text);
  g_free (text);
  return j;
}

/* Pushes @event (and @jsep, may be NULL) to the handle's client and drops
 * both references. */
static void
push (VaSession *s, const gchar *transaction, json_t *event, json_t *jsep)
{
  gint rc;

  /* A handle being detached (stopped) has nobody to tell. */
  if (!g_atomic_int_get (&s->destroyed) &&
      !g_atomic_int_get (&s->handle->stopped)) {
    rc =
        va_gateway->push_event (s->handle, create (), transaction, event, jsep);
    if (rc != 0)
      JANUS_LOG (LOG_WARN, "%s: push_event failed (%d)\n", VA_PACKAGE, rc);
  }
  json_decref (event);
  if (jsep)
    json_decref (jsep);
}

static guint64
counter (atomic_ullong *c)
{
  return atomic_load_explicit (c, memory_order_relaxed);
}

static const gchar *
state_name (CallState state)
{
  static const gchar *const names[] = { "idle", "ready", "media", "ended" };
  return names[state];
}

/* The worker's address fields of a status, under peer_lock. */
static void
status_add_worker_locked (VaSession *s, json_t *j)
{
  gchar host[64];

  json_object_set_new (j, "epoch", json_integer (s->epoch));
  if (s->worker_len == 0) {
    json_object_set_new (j, "worker_host", json_null ());
    json_object_set_new (j, "worker_port", json_integer (0));
    return;
  }
  va_address_to_string (&s->worker, host, sizeof host);
  json_object_set_new (j, "worker_host", json_string (host));
  json_object_set_new (
      j, "worker_port", json_integer (va_address_port (&s->worker)));
}

static void
status_add_counters (VaSession *s, json_t *j)
{
  VaCounters *c = &s->counters;
  gint64 last = atomic_load (&s->last_worker_us);

  json_object_set_new (j, "rtp_from_caller",
      json_integer ((json_int_t)counter (&c->rtp_from_caller)));
  json_object_set_new (j, "rtp_to_caller",
      json_integer ((json_int_t)counter (&c->rtp_to_caller)));
  json_object_set_new (j, "data_from_caller",
      json_integer ((json_int_t)counter (&c->data_from_caller)));
  json_object_set_new (j, "data_to_caller",
      json_integer ((json_int_t)counter (&c->data_to_caller)));
  json_object_set_new (j, "rtcp_from_worker",
      json_integer ((json_int_t)counter (&c->rtcp_from_worker)));
  json_object_set_new (
      j, "dropped", json_integer ((json_int_t)counter (&c->dropped)));
  json_object_set_new (j, "ms_since_worker_packet",
      json_integer (last ? (g_get_monotonic_time () - last) / 1000 : -1));
}

/* {"voiceagent":"status",...}: what "status" and the Admin API's
 * handle_info (query_session) show. */
static json_t *
status_json (VaSession *s)
{
  json_t *j = json_pack ("{ss}", "voiceagent", "status");

  g_mutex_lock (&s->lock);
  json_object_set_new (
      j, "call_id", s->call_id ? json_string (s->call_id) : json_null ());
  json_object_set_new (j, "state", json_string (state_name (s->state)));
  json_object_set_new (
      j, "relay", json_string (s->relay ? "running" : "stopped"));
  json_object_set_new (j, "rtp_host", json_string (va_config.local_ip));
  json_object_set_new (j, "rtp_port", json_integer (s->rtp_port));
  g_mutex_lock (&s->peer_lock);
  status_add_worker_locked (s, j);
  g_mutex_unlock (&s->peer_lock);
  g_mutex_unlock (&s->lock);
  status_add_counters (s, j);
  return j;
}

static json_t *
va_query_session (janus_plugin_session *handle)
{
  VaSession *s = session_lookup (handle);
  json_t *j;

  if (s == NULL)
    return NULL;
  j = status_json (s);
  va_session_unref (s);
  return j;
}

/* ---------------------------------------------------------------------
 * The "call" request (handler thread)
 */

/* The first audio m-line of @offer, or NULL. (Its port may be 0: a
 * bundle-only section of a max-bundle offer.) */
static janus_sdp_mline *
first_audio (janus_sdp *offer)
{
  GList *l;

  for (l = offer->m_lines; l; l = l->next) {
    janus_sdp_mline *m = l->data;
    if (m->type == JANUS_SDP_AUDIO)
      return m;
  }
  return NULL;
}

/* The rtpmaps of @audio, for an error message; bounded. */
static gchar *
offered_codecs (janus_sdp_mline *audio)
{
  GString *codecs = g_string_new (NULL);
  GList *l;

  for (l = audio->attributes; l && codecs->len < 200; l = l->next) {
    janus_sdp_attribute *a = l->data;
    if (a->name && a->value && g_str_equal (a->name, "rtpmap"))
      g_string_append_printf (
          codecs, "%s%s", codecs->len ? ", " : "", a->value);
  }
  if (codecs->len == 0)
    g_string_append (codecs, "no rtpmap");
  return g_string_free (codecs, FALSE);
}

/* Answers @offer: @audio with Opus sendrecv (in-band FEC, the mid
 * extension, no DTMF), data channels as offered, everything else
 * refused. */
static janus_sdp *
build_answer (janus_sdp *offer, janus_sdp_mline *audio)
{
  janus_sdp *answer = janus_sdp_generate_answer (offer);
  GList *l;

  for (l = offer->m_lines; l; l = l->next) {
    janus_sdp_mline *m = l->data;
    if (m == audio)
      janus_sdp_generate_answer_mline (offer, answer, m, JANUS_SDP_OA_MLINE,
          JANUS_SDP_AUDIO, JANUS_SDP_OA_CODEC, "opus", JANUS_SDP_OA_DIRECTION,
          JANUS_SDP_SENDRECV, JANUS_SDP_OA_FMTP, "useinbandfec=1",
          JANUS_SDP_OA_ACCEPT_EXTMAP, JANUS_RTP_EXTMAP_MID,
          JANUS_SDP_OA_AUDIO_DTMF, FALSE, JANUS_SDP_OA_DONE);
    else if (m->type == JANUS_SDP_APPLICATION)
      janus_sdp_generate_answer_mline (offer, answer, m, JANUS_SDP_OA_MLINE,
          JANUS_SDP_APPLICATION, JANUS_SDP_OA_DONE);
    else
      janus_sdp_generate_answer_mline (offer, answer, m, JANUS_SDP_OA_MLINE,
          m->type, JANUS_SDP_OA_ENABLED, FALSE, JANUS_SDP_OA_DONE);
  }
  return answer;
}

/* The offer's SDP text from @jsep, or NULL with *@error set. */
static const gchar *
offer_sdp (json_t *jsep, json_t **error)
{
  const gchar *type, *sdp;

  if (jsep == NULL) {
    *error = error_json (VA_ERROR_NO_JSEP,
        "call needs a jsep offer: send the caller's SDP offer with it");
    return NULL;
  }
  type = json_string_value (json_object_get (jsep, "type"));
  sdp = json_string_value (json_object_get (jsep, "sdp"));
  if (type == NULL || g_strcmp0 (type, "offer") != 0 || sdp == NULL ||
      strlen (sdp) > VA_SDP_MAX) {
    *error = error_json (VA_ERROR_BAD_JSEP,
        "the jsep must be an offer with an SDP of at most %d bytes: the "
        "plugin answers, it never offers",
        VA_SDP_MAX);
    return NULL;
  }
  return sdp;
}

/* Parses the offer and answers it; NULL with *@error set when it has no
 * usable audio. Sets *@pt to the answer's Opus payload type. */
static janus_sdp *
answer_offer (const gchar *sdp, gint *pt, json_t **error)
{
  gchar why[256] = "";
  janus_sdp *offer = janus_sdp_parse (sdp, why, sizeof why);
  janus_sdp *answer = NULL;
  janus_sdp_mline *audio;

  if (offer == NULL) {
    *error =
        error_json (VA_ERROR_BAD_JSEP, "the offer's SDP is invalid (%s)", why);
    return NULL;
  }
  audio = first_audio (offer);
  if (audio == NULL)
    *error = error_json (VA_ERROR_NO_AUDIO,
        "the offer has no audio m-line: offer one audio track (Opus)");
  else if (janus_sdp_get_codec_pt (offer, audio->index, "opus") < 0) {
    gchar *codecs = offered_codecs (audio);
    *error = error_json (VA_ERROR_NO_OPUS,
        "the offer's audio has no Opus (it offers %s): offer opus/48000/2 "
        "(no transcoding is done)",
        codecs);
    g_free (codecs);
  } else
    answer = build_answer (offer, audio);
  if (answer) {
    *pt = janus_sdp_get_codec_pt (answer, -1, "opus");
    if (*pt < 0) {
      *error = error_json (VA_ERROR_NO_OPUS, "Opus could not be negotiated");
      janus_sdp_destroy (answer);
      answer = NULL;
    }
  }
  janus_sdp_destroy (offer);
  return answer;
}

/* Makes @sock the call's, unless the handle got a call or was destroyed
 * meanwhile. */
static gboolean
install_call (
    VaSession *s, const gchar *call_id, VaSocket *sock, guint16 port, gint pt)
{
  gboolean ok;

  g_mutex_lock (&s->lock);
  ok = s->state == CALL_NONE && !g_atomic_int_get (&s->destroyed);
  if (ok) {
    s->call_id = g_strdup (call_id);
    s->state = CALL_READY;
    s->rtp_port = port;
    s->opus_pt = pt;
    g_mutex_lock (&s->peer_lock);
    s->sock = sock;
    g_mutex_unlock (&s->peer_lock);
  }
  g_mutex_unlock (&s->lock);
  return ok;
}

static gboolean
has_call (VaSession *s, gchar **call_id)
{
  gboolean has;

  g_mutex_lock (&s->lock);
  has = s->state != CALL_NONE;
  *call_id = g_strdup (s->call_id);
  g_mutex_unlock (&s->lock);
  return has;
}

/* The checks of a call request before its offer; NULL when it may go on. */
static json_t *
check_call (VaSession *s, const gchar *call_id)
{
  g_autofree gchar *current = NULL;

  if (!va_call_id_valid (call_id))
    return error_json (VA_ERROR_BAD_CALL_ID,
        "call_id must be 1-%d characters of A-Z, a-z, 0-9, '_' and '-'",
        VA_CALL_ID_MAX);
  if (has_call (s, &current))
    return error_json (VA_ERROR_CALL_EXISTS,
        "this handle already has call '%s': attach a new handle for "
        "another call",
        current ? current : "");
  return NULL;
}

/* Binds the call's socket and installs it; an error event or NULL. */
static json_t *
open_call (VaSession *s, const gchar *call_id, gint pt, guint16 *port)
{
  VaSocket *sock = va_socket_new_bound (port);

  if (sock == NULL) {
    JANUS_LOG (LOG_ERR, "%s: call %s: no free port in %u-%u on %s\n",
        VA_PACKAGE, call_id, va_config.port_min, va_config.port_max,
        va_config.local_ip);
    return error_json (VA_ERROR_NO_PORT,
        "no free UDP port in rtp_port_range %u-%u on %s: widen the range "
        "or end calls",
        va_config.port_min, va_config.port_max, va_config.local_ip);
  }
  if (!install_call (s, call_id, sock, *port, pt)) {
    va_socket_release (sock);
    return error_json (VA_ERROR_CALL_EXISTS,
        "this handle got another call meanwhile: attach a new handle");
  }
  return NULL;
}

static void
handle_call (VaMessage *m)
{
  VaSession *s = m->session;
  const gchar *call_id =
      json_string_value (json_object_get (m->message, "call_id"));
  json_t *error = check_call (s, call_id);
  const gchar *sdp = NULL;
  janus_sdp *answer = NULL;
  gint pt = -1;
  guint16 port = 0;
  gchar *text;

  if (error == NULL)
    sdp = offer_sdp (m->jsep, &error);
  if (sdp)
    answer = answer_offer (sdp, &pt, &error);
  if (answer)
    error = open_call (s, call_id, pt, &port);
  if (error) {
    JANUS_LOG (LOG_WARN, "%s: call refused: %s\n", VA_PACKAGE,
        json_string_value (json_object_get (error, "error")));
    push (s, m->transaction, error, NULL);
    if (answer)
      janus_sdp_destroy (answer);
    return;
  }
  text = janus_sdp_write (answer);
  janus_sdp_destroy (answer);
  JANUS_LOG (LOG_INFO, "%s: call %s ready on %s:%u (opus pt %d)\n", VA_PACKAGE,
      call_id, va_config.local_ip, port, pt);
  push (s, m->transaction,
      json_pack ("{sssssssi}", "voiceagent", "ready", "call_id", call_id,
          "rtp_host", va_config.local_ip, "rtp_port", (int)port),
      json_pack ("{ssss}", "type", "answer", "sdp", text));
  g_free (text);
}

static void
message_free (VaMessage *m)
{
  if (m == NULL || m == &exit_message)
    return;
  va_session_unref (m->session);
  g_free (m->transaction);
  if (m->message)
    json_decref (m->message);
  if (m->jsep)
    json_decref (m->jsep);
  g_free (m);
}

static gpointer
handler_thread_func (gpointer data)
{
  VaMessage *m;

  while ((m = g_async_queue_pop (messages)) != &exit_message) {
    if (!g_atomic_int_get (&m->session->destroyed))
      handle_call (m);
    message_free (m);
  }
  return NULL;
}

/* ---------------------------------------------------------------------
 * Synchronous requests (Janus's request threads)
 */

static CallState
call_state (VaSession *s)
{
  CallState state;

  g_mutex_lock (&s->lock);
  state = s->state;
  g_mutex_unlock (&s->lock);
  return state;
}

static gboolean
call_active_locked (VaSession *s)
{
  return s->state == CALL_READY || s->state == CALL_MEDIA;
}

/* The worker @msg names, in @addr; an error reply or NULL. */
static json_t *
parse_worker (json_t *msg, struct sockaddr_storage *addr, socklen_t *len)
{
  const gchar *host = json_string_value (json_object_get (msg, "host"));
  json_t *jport = json_object_get (msg, "port");
  json_int_t port = json_is_integer (jport) ? json_integer_value (jport) : 0;
  GError *error = NULL;
  json_t *reply;

  if (host == NULL || strlen (host) > VA_HOST_MAX || port < 1 || port > 65535)
    return error_json (VA_ERROR_BAD_WORKER,
        "connect needs \"host\", an IPv4 or IPv6 address, and \"port\", "
        "1-65535");
  if (!va_address_parse (host, (guint16)port, addr, len, &error)) {
    reply = error_json (VA_ERROR_BAD_WORKER, "connect: %s", error->message);
    g_error_free (error);
    return reply;
  }
  /* Anyone who can reach Janus's API must not turn the plugin into a UDP
   * reflector aimed at a third party. */
  if (!va_networks_contain (
          va_config.worker_networks, (struct sockaddr *)addr)) {
    JANUS_LOG (LOG_WARN, "%s: connect to %s refused: outside worker_networks\n",
        VA_PACKAGE, host);
    return error_json (VA_ERROR_WORKER_NOT_ALLOWED,
        "%s is outside worker_networks: add the workers' network to "
        "worker_networks in %s.jcfg",
        host, VA_PACKAGE);
  }
  if (addr->ss_family != va_config.local.ss_family)
    return error_json (VA_ERROR_BAD_WORKER,
        "%s is not of local_ip %s's family: give an %s worker address or "
        "change local_ip",
        host, va_config.local_ip,
        va_config.local.ss_family == AF_INET ? "IPv4" : "IPv6");
  return NULL;
}

/* {"request":"connect","host":H,"port":P}: relay to that worker from now
 * on; a new epoch, so the caller's stream is rebased. */
static json_t *
request_connect (VaSession *s, json_t *msg)
{
  struct sockaddr_storage addr;
  socklen_t len = 0;
  json_t *error = parse_worker (msg, &addr, &len);
  gchar host[64];
  gchar *call_id;
  guint epoch;

  if (error)
    return error;
  g_mutex_lock (&s->lock);
  if (!call_active_locked (s)) {
    g_mutex_unlock (&s->lock);
    return error_json (VA_ERROR_NO_CALL,
        "no call to connect: send call first (a handle whose call ended "
        "takes no other)");
  }
  call_id = g_strdup (s->call_id);
  g_mutex_lock (&s->peer_lock);
  s->worker = addr;
  s->worker_len = len;
  epoch = ++s->epoch;
  /* ms_since_worker_packet is about this worker: none yet. */
  atomic_store (&s->last_worker_us, 0);
  g_mutex_unlock (&s->peer_lock);
  g_mutex_unlock (&s->lock);
  JANUS_LOG (LOG_INFO, "%s: call %s relays to %s:%u (epoch %u)\n", VA_PACKAGE,
      call_id, va_address_to_string (&addr, host, sizeof host),
      va_address_port (&addr), epoch);
  g_free (call_id);
  return json_pack ("{sssi}", "voiceagent", "connected", "epoch", (int)epoch);
}

/* {"request":"disconnect"}: stop relaying to the worker; the caller
 * stays. */
static json_t *
request_disconnect (VaSession *s)
{
  guint epoch;

  g_mutex_lock (&s->lock);
  if (!call_active_locked (s)) {
    g_mutex_unlock (&s->lock);
    return error_json (VA_ERROR_NO_CALL, "no call to disconnect");
  }
  g_mutex_lock (&s->peer_lock);
  s->worker_len = 0;
  epoch = s->epoch;
  g_mutex_unlock (&s->peer_lock);
  g_mutex_unlock (&s->lock);
  return json_pack (
      "{sssi}", "voiceagent", "disconnected", "epoch", (int)epoch);
}

/* {"request":"hangup"}: close the PeerConnection; hangup_media follows
 * (and its event). */
static json_t *
request_hangup (VaSession *s)
{
  gboolean active;

  g_mutex_lock (&s->lock);
  active = call_active_locked (s);
  if (active)
    s->hangup_requested = TRUE;
  g_mutex_unlock (&s->lock);
  if (!active)
    return error_json (VA_ERROR_NO_CALL, "no call to hang up");
  va_gateway->close_pc (s->handle);
  return json_pack ("{ss}", "voiceagent", "hangingup");
}

/* NULL when @message is a request object of bounded size naming its
 * request; else the error reply. Sets *@request. */
static json_t *
check_message (json_t *message, const gchar **request)
{
  *request = json_string_value (json_object_get (message, "request"));
  if (!json_is_object (message) ||
      json_object_size (message) > VA_REQUEST_MEMBERS_MAX || *request == NULL ||
      strlen (*request) > VA_REQUEST_NAME_MAX)
    return error_json (VA_ERROR_BAD_REQUEST,
        "the body must be an object of at most %d members with \"request\": "
        "call, connect, disconnect, hangup or status",
        VA_REQUEST_MEMBERS_MAX);
  return NULL;
}

static json_t *
request_sync (VaSession *s, const gchar *request, json_t *message)
{
  if (g_str_equal (request, "connect"))
    return request_connect (s, message);
  if (g_str_equal (request, "disconnect"))
    return request_disconnect (s);
  if (g_str_equal (request, "hangup"))
    return request_hangup (s);
  if (g_str_equal (request, "status"))
    return status_json (s);
  return error_json (VA_ERROR_BAD_REQUEST,
      "unknown request '%s': use call, connect, disconnect, hangup or "
      "status",
      request);
}

/* Janus hands us @transaction, @message and @jsep to own. "call" is
 * queued (its answer waits for ICE gathering); the rest is answered
 * here. */
static janus_plugin_result *
va_handle_message (janus_plugin_session *handle, char *transaction,
    json_t *message, json_t *jsep)
{
  VaSession *s = NULL;
  const gchar *request = NULL;
  json_t *reply = NULL;

  if (!g_atomic_int_get (&stopping) && g_atomic_int_get (&initialized))
    s = session_lookup (handle);
  if (s == NULL) {
    g_free (transaction);
    if (message)
      json_decref (message);
    if (jsep)
      json_decref (jsep);
    return janus_plugin_result_new (JANUS_PLUGIN_ERROR,
        "no voiceagent session for this handle (shutting down?)", NULL);
  }
  reply = check_message (message, &request);
  if (reply == NULL && g_str_equal (request, "call")) {
    VaMessage *m = g_new0 (VaMessage, 1);
    m->session = s;
    m->transaction = transaction;
    m->message = message;
    m->jsep = jsep;
    g_async_queue_push (messages, m);
    return janus_plugin_result_new (JANUS_PLUGIN_OK_WAIT, NULL, NULL);
  }
  if (reply == NULL && jsep)
    reply = error_json (VA_ERROR_BAD_JSEP,
        "a jsep goes with \"call\" only: renegotiation is not supported");
  if (reply == NULL)
    reply = request_sync (s, request, message);
  va_session_unref (s);
  g_free (transaction);
  if (message)
    json_decref (message);
  if (jsep)
    json_decref (jsep);
  return janus_plugin_result_new (JANUS_PLUGIN_OK, NULL, reply);
}

/* Ends the call: stops and joins the relay thread, closes the socket.
 * Pushes the hangup event when @notify (not on detach: nobody would get
 * it). */
static void
hangup_call (VaSession *s, gboolean notify)
{
  CallState was;
  gboolean requested;
  gchar *call_id;

  if (!g_atomic_int_compare_and_exchange (&s->hangingup, 0, 1))
    return;
  g_atomic_int_set (&s->media_up, 0);
  g_mutex_lock (&s->lock);
  was = s->state;
  if (call_active_locked (s))
    s->state = CALL_ENDED;
  requested = s->hangup_requested;
  call_id = g_strdup (s->call_id);
  g_mutex_unlock (&s->lock);
  va_relay_stop (s);
  if (was == CALL_READY || was == CALL_MEDIA) {
    const gchar *reason = requested ? "hangup request" : "media closed";
    JANUS_LOG (
        LOG_INFO, "%s: call %s ended (%s)\n", VA_PACKAGE, call_id, reason);
    if (notify)
      push (s, NULL,
          json_pack ("{ssss}", "voiceagent", "hangup", "reason", reason), NULL);
  }
  g_free (call_id);
  g_atomic_int_set (&s->hangingup, 0);
}

/* ---------------------------------------------------------------------
 * Caller to worker (Janus's media threads)
 */

static void
va_setup_media (janus_plugin_session *handle)
{
  VaSession *s = session_lookup (handle);

  if (s == NULL)
    return;
  if (va_relay_start (s)) {
    g_atomic_int_set (&s->media_up, 1);
    JANUS_LOG (LOG_INFO, "%s: call media up\n", VA_PACKAGE);
    push (s, NULL, json_pack ("{sssb}", "voiceagent", "media", "up", 1), NULL);
  } else if (call_state (s) == CALL_READY) {
    /* Out of threads or descriptors: the call cannot work, say so and
     * end it rather than leave a silent caller. */
    push (s, NULL,
        error_json (VA_ERROR_INTERNAL,
            "the relay could not start (see Janus's log): the call is "
            "hung up; retry on another gateway"),
        NULL);
    va_gateway->close_pc (handle);
  }
  va_session_unref (s);
}

/* On the handle's loop thread, as destroy_session is: the session cannot
 * go away meanwhile, so no lookup is needed on this hot path. */
static void
va_incoming_rtp (janus_plugin_session *handle, janus_plugin_rtp *packet)
{
  VaSession *s = handle->plugin_handle;

  if (g_atomic_int_get (&handle->stopped) || s == NULL || packet->video ||
      g_atomic_int_get (&s->destroyed))
    return;
  if (!g_atomic_int_get (&s->media_up)) {
    va_count (&s->counters.dropped);
    return;
  }
  va_count (&s->counters.rtp_from_caller);
  va_send_to_worker (s, packet->buffer, packet->length);
}

/* Keeps the label of the caller's channel, so text from the worker goes
 * back on it. */
static void
remember_label (VaSession *s, const gchar *label)
{
  if (label == NULL)
    return;
  g_mutex_lock (&s->peer_lock);
  if (s->label == NULL || strncmp (s->label, label, VA_LABEL_MAX) != 0) {
    g_free (s->label);
    s->label = g_strndup (label, VA_LABEL_MAX);
  }
  g_mutex_unlock (&s->peer_lock);
}

static void
va_incoming_data (janus_plugin_session *handle, janus_plugin_data *packet)
{
  VaSession *s;

  if (g_atomic_int_get (&handle->stopped))
    return;
  s = session_lookup (handle);
  if (s == NULL)
    return;
  /* Binary messages and anything that is not UTF-8 text would break the
   * demultiplexing rule on the worker's side. */
  if (!g_atomic_int_get (&s->media_up) || packet->binary ||
      !va_text_valid (packet->buffer, packet->length)) {
    va_count (&s->counters.dropped);
  } else {
    remember_label (s, packet->label);
    va_count (&s->counters.data_from_caller);
    va_send_to_worker (s, packet->buffer, packet->length);
  }
  va_session_unref (s);
}

/* SCTP is up: the worker's held text may go out once the caller's
 * channel has had time to open (relay.c). */
static void
va_data_ready (janus_plugin_session *handle)
{
  VaSession *s;
  gint64 none = 0;

  if (g_atomic_int_get (&handle->stopped))
    return;
  s = session_lookup (handle);
  if (s == NULL)
    return;
  atomic_compare_exchange_strong (
      &s->data_ready_us, &none, g_get_monotonic_time ());
  va_session_unref (s);
}

static void
va_hangup_media (janus_plugin_session *handle)
{
  VaSession *s = session_lookup (handle);

  if (s == NULL)
    return;
  hangup_call (s, TRUE);
  va_session_unref (s);
}

/* ---------------------------------------------------------------------
 * The plugin
 */

static int
va_init (janus_callbacks *callback, const char *config_path)
{
  GError *error = NULL;

  if (g_atomic_int_get (&stopping) || callback == NULL || config_path == NULL ||
      !config_load (config_path))
    return -1;
  sessions = g_hash_table_new_full (
      NULL, NULL, NULL, (GDestroyNotify)va_session_unref);
  messages = g_async_queue_new_full ((GDestroyNotify)message_free);
  va_gateway = callback;
  g_atomic_int_set (&initialized, 1);
  handler_thread =
      g_thread_try_new ("va-handler", handler_thread_func, NULL, &error);
  if (handler_thread == NULL) {
    JANUS_LOG (LOG_FATAL, "%s: cannot start its thread: %s\n", VA_PACKAGE,
        error->message);
    g_error_free (error);
    g_atomic_int_set (&initialized, 0);
    g_clear_pointer (&sessions, g_hash_table_destroy);
    g_clear_pointer (&messages, g_async_queue_unref);
    config_clear ();
    return -1;
  }
  JANUS_LOG (LOG_INFO,
      "%s initialized: calls on %s, ports %u-%u, %u worker networks\n", VA_NAME,
      va_config.local_ip, va_config.port_min, va_config.port_max,
      va_config.worker_networks->len);
  return 0;
}

/* Janus may unload the plugin with handles still attached: their relay
 * threads must end before the code they run goes away. */
static void
hangup_all (void)
{
  GList *all, *l;

  g_mutex_lock (&sessions_lock);
  all = g_hash_table_get_values (sessions);
  for (l = all; l; l = l->next)
    va_session_ref (l->data);
  g_mutex_unlock (&sessions_lock);
  for (l = all; l; l = l->next) {
    g_atomic_int_set (&((VaSession *)l->data)->destroyed, 1);
    hangup_call (l->data, FALSE);
    va_session_unref (l->data);
  }
  g_list_free (all);
}

static void
va_destroy (void)
{
  if (!g_atomic_int_get (&initialized))
    return;
  g_atomic_int_set (&stopping, 1);
  g_async_queue_push (messages, &exit_message);
  g_thread_join (handler_thread);
  handler_thread = NULL;
  hangup_all ();
  g_mutex_lock (&sessions_lock);
  g_clear_pointer (&sessions, g_hash_table_destroy);
  g_mutex_unlock (&sessions_lock);
  g_clear_pointer (&messages, g_async_queue_unref);
  config_clear ();
  g_atomic_int_set (&initialized, 0);
  g_atomic_int_set (&stopping, 0);
  JANUS_LOG (LOG_INFO, "%s destroyed\n", VA_NAME);
}

static int
va_get_api_compatibility (void)
{
  return JANUS_PLUGIN_API_VERSION;
}

static int
va_get_version (void)
{
  return VA_VERSION;
}

static const char *
va_get_version_string (void)
{
  return VA_VERSION_STRING;
}

static const char *
va_get_description (void)
{
  return VA_DESCRIPTION;
}

static const char *
va_get_name (void)
{
  return VA_NAME;
}

static const char *
va_get_author (void)
{
  return VA_AUTHOR;
}

static const char *
va_get_package (void)
{
  return VA_PACKAGE;
}

static janus_plugin va_plugin = JANUS_PLUGIN_INIT (.init = va_init,
    .destroy = va_destroy, .get_api_compatibility = va_get_api_compatibility,
    .get_version = va_get_version, .get_version_string = va_get_version_string,
    .get_description = va_get_description, .get_name = va_get_name,
    .get_author = va_get_author, .get_package = va_get_package,
    .create_session = va_create_session, .handle_message = va_handle_message,
    .setup_media = va_setup_media, .incoming_rtp = va_incoming_rtp,
    .incoming_data = va_incoming_data, .data_ready = va_data_ready,
    .hangup_media = va_hangup_media, .destroy_session = va_destroy_session,
    .query_session = va_query_session, );

/* The entry point Janus looks up after dlopen: the module's only exported
 * symbol. */
__attribute__ ((visibility ("default"))) janus_plugin *
create (void)
{
  return &va_plugin;
}

/* janus.plugin.voiceagent: what janus_voiceagent.c (the plugin: requests,
 * sessions, Janus's callbacks) and relay.c (the call's socket and relay
 * thread) share. Nothing else includes it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Locks, in the order they may be taken: sessions_lock (janus_voiceagent.c),
 * then a session's lock, then its peer_lock. ports_lock (relay.c) is taken
 * with none of them held. peer_lock guards a few words and is never held
 * across I/O or a call into Janus, so Janus's media threads may take it.
 */
#pragma once

#include <stdatomic.h>
#include <sys/socket.h>
#include <glib.h>
#include <plugins/plugin.h>

G_BEGIN_DECLS

#define VA_PACKAGE "janus.plugin.voiceagent"
#define VA_LABEL_MAX 255 /* the longest data-channel label kept */

/* The configuration: written by init() before any other thread runs and
 * by destroy() after they all ended; read by everyone between. */
typedef struct
{
  gchar *local_ip;
  struct sockaddr_storage local; /* local_ip, port 0 */
  socklen_t local_len;
  guint16 port_min, port_max; /* rtp_port_range */
  GArray *worker_networks; /* of VaNetwork */
} VaConfig;

extern VaConfig va_config;
extern janus_callbacks *va_gateway;

/* A call's UDP socket. Reference-counted (g_atomic_rc_box): the last
 * va_socket_release() closes it, so a sender holding a reference never
 * writes to a descriptor the system has given to another file. */
typedef struct
{
  gint fd;
} VaSocket;

typedef enum {
  CALL_NONE, /* no call request accepted yet */
  CALL_READY, /* answered, socket bound, media not up yet */
  CALL_MEDIA, /* setup_media: relaying */
  CALL_ENDED, /* hangup_media: socket closed; the handle takes no new call */
} CallState;

/* What "status" reports; each counter is atomic (relaxed). */
typedef struct
{
  atomic_ullong rtp_from_caller;
  atomic_ullong rtp_to_caller;
  atomic_ullong data_from_caller;
  atomic_ullong data_to_caller;
  atomic_ullong rtcp_from_worker; /* ignored: Janus makes its own RTCP */
  atomic_ullong dropped;
} VaCounters;

/* One handle's state: at most one call. Reference-counted; the sessions
 * table holds one reference, and so do each queued request and the relay
 * thread. */
typedef struct
{
  janus_plugin_session *handle; /* set at creation, then only read */
  gatomicrefcount ref;
  gint destroyed; /* atomic */
  gint media_up; /* atomic: between setup_media and hangup_media */
  gint hangingup; /* atomic */

  GMutex lock;
  gchar *call_id; /* lock */
  CallState state; /* lock */
  guint16 rtp_port; /* lock */
  gint opus_pt; /* lock; the relay thread copies it when it starts */
  GThread *relay; /* lock */
  gint wake[2]; /* lock; the relay thread polls wake[0] */
  gboolean hangup_requested; /* lock */

  GMutex peer_lock; /* leaf: held only to copy the fields below */
  VaSocket *sock; /* peer_lock; a reference */
  struct sockaddr_storage worker; /* peer_lock */
  socklen_t worker_len; /* peer_lock; 0: no worker */
  guint epoch; /* peer_lock; +1 at each connect */
  gchar *label; /* peer_lock; the caller's channel, NULL before any */

  VaCounters counters; /* atomic */
  atomic_llong last_worker_us; /* atomic; monotonic µs, 0: never */
  atomic_llong data_ready_us; /* atomic; SCTP first writable, 0: not yet */
} VaSession;

/* The label the worker's text goes out on while the caller's channel is
 * not known from a message of its own: the one our clients open. */
#define VA_DEFAULT_LABEL "events"
/* How long after SCTP is up the worker's text waits for the caller's
 * channel to open (its DCEP OPEN follows at once on any sane path):
 * sending earlier on an unknown label would make Janus open a second
 * channel of that name. */
#define VA_LABEL_WAIT_US (1000 * G_TIME_SPAN_MILLISECOND)
/* Text held meanwhile, at most; the oldest goes first past it. */
#define VA_HELD_MAX 64
#define VA_HELD_BYTES_MAX (64 * 1024)

static inline void
va_count (atomic_ullong *counter)
{
  atomic_fetch_add_explicit (counter, 1, memory_order_relaxed);
}

/* janus_voiceagent.c */
VaSession *va_session_ref (VaSession *s);
void va_session_unref (VaSession *s);

/* relay.c */

/* Sets where the search for a free port starts (init). */
void va_ports_reset (void);
/* A new socket on the first free port of rtp_port_range (in *@port), or
 * NULL when every port is taken. */
VaSocket *va_socket_new_bound (guint16 *port);
void va_socket_release (VaSocket *sock);

/* Starts the call's relay thread (setup_media): TRUE if the call was
 * ready and the thread runs. */
gboolean va_relay_start (VaSession *s);
/* Stops and joins the relay thread if any, closes the socket and forgets
 * the worker. Takes s->lock: call with no lock held. */
void va_relay_stop (VaSession *s);

/* Sends @size bytes to the worker, if one is connected. Never blocks. */
void va_send_to_worker (VaSession *s, const void *data, gsize size);

G_END_DECLS

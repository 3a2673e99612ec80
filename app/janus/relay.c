/* janus.plugin.voiceagent: each call's UDP socket and its relay thread.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A call gets one UDP socket on local_ip, from rtp_port_range. Janus's
 * media threads send the caller's RTP and text on it to the worker
 * (va_send_to_worker: a copy of the worker's address under peer_lock, a
 * non-blocking sendto outside it). From setup_media to hangup_media one
 * thread ("va-relay") polls the socket and a wake-up pipe and hands what
 * the connected worker sends to Janus (relay_rtp / relay_data only queue
 * the packet for the handle's loop thread: the relay thread never waits
 * on Janus, so hangup_media may join it).
 */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <debug.h>
#include <rtp.h>

#include "plugin-private.h"
#include "relay-rules.h"

/* Datagrams read per wake-up, so a flood cannot keep the relay thread
 * from seeing its stop pipe. */
#define VA_RELAY_BURST 64

static GMutex ports_lock;
static guint16 next_port; /* ports_lock: where the next search starts */

static void
socket_close (gpointer data)
{
  VaSocket *sock = data;

  if (sock->fd >= 0)
    close (sock->fd);
}

void
va_socket_release (VaSocket *sock)
{
  if (sock)
    g_atomic_rc_box_release_full (sock, socket_close);
}

/* Binds a non-blocking UDP socket on local_ip at @port; -1 on failure
 * (errno set). */
static gint
bind_port (guint16 port)
{
  struct sockaddr_storage addr = va_config.local;
  gint fd =
      socket (addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return -1;
  if (addr.ss_family == AF_INET)
    ((struct sockaddr_in *)&addr)->sin_port = htons (port);
  else
    ((struct sockaddr_in6 *)&addr)->sin6_port = htons (port);
  if (bind (fd, (struct sockaddr *)&addr, va_config.local_len) == 0)
    return fd;
  close (fd);
  return -1;
}

void
va_ports_reset (void)
{
  g_mutex_lock (&ports_lock);
  next_port = va_config.port_min;
  g_mutex_unlock (&ports_lock);
}

/* The search starts where the last one ended, so a port just released is
 * not reused at once (a late datagram of the old call would reach the
 * new one). */
VaSocket *
va_socket_new_bound (guint16 *port)
{
  guint span = (guint)va_config.port_max - va_config.port_min + 1;
  VaSocket *sock = NULL;
  guint i;

  g_mutex_lock (&ports_lock);
  for (i = 0; i < span && sock == NULL; i++) {
    guint16 p = next_port;
    gint fd;
    next_port = p >= va_config.port_max ? va_config.port_min : p + 1;
    fd = bind_port (p);
    if (fd >= 0) {
      sock = g_atomic_rc_box_new (VaSocket);
      sock->fd = fd;
      *port = p;
    }
  }
  g_mutex_unlock (&ports_lock);
  return sock;
}

/* What one relay thread owns. */
typedef struct
{
  VaSession *session; /* a reference */
  VaSocket *sock; /* a reference */
  gint wake_fd; /* the session's wake[0]: closed only after our join */
  gint opus_pt;
  janus_rtp_switching_context ctx; /* the caller's one outgoing stream */
  guint epoch; /* the worker epoch ctx was last rebased for */
  gboolean marker; /* mark the first packet after a rebase */
  /* The worker's text that came before the caller's channel could take
   * it (GBytes*, in order) and its size. */
  GQueue held;
  gsize held_bytes;
  gint64 started_us; /* monotonic: setup_media */
  guint8 buf[VA_DATA_MAX + 1];
} Relay;

static void
relay_free (Relay *r)
{
  g_queue_clear_full (&r->held, (GDestroyNotify)g_bytes_unref);
  va_socket_release (r->sock);
  va_session_unref (r->session);
  g_free (r);
}

/* Copies the worker's address and epoch (len 0: none). */
static void
copy_worker (
    VaSession *s, struct sockaddr_storage *addr, socklen_t *len, guint *epoch)
{
  g_mutex_lock (&s->peer_lock);
  *addr = s->worker;
  *len = s->worker_len;
  *epoch = s->epoch;
  g_mutex_unlock (&s->peer_lock);
}

/* The RTP in r->buf to the caller. Whatever the worker's SSRC, sequence
 * numbers and timestamps, the caller sees one stream: Janus writes its
 * own SSRC, and ctx rebases seq and ts at each new epoch (a failover may
 * bring a worker with the same SSRC, which ctx alone would not notice),
 * the timestamp advancing by the wall-clock time since the last packet. */
static void
forward_rtp (Relay *r, gsize size, guint epoch)
{
  janus_rtp_header *h = (janus_rtp_header *)r->buf;
  janus_plugin_rtp pkt = { .mindex = -1, .video = FALSE };

  if (size > VA_RTP_MAX) {
    va_count (&r->session->counters.dropped);
    return;
  }
  if (epoch != r->epoch) {
    r->epoch = epoch;
    r->ctx.seq_reset = TRUE;
    r->ctx.ts_reset = TRUE;
    r->marker = TRUE;
  }
  /* Janus does not rewrite the payload type; ctx reads it too. */
  h->type = r->opus_pt;
  janus_rtp_header_update (h, &r->ctx, FALSE, 0);
  if (r->marker) {
    h->markerbit = 1;
    r->marker = FALSE;
  }
  pkt.buffer = (char *)r->buf;
  pkt.length = (uint16_t)size;
  janus_plugin_rtp_extensions_reset (&pkt.extensions);
  va_gateway->relay_rtp (r->session->handle, &pkt);
  va_count (&r->session->counters.rtp_to_caller);
}

/* The label text may go out on now (copied into @label), or FALSE while
 * it must wait: the caller's own channel once it has spoken on it, else
 * VA_DEFAULT_LABEL once SCTP has been up for VA_LABEL_WAIT_US. */
static gboolean
text_label (Relay *r, gchar label[VA_LABEL_MAX + 1])
{
  VaSession *s = r->session;
  gint64 ready = atomic_load (&s->data_ready_us);
  gboolean known;

  g_mutex_lock (&s->peer_lock);
  known = s->label != NULL;
  if (known)
    g_strlcpy (label, s->label, VA_LABEL_MAX + 1);
  g_mutex_unlock (&s->peer_lock);
  if (known)
    return TRUE;
  /* Should Janus never say SCTP is up, the media's start stands in. */
  if (ready == 0)
    ready = r->started_us + VA_LABEL_WAIT_US;
  if (g_get_monotonic_time () < ready + VA_LABEL_WAIT_US)
    return FALSE;
  g_strlcpy (label, VA_DEFAULT_LABEL, VA_LABEL_MAX + 1);
  return TRUE;
}

static void
send_text (VaSession *s, const gchar *label, gconstpointer data, gsize size)
{
  janus_plugin_data pkt = { .binary = FALSE };

  pkt.label = (char *)label;
  pkt.buffer = (char *)data;
  pkt.length = (uint16_t)size;
  va_gateway->relay_data (s->handle, &pkt);
  va_count (&s->counters.data_to_caller);
}

/* Sends the held text once a label is known. */
static void
flush_held (Relay *r)
{
  gchar label[VA_LABEL_MAX + 1];
  GBytes *b;

  if (g_queue_is_empty (&r->held) ||
      !g_atomic_int_get (&r->session->media_up) || !text_label (r, label))
    return;
  while ((b = g_queue_pop_head (&r->held))) {
    gsize size;
    gconstpointer data = g_bytes_get_data (b, &size);
    send_text (r->session, label, data, size);
    r->held_bytes -= size;
    g_bytes_unref (b);
  }
}

static void
hold_text (Relay *r, gsize size)
{
  while (!g_queue_is_empty (&r->held) &&
      (r->held.length >= VA_HELD_MAX ||
          r->held_bytes + size > VA_HELD_BYTES_MAX)) {
    GBytes *oldest = g_queue_pop_head (&r->held);
    r->held_bytes -= g_bytes_get_size (oldest);
    g_bytes_unref (oldest);
    va_count (&r->session->counters.dropped);
  }
  g_queue_push_tail (&r->held, g_bytes_new (r->buf, size));
  r->held_bytes += size;
}

/* The text message in r->buf to the caller, on the caller's channel, in
 * order after any held. */
static void
forward_text (Relay *r, gsize size)
{
  VaSession *s = r->session;

  if (!va_text_valid ((const gchar *)r->buf, size)) {
    va_count (&s->counters.dropped);
    return;
  }
  flush_held (r);
  if (g_queue_is_empty (&r->held)) {
    gchar label[VA_LABEL_MAX + 1];
    if (g_atomic_int_get (&s->media_up) && text_label (r, label)) {
      send_text (s, label, r->buf, size);
      return;
    }
  }
  hold_text (r, size);
}

/* One datagram of @size bytes (more than the buffer when truncated) from
 * @from. Only the connected worker's are relayed. */
static void
relay_datagram (Relay *r, gsize size, const struct sockaddr_storage *from)
{
  VaSession *s = r->session;
  struct sockaddr_storage worker;
  socklen_t len;
  guint epoch;

  copy_worker (s, &worker, &len, &epoch);
  if (len == 0 || !va_address_equal (from, &worker) || size > VA_DATA_MAX) {
    va_count (&s->counters.dropped);
    return;
  }
  atomic_store (&s->last_worker_us, g_get_monotonic_time ());
  switch (va_datagram_classify (r->buf, size)) {
    case VA_DATAGRAM_RTP:
      forward_rtp (r, size, epoch);
      break;
    case VA_DATAGRAM_RTCP:
      va_count (&s->counters.rtcp_from_worker);
      break;
    case VA_DATAGRAM_TEXT:
      forward_text (r, size);
      break;
    default:
      va_count (&s->counters.dropped);
      break;
  }
}

/* Before setup_media: the worker's text (its greeting) is held for the
 * caller; its RTP is stale. */
static void
keep_early_text (Relay *r, gsize size, const struct sockaddr_storage *from)
{
  struct sockaddr_storage worker;
  socklen_t len;
  guint epoch;

  copy_worker (r->session, &worker, &len, &epoch);
  if (len != 0 && va_address_equal (from, &worker) && size <= VA_DATA_MAX &&
      va_datagram_classify (r->buf, size) == VA_DATAGRAM_TEXT &&
      va_text_valid ((const gchar *)r->buf, size))
    hold_text (r, size);
  else
    va_count (&r->session->counters.dropped);
}

/* Reads up to @max datagrams. @relay FALSE keeps only the worker's text
 * (those queued before setup_media). Returns FALSE on a socket error. */
static gboolean
read_datagrams (Relay *r, guint max, gboolean relay)
{
  guint i;

  for (i = 0; i < max; i++) {
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    gssize n = recvfrom (r->sock->fd, r->buf, sizeof r->buf, MSG_TRUNC,
        (struct sockaddr *)&from, &len);
    if (n < 0)
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
          errno == ECONNREFUSED;
    if (relay)
      relay_datagram (r, (gsize)n, &from);
    else
      keep_early_text (r, (gsize)n, &from);
  }
  return TRUE;
}

static gpointer
relay_thread_func (gpointer data)
{
  Relay *r = data;
  struct pollfd fds[2] = { { .fd = r->sock->fd, .events = POLLIN },
    { .fd = r->wake_fd, .events = POLLIN } };

  r->started_us = g_get_monotonic_time ();
  /* What arrived before the media was up is stale (and a flood must not
   * keep us here: at most a few bursts). */
  read_datagrams (r, 16 * VA_RELAY_BURST, FALSE);
  while (TRUE) {
    /* Held text waits for a label: look again every 100 ms. */
    gint n =
        poll (fds, G_N_ELEMENTS (fds), g_queue_is_empty (&r->held) ? -1 : 100);
    flush_held (r);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 || fds[1].revents != 0 || (fds[0].revents & POLLNVAL))
      break;
    /* FIXME: after such an error (none is known to happen on a UDP
     * socket) "status" still says the relay runs until the hangup. */
    if (fds[0].revents != 0 && !read_datagrams (r, VA_RELAY_BURST, TRUE)) {
      JANUS_LOG (LOG_ERR, "%s: the call's socket failed (%s): relay stopped\n",
          VA_PACKAGE, g_strerror (errno));
      break;
    }
  }
  relay_free (r);
  return NULL;
}

gboolean
va_relay_start (VaSession *s)
{
  Relay *r;
  GError *error = NULL;
  gboolean ok = FALSE;

  g_mutex_lock (&s->lock);
  if (s->state != CALL_READY || s->relay != NULL)
    goto out;
  if (pipe2 (s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    JANUS_LOG (LOG_ERR, "%s: pipe2: %s\n", VA_PACKAGE, g_strerror (errno));
    s->wake[0] = s->wake[1] = -1;
    goto out;
  }
  r = g_new0 (Relay, 1);
  r->session = va_session_ref (s);
  g_mutex_lock (&s->peer_lock);
  r->sock = g_atomic_rc_box_acquire (s->sock);
  g_mutex_unlock (&s->peer_lock);
  r->wake_fd = s->wake[0];
  r->opus_pt = s->opus_pt;
  janus_rtp_switching_context_reset (&r->ctx);
  s->relay = g_thread_try_new ("va-relay", relay_thread_func, r, &error);
  if (s->relay == NULL) {
    JANUS_LOG (LOG_ERR, "%s: cannot start the relay thread: %s\n", VA_PACKAGE,
        error->message);
    g_error_free (error);
    relay_free (r);
    goto out;
  }
  s->state = CALL_MEDIA;
  ok = TRUE;
out:
  g_mutex_unlock (&s->lock);
  return ok;
}

static void
close_pipe (gint fds[2])
{
  if (fds[0] >= 0)
    close (fds[0]);
  if (fds[1] >= 0)
    close (fds[1]);
  fds[0] = fds[1] = -1;
}

void
va_relay_stop (VaSession *s)
{
  GThread *relay;
  VaSocket *sock;

  g_mutex_lock (&s->lock);
  relay = g_steal_pointer (&s->relay);
  if (relay && write (s->wake[1], "x", 1) != 1)
    JANUS_LOG (LOG_ERR, "%s: cannot wake the relay thread\n", VA_PACKAGE);
  g_mutex_unlock (&s->lock);
  /* Quick: the thread only polls and queues packets into Janus. */
  if (relay)
    g_thread_join (relay);
  g_mutex_lock (&s->lock);
  close_pipe (s->wake);
  g_mutex_lock (&s->peer_lock);
  sock = g_steal_pointer (&s->sock);
  s->worker_len = 0;
  g_mutex_unlock (&s->peer_lock);
  g_mutex_unlock (&s->lock);
  va_socket_release (sock);
}

/* Never blocks: the socket is non-blocking and a full buffer drops the
 * packet (counted). */
void
va_send_to_worker (VaSession *s, const void *data, gsize size)
{
  struct sockaddr_storage to;
  socklen_t len = 0;
  VaSocket *sock = NULL;

  g_mutex_lock (&s->peer_lock);
  if (s->sock && s->worker_len > 0) {
    sock = g_atomic_rc_box_acquire (s->sock);
    to = s->worker;
    len = s->worker_len;
  }
  g_mutex_unlock (&s->peer_lock);
  if (sock == NULL)
    return;
  if (sendto (sock->fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL,
          (struct sockaddr *)&to, len) < 0)
    va_count (&s->counters.dropped);
  va_socket_release (sock);
}

/* voiceagent: a worker's plain-RTP link to the media gateway (gateway mode).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One UDP socket carries everything between the gateway (Janus with
 * app/janus's plugin) and this call's pipeline: the caller's Opus RTP and
 * data-channel messages in, the agent's RTP and messages out. udpsrc and
 * udpsink share it, so the agent's RTP leaves from the port the gateway
 * sends to, which is the only address the gateway accepts media from.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <gio/gio.h>
#include <gst/net/gstnetaddressmeta.h>
#include "rtplink.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

struct _VaRtpLink
{
  /* Immutable after va_rtp_link_new / va_rtp_link_attach */
  GSocket *socket;
  guint port;
  GSocketAddress *peer; /* the gateway's socket for this call */
  GstPad *probed; /* rtp_in's src pad */
  gulong probe;

  /* lock guards text, user_data and heard; a leaf (the callback only hops
   * to the main context). */
  GMutex lock;
  VaRtpLinkText text;
  gpointer user_data;
  gboolean heard; /* a datagram came */
};

VaRtpLink *
va_rtp_link_new (const gchar *bind_ip, GError **error)
{
  GInetAddress *ip = g_inet_address_new_from_string (bind_ip);
  GSocketAddress *any, *bound;
  VaRtpLink *link;

  if (ip == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "--rtp-bind %s is not an IP address", bind_ip);
    return NULL;
  }
  link = g_new0 (VaRtpLink, 1);
  g_mutex_init (&link->lock);
  link->socket = g_socket_new (g_inet_address_get_family (ip),
      G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, error);
  any = g_inet_socket_address_new (ip, 0);
  g_object_unref (ip);
  if (link->socket == NULL ||
      !g_socket_bind (link->socket, any, FALSE, error)) {
    g_object_unref (any);
    va_rtp_link_free (link);
    return NULL;
  }
  g_object_unref (any);
  bound = g_socket_get_local_address (link->socket, error);
  if (bound == NULL) {
    va_rtp_link_free (link);
    return NULL;
  }
  link->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  return link;
}

void
va_rtp_link_free (VaRtpLink *link)
{
  if (link == NULL)
    return;
  va_rtp_link_detach (link);
  if (link->probed && link->probe)
    gst_pad_remove_probe (link->probed, link->probe);
  gst_clear_object (&link->probed);
  g_clear_object (&link->peer);
  if (link->socket)
    g_socket_close (link->socket, NULL);
  g_clear_object (&link->socket);
  g_mutex_clear (&link->lock);
  g_free (link);
}

guint
va_rtp_link_get_port (VaRtpLink *link)
{
  return link->port;
}

static void
deliver_text (VaRtpLink *link, const guint8 *data, gsize size)
{
  gchar *text;

  if (size > VA_RTP_LINK_MAX_TEXT ||
      !g_utf8_validate ((const gchar *)data, (gssize)size, NULL)) {
    GST_WARNING ("gateway datagram of %" G_GSIZE_FORMAT
                 " bytes is neither RTP nor a data-channel text: dropped",
        size);
    return;
  }
  text = g_strndup ((const gchar *)data, size);
  g_mutex_lock (&link->lock);
  if (link->text)
    link->text (text, link->user_data);
  g_mutex_unlock (&link->lock);
  g_free (text);
}

/* TRUE when @buf came from the gateway's socket for this call: the
 * worker's port is reachable by anyone on its network, and only the
 * gateway may speak for the caller. */
static gboolean
from_gateway (VaRtpLink *link, GstBuffer *buf)
{
  GstNetAddressMeta *meta = gst_buffer_get_net_address_meta (buf);
  GInetSocketAddress *from, *peer = G_INET_SOCKET_ADDRESS (link->peer);

  if (meta == NULL || !G_IS_INET_SOCKET_ADDRESS (meta->addr))
    return FALSE;
  from = G_INET_SOCKET_ADDRESS (meta->addr);
  return g_inet_socket_address_get_port (from) ==
      g_inet_socket_address_get_port (peer) &&
      g_inet_address_equal (g_inet_socket_address_get_address (from),
          g_inet_socket_address_get_address (peer));
}

/* (streaming thread) Data-channel messages share the socket with RTP:
 * they leave the stream here, and so does whatever the gateway did not
 * send. */
static GstPadProbeReturn
take_text (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMapInfo map;
  gboolean rtp;

  VaRtpLink *link = data;

  if (!from_gateway (link, buf)) {
    GST_LOG ("a datagram not from the gateway: dropped");
    return GST_PAD_PROBE_DROP;
  }
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return GST_PAD_PROBE_DROP;
  g_mutex_lock (&link->lock);
  if (!link->heard && link->text) {
    link->heard = TRUE;
    link->text (NULL, link->user_data);
  }
  g_mutex_unlock (&link->lock);
  rtp = va_rtp_link_is_rtp (map.data, map.size);
  if (!rtp)
    deliver_text (data, map.data, map.size);
  gst_buffer_unmap (buf, &map);
  return rtp ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static GstElement *
get_named (GstElement *pipeline, const gchar *name, GError **error)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);

  if (e == NULL)
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_FAILED,
        "the RTP template has no element named \"%s\"", name);
  return e;
}

gboolean
va_rtp_link_attach (VaRtpLink *link, GstElement *pipeline,
    const gchar *peer_host, guint peer_port, VaRtpLinkText text,
    gpointer user_data, GError **error)
{
  GstElement *in = get_named (pipeline, "rtp_in", error), *out;

  if (in == NULL)
    return FALSE;
  out = get_named (pipeline, "rtp_out", error);
  if (out == NULL) {
    gst_object_unref (in);
    return FALSE;
  }
  link->peer = g_inet_socket_address_new_from_string (peer_host, peer_port);
  if (link->peer == NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "the gateway's address %s is not an IP address", peer_host);
    gst_object_unref (in);
    gst_object_unref (out);
    return FALSE;
  }
  g_object_set (in, "socket", link->socket, "close-socket", FALSE, NULL);
  g_object_set (out, "socket", link->socket, "close-socket", FALSE, "host",
      peer_host, "port", (gint)peer_port, NULL);
  g_mutex_lock (&link->lock);
  link->text = text;
  link->user_data = user_data;
  g_mutex_unlock (&link->lock);
  link->probed = gst_element_get_static_pad (in, "src");
  link->probe = gst_pad_add_probe (
      link->probed, GST_PAD_PROBE_TYPE_BUFFER, take_text, link, NULL);
  gst_object_unref (in);
  gst_object_unref (out);
  return TRUE;
}

void
va_rtp_link_detach (VaRtpLink *link)
{
  g_mutex_lock (&link->lock);
  link->text = NULL;
  link->user_data = NULL;
  g_mutex_unlock (&link->lock);
}

void
va_rtp_link_send_text (VaRtpLink *link, const gchar *text)
{
  gsize len = strlen (text);
  GError *error = NULL;

  if (link->peer == NULL || len == 0 || len > VA_RTP_LINK_MAX_TEXT)
    return;
  if (g_socket_send_to (link->socket, link->peer, text, len, NULL, &error) <
      0) {
    GST_INFO (
        "data-channel message to the gateway not sent: %s", error->message);
    g_error_free (error);
  }
}

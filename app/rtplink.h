/* voiceagent: a worker's plain-RTP link to the media gateway (gateway mode).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* The largest data-channel message carried over the link. */
#define VA_RTP_LINK_MAX_TEXT (16 * 1024)

typedef struct _VaRtpLink VaRtpLink;

/* A data-channel message from the caller; NULL once, for the first
 * datagram from the gateway (it relays now). (streaming thread) */
typedef void (*VaRtpLinkText) (const gchar *text, gpointer user_data);

/* Binds one UDP socket on @bind_ip, port chosen by the system: the
 * gateway sends the caller's RTP and data-channel messages to it, and the
 * agent's RTP and messages leave from it (the gateway answers only the
 * address it sends to). NULL with @error if nothing can be bound. */
VaRtpLink *va_rtp_link_new (const gchar *bind_ip, GError **error);
void va_rtp_link_free (VaRtpLink *link);

guint va_rtp_link_get_port (VaRtpLink *link);

/* Gives the socket to @pipeline's udpsrc "rtp_in" and udpsink "rtp_out",
 * which sends to @peer_host:@peer_port, and takes the datagrams that are
 * not RTP out of rtp_in's stream: each goes to @text. Before PLAYING. */
gboolean va_rtp_link_attach (VaRtpLink *link, GstElement *pipeline,
    const gchar *peer_host, guint peer_port, VaRtpLinkText text,
    gpointer user_data, GError **error);
/* Stops calling @text (the pipeline may still run). */
void va_rtp_link_detach (VaRtpLink *link);

/* Sends @text to the caller's data channel through the gateway. Any
 * thread. */
void va_rtp_link_send_text (VaRtpLink *link, const gchar *text);

/* The demultiplexing rule shared with the gateway (docs/janus-plugin.md):
 * RTP and RTCP have version 2 in the top bits of their first byte; any
 * other datagram is a data-channel message. */
static inline gboolean
va_rtp_link_is_rtp (const guint8 *data, gsize size)
{
  return size > 0 && (data[0] & 0xc0) == 0x80;
}

G_END_DECLS

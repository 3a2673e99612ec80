/* janus.plugin.voiceagent: the rules of its UDP relay that need no Janus.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <sys/socket.h>

G_BEGIN_DECLS

/* The longest call id ("call" request): 1-64 of [A-Za-z0-9_-]. */
#define VA_CALL_ID_MAX 64
/* The largest data-channel text message relayed either way, in bytes. */
#define VA_DATA_MAX (16 * 1024)
/* The largest RTP packet relayed from a worker to the caller, in bytes: one
 * that would not fit the caller's path MTU would be lost anyway. */
#define VA_RTP_MAX 1400
/* The most networks worker_networks may list. */
#define VA_NETWORKS_MAX 32

/* The domain of the errors below: one code, the message says the rest. */
#define VA_RELAY_ERROR (va_relay_error_quark ())
#define VA_RELAY_ERROR_INVALID 0
GQuark va_relay_error_quark (void);

/* What a datagram on the call's UDP socket is (the demultiplexing rule,
 * the same both ways, docs/janus-plugin.md):
 * - first byte 0b10xxxxxx (RTP version 2) and second byte 200-206: RTCP;
 * - first byte 0b10xxxxxx otherwise, at least 12 bytes: RTP;
 * - first byte 0b10xxxxxx but shorter: INVALID;
 * - any other first byte: a data-channel text message (TEXT). UTF-8 never
 *   starts a character with 0x80-0xBF, so valid text cannot be taken for
 *   RTP; the relay checks that each message is valid UTF-8.
 * An empty datagram is INVALID. RTP cannot use payload types 72-78 with
 * the marker bit, which would read as RTCP (RFC 5761 §4). */
typedef enum {
  VA_DATAGRAM_INVALID,
  VA_DATAGRAM_RTP,
  VA_DATAGRAM_RTCP,
  VA_DATAGRAM_TEXT,
} VaDatagramKind;

VaDatagramKind va_datagram_classify (const guint8 *data, gsize size);

/* TRUE when @id (NUL-terminated, may be NULL) is 1-VA_CALL_ID_MAX
 * characters of [A-Za-z0-9_-]. */
gboolean va_call_id_valid (const gchar *id);

/* TRUE when @text, @size bytes, is a text message the relay passes: not
 * empty, at most VA_DATA_MAX bytes, valid UTF-8 (so TEXT by the rule). */
gboolean va_text_valid (const gchar *text, gsize size);

/* One network of a worker_networks list. */
typedef struct
{
  gint family; /* AF_INET or AF_INET6 */
  guint8 addr[16]; /* network byte order, host bits zero */
  guint prefix; /* 0-32 or 0-128 */
} VaNetwork;

/* Parses a comma-separated list of CIDRs ("127.0.0.0/8, ::1/128"; an
 * address without "/N" is one host) into a new array of VaNetwork (free
 * with g_array_unref). Returns NULL and sets @error on any bad entry, on
 * host bits set below the prefix, on an empty list or more than
 * VA_NETWORKS_MAX entries. */
GArray *va_networks_parse (const gchar *text, GError **error);

/* TRUE when @addr (AF_INET or AF_INET6) lies in one of @networks. An IPv6
 * address that maps IPv4 (::ffff:a.b.c.d) matches no network: its family
 * would let it through a list written for one of them. */
gboolean va_networks_contain (GArray *networks, const struct sockaddr *addr);

/* Parses "MIN-MAX" (1 <= MIN <= MAX <= 65535). */
gboolean va_port_range_parse (
    const gchar *text, guint16 *min, guint16 *max, GError **error);

/* Parses an IPv4 or IPv6 literal (no names: nothing is resolved) and
 * @port into @out, setting @out_len. Refuses the unspecified address,
 * multicast and IPv4 broadcast, which no worker has. */
gboolean va_address_parse (const gchar *host, guint16 port,
    struct sockaddr_storage *out, socklen_t *out_len, GError **error);

/* TRUE when @a and @b hold the same family, address and port. */
gboolean va_address_equal (
    const struct sockaddr_storage *a, const struct sockaddr_storage *b);

/* The address of @addr as text (no port) in @buf; returns @buf. */
const gchar *va_address_to_string (
    const struct sockaddr_storage *addr, gchar *buf, gsize size);

/* The port of @addr in host byte order. */
guint16 va_address_port (const struct sockaddr_storage *addr);

G_END_DECLS

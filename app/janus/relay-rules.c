/* janus.plugin.voiceagent: the rules of its UDP relay that need no Janus.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The plugin (janus_voiceagent.c) asks this file what a datagram is,
 * whether a call id, a text message or a worker's address is acceptable,
 * and what its configuration values mean. No socket is opened here and no
 * name is resolved, so tests/janus/test-relay-rules.c runs all of it
 * without Janus.
 */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "relay-rules.h"

#define RTCP_TYPE_FIRST 200 /* SR */
#define RTCP_TYPE_LAST 206 /* PSFB */
#define RTP_HEADER_MIN 12

G_DEFINE_QUARK (va - relay - error - quark, va_relay_error)

VaDatagramKind
va_datagram_classify (const guint8 *data, gsize size)
{
  if (size == 0)
    return VA_DATAGRAM_INVALID;
  if ((data[0] & 0xC0) != 0x80)
    return VA_DATAGRAM_TEXT;
  if (size >= 2 && data[1] >= RTCP_TYPE_FIRST && data[1] <= RTCP_TYPE_LAST)
    return VA_DATAGRAM_RTCP;
  return size >= RTP_HEADER_MIN ? VA_DATAGRAM_RTP : VA_DATAGRAM_INVALID;
}

gboolean
va_call_id_valid (const gchar *id)
{
  gsize n;

  if (id == NULL)
    return FALSE;
  for (n = 0; id[n] != '\0'; n++) {
    if (n >= VA_CALL_ID_MAX)
      return FALSE;
    if (!g_ascii_isalnum (id[n]) && id[n] != '_' && id[n] != '-')
      return FALSE;
  }
  return n > 0;
}

gboolean
va_text_valid (const gchar *text, gsize size)
{
  /* g_utf8_validate_len also refuses NUL bytes: a worker reading text
   * need not expect them. */
  return size > 0 && size <= VA_DATA_MAX &&
      g_utf8_validate_len (text, size, NULL);
}

/* Parses one address literal into @family and @addr (16 bytes). */
static gboolean
parse_literal (const gchar *text, gint *family, guint8 *addr)
{
  memset (addr, 0, 16);
  if (inet_pton (AF_INET, text, addr) == 1) {
    *family = AF_INET;
    return TRUE;
  }
  if (inet_pton (AF_INET6, text, addr) == 1) {
    *family = AF_INET6;
    return TRUE;
  }
  return FALSE;
}

/* TRUE when the first @prefix bits of @a and @b agree. */
static gboolean
prefix_equal (const guint8 *a, const guint8 *b, guint prefix)
{
  guint whole = prefix / 8, rest = prefix % 8;
  guint8 mask = (guint8)(0xFF << (8 - rest));

  if (memcmp (a, b, whole) != 0)
    return FALSE;
  return rest == 0 || ((a[whole] ^ b[whole]) & mask) == 0;
}

/* TRUE when no bit of @addr (@bits long) after the first @prefix is set. */
static gboolean
host_bits_zero (const guint8 *addr, guint prefix, guint bits)
{
  guint i;

  for (i = prefix; i < bits; i++)
    if (addr[i / 8] & (0x80 >> (i % 8)))
      return FALSE;
  return TRUE;
}

static gboolean
parse_network (const gchar *entry, VaNetwork *net, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (entry, "/", 2);
  guint max;
  guint64 prefix;

  if (!parse_literal (parts[0], &net->family, net->addr)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "'%s' is not an IPv4 or IPv6 address (write a CIDR such as "
        "10.0.0.0/8)",
        parts[0]);
    return FALSE;
  }
  max = net->family == AF_INET ? 32 : 128;
  prefix = max;
  if (parts[1] != NULL &&
      !g_ascii_string_to_unsigned (parts[1], 10, 0, max, &prefix, NULL)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "'%s': the prefix length must be a number 0-%u", entry, max);
    return FALSE;
  }
  net->prefix = (guint)prefix;
  /* 10.1.2.3/8 is most likely a typo for 10.1.2.3/32 or 10.0.0.0/8: say
   * so rather than guess which. */
  if (!host_bits_zero (net->addr, net->prefix, max)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "'%s' has host bits set below its prefix (write the network "
        "address, e.g. 10.0.0.0/8)",
        entry);
    return FALSE;
  }
  return TRUE;
}

GArray *
va_networks_parse (const gchar *text, GError **error)
{
  g_auto (GStrv) entries = g_strsplit (text ? text : "", ",", -1);
  GArray *nets = g_array_new (FALSE, TRUE, sizeof (VaNetwork));
  GError *local = NULL;
  guint i;

  for (i = 0; entries[i] != NULL && local == NULL; i++) {
    VaNetwork net;
    g_strstrip (entries[i]);
    if (entries[i][0] == '\0')
      continue;
    if (nets->len >= VA_NETWORKS_MAX)
      g_set_error (&local, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
          "more than %d networks", VA_NETWORKS_MAX);
    else if (parse_network (entries[i], &net, &local))
      g_array_append_val (nets, net);
  }
  if (local == NULL && nets->len == 0)
    g_set_error (&local, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "the list is empty (list the workers' networks, e.g. 10.0.0.0/8)");
  if (local) {
    g_propagate_error (error, local);
    g_array_unref (nets);
    return NULL;
  }
  return nets;
}

/* The family and the 4 or 16 address bytes of @addr, or NULL. */
static const guint8 *
address_bytes (const struct sockaddr *addr, gint *family)
{
  *family = addr->sa_family;
  if (addr->sa_family == AF_INET)
    return (const guint8 *)&((const struct sockaddr_in *)addr)->sin_addr;
  if (addr->sa_family == AF_INET6)
    return (const guint8 *)&((const struct sockaddr_in6 *)addr)->sin6_addr;
  return NULL;
}

gboolean
va_networks_contain (GArray *networks, const struct sockaddr *addr)
{
  gint family;
  const guint8 *bytes = address_bytes (addr, &family);
  guint i;

  if (bytes == NULL || networks == NULL)
    return FALSE;
  if (family == AF_INET6 &&
      IN6_IS_ADDR_V4MAPPED ((const struct in6_addr *)bytes))
    return FALSE;
  for (i = 0; i < networks->len; i++) {
    const VaNetwork *net = &g_array_index (networks, VaNetwork, i);
    if (net->family == family && prefix_equal (bytes, net->addr, net->prefix))
      return TRUE;
  }
  return FALSE;
}

gboolean
va_port_range_parse (
    const gchar *text, guint16 *min, guint16 *max, GError **error)
{
  g_auto (GStrv) parts = NULL;
  guint64 lo = 0, hi = 0;

  if (text != NULL)
    parts = g_strsplit (text, "-", 2);
  if (parts == NULL || parts[0] == NULL || parts[1] == NULL ||
      !g_ascii_string_to_unsigned (
          g_strstrip (parts[0]), 10, 1, 65535, &lo, NULL) ||
      !g_ascii_string_to_unsigned (
          g_strstrip (parts[1]), 10, lo, 65535, &hi, NULL)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "'%s' is not a port range MIN-MAX with 1 <= MIN <= MAX <= 65535",
        text ? text : "");
    return FALSE;
  }
  *min = (guint16)lo;
  *max = (guint16)hi;
  return TRUE;
}

/* TRUE for addresses no worker can have: unspecified, multicast, IPv4
 * broadcast. */
static gboolean
address_unusable (gint family, const guint8 *a)
{
  static const guint8 zero[16] = { 0 };

  if (family == AF_INET)
    return memcmp (a, zero, 4) == 0 || (a[0] & 0xF0) == 0xE0 ||
        (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
  return memcmp (a, zero, 16) == 0 || a[0] == 0xFF;
}

gboolean
va_address_parse (const gchar *host, guint16 port, struct sockaddr_storage *out,
    socklen_t *out_len, GError **error)
{
  guint8 addr[16];
  gint family;

  if (host == NULL || !parse_literal (host, &family, addr)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "the host must be an IPv4 or IPv6 address literal (names are not "
        "resolved)");
    return FALSE;
  }
  if (address_unusable (family, addr)) {
    g_set_error (error, VA_RELAY_ERROR, VA_RELAY_ERROR_INVALID,
        "the host is an unspecified, multicast or broadcast address");
    return FALSE;
  }
  memset (out, 0, sizeof *out);
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)out;
    sin->sin_family = AF_INET;
    sin->sin_port = htons (port);
    memcpy (&sin->sin_addr, addr, 4);
    *out_len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons (port);
    memcpy (&sin6->sin6_addr, addr, 16);
    *out_len = sizeof *sin6;
  }
  return TRUE;
}

gboolean
va_address_equal (
    const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
  gint fa, fb;
  const guint8 *ba = address_bytes ((const struct sockaddr *)a, &fa);
  const guint8 *bb = address_bytes ((const struct sockaddr *)b, &fb);

  if (ba == NULL || bb == NULL || fa != fb ||
      va_address_port (a) != va_address_port (b))
    return FALSE;
  return memcmp (ba, bb, fa == AF_INET ? 4 : 16) == 0;
}

const gchar *
va_address_to_string (
    const struct sockaddr_storage *addr, gchar *buf, gsize size)
{
  gint family;
  const guint8 *bytes = address_bytes ((const struct sockaddr *)addr, &family);

  if (bytes == NULL || inet_ntop (family, bytes, buf, size) == NULL)
    g_strlcpy (buf, "?", size);
  return buf;
}

guint16
va_address_port (const struct sockaddr_storage *addr)
{
  if (addr->ss_family == AF_INET)
    return ntohs (((const struct sockaddr_in *)addr)->sin_port);
  if (addr->ss_family == AF_INET6)
    return ntohs (((const struct sockaddr_in6 *)addr)->sin6_port);
  return 0;
}

/* voiceagent: credentials.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The authorization model these serve is in docs/http-api.md
 * ("Authorization"); server.c decides who may do what.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <sys/random.h>
#include "auth.h"

/* A secret file is a line, not a document. */
#define MAX_SECRET_FILE_BYTES 4096

gchar *
va_auth_new_token (void)
{
  guint8 bytes[16];
  gsize got = 0;
  GString *hex = g_string_sized_new (2 * sizeof bytes);
  guint i;

  while (got < sizeof bytes) {
    gssize n = getrandom (bytes + got, sizeof bytes - got, 0);
    if (n > 0)
      got += n;
  }
  for (i = 0; i < sizeof bytes; i++)
    g_string_append_printf (hex, "%02x", bytes[i]);
  return g_string_free (hex, FALSE);
}

static void
sha256 (const gchar *text, guint8 digest[32])
{
  GChecksum *c = g_checksum_new (G_CHECKSUM_SHA256);
  gsize len = 32;

  g_checksum_update (c, (const guchar *)text, strlen (text));
  g_checksum_get_digest (c, digest, &len);
  g_checksum_free (c);
}

/* Hashing first makes the comparison independent of both lengths too. */
gboolean
va_auth_token_equal (const gchar *expected, const gchar *given)
{
  guint8 a[32], b[32];
  guint8 diff = 0;
  guint i;

  if (expected == NULL || given == NULL || *expected == '\0')
    return FALSE;
  sha256 (expected, a);
  sha256 (given, b);
  for (i = 0; i < sizeof a; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

const gchar *
va_auth_bearer_of (const gchar *authorization)
{
  if (authorization == NULL ||
      g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return NULL;
  authorization += 7;
  while (*authorization == ' ')
    authorization++;
  return *authorization ? authorization : NULL;
}

gchar *
va_auth_turn_credential (const gchar *secret, const gchar *id,
    gint64 expiry_unix_s, gchar **username)
{
  GHmac *hmac =
      g_hmac_new (G_CHECKSUM_SHA1, (const guchar *)secret, strlen (secret));
  guint8 digest[20];
  gsize len = sizeof digest;

  *username = g_strdup_printf ("%" G_GINT64_FORMAT ":%s", expiry_unix_s, id);
  g_hmac_update (hmac, (const guchar *)*username, strlen (*username));
  g_hmac_get_digest (hmac, digest, &len);
  g_hmac_unref (hmac);
  return g_base64_encode (digest, len);
}

gchar *
va_auth_read_secret_file (const gchar *path, GError **error)
{
  gchar *text = NULL;
  gsize len = 0;

  if (!g_file_get_contents (path, &text, &len, error))
    return NULL;
  if (len > MAX_SECRET_FILE_BYTES) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s is %" G_GSIZE_FORMAT " bytes; a secret file holds one line", path,
        len);
    g_free (text);
    return NULL;
  }
  text[strcspn (text, "\r\n")] = '\0';
  if (*text == '\0') {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s is empty: write the secret on its first line", path);
    g_free (text);
    return NULL;
  }
  return text;
}

/* gst-voiceagent: gst_voice_redact(), masking credentials in text before
 * it is logged (see gstvoiceredact.h).
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include "gstvoiceredact.h"

#define MASK "***"
/* Shorter strings are too likely to occur in ordinary text to mask. */
#define MIN_SECRET_LEN 6

/* The places credentials travel in the vendors' protocols: Deepgram's
 * "Authorization: Token KEY" and the WebSocket subprotocol pair "token, KEY",
 * OAuth-style "Bearer KEY", ElevenLabs' "xi-api-key" header and first-message
 * field "xi_api_key", and api_key-style query parameters. Group 1 is kept,
 * group 2 (the secret) masked. "token, " is also ordinary prose ("first
 * token, 110 ms"), so there the secret must look like a key: 16 or more
 * characters (vendors' keys are 32 to 64). */
static const gchar redact_pattern[] =
    "(\\bToken\\s+|\\btoken,\\s*(?=[^\\s&\"',;]{16})|(?i:\\bbearer)\\s+"
    "|(?i:xi[-_]api[-_]key|api[-_]?key|access[-_]token)[\"']?\\s*[:=]\\s*[\"']?"
    ")([^\\s&\"',;]+)";

static GMutex secrets_lock;
static GPtrArray *secrets; /* of gchar*, protected by secrets_lock */

static GRegex *
get_regex (void)
{
  static GRegex *regex = NULL;

  if (g_once_init_enter (&regex)) {
    GRegex *r = g_regex_new (redact_pattern, G_REGEX_OPTIMIZE, 0, NULL);
    g_assert (r != NULL);
    g_once_init_leave (&regex, r);
  }
  return regex;
}

/**
 * gst_voice_redact_add_secret:
 * @secret: an API key this process uses
 *
 * Masks @secret wherever it appears in text passed to gst_voice_redact(),
 * even outside the known places (e.g. echoed in a server's error body).
 */
void
gst_voice_redact_add_secret (const gchar *secret)
{
  guint i;

  if (secret == NULL || strlen (secret) < MIN_SECRET_LEN ||
      !g_utf8_validate (secret, -1, NULL))
    return;
  g_mutex_lock (&secrets_lock);
  if (secrets == NULL)
    secrets = g_ptr_array_new_with_free_func (g_free);
  for (i = 0; i < secrets->len; i++) {
    if (g_str_equal (g_ptr_array_index (secrets, i), secret))
      break;
  }
  if (i == secrets->len)
    g_ptr_array_add (secrets, g_strdup (secret));
  g_mutex_unlock (&secrets_lock);
}

/* Registers every credential found in its known places in @text (a URL,
 * a "Name: value" header line, a subprotocol list), so that it is masked
 * anywhere later on. The client calls this on everything it sends. */
void
gst_voice_redact_learn (const gchar *text)
{
  GMatchInfo *match = NULL;

  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return;
  g_regex_match (get_regex (), text, 0, &match);
  while (g_match_info_matches (match)) {
    gchar *secret = g_match_info_fetch (match, 2);
    gst_voice_redact_add_secret (secret);
    g_free (secret);
    g_match_info_next (match, NULL);
  }
  g_match_info_free (match);
}

/* Takes @text, returns it with every registered secret masked. */
static gchar *
mask_known_secrets (gchar *text)
{
  guint i;

  g_mutex_lock (&secrets_lock);
  for (i = 0; secrets && i < secrets->len; i++) {
    const gchar *secret = g_ptr_array_index (secrets, i);
    if (strstr (text, secret)) {
      gchar **parts = g_strsplit (text, secret, -1);
      g_free (text);
      text = g_strjoinv (MASK, parts);
      g_strfreev (parts);
    }
  }
  g_mutex_unlock (&secrets_lock);
  return text;
}

/**
 * gst_voice_redact:
 * @text: (nullable): a URL, header block, JSON message or log line
 *
 * Returns: (transfer full): @text with every credential replaced by `***`.
 */
gchar *
gst_voice_redact (const gchar *text)
{
  gchar *masked, *out;

  if (text == NULL)
    return NULL;
  if (!g_utf8_validate (text, -1, NULL)) /* never echo it raw */
    return g_strdup ("(unprintable)");
  /* Registered secrets first: the pattern stops at characters like ',' or
   * '&' that a secret may contain, and would leave part of it. */
  masked = mask_known_secrets (g_strdup (text));
  out = g_regex_replace (get_regex (), masked, -1, 0, "\\1" MASK, 0, NULL);
  g_free (masked);
  if (out == NULL)
    return g_strdup ("(unprintable)");
  return out;
}

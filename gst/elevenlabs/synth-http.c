/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* HTTP streaming (protocol=http) for ElSynth: one streamed request per
 * piece of a turn, one request at a time. synth.c has the turns and the
 * public functions; SYNTH_LOCK and the Deferred are as described there. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "synth-private.h"
#include "pair.h"

#include <string.h>

/* ---- HTTP streaming ---- */

static void
http_req_free (gpointer data)
{
  HttpReq *r = data;

  synth_unref (r->synth);
  g_free (r->text);
  g_free (r);
}

static gboolean
http_response (GstVoiceClient *client, guint id, guint status,
    SoupMessageHeaders *headers, gpointer user_data)
{
  HttpReq *r = user_data;

  r->status = status;
  return status == SOUP_STATUS_OK;
}

static void
http_chunk (GstVoiceClient *client, guint id, GBytes *data, gpointer user_data)
{
  HttpReq *r = user_data;
  ElSynth *s = r->synth;
  gint64 now = g_get_monotonic_time ();
  Deferred d = { 0 };
  GByteArray *bytes = g_byte_array_new ();
  gsize len;
  const guint8 *p = g_bytes_get_data (data, &len);
  GBytes *audio, *pcm;

  if (r->leftover >= 0) {
    guint8 b = (guint8)r->leftover;
    g_byte_array_append (bytes, &b, 1);
    r->leftover = -1;
  }
  g_byte_array_append (bytes, p, (guint)len);
  if (!el_output_format_is_ulaw (s->cfg.format) && bytes->len % 2) {
    r->leftover = bytes->data[bytes->len - 1];
    g_byte_array_set_size (bytes, bytes->len - 1);
  }
  audio = g_byte_array_free_to_bytes (bytes);

  SYNTH_LOCK (s);
  if (r->turn && !s->stopped && g_bytes_get_size (audio) > 0) {
    Turn *t = r->turn;
    if (!t->got_audio)
      post_first_audio_locked (s, t, now, &d);
    pcm = to_s16 (s, audio);
    deliver_locked (s, t,
        GST_MINI_OBJECT (el_chunk_new (
            pcm, t->number, s->own, r->segment, now, r->text, NULL)));
    g_bytes_unref (pcm);
  }
  SYNTH_UNLOCK (s);
  g_bytes_unref (audio);
  run_deferred (s, &d);
}

static void
http_done (
    GstVoiceClient *client, guint id, const GError *error, gpointer user_data)
{
  HttpReq *r = user_data;
  ElSynth *s = r->synth;
  Deferred d = { 0 };
  gboolean unauthorized = r->status == 401 || r->status == 403;

  SYNTH_LOCK (s);
  if (s->request == r)
    s->request = NULL;
  if (r->turn && !s->stopped) {
    Turn *t = r->turn;
    if (error || r->status != SOUP_STATUS_OK)
      defer_message (s, &d,
          gst_structure_new (s->name, "event", G_TYPE_STRING, "http-error",
              "http-status", G_TYPE_UINT, r->status, "error", G_TYPE_STRING,
              error ? error->message : "", "turn", G_TYPE_UINT, t->number,
              NULL));
    if (unauthorized)
      s->failed = TRUE;
    if (t->ended && t->sent == t->text->len)
      t->complete = TRUE;
    advance_locked (s, &d);
    http_pump_locked (s, &d);
  }
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
  if (unauthorized)
    GST_VOICE_HTTP_ERROR (s->owner, r->status, (EL_KEY_REJECTED, r->status),
        ("text-to-speech request refused"));
  else if (r->status != 0 && r->status != SOUP_STATUS_OK)
    GST_ELEMENT_WARNING (s->owner, RESOURCE, READ,
        ("ElevenLabs answered HTTP %u; that part of the turn is not spoken.",
            r->status),
        ("text-to-speech request failed"));
}

/* Requests the next piece of text: whole sentences as they complete, the
 * rest when the turn ends. One request at a time keeps the audio in
 * order; each streams back faster than it plays. */
void
http_pump_locked (ElSynth *s, Deferred *d)
{
  const GstVoiceHttpCallbacks callbacks = { http_response, http_chunk,
    http_done };
  Turn *t = NULL;
  gsize len = 0;
  gchar *url, *piece, *body, *before;
  SoupMessage *msg;
  HttpReq *r;

  if (s->request || s->failed || s->stopped)
    return;
  for (;;) {
    GList *l;
    gsize rest;

    for (l = s->turns.head; l && ((Turn *)l->data)->complete; l = l->next)
      ;
    if (l == NULL)
      return;
    t = l->data;
    rest = t->text->len - t->sent;
    len = t->ended ? rest : upto_sentence_end (t->text->str + t->sent, rest);
    if (len > 0)
      break;
    if (!t->ended)
      return; /* wait for a whole sentence or the end of the turn */
    t->complete = TRUE; /* all of it was requested and is in */
    advance_locked (s, d);
  }

  piece = g_strndup (t->text->str + t->sent, len);
  before = g_strndup (t->text->str, t->sent);
  body = el_http_body (
      g_strstrip (piece), s->cfg.model_id, &s->cfg.settings, before);
  url = el_http_stream_url (s->cfg.url, s->cfg.voice_id, s->cfg.format);
  msg = soup_message_new (SOUP_METHOD_POST, url);
  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "xi-api-key", s->cfg.api_key);
  soup_message_set_request_body_from_bytes (
      msg, "application/json", g_bytes_new_take (body, strlen (body)));

  r = g_new0 (HttpReq, 1);
  r->synth = synth_ref (s);
  r->turn = t;
  r->leftover = -1;
  r->segment = ++s->next_segment;
  r->text = g_strdup (piece);
  r->sent_us = g_get_monotonic_time ();
  if (t->first_sent_us == 0)
    t->first_sent_us = t->speakable_us = r->sent_us;
  t->characters += (guint)g_utf8_strlen (piece, -1);
  t->sent += len;
  s->request = r;
  r->id = gst_voice_client_http_request (
      s->client, msg, &callbacks, r, http_req_free);
  GST_DEBUG_OBJECT (s->owner, "turn %u: requesting \"%s\"", t->number, piece);
  g_free (url);
  g_free (piece);
  g_free (before);
}

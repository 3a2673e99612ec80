/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The ElevenLabs network half shared by elevenlabssink (and elevenlabssrc
 * when it speaks its own text).
 *
 * Files: this one holds what both protocols share (the turns, their order
 * and the public functions); synth-ws.c the multi-context WebSocket and
 * synth-http.c HTTP streaming (protocol=http). synth-private.h has the
 * ElSynth struct and the helpers one file calls in another.
 *
 * Order: audio of a turn is queued for the src only once every earlier
 * turn's audio is in (held meanwhile), so two turns never interleave.
 *
 * Threads: the streaming thread calls the public functions; the client's
 * callbacks and the keep-alive timer run on the voice I/O thread. One mutex,
 * SYNTH_LOCK, guards everything that changes; a helper that expects it
 * held ends in _locked. Client calls that can call back synchronously
 * (reconnect, close, cancel) and message posting happen outside it: they
 * are collected in a Deferred and run by run_deferred() after unlocking.
 *
 * Locking order: SYNTH_LOCK is taken with no lock of the elements held
 * (they call el_synth_* outside OBJECT_LOCK and PLAYOUT_LOCK), and under it
 * only gst/voice's own locks are taken: the client's (sending, clearing its
 * queue, starting an HTTP request), the TO_SRC queue's (out_push_locked)
 * and the redaction lock, plus GLib's lock of the I/O GMainContext when the
 * timer is attached. Never an element's OBJECT_LOCK, a session's lock or
 * the session registry. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "synth-private.h"
#include "pair.h"
#include "gstvoiceredact.h"

#include <string.h>

GST_DEBUG_CATEGORY (el_synth_debug);

/* The timer runs at most this far apart, and at least four times per
 * keep-alive interval so a keep-alive is never late. */
#define TIMER_INTERVAL_MS 500

/* ---- Config ---- */

void
el_synth_config_copy (ElSynthConfig *dst, const ElSynthConfig *src)
{
  *dst = *src;
  dst->api_key = g_strdup (src->api_key);
  dst->url = g_strdup (src->url);
  dst->voice_id = g_strdup (src->voice_id);
  dst->model_id = g_strdup (src->model_id);
  if (src->settings.chunk_schedule)
    dst->settings.chunk_schedule = g_array_copy (src->settings.chunk_schedule);
}

void
el_synth_config_clear (ElSynthConfig *cfg)
{
  g_clear_pointer (&cfg->api_key, g_free);
  g_clear_pointer (&cfg->url, g_free);
  g_clear_pointer (&cfg->voice_id, g_free);
  g_clear_pointer (&cfg->model_id, g_free);
  g_clear_pointer (&cfg->settings.chunk_schedule, g_array_unref);
}

/* ---- Lifetime ---- */

ElSynth *
synth_ref (ElSynth *s)
{
  g_atomic_int_inc (&s->ref);
  return s;
}

ElSynth *
el_synth_ref (ElSynth *s)
{
  return synth_ref (s);
}

static void
turn_free (Turn *t)
{
  g_string_free (t->text, TRUE);
  g_queue_clear_full (&t->held, (GDestroyNotify)gst_mini_object_unref);
  g_free (t);
}

void
ctx_free (Ctx *c)
{
  g_free (c->id);
  g_free (c);
}

void
synth_unref (gpointer data)
{
  ElSynth *s = data;

  if (!g_atomic_int_dec_and_test (&s->ref))
    return;
  g_queue_clear_full (&s->turns, (GDestroyNotify)turn_free);
  g_list_free_full (s->contexts, (GDestroyNotify)ctx_free);
  gst_object_unref (s->client);
  gst_object_unref (s->owner);
  el_synth_config_clear (&s->cfg);
  g_free (s->name);
  g_mutex_clear (&s->lock);
  g_free (s);
}

void
el_synth_unref (ElSynth *s)
{
  synth_unref (s);
}

/* ---- Deferred work ---- */

/* The stages of a Deferred: messages are posted before the client is
 * told to reconnect, close or cancel. */
enum {
  STAGE_POST,
  STAGE_CONNECTION,
  STAGE_CANCEL,
};

void
defer_message (ElSynth *s, Deferred *d, GstStructure *st)
{
  gst_structure_set (
      st, "wallclock", G_TYPE_INT64, g_get_monotonic_time (), NULL);
  gst_voice_deferred_add_message (d, STAGE_POST, s->owner,
      gst_message_new_element (GST_OBJECT (s->owner), st));
}

static void
reconnect_run (gpointer data)
{
  gst_voice_client_reconnect (((ElSynth *)data)->client);
}

/* Each caller sets s->connecting with it, and pump_locked records nothing
 * while that is set, so a handler defers one reconnect at most. */
void
defer_reconnect (ElSynth *s, Deferred *d)
{
  gst_voice_deferred_add (
      d, STAGE_CONNECTION, reconnect_run, synth_ref (s), synth_unref);
}

static void
close_run (gpointer data)
{
  gst_voice_client_close (
      ((ElSynth *)data)->client, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
}

/* Stops reconnecting: a fatal error. Only once s->failed turned TRUE, and
 * a failed synth defers no reconnect, so the two never meet. */
void
defer_close (ElSynth *s, Deferred *d)
{
  gst_voice_deferred_add (
      d, STAGE_CONNECTION, close_run, synth_ref (s), synth_unref);
}

/* Read-only after creation. */
typedef struct
{
  ElSynth *synth; /* ref */
  guint request_id;
} CancelCall;

static void
cancel_run (gpointer data)
{
  CancelCall *c = data;

  gst_voice_client_cancel_request (c->synth->client, c->request_id);
}

static void
cancel_free (gpointer data)
{
  CancelCall *c = data;

  synth_unref (c->synth);
  g_free (c);
}

static void
defer_cancel (ElSynth *s, Deferred *d, guint request_id)
{
  CancelCall *c = g_new (CancelCall, 1);

  c->synth = synth_ref (s);
  c->request_id = request_id;
  gst_voice_deferred_add (d, STAGE_CANCEL, cancel_run, c, cancel_free);
}

/* Posts and does what was deferred; call without SYNTH_LOCK. */
void
run_deferred (ElSynth *s, Deferred *d)
{
  gst_voice_deferred_run (d);
}

/* ---- Output ---- */

Turn *
head_turn_locked (ElSynth *s)
{
  return g_queue_peek_head (&s->turns);
}

static void
out_push_locked (ElSynth *s, GstMiniObject *item)
{
  gst_voice_queue_push_force (s->out, item);
}

/* Queues @item of @t for the src, or holds it while an earlier turn is
 * still arriving. */
void
deliver_locked (ElSynth *s, Turn *t, GstMiniObject *item)
{
  if (t == head_turn_locked (s))
    out_push_locked (s, item);
  else
    g_queue_push_tail (&t->held, item);
}

/* Completes the turns at the head whose audio is all in; their turn ends
 * go out, and the next turn's held audio follows. */
void
advance_locked (ElSynth *s, Deferred *d)
{
  Turn *t;

  while ((t = head_turn_locked (s)) && t->complete) {
    GstMiniObject *item;
    Turn *next;

    out_push_locked (s,
        GST_MINI_OBJECT (el_turn_end_event_new (
            t->number, s->own, t->characters, t->ttfb, t->text->str)));
    defer_message (s, d,
        gst_structure_new (s->name, "event", G_TYPE_STRING, "turn-done", "turn",
            G_TYPE_UINT, t->number, "characters", G_TYPE_UINT, t->characters,
            NULL));
    g_queue_pop_head (&s->turns);
    turn_free (t);
    next = head_turn_locked (s);
    while (next && (item = g_queue_pop_head (&next->held)))
      out_push_locked (s, item);
  }
  if (s->eos_pending && g_queue_is_empty (&s->turns)) {
    s->eos_pending = FALSE;
    out_push_locked (s, GST_MINI_OBJECT (gst_event_new_eos ()));
  }
}

/* ---- Text and audio (both protocols) ---- */

/* Length of @text up to its last sentence end, 0 if none. */
gsize
upto_sentence_end (const gchar *text, gsize len)
{
  for (gsize i = len; i > 1; i--)
    if (g_ascii_isspace (text[i - 1]) && strchr (".!?;:", text[i - 2]))
      return i;
  return 0;
}

void
post_first_audio_locked (ElSynth *s, Turn *t, gint64 now, Deferred *d)
{
  t->got_audio = TRUE;
  /* From when the text became speakable: the service's own latency, not
   * the time it waited for the rest of a sentence. */
  t->ttfb = (GstClockTime)(now -
                (t->speakable_us && t->speakable_us < now ? t->speakable_us
                                                          : t->first_sent_us)) *
      GST_USECOND;
  GST_DEBUG_OBJECT (s->owner, "turn %u: first audio after %" GST_TIME_FORMAT,
      t->number, GST_TIME_ARGS (t->ttfb));
  defer_message (s, d,
      gst_structure_new (s->name, "event", G_TYPE_STRING, "first-audio", "turn",
          G_TYPE_UINT, t->number, "ttfb", G_TYPE_UINT64, (guint64)t->ttfb,
          NULL));
}

/* Audio in the output format as S16LE. */
GBytes *
to_s16 (ElSynth *s, GBytes *audio)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (audio, &len);

  if (el_output_format_is_ulaw (s->cfg.format))
    return el_ulaw_to_s16le (data, len);
  /* An odd byte cannot be a sample; the service never splits one. */
  return g_bytes_new_from_bytes (audio, 0, len & ~(gsize)1);
}

/* ---- Public ---- */

ElSynth *
el_synth_new (GstElement *owner, const gchar *message_name,
    const ElSynthConfig *config, GstVoiceQueue *out, gboolean own)
{
  ElSynth *s = g_new0 (ElSynth, 1);

  GST_DEBUG_CATEGORY_INIT (
      el_synth_debug, "elevenlabssynth", 0, "ElevenLabs network half");
  s->ref = 1;
  g_mutex_init (&s->lock);
  s->owner = gst_object_ref (owner);
  s->name = g_strdup (message_name);
  el_synth_config_copy (&s->cfg, config);
  s->out = out;
  s->own = own;
  s->keepalive_us =
      MAX (1000, (gint64)config->inactivity_timeout_ms) * 1000 / 2;
  g_queue_init (&s->turns);
  s->client = gst_voice_client_new (GST_OBJECT_NAME (owner));
  gst_voice_client_set_backoff (s->client, 250, 5000, 0);
  if (config->api_key && *config->api_key)
    gst_voice_redact_add_secret (config->api_key);
  return s;
}

void
el_synth_start (ElSynth *s)
{
  const GstVoiceClientCallbacks callbacks = {
    .opened = on_opened,
    .message = on_message,
    .closed = on_closed,
    .connect_failed = on_connect_failed,
    .stalled = on_stalled,
  };
  SoupMessageHeaders *headers;
  gchar *url;

  SYNTH_LOCK (s);
  s->timer = g_timeout_source_new (
      MIN (TIMER_INTERVAL_MS, (guint)(s->keepalive_us / 1000 / 4)));
  g_source_set_callback (s->timer, on_timer, synth_ref (s), synth_unref);
  g_source_attach (s->timer, gst_voice_client_get_io_context ());
  s->connecting = s->cfg.protocol == EL_PROTOCOL_WEBSOCKET;
  SYNTH_UNLOCK (s);
  if (s->cfg.protocol == EL_PROTOCOL_HTTP)
    return;

  gst_voice_client_set_callbacks (
      s->client, &callbacks, synth_ref (s), synth_unref);
  headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_REQUEST);
  soup_message_headers_append (headers, "xi-api-key", s->cfg.api_key);
  url = el_ws_url (s->cfg.url, s->cfg.voice_id, s->cfg.model_id, s->cfg.format,
      s->cfg.auto_mode, (s->cfg.inactivity_timeout_ms + 999) / 1000);
  gst_voice_client_open_websocket (s->client, url, headers, NULL, TRUE);
  soup_message_headers_unref (headers);
  g_free (url);
}

void
el_synth_free (ElSynth *s)
{
  GSource *timer;

  SYNTH_LOCK (s);
  s->stopped = TRUE;
  timer = g_steal_pointer (&s->timer);
  if (s->connected && s->cfg.protocol == EL_PROTOCOL_WEBSOCKET)
    send_locked (s, el_msg_close_socket ());
  SYNTH_UNLOCK (s);
  if (timer) {
    g_source_destroy (timer);
    g_source_unref (timer);
  }
  gst_voice_client_shutdown (s->client);
  /* Drops the client's reference on @s. */
  gst_voice_client_set_callbacks (
      s->client, &(GstVoiceClientCallbacks){ 0 }, NULL, NULL);
  synth_unref (s);
}

/* The turn still taking text (the last one, not ended), or NULL. */
static Turn *
open_turn_locked (ElSynth *s)
{
  Turn *t = g_queue_peek_tail (&s->turns);

  return t && !t->ended ? t : NULL;
}

static void
end_turn_locked (ElSynth *s, Turn *t, Deferred *d)
{
  t->ended = TRUE;
  defer_message (s, d,
      gst_structure_new (s->name, "event", G_TYPE_STRING, "turn-sent", "turn",
          G_TYPE_UINT, t->number, "characters", G_TYPE_UINT,
          (guint)g_utf8_strlen (t->text->str, -1), NULL));
}

/* Ends the open turn once its text stopped for turn-timeout-ms, so the
 * tail is spoken even when upstream never says the turn is over. */
void
end_stale_turn_locked (ElSynth *s, gint64 now, Deferred *d)
{
  Turn *t = open_turn_locked (s);

  if (t == NULL || s->cfg.turn_timeout_ms == 0 || s->stopped ||
      now - t->last_text_us < (gint64)s->cfg.turn_timeout_ms * 1000)
    return;
  GST_DEBUG_OBJECT (s->owner, "turn %u: no text for %u ms, ending it",
      t->number, s->cfg.turn_timeout_ms);
  end_turn_locked (s, t, d);
  pump_locked (s, d);
}

void
el_synth_push_text (ElSynth *s, guint turn, const gchar *text)
{
  Deferred d = { 0 };
  Turn *t;
  gsize len;

  if (text == NULL || el_count_nonspace (text, -1) == 0)
    return;
  SYNTH_LOCK (s);
  if (s->have_cancelled && turn == s->cancelled_turn) {
    GST_DEBUG_OBJECT (s->owner, "dropping text of interrupted turn %u", turn);
    goto out;
  }
  t = open_turn_locked (s);
  if (t && t->number != turn) {
    end_turn_locked (s, t, &d);
    t = NULL;
  }
  if (t == NULL) {
    t = g_new0 (Turn, 1);
    t->number = turn;
    t->text = g_string_new (NULL);
    t->ttfb = GST_CLOCK_TIME_NONE;
    g_queue_init (&t->held);
    g_queue_push_tail (&s->turns, t);
  }
  g_string_append (t->text, text);
  t->last_text_us = g_get_monotonic_time ();
  /* The service wants each piece to end at a word boundary, with a space. */
  len = t->text->len;
  if (len && !g_ascii_isspace (t->text->str[len - 1]))
    g_string_append_c (t->text, ' ');
  pump_locked (s, &d);
out:
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
}

void
el_synth_end_turn (ElSynth *s, guint turn)
{
  Deferred d = { 0 };
  Turn *t;

  SYNTH_LOCK (s);
  t = open_turn_locked (s);
  if (t && t->number == turn) {
    end_turn_locked (s, t, &d);
    pump_locked (s, &d);
  }
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
}

gboolean
el_synth_interrupt (ElSynth *s, GstEvent *event)
{
  Deferred d = { 0 };
  gboolean any;
  Turn *t;

  SYNTH_LOCK (s);
  any = !g_queue_is_empty (&s->turns);
  while ((t = g_queue_pop_head (&s->turns))) {
    if (t->ctx) {
      if (!t->flush_sent)
        close_ctx_locked (s, t->ctx);
      t->ctx->turn = NULL; /* its audio is dropped from now on */
    }
    if (s->request && s->request->turn == t) {
      defer_cancel (s, &d, s->request->id);
      s->request->turn = NULL;
      s->request = NULL;
    }
    s->have_cancelled = TRUE;
    s->cancelled_turn = t->number;
    defer_message (s, &d,
        gst_structure_new (s->name, "event", G_TYPE_STRING, "turn-cancelled",
            "turn", G_TYPE_UINT, t->number, "characters", G_TYPE_UINT,
            t->characters, NULL));
    turn_free (t);
  }
  if (event)
    out_push_locked (s, GST_MINI_OBJECT (event));
  advance_locked (s, &d);
  pump_locked (s, &d);
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
  return any;
}

void
el_synth_forward (ElSynth *s, GstEvent *event)
{
  SYNTH_LOCK (s);
  out_push_locked (s, GST_MINI_OBJECT (event));
  SYNTH_UNLOCK (s);
}

void
el_synth_eos (ElSynth *s)
{
  Deferred d = { 0 };
  Turn *t;

  SYNTH_LOCK (s);
  t = open_turn_locked (s);
  if (t)
    end_turn_locked (s, t, &d);
  s->eos_pending = TRUE;
  if (s->failed)
    g_queue_clear_full (&s->turns, (GDestroyNotify)turn_free);
  advance_locked (s, &d);
  pump_locked (s, &d);
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
}

gboolean
el_synth_has_failed (ElSynth *s)
{
  gboolean failed;

  SYNTH_LOCK (s);
  failed = s->failed;
  SYNTH_UNLOCK (s);
  return failed;
}

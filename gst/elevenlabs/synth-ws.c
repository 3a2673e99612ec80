/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The multi-context WebSocket (stream-input) half of ElSynth: contexts,
 * sending turns, the server's messages, the client's callbacks and the
 * timer. synth.c has the turns and the public functions; SYNTH_LOCK and
 * the Deferred are as described there.
 *
 * Contexts: one multi-context WebSocket per element; one context per turn.
 * A context is opened ahead of need (READY), so the next turn starts on a
 * context that already exists and the idle socket has something to send
 * keep-alives to. A turn's context gets its text as it comes, and at the end
 * of the turn `flush` (speak the tail) then `close_context`; the server
 * answers with the remaining audio and `isFinal`, which completes the turn.
 * A barge-in sends `close_context` at once and drops whatever audio still
 * arrives for it. Contexts count from the moment they are opened until the
 * server's `isFinal` confirms them closed, and no more than EL_MAX_CONTEXTS
 * are ever open: a new turn waits for a slot (which takes one server round
 * trip) rather than trip the service's limit of five, the failure other
 * frameworks hit on rapid barge-ins.
 *
 * Errors: after an error frame or a dropped connection the socket is
 * re-opened and each unfinished turn resent from the first character whose
 * audio has not arrived (from the alignment data). Voice settings go with
 * the first context of each connection only: the service rejects settings
 * that change between messages of one connection. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "synth-private.h"
#include "pair.h"
#include "gstvoiceredact.h"

/* A closing context that shows no life for this long is presumed lost
 * (the server never confirmed it): the socket is re-opened. */
#define CLOSE_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* Error frames in a row, with no audio in between, before giving up. */
#define MAX_ERROR_FRAMES 3

/* ---- Contexts ---- */

static guint
count_contexts_locked (ElSynth *s)
{
  return g_list_length (s->contexts);
}

static Ctx *
find_ctx_locked (ElSynth *s, const gchar *id)
{
  for (GList *l = s->contexts; l && id; l = l->next)
    if (g_str_equal (((Ctx *)l->data)->id, id))
      return l->data;
  return NULL;
}

static Ctx *
find_ready_locked (ElSynth *s)
{
  for (GList *l = s->contexts; l; l = l->next)
    if (((Ctx *)l->data)->state == CTX_READY)
      return l->data;
  return NULL;
}

void
send_locked (ElSynth *s, gchar *msg)
{
  GST_LOG_OBJECT (s->owner, "sending %s", msg);
  if (!gst_voice_client_send_text (s->client, msg))
    GST_WARNING_OBJECT (s->owner, "send queue full, message dropped");
  s->last_send_us = g_get_monotonic_time ();
  g_free (msg);
}

/* Settings go with the first context of a connection only. */
static const ElVoiceSettings *
take_settings_locked (ElSynth *s)
{
  if (s->settings_sent)
    return NULL;
  s->settings_sent = TRUE;
  return &s->cfg.settings;
}

/* Opens a context with a single space, as the protocol wants. */
static Ctx *
open_ctx_locked (ElSynth *s, Deferred *d)
{
  Ctx *c = g_new0 (Ctx, 1);
  guint n;

  c->id = g_strdup_printf ("ctx-%u", ++s->next_ctx);
  c->state = CTX_READY;
  c->activity_us = g_get_monotonic_time ();
  s->contexts = g_list_append (s->contexts, c);
  n = count_contexts_locked (s);
  GST_DEBUG_OBJECT (s->owner, "opening context %s (%u open)", c->id, n);
  send_locked (s, el_msg_text (c->id, " ", take_settings_locked (s)));
  defer_message (s, d,
      gst_structure_new (s->name, "event", G_TYPE_STRING, "context-opened",
          "context-id", G_TYPE_STRING, c->id, "open", G_TYPE_UINT, n, NULL));
  return c;
}

static void
remove_ctx_locked (ElSynth *s, Ctx *c)
{
  s->contexts = g_list_remove (s->contexts, c);
  if (c->turn)
    c->turn->ctx = NULL;
  ctx_free (c);
}

void
close_ctx_locked (ElSynth *s, Ctx *c)
{
  c->state = CTX_CLOSING;
  c->activity_us = g_get_monotonic_time ();
  send_locked (s, el_msg_close_context (c->id));
}

/* Forgets every context: the connection they lived on is gone. */
static void
forget_contexts_locked (ElSynth *s)
{
  while (s->contexts)
    remove_ctx_locked (s, s->contexts->data);
}

/* ---- Sending turns (WebSocket) ---- */

/* Whether the service starts generating on the first @len bytes of @text:
 * a complete sentence with auto_mode, else the schedule's first step. */
static gboolean
is_speakable (ElSynth *s, const gchar *text, gsize len)
{
  GArray *sched = s->cfg.settings.chunk_schedule;

  if (s->cfg.auto_mode)
    return upto_sentence_end (text, len) > 0;
  return g_utf8_strlen (text, (gssize)len) >=
      (sched ? g_array_index (sched, gint, 0) : 120);
}

/* Sends what @t has not sent yet; FALSE if it has to wait for a context. */
static gboolean
send_turn_locked (ElSynth *s, Turn *t, Deferred *d)
{
  if (t->ctx == NULL) {
    Ctx *c = find_ready_locked (s);
    if (c == NULL && count_contexts_locked (s) >= EL_MAX_CONTEXTS)
      return FALSE;
    if (c == NULL)
      c = open_ctx_locked (s, d);
    c->state = CTX_ACTIVE;
    c->turn = t;
    t->ctx = c;
  }
  if (t->sent < t->text->len) {
    const gchar *rest = t->text->str + t->sent;
    if (t->first_sent_us == 0)
      t->first_sent_us = g_get_monotonic_time ();
    t->characters += (guint)g_utf8_strlen (rest, -1);
    send_locked (s, el_msg_text (t->ctx->id, rest, take_settings_locked (s)));
    t->sent = t->text->len;
    t->ctx->activity_us = g_get_monotonic_time ();
    if (t->speakable_us == 0 && is_speakable (s, t->text->str, t->sent)) {
      t->speakable_us = t->ctx->activity_us;
    } else if (t->speakable_us == 0 && s->cfg.flush_first_clause) {
      /* Waiting for the sentence to end would cost the caller the time the
       * LLM takes to stream it; later clauses follow while this plays. */
      send_locked (s, el_msg_flush (t->ctx->id));
      t->speakable_us = t->ctx->activity_us;
    }
  }
  if (t->ended && !t->flush_sent) {
    t->flush_sent = TRUE;
    if (t->first_sent_us == 0)
      t->first_sent_us = g_get_monotonic_time ();
    if (t->speakable_us == 0)
      t->speakable_us = g_get_monotonic_time ();
    send_locked (s, el_msg_flush (t->ctx->id));
    close_ctx_locked (s, t->ctx);
  }
  return TRUE;
}

/* Sends what can be sent, in turn order, and keeps a context ready. */
void
pump_locked (ElSynth *s, Deferred *d)
{
  gboolean waiting = FALSE;

  if (s->cfg.protocol == EL_PROTOCOL_HTTP) {
    http_pump_locked (s, d);
    return;
  }
  if (s->failed || s->stopped)
    return;
  if (!s->connected) {
    if (!s->connecting && !g_queue_is_empty (&s->turns)) {
      s->connecting = TRUE;
      defer_reconnect (s, d);
    }
    return;
  }
  for (GList *l = s->turns.head; l && !waiting; l = l->next) {
    Turn *t = l->data;
    if (!t->complete)
      waiting = !send_turn_locked (s, t, d);
  }
  if (!waiting && find_ready_locked (s) == NULL &&
      count_contexts_locked (s) < EL_MAX_CONTEXTS)
    open_ctx_locked (s, d);
}

/* ---- Server messages (I/O thread) ---- */

static void
on_audio_locked (ElSynth *s, ElServerMsg *m, gint64 received_us, Deferred *d)
{
  Ctx *c = find_ctx_locked (s, m->context_id);
  Turn *t = c ? c->turn : NULL;
  GBytes *pcm;

  if (t == NULL) {
    GST_LOG_OBJECT (s->owner, "dropping audio of closed context %s",
        GST_STR_NULL (m->context_id));
    return;
  }
  s->error_frames = 0;
  c->activity_us = received_us;
  if (!t->got_audio)
    post_first_audio_locked (s, t, received_us, d);
  if (m->text)
    t->confirmed += el_count_nonspace (m->text, -1);
  pcm = to_s16 (s, m->audio);
  deliver_locked (s, t,
      GST_MINI_OBJECT (el_chunk_new (pcm, t->number, s->own, ++s->next_segment,
          received_us, m->text, m->char_end_ms ? m->char_end_ms : NULL)));
  g_bytes_unref (pcm);
}

static void
on_final_locked (ElSynth *s, ElServerMsg *m, Deferred *d)
{
  Ctx *c = find_ctx_locked (s, m->context_id);
  Turn *t;

  if (c == NULL)
    return;
  t = c->turn;
  GST_DEBUG_OBJECT (s->owner, "context %s final (%u open)", c->id,
      count_contexts_locked (s) - 1);
  remove_ctx_locked (s, c);
  if (t && t->flush_sent) {
    t->complete = TRUE;
  } else if (t) {
    /* The server ended a context we still use: start it over elsewhere. */
    t->sent = el_offset_after_nonspace (t->text->str, t->confirmed);
  }
  advance_locked (s, d);
  pump_locked (s, d);
}

static void
on_error_frame_locked (ElSynth *s, ElServerMsg *m, Deferred *d)
{
  Turn *t = head_turn_locked (s);

  GST_WARNING_OBJECT (
      s->owner, "error frame %s: %s", m->error, GST_STR_NULL (m->message));
  defer_message (s, d,
      gst_structure_new (s->name, "event", G_TYPE_STRING, "error-frame",
          "error", G_TYPE_STRING, m->error, "message", G_TYPE_STRING,
          m->message ? m->message : "", "turn", G_TYPE_UINT, t ? t->number : 0,
          NULL));
  if (g_strcmp0 (m->error, "invalid_api_key") == 0 ||
      ++s->error_frames > MAX_ERROR_FRAMES) {
    s->failed = TRUE;
    return;
  }
  /* Re-open now rather than wait for the close that follows: contexts
   * and unspoken text are re-sent on the new connection. */
  s->connected = FALSE;
  s->connecting = TRUE;
  forget_contexts_locked (s);
  defer_reconnect (s, d);
}

static void
fail_error_frame (ElSynth *s, ElServerMsg *m)
{
  if (g_strcmp0 (m->error, "invalid_api_key") == 0)
    GST_ELEMENT_ERROR (s->owner, RESOURCE, NOT_AUTHORIZED,
        ("ElevenLabs rejected the API key: set ELEVENLABS_API_KEY (or the "
         "api-key property) to a valid key."),
        ("error frame %s: %s", m->error, GST_STR_NULL (m->message)));
  else
    GST_ELEMENT_ERROR (s->owner, RESOURCE, FAILED,
        ("ElevenLabs keeps rejecting the request (%s): %s", m->error,
            GST_STR_NULL (m->message)),
        ("%d error frames in a row", MAX_ERROR_FRAMES + 1));
}

void
on_message (GstVoiceClient *client, SoupWebsocketDataType type, GBytes *message,
    gpointer user_data)
{
  ElSynth *s = user_data;
  gint64 received_us = g_get_monotonic_time ();
  ElServerMsg m = { 0 };
  Deferred d = { 0 };
  gsize len;
  const gchar *data = g_bytes_get_data (message, &len);
  gboolean was_failed, now_failed;

  /* An error posted here may stop the element (a sync bus handler):
   * keep @s alive until this returns. */
  synth_ref (s);
  el_server_msg_parse (data, len, &m);
  SYNTH_LOCK (s);
  was_failed = s->failed;
  if (s->stopped || was_failed) {
    /* nothing */
  } else if (m.type == EL_MSG_AUDIO) {
    on_audio_locked (s, &m, received_us, &d);
    if (m.is_final)
      on_final_locked (s, &m, &d);
  } else if (m.type == EL_MSG_FINAL) {
    on_final_locked (s, &m, &d);
  } else if (m.type == EL_MSG_ERROR) {
    on_error_frame_locked (s, &m, &d);
  } else if (m.type == EL_MSG_INVALID) {
    GST_WARNING_OBJECT (s->owner,
        "ignoring a malformed message (%" G_GSIZE_FORMAT " bytes)", len);
    defer_message (s, &d,
        gst_structure_new (s->name, "event", G_TYPE_STRING, "invalid-frame",
            "size", G_TYPE_UINT64, (guint64)len, NULL));
  }
  now_failed = !was_failed && s->failed;
  if (now_failed)
    defer_close (s, &d);
  SYNTH_UNLOCK (s);
  if (now_failed)
    fail_error_frame (s, &m);
  else if (m.type == EL_MSG_ERROR && !was_failed)
    GST_ELEMENT_WARNING (s->owner, RESOURCE, READ,
        ("ElevenLabs reported \"%s\" (%s); reconnecting and re-sending the "
         "text not spoken yet.",
            GST_STR_NULL (m.message), m.error),
        ("error frame"));
  run_deferred (s, &d);
  el_server_msg_clear (&m);
  synth_unref (s);
}

/* Makes every unfinished turn start over from its first character without
 * audio, on a connection with no contexts. Returns the characters resent. */
static guint
rewind_turns_locked (ElSynth *s)
{
  guint resent = 0;

  for (GList *l = s->turns.head; l; l = l->next) {
    Turn *t = l->data;
    if (t->complete)
      continue;
    t->sent = el_offset_after_nonspace (t->text->str, t->confirmed);
    t->flush_sent = FALSE;
    t->ctx = NULL;
    resent += (guint)g_utf8_strlen (t->text->str + t->sent, -1);
  }
  return resent;
}

void
on_opened (GstVoiceClient *client, gboolean reconnected, gpointer user_data)
{
  ElSynth *s = user_data;
  Deferred d = { 0 };
  guint resent;

  /* An error posted here may stop the element (a sync bus handler):
   * keep @s alive until this returns. */
  synth_ref (s);
  SYNTH_LOCK (s);
  s->connected = TRUE;
  s->connecting = FALSE;
  s->settings_sent = FALSE;
  s->outage_warned = FALSE;
  forget_contexts_locked (s);
  /* Messages queued for the old connection name its contexts. */
  gst_voice_client_clear_queue (s->client);
  resent = rewind_turns_locked (s);
  if (!reconnected)
    resent = 0; /* sent for the first time, not re-sent */
  GST_INFO_OBJECT (s->owner, "connected%s, resending %u characters",
      reconnected ? " again" : "", resent);
  defer_message (s, &d,
      gst_structure_new (s->name, "event", G_TYPE_STRING,
          reconnected ? "reconnected" : "connected", "resent-characters",
          G_TYPE_UINT, resent, NULL));
  pump_locked (s, &d);
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
  synth_unref (s);
}

void
on_closed (GstVoiceClient *client, gushort code, const gchar *reason,
    gboolean will_retry, gpointer user_data)
{
  ElSynth *s = user_data;
  Deferred d = { 0 };

  /* An error posted here may stop the element (a sync bus handler):
   * keep @s alive until this returns. */
  synth_ref (s);
  SYNTH_LOCK (s);
  s->connected = FALSE;
  forget_contexts_locked (s);
  s->connecting = will_retry;
  if (!s->stopped) {
    GST_INFO_OBJECT (s->owner, "connection closed (%u %s)%s", code,
        GST_STR_NULL (reason), will_retry ? ", reconnecting" : "");
    defer_message (s, &d,
        gst_structure_new (s->name, "event", G_TYPE_STRING, "disconnected",
            "code", G_TYPE_UINT, (guint)code, "reason", G_TYPE_STRING,
            reason ? reason : "", "will-retry", G_TYPE_BOOLEAN, will_retry,
            NULL));
    /* Idle: reconnect when the next turn comes (pump does). */
    if (!will_retry)
      pump_locked (s, &d);
  }
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
  synth_unref (s);
}

void
on_connect_failed (GstVoiceClient *client, guint http_status,
    SoupMessageHeaders *headers, const GError *error, gboolean will_retry,
    gpointer user_data)
{
  ElSynth *s = user_data;
  Deferred d = { 0 };
  gboolean fatal = !will_retry && http_status != 0;
  gchar *why = gst_voice_redact (error ? error->message : "");
  gchar *url = gst_voice_redact (s->cfg.url);
  gboolean warn;

  /* An error posted here may stop the element (a sync bus handler):
   * keep @s alive until this returns. */
  synth_ref (s);
  SYNTH_LOCK (s);
  s->connecting = will_retry;
  if (fatal)
    s->failed = TRUE;
  /* Once per outage: the retries that follow are element messages. */
  warn = will_retry && !s->outage_warned;
  if (warn)
    s->outage_warned = TRUE;
  defer_message (s, &d,
      gst_structure_new (s->name, "event", G_TYPE_STRING, "connect-failed",
          "http-status", G_TYPE_UINT, http_status, "error", G_TYPE_STRING, why,
          "will-retry", G_TYPE_BOOLEAN, will_retry, NULL));
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);

  /* The code follows the status (gstvoicehttp.c); the text names the fix. */
  if (http_status == 401 || http_status == 403)
    GST_VOICE_HTTP_ERROR (s->owner, http_status, (EL_KEY_REJECTED, http_status),
        ("WebSocket handshake refused: %s", why));
  else if (fatal)
    GST_VOICE_HTTP_ERROR (s->owner, http_status,
        ("ElevenLabs refused the connection (HTTP %u): check voice-id, "
         "model-id and output-format.",
            http_status),
        ("WebSocket handshake refused: %s", why));
  else if (!will_retry)
    GST_VOICE_HTTP_ERROR (s->owner, http_status,
        ("Could not connect to ElevenLabs at %s.", url), ("%s", why));
  else if (warn)
    GST_ELEMENT_WARNING (s->owner, RESOURCE, OPEN_READ,
        ("Cannot reach ElevenLabs at %s; retrying.", url), ("%s", why));
  g_free (why);
  g_free (url);
  synth_unref (s);
}

void
on_stalled (GstVoiceClient *client, gsize queued, gpointer user_data)
{
  ElSynth *s = user_data;

  GST_ELEMENT_WARNING (s->owner, RESOURCE, WRITE,
      ("The connection to ElevenLabs stalled; reconnecting."),
      ("%" G_GSIZE_FORMAT " bytes queued without progress", queued));
}

/* ---- Timer ---- */

/* Keep-alives while idle, a watchdog on closing contexts, stale turns. */
gboolean
on_timer (gpointer user_data)
{
  ElSynth *s = user_data;
  Deferred d = { 0 };
  gint64 now = g_get_monotonic_time ();

  SYNTH_LOCK (s);
  if (s->connected && !s->stopped && !s->failed) {
    Ctx *ready = find_ready_locked (s);
    for (GList *l = s->contexts; l; l = l->next) {
      Ctx *c = l->data;
      if (c->state == CTX_CLOSING && now - c->activity_us > CLOSE_TIMEOUT_US) {
        GST_WARNING_OBJECT (
            s->owner, "context %s never closed, reopening", c->id);
        s->connected = FALSE;
        s->connecting = TRUE;
        forget_contexts_locked (s);
        defer_reconnect (s, &d);
        break;
      }
    }
    if (s->connected && g_queue_is_empty (&s->turns) && ready &&
        now - s->last_send_us >= s->keepalive_us)
      send_locked (s, el_msg_keepalive (ready->id));
  }
  end_stale_turn_locked (s, now, &d);
  SYNTH_UNLOCK (s);
  run_deferred (s, &d);
  return G_SOURCE_CONTINUE;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The ElevenLabs network half shared by elevenlabssink (and elevenlabssrc
 * when it speaks its own text).
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
 * Order: audio of a turn is queued for the src only once every earlier
 * turn's audio is in (held meanwhile), so two turns never interleave.
 *
 * Errors: after an error frame or a dropped connection the socket is
 * re-opened and each unfinished turn resent from the first character whose
 * audio has not arrived (from the alignment data). Voice settings go with
 * the first context of each connection only: the service rejects settings
 * that change between messages of one connection.
 *
 * Threads: the streaming thread calls the public functions; the client's
 * callbacks and the keep-alive timer run on the voice I/O thread. One mutex,
 * SYNTH_LOCK, guards everything that changes; a static helper that expects
 * it held ends in _locked. Client calls that can call back synchronously
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

#include "synth.h"
#include "pair.h"
#include "gstvoiceredact.h"

#include <string.h>

GST_DEBUG_CATEGORY_STATIC (el_synth_debug);
#define GST_CAT_DEFAULT el_synth_debug

/* The timer runs at most this far apart, and at least four times per
 * keep-alive interval so a keep-alive is never late. */
#define TIMER_INTERVAL_MS 500
/* A closing context that shows no life for this long is presumed lost
 * (the server never confirmed it): the socket is re-opened. */
#define CLOSE_TIMEOUT_US (10 * G_USEC_PER_SEC)
/* Error frames in a row, with no audio in between, before giving up. */
#define MAX_ERROR_FRAMES 3

typedef enum {
  CTX_READY, /* opened, no turn yet */
  CTX_ACTIVE, /* carrying a turn */
  CTX_CLOSING, /* close_context sent, waiting for isFinal */
} CtxState;

typedef struct _Turn Turn;

/* Contexts and turns belong to their ElSynth: every field is protected by
 * its SYNTH_LOCK. */
typedef struct
{
  gchar *id;
  CtxState state;
  Turn *turn; /* NULL when READY or cancelled */
  gint64 activity_us; /* last message sent or received for it */
} Ctx;

struct _Turn
{
  guint number;
  GString *text; /* everything said in the turn, as sent */
  gsize sent; /* bytes of @text sent on the current context / requested */
  gsize confirmed; /* non-space characters whose audio has arrived */
  guint characters; /* billed, resends included */
  gboolean ended; /* no more text will come */
  gboolean flush_sent;
  gboolean got_audio;
  gboolean complete; /* all its audio has arrived */
  gint64 last_text_us;
  gint64 first_sent_us;
  gint64 speakable_us; /* when what was sent could first be spoken */
  GstClockTime ttfb;
  Ctx *ctx;
  GQueue held; /* audio waiting for an earlier turn to complete */
};

/* An HTTP request in flight; freed by the client (http_req_free). */
typedef struct
{
  ElSynth *synth; /* strong ref; immutable */
  Turn *turn; /* protected by SYNTH_LOCK; NULL once the turn is gone */
  guint id; /* protected by SYNTH_LOCK */
  /* immutable after http_pump_locked() */
  guint segment;
  gchar *text; /* the piece of the turn it speaks */
  gint64 sent_us;
  /* I/O thread only (the request's callbacks) */
  guint status;
  gint leftover; /* odd byte of a split sample, or -1 */
} HttpReq;

struct _ElSynth
{
  gint ref; /* atomic */
  GMutex lock; /* SYNTH_LOCK */

  /* Immutable after el_synth_new(). */
  GstElement *owner;
  gchar *name; /* structure name of the messages */
  ElSynthConfig cfg;
  GstVoiceQueue *out;
  gboolean own;
  GstVoiceClient *client;
  gint64 keepalive_us;

  /* Protected by SYNTH_LOCK. */
  gboolean connected;
  gboolean connecting;
  gboolean stopped;
  gboolean failed;
  gboolean eos_pending;
  GQueue turns; /* of Turn*, oldest first, until their audio is all in */
  GList *contexts; /* of Ctx* */
  guint next_ctx;
  guint next_segment;
  gboolean settings_sent; /* on this connection */
  gboolean have_cancelled;
  guint cancelled_turn; /* text of this turn is dropped */
  gint64 last_send_us;
  guint error_frames;
  gboolean outage_warned; /* since the last successful connect */
  HttpReq *request; /* HTTP: the request in flight */
  GSource *timer;
};

#define SYNTH_LOCK(s) g_mutex_lock (&(s)->lock)
#define SYNTH_UNLOCK(s) g_mutex_unlock (&(s)->lock)

/* Messages to post and client calls to make once SYNTH_LOCK is released;
 * a local of the calling thread. */
typedef GstVoiceDeferred Deferred;

static void pump_locked (ElSynth *s, Deferred *d);
static void http_pump_locked (ElSynth *s, Deferred *d);

/* The user-facing text of a 401 / 403, WebSocket or HTTP. */
#define EL_KEY_REJECTED                                                        \
  "ElevenLabs rejected the API key (HTTP %u): set ELEVENLABS_API_KEY (or "     \
  "the api-key property) to a valid key."

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

static ElSynth *
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

static void
ctx_free (Ctx *c)
{
  g_free (c->id);
  g_free (c);
}

static void
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

static void
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
static void
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
static void
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
static void
run_deferred (ElSynth *s, Deferred *d)
{
  gst_voice_deferred_run (d);
}

/* ---- Output ---- */

static Turn *
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
static void
deliver_locked (ElSynth *s, Turn *t, GstMiniObject *item)
{
  if (t == head_turn_locked (s))
    out_push_locked (s, item);
  else
    g_queue_push_tail (&t->held, item);
}

/* Completes the turns at the head whose audio is all in; their turn ends
 * go out, and the next turn's held audio follows. */
static void
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

static void
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

static void
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

/* Length of @text up to its last sentence end, 0 if none. */
static gsize
upto_sentence_end (const gchar *text, gsize len)
{
  for (gsize i = len; i > 1; i--)
    if (g_ascii_isspace (text[i - 1]) && strchr (".!?;:", text[i - 2]))
      return i;
  return 0;
}

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
static void
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
static GBytes *
to_s16 (ElSynth *s, GBytes *audio)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (audio, &len);

  if (el_output_format_is_ulaw (s->cfg.format))
    return el_ulaw_to_s16le (data, len);
  /* An odd byte cannot be a sample; the service never splits one. */
  return g_bytes_new_from_bytes (audio, 0, len & ~(gsize)1);
}

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

static void
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

static void
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

static void
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

static void
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

static void
on_stalled (GstVoiceClient *client, gsize queued, gpointer user_data)
{
  ElSynth *s = user_data;

  GST_ELEMENT_WARNING (s->owner, RESOURCE, WRITE,
      ("The connection to ElevenLabs stalled; reconnecting."),
      ("%" G_GSIZE_FORMAT " bytes queued without progress", queued));
}

static void end_turn_locked (ElSynth *s, Turn *t, Deferred *d);
static Turn *open_turn_locked (ElSynth *s);

/* Ends the open turn once its text stopped for turn-timeout-ms, so the
 * tail is spoken even when upstream never says the turn is over. */
static void
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

/* Keep-alives while idle, a watchdog on closing contexts, stale turns. */
static gboolean
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
static void
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
      MAX (1, (gint64)config->inactivity_timeout_s) * G_USEC_PER_SEC / 2;
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
      s->cfg.auto_mode, s->cfg.inactivity_timeout_s);
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

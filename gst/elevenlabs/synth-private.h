/* gst-voiceagent: what the files of ElSynth share and nothing else: the
 * struct, the debug category, and the helpers one file calls in another.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "synth.h"

G_BEGIN_DECLS

/* Every file of the synth logs to the one "elevenlabssynth" category
 * (defined in synth.c). */
G_GNUC_INTERNAL GST_DEBUG_CATEGORY_EXTERN (el_synth_debug);
#define GST_CAT_DEFAULT el_synth_debug

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

/* The user-facing text of a 401 / 403, WebSocket or HTTP. */
#define EL_KEY_REJECTED                                                        \
  "ElevenLabs rejected the API key (HTTP %u): set ELEVENLABS_API_KEY (or "     \
  "the api-key property) to a valid key."

/* The helpers below were static before the synth was split into files
 * and keep their short names; G_GNUC_INTERNAL keeps them out of the
 * plugin's exported symbols. */

/* synth.c */
G_GNUC_INTERNAL ElSynth *synth_ref (ElSynth *s);
G_GNUC_INTERNAL void synth_unref (gpointer data);
G_GNUC_INTERNAL void ctx_free (Ctx *c);
G_GNUC_INTERNAL void defer_message (ElSynth *s, Deferred *d, GstStructure *st);
G_GNUC_INTERNAL void defer_reconnect (ElSynth *s, Deferred *d);
G_GNUC_INTERNAL void defer_close (ElSynth *s, Deferred *d);
G_GNUC_INTERNAL void run_deferred (ElSynth *s, Deferred *d);
G_GNUC_INTERNAL Turn *head_turn_locked (ElSynth *s);
G_GNUC_INTERNAL void deliver_locked (ElSynth *s, Turn *t, GstMiniObject *item);
G_GNUC_INTERNAL void advance_locked (ElSynth *s, Deferred *d);
G_GNUC_INTERNAL gsize upto_sentence_end (const gchar *text, gsize len);
G_GNUC_INTERNAL void post_first_audio_locked (
    ElSynth *s, Turn *t, gint64 now, Deferred *d);
G_GNUC_INTERNAL GBytes *to_s16 (ElSynth *s, GBytes *audio);
G_GNUC_INTERNAL void end_stale_turn_locked (
    ElSynth *s, gint64 now, Deferred *d);

/* synth-ws.c */
G_GNUC_INTERNAL void send_locked (ElSynth *s, gchar *msg);
G_GNUC_INTERNAL void close_ctx_locked (ElSynth *s, Ctx *c);
/* Both protocols: HTTP hands over to http_pump_locked(). */
G_GNUC_INTERNAL void pump_locked (ElSynth *s, Deferred *d);
G_GNUC_INTERNAL void on_message (GstVoiceClient *client,
    SoupWebsocketDataType type, GBytes *message, gpointer user_data);
G_GNUC_INTERNAL void on_opened (
    GstVoiceClient *client, gboolean reconnected, gpointer user_data);
G_GNUC_INTERNAL void on_closed (GstVoiceClient *client, gushort code,
    const gchar *reason, gboolean will_retry, gpointer user_data);
G_GNUC_INTERNAL void on_connect_failed (GstVoiceClient *client,
    guint http_status, SoupMessageHeaders *headers, const GError *error,
    gboolean will_retry, gpointer user_data);
G_GNUC_INTERNAL void on_stalled (
    GstVoiceClient *client, gsize queued, gpointer user_data);
G_GNUC_INTERNAL gboolean on_timer (gpointer user_data);

/* synth-http.c */
G_GNUC_INTERNAL void http_pump_locked (ElSynth *s, Deferred *d);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>
#include <voice.h>

#include "protocol.h"

G_BEGIN_DECLS

typedef enum {
  EL_PROTOCOL_WEBSOCKET,
  EL_PROTOCOL_HTTP,
} ElProtocol;

/* Most contexts open at once on one socket. ElevenLabs closes the socket
 * when a fifth is opened, so one stays spare for what the server has not
 * confirmed closed yet. */
#define EL_MAX_CONTEXTS 4

typedef struct
{
  gchar *api_key;
  gchar *url;
  gchar *voice_id;
  gchar *model_id;
  ElOutputFormat format;
  ElVoiceSettings settings;
  gboolean auto_mode;
  gboolean flush_first_clause; /* speak a turn's first text at once */
  ElProtocol protocol;
  guint inactivity_timeout_ms; /* sent rounded up to whole seconds */
  guint turn_timeout_ms; /* end a turn whose text stopped; 0: never */
} ElSynthConfig;

void el_synth_config_copy (ElSynthConfig *dst, const ElSynthConfig *src);
void el_synth_config_clear (ElSynthConfig *cfg);

/* The network half of the pair: turns text into audio through ElevenLabs
 * and queues that audio (see pair.h) for elevenlabssrc. One context of the
 * multi-context WebSocket per turn, closed when the turn ends or is
 * interrupted; the socket kept alive between turns and re-opened (with the
 * unspoken text re-sent) after errors. All functions are thread-safe; none
 * blocks on the network. Messages and errors are posted on @owner, so only
 * el_synth_new() and el_synth_ref() may be called with a lock of the
 * element held; the others take the synth's own lock (SYNTH_LOCK, a leaf
 * among the elevenlabs locks: see synth.c). */
typedef struct _ElSynth ElSynth;

ElSynth *el_synth_new (GstElement *owner, const gchar *message_name,
    const ElSynthConfig *config, GstVoiceQueue *out, gboolean own);
/* Connects now (WebSocket) so the first turn does not wait for it. */
void el_synth_start (ElSynth *s);
/* Stops everything, waits until no callback runs and drops the caller's
 * reference. Other references keep a stopped @s valid. */
void el_synth_free (ElSynth *s);
ElSynth *el_synth_ref (ElSynth *s);
void el_synth_unref (ElSynth *s);

/* Queues @text for @turn; a different turn number ends the previous turn.
 * Text of a turn that was interrupted is dropped. */
void el_synth_push_text (ElSynth *s, guint turn, const gchar *text);
/* No more text for @turn: flush so the tail is spoken. */
void el_synth_end_turn (ElSynth *s, guint turn);
/* Barge-in: cancels every turn in progress (their audio is dropped) and
 * queues @event (nullable, transfer full) for the src half in order.
 * Returns TRUE if a turn was cancelled. */
gboolean el_synth_interrupt (ElSynth *s, GstEvent *event);
/* Queues @event (transfer full) for the src half now: after the audio
 * already handed over, before audio still to come (conversation events
 * mark moments, not places in the speech). */
void el_synth_forward (ElSynth *s, GstEvent *event);
/* Ends the current turn and queues EOS once every turn's audio is in. */
void el_synth_eos (ElSynth *s);

/* TRUE after a fatal error (rejected key, refused request). */
gboolean el_synth_has_failed (ElSynth *s);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* The playout buffer of elevenlabssrc: what the network delivered (chunks,
 * turn ends, EOS; see pair.h), read out a fixed number of samples at a time
 * at the pace of the clock. It decides when a turn starts (its first audio
 * plus the prebuffer), counts underruns, and keeps track of which characters
 * of a turn have been played, so an interrupted turn can report what the
 * caller heard. No threads and no clock here: the element calls it under
 * its PLAYOUT_LOCK, the unit tests call it directly. */

typedef enum {
  EL_NOTE_STARTED, /* a turn's first sample is at @offset */
  EL_NOTE_STOPPED, /* a turn ended (complete, or interrupted) at @offset */
  EL_NOTE_DROPPED, /* a queued turn that never played was dropped */
  EL_NOTE_UNDERRUN, /* the playing turn ran dry at @offset */
  EL_NOTE_EOS, /* the stream ended at @offset */
} ElNoteType;

typedef struct
{
  ElNoteType type;
  guint offset; /* in samples, into the buffer just read */
  guint turn;
  gboolean own;
  gint64 received_us; /* STARTED: when its first audio arrived */
  /* STOPPED and DROPPED: */
  gboolean complete;
  gchar *spoken; /* what was played of the turn's text */
  guint64 samples; /* samples played */
  guint underruns;
  guint characters; /* billed characters, when the turn end said */
  GstClockTime ttfb;
} ElNote;

typedef struct _ElPlayout ElPlayout;

ElPlayout *el_playout_new (guint rate);
void el_playout_free (ElPlayout *p);

/* A new rate drops what is queued (it was for the old one). */
void el_playout_set_rate (ElPlayout *p, guint rate);
guint el_playout_get_rate (ElPlayout *p);
void el_playout_set_prebuffer (ElPlayout *p, GstClockTime prebuffer);

/* Takes @item: a chunk buffer, an EL_EVENT_TURN_END event or EOS.
 * Anything else is dropped. */
void el_playout_push (ElPlayout *p, GstMiniObject *item);

/* Fills @out with @n samples: audio from @0 up to the returned count,
 * silence after it. Appends what happened to @notes (of ElNote; set
 * el_note_clear as its clear function). */
guint el_playout_read (ElPlayout *p, gint16 *out, guint n, GArray *notes);

/* Pause (agent-pause, a possible barge-in): el_playout_read() returns
 * silence and keeps everything queued until unpaused. Returns TRUE if the
 * state changed. */
gboolean el_playout_set_paused (ElPlayout *p, gboolean paused);
gboolean el_playout_is_paused (ElPlayout *p);

/* Barge-in (which also ends a pause): drops every queued and playing turn (EOS stays), appending a
 * STOPPED note for the playing one and a DROPPED note for each queued one.
 * Returns TRUE if there was anything to drop. */
gboolean el_playout_interrupt (ElPlayout *p, GArray *notes);

/* TRUE when nothing is playing or queued. */
gboolean el_playout_is_idle (ElPlayout *p);
guint64 el_playout_get_queued_samples (ElPlayout *p);

void el_note_clear (gpointer note);
GArray *el_notes_new (void);

G_END_DECLS

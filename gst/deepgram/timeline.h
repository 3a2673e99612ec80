/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * DgTimeline:
 *
 * The audio ledger of one deepgramsink: every chunk of audio it received,
 * kept until a final result covers it, so that
 *
 * - audio not yet sent waits here (bounded by the caller) while the
 *   connection is down or full;
 * - after a reconnect, everything since the last final result is sent again
 *   on the new connection, so a drop in mid-sentence loses no words;
 * - a time Deepgram reports (seconds of audio received on *this*
 *   connection, which skips whatever was never sent, e.g. gated silence) maps
 *   back to the pipeline's running time and to the moment the audio arrived.
 *
 * Not thread-safe: the owner locks. Positions are in samples (frames).
 */
typedef struct _DgTimeline DgTimeline;

DgTimeline *dg_timeline_new (guint rate, guint bytes_per_frame);
void dg_timeline_free (DgTimeline *tl);

void dg_timeline_push (
    DgTimeline *tl, GBytes *data, GstClockTime running_time, gint64 wall_us);

GBytes *dg_timeline_peek_unsent (DgTimeline *tl, gboolean *finalize_after);
gboolean dg_timeline_mark_finalize (DgTimeline *tl);
void dg_timeline_mark_sent (DgTimeline *tl);

void dg_timeline_new_connection (DgTimeline *tl);
void dg_timeline_finalized (DgTimeline *tl, gdouble end_seconds);

guint64 dg_timeline_drop_fresh (DgTimeline *tl, guint64 max_fresh);
guint64 dg_timeline_drop_retained (DgTimeline *tl, guint64 max_retained);

GstClockTime dg_timeline_running_time (DgTimeline *tl, gdouble seconds);
gint64 dg_timeline_wall_time (DgTimeline *tl, gdouble seconds);

guint64 dg_timeline_get_unsent (DgTimeline *tl);
guint64 dg_timeline_get_fresh (DgTimeline *tl);
guint64 dg_timeline_get_pending (DgTimeline *tl);
guint64 dg_timeline_get_retained (DgTimeline *tl);
guint64 dg_timeline_get_sent_total (DgTimeline *tl);
guint dg_timeline_get_rate (DgTimeline *tl);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>

#include "timeline.h"

/* A chunk whose running time is this far from where the previous one ended
 * starts a new segment: gated silence, a dropped backlog, a discont. Less
 * is timestamp jitter of live sources, which must not split segments. */
#define SEGMENT_TOLERANCE (10 * GST_MSECOND)
/* Segments are kept this long (audio time) behind the last final result, so
 * UtteranceEnd's last_word_end still maps to the right place. */
#define SEGMENT_HISTORY_S 60
#define MAX_SEGMENTS 4096

typedef struct
{
  GBytes *data;
  guint64 frames;
  GstClockTime running_time; /* of its first frame */
  gint64 wall_us; /* monotonic time its last frame arrived */
  guint64 pos; /* position of its first frame on the connection, if sent */
  gboolean sent; /* handed to the current connection */
  gboolean ever_sent; /* handed to any connection */
  gboolean finalize_after; /* speech stopped here: Finalize follows it */
} Chunk;

typedef struct
{
  guint64 pos; /* stream position on the connection... */
  GstClockTime running_time; /* ...and the running time it had */
} Segment;

struct _DgTimeline
{
  guint rate;
  guint bpf;
  GQueue chunks; /* of Chunk*, oldest first; all sent ones before unsent */
  GList *first_unsent; /* link in chunks, NULL when everything was sent */
  guint64 pos; /* frames sent on the current connection */
  guint64 final_pos; /* frames covered by final results on it */
  GArray *segments; /* of Segment, by pos */
  guint64 unsent; /* frames in chunks not sent on this connection */
  guint64 fresh; /* frames in chunks never sent on any connection */
  guint64 retained; /* frames in all chunks */
  guint64 sent_total; /* frames sent over all connections (billed) */
  GstClockTime end_running_time; /* just after the newest chunk */
};

static void
chunk_free (Chunk *c)
{
  g_bytes_unref (c->data);
  g_free (c);
}

static GstClockTime
frames_to_time (DgTimeline *tl, guint64 frames)
{
  return gst_util_uint64_scale_int (frames, GST_SECOND, tl->rate);
}

static guint64
seconds_to_pos (DgTimeline *tl, gdouble seconds)
{
  return seconds > 0 ? (guint64)llround (seconds * tl->rate) : 0;
}

/**
 * dg_timeline_new:
 * @rate: sample rate of the audio
 * @bytes_per_frame: 2 for S16 mono, 1 for mu-law
 *
 * Returns: (transfer full): an empty ledger; free with dg_timeline_free().
 */
DgTimeline *
dg_timeline_new (guint rate, guint bytes_per_frame)
{
  DgTimeline *tl = g_new0 (DgTimeline, 1);

  g_return_val_if_fail (rate > 0 && bytes_per_frame > 0, NULL);
  tl->rate = rate;
  tl->bpf = bytes_per_frame;
  g_queue_init (&tl->chunks);
  tl->segments = g_array_new (FALSE, FALSE, sizeof (Segment));
  tl->end_running_time = GST_CLOCK_TIME_NONE;
  return tl;
}

void
dg_timeline_free (DgTimeline *tl)
{
  if (tl == NULL)
    return;
  g_queue_clear_full (&tl->chunks, (GDestroyNotify)chunk_free);
  g_array_unref (tl->segments);
  g_free (tl);
}

/**
 * dg_timeline_push:
 * @data: (transfer none): whole frames of audio
 * @running_time: of the first frame, or GST_CLOCK_TIME_NONE to continue
 *   where the previous chunk ended
 * @wall_us: monotonic time the chunk arrived (when its last frame existed)
 *
 * Appends a chunk, not yet sent.
 */
void
dg_timeline_push (
    DgTimeline *tl, GBytes *data, GstClockTime running_time, gint64 wall_us)
{
  Chunk *c = g_new0 (Chunk, 1);

  c->data = g_bytes_ref (data);
  c->frames = g_bytes_get_size (data) / tl->bpf;
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    running_time = GST_CLOCK_TIME_IS_VALID (tl->end_running_time)
        ? tl->end_running_time
        : 0;
  c->running_time = running_time;
  c->wall_us = wall_us;
  g_queue_push_tail (&tl->chunks, c);
  if (tl->first_unsent == NULL)
    tl->first_unsent = tl->chunks.tail;
  tl->unsent += c->frames;
  tl->fresh += c->frames;
  tl->retained += c->frames;
  tl->end_running_time = running_time + frames_to_time (tl, c->frames);
}

/**
 * dg_timeline_peek_unsent:
 * @finalize_after: (out) (optional): set to whether a Finalize must follow
 *   the chunk (see dg_timeline_mark_finalize())
 *
 * Returns: (transfer none) (nullable): the oldest chunk not sent on this
 * connection; after sending it, call dg_timeline_mark_sent().
 */
GBytes *
dg_timeline_peek_unsent (DgTimeline *tl, gboolean *finalize_after)
{
  Chunk *c = tl->first_unsent ? tl->first_unsent->data : NULL;

  if (finalize_after)
    *finalize_after = c && c->finalize_after;
  return c ? c->data : NULL;
}

/**
 * dg_timeline_mark_finalize:
 *
 * Speech stopped after the newest chunk: a Finalize belongs right after it
 * in the stream, on this connection and on any that sends it again.
 *
 * Returns: TRUE if that chunk was already sent on this connection (the
 * caller sends Finalize now); FALSE if the Finalize will follow the chunk
 * when it is sent, or nothing is retained (nothing to finalize).
 */
gboolean
dg_timeline_mark_finalize (DgTimeline *tl)
{
  Chunk *c = g_queue_peek_tail (&tl->chunks);

  if (c == NULL)
    return FALSE;
  c->finalize_after = TRUE;
  return c->sent;
}

static void
add_segment (DgTimeline *tl, GstClockTime running_time)
{
  Segment seg = { tl->pos, running_time };

  if (tl->segments->len > 0) {
    Segment *last =
        &g_array_index (tl->segments, Segment, tl->segments->len - 1);
    GstClockTime expected =
        last->running_time + frames_to_time (tl, tl->pos - last->pos);
    GstClockTimeDiff diff = GST_CLOCK_DIFF (expected, running_time);

    if (ABS (diff) <= SEGMENT_TOLERANCE)
      return;
    if (tl->segments->len >= MAX_SEGMENTS)
      g_array_remove_index (tl->segments, 0);
  }
  g_array_append_val (tl->segments, seg);
}

/**
 * dg_timeline_mark_sent:
 *
 * The chunk dg_timeline_peek_unsent() returned went to the connection: it
 * now occupies the next stream positions there.
 */
void
dg_timeline_mark_sent (DgTimeline *tl)
{
  Chunk *c;

  g_return_if_fail (tl->first_unsent != NULL);
  c = tl->first_unsent->data;
  add_segment (tl, c->running_time);
  c->pos = tl->pos;
  c->sent = TRUE;
  tl->pos += c->frames;
  tl->sent_total += c->frames;
  tl->unsent -= c->frames;
  if (!c->ever_sent)
    tl->fresh -= c->frames;
  c->ever_sent = TRUE;
  tl->first_unsent = tl->first_unsent->next;
}

/**
 * dg_timeline_new_connection:
 *
 * A new connection starts at stream time 0 and has seen nothing: every
 * retained chunk (audio since the last final result, and what was never
 * sent) is to be sent again.
 */
void
dg_timeline_new_connection (DgTimeline *tl)
{
  for (GList *l = tl->chunks.head; l; l = l->next)
    ((Chunk *)l->data)->sent = FALSE;
  tl->first_unsent = tl->chunks.head;
  tl->unsent = tl->retained;
  tl->pos = 0;
  tl->final_pos = 0;
  g_array_set_size (tl->segments, 0);
}

static void
trim_segments (DgTimeline *tl)
{
  guint64 keep_from = tl->final_pos > (guint64)SEGMENT_HISTORY_S * tl->rate
      ? tl->final_pos - (guint64)SEGMENT_HISTORY_S * tl->rate
      : 0;
  guint n = 0;

  while (n + 1 < tl->segments->len &&
      g_array_index (tl->segments, Segment, n + 1).pos <= keep_from)
    n++;
  if (n > 0)
    g_array_remove_range (tl->segments, 0, n);
}

/**
 * dg_timeline_finalized:
 * @end_seconds: end of a final result (start + duration)
 *
 * Deepgram will not revise audio before @end_seconds any more: forget it
 * (to the frame), so a reconnect re-sends only what comes after.
 */
void
dg_timeline_finalized (DgTimeline *tl, gdouble end_seconds)
{
  guint64 end = MIN (seconds_to_pos (tl, end_seconds), tl->pos);
  Chunk *c;

  if (end <= tl->final_pos)
    return;
  tl->final_pos = end;
  while ((c = g_queue_peek_head (&tl->chunks)) && c->sent &&
      c->pos + c->frames <= end) {
    g_queue_pop_head (&tl->chunks);
    tl->retained -= c->frames;
    chunk_free (c);
  }
  if (c && c->sent && c->pos < end) {
    guint64 k = end - c->pos;
    GBytes *rest = g_bytes_new_from_bytes (
        c->data, k * tl->bpf, g_bytes_get_size (c->data) - k * tl->bpf);

    g_bytes_unref (c->data);
    c->data = rest;
    c->running_time += frames_to_time (tl, k);
    c->pos = end;
    c->frames -= k;
    tl->retained -= k;
  }
  trim_segments (tl);
}

static void
remove_link (DgTimeline *tl, GList *link)
{
  Chunk *c = link->data;

  /* A dropped chunk's Finalize stays with the audio before it. */
  if (c->finalize_after && link->prev)
    ((Chunk *)link->prev->data)->finalize_after = TRUE;

  if (link == tl->first_unsent)
    tl->first_unsent = link->next;
  if (!c->sent)
    tl->unsent -= c->frames;
  if (!c->ever_sent)
    tl->fresh -= c->frames;
  tl->retained -= c->frames;
  g_queue_delete_link (&tl->chunks, link);
  chunk_free (c);
}

/**
 * dg_timeline_drop_fresh:
 * @max_fresh: frames of never-sent audio to keep at most
 *
 * Drops the oldest never-sent chunks beyond the bound: when the network
 * cannot keep up, the newest audio matters most to a conversation. Audio
 * waiting to be sent again after a reconnect is not counted: it is bounded
 * by dg_timeline_drop_retained().
 *
 * Returns: frames dropped.
 */
guint64
dg_timeline_drop_fresh (DgTimeline *tl, guint64 max_fresh)
{
  guint64 dropped = 0;
  GList *l = tl->first_unsent;

  while (l && ((Chunk *)l->data)->ever_sent)
    l = l->next;
  while (tl->fresh > max_fresh && l) {
    GList *next = l->next;

    dropped += ((Chunk *)l->data)->frames;
    remove_link (tl, l);
    l = next;
  }
  return dropped;
}

/**
 * dg_timeline_drop_retained:
 * @max_retained: frames to keep at most
 *
 * Forgets the oldest sent-but-not-final audio beyond the bound (a very long
 * stretch without a final result). It only matters if the connection drops:
 * that audio could then not be sent again.
 *
 * Returns: frames dropped.
 */
guint64
dg_timeline_drop_retained (DgTimeline *tl, guint64 max_retained)
{
  guint64 dropped = 0;
  Chunk *c;

  while (tl->retained > max_retained && (c = g_queue_peek_head (&tl->chunks)) &&
      c->ever_sent) {
    dropped += c->frames;
    remove_link (tl, tl->chunks.head);
  }
  return dropped;
}

/**
 * dg_timeline_running_time:
 * @seconds: a time Deepgram reported on the current connection
 *
 * Returns: the pipeline running time of that audio, or GST_CLOCK_TIME_NONE
 * when nothing was sent on this connection yet.
 */
GstClockTime
dg_timeline_running_time (DgTimeline *tl, gdouble seconds)
{
  guint64 pos = seconds_to_pos (tl, seconds);
  Segment *seg;
  gint i;

  if (tl->segments->len == 0)
    return GST_CLOCK_TIME_NONE;
  for (i = (gint)tl->segments->len - 1; i > 0; i--) {
    if (g_array_index (tl->segments, Segment, i).pos <= pos)
      break;
  }
  seg = &g_array_index (tl->segments, Segment, i);
  if (pos >= seg->pos)
    return seg->running_time + frames_to_time (tl, pos - seg->pos);
  /* Before the oldest segment kept: extrapolate backwards. */
  return seg->running_time -
      MIN (seg->running_time, frames_to_time (tl, seg->pos - pos));
}

/**
 * dg_timeline_wall_time:
 * @seconds: a time Deepgram reported on the current connection
 *
 * Returns: the monotonic time (µs) that audio reached the sink, or -1 when
 * it is no longer retained.
 */
gint64
dg_timeline_wall_time (DgTimeline *tl, gdouble seconds)
{
  guint64 pos = seconds_to_pos (tl, seconds);
  GList *l = tl->first_unsent ? tl->first_unsent->prev : tl->chunks.tail;

  for (; l; l = l->prev) {
    Chunk *c = l->data;
    guint64 end = c->pos + c->frames;

    if (c->pos <= pos || l->prev == NULL) {
      if (pos >= end)
        return c->wall_us;
      if (pos < c->pos)
        return -1;
      return c->wall_us - (gint64)((end - pos) * G_USEC_PER_SEC / tl->rate);
    }
  }
  return -1;
}

guint64
dg_timeline_get_unsent (DgTimeline *tl)
{
  return tl->unsent;
}

guint64
dg_timeline_get_fresh (DgTimeline *tl)
{
  return tl->fresh;
}

/* Frames sent on this connection that no final result covers yet. */
guint64
dg_timeline_get_pending (DgTimeline *tl)
{
  return tl->pos - tl->final_pos;
}

guint64
dg_timeline_get_retained (DgTimeline *tl)
{
  return tl->retained;
}

/* Frames sent over all connections, re-sent audio included: what Deepgram
 * bills. */
guint64
dg_timeline_get_sent_total (DgTimeline *tl)
{
  return tl->sent_total;
}

guint
dg_timeline_get_rate (DgTimeline *tl)
{
  return tl->rate;
}

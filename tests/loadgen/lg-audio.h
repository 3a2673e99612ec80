/* voiceagent-loadgen: the caller's speech, rendered and encoded once.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LG_FRAME_MS 20
#define LG_RATE 48000

/* One utterance: espeak-ng speech as 20 ms Opus packets (48 kHz mono),
 * and where the speech in it starts and ends. Immutable once rendered, so
 * every caller shares it. */
typedef struct
{
  gchar *text;
  GPtrArray *packets; /* of GBytes */
  guint speech_start_ms;
  guint speech_end_ms;
} LgClip;

LgClip *lg_clip_render (const gchar *text, GError **error);
/* A clip of @n samples of @pcm (LG_RATE Hz mono), e.g. rendered by other
 * means; NULL with @error set when none of it is audible. */
LgClip *lg_clip_new_from_pcm (
    const gchar *text, const gint16 *pcm, gsize n, GError **error);
void lg_clip_free (LgClip *clip);

/* A packet of digital silence, for the gaps between utterances: callers
 * stream all the time, as a microphone does. */
GBytes *lg_silence_packet (void);

/* Where, in milliseconds from the start of @pcm (16 kHz mono), the first
 * and last 1 ms windows louder than @rms are; FALSE if none is. */
gboolean lg_find_loud (const gint16 *pcm, gsize n_samples, gdouble rms,
    guint *first_ms, guint *last_end_ms);

/* The loud part of a buffer of received audio (16 kHz mono) that arrived
 * at @arrival_us (it ends then), as monotonic times; FALSE if none. */
gboolean lg_find_loud_times (const gint16 *pcm, gsize n_samples,
    gint64 arrival_us, gdouble rms, gint64 *start_us, gint64 *end_us);

/* The 20 ms clock callers speak by: lg_feeder_thread() calls @tick on each
 * of @callers every LG_FRAME_MS until @running (atomic) is 0. */
typedef void (*LgTickFunc) (gpointer caller, gint64 now_us);
typedef struct
{
  GPtrArray *callers; /* fixed while the feeder runs */
  LgTickFunc tick;
  gint running; /* atomic */
  guint late; /* ticks sent over 100 ms late; feeder thread only */
} LgFeeder;

gpointer lg_feeder_thread (gpointer feeder);

G_END_DECLS

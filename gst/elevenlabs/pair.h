/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* What the network side (elevenlabssink, or elevenlabssrc's own connection
 * when it speaks its `text`) hands the playout side (elevenlabssrc) through
 * the session's TO_SRC queue, in order:
 *
 * - audio: S16LE mono buffers at the current rate, each with a custom meta
 *   named EL_CHUNK_META whose structure has
 *     `turn` (uint), `own` (boolean: spoken by the src's own connection),
 *     `segment` (uint: one per server message or HTTP request),
 *     `received` (int64: g_get_monotonic_time() when the bytes arrived),
 *     and optionally `text` (string) with `char-end-ms` (GstValueArray of
 *     int, one per character of `text`: when it has been spoken, in ms from
 *     the start of the segment). Without `char-end-ms` the text belongs to
 *     the whole segment (HTTP) and is apportioned by played audio.
 * - EL_EVENT_FORMAT (`rate`, int): the rate of the buffers that follow.
 * - EL_EVENT_TURN_END (`turn`, `own`, `characters` (uint, billed),
 *   `ttfb` (uint64 ns, GST_CLOCK_TIME_NONE if unknown), `text`): all the
 *   turn's audio has been queued.
 * - the conversation events the sink received (interrupt, speech-start, ...)
 *   and EOS.
 *
 * Tests use the same format to drive elevenlabssrc without a network. */
#define EL_CHUNK_META "GstElevenLabsChunkMeta"
#define EL_EVENT_FORMAT "elevenlabs-format"
#define EL_EVENT_TURN_END "elevenlabs-turn-end"

/* The session kind both halves acquire. */
#define EL_SESSION_KIND "elevenlabs"

void el_pair_init (void);

GstBuffer *el_chunk_new (GBytes *s16le, guint turn, gboolean own, guint segment,
    gint64 received_us, const gchar *text, const GArray *char_end_ms);
const GstStructure *el_chunk_get_info (GstBuffer *buffer);

GstEvent *el_format_event_new (guint rate);
GstEvent *el_turn_end_event_new (guint turn, gboolean own, guint characters,
    GstClockTime ttfb, const gchar *text);

G_END_DECLS

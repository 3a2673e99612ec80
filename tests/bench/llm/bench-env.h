/* The llm benchmarks' environment: run by hand from a build tree, they
 * find the emulator and the llm plugin there.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* The first (and last) text buffer of a turn out of an element's src pad,
 * timed when it leaves. */
typedef struct
{
  GMutex lock;
  GCond cond;
  gint64 first_us; /* protected by lock: the turn's first buffer, or 0 */
  gboolean last; /* protected by lock: its speech_final buffer went out */
} BenchProbe;

void bench_probe_init (BenchProbe *probe, GstElement *element);
void bench_probe_reset (BenchProbe *probe);
gint64 bench_probe_wait (BenchProbe *probe, gboolean whole);
void bench_probe_clear (BenchProbe *probe);

void bench_use_build_tree (void);
gdouble bench_element_ttft_ms (GstBus *bus);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The few hot loops of the Silero network, in a portable C version and in
 * CPU-specific versions chosen at run time (never from the build machine's
 * flags alone, so one binary runs everywhere and uses what the CPU has).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The largest number of frames mm_acc takes at once. */
#define SILERO_SIMD_MAX_T 4
/* Weight matrices are stored in panels of this many outputs ... */
#define SILERO_SIMD_PANEL 16
/* ... and output dimensions must be multiples of this (all of Silero's
 * are), so kernels can work on 4 panels at once. */
#define SILERO_SIMD_O_ALIGN 64
/* The most runs and the largest input dimension mm_acc_sparse takes. */
#define SILERO_SIMD_MAX_RUNS 8
#define SILERO_SIMD_MAX_I 256

typedef struct _SileroFft SileroFft;

/* T frames of input rows x + t * x_stride and the output rows out + t * O
 * they accumulate into. */
typedef struct
{
  const gfloat *x;
  gfloat *out;
} SileroRun;

typedef struct
{
  const gchar *name;

  /* For each run r and t < T (1 .. SILERO_SIMD_MAX_T), o < O:
   *   r.out[t * O + o] += sum_i W(i, o) * r.x[t * x_stride + i]
   * W is in panel order (see silero_simd_pack) and read once for all the
   * runs: several chunks cost one pass over the weights. O is a multiple
   * of SILERO_SIMD_O_ALIGN; W and every out are 32-byte aligned. */
  void (*mm_acc) (const gfloat *W, gsize I, gsize O, gsize x_stride, guint T,
      const SileroRun *runs, guint n_runs);

  /* The same, for inputs that are mostly exact zeros (ReLU outputs): rows
   * of W whose inputs are zero in all T frames of a run are not read, which
   * changes nothing in the result (w * 0 adds nothing). I is a multiple of
   * 8, at most SILERO_SIMD_MAX_I; at most SILERO_SIMD_MAX_RUNS runs. */
  void (*mm_acc_sparse) (const gfloat *W, gsize I, gsize O, gsize x_stride,
      guint T, const SileroRun *runs, guint n_runs);

  /* In place, n values: x = 1 / (1 + exp (-x)) and x = tanh (x). */
  void (*sigmoid) (gfloat *x, gsize n);
  void (*tanh) (gfloat *x, gsize n);

  /* silero_fft_magnitudes2() (fft.h). */
  void (*fft_magnitudes2) (const SileroFft *fft, const gfloat *x1,
      const gfloat *x2, gfloat *mag1, gfloat *mag2, gfloat *work);
} SileroSimd;

void silero_simd_pack (const gfloat *src, gsize I, gsize O, gfloat *dst);
const SileroSimd *silero_simd_get (void);
const SileroSimd *silero_simd_get_by_name (const gchar *name);
const gchar *const *silero_simd_list (void);

G_END_DECLS

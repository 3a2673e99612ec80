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

typedef struct
{
  const gchar *name;

  /* out[t * O + o] += sum_i W(i, o) * x[t * x_stride + i]
   * for t < T (1 .. SILERO_SIMD_MAX_T) and o < O. W is in panel order
   * (see silero_simd_pack): the weights a kernel needs are read once, in
   * sequence. O is a multiple of SILERO_SIMD_O_ALIGN; W and out are
   * 64-byte aligned. */
  void (*mm_acc) (const gfloat *W, gsize I, gsize O, const gfloat *x,
      gsize x_stride, guint T, gfloat *out);

  /* In place, n values: x = 1 / (1 + exp (-x)) and x = tanh (x). */
  void (*sigmoid) (gfloat *x, gsize n);
  void (*tanh) (gfloat *x, gsize n);

  /* One radix-2 decimation-in-time FFT stage with half-size h (>= 8) over
   * the split complex arrays re, im of n values (32-byte aligned); the
   * twiddles of butterfly j are wr[j] + i wi[j]. */
  void (*fft_stage) (gfloat *re, gfloat *im, guint n, guint h, const gfloat *wr,
      const gfloat *wi);
} SileroSimd;

void silero_simd_pack (const gfloat *src, gsize I, gsize O, gfloat *dst);
const SileroSimd *silero_simd_get (void);
const SileroSimd *silero_simd_get_by_name (const gchar *name);
const gchar *const *silero_simd_list (void);

G_END_DECLS

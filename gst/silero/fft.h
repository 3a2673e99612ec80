/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Magnitude spectra of windowed real frames, two frames per complex FFT.
 */
#pragma once

#include <glib.h>

#include "simd.h"

G_BEGIN_DECLS

/* Tables for one power-of-two size and window; immutable once built, so
 * one SileroFft may serve any number of threads. */
struct _SileroFft
{
  guint n; /* FFT size (a power of two, 16 .. 4096) */
  gint32 *rev; /* bit-reversal permutation, n entries */
  gfloat *wrev; /* window[rev[i]]: the window, in load order */
  gfloat *tw_re; /* twiddles per stage: stage with half-size h uses */
  gfloat *tw_im; /* entries [h, 2h), i.e. exp(-2 pi i j / 2h), j < h */
};

gboolean silero_fft_init (SileroFft *fft, guint n, const gfloat *window);
void silero_fft_clear (SileroFft *fft);

void silero_fft_magnitudes2 (const SileroFft *fft, const SileroSimd *simd,
    const gfloat *x1, const gfloat *x2, gfloat *mag1, gfloat *mag2,
    gfloat *work);
void silero_fft_magnitudes2_c (const SileroFft *fft, const gfloat *x1,
    const gfloat *x2, gfloat *mag1, gfloat *mag2, gfloat *work);

G_END_DECLS

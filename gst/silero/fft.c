/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Silero's STFT is a Conv1d whose 2K x N kernel is a periodic Hann window
 * times cos / -sin rows, i.e. a windowed DFT; only magnitudes are used. We
 * compute it with a radix-2 complex FFT in split (re[], im[]) form, packing
 * two real frames into one transform as x1 + i x2 and separating them with
 * the conjugate symmetry of real spectra. This file has the portable
 * version; simd.c has vector ones built on the same tables.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "fft.h"
#include "simd.h"

#include <math.h>

/* Builds the tables for size @n and the @n-sample @window. Returns FALSE
 * if @n is not a supported power of two. Free with silero_fft_clear(). */
gboolean
silero_fft_init (SileroFft *fft, guint n, const gfloat *window)
{
  guint bits = 0;

  if (n < 16 || n > 4096 || (n & (n - 1)) != 0)
    return FALSE;
  while ((1u << bits) < n)
    bits++;

  fft->n = n;
  fft->rev = g_new (gint32, n);
  fft->wrev = g_new (gfloat, n);
  for (guint i = 0; i < n; i++) {
    guint r = 0;

    for (guint b = 0; b < bits; b++)
      r |= ((i >> b) & 1) << (bits - 1 - b);
    fft->rev[i] = r;
  }
  for (guint i = 0; i < n; i++)
    fft->wrev[i] = window[fft->rev[i]];
  /* Entry h + j of the tables is the twiddle of butterfly j in the stage
   * with half-size h; computed in double so every stage is exact to float
   * precision. */
  fft->tw_re = g_new0 (gfloat, n);
  fft->tw_im = g_new0 (gfloat, n);
  for (guint h = 1; h < n; h *= 2)
    for (guint j = 0; j < h; j++) {
      fft->tw_re[h + j] = (gfloat)cos (M_PI * j / h);
      fft->tw_im[h + j] = (gfloat)-sin (M_PI * j / h);
    }
  return TRUE;
}

void
silero_fft_clear (SileroFft *fft)
{
  g_clear_pointer (&fft->rev, g_free);
  g_clear_pointer (&fft->wrev, g_free);
  g_clear_pointer (&fft->tw_re, g_free);
  g_clear_pointer (&fft->tw_im, g_free);
  fft->n = 0;
}

/* The stages with h = 1, 2, 4 in one pass over groups of 8: their
 * twiddles are 1, -i and (+-1 - i) / sqrt 2, so this is mostly additions. */
static void
first_stages (guint n, gfloat *restrict re, gfloat *restrict im)
{
  const gfloat r = (gfloat)G_SQRT2 / 2;

  for (guint b = 0; b < n; b += 8) {
    gfloat *xr = re + b, *xi = im + b;
    gfloat ar[8], ai[8];

    /* h = 1 and h = 2: radix-4 butterflies on (0 1 2 3) and (4 5 6 7) */
    for (guint q = 0; q < 8; q += 4) {
      gfloat s0r = xr[q] + xr[q + 1], s0i = xi[q] + xi[q + 1];
      gfloat d0r = xr[q] - xr[q + 1], d0i = xi[q] - xi[q + 1];
      gfloat s1r = xr[q + 2] + xr[q + 3], s1i = xi[q + 2] + xi[q + 3];
      gfloat d1r = xr[q + 2] - xr[q + 3], d1i = xi[q + 2] - xi[q + 3];

      ar[q] = s0r + s1r;
      ai[q] = s0i + s1i;
      ar[q + 2] = s0r - s1r;
      ai[q + 2] = s0i - s1i;
      /* d1 times -i is (d1i, -d1r) */
      ar[q + 1] = d0r + d1i;
      ai[q + 1] = d0i - d1r;
      ar[q + 3] = d0r - d1i;
      ai[q + 3] = d0i + d1r;
    }
    /* h = 4: twiddles 1, (1 - i) / sqrt 2, -i, (-1 - i) / sqrt 2 */
    {
      gfloat tr[4], ti[4];

      tr[0] = ar[4];
      ti[0] = ai[4];
      tr[1] = r * (ar[5] + ai[5]);
      ti[1] = r * (ai[5] - ar[5]);
      tr[2] = ai[6];
      ti[2] = -ar[6];
      tr[3] = r * (ai[7] - ar[7]);
      ti[3] = -r * (ar[7] + ai[7]);
      for (guint j = 0; j < 4; j++) {
        xr[j] = ar[j] + tr[j];
        xi[j] = ai[j] + ti[j];
        xr[j + 4] = ar[j] - tr[j];
        xi[j + 4] = ai[j] - ti[j];
      }
    }
  }
}

static void
fft_stage (guint n, guint h, gfloat *restrict re, gfloat *restrict im,
    const gfloat *wr, const gfloat *wi)
{
  for (guint b = 0; b < n; b += 2 * h) {
    gfloat *ar = re + b, *ai = im + b, *cr = re + b + h, *ci = im + b + h;

    for (guint j = 0; j < h; j++) {
      gfloat tr = cr[j] * wr[j] - ci[j] * wi[j];
      gfloat ti = cr[j] * wi[j] + ci[j] * wr[j];

      cr[j] = ar[j] - tr;
      ci[j] = ai[j] - ti;
      ar[j] += tr;
      ai[j] += ti;
    }
  }
}

/* The portable silero_fft_magnitudes2(). */
void
silero_fft_magnitudes2_c (const SileroFft *fft, const gfloat *x1,
    const gfloat *x2, gfloat *mag1, gfloat *mag2, gfloat *work)
{
  guint n = fft->n;
  gfloat *re = work, *im = work + n;

  /* Bit-reversed load order: the transform then runs in place. */
  for (guint i = 0; i < n; i++) {
    re[i] = fft->wrev[i] * x1[fft->rev[i]];
    im[i] = fft->wrev[i] * x2[fft->rev[i]];
  }
  first_stages (n, re, im);
  for (guint h = 8; h < n; h *= 2)
    fft_stage (n, h, re, im, fft->tw_re + h, fft->tw_im + h);

  /* Z = X1 + i X2 with X1, X2 hermitian: X1[k] = (Z[k] + conj Z[n-k]) / 2
   * and X2[k] = (Z[k] - conj Z[n-k]) / 2i. */
  for (guint k = 0; k <= n / 2; k++) {
    guint m = (n - k) & (n - 1);
    gfloat sr = re[k] + re[m], si = im[k] - im[m];
    gfloat dr = re[k] - re[m], di = im[k] + im[m];

    mag1[k] = 0.5f * sqrtf (sr * sr + si * si);
    mag2[k] = 0.5f * sqrtf (dr * dr + di * di);
  }
}

/**
 * silero_fft_magnitudes2:
 * @x1, @x2: n samples each
 * @mag1, @mag2: (out): n/2 + 1 values each
 * @work: 2n floats of scratch, 32-byte aligned
 *
 * Computes |DFT(window * x1)| and |DFT(window * x2)| for bins 0 .. n/2
 * with @simd's kernels.
 */
void
silero_fft_magnitudes2 (const SileroFft *fft, const SileroSimd *simd,
    const gfloat *x1, const gfloat *x2, gfloat *mag1, gfloat *mag2,
    gfloat *work)
{
  simd->fft_magnitudes2 (fft, x1, x2, mag1, mag2, work);
}

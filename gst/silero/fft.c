/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Silero's STFT is a Conv1d whose 2K x N kernel is a periodic Hann window
 * times cos / -sin rows, i.e. a windowed DFT; only magnitudes are used. We
 * compute it with a radix-2 complex FFT in split (re[], im[]) form, packing
 * two real frames into one transform as x1 + i x2 and separating them with
 * the conjugate symmetry of real spectra. Stages with h >= 8 have unit
 * stride inner loops that the compiler vectorises.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "fft.h"

#include <math.h>

/* Builds the tables for size @n. Returns FALSE if @n is not a supported
 * power of two. Free with silero_fft_clear(). */
gboolean
silero_fft_init (SileroFft *fft, guint n)
{
  guint bits = 0;

  if (n < 4 || n > 4096 || (n & (n - 1)) != 0)
    return FALSE;
  while ((1u << bits) < n)
    bits++;

  fft->n = n;
  fft->rev = g_new (guint16, n);
  for (guint i = 0; i < n; i++) {
    guint r = 0;

    for (guint b = 0; b < bits; b++)
      r |= ((i >> b) & 1) << (bits - 1 - b);
    fft->rev[i] = r;
  }
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
  g_clear_pointer (&fft->tw_re, g_free);
  g_clear_pointer (&fft->tw_im, g_free);
  fft->n = 0;
}

/* One radix-2 stage of half-size @h over all blocks, in place. */
static void
fft_stage (
    const SileroFft *fft, guint h, gfloat *restrict re, gfloat *restrict im)
{
  const gfloat *wr = fft->tw_re + h;
  const gfloat *wi = fft->tw_im + h;

  for (guint b = 0; b < fft->n; b += 2 * h) {
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

/* Computes |DFT(window * x1)| and |DFT(window * x2)| for bins 0 .. n/2
 * (n/2 + 1 values each) into @mag1 and @mag2. @window and both frames hold
 * n samples; @work holds 2n floats and is clobbered. */
void
silero_fft_magnitudes2 (const SileroFft *fft, const gfloat *window,
    const gfloat *x1, const gfloat *x2, gfloat *mag1, gfloat *mag2,
    gfloat *work)
{
  guint n = fft->n;
  gfloat *re = work, *im = work + n;

  for (guint i = 0; i < n; i++) {
    re[fft->rev[i]] = window[i] * x1[i];
    im[fft->rev[i]] = window[i] * x2[i];
  }
  for (guint h = 1; h < n; h *= 2)
    fft_stage (fft, h, re, im);

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

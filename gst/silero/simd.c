/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Run-time selection of the kernels, and the portable C versions. The x86
 * versions are compiled with per-function target attributes, so the file
 * builds with the distribution's generic flags and the choice is made by
 * asking the CPU (__builtin_cpu_supports) on first use.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "simd.h"
#include "fft.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <immintrin.h>
#endif

/* ---- Layout ---- */

/* Index of weight (i, o) of an I x O matrix in panel order: panel p holds
 * outputs [16p, 16p + 16) as I rows of 16 contiguous floats. */
static inline gsize
panel_index (gsize I, gsize i, gsize o)
{
  return (o / SILERO_SIMD_PANEL) * I * SILERO_SIMD_PANEL +
      i * SILERO_SIMD_PANEL + o % SILERO_SIMD_PANEL;
}

/* Copies the row-major I x O matrix @src (src[i * O + o]) to @dst in the
 * panel order every mm_acc reads. */
void
silero_simd_pack (const gfloat *src, gsize I, gsize O, gfloat *dst)
{
  for (gsize i = 0; i < I; i++)
    for (gsize o = 0; o < O; o++)
      dst[panel_index (I, i, o)] = src[i * O + o];
}

/* ---- Portable C ---- */

static void
mm_acc_c (const gfloat *W, gsize I, gsize O, gsize x_stride, guint T,
    const SileroRun *runs, guint n_runs)
{
  for (gsize p = 0; p < O; p += SILERO_SIMD_PANEL) {
    const gfloat *wp = W + p * I;

    for (guint r = 0; r < n_runs; r++)
      for (guint t = 0; t < T; t++) {
        const gfloat *xt = runs[r].x + t * x_stride;
        gfloat *ot = runs[r].out + t * O + p;
        gfloat acc[SILERO_SIMD_PANEL];

        memcpy (acc, ot, sizeof acc);
        for (gsize i = 0; i < I; i++)
          for (guint j = 0; j < SILERO_SIMD_PANEL; j++)
            acc[j] += wp[i * SILERO_SIMD_PANEL + j] * xt[i];
        memcpy (ot, acc, sizeof acc);
      }
  }
}

/* The portable mm_acc_sparse: a row is skipped per frame, not per run. */
static void
mm_acc_sparse_c (const gfloat *W, gsize I, gsize O, gsize x_stride, guint T,
    const SileroRun *runs, guint n_runs)
{
  for (gsize p = 0; p < O; p += SILERO_SIMD_PANEL) {
    const gfloat *wp = W + p * I;

    for (guint r = 0; r < n_runs; r++)
      for (guint t = 0; t < T; t++) {
        const gfloat *xt = runs[r].x + t * x_stride;
        gfloat *ot = runs[r].out + t * O + p;

        for (gsize i = 0; i < I; i++) {
          if (xt[i] == 0.0f)
            continue;
          for (guint j = 0; j < SILERO_SIMD_PANEL; j++)
            ot[j] += wp[i * SILERO_SIMD_PANEL + j] * xt[i];
        }
      }
  }
}

static void
sigmoid_c (gfloat *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    x[i] = 1.0f / (1.0f + expf (-x[i]));
}

static void
tanh_c (gfloat *x, gsize n)
{
  for (gsize i = 0; i < n; i++)
    x[i] = tanhf (x[i]);
}

static const SileroSimd simd_c = { "c", mm_acc_c, mm_acc_sparse_c, sigmoid_c,
  tanh_c, silero_fft_magnitudes2_c };

/* ---- x86: AVX2 + FMA ---- */

#ifdef HAVE_X86
#define AVX2 __attribute__ ((target ("avx2,fma")))
/* The register blocking only works if these tiny loops are unrolled
 * completely (the accumulators then live in registers, not on the stack);
 * -O2 does not do it by itself. */
#define UNROLL _Pragma ("GCC unroll 16")

/* P panels (16 outputs each, 2 vectors) for T frames of one run: 2 P T
 * accumulators in registers; each weight vector is loaded once and used T
 * times, each input value broadcast once and used 2 P times. 2 P T is 8
 * (12 for T = 3, measured 25 % faster than 6): enough independent FMA
 * chains to hide the FMA latency, in the 16 vector registers, and at most
 * 4 weight streams are read, each one sequential. */
#define MM_PANELS(NAME, T, P)                                                  \
  static inline AVX2 void NAME (const gfloat *w, gsize I, gsize O,             \
      const gfloat *x, gsize xs, gfloat *out)                                  \
  {                                                                            \
    __m256 acc[T][P][2];                                                       \
    UNROLL for (guint t = 0; t < T; t++) UNROLL for (guint p = 0; p < P; p++)  \
        UNROLL for (guint v = 0; v < 2; v++) acc[t][p][v] =                    \
            _mm256_load_ps (out + t * O + 16 * p + 8 * v);                     \
    for (gsize i = 0; i < I; i++) {                                            \
      __m256 xb[T];                                                            \
      UNROLL for (guint t = 0; t < T; t++) xb[t] =                             \
          _mm256_broadcast_ss (x + t * xs + i);                                \
      UNROLL for (guint p = 0; p < P; p++)                                     \
          UNROLL for (guint v = 0; v < 2; v++)                                 \
      {                                                                        \
        __m256 wv = _mm256_load_ps (w + (p * I + i) * 16 + 8 * v);             \
        UNROLL for (guint t = 0; t < T; t++) acc[t][p][v] =                    \
            _mm256_fmadd_ps (wv, xb[t], acc[t][p][v]);                         \
      }                                                                        \
    }                                                                          \
    UNROLL for (guint t = 0; t < T; t++) UNROLL for (guint p = 0; p < P; p++)  \
        UNROLL for (guint v = 0; v < 2; v++)                                   \
            _mm256_store_ps (out + t * O + 16 * p + 8 * v, acc[t][p][v]);      \
  }

MM_PANELS (mm_avx2_t1, 1, 4)
MM_PANELS (mm_avx2_t2, 2, 2)
MM_PANELS (mm_avx2_t3, 3, 2)
MM_PANELS (mm_avx2_t4, 4, 1)

/* As MM_PANELS, over the rows listed in idx only. */
#define MM_PANELS_IDX(NAME, T, P)                                              \
  static inline AVX2 void NAME (const gfloat *w, gsize I, gsize O,             \
      const gfloat *x, gsize xs, gfloat *out, const guint16 *idx, guint n_idx) \
  {                                                                            \
    __m256 acc[T][P][2];                                                       \
    UNROLL for (guint t = 0; t < T; t++) UNROLL for (guint p = 0; p < P; p++)  \
        UNROLL for (guint v = 0; v < 2; v++) acc[t][p][v] =                    \
            _mm256_load_ps (out + t * O + 16 * p + 8 * v);                     \
    for (guint k = 0; k < n_idx; k++) {                                        \
      gsize i = idx[k];                                                        \
      __m256 xb[T];                                                            \
      UNROLL for (guint t = 0; t < T; t++) xb[t] =                             \
          _mm256_broadcast_ss (x + t * xs + i);                                \
      UNROLL for (guint p = 0; p < P; p++)                                     \
          UNROLL for (guint v = 0; v < 2; v++)                                 \
      {                                                                        \
        __m256 wv = _mm256_load_ps (w + (p * I + i) * 16 + 8 * v);             \
        UNROLL for (guint t = 0; t < T; t++) acc[t][p][v] =                    \
            _mm256_fmadd_ps (wv, xb[t], acc[t][p][v]);                         \
      }                                                                        \
    }                                                                          \
    UNROLL for (guint t = 0; t < T; t++) UNROLL for (guint p = 0; p < P; p++)  \
        UNROLL for (guint v = 0; v < 2; v++)                                   \
            _mm256_store_ps (out + t * O + 16 * p + 8 * v, acc[t][p][v]);      \
  }

MM_PANELS_IDX (mm_idx_avx2_t1, 1, 4)
MM_PANELS_IDX (mm_idx_avx2_t2, 2, 2)
MM_PANELS_IDX (mm_idx_avx2_t3, 3, 2)
MM_PANELS_IDX (mm_idx_avx2_t4, 4, 1)

/* Lists in @idx the rows i < @I (a multiple of 8) where some frame of the
 * run has x[t * xs + i] != 0; returns how many. */
static inline AVX2 guint
nonzero_rows (const gfloat *x, gsize xs, guint T, gsize I, guint16 *idx)
{
  const __m256 zero = _mm256_setzero_ps ();
  guint n = 0;

  for (gsize i = 0; i < I; i += 8) {
    guint m = 0;

    for (guint t = 0; t < T; t++)
      m |= (guint)_mm256_movemask_ps (
          _mm256_cmp_ps (_mm256_loadu_ps (x + t * xs + i), zero, _CMP_NEQ_UQ));
    while (m) {
      idx[n++] = (guint16)(i + __builtin_ctz (m));
      m &= m - 1;
    }
  }
  return n;
}

static AVX2 void
mm_acc_sparse_avx2 (const gfloat *W, gsize I, gsize O, gsize x_stride, guint T,
    const SileroRun *runs, guint n_runs)
{
  guint step = T == 1 ? 4 : T <= 3 ? 2 : 1;
  guint16 idx[SILERO_SIMD_MAX_RUNS][SILERO_SIMD_MAX_I];
  guint n_idx[SILERO_SIMD_MAX_RUNS];

  g_assert (n_runs <= SILERO_SIMD_MAX_RUNS && I <= SILERO_SIMD_MAX_I);
  for (guint r = 0; r < n_runs; r++)
    n_idx[r] = nonzero_rows (runs[r].x, x_stride, T, I, idx[r]);
  for (gsize o = 0; o < O; o += 16 * step) {
    const gfloat *w = W + o * I;

    for (guint r = 0; r < n_runs; r++) {
      const gfloat *x = runs[r].x;
      gfloat *out = runs[r].out + o;

      switch (T) {
        case 1:
          mm_idx_avx2_t1 (w, I, O, x, x_stride, out, idx[r], n_idx[r]);
          break;
        case 2:
          mm_idx_avx2_t2 (w, I, O, x, x_stride, out, idx[r], n_idx[r]);
          break;
        case 3:
          mm_idx_avx2_t3 (w, I, O, x, x_stride, out, idx[r], n_idx[r]);
          break;
        default:
          mm_idx_avx2_t4 (w, I, O, x, x_stride, out, idx[r], n_idx[r]);
          break;
      }
    }
  }
}

/* Panel blocks outermost, runs inside: a block of weights (at most 4
 * panels, I * 256 bytes) is read from memory once and from L1 for the
 * other runs. */
static AVX2 void
mm_acc_avx2 (const gfloat *W, gsize I, gsize O, gsize x_stride, guint T,
    const SileroRun *runs, guint n_runs)
{
  guint step = T == 1 ? 4 : T <= 3 ? 2 : 1;

  for (gsize o = 0; o < O; o += 16 * step) {
    const gfloat *w = W + o * I;

    for (guint r = 0; r < n_runs; r++) {
      const gfloat *x = runs[r].x;
      gfloat *out = runs[r].out + o;

      switch (T) {
        case 1:
          mm_avx2_t1 (w, I, O, x, x_stride, out);
          break;
        case 2:
          mm_avx2_t2 (w, I, O, x, x_stride, out);
          break;
        case 3:
          mm_avx2_t3 (w, I, O, x, x_stride, out);
          break;
        default:
          mm_avx2_t4 (w, I, O, x, x_stride, out);
          break;
      }
    }
  }
}

static AVX2 void
fft_stage_avx2 (gfloat *re, gfloat *im, guint n, guint h, const gfloat *wr,
    const gfloat *wi)
{
  for (guint b = 0; b < n; b += 2 * h)
    for (guint j = 0; j < h; j += 8) {
      __m256 ar = _mm256_load_ps (re + b + j), ai = _mm256_load_ps (im + b + j);
      __m256 cr = _mm256_load_ps (re + b + h + j);
      __m256 ci = _mm256_load_ps (im + b + h + j);
      __m256 c = _mm256_loadu_ps (wr + j), s = _mm256_loadu_ps (wi + j);
      __m256 tr = _mm256_fmsub_ps (cr, c, _mm256_mul_ps (ci, s));
      __m256 ti = _mm256_fmadd_ps (cr, s, _mm256_mul_ps (ci, c));

      _mm256_store_ps (re + b + h + j, _mm256_sub_ps (ar, tr));
      _mm256_store_ps (im + b + h + j, _mm256_sub_ps (ai, ti));
      _mm256_store_ps (re + b + j, _mm256_add_ps (ar, tr));
      _mm256_store_ps (im + b + j, _mm256_add_ps (ai, ti));
    }
}

/* One butterfly stage inside a register of 8 lanes: the lanes in mask
 * get p - x (a - t), the others x + p (a + t), where x holds the twiddled
 * t in the masked lanes and p is x with partner lanes swapped. A macro, as
 * the blend mask must be a compile-time constant. */
#define LANE_BUTTERFLY(x, p, mask)                                             \
  _mm256_blend_ps (_mm256_add_ps (x, p), _mm256_sub_ps (p, x), mask)

/* Loads 8 points in bit-reversed order with the window (two gathers) and
 * runs the stages h = 1, 2, 4 inside the registers: each group of 8 is
 * one vector of real and one of imaginary parts. */
static inline AVX2 void
first_stages_avx2 (const SileroFft *fft, const gfloat *x1, const gfloat *x2,
    guint b, gfloat *re, gfloat *im)
{
  const gfloat r = (gfloat)G_SQRT2 / 2;
  const __m256 w4r = _mm256_setr_ps (1, 1, 1, 1, 1, r, 0, -r);
  const __m256 w4i = _mm256_setr_ps (0, 0, 0, 0, 0, -r, -1, -r);
  __m256i idx = _mm256_loadu_si256 ((const __m256i *)(fft->rev + b));
  __m256 w = _mm256_loadu_ps (fft->wrev + b);
  __m256 xr = _mm256_mul_ps (w, _mm256_i32gather_ps (x1, idx, 4));
  __m256 xi = _mm256_mul_ps (w, _mm256_i32gather_ps (x2, idx, 4));
  __m256 tr, ti;

  /* h = 1: pairs (0 1) (2 3) ..., twiddle 1 */
  xr = LANE_BUTTERFLY (xr, _mm256_permute_ps (xr, 0xb1), 0xaa);
  xi = LANE_BUTTERFLY (xi, _mm256_permute_ps (xi, 0xb1), 0xaa);
  /* h = 2: pairs (0 2) (1 3) ..., lanes 3 and 7 times -i */
  tr = _mm256_blend_ps (xr, xi, 0x88);
  ti = _mm256_blend_ps (xi, _mm256_sub_ps (_mm256_setzero_ps (), xr), 0x88);
  xr = LANE_BUTTERFLY (tr, _mm256_permute_ps (tr, 0x4e), 0xcc);
  xi = LANE_BUTTERFLY (ti, _mm256_permute_ps (ti, 0x4e), 0xcc);
  /* h = 4: pairs (0 4) (1 5) ..., lanes 4 - 7 times exp(-2 pi i j / 8) */
  tr = _mm256_fmsub_ps (xr, w4r, _mm256_mul_ps (xi, w4i));
  ti = _mm256_fmadd_ps (xr, w4i, _mm256_mul_ps (xi, w4r));
  xr = LANE_BUTTERFLY (tr, _mm256_permute2f128_ps (tr, tr, 0x01), 0xf0);
  xi = LANE_BUTTERFLY (ti, _mm256_permute2f128_ps (ti, ti, 0x01), 0xf0);
  _mm256_store_ps (re + b, xr);
  _mm256_store_ps (im + b, xi);
}

/* |X1[k]| and |X2[k]| for k = 1 .. n/2, 8 bins at a time; the partner
 * bins n - k are loaded as a reversed vector. */
static inline AVX2 void
magnitudes_avx2 (
    guint n, const gfloat *re, const gfloat *im, gfloat *mag1, gfloat *mag2)
{
  const __m256i reverse = _mm256_setr_epi32 (7, 6, 5, 4, 3, 2, 1, 0);
  const __m256 half = _mm256_set1_ps (0.5f);

  for (guint k = 1; k <= n / 2; k += 8) {
    __m256 ar = _mm256_loadu_ps (re + k), ai = _mm256_loadu_ps (im + k);
    __m256 br =
        _mm256_permutevar8x32_ps (_mm256_loadu_ps (re + n - k - 7), reverse);
    __m256 bi =
        _mm256_permutevar8x32_ps (_mm256_loadu_ps (im + n - k - 7), reverse);
    __m256 sr = _mm256_add_ps (ar, br), si = _mm256_sub_ps (ai, bi);
    __m256 dr = _mm256_sub_ps (ar, br), di = _mm256_add_ps (ai, bi);

    _mm256_storeu_ps (mag1 + k,
        _mm256_mul_ps (half,
            _mm256_sqrt_ps (_mm256_fmadd_ps (sr, sr, _mm256_mul_ps (si, si)))));
    _mm256_storeu_ps (mag2 + k,
        _mm256_mul_ps (half,
            _mm256_sqrt_ps (_mm256_fmadd_ps (dr, dr, _mm256_mul_ps (di, di)))));
  }
}

static AVX2 void
fft_magnitudes2_avx2 (const SileroFft *fft, const gfloat *x1, const gfloat *x2,
    gfloat *mag1, gfloat *mag2, gfloat *work)
{
  guint n = fft->n;
  gfloat *re = work, *im = work + n;

  for (guint b = 0; b < n; b += 8)
    first_stages_avx2 (fft, x1, x2, b, re, im);
  for (guint h = 8; h < n; h *= 2)
    fft_stage_avx2 (re, im, n, h, fft->tw_re + h, fft->tw_im + h);
  /* Bin 0 is its own partner: X1[0] = Re Z[0], X2[0] = Im Z[0]. */
  mag1[0] = fabsf (re[0]);
  mag2[0] = fabsf (im[0]);
  magnitudes_avx2 (n, re, im, mag1, mag2);
}

/* exp (x) for 8 floats, relative error below 2e-7 (Cephes' polynomial):
 * x = n ln2 + r with |r| <= ln2 / 2, exp (r) by a degree-6 polynomial,
 * 2^n by building the exponent bits. Inputs are clamped to +-87, where
 * float exp neither overflows nor goes subnormal. */
static inline AVX2 __m256
exp_avx2 (__m256 x)
{
  const __m256 ln2_hi = _mm256_set1_ps (0.693359375f);
  const __m256 ln2_lo = _mm256_set1_ps (-2.12194440e-4f);
  __m256 n, r, p;

  x = _mm256_min_ps (
      _mm256_max_ps (x, _mm256_set1_ps (-87.0f)), _mm256_set1_ps (87.0f));
  n = _mm256_round_ps (_mm256_mul_ps (x, _mm256_set1_ps (1.44269504f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm256_fnmadd_ps (n, ln2_hi, x);
  r = _mm256_fnmadd_ps (n, ln2_lo, r);
  p = _mm256_set1_ps (1.9875691500e-4f);
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.3981999507e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (8.3334519073e-3f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (4.1665795894e-2f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (1.6666665459e-1f));
  p = _mm256_fmadd_ps (p, r, _mm256_set1_ps (5.0000001201e-1f));
  p = _mm256_fmadd_ps (p, _mm256_mul_ps (r, r), r);
  p = _mm256_add_ps (p, _mm256_set1_ps (1.0f));
  __m256i e = _mm256_slli_epi32 (
      _mm256_add_epi32 (_mm256_cvtps_epi32 (n), _mm256_set1_epi32 (127)), 23);
  return _mm256_mul_ps (p, _mm256_castsi256_ps (e));
}

/* n must be a multiple of 8 for the vector part; the tail goes scalar. */
static AVX2 void
sigmoid_avx2 (gfloat *x, gsize n)
{
  const __m256 one = _mm256_set1_ps (1.0f);
  gsize i = 0;

  for (; i + 8 <= n; i += 8) {
    __m256 e = exp_avx2 (
        _mm256_sub_ps (_mm256_setzero_ps (), _mm256_loadu_ps (x + i)));
    _mm256_storeu_ps (x + i, _mm256_div_ps (one, _mm256_add_ps (one, e)));
  }
  sigmoid_c (x + i, n - i);
}

/* tanh (x) = 2 / (1 + exp (-2x)) - 1: absolute error ~1e-7, which is all
 * the network needs (its outputs are compared in absolute terms). */
static AVX2 void
tanh_avx2 (gfloat *x, gsize n)
{
  const __m256 one = _mm256_set1_ps (1.0f), two = _mm256_set1_ps (2.0f);
  gsize i = 0;

  for (; i + 8 <= n; i += 8) {
    __m256 e = exp_avx2 (
        _mm256_mul_ps (_mm256_set1_ps (-2.0f), _mm256_loadu_ps (x + i)));
    __m256 s = _mm256_div_ps (two, _mm256_add_ps (one, e));
    _mm256_storeu_ps (x + i, _mm256_sub_ps (s, one));
  }
  tanh_c (x + i, n - i);
}

static const SileroSimd simd_avx2 = { "avx2", mm_acc_avx2, mm_acc_sparse_avx2,
  sigmoid_avx2, tanh_avx2, fft_magnitudes2_avx2 };

static gboolean
have_avx2 (void)
{
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma");
}
#endif /* HAVE_X86 */

/* ---- Selection ---- */

static const gchar *const simd_names[] = {
#ifdef HAVE_X86
  "avx2",
#endif
  "c", NULL
};

/* Returns: (transfer none): the names of the kernel sets compiled in, best
 * first, NULL-terminated. Not all may run on this CPU. */
const gchar *const *
silero_simd_list (void)
{
  return simd_names;
}

/* Returns: (transfer none): the kernel set called @name ("c", "avx2"), or
 * NULL if it is not compiled in or this CPU cannot run it. */
const SileroSimd *
silero_simd_get_by_name (const gchar *name)
{
#ifdef HAVE_X86
  if (g_strcmp0 (name, "avx2") == 0)
    return have_avx2 () ? &simd_avx2 : NULL;
#endif
  if (g_strcmp0 (name, "c") == 0)
    return &simd_c;
  return NULL;
}

/* Returns: (transfer none): the best kernel set this CPU runs. The
 * environment variable SILERO_SIMD=c forces the portable one (for tests
 * and for comparing). Thread-safe; decided once. */
const SileroSimd *
silero_simd_get (void)
{
  static const SileroSimd *best;

  if (g_once_init_enter (&best)) {
    const SileroSimd *s = NULL;
    const gchar *forced = g_getenv ("SILERO_SIMD");

    if (forced)
      s = silero_simd_get_by_name (forced);
    for (guint i = 0; !s && simd_names[i]; i++)
      s = silero_simd_get_by_name (simd_names[i]);
    g_once_init_leave (&best, s);
  }
  return best;
}

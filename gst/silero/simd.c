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

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_X86 1
#include <immintrin.h>
#endif

/* ---- Portable C ---- */

static void
mm_acc_c (const gfloat *W, gsize I, gsize O, const gfloat *x, gsize x_stride,
    guint T, gfloat *out)
{
  for (guint t = 0; t < T; t++) {
    const gfloat *xt = x + t * x_stride;
    gfloat *restrict ot = out + t * O;

    for (gsize i = 0; i < I; i++) {
      const gfloat *restrict wi = W + i * O;
      gfloat xi = xt[i];

      for (gsize o = 0; o < O; o++)
        ot[o] += wi[o] * xi;
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

static const SileroSimd simd_c = { "c", mm_acc_c, sigmoid_c, tanh_c };

/* ---- x86: AVX2 + FMA ---- */

#ifdef HAVE_X86
#define AVX2 __attribute__ ((target ("avx2,fma")))

/* One block of 8 * NV outputs for T frames: NV * T accumulators in
 * registers, each weight vector loaded once and used T times. NV * T is
 * kept near 8, enough independent FMA chains to hide their latency. */
#define MM_BLOCK(NAME, T, NV)                                                  \
  static inline AVX2 void NAME (const gfloat *W, gsize I, gsize O,             \
      const gfloat *x, gsize xs, gfloat *out)                                  \
  {                                                                            \
    for (gsize o = 0; o < O; o += 8 * NV) {                                    \
      __m256 acc[T][NV];                                                       \
      for (guint t = 0; t < T; t++)                                            \
        for (guint v = 0; v < NV; v++)                                         \
          acc[t][v] = _mm256_load_ps (out + t * O + o + 8 * v);                \
      for (gsize i = 0; i < I; i++) {                                          \
        const gfloat *wi = W + i * O + o;                                      \
        __m256 w[NV];                                                          \
        for (guint v = 0; v < NV; v++)                                         \
          w[v] = _mm256_load_ps (wi + 8 * v);                                  \
        for (guint t = 0; t < T; t++) {                                        \
          __m256 xb = _mm256_broadcast_ss (x + t * xs + i);                    \
          for (guint v = 0; v < NV; v++)                                       \
            acc[t][v] = _mm256_fmadd_ps (w[v], xb, acc[t][v]);                 \
        }                                                                      \
      }                                                                        \
      for (guint t = 0; t < T; t++)                                            \
        for (guint v = 0; v < NV; v++)                                         \
          _mm256_store_ps (out + t * O + o + 8 * v, acc[t][v]);                \
    }                                                                          \
  }

MM_BLOCK (mm_avx2_t1, 1, 8)
MM_BLOCK (mm_avx2_t2, 2, 4)
MM_BLOCK (mm_avx2_t3, 3, 2)
MM_BLOCK (mm_avx2_t4, 4, 2)

static AVX2 void
mm_acc_avx2 (const gfloat *W, gsize I, gsize O, const gfloat *x, gsize x_stride,
    guint T, gfloat *out)
{
  switch (T) {
    case 1:
      mm_avx2_t1 (W, I, O, x, x_stride, out);
      break;
    case 2:
      mm_avx2_t2 (W, I, O, x, x_stride, out);
      break;
    case 3:
      mm_avx2_t3 (W, I, O, x, x_stride, out);
      break;
    default:
      mm_avx2_t4 (W, I, O, x, x_stride, out);
      break;
  }
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

static const SileroSimd simd_avx2 = { "avx2", mm_acc_avx2, sigmoid_avx2,
  tanh_avx2 };

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

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The C network against onnxruntime: every chunk's probability of every
 * test WAV within 1e-4 of the golden files written by
 * tests/reference/silero/reference.mjs, with every kernel set the CPU runs
 * and with both STFT paths (FFT, literal convolution).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "model.h"
#include "wavfile.h"

#include <math.h>

#define TOLERANCE 1e-4

static SileroModel *model;

static gchar *
model_path (void)
{
  const gchar *dir = g_getenv ("VOICEAGENT_MODEL_DIR");

  return g_build_filename (
      dir ? dir : VOICEAGENT_MODEL_DIR, "silero_vad.onnx", NULL);
}

/* Returns the largest |ours - golden| over the file's chunks. */
static gdouble
max_error (const gchar *name, const SileroSimd *simd, gboolean use_fft)
{
  g_autofree gchar *wname = g_strconcat (name, ".wav", NULL);
  g_autofree gchar *gname = g_strconcat (name, ".txt", NULL);
  g_autoptr (TestWav) wav = test_wav_load (wname);
  g_autoptr (GArray) golden = test_golden_load (gname);
  g_autoptr (SileroState) state = silero_state_new (model, wav->rate);
  guint chunk = silero_state_get_chunk_size (state);
  gdouble worst = 0;

  silero_state_set_simd (state, simd);
  silero_state_set_use_fft (state, use_fft);
  g_assert_cmpuint (golden->len, ==, wav->n / chunk);
  for (guint i = 0; i < golden->len; i++) {
    gfloat p = silero_state_process (state, wav->f32 + i * chunk);

    worst = MAX (worst, fabs (p - g_array_index (golden, gdouble, i)));
  }
  return worst;
}

static void
test_golden (gconstpointer data)
{
  const gchar *name = data;

  for (const gchar *const *s = silero_simd_list (); *s; s++) {
    const SileroSimd *simd = silero_simd_get_by_name (*s);

    if (!simd)
      continue;
    for (gint fft = 1; fft >= 0; fft--) {
      gdouble err = max_error (name, simd, fft);

      g_test_message ("%s: kernels %s, %s: max abs error %.3g", name, *s,
          fft ? "fft" : "conv", err);
      g_assert_cmpfloat (err, <=, TOLERANCE);
    }
  }
}

/* The loaded basis is recognised as a windowed DFT at both rates, so the
 * fast path is the one in use. */
static void
test_stft_is_dft (void)
{
  g_assert_true (silero_model_stft_is_dft (model, 16000));
  g_assert_true (silero_model_stft_is_dft (model, 8000));
}

/* Batches give exactly the results of chunk-by-chunk processing, with any
 * batch size (the accumulation order is the same). */
static void
test_batch (void)
{
  g_autoptr (TestWav) wav = test_wav_load ("speechnoise16k.wav");

  for (const gchar *const *k = silero_simd_list (); *k; k++) {
    const SileroSimd *simd = silero_simd_get_by_name (*k);
    g_autoptr (SileroState) one = NULL;
    g_autoptr (SileroState) many = NULL;
    gsize n = wav->n / 512, done = 0;
    g_autofree gfloat *probs = g_new (gfloat, n);

    if (!simd)
      continue;
    one = silero_state_new (model, 16000);
    many = silero_state_new (model, 16000);
    silero_state_set_simd (one, simd);
    silero_state_set_simd (many, simd);
    /* Batches of 1, 2, ... 13 chunks, cycling. */
    for (guint b = 1; done < n; b = b % 13 + 1) {
      guint take = MIN (b, n - done);

      silero_state_process_many (
          many, wav->f32 + done * 512, take, probs + done);
      done += take;
    }
    for (gsize i = 0; i < n; i++)
      g_assert_cmpfloat (
          silero_state_process (one, wav->f32 + i * 512), ==, probs[i]);
  }
}

/* Resetting gives the same output as a fresh state. */
static void
test_reset (void)
{
  g_autoptr (TestWav) wav = test_wav_load ("speech16k.wav");
  g_autoptr (SileroState) a = silero_state_new (model, 16000);
  g_autoptr (SileroState) b = silero_state_new (model, 16000);
  gfloat first[8];

  for (guint i = 0; i < 8; i++)
    first[i] = silero_state_process (a, wav->f32 + i * 512);
  for (guint i = 0; i < 100; i++)
    silero_state_process (b, wav->f32 + (i + 20) * 512);
  silero_state_reset (b);
  for (guint i = 0; i < 8; i++)
    g_assert_cmpfloat (
        silero_state_process (b, wav->f32 + i * 512), ==, first[i]);
  g_assert_null (silero_state_new (model, 44100));
}

int
main (int argc, char **argv)
{
  static const gchar *files[] = { "speech16k", "silence16k", "noise16k",
    "speechnoise16k", "turns16k", "speech8k", "speechnoise8k" };
  g_autofree gchar *path = model_path ();
  GError *err = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);
  model = silero_model_load (path, &err);
  g_assert_no_error (err);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree gchar *tp =
        g_strdup_printf ("/silero/model/golden/%s", files[i]);

    g_test_add_data_func (tp, files[i], test_golden);
  }
  g_test_add_func ("/silero/model/stft-is-dft", test_stft_is_dft);
  g_test_add_func ("/silero/model/reset", test_reset);
  g_test_add_func ("/silero/model/batch", test_batch);
  ret = g_test_run ();
  silero_model_unref (model);
  return ret;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Microseconds per chunk of the C Silero network, at 16 and 8 kHz, for
 * every kernel set this CPU runs, on one thread; then, in the same run,
 * onnxruntime's time for the same audio (tests/reference/silero/bench.mjs)
 * when node and its node_modules are there. Prints numbers, asserts
 * nothing: the machine may be shared and noisy, so each figure is the best
 * of several passes.
 *
 *   bench-silero [--passes N] [--no-onnxruntime]
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

typedef struct
{
  guint rate;
  gsize n;
  gfloat *samples;
} Audio;

static gchar *
source_path (const gchar *rel)
{
  const gchar *root = g_getenv ("VOICEAGENT_SOURCE_DIR");

  return g_build_filename (root ? root : VOICEAGENT_SOURCE_DIR, rel, NULL);
}

/* Reads a 16-bit PCM mono WAV; returns FALSE with a message otherwise. */
static gboolean
read_wav (const gchar *path, Audio *a)
{
  g_autofree guint8 *buf = NULL;
  gsize len = 0, off = 12;

  if (!g_file_get_contents (path, (gchar **)&buf, &len, NULL) || len < 12) {
    fprintf (stderr, "cannot read %s\n", path);
    return FALSE;
  }
  a->rate = 0;
  a->samples = NULL;
  while (off + 8 <= len) {
    guint32 size = GUINT32_FROM_LE (*(guint32 *)(buf + off + 4));
    const guint8 *body = buf + off + 8;

    if (!memcmp (buf + off, "fmt ", 4) && size >= 16)
      a->rate = GUINT32_FROM_LE (*(guint32 *)(body + 4));
    else if (!memcmp (buf + off, "data", 4)) {
      a->n = MIN (size, len - off - 8) / 2;
      a->samples = g_new (gfloat, a->n);
      for (gsize i = 0; i < a->n; i++)
        a->samples[i] =
            (gint16)(body[2 * i] | (body[2 * i + 1] << 8)) / 32768.0f;
    }
    off += 8 + size + (size & 1);
  }
  return a->rate && a->samples;
}

static gint64
now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static gint
cmp_double (gconstpointer a, gconstpointer b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

/* Streams @a through a fresh state @passes times, @batch chunks per call
 * (1: silero_state_process, as a live stream of small buffers runs), and
 * times every call. Sets the median and the 10th percentile of the time
 * per chunk in microseconds: on a shared machine the median includes
 * other processes' interruptions, the 10th percentile mostly not. */
static void
time_stream (SileroModel *model, const Audio *a, const SileroSimd *simd,
    guint batch, guint passes, gdouble *median, gdouble *p10)
{
  g_autoptr (SileroState) s = silero_state_new (model, a->rate);
  guint chunk = silero_state_get_chunk_size (s);
  gsize calls = a->n / chunk / batch;
  g_autofree gdouble *t = g_new (gdouble, calls * passes);
  gfloat probs[SILERO_MAX_BATCH];
  volatile gfloat sink = 0;
  gsize n = 0;

  silero_state_set_simd (s, simd);
  for (guint p = 0; p <= passes; p++) {
    silero_state_reset (s);
    for (gsize i = 0; i < calls; i++) {
      const gfloat *x = a->samples + i * batch * chunk;
      gint64 t0 = now_ns ();

      silero_state_process_many (s, x, batch, probs);
      if (p > 0) /* pass 0 warms the caches */
        t[n++] = (now_ns () - t0) / 1000.0 / batch;
      sink += probs[0];
    }
  }
  (void)sink;
  qsort (t, n, sizeof (gdouble), cmp_double);
  *median = t[n / 2];
  *p10 = t[n / 10];
}

static void
run_onnxruntime (const gchar *wav16, const gchar *wav8)
{
  g_autofree gchar *script = source_path ("tests/reference/silero/bench.mjs");
  g_autofree gchar *modules =
      source_path ("tests/reference/silero/node_modules/onnxruntime-node");
  g_autofree gchar *node = g_find_program_in_path ("node");
  gchar *argv[] = { node, script, (gchar *)wav16, (gchar *)wav8, NULL };
  gint status = 0;

  if (!node || !g_file_test (modules, G_FILE_TEST_IS_DIR)) {
    printf ("onnxruntime: skipped (needs node and `npm ci` in "
            "tests/reference/silero)\n");
    return;
  }
  fflush (stdout);
  if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL,
          NULL, NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    printf ("onnxruntime: %s failed\n", script);
}

int
main (int argc, char **argv)
{
  const gchar *names[] = { "speechnoise16k.wav", "speechnoise8k.wav" };
  gchar *paths[2];
  g_autoptr (SileroModel) model = NULL;
  g_autofree gchar *model_path = NULL;
  const gchar *dir = g_getenv ("VOICEAGENT_MODEL_DIR");
  guint passes = 10;
  gboolean ort = TRUE;
  GError *err = NULL;

  for (int i = 1; i < argc; i++) {
    if (!strcmp (argv[i], "--passes") && i + 1 < argc)
      passes = MAX (1, atoi (argv[++i]));
    else if (!strcmp (argv[i], "--no-onnxruntime"))
      ort = FALSE;
  }
  model_path = g_build_filename (
      dir ? dir : VOICEAGENT_MODEL_DIR, "silero_vad.onnx", NULL);
  model = silero_model_load (model_path, &err);
  if (!model) {
    fprintf (stderr, "%s\n", err->message);
    return 1;
  }
  printf ("silero C, 1 thread, %u passes over each file, kernels chosen at "
          "run time: %s (%s)\n",
      passes, silero_simd_get ()->name, model_path);
  for (guint f = 0; f < 2; f++) {
    g_autofree gchar *rel =
        g_build_filename ("tests/reference/silero/wav", names[f], NULL);
    Audio a = { 0 };

    paths[f] = source_path (rel);
    if (!read_wav (paths[f], &a))
      return 1;
    for (const gchar *const *k = silero_simd_list (); *k; k++) {
      const SileroSimd *simd = silero_simd_get_by_name (*k);
      guint batches[] = { 1, SILERO_MAX_BATCH };

      if (!simd)
        continue;
      for (guint b = 0; b < G_N_ELEMENTS (batches); b++) {
        gdouble median, p10;

        time_stream (model, &a, simd, batches[b], passes, &median, &p10);
        printf ("silero C %-4s %5u Hz, %u chunk%s per call: %6.1f us/chunk "
                "(median), %6.1f (10th percentile)\n",
            *k, a.rate, batches[b], batches[b] > 1 ? "s" : " ", median, p10);
      }
    }
    g_free (a.samples);
  }
  if (ort)
    run_onnxruntime (paths[0], paths[1]);
  g_free (paths[0]);
  g_free (paths[1]);
  return 0;
}

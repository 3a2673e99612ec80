/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "wavfile.h"

#include <stdlib.h>
#include <string.h>

/* Returns: (transfer full): @dir/@name under the source tree
 * ($VOICEAGENT_SOURCE_DIR, else the configured one). */
gchar *
test_data_path (const gchar *dir, const gchar *name)
{
  const gchar *root = g_getenv ("VOICEAGENT_SOURCE_DIR");

  return g_build_filename (
      root ? root : VOICEAGENT_SOURCE_DIR, dir, name, NULL);
}

static guint32
le32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32)p[3] << 24);
}

/* Returns: (transfer full): tests/reference/silero/wav/@name; aborts the
 * test if it is missing or not 16-bit PCM mono. */
TestWav *
test_wav_load (const gchar *name)
{
  g_autofree gchar *path = test_data_path ("tests/reference/silero/wav", name);
  g_autofree guint8 *buf = NULL;
  gsize len = 0, off = 12;
  TestWav *wav = g_new0 (TestWav, 1);
  GError *err = NULL;

  g_file_get_contents (path, (gchar **)&buf, &len, &err);
  g_assert_no_error (err);
  g_assert_true (len >= 12 && memcmp (buf, "RIFF", 4) == 0);
  while (off + 8 <= len) {
    guint32 size = le32 (buf + off + 4);
    const guint8 *body = buf + off + 8;

    if (memcmp (buf + off, "fmt ", 4) == 0) {
      g_assert_cmpuint (body[0] | (body[1] << 8), ==, 1); /* PCM */
      g_assert_cmpuint (body[2] | (body[3] << 8), ==, 1); /* mono */
      g_assert_cmpuint (body[14] | (body[15] << 8), ==, 16);
      wav->rate = le32 (body + 4);
    } else if (memcmp (buf + off, "data", 4) == 0) {
      wav->n = MIN (size, len - off - 8) / 2;
      wav->s16 = g_new (gint16, wav->n);
      wav->f32 = g_new (gfloat, wav->n);
      for (gsize i = 0; i < wav->n; i++) {
        wav->s16[i] = (gint16)(body[2 * i] | (body[2 * i + 1] << 8));
        wav->f32[i] = wav->s16[i] / 32768.0f;
      }
    }
    off += 8 + size + (size & 1);
  }
  g_assert_true (wav->rate && wav->s16);
  return wav;
}

void
test_wav_free (TestWav *wav)
{
  g_free (wav->s16);
  g_free (wav->f32);
  g_free (wav);
}

/* Returns: (transfer full): the probabilities in tests/silero/golden/@name
 * (one per line, '#' lines skipped), as a GArray of gdouble. */
GArray *
test_golden_load (const gchar *name)
{
  g_autofree gchar *path = test_data_path ("tests/silero/golden", name);
  g_autofree gchar *text = NULL;
  g_auto (GStrv) lines = NULL;
  GArray *arr = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GError *err = NULL;

  g_file_get_contents (path, &text, NULL, &err);
  g_assert_no_error (err);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    gdouble v;

    if (lines[i][0] == '#' || lines[i][0] == '\0')
      continue;
    v = g_ascii_strtod (lines[i], NULL);
    g_array_append_val (arr, v);
  }
  return arr;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Test helpers: the test WAVs and golden probabilities under
 * tests/reference/silero/wav and tests/silero/golden.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 16-bit PCM mono WAV, samples kept as S16 and as floats (S16 / 32768). */
typedef struct
{
  guint rate;
  gsize n;
  gint16 *s16;
  gfloat *f32;
} TestWav;

gchar *test_data_path (const gchar *dir, const gchar *name);
TestWav *test_wav_load (const gchar *name);
void test_wav_free (TestWav *wav);
GArray *test_golden_load (const gchar *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestWav, test_wav_free)

G_END_DECLS

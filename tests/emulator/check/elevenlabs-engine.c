/* The synthesis engines behind the emulator's ElevenLabs service: output
 * formats, the resampler, mu-law, and both engines' audio and alignment.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "tts.h"

#include <math.h>

/* Every ElevenLabs PCM/ulaw format parses; mp3 and junk do not. */
static void
test_formats (void)
{
  EmuAudioFormat f;

  g_assert_true (emu_audio_format_parse ("pcm_24000", &f));
  g_assert_cmpint (f.encoding, ==, EMU_AUDIO_PCM_S16LE);
  g_assert_cmpuint (f.rate, ==, 24000);
  g_assert_true (emu_audio_format_parse ("ulaw_8000", &f));
  g_assert_cmpint (f.encoding, ==, EMU_AUDIO_ULAW);
  g_assert_false (emu_audio_format_parse ("mp3_44100_128", &f));
  g_assert_false (emu_audio_format_parse ("pcm_12345", &f));
  g_assert_false (emu_audio_format_parse (NULL, &f));
}

/* G.711 mu-law reference points. */
static void
test_ulaw (void)
{
  g_assert_cmphex (emu_ulaw_encode (0), ==, 0xff);
  g_assert_cmphex (emu_ulaw_encode (-1), ==, 0x7f);
  g_assert_cmphex (emu_ulaw_encode (32767), ==, 0x80);
  g_assert_cmphex (emu_ulaw_encode (-32768), ==, 0x00);
  g_assert_cmphex (emu_ulaw_encode (1000), ==, 0xce);
}

/* Amplitude of @hz in @x (rate @rate), by correlation. */
static gdouble
tone_level (const gint16 *x, gsize n, guint rate, gdouble hz)
{
  gdouble c = 0, s = 0;

  for (gsize i = 0; i < n; i++) {
    c += x[i] * cos (2 * G_PI * hz * i / rate);
    s += x[i] * sin (2 * G_PI * hz * i / rate);
  }
  return 2 * sqrt (c * c + s * s) / n;
}

/* 22050 -> every rate: a 1 kHz tone keeps its level; a tone above the
 * target's Nyquist frequency is removed. */
static void
test_resampler (void)
{
  const guint rates[] = { 8000, 16000, 22050, 24000, 44100 };
  const gsize n = 22050;
  g_autofree gint16 *in = g_new (gint16, n);
  g_autofree gint16 *high = g_new (gint16, n);

  for (gsize i = 0; i < n; i++) {
    in[i] = (gint16)(10000 * sin (2 * G_PI * 1000 * i / 22050.0));
    high[i] = (gint16)(10000 * sin (2 * G_PI * 6000 * i / 22050.0));
  }
  for (guint r = 0; r < G_N_ELEMENTS (rates); r++) {
    g_autoptr (GArray) out = emu_resample (in, n, 22050, rates[r]);
    gsize m = out->len;
    /* Skip the edges (zero padding). */
    const gint16 *mid = &g_array_index (out, gint16, m / 10);
    gdouble level = tone_level (mid, m * 8 / 10, rates[r], 1000);
    g_assert_cmpuint (m, ==, (gsize)(n * (gdouble)rates[r] / 22050));
    g_assert_cmpfloat (fabs (level - 10000), <, 200);
    if (rates[r] < 12000) {
      g_autoptr (GArray) h = emu_resample (high, n, 22050, rates[r]);
      gdouble rest = 0;
      for (gsize i = h->len / 10; i < h->len * 9 / 10; i++)
        rest = MAX (rest, ABS ((gdouble)g_array_index (h, gint16, i)));
      /* -40 dB or better. */
      g_assert_cmpfloat (rest, <, 100);
    }
  }
}

typedef struct
{
  EmuTtsResult *result;
  gboolean done;
} Wait;

static void
done_cb (EmuTtsResult *result, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_no_error ((GError *)error);
  w->result = result;
  w->done = TRUE;
}

/* Synthesises @text with @engine and checks audio and alignment. */
static void
check_engine (const gchar *engine, EmuTtsJob **cancel_me)
{
  const gchar *text = "Hello, world. How are you?";
  g_autoptr (GError) error = NULL;
  EmuTts *tts = emu_tts_new (engine, &error);
  EmuAudioFormat f;
  Wait w = { 0 }, never = { 0 };
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  gsize bytes;
  gint last_end = 0;

  g_assert_no_error (error);
  g_assert_true (emu_audio_format_parse ("pcm_16000", &f));
  /* A cancelled job never reports. */
  *cancel_me = emu_tts_synthesize (tts, "Cancelled.", &f, 1.0, done_cb, &never);
  emu_tts_job_cancel (*cancel_me);
  emu_tts_synthesize (tts, text, &f, 1.0, done_cb, &w);
  while (!w.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (w.done);
  g_assert_false (never.done);

  bytes = g_bytes_get_size (w.result->audio);
  g_assert_cmpuint (bytes % 2, ==, 0);
  /* About 1 to 4 s of speech. */
  g_assert_cmpuint (bytes, >, 32000);
  g_assert_cmpuint (bytes, <, 128000);
  g_assert_cmpuint (w.result->chars->len, ==, g_utf8_strlen (text, -1));
  g_assert_cmpuint (w.result->start_ms->len, ==, w.result->chars->len);
  g_assert_cmpuint (w.result->duration_ms->len, ==, w.result->chars->len);
  for (guint i = 0; i < w.result->chars->len; i++) {
    gint start = g_array_index (w.result->start_ms, gint, i);
    gint dur = g_array_index (w.result->duration_ms, gint, i);
    g_assert_cmpint (start, >=, last_end - 2);
    g_assert_cmpint (dur, >=, 0);
    last_end = start + dur;
  }
  /* The alignment ends near the end of the audio. */
  g_assert_cmpint (last_end, <=, (gint)(bytes / 32) + 2);
  emu_tts_result_free (w.result);
  emu_tts_free (tts);
}

static void
test_tone (void)
{
  EmuTtsJob *job;

  check_engine ("tone", &job);
}

static void
test_espeak (void)
{
  EmuTtsJob *job;

  check_engine ("espeak-ng", &job);
}

static void
test_unknown_engine (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (emu_tts_new ("festival", &error));
  g_assert_nonnull (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/elevenlabs-engine/formats", test_formats);
  g_test_add_func ("/elevenlabs-engine/ulaw", test_ulaw);
  g_test_add_func ("/elevenlabs-engine/resampler", test_resampler);
  g_test_add_func ("/elevenlabs-engine/tone", test_tone);
  g_test_add_func ("/elevenlabs-engine/espeak-ng", test_espeak);
  g_test_add_func ("/elevenlabs-engine/unknown", test_unknown_engine);
  return g_test_run ();
}

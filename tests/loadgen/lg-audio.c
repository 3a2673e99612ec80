/* voiceagent-loadgen: the caller's speech, rendered and encoded once.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Encoding once at start-up keeps the load generator's own CPU small, so
 * on a 2-core machine most of it is left to the server being measured.
 */
#include <math.h>
#include <string.h>
#include <time.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <opus.h>
#include "lg-audio.h"

#define RATE LG_RATE
#define FRAME_SAMPLES (RATE / 1000 * LG_FRAME_MS)
/* -40 dBFS over 10 ms: espeak-ng's silence is digital, its speech far
 * above this. */
#define SPEECH_RMS 0.01
#define WINDOW_SAMPLES (RATE / 100)

static gboolean
render_pcm (const gchar *text, GBytes **pcm, GError **error)
{
  gchar *dir = g_dir_make_tmp ("loadgen-XXXXXX", error);
  gchar *wav, *raw, *cmd, *data = NULL;
  gsize size = 0;
  gint status = -1;
  gboolean ok;

  if (dir == NULL)
    return FALSE;
  wav = g_build_filename (dir, "say.wav", NULL);
  raw = g_build_filename (dir, "say.raw", NULL);
  cmd = g_strdup_printf (
      "sh -c 'espeak-ng -s 150 -v en-us -w \"$1\" \"$3\" && "
      "sox \"$1\" -r %d -c 1 -b 16 -e signed-integer -t raw \"$2\"' "
      "render '%s' '%s' '%s'",
      RATE, wav, raw, text);
  ok = g_spawn_command_line_sync (cmd, NULL, NULL, &status, error) &&
      g_spawn_check_wait_status (status, error) &&
      g_file_get_contents (raw, &data, &size, error);
  if (ok)
    *pcm = g_bytes_new_take (data, size);
  g_unlink (wav);
  g_unlink (raw);
  g_rmdir (dir);
  g_free (cmd);
  g_free (wav);
  g_free (raw);
  g_free (dir);
  return ok;
}

static gdouble
window_rms (const gint16 *pcm, gsize n)
{
  gdouble sum = 0;
  gsize i;

  for (i = 0; i < n; i++)
    sum += (gdouble)pcm[i] * pcm[i];
  return n ? sqrt (sum / n) / 32768.0 : 0;
}

static void
find_speech (LgClip *clip, const gint16 *pcm, gsize n)
{
  gsize i;
  gboolean found = FALSE;

  for (i = 0; i + WINDOW_SAMPLES <= n; i += WINDOW_SAMPLES) {
    if (window_rms (pcm + i, WINDOW_SAMPLES) < SPEECH_RMS)
      continue;
    if (!found)
      clip->speech_start_ms = i * 1000 / RATE;
    found = TRUE;
    clip->speech_end_ms = (i + WINDOW_SAMPLES) * 1000 / RATE;
  }
}

static gboolean
encode (LgClip *clip, const gint16 *pcm, gsize n, GError **error)
{
  int err = 0;
  OpusEncoder *enc = opus_encoder_create (RATE, 1, OPUS_APPLICATION_VOIP, &err);
  gint16 frame[FRAME_SAMPLES];
  guint8 out[1500];
  gsize i;

  if (enc == NULL) {
    g_set_error (
        error, G_IO_ERROR, G_IO_ERROR_FAILED, "opus: %s", opus_strerror (err));
    return FALSE;
  }
  opus_encoder_ctl (enc, OPUS_SET_BITRATE (32000));
  for (i = 0; i < n; i += FRAME_SAMPLES) {
    gsize take = MIN (FRAME_SAMPLES, n - i);
    opus_int32 len;

    memset (frame, 0, sizeof frame);
    memcpy (frame, pcm + i, take * sizeof (gint16));
    len = opus_encode (enc, frame, FRAME_SAMPLES, out, sizeof out);
    if (len < 0)
      break;
    g_ptr_array_add (clip->packets, g_bytes_new (out, len));
  }
  opus_encoder_destroy (enc);
  return TRUE;
}

LgClip *
lg_clip_new_from_pcm (
    const gchar *text, const gint16 *pcm, gsize n, GError **error)
{
  LgClip *clip = g_new0 (LgClip, 1);

  clip->text = g_strdup (text);
  clip->packets =
      g_ptr_array_new_with_free_func ((GDestroyNotify)g_bytes_unref);
  find_speech (clip, pcm, n);
  encode (clip, pcm, n, NULL);
  if (clip->speech_end_ms == 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "no audible audio for \"%s\"", text);
    lg_clip_free (clip);
    return NULL;
  }
  return clip;
}

LgClip *
lg_clip_render (const gchar *text, GError **error)
{
  LgClip *clip;
  GBytes *pcm = NULL;
  gsize size;
  const gint16 *samples;

  if (strchr (text, '\'') != NULL) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
        "utterance \"%s\": no apostrophes, please (shell quoting)", text);
    return NULL;
  }
  if (!render_pcm (text, &pcm, error))
    return NULL;
  samples = g_bytes_get_data (pcm, &size);
  clip = lg_clip_new_from_pcm (text, samples, size / 2, error);
  g_bytes_unref (pcm);
  return clip;
}

void
lg_clip_free (LgClip *clip)
{
  if (clip == NULL)
    return;
  g_free (clip->text);
  g_ptr_array_unref (clip->packets);
  g_free (clip);
}

GBytes *
lg_silence_packet (void)
{
  int err = 0;
  OpusEncoder *enc = opus_encoder_create (RATE, 1, OPUS_APPLICATION_VOIP, &err);
  gint16 zeros[FRAME_SAMPLES] = { 0 };
  guint8 out[1500];
  opus_int32 len = 0;
  guint i;

  g_assert (enc);
  /* The first frames carry the encoder's start-up; take a settled one. */
  for (i = 0; i < 10; i++)
    len = opus_encode (enc, zeros, FRAME_SAMPLES, out, sizeof out);
  opus_encoder_destroy (enc);
  g_assert (len > 0);
  return g_bytes_new (out, len);
}

gboolean
lg_find_loud (const gint16 *pcm, gsize n, gdouble rms, guint *first_ms,
    guint *last_end_ms)
{
  /* 5 ms at 16 kHz: a whole period of the lowest voices, so a zero
   * crossing does not read as silence. */
  const gsize window = 80;
  gboolean found = FALSE;
  gsize i;

  for (i = 0; i + window <= n; i += window) {
    if (window_rms (pcm + i, window) <= rms)
      continue;
    if (!found)
      *first_ms = i / 16;
    found = TRUE;
    *last_end_ms = (i + window) / 16;
  }
  return found;
}

gboolean
lg_find_loud_times (const gint16 *pcm, gsize n, gint64 arrival, gdouble rms,
    gint64 *start, gint64 *end)
{
  guint first_ms, last_end_ms;
  gint64 buffer_start = arrival - (gint64)n * 1000 / 16;

  if (!lg_find_loud (pcm, n, rms, &first_ms, &last_end_ms))
    return FALSE;
  *start = buffer_start + first_ms * (gint64)1000;
  *end = buffer_start + last_end_ms * (gint64)1000;
  return TRUE;
}

gpointer
lg_feeder_thread (gpointer data)
{
  LgFeeder *f = data;
  struct timespec next;
  gint64 now;
  guint i;

  clock_gettime (CLOCK_MONOTONIC, &next);
  while (g_atomic_int_get (&f->running)) {
    next.tv_nsec += LG_FRAME_MS * 1000000L;
    if (next.tv_nsec >= 1000000000L) {
      next.tv_nsec -= 1000000000L;
      next.tv_sec++;
    }
    clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    now = g_get_monotonic_time ();
    if (now - (next.tv_sec * G_USEC_PER_SEC + next.tv_nsec / 1000) > 100000)
      f->late++;
    for (i = 0; i < f->callers->len; i++)
      f->tick (g_ptr_array_index (f->callers, i), now);
  }
  return NULL;
}

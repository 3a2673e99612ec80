/* voiceagent-emulator: speech synthesis engines behind the ElevenLabs
 * service.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two engines: "espeak-ng" (libespeak-ng, 22050 Hz, resampled to the format
 * asked for) and "tone" (a cheap synthetic voice: one tone per word, of the
 * duration a speaker would take, for load tests). A job turns one piece of
 * text (a sentence) into audio in the requested format plus a character
 * alignment, and reports once, on the main thread.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  EMU_AUDIO_PCM_S16LE,
  EMU_AUDIO_ULAW,
} EmuAudioEncoding;

typedef struct
{
  EmuAudioEncoding encoding;
  guint rate;
} EmuAudioFormat;

/* Parses an ElevenLabs output_format (pcm_8000, pcm_16000, pcm_22050,
 * pcm_24000, pcm_44100, ulaw_8000). FALSE for anything else. */
gboolean emu_audio_format_parse (const gchar *name, EmuAudioFormat *format);

/* One synthesised piece of text. Times are in ms from the start of @audio. */
typedef struct
{
  GBytes *audio; /* encoded in the requested format */
  GPtrArray *chars; /* (element-type utf8) one per character */
  GArray *start_ms; /* (element-type gint) */
  GArray *duration_ms; /* (element-type gint) */
} EmuTtsResult;

void emu_tts_result_free (EmuTtsResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EmuTtsResult, emu_tts_result_free);

/* Called once per job on the main thread; takes ownership of @result (NULL
 * with @error set when synthesis failed). */
typedef void (*EmuTtsFunc) (
    EmuTtsResult *result, const GError *error, gpointer user_data);

typedef struct _EmuTts EmuTts;
typedef struct _EmuTtsJob EmuTtsJob;

/* Creates the engine @name; NULL with @error set when it is unknown or does
 * not start. Main thread only, like every function below. */
EmuTts *emu_tts_new (const gchar *name, GError **error);

/* Waits for the running job, drops queued ones and frees the engine. */
void emu_tts_free (EmuTts *tts);

/* Queues @text. Jobs of one engine complete in the order they were queued.
 * @speed scales the speaking rate (1.0 = normal). The returned job is valid
 * until @func ran or emu_tts_job_cancel() was called. */
EmuTtsJob *emu_tts_synthesize (EmuTts *tts, const gchar *text,
    const EmuAudioFormat *format, gdouble speed, EmuTtsFunc func,
    gpointer user_data);

/* @func will not be called for @job, which must not be used any more. */
void emu_tts_job_cancel (EmuTtsJob *job);

/* Exposed for the unit test: resamples mono S16 @in (@n_in samples at
 * @in_rate) to @out_rate with a windowed-sinc filter; returns a new array of
 * gint16 samples. */
GArray *emu_resample (
    const gint16 *in, gsize n_in, guint in_rate, guint out_rate);

/* G.711 mu-law of one linear sample. */
guint8 emu_ulaw_encode (gint16 sample);

G_END_DECLS

/* voiceagent-emulator: speech-to-text engines behind the Deepgram service.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Three small pieces, each usable alone:
 *   SttDecoder    bytes of a Deepgram `encoding` (linear16, mulaw, or a WAV
 *                 container when no encoding is given) to mono S16 samples.
 *   SttResampler  mono S16 from any rate to any rate (windowed-sinc
 *                 polyphase), for pocketsphinx, which wants 16 kHz.
 *   SttSession    one recognition stream: energy-based endpointing shared by
 *                 both engines, and the engine ("pocketsphinx" or "scripted")
 *                 that turns speech into words. It emits SttEvents that map
 *                 one to one onto Deepgram's messages.
 *
 * None of them is thread-safe; an SttSession may be created and used on any
 * one thread at a time (the Deepgram service runs pocketsphinx sessions on a
 * worker thread and scripted sessions on the main thread).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* ---------- audio decoding ---------- */

typedef enum {
  STT_ENCODING_AUTO, /* no `encoding`: a WAV container is expected */
  STT_ENCODING_LINEAR16,
  STT_ENCODING_MULAW,
  STT_ENCODING_ALAW,
} SttEncoding;

typedef struct _SttDecoder SttDecoder;

/* Parses a Deepgram `encoding` value; FALSE for one the emulator cannot
 * decode (opus, flac, ...). NULL means STT_ENCODING_AUTO. */
gboolean stt_encoding_parse (const gchar *name, SttEncoding *out);

/* A decoder for @encoding at @rate Hz with @channels interleaved channels
 * (both ignored for STT_ENCODING_AUTO, which reads them from the WAV
 * header). Free with stt_decoder_free(). */
SttDecoder *stt_decoder_new (SttEncoding encoding, guint rate, guint channels);
void stt_decoder_free (SttDecoder *dec);

/* Decodes @len bytes (any split: partial frames carry over to the next call)
 * and appends mono samples (channels mixed down) to @out (element-type
 * gint16). FALSE when the bytes cannot be audio of that encoding (e.g. no
 * RIFF/WAVE header when one is expected, or a WAV format other than PCM S16,
 * mu-law or A-law). */
gboolean stt_decoder_push (
    SttDecoder *dec, const guint8 *data, gsize len, GArray *out);

/* The sample rate of what stt_decoder_push() returns; 0 until known (a WAV
 * header not read yet). */
guint stt_decoder_get_rate (SttDecoder *dec);

/* ---------- resampling ---------- */

typedef struct _SttResampler SttResampler;

/* Converts mono S16 from @in_rate to @out_rate. Free with
 * stt_resampler_free(). */
SttResampler *stt_resampler_new (guint in_rate, guint out_rate);
void stt_resampler_free (SttResampler *rs);

/* Resamples @n samples and appends the output to @out (element-type gint16).
 * Keeps a few samples of history between calls. */
void stt_resampler_push (
    SttResampler *rs, const gint16 *in, gsize n, GArray *out);

/* ---------- recognition ---------- */

typedef enum {
  STT_ENGINE_SCRIPTED,
  STT_ENGINE_POCKETSPHINX,
} SttEngineKind;

/* Parses "scripted" or "pocketsphinx"; FALSE otherwise. */
gboolean stt_engine_parse (const gchar *name, SttEngineKind *out);

/* Loads @n pocketsphinx decoders into the pool on a background thread, so
 * the first sessions start without the half-second load. */
void stt_pocketsphinx_preload (guint n);

/* At exit: waits for the preload and frees the pooled decoders. */
void stt_pocketsphinx_shutdown (void);

/* The sample rate an engine wants its input at; 0 = any (scripted). */
guint stt_engine_rate (SttEngineKind kind);

/* A timed script entry (a line starting with '@'): what the caller says,
 * with each word's place in its audio, so the recognizer can hear it word by
 * word as Deepgram does. Written by tests/bench/turns (voiceagent-turnbench):
 *   @KIND DURATION START-END:WORD START-END:WORD ...
 * KIND is turn, backchannel, interrupt or noise; times are seconds from the
 * entry's first audible sample; DURATION is the whole entry's (pauses
 * included). A WORD keeps the corpus' punctuation; a final '?' on the last
 * one makes the entry a question. A line "@lag MS" sets how long after a
 * word's end it is heard (default 80 ms). */
typedef struct
{
  gdouble start, end;
  gchar *word; /* lower case, no punctuation */
  gchar *text; /* as in the corpus, without terminal punctuation */
} SttTimedWord;

typedef struct
{
  gchar *kind;
  gdouble duration;
  gboolean question;
  guint n_words;
  SttTimedWord *words;
} SttTimedEntry;

/* The scripted engine's transcripts: one utterance per element, used in
 * order and from the start again when exhausted. Immutable once made, so
 * several sessions on different threads may share one. */
typedef struct
{
  gint ref;
  gchar **lines; /* (array zero-terminated=1) */
  SttTimedEntry **timed; /* one per line; NULL for a plain transcript */
  guint lag_ms; /* a timed word is heard this long after its end */
} SttScript;

/* Parses one timed entry line ("@turn 1.2 0.0-0.3:my ..."); NULL when it is
 * not one. Exposed for the unit test. */
SttTimedEntry *stt_timed_entry_parse (const gchar *line);
void stt_timed_entry_free (SttTimedEntry *entry);

/* Reads a file with one transcript per line (blank lines and lines starting
 * with '#' skipped); NULL with @error set when it cannot be read or holds no
 * transcript. */
SttScript *stt_script_new_from_file (const gchar *path, GError **error);
/* Utterances separated by '|' ("hello there|goodbye"). */
SttScript *stt_script_new_from_string (const gchar *text);
SttScript *stt_script_ref (SttScript *script);
void stt_script_unref (SttScript *script);

typedef struct
{
  guint
      endpointing_ms; /* silence that ends an utterance; 0 = endpointing=false */
  guint utterance_end_ms; /* 0 = no UtteranceEnd */
  gboolean interim_results;
  gboolean vad_events;
  gboolean punctuate; /* punctuate or smart_format */
  SttScript *script; /* scripted engine; NULL = empty transcripts */
} SttOptions;

typedef struct
{
  gchar *word; /* lower case, as recognised */
  gchar *punctuated_word; /* capitalised and punctuated (when asked) */
  gdouble start; /* seconds of audio since the stream began */
  gdouble end;
  gdouble confidence; /* 0..1 */
} SttWord;

typedef enum {
  STT_EVENT_SPEECH_STARTED, /* timestamp */
  STT_EVENT_RESULT, /* start, duration, is_final, ..., words */
  STT_EVENT_UTTERANCE_END, /* timestamp = last_word_end */
} SttEventType;

typedef struct
{
  SttEventType type;
  gdouble timestamp;
  gdouble start;
  gdouble duration;
  gboolean is_final;
  gboolean speech_final;
  gboolean from_finalize;
  gchar *transcript;
  gdouble confidence;
  GArray *words; /* (element-type SttWord) */
} SttEvent;

void stt_event_free (SttEvent *ev);

typedef struct _SttSession SttSession;

/* A recognition stream of @kind for mono S16 audio at @rate Hz (which must be
 * stt_engine_rate() when that is not 0). Loading pocketsphinx takes about
 * half a second the first time; decoders are kept in a small pool and reused.
 * NULL with @error set when the engine cannot start. */
SttSession *stt_session_new (
    SttEngineKind kind, guint rate, const SttOptions *options, GError **error);

/* Returns the engine to the pool and frees the session. */
void stt_session_free (SttSession *s);

/* Feeds @n samples; appends what they caused to @events (element-type
 * SttEvent, owned by the array's free func). */
void stt_session_push (
    SttSession *s, const gint16 *samples, gsize n, GPtrArray *events);

/* Ends the current utterance now. For Deepgram's Finalize (@from_finalize
 * TRUE) always one final result marked from_finalize, empty when there was no
 * speech; for CloseStream (@from_finalize FALSE) a final result only when an
 * utterance was open. */
void stt_session_finalize (
    SttSession *s, gboolean from_finalize, GPtrArray *events);

/* Seconds of audio pushed so far. */
gdouble stt_session_get_time (SttSession *s);

/* A GPtrArray suitable for the @events arguments above. */
GPtrArray *stt_events_new (void);

G_END_DECLS

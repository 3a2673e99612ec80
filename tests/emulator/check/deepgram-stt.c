/* voiceagent-emulator: unit tests of the Deepgram service's audio and
 * endpointing code (tests/emulator/stt.c), without a server.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <string.h>

#include "stt.h"

static void
tone (gint16 *out, guint n, guint rate, gdouble freq, gdouble amp)
{
  for (guint i = 0; i < n; i++)
    out[i] = amp * sin (2 * G_PI * freq * i / rate);
}

/* RMS of @x over [from, to). */
static gdouble
rms (const gint16 *x, guint from, guint to)
{
  gdouble acc = 0;

  for (guint i = from; i < to; i++)
    acc += (gdouble)x[i] * x[i];
  return sqrt (acc / (to - from));
}

/* G.711 decoding matches the reference values; stereo is mixed down; a
 * partial sample waits for the next push. */
static void
test_decoder_raw (void)
{
  const guint8 mu[] = { 0xff, 0x7f, 0x00, 0x80, 0x8f };
  const gint16 mu_ref[] = { 0, 0, -32124, 32124, 16764 };
  const guint8 a[] = { 0xd5, 0x55, 0x2a, 0xaa };
  const gint16 a_ref[] = { 8, -8, -32256, 32256 };
  const guint8 st[] = { 0x10, 0x00, 0x30, 0x00, 0x01 };
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (gint16));
  SttDecoder *dec;

  dec = stt_decoder_new (STT_ENCODING_MULAW, 8000, 1);
  g_assert_true (stt_decoder_push (dec, mu, sizeof mu, out));
  g_assert_cmpmem (out->data, out->len * 2, mu_ref, sizeof mu_ref);
  stt_decoder_free (dec);

  g_array_set_size (out, 0);
  dec = stt_decoder_new (STT_ENCODING_ALAW, 8000, 1);
  g_assert_true (stt_decoder_push (dec, a, sizeof a, out));
  g_assert_cmpmem (out->data, out->len * 2, a_ref, sizeof a_ref);
  stt_decoder_free (dec);

  /* linear16 stereo: (16 + 48) / 2 = 32; the odd byte waits */
  g_array_set_size (out, 0);
  dec = stt_decoder_new (STT_ENCODING_LINEAR16, 16000, 2);
  g_assert_true (stt_decoder_push (dec, st, sizeof st, out));
  g_assert_cmpuint (out->len, ==, 1);
  g_assert_cmpint (g_array_index (out, gint16, 0), ==, 32);
  g_assert_true (
      stt_decoder_push (dec, (const guint8 *)"\x00\x02\x00", 3, out));
  g_assert_cmpuint (out->len, ==, 2);
  g_assert_cmpint (g_array_index (out, gint16, 1), ==, (1 + 2) / 2);
  stt_decoder_free (dec);
}

/* A WAV header split anywhere is read (with a LIST chunk before data);
 * bytes without one are refused; so is a format it cannot decode. */
static void
test_decoder_wav (void)
{
  guint8 wav[] =
      "RIFF\0\0\0\0WAVE"
      "fmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0"
      "LIST\x03\0\0\0abc\0"
      "data\xff\xff\xff\xff"
      "\x01\x00\x02\x00";
  gsize len = sizeof wav - 1;
  g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (gint16));

  for (gsize split = 1; split < len; split++) {
    SttDecoder *dec = stt_decoder_new (STT_ENCODING_AUTO, 0, 1);
    g_array_set_size (out, 0);
    g_assert_true (stt_decoder_push (dec, wav, split, out));
    g_assert_true (stt_decoder_push (dec, wav + split, len - split, out));
    g_assert_cmpuint (stt_decoder_get_rate (dec), ==, 8000);
    g_assert_cmpuint (out->len, ==, 2);
    g_assert_cmpint (g_array_index (out, gint16, 1), ==, 2);
    stt_decoder_free (dec);
  }

  {
    SttDecoder *dec = stt_decoder_new (STT_ENCODING_AUTO, 0, 1);
    g_assert_false (stt_decoder_push (dec, (const guint8 *)"OggS", 4, out));
    stt_decoder_free (dec);
  }
  wav[20] = 3; /* IEEE float */
  {
    SttDecoder *dec = stt_decoder_new (STT_ENCODING_AUTO, 0, 1);
    g_assert_false (stt_decoder_push (dec, wav, len, out));
    stt_decoder_free (dec);
  }
}

/* The resampler keeps a tone in the pass band at its level and length, and
 * keeps what would alias (11 kHz from 48 kHz to 16 kHz) out. */
static void
test_resampler (void)
{
  const struct
  {
    guint in, out;
    gdouble freq;
    gboolean pass;
  } cases[] = {
    { 8000, 16000, 1000, TRUE },
    { 48000, 16000, 1000, TRUE },
    { 44100, 16000, 3000, TRUE },
    { 24000, 16000, 500, TRUE },
    { 48000, 16000, 5000, TRUE },
    { 48000, 16000, 11000, FALSE },
    { 16000, 16000, 1000, TRUE },
  };

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    guint n = cases[c].in; /* one second */
    g_autofree gint16 *in = g_new (gint16, n);
    g_autoptr (GArray) out = g_array_new (FALSE, FALSE, sizeof (gint16));
    SttResampler *rs = stt_resampler_new (cases[c].in, cases[c].out);
    gdouble level;

    tone (in, n, cases[c].in, cases[c].freq, 10000);
    /* in uneven pieces, as frames arrive */
    for (guint off = 0; off < n; off += 333)
      stt_resampler_push (rs, in + off, MIN (333, n - off), out);
    stt_resampler_free (rs);
    g_assert_cmpint (ABS ((gint)out->len - (gint)cases[c].out), <=, 2);
    level = rms ((const gint16 *)out->data, 200, out->len - 200);
    if (cases[c].pass)
      g_assert_cmpfloat (fabs (20 * log10 (level / (10000 / G_SQRT2))), <, 1.0);
    else
      g_assert_cmpfloat (20 * log10 (level / (10000 / G_SQRT2)), <, -40.0);
  }
}

typedef struct
{
  GPtrArray *events;
  SttSession *s;
  guint rate;
} Run;

static void
feed (Run *r, guint ms, gboolean speech)
{
  guint n = r->rate * ms / 1000;
  g_autofree gint16 *x = g_new0 (gint16, n);

  if (speech)
    tone (x, n, r->rate, 220, 6000);
  stt_session_push (r->s, x, n, r->events);
}

static SttEvent *
ev (Run *r, guint i)
{
  g_assert_cmpuint (i, <, r->events->len);
  return r->events->pdata[i];
}

/* Scripted engine: onset, interim words at 2.5 per second, the endpoint
 * after `endpointing` silence (at least 200 ms), words spread over the
 * speech, then UtteranceEnd after utterance_end_ms, script lines in turn. */
static void
test_session_scripted (void)
{
  SttOptions o = { 0 };
  Run r = { stt_events_new (), NULL, 8000 };
  SttEvent *e;

  o.endpointing_ms = 10;
  o.utterance_end_ms = 1000;
  o.interim_results = TRUE;
  o.vad_events = TRUE;
  o.script = stt_script_new_from_string ("one two three|four");
  r.s = stt_session_new (STT_ENGINE_SCRIPTED, r.rate, &o, NULL);
  stt_script_unref (o.script);

  feed (&r, 300, FALSE);
  feed (&r, 1200, TRUE);
  feed (&r, 190, FALSE);
  /* SpeechStarted, one interim so far, no final yet */
  g_assert_cmpuint (r.events->len, ==, 2);
  e = ev (&r, 0);
  g_assert_cmpint (e->type, ==, STT_EVENT_SPEECH_STARTED);
  g_assert_cmpfloat_with_epsilon (e->timestamp, 0.3, 1e-9);
  e = ev (&r, 1);
  g_assert_false (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "one");
  g_assert_cmpfloat_with_epsilon (e->duration, 1.08, 1e-9);

  feed (&r, 20, FALSE);
  g_assert_cmpuint (r.events->len, ==, 3);
  e = ev (&r, 2);
  g_assert_true (e->is_final && e->speech_final && !e->from_finalize);
  g_assert_cmpstr (e->transcript, ==, "one two three");
  g_assert_cmpfloat_with_epsilon (e->start, 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (e->duration, 1.7, 1e-9);
  g_assert_cmpuint (e->words->len, ==, 3);
  g_assert_cmpfloat_with_epsilon (
      g_array_index (e->words, SttWord, 0).start, 0.3, 1e-9);
  g_assert_cmpfloat_with_epsilon (
      g_array_index (e->words, SttWord, 2).end, 1.5, 1e-9);

  feed (&r, 780, FALSE);
  g_assert_cmpuint (r.events->len, ==, 3);
  feed (&r, 20, FALSE);
  g_assert_cmpuint (r.events->len, ==, 4);
  e = ev (&r, 3);
  g_assert_cmpint (e->type, ==, STT_EVENT_UTTERANCE_END);
  g_assert_cmpfloat_with_epsilon (e->timestamp, 1.5, 1e-9);

  /* Finalize mid-speech: from_finalize, no speech_final; then an empty one */
  feed (&r, 300, TRUE);
  stt_session_finalize (r.s, TRUE, r.events);
  e = ev (&r, r.events->len - 1);
  g_assert_true (e->is_final && e->from_finalize && !e->speech_final);
  g_assert_cmpstr (e->transcript, ==, "four");
  g_assert_cmpfloat_with_epsilon (e->start, 1.7, 1e-9);
  stt_session_finalize (r.s, TRUE, r.events);
  e = ev (&r, r.events->len - 1);
  g_assert_cmpstr (e->transcript, ==, "");
  g_assert_true (e->from_finalize);
  g_assert_cmpfloat_with_epsilon (e->duration, 0, 1e-9);
  g_assert_cmpfloat_with_epsilon (stt_session_get_time (r.s), 2.81, 1e-9);

  stt_session_free (r.s);
  g_ptr_array_unref (r.events);
}

/* A click (20 ms) starts nothing; endpointing=false ends utterances after
 * 1 s of silence without speech_final; CloseStream with nothing open emits
 * nothing. */
static void
test_session_plain (void)
{
  SttOptions o = { 0 };
  Run r = { stt_events_new (), NULL, 16000 };
  SttEvent *e;

  o.script = stt_script_new_from_string ("hi");
  r.s = stt_session_new (STT_ENGINE_SCRIPTED, r.rate, &o, NULL);
  stt_script_unref (o.script);
  feed (&r, 500, FALSE);
  feed (&r, 20, TRUE);
  feed (&r, 2000, FALSE);
  g_assert_cmpuint (r.events->len, ==, 0);
  feed (&r, 400, TRUE);
  feed (&r, 990, FALSE);
  g_assert_cmpuint (r.events->len, ==, 0);
  feed (&r, 10, FALSE);
  g_assert_cmpuint (r.events->len, ==, 1);
  e = ev (&r, 0);
  g_assert_true (e->is_final && !e->speech_final);
  g_assert_cmpstr (e->transcript, ==, "hi");
  stt_session_finalize (r.s, FALSE, r.events);
  g_assert_cmpuint (r.events->len, ==, 1);
  stt_session_free (r.s);
  g_ptr_array_unref (r.events);
}

/* Timed entries (tests/bench/turns): one interim result per word once its
 * audio (plus the lag) has arrived; a pause inside the entry ends a segment
 * without a full stop and the next onset continues the same entry; the
 * sentence's '?' comes with its last word; a noise entry is an empty final. */
static void
test_session_timed (void)
{
  SttOptions o = { 0 };
  Run r = { stt_events_new (), NULL, 8000 };
  SttEvent *e;

  o.endpointing_ms = 300;
  o.interim_results = TRUE;
  o.vad_events = TRUE;
  o.punctuate = TRUE;
  o.script =
      stt_script_new_from_string ("@lag 50|"
                                  "@turn 1.6 0.0-0.3:my 0.35-0.7:account "
                                  "1.3-1.6:number?|@noise 0.2|plain words|"
                                  "@noise 0.2|@backchannel 0.5 "
                                  "0.0-0.45:mhm");
  r.s = stt_session_new (STT_ENGINE_SCRIPTED, r.rate, &o, NULL);
  stt_script_unref (o.script);

  feed (&r, 200, FALSE);
  feed (&r, 340, TRUE); /* "my" is heard at 0.35 s */
  g_assert_cmpuint (r.events->len, ==, 1);
  g_assert_cmpint (ev (&r, 0)->type, ==, STT_EVENT_SPEECH_STARTED);
  feed (&r, 20, TRUE);
  g_assert_cmpuint (r.events->len, ==, 2);
  e = ev (&r, 1);
  g_assert_false (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "My");
  feed (&r, 340, TRUE);
  feed (&r, 100, FALSE);
  g_assert_cmpuint (r.events->len, ==, 3);
  g_assert_cmpstr (ev (&r, 2)->transcript, ==, "My account");

  /* the pause: a final without a full stop, then the rest of the entry */
  feed (&r, 500, FALSE);
  g_assert_cmpuint (r.events->len, ==, 4);
  e = ev (&r, 3);
  g_assert_true (e->is_final && e->speech_final);
  g_assert_cmpstr (e->transcript, ==, "My account");
  g_assert_cmpfloat_with_epsilon (
      g_array_index (e->words, SttWord, 1).end, 0.9, 1e-9);
  feed (&r, 300, TRUE);
  feed (&r, 400, FALSE);
  g_assert_cmpuint (r.events->len, ==, 7);
  g_assert_cmpint (ev (&r, 4)->type, ==, STT_EVENT_SPEECH_STARTED);
  g_assert_cmpstr (ev (&r, 5)->transcript, ==, "Number");
  e = ev (&r, 6);
  g_assert_true (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "Number?");
  g_assert_cmpfloat_with_epsilon (
      g_array_index (e->words, SttWord, 0).start, 1.5, 1e-9);

  /* noise: speech started, an empty final, no interim */
  feed (&r, 200, TRUE);
  feed (&r, 400, FALSE);
  g_assert_cmpuint (r.events->len, ==, 9);
  g_assert_cmpint (ev (&r, 7)->type, ==, STT_EVENT_SPEECH_STARTED);
  e = ev (&r, 8);
  g_assert_true (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "");

  /* a plain line after timed ones behaves as before */
  feed (&r, 1000, TRUE);
  feed (&r, 400, FALSE);
  e = ev (&r, r.events->len - 1);
  g_assert_true (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "Plain words.");

  /* a noise burst the recognizer never got: the speech is the next entry */
  feed (&r, 600, TRUE);
  feed (&r, 400, FALSE);
  e = ev (&r, r.events->len - 1);
  g_assert_true (e->is_final);
  g_assert_cmpstr (e->transcript, ==, "Mhm.");
  stt_session_free (r.s);
  g_ptr_array_unref (r.events);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/deepgram-stt/decoder/raw", test_decoder_raw);
  g_test_add_func ("/deepgram-stt/decoder/wav", test_decoder_wav);
  g_test_add_func ("/deepgram-stt/resampler", test_resampler);
  g_test_add_func ("/deepgram-stt/session/scripted", test_session_scripted);
  g_test_add_func ("/deepgram-stt/session/plain", test_session_plain);
  g_test_add_func ("/deepgram-stt/session/timed", test_session_timed);
  return g_test_run ();
}

/* voiceagent-emulator: speech-to-text engines behind the Deepgram service.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Endpointing is the same for both engines and works on 10 ms frames:
 *   - a frame is speech when its RMS level is above max(-45 dBFS, noise
 *     floor + 12 dB); the noise floor follows the non-speech frames;
 *   - an utterance starts after 3 speech frames in a row (30 ms; a click does
 *     not start one), with 250 ms of audio before that fed to the engine too;
 *   - it ends after `endpointing` ms of silence, but never less than
 *     MIN_ENDPOINT_MS: an energy detector cannot tell the closure of a stop
 *     consonant from a pause, which Deepgram's model-based VAD can. With
 *     endpointing=false utterances still end after SEGMENT_SILENCE_MS of
 *     silence (is_final true, speech_final false), as Deepgram finalises its
 *     segments on its own;
 *   - pocketsphinx utterances longer than MAX_UTTERANCE_MS are finalised
 *     (speech_final false) and go on in a new one.
 *
 * Timestamps are seconds of audio received on the stream, counted at the
 * session's sample rate.
 */
#include "stt.h"

#include <math.h>
#include <string.h>

#include <pocketsphinx.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#define FRAMES_PER_S 100
#define ONSET_FRAMES 3
#define PREROLL_MS 250
#define MIN_ENDPOINT_MS 200
#define SEGMENT_SILENCE_MS 1000
#define MAX_UTTERANCE_MS 10000
#define INTERIM_MS 750
#define SPEECH_FLOOR_DB -45.0
#define SPEECH_ABOVE_NOISE_DB 12.0
#define SCRIPTED_WORDS_PER_S 2.5
#define SCRIPTED_CONFIDENCE 0.99
/* A timed word is recognised this long after its audio ended: Deepgram's
 * interim results trail the speech by about this much. */
#define SCRIPTED_LAG_MS 80
/* Speech this much longer than a noise entry is not that noise. */
#define NOISE_SLACK_S 0.15

#define POCKETSPHINX_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#define POCKETSPHINX_POOL_MAX 8

/* ---------- audio decoding ---------- */

struct _SttDecoder
{
  SttEncoding encoding; /* AUTO until the WAV header was read */
  guint rate;
  guint channels;
  gboolean header_done;
  GByteArray *pending; /* header bytes, or a partial frame */
};

gboolean
stt_encoding_parse (const gchar *name, SttEncoding *out)
{
  if (!name || !*name)
    *out = STT_ENCODING_AUTO;
  else if (g_str_equal (name, "linear16"))
    *out = STT_ENCODING_LINEAR16;
  else if (g_str_equal (name, "mulaw"))
    *out = STT_ENCODING_MULAW;
  else if (g_str_equal (name, "alaw"))
    *out = STT_ENCODING_ALAW;
  else
    return FALSE;
  return TRUE;
}

SttDecoder *
stt_decoder_new (SttEncoding encoding, guint rate, guint channels)
{
  SttDecoder *dec = g_new0 (SttDecoder, 1);

  dec->encoding = encoding;
  dec->rate = rate;
  dec->channels = MAX (channels, 1);
  dec->header_done = encoding != STT_ENCODING_AUTO;
  dec->pending = g_byte_array_new ();
  return dec;
}

void
stt_decoder_free (SttDecoder *dec)
{
  if (!dec)
    return;
  g_byte_array_unref (dec->pending);
  g_free (dec);
}

guint
stt_decoder_get_rate (SttDecoder *dec)
{
  return dec->header_done ? dec->rate : 0;
}

static inline gint16
ulaw_to_s16 (guint8 u)
{
  gint t;

  u = ~u;
  t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return (u & 0x80) ? (0x84 - t) : (t - 0x84);
}

static inline gint16
alaw_to_s16 (guint8 a)
{
  gint t, seg;

  a ^= 0x55;
  t = (a & 0x0f) << 4;
  seg = (a & 0x70) >> 4;
  if (seg == 0)
    t += 8;
  else
    t = (t + 0x108) << (seg - 1);
  return (a & 0x80) ? t : -t;
}

static guint
read_le16 (const guint8 *p)
{
  return p[0] | (p[1] << 8);
}

static guint32
read_le32 (const guint8 *p)
{
  return p[0] | (p[1] << 8) | (p[2] << 16) | ((guint32)p[3] << 24);
}

/* Reads a RIFF/WAVE header from dec->pending. Returns 1 when it is complete
 * (pending then holds only audio), 0 when more bytes are needed, -1 when the
 * bytes are not a WAV file the emulator can decode. */
static gint
parse_wav_header (SttDecoder *dec)
{
  const guint8 *d = dec->pending->data;
  gsize len = dec->pending->len;
  gsize off = 12;
  gboolean have_fmt = FALSE;

  if (len >= 4 && memcmp (d, "RIFF", 4) != 0)
    return -1;
  if (len >= 12 && memcmp (d + 8, "WAVE", 4) != 0)
    return -1;
  while (len >= off + 8) {
    guint32 size = read_le32 (d + off + 4);
    const guint8 *body = d + off + 8;

    if (memcmp (d + off, "data", 4) == 0) {
      if (!have_fmt)
        return -1;
      g_byte_array_remove_range (dec->pending, 0, off + 8);
      dec->header_done = TRUE;
      return 1;
    }
    if (size > 65536)
      return -1;
    if (len < off + 8 + size)
      return 0;
    if (memcmp (d + off, "fmt ", 4) == 0) {
      guint format, channels, rate, bits;
      if (size < 16)
        return -1;
      format = read_le16 (body);
      channels = read_le16 (body + 2);
      rate = read_le32 (body + 4);
      bits = read_le16 (body + 14);
      if (format == 0xfffe && size >= 26) /* WAVE_FORMAT_EXTENSIBLE */
        format = read_le16 (body + 24);
      if (channels < 1 || channels > 8 || rate < 4000 || rate > 192000)
        return -1;
      if (format == 1 && bits == 16)
        dec->encoding = STT_ENCODING_LINEAR16;
      else if (format == 7 && bits == 8)
        dec->encoding = STT_ENCODING_MULAW;
      else if (format == 6 && bits == 8)
        dec->encoding = STT_ENCODING_ALAW;
      else
        return -1;
      dec->channels = channels;
      dec->rate = rate;
      have_fmt = TRUE;
    }
    off += 8 + size + (size & 1);
  }
  return len > 65536 ? -1 : 0;
}

gboolean
stt_decoder_push (SttDecoder *dec, const guint8 *data, gsize len, GArray *out)
{
  guint bps, frame, ch = dec->channels;
  gsize n_frames, i;
  const guint8 *p;

  g_byte_array_append (dec->pending, data, len);
  if (!dec->header_done) {
    gint r = parse_wav_header (dec);
    if (r < 0)
      return FALSE;
    if (r == 0)
      return TRUE;
    ch = dec->channels;
  }

  bps = dec->encoding == STT_ENCODING_LINEAR16 ? 2 : 1;
  frame = bps * ch;
  n_frames = dec->pending->len / frame;
  p = dec->pending->data;
  for (i = 0; i < n_frames; i++, p += frame) {
    gint sum = 0;
    for (guint c = 0; c < ch; c++) {
      if (dec->encoding == STT_ENCODING_LINEAR16)
        sum += (gint16)read_le16 (p + 2 * c);
      else if (dec->encoding == STT_ENCODING_MULAW)
        sum += ulaw_to_s16 (p[c]);
      else
        sum += alaw_to_s16 (p[c]);
    }
    {
      gint16 s = sum / (gint)ch;
      g_array_append_val (out, s);
    }
  }
  g_byte_array_remove_range (dec->pending, 0, n_frames * frame);
  return TRUE;
}

/* ---------- resampling ---------- */

/* Rational L/M polyphase resampler with a Blackman-windowed sinc low-pass at
 * the lower of the two Nyquist frequencies. Output sample n sits at input
 * position n * M / L; phase p = (n * M) mod L selects the sub-filter. */
struct _SttResampler
{
  guint up; /* L */
  guint down; /* M */
  guint taps; /* K, taps per phase */
  gfloat *coef; /* L * K; coef[p * K + k] weighs x[i - k] */
  GArray *hist; /* (element-type gfloat) input, oldest first */
  guint64 hist_base; /* absolute index of hist[0] */
  guint64 in_count; /* input samples seen */
  guint64 out_count; /* output samples made */
};

static guint
gcd (guint a, guint b)
{
  while (b) {
    guint t = a % b;
    a = b;
    b = t;
  }
  return a;
}

SttResampler *
stt_resampler_new (guint in_rate, guint out_rate)
{
  SttResampler *rs = g_new0 (SttResampler, 1);
  guint g = gcd (in_rate, out_rate);
  guint n;
  gdouble fc;

  rs->up = out_rate / g;
  rs->down = in_rate / g;
  rs->hist = g_array_new (FALSE, TRUE, sizeof (gfloat));
  if (rs->up == rs->down)
    return rs;

  rs->taps = 32 * MAX (1, (rs->down + rs->up - 1) / rs->up);
  n = rs->up * rs->taps;
  /* cutoff as a fraction of the upsampled rate, a little under Nyquist */
  fc = 0.5 / MAX (rs->up, rs->down) * 0.92;
  rs->coef = g_new0 (gfloat, n);
  for (guint p = 0; p < rs->up; p++) {
    gdouble sum = 0;
    for (guint k = 0; k < rs->taps; k++) {
      guint j = k * rs->up + p;
      gdouble x = j - (n - 1) / 2.0;
      gdouble sinc = x == 0 ? 2 * fc : sin (2 * G_PI * fc * x) / (G_PI * x);
      gdouble w = 0.42 - 0.5 * cos (2 * G_PI * j / (n - 1)) +
          0.08 * cos (4 * G_PI * j / (n - 1));
      rs->coef[p * rs->taps + k] = sinc * w;
      sum += sinc * w;
    }
    /* each phase passes DC at unity gain */
    for (guint k = 0; k < rs->taps && sum != 0; k++)
      rs->coef[p * rs->taps + k] /= sum;
  }
  return rs;
}

void
stt_resampler_free (SttResampler *rs)
{
  if (!rs)
    return;
  g_array_unref (rs->hist);
  g_free (rs->coef);
  g_free (rs);
}

void
stt_resampler_push (SttResampler *rs, const gint16 *in, gsize n, GArray *out)
{
  const gfloat *x;

  if (rs->up == rs->down) {
    g_array_append_vals (out, in, n);
    return;
  }
  for (gsize i = 0; i < n; i++) {
    gfloat v = in[i];
    g_array_append_val (rs->hist, v);
  }
  rs->in_count += n;
  x = (const gfloat *)rs->hist->data;

  for (;;) {
    guint64 pos = rs->out_count * rs->down;
    guint64 i = pos / rs->up;
    guint p = pos % rs->up;
    const gfloat *h = rs->coef + (gsize)p * rs->taps;
    gdouble acc = 0;
    gint16 s;

    if (i >= rs->in_count)
      break;
    for (guint k = 0; k < rs->taps; k++) {
      if (i < k || i - k < rs->hist_base)
        break;
      acc += h[k] * x[i - k - rs->hist_base];
    }
    s = CLAMP (lrint (acc), G_MININT16, G_MAXINT16);
    g_array_append_val (out, s);
    rs->out_count++;
  }

  /* keep the K newest samples for the next call */
  if (rs->hist->len > rs->taps) {
    guint drop = rs->hist->len - rs->taps;
    g_array_remove_range (rs->hist, 0, drop);
    rs->hist_base += drop;
  }
}

/* ---------- scripts ---------- */

void
stt_timed_entry_free (SttTimedEntry *e)
{
  if (!e)
    return;
  for (guint i = 0; i < e->n_words; i++) {
    g_free (e->words[i].word);
    g_free (e->words[i].text);
  }
  g_free (e->words);
  g_free (e->kind);
  g_free (e);
}

/* "0.35-0.72:account?" into @w; the terminal punctuation is dropped from
 * both spellings, '?' reported in @question. */
static gboolean
timed_word_parse (const gchar *tok, SttTimedWord *w, gboolean *question)
{
  const gchar *colon = strchr (tok, ':');
  gchar *end = NULL;
  GString *plain;
  gsize n;

  if (!colon || colon[1] == '\0')
    return FALSE;
  w->start = g_ascii_strtod (tok, &end);
  if (end == tok || *end != '-')
    return FALSE;
  w->end = g_ascii_strtod (end + 1, &end);
  if (end != colon || w->end < w->start)
    return FALSE;
  n = strlen (colon + 1);
  *question = colon[n] == '?';
  while (n > 0 && strchr (".,?!;:", colon[n]))
    n--;
  w->text = g_strndup (colon + 1, n);
  plain = g_string_new (NULL);
  for (const gchar *p = w->text; *p; p++)
    if (g_ascii_isalnum (*p) || *p == '\'' || (guchar)*p >= 0x80)
      g_string_append_c (plain, g_ascii_tolower (*p));
  w->word = g_string_free (plain, FALSE);
  return TRUE;
}

SttTimedEntry *
stt_timed_entry_parse (const gchar *line)
{
  g_auto (GStrv) toks = NULL;
  SttTimedEntry *e;
  gchar *end = NULL;
  guint n;

  if (line[0] != '@')
    return NULL;
  toks = g_strsplit_set (line + 1, " \t", -1);
  n = g_strv_length (toks);
  if (n < 2 || !toks[0][0])
    return NULL;
  e = g_new0 (SttTimedEntry, 1);
  e->kind = g_strdup (toks[0]);
  e->duration = g_ascii_strtod (toks[1], &end);
  e->words = g_new0 (SttTimedWord, n);
  for (guint i = 2; i < n; i++) {
    gboolean q = FALSE;
    if (!toks[i][0])
      continue;
    if (!timed_word_parse (toks[i], &e->words[e->n_words], &q)) {
      stt_timed_entry_free (e);
      return NULL;
    }
    e->question = q;
    e->n_words++;
  }
  if (end == toks[1] || *end) {
    stt_timed_entry_free (e);
    return NULL;
  }
  return e;
}

/* Takes @lines; timed entries are parsed once here, "@lag MS" is a
 * setting rather than an utterance. */
static SttScript *
script_new (GPtrArray *lines)
{
  SttScript *script = g_new0 (SttScript, 1);
  GPtrArray *kept = g_ptr_array_new ();
  GPtrArray *timed = g_ptr_array_new ();

  script->ref = 1;
  script->lag_ms = SCRIPTED_LAG_MS;
  for (guint i = 0; i < lines->len; i++) {
    gchar *line = lines->pdata[i];
    if (g_str_has_prefix (line, "@lag ")) {
      script->lag_ms = (guint)g_ascii_strtoull (line + 5, NULL, 10);
      g_free (line);
      continue;
    }
    g_ptr_array_add (kept, line);
    g_ptr_array_add (timed, stt_timed_entry_parse (line));
  }
  g_ptr_array_free (lines, TRUE);
  g_ptr_array_add (kept, NULL);
  script->lines = (gchar **)g_ptr_array_free (kept, FALSE);
  script->timed = (SttTimedEntry **)g_ptr_array_free (timed, FALSE);
  return script;
}

SttScript *
stt_script_new_from_file (const gchar *path, GError **error)
{
  g_autofree gchar *text = NULL;
  g_auto (GStrv) raw = NULL;
  GPtrArray *lines;

  if (!g_file_get_contents (path, &text, NULL, error))
    return NULL;
  raw = g_strsplit (text, "\n", -1);
  lines = g_ptr_array_new ();
  for (guint i = 0; raw[i]; i++) {
    g_strstrip (raw[i]);
    if (raw[i][0] && raw[i][0] != '#')
      g_ptr_array_add (lines, g_strdup (raw[i]));
  }
  if (lines->len == 0) {
    g_ptr_array_free (lines, TRUE);
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "%s holds no transcript", path);
    return NULL;
  }
  return script_new (lines);
}

SttScript *
stt_script_new_from_string (const gchar *text)
{
  g_auto (GStrv) raw = g_strsplit (text, "|", -1);
  GPtrArray *lines = g_ptr_array_new ();

  for (guint i = 0; raw[i]; i++)
    g_ptr_array_add (lines, g_strdup (g_strstrip (raw[i])));
  return script_new (lines);
}

SttScript *
stt_script_ref (SttScript *script)
{
  g_atomic_int_inc (&script->ref);
  return script;
}

void
stt_script_unref (SttScript *script)
{
  if (script && g_atomic_int_dec_and_test (&script->ref)) {
    for (guint i = 0; script->lines[i]; i++)
      stt_timed_entry_free (script->timed[i]);
    g_free (script->timed);
    g_strfreev (script->lines);
    g_free (script);
  }
}

/* ---------- events ---------- */

static void
word_clear (gpointer p)
{
  SttWord *w = p;

  g_free (w->word);
  g_free (w->punctuated_word);
}

static GArray *
words_new (void)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (SttWord));

  g_array_set_clear_func (a, word_clear);
  return a;
}

static void
words_add (GArray *words, const gchar *word, gdouble start, gdouble end,
    gdouble confidence)
{
  SttWord w = { 0 };

  w.word = g_utf8_strdown (word, -1);
  w.start = start;
  w.end = end;
  w.confidence = confidence;
  g_array_append_val (words, w);
}

void
stt_event_free (SttEvent *ev)
{
  if (!ev)
    return;
  g_free (ev->transcript);
  if (ev->words)
    g_array_unref (ev->words);
  g_free (ev);
}

GPtrArray *
stt_events_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify)stt_event_free);
}

/* ---------- pocketsphinx ---------- */

/* Decoders are expensive to load (~0.5 s, tens of MB), so idle ones wait
 * here for the next session. Protected by ps_lock; ps_init() is serialised
 * too because sphinxbase keeps global logging state. */
static GMutex ps_lock;
static GQueue ps_pool = G_QUEUE_INIT;
static mfcc_t *ps_cmn_init; /* live CMN mean of a fresh decoder */
static gint ps_cmn_len;

static ps_decoder_t *
ps_acquire (GError **error)
{
  ps_decoder_t *ps;
  cmd_ln_t *config;
  const gchar *dir;
  g_autofree gchar *hmm = NULL, *lm = NULL, *dict = NULL;

  g_mutex_lock (&ps_lock);
  ps = g_queue_pop_head (&ps_pool);
  if (ps) {
    g_mutex_unlock (&ps_lock);
    return ps;
  }

  dir = g_getenv ("VOICEAGENT_POCKETSPHINX_MODEL");
  if (!dir || !*dir)
    dir = POCKETSPHINX_MODEL_DIR;
  hmm = g_build_filename (dir, "en-us", NULL);
  lm = g_build_filename (dir, "en-us.lm.bin", NULL);
  dict = g_build_filename (dir, "cmudict-en-us.dict", NULL);
  err_set_logfp (NULL);
  config = cmd_ln_init (NULL, ps_args (), TRUE, "-hmm", hmm, "-lm", lm, "-dict",
      dict, "-remove_silence", "no", NULL);
  ps = config ? ps_init (config) : NULL;
  if (config)
    cmd_ln_free_r (config);
  if (ps && !ps_cmn_init) {
    cmn_t *cmn = ps_get_feat (ps)->cmn_struct;
    ps_cmn_len = cmn->veclen;
    ps_cmn_init = g_memdup2 (cmn->cmn_mean, ps_cmn_len * sizeof (mfcc_t));
  }
  g_mutex_unlock (&ps_lock);
  if (!ps)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "pocketsphinx could not load the en-us model from %s "
        "(install pocketsphinx-en-us)",
        dir);
  return ps;
}

static void
ps_release (ps_decoder_t *ps)
{
  g_mutex_lock (&ps_lock);
  if (ps_pool.length < POCKETSPHINX_POOL_MAX) {
    g_queue_push_tail (&ps_pool, ps);
    ps = NULL;
  }
  g_mutex_unlock (&ps_lock);
  if (ps)
    ps_free (ps);
}

static gpointer
preload_main (gpointer data)
{
  guint n = GPOINTER_TO_UINT (data);
  g_autoptr (GPtrArray) loaded = g_ptr_array_new ();

  for (guint i = 0; i < n; i++) {
    g_autoptr (GError) error = NULL;
    ps_decoder_t *ps = ps_acquire (&error);
    if (!ps) {
      g_printerr ("voiceagent-emulator: %s\n", error->message);
      break;
    }
    g_ptr_array_add (loaded, ps);
  }
  for (guint i = 0; i < loaded->len; i++)
    ps_release (loaded->pdata[i]);
  return NULL;
}

static GThread *preload_thread; /* main thread only */

void
stt_pocketsphinx_preload (guint n)
{
  if (n == 0 || preload_thread)
    return;
  preload_thread =
      g_thread_new ("stt-preload", preload_main, GUINT_TO_POINTER (n));
}

void
stt_pocketsphinx_shutdown (void)
{
  ps_decoder_t *ps;

  if (preload_thread)
    g_thread_join (preload_thread);
  preload_thread = NULL;
  g_mutex_lock (&ps_lock);
  while ((ps = g_queue_pop_head (&ps_pool)))
    ps_free (ps);
  g_clear_pointer (&ps_cmn_init, g_free);
  g_mutex_unlock (&ps_lock);
}

/* "hello(2)" -> "hello"; NULL for fillers and sentence markers. */
static gchar *
clean_ps_word (const gchar *w)
{
  const gchar *paren;

  if (!w || !*w || w[0] == '<' || w[0] == '[' || w[0] == '+')
    return NULL;
  paren = strchr (w, '(');
  return paren ? g_strndup (w, paren - w) : g_strdup (w);
}

/* ---------- sessions ---------- */

struct _SttSession
{
  SttEngineKind kind;
  guint rate;
  SttOptions opt; /* opt.script is a reference */
  guint frame_len; /* samples in 10 ms */
  gint16 *frame; /* partial frame being filled */
  guint frame_fill;
  guint64 pos; /* samples of complete frames processed */

  /* endpointing */
  gdouble noise_db;
  guint onset_run; /* consecutive speech frames while idle */
  guint64 onset_start; /* first sample of that run */
  gboolean in_utt; /* an utterance is open in the engine */
  guint64 utt_start; /* first sample fed to the engine */
  guint64 speech_start; /* onset of the utterance */
  guint64 last_speech_end; /* end of its last speech frame */
  guint64 seg_cursor; /* where the next result segment starts */
  guint64 last_interim;
  gboolean ue_pending; /* words since the last UtteranceEnd */
  gdouble last_word_end;

  /* the last PREROLL_MS of audio, a ring of frames */
  gint16 *ring;
  guint ring_frames;
  guint ring_head; /* next frame to write */
  guint ring_count;

  /* engines */
  ps_decoder_t *ps;
  guint script_next;
  const gchar *script_text; /* scripted: the utterance being spoken */
  /* scripted, a timed entry: it spans the pauses inside it, so an onset
   * continues it until its words are all heard or its time has passed */
  const SttTimedEntry *timed; /* NULL for a plain transcript */
  guint64 entry_onset; /* the sample its times count from */
  guint word_cursor; /* words heard so far */
  guint seg_word; /* first word of the open segment */
  gboolean seg_complete; /* the result being made ends the entry */
};

gboolean
stt_engine_parse (const gchar *name, SttEngineKind *out)
{
  if (g_strcmp0 (name, "scripted") == 0)
    *out = STT_ENGINE_SCRIPTED;
  else if (g_strcmp0 (name, "pocketsphinx") == 0)
    *out = STT_ENGINE_POCKETSPHINX;
  else
    return FALSE;
  return TRUE;
}

guint
stt_engine_rate (SttEngineKind kind)
{
  return kind == STT_ENGINE_POCKETSPHINX ? 16000 : 0;
}

SttSession *
stt_session_new (
    SttEngineKind kind, guint rate, const SttOptions *options, GError **error)
{
  SttSession *s;

  g_return_val_if_fail (rate >= 1000, NULL);
  g_return_val_if_fail (
      stt_engine_rate (kind) == 0 || stt_engine_rate (kind) == rate, NULL);

  s = g_new0 (SttSession, 1);
  s->kind = kind;
  s->rate = rate;
  s->opt = *options;
  if (s->opt.script)
    stt_script_ref (s->opt.script);
  s->frame_len = rate / FRAMES_PER_S;
  s->frame = g_new0 (gint16, s->frame_len);
  s->noise_db = -90;
  s->ring_frames = PREROLL_MS * FRAMES_PER_S / 1000 + ONSET_FRAMES;
  s->ring = g_new0 (gint16, (gsize)s->ring_frames * s->frame_len);

  if (kind == STT_ENGINE_POCKETSPHINX) {
    s->ps = ps_acquire (error);
    if (!s->ps) {
      stt_session_free (s);
      return NULL;
    }
    /* a pooled decoder carries the last stream's cepstral mean and frame
     * count: reset both, so a stream decodes the same on any decoder */
    ps_start_stream (s->ps);
    g_mutex_lock (&ps_lock);
    cmn_live_set (ps_get_feat (s->ps)->cmn_struct, ps_cmn_init);
    g_mutex_unlock (&ps_lock);
  }
  return s;
}

void
stt_session_free (SttSession *s)
{
  if (!s)
    return;
  if (s->ps) {
    if (s->in_utt)
      ps_end_utt (s->ps);
    ps_release (s->ps);
  }
  stt_script_unref (s->opt.script);
  g_free (s->frame);
  g_free (s->ring);
  g_free (s);
}

gdouble
stt_session_get_time (SttSession *s)
{
  return (gdouble)(s->pos + s->frame_fill) / s->rate;
}

static gdouble
secs (SttSession *s, guint64 samples)
{
  return (gdouble)samples / s->rate;
}

static SttEvent *
event_new (SttEventType type)
{
  SttEvent *ev = g_new0 (SttEvent, 1);

  ev->type = type;
  return ev;
}

/* The timed entry has been said: all its words heard, or its audio (with a
 * little slack for the endpointer) is over at sample @now. */
static gboolean
timed_exhausted (SttSession *s, guint64 now)
{
  const SttTimedEntry *e = s->timed;

  return s->word_cursor >= e->n_words ||
      secs (s, now - s->entry_onset) > e->duration + 0.5;
}

/* Moves the word cursor over the words whose audio ended @lag_ms before
 * sample @now; TRUE if it moved. */
static gboolean
timed_hear (SttSession *s, guint64 now, guint lag_ms)
{
  gdouble t = secs (s, now - s->entry_onset) - lag_ms / 1000.0;
  guint before = s->word_cursor;

  while (s->word_cursor < s->timed->n_words &&
      s->timed->words[s->word_cursor].end <= t)
    s->word_cursor++;
  return s->word_cursor > before;
}

/* The words of the open segment of a timed entry; a final one takes every
 * word whose audio has ended, lag or not. */
static GArray *
timed_words (SttSession *s, gboolean final, guint64 now)
{
  GArray *words = words_new ();
  gdouble onset = secs (s, s->entry_onset);

  if (final)
    timed_hear (s, now, 0);
  for (guint i = s->seg_word; i < s->word_cursor; i++) {
    const SttTimedWord *w = &s->timed->words[i];
    words_add (
        words, w->word, onset + w->start, onset + w->end, SCRIPTED_CONFIDENCE);
    g_array_index (words, SttWord, words->len - 1).punctuated_word =
        g_strdup (w->text);
  }
  s->seg_complete = final && s->word_cursor == s->timed->n_words;
  return words;
}

/* A noise burst may never reach the recognizer (a voice activity gate in
 * front of it drops it), so a noise entry is optional: speech that goes on
 * well past the burst's length is the next entry, from the same onset. */
static void
timed_skip_noise (SttSession *s)
{
  gchar **lines = s->opt.script->lines;
  guint i;

  if (s->timed->n_words > 0 ||
      secs (s, s->last_speech_end - s->speech_start) <=
          s->timed->duration + NOISE_SLACK_S)
    return;
  i = s->script_next++ % g_strv_length (lines);
  s->script_text = lines[i];
  s->timed = s->opt.script->timed[i];
  s->word_cursor = s->seg_word = 0;
}

/* Counts the entry's times from this onset: the next word starts where
 * the speech does. A voice activity gate in front of the recognizer (as
 * silerovad gate=true is) drops most of a pause, so the audio after it
 * comes earlier than the entry's own times say; a real recognizer just
 * hears the words when they come. */
static void
anchor_entry (SttSession *s)
{
  guint64 lead = 0;

  if (s->timed && s->word_cursor < s->timed->n_words)
    lead = (guint64)(s->timed->words[s->word_cursor].start * s->rate);
  s->entry_onset = s->speech_start > lead ? s->speech_start - lead : 0;
}

/* Engine: open an utterance whose first sample is s->utt_start, feeding the
 * pre-roll ring (which ends at the current frame). */
static void
engine_begin (SttSession *s)
{
  if (s->kind == STT_ENGINE_SCRIPTED) {
    gchar **lines = s->opt.script ? s->opt.script->lines : NULL;
    guint n = lines ? g_strv_length (lines) : 0;
    guint i;
    if (s->timed && !timed_exhausted (s, s->speech_start)) {
      s->seg_word = s->word_cursor; /* a pause inside the entry */
      anchor_entry (s);
      return;
    }
    i = n ? s->script_next++ % n : 0;
    s->script_text = n ? lines[i] : "";
    s->timed = n ? s->opt.script->timed[i] : NULL;
    s->word_cursor = s->seg_word = 0;
    anchor_entry (s);
    return;
  }
  ps_start_utt (s->ps);
  for (guint i = 0; i < s->ring_count; i++) {
    guint f =
        (s->ring_head + s->ring_frames - s->ring_count + i) % s->ring_frames;
    ps_process_raw (
        s->ps, s->ring + (gsize)f * s->frame_len, s->frame_len, FALSE, FALSE);
  }
}

static void
engine_feed (SttSession *s, const gint16 *frame)
{
  if (s->kind == STT_ENGINE_POCKETSPHINX)
    ps_process_raw (s->ps, frame, s->frame_len, FALSE, FALSE);
}

/* Maps a pocketsphinx posterior (0..1, often tiny for right words) to a
 * confidence that reads like Deepgram's: 0.5 + 0.5 * p^(1/4). */
static gdouble
ps_confidence (SttSession *s, ps_seg_t *seg)
{
  int32 ascr, lscr, lback;
  gdouble p = logmath_exp (
      ps_get_logmath (s->ps), ps_seg_prob (seg, &ascr, &lscr, &lback));

  p = CLAMP (p, 0.0, 1.0);
  return 0.5 + 0.5 * pow (p, 0.25);
}

/* Engine: the words so far (@final FALSE) or of the whole utterance, which
 * it then closes (@final TRUE). @now is the end of the audio fed. */
static GArray *
engine_words (SttSession *s, gboolean final, guint64 now)
{
  GArray *words = words_new ();
  int base = -1;

  if (s->kind == STT_ENGINE_SCRIPTED && s->timed)
    return timed_words (s, final, now);
  if (s->kind == STT_ENGINE_SCRIPTED) {
    g_auto (GStrv) toks = g_strsplit_set (s->script_text, " \t", -1);
    guint n = 0, shown;
    guint64 from = s->speech_start;
    guint64 to = final ? s->last_speech_end : now;
    gdouble span;

    for (guint i = 0; toks[i]; i++)
      if (toks[i][0])
        toks[n++] = toks[i];
      else
        g_free (toks[i]);
    toks[n] = NULL;
    if (to <= from)
      to = from + 1;
    shown = n;
    if (!final)
      shown = MIN (n, (guint)(secs (s, to - from) * SCRIPTED_WORDS_PER_S));
    span = secs (s, to - from) / MAX (shown, 1);
    for (guint i = 0; i < shown; i++)
      words_add (words, toks[i], secs (s, from) + i * span,
          secs (s, from) + (i + 1) * span, SCRIPTED_CONFIDENCE);
    return words;
  }

  if (final)
    ps_end_utt (s->ps);
  /* pocketsphinx 5prealpha numbers frames across the utterances of a
   * decoder; the first segment (<s>) starts at the utterance's frame 0 */
  for (ps_seg_t *seg = ps_seg_iter (s->ps); seg; seg = ps_seg_next (seg)) {
    g_autofree gchar *w = clean_ps_word (ps_seg_word (seg));
    int sf, ef;
    ps_seg_frames (seg, &sf, &ef);
    if (base < 0)
      base = sf;
    sf -= base;
    ef -= base;
    if (!w)
      continue;
    words_add (words, w, secs (s, s->utt_start + (guint64)sf * s->frame_len),
        secs (s, s->utt_start + (guint64)(ef + 1) * s->frame_len),
        ps_confidence (s, seg));
  }
  return words;
}

/* Fills transcript, confidence and punctuated words of a result. */
static void
finish_result (SttSession *s, SttEvent *ev, GArray *words)
{
  GString *t = g_string_new (NULL);
  gdouble conf = 0;

  for (guint i = 0; i < words->len; i++) {
    SttWord *w = &g_array_index (words, SttWord, i);
    if (s->opt.punctuate) {
      /* a timed word is spelled as the corpus wrote it; a sentence ends
       * only where the caller's does */
      GString *p =
          g_string_new (w->punctuated_word ? w->punctuated_word : w->word);
      gboolean ends = s->timed ? s->seg_complete : TRUE;
      if (i == 0 || g_str_equal (w->word, "i") ||
          g_str_has_prefix (w->word, "i'"))
        p->str[0] = g_ascii_toupper (p->str[0]);
      if (ev->is_final && ends && i + 1 == words->len)
        g_string_append_c (p, s->timed && s->timed->question ? '?' : '.');
      g_free (w->punctuated_word);
      w->punctuated_word = g_string_free (p, FALSE);
    } else {
      g_clear_pointer (&w->punctuated_word, g_free);
    }
    if (i)
      g_string_append_c (t, ' ');
    g_string_append (t, s->opt.punctuate ? w->punctuated_word : w->word);
    conf += w->confidence;
  }
  ev->transcript = g_string_free (t, FALSE);
  ev->confidence = words->len ? conf / words->len : 0;
  ev->words = words;
}

/* Closes the open utterance (if any) at sample @end and emits its final
 * result. */
static void
emit_final (SttSession *s, guint64 end, gboolean speech_final,
    gboolean from_finalize, GPtrArray *events)
{
  SttEvent *ev = event_new (STT_EVENT_RESULT);
  GArray *words;

  s->seg_complete = FALSE;
  words = s->in_utt ? engine_words (s, TRUE, end) : words_new ();
  s->seg_word = s->word_cursor;
  ev->is_final = TRUE;
  ev->speech_final = speech_final;
  ev->from_finalize = from_finalize;
  ev->start = secs (s, s->seg_cursor);
  ev->duration = secs (s, end - s->seg_cursor);
  finish_result (s, ev, words);
  if (words->len && s->opt.interim_results && s->opt.utterance_end_ms) {
    s->last_word_end = g_array_index (words, SttWord, words->len - 1).end;
    s->ue_pending = TRUE;
  }
  g_ptr_array_add (events, ev);
  s->seg_cursor = end;
  s->in_utt = FALSE;
  s->onset_run = 0;
  /* the next utterance's pre-roll starts after this result */
  s->ring_count = 0;
}

static void
emit_interim (SttSession *s, guint64 now, GPtrArray *events)
{
  GArray *words = engine_words (s, FALSE, now);
  SttEvent *ev;

  if (words->len == 0) {
    g_array_unref (words);
    return;
  }
  ev = event_new (STT_EVENT_RESULT);
  ev->start = secs (s, s->seg_cursor);
  ev->duration = secs (s, now - s->seg_cursor);
  finish_result (s, ev, words);
  g_ptr_array_add (events, ev);
}

static gdouble
frame_db (const gint16 *x, guint n)
{
  gdouble acc = 0;

  for (guint i = 0; i < n; i++)
    acc += (gdouble)x[i] * x[i];
  acc /= n;
  return acc < 1 ? -100 : 10 * log10 (acc / (32768.0 * 32768.0));
}

/* A frame inside a timed entry: an interim result for each word as its
 * audio arrives. */
static void
timed_frame (SttSession *s, guint64 fe, GPtrArray *events)
{
  timed_skip_noise (s);
  if (s->timed && timed_hear (s, fe, s->opt.script->lag_ms) &&
      s->opt.interim_results)
    emit_interim (s, fe, events);
}

static void
process_frame (SttSession *s, const gint16 *frame, GPtrArray *events)
{
  guint64 fs = s->pos, fe = s->pos + s->frame_len;
  gdouble db = frame_db (frame, s->frame_len);
  gboolean speech =
      db > MAX (SPEECH_FLOOR_DB, s->noise_db + SPEECH_ABOVE_NOISE_DB);

  s->pos = fe;
  memcpy (s->ring + (gsize)s->ring_head * s->frame_len, frame,
      s->frame_len * sizeof (gint16));
  s->ring_head = (s->ring_head + 1) % s->ring_frames;
  s->ring_count = MIN (s->ring_count + 1, s->ring_frames);
  if (!speech)
    s->noise_db = MAX (-90, 0.95 * s->noise_db + 0.05 * db);

  if (!s->in_utt) {
    if (speech) {
      if (s->onset_run++ == 0)
        s->onset_start = fs;
    } else {
      s->onset_run = 0;
    }
    if (s->onset_run >= ONSET_FRAMES) {
      s->in_utt = TRUE;
      s->onset_run = 0;
      s->speech_start = s->onset_start;
      s->last_speech_end = fe;
      s->last_interim = fe;
      s->utt_start = fe - (guint64)s->ring_count * s->frame_len;
      engine_begin (s);
      if (s->opt.vad_events) {
        SttEvent *ev = event_new (STT_EVENT_SPEECH_STARTED);
        ev->timestamp = secs (s, s->speech_start);
        g_ptr_array_add (events, ev);
      }
      return;
    }
    if (s->ue_pending &&
        (secs (s, fe) - s->last_word_end) * 1000 >= s->opt.utterance_end_ms) {
      SttEvent *ev = event_new (STT_EVENT_UTTERANCE_END);
      ev->timestamp = s->last_word_end;
      g_ptr_array_add (events, ev);
      s->ue_pending = FALSE;
    }
    return;
  }

  engine_feed (s, frame);
  if (speech)
    s->last_speech_end = fe;
  {
    guint limit = s->opt.endpointing_ms
        ? MAX (s->opt.endpointing_ms, MIN_ENDPOINT_MS)
        : SEGMENT_SILENCE_MS;
    guint64 silence_ms = (fe - s->last_speech_end) * 1000 / s->rate;
    guint64 utt_ms = (fe - s->speech_start) * 1000 / s->rate;

    if (silence_ms >= limit) {
      emit_final (s, fe, s->opt.endpointing_ms > 0, FALSE, events);
    } else if (s->kind == STT_ENGINE_POCKETSPHINX && speech &&
        utt_ms >= MAX_UTTERANCE_MS) {
      emit_final (s, fe, FALSE, FALSE, events);
      s->in_utt = TRUE;
      s->speech_start = s->utt_start = s->last_speech_end = fe;
      s->last_interim = fe;
      s->ring_count = 0;
      engine_begin (s);
    } else if (s->timed) {
      timed_frame (s, fe, events);
    } else if (s->opt.interim_results &&
        (fe - s->last_interim) * 1000 / s->rate >= INTERIM_MS) {
      s->last_interim = fe;
      emit_interim (s, fe, events);
    }
  }
}

void
stt_session_push (
    SttSession *s, const gint16 *samples, gsize n, GPtrArray *events)
{
  while (n > 0) {
    guint take = MIN (n, s->frame_len - s->frame_fill);
    memcpy (s->frame + s->frame_fill, samples, take * sizeof (gint16));
    s->frame_fill += take;
    samples += take;
    n -= take;
    if (s->frame_fill == s->frame_len) {
      s->frame_fill = 0;
      process_frame (s, s->frame, events);
    }
  }
}

void
stt_session_finalize (SttSession *s, gboolean from_finalize, GPtrArray *events)
{
  guint64 end = s->pos + s->frame_fill;

  if (!s->in_utt && !from_finalize)
    return;
  if (s->in_utt && s->frame_fill && s->kind == STT_ENGINE_POCKETSPHINX)
    ps_process_raw (s->ps, s->frame, s->frame_fill, FALSE, FALSE);
  emit_final (s, end, FALSE, from_finalize, events);
}

/* voiceagent-emulator: speech synthesis engines (espeak-ng and tone).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * espeak-ng is not re-entrant: one worker thread (a GThreadPool of one
 * exclusive thread) owns it after initialisation, and jobs run in the order
 * they were queued. Results go back to the main thread through
 * g_main_context_invoke_full() on the default context. The tone engine is
 * cheap enough to run on the main thread; it still reports from an idle
 * callback so both engines behave the same for the caller.
 */
#include "tts.h"

#include <espeak-ng/speak_lib.h>
#include <gio/gio.h>
#include <math.h>
#include <string.h>

#define ESPEAK_RATE 22050
#define TONE_MS_PER_CHAR 62 /* ~16 characters per second, a brisk speaker */
#define TONE_COMMA_MS 150
#define TONE_SENTENCE_MS 250

typedef enum {
  ENGINE_ESPEAK,
  ENGINE_TONE,
} Engine;

struct _EmuTts
{
  Engine engine;
  GThreadPool *pool; /* espeak: one worker, owns espeak */
  gint espeak_rate; /* espeak's output rate; worker only after init */
};

struct _EmuTtsJob
{
  gint ref; /* atomic: the caller's + the pipeline's */
  EmuTts *tts;
  gchar *text;
  EmuAudioFormat format;
  gdouble speed;
  EmuTtsFunc func; /* main thread only */
  gpointer user_data;
  gint cancelled; /* atomic */
  guint idle_id; /* tone: pending delivery; main thread only */
  EmuTtsResult *result; /* written by the worker before delivery */
  GError *error;
};

void
emu_tts_result_free (EmuTtsResult *result)
{
  if (!result)
    return;
  g_clear_pointer (&result->audio, g_bytes_unref);
  g_clear_pointer (&result->chars, g_ptr_array_unref);
  g_clear_pointer (&result->start_ms, g_array_unref);
  g_clear_pointer (&result->duration_ms, g_array_unref);
  g_free (result);
}

static EmuTtsResult *
result_new (void)
{
  EmuTtsResult *r = g_new0 (EmuTtsResult, 1);

  r->chars = g_ptr_array_new_with_free_func (g_free);
  r->start_ms = g_array_new (FALSE, FALSE, sizeof (gint));
  r->duration_ms = g_array_new (FALSE, FALSE, sizeof (gint));
  return r;
}

static void
job_unref (EmuTtsJob *job)
{
  if (!g_atomic_int_dec_and_test (&job->ref))
    return;
  g_free (job->text);
  emu_tts_result_free (job->result);
  g_clear_error (&job->error);
  g_free (job);
}

gboolean
emu_audio_format_parse (const gchar *name, EmuAudioFormat *format)
{
  static const guint pcm_rates[] = { 8000, 16000, 22050, 24000, 44100 };

  if (!name)
    return FALSE;
  if (g_str_equal (name, "ulaw_8000")) {
    format->encoding = EMU_AUDIO_ULAW;
    format->rate = 8000;
    return TRUE;
  }
  if (!g_str_has_prefix (name, "pcm_"))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (pcm_rates); i++) {
    g_autofree gchar *want = g_strdup_printf ("pcm_%u", pcm_rates[i]);
    if (g_str_equal (name, want)) {
      format->encoding = EMU_AUDIO_PCM_S16LE;
      format->rate = pcm_rates[i];
      return TRUE;
    }
  }
  return FALSE;
}

/* ---------- signal processing ---------- */

guint8
emu_ulaw_encode (gint16 sample)
{
  const gint bias = 0x84, clip = 32635;
  gint s = sample, sign = 0, exponent = 7, mantissa;

  if (s < 0) {
    s = -s;
    sign = 0x80;
  }
  if (s > clip)
    s = clip;
  s += bias;
  for (gint mask = 0x4000; !(s & mask) && exponent > 0; mask >>= 1)
    exponent--;
  mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa);
}

#define SINC_ZERO_CROSSINGS 16
#define SINC_STEPS 256 /* table entries per unit of the argument */

static const gfloat *
sinc_table (void)
{
  static gsize once;
  static gfloat table[SINC_ZERO_CROSSINGS * SINC_STEPS + 2];

  if (g_once_init_enter (&once)) {
    for (guint i = 0; i < G_N_ELEMENTS (table); i++) {
      gdouble u = (gdouble)i / SINC_STEPS;
      gdouble w = u / SINC_ZERO_CROSSINGS; /* 0..1 over the half window */
      gdouble sinc = i == 0 ? 1.0 : sin (G_PI * u) / (G_PI * u);
      /* Blackman window, centred: 1 at u = 0, 0 at the last zero crossing. */
      gdouble win = w >= 1.0
          ? 0.0
          : 0.42 + 0.5 * cos (G_PI * w) + 0.08 * cos (2 * G_PI * w);
      table[i] = sinc * win;
    }
    g_once_init_leave (&once, 1);
  }
  return table;
}

GArray *
emu_resample (const gint16 *in, gsize n_in, guint in_rate, guint out_rate)
{
  const gfloat *table = sinc_table ();
  gdouble ratio = (gdouble)out_rate / in_rate;
  /* Cut off a little below the lower Nyquist frequency. */
  gdouble fc = MIN (1.0, ratio) * 0.95;
  gdouble half = SINC_ZERO_CROSSINGS / fc;
  gsize n_out = (gsize)floor (n_in * ratio);
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (gint16), n_out);

  if (in_rate == out_rate) {
    g_array_append_vals (out, in, n_in);
    return out;
  }
  g_array_set_size (out, n_out);
  for (gsize j = 0; j < n_out; j++) {
    gdouble x = j / ratio;
    gssize first = (gssize)ceil (x - half), last = (gssize)floor (x + half);
    gdouble acc = 0, norm = 0;

    first = MAX (first, 0);
    last = MIN (last, (gssize)n_in - 1);
    for (gssize k = first; k <= last; k++) {
      gdouble u = fabs (x - k) * fc * SINC_STEPS;
      gsize i = (gsize)u;
      gdouble frac = u - i, h;
      if (i >= SINC_ZERO_CROSSINGS * SINC_STEPS)
        continue;
      h = table[i] + (table[i + 1] - table[i]) * frac;
      acc += h * in[k];
      norm += h;
    }
    g_array_index (out, gint16, j) =
        norm > 0.0 ? (gint16)CLAMP (lrint (acc / norm), -32768, 32767) : 0;
  }
  return out;
}

/* Encodes mono S16 samples at the format's rate into the format's bytes. */
static GBytes *
encode (const gint16 *samples, gsize n, const EmuAudioFormat *format)
{
  if (format->encoding == EMU_AUDIO_ULAW) {
    guint8 *out = g_malloc (n ? n : 1);
    for (gsize i = 0; i < n; i++)
      out[i] = emu_ulaw_encode (samples[i]);
    return g_bytes_new_take (out, n);
  } else {
    gint16 *out = g_malloc (n ? n * 2 : 1);
    for (gsize i = 0; i < n; i++)
      out[i] = GINT16_TO_LE (samples[i]);
    return g_bytes_new_take (out, n * 2);
  }
}

/* Appends one entry per UTF-8 character of @text to @r->chars. */
static void
split_chars (const gchar *text, EmuTtsResult *r)
{
  for (const gchar *p = text; *p; p = g_utf8_next_char (p))
    g_ptr_array_add (r->chars, g_strndup (p, g_utf8_next_char (p) - p));
}

/* ---------- tone engine ---------- */

/* Appends @ms of a tone at @hz (0 = silence) with 8 ms fades. */
static void
tone_append (GArray *pcm, guint rate, guint ms, gdouble hz)
{
  gsize n = (gsize)rate * ms / 1000, fade = rate * 8 / 1000;
  gsize base = pcm->len;
  gdouble w = 2 * G_PI * hz / rate, c = 2 * cos (w);
  gdouble y1, y2; /* the two previous samples */

  g_array_set_size (pcm, base + n);
  if (hz <= 0) {
    memset (&g_array_index (pcm, gint16, base), 0, n * sizeof (gint16));
    return;
  }
  /* y[n] = 2 cos(w) y[n-1] - y[n-2] is a sine; start at amplitude 6000. */
  y1 = 0;
  y2 = -sin (w) * 6000;
  for (gsize i = 0; i < n; i++) {
    gdouble y = c * y1 - y2;
    gdouble gain = 1.0;
    if (i < fade)
      gain = (gdouble)i / fade;
    else if (n - i < fade)
      gain = (gdouble)(n - i) / fade;
    y2 = y1;
    y1 = y;
    g_array_index (pcm, gint16, base + i) = (gint16)(y * gain);
  }
}

/* One tone per word, its length proportional to the word's characters;
 * pauses at punctuation. Alignment is exact by construction. */
static EmuTtsResult *
tone_synthesize (const gchar *text, const EmuAudioFormat *format, gdouble speed)
{
  EmuTtsResult *r = result_new ();
  g_autoptr (GArray) pcm = g_array_new (FALSE, FALSE, sizeof (gint16));
  guint char_ms = MAX (20, (guint)(TONE_MS_PER_CHAR / CLAMP (speed, 0.5, 2.0)));
  guint word = 0, t = 0;

  split_chars (text, r);
  for (guint i = 0; i < r->chars->len;) {
    const gchar *c = g_ptr_array_index (r->chars, i);
    gunichar u = g_utf8_get_char (c);
    guint ms, len = 1;

    if (g_unichar_isalnum (u)) {
      /* A word: the run of alphanumerics (and apostrophes) from here. */
      while (i + len < r->chars->len) {
        gunichar n = g_utf8_get_char (g_ptr_array_index (r->chars, i + len));
        if (!g_unichar_isalnum (n) && n != '\'')
          break;
        len++;
      }
      ms = char_ms * len;
      tone_append (pcm, format->rate, ms, 180.0 + 40.0 * (word++ % 4));
    } else {
      ms = (u == ',' || u == ';' || u == ':')  ? TONE_COMMA_MS
          : (u == '.' || u == '!' || u == '?') ? TONE_SENTENCE_MS
          : g_unichar_isspace (u)              ? char_ms / 2
                                               : char_ms;
      tone_append (pcm, format->rate, ms, 0);
    }
    for (guint k = 0; k < len; k++) {
      gint s = t + ms * k / len, d = ms / len;
      g_array_append_val (r->start_ms, s);
      g_array_append_val (r->duration_ms, d);
    }
    t += ms;
    i += len;
  }
  r->audio = encode ((const gint16 *)pcm->data, pcm->len, format);
  return r;
}

static gboolean
tone_deliver (gpointer data)
{
  EmuTtsJob *job = data;

  job->idle_id = 0;
  job->func (g_steal_pointer (&job->result), NULL, job->user_data);
  job_unref (job); /* the caller's */
  return G_SOURCE_REMOVE;
}

/* ---------- espeak-ng engine ---------- */

typedef struct
{
  GArray *pcm; /* gint16 at espeak's rate */
  GArray *word_pos; /* gint: character index (0-based) */
  GArray *word_ms; /* gint: audio time of the word */
  const gint *cancelled;
} EspeakCollect;

/* What the running synthesis collects into. espeak calls back on the worker
 * thread, from inside espeak_Synth(); the events of a buffer do not always
 * carry our user_data, so the worker sets this before each call. */
static EspeakCollect *espeak_current;

static int
espeak_collect_cb (short *wav, int numsamples, espeak_EVENT *events)
{
  EspeakCollect *c = espeak_current;

  if (!c)
    return 0;
  for (espeak_EVENT *e = events; e->type != espeakEVENT_LIST_TERMINATED; e++) {
    if (e->type == espeakEVENT_WORD) {
      gint pos = MAX (0, e->text_position - 1), ms = e->audio_position;
      g_array_append_val (c->word_pos, pos);
      g_array_append_val (c->word_ms, ms);
    }
  }
  if (wav && numsamples > 0)
    g_array_append_vals (c->pcm, wav, numsamples);
  return g_atomic_int_get (c->cancelled) ? 1 : 0;
}

/* Character timings from espeak's word events: the characters from one word
 * start to the next share the time between them evenly. */
static void
espeak_align (EmuTtsResult *r, EspeakCollect *c, gint total_ms)
{
  guint n = r->chars->len, w = 0;
  gint seg_start_pos = 0, seg_start_ms = 0;

  g_array_set_size (r->start_ms, n);
  g_array_set_size (r->duration_ms, n);
  while (seg_start_pos < (gint)n) {
    gint next_pos = n, next_ms = total_ms;
    /* Skip word events that do not move forward. */
    while (w < c->word_pos->len &&
        g_array_index (c->word_pos, gint, w) <= seg_start_pos)
      w++;
    if (w < c->word_pos->len) {
      next_pos = MIN ((gint)n, g_array_index (c->word_pos, gint, w));
      next_ms =
          CLAMP (g_array_index (c->word_ms, gint, w), seg_start_ms, total_ms);
    }
    for (gint i = seg_start_pos; i < next_pos; i++) {
      gint len = next_pos - seg_start_pos;
      gint span = next_ms - seg_start_ms;
      g_array_index (r->start_ms, gint, i) =
          seg_start_ms + span * (i - seg_start_pos) / len;
      g_array_index (r->duration_ms, gint, i) = span / len;
    }
    seg_start_pos = next_pos;
    seg_start_ms = next_ms;
  }
}

static gboolean
espeak_deliver (gpointer data)
{
  EmuTtsJob *job = data;

  if (!g_atomic_int_get (&job->cancelled)) {
    job->func (g_steal_pointer (&job->result), job->error, job->user_data);
    job_unref (job); /* the caller's */
  }
  return G_SOURCE_REMOVE;
}

/* Runs on the worker thread, the only one that calls espeak. */
static void
espeak_worker (gpointer data, gpointer user_data)
{
  EmuTtsJob *job = data;
  EmuTts *tts = user_data;
  EmuTtsResult *r;
  EspeakCollect c;
  espeak_ERROR err;
  GSource *source;
  gint total_ms;

  if (g_atomic_int_get (&job->cancelled)) {
    job_unref (job);
    return;
  }

  c.pcm = g_array_new (FALSE, FALSE, sizeof (gint16));
  c.word_pos = g_array_new (FALSE, FALSE, sizeof (gint));
  c.word_ms = g_array_new (FALSE, FALSE, sizeof (gint));
  c.cancelled = &job->cancelled;
  espeak_SetParameter (espeakRATE,
      CLAMP ((gint)(espeakRATE_NORMAL * job->speed), espeakRATE_MINIMUM,
          espeakRATE_MAXIMUM),
      0);
  espeak_current = &c;
  err = espeak_Synth (job->text, strlen (job->text) + 1, 0, POS_CHARACTER, 0,
      espeakCHARS_UTF8, NULL, NULL);
  espeak_current = NULL;

  if (err != EE_OK) {
    g_set_error (&job->error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "espeak_Synth failed (%d)", err);
  } else {
    GArray *pcm;
    r = result_new ();
    split_chars (job->text, r);
    total_ms = (gint)((gint64)c.pcm->len * 1000 / tts->espeak_rate);
    espeak_align (r, &c, total_ms);
    pcm = emu_resample ((const gint16 *)c.pcm->data, c.pcm->len,
        tts->espeak_rate, job->format.rate);
    r->audio = encode ((const gint16 *)pcm->data, pcm->len, &job->format);
    g_array_unref (pcm);
    job->result = r;
  }
  g_array_unref (c.pcm);
  g_array_unref (c.word_pos);
  g_array_unref (c.word_ms);

  /* Hand the pipeline's reference to the main thread. Not
   * g_main_context_invoke(): from a thread without a thread-default context
   * it runs the function right here whenever it can acquire the default
   * context (e.g. while main() is shutting down), and the callbacks must run
   * on the main thread. */
  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (
      source, espeak_deliver, job, (GDestroyNotify)job_unref);
  g_source_attach (source, NULL);
  g_source_unref (source);
}

/* ---------- public ---------- */

EmuTts *
emu_tts_new (const gchar *name, GError **error)
{
  EmuTts *tts;

  if (g_strcmp0 (name, "tone") == 0) {
    tts = g_new0 (EmuTts, 1);
    tts->engine = ENGINE_TONE;
    return tts;
  }
  if (g_strcmp0 (name, "espeak-ng") != 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "unknown TTS engine \"%s\" (espeak-ng or tone)", name);
    return NULL;
  }

  tts = g_new0 (EmuTts, 1);
  tts->engine = ENGINE_ESPEAK;
  tts->espeak_rate = espeak_Initialize (AUDIO_OUTPUT_SYNCHRONOUS, 200, NULL, 0);
  if (tts->espeak_rate <= 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
        "espeak-ng did not start (espeak_Initialize returned %d); is "
        "espeak-ng-data installed?",
        tts->espeak_rate);
    g_free (tts);
    return NULL;
  }
  espeak_SetSynthCallback (espeak_collect_cb);
  espeak_SetVoiceByName ("en");
  /* From here on only the worker calls espeak. */
  tts->pool = g_thread_pool_new_full (
      espeak_worker, tts, (GDestroyNotify)job_unref, 1, TRUE, error);
  if (!tts->pool) {
    espeak_Terminate ();
    g_free (tts);
    return NULL;
  }
  return tts;
}

void
emu_tts_free (EmuTts *tts)
{
  if (!tts)
    return;
  if (tts->pool) {
    g_thread_pool_free (tts->pool, TRUE, TRUE);
    espeak_Terminate ();
  }
  g_free (tts);
}

EmuTtsJob *
emu_tts_synthesize (EmuTts *tts, const gchar *text,
    const EmuAudioFormat *format, gdouble speed, EmuTtsFunc func,
    gpointer user_data)
{
  EmuTtsJob *job = g_new0 (EmuTtsJob, 1);

  job->ref = 2; /* the caller's and the pipeline's */
  job->tts = tts;
  job->text = g_strdup (text);
  job->format = *format;
  job->speed = speed > 0 ? speed : 1.0;
  job->func = func;
  job->user_data = user_data;

  if (tts->engine == ENGINE_TONE) {
    job->result = tone_synthesize (text, format, job->speed);
    job->idle_id = g_idle_add_full (
        G_PRIORITY_DEFAULT, tone_deliver, job, (GDestroyNotify)job_unref);
  } else {
    g_thread_pool_push (tts->pool, job, NULL);
  }
  return job;
}

void
emu_tts_job_cancel (EmuTtsJob *job)
{
  g_atomic_int_set (&job->cancelled, 1);
  if (job->idle_id) {
    guint id = job->idle_id;
    job->idle_id = 0;
    g_source_remove (id); /* drops the pipeline's reference */
  }
  job_unref (job); /* the caller's */
}

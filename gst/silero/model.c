/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Silero VAD v5, as exported to silero_vad.onnx: an If on sr picks one of
 * two identical subgraphs (16 kHz, 8 kHz) that differ only in sizes:
 *
 *   input (context + chunk), reflect-padded on the right by `pad`
 *   STFT: Conv1d with a 2K x N basis, stride hop; magnitude   -> 4 x K
 *   encoder: 4 x (Conv1d k=3 p=1, strides 1 2 2 1; ReLU)      -> 1 x 128
 *   LSTM cell, hidden 128 (PyTorch gate order i f g o)
 *   decoder: ReLU, Conv1d 128 -> 1 (k=1), sigmoid             -> probability
 *
 *            context  chunk  pad   N    hop  K
 *   16 kHz   64       512    64    256  128  129
 *    8 kHz   32       256    32    128   64   65
 *
 * The STFT basis is a periodic Hann window times cos / -sin rows; when the
 * loaded basis is exactly that (checked at load) we use an FFT, else the
 * convolution as written. Conv and LSTM weights are stored transposed,
 * [in][out], in panels of 16 outputs (simd.h), so the kernels read each
 * weight once per chunk, in sequence.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "model.h"
#include "fft.h"

#include <math.h>
#include <string.h>

G_DEFINE_QUARK (silero - model - error - quark, silero_model_error)

#define HIDDEN 128
#define N_FRAMES 4
#define N_ENC 4
#define ALIGN 64

G_STATIC_ASSERT (SILERO_MAX_BATCH <= SILERO_SIMD_MAX_RUNS);

/* Conv1d, kernel 3, padding 1. Immutable after load. */
typedef struct
{
  guint in, out, stride;
  gfloat *w; /* 3 taps of [in][out] in panel order (simd.h), aligned */
  gfloat *b; /* [out], aligned */
} Conv;

/* Weights and sizes for one sample rate. Immutable after load. */
typedef struct
{
  guint rate, chunk, context, pad, n, hop, bins;
  gboolean is_dft; /* basis == Hann x (cos, -sin): the FFT applies */
  gfloat *basis; /* [2 bins][n], as in the file */
  gfloat *window; /* [n], row 0 of the basis */
  SileroFft fft;
  Conv enc[N_ENC];
  gfloat *lstm_wi; /* [hidden][4 hidden], W_ih^T in panel order */
  gfloat *lstm_wh; /* [hidden][4 hidden], W_hh^T in panel order */
  gfloat *lstm_b; /* [4 hidden], b_ih + b_hh */
  gfloat dec_w[HIDDEN];
  gfloat dec_b;
} Net;

struct _SileroModel
{
  gint ref_count;
  Net net[2]; /* [0] 16 kHz, [1] 8 kHz */
};

/* One stream. Owned and used by one thread at a time (the caller's).
 * Buffers hold SILERO_MAX_BATCH chunks, which go through the encoder and
 * the LSTM's input product together. */
struct _SileroState
{
  SileroModel *model;
  const Net *net;
  const SileroSimd *simd;
  gboolean use_fft;
  guint in_len; /* floats per chunk in input: context + chunk + pad,
                 * rounded up to a cache line */
  gfloat *mem; /* one aligned block holding all the buffers below */
  gfloat *input; /* [batch][in_len] */
  gfloat *mag; /* [batch][N_FRAMES][bins] */
  gfloat *act[N_ENC]; /* encoder outputs, [batch][frames][out] */
  gfloat *gx; /* [batch][4 hidden]: b + W_ih x, then the gates */
  gfloat *h; /* [HIDDEN] hidden state (carried) */
  gfloat *c; /* [HIDDEN] cell state (carried) */
  gfloat *work; /* [2 n] FFT scratch */
  gfloat *context; /* [context] last samples of the previous chunk */
};

static gfloat *
aligned_new0 (gsize n)
{
  return g_aligned_alloc0 (MAX (n, 1), sizeof (gfloat), ALIGN);
}

/* ---- Loading ---- */

static gboolean invalid (GError **error, const gchar *fmt, ...)
    G_GNUC_PRINTF (2, 3);

static gboolean
invalid (GError **error, const gchar *fmt, ...)
{
  va_list ap;
  gchar *msg;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, SILERO_MODEL_ERROR, SILERO_MODEL_ERROR_INVALID,
      "not a Silero VAD v5 model: %s", msg);
  g_free (msg);
  return FALSE;
}

/* Returns: (transfer none): the float constant of @graph whose name ends
 * with @suffix and whose shape is exactly @dims, or NULL with @error set. */
static const OnnxTensor *
find_weight (const OnnxGraph *graph, const gchar *suffix, guint n_dims,
    const gint64 *dims, GError **error)
{
  const OnnxTensor *t = NULL;

  for (guint i = 0; !t && i < graph->initializers->len; i++) {
    const OnnxTensor *c = g_ptr_array_index (graph->initializers, i);

    if (c->name && g_str_has_suffix (c->name, suffix))
      t = c;
  }
  for (guint i = 0; !t && i < graph->nodes->len; i++) {
    const OnnxNode *n = g_ptr_array_index (graph->nodes, i);

    if (g_strcmp0 (n->op_type, "Constant") == 0 && n->outputs->len == 1 &&
        g_str_has_suffix (g_ptr_array_index (n->outputs, 0), suffix))
      t = onnx_graph_find_tensor (graph, g_ptr_array_index (n->outputs, 0));
  }
  if (!t) {
    invalid (error, "no weight named *%s", suffix);
    return NULL;
  }
  if (!t->floats || t->n_dims != n_dims) {
    invalid (
        error, "weight %s is not a float tensor of rank %u", suffix, n_dims);
    return NULL;
  }
  for (guint i = 0; i < n_dims; i++)
    if (dims[i] >= 0 && t->dims[i] != dims[i]) {
      invalid (error,
          "weight %s has dimension %u = %" G_GINT64_FORMAT
          ", expected %" G_GINT64_FORMAT,
          suffix, i, t->dims[i], dims[i]);
      return NULL;
    }
  return t;
}

/* The basis is a DFT if row k is w[n] cos(2 pi k n / N) and row K + k is
 * -/+ w[n] sin(...) (the sign does not change a magnitude), with w = row 0.
 * The tolerance is far below what changes an output by 1e-6. */
static gboolean
basis_is_dft (const Net *net)
{
  guint n = net->n, K = net->bins;

  for (guint k = 0; k < K; k++)
    for (guint i = 0; i < n; i++) {
      gdouble a = 2.0 * G_PI * (gdouble)((k * i) % n) / n;
      gdouble w = net->window[i];
      gdouble re = net->basis[k * n + i], im = net->basis[(K + k) * n + i];

      if (fabs (re - w * cos (a)) > 1e-6 ||
          fabs (fabs (im) - fabs (w * sin (a))) > 1e-6 ||
          (im * sin (a) > 0 && fabs (im) > 1e-6))
        return FALSE;
    }
  return TRUE;
}

static gboolean
load_stft (Net *net, const OnnxGraph *g, GError **error)
{
  const gint64 dims[] = { -1, 1, -1 };
  const OnnxTensor *t =
      find_weight (g, "stft.forward_basis_buffer", 3, dims, error);

  if (!t)
    return FALSE;
  if (t->dims[2] == 256)
    net->rate = 16000;
  else if (t->dims[2] == 128)
    net->rate = 8000;
  else
    return invalid (error, "STFT of size %" G_GINT64_FORMAT, t->dims[2]);
  net->n = t->dims[2];
  net->bins = net->n / 2 + 1;
  if (t->dims[0] != 2 * net->bins)
    return invalid (
        error, "STFT basis with %" G_GINT64_FORMAT " rows", t->dims[0]);
  net->hop = net->n / 2;
  net->chunk = net->rate / 16000 * 512 + (net->rate == 8000) * 256;
  net->context = net->chunk / 8;
  net->pad = net->context;
  net->basis = g_memdup2 (t->floats, t->n_elements * sizeof (gfloat));
  net->window = g_memdup2 (t->floats, net->n * sizeof (gfloat));
  net->is_dft = basis_is_dft (net);
  silero_fft_init (&net->fft, net->n, net->window);
  return TRUE;
}

/* Copies W[out][in][3] to 3 matrices [in][out], in panel order. */
static gboolean
load_conv (Conv *c, const OnnxGraph *g, guint idx, guint in, guint out,
    guint stride, GError **error)
{
  gchar name[64];
  const gint64 wdims[] = { out, in, 3 }, bdims[] = { out };
  const OnnxTensor *w, *b;
  gfloat *tap;

  g_snprintf (name, sizeof name, "encoder.%u.reparam_conv.weight", idx);
  if (!(w = find_weight (g, name, 3, wdims, error)))
    return FALSE;
  g_snprintf (name, sizeof name, "encoder.%u.reparam_conv.bias", idx);
  if (!(b = find_weight (g, name, 1, bdims, error)))
    return FALSE;

  c->in = in;
  c->out = out;
  c->stride = stride;
  c->w = aligned_new0 (3 * in * out);
  c->b = aligned_new0 (out);
  tap = g_new (gfloat, in * out);
  for (guint k = 0; k < 3; k++) {
    for (guint o = 0; o < out; o++)
      for (guint i = 0; i < in; i++)
        tap[i * out + o] = w->floats[(o * in + i) * 3 + k];
    silero_simd_pack (tap, in, out, c->w + k * in * out);
  }
  g_free (tap);
  memcpy (c->b, b->floats, out * sizeof (gfloat));
  return TRUE;
}

/* Transposes W_ih and W_hh to [hidden][4 hidden], in panel order: the
 * input product can then run for several chunks at once, the recurrent
 * one chunk after chunk. */
static gboolean
load_lstm (Net *net, const OnnxGraph *g, GError **error)
{
  const gint64 wdims[] = { 4 * HIDDEN, HIDDEN }, bdims[] = { 4 * HIDDEN };
  const OnnxTensor *wi, *wh, *bi, *bh;
  gfloat *rows;

  if (!(wi = find_weight (g, "decoder.rnn.weight_ih", 2, wdims, error)) ||
      !(wh = find_weight (g, "decoder.rnn.weight_hh", 2, wdims, error)) ||
      !(bi = find_weight (g, "decoder.rnn.bias_ih", 1, bdims, error)) ||
      !(bh = find_weight (g, "decoder.rnn.bias_hh", 1, bdims, error)))
    return FALSE;

  rows = g_new (gfloat, 2 * HIDDEN * 4 * HIDDEN);
  net->lstm_wi = aligned_new0 (HIDDEN * 4 * HIDDEN);
  net->lstm_wh = aligned_new0 (HIDDEN * 4 * HIDDEN);
  net->lstm_b = aligned_new0 (4 * HIDDEN);
  for (guint r = 0; r < 4 * HIDDEN; r++) {
    for (guint i = 0; i < HIDDEN; i++) {
      rows[i * 4 * HIDDEN + r] = wi->floats[r * HIDDEN + i];
      rows[(HIDDEN + i) * 4 * HIDDEN + r] = wh->floats[r * HIDDEN + i];
    }
    net->lstm_b[r] = bi->floats[r] + bh->floats[r];
  }
  silero_simd_pack (rows, HIDDEN, 4 * HIDDEN, net->lstm_wi);
  silero_simd_pack (
      rows + HIDDEN * 4 * HIDDEN, HIDDEN, 4 * HIDDEN, net->lstm_wh);
  g_free (rows);
  return TRUE;
}

static gboolean
load_decoder (Net *net, const OnnxGraph *g, GError **error)
{
  const gint64 wdims[] = { 1, HIDDEN, 1 }, bdims[] = { 1 };
  const OnnxTensor *w, *b;

  if (!(w = find_weight (g, "decoder.decoder.2.weight", 3, wdims, error)) ||
      !(b = find_weight (g, "decoder.decoder.2.bias", 1, bdims, error)))
    return FALSE;
  memcpy (net->dec_w, w->floats, HIDDEN * sizeof (gfloat));
  net->dec_b = b->floats[0];
  return TRUE;
}

static gboolean
load_net (Net *net, const OnnxGraph *g, GError **error)
{
  static const guint chans[N_ENC + 1] = { 0, 128, 64, 64, 128 };
  static const guint strides[N_ENC] = { 1, 2, 2, 1 };

  if (!load_stft (net, g, error))
    return FALSE;
  for (guint i = 0; i < N_ENC; i++)
    if (!load_conv (&net->enc[i], g, i, i ? chans[i] : net->bins, chans[i + 1],
            strides[i], error))
      return FALSE;
  return load_lstm (net, g, error) && load_decoder (net, g, error);
}

static void
clear_net (Net *net)
{
  g_free (net->basis);
  g_free (net->window);
  silero_fft_clear (&net->fft);
  for (guint i = 0; i < N_ENC; i++) {
    g_aligned_free (net->enc[i].w);
    g_aligned_free (net->enc[i].b);
  }
  g_aligned_free (net->lstm_wi);
  g_aligned_free (net->lstm_wh);
  g_aligned_free (net->lstm_b);
  memset (net, 0, sizeof *net);
}

/* Returns: (transfer none): the top-level If node that switches on sr. */
static const OnnxNode *
find_rate_switch (const OnnxModel *onnx, GError **error)
{
  for (guint i = 0; i < onnx->graph->nodes->len; i++) {
    const OnnxNode *n = g_ptr_array_index (onnx->graph->nodes, i);
    const OnnxAttribute *a = onnx_node_get_attribute (n, "then_branch");
    const OnnxAttribute *b = onnx_node_get_attribute (n, "else_branch");

    if (g_strcmp0 (n->op_type, "If") == 0 && a && a->g && b && b->g)
      return n;
  }
  invalid (error, "no If node choosing between the 16 and 8 kHz networks");
  return NULL;
}

/**
 * silero_model_new_from_onnx:
 *
 * Extracts and checks the weights of both rates from @onnx (which may be
 * freed afterwards).
 *
 * Returns: (transfer full): a new model, or NULL with @error set
 * (SILERO_MODEL_ERROR_INVALID) if @onnx is not Silero VAD v5.
 */
SileroModel *
silero_model_new_from_onnx (const OnnxModel *onnx, GError **error)
{
  const OnnxNode *sw = find_rate_switch (onnx, error);
  SileroModel *m;
  const gchar *branches[] = { "then_branch", "else_branch" };
  Net nets[2] = { 0 };

  if (!sw)
    return NULL;
  m = g_new0 (SileroModel, 1);
  m->ref_count = 1;
  for (guint i = 0; i < 2; i++) {
    const OnnxAttribute *a = onnx_node_get_attribute (sw, branches[i]);

    if (!load_net (&nets[i], a->g, error))
      goto fail;
  }
  if (nets[0].rate == nets[1].rate) {
    invalid (error, "both branches are for %u Hz", nets[0].rate);
    goto fail;
  }
  /* Keep 16 kHz first whatever the branch order. */
  m->net[0] = nets[0].rate == 16000 ? nets[0] : nets[1];
  m->net[1] = nets[0].rate == 16000 ? nets[1] : nets[0];
  return m;

fail:
  clear_net (&nets[0]);
  clear_net (&nets[1]);
  g_free (m);
  return NULL;
}

/**
 * silero_model_load:
 * @filename: a silero_vad.onnx (v5)
 *
 * Returns: (transfer full): a new model, or NULL with @error set: a
 * G_FILE_ERROR if the file cannot be read, ONNX_ERROR if it is not valid
 * ONNX, SILERO_MODEL_ERROR if it is not Silero VAD v5.
 */
SileroModel *
silero_model_load (const gchar *filename, GError **error)
{
  g_autoptr (OnnxModel) onnx = onnx_model_load (filename, error);

  if (!onnx)
    return NULL;
  return silero_model_new_from_onnx (onnx, error);
}

SileroModel *
silero_model_ref (SileroModel *model)
{
  g_atomic_int_inc (&model->ref_count);
  return model;
}

void
silero_model_unref (SileroModel *model)
{
  if (!model || !g_atomic_int_dec_and_test (&model->ref_count))
    return;
  clear_net (&model->net[0]);
  clear_net (&model->net[1]);
  g_free (model);
}

/* Returns TRUE if the STFT of @rate runs as an FFT (see the file header). */
gboolean
silero_model_stft_is_dft (const SileroModel *model, guint rate)
{
  return model->net[rate == 8000].is_dft;
}

/* ---- Per-stream state ---- */

/**
 * silero_state_new:
 * @rate: 16000 or 8000
 *
 * Returns: (transfer full): a fresh stream state for @rate (zero LSTM
 * state, silent context), holding a reference on @model; NULL for another
 * rate.
 */
SileroState *
silero_state_new (SileroModel *model, guint rate)
{
  SileroState *s;
  const Net *net;
  gsize sizes[N_ENC + 8], total = 0;
  gfloat **bufs[N_ENC + 8];
  guint nb = 0, frames = N_FRAMES;

  if (rate != 16000 && rate != 8000)
    return NULL;
  s = g_new0 (SileroState, 1);
  s->model = silero_model_ref (model);
  s->net = net = &model->net[rate == 8000];
  s->simd = silero_simd_get ();
  s->use_fft = net->is_dft;

  /* Every buffer rounded up to whole cache lines, so each is aligned. */
#define ADD(ptr, n) (bufs[nb] = &(ptr), sizes[nb++] = ((n) + 15) & ~15)
  s->in_len = (net->context + net->chunk + net->pad + 15) & ~15;
  ADD (s->input, SILERO_MAX_BATCH * s->in_len);
  ADD (s->mag, SILERO_MAX_BATCH * N_FRAMES * net->bins);
  for (guint i = 0; i < N_ENC; i++) {
    frames = (frames - 1) / net->enc[i].stride + 1;
    ADD (s->act[i], SILERO_MAX_BATCH * frames * net->enc[i].out);
  }
  ADD (s->gx, SILERO_MAX_BATCH * 4 * HIDDEN);
  ADD (s->h, HIDDEN);
  ADD (s->c, HIDDEN);
  ADD (s->work, 2 * net->n);
  ADD (s->context, net->context);
#undef ADD
  for (guint i = 0; i < nb; i++)
    total += sizes[i];
  s->mem = aligned_new0 (total);
  total = 0;
  for (guint i = 0; i < nb; i++) {
    *bufs[i] = s->mem + total;
    total += sizes[i];
  }
  return s;
}

void
silero_state_free (SileroState *state)
{
  if (!state)
    return;
  g_aligned_free (state->mem);
  silero_model_unref (state->model);
  g_free (state);
}

/* Forgets the stream: zero LSTM state and a silent context, as at the
 * start of a stream (Silero's reset_states()). */
void
silero_state_reset (SileroState *state)
{
  memset (state->h, 0, HIDDEN * sizeof (gfloat));
  memset (state->c, 0, HIDDEN * sizeof (gfloat));
  memset (state->context, 0, state->net->context * sizeof (gfloat));
}

/* Returns the number of samples silero_state_process() takes: 512 at
 * 16 kHz, 256 at 8 kHz. */
guint
silero_state_get_chunk_size (const SileroState *state)
{
  return state->net->chunk;
}

/* Chooses the kernels (for tests and benchmarks; the default is the best
 * the CPU runs). */
void
silero_state_set_simd (SileroState *state, const SileroSimd *simd)
{
  state->simd = simd ? simd : silero_simd_get ();
}

/* FALSE computes the STFT as the model's convolution (the slow, literal
 * way); TRUE uses the FFT where the basis allows it. */
void
silero_state_set_use_fft (SileroState *state, gboolean use_fft)
{
  state->use_fft = use_fft && state->net->is_dft;
}

/* ---- Inference ---- */

static void
stft_conv (const Net *net, const gfloat *x, gfloat *mag)
{
  for (guint f = 0; f < N_FRAMES; f++)
    for (guint k = 0; k < net->bins; k++) {
      const gfloat *re = net->basis + k * net->n;
      const gfloat *im = net->basis + (net->bins + k) * net->n;
      const gfloat *xf = x + f * net->hop;
      gfloat sr = 0, si = 0;

      for (guint i = 0; i < net->n; i++) {
        sr += re[i] * xf[i];
        si += im[i] * xf[i];
      }
      mag[f * net->bins + k] = sqrtf (sr * sr + si * si);
    }
}

/* Magnitude spectra of the N_FRAMES frames of @x into @mag. */
static void
stft (SileroState *s, const gfloat *x, gfloat *mag)
{
  const Net *net = s->net;

  if (!s->use_fft) {
    stft_conv (net, x, mag);
    return;
  }
  for (guint f = 0; f < N_FRAMES; f += 2)
    silero_fft_magnitudes2 (&net->fft, s->simd, x + f * net->hop,
        x + (f + 1) * net->hop, mag + f * net->bins, mag + (f + 1) * net->bins,
        s->work);
}

/* For each of @n chunks (@x_cs floats apart, t_in frames each):
 * out[t] = ReLU (b + sum_k W_k x[stride t + k - 1]), zero padding outside
 * the chunk's frames. Each tap k is one call to mm_acc, over the output
 * frames whose input frame exists, for all chunks at once. Returns the
 * number of output frames per chunk (written t_out * out floats apart). */
static guint
conv_relu (const SileroSimd *simd, const Conv *c, const gfloat *x, gsize x_cs,
    guint t_in, guint n, gboolean sparse, gfloat *out)
{
  guint t_out = (t_in - 1) / c->stride + 1;
  gsize o_cs = t_out * c->out;
  SileroRun runs[SILERO_MAX_BATCH];

  for (guint t = 0; t < n * t_out; t++)
    memcpy (out + t * c->out, c->b, c->out * sizeof (gfloat));
  for (guint k = 0; k < 3; k++) {
    gint lo = 0, hi = t_out - 1;

    while ((gint)(c->stride * lo + k) - 1 < 0)
      lo++;
    while (hi >= lo && (gint)(c->stride * hi + k) - 1 > (gint)t_in - 1)
      hi--;
    if (hi < lo)
      continue;
    for (guint b = 0; b < n; b++) {
      runs[b].x = x + b * x_cs + (c->stride * lo + k - 1) * c->in;
      runs[b].out = out + b * o_cs + lo * c->out;
    }
    (sparse ? simd->mm_acc_sparse : simd->mm_acc) (c->w + k * c->in * c->out,
        c->in, c->out, c->stride * c->in, hi - lo + 1, runs, n);
  }
  for (gsize i = 0; i < n * o_cs; i++)
    out[i] = MAX (out[i], 0.0f);
  return t_out;
}

/* gx[b] = bias + W_ih x[b] for the @n chunks' LSTM inputs (rows of
 * HIDDEN), up to 4 chunks per run. */
static void
lstm_inputs (SileroState *s, const gfloat *x, guint n)
{
  const Net *net = s->net;
  SileroRun runs[SILERO_MAX_BATCH / 4 + 1];
  guint full = n / 4;

  for (guint b = 0; b < n; b++)
    memcpy (s->gx + b * 4 * HIDDEN, net->lstm_b, 4 * HIDDEN * sizeof (gfloat));
  for (guint r = 0; r <= full; r++) {
    runs[r].x = x + r * 4 * HIDDEN;
    runs[r].out = s->gx + r * 4 * 4 * HIDDEN;
  }
  /* x is a ReLU output: about 3/4 zeros, whose weight rows are skipped. */
  if (full)
    s->simd->mm_acc_sparse (
        net->lstm_wi, HIDDEN, 4 * HIDDEN, HIDDEN, 4, runs, full);
  if (n % 4)
    s->simd->mm_acc_sparse (
        net->lstm_wi, HIDDEN, 4 * HIDDEN, HIDDEN, n % 4, runs + full, 1);
}

/* One LSTM step on gate pre-activations @g (holding b + W_ih x): adds
 * W_hh h, then updates c and h in place. */
static void
lstm_step (SileroState *s, gfloat *g)
{
  SileroRun run = { s->h, g };

  s->simd->mm_acc (s->net->lstm_wh, HIDDEN, 4 * HIDDEN, 0, 1, &run, 1);
  /* PyTorch gate order: i, f through a sigmoid, g through tanh, o. */
  s->simd->sigmoid (g, 2 * HIDDEN);
  s->simd->tanh (g + 2 * HIDDEN, HIDDEN);
  s->simd->sigmoid (g + 3 * HIDDEN, HIDDEN);
  for (guint j = 0; j < HIDDEN; j++)
    s->c[j] = g[HIDDEN + j] * s->c[j] + g[j] * g[2 * HIDDEN + j];
  memcpy (s->h, s->c, HIDDEN * sizeof (gfloat));
  s->simd->tanh (s->h, HIDDEN);
  for (guint j = 0; j < HIDDEN; j++)
    s->h[j] *= g[3 * HIDDEN + j];
}

static gfloat
decode (SileroState *s)
{
  const Net *net = s->net;
  gfloat y = net->dec_b;

  for (guint j = 0; j < HIDDEN; j++)
    y += net->dec_w[j] * MAX (s->h[j], 0.0f);
  return 1.0f / (1.0f + expf (-y));
}

/* Places context + chunk in @x, reflects its end into the padding (ONNX
 * Pad mode=reflect: the edge sample is not repeated), and keeps the
 * chunk's tail as the next context. */
static void
prepare_input (SileroState *s, const gfloat *chunk, gfloat *x)
{
  const Net *net = s->net;
  guint len = net->context + net->chunk;

  memcpy (x, s->context, net->context * sizeof (gfloat));
  memcpy (x + net->context, chunk, net->chunk * sizeof (gfloat));
  for (guint j = 0; j < net->pad; j++)
    x[len + j] = x[len - 2 - j];
  memcpy (s->context, x + len - net->context, net->context * sizeof (gfloat));
}

/* Runs @n (<= SILERO_MAX_BATCH) consecutive chunks: everything but the
 * recurrence for all of them at once, then the LSTM steps in order. */
static void
process_batch (SileroState *s, const gfloat *samples, guint n, gfloat *probs)
{
  const Net *net = s->net;
  const gfloat *x = s->mag;
  gsize x_cs = N_FRAMES * net->bins;
  guint frames = N_FRAMES;

  for (guint b = 0; b < n; b++) {
    gfloat *in = s->input + b * s->in_len;

    prepare_input (s, samples + b * net->chunk, in);
    stft (s, in, s->mag + b * x_cs);
  }
  for (guint i = 0; i < N_ENC; i++) {
    /* Layers after the first read ReLU outputs, mostly zeros. */
    /* Layers after the first read ReLU outputs, mostly zeros. */
    frames =
        conv_relu (s->simd, &net->enc[i], x, x_cs, frames, n, i > 0, s->act[i]);
    x = s->act[i];
    x_cs = frames * net->enc[i].out;
  }
  /* The last encoder output (1 frame x HIDDEN per chunk) feeds the LSTM. */
  lstm_inputs (s, x, n);
  for (guint b = 0; b < n; b++) {
    lstm_step (s, s->gx + b * 4 * HIDDEN);
    probs[b] = decode (s);
  }
}

/**
 * silero_state_process_many:
 * @samples: @n_chunks * silero_state_get_chunk_size() samples in [-1, 1]
 * @probs: (out): @n_chunks probabilities
 *
 * Same results as silero_state_process() on each chunk in turn, but reads
 * the weights once per SILERO_MAX_BATCH chunks where it can (all but the
 * recurrent product), which is faster when several chunks are at hand.
 */
void
silero_state_process_many (
    SileroState *s, const gfloat *samples, guint n_chunks, gfloat *probs)
{
  while (n_chunks > 0) {
    guint n = MIN (n_chunks, SILERO_MAX_BATCH);

    process_batch (s, samples, n, probs);
    samples += n * s->net->chunk;
    probs += n;
    n_chunks -= n;
  }
}

/**
 * silero_state_process:
 * @chunk: silero_state_get_chunk_size() samples in [-1, 1]
 *
 * Runs the network on the next chunk of the stream, updating the state.
 *
 * Returns: the speech probability of @chunk, in [0, 1].
 */
gfloat
silero_state_process (SileroState *s, const gfloat *chunk)
{
  gfloat p;

  process_batch (s, chunk, 1, &p);
  return p;
}

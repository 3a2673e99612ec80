/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The Silero VAD v5 network in plain C. A SileroModel holds the weights of
 * both sample rates, read from the official silero_vad.onnx; it is
 * immutable and reference-counted, so many streams (and threads) share one
 * copy. A SileroState is one stream's recurrent state and scratch memory.
 */
#pragma once

#include <glib.h>

#include "onnx.h"
#include "simd.h"

G_BEGIN_DECLS

#define SILERO_MODEL_ERROR (silero_model_error_quark ())
GQuark silero_model_error_quark (void);

typedef enum {
  SILERO_MODEL_ERROR_INVALID, /* readable ONNX, but not Silero VAD v5 */
} SileroModelError;

/* silero_state_process_many() runs up to this many chunks per pass over
 * the weights. */
#define SILERO_MAX_BATCH 8

typedef struct _SileroModel SileroModel;
typedef struct _SileroState SileroState;

SileroModel *silero_model_load (const gchar *filename, GError **error);
SileroModel *silero_model_new_from_onnx (const OnnxModel *onnx, GError **error);
SileroModel *silero_model_ref (SileroModel *model);
void silero_model_unref (SileroModel *model);
gboolean silero_model_stft_is_dft (const SileroModel *model, guint rate);

SileroState *silero_state_new (SileroModel *model, guint rate);
void silero_state_free (SileroState *state);
void silero_state_reset (SileroState *state);
guint silero_state_get_chunk_size (const SileroState *state);
void silero_state_set_simd (SileroState *state, const SileroSimd *simd);
void silero_state_set_use_fft (SileroState *state, gboolean use_fft);
gfloat silero_state_process (SileroState *state, const gfloat *chunk);
void silero_state_process_many (
    SileroState *state, const gfloat *samples, guint n_chunks, gfloat *probs);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SileroModel, silero_model_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SileroState, silero_state_free)

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the ONNX reader (gst/silero/onnx.c) and the Silero
 * weight checks on top of it (model.c): any input must parse or fail
 * cleanly, without a crash, a leak or undefined behaviour. Built only with
 * clang (see meson.build and docs/elements/silerovad.md); the same entry
 * point also runs in every CI build through test-onnx-robust.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "onnx.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *err = NULL;
  OnnxModel *onnx = onnx_model_parse (data, size, &err);
  SileroModel *model;
  GString *dump;

  if (!onnx) {
    g_assert (err != NULL);
    g_error_free (err);
    return 0;
  }
  g_assert (err == NULL);
  dump = g_string_new (NULL);
  onnx_graph_dump (onnx->graph, dump, 0);
  g_string_free (dump, TRUE);

  model = silero_model_new_from_onnx (onnx, &err);
  if (model) {
    /* A model that loads must also run. */
    SileroState *state = silero_state_new (model, 16000);
    gfloat chunk[512] = { 0 };
    gfloat p = silero_state_process (state, chunk);

    g_assert (p >= 0.0f && p <= 1.0f);
    silero_state_free (state);
    silero_model_unref (model);
  } else {
    g_error_free (err);
  }
  onnx_model_free (onnx);
  return 0;
}

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstLlmInterruption:
 * @GST_LLM_INTERRUPTION_VAD: `speech-start` from the VAD cancels a reply in
 *   flight, as does `interrupt`
 * @GST_LLM_INTERRUPTION_EVENT: only an `interrupt` event cancels a reply
 * @GST_LLM_INTERRUPTION_CONFIRMED: `speech-start` while the agent speaks
 *   pauses its audio (`agent-pause`); words that are not a backchannel, or
 *   speech longer than `min-interruption-ms`, confirm the barge-in (the
 *   reply is cancelled and `interrupt` sent); otherwise the audio resumes
 *   (`agent-resume`). `interrupt` cancels at once.
 *
 * What makes llmtransform stop a reply (barge-in).
 */
typedef enum {
  GST_LLM_INTERRUPTION_VAD = 0,
  GST_LLM_INTERRUPTION_EVENT = 1,
  GST_LLM_INTERRUPTION_CONFIRMED = 2,
} GstLlmInterruption;

#define GST_TYPE_LLM_INTERRUPTION (gst_llm_interruption_get_type ())
GType gst_llm_interruption_get_type (void);

#define GST_TYPE_LLM_TRANSFORM (gst_llm_transform_get_type ())
G_DECLARE_FINAL_TYPE (
    GstLlmTransform, gst_llm_transform, GST, LLM_TRANSFORM, GstElement)

GST_ELEMENT_REGISTER_DECLARE (llmtransform);

G_END_DECLS

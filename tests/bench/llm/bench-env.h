/* The llm benchmarks' environment: run by hand from a build tree, they
 * find the emulator and the llm plugin there.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

void bench_use_build_tree (void);
gdouble bench_element_ttft_ms (GstBus *bus);

G_END_DECLS

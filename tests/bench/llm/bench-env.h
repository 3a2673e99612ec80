/* The llm benchmarks' environment: run by hand from a build tree, they
 * find the emulator and the llm plugin there.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void bench_use_build_tree (void);

G_END_DECLS

/* What a test does when it cannot run: skip on a developer's machine, fail
 * in CI.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The exit status meson counts as a skip. */
#define TEST_EXIT_SKIP 77

/* TRUE when the build was configured with -Dstrict=true (meson sets
 * VOICEAGENT_STRICT=1 in the tests' environment; scripts/test, hence CI,
 * always does). */
gboolean test_strict (void);

/* Says on stdout why the test cannot run (printf-style @format, e.g. what is
 * missing) and returns the status main() should exit with: TEST_EXIT_SKIP,
 * or 1 under strict, where the machine has everything and a suite that does
 * not run must not count as passed. The shell twin is tests/common/skip.sh. */
int test_cannot_run (const gchar *format, ...) G_GNUC_PRINTF (1, 2);

G_END_DECLS

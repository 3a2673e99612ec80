/* What a test does when it cannot run (test-skip.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include "test-skip.h"

gboolean
test_strict (void)
{
  return g_strcmp0 (g_getenv ("VOICEAGENT_STRICT"), "1") == 0;
}

int
test_cannot_run (const gchar *format, ...)
{
  g_autofree gchar *why = NULL;
  va_list args;

  va_start (args, format);
  why = g_strdup_vprintf (format, args);
  va_end (args);
  if (test_strict ()) {
    printf ("FAIL: %s (VOICEAGENT_STRICT=1: every test must run; "
            "scripts/setup installs what is missing)\n",
        why);
    fflush (stdout);
    return 1;
  }
  printf ("SKIP: %s\n", why);
  fflush (stdout);
  return TEST_EXIT_SKIP;
}

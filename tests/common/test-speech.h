/* Speech for the tests' callers: espeak-ng's voice as a 48 kHz WAV.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Says @text into $TMPDIR/@name-48k.wav (48 kHz mono, 0.3 s of silence
 * before it and @pad_after_s after); returns its path (free it), or NULL
 * with @error when espeak-ng or sox failed. */
gchar *test_speech_wav (
    const gchar *text, const gchar *name, guint pad_after_s, GError **error);

G_END_DECLS

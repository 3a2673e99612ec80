/* Speech for the tests' callers (test-speech.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "test-speech.h"

static gboolean
run (const gchar *const *argv, GError **error)
{
  gint status = -1;

  if (!g_spawn_sync (NULL, (gchar **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
          NULL, NULL, NULL, &status, error))
    return FALSE;
  return g_spawn_check_wait_status (status, error);
}

gchar *
test_speech_wav (
    const gchar *text, const gchar *name, guint pad_after_s, GError **error)
{
  gchar *raw = g_build_filename (g_get_tmp_dir (), name, NULL);
  gchar *wav = g_strconcat (raw, "-48k.wav", NULL);
  gchar *pad = g_strdup_printf ("%u", pad_after_s);
  const gchar *speak[] = { "espeak-ng", "-s", "130", "-v", "en-us+m1", "-w",
    raw, text, NULL };
  const gchar *convert[] = { "sox", raw, "-r", "48000", "-c", "1", wav, "pad",
    "0.3", pad, NULL };
  gboolean ok = run (speak, error) && run (convert, error);

  if (!ok) {
    g_prefix_error (error, "espeak-ng/sox for \"%s\": ", text);
    g_clear_pointer (&wav, g_free);
  }
  g_free (pad);
  g_free (raw);
  return wav;
}

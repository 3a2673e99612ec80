/* voiceagent: local backends (the emulator) for services without keys.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include "backends.h"
#include "paths.h"
#include "voice.h"

#define EMULATOR_KEY "local-emulator-key"
/* Spoken replies: short, no markup, one idea at a time. */
#define DEFAULT_SYSTEM_PROMPT                                                  \
  "You are a friendly voice assistant on a phone "                             \
  "call. Answer in one or two short spoken sentences, without lists, "         \
  "markdown or emoji."

#define START_TIMEOUT_US (20 * G_USEC_PER_SEC)

struct _VaBackends
{
  GSubprocess *emulator;
  gchar *port_file;
  /* --log-format json: the emulator's output, read line by line on the
   * main context and logged as ours, so the stream stays JSON */
  GDataInputStream *emulator_output;
  GCancellable *cancel;
};

static void
forward_emulator_line (GObject *source, GAsyncResult *result, gpointer data)
{
  GDataInputStream *in = G_DATA_INPUT_STREAM (source);
  GCancellable *cancel = data;
  gchar *line =
      g_data_input_stream_read_line_finish_utf8 (in, result, NULL, NULL);

  /* NULL: end of output, cancelled (the backends are gone) or not UTF-8. */
  if (line == NULL)
    return;
  g_print ("%s\n", line);
  g_free (line);
  g_data_input_stream_read_line_async (
      in, G_PRIORITY_LOW, cancel, forward_emulator_line, cancel);
}

static void
forward_emulator_output (VaBackends *b)
{
  GInputStream *out = g_subprocess_get_stdout_pipe (b->emulator);

  b->cancel = g_cancellable_new ();
  b->emulator_output = g_data_input_stream_new (out);
  g_data_input_stream_read_line_async (b->emulator_output, G_PRIORITY_LOW,
      b->cancel, forward_emulator_line, b->cancel);
}

static gchar *
emulator_path (const VaConfig *c)
{
  gchar *beside;

  if (c->emulator_path)
    return g_strdup (c->emulator_path);
  beside = va_paths_emulator ();
  if (g_file_test (beside, G_FILE_TEST_IS_EXECUTABLE))
    return beside;
  g_free (beside);
  return g_strdup ("voiceagent-emulator");
}

/* TRUE once the child has exited (a zombie waiting to be reaped);
 * g_subprocess_get_if_exited() may only be asked after a wait. */
static gboolean
child_exited (GSubprocess *proc)
{
  const gchar *pid = g_subprocess_get_identifier (proc);
  gchar *path, *stat = NULL;
  gboolean exited = TRUE;

  if (pid == NULL)
    return TRUE;
  path = g_strdup_printf ("/proc/%s/stat", pid);
  if (g_file_get_contents (path, &stat, NULL, NULL)) {
    const gchar *end = strrchr (stat, ')');
    exited = end && end[1] == ' ' && end[2] == 'Z';
  }
  g_free (stat);
  g_free (path);
  return exited;
}

static guint
wait_for_port (VaBackends *b, GError **error)
{
  gint64 deadline = g_get_monotonic_time () + START_TIMEOUT_US;
  gchar *text = NULL;
  guint port = 0;

  while (port == 0 && g_get_monotonic_time () < deadline) {
    if (child_exited (b->emulator))
      break;
    if (g_file_get_contents (b->port_file, &text, NULL, NULL))
      port = (guint)g_ascii_strtoull (text, NULL, 10);
    g_clear_pointer (&text, g_free);
    if (port == 0)
      g_usleep (20000);
  }
  if (port == 0)
    g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
        "the local emulator did not start (see its output above); set API "
        "keys to use the real services instead");
  return port;
}

static gboolean
spawn_emulator (VaBackends *b, const VaConfig *c, guint *port, GError **error)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  gchar **extra = NULL;
  gint fd = g_file_open_tmp ("voiceagent-emu-XXXXXX", &b->port_file, error);
  gboolean json_log = g_strcmp0 (c->log_format, "json") == 0;
  guint i;

  if (fd < 0)
    return FALSE;
  close (fd);
  g_ptr_array_add (argv, emulator_path (c));
  g_ptr_array_add (argv, g_strdup ("--port"));
  g_ptr_array_add (argv, g_strdup ("0"));
  g_ptr_array_add (argv, g_strdup ("--port-file"));
  g_ptr_array_add (argv, g_strdup (b->port_file));
  /* A warm speech recogniser: otherwise the first call's first words wait
   * for a decoder to load. --emulator-args may ask for more. */
  g_ptr_array_add (argv, g_strdup ("--stt-preload=1"));
  if (c->emulator_args &&
      !g_shell_parse_argv (c->emulator_args, NULL, &extra, error)) {
    g_ptr_array_unref (argv);
    return FALSE;
  }
  for (i = 0; extra && extra[i]; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_strfreev (extra);
  g_ptr_array_add (argv, NULL);
  b->emulator = g_subprocess_newv ((const gchar *const *)argv->pdata,
      json_log
          ? G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE
          : G_SUBPROCESS_FLAGS_NONE,
      error);
  g_ptr_array_unref (argv);
  if (b->emulator == NULL) {
    g_prefix_error (error, "cannot start the local emulator: ");
    return FALSE;
  }
  if (json_log)
    forward_emulator_output (b);
  *port = wait_for_port (b, error);
  return *port != 0;
}

/* A service is local when nothing about the real one was configured. */
static void
use_local (gchar **url, const gchar *local, const gchar *env, const gchar *what)
{
  g_free (*url);
  *url = g_strdup (local);
  g_setenv (env, EMULATOR_KEY, TRUE);
  g_print ("voiceagent: %s: local emulator at %s (set %s for the real one)\n",
      what, local, env);
}

static void
set_default (gchar **field, const gchar *value)
{
  if (*field == NULL || **field == '\0') {
    g_free (*field);
    *field = g_strdup (value);
  }
}

static void
export_key (const gchar *env, const gchar *key)
{
  if (key) {
    g_setenv (env, key, TRUE);
    gst_voice_redact_add_secret (key);
  }
}

VaBackends *
va_backends_start (VaConfig *c, GError **error)
{
  gboolean dg = !c->deepgram_key && !c->deepgram_url;
  gboolean el = !c->elevenlabs_key && !c->elevenlabs_url;
  gboolean llm = !c->llm_key && !c->llm_url;
  VaBackends *b = g_new0 (VaBackends, 1);
  guint port = 0;
  gchar *base;

  /* The elements read their keys from the environment, so no key is ever
   * written into a pipeline description. */
  export_key ("DEEPGRAM_API_KEY", c->deepgram_key);
  export_key ("ELEVENLABS_API_KEY", c->elevenlabs_key);
  export_key ("LLM_API_KEY", c->llm_key);
  set_default (&c->deepgram_url, "wss://api.deepgram.com/v1/listen");
  set_default (&c->elevenlabs_url, "wss://api.elevenlabs.io");
  set_default (&c->elevenlabs_voice, "21m00Tcm4TlvDq8ikWAM");
  set_default (&c->llm_model, "gpt-4o-mini");
  set_default (&c->system_prompt, DEFAULT_SYSTEM_PROMPT);
  if (!(dg || el || llm)) {
    set_default (&c->llm_url, "https://api.openai.com/v1");
    return b;
  }
  if (!spawn_emulator (b, c, &port, error)) {
    va_backends_stop (b);
    return NULL;
  }
  if (dg) {
    base = g_strdup_printf ("ws://127.0.0.1:%u/v1/listen", port);
    use_local (&c->deepgram_url, base, "DEEPGRAM_API_KEY", "speech-to-text");
    g_free (base);
  }
  if (el) {
    base = g_strdup_printf ("ws://127.0.0.1:%u", port);
    use_local (
        &c->elevenlabs_url, base, "ELEVENLABS_API_KEY", "text-to-speech");
    g_free (base);
  }
  if (llm) {
    base = g_strdup_printf ("http://127.0.0.1:%u/v1", port);
    use_local (&c->llm_url, base, "LLM_API_KEY", "LLM");
    g_free (base);
  }
  set_default (&c->llm_url, "https://api.openai.com/v1");
  return b;
}

void
va_backends_stop (VaBackends *b)
{
  if (b == NULL)
    return;
  if (b->cancel)
    g_cancellable_cancel (b->cancel);
  g_clear_object (&b->emulator_output);
  g_clear_object (&b->cancel);
  if (b->emulator) {
    g_subprocess_send_signal (b->emulator, SIGTERM);
    g_subprocess_wait (b->emulator, NULL, NULL);
    g_object_unref (b->emulator);
  }
  if (b->port_file) {
    g_unlink (b->port_file);
    g_free (b->port_file);
  }
  g_free (b);
}

/* voiceagent-janus-runner: a Janus with janus.plugin.voiceagent for scripts
 * (tests/bench/run --gateway, the browser test), started the way the C
 * tests start theirs (tests/common/janus-process.c), so the configuration
 * is written in one place.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *   voiceagent-janus-runner --url-file F --pid-file F [--event-loops N]
 *
 * Writes Janus's HTTP API URL and its process id once it answers, then
 * runs until SIGTERM or SIGINT, when it stops Janus, prints Janus's log
 * on stderr and removes its folder. Exit 77 (with the reason) when this machine cannot run Janus
 * with our plugin; the environment is the janus suite's (VOICEAGENT_JANUS,
 * VOICEAGENT_JANUS_HTTP, VOICEAGENT_JANUS_PLUGIN; meson devenv sets them).
 */
#include <glib-unix.h>
#include <glib/gstdio.h>
#include "janus-process.h"

static gboolean
quit (gpointer loop)
{
  g_main_loop_quit (loop);
  return G_SOURCE_REMOVE;
}

static gboolean
write_text (const gchar *path, const gchar *text)
{
  GError *error = NULL;

  if (g_file_set_contents (path, text, -1, &error))
    return TRUE;
  g_printerr ("voiceagent-janus-runner: %s\n", error->message);
  g_error_free (error);
  return FALSE;
}

static gboolean
publish (JanusProcess *janus, const gchar *url_file, const gchar *pid_file)
{
  gchar *pid = g_strdup_printf ("%u\n", janus_process_get_pid (janus));
  gchar *url = g_strconcat (janus_process_get_url (janus), "\n", NULL);
  gboolean ok = write_text (pid_file, pid) && write_text (url_file, url);

  g_free (url);
  g_free (pid);
  return ok;
}

int
main (int argc, char **argv)
{
  gchar *url_file = NULL, *pid_file = NULL, *missing;
  gint event_loops = 0, debug_level = 3;
  GOptionEntry entries[] = {
    { "url-file", 0, 0, G_OPTION_ARG_FILENAME, &url_file,
        "Write Janus's HTTP API URL here once it answers", "FILE" },
    { "pid-file", 0, 0, G_OPTION_ARG_FILENAME, &pid_file,
        "Write Janus's process id here", "FILE" },
    { "event-loops", 0, 0, G_OPTION_ARG_INT, &event_loops,
        "Janus's event_loops (0: a loop thread per handle)", "N" },
    { "debug-level", 0, 0, G_OPTION_ARG_INT, &debug_level,
        "Janus's debug_level, 1-7", "N" },
    { NULL }
  };
  GOptionContext *ctx = g_option_context_new ("- a Janus for scripts");
  GError *error = NULL;
  JanusProcessOptions o = { 0 };
  JanusProcess *janus;
  GMainLoop *loop;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || !url_file ||
      !pid_file || event_loops < 0 || debug_level < 1 || debug_level > 7) {
    g_printerr ("voiceagent-janus-runner: %s (see --help)\n",
        error ? error->message
              : "--url-file and --pid-file are needed; --event-loops >= 0; "
                "--debug-level 1-7");
    return 2;
  }
  g_option_context_free (ctx);
  if ((missing = janus_process_missing ())) {
    g_printerr ("voiceagent-janus-runner: %s\n", missing);
    g_free (missing);
    g_free (url_file);
    g_free (pid_file);
    return 77;
  }
  o.event_loops = (guint)event_loops;
  o.debug_level = (guint)debug_level;
  if ((janus = janus_process_start (&o)) == NULL ||
      !publish (janus, url_file, pid_file)) {
    janus_process_stop (janus, TRUE);
    g_free (url_file);
    g_free (pid_file);
    return 1;
  }
  loop = g_main_loop_new (NULL, FALSE);
  g_unix_signal_add (SIGTERM, quit, loop);
  g_unix_signal_add (SIGINT, quit, loop);
  g_main_loop_run (loop);
  g_main_loop_unref (loop);
  janus_process_stop (janus, TRUE);
  g_free (url_file);
  g_free (pid_file);
  return 0;
}

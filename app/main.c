/* voiceagent: WHIP/WHEP server that runs one voice-agent pipeline per call.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <sys/resource.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include "backends.h"
#include "vaconfig.h"
#include "records.h"
#include "server.h"
#include "voice.h"

GST_DEBUG_CATEGORY (voiceagent_debug);

typedef struct
{
  GMainLoop *loop;
  VaServer *server;
  guint signals;
} App;

static gboolean
drained (gpointer data)
{
  App *app = data;

  g_print ("voiceagent: all calls ended, exiting\n");
  g_main_loop_quit (app->loop);
  return G_SOURCE_REMOVE;
}

/* First SIGTERM/SIGINT drains; a second one quits at once. */
static gboolean
on_signal (gpointer data)
{
  App *app = data;

  if (++app->signals > 1) {
    g_print ("voiceagent: ending %u calls now\n",
        va_server_get_active_calls (app->server));
    va_server_end_calls (app->server);
    return G_SOURCE_CONTINUE;
  }
  g_print ("voiceagent: draining %u calls (no new calls; signal again to "
           "quit now)\n",
      va_server_get_active_calls (app->server));
  va_server_drain (app->server, drained, app);
  return G_SOURCE_CONTINUE;
}

static gchar *
default_pipelines_dir (void)
{
  gchar *src = g_build_filename (VOICEAGENT_SOURCE_DIR, "pipelines", NULL);

  /* Running from a checkout: its own templates; installed: the shared ones. */
  if (g_file_test (src, G_FILE_TEST_IS_DIR))
    return src;
  g_free (src);
  return g_strdup (VOICEAGENT_PIPELINES_DIR);
}

static gboolean
write_port_file (const VaConfig *c, guint port, GError **error)
{
  gchar *text;
  gboolean ok;

  if (c->port_file == NULL)
    return TRUE;
  text = g_strdup_printf ("%u\n", port);
  ok = g_file_set_contents (c->port_file, text, -1, error);
  g_free (text);
  return ok;
}

/* Every connection and every call holds open files, and the usual soft
 * limit (1024) is below --max-connections' default: at the limit,
 * accept() fails and GSocketService retries it at once, a core spinning
 * while nothing is served. (GLib, GStreamer and libnice poll(); nothing
 * here uses select(), which fails past 1024.) */
static void
raise_file_limit (void)
{
  struct rlimit l;

  if (getrlimit (RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit (RLIMIT_NOFILE, &l);
  }
}

static int
serve (VaConfig *config)
{
  App app = { 0 };
  VaBackends *backends;
  GError *error = NULL;
  guint port, sigterm, sigint;

  raise_file_limit ();
  if (config->pipelines_dir == NULL)
    config->pipelines_dir = default_pipelines_dir ();
  backends = va_backends_start (config, &error);
  if (backends == NULL)
    goto fail;
  app.server = va_server_new (config, &error);
  if (app.server == NULL)
    goto fail;
  port = va_server_get_port (app.server);
  if (!write_port_file (config, port, &error))
    goto fail;
  g_print ("voiceagent: listening on http://%s:%u/ (WHIP: POST /whip, "
           "templates in %s)\n",
      config->host, port, config->pipelines_dir);

  app.loop = g_main_loop_new (NULL, FALSE);
  sigterm = g_unix_signal_add (SIGTERM, on_signal, &app);
  sigint = g_unix_signal_add (SIGINT, on_signal, &app);
  g_main_loop_run (app.loop);
  g_source_remove (sigterm);
  g_source_remove (sigint);
  g_main_loop_unref (app.loop);
  va_server_free (app.server);
  va_backends_stop (backends);
  return 0;

fail:
  g_printerr ("voiceagent: %s\n", error->message);
  g_error_free (error);
  va_server_free (app.server);
  va_backends_stop (backends);
  return 1;
}

int
main (int argc, char **argv)
{
  VaConfig *config = va_config_new ();
  GError *error = NULL;
  int status;

  gst_init (&argc, &argv);
  gst_voice_init ();
  GST_DEBUG_CATEGORY_INIT (
      voiceagent_debug, "voiceagent", 0, "voiceagent server");
  if (!va_config_load (config, &argc, &argv, &error)) {
    g_printerr ("voiceagent: %s (see --help)\n", error->message);
    g_error_free (error);
    va_config_free (config);
    return 2;
  }
  if (argc >= 2 && g_str_equal (argv[1], "calls"))
    status = va_records_command (config, argc - 1, argv + 1);
  else if (argc >= 2) {
    g_printerr ("voiceagent: unknown command \"%s\" (see --help)\n", argv[1]);
    status = 2;
  } else
    status = serve (config);
  va_config_free (config);
  return status;
}

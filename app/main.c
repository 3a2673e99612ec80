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
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include "backends.h"
#include "vaconfig.h"
#include "oplog.h"
#include "paths.h"
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

/* --max-connections and every call's sockets need descriptors; the
 * usual soft limit (1024) is below what the defaults can use. */
static void
raise_fd_limit (void)
{
  struct rlimit r;

  if (getrlimit (RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit (RLIMIT_NOFILE, &r);
  }
}

/* Says at start what anyone who can reach the server may do. */
static void
warn_if_open (const VaConfig *c)
{
  gboolean loopback =
      g_str_has_prefix (c->host, "127.") || g_str_equal (c->host, "::1");

  if (!loopback && (c->token == NULL || *c->token == '\0'))
    g_printerr ("voiceagent: warning: no --token: anyone who reaches %s may "
                "place calls (and get TURN credentials)\n",
        c->host);
  if (c->admin_token == NULL && c->ops_listen == NULL)
    g_print ("voiceagent: /calls and /metrics answer no one: set "
             "--admin-token or --ops-listen to read them\n");
}

/* GLib 2.74 deadlocks when a thread running a class_init asks for a type
 * whose registration another thread has begun (g_once) and which adds an
 * interface (that needs the class-init lock the first thread holds): the
 * webhook thread's first SoupSession (whose class_init asks for
 * GInetSocketAddress) against the main thread's first GInetSocketAddress
 * hung about one start in 25. So the types the server's own threads use
 * (va-webhook, va-records, va-redis) are all made here, before any of
 * them starts. */
static void
make_shared_types (void)
{
  SoupSession *session = soup_session_new ();
  SoupMessage *msg = soup_message_new ("POST", "http://127.0.0.1/");

  g_type_ensure (G_TYPE_INET_ADDRESS);
  g_type_ensure (G_TYPE_INET_SOCKET_ADDRESS);
  g_type_ensure (G_TYPE_SOCKET_CLIENT);
  g_type_ensure (JSON_TYPE_BUILDER);
  g_type_ensure (JSON_TYPE_GENERATOR);
  g_type_ensure (JSON_TYPE_PARSER);
  g_object_unref (msg);
  g_object_unref (session);
}

static int
serve (VaConfig *config)
{
  App app = { 0 };
  VaBackends *backends = NULL;
  GError *error = NULL;
  guint port, sigterm, sigint;

  if (config->pipelines_dir == NULL)
    config->pipelines_dir = va_paths_pipelines_dir ();
  raise_fd_limit ();
  make_shared_types ();
  warn_if_open (config);
  if (!va_paths_register_plugins (&error))
    goto fail;
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
  VaLogFormat log_format;
  GError *error = NULL;
  int status;

  gst_init (&argc, &argv);
  gst_voice_init ();
  GST_DEBUG_CATEGORY_INIT (
      voiceagent_debug, "voiceagent", 0, "voiceagent server");
  va_log_hold ();
  if (!va_config_load (config, &argc, &argv, &error) ||
      !va_log_format_from_string (config->log_format, &log_format, &error)) {
    va_log_install (VA_LOG_FORMAT_TEXT);
    g_printerr ("voiceagent: %s (see --help)\n", error->message);
    g_error_free (error);
    va_config_free (config);
    return 2;
  }
  va_config_register_secrets (config);
  gst_voice_redact_add_secret (g_getenv ("PGPASSWORD"));
  va_log_install (log_format);
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

/* Starts and stops a real Janus (/usr/bin/janus) for a test.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Janus reads its configs folder from -F only, and loads every *.so of
 * one plugins folder and one transports folder: a folder of links gives
 * a test exactly our plugin and the HTTP transport, whatever else the
 * machine has installed.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include "janus-client.h"
#include "janus-process.h"
#include "test-process.h"

#define START_TIMEOUT_US (20 * G_USEC_PER_SEC)

struct _JanusProcess
{
  GSubprocess *proc;
  gchar *dir; /* the temporary folder: conf/, plugins/, ... */
  gchar *log;
  gchar *url;
};

/* TRUE when an interface other than loopback is up with an address. */
static gboolean
has_non_loopback (void)
{
  struct ifaddrs *all, *i;
  gboolean found = FALSE;

  if (getifaddrs (&all) != 0)
    return FALSE;
  for (i = all; i && !found; i = i->ifa_next)
    found = i->ifa_addr && (i->ifa_flags & IFF_UP) &&
        !(i->ifa_flags & IFF_LOOPBACK) &&
        (i->ifa_addr->sa_family == AF_INET ||
            i->ifa_addr->sa_family == AF_INET6);
  freeifaddrs (all);
  return found;
}

gchar *
janus_process_missing (void)
{
  const gchar *janus = g_getenv ("VOICEAGENT_JANUS");
  const gchar *plugin = g_getenv ("VOICEAGENT_JANUS_PLUGIN");
  const gchar *http = g_getenv ("VOICEAGENT_JANUS_HTTP");

  if (janus == NULL || !g_file_test (janus, G_FILE_TEST_IS_EXECUTABLE))
    return g_strdup ("janus is not installed (Debian package janus)");
  if (http == NULL || !g_file_test (http, G_FILE_TEST_EXISTS))
    return g_strdup ("Janus's HTTP transport libjanus_http.so is missing "
                     "(Debian package janus)");
  if (plugin == NULL || !g_file_test (plugin, G_FILE_TEST_EXISTS))
    return g_strdup ("libjanus_voiceagent.so is not built (Debian package "
                     "janus-dev, then reconfigure)");
  if (!has_non_loopback ())
    return g_strdup ("no network interface but loopback: Janus's ICE never "
                     "gathers loopback candidates");
  return NULL;
}

static gboolean
write_file (const gchar *dir, const gchar *name, const gchar *text)
{
  gchar *path = g_build_filename (dir, name, NULL);
  GError *error = NULL;
  gboolean ok = g_file_set_contents (path, text, -1, &error);

  if (!ok) {
    g_printerr ("cannot write %s: %s\n", path, error->message);
    g_error_free (error);
  }
  g_free (path);
  return ok;
}

/* Makes @dir/@sub holding one link, to @target. */
static gboolean
link_folder (const gchar *dir, const gchar *sub, const gchar *target)
{
  gchar *folder = g_build_filename (dir, sub, NULL);
  gchar *base = g_path_get_basename (target);
  gchar *link = g_build_filename (folder, base, NULL);
  gboolean ok = g_mkdir (folder, 0700) == 0 &&
      (target[0] == '\0' || symlink (target, link) == 0);

  if (!ok)
    g_printerr ("cannot make %s: %s\n", link, g_strerror (errno));
  g_free (link);
  g_free (base);
  g_free (folder);
  return ok;
}

static gboolean
write_config (JanusProcess *j, const JanusProcessOptions *o, guint port)
{
  gchar *conf = g_build_filename (j->dir, "conf", NULL);
  gchar *loops = o->event_loops
      ? g_strdup_printf ("event_loops = %u", o->event_loops)
      : g_strdup ("");
  gchar *main_cfg =
      g_strdup_printf ("general: {\n"
                       "  plugins_folder = \"%s/plugins\"\n"
                       "  transports_folder = \"%s/transports\"\n"
                       "  events_folder = \"%s/empty\"\n"
                       "  loggers_folder = \"%s/empty\"\n"
                       "  debug_level = %u\n"
                       "  debug_colors = false\n"
                       "  session_timeout = 60\n"
                       "  %s\n"
                       "}\n"
                       "media: { }\nnat: { }\nplugins: { }\ntransports: { }\n"
                       "events: { broadcast = false }\n",
          j->dir, j->dir, j->dir, j->dir, o->debug_level ? o->debug_level : 4,
          loops);
  gchar *http_cfg = g_strdup_printf (
      "general: { json = \"compact\" base_path = \"/janus\" http = true "
      "port = %u ip = \"127.0.0.1\" https = false }\n"
      "admin: { admin_http = false admin_https = false }\n",
      port);
  gboolean ok = g_mkdir (conf, 0700) == 0 &&
      write_file (conf, "janus.jcfg", main_cfg) &&
      write_file (conf, "janus.transport.http.jcfg", http_cfg) &&
      (o->plugin_config == NULL ||
          write_file (conf, "janus.plugin.voiceagent.jcfg", o->plugin_config));

  g_free (http_cfg);
  g_free (main_cfg);
  g_free (loops);
  g_free (conf);
  return ok &&
      link_folder (j->dir, "plugins", g_getenv ("VOICEAGENT_JANUS_PLUGIN")) &&
      link_folder (j->dir, "transports", g_getenv ("VOICEAGENT_JANUS_HTTP")) &&
      link_folder (j->dir, "empty", "");
}

static gboolean
spawn (JanusProcess *j)
{
  gchar *conf = g_build_filename (j->dir, "conf", NULL);
  const gchar *argv[] = { g_getenv ("VOICEAGENT_JANUS"), "-F", conf, "-o",
    NULL };
  GError *error = NULL;

  j->proc = test_process_spawn (
      argv, j->log, G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
  g_free (conf);
  if (j->proc == NULL) {
    g_printerr ("cannot start %s: %s\n", argv[0], error->message);
    g_error_free (error);
  }
  return j->proc != NULL;
}

/* Ready once /janus/info answers. */
static gboolean
answers (gpointer data)
{
  JanusProcess *j = data;
  JsonObject *info = janus_client_get_info (j->url, NULL);

  if (info)
    json_object_unref (info);
  return info != NULL;
}

JanusProcess *
janus_process_start (const JanusProcessOptions *options)
{
  JanusProcessOptions none = { 0 };
  JanusProcess *j = g_new0 (JanusProcess, 1);
  GError *error = NULL;
  guint port = test_process_free_port ();

  j->dir = g_dir_make_tmp ("janus-XXXXXX", &error);
  if (j->dir == NULL) {
    g_printerr ("cannot make a folder for janus: %s\n", error->message);
    g_error_free (error);
    janus_process_stop (j, FALSE);
    return NULL;
  }
  j->log = g_build_filename (j->dir, "janus.log", NULL);
  j->url = g_strdup_printf ("http://127.0.0.1:%u/janus", port);
  if (port == 0 || !write_config (j, options ? options : &none, port) ||
      !spawn (j) ||
      !test_process_wait_ready (
          j->proc, "janus", answers, j, START_TIMEOUT_US)) {
    janus_process_stop (j, TRUE);
    return NULL;
  }
  return j;
}

static void
print_log (JanusProcess *j)
{
  gchar *text = NULL;

  if (j->log && g_file_get_contents (j->log, &text, NULL, NULL))
    g_print ("---- janus output ----\n%s---- end of janus output ----\n", text);
  g_free (text);
}

void
janus_process_stop (JanusProcess *j, gboolean print)
{
  if (j == NULL)
    return;
  test_process_stop (&j->proc, SIGTERM, 10 * G_USEC_PER_SEC);
  if (print)
    print_log (j);
  if (j->dir)
    test_process_remove_tree (j->dir);
  g_free (j->dir);
  g_free (j->log);
  g_free (j->url);
  g_free (j);
}

const gchar *
janus_process_get_url (JanusProcess *j)
{
  return j->url;
}

guint
janus_process_get_pid (JanusProcess *j)
{
  const gchar *id = g_subprocess_get_identifier (j->proc);

  return id ? (guint)g_ascii_strtoull (id, NULL, 10) : 0;
}

guint
janus_process_count_threads (JanusProcess *j, const gchar *prefix)
{
  gchar *tasks = g_strdup_printf ("/proc/%u/task", janus_process_get_pid (j));
  GDir *dir = g_dir_open (tasks, 0, NULL);
  const gchar *tid;
  guint n = 0;

  while (dir && (tid = g_dir_read_name (dir)) != NULL) {
    gchar *path = g_build_filename (tasks, tid, "comm", NULL);
    gchar *comm = NULL;
    if (g_file_get_contents (path, &comm, NULL, NULL) &&
        (prefix == NULL || g_str_has_prefix (comm, prefix)))
      n++;
    g_free (comm);
    g_free (path);
  }
  if (dir)
    g_dir_close (dir);
  g_free (tasks);
  return n;
}

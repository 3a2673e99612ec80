/* The servers a test starts as children (test-process.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>
#include "test-process.h"

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, GPOINTER_TO_INT (data));
}

GSubprocessLauncher *
test_process_launcher_new (GSubprocessFlags flags, gint death_signal)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);

  if (death_signal)
    g_subprocess_launcher_set_child_setup (
        launcher, die_with_parent, GINT_TO_POINTER (death_signal), NULL);
  return launcher;
}

GSubprocess *
test_process_spawn (const gchar *const *argv, const gchar *log_path,
    GSubprocessFlags flags, GError **error)
{
  GSubprocessLauncher *launcher = test_process_launcher_new (flags, SIGTERM);
  GSubprocess *proc;

  if (log_path && (flags & G_SUBPROCESS_FLAGS_STDERR_MERGE))
    g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  else if (log_path)
    g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
  proc = g_subprocess_launcher_spawnv (launcher, argv, error);
  g_object_unref (launcher);
  return proc;
}

gboolean
test_process_child_exited (GSubprocess *proc)
{
  /* GLib drops the identifier when it reaps the child; until then an
   * exited child is a zombie ('Z' after the command's closing ')'). */
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

gboolean
test_process_wait_ready (GSubprocess *proc, const gchar *name,
    TestProcessReady ready, gpointer data, gint64 timeout_us)
{
  gint64 deadline = g_get_monotonic_time () + timeout_us;

  while (g_get_monotonic_time () < deadline) {
    if (ready (data))
      return TRUE;
    if (test_process_child_exited (proc)) {
      g_printerr ("%s exited before it was ready\n", name);
      return FALSE;
    }
    g_usleep (20000);
  }
  g_printerr ("%s was not ready within %.0f s\n", name,
      timeout_us / (gdouble)G_USEC_PER_SEC);
  return FALSE;
}

void
test_process_stop (GSubprocess **proc, gint signal, gint64 timeout_us)
{
  gint64 deadline = g_get_monotonic_time () + timeout_us;

  if (*proc == NULL)
    return;
  g_subprocess_send_signal (*proc, signal);
  while (
      !test_process_child_exited (*proc) && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  /* A program that ignores @signal must not hang the test. */
  if (!test_process_child_exited (*proc))
    g_subprocess_force_exit (*proc);
  g_subprocess_wait (*proc, NULL, NULL);
  g_clear_object (proc);
}

/* A socket bound to a free port of 127.0.0.1, or NULL; *@port is that
 * port. */
static GSocket *
bind_free_port (guint *port)
{
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any = g_inet_socket_address_new (lo, 0), *bound = NULL;
  GSocket *s = g_socket_new (
      G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);

  if (s && g_socket_bind (s, any, FALSE, NULL))
    bound = g_socket_get_local_address (s, NULL);
  *port = bound ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound))
                : 0;
  if (*port == 0)
    g_clear_object (&s);
  g_clear_object (&bound);
  g_object_unref (any);
  g_object_unref (lo);
  return s;
}

guint
test_process_free_port (void)
{
  guint port;
  GSocket *s = bind_free_port (&port);

  g_clear_object (&s);
  return port;
}

gboolean
test_process_free_ports (guint n, guint *ports)
{
  GPtrArray *held = g_ptr_array_new_with_free_func (g_object_unref);
  gboolean ok = TRUE;

  for (guint i = 0; i < n; i++) {
    GSocket *s = ok ? bind_free_port (&ports[i]) : NULL;
    ok = s != NULL;
    if (s)
      g_ptr_array_add (held, s);
  }
  if (!ok)
    memset (ports, 0, n * sizeof *ports);
  g_ptr_array_unref (held);
  return ok;
}

void
test_process_remove_tree (const gchar *path)
{
  GDir *dir;
  const gchar *name;

  if (g_file_test (path, G_FILE_TEST_IS_SYMLINK) ||
      !g_file_test (path, G_FILE_TEST_IS_DIR) ||
      (dir = g_dir_open (path, 0, NULL)) == NULL) {
    g_unlink (path);
    return;
  }
  while ((name = g_dir_read_name (dir)) != NULL) {
    gchar *child = g_build_filename (path, name, NULL);
    test_process_remove_tree (child);
    g_free (child);
  }
  g_dir_close (dir);
  g_rmdir (path);
}

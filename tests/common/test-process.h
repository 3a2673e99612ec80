/* The servers a test starts as children (Janus, redis-server, PostgreSQL,
 * the emulator, voiceagent): spawning one that dies with the test, waiting
 * until it is ready, stopping it, free loopback ports for it and removing
 * its temporary folder.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A launcher whose children get @death_signal (0: none) when the test
 * process dies: a test killed by its timeout must not leave a server
 * running, still holding the test runner's output pipe. */
GSubprocessLauncher *test_process_launcher_new (
    GSubprocessFlags flags, gint death_signal);

/* Starts @argv (argv[0] a path, or a name looked up in PATH) with @flags
 * as a child that gets SIGTERM when the test process dies. With @log_path
 * its stderr goes to that file, and its stdout too when @flags has
 * G_SUBPROCESS_FLAGS_STDERR_MERGE. */
GSubprocess *test_process_spawn (const gchar *const *argv,
    const gchar *log_path, GSubprocessFlags flags, GError **error);

/* TRUE once @proc has exited, reaped or not: g_subprocess_get_if_exited()
 * may only be asked after a wait. */
gboolean test_process_child_exited (GSubprocess *proc);

typedef gboolean (*TestProcessReady) (gpointer data);

/* Asks @ready (@data) every 20 ms until it says TRUE (then TRUE). FALSE,
 * saying why on stderr with @name, once @proc has exited or @timeout_us
 * has passed. */
gboolean test_process_wait_ready (GSubprocess *proc, const gchar *name,
    TestProcessReady ready, gpointer data, gint64 timeout_us);

/* Sends @signal to *@proc and waits for it to exit, SIGKILL after
 * @timeout_us; reaps it and clears *@proc. Nothing when *@proc is NULL. */
void test_process_stop (GSubprocess **proc, gint signal, gint64 timeout_us);

/* A TCP port free on 127.0.0.1 now, or 0. */
guint test_process_free_port (void);
/* @n distinct such ports in @ports, all held until all are chosen; FALSE
 * (and zeros) when there are not so many. */
gboolean test_process_free_ports (guint n, guint *ports);

/* Removes @path and everything under it; links are removed, not
 * followed. */
void test_process_remove_tree (const gchar *path);

G_END_DECLS

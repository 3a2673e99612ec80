/* Starts and stops a real Janus (/usr/bin/janus) for a test.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _JanusProcess JanusProcess;

typedef struct
{
  /* The text of janus.plugin.voiceagent.jcfg; NULL: no file (defaults). */
  const gchar *plugin_config;
  /* Janus's debug_level, 0-7; 0 means 4 (info). */
  guint debug_level;
  /* Janus's event_loops: handles share this many loop threads; 0 means
   * Janus's default, a loop thread per handle. */
  guint event_loops;
} JanusProcessOptions;

/* What this machine lacks to start Janus with our plugin (a sentence
 * naming the Debian package), or NULL. Reads VOICEAGENT_JANUS (the
 * binary), VOICEAGENT_JANUS_PLUGIN (libjanus_voiceagent.so) and
 * VOICEAGENT_JANUS_HTTP (Janus's libjanus_http.so), which meson sets,
 * and needs a network interface other than loopback: Janus's ICE never
 * gathers loopback candidates. Free the result. */
gchar *janus_process_missing (void);

/* Starts Janus as a child with a temporary configs folder of its own:
 * plugins_folder holds only a link to our plugin, transports_folder only
 * one to libjanus_http.so (HTTP on 127.0.0.1 at a free port, no admin
 * API), events and loggers folders empty. Waits until /janus/info
 * answers. The child gets SIGTERM if the test process dies. NULL (and
 * why, on stderr) if it does not start. */
JanusProcess *janus_process_start (const JanusProcessOptions *options);

/* SIGTERM (SIGKILL after 10 s), waits, removes the folder. With
 * @print_log, prints Janus's output first (for a failed test). */
void janus_process_stop (JanusProcess *janus, gboolean print_log);

/* "http://127.0.0.1:PORT/janus": owned by @janus. */
const gchar *janus_process_get_url (JanusProcess *janus);
guint janus_process_get_pid (JanusProcess *janus);

/* How many threads of Janus have a name starting with @prefix (all with
 * NULL). */
guint janus_process_count_threads (JanusProcess *janus, const gchar *prefix);

G_END_DECLS

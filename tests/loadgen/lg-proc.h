/* voiceagent-loadgen: what a process costs, read from /proc.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64 at_us; /* g_get_monotonic_time() of the reading */
  gdouble cpu_s; /* user + system time so far */
  gdouble rss_mb;
  guint threads;
  guint fds;
} LgProcSample;

gboolean lg_proc_sample (guint pid, LgProcSample *out);
/* The sum over several processes (of guint pids); FALSE if none could be
 * read. A process that has exited counts for nothing. */
gboolean lg_proc_sample_all (const GArray *pids, LgProcSample *out);

/* Percent of one core used between two samples. */
gdouble lg_proc_cpu_percent (const LgProcSample *a, const LgProcSample *b);

/* @name's samples in the lines of a Prometheus text page (a server's
 * /metrics), summed over their labels; -1 if the page does not have it. */
gdouble lg_counter_in (gchar **lines, const gchar *name);

G_END_DECLS

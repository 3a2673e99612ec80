/* voiceagent-loadgen: what a process costs, read from /proc.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "lg-proc.h"

static gboolean
read_cpu (guint pid, gdouble *cpu_s)
{
  gchar *path = g_strdup_printf ("/proc/%u/stat", pid);
  gchar *text = NULL, *p;
  unsigned long utime = 0, stime = 0;
  gboolean ok = FALSE;

  /* Field 2 (comm) may hold spaces: parse from its closing parenthesis.
   * utime and stime are fields 14 and 15. */
  if (g_file_get_contents (path, &text, NULL, NULL) &&
      (p = strrchr (text, ')')) != NULL)
    ok = sscanf (p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
             &utime, &stime) == 2;
  *cpu_s = (gdouble)(utime + stime) / sysconf (_SC_CLK_TCK);
  g_free (text);
  g_free (path);
  return ok;
}

static void
read_status (guint pid, LgProcSample *out)
{
  gchar *path = g_strdup_printf ("/proc/%u/status", pid);
  gchar *text = NULL, **lines, **l;
  guint64 kb;

  if (g_file_get_contents (path, &text, NULL, NULL)) {
    lines = g_strsplit (text, "\n", -1);
    for (l = lines; *l; l++) {
      if (sscanf (*l, "VmRSS: %" G_GUINT64_FORMAT, &kb) == 1)
        out->rss_mb = kb / 1024.0;
      else
        sscanf (*l, "Threads: %u", &out->threads);
    }
    g_strfreev (lines);
  }
  g_free (text);
  g_free (path);
}

static guint
count_fds (guint pid)
{
  gchar *path = g_strdup_printf ("/proc/%u/fd", pid);
  GDir *dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir && g_dir_read_name (dir))
    n++;
  if (dir)
    g_dir_close (dir);
  g_free (path);
  return n;
}

gboolean
lg_proc_sample (guint pid, LgProcSample *out)
{
  memset (out, 0, sizeof *out);
  out->at_us = g_get_monotonic_time ();
  if (!read_cpu (pid, &out->cpu_s))
    return FALSE;
  read_status (pid, out);
  out->fds = count_fds (pid);
  return TRUE;
}

gboolean
lg_proc_sample_all (const GArray *pids, LgProcSample *out)
{
  LgProcSample one;
  gboolean any = FALSE;
  guint i;

  memset (out, 0, sizeof *out);
  out->at_us = g_get_monotonic_time ();
  for (i = 0; pids && i < pids->len; i++) {
    if (!lg_proc_sample (g_array_index (pids, guint, i), &one))
      continue;
    any = TRUE;
    out->cpu_s += one.cpu_s;
    out->rss_mb += one.rss_mb;
    out->threads += one.threads;
    out->fds += one.fds;
  }
  return any;
}

gdouble
lg_proc_cpu_percent (const LgProcSample *a, const LgProcSample *b)
{
  gdouble wall = (b->at_us - a->at_us) / 1e6;

  return wall > 0 ? 100.0 * (b->cpu_s - a->cpu_s) / wall : 0;
}

/* @name's samples in a Prometheus text page, summed over their labels;
 * -1 if the page does not have the metric. */
gdouble
lg_counter_in (gchar **lines, const gchar *name)
{
  gchar *type = g_strdup_printf ("# TYPE %s ", name);
  gsize len = strlen (name);
  gdouble sum = -1;
  gchar **l;

  for (l = lines; *l; l++) {
    /* A labelled counter with no samples yet is 0, not unknown. */
    if (g_str_has_prefix (*l, type))
      sum = MAX (sum, 0);
    if (strncmp (*l, name, len) == 0 && ((*l)[len] == ' ' || (*l)[len] == '{'))
      sum = MAX (sum, 0) + g_ascii_strtod (strrchr (*l, ' ') + 1, NULL);
  }
  g_free (type);
  return sum;
}

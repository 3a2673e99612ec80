/* The llm benchmarks' environment (bench-env.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <gst/gst.h>
#include "voice.h"
#include "bench-env.h"

static GstPadProbeReturn
on_buffer (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  BenchProbe *p = data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstVoiceTranscriptMeta *meta = gst_buffer_get_voice_transcript_meta (buf);
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&p->lock);
  if (p->first_us == 0)
    p->first_us = now;
  if (meta && meta->speech_final)
    p->last = TRUE;
  g_cond_broadcast (&p->cond);
  g_mutex_unlock (&p->lock);
  return GST_PAD_PROBE_OK;
}

/* Watches @element's src pad. */
void
bench_probe_init (BenchProbe *p, GstElement *element)
{
  GstPad *src = gst_element_get_static_pad (element, "src");

  g_mutex_init (&p->lock);
  g_cond_init (&p->cond);
  p->first_us = 0;
  p->last = FALSE;
  gst_pad_add_probe (src, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, p, NULL);
  gst_object_unref (src);
}

/* Before a turn. */
void
bench_probe_reset (BenchProbe *p)
{
  g_mutex_lock (&p->lock);
  p->first_us = 0;
  p->last = FALSE;
  g_mutex_unlock (&p->lock);
}

/* Waits for the turn's first buffer (@whole: its last one) and returns
 * when the first went out; exits when none comes within 10 s. */
gint64
bench_probe_wait (BenchProbe *p, gboolean whole)
{
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC, t;

  g_mutex_lock (&p->lock);
  while ((whole ? !p->last : p->first_us == 0) &&
      g_cond_wait_until (&p->cond, &p->lock, deadline))
    ;
  t = p->first_us;
  g_mutex_unlock (&p->lock);
  if (t == 0) {
    g_printerr ("no answer within 10 s\n");
    exit (1);
  }
  return t;
}

/* After the element is gone. */
void
bench_probe_clear (BenchProbe *p)
{
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->cond);
}

/* Points at the build tree unless the environment already does. */
void
bench_use_build_tree (void)
{
  gchar *path;

  if (!g_getenv ("VOICEAGENT_EMULATOR")) {
    path = g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "emulator", "voiceagent-emulator", NULL);
    g_setenv ("VOICEAGENT_EMULATOR", path, TRUE);
    g_free (path);
  }
  if (!g_getenv ("GST_PLUGIN_PATH_1_0") && !g_getenv ("GST_PLUGIN_PATH")) {
    path = g_build_filename (VOICEAGENT_BUILD_DIR, "gst", "llm", NULL);
    g_setenv ("GST_PLUGIN_PATH_1_0", path, TRUE);
    g_free (path);
    path = g_build_filename (VOICEAGENT_BUILD_DIR, "bench-registry.dat", NULL);
    g_setenv ("GST_REGISTRY_1_0", path, TRUE);
    g_free (path);
    /* Only the plugins the tests use, scanned in-process (the forked
     * scanner would not carry a sanitizer runtime). */
    path = g_build_filename (
        VOICEAGENT_BUILD_DIR, "tests", "system-plugins", NULL);
    g_setenv ("GST_PLUGIN_SYSTEM_PATH_1_0", path, FALSE);
    g_setenv ("GST_REGISTRY_FORK", "no", FALSE);
    g_free (path);
  }
}

/* Returns the element's own measure of the time to first token (request
 * handed to the network thread → first token parsed) of the next
 * `first-token` on @bus, in ms; NAN when none comes within 5 s. */
gdouble
bench_element_ttft_ms (GstBus *bus)
{
  GstMessage *m;
  gdouble ms = NAN;

  while (isnan (ms) &&
      (m = gst_bus_timed_pop_filtered (
           bus, 5 * GST_SECOND, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (m);
    guint64 ns;
    if (g_strcmp0 (gst_structure_get_string (s, "event"), "first-token") == 0 &&
        gst_structure_get_uint64 (s, "ttft", &ns))
      ms = ns / 1e6;
    gst_message_unref (m);
  }
  return ms;
}

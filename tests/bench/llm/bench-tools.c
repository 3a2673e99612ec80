/* What a tool round adds to a turn, against voiceagent-emulator --latency
 * reference (LLM first token 110 ms, 80 tokens/s) and a local webhook that
 * answers after a fixed delay:
 *
 *   tool round overhead = T(tool turn) - T(plain turn) - webhook time
 *
 * T(plain turn): end-of-turn -> first text out of llmtransform, for a
 * question answered at once with the same words as the tool turn's answer.
 * T(tool turn): end-of-turn -> first text out when the model first calls
 * get_order_status ("Where is order 1234?"), the webhook answers, and the
 * follow-up request's answer is spoken. The webhook's own time is measured
 * at the webhook (request read -> answer handed to libsoup). Turns
 * alternate, so each pair sees the same load. Target: overhead <= LLM time
 * to first token + 20 ms (the second request's first token is the part
 * that cannot be avoided).
 *
 * Usage: bench-tools [TURNS [DELAY_MS...]]   (default 30 turns; 0 50 200)
 * Prints numbers; asserts nothing (tests/bench/llm/bench-tools-smoke only
 * checks that they are printed).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <libsoup/soup.h>

#include "voice.h"
#include "emulator-process.h"
#include "bench-env.h"
#include "http-receiver.h"

/* The webhook: tests/common's HTTP receiver, answering after a delay. */
typedef struct
{
  HttpReceiver *http;
  guint port;
  guint delay_ms; /* set between turns only */
  GMutex lock;
  gdouble last_ms; /* protected by lock: the last call's own time */
  gint64 arrived_us, answered_us; /* protected by lock: the last call's */
  guint calls; /* protected by lock */
} Webhook;

/* ---------- webhook ---------- */

/* The receiver's thread serves one call at a time, as the turns make
 * them: the delay can be slept there. */
static guint
webhook_answer (SoupMessageHeaders *headers, const gchar *body, gsize len,
    GString *reply, gpointer data)
{
  Webhook *w = data;
  gint64 arrived_us = g_get_monotonic_time ();

  if (w->delay_ms)
    g_usleep (w->delay_ms * G_TIME_SPAN_MILLISECOND);
  g_string_assign (reply, "{\"status\":\"shipped\",\"eta\":\"Friday\"}");
  g_mutex_lock (&w->lock);
  w->answered_us = g_get_monotonic_time ();
  w->arrived_us = arrived_us;
  w->last_ms = (w->answered_us - arrived_us) / 1000.0;
  w->calls++;
  g_mutex_unlock (&w->lock);
  return SOUP_STATUS_OK;
}

static Webhook *
webhook_start (void)
{
  Webhook *w = g_new0 (Webhook, 1);

  g_mutex_init (&w->lock);
  w->http = http_receiver_new (0, "/orders", webhook_answer, w);
  w->port = http_receiver_get_port (w->http);
  return w;
}

static void
webhook_stop (Webhook *w)
{
  http_receiver_free (w->http);
  g_mutex_clear (&w->lock);
  g_free (w);
}

/* ---------- numbers ---------- */

static int
compare (const void *a, const void *b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

static gdouble
percentile (GArray *ms, guint p)
{
  gdouble *v = (gdouble *)ms->data;

  qsort (v, ms->len, sizeof (gdouble), compare);
  return v[MIN (ms->len - 1, ms->len * p / 100)];
}

/* ---------- the turns ---------- */

typedef struct
{
  GstHarness *h;
  GstElement *element;
  GstBus *bus;
  BenchProbe probe;
  guint turn;
  gint64 t0, t1; /* the last turn's end-of-turn and first text */
} Agent;

/* Pushes one end-of-turn with @text and returns the time to the first
 * text out, in ms; *@ttft gets the element's time to first token. */
static gdouble
run_turn (Agent *a, const gchar *text, gdouble *ttft)
{
  gint64 t0, t1;
  GstBuffer *b;
  GstEvent *e;

  bench_probe_reset (&a->probe);
  t0 = g_get_monotonic_time ();
  gst_harness_push_event (a->h,
      gst_voice_event_new_end_of_turn (GST_CLOCK_TIME_NONE, ++a->turn, text));
  t1 = bench_probe_wait (&a->probe, FALSE);
  a->t0 = t0;
  a->t1 = t1;
  *ttft = bench_element_ttft_ms (a->bus);
  /* Let the turn finish (the rest of the answer) before the next one. */
  g_usleep (400 * 1000);
  while ((b = gst_harness_try_pull (a->h)))
    gst_buffer_unref (b);
  while ((e = gst_harness_try_pull_event (a->h)))
    gst_event_unref (e);
  gst_bus_set_flushing (a->bus, TRUE);
  gst_bus_set_flushing (a->bus, FALSE);
  return (t1 - t0) / 1000.0;
}

static void
bench_delay (Agent *a, Webhook *w, guint delay_ms, guint turns)
{
  GArray *plain = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *tool = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *hook = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *over = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *ttfts = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *to_hook = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *from_hook = g_array_new (FALSE, FALSE, sizeof (gdouble));
  gdouble ttft_p50, over_p50;

  w->delay_ms = delay_ms;
  for (guint i = 0; i < turns; i++) {
    gdouble ttft, unused, tp, tt, wh, o;
    guint calls;
    tp = run_turn (a, "status please", &ttft);
    g_mutex_lock (&w->lock);
    calls = w->calls;
    g_mutex_unlock (&w->lock);
    tt = run_turn (a, "Where is order 1234?", &unused);
    g_mutex_lock (&w->lock);
    wh = w->last_ms;
    o = (w->arrived_us - a->t0) / 1000.0;
    g_array_append_val (to_hook, o);
    o = (a->t1 - w->answered_us) / 1000.0;
    g_array_append_val (from_hook, o);
    if (w->calls != calls + 1) {
      g_printerr ("the tool turn did not call the webhook once\n");
      exit (1);
    }
    g_mutex_unlock (&w->lock);
    o = tt - tp - wh;
    g_array_append_val (plain, tp);
    g_array_append_val (tool, tt);
    g_array_append_val (hook, wh);
    g_array_append_val (over, o);
    g_array_append_val (ttfts, ttft);
  }
  ttft_p50 = percentile (ttfts, 50);
  over_p50 = percentile (over, 50);
  printf ("webhook %3u ms: T(plain) p50 %7.1f ms, T(tool) p50 %7.1f ms, "
          "webhook p50 %6.1f ms\n",
      delay_ms, percentile (plain, 50), percentile (tool, 50),
      percentile (hook, 50));
  printf ("webhook %3u ms: end-of-turn -> webhook request p50 %.1f ms "
          "(TTFT + the call's streamed arguments), webhook answer -> first "
          "text p50 %.1f ms (the follow-up's TTFT + first clause)\n",
      delay_ms, percentile (to_hook, 50), percentile (from_hook, 50));
  printf ("webhook %3u ms: tool round overhead = T(tool turn) - T(plain "
          "turn) - webhook time: p50 %.1f ms, p95 %.1f ms; TTFT p50 %.1f ms; "
          "target <= TTFT + 20 ms: %s\n",
      delay_ms, over_p50, percentile (over, 95), ttft_p50,
      over_p50 <= ttft_p50 + 20 ? "met" : "NOT met");
  g_array_unref (plain);
  g_array_unref (tool);
  g_array_unref (hook);
  g_array_unref (over);
  g_array_unref (ttfts);
  g_array_unref (to_hook);
  g_array_unref (from_hook);
}

static gchar *
write_tools_file (guint port)
{
  g_autofree gchar *json = g_strdup_printf (
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_order_status\","
      "\"description\":\"Look up an order.\",\"parameters\":{\"type\":"
      "\"object\",\"properties\":{\"order_id\":{\"type\":\"string\"}},"
      "\"required\":[\"order_id\"]}},\"webhook\":{\"url\":"
      "\"http://127.0.0.1:%u/orders\",\"timeout_ms\":5000}}]",
      port);
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("bench-tools-XXXXXX.json", &path, NULL);

  if (fd < 0 || write (fd, json, strlen (json)) != (gssize)strlen (json)) {
    g_printerr ("cannot write the tools file\n");
    exit (1);
  }
  close (fd);
  return path;
}

int
main (int argc, char **argv)
{
  /* The plain turn's answer is the tool turn's follow-up, word for word:
   * the same first clause, so only the tool round differs. */
  static const gchar rules[] = "{\"rules\":[{\"pattern\":\"status please\","
                               "\"reply\":\"Order 1234 is shipped.\"}]}";
  gchar *rules_path = NULL;
  gint fd = g_file_open_tmp ("bench-rules-XXXXXX.json", &rules_path, NULL);
  const gchar *args[] = { "--quiet", "--latency", "reference", "--llm-rules",
    rules_path, NULL };
  guint turns = argc > 1 ? (guint)atoi (argv[1]) : 30;
  guint default_delays[] = { 0, 50, 200 };
  Webhook *w;
  EmuProcess *emu;
  gchar *tools, *url;
  Agent a = { 0 };
  gdouble unused;

  if (fd < 0 || write (fd, rules, strlen (rules)) != (gssize)strlen (rules))
    return 1;
  close (fd);
  bench_use_build_tree ();
  gst_init (&argc, &argv);
  gst_voice_init ();
  turns = MAX (turns, 1);
  if (!(emu = emu_process_start (args)))
    return 1;
  w = webhook_start ();
  tools = write_tools_file (w->port);
  url = g_strconcat (emu_process_get_http_url (emu), "/v1", NULL);

  a.element = gst_element_factory_make ("llmtransform", NULL);
  if (!a.element) {
    g_printerr ("llmtransform not found (GST_PLUGIN_PATH?)\n");
    return 1;
  }
  g_object_set (a.element, "url", url, "api-key", "bench", "tools-file", tools,
      "tool-filler-ms", 0, "speculative", FALSE, NULL);
  a.bus = gst_bus_new ();
  gst_element_set_bus (a.element, a.bus);
  a.h = gst_harness_new_with_element (a.element, "sink", "src");
  gst_harness_use_systemclock (a.h);
  gst_harness_set_src_caps_str (a.h, "text/x-raw,format=utf8");
  bench_probe_init (&a.probe, a.element);

  printf ("llmtransform tool round, emulator --latency reference (LLM first "
          "token 110 ms, 80 tokens/s), %u turn pairs per delay\n",
      turns);
  /* Warm-up (connections, first allocations): not counted. */
  run_turn (&a, "status please", &unused);
  run_turn (&a, "Where is order 1234?", &unused);
  if (argc > 2) {
    for (gint i = 2; i < argc; i++)
      bench_delay (&a, w, (guint)atoi (argv[i]), turns);
  } else {
    for (guint i = 0; i < G_N_ELEMENTS (default_delays); i++)
      bench_delay (&a, w, default_delays[i], turns);
  }

  gst_harness_teardown (a.h);
  gst_object_unref (a.element);
  gst_bus_set_flushing (a.bus, TRUE);
  gst_object_unref (a.bus);
  bench_probe_clear (&a.probe);
  emu_process_stop (emu);
  webhook_stop (w);
  g_unlink (tools);
  g_unlink (rules_path);
  g_free (rules_path);
  g_free (tools);
  g_free (url);
  return 0;
}

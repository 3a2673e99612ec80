/* llmtransform's own latency, against voiceagent-emulator --latency
 * reference (LLM first token 110 ms, 80 tokens/s):
 * - end-of-turn to the first buffer out, minus the server's time to first
 *   token: what the element adds (target < 2 ms);
 * - interrupt to the emulator seeing the stream closed (target < 10 ms).
 *
 * Usage: bench-llm [TURNS]   (default 40; run from anywhere, the build
 * tree is found from config.h). Prints numbers; asserts nothing.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <gst/gst.h>
#include <gst/check/gstharness.h>
#include <json-glib/json-glib.h>

#include "voice.h"
#include "emulator-process.h"
#include "bench-env.h"

static void
drain (GstHarness *h)
{
  GstBuffer *b;
  GstEvent *e;

  while ((b = gst_harness_try_pull (h)))
    gst_buffer_unref (b);
  while ((e = gst_harness_try_pull_event (h)))
    gst_event_unref (e);
}

static int
compare (const void *a, const void *b)
{
  gdouble x = *(const gdouble *)a, y = *(const gdouble *)b;

  return x < y ? -1 : x > y;
}

static void
report (const gchar *what, GArray *ms, const gchar *target)
{
  gdouble *v = (gdouble *)ms->data;
  guint n = ms->len;

  qsort (v, n, sizeof (gdouble), compare);
  printf ("%-58s median %7.3f ms  min %7.3f  p95 %7.3f  max %7.3f  (%s)\n",
      what, v[n / 2], v[0], v[MIN (n - 1, n * 95 / 100)], v[n - 1], target);
}

static EmuProcess *
start_emulator (const gchar *what, const gchar *file)
{
  const gchar *args[] = { "--quiet", "--latency", "reference", what, file,
    NULL };
  EmuProcess *emu = emu_process_start (args);

  if (emu == NULL)
    exit (1);
  return emu;
}

static GstHarness *
harness_new (
    EmuProcess *emu, GstElement **element, BenchProbe *probe, GstBus *bus)
{
  gchar *url = g_strconcat (emu_process_get_http_url (emu), "/v1", NULL);
  GstHarness *h;

  *element = gst_element_factory_make ("llmtransform", NULL);
  if (*element == NULL) {
    g_printerr ("llmtransform not found (GST_PLUGIN_PATH?)\n");
    exit (1);
  }
  g_object_set (*element, "url", url, "api-key", "bench", NULL);
  gst_element_set_bus (*element, bus);
  h = gst_harness_new_with_element (*element, "sink", "src");
  gst_harness_use_systemclock (h);
  gst_harness_set_src_caps_str (h, "text/x-raw,format=utf8");
  bench_probe_init (probe, *element);
  g_free (url);
  return h;
}

/* Returns the newest "llm-aborted" time (ms since the epoch), or 0. */
static gint64
last_abort_ms (EmuProcess *emu, guint *count)
{
  gchar *body = emu_process_request (
      emu, "/emulator/events?service=llm&event=llm-aborted", NULL, NULL);
  JsonParser *parser = json_parser_new ();
  gint64 t = 0;
  JsonArray *a;

  *count = 0;
  if (body && json_parser_load_from_data (parser, body, -1, NULL)) {
    a = json_object_get_array_member (
        json_node_get_object (json_parser_get_root (parser)), "events");
    *count = json_array_get_length (a);
    if (*count)
      t = json_object_get_int_member (
          json_array_get_object_element (a, *count - 1), "time_ms");
  }
  g_object_unref (parser);
  g_free (body);
  return t;
}

static guint
server_ttft_ms (EmuProcess *emu)
{
  gchar *body = emu_process_request (emu, "/emulator/latency", NULL, NULL);
  JsonParser *parser = json_parser_new ();
  guint ms = 0;

  if (body && json_parser_load_from_data (parser, body, -1, NULL))
    ms = json_object_get_int_member (
        json_node_get_object (json_parser_get_root (parser)),
        "llm_first_token_ms");
  g_object_unref (parser);
  g_free (body);
  return ms;
}

/* A bare libsoup client on one keep-alive connection: what any client
 * pays for the server and loopback HTTP, without the element. */
typedef struct
{
  SoupSession *session;
  gchar *url;
} BareClient;

/* Returns: request written → first body bytes read, in ms. */
static gdouble
bare_client_ttfb (BareClient *c)
{
  static const gchar body[] = "{\"model\":\"m\",\"stream\":true,"
                              "\"messages\":[{\"role\":\"user\","
                              "\"content\":\"hi\"}]}";
  SoupMessage *msg = soup_message_new ("POST", c->url);
  GBytes *b = g_bytes_new_static (body, sizeof (body) - 1);
  GInputStream *in;
  gchar buf[4096];
  gdouble ms = -1;
  gint64 t0;

  soup_message_headers_replace (
      soup_message_get_request_headers (msg), "Authorization", "Bearer x");
  soup_message_set_request_body_from_bytes (msg, "application/json", b);
  t0 = g_get_monotonic_time ();
  in = soup_session_send (c->session, msg, NULL, NULL);
  if (in && g_input_stream_read (in, buf, sizeof (buf), NULL, NULL) > 0)
    ms = (g_get_monotonic_time () - t0) / 1000.0;
  while (in && g_input_stream_read (in, buf, sizeof (buf), NULL, NULL) > 0)
    ;
  g_clear_object (&in);
  g_bytes_unref (b);
  g_object_unref (msg);
  return ms;
}

/* End-of-turn → first buffer, against a reply whose first token is a whole
 * clause (so no clause waiting is measured, only the element). */
static void
bench_first_buffer (guint turns)
{
  gchar *sse = g_build_filename (
      VOICEAGENT_SOURCE_DIR, "tests", "bench", "llm", "first-clause.sse", NULL);
  EmuProcess *emu = start_emulator ("--llm-replay", sse);
  guint ttft = server_ttft_ms (emu), i;
  GArray *total = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *own = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *local = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *wire = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *bare = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GArray *net = g_array_new (FALSE, FALSE, sizeof (gdouble));
  BareClient client = { soup_session_new (), NULL };
  GstBus *bus = gst_bus_new ();
  BenchProbe probe;
  GstElement *element;
  GstHarness *h = harness_new (emu, &element, &probe, bus);

  client.url = g_strconcat (
      emu_process_get_http_url (emu), "/v1/chat/completions", NULL);
  /* Turn 0 warms up (TCP connect, first allocations); not counted. */
  for (i = 0; i <= turns; i++) {
    gint64 t0, t1;
    gdouble ms, elem_ttft, bare_ms;
    /* Interleaved, so both see the same load on a shared machine. */
    bare_ms = bare_client_ttfb (&client);
    bench_probe_reset (&probe);
    t0 = g_get_monotonic_time ();
    gst_harness_push_event (
        h, gst_voice_event_new_end_of_turn (GST_CLOCK_TIME_NONE, i + 1, "hi"));
    t1 = bench_probe_wait (&probe, FALSE);
    bench_probe_wait (&probe, TRUE);
    drain (h);
    elem_ttft = bench_element_ttft_ms (bus);
    gst_bus_set_flushing (bus, TRUE);
    gst_bus_set_flushing (bus, FALSE);
    if (i == 0)
      continue;
    ms = (t1 - t0) / 1000.0;
    g_array_append_val (total, ms);
    ms -= ttft;
    g_array_append_val (own, ms);
    ms = (t1 - t0) / 1000.0 - elem_ttft;
    g_array_append_val (local, ms);
    ms = elem_ttft - ttft;
    g_array_append_val (wire, ms);
    g_array_append_val (bare, bare_ms);
    ms = (t1 - t0) / 1000.0 - bare_ms;
    g_array_append_val (net, ms);
  }
  printf ("llmtransform, emulator --latency reference (LLM first token %u "
          "ms), %u turns\n",
      ttft, turns);
  report ("end-of-turn -> first buffer out", total, "includes the server");
  report (
      "end-of-turn -> first buffer out - server TTFT", own, "target < 2 ms");
  report ("  of which in the element (not waiting on the socket)", local,
      "request out + token to buffer");
  report ("  of which loopback HTTP + emulator beyond its TTFT", wire,
      "timer slack, parsing");
  report ("server TTFT as a bare libsoup client sees it", bare,
      "same emulator, keep-alive");
  report ("end-of-turn -> first buffer out - bare-client TTFT", net,
      "pairwise: the element's own overhead");
  g_array_unref (net);
  g_array_unref (bare);
  g_object_unref (client.session);
  g_free (client.url);

  gst_harness_teardown (h);
  gst_object_unref (element);
  gst_object_unref (bus);
  emu_process_stop (emu);
  g_array_unref (total);
  g_array_unref (own);
  g_array_unref (local);
  g_array_unref (wire);
  bench_probe_clear (&probe);
  g_free (sse);
}

/* interrupt → the emulator notices the client went away (its event times
 * have 1 ms resolution). */
static void
bench_cancel (guint turns)
{
  gchar *rules = g_build_filename (
      VOICEAGENT_SOURCE_DIR, "tests", "llm", "data", "rules.json", NULL);
  EmuProcess *emu = start_emulator ("--llm-rules", rules);
  GArray *cancel = g_array_new (FALSE, FALSE, sizeof (gdouble));
  GstBus *bus = gst_bus_new ();
  BenchProbe probe;
  GstElement *element;
  GstHarness *h = harness_new (emu, &element, &probe, bus);
  guint i;

  for (i = 0; i < turns; i++) {
    gint64 t0, t1, deadline;
    guint before, after = 0;
    gdouble ms;
    last_abort_ms (emu, &before);
    bench_probe_reset (&probe);
    gst_harness_push_event (h,
        gst_voice_event_new_end_of_turn (
            GST_CLOCK_TIME_NONE, i + 1, "a story"));
    bench_probe_wait (&probe, FALSE);
    t0 = g_get_real_time ();
    gst_harness_push_event (
        h, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, i + 1, "bench"));
    deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
    do {
      g_usleep (2000);
      t1 = last_abort_ms (emu, &after);
    } while (after == before && g_get_monotonic_time () < deadline);
    drain (h);
    if (after == before) {
      g_printerr ("the emulator never saw the stream close\n");
      exit (1);
    }
    /* The emulator's time is floored to the ms: this is an upper bound. */
    ms = t1 + 1 - t0 / 1000.0;
    g_array_append_val (cancel, ms);
  }
  report ("interrupt -> emulator sees the stream closed", cancel,
      "target < 10 ms; upper bounds, 1 ms resolution");

  gst_harness_teardown (h);
  gst_object_unref (element);
  gst_object_unref (bus);
  emu_process_stop (emu);
  g_array_unref (cancel);
  bench_probe_clear (&probe);
  g_free (rules);
}

int
main (int argc, char **argv)
{
  guint turns = argc > 1 ? (guint)atoi (argv[1]) : 40;

  bench_use_build_tree ();
  gst_init (&argc, &argv);
  gst_voice_init ();
  bench_first_buffer (MAX (turns, 1));
  bench_cancel (MAX (turns / 2, 1));
  return 0;
}

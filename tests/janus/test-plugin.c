/* janus.plugin.voiceagent in a real Janus 1.1: a webrtcbin caller on one
 * side, fake workers (plain UDP sockets of the test) on the other.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main() starts one Janus for the whole run (tests/common/janus-process.c:
 * a configs folder of its own, only our plugin and the HTTP transport) and
 * stops it at the end, also after a failure; each test makes its own Janus
 * session. The plugin's rtp_port_range is a few ports found free, so that
 * one test can take them all.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include "janus-client.h"
#include "janus-process.h"
#include "test-skip.h"
#include "whip-caller.h"

#define PLUGIN "janus.plugin.voiceagent"
#define PORTS 4 /* the plugin's rtp_port_range */
#define OPUS_PT 111 /* what the caller offers */
#define WORKER_PT 96 /* what the workers send: the plugin writes OPUS_PT */
#define TIMEOUT_MS 15000

static JanusProcess *janus;
static guint16 port_min;

/* When each payload left a worker (payload hash -> µs), so the caller can
 * tell the relay's latency: Janus rewrites the header, not the payload. */
static GMutex sent_lock;
static GHashTable *sent_times;

static guint
payload_hash (const guint8 *p, gsize n)
{
  guint h = 2166136261u;

  for (gsize i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

/* ---------------------------------------------------------------------
 * A fake worker: a UDP socket that counts the caller's RTP, keeps its
 * text messages (echoing them if asked) and can send Opus RTP of its own
 * (a sine, encoded by a pipeline, with the SSRC, sequence number and
 * timestamp it is given).
 */
typedef struct
{
  gint fd;
  guint16 port;
  struct sockaddr_in call; /* the call's socket in the plugin */
  GThread *thread;
  gint stop; /* atomic */
  gint echo; /* atomic: send text back, prefixed "echo:" */
  GstElement *pipeline;

  GMutex lock;
  GCond cond;
  guint rtp_in; /* lock */
  guint last_pt; /* lock */
  GQueue texts; /* lock; of gchar* */
} Worker;

static void
worker_receive (Worker *w)
{
  guint8 buf[65536];
  gssize n = recv (w->fd, buf, sizeof buf, MSG_DONTWAIT);

  if (n <= 0)
    return;
  g_mutex_lock (&w->lock);
  if ((buf[0] & 0xC0) == 0x80) {
    w->rtp_in++;
    w->last_pt = buf[1] & 0x7F;
  } else {
    g_queue_push_tail (&w->texts, g_strndup ((gchar *)buf, n));
  }
  g_cond_broadcast (&w->cond);
  g_mutex_unlock (&w->lock);
  if ((buf[0] & 0xC0) != 0x80 && g_atomic_int_get (&w->echo)) {
    gchar *echo = g_strdup_printf ("echo:%.*s", (int)n, buf);
    sendto (w->fd, echo, strlen (echo), 0, (struct sockaddr *)&w->call,
        sizeof w->call);
    g_free (echo);
  }
}

static gpointer
worker_thread (gpointer data)
{
  Worker *w = data;
  struct pollfd pfd = { .fd = w->fd, .events = POLLIN };

  while (!g_atomic_int_get (&w->stop))
    if (poll (&pfd, 1, 50) > 0)
      worker_receive (w);
  return NULL;
}

/* A worker bound on 127.0.0.1, sending to the call's @rtp_port. */
static Worker *
worker_new (guint16 rtp_port)
{
  Worker *w = g_new0 (Worker, 1);
  struct sockaddr_in addr = { .sin_family = AF_INET };
  socklen_t len = sizeof addr;

  w->fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  fail_unless (bind (w->fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  fail_unless (getsockname (w->fd, (struct sockaddr *)&addr, &len) == 0);
  w->port = ntohs (addr.sin_port);
  w->call = addr;
  w->call.sin_port = htons (rtp_port);
  g_mutex_init (&w->lock);
  g_cond_init (&w->cond);
  g_queue_init (&w->texts);
  w->thread = g_thread_new ("worker", worker_thread, w);
  return w;
}

static void
worker_stop_audio (Worker *w)
{
  if (w->pipeline == NULL)
    return;
  gst_element_set_state (w->pipeline, GST_STATE_NULL);
  gst_clear_object (&w->pipeline);
}

static void
worker_free (Worker *w)
{
  worker_stop_audio (w);
  g_atomic_int_set (&w->stop, 1);
  g_thread_join (w->thread);
  close (w->fd);
  g_queue_clear_full (&w->texts, g_free);
  g_mutex_clear (&w->lock);
  g_cond_clear (&w->cond);
  g_free (w);
}

static GstFlowReturn
worker_on_rtp (GstAppSink *sink, gpointer data)
{
  Worker *w = data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstMapInfo map;

  if (sample &&
      gst_buffer_map (gst_sample_get_buffer (sample), &map, GST_MAP_READ)) {
    g_mutex_lock (&sent_lock);
    gint64 now = g_get_monotonic_time ();
    g_hash_table_insert (sent_times,
        GUINT_TO_POINTER (payload_hash (map.data + 12, map.size - 12)),
        g_memdup2 (&now, sizeof now));
    g_mutex_unlock (&sent_lock);
    sendto (w->fd, map.data, map.size, 0, (struct sockaddr *)&w->call,
        sizeof w->call);
    gst_buffer_unmap (gst_sample_get_buffer (sample), &map);
  }
  if (sample)
    gst_sample_unref (sample);
  return GST_FLOW_OK;
}

/* Sends 20 ms Opus RTP packets of a @freq Hz sine from now on, starting
 * at @seq and @ts, with @ssrc and payload type WORKER_PT. */
static void
worker_start_audio (
    Worker *w, guint32 ssrc, guint16 seq, guint32 ts, guint freq)
{
  gchar *desc = g_strdup_printf (
      "audiotestsrc is-live=true wave=sine freq=%u volume=0.3 "
      "! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 "
      "! rtpopuspay pt=%d ssrc=%u seqnum-offset=%u timestamp-offset=%u "
      "! appsink name=out sync=false",
      freq, WORKER_PT, ssrc, seq, ts);
  GstAppSinkCallbacks cb = { .new_sample = worker_on_rtp };
  GstElement *sink;

  w->pipeline = gst_parse_launch (desc, NULL);
  g_free (desc);
  fail_unless (w->pipeline != NULL);
  sink = gst_bin_get_by_name (GST_BIN (w->pipeline), "out");
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &cb, w, NULL);
  gst_object_unref (sink);
  fail_unless (gst_element_set_state (w->pipeline, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
}

static void
worker_send_text (Worker *w, const gchar *text)
{
  fail_unless (sendto (w->fd, text, strlen (text), 0,
                   (struct sockaddr *)&w->call, sizeof w->call) > 0);
}

static guint
worker_rtp_count (Worker *w)
{
  guint n;

  g_mutex_lock (&w->lock);
  n = w->rtp_in;
  g_mutex_unlock (&w->lock);
  return n;
}

/* Waits until the worker has had @n more RTP packets than @from. */
static gboolean
worker_wait_rtp (Worker *w, guint from, guint n)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * (gint64)1000;
  gboolean ok;

  g_mutex_lock (&w->lock);
  while (
      w->rtp_in < from + n && g_cond_wait_until (&w->cond, &w->lock, deadline))
    ;
  ok = w->rtp_in >= from + n;
  g_mutex_unlock (&w->lock);
  return ok;
}

static gchar *
worker_pop_text (Worker *w)
{
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_MS * (gint64)1000;
  gchar *text;

  g_mutex_lock (&w->lock);
  while (g_queue_is_empty (&w->texts) &&
      g_cond_wait_until (&w->cond, &w->lock, deadline))
    ;
  text = g_queue_pop_head (&w->texts);
  g_mutex_unlock (&w->lock);
  return text;
}

/* ---------------------------------------------------------------------
 * What the caller receives: each Opus RTP packet's sequence number,
 * timestamp and arrival, as it enters webrtcbin's RTP session.
 */
typedef struct
{
  guint16 seq;
  guint32 ts;
  gint64 arrival;
  gint64 latency; /* from the worker's send, -1 if unknown */
} RxPacket;

typedef struct
{
  GMutex lock;
  gboolean recording; /* lock */
  GArray *packets; /* lock; of RxPacket */
} Rx;

/* The payload of the RTP packet @p (@n bytes): past the CSRCs and the
 * header extension Janus adds. */
static const guint8 *
rtp_payload (const guint8 *p, gsize n, gsize *size)
{
  gsize off = 12 + 4 * (p[0] & 0x0F);

  if ((p[0] & 0x10) && off + 4 <= n)
    off += 4 + 4 * ((p[off + 2] << 8) | p[off + 3]);
  *size = off < n ? n - off : 0;
  return p + MIN (off, n);
}

static void
on_rtp (const guint8 *p, gsize n, gint64 arrival, gpointer data)
{
  Rx *rx = data;
  RxPacket pkt = { .latency = -1 };
  const guint8 *payload;
  gsize size;
  gpointer sent;

  if (n < 12 || (p[1] & 0x7F) != OPUS_PT)
    return;
  pkt.seq = (p[2] << 8) | p[3];
  pkt.ts = ((guint32)p[4] << 24) | (p[5] << 16) | (p[6] << 8) | p[7];
  pkt.arrival = arrival;
  payload = rtp_payload (p, n, &size);
  g_mutex_lock (&sent_lock);
  if (g_hash_table_lookup_extended (sent_times,
          GUINT_TO_POINTER (payload_hash (payload, size)), NULL, &sent))
    pkt.latency = arrival - *(gint64 *)sent;
  g_mutex_unlock (&sent_lock);
  g_mutex_lock (&rx->lock);
  if (rx->recording)
    g_array_append_val (rx->packets, pkt);
  g_mutex_unlock (&rx->lock);
}

static void
rx_record (Rx *rx, gboolean on)
{
  g_mutex_lock (&rx->lock);
  rx->recording = on;
  g_mutex_unlock (&rx->lock);
}

/* The caller's decoder must not notice that workers changed: sequence
 * numbers step by 1 (a few lost at most), timestamps never go back and
 * keep to the wall clock (48 kHz). */
static void
check_continuity (GArray *pkts)
{
  RxPacket *p = (RxPacket *)pkts->data;

  fail_unless (pkts->len > 50, "only %u packets received", pkts->len);
  for (guint i = 1; i < pkts->len; i++) {
    guint16 dseq = (guint16)(p[i].seq - p[i - 1].seq);
    gint32 dts = (gint32)(p[i].ts - p[i - 1].ts);
    gint64 dms = (p[i].arrival - p[i - 1].arrival) / 1000;
    gint64 drift = (gint64)(guint32)(p[i].ts - p[0].ts) / 48 -
        (p[i].arrival - p[0].arrival) / 1000;
    fail_unless (dseq >= 1 && dseq <= 5,
        "packet %u: sequence number jumps by %u (%u -> %u)", i, dseq,
        p[i - 1].seq, p[i].seq);
    fail_unless (dts > 0 && dts / 48 <= dms + 60,
        "packet %u: timestamp moves %d (%d ms) in %" G_GINT64_FORMAT " ms", i,
        dts, dts / 48, dms);
    fail_unless (ABS (drift) < 250,
        "packet %u: timestamps are %" G_GINT64_FORMAT " ms off the wall clock",
        i, drift);
  }
}

static gint
compare_int64 (gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;
  return x < y ? -1 : x > y;
}

/* The median worker-to-caller latency in µs, -1 if none was matched. */
static gint64
median_latency (GArray *pkts)
{
  GArray *l = g_array_new (FALSE, FALSE, sizeof (gint64));
  gint64 median = -1;

  for (guint i = 0; i < pkts->len; i++)
    if (g_array_index (pkts, RxPacket, i).latency >= 0)
      g_array_append_val (l, g_array_index (pkts, RxPacket, i).latency);
  if (l->len > 0) {
    g_array_sort (l, compare_int64);
    median = g_array_index (l, gint64, l->len / 2);
  }
  g_array_free (l, TRUE);
  return median;
}

/* ---------------------------------------------------------------------
 * Requests
 */

static const gchar *
str (JsonObject *o, const gchar *member)
{
  return json_object_get_string_member_with_default (o, member, "");
}

static gint64
num (JsonObject *o, const gchar *member)
{
  return json_object_get_int_member_with_default (o, member, -1);
}

/* Sends @body (and the offer @sdp, may be NULL) and returns the plugin's
 * reply, failing the test on a Janus error. */
static JsonObject *
send_request (JanusClient *c, guint64 handle, const gchar *body,
    const gchar *sdp, gchar **answer)
{
  GError *error = NULL;
  JsonObject *data =
      janus_client_message (c, handle, body, sdp, answer, TIMEOUT_MS, &error);

  fail_unless (data != NULL, "%s: %s", body, error ? error->message : "");
  return data;
}

/* Sends @body and checks that the plugin answers {"voiceagent":"error"}
 * with @code and a reason. */
static void
expect_error (JanusClient *c, guint64 handle, const gchar *body,
    const gchar *sdp, gint code)
{
  JsonObject *data = send_request (c, handle, body, sdp, NULL);

  fail_unless_equals_string (str (data, "voiceagent"), "error");
  fail_unless (num (data, "error_code") == code, "%s: error %d, not %d: %s",
      body, (gint)num (data, "error_code"), code, str (data, "error"));
  fail_unless (strlen (str (data, "error")) > 10);
  json_object_unref (data);
}

static JsonObject *
status (JanusClient *c, guint64 handle)
{
  JsonObject *data =
      send_request (c, handle, "{\"request\":\"status\"}", NULL, NULL);

  fail_unless_equals_string (str (data, "voiceagent"), "status");
  return data;
}

/* Points the call at @w; returns the new epoch. */
static gint64
connect_worker (JanusClient *c, guint64 handle, Worker *w)
{
  gchar *body = g_strdup_printf (
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":%u}", w->port);
  JsonObject *data = send_request (c, handle, body, NULL, NULL);
  gint64 epoch = num (data, "epoch");

  fail_unless_equals_string (str (data, "voiceagent"), "connected");
  json_object_unref (data);
  g_free (body);
  return epoch;
}

static JanusClient *
new_client (void)
{
  GError *error = NULL;
  JanusClient *c = janus_client_new (janus_process_get_url (janus), &error);

  fail_unless (c != NULL, "%s", error ? error->message : "");
  return c;
}

static guint64
attach (JanusClient *c)
{
  GError *error = NULL;
  guint64 handle = janus_client_attach (c, PLUGIN, &error);

  fail_unless (handle != 0, "%s", error ? error->message : "");
  return handle;
}

#define FP                                                                     \
  "sha-256 2A:5B:DC:6B:B6:50:9F:AA:E7:FB:E6:5D:81:FF:DD:1D:47:36:1C:63:EB:"    \
  "EF:F4:1D:F8:18:86:D7:39:B8:07:32"
#define SECTION_COMMON                                                         \
  "c=IN IP4 0.0.0.0\r\na=ice-ufrag:tEsT\r\n"                                   \
  "a=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:" FP "\r\n"             \
  "a=setup:actpass\r\n"

/* An offer Janus takes (ICE credentials, a fingerprint) though no one
 * will ever answer its ICE checks: an audio section with @audio ("PT
 * codec/rate[/channels]", NULL for none), a VP8 video section if
 * @video, and a data channel. */
static gchar *
canned_offer (const gchar *audio, gboolean video)
{
  GString *sdp = g_string_new ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                               "t=0 0\r\n");
  GString *bundle = g_string_new ("a=group:BUNDLE");
  GString *media = g_string_new (NULL);
  guint mid = 0;

  if (audio) {
    g_auto (GStrv) parts = g_strsplit (audio, " ", 2);
    g_string_append_printf (media,
        "m=audio 9 UDP/TLS/RTP/SAVPF %s\r\n" SECTION_COMMON
        "a=mid:%u\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:%s %s\r\n"
        "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
        "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
        parts[0], mid, parts[0], parts[1]);
    g_string_append_printf (bundle, " %u", mid++);
  }
  if (video) {
    g_string_append_printf (media,
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" SECTION_COMMON
        "a=mid:%u\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n",
        mid);
    g_string_append_printf (bundle, " %u", mid++);
  }
  g_string_append_printf (media,
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" SECTION_COMMON
      "a=mid:%u\r\na=sctp-port:5000\r\n",
      mid);
  g_string_append_printf (bundle, " %u\r\n", mid);
  g_string_append (sdp, bundle->str);
  g_string_append (sdp, media->str);
  g_string_free (bundle, TRUE);
  g_string_free (media, TRUE);
  return g_string_free (sdp, FALSE);
}

/* Places a call with @sdp on @handle and checks the ready event; returns
 * the call's port. */
static guint16
call_ready (JanusClient *c, guint64 handle, const gchar *call_id,
    const gchar *sdp, gchar **answer)
{
  gchar *body =
      g_strdup_printf ("{\"request\":\"call\",\"call_id\":\"%s\"}", call_id);
  JsonObject *data = send_request (c, handle, body, sdp, answer);
  gint64 port = num (data, "rtp_port");

  fail_unless (g_str_equal (str (data, "voiceagent"), "ready"),
      "call refused: %s\n%s", str (data, "error"), sdp);
  fail_unless_equals_string (str (data, "call_id"), call_id);
  fail_unless_equals_string (str (data, "rtp_host"), "127.0.0.1");
  fail_unless (port >= port_min && port < port_min + PORTS,
      "rtp_port %" G_GINT64_FORMAT " is outside the configured range", port);
  fail_unless (answer == NULL || *answer != NULL, "ready without an answer");
  json_object_unref (data);
  g_free (body);
  return (guint16)port;
}

/* Janus loads the plugin: /janus/info lists it. */
GST_START_TEST (test_plugin_loaded)
{
  GError *error = NULL;
  JsonObject *info =
      janus_client_get_info (janus_process_get_url (janus), &error);
  JsonObject *plugins;

  fail_unless (info != NULL, "%s", error ? error->message : "");
  plugins = json_object_get_object_member (info, "plugins");
  fail_unless (plugins && json_object_has_member (plugins, PLUGIN),
      "/janus/info does not list " PLUGIN);
  fail_unless (json_object_get_boolean_member_with_default (
      info, "data_channels", FALSE));
  json_object_unref (info);
}

GST_END_TEST;

/* Every malformed or misplaced request gets its error and its code. */
GST_START_TEST (test_bad_requests)
{
  JanusClient *c = new_client ();
  guint64 h = attach (c);
  gchar *long_id = g_strnfill (65, 'a');
  gchar *body =
      g_strdup_printf ("{\"request\":\"call\",\"call_id\":\"%s\"}", long_id);
  gchar *pcmu = canned_offer ("0 PCMU/8000", FALSE);
  gchar *video = canned_offer (NULL, TRUE);

  fail_unless (janus_client_keepalive (c, NULL));
  expect_error (c, h, "{\"request\":\"dance\"}", NULL, 470);
  expect_error (c, h, "{\"call_id\":\"x\"}", NULL, 470);
  expect_error (c, h, "{\"request\":\"statusstatusstatus1\"}", NULL, 470);
  expect_error (c, h,
      "{\"request\":\"status\",\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,"
      "\"f\":6,\"g\":7,\"h\":8}",
      NULL, 470);
  expect_error (
      c, h, "{\"request\":\"call\",\"call_id\":\"bad id!\"}", NULL, 471);
  expect_error (c, h, "{\"request\":\"call\"}", NULL, 471);
  expect_error (c, h, body, NULL, 471);
  expect_error (c, h, "{\"request\":\"call\",\"call_id\":\"c1\"}", NULL, 472);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":5000}", NULL,
      478);
  expect_error (c, h, "{\"request\":\"disconnect\"}", NULL, 478);
  expect_error (c, h, "{\"request\":\"hangup\"}", NULL, 478);
  /* One offer per handle: Janus sets up ICE for each. */
  expect_error (
      c, attach (c), "{\"request\":\"call\",\"call_id\":\"c2\"}", video, 474);
  expect_error (
      c, attach (c), "{\"request\":\"call\",\"call_id\":\"c3\"}", pcmu, 475);
  expect_error (c, attach (c), "{\"request\":\"status\"}", pcmu, 473);
  g_free (video);
  g_free (pcmu);
  g_free (body);
  g_free (long_id);
  janus_client_free (c);
}

GST_END_TEST;

/* A call's answer and its connect rules, without media: video refused,
 * Opus with FEC, a worker only inside worker_networks, one call per
 * handle. */
GST_START_TEST (test_answer_and_connect)
{
  JanusClient *c = new_client ();
  guint64 h = attach (c);
  gchar *offer = canned_offer ("111 opus/48000/2", TRUE);
  gchar *answer = NULL;
  JsonObject *st;

  call_ready (c, h, "call-answer", offer, &answer);
  fail_unless (
      strstr (answer, "m=audio 9 UDP/TLS/RTP/SAVPF 111") != NULL, "%s", answer);
  fail_unless (strstr (answer, "a=rtpmap:111 opus/48000/2") != NULL);
  fail_unless (strstr (answer, "useinbandfec=1") != NULL, "%s", answer);
  fail_unless (strstr (answer, "a=sendrecv") != NULL, "%s", answer);
  fail_unless (strstr (answer, "urn:ietf:params:rtp-hdrext:sdes:mid") != NULL,
      "%s", answer);
  fail_unless (strstr (answer, "ssrc-audio-level") == NULL, "%s", answer);
  fail_unless (strstr (answer, "m=video 0 ") != NULL, "%s", answer);
  fail_unless (strstr (answer, "webrtc-datachannel") != NULL, "%s", answer);
  expect_error (
      c, h, "{\"request\":\"call\",\"call_id\":\"again\"}", NULL, 476);
  /* (e) not an open reflector */
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"10.1.2.3\",\"port\":5000}", NULL,
      480);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"localhost\",\"port\":5000}", NULL,
      479);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":0}", NULL, 479);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":65536}", NULL,
      479);
  expect_error (
      c, h, "{\"request\":\"connect\",\"host\":\"127.0.0.1\"}", NULL, 479);
  expect_error (
      c, h, "{\"request\":\"connect\",\"host\":\"::1\",\"port\":9}", NULL, 479);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"0.0.0.0\",\"port\":9}", NULL, 479);
  st = send_request (c, h,
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":9}", NULL,
      NULL);
  fail_unless_equals_int (num (st, "epoch"), 1);
  json_object_unref (st);
  st = status (c, h);
  fail_unless_equals_string (str (st, "call_id"), "call-answer");
  fail_unless_equals_string (str (st, "state"), "ready");
  fail_unless_equals_string (str (st, "relay"), "stopped");
  fail_unless_equals_string (str (st, "worker_host"), "127.0.0.1");
  fail_unless_equals_int (num (st, "worker_port"), 9);
  fail_unless_equals_int (num (st, "ms_since_worker_packet"), -1);
  json_object_unref (st);
  st = send_request (c, h, "{\"request\":\"disconnect\"}", NULL, NULL);
  fail_unless_equals_string (str (st, "voiceagent"), "disconnected");
  json_object_unref (st);
  st = status (c, h);
  fail_unless (json_object_get_null_member (st, "worker_host"));
  json_object_unref (st);
  fail_unless (janus_client_detach (c, h, NULL));
  g_free (answer);
  g_free (offer);
  janus_client_free (c);
}

GST_END_TEST;

/* With every port of rtp_port_range taken, a call is refused; once one is
 * free again, calls are answered. */
GST_START_TEST (test_ports_exhausted)
{
  JanusClient *c = new_client ();
  gchar *offer = canned_offer ("111 opus/48000/2", FALSE);
  gint fds[PORTS];

  for (guint i = 0; i < PORTS; i++) {
    struct sockaddr_in a = { .sin_family = AF_INET,
      .sin_port = htons (port_min + i),
      .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    fds[i] = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    /* A port a call of another test still holds is taken all the same. */
    bind (fds[i], (struct sockaddr *)&a, sizeof a);
  }
  expect_error (
      c, attach (c), "{\"request\":\"call\",\"call_id\":\"full\"}", offer, 477);
  for (guint i = 0; i < PORTS; i++)
    close (fds[i]);
  call_ready (c, attach (c), "not-full", offer, NULL);
  g_free (offer);
  janus_client_free (c);
}

GST_END_TEST;

/* The worker's and the caller's text go through, the latter exactly,
 * the former on the caller's own channel. Returns the median data
 * round trip caller -> worker -> caller in µs. */
static gint64
check_data_channel (WhipCaller *caller, Worker *w)
{
  const gchar *text = "{\"hello\":\"worker\",\"caf\xc3\xa9\":1}";
  gint64 rtt[5];
  gchar *got;

  fail_unless (whip_caller_send (caller, text));
  got = worker_pop_text (w);
  fail_unless_equals_string (got, text);
  g_free (got);
  worker_send_text (w, "{\"hello\":\"caller\"}");
  got = whip_caller_wait_message (caller, "hello", TIMEOUT_MS);
  fail_unless_equals_string (got, "{\"hello\":\"caller\"}");
  g_free (got);
  g_atomic_int_set (&w->echo, 1);
  for (guint i = 0; i < G_N_ELEMENTS (rtt); i++) {
    gchar *ping = g_strdup_printf ("ping %u", i);
    gchar *pong = g_strdup_printf ("echo:ping %u", i);
    gint64 start = g_get_monotonic_time ();
    fail_unless (whip_caller_send (caller, ping));
    got = whip_caller_wait_message (caller, pong, TIMEOUT_MS);
    fail_unless (got != NULL, "no %s", pong);
    rtt[i] = g_get_monotonic_time () - start;
    g_free (got);
    g_free (pong);
    g_free (ping);
    g_free (worker_pop_text (w));
  }
  g_atomic_int_set (&w->echo, 0);
  qsort (rtt, G_N_ELEMENTS (rtt), sizeof rtt[0], (GCompareFunc)compare_int64);
  return rtt[G_N_ELEMENTS (rtt) / 2];
}

/* The call's media must be up: the caller answered, ICE and DTLS done. */
static void
wait_media (JanusClient *c, guint64 handle)
{
  JsonObject *ev =
      janus_client_wait_event (c, handle, "voiceagent", "media", TIMEOUT_MS);

  fail_unless (ev != NULL, "no {\"voiceagent\":\"media\"} event");
  fail_unless (json_object_get_boolean_member_with_default (ev, "up", FALSE));
  json_object_unref (ev);
  ev = janus_client_wait_event (c, handle, NULL, "webrtcup", TIMEOUT_MS);
  fail_unless (ev != NULL, "no {\"janus\":\"webrtcup\"} event");
  json_object_unref (ev);
}

/* Re-points the call from @a to a worker with another SSRC, then to one
 * with that same SSRC (which only the plugin's epoch can tell apart), all
 * three sending on: the caller's stream stays continuous. */
static void
check_failover (JanusClient *c, guint64 h, guint16 port, Worker *a, Rx *rx)
{
  Worker *b = worker_new (port), *d = worker_new (port);
  guint a_count;
  JsonObject *st;

  rx_record (rx, TRUE);
  worker_start_audio (b, 0xB0B0B0B0, 40000, 123456789, 660);
  fail_unless_equals_int (connect_worker (c, h, b), 2);
  fail_unless (worker_wait_rtp (b, 0, 50), "worker B gets no caller RTP");
  a_count = worker_rtp_count (a);
  worker_start_audio (d, 0xB0B0B0B0, 1000, 5000, 550);
  fail_unless_equals_int (connect_worker (c, h, d), 3);
  fail_unless (worker_wait_rtp (d, 0, 50), "worker D gets no caller RTP");
  rx_record (rx, FALSE);
  fail_unless_equals_int (worker_rtp_count (a), a_count);

  st = status (c, h);
  fail_unless_equals_int (num (st, "epoch"), 3);
  fail_unless_equals_int (num (st, "worker_port"), d->port);
  /* A's and B's packets, no longer from the worker, were dropped. */
  fail_unless (num (st, "dropped") > 10, "dropped %" G_GINT64_FORMAT,
      num (st, "dropped"));
  fail_unless (num (st, "ms_since_worker_packet") < 1000);
  json_object_unref (st);

  g_mutex_lock (&rx->lock);
  check_continuity (rx->packets);
  g_mutex_unlock (&rx->lock);
  worker_free (b);
  worker_free (d);
}

/* A hangup request ends the call: its event, and the relay thread gone. */
static void
check_hangup (JanusClient *c, guint64 h, Worker *w)
{
  JsonObject *data =
      send_request (c, h, "{\"request\":\"hangup\"}", NULL, NULL);
  guint count;

  fail_unless_equals_string (str (data, "voiceagent"), "hangingup");
  json_object_unref (data);
  data = janus_client_wait_event (c, h, "voiceagent", "hangup", TIMEOUT_MS);
  fail_unless (data != NULL, "no {\"voiceagent\":\"hangup\"} event");
  fail_unless_equals_string (str (data, "reason"), "hangup request");
  json_object_unref (data);
  data = status (c, h);
  fail_unless_equals_string (str (data, "state"), "ended");
  fail_unless_equals_string (str (data, "relay"), "stopped");
  json_object_unref (data);
  fail_unless_equals_int (janus_process_count_threads (janus, "va-relay"), 0);
  count = worker_rtp_count (w);
  expect_error (c, h,
      "{\"request\":\"connect\",\"host\":\"127.0.0.1\",\"port\":9}", NULL, 478);
  fail_unless (worker_rtp_count (w) <= count + 2);
}

/* A WebRTC call relayed to fake workers: (a) offer/answer with audio and a
 * data channel, (b) Opus RTP both ways, decodable at the caller, (c) the
 * data channel both ways, (d) failover with continuous RTP, (g) hangup. */
GST_START_TEST (test_call)
{
  Rx rx = { .packets = g_array_new (FALSE, FALSE, sizeof (RxPacket)) };
  WhipCallerOptions o = {
    .tone_hz = 440, .data_channel = TRUE, .on_rtp = on_rtp, .user_data = &rx
  };
  JanusClient *c = new_client ();
  guint threads_before = janus_process_count_threads (janus, NULL);
  guint64 h = attach (c);
  WhipCaller *caller = whip_caller_new (&o);
  gchar *offer = whip_caller_create_offer (caller), *answer = NULL;
  guint16 port = call_ready (c, h, "call-1", offer, &answer);
  Worker *a = worker_new (port);
  gint64 rtt, latency;
  JsonObject *st;

  g_mutex_init (&rx.lock);
  whip_caller_set_answer (caller, answer);
  wait_media (c, h);
  fail_unless_equals_int (janus_process_count_threads (janus, "va-relay"), 1);
  g_print ("janus threads: %u before the call, %u during it\n", threads_before,
      janus_process_count_threads (janus, NULL));

  fail_unless_equals_int (connect_worker (c, h, a), 1);
  fail_unless (worker_wait_rtp (a, 0, 25), "the worker gets no caller RTP");
  g_mutex_lock (&a->lock);
  fail_unless_equals_int (a->last_pt, OPUS_PT);
  g_mutex_unlock (&a->lock);
  worker_start_audio (
      a, 0xA0A0A0A0, g_random_int_range (0, 65536), g_random_int (), 440);
  fail_unless (whip_caller_wait_audio (caller, 0.05, TIMEOUT_MS),
      "the caller hears nothing of the worker (peak RMS %.3f)",
      whip_caller_get_peak_rms (caller));

  rtt = check_data_channel (caller, a);
  check_failover (c, h, port, a, &rx);

  st = status (c, h);
  fail_unless (num (st, "rtp_from_caller") > 100);
  fail_unless (num (st, "rtp_to_caller") > 100);
  fail_unless_equals_int (num (st, "data_from_caller"), 6);
  fail_unless_equals_int (num (st, "data_to_caller"), 6);
  fail_unless_equals_string (str (st, "state"), "media");
  fail_unless_equals_string (str (st, "relay"), "running");
  json_object_unref (st);
  latency = median_latency (rx.packets);
  g_print ("data channel round trip (caller -> worker -> caller): %.1f ms; "
           "worker -> caller RTP latency, median: %.1f ms\n",
      rtt / 1000.0, latency / 1000.0);

  check_hangup (c, h, a);
  worker_free (a);
  whip_caller_free (caller);
  g_free (answer);
  g_free (offer);
  janus_client_free (c);
  g_array_free (rx.packets, TRUE);
  g_mutex_clear (&rx.lock);
}

GST_END_TEST;

/* @n consecutive UDP ports free on 127.0.0.1 now; the first of them. */
static guint16
free_ports (guint n)
{
  for (guint attempt = 0; attempt < 100; attempt++) {
    guint16 base = (guint16)g_random_int_range (30000, 60000 - n);
    gboolean ok = TRUE;
    for (guint i = 0; i < n && ok; i++) {
      struct sockaddr_in a = { .sin_family = AF_INET,
        .sin_port = htons (base + i),
        .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
      gint fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      ok = bind (fd, (struct sockaddr *)&a, sizeof a) == 0;
      close (fd);
    }
    if (ok)
      return base;
  }
  return 0;
}

static Suite *
janus_plugin_suite (void)
{
  Suite *s = suite_create ("janus-plugin");
  TCase *tc = tcase_create ("general");

  /* No per-test timeout without a fork (main): meson's bounds the run. */
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_plugin_loaded);
  tcase_add_test (tc, test_bad_requests);
  tcase_add_test (tc, test_answer_and_connect);
  tcase_add_test (tc, test_ports_exhausted);
  tcase_add_test (tc, test_call);
  return s;
}

int
main (int argc, char **argv)
{
  g_autofree gchar *missing = NULL;
  g_autofree gchar *config = NULL;
  JanusProcessOptions options = { 0 };
  gint failed;

  gst_check_init (&argc, &argv);
  missing = janus_process_missing ();
  if (missing)
    return test_cannot_run ("%s", missing);
  port_min = free_ports (PORTS);
  if (port_min == 0) {
    g_printerr ("no %d consecutive free UDP ports on 127.0.0.1\n", PORTS);
    return 1;
  }
  sent_times = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  config = g_strdup_printf ("general: {\n"
                            "  local_ip = \"127.0.0.1\"\n"
                            "  rtp_port_range = \"%u-%u\"\n"
                            "  worker_networks = \"127.0.0.0/8, ::1/128\"\n"
                            "}\n",
      port_min, port_min + PORTS - 1);
  options.plugin_config = config;
  janus = janus_process_start (&options);
  if (janus == NULL)
    return 1;
  /* No fork per test: a child forked while libsoup and GIO's threads of
   * main (which waited for Janus over HTTP) were busy could hang. */
  g_setenv ("CK_FORK", "no", TRUE);
  failed =
      gst_check_run_suite (janus_plugin_suite (), "janus-plugin", __FILE__);
  janus_process_stop (janus, failed > 0);
  g_hash_table_unref (sent_times);
  /* Without a fork per test, a failed test leaves its pipelines running,
   * and gst_deinit() at exit would wait for them forever. */
  if (failed > 0)
    _exit (1);
  return 0;
}

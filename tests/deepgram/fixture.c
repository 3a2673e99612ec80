/* A deepgramsink + deepgramsrc pair under test, and the emulator behind it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include "fixture.h"

#define CHUNK_MS 20
#define TONE_HZ 440
#define TONE_AMPLITUDE 8000

/* Starts the emulator (which picks ASan's fast unwinder itself: main.c). */
EmuProcess *
fx_start_emulator (const gchar *const *args)
{
  EmuProcess *emu = emu_process_start (args);

  fail_unless (emu != NULL, "the emulator did not start");
  return emu;
}

static void
record_message (Fx *fx, GstMessage *msg)
{
  g_mutex_lock (&fx->lock);
  g_ptr_array_add (fx->msgs, gst_message_ref (msg));
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
}

static GstBusSyncReply
on_bus_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  GstMessageType t = GST_MESSAGE_TYPE (msg);

  if (t == GST_MESSAGE_ELEMENT || t == GST_MESSAGE_ERROR ||
      t == GST_MESSAGE_WARNING)
    record_message (data, msg);
  return GST_BUS_DROP;
}

static GstPadProbeReturn
on_src_data (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  Fx *fx = data;
  GstMiniObject *obj = info->data;

  if (GST_IS_EVENT (obj)) {
    GstEventType t = GST_EVENT_TYPE (obj);
    if (t == GST_EVENT_STREAM_START || t == GST_EVENT_CAPS ||
        t == GST_EVENT_SEGMENT || t == GST_EVENT_LATENCY)
      return GST_PAD_PROBE_OK;
  }
  g_mutex_lock (&fx->lock);
  g_ptr_array_add (fx->out, gst_mini_object_ref (obj));
  if (GST_IS_EVENT (obj) && GST_EVENT_TYPE (obj) == GST_EVENT_EOS)
    fx->eos = TRUE;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
  return GST_PAD_PROBE_OK;
}

static void
set_props (GstElement *e, const gchar *const *props)
{
  for (; props && *props; props++) {
    gchar **kv = g_strsplit (*props, "=", 2);

    fail_unless (kv[0] && kv[1], "bad property %s", *props);
    gst_util_set_object_arg (G_OBJECT (e), kv[0], kv[1]);
    g_strfreev (kv);
  }
}

static void
start_src (Fx *fx, const gchar *const *src_props)
{
  GstElement *fakesink = gst_element_factory_make ("fakesink", NULL);
  GstPad *pad;

  fx->pipe = gst_pipeline_new (NULL);
  fx->src = gst_element_factory_make ("deepgramsrc", NULL);
  fail_unless (fx->src != NULL);
  g_object_set (fx->src, "session", fx->session, NULL);
  set_props (fx->src, src_props);
  g_object_set (fakesink, "sync", FALSE, "async", FALSE, NULL);
  gst_bin_add_many (GST_BIN (fx->pipe), fx->src, fakesink, NULL);
  fail_unless (gst_element_link (fx->src, fakesink));
  pad = gst_element_get_static_pad (fx->src, "src");
  gst_pad_add_probe (pad,
      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      on_src_data, fx, NULL);
  gst_object_unref (pad);
  gst_bus_set_sync_handler (
      GST_ELEMENT_BUS (fx->pipe), on_bus_message, fx, NULL);
  fail_unless (gst_element_set_state (fx->pipe, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
}

/**
 * fx_new:
 * @emu: (nullable): the emulator; the sink's url and api-key point at it
 * @caps: the sink's input caps (S16LE mono, or mu-law 8000 Hz)
 * @sink_props: "name=value" strings, applied after the defaults
 *
 * Returns: a running pair on a session of its own.
 */
Fx *
fx_new (EmuProcess *emu, const gchar *caps, const gchar *const *sink_props,
    const gchar *const *src_props)
{
  Fx *fx = g_new0 (Fx, 1);
  GstCaps *c = gst_caps_from_string (caps);
  GstStructure *s = gst_caps_get_structure (c, 0);
  gint rate = 0;

  g_mutex_init (&fx->lock);
  g_cond_init (&fx->cond);
  fx->out =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_mini_object_unref);
  fx->msgs =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_mini_object_unref);
  fx->emu = emu;
  fx->session = gst_voice_session_make_unique_name ("test");
  gst_structure_get_int (s, "rate", &rate);
  fx->rate = (guint)rate;
  fx->bpf = gst_structure_has_name (s, "audio/x-mulaw") ? 1 : 2;
  gst_caps_unref (c);

  start_src (fx, src_props);

  fx->sink = gst_element_factory_make ("deepgramsink", NULL);
  fail_unless (fx->sink != NULL);
  g_object_set (
      fx->sink, "session", fx->session, "api-key", "test-key-0123456789", NULL);
  if (emu) {
    gchar *url = fx_url (fx);
    g_object_set (fx->sink, "url", url, NULL);
    g_free (url);
  }
  set_props (fx->sink, sink_props);
  fx->sink_bus = gst_bus_new ();
  gst_bus_set_sync_handler (fx->sink_bus, on_bus_message, fx, NULL);
  gst_element_set_bus (fx->sink, fx->sink_bus);
  fx->h = gst_harness_new_with_element (fx->sink, "sink", NULL);
  gst_harness_set_src_caps_str (fx->h, caps);
  return fx;
}

void
fx_free (Fx *fx)
{
  gst_harness_teardown (fx->h);
  gst_element_set_state (fx->pipe, GST_STATE_NULL);
  gst_object_unref (fx->pipe);
  gst_object_unref (fx->sink);
  gst_bus_set_flushing (fx->sink_bus, TRUE);
  gst_object_unref (fx->sink_bus);
  g_ptr_array_unref (fx->out);
  g_ptr_array_unref (fx->msgs);
  g_free (fx->session);
  g_mutex_clear (&fx->lock);
  g_cond_clear (&fx->cond);
  g_free (fx);
}

gchar *
fx_url (Fx *fx)
{
  return g_strconcat (emu_process_get_ws_url (fx->emu), "/v1/listen", NULL);
}

/* G.711 mu-law of one sample. */
static guint8
mulaw (gint16 pcm)
{
  gint sign = pcm < 0 ? 0x80 : 0, exponent = 7, mantissa;
  gint v = MIN (ABS ((gint)pcm), 32635) + 0x84;

  while (exponent > 0 && !(v & (1 << (exponent + 7))))
    exponent--;
  mantissa = (v >> (exponent + 3)) & 0x0f;
  return (guint8) ~(sign | (exponent << 4) | mantissa);
}

static void
push_samples (Fx *fx, const gint16 *pcm, guint n)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, (gsize)n * fx->bpf, NULL);
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  if (fx->bpf == 1) {
    for (guint i = 0; i < n; i++)
      map.data[i] = mulaw (pcm[i]);
  } else {
    memcpy (map.data, pcm, (gsize)n * 2);
  }
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = fx->pts;
  GST_BUFFER_DURATION (buf) = gst_util_uint64_scale (n, GST_SECOND, fx->rate);
  fx->pts += GST_BUFFER_DURATION (buf);
  fail_unless_equals_int (gst_harness_push (fx->h, buf), GST_FLOW_OK);
}

static void
push_wave (Fx *fx, guint ms, gboolean tone)
{
  guint per_chunk = fx->rate * CHUNK_MS / 1000;
  guint total = (guint)((guint64)fx->rate * ms / 1000);
  gint16 *pcm = g_new0 (gint16, per_chunk);
  static guint64 phase;

  for (guint done = 0; done < total; done += per_chunk) {
    guint n = MIN (per_chunk, total - done);
    for (guint i = 0; i < n; i++, phase++)
      pcm[i] = tone ? (gint16)(TONE_AMPLITUDE *
                          sin (2 * G_PI * TONE_HZ * phase / fx->rate))
                    : 0;
    push_samples (fx, pcm, n);
  }
  g_free (pcm);
}

/* Pushes @ms of a tone: speech to the emulator's energy detector. */
void
fx_push_tone (Fx *fx, guint ms)
{
  push_wave (fx, ms, TRUE);
}

void
fx_push_silence (Fx *fx, guint ms)
{
  push_wave (fx, ms, FALSE);
}

/* What silerovad gate=true sends instead of silence. */
void
fx_push_gap (Fx *fx, guint ms)
{
  GstClockTime d = ms * GST_MSECOND;

  fail_unless (gst_harness_push_event (fx->h, gst_event_new_gap (fx->pts, d)));
  fx->pts += d;
}

void
fx_push_event (Fx *fx, GstEvent *event)
{
  fail_unless (gst_harness_push_event (fx->h, event));
}

void
fx_push_eos (Fx *fx)
{
  fail_unless (gst_harness_push_event (fx->h, gst_event_new_eos ()));
}

gchar *
fx_data_path (const gchar *name)
{
  const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");

  return g_build_filename (
      src ? src : ".", "tests", "deepgram", "data", name, NULL);
}

/* Reads a mono S16LE WAV of tests/deepgram/data. */
GBytes *
fx_load_wav (const gchar *name, guint *rate)
{
  gchar *path = fx_data_path (name);
  gchar *data = NULL;
  gsize len = 0, off = 12;
  GBytes *pcm = NULL;

  fail_unless (g_file_get_contents (path, &data, &len, NULL), "%s", path);
  while (off + 8 <= len && pcm == NULL) {
    guint32 size = GST_READ_UINT32_LE (data + off + 4);
    if (memcmp (data + off, "fmt ", 4) == 0) {
      fail_unless_equals_int (GST_READ_UINT16_LE (data + off + 10), 1);
      *rate = GST_READ_UINT32_LE (data + off + 12);
    } else if (memcmp (data + off, "data", 4) == 0) {
      size = (guint32)MIN ((gsize)size, len - off - 8);
      pcm = g_bytes_new (data + off + 8, size & ~1u);
    }
    off += 8 + size + (size & 1);
  }
  fail_unless (pcm != NULL, "no data in %s", path);
  g_free (data);
  g_free (path);
  return pcm;
}

/* Pushes a WAV (at the fixture's rate) in 20 ms buffers. */
void
fx_push_wav (Fx *fx, const gchar *name)
{
  guint rate = 0;
  GBytes *pcm = fx_load_wav (name, &rate);
  gsize len;
  const gint16 *s = g_bytes_get_data (pcm, &len);
  guint n = len / 2, per_chunk = rate * CHUNK_MS / 1000;

  fail_unless_equals_int (rate, fx->rate);
  for (guint done = 0; done < n; done += per_chunk)
    push_samples (fx, s + done, MIN (per_chunk, n - done));
  g_bytes_unref (pcm);
}

const GstStructure *
fx_find_msg (Fx *fx, const gchar *name, guint from)
{
  for (guint i = from; i < fx->msgs->len; i++) {
    GstMessage *m = g_ptr_array_index (fx->msgs, i);
    const GstStructure *s = gst_message_get_structure (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT && s &&
        gst_structure_has_name (s, name))
      return s;
  }
  return NULL;
}

guint
fx_count_msgs (Fx *fx, const gchar *name)
{
  guint n = 0;

  for (guint i = 0; i < fx->msgs->len; i++) {
    GstMessage *m = g_ptr_array_index (fx->msgs, i);
    const GstStructure *s = gst_message_get_structure (m);
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT && s &&
        gst_structure_has_name (s, name))
      n++;
  }
  return n;
}

/* Final transcript buffers out of the src so far. */
guint
fx_count_finals (Fx *fx)
{
  guint n = 0;

  for (guint i = 0; i < fx->out->len; i++) {
    GstMiniObject *o = g_ptr_array_index (fx->out, i);
    GstVoiceTranscriptMeta *meta;
    if (!GST_IS_BUFFER (o))
      continue;
    meta = gst_buffer_get_voice_transcript_meta (GST_BUFFER (o));
    if (meta && meta->is_final)
      n++;
  }
  return n;
}

GstMessage *
fx_find_error (Fx *fx, GstMessageType type)
{
  for (guint i = 0; i < fx->msgs->len; i++) {
    GstMessage *m = g_ptr_array_index (fx->msgs, i);
    if (GST_MESSAGE_TYPE (m) == type)
      return m;
  }
  return NULL;
}

/* All final transcript text out of the src, space-joined. */
gchar *
fx_final_text (Fx *fx)
{
  GString *s = g_string_new (NULL);

  g_mutex_lock (&fx->lock);
  for (guint i = 0; i < fx->out->len; i++) {
    GstMiniObject *o = g_ptr_array_index (fx->out, i);
    GstVoiceTranscriptMeta *meta;
    GstMapInfo map;

    if (!GST_IS_BUFFER (o))
      continue;
    meta = gst_buffer_get_voice_transcript_meta (GST_BUFFER (o));
    if (!meta || !meta->is_final)
      continue;
    gst_buffer_map (GST_BUFFER (o), &map, GST_MAP_READ);
    if (s->len)
      g_string_append_c (s, ' ');
    g_string_append_len (s, (const gchar *)map.data, map.size);
    gst_buffer_unmap (GST_BUFFER (o), &map);
  }
  g_mutex_unlock (&fx->lock);
  return g_string_free (s, FALSE);
}

/* How many of @keywords are words of @text (case and punctuation aside). */
guint
fx_count_keywords (const gchar *text, const gchar *const *keywords)
{
  gchar *lower = g_utf8_strdown (text, -1);
  gchar **words = g_strsplit_set (lower, " .,?!", -1);
  guint n = 0;

  for (guint i = 0; keywords[i]; i++)
    if (g_strv_contains ((const gchar *const *)words, keywords[i]))
      n++;
  g_strfreev (words);
  g_free (lower);
  return n;
}

/* Lets @ms of real time pass, for behaviour defined by a server's real-time
 * timeout (Deepgram's 10 s idle close); nothing is asserted on it. */
void
fx_wait_quietly (Fx *fx, guint ms)
{
  gint64 end = g_get_monotonic_time () + ms * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&fx->lock);
  while (g_get_monotonic_time () < end)
    g_cond_wait_until (&fx->cond, &fx->lock, end);
  g_mutex_unlock (&fx->lock);
}

/* How many Deepgram events named @event the emulator recorded. */
guint
fx_emu_count_events (EmuProcess *emu, const gchar *event)
{
  gchar *path =
      g_strdup_printf ("/emulator/events?service=deepgram&event=%s", event);
  guint status = 0, n;
  gchar *body = emu_process_request (emu, path, NULL, &status);
  JsonParser *parser = json_parser_new ();
  JsonObject *o;

  fail_unless (body != NULL && status == 200, "GET %s: %u", path, status);
  fail_unless (json_parser_load_from_data (parser, body, -1, NULL));
  o = json_node_get_object (json_parser_get_root (parser));
  n = json_array_get_length (json_object_get_array_member (o, "events"));
  g_object_unref (parser);
  g_free (body);
  g_free (path);
  return n;
}

/* Arms @fault (emulator fault syntax) for the next Deepgram connection. */
void
fx_emu_arm_fault (EmuProcess *emu, const gchar *fault)
{
  gchar *req = g_strdup_printf (
      "{\"service\":\"deepgram\",\"fault\":\"%s\",\"count\":1}", fault);
  guint status = 0;
  gchar *body = emu_process_request (emu, "/emulator/faults", req, &status);

  fail_unless (status == 200 || status == 201, "arming %s: %u %s", fault,
      status, body ? body : "");
  g_free (body);
  g_free (req);
}

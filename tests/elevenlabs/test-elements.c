/* elevenlabssink, elevenlabssrc and the elevenlabs bin against
 * voiceagent-emulator (real synthesis with espeak-ng behind the ElevenLabs
 * protocols). The src runs on the system clock: these tests check what is
 * said and what the elements report, never how long anything took.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/app/gstappsrc.h>
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "emulator-process.h"
#include "voice.h"

#define WAIT_S 60

typedef struct
{
  EmuProcess *emu;
  GstHarness *sink; /* elevenlabssink: the test pushes text and events */
  GstHarness *src; /* elevenlabssrc on the system clock */
  GstBus *bus; /* both elements' messages */
  GPtrArray *msgs; /* of GstMessage*, in posting order */
  GByteArray *audio; /* every sample the src pushed */
  guint64 loud; /* samples that were not silent */
} Fx;

static EmuProcess *
start_emulator (const gchar *const *args)
{
  EmuProcess *emu = emu_process_start (args);

  fail_unless (emu != NULL, "voiceagent-emulator did not start");
  return emu;
}

/* Applies "name=value" strings. */
static void
set_props (GstElement *e, const gchar *const *props)
{
  for (; props && *props; props++) {
    gchar **kv = g_strsplit (*props, "=", 2);
    gst_util_set_object_arg (G_OBJECT (e), kv[0], kv[1]);
    g_strfreev (kv);
  }
}

static GstElement *
make (Fx *fx, const gchar *factory, const gchar *session,
    const gchar *const *props)
{
  GstElement *e = gst_element_factory_make (factory, NULL);

  fail_unless (e != NULL);
  g_object_set (e, "session", session, "url", emu_process_get_ws_url (fx->emu),
      "api-key", "test-key", NULL);
  set_props (e, props);
  gst_element_set_bus (e, fx->bus);
  return e;
}

static Fx *
fx_new (const gchar *const *emu_args, const gchar *const *sink_props,
    const gchar *const *src_props)
{
  Fx *fx = g_new0 (Fx, 1);
  gchar *session = gst_voice_session_make_unique_name ("test");
  GstElement *sink, *src;

  fx->emu = start_emulator (emu_args);
  fx->bus = gst_bus_new ();
  fx->msgs = g_ptr_array_new_with_free_func ((GDestroyNotify)gst_message_unref);
  fx->audio = g_byte_array_new ();
  sink = make (fx, "elevenlabssink", session, sink_props);
  src = make (fx, "elevenlabssrc", session, src_props);
  fx->src = gst_harness_new_with_element (src, NULL, "src");
  gst_harness_use_systemclock (fx->src);
  gst_harness_play (fx->src);
  fx->sink = gst_harness_new_with_element (sink, "sink", NULL);
  gst_harness_set_src_caps_str (fx->sink, "text/x-raw,format=utf8");
  gst_object_unref (sink);
  gst_object_unref (src);
  g_free (session);
  return fx;
}

static void
fx_free (Fx *fx)
{
  gst_harness_teardown (fx->sink);
  gst_harness_teardown (fx->src);
  gst_bus_set_flushing (fx->bus, TRUE);
  gst_object_unref (fx->bus);
  g_ptr_array_unref (fx->msgs);
  g_byte_array_unref (fx->audio);
  emu_process_stop (fx->emu);
  g_free (fx);
}

static GstBuffer *
agent_text (guint turn, const gchar *text, gboolean last)
{
  GstBuffer *buf =
      *text ? gst_buffer_new_memdup (text, strlen (text)) : gst_buffer_new ();

  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_AGENT, TRUE, last, 1.0f, turn);
  return buf;
}

static void
fx_say (Fx *fx, guint turn, const gchar *text, gboolean last)
{
  fail_unless_equals_int (
      gst_harness_push (fx->sink, agent_text (turn, text, last)), GST_FLOW_OK);
}

/* ---- Messages ---- */

static void
collect_messages (Fx *fx)
{
  GstMessage *msg;

  while ((msg = gst_bus_pop (fx->bus))) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *err = NULL;
      gst_message_parse_error (msg, &err, NULL);
      GST_INFO ("error: %s", err->message);
      g_error_free (err);
    }
    g_ptr_array_add (fx->msgs, msg);
  }
}

/* The first `name` message with `event` (and `turn`, unless 0). */
static const GstStructure *
find (Fx *fx, const gchar *name, const gchar *event, guint turn)
{
  for (guint i = 0; i < fx->msgs->len; i++) {
    GstMessage *msg = g_ptr_array_index (fx->msgs, i);
    const GstStructure *s = gst_message_get_structure (msg);
    guint t = 0;

    if (GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ELEMENT ||
        !gst_structure_has_name (s, name) ||
        g_strcmp0 (gst_structure_get_string (s, "event"), event) != 0)
      continue;
    if (turn && (!gst_structure_get_uint (s, "turn", &t) || t != turn))
      continue;
    return s;
  }
  return NULL;
}

static guint
count (Fx *fx, const gchar *name, const gchar *event)
{
  guint n = 0;

  for (guint i = 0; i < fx->msgs->len; i++) {
    const GstStructure *s =
        gst_message_get_structure (g_ptr_array_index (fx->msgs, i));
    n += s && gst_structure_has_name (s, name) &&
        g_strcmp0 (gst_structure_get_string (s, "event"), event) == 0;
  }
  return n;
}

/* The highest value of the uint @field in `elevenlabssink` @event
 * messages. */
static guint
max_field (Fx *fx, const gchar *event, const gchar *field)
{
  guint max = 0;

  for (guint i = 0; i < fx->msgs->len; i++) {
    const GstStructure *s =
        gst_message_get_structure (g_ptr_array_index (fx->msgs, i));
    guint v = 0;
    if (s && gst_structure_has_name (s, "elevenlabssink") &&
        g_strcmp0 (gst_structure_get_string (s, "event"), event) == 0 &&
        gst_structure_get_uint (s, field, &v))
      max = MAX (max, v);
  }
  return max;
}

static guint
count_type (Fx *fx, GstMessageType type)
{
  guint n = 0;

  for (guint i = 0; i < fx->msgs->len; i++)
    n += GST_MESSAGE_TYPE (g_ptr_array_index (fx->msgs, i)) == type;
  return n;
}

static GstMessage *
find_error (Fx *fx)
{
  for (guint i = 0; i < fx->msgs->len; i++) {
    GstMessage *msg = g_ptr_array_index (fx->msgs, i);
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
      return msg;
  }
  return NULL;
}

/* Plays the src (keeping its audio) until @done holds. */
typedef gboolean (*Check) (Fx *fx, gconstpointer data);

static void
run_until (Fx *fx, Check done, gconstpointer data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_USEC_PER_SEC;

  for (;;) {
    GstBuffer *buf = gst_harness_pull (fx->src);
    GstMapInfo map;

    fail_unless (buf != NULL);
    gst_buffer_map (buf, &map, GST_MAP_READ);
    g_byte_array_append (fx->audio, map.data, (guint)map.size);
    for (gsize i = 0; i < map.size / 2; i++)
      fx->loud += ((const gint16 *)map.data)[i] != 0;
    gst_buffer_unmap (buf, &map);
    gst_buffer_unref (buf);
    collect_messages (fx);
    if (done (fx, data))
      return;
    fail_if (g_get_monotonic_time () > deadline, "timed out");
  }
}

static gboolean
turn_stopped (Fx *fx, gconstpointer turn)
{
  return find (fx, "elevenlabssrc", "agent-speaking-stopped",
             GPOINTER_TO_UINT (turn)) != NULL;
}

static gboolean
turn_started (Fx *fx, gconstpointer turn)
{
  return find (fx, "elevenlabssrc", "agent-speaking-started",
             GPOINTER_TO_UINT (turn)) != NULL;
}

static gboolean
first_audio (Fx *fx, gconstpointer turn)
{
  return find (fx, "elevenlabssink", "first-audio", GPOINTER_TO_UINT (turn)) !=
      NULL;
}

static gboolean
sink_event (Fx *fx, gconstpointer event)
{
  return find (fx, "elevenlabssink", event, 0) != NULL;
}

static gboolean
has_error (Fx *fx, gconstpointer unused)
{
  return find_error (fx) != NULL;
}

/* Plays on for @n buffers. */
static gboolean
count_down (Fx *fx, gconstpointer n)
{
  return --*(guint *)n == 0;
}

static void
play_buffers (Fx *fx, guint n)
{
  run_until (fx, (Check)count_down, &n);
}

/* The next `spoken` event that left the sink's pad upstream (the src's
 * thread pushes it there), or NULL after a minute. */
static GstEvent *
pull_spoken (Fx *fx)
{
  GstEvent *ev;

  while ((ev = gst_harness_pull_upstream_event (fx->sink))) {
    if (gst_voice_event_get_voice_type (ev) == GST_VOICE_EVENT_SPOKEN)
      return ev;
    gst_event_unref (ev);
  }
  return NULL;
}

static guint
emu_events (EmuProcess *emu, const gchar *event)
{
  gchar *path =
      g_strdup_printf ("/emulator/events?service=elevenlabs&event=%s", event);
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

static gdouble
rms (const gint16 *s, gsize n)
{
  gdouble acc = 0;

  for (gsize i = 0; i < n; i++)
    acc += (gdouble)s[i] * s[i];
  return n ? sqrt (acc / n) : 0;
}

static guint64
get_u64 (const GstStructure *s, const gchar *field)
{
  guint64 v = 0;

  fail_unless (gst_structure_get_uint64 (s, field, &v), field);
  return v;
}

/* ---- Tests ---- */

#define SENTENCE                                                               \
  "Hello there. This sentence is spoken by the emulator's speech engine."

/* Guards: text becomes real speech (espeak-ng through the multi-context
 * socket): non-silent, of a plausible duration for its length, reported
 * per turn, and `spoken` complete goes upstream. */
GST_START_TEST (test_speech)
{
  Fx *fx = fx_new (NULL, NULL, NULL);
  const GstStructure *s;
  GstEvent *spoken;
  const gchar *text;
  gboolean complete = FALSE;
  gdouble seconds = 0, chars = strlen (SENTENCE);
  guint64 samples;
  guint characters = 0;

  /* As llmtransform does: the reply, then an empty buffer ending it. */
  fx_say (fx, 1, SENTENCE, FALSE);
  fx_say (fx, 1, "", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));

  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 1);
  fail_unless (gst_structure_get_double (s, "audio-seconds", &seconds));
  /* A speaker says 5 to 30 characters a second. */
  fail_unless (seconds > chars / 30 && seconds < chars / 5, "%f s", seconds);
  samples = get_u64 (s, "audio-duration") * 16000 / GST_SECOND;
  fail_unless (fx->loud > samples / 2, "%" G_GUINT64_FORMAT " loud", fx->loud);
  fail_unless (rms ((const gint16 *)fx->audio->data, fx->audio->len / 2) > 300);
  fail_unless_equals_string (
      gst_structure_get_string (s, "spoken-text"), SENTENCE);
  fail_unless (gst_structure_get_uint (s, "characters", &characters));
  /* What was sent: the text and the space that ends each piece. */
  fail_unless_equals_int (characters, chars + 1);
  fail_unless (GST_CLOCK_TIME_IS_VALID (get_u64 (s, "ttfb")));

  fail_unless (find (fx, "elevenlabssink", "first-audio", 1));
  fail_unless (find (fx, "elevenlabssink", "turn-done", 1));
  fail_unless (find (fx, "elevenlabssrc", "agent-speaking-started", 1));
  spoken = pull_spoken (fx);
  fail_unless (spoken != NULL);
  fail_unless (
      gst_voice_event_parse_spoken (spoken, NULL, NULL, &text, &complete));
  fail_unless (complete);
  fail_unless_equals_string (text, SENTENCE);
  gst_event_unref (spoken);
  fail_unless_equals_int (count (fx, "elevenlabssink", "connected"), 1);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: a turn's first clause is spoken at once, before its sentence
 * ends (flush-first-clause), and with the property off only once the
 * sentence is complete (the service's auto mode). */
GST_START_TEST (test_first_clause_flushed)
{
  const gchar *const off[] = { "flush-first-clause=false", NULL };
  Fx *fx = fx_new (NULL, NULL, NULL);

  /* Well within turn-timeout-ms (2 s), which would also flush it. */
  fx_say (fx, 1, "It is sunny and warm today,", FALSE);
  play_buffers (fx, 50); /* one second */
  fail_unless (first_audio (fx, GUINT_TO_POINTER (1)));
  fx_free (fx);

  fx = fx_new (NULL, off, NULL);
  fx_say (fx, 1, "It is sunny and warm today,", FALSE);
  play_buffers (fx, 50); /* one second */
  fail_if (first_audio (fx, GUINT_TO_POINTER (1)));
  fx_say (fx, 1, " with a light breeze. ", FALSE);
  run_until (fx, first_audio, GUINT_TO_POINTER (1));
  fx_free (fx);
}

GST_END_TEST;

/* Guards: 20 barge-ins in a row never trip ElevenLabs' limit of 5
 * contexts: one connection, no error frame, and the next turn is spoken. */
GST_START_TEST (test_rapid_interruptions)
{
  Fx *fx = fx_new (NULL, NULL, NULL);
  const GstStructure *s;

  run_until (fx, sink_event, "connected");
  for (guint turn = 1; turn <= 20; turn++) {
    gchar *text = g_strdup_printf (
        "This is reply number %u, cut short. It has a second sentence.", turn);
    fx_say (fx, turn, text, TRUE);
    /* The odd ones as soon as their audio comes, the even ones at once. */
    if (turn % 2)
      run_until (fx, first_audio, GUINT_TO_POINTER (turn));
    fail_unless (gst_harness_push_event (
        fx->sink, gst_voice_event_new_interrupt (0, turn, "user_interrupted")));
    g_free (text);
  }
  fx_say (fx, 21, "The answer that is heard.", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (21));

  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 21);
  fail_unless_equals_string (
      gst_structure_get_string (s, "spoken-text"), "The answer that is heard.");
  /* Each was cut: cancelled at the sink or, if all its audio was in,
   * dropped by the src; none played to its end. */
  fail_unless (count (fx, "elevenlabssink", "turn-cancelled") >= 10);
  for (guint i = 0; i < fx->msgs->len; i++) {
    const GstStructure *m =
        gst_message_get_structure (g_ptr_array_index (fx->msgs, i));
    gboolean interrupted = FALSE;
    guint turn = 0;
    if (m &&
        g_strcmp0 (gst_structure_get_string (m, "event"),
            "agent-speaking-stopped") == 0 &&
        gst_structure_get_uint (m, "turn", &turn) && turn <= 20) {
      gst_structure_get_boolean (m, "interrupted", &interrupted);
      fail_unless (interrupted, "turn %u played to its end", turn);
    }
  }
  fail_unless_equals_int (count (fx, "elevenlabssink", "error-frame"), 0);
  fail_unless_equals_int (count (fx, "elevenlabssink", "disconnected"), 0);
  fail_unless_equals_int (count (fx, "elevenlabssink", "reconnected"), 0);
  fail_unless_equals_int (emu_events (fx->emu, "error"), 0);
  /* Many more than five contexts over the socket's life, never five at
   * once. */
  fail_unless (emu_events (fx->emu, "context-open") > 10);
  fail_unless (count (fx, "elevenlabssink", "context-opened") > 10);
  fail_unless (max_field (fx, "context-opened", "open") <= 4);
  fail_if (find_error (fx));
  fx_free (fx);
}

GST_END_TEST;

/* Guards: after an error frame (the service's inactivity timeout, here
 * 1 s, hit mid-turn), the sink reconnects and re-sends only the text not
 * spoken yet; the whole turn is heard once. */
GST_START_TEST (test_reconnect_after_error_frame)
{
  const gchar *sink_props[] = { "inactivity-timeout-ms=1000",
    "turn-timeout-ms=0", NULL };
  Fx *fx = fx_new (NULL, sink_props, NULL);
  const GstStructure *s;
  guint resent = 0;

  fx_say (fx, 1, "The first sentence is spoken at once.", FALSE);
  fx_say (fx, 1, "The second one waits", FALSE);
  run_until (fx, sink_event, "error-frame");
  s = find (fx, "elevenlabssink", "error-frame", 0);
  fail_unless_equals_string (
      gst_structure_get_string (s, "error"), "input_timeout_exceeded");
  run_until (fx, sink_event, "reconnected");
  s = find (fx, "elevenlabssink", "reconnected", 0);
  fail_unless (gst_structure_get_uint (s, "resent-characters", &resent));
  /* "The second one waits " was re-sent, not the first sentence. */
  fail_unless_equals_int (resent, strlen ("The second one waits "));

  fx_say (fx, 1, "for the end.", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 1);
  fail_unless_equals_string (gst_structure_get_string (s, "spoken-text"),
      "The first sentence is spoken at once. The second one waits for the "
      "end.");
  fail_unless_equals_int (emu_events (fx->emu, "error"), 1);
  fail_unless (count_type (fx, GST_MESSAGE_WARNING) >= 1);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: a rejected key is an element error that names
 * ELEVENLABS_API_KEY. */
GST_START_TEST (test_unauthorized)
{
  const gchar *emu_args[] = { "--elevenlabs-key", "the-right-key", NULL };
  Fx *fx = fx_new (emu_args, NULL, NULL);
  GError *err = NULL;
  const GstStructure *details = NULL;
  guint status = 0;

  run_until (fx, has_error, NULL);
  gst_message_parse_error (find_error (fx), &err, NULL);
  fail_unless (g_error_matches (
      err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED));
  fail_unless (strstr (err->message, "ELEVENLABS_API_KEY"), err->message);
  gst_message_parse_error_details (find_error (fx), &details);
  fail_unless (
      details && gst_structure_get_uint (details, "http-status-code", &status));
  fail_unless (status == 401 || status == 403, "%u", status);
  g_error_free (err);
  fail_unless_equals_int (
      gst_harness_push (fx->sink, agent_text (1, "Hi.", TRUE)), GST_FLOW_ERROR);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: barge-in mid-sentence stops the audio, and the `spoken` event
 * going upstream holds only the words played. */
GST_START_TEST (test_barge_in_reports_spoken)
{
  Fx *fx = fx_new (NULL, NULL, NULL);
  const gchar *full = "One two three four five six seven eight nine ten. "
                      "Eleven twelve thirteen fourteen fifteen sixteen.";
  const GstStructure *s;
  GstEvent *spoken;
  const gchar *text;
  gboolean complete = TRUE, interrupted = FALSE;

  fx_say (fx, 1, full, TRUE);
  run_until (fx, turn_started, GUINT_TO_POINTER (1));
  play_buffers (fx, 30); /* 0.6 s of speech */
  fail_unless (gst_harness_push_event (
      fx->sink, gst_voice_event_new_speech_start (0, 1)));
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 1);
  fail_unless (gst_structure_get_boolean (s, "interrupted", &interrupted));
  fail_unless (interrupted);
  fail_unless (find (fx, "elevenlabssink", "speech-start", 0));
  fail_unless (find (fx, "elevenlabssrc", "speech-start", 0));

  spoken = pull_spoken (fx);
  fail_unless (spoken != NULL);
  fail_unless (
      gst_voice_event_parse_spoken (spoken, NULL, NULL, &text, &complete));
  fail_if (complete);
  fail_unless (
      strlen (text) > 0 && strlen (text) < strlen (full) / 2, "%s", text);
  fail_unless (g_str_has_prefix (full, text), "%s", text);
  gst_event_unref (spoken);
  /* Nothing more is heard of that turn. */
  fx->loud = 0;
  play_buffers (fx, 25);
  fail_unless_equals_int (fx->loud, 0);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: a speech-start marked deferred stops nothing; agent-pause
 * silences the audio without ending the turn, agent-resume plays it on,
 * and the turn then ends complete. */
GST_START_TEST (test_pause_resume)
{
  Fx *fx = fx_new (NULL, NULL, NULL);
  const gchar *full = "One two three four five six seven eight nine ten.";
  const GstStructure *s;
  gboolean interrupted = TRUE;

  fx_say (fx, 1, full, TRUE);
  run_until (fx, turn_started, GUINT_TO_POINTER (1));
  play_buffers (fx, 10);
  fail_unless (gst_harness_push_event (fx->sink,
      gst_voice_event_mark_barge_in_deferred (
          gst_voice_event_new_speech_start (0, 1))));
  fail_unless (gst_harness_push_event (
      fx->sink, gst_voice_event_new_pause (0, 1, "speech-start")));
  play_buffers (fx, 3); /* the pause lands within a buffer or two */
  fx->loud = 0;
  play_buffers (fx, 40);
  fail_unless_equals_int (fx->loud, 0);
  fail_if (find (fx, "elevenlabssrc", "agent-speaking-stopped", 0));
  fail_unless (find (fx, "elevenlabssrc", "agent-pause", 0));
  fail_unless (gst_harness_push_event (
      fx->sink, gst_voice_event_new (GST_VOICE_EVENT_RESUME, 0, 1)));
  play_buffers (fx, 10);
  fail_unless (fx->loud > 0);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 0);
  fail_unless (gst_structure_get_boolean (s, "interrupted", &interrupted));
  fail_if (interrupted);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: the socket is kept alive between turns (keep-alives before the
 * inactivity timeout) and the next turn is spoken on it. */
GST_START_TEST (test_keepalive)
{
  const gchar *props[] = { "inactivity-timeout-ms=2000", NULL };
  Fx *fx = fx_new (NULL, props, NULL);

  fx_say (fx, 1, "First.", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  play_buffers (fx, 250); /* 5 s idle: the service would close at 2 s */
  fx_say (fx, 2, "Second.", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (2));
  fail_unless_equals_int (emu_events (fx->emu, "error"), 0);
  fail_unless_equals_int (count (fx, "elevenlabssink", "reconnected"), 0);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: the HTTP streaming fallback speaks, and mu-law output plays as
 * 8 kHz S16LE. */
GST_START_TEST (test_http_ulaw)
{
  const gchar *props[] = { "protocol=http", "output-format=ulaw_8000", NULL };
  const gchar *src_props[] = { "output-format=ulaw_8000", NULL };
  Fx *fx = fx_new (NULL, props, src_props);
  const GstStructure *s;
  GstCaps *caps;
  gint rate = 0;

  fx_say (fx, 1, "Spoken over HTTP. Two sentences.", TRUE);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 1);
  fail_unless (get_u64 (s, "audio-duration") > GST_SECOND / 2);
  fail_unless (rms ((const gint16 *)fx->audio->data, fx->audio->len / 2) > 300);
  caps = gst_pad_get_current_caps (fx->src->sinkpad);
  gst_structure_get_int (gst_caps_get_structure (caps, 0), "rate", &rate);
  fail_unless_equals_int (rate, 8000);
  gst_caps_unref (caps);
  fx_free (fx);
}

GST_END_TEST;

/* Guards: the `speak` action signal speaks on the src's own connection
 * (messages say `own`), with no `spoken` report for a sink half. */
GST_START_TEST (test_speak_signal)
{
  Fx *fx = fx_new (NULL, NULL, NULL);
  const GstStructure *s;
  gboolean ok = FALSE, own = FALSE;

  g_signal_emit_by_name (fx->src->element, "speak", "Said by the source.", &ok);
  fail_unless (ok);
  run_until (fx, turn_stopped, GUINT_TO_POINTER (1));
  s = find (fx, "elevenlabssrc", "agent-speaking-stopped", 1);
  fail_unless (gst_structure_get_boolean (s, "own", &own));
  fail_unless (own);
  fail_unless_equals_string (
      gst_structure_get_string (s, "spoken-text"), "Said by the source.");
  fail_unless (find (fx, "elevenlabssrc", "first-audio", 1));
  fail_if (find (fx, "elevenlabssrc", "spoken", 0));
  fx_free (fx);
}

GST_END_TEST;

/* ---- Pipelines ---- */

static GstMessage *
run_to_eos (GstElement *pipe)
{
  GstBus *bus = gst_element_get_bus (pipe);
  GstMessage *msg;

  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_timed_pop_filtered (
      bus, WAIT_S * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "no EOS");
  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
    GError *err = NULL;
    gst_message_parse_error (msg, &err, NULL);
    fail ("error: %s", err->message);
  }
  gst_object_unref (bus);
  return msg;
}

/* Samples of the data chunk of a 16-bit mono WAV file, or NULL. */
static GBytes *
wav_samples (const gchar *path)
{
  gchar *data;
  gsize len, pos = 12;

  fail_unless (g_file_get_contents (path, &data, &len, NULL));
  fail_unless (len > 44 && memcmp (data, "RIFF", 4) == 0 &&
      memcmp (data + 8, "WAVE", 4) == 0);
  while (pos + 8 <= len) {
    guint32 size = GUINT32_FROM_LE (*(guint32 *)(data + pos + 4));
    if (memcmp (data + pos, "data", 4) == 0) {
      GBytes *b = g_bytes_new (data + pos + 8, MIN (size, len - pos - 8));
      g_free (data);
      return b;
    }
    pos += 8 + size;
  }
  g_free (data);
  return NULL;
}

/* Guards: standalone, `elevenlabssrc text=... eos-after-text=true !
 * wavenc ! filesink` renders the speech to a WAV file and ends. */
GST_START_TEST (test_standalone_wav)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("elevenlabs-test-XXXXXX.wav", &path, NULL);
  gchar *desc = g_strdup_printf (
      "elevenlabssrc text=\"Rendered to a file, then the stream ends.\" "
      "eos-after-text=true url=%s api-key=k ! wavenc ! filesink location=%s",
      emu_process_get_ws_url (emu), path);
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GBytes *samples;
  gsize n;
  const gint16 *s;

  fail_unless (pipe != NULL && fd >= 0);
  close (fd);
  gst_message_unref (run_to_eos (pipe));
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (pipe);
  samples = wav_samples (path);
  fail_unless (samples != NULL);
  s = g_bytes_get_data (samples, &n);
  fail_unless (n / 2 > 16000, "%" G_GSIZE_FORMAT " samples", n / 2);
  fail_unless (rms (s, n / 2) > 300);
  g_bytes_unref (samples);
  g_unlink (path);
  g_free (path);
  g_free (desc);
  emu_process_stop (emu);
}

GST_END_TEST;

static GstFlowReturn
collect_sample (GstElement *appsink, gpointer data)
{
  GstSample *sample = NULL;

  g_signal_emit_by_name (appsink, "pull-sample", &sample);
  if (sample) {
    GstBuffer *buf = gst_sample_get_buffer (sample);
    GstMapInfo map;
    gst_buffer_map (buf, &map, GST_MAP_READ);
    g_byte_array_append (data, map.data, (guint)map.size);
    gst_buffer_unmap (buf, &map);
    gst_sample_unref (sample);
  }
  return GST_FLOW_OK;
}

/* Guards: the elevenlabs bin reads left to right (text in, speech out)
 * and EOS after the text ends the stream once the speech has played. */
GST_START_TEST (test_bin)
{
  EmuProcess *emu = start_emulator (NULL);
  gchar *desc = g_strdup_printf (
      "appsrc name=in caps=text/x-raw,format=utf8 format=time "
      "! elevenlabs url=%s api-key=k ! appsink name=out emit-signals=true "
      "sync=false",
      emu_process_get_ws_url (emu));
  GstElement *pipe = gst_parse_launch (desc, NULL);
  GstElement *in = gst_bin_get_by_name (GST_BIN (pipe), "in");
  GstElement *out = gst_bin_get_by_name (GST_BIN (pipe), "out");
  GByteArray *audio = g_byte_array_new ();

  g_signal_connect (out, "new-sample", G_CALLBACK (collect_sample), audio);
  fail_unless_equals_int (gst_app_src_push_buffer (GST_APP_SRC (in),
                              agent_text (1, "Spoken through the bin.", TRUE)),
      GST_FLOW_OK);
  gst_app_src_end_of_stream (GST_APP_SRC (in));
  gst_message_unref (run_to_eos (pipe));
  gst_element_set_state (pipe, GST_STATE_NULL);
  fail_unless (audio->len / 2 > 8000);
  fail_unless (rms ((const gint16 *)audio->data, audio->len / 2) > 300);
  g_byte_array_unref (audio);
  gst_object_unref (in);
  gst_object_unref (out);
  gst_object_unref (pipe);
  g_free (desc);
  emu_process_stop (emu);
}

GST_END_TEST;

static Suite *
elements_suite (void)
{
  Suite *s = suite_create ("elevenlabs-elements");
  TCase *tc = tcase_create ("general");

  gst_voice_init ();
  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_speech);
  tcase_add_test (tc, test_first_clause_flushed);
  tcase_add_test (tc, test_rapid_interruptions);
  tcase_add_test (tc, test_pause_resume);
  tcase_add_test (tc, test_reconnect_after_error_frame);
  tcase_add_test (tc, test_unauthorized);
  tcase_add_test (tc, test_barge_in_reports_spoken);
  tcase_add_test (tc, test_keepalive);
  tcase_add_test (tc, test_http_ulaw);
  tcase_add_test (tc, test_speak_signal);
  tcase_add_test (tc, test_standalone_wav);
  tcase_add_test (tc, test_bin);
  return s;
}

GST_CHECK_MAIN (elements);

/* deepgramsink + deepgramsrc against voiceagent-emulator (and, for the few
 * server behaviours the emulator cannot be asked for, a server of the
 * test's own). Nothing here measures time; waits have generous deadlines.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include "fixture.h"

/* GLib's first quark block is dropped by design once libsoup, GIO and
 * GStreamer are loaded; tests/lsan.supp matches it on full stacks only. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

#define CAPS_16K                                                               \
  "audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1"
#define CAPS_MULAW "audio/x-mulaw,rate=8000,channels=1"

static const gchar *const pizza_words[] = { "want", "order", "large", "pizza",
  "cheese", NULL };

static const gchar *const scripted[] = { "-q", "--stt-engine", "scripted",
  NULL };

/* Item @i of what the src pushed (lock held). */
static GstMiniObject *
out_at (Fx *fx, guint i)
{
  return g_ptr_array_index (fx->out, i);
}

static gchar *
buffer_text (GstBuffer *buf)
{
  GstMapInfo map;
  gchar *text;

  gst_buffer_map (buf, &map, GST_MAP_READ);
  text = g_strndup ((const gchar *)map.data, map.size);
  gst_buffer_unmap (buf, &map);
  return text;
}

static gboolean
is_voice_event (GstMiniObject *o, GstVoiceEventType type)
{
  return GST_IS_EVENT (o) &&
      gst_voice_event_get_voice_type (GST_EVENT (o)) == type;
}

static gint
find_event (Fx *fx, GstVoiceEventType type, guint from)
{
  for (guint i = from; i < fx->out->len; i++)
    if (is_voice_event (out_at (fx, i), type))
      return (gint)i;
  return -1;
}

static const gchar *
end_of_turn_text (Fx *fx, gint i)
{
  const gchar *text = NULL;

  fail_unless (i >= 0);
  gst_voice_event_parse_end_of_turn (
      GST_EVENT (out_at (fx, (guint)i)), NULL, NULL, &text);
  return text;
}

/* Transcribes order-pizza.wav through a fresh pair; returns the final text
 * and how many connections it took. */
static gchar *
transcribe_pizza (EmuProcess *emu, const gchar *fault, guint *opens)
{
  Fx *fx;
  gchar *text;
  guint before = fx_emu_count_events (emu, "open");

  if (fault)
    fx_emu_arm_fault (emu, fault);
  fx = fx_new (emu, CAPS_16K, NULL, NULL);
  fx_push_wav (fx, "order-pizza.wav");
  fx_push_silence (fx, 500);
  fx_push_eos (fx);
  FX_WAIT (fx, fx->eos);
  text = fx_final_text (fx);
  *opens = fx_emu_count_events (emu, "open") - before;
  fx_free (fx);
  return text;
}

/* Guards: espeak-ng speech goes through the emulator's pocketsphinx and
 * its key words come back as final transcript buffers, timestamped inside
 * the audio and carrying the meta; EOS sends CloseStream, the src ends with
 * an end-of-turn then EOS, and usage counts the audio sent. */
GST_START_TEST (test_speech)
{
  EmuProcess *emu = fx_start_emulator ((const gchar *[]){ "-q", NULL });
  Fx *fx = fx_new (emu, CAPS_16K, NULL, NULL);
  GstClockTime audio_end;
  const GstStructure *usage;
  gchar *text;
  gdouble seconds = 0;

  fx_push_wav (fx, "order-pizza.wav");
  fx_push_silence (fx, 500);
  audio_end = fx->pts;
  fx_push_eos (fx);
  FX_WAIT (fx, fx->eos);

  text = fx_final_text (fx);
  GST_INFO ("pocketsphinx heard: %s", text);
  fail_unless (fx_count_keywords (text, pizza_words) >= 3, "heard: %s", text);
  g_mutex_lock (&fx->lock);
  for (guint i = 0; i < fx->out->len; i++) {
    GstMiniObject *o = out_at (fx, i);
    GstVoiceTranscriptMeta *meta;
    if (!GST_IS_BUFFER (o))
      continue;
    meta = gst_buffer_get_voice_transcript_meta (GST_BUFFER (o));
    fail_unless (meta != NULL);
    fail_unless_equals_int (meta->role, GST_VOICE_ROLE_USER);
    fail_unless_equals_int (meta->turn, 1);
    fail_unless (meta->confidence > 0 && meta->confidence <= 1);
    fail_unless (GST_BUFFER_PTS (o) < audio_end);
    fail_unless (GST_BUFFER_PTS (o) + GST_BUFFER_DURATION (o) <= audio_end);
  }
  fail_unless (
      fx_count_keywords (end_of_turn_text (fx,
                             find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0)),
          pizza_words) >= 3);
  fail_unless (GST_EVENT_TYPE (out_at (fx, fx->out->len - 1)) == GST_EVENT_EOS);
  usage = fx_find_msg (fx, "deepgram-usage", 0);
  fail_unless (usage != NULL);
  gst_structure_get_double (usage, "audio-seconds", &seconds);
  fail_unless (ABS (seconds - (gdouble)audio_end / GST_SECOND) < 0.05,
      "usage %f s", seconds);
  g_mutex_unlock (&fx->lock);
  fail_unless_equals_int (fx_emu_count_events (emu, "close-stream"), 1);

  g_free (text);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: with interim=true the src pushes interim buffers (is_final FALSE)
 * before the final one, then end-of-turn on speech_final with the turn's
 * full text; a transcript message is posted per result. */
GST_START_TEST (test_interim_then_final)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=300",
          "extra-params=emu_transcript=please%20book%20a%20table%20for%20two",
          NULL },
      (const gchar *[]){ "interim=true", NULL });
  guint interims = 0, finals = 0;
  gint eot;

  fx_push_tone (fx, 2000);
  fx_push_silence (fx, 1000);
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);

  g_mutex_lock (&fx->lock);
  eot = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0);
  for (gint i = 0; i < eot; i++) {
    GstMiniObject *o = out_at (fx, (guint)i);
    GstVoiceTranscriptMeta *meta;
    gchar *text;

    if (!GST_IS_BUFFER (o))
      continue;
    meta = gst_buffer_get_voice_transcript_meta (GST_BUFFER (o));
    text = buffer_text (GST_BUFFER (o));
    if (meta->is_final) {
      finals++;
      fail_unless (meta->speech_final);
      fail_unless_equals_string (text, "Please book a table for two.");
    } else {
      fail_unless_equals_int (finals, 0);
      fail_unless (g_str_has_prefix ("Please book a table for two", text),
          "interim %s", text);
      interims++;
    }
    g_free (text);
  }
  fail_unless (interims >= 1);
  fail_unless_equals_int (finals, 1);
  fail_unless_equals_string (
      end_of_turn_text (fx, eot), "Please book a table for two.");
  fail_unless_equals_int (
      fx_count_msgs (fx, "deepgram-transcript"), interims + finals);
  g_mutex_unlock (&fx->lock);

  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: with Deepgram's endpointing off, a final result without
 * speech_final does not end the turn; UtteranceEnd does. Turn numbers go
 * up per end-of-turn. */
GST_START_TEST (test_end_of_turn_on_utterance_end)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=0", "utterance-end-ms=1000",
          "extra-params=emu_transcript=first%20turn|second%20turn", NULL },
      NULL);
  const GstStructure *s;
  gboolean speech_final = TRUE;
  guint turn = 0;
  gint eot;

  fx_push_tone (fx, 1000);
  fx_push_silence (fx, 2500);
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);
  fx_push_tone (fx, 1000);
  fx_push_silence (fx, 2500);
  FX_WAIT (fx,
      find_event (fx, GST_VOICE_EVENT_END_OF_TURN,
          (guint)find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) + 1) >= 0);

  g_mutex_lock (&fx->lock);
  s = fx_find_msg (fx, "deepgram-transcript", 0);
  fail_unless (s != NULL);
  gst_structure_get_boolean (s, "speech_final", &speech_final);
  fail_if (speech_final);
  eot = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0);
  fail_unless_equals_string (end_of_turn_text (fx, eot), "First turn.");
  gst_voice_event_parse (
      GST_EVENT (out_at (fx, (guint)eot)), NULL, NULL, &turn);
  fail_unless_equals_int (turn, 1);
  eot = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, (guint)eot + 1);
  fail_unless_equals_string (end_of_turn_text (fx, eot), "Second turn.");
  gst_voice_event_parse (
      GST_EVENT (out_at (fx, (guint)eot)), NULL, NULL, &turn);
  fail_unless_equals_int (turn, 2);
  g_mutex_unlock (&fx->lock);

  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: speech-stop makes the sink send Finalize; the final result that
 * answers it ends the turn without Deepgram's endpointing. The VAD's events
 * come out of the src in order with the transcripts, each posts a message,
 * and upstream events from the src side reach the sink's upstream. */
GST_START_TEST (test_finalize_and_events)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=0", "utterance-end-ms=0",
          "extra-params=emu_transcript=stop%20right%20there", NULL },
      NULL);
  gint start, interrupt, stop, final = -1, eot;
  GstPad *fakesink_pad;
  GstElement *fakesink;
  GstEvent *up;

  fx_push_event (fx, gst_voice_event_new_speech_start (0, 1));
  fx_push_tone (fx, 1500);
  fx_push_event (fx, gst_voice_event_new_interrupt (fx->pts, 0, "vad"));
  fx_push_event (fx, gst_voice_event_new_speech_stop (fx->pts, 1));
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);

  g_mutex_lock (&fx->lock);
  start = find_event (fx, GST_VOICE_EVENT_SPEECH_START, 0);
  interrupt = find_event (fx, GST_VOICE_EVENT_INTERRUPT, 0);
  stop = find_event (fx, GST_VOICE_EVENT_SPEECH_STOP, 0);
  eot = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0);
  for (guint i = 0; i < fx->out->len; i++)
    if (GST_IS_BUFFER (out_at (fx, i)))
      final = (gint)i;
  fail_unless (start >= 0 && start < interrupt && interrupt < stop);
  fail_unless (stop < final && final < eot, "order %d %d %d", stop, final, eot);
  fail_unless_equals_string (end_of_turn_text (fx, eot), "Stop right there.");
  fail_unless (fx_find_msg (fx, "deepgramsink", 0) != NULL);
  fail_unless (fx_find_msg (fx, "deepgramsrc", 0) != NULL);
  g_mutex_unlock (&fx->lock);
  fail_unless_equals_int (fx_emu_count_events (emu, "finalize"), 1);

  /* Upstream: from the src's downstream to the sink's upstream. */
  fakesink = gst_bin_get_by_name (GST_BIN (fx->pipe), "fakesink0");
  if (fakesink == NULL) {
    GstIterator *it = gst_bin_iterate_sinks (GST_BIN (fx->pipe));
    GValue v = G_VALUE_INIT;
    fail_unless (gst_iterator_next (it, &v) == GST_ITERATOR_OK);
    fakesink = g_value_dup_object (&v);
    g_value_unset (&v);
    gst_iterator_free (it);
  }
  fakesink_pad = gst_element_get_static_pad (fakesink, "sink");
  fail_unless (gst_pad_push_event (
      fakesink_pad, gst_voice_event_new_spoken (0, 1, "hello", TRUE)));
  fx_push_silence (fx, 20); /* the sink forwards on its streaming thread */
  up = gst_harness_pull_upstream_event (fx->h);
  while (up && gst_voice_event_get_voice_type (up) != GST_VOICE_EVENT_SPOKEN) {
    gst_event_unref (up);
    up = gst_harness_pull_upstream_event (fx->h);
  }
  fail_unless (up != NULL);
  gst_event_unref (up);
  gst_object_unref (fakesink_pad);
  gst_object_unref (fakesink);

  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: while gated (GAP events, no audio), KeepAlive every 5 s keeps the
 * connection past Deepgram's 10 s idle timeout: after 15 s of it the same
 * connection still transcribes. Takes 15 s of real time. */
GST_START_TEST (test_keepalive)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=0", "utterance-end-ms=0",
          "extra-params=emu_transcript=before|after", NULL },
      NULL);

  fx_push_tone (fx, 600);
  fx_push_event (fx, gst_voice_event_new_speech_stop (fx->pts, 1));
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);
  for (guint i = 0; i < 30; i++) {
    fx_push_gap (fx, 500);
    fx_wait_quietly (fx, 500);
  }
  fx_push_tone (fx, 600);
  fx_push_event (fx, gst_voice_event_new_speech_stop (fx->pts, 2));
  FX_WAIT (fx, fx_count_finals (fx) >= 2);

  fail_unless (fx_emu_count_events (emu, "keepalive") >= 2);
  fail_unless_equals_int (fx_emu_count_events (emu, "timeout"), 0);
  fail_unless_equals_int (fx_emu_count_events (emu, "open"), 1);
  g_mutex_lock (&fx->lock);
  fail_unless_equals_int (fx_count_msgs (fx, "deepgram-connection"), 1);
  g_mutex_unlock (&fx->lock);

  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: a connection closed mid-utterance (1011 NET-0001, after the
 * first interim result of the second utterance) is re-opened and the audio
 * since the last final result sent again: both utterances come out once
 * each (nothing lost, nothing doubled), and times on the new connection map
 * back to the running time the audio had. */
GST_START_TEST (test_drop_mid_utterance)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx;
  const GstStructure *s = NULL;
  const GValue *words;
  guint64 word_start = 0;
  guint ends = 0;

  fx_emu_arm_fault (emu, "close:messages=3:code=1011:reason=NET-0001");
  fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=300", "utterance-end-ms=0",
          "extra-params=emu_transcript=one%20two%20three", NULL },
      (const gchar *[]){ "turn-detection=endpointing", NULL });
  fx_push_tone (fx, 1000);
  fx_push_silence (fx, 1000);
  fx_push_tone (fx, 1500); /* the second utterance starts at 2 s */
  fx_push_silence (fx, 1000);
  fx_push_eos (fx);
  FX_WAIT (fx, fx->eos);

  fail_unless_equals_int (fx_emu_count_events (emu, "fault-close"), 1);
  fail_unless_equals_int (fx_emu_count_events (emu, "open"), 2);
  g_mutex_lock (&fx->lock);
  fail_unless_equals_int (fx_count_finals (fx), 2);
  for (gint i = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0); i >= 0;
       i = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, (guint)i + 1)) {
    fail_unless_equals_string (end_of_turn_text (fx, i), "One two three.");
    ends++;
  }
  fail_unless_equals_int (ends, 2);
  /* The last final result came on the second connection. */
  for (guint i = 0; i < fx->msgs->len; i++) {
    const GstStructure *m =
        gst_message_get_structure (g_ptr_array_index (fx->msgs, i));
    gboolean is_final = FALSE;
    if (m && gst_structure_has_name (m, "deepgram-transcript") &&
        gst_structure_get_boolean (m, "is_final", &is_final) && is_final)
      s = m;
  }
  fail_unless (s != NULL);
  words = gst_structure_get_value (s, "words");
  fail_unless (gst_value_array_get_size (words) == 3);
  gst_structure_get_uint64 (
      gst_value_get_structure (gst_value_array_get_value (words, 0)), "start",
      &word_start);
  fail_unless (
      word_start > 1950 * GST_MSECOND && word_start < 2100 * GST_MSECOND,
      "first word at %" GST_TIME_FORMAT, GST_TIME_ARGS (word_start));
  g_mutex_unlock (&fx->lock);

  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: with real recognition, a drop after two interim results gives
 * word for word the transcript of the same speech without the fault (the
 * emulator's pocketsphinx is deterministic per stream). */
GST_START_TEST (test_drop_speech)
{
  EmuProcess *emu = fx_start_emulator ((const gchar *[]){ "-q", NULL });
  guint opens = 0;
  gchar *clean = transcribe_pizza (emu, NULL, &opens);
  gchar *faulted;

  fail_unless_equals_int (opens, 1);
  faulted = transcribe_pizza (
      emu, "close:messages=2:code=1011:reason=NET-0001", &opens);
  fail_unless_equals_int (opens, 2);
  fail_unless (fx_count_keywords (clean, pizza_words) >= 3, "heard: %s", clean);
  fail_unless_equals_string (faulted, clean);
  g_free (clean);
  g_free (faulted);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: a connection that stops answering (no result for Finalize) is
 * re-opened and the utterance transcribed on the new one. */
GST_START_TEST (test_stalled_connection)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx;

  fx_emu_arm_fault (emu, "stall");
  fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "endpointing-ms=0", "utterance-end-ms=0",
          "extra-params=emu_transcript=are%20you%20there", NULL },
      NULL);
  fx_push_tone (fx, 1000);
  fx_push_event (fx, gst_voice_event_new_speech_stop (fx->pts, 1));
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);
  g_mutex_lock (&fx->lock);
  fail_unless_equals_string (
      end_of_turn_text (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0)),
      "Are you there.");
  fail_unless (fx_find_error (fx, GST_MESSAGE_WARNING) != NULL);
  g_mutex_unlock (&fx->lock);
  fail_unless_equals_int (fx_emu_count_events (emu, "open"), 2);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* @status: the HTTP status the error's details must carry as
 * "http-status-code", 0 for an error that is not about a response. */
static void
check_error (Fx *fx, GQuark domain, gint code, const gchar *text, guint status)
{
  GstMessage *m;
  GError *error = NULL;
  gchar *debug = NULL;
  const GstStructure *details = NULL;
  guint got = 0;

  FX_WAIT (fx, fx_find_error (fx, GST_MESSAGE_ERROR) != NULL);
  g_mutex_lock (&fx->lock);
  m = fx_find_error (fx, GST_MESSAGE_ERROR);
  gst_message_parse_error (m, &error, &debug);
  gst_message_parse_error_details (m, &details);
  if (status)
    fail_unless (
        details && gst_structure_get_uint (details, "http-status-code", &got));
  g_mutex_unlock (&fx->lock);
  fail_unless_equals_int (got, status);
  fail_unless (g_error_matches (error, domain, code), "%s", error->message);
  fail_unless (strstr (error->message, text) != NULL, "%s", error->message);
  /* The key never shows, not even in the debug details. */
  fail_unless (strstr (debug, "test-key-0123456789") == NULL, "%s", debug);
  g_error_free (error);
  g_free (debug);
}

/* Guards: a wrong key gives the documented error, RESOURCE/NOT_AUTHORIZED,
 * without retrying. */
GST_START_TEST (test_unauthorized)
{
  EmuProcess *emu = fx_start_emulator (
      (const gchar *[]){ "-q", "--deepgram-key", "the-right-key", NULL });
  Fx *fx = fx_new (emu, CAPS_16K, NULL, NULL);

  fx_push_tone (fx, 100);
  check_error (fx, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED,
      "Deepgram rejected the API key: set DEEPGRAM_API_KEY or api-key", 401);
  fail_unless_equals_int (fx_emu_count_events (emu, "unauthorized"), 1);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: HTTP 400 shows Deepgram's own message. */
GST_START_TEST (test_bad_request)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){ "extra-params=emu_engine=bogus", NULL }, NULL);

  fx_push_tone (fx, 100);
  check_error (fx, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS,
      "Unknown emu_engine `bogus`.", 400);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: 1008 DATA-0000 (audio Deepgram cannot decode) is an error that
 * names the caps, not a reconnect loop. The emulator is made to expect a
 * WAV container (encoding overridden to none) and gets raw PCM. */
GST_START_TEST (test_undecodable_audio)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (
      emu, CAPS_16K, (const gchar *[]){ "extra-params=encoding=", NULL }, NULL);

  fx_push_tone (fx, 200);
  check_error (fx, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
      "encoding=linear16 sample_rate=16000", 0);
  fail_unless_equals_int (fx_emu_count_events (emu, "open"), 1);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: mu-law 8 kHz (telephony) is sent as encoding=mulaw and
 * transcribed. */
GST_START_TEST (test_mulaw)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  Fx *fx = fx_new (emu, CAPS_MULAW,
      (const gchar *[]){ "endpointing-ms=300",
          "extra-params=emu_transcript=telephone%20call", NULL },
      NULL);

  fx_push_tone (fx, 1000);
  fx_push_silence (fx, 800);
  FX_WAIT (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0) >= 0);
  g_mutex_lock (&fx->lock);
  fail_unless_equals_string (
      end_of_turn_text (fx, find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0)),
      "Telephone call.");
  g_mutex_unlock (&fx->lock);
  fx_free (fx);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: when nothing can be sent (no server), the streaming thread never
 * blocks; the backlog stays within max-backlog-ms, dropping the oldest
 * audio, and the element says so: a warning about the connection and one
 * about dropping, and a deepgram-backlog message. */
GST_START_TEST (test_backlog_bound)
{
  Fx *fx = fx_new (NULL, CAPS_16K,
      (const gchar *[]){
          "url=ws://127.0.0.1:1/v1/listen", "max-backlog-ms=1000", NULL },
      NULL);
  const GstStructure *s;
  guint64 dropped = 0;

  fx_push_tone (fx, 3000); /* every push returns GST_FLOW_OK at once */
  FX_WAIT (fx, fx_find_msg (fx, "deepgram-backlog", 0) != NULL);
  FX_WAIT (fx, fx_count_msgs (fx, "deepgram-connection") >= 1);
  g_mutex_lock (&fx->lock);
  s = fx_find_msg (fx, "deepgram-backlog", 0);
  fail_unless_equals_string (gst_structure_get_string (s, "event"), "dropping");
  fail_unless (gst_structure_get_uint64 (s, "dropped-ms", &dropped));
  fail_unless (dropped > 0 && dropped <= 2000);
  fail_unless (fx_find_error (fx, GST_MESSAGE_WARNING) != NULL);
  fail_unless (fx_find_error (fx, GST_MESSAGE_ERROR) == NULL);
  g_mutex_unlock (&fx->lock);
  fx_free (fx);
}

GST_END_TEST;

/* Pushes @ms of tone or silence in 20 ms pieces at the pace of real time,
 * as a microphone would: turn-detection=transcript measures silence on the
 * wall clock. */
static void
push_live (Fx *fx, guint ms, gboolean tone)
{
  for (guint done = 0; done < ms; done += 20) {
    if (tone)
      fx_push_tone (fx, 20);
    else
      fx_push_silence (fx, 20);
    g_usleep (20 * 1000);
  }
}

/* One utterance of @transcript said live, then silence; returns the
 * end-of-turn's `eot-delay` in ms and checks that `ending` is @ending and
 * that a turn-likely with the same words came before it (not for an open
 * phrase, which is no likely end). */
static guint64
live_turn (EmuProcess *emu, const gchar *transcript, const gchar *ending)
{
  gchar *param = g_strdup_printf ("extra-params=emu_transcript=%s", transcript);
  Fx *fx = fx_new (emu, CAPS_16K,
      (const gchar *[]){
          "endpointing-ms=300", "utterance-end-ms=0", param, NULL },
      NULL);
  const gchar *likely = NULL, *eot_text = NULL;
  const GstStructure *s;
  guint64 delay = 0;
  gint li = -1, ei;

  push_live (fx, 800, TRUE);
  push_live (fx, 2600, FALSE);
  g_mutex_lock (&fx->lock);
  ei = find_event (fx, GST_VOICE_EVENT_END_OF_TURN, 0);
  /* The last likely pause before the end: earlier ones (interim words
   * that stood still, without a VAD) were resumed. */
  for (gint i = find_event (fx, GST_VOICE_EVENT_TURN_LIKELY, 0);
       i >= 0 && i < ei;
       i = find_event (fx, GST_VOICE_EVENT_TURN_LIKELY, (guint)i + 1))
    li = i;
  fail_unless (ei >= 0);
  eot_text = end_of_turn_text (fx, ei);
  if (g_str_equal (ending, "open")) {
    fail_unless (li < 0, "a likely pause after an open phrase");
  } else {
    fail_unless (li >= 0, "no likely pause before the end of turn");
    gst_voice_event_parse_turn_likely (
        GST_EVENT (out_at (fx, (guint)li)), NULL, NULL, &likely);
    fail_unless_equals_string (likely, eot_text);
  }
  s = gst_event_get_structure (GST_EVENT (out_at (fx, (guint)ei)));
  fail_unless_equals_string (gst_structure_get_string (s, "ending"), ending);
  fail_unless (gst_structure_get_uint64 (s, "eot-delay", &delay));
  g_mutex_unlock (&fx->lock);
  fx_push_eos (fx);
  FX_WAIT (fx, fx->eos);
  fx_free (fx);
  g_free (param);
  return delay / GST_MSECOND;
}

/* Guards: with turn-detection=transcript (the default) the silence that
 * ends a turn depends on its words: a sentence ends soon after its last
 * word, a phrase left open on an article waits for turn-open-ms. */
GST_START_TEST (test_turn_detection_transcript)
{
  EmuProcess *emu = fx_start_emulator (scripted);
  guint64 complete = live_turn (emu, "I%20want%20a%20pizza", "complete");
  guint64 open = live_turn (emu, "I%20want%20a", "open");

  GST_INFO ("eot-delay: complete %" G_GUINT64_FORMAT
            " ms, open %" G_GUINT64_FORMAT " ms",
      complete, open);
  fail_unless (
      complete >= 150 && complete < 1000, "%" G_GUINT64_FORMAT, complete);
  fail_unless (open >= 1500 && open < 2500, "%" G_GUINT64_FORMAT, open);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: a hand-written recording of Deepgram's documented messages,
 * replayed by the emulator, comes out as exactly these buffers and events:
 * interim and final text with running times from the results' start and
 * duration, end-of-turn on speech_final and on UtteranceEnd, no buffer for
 * the empty final, SpeechStarted as a message. */
GST_START_TEST (test_replay)
{
  gchar *path = fx_data_path ("replay.jsonl");
  EmuProcess *emu = fx_start_emulator (
      (const gchar *[]){ "-q", "--deepgram-replay", path, NULL });
  Fx *fx = fx_new (emu, CAPS_16K, (const gchar *[]){ "vad-events=true", NULL },
      (const gchar *[]){ "interim=true", "turn-detection=endpointing", NULL });
  struct
  {
    const gchar *text; /* NULL: an end-of-turn event */
    gboolean is_final, speech_final;
    GstClockTime pts, duration;
    guint turn;
  } expected[] = {
    { "Hello", FALSE, FALSE, 0, GST_SECOND, 1 },
    { "Hello there.", TRUE, FALSE, 0, 1500 * GST_MSECOND, 1 },
    { "How are you?", TRUE, TRUE, 1500 * GST_MSECOND, GST_SECOND, 1 },
    { NULL, FALSE, FALSE, 2500 * GST_MSECOND, 0, 1 },
    { "I need", FALSE, FALSE, 2500 * GST_MSECOND, GST_SECOND, 2 },
    { "I need help.", TRUE, FALSE, 2500 * GST_MSECOND, 1500 * GST_MSECOND, 2 },
    { NULL, FALSE, FALSE, 4000 * GST_MSECOND, 0, 2 },
  };
  const gchar *turn_text[] = { "Hello there. How are you?", "I need help." };
  const GstStructure *s;
  guint64 rt = 0;

  fx_push_silence (fx, 5000);
  fx_push_eos (fx);
  FX_WAIT (fx, fx->eos);

  g_mutex_lock (&fx->lock);
  fail_unless_equals_int (fx->out->len, G_N_ELEMENTS (expected) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++) {
    GstMiniObject *o = out_at (fx, i);

    if (expected[i].text) {
      GstVoiceTranscriptMeta *meta;
      gchar *text;

      fail_unless (GST_IS_BUFFER (o), "item %u", i);
      meta = gst_buffer_get_voice_transcript_meta (GST_BUFFER (o));
      text = buffer_text (GST_BUFFER (o));
      fail_unless_equals_string (text, expected[i].text);
      fail_unless_equals_int (meta->is_final, expected[i].is_final);
      fail_unless_equals_int (meta->speech_final, expected[i].speech_final);
      fail_unless_equals_int (meta->turn, expected[i].turn);
      fail_unless_equals_uint64 (GST_BUFFER_PTS (o), expected[i].pts);
      fail_unless_equals_uint64 (GST_BUFFER_DURATION (o), expected[i].duration);
      g_free (text);
    } else {
      GstClockTime t;
      guint turn;

      fail_unless (
          is_voice_event (o, GST_VOICE_EVENT_END_OF_TURN), "item %u", i);
      gst_voice_event_parse (GST_EVENT (o), NULL, &t, &turn);
      fail_unless_equals_uint64 (t, expected[i].pts);
      fail_unless_equals_int (turn, expected[i].turn);
      fail_unless_equals_string (
          end_of_turn_text (fx, (gint)i), turn_text[turn - 1]);
    }
  }
  fail_unless_equals_int (fx_count_msgs (fx, "deepgram-transcript"), 6);
  s = fx_find_msg (fx, "deepgram-speech-started", 0);
  fail_unless (s != NULL);
  gst_structure_get_uint64 (s, "running-time", &rt);
  fail_unless_equals_uint64 (rt, 500 * GST_MSECOND);
  fail_unless (fx_find_msg (fx, "deepgram-usage", 0) != NULL);
  g_mutex_unlock (&fx->lock);

  fx_free (fx);
  emu_process_stop (emu);
  g_free (path);
}

GST_END_TEST;

static Suite *
elements_suite (void)
{
  Suite *s = suite_create ("deepgram-elements");
  TCase *tc = tcase_create ("emulator");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_speech);
  tcase_add_test (tc, test_interim_then_final);
  tcase_add_test (tc, test_end_of_turn_on_utterance_end);
  tcase_add_test (tc, test_finalize_and_events);
  tcase_add_test (tc, test_keepalive);
  tcase_add_test (tc, test_drop_mid_utterance);
  tcase_add_test (tc, test_drop_speech);
  tcase_add_test (tc, test_stalled_connection);
  tcase_add_test (tc, test_unauthorized);
  tcase_add_test (tc, test_bad_request);
  tcase_add_test (tc, test_undecodable_audio);
  tcase_add_test (tc, test_mulaw);
  tcase_add_test (tc, test_backlog_bound);
  tcase_add_test (tc, test_replay);
  tcase_add_test (tc, test_turn_detection_transcript);
  return s;
}

GST_CHECK_MAIN (elements);

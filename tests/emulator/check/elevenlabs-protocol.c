/* The emulator's ElevenLabs service against the documented wire protocol:
 * auth errors, bad input, the stream-input and multi-stream-input sockets,
 * the chunk schedule, timeouts and the HTTP stream.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "control-client.h"

#include <string.h>

#define KEY "el-secret"

static EmuProcess *emu;

static const gchar *const key_headers[] = { "xi-api-key", KEY, NULL };

/* Checks one audio message: base64 audio of whole samples and alignments
 * whose three arrays have one entry per character. Returns the audio size. */
static gsize
check_audio_message (JsonObject *o, const gchar *context_id, gsize sample)
{
  g_autofree guchar *audio = NULL;
  gsize len = 0;
  const gchar *names[] = { "alignment", "normalizedAlignment" };

  g_assert_true (json_object_has_member (o, "isFinal"));
  g_assert_true (json_object_get_null_member (o, "isFinal"));
  audio = g_base64_decode (json_object_get_string_member (o, "audio"), &len);
  g_assert_cmpuint (len, >, 0);
  g_assert_cmpuint (len % sample, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    JsonObject *al = json_object_get_object_member (o, names[i]);
    guint n =
        json_array_get_length (json_object_get_array_member (al, "chars"));
    g_assert_cmpuint (n, >, 0);
    g_assert_cmpuint (json_array_get_length (json_object_get_array_member (
                          al, "charStartTimesMs")),
        ==, n);
    g_assert_cmpuint (json_array_get_length (
                          json_object_get_array_member (al, "charDurationsMs")),
        ==, n);
  }
  if (context_id)
    g_assert_cmpstr (
        json_object_get_string_member (o, "contextId"), ==, context_id);
  else
    g_assert_false (json_object_has_member (o, "contextId"));
  return len;
}

/* Reads messages until {"isFinal": true}; returns the audio bytes seen. */
static gsize
read_until_final (EmuWs *w, const gchar *context_id, gsize sample)
{
  gsize total = 0;

  for (;;) {
    g_autofree gchar *m = emu_ws_next (w, 10000);
    g_autoptr (JsonNode) n = NULL;
    JsonObject *o;
    g_assert_nonnull (m);
    n = emu_json (m);
    o = json_node_get_object (n);
    if (json_object_has_member (o, "audio")) {
      total += check_audio_message (o, context_id, sample);
      continue;
    }
    g_assert_true (json_object_get_boolean_member (o, "isFinal"));
    if (context_id)
      g_assert_cmpstr (
          json_object_get_string_member (o, "contextId"), ==, context_id);
    return total;
  }
}

/* Reads an ElevenLabs error frame and the 1008 close that follows. */
static void
expect_error (EmuWs *w, const gchar *error)
{
  g_autofree gchar *m = emu_ws_next (w, 10000);
  g_autoptr (JsonNode) n = NULL;
  JsonObject *o;

  g_assert_nonnull (m);
  n = emu_json (m);
  o = json_node_get_object (n);
  g_assert_cmpstr (json_object_get_string_member (o, "error"), ==, error);
  g_assert_cmpint (json_object_get_int_member (o, "code"), ==, 1008);
  g_assert_nonnull (json_object_get_string_member (o, "message"));
  g_assert_true (emu_ws_wait_closed (w, 5000));
  g_assert_cmpuint (w->close_code, ==, 1008);
}

/* HTTP without a key, or with a wrong one, is 401 with ElevenLabs' body. */
static void
test_http_401 (void)
{
  const gchar *const wrong[] = { "xi-api-key", "nope", NULL };
  g_autoptr (EmuHttpReply) a = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=pcm_16000",
      "{\"text\":\"Hi.\"}", NULL);
  g_autoptr (EmuHttpReply) b = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=pcm_16000",
      "{\"text\":\"Hi.\"}", wrong);

  g_assert_cmpuint (a->status, ==, 401);
  g_assert_nonnull (strstr (a->body, "\"status\":\"needs_authorization\""));
  g_assert_cmpuint (b->status, ==, 401);
  g_assert_cmpstr (b->body, ==,
      "{\"detail\":{\"status\":\"invalid_api_key\","
      "\"message\":\"Invalid API key\"}}");
}

/* A body that is not JSON, or has no text, is 422. */
static void
test_http_422 (void)
{
  g_autoptr (EmuHttpReply) a = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=pcm_16000", "{nope",
      key_headers);
  g_autoptr (EmuHttpReply) b = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=pcm_16000",
      "{\"model_id\":\"x\"}", key_headers);
  g_autoptr (JsonNode) n = emu_json (b->body);

  g_assert_cmpuint (a->status, ==, 422);
  g_assert_cmpuint (b->status, ==, 422);
  g_assert_true (json_object_has_member (json_node_get_object (n), "detail"));
}

/* The HTTP stream is chunked raw audio of plausible length per format. */
static void
test_http_stream (void)
{
  g_autoptr (EmuHttpReply) pcm = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=pcm_16000",
      "{\"text\":\"Hello world. This is a test.\",\"model_id\":"
      "\"eleven_flash_v2_5\"}",
      key_headers);
  g_autoptr (EmuHttpReply) ulaw = emu_http (emu, "POST",
      "/v1/text-to-speech/v/stream?output_format=ulaw_8000",
      "{\"text\":\"Hello world.\"}", key_headers);
  g_autoptr (EmuHttpReply) mp3 =
      emu_http (emu, "POST", "/v1/text-to-speech/v/stream",
          "{\"text\":\"Hello world.\"}", key_headers);

  g_assert_cmpuint (pcm->status, ==, 200);
  g_assert_cmpint (soup_message_headers_get_encoding (pcm->headers), ==,
      SOUP_ENCODING_CHUNKED);
  g_assert_cmpuint (pcm->length % 2, ==, 0);
  /* 1 to 4 seconds of 16 kHz S16. */
  g_assert_cmpuint (pcm->length, >, 32000);
  g_assert_cmpuint (pcm->length, <, 128000);
  g_assert_cmpuint (ulaw->status, ==, 200);
  g_assert_cmpuint (ulaw->length, >, 3000);
  g_assert_cmpuint (ulaw->length, <, 24000);
  /* MP3 (the default format) is not produced: a clear 400. */
  g_assert_cmpuint (mp3->status, ==, 400);
  g_assert_nonnull (strstr (mp3->body, "invalid_output_format"));
}

/* A wrong xi-api-key header fails the handshake with 401. */
static void
test_ws_handshake_401 (void)
{
  guint status = 0;
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000", "wrong",
      &status);

  g_assert_null (w);
  g_assert_cmpuint (status, ==, 401);
}

/* stream-input with the key in the first message: audio with alignment,
 * then isFinal, then a normal close. */
static void
test_ws_single (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?model_id=eleven_flash_v2_5&"
      "output_format=pcm_22050",
      NULL, NULL);

  g_assert_nonnull (w);
  emu_ws_send (w,
      "{\"text\":\" \",\"voice_settings\":{\"stability\":0.5,"
      "\"similarity_boost\":0.8},\"generation_config\":"
      "{\"chunk_length_schedule\":[120,160,250,290]},\"xi_api_key\":\"" KEY
      "\"}");
  emu_ws_send (w, "{\"text\":\"Hello there. \"}");
  emu_ws_send (w, "{\"text\":\"How are you? \",\"flush\":true}");
  emu_ws_send (w, "{\"text\":\"\"}");
  g_assert_cmpuint (read_until_final (w, NULL, 2), >, 22050);
  g_assert_true (emu_ws_wait_closed (w, 5000));
  g_assert_cmpuint (w->close_code, ==, 1000);
  emu_ws_free (w);
}

/* Text below the first chunk_length_schedule entry waits; crossing it
 * generates without a flush. */
static void
test_ws_schedule (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000", KEY, NULL);
  g_autofree gchar *none = NULL, *some = NULL;

  g_assert_nonnull (w);
  emu_ws_send (w,
      "{\"text\":\" \",\"generation_config\":"
      "{\"chunk_length_schedule\":[60]}}");
  emu_ws_send (w, "{\"text\":\"Short text. \"}");
  none = emu_ws_next (w, 500);
  g_assert_null (none);
  emu_ws_send (w,
      "{\"text\":\"And now a longer sentence that crosses the "
      "threshold. \"}");
  some = emu_ws_next (w, 10000);
  g_assert_nonnull (some);
  g_assert_nonnull (strstr (some, "\"audio\""));
  emu_ws_free (w);
}

/* auto_mode=true generates at each sentence end, without the schedule. */
static void
test_ws_auto_mode (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000&"
      "auto_mode=true",
      KEY, NULL);
  g_autofree gchar *m = NULL;

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\" \"}");
  emu_ws_send (w, "{\"text\":\"Hi there. \"}");
  m = emu_ws_next (w, 10000);
  g_assert_nonnull (m);
  g_assert_nonnull (strstr (m, "\"audio\""));
  emu_ws_free (w);
}

/* A frame that is not JSON: invalid_input_message, close 1008. */
static void
test_ws_bad_json (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000", KEY, NULL);

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\": ");
  expect_error (w, "invalid_input_message");
  emu_ws_free (w);
}

/* A wrong key in the first message: invalid_api_key, close 1008. */
static void
test_ws_bad_key_in_message (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000", NULL, NULL);

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\" \",\"xi_api_key\":\"wrong\"}");
  expect_error (w, "invalid_api_key");
  emu_ws_free (w);
}

/* No message for inactivity_timeout seconds: input_timeout_exceeded, 1008. */
static void
test_ws_inactivity (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000&"
      "inactivity_timeout=1",
      KEY, NULL);
  gint64 t0 = g_get_monotonic_time ();

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\" \"}");
  expect_error (w, "input_timeout_exceeded");
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 900000);
  emu_ws_free (w);
}

/* multi-stream-input: contexts answer with their contextId, close_context
 * ends one with isFinal, a sixth open context is refused. */
static void
test_ws_multi (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/multi-stream-input?output_format=pcm_16000", KEY,
      NULL);

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\" \",\"context_id\":\"a\"}");
  emu_ws_send (w,
      "{\"text\":\"First context. \",\"context_id\":\"a\","
      "\"flush\":true}");
  emu_ws_send (w, "{\"context_id\":\"a\",\"close_context\":true}");
  g_assert_cmpuint (read_until_final (w, "a", 2), >, 0);

  /* "a" is closed: five more fit, the sixth does not. */
  for (guint i = 0; i < 5; i++) {
    g_autofree gchar *m = g_strdup_printf ("{\"text\":\" \",\"context_id\":"
                                           "\"c%u\"}",
        i);
    emu_ws_send (w, m);
  }
  emu_ws_send (w, "{\"text\":\" \",\"context_id\":\"c5\"}");
  expect_error (w, "max_active_conversations");
  emu_ws_free (w);
}

/* close_socket speaks what was flushed, ends each context, closes 1000. */
static void
test_ws_multi_close_socket (void)
{
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/multi-stream-input?output_format=ulaw_8000", KEY,
      NULL);

  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\"Hello. \",\"context_id\":\"x\",\"flush\":true}");
  emu_ws_send (w, "{\"close_socket\":true}");
  g_assert_cmpuint (read_until_final (w, "x", 1), >, 0);
  g_assert_true (emu_ws_wait_closed (w, 5000));
  g_assert_cmpuint (w->close_code, ==, 1000);
  emu_ws_free (w);
}

/* tts_first_audio_ms delays the first audio of a generation. */
static void
test_ws_first_audio_latency (void)
{
  g_autoptr (EmuHttpReply) set = emu_http (
      emu, "POST", "/emulator/latency", "{\"tts_first_audio_ms\":300}", NULL);
  g_autoptr (EmuHttpReply) back = NULL;
  g_autofree gchar *m = NULL;
  EmuWs *w = emu_ws_connect (emu,
      "/v1/text-to-speech/v/stream-input?output_format=pcm_16000", KEY, NULL);
  gint64 t0;

  g_assert_cmpuint (set->status, ==, 200);
  g_assert_nonnull (w);
  emu_ws_send (w, "{\"text\":\" \"}");
  t0 = g_get_monotonic_time ();
  emu_ws_send (w, "{\"text\":\"Hello. \",\"flush\":true}");
  m = emu_ws_next (w, 10000);
  g_assert_nonnull (strstr (m, "\"audio\""));
  g_assert_cmpint (g_get_monotonic_time () - t0, >=, 290000);
  emu_ws_free (w);
  back = emu_http (
      emu, "POST", "/emulator/latency", "{\"profile\":\"zero\"}", NULL);
  g_assert_cmpuint (back->status, ==, 200);
}

int
main (int argc, char **argv)
{
  const gchar *args[] = { "--elevenlabs-key", KEY, "--quiet", NULL };
  int ret;

  emu = emu_check_start (args);
  g_test_init (&argc, &argv, NULL);
  g_assert_nonnull (emu);

  g_test_add_func ("/elevenlabs/http/401", test_http_401);
  g_test_add_func ("/elevenlabs/http/422", test_http_422);
  g_test_add_func ("/elevenlabs/http/stream", test_http_stream);
  g_test_add_func ("/elevenlabs/ws/handshake-401", test_ws_handshake_401);
  g_test_add_func ("/elevenlabs/ws/single", test_ws_single);
  g_test_add_func ("/elevenlabs/ws/schedule", test_ws_schedule);
  g_test_add_func ("/elevenlabs/ws/auto-mode", test_ws_auto_mode);
  g_test_add_func ("/elevenlabs/ws/bad-json", test_ws_bad_json);
  g_test_add_func (
      "/elevenlabs/ws/bad-key-in-message", test_ws_bad_key_in_message);
  g_test_add_func ("/elevenlabs/ws/inactivity", test_ws_inactivity);
  g_test_add_func ("/elevenlabs/ws/multi", test_ws_multi);
  g_test_add_func (
      "/elevenlabs/ws/multi-close-socket", test_ws_multi_close_socket);
  g_test_add_func (
      "/elevenlabs/ws/first-audio-latency", test_ws_first_audio_latency);
  ret = g_test_run ();
  emu_process_stop (emu);
  return ret;
}

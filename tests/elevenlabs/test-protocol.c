/* Unit tests of the ElevenLabs wire format (gst/elevenlabs/protocol.c).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>

#include "protocol.h"

static JsonObject *
parse_object (const gchar *text, JsonParser **parser)
{
  *parser = json_parser_new ();
  fail_unless (json_parser_load_from_data (*parser, text, -1, NULL), text);
  return json_node_get_object (json_parser_get_root (*parser));
}

/* Guards: the first message of a context carries the voice settings and
 * the chunk schedule; later ones only context_id and text. */
GST_START_TEST (test_text_messages)
{
  ElVoiceSettings settings = { 0.3, 0.8, 1.1, NULL };
  JsonParser *parser;
  JsonObject *o, *vs;
  JsonArray *sched;
  gchar *msg;

  fail_unless (
      el_chunk_schedule_parse ("50, 120,160", &settings.chunk_schedule));
  msg = el_msg_text ("ctx-1", " ", &settings);
  o = parse_object (msg, &parser);
  fail_unless_equals_string (
      json_object_get_string_member (o, "context_id"), "ctx-1");
  fail_unless_equals_string (json_object_get_string_member (o, "text"), " ");
  vs = json_object_get_object_member (o, "voice_settings");
  fail_unless_equals_float (
      json_object_get_double_member (vs, "stability"), 0.3);
  fail_unless_equals_float (
      json_object_get_double_member (vs, "similarity_boost"), 0.8);
  fail_unless_equals_float (json_object_get_double_member (vs, "speed"), 1.1);
  sched = json_object_get_array_member (
      json_object_get_object_member (o, "generation_config"),
      "chunk_length_schedule");
  fail_unless_equals_int (json_array_get_length (sched), 3);
  fail_unless_equals_int (json_array_get_int_element (sched, 1), 120);
  g_object_unref (parser);
  g_free (msg);

  msg = el_msg_text ("ctx-2", "Hello \"there\"\n", NULL);
  o = parse_object (msg, &parser);
  fail_unless_equals_string (
      json_object_get_string_member (o, "text"), "Hello \"there\"\n");
  fail_if (json_object_has_member (o, "voice_settings"));
  fail_if (json_object_has_member (o, "generation_config"));
  g_object_unref (parser);
  g_free (msg);
  g_array_unref (settings.chunk_schedule);
}

GST_END_TEST;

/* Guards: flush, close_context, keep-alive and close_socket are the
 * documented shapes. */
GST_START_TEST (test_control_messages)
{
  JsonParser *parser;
  JsonObject *o;
  gchar *msg;

  msg = el_msg_flush ("c");
  o = parse_object (msg, &parser);
  fail_unless (json_object_get_boolean_member (o, "flush"));
  fail_unless_equals_string (
      json_object_get_string_member (o, "context_id"), "c");
  g_object_unref (parser);
  g_free (msg);

  msg = el_msg_close_context ("c");
  o = parse_object (msg, &parser);
  fail_unless (json_object_get_boolean_member (o, "close_context"));
  g_object_unref (parser);
  g_free (msg);

  msg = el_msg_keepalive ("c");
  o = parse_object (msg, &parser);
  fail_unless_equals_string (json_object_get_string_member (o, "text"), "");
  fail_if (json_object_has_member (o, "flush"));
  g_object_unref (parser);
  g_free (msg);

  msg = el_msg_close_socket ();
  o = parse_object (msg, &parser);
  fail_unless (json_object_get_boolean_member (o, "close_socket"));
  g_object_unref (parser);
  g_free (msg);
}

GST_END_TEST;

/* Guards: URLs of both endpoints from any base (scheme mapping, trailing
 * slash, escaping). */
GST_START_TEST (test_urls)
{
  gchar *url;

  url = el_ws_url ("ws://127.0.0.1:99/", "voice 1", "eleven_flash_v2_5",
      EL_FORMAT_PCM_24000, TRUE, 20);
  fail_unless_equals_string (url,
      "ws://127.0.0.1:99/v1/text-to-speech/voice%201/multi-stream-input"
      "?model_id=eleven_flash_v2_5&output_format=pcm_24000&auto_mode=true"
      "&inactivity_timeout=20&sync_alignment=true");
  g_free (url);
  url = el_ws_url (
      "https://api.elevenlabs.io", "v", "m", EL_FORMAT_ULAW_8000, FALSE, 180);
  fail_unless (g_str_has_prefix (
      url, "wss://api.elevenlabs.io/v1/text-to-speech/v/multi-stream-input?"));
  fail_unless (strstr (url, "output_format=ulaw_8000&auto_mode=false"));
  g_free (url);
  url =
      el_http_stream_url ("wss://api.elevenlabs.io", "v", EL_FORMAT_PCM_16000);
  fail_unless_equals_string (url,
      "https://api.elevenlabs.io/v1/text-to-speech/v/stream"
      "?output_format=pcm_16000");
  g_free (url);
  url = el_http_stream_url ("ws://h:1", "v", EL_FORMAT_PCM_8000);
  fail_unless (g_str_has_prefix (url, "http://h:1/"));
  g_free (url);
}

GST_END_TEST;

/* Guards: chunk_length_schedule accepts 50..500 only, at most 8 items. */
GST_START_TEST (test_schedule)
{
  GArray *a;

  fail_unless (el_chunk_schedule_parse (NULL, &a) && a == NULL);
  fail_unless (el_chunk_schedule_parse ("", &a) && a == NULL);
  fail_unless (el_chunk_schedule_parse ("120,160,250,290", &a));
  fail_unless_equals_int (a->len, 4);
  fail_unless_equals_int (g_array_index (a, gint, 3), 290);
  g_array_unref (a);
  fail_if (el_chunk_schedule_parse ("49", &a));
  fail_if (el_chunk_schedule_parse ("501", &a));
  fail_if (el_chunk_schedule_parse ("50,abc", &a));
  fail_if (el_chunk_schedule_parse ("50,,60", &a));
  fail_if (el_chunk_schedule_parse ("50,50,50,50,50,50,50,50,50", &a));
}

GST_END_TEST;

/* Guards: an audio frame as the service sends it: base64 audio, the
 * context, and the alignment turned into text + end times. */
GST_START_TEST (test_parse_audio)
{
  const gchar *frame =
      "{\"audio\":\"AAEAAgAD\",\"isFinal\":null,"
      "\"normalizedAlignment\":{\"chars\":[\"x\"],\"charStartTimesMs\":[0],"
      "\"charDurationsMs\":[1]},"
      "\"alignment\":{\"chars\":[\"H\",\"i\",\"\xc3\xa9\",\" \"],"
      "\"charStartTimesMs\":[0,50,90,120],\"charDurationsMs\":[50,40,30,"
      "10]},\"contextId\":\"ctx-7\"}";
  ElServerMsg m = { 0 };
  gsize n;
  const guint8 *audio;

  fail_unless_equals_int (
      el_server_msg_parse (frame, strlen (frame), &m), EL_MSG_AUDIO);
  fail_unless_equals_string (m.context_id, "ctx-7");
  fail_if (m.is_final);
  audio = g_bytes_get_data (m.audio, &n);
  fail_unless_equals_int (n, 6);
  fail_unless_equals_int (audio[1], 1);
  fail_unless_equals_string (m.text, "Hi\xc3\xa9 ");
  fail_unless_equals_int (m.char_end_ms->len, 4);
  fail_unless_equals_int (g_array_index (m.char_end_ms, gint, 0), 50);
  fail_unless_equals_int (g_array_index (m.char_end_ms, gint, 3), 130);
  el_server_msg_clear (&m);
}

GST_END_TEST;

/* Guards: isFinal, error frames, malformed frames and unknown ones are
 * told apart. */
GST_START_TEST (test_parse_other)
{
  ElServerMsg m = { 0 };
  const gchar *f;

  f = "{\"isFinal\":true,\"contextId\":\"c\"}";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_FINAL);
  fail_unless_equals_string (m.context_id, "c");
  el_server_msg_clear (&m);

  f = "{\"message\":\"Have not received a new text input\","
      "\"error\":\"input_timeout_exceeded\",\"code\":1008}";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_ERROR);
  fail_unless_equals_string (m.error, "input_timeout_exceeded");
  fail_unless (g_str_has_prefix (m.message, "Have not"));
  el_server_msg_clear (&m);

  f = "{\"audio\":\"AAAA\",\"isFinal\":nul";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_INVALID);
  el_server_msg_clear (&m);

  f = "[1,2]";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_INVALID);
  el_server_msg_clear (&m);

  f = "{\"audio\":null,\"isFinal\":false}";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_OTHER);
  el_server_msg_clear (&m);

  /* Audio without alignment (or a malformed one) still plays. */
  f = "{\"audio\":\"AAAA\",\"alignment\":{\"chars\":[\"a\"]}}";
  fail_unless_equals_int (
      el_server_msg_parse (f, strlen (f), &m), EL_MSG_AUDIO);
  fail_unless (m.text == NULL && m.char_end_ms == NULL);
  el_server_msg_clear (&m);
}

GST_END_TEST;

/* Guards: G.711 mu-law decodes to the standard linear values. */
GST_START_TEST (test_ulaw)
{
  const guint8 in[] = { 0xff, 0x7f, 0x00, 0x80, 0xef };
  GBytes *out = el_ulaw_to_s16le (in, sizeof (in));
  gsize n;
  const gint16 *s = g_bytes_get_data (out, &n);

  fail_unless_equals_int (n, 10);
  fail_unless_equals_int (GINT16_FROM_LE (s[0]), 0);
  fail_unless_equals_int (GINT16_FROM_LE (s[1]), 0);
  fail_unless_equals_int (GINT16_FROM_LE (s[2]), -32124);
  fail_unless_equals_int (GINT16_FROM_LE (s[3]), 32124);
  fail_unless_equals_int (GINT16_FROM_LE (s[4]), 132);
  g_bytes_unref (out);
}

GST_END_TEST;

/* Guards: where re-sending starts after a reconnect, from the characters
 * the alignment covered (spaces do not count, multi-byte ones do). */
GST_START_TEST (test_resend_offset)
{
  const gchar *t = "Hello there. Caf\xc3\xa9 au lait, please. ";

  fail_unless_equals_int (el_count_nonspace (t, -1), 29);
  fail_unless_equals_int (el_offset_after_nonspace (t, 0), 0);
  fail_unless_equals_string (
      t + el_offset_after_nonspace (t, 11), "Caf\xc3\xa9 au lait, please. ");
  fail_unless_equals_string (
      t + el_offset_after_nonspace (t, 15), "au lait, please. ");
  fail_unless_equals_int (el_offset_after_nonspace (t, 29), strlen (t));
  fail_unless_equals_int (el_offset_after_nonspace (t, 99), strlen (t));
}

GST_END_TEST;

static Suite *
protocol_suite (void)
{
  Suite *s = suite_create ("elevenlabs-protocol");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_text_messages);
  tcase_add_test (tc, test_control_messages);
  tcase_add_test (tc, test_urls);
  tcase_add_test (tc, test_schedule);
  tcase_add_test (tc, test_parse_audio);
  tcase_add_test (tc, test_parse_other);
  tcase_add_test (tc, test_ulaw);
  tcase_add_test (tc, test_resend_offset);
  return s;
}

GST_CHECK_MAIN (protocol);

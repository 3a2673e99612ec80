/* Unit tests of the Deepgram protocol helpers (gst/deepgram/protocol.c):
 * the request URL and the parsing of the server's messages, written from
 * the examples in Deepgram's documentation.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include "protocol.h"

/* GLib's first quark block is dropped by design once libsoup, GIO and
 * GStreamer are loaded; tests/lsan.supp matches it on full stacks only. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

static DgRequest
default_request (void)
{
  DgRequest req = {
    .model = "nova-3",
    .language = "en",
    .encoding = "linear16",
    .sample_rate = 16000,
    .interim_results = TRUE,
    .endpointing_ms = 300,
    .utterance_end_ms = 1000,
    .smart_format = FALSE,
    .punctuate = TRUE,
  };
  return req;
}

/* Guards: the query carries every option under Deepgram's parameter name. */
GST_START_TEST (test_url_defaults)
{
  DgRequest req = default_request ();
  gchar *url = dg_request_build_url ("wss://api.deepgram.com/v1/listen", &req);

  fail_unless_equals_string (url,
      "wss://api.deepgram.com/v1/listen?model=nova-3&language=en"
      "&encoding=linear16&sample_rate=16000&channels=1&interim_results=true"
      "&endpointing=300&utterance_end_ms=1000&smart_format=false"
      "&punctuate=true");
  g_free (url);
}

GST_END_TEST;

/* Guards: endpointing 0 is "false", utterance_end_ms is left out without
 * interim results (Deepgram refuses it), keyterms are escaped and repeated,
 * extra parameters and an existing query survive. */
GST_START_TEST (test_url_options)
{
  DgRequest req = default_request ();
  const gchar *terms[] = { "Deepgram", "gst voice & co", "", NULL };
  gchar *url;

  req.interim_results = FALSE;
  req.endpointing_ms = 0;
  req.vad_events = TRUE;
  req.language = "";
  req.encoding = "mulaw";
  req.sample_rate = 8000;
  req.keyterms = terms;
  req.extra_params = "&diarize=true&numerals=true";
  url = dg_request_build_url ("ws://127.0.0.1:9/v1/listen?tag=x", &req);
  fail_unless_equals_string (url,
      "ws://127.0.0.1:9/v1/listen?tag=x&model=nova-3&encoding=mulaw"
      "&sample_rate=8000&channels=1&interim_results=false&endpointing=false"
      "&smart_format=false&punctuate=true&vad_events=true"
      "&keyterm=Deepgram&keyterm=gst%20voice%20%26%20co"
      "&diarize=true&numerals=true");
  g_free (url);
}

GST_END_TEST;

static DgMessage *
parse (const gchar *json)
{
  GError *error = NULL;
  DgMessage *m = dg_message_parse (json, strlen (json), &error);

  fail_unless (m != NULL, "%s", error ? error->message : "");
  return m;
}

/* Guards: a Results message as documented (final, speech_final, words
 * with punctuated_word) parses to its first alternative. */
GST_START_TEST (test_parse_results)
{
  DgMessage *m = parse (
      "{\"type\":\"Results\",\"channel_index\":[0,1],\"duration\":1.98,"
      "\"start\":5.99,\"is_final\":true,\"speech_final\":true,"
      "\"channel\":{\"alternatives\":[{\"transcript\":\"Another big "
      "problem.\",\"confidence\":0.9990234,\"words\":["
      "{\"word\":\"another\",\"start\":6.08,\"end\":6.56,\"confidence\":"
      "0.99,\"punctuated_word\":\"Another\"},"
      "{\"word\":\"big\",\"start\":6.56,\"end\":6.8,\"confidence\":1},"
      "{\"word\":\"problem\",\"start\":6.8,\"end\":7.3,\"confidence\":0.97,"
      "\"punctuated_word\":\"problem.\"}]}]},"
      "\"metadata\":{\"request_id\":\"52cc0efe-fa77-4aa7-b79c-0dda09de2f14\","
      "\"model_info\":{\"name\":\"2-general-nova\",\"version\":"
      "\"2024-01-06.5664\",\"arch\":\"nova-2\"},\"model_uuid\":"
      "\"c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c\"},\"from_finalize\":false}");

  fail_unless_equals_int (m->type, DG_MESSAGE_RESULTS);
  fail_unless (m->is_final && m->speech_final && !m->from_finalize);
  fail_unless_equals_float (m->start, 5.99);
  fail_unless_equals_float (m->duration, 1.98);
  fail_unless_equals_string (m->transcript, "Another big problem.");
  fail_unless_equals_float (m->confidence, 0.9990234);
  fail_unless_equals_string (
      m->request_id, "52cc0efe-fa77-4aa7-b79c-0dda09de2f14");
  fail_unless_equals_int (m->words->len, 3);
  fail_unless_equals_string (
      g_array_index (m->words, DgWord, 0).punctuated_word, "Another");
  /* No punctuated_word: the word stands for itself. */
  fail_unless_equals_string (
      g_array_index (m->words, DgWord, 1).punctuated_word, "big");
  fail_unless_equals_float (g_array_index (m->words, DgWord, 1).confidence, 1);
  fail_unless_equals_float (g_array_index (m->words, DgWord, 2).end, 7.3);
  dg_message_free (m);
}

GST_END_TEST;

/* Guards: an interim result without words or alternatives still parses,
 * with an empty transcript (Deepgram sends those for silence). */
GST_START_TEST (test_parse_empty_results)
{
  DgMessage *m =
      parse ("{\"type\":\"Results\",\"start\":0,\"duration\":3,"
             "\"is_final\":false,\"channel\":{\"alternatives\":[]}}");

  fail_unless_equals_string (m->transcript, "");
  fail_unless_equals_int (m->words->len, 0);
  fail_unless (!m->is_final);
  fail_unless_equals_float (m->duration, 3);
  dg_message_free (m);
}

GST_END_TEST;

/* Guards: the other documented server messages. */
GST_START_TEST (test_parse_others)
{
  DgMessage *m;

  m = parse ("{\"type\":\"Metadata\",\"transaction_key\":\"deprecated\","
             "\"request_id\":\"8c8ebea9-dbec-45fa-a035-e4632cb05b5f\","
             "\"sha256\":\"5324da68ede209a16ac69a38e8cd29cee4d754434a041166cda3"
             "a1f5e0b24566\",\"created\":\"2024-08-29T22:13:59.238Z\","
             "\"duration\":0.0,\"channels\":0}");
  fail_unless_equals_int (m->type, DG_MESSAGE_METADATA);
  fail_unless_equals_string (
      m->request_id, "8c8ebea9-dbec-45fa-a035-e4632cb05b5f");
  dg_message_free (m);

  m = parse ("{\"type\":\"SpeechStarted\",\"channel\":[0,1],"
             "\"timestamp\":9.54}");
  fail_unless_equals_int (m->type, DG_MESSAGE_SPEECH_STARTED);
  fail_unless_equals_float (m->timestamp, 9.54);
  dg_message_free (m);

  m = parse ("{\"type\":\"UtteranceEnd\",\"channel\":[0,1],"
             "\"last_word_end\":2.395}");
  fail_unless_equals_int (m->type, DG_MESSAGE_UTTERANCE_END);
  fail_unless_equals_float (m->timestamp, 2.395);
  dg_message_free (m);

  m = parse ("{\"type\":\"Error\",\"variant\":\"SchemaError\","
             "\"description\":\"Could not deserialize last text message\","
             "\"message\":\"\"}");
  fail_unless_equals_int (m->type, DG_MESSAGE_ERROR);
  fail_unless_equals_string (
      m->description, "Could not deserialize last text message");
  dg_message_free (m);

  /* A message type from a newer server is not an error. */
  m = parse ("{\"type\":\"SomethingNew\",\"x\":1}");
  fail_unless_equals_int (m->type, DG_MESSAGE_UNKNOWN);
  fail_unless_equals_string (m->type_name, "SomethingNew");
  dg_message_free (m);
}

GST_END_TEST;

/* Guards: what is not a Deepgram message is refused with an error, not a
 * crash: broken JSON, a non-object, no type. */
GST_START_TEST (test_parse_invalid)
{
  const gchar *bad[] = { "{\"type\":\"Results\",\"channel_index\":[0,", "[1,2]",
    "{\"start\":1}", "", "{\"type\":7}" };
  GError *error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    fail_unless (dg_message_parse (bad[i], strlen (bad[i]), &error) == NULL,
        "accepted %s", bad[i]);
    fail_unless (error != NULL);
    g_clear_error (&error);
  }
}

GST_END_TEST;

/* Guards: the dg-error header gives the message whether it holds the bare
 * text or the JSON error body; close reasons are matched by code. */
GST_START_TEST (test_errors)
{
  gchar *t;

  t = dg_error_text ("{\"err_code\":\"Bad Request\",\"err_msg\":\"Invalid "
                     "query string.\",\"request_id\":\"x\"}");
  fail_unless_equals_string (t, "Invalid query string.");
  g_free (t);
  t = dg_error_text ("Invalid credentials.");
  fail_unless_equals_string (t, "Invalid credentials.");
  g_free (t);
  fail_unless (dg_error_text (NULL) == NULL);
  fail_unless (dg_close_reason_has ("NET-0001", "NET-0001"));
  fail_unless (dg_close_reason_has (
      "DATA-0000: The payload cannot be decoded as audio.", "DATA-0000"));
  fail_unless (!dg_close_reason_has (NULL, "NET-0001"));
}

GST_END_TEST;

static Suite *
protocol_suite (void)
{
  Suite *s = suite_create ("deepgram-protocol");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_url_defaults);
  tcase_add_test (tc, test_url_options);
  tcase_add_test (tc, test_parse_results);
  tcase_add_test (tc, test_parse_empty_results);
  tcase_add_test (tc, test_parse_others);
  tcase_add_test (tc, test_parse_invalid);
  tcase_add_test (tc, test_errors);
  return s;
}

GST_CHECK_MAIN (protocol);

/* The install test's caller: one call to an installed voiceagent.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * tests/install/test-install starts the installed server with nothing
 * from the build tree; this places a WebRTC call to it ($INSTALL_CALL_URL)
 * and checks that the whole agent answers: a typed question gets a
 * written answer (deepgram/llm/elevenlabs elements loaded from the
 * installed plugin directory) and the answer is heard as audio.
 */
#include <gst/check/gstcheck.h>
#include "whip-check.h"

#define ANSWER_TIMEOUT_MS 30000

GST_START_TEST (test_installed_server_answers)
{
  const gchar *url = g_getenv ("INSTALL_CALL_URL");
  WhipCallerOptions o = { .url = url, .data_channel = TRUE };
  WhipCaller *c;
  gchar *answer;

  fail_unless (url != NULL, "INSTALL_CALL_URL is not set");
  c = whip_caller_new (&o);
  fail_unless_equals_int (whip_caller_connect (c, NULL), 201);
  g_free (whip_check_message (c, "\"type\":\"call\"", ANSWER_TIMEOUT_MS));
  answer = whip_check_ask (c, "What color is the sky?", ANSWER_TIMEOUT_MS);
  GST_INFO ("answer: %s", answer);
  fail_unless (strstr (answer, "\"text\"") != NULL, "no text in %s", answer);
  fail_unless (whip_caller_wait_audio (c, 0.05, ANSWER_TIMEOUT_MS),
      "the answer was never heard (peak RMS %.3f)",
      whip_caller_get_peak_rms (c));
  g_free (answer);
  fail_unless_equals_int (whip_caller_hangup (c), 200);
  whip_caller_free (c);
}
GST_END_TEST;

static Suite *
install_call_suite (void)
{
  Suite *s = suite_create ("install-call");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_installed_server_answers);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (install_call);

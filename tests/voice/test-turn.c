/* Unit tests of the end-of-turn rules and the backchannel test
 * (gstvoiceturn.c): plain C, times given by the test.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include "gstvoiceturn.h"

#define MS 1000

static GstVoiceTurnEnding
classify (const gchar *text)
{
  GstVoiceTurnWords *w = gst_voice_turn_words_get_default ("en");
  GstVoiceTurnEnding e = gst_voice_turn_classify (w, text);

  gst_voice_turn_words_unref (w);
  return e;
}

static gboolean
backchannel (const gchar *text)
{
  GstVoiceTurnWords *w = gst_voice_turn_words_get_default ("en");
  gboolean b = gst_voice_turn_is_backchannel (w, text);

  gst_voice_turn_words_unref (w);
  return b;
}

GST_START_TEST (test_normalize)
{
  gchar *n = gst_voice_turn_normalize ("Hello, World!  It\xe2\x80\x99s me.");

  fail_unless_equals_string (n, "hello world it's me");
  g_free (n);
  n = gst_voice_turn_normalize ("Mm-hmm... 4-7-2?");
  fail_unless_equals_string (n, "mm-hmm 4-7-2");
  g_free (n);
  n = gst_voice_turn_normalize (NULL);
  fail_unless_equals_string (n, "");
  g_free (n);
}
GST_END_TEST;

/* The last word decides before the full stop a service puts at the end of
 * every segment. */
GST_START_TEST (test_classify)
{
  fail_unless_equals_int (
      classify ("I want a pizza."), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("Can you help me?"), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("My account number is"), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (
      classify ("My name is um."), GST_VOICE_TURN_ENDING_OPEN);
  /* Soft: open only without a full stop. */
  fail_unless_equals_int (
      classify ("Yes it is."), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("I cannot log in."), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("I cannot log in"), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (
      classify ("Where are you from?"), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("I'd like to order a"), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (classify ("pizza and"), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (classify ("So, um."), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (
      classify ("It is four seven two."), GST_VOICE_TURN_ENDING_NUMBER);
  fail_unless_equals_int (
      classify ("My code is 472."), GST_VOICE_TURN_ENDING_NUMBER);
  fail_unless_equals_int (
      classify ("That's spelled B."), GST_VOICE_TURN_ENDING_NUMBER);
  fail_unless_equals_int (
      classify ("Is it 42?"), GST_VOICE_TURN_ENDING_COMPLETE);
  fail_unless_equals_int (
      classify ("I want a pizza"), GST_VOICE_TURN_ENDING_UNSURE);
  fail_unless_equals_int (classify (""), GST_VOICE_TURN_ENDING_UNSURE);
}
GST_END_TEST;

GST_START_TEST (test_backchannel)
{
  fail_unless (backchannel ("Mhm."));
  fail_unless (backchannel ("uh huh"));
  fail_unless (backchannel ("Uh-huh, yeah."));
  fail_unless (backchannel ("Okay."));
  fail_unless (backchannel ("right right"));
  fail_unless (!backchannel ("Wait, stop."));
  fail_unless (!backchannel ("yeah but no"));
  fail_unless (!backchannel ("okay okay okay okay okay"));
  fail_unless (!backchannel (""));
  fail_unless (!backchannel (NULL));
}
GST_END_TEST;

GST_START_TEST (test_words_file)
{
  gchar *path = NULL;
  gint fd = g_file_open_tmp ("turn-XXXXXX.ini", &path, NULL);
  GError *err = NULL;
  GstVoiceTurnWords *w;
  const gchar *ini = "[de]\nopen=und;der;die;das\nnumber=eins;zwei\n"
                     "backchannel=ja;genau;mhm\n";

  fail_unless (fd >= 0);
  close (fd);
  fail_unless (g_file_set_contents (path, ini, -1, NULL));
  w = gst_voice_turn_words_new_from_file (path, "de-AT", &err);
  fail_unless (w != NULL, "%s", err ? err->message : "");
  fail_unless_equals_int (gst_voice_turn_classify (w, "Ich möchte die."),
      GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (gst_voice_turn_classify (w, "Nummer zwei."),
      GST_VOICE_TURN_ENDING_NUMBER);
  fail_unless (gst_voice_turn_is_backchannel (w, "Ja, genau."));
  /* The file says everything about its language. */
  fail_unless (!gst_voice_turn_is_backchannel (w, "okay"));
  gst_voice_turn_words_unref (w);

  w = gst_voice_turn_words_new_from_file (path, "fr", &err);
  fail_unless (w == NULL);
  fail_unless (g_error_matches (
      err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND));
  fail_unless (strstr (err->message, "[fr]") != NULL, "%s", err->message);
  g_clear_error (&err);
  g_unlink (path);
  g_free (path);
}
GST_END_TEST;

static GstVoiceTurnTracker *
tracker_new (void)
{
  GstVoiceTurnConfig c = {
    .delay_ms = { 150, 700, 1000, 1500 },
    .max_ms = 2500,
  };

  return gst_voice_turn_tracker_new (&c);
}

/* A complete sentence: a likely pause at the final, the commit 150 ms
 * after the last word. */
GST_START_TEST (test_tracker_complete)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  fail_unless_equals_int (gst_voice_turn_tracker_push_speech (t, TRUE, 0), 0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "I want a pizza", FALSE, FALSE, 1000 * MS, 1100 * MS),
      0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1100 * MS, &next), 0);
  /* Interim words hold it back until they are final. */
  fail_unless_equals_int (next, -1);
  /* The VAD's speech-stop makes the interim words a likely end (a
   * Finalize round trip before the final ones); its end of speech (900
   * ms) is before the last word's end: the word's end counts. */
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_speech (t, FALSE, 900 * MS),
      GST_VOICE_TURN_ACTION_LIKELY);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "I want a pizza.", TRUE, TRUE, 1000 * MS, 1200 * MS),
      0);
  fail_unless_equals_string (
      gst_voice_turn_tracker_get_text (t), "I want a pizza.");
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1100 * MS, &next), 0);
  fail_unless_equals_int (next, 1150 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1200 * MS, &next),
      GST_VOICE_TURN_ACTION_COMMIT);
  gst_voice_turn_tracker_reset (t);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 5000 * MS, &next), 0);
  fail_unless_equals_int (next, -1);
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* "My account number is … four seven two": the pause after "is" is
 * waited out with no likely pause (a reply to it would be thrown away),
 * and the commit comes after the number's longer delay. */
GST_START_TEST (test_tracker_open_then_resumed)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  /* An open phrase is no likely end: no speculative reply for it. */
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "My account number is", TRUE, TRUE, 1000 * MS, 1300 * MS),
      0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_get_ending (t), GST_VOICE_TURN_ENDING_OPEN);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 2400 * MS, &next), 0);
  fail_unless_equals_int (next, 2500 * MS);
  gst_voice_turn_tracker_push_speech (t, TRUE, 2000 * MS);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "four seven two", FALSE, FALSE, 2800 * MS, 2880 * MS),
      0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 2600 * MS, &next), 0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_speech (t, FALSE, 2800 * MS),
      GST_VOICE_TURN_ACTION_LIKELY);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "four seven two.", TRUE, TRUE, 2800 * MS, 3000 * MS),
      0);
  fail_unless_equals_string (gst_voice_turn_tracker_get_text (t),
      "My account number is four seven two.");
  fail_unless_equals_int (
      gst_voice_turn_tracker_get_ending (t), GST_VOICE_TURN_ENDING_NUMBER);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 3700 * MS, &next), 0);
  fail_unless_equals_int (next, 3800 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 3800 * MS, NULL),
      GST_VOICE_TURN_ACTION_COMMIT);
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* Without the service's endpoint (speech_final, Finalize, UtteranceEnd)
 * nothing commits before the hard limit; a cough (speech without words)
 * voids nothing. */
GST_START_TEST (test_tracker_floor_and_cough)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  gst_voice_turn_tracker_push_result (
      t, "Hello there.", TRUE, FALSE, 1000 * MS, 1100 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1500 * MS, &next), 0);
  fail_unless_equals_int (next, 3500 * MS);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_speech (t, TRUE, 1200 * MS), 0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_speech (t, FALSE, 1400 * MS), 0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_endpoint (t, 1600 * MS), 0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1600 * MS, NULL),
      GST_VOICE_TURN_ACTION_COMMIT);
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* An interim word holds the commit even past the hard limit (the service
 * finalizes it, perhaps after a reconnect); speech without an endpoint
 * does not. */
GST_START_TEST (test_tracker_hard_limit)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  gst_voice_turn_tracker_push_speech (t, FALSE, 0);
  gst_voice_turn_tracker_push_result (
      t, "book a table", TRUE, FALSE, 1000 * MS, 1100 * MS);
  gst_voice_turn_tracker_push_result (
      t, "for two", FALSE, FALSE, 1500 * MS, 1600 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 9000 * MS, &next), 0);
  fail_unless_equals_int (next, -1);
  gst_voice_turn_tracker_push_speech (t, TRUE, 1600 * MS);
  gst_voice_turn_tracker_push_result (
      t, "for two", TRUE, FALSE, 1500 * MS, 9100 * MS);
  /* While the caller speaks, the hard limit counts from the later of the
   * last word and the speech-start. */
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 4000 * MS, &next), 0);
  fail_unless_equals_int (next, 4100 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 4100 * MS, NULL),
      GST_VOICE_TURN_ACTION_COMMIT);
  fail_unless_equals_string (
      gst_voice_turn_tracker_get_text (t), "book a table for two");
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* Word times that come early (a service's clock, a gate's burst): the
 * silence counts from where the VAD heard speech end. */
GST_START_TEST (test_tracker_vad_end)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  gst_voice_turn_tracker_push_speech (t, TRUE, 0);
  gst_voice_turn_tracker_push_result (
      t, "Where is the", TRUE, FALSE, 700 * MS, 800 * MS);
  gst_voice_turn_tracker_push_speech (t, FALSE, 1300 * MS);
  gst_voice_turn_tracker_push_endpoint (t, 1550 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 2300 * MS, &next), 0);
  fail_unless_equals_int (next, 2800 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 2800 * MS, NULL),
      GST_VOICE_TURN_ACTION_COMMIT);
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* "I want a pizza. … with cheese": new words void the likely pause. */
GST_START_TEST (test_tracker_resumed)
{
  GstVoiceTurnTracker *t = tracker_new ();

  gst_voice_turn_tracker_push_speech (t, FALSE, 0);
  fail_unless_equals_int (
      gst_voice_turn_tracker_push_result (
          t, "I want a pizza.", TRUE, TRUE, 1000 * MS, 1100 * MS),
      GST_VOICE_TURN_ACTION_LIKELY);
  gst_voice_turn_tracker_push_speech (t, TRUE, 1120 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1200 * MS, NULL), 0);
  fail_unless_equals_int (gst_voice_turn_tracker_push_result (
                              t, "with", FALSE, FALSE, 1300 * MS, 1400 * MS),
      GST_VOICE_TURN_ACTION_RESUMED);
  gst_voice_turn_tracker_push_speech (t, FALSE, 1700 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_push_result (t, "with cheese.",
                              TRUE, TRUE, 1500 * MS, 1750 * MS),
      GST_VOICE_TURN_ACTION_LIKELY);
  fail_unless_equals_string (
      gst_voice_turn_tracker_get_text (t), "I want a pizza. with cheese.");
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

/* Without a VAD, interim words that stand still for 250 ms make a likely
 * pause; the same words again change nothing, and the final result that
 * restates them keeps the likely pause. */
GST_START_TEST (test_tracker_stable_interim)
{
  GstVoiceTurnTracker *t = tracker_new ();
  gint64 next;

  fail_unless_equals_int (gst_voice_turn_tracker_push_result (t, "Hello there",
                              FALSE, FALSE, 900 * MS, 1000 * MS),
      0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1100 * MS, &next), 0);
  fail_unless_equals_int (next, 1250 * MS);
  fail_unless_equals_int (gst_voice_turn_tracker_push_result (t, "Hello there",
                              FALSE, FALSE, 900 * MS, 1200 * MS),
      0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1250 * MS, &next),
      GST_VOICE_TURN_ACTION_LIKELY);
  fail_unless_equals_string (
      gst_voice_turn_tracker_get_text (t), "Hello there");
  fail_unless_equals_int (gst_voice_turn_tracker_push_result (t, "Hello there.",
                              TRUE, TRUE, 900 * MS, 1300 * MS),
      0);
  fail_unless_equals_int (gst_voice_turn_tracker_poll (t, 1300 * MS, NULL),
      GST_VOICE_TURN_ACTION_COMMIT);
  gst_voice_turn_tracker_free (t);
}
GST_END_TEST;

static Suite *
turn_suite (void)
{
  Suite *s = suite_create ("voiceturn");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_normalize);
  tcase_add_test (tc, test_classify);
  tcase_add_test (tc, test_backchannel);
  tcase_add_test (tc, test_words_file);
  tcase_add_test (tc, test_tracker_complete);
  tcase_add_test (tc, test_tracker_open_then_resumed);
  tcase_add_test (tc, test_tracker_resumed);
  tcase_add_test (tc, test_tracker_vad_end);
  tcase_add_test (tc, test_tracker_floor_and_cough);
  tcase_add_test (tc, test_tracker_hard_limit);
  tcase_add_test (tc, test_tracker_stable_interim);
  return s;
}

GST_CHECK_MAIN (turn);

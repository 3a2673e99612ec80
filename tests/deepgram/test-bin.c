/* The deepgram bin: the launch line of docs/elements/deepgram.md runs as
 * written (against the emulator), two bins in one pipeline keep to their
 * own sessions, and the bin's properties reach its children.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/check/gstcheck.h>
#include "fixture.h"

/* GLib's first quark block is dropped by design once libsoup, GIO and
 * GStreamer are loaded; tests/lsan.supp matches it on full stacks only. */
const char *__asan_default_options (void);

const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0";
}

#define DOC_LINE_START "gst-launch-1.0 -m filesrc location=tests/deepgram/"
#define DOC_URL "ws://127.0.0.1:8790"

/* The first launch line of the docs that starts with DOC_LINE_START, its
 * continuation lines joined, without "gst-launch-1.0 -m". */
static gchar *
docs_launch_line (void)
{
  const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");
  gchar *path = g_build_filename (
      src ? src : ".", "docs", "elements", "deepgram.md", NULL);
  gchar *text = NULL, *start, *end;
  GString *line = g_string_new (NULL);

  fail_unless (g_file_get_contents (path, &text, NULL, NULL), "%s", path);
  start = strstr (text, DOC_LINE_START);
  fail_unless (start != NULL, "no launch line in %s", path);
  start += strlen ("gst-launch-1.0 -m ");
  for (;;) {
    end = strchr (start, '\n');
    fail_unless (end != NULL);
    g_string_append_len (line, start, end - start);
    if (line->len == 0 || line->str[line->len - 1] != '\\')
      break;
    g_string_truncate (line, line->len - 1);
    start = end + 1;
  }
  g_free (text);
  g_free (path);
  return g_string_free (line, FALSE);
}

static gchar *
replace (const gchar *text, const gchar *from, const gchar *to)
{
  gchar **parts = g_strsplit (text, from, -1);
  gchar *out = g_strjoinv (to, parts);

  g_strfreev (parts);
  return out;
}

/* Runs @pipe to EOS (failing on an error); returns its element messages. */
static GList *
run_to_eos (GstElement *pipe)
{
  GstBus *bus = gst_element_get_bus (pipe);
  GList *msgs = NULL;
  GstMessage *m;

  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  while ((m = gst_bus_timed_pop (bus, 60 * GST_SECOND))) {
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR) {
      GError *e = NULL;
      gst_message_parse_error (m, &e, NULL);
      fail ("error: %s", e->message);
    }
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS) {
      gst_message_unref (m);
      break;
    }
    if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ELEMENT)
      msgs = g_list_append (msgs, m);
    else
      gst_message_unref (m);
  }
  fail_unless (m != NULL, "no EOS within 60 s");
  gst_element_set_state (pipe, GST_STATE_NULL);
  gst_object_unref (bus);
  return msgs;
}

/* The end-of-turn transcripts posted by the deepgramsrc inside @bin. */
static GPtrArray *
turns_of (GList *msgs, GstElement *bin)
{
  GPtrArray *turns = g_ptr_array_new ();

  for (GList *l = msgs; l; l = l->next) {
    GstMessage *m = l->data;
    const GstStructure *s = gst_message_get_structure (m);
    if (gst_structure_has_name (s, "deepgramsrc") &&
        g_strcmp0 (gst_structure_get_string (s, "event"), "end-of-turn") == 0 &&
        gst_object_has_as_ancestor (GST_MESSAGE_SRC (m), GST_OBJECT (bin)))
      g_ptr_array_add (
          turns, (gpointer)gst_structure_get_string (s, "transcript"));
  }
  return turns;
}

static gboolean
has_message (GList *msgs, const gchar *name)
{
  for (GList *l = msgs; l; l = l->next)
    if (gst_structure_has_name (gst_message_get_structure (l->data), name))
      return TRUE;
  return FALSE;
}

/* Guards: the docs' launch line with the deepgram bin runs to EOS against
 * the emulator and yields a transcript, an end-of-turn and usage. */
GST_START_TEST (test_docs_launch_line)
{
  EmuProcess *emu = fx_start_emulator ((const gchar *[]){ "-q", NULL });
  gchar *line = docs_launch_line ();
  gchar *with_url, *with_path, *location;
  GError *error = NULL;
  GstElement *pipe, *bin = NULL;
  GList *msgs;
  GPtrArray *turns;
  GstIterator *it;
  GValue v = G_VALUE_INIT;

  fail_unless (emu != NULL);
  fail_unless (strstr (line, " ! deepgram ") != NULL, "%s", line);
  with_url = replace (line, DOC_URL, emu_process_get_ws_url (emu));
  location = g_strconcat (
      "location=", g_getenv ("VOICEAGENT_SOURCE_DIR"), "/tests/", NULL);
  with_path = replace (with_url, "location=tests/", location);
  pipe = gst_parse_launch (with_path, &error);
  fail_unless (pipe != NULL, "%s: %s", with_path, error ? error->message : "");

  it = gst_bin_iterate_recurse (GST_BIN (pipe));
  while (gst_iterator_next (it, &v) == GST_ITERATOR_OK) {
    GstElement *e = g_value_get_object (&v);
    if (G_TYPE_FROM_INSTANCE (e) == g_type_from_name ("GstDeepgramBin"))
      bin = e;
    g_value_reset (&v);
  }
  g_value_unset (&v);
  gst_iterator_free (it);
  fail_unless (bin != NULL);

  msgs = run_to_eos (pipe);
  turns = turns_of (msgs, bin);
  fail_unless_equals_int (turns->len, 1);
  fail_unless (strlen (g_ptr_array_index (turns, 0)) > 0);
  fail_unless (has_message (msgs, "deepgram-transcript"));
  fail_unless (has_message (msgs, "deepgram-usage"));

  g_ptr_array_unref (turns);
  g_list_free_full (msgs, (GDestroyNotify)gst_message_unref);
  gst_object_unref (pipe);
  g_free (location);
  g_free (with_path);
  g_free (with_url);
  g_free (line);
  emu_process_stop (emu);
}

GST_END_TEST;

#define TWO_BINS                                                               \
  "audiotestsrc num-buffers=100 samplesperbuffer=320 volume=0.3 "              \
  "! audio/x-raw,rate=16000,channels=1,format=S16LE ! tee name=t "             \
  "t. ! queue ! deepgram name=a url=%s/v1/listen api-key=k "                   \
  "extra-params=emu_transcript=alpha ! fakesink "                              \
  "t. ! queue ! deepgram name=b url=%s/v1/listen api-key=k "                   \
  "extra-params=emu_transcript=bravo ! fakesink"

/* Guards: two bins in one pipeline pair their own children (unique session
 * names): each gets only its own transcript. */
GST_START_TEST (test_two_bins)
{
  EmuProcess *emu = fx_start_emulator (
      (const gchar *[]){ "-q", "--stt-engine", "scripted", NULL });
  gchar *desc;
  GError *error = NULL;
  GstElement *pipe, *a, *b;
  GList *msgs;
  GPtrArray *ta, *tb;

  fail_unless (emu != NULL);
  desc = g_strdup_printf (
      TWO_BINS, emu_process_get_ws_url (emu), emu_process_get_ws_url (emu));
  pipe = gst_parse_launch (desc, &error);
  fail_unless (pipe != NULL, "%s", error ? error->message : "");
  a = gst_bin_get_by_name (GST_BIN (pipe), "a");
  b = gst_bin_get_by_name (GST_BIN (pipe), "b");
  msgs = run_to_eos (pipe);
  ta = turns_of (msgs, a);
  tb = turns_of (msgs, b);
  fail_unless_equals_int (ta->len, 1);
  fail_unless_equals_int (tb->len, 1);
  fail_unless_equals_string (g_ptr_array_index (ta, 0), "Alpha.");
  fail_unless_equals_string (g_ptr_array_index (tb, 0), "Bravo.");

  g_ptr_array_unref (ta);
  g_ptr_array_unref (tb);
  g_list_free_full (msgs, (GDestroyNotify)gst_message_unref);
  gst_object_unref (a);
  gst_object_unref (b);
  gst_object_unref (pipe);
  g_free (desc);
  emu_process_stop (emu);
}

GST_END_TEST;

#define WITH_VAD                                                               \
  "concat name=c ! audioconvert ! audioresample "                              \
  "! audio/x-raw,format=S16LE,rate=16000,channels=1 ! silerovad gate=true "    \
  "! deepgram name=dg url=%s/v1/listen api-key=k max-backlog-ms=30000 "        \
  "extra-params=emu_transcript=first%%20turn|second%%20turn "                  \
  "turn-detection=endpointing ! fakesink "                                     \
  "filesrc location=%s ! wavparse ! c. "                                       \
  "audiotestsrc wave=silence samplesperbuffer=441 num-buffers=150 "            \
  "! audio/x-raw,format=S16LE,rate=22050,channels=1 ! c. "                     \
  "filesrc location=%s ! wavparse ! c."

/* Guards: behind silerovad gate=true, two utterances 3 s apart make two
 * turns, each with a Finalize sent on speech-stop; the gated silence is
 * not sent (cost control: usage is well under the audio's length). The
 * files go faster than real time, so the backlog bound is raised, and the
 * turns are Deepgram's (turn-detection=transcript times silence on the
 * wall clock, which a file decoded at full speed does not keep). */
GST_START_TEST (test_with_silerovad)
{
  EmuProcess *emu = fx_start_emulator (
      (const gchar *[]){ "-q", "--stt-engine", "scripted", NULL });
  gchar *wav = fx_data_path ("order-pizza.wav");
  gchar *desc;
  GError *error = NULL;
  GstElement *pipe, *dg;
  GList *msgs;
  GPtrArray *turns;
  gdouble sent = 0, total = 3.6 + 3.0 + 3.6;

  fail_unless (gst_element_factory_find ("silerovad") != NULL,
      "silerovad (gst/silero) is not built");
  desc = g_strdup_printf (WITH_VAD, emu_process_get_ws_url (emu), wav, wav);
  pipe = gst_parse_launch (desc, &error);
  fail_unless (pipe != NULL, "%s", error ? error->message : "");
  dg = gst_bin_get_by_name (GST_BIN (pipe), "dg");
  msgs = run_to_eos (pipe);
  turns = turns_of (msgs, dg);
  fail_unless_equals_int (turns->len, 2);
  fail_unless_equals_string (g_ptr_array_index (turns, 0), "First turn.");
  fail_unless_equals_string (g_ptr_array_index (turns, 1), "Second turn.");
  GST_INFO ("finalize events: %u", fx_emu_count_events (emu, "finalize"));
  fail_unless (fx_emu_count_events (emu, "finalize") >= 2);
  for (GList *l = msgs; l; l = l->next) {
    const GstStructure *st = gst_message_get_structure (l->data);
    if (gst_structure_has_name (st, "deepgram-usage"))
      gst_structure_get_double (st, "audio-seconds", &sent);
  }
  fail_unless (
      sent > 1.0 && sent < total - 2.0, "sent %f s of %f s", sent, total);

  g_ptr_array_unref (turns);
  g_list_free_full (msgs, (GDestroyNotify)gst_message_unref);
  gst_object_unref (dg);
  gst_object_unref (pipe);
  g_free (desc);
  g_free (wav);
  emu_process_stop (emu);
}

GST_END_TEST;

/* Guards: the bin's options reach its deepgramsink, `interim` its
 * deepgramsrc, and the two children share a session of their own. */
GST_START_TEST (test_properties)
{
  GstElement *bin = gst_element_factory_make ("deepgram", NULL);
  GstElement *sink = gst_bin_get_by_name (GST_BIN (bin), "sink");
  GstElement *src = gst_bin_get_by_name (GST_BIN (bin), "src");
  gchar *model = NULL, *s1 = NULL, *s2 = NULL;
  gboolean interim = FALSE;
  guint endpointing = 0;

  fail_unless (sink && src);
  gst_util_set_object_arg (G_OBJECT (bin), "model", "nova-2-phonecall");
  gst_util_set_object_arg (G_OBJECT (bin), "endpointing-ms", "500");
  gst_util_set_object_arg (G_OBJECT (bin), "interim", "true");
  g_object_get (sink, "model", &model, "endpointing-ms", &endpointing,
      "session", &s1, NULL);
  g_object_get (src, "interim", &interim, "session", &s2, NULL);
  fail_unless_equals_string (model, "nova-2-phonecall");
  fail_unless_equals_int (endpointing, 500);
  fail_unless (interim);
  fail_unless_equals_string (s1, s2);
  fail_if (g_str_equal (s1, "default"));
  g_free (model);
  g_free (s1);
  g_free (s2);
  g_object_get (bin, "model", &model, NULL);
  fail_unless_equals_string (model, "nova-2-phonecall");
  g_free (model);
  gst_object_unref (sink);
  gst_object_unref (src);
  gst_object_unref (bin);
}

GST_END_TEST;

static Suite *
bin_suite (void)
{
  Suite *s = suite_create ("deepgram-bin");
  TCase *tc = tcase_create ("general");

  tcase_set_timeout (tc, 120);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_docs_launch_line);
  tcase_add_test (tc, test_two_bins);
  tcase_add_test (tc, test_with_silerovad);
  tcase_add_test (tc, test_properties);
  return s;
}

GST_CHECK_MAIN (bin);

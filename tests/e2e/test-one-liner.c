/* The design's one-liner over a WAV file, against voiceagent-emulator:
 *   filesrc ! wavparse ! audioconvert ! audioresample ! silerovad ! deepgram
 *     ! llmtransform ! elevenlabs ! appsink
 * A recorded question goes in; a spoken answer must come out.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Cannot run when an element is not built or the Silero model is not
 * installed: it names what is missing and skips, or fails under strict
 * (test-skip.h).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gst/check/gstcheck.h>

#include "emulator-process.h"
#include "test-skip.h"

#define QUESTION "please book a table for two people tomorrow evening"

static GstFlowReturn
collect_sample (GstElement *appsink, gpointer data)
{
  GstSample *sample = NULL;

  g_signal_emit_by_name (appsink, "pull-sample", &sample);
  if (sample) {
    GstMapInfo map;
    GstBuffer *buf = gst_sample_get_buffer (sample);
    gst_buffer_map (buf, &map, GST_MAP_READ);
    g_byte_array_append (data, map.data, (guint)map.size);
    gst_buffer_unmap (buf, &map);
    gst_sample_unref (sample);
  }
  return GST_FLOW_OK;
}

static gdouble
rms (const gint16 *s, gsize n)
{
  gdouble acc = 0;

  for (gsize i = 0; i < n; i++)
    acc += (gdouble)s[i] * s[i];
  return n ? sqrt (acc / n) : 0;
}

/* The `elevenlabssrc` `agent-speaking-stopped` message among @msgs. */
static const GstStructure *
find_answer (GPtrArray *msgs)
{
  for (guint i = 0; i < msgs->len; i++) {
    const GstStructure *s = gst_message_get_structure (msgs->pdata[i]);
    if (s && gst_structure_has_name (s, "elevenlabssrc") &&
        g_strcmp0 (gst_structure_get_string (s, "event"),
            "agent-speaking-stopped") == 0)
      return s;
  }
  return NULL;
}

/* Guards: the whole chain answers a spoken question out loud: VAD events,
 * a transcript, an LLM reply and synthesized speech of that reply, and the
 * stream ends once the answer has played. */
GST_START_TEST (test_one_liner)
{
  gchar *script = NULL;
  gint fd = g_file_open_tmp ("e2e-script-XXXXXX", &script, NULL);
  const gchar *emu_args[] = { "--stt-engine", "scripted", "--stt-script",
    script, NULL };
  EmuProcess *emu;
  gchar *wav, *desc;
  GstElement *pipe, *out;
  GstBus *bus;
  GstMessage *msg;
  GPtrArray *msgs =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_message_unref);
  GByteArray *audio = g_byte_array_new ();
  const GstStructure *answer;
  const gchar *spoken;
  gboolean interrupted = TRUE;
  gboolean eos = FALSE;

  fail_unless (fd >= 0);
  fail_unless (g_file_set_contents (script, QUESTION "\n", -1, NULL));
  close (fd);
  emu = emu_process_start (emu_args);
  fail_unless (emu != NULL);
  wav = g_build_filename (g_getenv ("VOICEAGENT_SOURCE_DIR"), "tests", "e2e",
      "data", "book-table.wav", NULL);
  desc = g_strdup_printf (
      "filesrc location=%s ! wavparse ! audioconvert ! audioresample "
      "! audio/x-raw,format=S16LE,rate=16000,channels=1 ! silerovad "
      "! deepgram url=%s/v1/listen api-key=k "
      "! llmtransform url=%s/v1 api-key=k "
      "! elevenlabs url=%s api-key=k "
      "! appsink name=out emit-signals=true sync=false",
      wav, emu_process_get_ws_url (emu), emu_process_get_http_url (emu),
      emu_process_get_ws_url (emu));
  pipe = gst_parse_launch (desc, NULL);
  fail_unless (pipe != NULL, desc);
  out = gst_bin_get_by_name (GST_BIN (pipe), "out");
  g_signal_connect (out, "new-sample", G_CALLBACK (collect_sample), audio);
  bus = gst_element_get_bus (pipe);
  fail_unless (gst_element_set_state (pipe, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);

  while (!eos && (msg = gst_bus_timed_pop (bus, 120 * GST_SECOND)) != NULL) {
    if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR) {
      GError *err = NULL;
      gchar *dbg = NULL;
      gst_message_parse_error (msg, &err, &dbg);
      fail ("error from %s: %s (%s)", GST_OBJECT_NAME (msg->src), err->message,
          dbg);
    }
    eos = GST_MESSAGE_TYPE (msg) == GST_MESSAGE_EOS;
    g_ptr_array_add (msgs, msg);
  }
  fail_unless (eos, "the pipeline did not end");
  gst_element_set_state (pipe, GST_STATE_NULL);

  answer = find_answer (msgs);
  fail_unless (answer != NULL, "no spoken answer");
  fail_unless (gst_structure_get_boolean (answer, "interrupted", &interrupted));
  fail_if (interrupted);
  spoken = gst_structure_get_string (answer, "spoken-text");
  /* The emulator's responder answers "You said: <question>. ..." */
  fail_unless (strstr (spoken, "book a table") != NULL, "answer: %s", spoken);
  fail_unless (audio->len / 2 > 16000, "%u samples", audio->len / 2);
  fail_unless (rms ((const gint16 *)audio->data, audio->len / 2) > 300);

  g_ptr_array_unref (msgs);
  g_byte_array_unref (audio);
  gst_object_unref (bus);
  gst_object_unref (out);
  gst_object_unref (pipe);
  emu_process_stop (emu);
  g_unlink (script);
  g_free (script);
  g_free (wav);
  g_free (desc);
}

GST_END_TEST;

static Suite *
e2e_suite (void)
{
  Suite *s = suite_create ("e2e");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_set_timeout (tc, 240);
  tcase_add_test (tc, test_one_liner);
  return s;
}

/* Returns the first element of the chain that is not available, or NULL. */
static const gchar *
missing_element (void)
{
  static const gchar *needed[] = { "silerovad", "deepgram", "llmtransform",
    "elevenlabs", "wavparse", "audioconvert", "audioresample", "appsink",
    NULL };

  for (guint i = 0; needed[i]; i++) {
    GstElementFactory *f = gst_element_factory_find (needed[i]);
    if (f == NULL)
      return needed[i];
    gst_object_unref (f);
  }
  return NULL;
}

int
main (int argc, char **argv)
{
  const gchar *missing;
  const gchar *model_dir = g_getenv ("VOICEAGENT_MODEL_DIR");
  g_autofree gchar *model = NULL;

  gst_check_init (&argc, &argv);
  missing = missing_element ();
  if (missing)
    return test_cannot_run (
        "element %s is not available (its plugin is not built)", missing);
  model = g_build_filename (
      model_dir ? model_dir : VOICEAGENT_MODEL_DIR, "silero_vad.onnx", NULL);
  if (!g_file_test (model, G_FILE_TEST_EXISTS))
    return test_cannot_run ("%s is missing (run scripts/setup)", model);
  return gst_check_run_suite (e2e_suite (), "e2e", __FILE__);
}

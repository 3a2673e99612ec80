/* A program of someone else's, built against the installed
 * <gst/voiceagent/voiceagent.h> and gstvoiceagent-1.0.pc: it puts a
 * transcript meta on a buffer and makes and parses an end-of-turn event,
 * as an element outside this project would.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <gst/voiceagent/voiceagent.h>

int
main (int argc, char **argv)
{
  GstBuffer *buf;
  GstVoiceTranscriptMeta *meta;
  GstEvent *event;
  GstClockTime when = 0;
  guint turn = 0;
  const gchar *text = NULL;
  int status = 0;

  gst_init (&argc, &argv);
  gst_voice_init ();
  buf = gst_buffer_new ();
  gst_buffer_add_voice_transcript_meta (
      buf, GST_VOICE_ROLE_USER, TRUE, TRUE, 0.9f, 3);
  meta = gst_buffer_get_voice_transcript_meta (buf);
  if (meta == NULL || meta->turn != 3 || meta->role != GST_VOICE_ROLE_USER) {
    g_printerr ("consumer: the transcript meta did not round-trip\n");
    status = 1;
  }
  event = gst_voice_event_new_end_of_turn (GST_SECOND, 3, "hello there");
  if (!gst_voice_event_parse_end_of_turn (event, &when, &turn, &text) ||
      when != GST_SECOND || turn != 3 || strcmp (text, "hello there") != 0) {
    g_printerr ("consumer: the end-of-turn event did not round-trip\n");
    status = 1;
  }
  gst_event_unref (event);
  gst_buffer_unref (buf);
  return status;
}

/* llmtransform in a GstHarness, for the element's tests (llm-harness.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdarg.h>
#include "llm-harness.h"

gchar *
data_path (const gchar *name)
{
  const gchar *src = g_getenv ("VOICEAGENT_SOURCE_DIR");

  fail_unless (src != NULL, "VOICEAGENT_SOURCE_DIR is not set");
  return g_build_filename (src, "tests", "llm", "data", name, NULL);
}

/* Creates llmtransform talking to @url, with the properties given, the
 * first-token timer off unless set, in a harness (PLAYING, test clock). */
Llm *
llm_new (const gchar *url, const gchar *first_prop, ...)
{
  Llm *l = g_new0 (Llm, 1);
  va_list args;

  l->element = gst_element_factory_make ("llmtransform", NULL);
  fail_unless (l->element != NULL);
  g_object_set (l->element, "url", url, "api-key", "test-key",
      "first-token-timeout-ms", 0, NULL);
  va_start (args, first_prop);
  if (first_prop)
    g_object_set_valist (G_OBJECT (l->element), first_prop, args);
  va_end (args);
  l->bus = gst_bus_new ();
  gst_element_set_bus (l->element, l->bus);
  l->messages =
      g_ptr_array_new_with_free_func ((GDestroyNotify)gst_message_unref);
  l->h = gst_harness_new_with_element (l->element, "sink", "src");
  gst_harness_set_src_caps_str (l->h, "text/x-raw,format=utf8");
  return l;
}

void
llm_free (Llm *l)
{
  gst_harness_teardown (l->h);
  gst_object_unref (l->element);
  gst_bus_set_flushing (l->bus, TRUE);
  gst_object_unref (l->bus);
  g_ptr_array_unref (l->messages);
  g_free (l);
}

gboolean
message_matches (GstMessage *m, GstMessageType type, const gchar *event)
{
  const GstStructure *s;

  if (GST_MESSAGE_TYPE (m) != type)
    return FALSE;
  if (event == NULL)
    return TRUE;
  s = gst_message_get_structure (m);
  return s && gst_structure_has_name (s, "llmtransform") &&
      g_strcmp0 (gst_structure_get_string (s, "event"), event) == 0;
}

/* Returns: (transfer none): the @n-th (from 0) message of @type (and, for
 * element messages, llmtransform @event), waiting for it up to 20 s. */
GstMessage *
wait_message (Llm *l, GstMessageType type, const gchar *event, guint n)
{
  guint i, seen = 0;

  for (i = 0;; i++) {
    GstMessage *m;
    if (i == l->messages->len) {
      m = gst_bus_timed_pop (l->bus, 20 * GST_SECOND);
      fail_unless (m != NULL, "no message %s #%u", event ? event : "", n);
      g_ptr_array_add (l->messages, m);
    }
    m = g_ptr_array_index (l->messages, i);
    if (message_matches (m, type, event) && seen++ == n)
      return m;
  }
}

const GstStructure *
wait_event_message (Llm *l, const gchar *event, guint n)
{
  return gst_message_get_structure (
      wait_message (l, GST_MESSAGE_ELEMENT, event, n));
}

/* Returns: (transfer full): the text of the @n-th warning. */
gchar *
wait_warning (Llm *l, guint n)
{
  GstMessage *m = wait_message (l, GST_MESSAGE_WARNING, NULL, n);
  GError *err = NULL;
  gchar *debug = NULL, *text;

  gst_message_parse_warning (m, &err, &debug);
  text = g_strdup_printf ("%s | %s", err->message, debug);
  g_error_free (err);
  g_free (debug);
  return text;
}

void
push_end_of_turn (Llm *l, guint turn, const gchar *text)
{
  fail_unless (gst_harness_push_event (
      l->h, gst_voice_event_new_end_of_turn (GST_CLOCK_TIME_NONE, turn, text)));
}

/* Pulls one buffer and checks it is agent text of @turn.
 * Returns: (transfer full): its text; *@last says whether it ends the turn. */
gchar *
pull_piece (Llm *l, guint turn, gboolean *last)
{
  GstBuffer *b = gst_harness_pull (l->h);
  GstVoiceTranscriptMeta *meta;
  GstMapInfo map;
  gchar *text;

  fail_unless (b != NULL, "no buffer");
  meta = gst_buffer_get_voice_transcript_meta (b);
  fail_unless (meta != NULL);
  fail_unless_equals_int (meta->role, GST_VOICE_ROLE_AGENT);
  fail_unless (meta->is_final);
  fail_unless_equals_int (meta->turn, turn);
  fail_unless (GST_BUFFER_PTS_IS_VALID (b));
  gst_buffer_map (b, &map, GST_MAP_READ);
  text =
      map.size ? g_strndup ((const gchar *)map.data, map.size) : g_strdup ("");
  gst_buffer_unmap (b, &map);
  *last = meta->speech_final;
  gst_buffer_unref (b);
  return text;
}

/* Pulls the pieces of a reply up to its last one.
 * Returns: (transfer full): the non-empty pieces joined with '|'. */
gchar *
pull_reply (Llm *l, guint turn)
{
  GString *out = g_string_new (NULL);
  gboolean last = FALSE;

  while (!last) {
    gchar *piece = pull_piece (l, turn, &last);
    if (*piece && out->len)
      g_string_append_c (out, '|');
    g_string_append (out, piece);
    g_free (piece);
  }
  return g_string_free (out, FALSE);
}

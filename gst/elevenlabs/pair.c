/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Locking order: no locks; the items it builds cross between the halves
 * through the session's queue, which locks itself. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "pair.h"

/**
 * el_pair_init:
 *
 * Registers the chunk meta once per process; called from plugin_init.
 */
void
el_pair_init (void)
{
  static gsize done = 0;

  if (g_once_init_enter (&done)) {
    static const gchar *tags[] = { NULL };
    /* No tags: no transform keeps it but a plain copy. Tests link this
     * file too, so another copy may have registered it already. */
    if (gst_meta_get_info (EL_CHUNK_META) == NULL)
      gst_meta_register_custom (EL_CHUNK_META, tags, NULL, NULL, NULL);
    g_once_init_leave (&done, 1);
  }
}

/**
 * el_chunk_new:
 * @s16le: (transfer none): the samples
 * @char_end_ms: (nullable): one end time per character of @text
 *
 * Returns: (transfer full): a buffer wrapping @s16le with its chunk meta.
 */
GstBuffer *
el_chunk_new (GBytes *s16le, guint turn, gboolean own, guint segment,
    gint64 received_us, const gchar *text, const GArray *char_end_ms)
{
  GstBuffer *buf = gst_buffer_new_wrapped_bytes (s16le);
  GstCustomMeta *meta = gst_buffer_add_custom_meta (buf, EL_CHUNK_META);
  GstStructure *s = gst_custom_meta_get_structure (meta);

  gst_structure_set (s, "turn", G_TYPE_UINT, turn, "own", G_TYPE_BOOLEAN, own,
      "segment", G_TYPE_UINT, segment, "received", G_TYPE_INT64, received_us,
      NULL);
  if (text)
    gst_structure_set (s, "text", G_TYPE_STRING, text, NULL);
  if (text && char_end_ms) {
    GValue arr = G_VALUE_INIT, v = G_VALUE_INIT;
    gst_value_array_init (&arr, char_end_ms->len);
    g_value_init (&v, G_TYPE_INT);
    for (guint i = 0; i < char_end_ms->len; i++) {
      g_value_set_int (&v, g_array_index (char_end_ms, gint, i));
      gst_value_array_append_value (&arr, &v);
    }
    gst_structure_take_value (s, "char-end-ms", &arr);
    g_value_unset (&v);
  }
  return buf;
}

/**
 * el_chunk_get_info:
 *
 * Returns: (transfer none) (nullable): the chunk meta's structure.
 */
const GstStructure *
el_chunk_get_info (GstBuffer *buffer)
{
  GstCustomMeta *meta = gst_buffer_get_custom_meta (buffer, EL_CHUNK_META);

  return meta ? gst_custom_meta_get_structure (meta) : NULL;
}

GstEvent *
el_format_event_new (guint rate)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
      gst_structure_new (
          EL_EVENT_FORMAT, "rate", G_TYPE_INT, (gint)rate, NULL));
}

GstEvent *
el_turn_end_event_new (guint turn, gboolean own, guint characters,
    GstClockTime ttfb, const gchar *text)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM,
      gst_structure_new (EL_EVENT_TURN_END, "turn", G_TYPE_UINT, turn, "own",
          G_TYPE_BOOLEAN, own, "characters", G_TYPE_UINT, characters, "ttfb",
          G_TYPE_UINT64, (guint64)ttfb, "text", G_TYPE_STRING, text ? text : "",
          NULL));
}

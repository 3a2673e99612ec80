/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The ElevenLabs wire format, as documented in the API reference of
 * /v1/text-to-speech/{voice_id}/multi-stream-input (AsyncAPI schema) and
 * /v1/text-to-speech/{voice_id}/stream. */

/* Locking order: no locks; pure functions over bytes and strings. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "protocol.h"

#include <json-glib/json-glib.h>
#include <string.h>

#define MAX_SCHEDULE_ITEMS 8

static const struct
{
  const gchar *name;
  guint rate;
} formats[] = {
  [EL_FORMAT_PCM_8000] = { "pcm_8000", 8000 },
  [EL_FORMAT_PCM_16000] = { "pcm_16000", 16000 },
  [EL_FORMAT_PCM_22050] = { "pcm_22050", 22050 },
  [EL_FORMAT_PCM_24000] = { "pcm_24000", 24000 },
  [EL_FORMAT_PCM_44100] = { "pcm_44100", 44100 },
  [EL_FORMAT_ULAW_8000] = { "ulaw_8000", 8000 },
};

const gchar *
el_output_format_to_string (ElOutputFormat format)
{
  g_return_val_if_fail (format <= EL_FORMAT_ULAW_8000, NULL);
  return formats[format].name;
}

guint
el_output_format_rate (ElOutputFormat format)
{
  g_return_val_if_fail (format <= EL_FORMAT_ULAW_8000, 16000);
  return formats[format].rate;
}

gboolean
el_output_format_is_ulaw (ElOutputFormat format)
{
  return format == EL_FORMAT_ULAW_8000;
}

gboolean
el_chunk_schedule_parse (const gchar *text, GArray **schedule)
{
  gchar **items;
  GArray *out;
  gboolean ok = TRUE;

  *schedule = NULL;
  if (text == NULL || *text == '\0')
    return TRUE;
  items = g_strsplit (text, ",", -1);
  out = g_array_new (FALSE, FALSE, sizeof (gint));
  for (guint i = 0; items[i] && ok; i++) {
    guint64 v;
    gchar *item = g_strstrip (items[i]);
    ok = g_ascii_string_to_unsigned (item, 10, 50, 500, &v, NULL) &&
        out->len < MAX_SCHEDULE_ITEMS;
    if (ok) {
      gint iv = (gint)v;
      g_array_append_val (out, iv);
    }
  }
  g_strfreev (items);
  if (!ok || out->len == 0) {
    g_array_unref (out);
    return FALSE;
  }
  *schedule = out;
  return TRUE;
}

/* Maps the scheme of @base to ws(s) (@websocket) or http(s) and strips a
 * trailing slash. */
static gchar *
base_with_scheme (const gchar *base, gboolean websocket)
{
  const gchar *rest = base;
  gboolean secure = TRUE;
  gchar *out;
  gsize len;

  if (g_str_has_prefix (base, "wss://") || g_str_has_prefix (base, "https://"))
    rest = strstr (base, "://") + 3;
  else if (g_str_has_prefix (base, "ws://") ||
      g_str_has_prefix (base, "http://")) {
    rest = strstr (base, "://") + 3;
    secure = FALSE;
  }
  out = g_strconcat (websocket ? (secure ? "wss://" : "ws://")
                               : (secure ? "https://" : "http://"),
      rest, NULL);
  len = strlen (out);
  while (len > 0 && out[len - 1] == '/')
    out[--len] = '\0';
  return out;
}

gchar *
el_ws_url (const gchar *base, const gchar *voice_id, const gchar *model_id,
    ElOutputFormat format, gboolean auto_mode, guint inactivity_timeout_s)
{
  gchar *root = base_with_scheme (base, TRUE);
  gchar *voice = g_uri_escape_string (voice_id, NULL, FALSE);
  gchar *model = g_uri_escape_string (model_id, NULL, FALSE);
  gchar *url =
      g_strdup_printf ("%s/v1/text-to-speech/%s/multi-stream-input?model_id=%s"
                       "&output_format=%s&auto_mode=%s&inactivity_timeout=%u"
                       "&sync_alignment=true",
          root, voice, model, el_output_format_to_string (format),
          auto_mode ? "true" : "false", inactivity_timeout_s);

  g_free (root);
  g_free (voice);
  g_free (model);
  return url;
}

gchar *
el_http_stream_url (
    const gchar *base, const gchar *voice_id, ElOutputFormat format)
{
  gchar *root = base_with_scheme (base, FALSE);
  gchar *voice = g_uri_escape_string (voice_id, NULL, FALSE);
  gchar *url =
      g_strdup_printf ("%s/v1/text-to-speech/%s/stream?output_format=%s", root,
          voice, el_output_format_to_string (format));

  g_free (root);
  g_free (voice);
  return url;
}

static gchar *
builder_to_string (JsonBuilder *b)
{
  JsonGenerator *gen = json_generator_new ();
  JsonNode *root = json_builder_get_root (b);
  gchar *text;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, NULL);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  return text;
}

static void
add_voice_settings (JsonBuilder *b, const ElVoiceSettings *s)
{
  json_builder_set_member_name (b, "voice_settings");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stability");
  json_builder_add_double_value (b, s->stability);
  json_builder_set_member_name (b, "similarity_boost");
  json_builder_add_double_value (b, s->similarity_boost);
  json_builder_set_member_name (b, "speed");
  json_builder_add_double_value (b, s->speed);
  json_builder_end_object (b);
}

static void
add_generation_config (JsonBuilder *b, const ElVoiceSettings *s)
{
  if (s->chunk_schedule == NULL)
    return;
  json_builder_set_member_name (b, "generation_config");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "chunk_length_schedule");
  json_builder_begin_array (b);
  for (guint i = 0; i < s->chunk_schedule->len; i++)
    json_builder_add_int_value (b, g_array_index (s->chunk_schedule, gint, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
}

static JsonBuilder *
begin_context_message (const gchar *context_id)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "context_id");
  json_builder_add_string_value (b, context_id);
  return b;
}

static gchar *
end_message (JsonBuilder *b)
{
  json_builder_end_object (b);
  return builder_to_string (b);
}

gchar *
el_msg_text (
    const gchar *context_id, const gchar *text, const ElVoiceSettings *settings)
{
  JsonBuilder *b = begin_context_message (context_id);

  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, text);
  if (settings) {
    add_voice_settings (b, settings);
    add_generation_config (b, settings);
  }
  return end_message (b);
}

gchar *
el_msg_flush (const gchar *context_id)
{
  JsonBuilder *b = begin_context_message (context_id);

  json_builder_set_member_name (b, "flush");
  json_builder_add_boolean_value (b, TRUE);
  return end_message (b);
}

gchar *
el_msg_close_context (const gchar *context_id)
{
  JsonBuilder *b = begin_context_message (context_id);

  json_builder_set_member_name (b, "close_context");
  json_builder_add_boolean_value (b, TRUE);
  return end_message (b);
}

gchar *
el_msg_keepalive (const gchar *context_id)
{
  JsonBuilder *b = begin_context_message (context_id);

  /* An empty text only resets the inactivity timeout. */
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, "");
  return end_message (b);
}

gchar *
el_msg_close_socket (void)
{
  return g_strdup ("{\"close_socket\":true}");
}

gchar *
el_http_body (const gchar *text, const gchar *model_id,
    const ElVoiceSettings *settings, const gchar *previous_text)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, text);
  json_builder_set_member_name (b, "model_id");
  json_builder_add_string_value (b, model_id);
  if (previous_text && *previous_text) {
    json_builder_set_member_name (b, "previous_text");
    json_builder_add_string_value (b, previous_text);
  }
  add_voice_settings (b, settings);
  return end_message (b);
}

/* ---- Parsing ---- */

static const gchar *
get_string (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  if (n == NULL || !JSON_NODE_HOLDS_VALUE (n) ||
      json_node_get_value_type (n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (n);
}

static gboolean
get_true (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
      json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
      json_node_get_boolean (n);
}

static gint
array_int (JsonArray *a, guint i)
{
  JsonNode *n = json_array_get_element (a, i);

  if (!JSON_NODE_HOLDS_VALUE (n))
    return 0;
  return (gint)json_node_get_double (n);
}

/* Reads {"chars": [...], "charStartTimesMs": [...], "charDurationsMs":
 * [...]}: the joined characters and each one's end time. */
static void
parse_alignment (JsonObject *o, ElServerMsg *msg)
{
  JsonNode *cn = json_object_get_member (o, "chars");
  JsonNode *sn = json_object_get_member (o, "charStartTimesMs");
  JsonNode *dn = json_object_get_member (o, "charDurationsMs");
  JsonArray *chars, *starts, *durs;
  GString *text;
  guint n;

  if (!cn || !sn || !dn || !JSON_NODE_HOLDS_ARRAY (cn) ||
      !JSON_NODE_HOLDS_ARRAY (sn) || !JSON_NODE_HOLDS_ARRAY (dn))
    return;
  chars = json_node_get_array (cn);
  starts = json_node_get_array (sn);
  durs = json_node_get_array (dn);
  n = MIN (json_array_get_length (chars),
      MIN (json_array_get_length (starts), json_array_get_length (durs)));
  text = g_string_new (NULL);
  msg->char_end_ms = g_array_sized_new (FALSE, FALSE, sizeof (gint), n);
  for (guint i = 0; i < n; i++) {
    JsonNode *c = json_array_get_element (chars, i);
    const gchar *s = JSON_NODE_HOLDS_VALUE (c) &&
            json_node_get_value_type (c) == G_TYPE_STRING
        ? json_node_get_string (c)
        : NULL;
    gint end = array_int (starts, i) + array_int (durs, i);

    /* One entry per character; anything else would break the indexing. */
    if (s == NULL || g_utf8_strlen (s, -1) != 1)
      s = " ";
    g_string_append (text, s);
    g_array_append_val (msg->char_end_ms, end);
  }
  msg->text = g_string_free (text, FALSE);
}

ElMsgType
el_server_msg_parse (const gchar *data, gsize len, ElServerMsg *msg)
{
  JsonParser *parser = json_parser_new ();
  JsonNode *root, *an;
  JsonObject *o;
  const gchar *audio;

  msg->type = EL_MSG_INVALID;
  if (!json_parser_load_from_data (parser, data, (gssize)len, NULL) ||
      !(root = json_parser_get_root (parser)) || !JSON_NODE_HOLDS_OBJECT (root))
    goto out;
  o = json_node_get_object (root);
  msg->context_id = g_strdup (get_string (o, "contextId"));
  if (msg->context_id == NULL)
    msg->context_id = g_strdup (get_string (o, "context_id"));
  msg->is_final = get_true (o, "isFinal") || get_true (o, "is_final");

  if (get_string (o, "error") != NULL) {
    msg->type = EL_MSG_ERROR;
    msg->error = g_strdup (get_string (o, "error"));
    msg->message = g_strdup (get_string (o, "message"));
    goto out;
  }
  audio = get_string (o, "audio");
  if (audio && *audio) {
    gsize n = 0;
    guchar *bytes = g_base64_decode (audio, &n);
    msg->audio = g_bytes_new_take (bytes, n);
    msg->type = EL_MSG_AUDIO;
    /* The original text's alignment; the normalized one spells numbers
     * out and would not match what was sent. */
    an = json_object_get_member (o, "alignment");
    if (!an || !JSON_NODE_HOLDS_OBJECT (an))
      an = json_object_get_member (o, "normalizedAlignment");
    if (an && JSON_NODE_HOLDS_OBJECT (an))
      parse_alignment (json_node_get_object (an), msg);
    goto out;
  }
  msg->type = msg->is_final ? EL_MSG_FINAL : EL_MSG_OTHER;

out:
  g_object_unref (parser);
  return msg->type;
}

void
el_server_msg_clear (ElServerMsg *msg)
{
  g_clear_pointer (&msg->context_id, g_free);
  g_clear_pointer (&msg->audio, g_bytes_unref);
  g_clear_pointer (&msg->text, g_free);
  g_clear_pointer (&msg->char_end_ms, g_array_unref);
  g_clear_pointer (&msg->error, g_free);
  g_clear_pointer (&msg->message, g_free);
  msg->type = EL_MSG_INVALID;
}

/* ---- Audio and text helpers ---- */

static gint16
ulaw_decode (guint8 u)
{
  gint t;

  u = ~u;
  t = ((u & 0x0f) << 3) + 0x84;
  t <<= (u & 0x70) >> 4;
  return (gint16)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

GBytes *
el_ulaw_to_s16le (const guint8 *data, gsize len)
{
  gint16 *out = g_new (gint16, MAX (len, 1));

  for (gsize i = 0; i < len; i++)
    out[i] = GINT16_TO_LE (ulaw_decode (data[i]));
  return g_bytes_new_take (out, len * 2);
}

gsize
el_count_nonspace (const gchar *text, gssize len)
{
  const gchar *end = len < 0 ? text + strlen (text) : text + len;
  gsize n = 0;

  for (const gchar *p = text; p < end; p = g_utf8_next_char (p))
    if (!g_unichar_isspace (g_utf8_get_char (p)))
      n++;
  return n;
}

gsize
el_offset_after_nonspace (const gchar *text, gsize nonspace)
{
  const gchar *p = text;

  while (*p && nonspace > 0) {
    if (!g_unichar_isspace (g_utf8_get_char (p)))
      nonspace--;
    p = g_utf8_next_char (p);
  }
  while (*p && g_unichar_isspace (g_utf8_get_char (p)))
    p = g_utf8_next_char (p);
  return (gsize)(p - text);
}

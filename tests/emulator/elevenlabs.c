/* voiceagent-emulator: the ElevenLabs text-to-speech service.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * WebSocket GET /v1/text-to-speech/{voice_id}/stream-input and
 * /multi-stream-input, HTTP POST /v1/text-to-speech/{voice_id}/stream (and
 * the non-streamed POST /v1/text-to-speech/{voice_id}), as ElevenLabs
 * documents them: text is buffered by the chunk length schedule, generated on
 * flush / try_trigger_generation / end of input, and every generation comes
 * back as base64 audio messages with a character alignment, one message per
 * sentence, in the requested output_format. Errors are ElevenLabs' frames
 * ({"message","error","code"}) followed by close 1008.
 *
 * All on the main thread; synthesis runs on the engine's worker (tts.c).
 */
#include "emulator.h"
#include "tts.h"

#include <stdlib.h>
#include <string.h>

#define PATH_PREFIX "/v1/text-to-speech"
#define DEFAULT_INACTIVITY_S 20
#define MAX_INACTIVITY_S 180
#define MAX_CONTEXTS 5
#define TRIGGER_MIN_CHARS 50 /* try_trigger_generation threshold */
#define MAX_SENTENCE_CHARS 300

static const gint default_schedule[] = { 120, 160, 250, 290 };

typedef struct _Socket Socket;
typedef struct _Context Context;

/* One queued piece of output of a context, in order. */
typedef struct
{
  Context *ctx;
  EmuTtsJob *job; /* while synthesising */
  EmuTtsResult *result; /* once done */
  gint64 not_before_us; /* first-audio latency of its generation */
} Segment;

struct _Context
{
  Socket *sock;
  gchar *id; /* multi-context id; NULL on stream-input */
  GString *buffer; /* text not generated yet */
  GArray *schedule; /* (element-type gint) chunk_length_schedule */
  guint generations; /* generations triggered by the schedule */
  gdouble speed;
  GQueue segments; /* (element-type Segment) */
  gboolean closing; /* send isFinal once segments are out */
};

struct _Socket
{
  gint ref;
  SoupWebsocketConnection *ws;
  gchar *client;
  gint64 started_us;
  gboolean multi;
  EmuAudioFormat format;
  guint inactivity_s;
  gboolean auto_mode;
  gboolean authed; /* a valid key came with the handshake */
  gboolean got_first; /* first message handled */
  GHashTable *contexts; /* id ("" for the default) -> Context */
  guint n_contexts_created;
  EmuFault fault;
  guint sent; /* messages sent */
  gboolean malformed_sent;
  gboolean closing; /* close 1000 once every context is done */
  gboolean dead; /* we closed, or the peer did */
  guint inactivity_id;
  guint fault_close_id;
  guint wake_id;
  gint64 wake_at_us;
  gulong message_handler, closed_handler;
  gchar *outcome;
};

/* An HTTP synthesis request in flight. */
typedef struct
{
  SoupServerMessage *msg;
  gchar *client;
  gint64 started_us;
  gboolean chunked;
  EmuAudioFormat format;
  GQueue jobs; /* (element-type EmuTtsJob) outstanding */
  GQueue done; /* (element-type EmuTtsResult) ready, in order */
  guint n_pending; /* results not yet received */
  gint64 not_before_us;
  guint wake_id;
  gboolean finished; /* the message is gone */
  gboolean logged; /* its "connection" event is recorded */
  gulong finished_handler;
} HttpJob;

/* Main thread only. */
static EmuConfig *config;
static EmuTts *tts;
static GList *sockets; /* (element-type Socket) live sockets */
static GList *http_jobs; /* (element-type HttpJob) */

static void socket_pump (Socket *s);
static void socket_close (
    Socket *s, gushort code, const gchar *reason, const gchar *outcome);

/* ---------- small helpers ---------- */

/* Splits @text into sentences (ending at . ! ? or a newline, at most
 * MAX_SENTENCE_CHARS bytes), dropping empty ones. */
static GPtrArray *
split_sentences (const gchar *text)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const gchar *start = text, *p = text, *last_space = NULL;

  while (*p) {
    gboolean end = FALSE;
    if (*p == '.' || *p == '!' || *p == '?')
      end = p[1] == '\0' || g_ascii_isspace (p[1]);
    else if (*p == '\n')
      end = TRUE;
    if (g_ascii_isspace (*p))
      last_space = p;
    if (!end && p - start >= MAX_SENTENCE_CHARS && last_space > start) {
      p = last_space;
      end = TRUE;
    }
    p = g_utf8_next_char (p);
    if (end || *p == '\0') {
      g_autofree gchar *s = g_strndup (start, p - start);
      g_strstrip (s);
      if (*s)
        g_ptr_array_add (out, g_steal_pointer (&s));
      start = p;
      last_space = NULL;
    }
  }
  return out;
}

static const gchar *
audio_content_type (const EmuAudioFormat *f)
{
  return f->encoding == EMU_AUDIO_ULAW ? "audio/basic" : "audio/pcm";
}

/* ElevenLabs' HTTP error body. */
static void
send_detail (SoupServerMessage *msg, guint status, const gchar *code,
    const gchar *message)
{
  GString *b = g_string_new ("{\"detail\":{\"status\":");

  emu_append_json_string (b, code);
  g_string_append (b, ",\"message\":");
  emu_append_json_string (b, message);
  g_string_append (b, "}}");
  emu_send_json_error (msg, status, b->str);
  g_string_free (b, TRUE);
}

/* Checks the xi-api-key header of an HTTP request; sends 401 and returns
 * FALSE when it is missing or wrong. */
static gboolean
check_http_key (SoupServerMessage *msg)
{
  const gchar *key = soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "xi-api-key");

  if (!key || !*key) {
    send_detail (msg, SOUP_STATUS_UNAUTHORIZED, "needs_authorization",
        "Neither authorization header nor xi-api-key received, please "
        "provide one.");
    return FALSE;
  }
  if (!emu_key_matches (key, config->elevenlabs_key)) {
    send_detail (
        msg, SOUP_STATUS_UNAUTHORIZED, "invalid_api_key", "Invalid API key");
    return FALSE;
  }
  return TRUE;
}

static void
apply_http_fault (SoupServerMessage *msg, const EmuFault *f)
{
  if (f->retry_after_s) {
    g_autofree gchar *v = g_strdup_printf ("%u", f->retry_after_s);
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "Retry-After", v);
  }
  if (f->http_status == 429)
    send_detail (msg, 429, "too_many_concurrent_requests",
        "Too many concurrent requests (emulated fault).");
  else if (f->http_status == 401)
    send_detail (msg, 401, "invalid_api_key", "Invalid API key");
  else
    send_detail (msg, f->http_status, "service_unavailable",
        "The service is unavailable (emulated fault).");
}

/* ---------- WebSocket: lifetime ---------- */

static Socket *
socket_ref (Socket *s)
{
  s->ref++;
  return s;
}

static void
segment_free (Segment *seg)
{
  if (seg->job)
    emu_tts_job_cancel (seg->job);
  emu_tts_result_free (seg->result);
  g_free (seg);
}

static void
context_free (Context *c)
{
  g_queue_clear_full (&c->segments, (GDestroyNotify)segment_free);
  g_string_free (c->buffer, TRUE);
  g_array_unref (c->schedule);
  g_free (c->id);
  g_free (c);
}

static void
clear_source (guint *id)
{
  if (*id) {
    g_source_remove (*id);
    *id = 0;
  }
}

/* Drops everything that could call back into @s. */
static void
socket_stop (Socket *s)
{
  s->dead = TRUE;
  clear_source (&s->inactivity_id);
  clear_source (&s->fault_close_id);
  clear_source (&s->wake_id);
  if (s->contexts)
    g_hash_table_remove_all (s->contexts);
}

static void
socket_unref (Socket *s)
{
  if (--s->ref > 0)
    return;
  socket_stop (s);
  g_clear_pointer (&s->contexts, g_hash_table_unref);
  if (s->ws) {
    g_signal_handler_disconnect (s->ws, s->message_handler);
    g_signal_handler_disconnect (s->ws, s->closed_handler);
    g_object_unref (s->ws);
  }
  emu_fault_clear (&s->fault);
  g_free (s->client);
  g_free (s->outcome);
  g_free (s);
}

static void
set_outcome (Socket *s, const gchar *outcome)
{
  if (!s->outcome)
    s->outcome = g_strdup (outcome);
}

static void
ws_closed_cb (SoupWebsocketConnection *ws, gpointer data)
{
  Socket *s = data;
  g_autofree gchar *outcome = NULL;

  if (!s->outcome) {
    gushort code = soup_websocket_connection_get_close_code (ws);
    s->outcome = g_strdup_printf ("client closed %u", code);
  }
  emu_log_connection ("elevenlabs", s->client, s->started_us, s->outcome);
  socket_stop (s);
  sockets = g_list_remove (sockets, s);
  socket_unref (s);
}

/* ---------- WebSocket: sending ---------- */

static gboolean
fault_close_cb (gpointer data)
{
  Socket *s = data;

  s->fault_close_id = 0;
  socket_close (
      s, s->fault.close_code, s->fault.close_reason, "fault close after ms");
  return G_SOURCE_REMOVE;
}

static void
socket_close (
    Socket *s, gushort code, const gchar *reason, const gchar *outcome)
{
  if (s->dead)
    return;
  if (outcome) {
    g_autofree gchar *o = g_strdup_printf ("%s (%u)", outcome, code);
    set_outcome (s, o);
  }
  s->dead = TRUE;
  clear_source (&s->inactivity_id);
  clear_source (&s->wake_id);
  clear_source (&s->fault_close_id);
  if (soup_websocket_connection_get_state (s->ws) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (s->ws, code, reason);
}

/* Sends one text frame, counting it for the close-after-N-messages fault. */
static void
socket_send (Socket *s, const gchar *text)
{
  if (s->dead ||
      soup_websocket_connection_get_state (s->ws) != SOUP_WEBSOCKET_STATE_OPEN)
    return;
  soup_websocket_connection_send_text (s->ws, text);
  s->sent++;
  if (s->fault.close_after_messages >= 0 &&
      s->sent >= (guint)s->fault.close_after_messages)
    socket_close (s, s->fault.close_code, s->fault.close_reason,
        "fault close after messages");
}

/* Sends ElevenLabs' error frame, then closes with 1008. */
static void
socket_error (Socket *s, const gchar *error, const gchar *message)
{
  GString *b = g_string_new ("{\"message\":");
  g_autofree gchar *outcome = g_strdup_printf ("error %s", error);

  emu_append_json_string (b, message);
  g_string_append (b, ",\"error\":");
  emu_append_json_string (b, error);
  g_string_append (b, ",\"code\":1008}");
  emu_record_event ("elevenlabs", "error", error);
  socket_send (s, b->str);
  g_string_free (b, TRUE);
  socket_close (s, 1008, error, outcome);
}

static void
append_alignment (GString *b, const EmuTtsResult *r)
{
  g_string_append (b, "{\"chars\":[");
  for (guint i = 0; i < r->chars->len; i++) {
    if (i)
      g_string_append_c (b, ',');
    emu_append_json_string (b, g_ptr_array_index (r->chars, i));
  }
  g_string_append (b, "],\"charStartTimesMs\":[");
  for (guint i = 0; i < r->start_ms->len; i++)
    g_string_append_printf (
        b, i ? ",%d" : "%d", g_array_index (r->start_ms, gint, i));
  g_string_append (b, "],\"charDurationsMs\":[");
  for (guint i = 0; i < r->duration_ms->len; i++)
    g_string_append_printf (
        b, i ? ",%d" : "%d", g_array_index (r->duration_ms, gint, i));
  g_string_append (b, "]}");
}

static void
send_audio (Context *c, const EmuTtsResult *r)
{
  Socket *s = c->sock;
  gsize len;
  const guint8 *data = g_bytes_get_data (r->audio, &len);
  g_autofree gchar *b64 = g_base64_encode (data, len);
  GString *b = g_string_sized_new (strlen (b64) + 64 + r->chars->len * 24);

  if (s->fault.malformed_frame && !s->malformed_sent) {
    s->malformed_sent = TRUE;
    emu_record_event ("elevenlabs", "malformed-sent", NULL);
    socket_send (s, "{\"audio\":\"AAAA\",\"isFinal\":nul");
  }
  g_string_append (b, "{\"audio\":\"");
  g_string_append (b, b64);
  g_string_append (b, "\",\"isFinal\":null,\"normalizedAlignment\":");
  append_alignment (b, r);
  g_string_append (b, ",\"alignment\":");
  append_alignment (b, r);
  if (c->id) {
    g_string_append (b, ",\"contextId\":");
    emu_append_json_string (b, c->id);
  }
  g_string_append_c (b, '}');
  socket_send (s, b->str);
  g_string_free (b, TRUE);
}

static void
send_final (Context *c)
{
  GString *b = g_string_new ("{\"isFinal\":true");

  if (c->id) {
    g_string_append (b, ",\"contextId\":");
    emu_append_json_string (b, c->id);
  }
  g_string_append_c (b, '}');
  socket_send (c->sock, b->str);
  g_string_free (b, TRUE);
}

static gboolean
wake_cb (gpointer data)
{
  Socket *s = data;

  s->wake_id = 0;
  socket_pump (s);
  return G_SOURCE_REMOVE;
}

static void
schedule_wake (Socket *s, gint64 at_us)
{
  gint64 now = g_get_monotonic_time ();

  if (s->wake_id && s->wake_at_us <= at_us)
    return;
  clear_source (&s->wake_id);
  s->wake_at_us = at_us;
  s->wake_id = g_timeout_add (MAX (0, (at_us - now + 999) / 1000), wake_cb, s);
}

/* Sends what is ready of @c; TRUE when @c is finished and must go. */
static gboolean
context_pump (Context *c)
{
  Socket *s = c->sock;
  gint64 now = g_get_monotonic_time ();

  while (!s->dead && !g_queue_is_empty (&c->segments)) {
    Segment *seg = g_queue_peek_head (&c->segments);
    if (seg->job)
      return FALSE;
    if (seg->not_before_us > now) {
      schedule_wake (s, seg->not_before_us);
      return FALSE;
    }
    g_queue_pop_head (&c->segments);
    if (seg->result)
      send_audio (c, seg->result);
    segment_free (seg);
  }
  if (s->dead || !c->closing)
    return FALSE;
  send_final (c);
  return TRUE;
}

static void
socket_pump (Socket *s)
{
  GHashTableIter it;
  gpointer value;

  if (s->dead || s->fault.stall)
    return;
  socket_ref (s);
  g_hash_table_iter_init (&it, s->contexts);
  while (!s->dead && g_hash_table_iter_next (&it, NULL, &value)) {
    if (context_pump (value))
      g_hash_table_iter_remove (&it);
  }
  if (!s->dead && s->closing && g_hash_table_size (s->contexts) == 0) {
    set_outcome (s, "closed (1000)");
    socket_close (s, 1000, NULL, NULL);
  }
  socket_unref (s);
}

/* ---------- WebSocket: text to generations ---------- */

static void
synth_done_cb (EmuTtsResult *result, const GError *error, gpointer data)
{
  Segment *seg = data;
  Socket *s = seg->ctx->sock;

  seg->job = NULL;
  seg->result = result;
  if (error)
    g_printerr ("voiceagent-emulator: elevenlabs: %s\n", error->message);
  socket_pump (s);
}

/* Characters synthesised, one event per sentence, so a benchmark can weigh
 * them against what the caller heard (tests/bench/turns). */
static void
record_synthesis (const gchar *sentence)
{
  g_autofree gchar *n = g_strdup_printf ("%ld", g_utf8_strlen (sentence, -1));

  emu_record_event ("elevenlabs", "synthesize", n);
}

/* Turns the first @len bytes of the buffer of @c into one generation. */
static void
generate (Context *c, gsize len)
{
  g_autofree gchar *text = g_strndup (c->buffer->str, len);
  g_autoptr (GPtrArray) sentences = split_sentences (text);
  gint64 not_before = g_get_monotonic_time () +
      (gint64)config->latency.tts_first_audio_ms * 1000;

  g_string_erase (c->buffer, 0, len);
  for (guint i = 0; i < sentences->len; i++) {
    Segment *seg = g_new0 (Segment, 1);
    seg->ctx = c;
    seg->not_before_us = i == 0 ? not_before : 0;
    g_queue_push_tail (&c->segments, seg);
    record_synthesis (g_ptr_array_index (sentences, i));
    seg->job = emu_tts_synthesize (tts, g_ptr_array_index (sentences, i),
        &c->sock->format, c->speed, synth_done_cb, seg);
  }
}

/* Length of the buffer up to and including its last whitespace, 0 if none. */
static gsize
upto_last_space (GString *buf)
{
  for (gsize i = buf->len; i > 0; i--)
    if (g_ascii_isspace (buf->str[i - 1]))
      return i;
  return 0;
}

/* Length up to the end of the last complete sentence, 0 if none. */
static gsize
upto_last_sentence (GString *buf)
{
  for (gsize i = buf->len; i > 1; i--)
    if (g_ascii_isspace (buf->str[i - 1]) && strchr (".!?", buf->str[i - 2]))
      return i;
  return 0;
}

/* Generates what the chunk length schedule (or auto_mode) says is due. */
static void
context_schedule (Context *c)
{
  if (c->sock->auto_mode) {
    gsize n = upto_last_sentence (c->buffer);
    if (n)
      generate (c, n);
    return;
  }
  for (;;) {
    guint idx = MIN (c->generations, c->schedule->len - 1);
    glong chars = g_utf8_strlen (c->buffer->str, c->buffer->len);
    gsize n;
    if (chars < g_array_index (c->schedule, gint, idx))
      return;
    n = upto_last_space (c->buffer);
    if (n == 0)
      return;
    c->generations++;
    generate (c, n);
  }
}

static void
context_flush (Context *c)
{
  if (c->buffer->len)
    generate (c, c->buffer->len);
}

static Context *
context_new (Socket *s, const gchar *id)
{
  Context *c = g_new0 (Context, 1);

  c->sock = s;
  c->id = id ? g_strdup (id) : NULL;
  c->buffer = g_string_new (NULL);
  c->schedule = g_array_new (FALSE, FALSE, sizeof (gint));
  g_array_append_vals (
      c->schedule, default_schedule, G_N_ELEMENTS (default_schedule));
  c->speed = 1.0;
  g_queue_init (&c->segments);
  g_hash_table_insert (s->contexts, g_strdup (id ? id : ""), c);
  s->n_contexts_created++;
  return c;
}

/* Reads voice_settings.speed and generation_config.chunk_length_schedule of
 * a context-opening message. FALSE if they are malformed. */
static gboolean
context_configure (Context *c, JsonObject *o)
{
  JsonNode *n;

  n = json_object_get_member (o, "voice_settings");
  if (n && JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *vs = json_node_get_object (n);
    JsonNode *sp = json_object_get_member (vs, "speed");
    if (sp && JSON_NODE_HOLDS_VALUE (sp))
      c->speed = CLAMP (json_node_get_double (sp), 0.5, 2.0);
  }
  n = json_object_get_member (o, "generation_config");
  if (n && JSON_NODE_HOLDS_OBJECT (n)) {
    JsonObject *gc = json_node_get_object (n);
    JsonNode *sch = json_object_get_member (gc, "chunk_length_schedule");
    if (sch) {
      JsonArray *a;
      if (!JSON_NODE_HOLDS_ARRAY (sch))
        return FALSE;
      a = json_node_get_array (sch);
      if (json_array_get_length (a) == 0)
        return FALSE;
      g_array_set_size (c->schedule, 0);
      for (guint i = 0; i < json_array_get_length (a); i++) {
        JsonNode *e = json_array_get_element (a, i);
        gint v;
        if (!JSON_NODE_HOLDS_VALUE (e))
          return FALSE;
        v = (gint)json_node_get_double (e);
        if (v < 50 || v > 500)
          return FALSE;
        g_array_append_val (c->schedule, v);
      }
    }
  }
  return TRUE;
}

static gboolean
get_bool (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
      json_node_get_value_type (n) == G_TYPE_BOOLEAN &&
      json_node_get_boolean (n);
}

/* The key a first message carries, if any. */
static const gchar *
message_key (JsonObject *o)
{
  static const gchar *names[] = { "xi_api_key", "xi-api-key" };
  const gchar *auth;

  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    const gchar *k =
        json_object_get_string_member_with_default (o, names[i], NULL);
    if (k)
      return k;
  }
  auth = json_object_get_string_member_with_default (o, "authorization", NULL);
  if (auth && g_str_has_prefix (auth, "Bearer "))
    return auth + 7;
  return auth;
}

static gboolean
inactivity_cb (gpointer data)
{
  Socket *s = data;
  g_autofree gchar *m = g_strdup_printf (
      "Have not received a new text input "
      "within the timeout of %u seconds. Streaming input will be closed. To "
      "keep the stream open, send text or a keep-alive message more often.",
      s->inactivity_s);

  s->inactivity_id = 0;
  socket_error (s, "input_timeout_exceeded", m);
  return G_SOURCE_REMOVE;
}

static void
reset_inactivity (Socket *s)
{
  clear_source (&s->inactivity_id);
  /* Not g_timeout_add_seconds(): it rounds to the process's whole-second
   * tick and may fire up to a second early. */
  if (!s->dead)
    s->inactivity_id = g_timeout_add (s->inactivity_s * 1000, inactivity_cb, s);
}

/* Authenticates the first message when the handshake had no key. */
static gboolean
first_message_auth (Socket *s, JsonObject *o)
{
  const gchar *key;

  if (s->authed)
    return TRUE;
  key = message_key (o);
  if (!key || !*key) {
    socket_error (s, "invalid_api_key",
        "No API key was provided: send the "
        "xi-api-key header or xi_api_key in the first message.");
    return FALSE;
  }
  if (!emu_key_matches (key, config->elevenlabs_key)) {
    socket_error (s, "invalid_api_key", "Invalid API key");
    return FALSE;
  }
  s->authed = TRUE;
  return TRUE;
}

static void
handle_single (Socket *s, JsonObject *o)
{
  Context *c = g_hash_table_lookup (s->contexts, "");
  JsonNode *tn = json_object_get_member (o, "text");
  const gchar *text;

  if (!tn || !JSON_NODE_HOLDS_VALUE (tn) ||
      json_node_get_value_type (tn) != G_TYPE_STRING) {
    socket_error (s, "invalid_input_message",
        "Every message must carry a "
        "\"text\" string.");
    return;
  }
  text = json_node_get_string (tn);
  if (!s->got_first) {
    s->got_first = TRUE;
    if (!first_message_auth (s, o))
      return;
    c = context_new (s, NULL);
    if (!context_configure (c, o)) {
      socket_error (s, "invalid_input_message",
          "Invalid voice_settings or "
          "generation_config (chunk_length_schedule values are 50 to 500).");
      return;
    }
    /* The first text is a single space by the protocol. */
    if (g_strcmp0 (text, " ") == 0)
      return;
  }
  if (!c || s->closing)
    return;

  if (text[0] == '\0') {
    /* End of input: generate the rest, then isFinal and close. */
    context_flush (c);
    c->closing = TRUE;
    s->closing = TRUE;
    return;
  }
  g_string_append (c->buffer, text);
  if (get_bool (o, "flush")) {
    context_flush (c);
  } else if (get_bool (o, "try_trigger_generation") &&
      g_utf8_strlen (c->buffer->str, -1) >= TRIGGER_MIN_CHARS) {
    gsize n = upto_last_space (c->buffer);
    generate (c, n ? n : c->buffer->len);
  } else {
    context_schedule (c);
  }
}

static void
handle_multi (Socket *s, JsonObject *o)
{
  const gchar *id =
      json_object_get_string_member_with_default (o, "context_id", NULL);
  JsonNode *tn = json_object_get_member (o, "text");
  const gchar *text = NULL;
  Context *c;

  if (tn) {
    if (!JSON_NODE_HOLDS_VALUE (tn) ||
        json_node_get_value_type (tn) != G_TYPE_STRING) {
      socket_error (s, "invalid_input_message", "\"text\" must be a string.");
      return;
    }
    text = json_node_get_string (tn);
  }
  if (!s->got_first) {
    s->got_first = TRUE;
    if (!first_message_auth (s, o))
      return;
  }

  if (get_bool (o, "close_socket")) {
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init (&it, s->contexts);
    while (g_hash_table_iter_next (&it, NULL, &value)) {
      Context *cc = value;
      /* Flushed text is still spoken; what was never flushed is dropped. */
      g_string_truncate (cc->buffer, 0);
      cc->closing = TRUE;
    }
    s->closing = TRUE;
    return;
  }

  c = g_hash_table_lookup (s->contexts, id ? id : "");
  if (get_bool (o, "close_context")) {
    if (!id) {
      socket_error (s, "invalid_input_message",
          "close_context needs a "
          "context_id.");
      return;
    }
    if (c) {
      g_string_truncate (c->buffer, 0);
      c->closing = TRUE;
    }
    return;
  }

  if (!c) {
    if (!text)
      return; /* flush of an unknown context: nothing to do */
    if (g_hash_table_size (s->contexts) >= MAX_CONTEXTS) {
      socket_error (s, "max_active_conversations",
          "Maximum number of active "
          "contexts (5) per connection reached; close a context before "
          "opening another.");
      return;
    }
    c = context_new (s, id);
    emu_record_event ("elevenlabs", "context-open", id);
    if (!context_configure (c, o)) {
      socket_error (s, "invalid_input_message",
          "Invalid voice_settings or "
          "generation_config (chunk_length_schedule values are 50 to 500).");
      return;
    }
    if (g_strcmp0 (text, " ") == 0)
      text = NULL;
  }
  if (c->closing)
    return;
  /* An empty text only keeps the context alive. */
  if (text && *text)
    g_string_append (c->buffer, text);
  if (get_bool (o, "flush"))
    context_flush (c);
  else
    context_schedule (c);
}

static void
ws_message_cb (
    SoupWebsocketConnection *ws, gint type, GBytes *message, gpointer data)
{
  Socket *s = data;
  g_autoptr (JsonParser) parser = NULL;
  gsize len;
  const gchar *text = g_bytes_get_data (message, &len);
  JsonNode *root;

  if (s->dead || s->fault.stall)
    return;
  if (s->closing && !s->multi)
    return;
  reset_inactivity (s);
  parser = json_parser_new ();
  if (type != SOUP_WEBSOCKET_DATA_TEXT ||
      !json_parser_load_from_data (parser, text, len, NULL) ||
      !(root = json_parser_get_root (parser)) ||
      !JSON_NODE_HOLDS_OBJECT (root)) {
    socket_error (s, "invalid_input_message",
        "Invalid message: every "
        "message must be a JSON object.");
    return;
  }
  socket_ref (s);
  if (s->multi)
    handle_multi (s, json_node_get_object (root));
  else
    handle_single (s, json_node_get_object (root));
  socket_pump (s);
  socket_unref (s);
}

/* ---------- handshake and HTTP ---------- */

typedef enum {
  ROUTE_NONE,
  ROUTE_STREAM_INPUT,
  ROUTE_MULTI_STREAM_INPUT,
  ROUTE_HTTP_STREAM,
  ROUTE_HTTP_CONVERT,
} Route;

static Route
route_of (const gchar *path)
{
  g_auto (GStrv) parts = NULL;
  guint n;

  if (!g_str_has_prefix (path, PATH_PREFIX "/"))
    return ROUTE_NONE;
  parts = g_strsplit (path + strlen (PATH_PREFIX "/"), "/", -1);
  n = g_strv_length (parts);
  if (n == 0 || parts[0][0] == '\0')
    return ROUTE_NONE;
  if (n == 1)
    return ROUTE_HTTP_CONVERT;
  if (n != 2)
    return ROUTE_NONE;
  if (g_str_equal (parts[1], "stream-input"))
    return ROUTE_STREAM_INPUT;
  if (g_str_equal (parts[1], "multi-stream-input"))
    return ROUTE_MULTI_STREAM_INPUT;
  if (g_str_equal (parts[1], "stream"))
    return ROUTE_HTTP_STREAM;
  return ROUTE_NONE;
}

/* Output format of @query; sends 400 and returns FALSE if it is unknown. */
static gboolean
query_format (SoupServerMessage *msg, GHashTable *query, EmuAudioFormat *format)
{
  const gchar *name =
      query ? g_hash_table_lookup (query, "output_format") : NULL;
  g_autofree gchar *m = NULL;

  if (emu_audio_format_parse (name ? name : "mp3_44100_128", format))
    return TRUE;
  m = g_strdup_printf (
      "output_format %s is not produced by "
      "voiceagent-emulator: use pcm_8000, pcm_16000, pcm_22050, pcm_24000, "
      "pcm_44100 or ulaw_8000.",
      name ? name : "mp3_44100_128 (the default)");
  send_detail (msg, SOUP_STATUS_BAD_REQUEST, "invalid_output_format", m);
  return FALSE;
}

/* Everything the handshake settled, handed to the WebSocket callback. */
typedef struct
{
  EmuFault fault;
  EmuAudioFormat format;
  guint inactivity_s;
  gboolean auto_mode;
  gboolean authed;
} Handshake;

static void
handshake_free (Handshake *h)
{
  emu_fault_clear (&h->fault);
  g_free (h);
}

static gboolean
query_bool (GHashTable *query, const gchar *name)
{
  const gchar *v = query ? g_hash_table_lookup (query, name) : NULL;

  return v && (g_ascii_strcasecmp (v, "true") == 0 || g_str_equal (v, "1"));
}

/* Runs before the upgrade: leaves the status unset to let libsoup complete
 * the handshake, or answers with an HTTP error. */
static void
check_handshake (SoupServerMessage *msg, GHashTable *query)
{
  const gchar *key = soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "xi-api-key");
  const gchar *inactivity =
      query ? g_hash_table_lookup (query, "inactivity_timeout") : NULL;
  Handshake *h = g_new0 (Handshake, 1);
  guint64 v = DEFAULT_INACTIVITY_S;

  emu_fault_for_connection ("elevenlabs", msg, &h->fault);
  if (h->fault.http_status) {
    apply_http_fault (msg, &h->fault);
    goto refused;
  }
  if (key && !emu_key_matches (key, config->elevenlabs_key)) {
    send_detail (
        msg, SOUP_STATUS_UNAUTHORIZED, "invalid_api_key", "Invalid API key");
    goto refused;
  }
  h->authed = key != NULL;
  if (!query_format (msg, query, &h->format))
    goto refused;
  if (inactivity &&
      (!g_ascii_string_to_unsigned (
          inactivity, 10, 1, MAX_INACTIVITY_S, &v, NULL))) {
    send_detail (msg, SOUP_STATUS_BAD_REQUEST, "invalid_inactivity_timeout",
        "inactivity_timeout must be an integer from 1 to 180 seconds.");
    goto refused;
  }
  h->inactivity_s = v;
  h->auto_mode = query_bool (query, "auto_mode");
  g_object_set_data_full (
      G_OBJECT (msg), "emu-handshake", h, (GDestroyNotify)handshake_free);
  return;

refused : {
  g_autofree gchar *client = emu_client_address (msg);
  g_autofree gchar *outcome =
      g_strdup_printf ("http %u", soup_server_message_get_status (msg));
  emu_log_connection ("elevenlabs", client, g_get_monotonic_time (), outcome);
}
  handshake_free (h);
}

static void
ws_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    SoupWebsocketConnection *ws, gpointer user_data)
{
  Handshake *h = g_object_get_data (G_OBJECT (msg), "emu-handshake");
  Socket *s;

  if (!h)
    return; /* cannot happen: the handler ran first */
  s = g_new0 (Socket, 1);
  s->ref = 1;
  s->ws = g_object_ref (ws);
  s->client = emu_client_address (msg);
  s->started_us = g_get_monotonic_time ();
  s->multi = route_of (path) == ROUTE_MULTI_STREAM_INPUT;
  s->format = h->format;
  s->inactivity_s = h->inactivity_s;
  s->auto_mode = h->auto_mode;
  s->authed = h->authed;
  s->fault = h->fault;
  emu_fault_init (&h->fault); /* moved */
  s->contexts = g_hash_table_new_full (
      g_str_hash, g_str_equal, g_free, (GDestroyNotify)context_free);
  /* Our frames carry base64 audio; lift libsoup's 128 KiB incoming limit for
   * clients that send long texts. */
  soup_websocket_connection_set_max_incoming_payload_size (ws, 1 << 22);
  s->message_handler =
      g_signal_connect (ws, "message", G_CALLBACK (ws_message_cb), s);
  s->closed_handler =
      g_signal_connect (ws, "closed", G_CALLBACK (ws_closed_cb), s);
  sockets = g_list_prepend (sockets, s);

  if (s->fault.close_after_ms >= 0)
    s->fault_close_id =
        g_timeout_add (s->fault.close_after_ms, fault_close_cb, s);
  if (s->fault.stall)
    emu_record_event ("elevenlabs", "stalled", s->client);
  else
    reset_inactivity (s);
}

/* ---------- HTTP synthesis ---------- */

static void http_job_pump (HttpJob *j);

static void
http_job_free (HttpJob *j)
{
  EmuTtsJob *tj;

  while ((tj = g_queue_pop_head (&j->jobs)))
    emu_tts_job_cancel (tj);
  g_queue_clear_full (&j->done, (GDestroyNotify)emu_tts_result_free);
  clear_source (&j->wake_id);
  if (j->finished_handler)
    g_signal_handler_disconnect (j->msg, j->finished_handler);
  g_object_unref (j->msg);
  g_free (j->client);
  http_jobs = g_list_remove (http_jobs, j);
  g_free (j);
}

static void
http_finished_cb (SoupServerMessage *msg, gpointer data)
{
  HttpJob *j = data;
  const gchar *outcome =
      j->n_pending || j->done.length ? "client aborted" : "ok";

  if (j->n_pending || j->done.length)
    emu_record_event ("elevenlabs", "http-aborted", j->client);
  if (!j->logged)
    emu_log_connection ("elevenlabs", j->client, j->started_us, outcome);
  http_job_free (j);
}

static void
http_synth_cb (EmuTtsResult *result, const GError *error, gpointer data)
{
  HttpJob *j = data;

  g_queue_pop_head (&j->jobs); /* jobs complete in order */
  j->n_pending--;
  if (result)
    g_queue_push_tail (&j->done, result);
  http_job_pump (j);
}

static gboolean
http_wake_cb (gpointer data)
{
  HttpJob *j = data;

  j->wake_id = 0;
  http_job_pump (j);
  return G_SOURCE_REMOVE;
}

static void
http_job_pump (HttpJob *j)
{
  SoupMessageBody *body = soup_server_message_get_response_body (j->msg);
  gint64 now = g_get_monotonic_time ();
  EmuTtsResult *r;

  if (j->not_before_us > now) {
    if (!j->wake_id)
      j->wake_id = g_timeout_add (
          (j->not_before_us - now + 999) / 1000, http_wake_cb, j);
    return;
  }
  if (!j->chunked && j->n_pending)
    return; /* a plain response goes out in one piece */
  while ((r = g_queue_pop_head (&j->done))) {
    soup_message_body_append_bytes (body, r->audio);
    emu_tts_result_free (r);
  }
  if (j->n_pending == 0) {
    /* Recorded now, not at "finished", which libsoup emits only after the
     * client may have read everything and moved on (openai.c, reply_end). */
    if (!j->logged) {
      j->logged = TRUE;
      emu_log_connection ("elevenlabs", j->client, j->started_us, "ok");
    }
    soup_message_body_complete (body);
  }
  soup_server_message_unpause (j->msg);
}

static void
log_refused (SoupServerMessage *msg)
{
  g_autofree gchar *client = emu_client_address (msg);
  g_autofree gchar *outcome =
      g_strdup_printf ("http %u", soup_server_message_get_status (msg));

  emu_log_connection ("elevenlabs", client, g_get_monotonic_time (), outcome);
}

static void
handle_http_tts (SoupServerMessage *msg, GHashTable *query, gboolean chunked)
{
  SoupMessageBody *req = soup_server_message_get_request_body (msg);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) sentences = NULL;
  EmuFault fault;
  EmuAudioFormat format;
  JsonObject *o;
  JsonNode *tn, *vs;
  gdouble speed = 1.0;
  HttpJob *j;

  emu_fault_for_connection ("elevenlabs", msg, &fault);
  if (fault.http_status) {
    apply_http_fault (msg, &fault);
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  if (!check_http_key (msg) || !query_format (msg, query, &format)) {
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  if (!req->data ||
      !json_parser_load_from_data (parser, req->data, req->length, &error) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    GString *b = g_string_new (
        "{\"detail\":[{\"type\":\"json_invalid\","
        "\"loc\":[\"body\",0],\"msg\":\"JSON decode error\",\"input\":{},"
        "\"ctx\":{\"error\":");
    emu_append_json_string (b, error ? error->message : "Expecting an object");
    g_string_append (b, "}}]}");
    emu_send_json_error (msg, 422, b->str);
    g_string_free (b, TRUE);
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  tn = json_object_get_member (o, "text");
  if (!tn || !JSON_NODE_HOLDS_VALUE (tn) ||
      json_node_get_value_type (tn) != G_TYPE_STRING) {
    emu_send_json_error (msg, 422,
        "{\"detail\":[{\"type\":\"missing\","
        "\"loc\":[\"body\",\"text\"],\"msg\":\"Field required\","
        "\"input\":null}]}");
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  vs = json_object_get_member (o, "voice_settings");
  if (vs && JSON_NODE_HOLDS_OBJECT (vs)) {
    JsonNode *sp = json_object_get_member (json_node_get_object (vs), "speed");
    if (sp && JSON_NODE_HOLDS_VALUE (sp))
      speed = CLAMP (json_node_get_double (sp), 0.5, 2.0);
  }

  j = g_new0 (HttpJob, 1);
  j->msg = g_object_ref (msg);
  j->client = emu_client_address (msg);
  j->started_us = g_get_monotonic_time ();
  j->chunked = chunked;
  j->format = format;
  j->not_before_us =
      j->started_us + (gint64)config->latency.tts_first_audio_ms * 1000;
  g_queue_init (&j->jobs);
  g_queue_init (&j->done);
  http_jobs = g_list_prepend (http_jobs, j);
  j->finished_handler =
      g_signal_connect (msg, "finished", G_CALLBACK (http_finished_cb), j);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  {
    SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
    g_autofree gchar *rid = g_uuid_string_random ();
    soup_message_headers_set_content_type (
        h, audio_content_type (&format), NULL);
    soup_message_headers_replace (h, "request-id", rid);
    if (chunked)
      soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
  }
  soup_server_message_pause (msg);
  if (fault.stall) {
    /* Never answer; the client's timeout or disconnect ends it. */
    emu_record_event ("elevenlabs", "stalled", j->client);
    emu_fault_clear (&fault);
    return;
  }
  emu_fault_clear (&fault);

  sentences = split_sentences (json_node_get_string (tn));
  for (guint i = 0; i < sentences->len; i++) {
    record_synthesis (g_ptr_array_index (sentences, i));
    g_queue_push_tail (&j->jobs,
        emu_tts_synthesize (tts, g_ptr_array_index (sentences, i), &format,
            speed, http_synth_cb, j));
    j->n_pending++;
  }
  if (sentences->len == 0)
    http_job_pump (j);
}

static void
http_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  const gchar *method = soup_server_message_get_method (msg);
  Route route = route_of (path);

  switch (route) {
    case ROUTE_STREAM_INPUT:
    case ROUTE_MULTI_STREAM_INPUT:
      if (!g_str_equal (method, "GET")) {
        emu_send_json_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
            "{\"detail\":\"Method Not Allowed\"}");
        return;
      }
      check_handshake (msg, query);
      return;
    case ROUTE_HTTP_STREAM:
    case ROUTE_HTTP_CONVERT:
      if (!g_str_equal (method, "POST")) {
        emu_send_json_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
            "{\"detail\":\"Method Not Allowed\"}");
        return;
      }
      handle_http_tts (msg, query, route == ROUTE_HTTP_STREAM);
      return;
    case ROUTE_NONE:
    default:
      emu_send_json_error (
          msg, SOUP_STATUS_NOT_FOUND, "{\"detail\":\"Not Found\"}");
      return;
  }
}

/* ---------- registration ---------- */

static void
shutdown_cb (gpointer data)
{
  while (sockets) {
    Socket *s = sockets->data;
    sockets = g_list_delete_link (sockets, sockets);
    set_outcome (s, "emulator shut down");
    emu_log_connection ("elevenlabs", s->client, s->started_us, s->outcome);
    socket_unref (s);
  }
  while (http_jobs)
    http_job_free (http_jobs->data);
  g_clear_pointer (&tts, emu_tts_free);
}

void
emu_elevenlabs_register (SoupServer *server, EmuConfig *cfg)
{
  g_autoptr (GError) error = NULL;

  config = cfg;
  tts = emu_tts_new (cfg->tts_engine, &error);
  if (!tts) {
    g_printerr ("voiceagent-emulator: --tts-engine: %s\n", error->message);
    exit (1);
  }
  soup_server_add_handler (server, PATH_PREFIX, http_cb, NULL, NULL);
  soup_server_add_websocket_handler (
      server, PATH_PREFIX, NULL, NULL, ws_cb, NULL, NULL);
  emu_at_shutdown (shutdown_cb, NULL);
}

/* voiceagent: a call's conversation as the elements report it on the bus.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The elements post what they see (docs/elements/): silerovad the caller's
 * speech, deepgramsrc transcripts, llmtransform its replies, elevenlabs*
 * the agent's audio. Each message carries `wallclock` (monotonic µs), so
 * latencies across elements are differences of wallclocks:
 *
 *   stt            final transcript arrival − end of the caller's speech
 *   llm_ttft       llmtransform `first-token` since-turn-end
 *   tts_ttfb       elevenlabssink `first-audio` ttfb
 *   voice_to_voice first agent sample leaving elevenlabssrc − end of speech
 *
 * The end of speech is where silerovad says speech ended, not when it
 * decided so: its wallclock minus (decision-running-time − running-time).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <json-glib/json-glib.h>
#include "conversation.h"

typedef struct
{
  guint turn;
  gint64 speech_end_us; /* 0 = unknown */
  gdouble stt_ms, llm_ttft_ms, tts_ttfb_ms, v2v_ms; /* < 0 = unknown */
  gdouble eot_ms; /* last word → turn committed; < 0 = unknown */
  const gchar *speculative; /* "used", "dropped" or NULL (none) */
  guint false_interruptions; /* pauses of its reply that resumed */
  gboolean reported;
} Turn;

struct _VaConversation
{
  VaConversationOutput output;
  gpointer user_data;
  gint64 start_us;
  gint64 last_speech_end_us; /* the caller's latest end of speech */
  GHashTable *turns; /* turn → Turn* */
  JsonArray *transcript;
  VaUsage usage;
  gdouble stt_seconds_reported; /* deepgram-usage is cumulative */
  guint64 tts_characters_heard; /* of the agent's turns, as played */
  guint speaking_turn; /* the agent turn playing, for false interruptions */
  /* A resumed call's turns so far: its new pipeline's elements count from
   * 1 again, and this keeps the numbers going on */
  guint turn_offset;
  GHashTable *webhook_calls; /* tool-call id → whether it is a webhook */
  guint last_turn; /* the highest turn an element has named so far */
};

VaConversation *
va_conversation_new (const VaConversationOutput *output, gpointer user_data)
{
  VaConversation *c = g_new0 (VaConversation, 1);

  c->output = *output;
  c->user_data = user_data;
  c->webhook_calls =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  c->start_us = g_get_monotonic_time ();
  c->turns =
      g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  c->transcript = json_array_new ();
  return c;
}

void
va_conversation_free (VaConversation *c)
{
  if (c == NULL)
    return;
  g_hash_table_unref (c->webhook_calls);
  g_hash_table_unref (c->turns);
  json_array_unref (c->transcript);
  g_free (c);
}

static Turn *
get_turn (VaConversation *c, guint n)
{
  Turn *t = g_hash_table_lookup (c->turns, GUINT_TO_POINTER (n));

  if (t == NULL) {
    t = g_new0 (Turn, 1);
    t->turn = n;
    t->stt_ms = t->llm_ttft_ms = t->tts_ttfb_ms = t->v2v_ms = t->eot_ms = -1;
    g_hash_table_insert (c->turns, GUINT_TO_POINTER (n), t);
  }
  return t;
}

/* ---- Output helpers ---- */

static void
send_builder (VaConversation *c, JsonBuilder *b)
{
  JsonNode *root;
  gchar *json;

  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  c->output.send (json, c->user_data);
  g_free (json);
  json_node_unref (root);
  g_object_unref (b);
}

static JsonBuilder *
begin_event (const gchar *type)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  return b;
}

static void
add_ms (JsonBuilder *b, const gchar *name, gdouble ms)
{
  json_builder_set_member_name (b, name);
  if (ms < 0)
    json_builder_add_null_value (b);
  else
    json_builder_add_double_value (b, ms);
}

static void
add_transcript (
    VaConversation *c, const gchar *role, const gchar *text, guint turn)
{
  JsonObject *o = json_object_new ();

  json_object_set_string_member (o, "role", role);
  json_object_set_string_member (o, "text", text);
  json_object_set_double_member (
      o, "t", (g_get_monotonic_time () - c->start_us) / 1e6);
  json_object_set_int_member (o, "turn", turn);
  json_array_add_object_element (c->transcript, o);
}

static void
add_string_or_null (JsonBuilder *b, const gchar *name, const gchar *value)
{
  json_builder_set_member_name (b, name);
  if (value)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

/* eot_ms, speculative and false_interruptions of a turn. */
static void
add_turn_taking (JsonBuilder *b, const Turn *t)
{
  add_ms (b, "eot_ms", t->eot_ms);
  add_string_or_null (b, "speculative", t->speculative);
  json_builder_set_member_name (b, "false_interruptions");
  json_builder_add_int_value (b, t->false_interruptions);
}

/* Sends the turn's metrics once voice-to-voice is known (the last stage). */
static void
report_turn (VaConversation *c, Turn *t)
{
  JsonBuilder *b;

  if (t->reported || t->v2v_ms < 0)
    return;
  t->reported = TRUE;
  b = begin_event ("metrics");
  json_builder_set_member_name (b, "turn");
  json_builder_add_int_value (b, t->turn);
  add_ms (b, "stt_ms", t->stt_ms);
  add_ms (b, "llm_ttft_ms", t->llm_ttft_ms);
  add_ms (b, "tts_ttfb_ms", t->tts_ttfb_ms);
  add_ms (b, "voice_to_voice_ms", t->v2v_ms);
  add_turn_taking (b, t);
  send_builder (c, b);
}

static void
observe (VaConversation *c, const gchar *name, gdouble ms)
{
  if (ms >= 0 && c->output.observe)
    c->output.observe (name, ms / 1000.0, c->user_data);
}

static guint
get_uint (const GstStructure *s, const gchar *field)
{
  guint v = 0;

  gst_structure_get_uint (s, field, &v);
  return v;
}

/* The message's turn in the call's numbering (0: none). */
static guint
turn_of (VaConversation *c, const GstStructure *s)
{
  guint turn = get_uint (s, "turn");

  if (turn == 0)
    return 0;
  c->last_turn = MAX (c->last_turn, turn + c->turn_offset);
  return turn + c->turn_offset;
}

static gint64
get_wallclock (const GstStructure *s)
{
  gint64 v = g_get_monotonic_time ();

  gst_structure_get_int64 (s, "wallclock", &v);
  return v;
}

static gdouble
ns_field_ms (const GstStructure *s, const gchar *field)
{
  guint64 ns = GST_CLOCK_TIME_NONE;

  if (!gst_structure_get_uint64 (s, field, &ns) ||
      !GST_CLOCK_TIME_IS_VALID (ns))
    return -1;
  return ns / 1e6;
}

/* ---- Per element ---- */

static void
handle_vad (VaConversation *c, const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");
  guint64 rt = 0, decided = 0;
  JsonBuilder *b;

  if (g_strcmp0 (event, "speech-start") != 0 &&
      g_strcmp0 (event, "speech-stop") != 0)
    return;
  if (g_str_equal (event, "speech-stop") &&
      gst_structure_get_uint64 (s, "running-time", &rt) &&
      gst_structure_get_uint64 (s, "decision-running-time", &decided) &&
      decided >= rt)
    c->last_speech_end_us = get_wallclock (s) - (gint64)((decided - rt) / 1000);
  b = begin_event ("vad");
  json_builder_set_member_name (b, "speaking");
  json_builder_add_boolean_value (b, g_str_equal (event, "speech-start"));
  send_builder (c, b);
}

/* When the speech of a final result ended (monotonic µs): when the audio
 * of its last word's end reached deepgramsink. Deepgram's endpointing
 * often ends a turn before silerovad's min-silence-ms has passed, so the
 * VAD's end may not have come yet. -1 if the result cannot tell. */
static gint64
transcript_speech_end_us (const GstStructure *s)
{
  const GValue *words = gst_structure_get_value (s, "words");
  const GstStructure *last;
  guint64 rt = 0, duration = 0, latency = 0, word_end = 0;
  guint n;

  if (words == NULL || !GST_VALUE_HOLDS_ARRAY (words) ||
      (n = gst_value_array_get_size (words)) == 0 ||
      !gst_structure_get_uint64 (s, "running-time", &rt) ||
      !gst_structure_get_uint64 (s, "duration", &duration) ||
      !gst_structure_get_uint64 (s, "latency", &latency) ||
      !GST_CLOCK_TIME_IS_VALID (duration) || !GST_CLOCK_TIME_IS_VALID (latency))
    return -1;
  last = gst_value_get_structure (gst_value_array_get_value (words, n - 1));
  if (!gst_structure_get_uint64 (last, "end", &word_end) ||
      !GST_CLOCK_TIME_IS_VALID (word_end) || word_end > rt + duration)
    return -1;
  return get_wallclock (s) - (gint64)(latency / GST_USECOND) -
      (gint64)((rt + duration - word_end) / GST_USECOND);
}

static void
handle_transcript (VaConversation *c, const GstStructure *s)
{
  const gchar *text = gst_structure_get_string (s, "text");
  gboolean is_final = FALSE, speech_final = FALSE;
  guint turn = turn_of (c, s);
  JsonBuilder *b;
  gint64 end_us;

  if (text == NULL || *text == '\0')
    return;
  gst_structure_get_boolean (s, "is_final", &is_final);
  gst_structure_get_boolean (s, "speech_final", &speech_final);
  b = begin_event ("transcript");
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, "user");
  json_builder_set_member_name (b, "text");
  json_builder_add_string_value (b, text);
  json_builder_set_member_name (b, "final");
  json_builder_add_boolean_value (b, is_final);
  json_builder_set_member_name (b, "turn");
  json_builder_add_int_value (b, turn);
  send_builder (c, b);
  if (!is_final)
    return;
  add_transcript (c, "user", text, turn);
  end_us = transcript_speech_end_us (s);
  if (end_us <= 0)
    end_us = c->last_speech_end_us;
  if (end_us > 0) {
    Turn *t = get_turn (c, turn);
    t->speech_end_us = end_us;
    t->stt_ms = (get_wallclock (s) - t->speech_end_us) / 1000.0;
  }
}

static void
handle_speculation (VaConversation *c, const GstStructure *s, guint turn)
{
  const gchar *outcome = gst_structure_get_string (s, "outcome");

  if (g_strcmp0 (outcome, "started") == 0) {
    c->usage.llm_speculative++;
  } else if (g_strcmp0 (outcome, "used") == 0) {
    c->usage.llm_speculative_used++;
    get_turn (c, turn)->speculative = "used";
  } else if (g_strcmp0 (outcome, "dropped") == 0 &&
      get_turn (c, turn)->speculative == NULL) {
    get_turn (c, turn)->speculative = "dropped";
  }
}

/* The agent paused for the caller, resumed, or was cut off. */
static void
handle_barge_in (VaConversation *c, const GstStructure *s)
{
  const gchar *outcome = gst_structure_get_string (s, "outcome");
  const gchar *reason = gst_structure_get_string (s, "reason");
  JsonBuilder *b;

  if (outcome == NULL)
    return;
  if (g_str_equal (outcome, "resumed")) {
    c->usage.false_interruptions++;
    if (c->speaking_turn)
      get_turn (c, c->speaking_turn)->false_interruptions++;
  } else if (g_str_equal (outcome, "confirmed")) {
    c->usage.barge_ins++;
  } else if (g_str_equal (outcome, "backchannel")) {
    c->usage.backchannels++;
  }
  b = begin_event ("barge_in");
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, outcome);
  add_string_or_null (
      b, "reason", g_str_equal (outcome, "backchannel") ? NULL : reason);
  send_builder (c, b);
}

/* deepgramsrc's turn decisions: likely (a reply may start), resumed (the
 * caller went on), committed (the end-of-turn it sent). */
static void
handle_turn (VaConversation *c, const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");
  const gchar *state = NULL;
  guint turn = turn_of (c, s);
  JsonBuilder *b;

  if (g_strcmp0 (event, "end-of-turn") == 0) {
    Turn *t = get_turn (c, turn);
    state = "committed";
    t->eot_ms = ns_field_ms (s, "eot-delay");
    observe (c, "end_of_turn", t->eot_ms);
    c->usage.turns++;
  } else if (g_strcmp0 (event, "turn-likely") == 0) {
    state = "likely";
  } else if (g_strcmp0 (event, "turn-resumed") == 0) {
    state = "resumed";
  } else {
    return;
  }
  b = begin_event ("turn");
  json_builder_set_member_name (b, "turn");
  json_builder_add_int_value (b, turn);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, state);
  if (!g_str_equal (state, "resumed"))
    add_string_or_null (b, "text", gst_structure_get_string (s, "transcript"));
  if (g_str_equal (state, "committed")) {
    add_ms (b, "eot_ms", get_turn (c, turn)->eot_ms);
    add_string_or_null (b, "ending", gst_structure_get_string (s, "ending"));
  }
  send_builder (c, b);
}

static JsonBuilder *
add_turn_member (JsonBuilder *b, guint turn)
{
  json_builder_set_member_name (b, "turn");
  json_builder_add_int_value (b, turn);
  return b;
}

/* The model's arguments as JSON (they are an object by the time the tool
 * runs), or as the text the model sent when they were not JSON. */
static void
add_arguments (JsonBuilder *b, const gchar *arguments)
{
  JsonNode *node = arguments ? json_from_string (arguments, NULL) : NULL;

  json_builder_set_member_name (b, "arguments");
  if (node)
    json_builder_add_value (b, node);
  else if (arguments)
    json_builder_add_string_value (b, arguments);
  else
    json_builder_add_null_value (b);
}

/* llmtransform runs a tool: the caller sees which, with what. */
static void
handle_tool_call (VaConversation *c, const GstStructure *s, guint turn)
{
  JsonBuilder *b = add_turn_member (begin_event ("tool_call"), turn);
  const gchar *id = gst_structure_get_string (s, "tool-call-id");

  /* Only webhooks' times go to the latency histogram: a built-in takes no
   * time and would hide them. Ids are the model's and may repeat across
   * rounds (SGLang counts from 0): the latest call of an id wins. */
  if (id)
    g_hash_table_insert (c->webhook_calls, g_strdup (id),
        GINT_TO_POINTER (
            g_strcmp0 (gst_structure_get_string (s, "kind"), "webhook") == 0));

  add_string_or_null (b, "id", gst_structure_get_string (s, "tool-call-id"));
  add_string_or_null (b, "name", gst_structure_get_string (s, "name"));
  add_string_or_null (b, "kind", gst_structure_get_string (s, "kind"));
  add_arguments (b, gst_structure_get_string (s, "arguments"));
  send_builder (c, b);
}

/* The record keeps what the tool answered (the operator's data); the
 * caller gets whether it worked and how long it took, not the answer
 * itself, which may hold what the service did not mean to show. */
static void
record_tool_result (VaConversation *c, const GstStructure *s, guint turn,
    gboolean ok, gdouble ms)
{
  const gchar *name = gst_structure_get_string (s, "name");
  const gchar *error = gst_structure_get_string (s, "error");
  const gchar *result = gst_structure_get_string (s, "result");
  gchar *text = ok ? g_strdup_printf ("%s: ok (%.0f ms)", name, ms)
                   : g_strdup_printf ("%s: error: %s (%.0f ms)", name,
                         error ? error : "?", ms);
  JsonArray *transcript = c->transcript;
  JsonObject *o;

  add_transcript (c, "tool", text, turn);
  o = json_array_get_object_element (
      transcript, json_array_get_length (transcript) - 1);
  json_object_set_string_member (o, "name", name);
  json_object_set_boolean_member (o, "ok", ok);
  json_object_set_double_member (o, "duration_ms", ms);
  if (result)
    json_object_set_string_member (o, "result", result);
  g_free (text);
}

static void
handle_tool_result (VaConversation *c, const GstStructure *s, guint turn)
{
  gboolean ok = FALSE;
  gdouble ms = -1;
  const gchar *id = gst_structure_get_string (s, "tool-call-id");
  JsonBuilder *b = add_turn_member (begin_event ("tool_result"), turn);

  gst_structure_get_boolean (s, "ok", &ok);
  gst_structure_get_double (s, "duration-ms", &ms);
  c->usage.tool_calls++;
  if (!ok)
    c->usage.tool_failures++;
  if (id && g_hash_table_lookup (c->webhook_calls, id))
    observe (c, "tool_webhook", ms);
  add_string_or_null (b, "id", gst_structure_get_string (s, "tool-call-id"));
  add_string_or_null (b, "name", gst_structure_get_string (s, "name"));
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, ok);
  add_string_or_null (
      b, "error", ok ? NULL : gst_structure_get_string (s, "error"));
  add_ms (b, "duration_ms", ms);
  send_builder (c, b);
  record_tool_result (c, s, turn, ok, ms);
}

/* The goodbye was heard: hang up. A caller who spoke over the goodbye
 * ("wait, one more thing") is not hung up on: the conversation goes on. */
static void
handle_end_call (VaConversation *c, const GstStructure *s, guint turn)
{
  gboolean heard = TRUE;

  gst_structure_get_boolean (s, "heard", &heard);
  if (!heard)
    return;
  send_builder (c, add_turn_member (begin_event ("end_call"), turn));
  if (c->output.end_call)
    c->output.end_call (c->user_data);
}

/* transfer (no telephony here: the application or the caller's page acts
 * on it) and wait (the caller asked for a moment). */
static void
handle_tool_action (
    VaConversation *c, const GstStructure *s, const gchar *event, guint turn)
{
  JsonBuilder *b = add_turn_member (begin_event (event), turn);

  add_string_or_null (b, "id", gst_structure_get_string (s, "tool-call-id"));
  add_arguments (b, gst_structure_get_string (s, "arguments"));
  send_builder (c, b);
}

static void
handle_llm (VaConversation *c, const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");
  guint turn = turn_of (c, s);
  gint64 tokens = 0;
  JsonBuilder *b;

  if (g_strcmp0 (event, "request-start") == 0) {
    c->usage.llm_requests++;
  } else if (g_strcmp0 (event, "user-text") == 0 &&
      gst_structure_get_string (s, "text")) {
    add_transcript (c, "user", gst_structure_get_string (s, "text"), turn);
  } else if (g_strcmp0 (event, "speculation") == 0) {
    handle_speculation (c, s, turn);
  } else if (g_strcmp0 (event, "barge-in") == 0) {
    handle_barge_in (c, s);
  } else if (g_strcmp0 (event, "first-token") == 0) {
    Turn *t = get_turn (c, turn);
    t->llm_ttft_ms = ns_field_ms (s, "since-turn-end");
    observe (c, "llm_ttft", t->llm_ttft_ms);
  } else if (g_strcmp0 (event, "tool-call") == 0) {
    handle_tool_call (c, s, turn);
  } else if (g_strcmp0 (event, "tool-result") == 0) {
    handle_tool_result (c, s, turn);
  } else if (g_strcmp0 (event, "transfer") == 0 ||
      g_strcmp0 (event, "wait") == 0) {
    handle_tool_action (c, s, event, turn);
  } else if (g_strcmp0 (event, "end-call") == 0) {
    handle_end_call (c, s, turn);
  } else if (g_strcmp0 (event, "done") == 0) {
    const gchar *text = gst_structure_get_string (s, "text");
    if (gst_structure_get_int64 (s, "prompt-tokens", &tokens) && tokens > 0)
      c->usage.llm_prompt_tokens += tokens;
    if (gst_structure_get_int64 (s, "completion-tokens", &tokens) && tokens > 0)
      c->usage.llm_completion_tokens += tokens;
    if (text && *text) {
      b = begin_event ("transcript");
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (b, "agent");
      json_builder_set_member_name (b, "text");
      json_builder_add_string_value (b, text);
      json_builder_set_member_name (b, "turn");
      json_builder_add_int_value (b, turn);
      send_builder (c, b);
    }
  }
}

static void
handle_tts_sink (VaConversation *c, const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");

  if (g_strcmp0 (event, "first-audio") == 0) {
    Turn *t = get_turn (c, turn_of (c, s));
    t->tts_ttfb_ms = ns_field_ms (s, "ttfb");
    observe (c, "tts_ttfb", t->tts_ttfb_ms);
  } else if (g_strcmp0 (event, "turn-done") == 0 ||
      g_strcmp0 (event, "turn-cancelled") == 0) {
    c->usage.tts_characters += get_uint (s, "characters");
  }
}

static void
send_speaking (VaConversation *c, gboolean speaking)
{
  JsonBuilder *b = begin_event ("agent");

  json_builder_set_member_name (b, "speaking");
  json_builder_add_boolean_value (b, speaking);
  send_builder (c, b);
}

static void
handle_tts_src (VaConversation *c, const GstStructure *s)
{
  const gchar *event = gst_structure_get_string (s, "event");
  guint turn = turn_of (c, s);
  gboolean interrupted = FALSE;
  Turn *t;

  if (g_strcmp0 (event, "agent-speaking-started") == 0) {
    c->speaking_turn = turn;
    send_speaking (c, TRUE);
    t = get_turn (c, turn);
    if (t->speech_end_us > 0 && t->v2v_ms < 0) {
      t->v2v_ms = (get_wallclock (s) - t->speech_end_us) / 1000.0;
      observe (c, "stt", t->stt_ms);
      observe (c, "voice_to_voice", t->v2v_ms);
      report_turn (c, t);
    }
  } else if (g_strcmp0 (event, "underrun") == 0) {
    if (c->output.underrun)
      c->output.underrun (c->user_data);
  } else if (g_strcmp0 (event, "agent-speaking-stopped") == 0) {
    const gchar *heard = gst_structure_get_string (s, "spoken-text");
    c->speaking_turn = 0;
    if (heard)
      c->tts_characters_heard += g_utf8_strlen (heard, -1);
    send_speaking (c, FALSE);
    gst_structure_get_boolean (s, "interrupted", &interrupted);
    if (heard && *heard)
      add_transcript (c, "agent", heard, turn);
    if (interrupted) {
      JsonBuilder *b = begin_event ("interrupted");
      json_builder_set_member_name (b, "turn");
      json_builder_add_int_value (b, turn);
      send_builder (c, b);
    }
  }
}

/* What the caller is told of a service's trouble: a fixed text per
 * stage. The element's own message may quote the provider's answer (an
 * account or organisation id, a quota name); it stays in the server's
 * log (call.c logs it). */
static const gchar *
trouble_of (const gchar *factory)
{
  if (g_str_has_prefix (factory, "deepgram"))
    return "speech recognition is having trouble";
  if (g_str_has_prefix (factory, "llm"))
    return "the language model is having trouble";
  if (g_str_has_prefix (factory, "elevenlabs"))
    return "speech synthesis is having trouble";
  if (g_str_has_prefix (factory, "silero"))
    return "voice detection is having trouble";
  return "the agent is having trouble";
}

static void
handle_warning (VaConversation *c, const GstStructure *s)
{
  const gchar *factory = gst_structure_get_string (s, "factory");
  JsonBuilder *b = begin_event ("error");

  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, trouble_of (factory ? factory : ""));
  send_builder (c, b);
}

void
va_conversation_handle (VaConversation *c, const GstStructure *s)
{
  const gchar *name = gst_structure_get_name (s);
  gdouble seconds;

  if (g_str_equal (name, "silerovad"))
    handle_vad (c, s);
  else if (g_str_equal (name, "deepgram-transcript"))
    handle_transcript (c, s);
  else if (g_str_equal (name, "llmtransform"))
    handle_llm (c, s);
  else if (g_str_equal (name, "deepgramsrc"))
    handle_turn (c, s);
  else if (g_str_equal (name, "elevenlabssink"))
    handle_tts_sink (c, s);
  else if (g_str_equal (name, "elevenlabssrc"))
    handle_tts_src (c, s);
  else if (g_str_equal (name, "warning"))
    handle_warning (c, s);
  else if (g_str_equal (name, "deepgram-usage") &&
      gst_structure_get_double (s, "audio-seconds", &seconds) &&
      seconds > c->stt_seconds_reported) {
    /* Cumulative per element: count only what is new. */
    c->usage.stt_seconds += seconds - c->stt_seconds_reported;
    c->stt_seconds_reported = seconds;
  }
}

static JsonArray *
parse_array (JsonParser *p, const gchar *json)
{
  if (json && json_parser_load_from_data (p, json, -1, NULL) &&
      JSON_NODE_HOLDS_ARRAY (json_parser_get_root (p)))
    return json_node_get_array (json_parser_get_root (p));
  return NULL;
}

static gdouble
ms_member (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) ? json_node_get_double (n) : -1;
}

/* One element of va_conversation_turns_json(), already reported. */
static void
restore_turn (VaConversation *c, JsonObject *o)
{
  gint64 n = json_object_get_int_member_with_default (o, "turn", 0);
  const gchar *spec =
      json_object_get_string_member_with_default (o, "speculative", "");
  Turn *t;

  if (n < 1 || n > G_MAXINT)
    return;
  t = get_turn (c, (guint)n);
  t->stt_ms = ms_member (o, "stt_ms");
  t->llm_ttft_ms = ms_member (o, "llm_ttft_ms");
  t->tts_ttfb_ms = ms_member (o, "tts_ttfb_ms");
  t->v2v_ms = ms_member (o, "voice_to_voice_ms");
  t->eot_ms = ms_member (o, "eot_ms");
  /* Static strings, as the live turns hold. */
  t->speculative = g_strcmp0 (spec, "used") == 0 ? "used"
      : g_strcmp0 (spec, "dropped") == 0         ? "dropped"
                                                 : NULL;
  t->false_interruptions =
      json_object_get_int_member_with_default (o, "false_interruptions", 0);
  t->reported = TRUE;
  c->turn_offset = MAX (c->turn_offset, t->turn);
}

void
va_conversation_restore (
    VaConversation *c, const gchar *transcript, const gchar *turns)
{
  JsonParser *p = json_parser_new ();
  JsonArray *a = parse_array (p, transcript);
  guint i;

  for (i = 0; a && i < json_array_get_length (a); i++) {
    JsonNode *line = json_array_get_element (a, i);
    json_array_add_element (c->transcript, json_node_copy (line));
    if (JSON_NODE_HOLDS_OBJECT (line))
      c->turn_offset = MAX (c->turn_offset,
          (guint)CLAMP (json_object_get_int_member_with_default (
                            json_node_get_object (line), "turn", 0),
              0, G_MAXINT));
  }
  a = parse_array (p, turns);
  for (i = 0; a && i < json_array_get_length (a); i++)
    if (JSON_NODE_HOLDS_OBJECT (json_array_get_element (a, i)))
      restore_turn (c, json_array_get_object_element (a, i));
  g_object_unref (p);
}

gchar *
va_conversation_transcript_json (VaConversation *c)
{
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);
  gchar *json;

  json_node_set_array (node, c->transcript);
  json = json_to_string (node, FALSE);
  json_node_unref (node);
  return json;
}

static gint
compare_turns (gconstpointer a, gconstpointer b)
{
  return (gint)((const Turn *)a)->turn - (gint)((const Turn *)b)->turn;
}

gchar *
va_conversation_turns_json (VaConversation *c)
{
  GList *turns =
            g_list_sort (g_hash_table_get_values (c->turns), compare_turns),
        *l;
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;

  json_builder_begin_array (b);
  for (l = turns; l; l = l->next) {
    Turn *t = l->data;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "turn");
    json_builder_add_int_value (b, t->turn);
    add_ms (b, "stt_ms", t->stt_ms);
    add_ms (b, "llm_ttft_ms", t->llm_ttft_ms);
    add_ms (b, "tts_ttfb_ms", t->tts_ttfb_ms);
    add_ms (b, "voice_to_voice_ms", t->v2v_ms);
    add_turn_taking (b, t);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  g_list_free (turns);
  return json;
}

/**
 * va_conversation_get_turn:
 *
 * Returns: the conversation's latest turn (0 before the first), for the
 * log lines of events that carry none.
 */
guint
va_conversation_get_turn (VaConversation *c)
{
  return c->last_turn;
}

const VaUsage *
va_conversation_get_usage (VaConversation *c)
{
  /* Billed characters the caller did not hear: cut off, dropped, or
   * synthesized speculatively and never played. */
  c->usage.tts_characters_unheard =
      c->usage.tts_characters > c->tts_characters_heard
      ? c->usage.tts_characters - c->tts_characters_heard
      : 0;
  return &c->usage;
}

/* voiceagent-emulator: the OpenAI-compatible Chat Completions service.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * POST /v1/chat/completions (stream true and false,
 * stream_options.include_usage), GET /v1/models and /v1/models/{id}, Bearer
 * auth, OpenAI's error bodies. A streamed answer is Server-Sent Events exactly
 * as OpenAI sends them: `data: {chat.completion.chunk}\n\n` with a first
 * delta carrying the role, content deltas, a chunk with finish_reason, a
 * usage chunk with "choices": [] when asked for, then `data: [DONE]\n\n`.
 *
 * The responder answers the last user message: rules from --llm-rules
 * (regex -> reply), then a few built-in ones, then an echo of the user's
 * words, so a spoken conversation stays intelligible. --llm-replay serves a
 * recorded SSE body verbatim instead.
 *
 * A client that goes away mid-stream is noticed at once (the socket turns
 * readable with EOF) and recorded as an "llm-aborted" event.
 */
#include "emulator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_MODEL "gpt-4o-mini"
#define FINGERPRINT "fp_emulator"

/* A tool call a rule makes: arguments is a JSON object whose string values
 * may hold \1 and {{user}}, expanded per request. */
typedef struct
{
  gchar *name;
  JsonNode *arguments;
} RuleCall;

/* A responder rule. A pattern rule answers the last user message with
 * text, tool calls (the ones the request offers), or both; an after_tool
 * rule answers a tool's result. */
typedef struct
{
  GRegex *regex; /* NULL in an after_tool rule */
  gchar *after_tool; /* tool name ("*": any), NULL in a pattern rule */
  gchar *reply; /* text, NULL when the rule only calls tools */
  GPtrArray *calls; /* (element-type RuleCall) */
} Rule;

/* One tool call of an answer. */
typedef struct
{
  gchar *name;
  gchar *arguments; /* JSON text */
} AnswerCall;

/* What the responder says: text, then tool calls. */
typedef struct
{
  gchar *text; /* NULL when the answer is tool calls only */
  GPtrArray *calls; /* (element-type AnswerCall) */
} Answer;

/* The tools a request lets the answer call. */
typedef struct
{
  GHashTable *names; /* offered names; NULL: none (no tools, or "none") */
  gboolean parallel; /* more than one call per answer */
} ToolOffer;

/* A streamed (or delayed) answer in flight. */
typedef struct
{
  SoupServerMessage *msg;
  gchar *client;
  gint64 started_us;
  gchar *id;
  gchar *model;
  gint64 created;
  gboolean stream;
  gboolean include_usage;
  GPtrArray *events; /* SSE events (complete, with "\n\n") */
  guint next; /* next event to send */
  guint n_tokens; /* completion tokens of the answer */
  guint first_delay_ms;
  guint interval_ms;
  EmuFault fault;
  guint timer_id;
  guint close_timer_id;
  GSource *hup_source; /* client went away */
  gboolean done; /* body complete */
  gboolean aborted;
  gboolean logged; /* its "connection" event is recorded */
  gulong finished_handler;
} Reply;

/* Main thread only. */
static EmuConfig *config;
static GPtrArray *rules; /* (element-type Rule) file rules, then built-in */
static gchar *default_reply; /* from the rules file, may be NULL */
static GPtrArray *replay_events; /* (element-type utf8) --llm-replay */
static GList *replies; /* (element-type Reply) */
static gboolean vllm_tools; /* --llm-tool-format vllm */

static void reply_send_next (Reply *r);

/* ---------- helpers ---------- */

/* @prefix followed by @n random letters and digits, like OpenAI's ids. */
static gchar *
random_id (const gchar *prefix, guint n)
{
  static const gchar alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  GString *s = g_string_new (prefix);

  for (guint i = 0; i < n; i++)
    g_string_append_c (
        s, alphabet[g_random_int_range (0, sizeof (alphabet) - 1)]);
  return g_string_free (s, FALSE);
}

/* OpenAI's error body. @param and @code may be NULL (JSON null). */
static void
send_error (SoupServerMessage *msg, guint status, const gchar *message,
    const gchar *type, const gchar *param, const gchar *code)
{
  GString *b = g_string_new ("{\"error\":{\"message\":");

  emu_append_json_string (b, message);
  g_string_append (b, ",\"type\":");
  emu_append_json_string (b, type);
  g_string_append (b, ",\"param\":");
  if (param)
    emu_append_json_string (b, param);
  else
    g_string_append (b, "null");
  g_string_append (b, ",\"code\":");
  if (code)
    emu_append_json_string (b, code);
  else
    g_string_append (b, "null");
  g_string_append (b, "}}");
  emu_send_json_error (msg, status, b->str);
  g_string_free (b, TRUE);
}

static void
log_refused (SoupServerMessage *msg)
{
  g_autofree gchar *client = emu_client_address (msg);
  g_autofree gchar *outcome =
      g_strdup_printf ("http %u", soup_server_message_get_status (msg));

  emu_log_connection ("llm", client, g_get_monotonic_time (), outcome);
}

/* Checks the Bearer key; sends 401 and returns FALSE when it is wrong. */
static gboolean
check_key (SoupServerMessage *msg)
{
  const gchar *auth = soup_message_headers_get_one (
      soup_server_message_get_request_headers (msg), "Authorization");
  const gchar *key = NULL;

  if (auth && g_ascii_strncasecmp (auth, "Bearer ", 7) == 0)
    key = auth + 7;
  if (!key || !*key) {
    send_error (msg, SOUP_STATUS_UNAUTHORIZED,
        "You didn't provide an API "
        "key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error", NULL, NULL);
    return FALSE;
  }
  if (!emu_key_matches (key, config->openai_key)) {
    gsize n = strlen (key);
    g_autofree gchar *masked = n > 8
        ? g_strdup_printf ("%.3s%s%s", key, "****************", key + n - 4)
        : g_strdup ("****");
    g_autofree gchar *m =
        g_strdup_printf ("Incorrect API key provided: %s. "
                         "You can find your API key at "
                         "https://platform.openai.com/account/api-keys.",
            masked);
    send_error (msg, SOUP_STATUS_UNAUTHORIZED, m, "invalid_request_error", NULL,
        "invalid_api_key");
    return FALSE;
  }
  return TRUE;
}

static void
send_fault_status (SoupServerMessage *msg, const EmuFault *f)
{
  SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);

  if (f->retry_after_s) {
    g_autofree gchar *v = g_strdup_printf ("%u", f->retry_after_s);
    soup_message_headers_replace (h, "Retry-After", v);
  }
  switch (f->http_status) {
    case 429:
      send_error (msg, 429,
          "Rate limit reached for requests (emulated "
          "fault).",
          "requests", NULL, "rate_limit_exceeded");
      break;
    case 503:
      send_error (msg, 503,
          "The engine is currently overloaded, please try "
          "again later.",
          "server_error", NULL, NULL);
      break;
    case 401:
      send_error (msg, 401, "Incorrect API key provided (emulated fault).",
          "invalid_request_error", NULL, "invalid_api_key");
      break;
    default:
      send_error (msg, f->http_status,
          "The server had an error while "
          "processing your request. Sorry about that!",
          "server_error", NULL, NULL);
      break;
  }
}

/* ---------- responder ---------- */

static void
rule_call_free (RuleCall *c)
{
  g_free (c->name);
  json_node_unref (c->arguments);
  g_free (c);
}

static void
rule_free (Rule *r)
{
  g_clear_pointer (&r->regex, g_regex_unref);
  g_free (r->after_tool);
  g_free (r->reply);
  g_ptr_array_unref (r->calls);
  g_free (r);
}

static Rule *
rule_new (void)
{
  Rule *r = g_new0 (Rule, 1);

  r->calls = g_ptr_array_new_with_free_func ((GDestroyNotify)rule_call_free);
  return r;
}

static void
answer_call_free (AnswerCall *c)
{
  g_free (c->name);
  g_free (c->arguments);
  g_free (c);
}

static Answer *
answer_new (gchar *text)
{
  Answer *a = g_new0 (Answer, 1);

  a->text = text;
  a->calls = g_ptr_array_new_with_free_func ((GDestroyNotify)answer_call_free);
  return a;
}

static void
answer_free (Answer *a)
{
  g_free (a->text);
  g_ptr_array_unref (a->calls);
  g_free (a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Answer, answer_free)

/* A tool name as OpenAI accepts it: 1-64 letters, digits, '_' or '-'. */
static gboolean
valid_tool_name (const gchar *name)
{
  gsize n = name ? strlen (name) : 0;

  if (n == 0 || n > 64)
    return FALSE;
  for (const gchar *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

/* Parses {"name": NAME, "arguments": {...}} (arguments may be left out). */
static RuleCall *
parse_rule_call (JsonNode *n, GError **error)
{
  JsonObject *o;
  JsonNode *args;
  const gchar *name;
  RuleCall *c;

  if (!JSON_NODE_HOLDS_OBJECT (n)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "a tool call is {\"name\": NAME, \"arguments\": {...}}");
    return NULL;
  }
  o = json_node_get_object (n);
  name = json_object_get_string_member_with_default (o, "name", NULL);
  if (!valid_tool_name (name)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "a tool call needs a \"name\" of 1-64 letters, digits, '_' or '-'");
    return NULL;
  }
  args = json_object_get_member (o, "arguments");
  if (args && !JSON_NODE_HOLDS_OBJECT (args)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "tool call %s: \"arguments\" must be a JSON object", name);
    return NULL;
  }
  c = g_new0 (RuleCall, 1);
  c->name = g_strdup (name);
  c->arguments = args
      ? json_node_copy (args)
      : json_node_init_object (json_node_alloc (), json_object_new ());
  return c;
}

/* Reads "tool_call" (one) or "tool_calls" (an array) of rule @o into @r. */
static gboolean
parse_rule_calls (JsonObject *o, Rule *r, GError **error)
{
  JsonNode *one = json_object_get_member (o, "tool_call");
  JsonNode *many = json_object_get_member (o, "tool_calls");
  RuleCall *c;

  if (one && many) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "give \"tool_call\" or \"tool_calls\", not both");
    return FALSE;
  }
  if (one) {
    if (!(c = parse_rule_call (one, error)))
      return FALSE;
    g_ptr_array_add (r->calls, c);
  } else if (many) {
    JsonArray *a;
    if (!JSON_NODE_HOLDS_ARRAY (many)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "\"tool_calls\" must be an array of tool calls");
      return FALSE;
    }
    a = json_node_get_array (many);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      if (!(c = parse_rule_call (json_array_get_element (a, i), error)))
        return FALSE;
      g_ptr_array_add (r->calls, c);
    }
  }
  return TRUE;
}

/* Builds a rule from its JSON object; the error says what is wrong with
 * it (the caller adds the file and the rule's number). */
static Rule *
parse_rule (JsonNode *e, GError **error)
{
  g_autoptr (GError) re_error = NULL;
  JsonObject *o;
  const gchar *pattern, *after, *reply, *say;
  Rule *r;

  if (!JSON_NODE_HOLDS_OBJECT (e)) {
    g_set_error (
        error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "not an object");
    return NULL;
  }
  o = json_node_get_object (e);
  pattern = json_object_get_string_member_with_default (o, "pattern", NULL);
  after = json_object_get_string_member_with_default (o, "after_tool", NULL);
  reply = json_object_get_string_member_with_default (o, "reply", NULL);
  say = json_object_get_string_member_with_default (o, "say", NULL);
  if (!pattern == !after) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "give exactly one of \"pattern\" (REGEX) and \"after_tool\" (NAME)");
    return NULL;
  }
  if (reply && say) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "\"say\" and \"reply\" are the same thing: give one");
    return NULL;
  }
  r = rule_new ();
  r->reply = g_strdup (reply ? reply : say);
  if (!parse_rule_calls (o, r, error))
    goto fail;
  if (after) {
    r->after_tool = g_strdup (after);
    if (!r->reply || r->calls->len) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "an after_tool rule needs a \"reply\" and makes no tool calls");
      goto fail;
    }
    return r;
  }
  if (!r->reply && r->calls->len == 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "a rule needs a \"reply\" (or \"say\"), a \"tool_call\" or "
        "\"tool_calls\"");
    goto fail;
  }
  r->regex =
      g_regex_new (pattern, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, &re_error);
  if (!r->regex) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "pattern: %s",
        re_error->message);
    goto fail;
  }
  return r;

fail:
  rule_free (r);
  return NULL;
}

/* Reads {"rules":[RULE...],"default":..} or a bare array of rules. */
static gboolean
load_rules (const gchar *path, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonNode *root;
  JsonArray *a = NULL;

  if (!json_parser_load_from_file (parser, path, error))
    return FALSE;
  root = json_parser_get_root (parser);
  if (JSON_NODE_HOLDS_ARRAY (root)) {
    a = json_node_get_array (root);
  } else if (JSON_NODE_HOLDS_OBJECT (root)) {
    JsonObject *o = json_node_get_object (root);
    JsonNode *n = json_object_get_member (o, "rules");
    if (n && JSON_NODE_HOLDS_ARRAY (n))
      a = json_node_get_array (n);
    default_reply = g_strdup (
        json_object_get_string_member_with_default (o, "default", NULL));
  }
  for (guint i = 0; a && i < json_array_get_length (a); i++) {
    g_autoptr (GError) why = NULL;
    Rule *r = parse_rule (json_array_get_element (a, i), &why);
    if (!r) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "%s: rule %u: %s (a rule is {\"pattern\": REGEX, \"reply\": TEXT}, "
          "with \"tool_call\" / \"tool_calls\" instead of or after the text, "
          "or {\"after_tool\": NAME, \"reply\": TEXT}; see docs/emulator.md)",
          path, i + 1, why->message);
      return FALSE;
    }
    g_ptr_array_add (rules, r);
  }
  return TRUE;
}

/* The built-in rules, after the file's. The tool rules serve the tools of
 * pipelines/agent.tools.json; a request that does not offer them gets the
 * text rules below them. */
static void
add_builtin_rules (void)
{
  static const gchar builtin[] =
      "["
      "{\"pattern\": \"\\\\border (?:number |no\\\\.? |#)?(\\\\d+)\","
      " \"tool_call\": {\"name\": \"get_order_status\","
      "  \"arguments\": {\"order_id\": \"\\\\1\"}}},"
      "{\"pattern\": \"\\\\b(bye|goodbye)\\\\b\","
      " \"say\": \"Goodbye, thanks for calling!\","
      " \"tool_call\": {\"name\": \"end_call\"}},"
      "{\"pattern\": \"\\\\b(?:transfer|put|connect) me (?:through )?to "
      "(?:the )?(billing|support|sales)\\\\b\","
      " \"say\": \"Let me transfer you.\","
      " \"tool_call\": {\"name\": \"transfer_call\","
      "  \"arguments\": {\"department\": \"\\\\1\"}}},"
      "{\"pattern\": \"\\\\b(?:hold on|(?:give me|just) a (?:moment|minute|"
      "second))\\\\b\","
      " \"say\": \"Sure, take your time.\", \"tool_call\": {\"name\": "
      "\"wait\"}},"
      "{\"pattern\": \"\\\\b(hello|hi|hey|good (morning|afternoon|evening))"
      "\\\\b\", \"reply\": \"Hello! How can I help you today?\"},"
      "{\"pattern\": \"\\\\bhow are you\\\\b\", \"reply\": \"I'm doing well, "
      "thank you for asking. How can I help you?\"},"
      "{\"pattern\": \"\\\\b(your name|who are you)\\\\b\", \"reply\": \"I am "
      "the voice agent emulator, a local stand-in for a language model.\"},"
      "{\"pattern\": \"\\\\bthank(s| you)\\\\b\", \"reply\": \"You're "
      "welcome! Is there anything else?\"},"
      /* Memory: answers from the conversation's history. */
      "{\"pattern\": \"\\\\bwhat did i (just )?(say|tell you)\\\\b\","
      " \"reply\": \"Earlier you said: {{previous}}\"},"
      "{\"after_tool\": \"get_order_status\","
      " \"reply\": \"Order {{tool.order_id}} is {{tool.status}}.\"},"
      "{\"after_tool\": \"end_call\", \"reply\": \"Goodbye!\"},"
      "{\"after_tool\": \"transfer_call\","
      " \"reply\": \"I am transferring you now.\"}"
      "]";
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonArray *a;

  if (!json_parser_load_from_data (parser, builtin, -1, NULL))
    g_error ("built-in LLM rules do not parse");
  a = json_node_get_array (json_parser_get_root (parser));
  for (guint i = 0; i < json_array_get_length (a); i++) {
    g_autoptr (GError) error = NULL;
    Rule *r = parse_rule (json_array_get_element (a, i), &error);
    if (!r)
      g_error ("built-in LLM rule %u: %s", i + 1, error->message);
    g_ptr_array_add (rules, r);
  }
}

/* Text of a message's content: a string, or the text parts of an array. */
static gchar *
content_text (JsonNode *content)
{
  GString *s;
  JsonArray *a;

  if (!content)
    return g_strdup ("");
  if (JSON_NODE_HOLDS_VALUE (content) &&
      json_node_get_value_type (content) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (content));
  if (!JSON_NODE_HOLDS_ARRAY (content))
    return g_strdup ("");
  s = g_string_new (NULL);
  a = json_node_get_array (content);
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *p = json_array_get_element (a, i);
    const gchar *t;
    if (!JSON_NODE_HOLDS_OBJECT (p))
      continue;
    t = json_object_get_string_member_with_default (
        json_node_get_object (p), "text", NULL);
    if (t) {
      if (s->len)
        g_string_append_c (s, ' ');
      g_string_append (s, t);
    }
  }
  return g_string_free (s, FALSE);
}

/* @reply with {{user}} and {{previous}} replaced. */
static gchar *
fill_reply (const gchar *reply, const gchar *user, const gchar *previous)
{
  g_auto (GStrv) parts = g_strsplit (reply, "{{previous}}", -1);
  g_autofree gchar *with_previous = g_strjoinv (previous, parts);
  g_auto (GStrv) user_parts = g_strsplit (with_previous, "{{user}}", -1);

  return g_strjoinv (user, user_parts);
}

/* Reads the request's `tools`, `tool_choice` and `parallel_tool_calls`. */
static void
tool_offer_init (ToolOffer *offer, JsonObject *o)
{
  JsonNode *tools = json_object_get_member (o, "tools");
  JsonNode *choice = json_object_get_member (o, "tool_choice");
  const gchar *only = NULL;
  JsonArray *a;

  offer->names = NULL;
  offer->parallel = json_object_get_boolean_member_with_default (
      o, "parallel_tool_calls", TRUE);
  if (!tools || !JSON_NODE_HOLDS_ARRAY (tools))
    return;
  if (choice && JSON_NODE_HOLDS_VALUE (choice) &&
      g_strcmp0 (json_node_get_string (choice), "none") == 0)
    return;
  /* {"type":"function","function":{"name":N}} forces one tool. */
  if (choice && JSON_NODE_HOLDS_OBJECT (choice)) {
    JsonNode *f =
        json_object_get_member (json_node_get_object (choice), "function");
    if (f && JSON_NODE_HOLDS_OBJECT (f))
      only = json_object_get_string_member_with_default (
          json_node_get_object (f), "name", NULL);
  }
  offer->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  a = json_node_get_array (tools);
  for (guint i = 0; i < json_array_get_length (a); i++) {
    JsonNode *t = json_array_get_element (a, i), *f;
    const gchar *name;
    if (!JSON_NODE_HOLDS_OBJECT (t))
      continue;
    f = json_object_get_member (json_node_get_object (t), "function");
    if (!f || !JSON_NODE_HOLDS_OBJECT (f))
      continue;
    name = json_object_get_string_member_with_default (
        json_node_get_object (f), "name", NULL);
    if (name && (!only || g_str_equal (name, only)))
      g_hash_table_add (offer->names, g_strdup (name));
  }
}

static void
tool_offer_clear (ToolOffer *offer)
{
  g_clear_pointer (&offer->names, g_hash_table_unref);
}

/* A copy of @node whose strings have \N (groups of @mi) and {{user}}
 * expanded. */
static JsonNode *
expand_node (JsonNode *node, const GMatchInfo *mi, const gchar *user)
{
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObject *in = json_node_get_object (node), *out = json_object_new ();
    JsonObjectIter iter; /* ordered: as written */
    const gchar *k;
    JsonNode *v;
    json_object_iter_init_ordered (&iter, in);
    while (json_object_iter_next_ordered (&iter, &k, &v))
      json_object_set_member (out, k, expand_node (v, mi, user));
    return json_node_init_object (json_node_alloc (), out);
  }
  if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *in = json_node_get_array (node), *out = json_array_new ();
    for (guint i = 0; i < json_array_get_length (in); i++)
      json_array_add_element (
          out, expand_node (json_array_get_element (in, i), mi, user));
    return json_node_init_array (json_node_alloc (), out);
  }
  if (JSON_NODE_HOLDS_VALUE (node) &&
      json_node_get_value_type (node) == G_TYPE_STRING) {
    g_autofree gchar *e =
        g_match_info_expand_references (mi, json_node_get_string (node), NULL);
    g_autofree gchar *f = fill_reply (e ? e : "", user, "");
    return json_node_init_string (json_node_alloc (), f);
  }
  return json_node_copy (node);
}

static gchar *
node_to_json (JsonNode *node)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();

  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

/* The calls of rule @r the request offers, expanded, into @a. */
static void
add_offered_calls (Answer *a, Rule *r, const GMatchInfo *mi, const gchar *user,
    const ToolOffer *offer)
{
  for (guint i = 0; i < r->calls->len; i++) {
    RuleCall *rc = g_ptr_array_index (r->calls, i);
    g_autoptr (JsonNode) args = NULL;
    AnswerCall *c;
    if (!offer->names || !g_hash_table_contains (offer->names, rc->name))
      continue;
    if (!offer->parallel && a->calls->len == 1)
      break;
    args = expand_node (rc->arguments, mi, user);
    c = g_new0 (AnswerCall, 1);
    c->name = g_strdup (rc->name);
    c->arguments = node_to_json (args);
    g_ptr_array_add (a->calls, c);
  }
}

/* The answer to @user (the last user message, may be empty); @previous is
 * the user message before it ("" when none). A rule whose tool calls are
 * not offered answers with its text alone, or not at all without one. */
static Answer *
respond (const gchar *user, const gchar *previous, const ToolOffer *offer)
{
  g_autofree gchar *trimmed = g_strstrip (g_strdup (user));

  for (guint i = 0; i < rules->len; i++) {
    Rule *r = g_ptr_array_index (rules, i);
    g_autoptr (GMatchInfo) mi = NULL;
    g_autoptr (Answer) a = NULL;
    if (!r->regex || !g_regex_match (r->regex, trimmed, 0, &mi))
      continue;
    a = answer_new (NULL);
    add_offered_calls (a, r, mi, trimmed, offer);
    if (r->reply) {
      g_autofree gchar *expanded =
          g_match_info_expand_references (mi, r->reply, NULL);
      a->text = fill_reply (expanded ? expanded : r->reply, trimmed, previous);
    }
    if (a->text || a->calls->len)
      return g_steal_pointer (&a);
  }
  if (default_reply)
    return answer_new (fill_reply (default_reply, trimmed, previous));
  if (!*trimmed)
    return answer_new (g_strdup ("Hello! How can I help you today?"));
  return answer_new (g_strdup_printf ("You said: %s. What else would you "
                                      "like to talk about?",
      trimmed));
}

/* ---------- answering a tool's result ---------- */

/* @node as words for a spoken answer: members as "key value", joined with
 * commas, underscores in keys as spaces. */
static void
append_words (GString *s, JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT (node)) {
    JsonObjectIter iter; /* ordered: as written */
    const gchar *k;
    JsonNode *v;
    gboolean first = TRUE;
    json_object_iter_init_ordered (&iter, json_node_get_object (node));
    while (json_object_iter_next_ordered (&iter, &k, &v)) {
      g_autofree gchar *key = g_strdelimit (g_strdup (k), "_", ' ');
      g_string_append_printf (s, "%s%s ", first ? "" : ", ", key);
      append_words (s, v);
      first = FALSE;
    }
  } else if (JSON_NODE_HOLDS_ARRAY (node)) {
    JsonArray *a = json_node_get_array (node);
    for (guint i = 0; i < json_array_get_length (a); i++) {
      if (i)
        g_string_append (s, ", ");
      append_words (s, json_array_get_element (a, i));
    }
  } else if (JSON_NODE_HOLDS_NULL (node)) {
    g_string_append (s, "none");
  } else if (json_node_get_value_type (node) == G_TYPE_STRING) {
    g_string_append (s, json_node_get_string (node));
  } else if (json_node_get_value_type (node) == G_TYPE_BOOLEAN) {
    g_string_append (s, json_node_get_boolean (node) ? "yes" : "no");
  } else {
    g_autofree gchar *j = node_to_json (node);
    g_string_append (s, j);
  }
}

/* The member at dotted @path of @node (an object), or NULL. */
static JsonNode *
lookup_path (JsonNode *node, const gchar *path)
{
  g_auto (GStrv) keys = g_strsplit (path, ".", -1);

  for (guint i = 0; keys[i] && node; i++) {
    if (!JSON_NODE_HOLDS_OBJECT (node))
      return NULL;
    node = json_object_get_member (json_node_get_object (node), keys[i]);
  }
  return node;
}

/* @reply with each {{tool.KEY}} replaced by KEY of @result, else of the
 * call's @arguments (either may be NULL). Returns NULL when a KEY is in
 * neither: the rule does not fit this result. */
static gchar *
fill_tool_reply (const gchar *reply, JsonNode *result, JsonNode *arguments)
{
  GString *s = g_string_new (NULL);
  const gchar *p = reply, *open;

  while ((open = strstr (p, "{{tool."))) {
    const gchar *close = strstr (open, "}}");
    g_autofree gchar *key = NULL;
    JsonNode *v = NULL;
    if (!close)
      break;
    g_string_append_len (s, p, open - p);
    key = g_strndup (open + 7, close - open - 7);
    if (result)
      v = lookup_path (result, key);
    if (!v && arguments)
      v = lookup_path (arguments, key);
    if (!v) {
      g_string_free (s, TRUE);
      return NULL;
    }
    append_words (s, v);
    p = close + 2;
  }
  g_string_append (s, p);
  return g_string_free (s, FALSE);
}

/* The spoken answer to one tool result (@content, the tool message's
 * text) of tool @name (NULL when unknown) called with @arguments_json. */
static gchar *
answer_tool_result (
    const gchar *name, const gchar *arguments_json, const gchar *content)
{
  g_autoptr (JsonParser) rp = json_parser_new ();
  g_autoptr (JsonParser) ap = json_parser_new ();
  JsonNode *result = NULL, *arguments = NULL;
  GString *s;

  if (json_parser_load_from_data (rp, content, -1, NULL))
    result = json_parser_get_root (rp);
  if (arguments_json &&
      json_parser_load_from_data (ap, arguments_json, -1, NULL))
    arguments = json_parser_get_root (ap);
  for (guint i = 0; i < rules->len; i++) {
    Rule *r = g_ptr_array_index (rules, i);
    gchar *text;
    if (!r->after_tool ||
        !(g_str_equal (r->after_tool, "*") ||
            g_strcmp0 (r->after_tool, name) == 0))
      continue;
    if ((text = fill_tool_reply (r->reply, result, arguments)))
      return text;
  }
  if (!result)
    return g_strdup_printf ("The result is: %s.", content);
  if (JSON_NODE_HOLDS_OBJECT (result) &&
      json_object_has_member (json_node_get_object (result), "error")) {
    s = g_string_new ("Sorry, that did not work: ");
    append_words (
        s, json_object_get_member (json_node_get_object (result), "error"));
  } else {
    s = g_string_new ("The result is: ");
    append_words (s, result);
  }
  g_string_append_c (s, '.');
  return g_string_free (s, FALSE);
}

/* The call of @id in the assistant messages of @messages: its function's
 * name and arguments (transfer none), or FALSE. */
static gboolean
find_call (JsonArray *messages, const gchar *id, const gchar **name,
    const gchar **arguments)
{
  for (guint i = 0; id && i < json_array_get_length (messages); i++) {
    JsonObject *m = json_array_get_object_element (messages, i);
    JsonNode *calls = json_object_get_member (m, "tool_calls");
    JsonArray *a;
    if (!calls || !JSON_NODE_HOLDS_ARRAY (calls))
      continue;
    a = json_node_get_array (calls);
    for (guint j = 0; j < json_array_get_length (a); j++) {
      JsonNode *c = json_array_get_element (a, j), *f;
      JsonObject *co;
      if (!JSON_NODE_HOLDS_OBJECT (c))
        continue;
      co = json_node_get_object (c);
      f = json_object_get_member (co, "function");
      if (g_strcmp0 (
              json_object_get_string_member_with_default (co, "id", NULL),
              id) != 0 ||
          !f || !JSON_NODE_HOLDS_OBJECT (f))
        continue;
      *name = json_object_get_string_member_with_default (
          json_node_get_object (f), "name", NULL);
      *arguments = json_object_get_string_member_with_default (
          json_node_get_object (f), "arguments", NULL);
      return TRUE;
    }
  }
  return FALSE;
}

/* When the conversation ends in `tool` messages (a round's results), the
 * answer speaks them, in order; NULL otherwise. */
static Answer *
respond_to_tools (JsonArray *messages)
{
  guint n = json_array_get_length (messages), first = n;
  GString *s;

  while (first > 0 &&
      g_strcmp0 (json_object_get_string_member_with_default (
                     json_array_get_object_element (messages, first - 1),
                     "role", NULL),
          "tool") == 0)
    first--;
  if (first == n)
    return NULL;
  s = g_string_new (NULL);
  for (guint i = first; i < n; i++) {
    JsonObject *m = json_array_get_object_element (messages, i);
    g_autofree gchar *content =
        content_text (json_object_get_member (m, "content"));
    g_autofree gchar *text = NULL;
    const gchar *name = NULL, *arguments = NULL;
    find_call (messages,
        json_object_get_string_member_with_default (m, "tool_call_id", NULL),
        &name, &arguments);
    text = answer_tool_result (name, arguments, content);
    if (s->len)
      g_string_append_c (s, ' ');
    g_string_append (s, text);
  }
  return answer_new (g_string_free (s, FALSE));
}

/* Splits @text into tokens the way a tokenizer roughly would: each word
 * with its leading space, punctuation on its own. */
static GPtrArray *
tokenize (const gchar *text)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const gchar *p = text;

  while (*p) {
    const gchar *start = p;
    while (*p == ' ')
      p++;
    if (g_unichar_isalnum (g_utf8_get_char (p)) || *p == '\'') {
      while (*p && (g_unichar_isalnum (g_utf8_get_char (p)) || *p == '\''))
        p = g_utf8_next_char (p);
    } else if (*p) {
      p = g_utf8_next_char (p);
    }
    g_ptr_array_add (out, g_strndup (start, p - start));
  }
  return out;
}

/* ---------- chunks ---------- */

static void
chunk_head (GString *b, Reply *r)
{
  g_string_append (b, "{\"id\":");
  emu_append_json_string (b, r->id);
  g_string_append (b, ",\"object\":\"chat.completion.chunk\",");
  g_string_append_printf (
      b, "\"created\":%" G_GINT64_FORMAT ",\"model\":", r->created);
  emu_append_json_string (b, r->model);
  g_string_append (b,
      ",\"service_tier\":\"default\",\"system_fingerprint\":"
      "\"" FINGERPRINT "\",\"choices\":[");
}

static void
add_chunk (Reply *r, const gchar *delta_json, const gchar *finish)
{
  GString *b = g_string_new ("data: ");

  chunk_head (b, r);
  g_string_append (b, "{\"index\":0,\"delta\":");
  g_string_append (b, delta_json);
  g_string_append (b, ",\"logprobs\":null,\"finish_reason\":");
  if (finish)
    emu_append_json_string (b, finish);
  else
    g_string_append (b, "null");
  g_string_append (b, "}]");
  if (r->include_usage)
    g_string_append (b, ",\"usage\":null");
  g_string_append (b, "}\n\n");
  g_ptr_array_add (r->events, g_string_free (b, FALSE));
}

static void
append_usage (GString *b, guint prompt, guint completion)
{
  g_string_append_printf (b,
      "{\"prompt_tokens\":%u,\"completion_tokens\":%u,"
      "\"total_tokens\":%u,\"prompt_tokens_details\":{\"cached_tokens\":0,"
      "\"audio_tokens\":0},\"completion_tokens_details\":"
      "{\"reasoning_tokens\":0,\"audio_tokens\":0,"
      "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
      prompt, completion, prompt + completion);
}

/* ---------- sending ---------- */

static void
clear_source (guint *id)
{
  if (*id) {
    g_source_remove (*id);
    *id = 0;
  }
}

static void
reply_stop_watch (Reply *r)
{
  if (r->hup_source) {
    g_source_destroy (r->hup_source);
    g_clear_pointer (&r->hup_source, g_source_unref);
  }
}

static void
reply_free (Reply *r)
{
  clear_source (&r->timer_id);
  clear_source (&r->close_timer_id);
  reply_stop_watch (r);
  if (r->finished_handler)
    g_signal_handler_disconnect (r->msg, r->finished_handler);
  g_object_unref (r->msg);
  g_ptr_array_unref (r->events);
  emu_fault_clear (&r->fault);
  g_free (r->client);
  g_free (r->id);
  g_free (r->model);
  replies = g_list_remove (replies, r);
  g_free (r);
}

/* Records the connection's "connection" event, once. */
static void
reply_log (Reply *r, const gchar *outcome)
{
  if (r->logged)
    return;
  r->logged = TRUE;
  emu_log_connection ("llm", r->client, r->started_us, outcome);
}

static void
finished_cb (SoupServerMessage *msg, gpointer data)
{
  Reply *r = data;
  const gchar *outcome = r->aborted ? "client aborted"
      : r->done                     ? "ok"
                                    : "interrupted";

  if (!r->done && !r->aborted) {
    g_autofree gchar *d = g_strdup_printf (
        "%s after %u of %u chunks", r->id, r->next, r->events->len);
    emu_record_event ("llm", "llm-aborted", d);
  }
  reply_log (r, outcome);
  reply_free (r);
}

/* Ends the response now: the body is completed so libsoup finishes the
 * message (the client sees whatever was written before).
 *
 * A complete answer is recorded here, before its last bytes go out, not at
 * "finished": libsoup closes a chunked body (the final 0-length chunk) with
 * g_output_stream_close_async(), which writes from a worker thread and
 * emits "finished" only main-loop turns later. By then the client can have
 * read the whole answer and sent its next request; a POST /emulator/reset
 * served in between left this connection's event to land after the reset,
 * counted as the next test's (control-faults' connection-events saw 2). */
static void
reply_end (Reply *r)
{
  clear_source (&r->timer_id);
  clear_source (&r->close_timer_id);
  reply_stop_watch (r);
  r->done = TRUE;
  if (!r->aborted)
    reply_log (r, "ok");
  soup_message_body_complete (soup_server_message_get_response_body (r->msg));
  soup_server_message_unpause (r->msg);
}

/* Cuts the TCP connection under a streaming response (close faults). */
static void
reply_cut (Reply *r, const gchar *why)
{
  GSocket *sock = soup_server_message_get_socket (r->msg);

  emu_record_event ("llm", "fault-cut", why);
  if (sock)
    g_socket_shutdown (sock, TRUE, TRUE, NULL);
  r->aborted = TRUE; /* not the client's doing, but not "ok" */
  reply_end (r);
}

static gboolean
close_timer_cb (gpointer data)
{
  Reply *r = data;

  r->close_timer_id = 0;
  reply_cut (r, "close after ms");
  return G_SOURCE_REMOVE;
}

static gboolean
timer_cb (gpointer data)
{
  Reply *r = data;

  r->timer_id = 0;
  reply_send_next (r);
  return G_SOURCE_REMOVE;
}

/* The client closed its end: the socket is readable with nothing to read. */
static gboolean
hup_cb (GSocket *sock, GIOCondition cond, gpointer data)
{
  Reply *r = data;
  gchar c;
  gssize n = recv (g_socket_get_fd (sock), &c, 1, MSG_PEEK | MSG_DONTWAIT);

  if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
    /* A pipelined request, not a close: stop watching. */
    g_clear_pointer (&r->hup_source, g_source_unref);
    return G_SOURCE_REMOVE;
  }
  {
    g_autofree gchar *d = g_strdup_printf (
        "%s after %u of %u chunks", r->id, r->next, r->events->len);
    emu_record_event ("llm", "llm-aborted", d);
  }
  r->aborted = TRUE;
  g_clear_pointer (&r->hup_source, g_source_unref);
  clear_source (&r->timer_id);
  clear_source (&r->close_timer_id);
  g_socket_shutdown (sock, TRUE, TRUE, NULL);
  r->done = TRUE;
  soup_message_body_complete (soup_server_message_get_response_body (r->msg));
  soup_server_message_unpause (r->msg);
  return G_SOURCE_REMOVE;
}

static void
reply_send_next (Reply *r)
{
  SoupMessageBody *body = soup_server_message_get_response_body (r->msg);

  if (r->done)
    return;
  if (!r->stream) {
    /* The whole answer at once, after the generation time. */
    const gchar *json = g_ptr_array_index (r->events, 0);
    soup_message_body_append (body, SOUP_MEMORY_COPY, json, strlen (json));
    r->next = 1;
    reply_end (r);
    return;
  }

  if (r->next == 1 && r->fault.malformed_frame) {
    static const gchar bad[] =
        "data: {\"id\":\"chatcmpl-broken\",\"object\":"
        "\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\n\n";
    emu_record_event ("llm", "malformed-sent", r->id);
    soup_message_body_append (body, SOUP_MEMORY_STATIC, bad, strlen (bad));
  }
  if (r->next < r->events->len) {
    const gchar *ev = g_ptr_array_index (r->events, r->next);
    soup_message_body_append (body, SOUP_MEMORY_COPY, ev, strlen (ev));
    r->next++;
    soup_server_message_unpause (r->msg);
  }
  if (r->fault.close_after_messages >= 0 &&
      r->next >= (guint)r->fault.close_after_messages) {
    reply_cut (r, "close after messages");
    return;
  }
  if (r->next >= r->events->len) {
    reply_end (r);
    return;
  }
  if (r->interval_ms)
    r->timer_id = g_timeout_add (r->interval_ms, timer_cb, r);
  else
    r->timer_id = g_idle_add (timer_cb, r);
}

/* ---------- handlers ---------- */

static void
handle_models (SoupServerMessage *msg, const gchar *path)
{
  static const gchar *ids[] = { DEFAULT_MODEL, "gpt-4o", "gpt-4.1-mini" };
  GString *b;

  if (!check_key (msg)) {
    log_refused (msg);
    return;
  }
  if (g_str_has_prefix (path, "/v1/models/")) {
    const gchar *id = path + strlen ("/v1/models/");
    b = g_string_new ("{\"id\":");
    emu_append_json_string (b, id);
    g_string_append (b,
        ",\"object\":\"model\",\"created\":1715367049,"
        "\"owned_by\":\"system\"}");
  } else {
    b = g_string_new ("{\"object\":\"list\",\"data\":[");
    for (guint i = 0; i < G_N_ELEMENTS (ids); i++) {
      g_string_append (b, i ? ",{\"id\":" : "{\"id\":");
      emu_append_json_string (b, ids[i]);
      g_string_append (b,
          ",\"object\":\"model\",\"created\":1715367049,"
          "\"owned_by\":\"system\"}");
    }
    g_string_append (b, "]}");
  }
  emu_send_json_error (msg, SOUP_STATUS_OK, b->str);
  g_string_free (b, TRUE);
  {
    g_autofree gchar *client = emu_client_address (msg);
    emu_log_connection ("llm", client, g_get_monotonic_time (), "ok");
  }
}

/* Splits @json (a call's arguments) into fragments at odd places, as a
 * model's tokens fall: mid-key and mid-word, but never inside an escape
 * sequence or a UTF-8 character. The sizes cycle, so a stream is the same
 * every time. */
static GPtrArray *
split_arguments (const gchar *json)
{
  static const guint sizes[] = { 4, 9, 3, 6, 2, 7, 5 };
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const gchar *p = json;

  for (guint k = 0; *p; k++) {
    const gchar *q = p;
    while (*q && (gsize)(q - p) < sizes[k % G_N_ELEMENTS (sizes)]) {
      if (q[0] == '\\' && q[1] == 'u')
        q += MIN (6, strlen (q));
      else if (q[0] == '\\' && q[1])
        q += 2;
      else
        q = g_utf8_next_char (q);
    }
    g_ptr_array_add (out, g_strndup (p, q - p));
    p = q;
  }
  return out;
}

/* The first delta of call @index: OpenAI gives index, id, type and the
 * whole name with empty arguments; vLLM id, type, index and the name. */
static void
append_call_head (GString *d, guint index, const AnswerCall *c)
{
  g_autofree gchar *id =
      vllm_tools ? random_id ("chatcmpl-tool-", 32) : random_id ("call_", 24);

  if (vllm_tools) {
    g_string_append (d, "[{\"id\":");
    emu_append_json_string (d, id);
    g_string_append_printf (d,
        ",\"type\":\"function\",\"index\":%u,\"function\":{\"name\":", index);
    emu_append_json_string (d, c->name);
    g_string_append (d, "}}]");
    return;
  }
  g_string_append_printf (d, "[{\"index\":%u,\"id\":", index);
  emu_append_json_string (d, id);
  g_string_append (d, ",\"type\":\"function\",\"function\":{\"name\":");
  emu_append_json_string (d, c->name);
  g_string_append (d, ",\"arguments\":\"\"}}]");
}

/* Adds the chunks of call @index: its head (with the role when it opens
 * the answer), then its argument fragments. Returns the chunks added. */
static guint
add_call_chunks (Reply *r, guint index, const AnswerCall *c, gboolean opens)
{
  g_autoptr (GPtrArray) frags = split_arguments (c->arguments);
  GString *d = g_string_new (NULL);

  if (opens && vllm_tools)
    add_chunk (r, "{\"role\":\"assistant\",\"content\":\"\"}", NULL);
  g_string_append (d,
      opens && !vllm_tools ? "{\"role\":\"assistant\",\"content\":null,"
                             "\"tool_calls\":"
                           : "{\"tool_calls\":");
  append_call_head (d, index, c);
  g_string_append (d, opens && !vllm_tools ? ",\"refusal\":null}" : "}");
  add_chunk (r, d->str, NULL);
  for (guint i = 0; i < frags->len; i++) {
    g_string_assign (d, "{\"tool_calls\":[{");
    if (vllm_tools)
      g_string_append_printf (d,
          "\"id\":\"\",\"type\":\"function\",\"index\":%u,\"function\":{"
          "\"arguments\":",
          index);
    else
      g_string_append_printf (
          d, "\"index\":%u,\"function\":{\"arguments\":", index);
    emu_append_json_string (d, g_ptr_array_index (frags, i));
    g_string_append (d, "}}]}");
    add_chunk (r, d->str, NULL);
  }
  g_string_free (d, TRUE);
  return 1 + frags->len;
}

/* The one JSON body of a plain (not streamed) answer. */
static gchar *
plain_body (Reply *r, const gchar *text, GPtrArray *calls, guint n_calls,
    const gchar *finish, guint prompt_tokens, guint completion_tokens)
{
  GString *b = g_string_new ("{\"id\":");

  emu_append_json_string (b, r->id);
  g_string_append_printf (b,
      ",\"object\":\"chat.completion\",\"created\":"
      "%" G_GINT64_FORMAT ",\"model\":",
      r->created);
  emu_append_json_string (b, r->model);
  g_string_append (b,
      ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
      "\"assistant\",\"content\":");
  if (text)
    emu_append_json_string (b, text);
  else
    g_string_append (b, "null");
  if (n_calls) {
    g_string_append (b, ",\"tool_calls\":[");
    for (guint i = 0; i < n_calls; i++) {
      AnswerCall *c = g_ptr_array_index (calls, i);
      g_autofree gchar *id = random_id ("call_", 24);
      g_string_append (b, i ? ",{\"id\":" : "{\"id\":");
      emu_append_json_string (b, id);
      g_string_append (b, ",\"type\":\"function\",\"function\":{\"name\":");
      emu_append_json_string (b, c->name);
      g_string_append (b, ",\"arguments\":");
      emu_append_json_string (b, c->arguments);
      g_string_append (b, "}}");
    }
    g_string_append_c (b, ']');
  }
  g_string_append (b,
      ",\"refusal\":null,\"annotations\":[]},"
      "\"logprobs\":null,\"finish_reason\":");
  emu_append_json_string (b, finish);
  g_string_append (b, "}],\"usage\":");
  append_usage (b, prompt_tokens, completion_tokens);
  g_string_append (b,
      ",\"service_tier\":\"default\",\"system_fingerprint\":"
      "\"" FINGERPRINT "\"}");
  return g_string_free (b, FALSE);
}

/* Builds every event of a streamed answer, or the one JSON body of a plain
 * one, into @r->events: text tokens, then the tool calls. max_tokens cuts
 * the text (finish_reason "length", no calls then); calls are not cut. */
static void
build_answer (Reply *r, const Answer *a, guint prompt_tokens, gint64 max_tokens)
{
  g_autoptr (GPtrArray) tokens = tokenize (a->text ? a->text : "");
  const gchar *finish = a->calls->len ? "tool_calls" : "stop";
  gboolean cut = max_tokens > 0 && tokens->len > max_tokens;
  guint n = cut ? (guint)max_tokens : tokens->len,
        n_calls = cut ? 0 : a->calls->len;

  if (cut)
    finish = "length";
  r->n_tokens = n;

  if (!r->stream) {
    GString *text = g_string_new (NULL);
    for (guint i = 0; i < n; i++)
      g_string_append (text, g_ptr_array_index (tokens, i));
    for (guint i = 0; i < n_calls; i++) {
      AnswerCall *c = g_ptr_array_index (a->calls, i);
      g_autoptr (GPtrArray) frags = split_arguments (c->arguments);
      r->n_tokens += 1 + frags->len;
    }
    g_ptr_array_add (r->events,
        plain_body (r, a->text || !n_calls ? text->str : NULL, a->calls,
            n_calls, finish, prompt_tokens, r->n_tokens));
    g_string_free (text, TRUE);
    return;
  }

  if (a->text || !n_calls)
    add_chunk (
        r, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", NULL);
  for (guint i = 0; i < n; i++) {
    GString *d = g_string_new ("{\"content\":");
    emu_append_json_string (d, g_ptr_array_index (tokens, i));
    g_string_append_c (d, '}');
    add_chunk (r, d->str, NULL);
    g_string_free (d, TRUE);
  }
  for (guint i = 0; i < n_calls; i++)
    r->n_tokens += add_call_chunks (
        r, i, g_ptr_array_index (a->calls, i), i == 0 && !a->text);
  add_chunk (r, vllm_tools && n_calls ? "{\"content\":\"\"}" : "{}", finish);
  if (r->include_usage) {
    GString *b = g_string_new ("data: ");
    chunk_head (b, r);
    g_string_append (b, "],\"usage\":");
    append_usage (b, prompt_tokens, r->n_tokens);
    g_string_append (b, "}\n\n");
    g_ptr_array_add (r->events, g_string_free (b, FALSE));
  }
  g_ptr_array_add (r->events, g_strdup ("data: [DONE]\n\n"));
}

/* The responder's answer to a valid request: to the tool results that end
 * it, else to @user (NULL: none) with the tools @o offers. */
static Answer *
answer_request (JsonObject *o, JsonArray *messages, const gchar *user,
    const gchar *previous)
{
  Answer *a = respond_to_tools (messages);
  ToolOffer offer;

  if (a)
    return a;
  tool_offer_init (&offer, o);
  a = respond (user ? user : "", previous ? previous : "", &offer);
  tool_offer_clear (&offer);
  if (a->calls->len) {
    GString *names = g_string_new (NULL);
    for (guint i = 0; i < a->calls->len; i++) {
      AnswerCall *c = g_ptr_array_index (a->calls, i);
      g_string_append_printf (names, "%s%s", i ? "," : "", c->name);
    }
    emu_record_event ("llm", "tool-calls", names->str);
    g_string_free (names, TRUE);
  }
  return a;
}

static void
handle_completions (SoupServerMessage *msg)
{
  SoupMessageBody *req = soup_server_message_get_request_body (msg);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree gchar *user = NULL, *previous = NULL;
  g_autoptr (Answer) answer = NULL;
  EmuFault fault;
  JsonObject *o;
  JsonNode *messages, *model, *stream, *so;
  JsonArray *ma;
  guint prompt_chars = 0, tps;
  gint64 max_tokens;
  Reply *r;

  if (!check_key (msg)) {
    log_refused (msg);
    return;
  }
  emu_fault_for_connection ("llm", msg, &fault);
  if (fault.http_status) {
    send_fault_status (msg, &fault);
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }

  if (!req->data ||
      !json_parser_load_from_data (parser, req->data, req->length, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    send_error (msg, SOUP_STATUS_BAD_REQUEST,
        "We could not parse the JSON "
        "body of your request. (HINT: This likely means you aren't using "
        "your HTTP library correctly. The OpenAI API expects a JSON payload, "
        "but what was sent was not valid JSON.)",
        "invalid_request_error", NULL, NULL);
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  model = json_object_get_member (o, "model");
  messages = json_object_get_member (o, "messages");
  if (!model || !JSON_NODE_HOLDS_VALUE (model) ||
      json_node_get_value_type (model) != G_TYPE_STRING) {
    send_error (msg, SOUP_STATUS_BAD_REQUEST,
        "you must provide a model "
        "parameter",
        "invalid_request_error", NULL, NULL);
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  if (!messages || !JSON_NODE_HOLDS_ARRAY (messages) ||
      json_array_get_length (json_node_get_array (messages)) == 0) {
    send_error (msg, SOUP_STATUS_BAD_REQUEST,
        "Missing required parameter: "
        "'messages'.",
        "invalid_request_error", "messages", "missing_required_parameter");
    emu_fault_clear (&fault);
    log_refused (msg);
    return;
  }
  ma = json_node_get_array (messages);
  for (guint i = 0; i < json_array_get_length (ma); i++) {
    JsonNode *m = json_array_get_element (ma, i);
    JsonObject *mo;
    g_autofree gchar *t = NULL;
    if (!JSON_NODE_HOLDS_OBJECT (m)) {
      send_error (msg, SOUP_STATUS_BAD_REQUEST,
          "Invalid type for "
          "'messages': expected an array of objects.",
          "invalid_request_error", "messages", "invalid_type");
      emu_fault_clear (&fault);
      log_refused (msg);
      return;
    }
    mo = json_node_get_object (m);
    t = content_text (json_object_get_member (mo, "content"));
    prompt_chars += strlen (t) + 16;
    if (g_strcmp0 (
            json_object_get_string_member_with_default (mo, "role", NULL),
            "user") == 0) {
      g_free (previous);
      previous = user;
      user = g_steal_pointer (&t);
    }
  }

  r = g_new0 (Reply, 1);
  r->msg = g_object_ref (msg);
  r->client = emu_client_address (msg);
  r->started_us = g_get_monotonic_time ();
  r->id = random_id ("chatcmpl-", 29);
  r->model = g_strdup (json_node_get_string (model));
  r->created = g_get_real_time () / G_USEC_PER_SEC;
  stream = json_object_get_member (o, "stream");
  r->stream = stream && JSON_NODE_HOLDS_VALUE (stream) &&
      json_node_get_value_type (stream) == G_TYPE_BOOLEAN &&
      json_node_get_boolean (stream);
  so = json_object_get_member (o, "stream_options");
  if (r->stream && so && JSON_NODE_HOLDS_OBJECT (so))
    r->include_usage = json_object_get_boolean_member_with_default (
        json_node_get_object (so), "include_usage", FALSE);
  max_tokens =
      json_object_get_int_member_with_default (o, "max_completion_tokens",
          json_object_get_int_member_with_default (o, "max_tokens", 0));
  r->fault = fault;
  r->events = g_ptr_array_new_with_free_func (g_free);
  replies = g_list_prepend (replies, r);
  emu_record_event ("llm", "request", user ? user : "");

  if (r->stream && replay_events) {
    for (guint i = 0; i < replay_events->len; i++)
      g_ptr_array_add (
          r->events, g_strdup (g_ptr_array_index (replay_events, i)));
  } else {
    answer = answer_request (o, ma, user, previous);
    build_answer (r, answer, prompt_chars / 4, max_tokens);
  }

  tps = r->fault.slow_tokens_per_s ? r->fault.slow_tokens_per_s
                                   : config->latency.llm_tokens_per_s;
  r->interval_ms = tps ? 1000 / tps : 0;
  r->first_delay_ms = config->latency.llm_first_token_ms;
  /* A plain answer takes the time the tokens would have taken. */
  if (!r->stream)
    r->first_delay_ms += r->interval_ms * r->n_tokens;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  {
    SoupMessageHeaders *h = soup_server_message_get_response_headers (msg);
    g_autofree gchar *rid = g_uuid_string_random ();
    soup_message_headers_replace (h, "x-request-id", rid);
    soup_message_headers_replace (h, "openai-version", "2020-10-01");
    if (r->stream) {
      soup_message_headers_set_content_type (h, "text/event-stream", NULL);
      soup_message_headers_replace (h, "Cache-Control", "no-cache");
      soup_message_headers_set_encoding (h, SOUP_ENCODING_CHUNKED);
    } else {
      soup_message_headers_set_content_type (h, "application/json", NULL);
    }
  }
  r->finished_handler =
      g_signal_connect (msg, "finished", G_CALLBACK (finished_cb), r);
  soup_server_message_pause (msg);

  if (r->fault.stall) {
    emu_record_event ("llm", "stalled", r->id);
    return;
  }
  if (r->stream) {
    GSocket *sock = soup_server_message_get_socket (msg);
    if (sock) {
      r->hup_source =
          g_socket_create_source (sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (
          r->hup_source, (GSourceFunc)(void (*) (void))hup_cb, r, NULL);
      g_source_attach (r->hup_source, NULL);
    }
    if (r->fault.close_after_ms >= 0)
      r->close_timer_id =
          g_timeout_add (r->fault.close_after_ms, close_timer_cb, r);
  }
  if (r->first_delay_ms)
    r->timer_id = g_timeout_add (r->first_delay_ms, timer_cb, r);
  else
    reply_send_next (r);
}

static void
completions_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  const gchar *method = soup_server_message_get_method (msg);

  if (!g_str_equal (path, "/v1/chat/completions")) {
    send_error (msg, SOUP_STATUS_NOT_FOUND, "Invalid URL",
        "invalid_request_"
        "error",
        NULL, NULL);
    return;
  }
  if (!g_str_equal (method, "POST")) {
    send_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "Method not allowed: use "
        "POST.",
        "invalid_request_error", NULL, NULL);
    return;
  }
  handle_completions (msg);
}

static void
models_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  if (!g_str_equal (soup_server_message_get_method (msg), "GET")) {
    send_error (msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
        "Method not allowed: use "
        "GET.",
        "invalid_request_error", NULL, NULL);
    return;
  }
  handle_models (msg, path);
}

/* ---------- registration ---------- */

/* Splits a recorded SSE body into its events, each kept verbatim with its
 * terminating blank line. */
static GPtrArray *
split_events (const gchar *body)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  const gchar *p = body;

  while (*p) {
    const gchar *end = strstr (p, "\n\n");
    const gchar *crlf = strstr (p, "\r\n\r\n");
    gsize len;
    if (crlf && (!end || crlf < end))
      len = crlf - p + 4;
    else if (end)
      len = end - p + 2;
    else
      len = strlen (p);
    g_ptr_array_add (out, g_strndup (p, len));
    p += len;
  }
  return out;
}

static void
shutdown_cb (gpointer data)
{
  while (replies)
    reply_free (replies->data);
  g_clear_pointer (&rules, g_ptr_array_unref);
  g_clear_pointer (&replay_events, g_ptr_array_unref);
  g_clear_pointer (&default_reply, g_free);
}

void
emu_openai_register (SoupServer *server, EmuConfig *cfg)
{
  g_autoptr (GError) error = NULL;

  config = cfg;
  rules = g_ptr_array_new_with_free_func ((GDestroyNotify)rule_free);
  if (cfg->llm_rules && !load_rules (cfg->llm_rules, &error)) {
    g_printerr ("voiceagent-emulator: --llm-rules: %s\n", error->message);
    exit (1);
  }
  add_builtin_rules ();
  vllm_tools = g_strcmp0 (cfg->llm_tool_format, "vllm") == 0;
  if (cfg->llm_replay) {
    g_autofree gchar *body = NULL;
    if (!g_file_get_contents (cfg->llm_replay, &body, NULL, &error)) {
      g_printerr ("voiceagent-emulator: --llm-replay: %s\n", error->message);
      exit (1);
    }
    replay_events = split_events (body);
  }
  soup_server_add_handler (
      server, "/v1/chat/completions", completions_cb, NULL, NULL);
  soup_server_add_handler (server, "/v1/models", models_cb, NULL, NULL);
  emu_at_shutdown (shutdown_cb, NULL);
}

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

typedef struct
{
  GRegex *regex;
  gchar *reply;
} Rule;

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
rule_free (Rule *r)
{
  g_regex_unref (r->regex);
  g_free (r->reply);
  g_free (r);
}

static gboolean
add_rule (const gchar *pattern, const gchar *reply, GError **error)
{
  GRegex *re =
      g_regex_new (pattern, G_REGEX_CASELESS | G_REGEX_OPTIMIZE, 0, error);
  Rule *r;

  if (!re)
    return FALSE;
  r = g_new0 (Rule, 1);
  r->regex = re;
  r->reply = g_strdup (reply);
  g_ptr_array_add (rules, r);
  return TRUE;
}

/* Reads {"rules":[{"pattern":..,"reply":..}],"default":..} or a bare array
 * of rules. */
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
    JsonNode *e = json_array_get_element (a, i);
    const gchar *pattern, *reply;
    if (!JSON_NODE_HOLDS_OBJECT (e))
      goto bad;
    pattern = json_object_get_string_member_with_default (
        json_node_get_object (e), "pattern", NULL);
    reply = json_object_get_string_member_with_default (
        json_node_get_object (e), "reply", NULL);
    if (!pattern || !reply)
      goto bad;
    if (!add_rule (pattern, reply, error))
      return FALSE;
  }
  return TRUE;

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "%s: each rule is {\"pattern\": REGEX, \"reply\": TEXT}", path);
  return FALSE;
}

static void
add_builtin_rules (void)
{
  static const gchar *builtin[][2] = {
    { "\\b(hello|hi|hey|good (morning|afternoon|evening))\\b",
        "Hello! How can I help you today?" },
    { "\\bhow are you\\b",
        "I'm doing well, thank you for asking. How can I help you?" },
    { "\\b(your name|who are you)\\b",
        "I am the voice agent emulator, a local stand-in for a language "
        "model." },
    { "\\bthank(s| you)\\b", "You're welcome! Is there anything else?" },
    { "\\b(bye|goodbye)\\b", "Goodbye! Have a nice day." },
    /* Memory: answers from the conversation's history. */
    { "\\bwhat did i (just )?(say|tell you)\\b",
        "Earlier you said: {{previous}}" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (builtin); i++)
    add_rule (builtin[i][0], builtin[i][1], NULL);
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

/* The reply to @user (the last user message, may be empty); @previous is
 * the user message before it ("" when none). */
static gchar *
respond (const gchar *user, const gchar *previous)
{
  g_autofree gchar *trimmed = g_strstrip (g_strdup (user));

  for (guint i = 0; i < rules->len; i++) {
    Rule *r = g_ptr_array_index (rules, i);
    g_autoptr (GMatchInfo) mi = NULL;
    if (g_regex_match (r->regex, trimmed, 0, &mi)) {
      g_autofree gchar *expanded =
          g_match_info_expand_references (mi, r->reply, NULL);
      return fill_reply (expanded ? expanded : r->reply, trimmed, previous);
    }
  }
  if (default_reply)
    return fill_reply (default_reply, trimmed, previous);
  if (!*trimmed)
    return g_strdup ("Hello! How can I help you today?");
  return g_strdup_printf ("You said: %s. What else would you like to talk "
                          "about?",
      trimmed);
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

/* Builds every event of a streamed answer, or the one JSON body of a plain
 * one, into @r->events. */
static void
build_answer (
    Reply *r, const gchar *answer, guint prompt_tokens, gint64 max_tokens)
{
  g_autoptr (GPtrArray) tokens = tokenize (answer);
  const gchar *finish = "stop";
  guint n = tokens->len;
  GString *text;

  if (max_tokens > 0 && n > max_tokens) {
    n = max_tokens;
    finish = "length";
  }
  r->n_tokens = n;

  if (!r->stream) {
    GString *b = g_string_new ("{\"id\":");
    text = g_string_new (NULL);
    for (guint i = 0; i < n; i++)
      g_string_append (text, g_ptr_array_index (tokens, i));
    emu_append_json_string (b, r->id);
    g_string_append_printf (b,
        ",\"object\":\"chat.completion\",\"created\":"
        "%" G_GINT64_FORMAT ",\"model\":",
        r->created);
    emu_append_json_string (b, r->model);
    g_string_append (b,
        ",\"choices\":[{\"index\":0,\"message\":{\"role\":"
        "\"assistant\",\"content\":");
    emu_append_json_string (b, text->str);
    g_string_append (b,
        ",\"refusal\":null,\"annotations\":[]},"
        "\"logprobs\":null,\"finish_reason\":");
    emu_append_json_string (b, finish);
    g_string_append (b, "}],\"usage\":");
    append_usage (b, prompt_tokens, n);
    g_string_append (b,
        ",\"service_tier\":\"default\",\"system_fingerprint\":"
        "\"" FINGERPRINT "\"}");
    g_ptr_array_add (r->events, g_string_free (b, FALSE));
    g_string_free (text, TRUE);
    return;
  }

  add_chunk (
      r, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}", NULL);
  for (guint i = 0; i < n; i++) {
    GString *d = g_string_new ("{\"content\":");
    emu_append_json_string (d, g_ptr_array_index (tokens, i));
    g_string_append_c (d, '}');
    add_chunk (r, d->str, NULL);
    g_string_free (d, TRUE);
  }
  add_chunk (r, "{}", finish);
  if (r->include_usage) {
    GString *b = g_string_new ("data: ");
    chunk_head (b, r);
    g_string_append (b, "],\"usage\":");
    append_usage (b, prompt_tokens, n);
    g_string_append (b, "}\n\n");
    g_ptr_array_add (r->events, g_string_free (b, FALSE));
  }
  g_ptr_array_add (r->events, g_strdup ("data: [DONE]\n\n"));
}

static void
handle_completions (SoupServerMessage *msg)
{
  SoupMessageBody *req = soup_server_message_get_request_body (msg);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree gchar *user = NULL, *previous = NULL, *answer = NULL;
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
    answer = respond (user ? user : "", previous ? previous : "");
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

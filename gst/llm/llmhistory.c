/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The conversation as the model sees it. It holds what the caller actually
 * heard, not what the model generated: after a barge-in, text that was
 * dropped or never played would make the model believe it said things the
 * caller never heard. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>

#include "llmhistory.h"

/* What a request says for a result not back yet: the call is running, so
 * the model does not call it again, and says so if asked. */
#define PENDING_RESULT                                                         \
  "{\"status\":\"pending\",\"note\":\"the caller spoke before the result "     \
  "came back\"}"

static void
round_free (LlmToolRound *r)
{
  g_free (r->text);
  g_free (r->calls_json);
  g_strfreev (r->ids);
  for (guint i = 0; i < r->n_calls; i++)
    g_free (r->results[i]);
  g_free (r->results);
  g_free (r);
}

static void
exchange_free (LlmExchange *e)
{
  if (e->rounds)
    g_ptr_array_unref (e->rounds);
  g_free (e->user);
  g_string_free (e->agent, TRUE);
  g_free (e->heard);
  g_free (e);
}

void
llm_history_init (LlmHistory *history)
{
  g_queue_init (&history->exchanges);
  history->next_id = 0;
}

void
llm_history_clear (LlmHistory *history)
{
  g_queue_clear_full (&history->exchanges, (GDestroyNotify)exchange_free);
  g_queue_init (&history->exchanges);
}

/**
 * llm_history_add:
 * @user: (nullable): the caller's words, NULL for unprompted agent text
 *
 * Returns: (transfer none): a new exchange at the end, owned by @history.
 */
LlmExchange *
llm_history_add (LlmHistory *history, guint turn, const gchar *user)
{
  LlmExchange *e = g_new0 (LlmExchange, 1);

  e->id = ++history->next_id;
  e->turn = turn;
  e->user = g_strdup (user);
  e->agent = g_string_new (NULL);
  g_queue_push_tail (&history->exchanges, e);
  return e;
}

/**
 * llm_history_find:
 *
 * Returns: (transfer none) (nullable): the exchange @id, if still kept.
 */
LlmExchange *
llm_history_find (LlmHistory *history, guint id)
{
  GList *l;

  for (l = history->exchanges.tail; l; l = l->prev) {
    LlmExchange *e = l->data;
    if (e->id == id)
      return e;
  }
  return NULL;
}

/**
 * llm_history_find_turn:
 *
 * Returns: (transfer none) (nullable): the latest answer to the caller in
 * @turn, else the latest unprompted text of @turn.
 */
LlmExchange *
llm_history_find_turn (LlmHistory *history, guint turn)
{
  LlmExchange *any = NULL;
  GList *l;

  for (l = history->exchanges.tail; l; l = l->prev) {
    LlmExchange *e = l->data;
    if (e->turn != turn)
      continue;
    if (e->user)
      return e;
    if (any == NULL)
      any = e;
  }
  return any;
}

LlmExchange *
llm_history_last (LlmHistory *history)
{
  return g_queue_peek_tail (&history->exchanges);
}

void
llm_history_drop_last (LlmHistory *history)
{
  LlmExchange *e = g_queue_pop_tail (&history->exchanges);

  if (e)
    exchange_free (e);
}

/* Forgets exchange @id (a speculative reply that was not used). */
void
llm_history_remove (LlmHistory *history, guint id)
{
  for (GList *l = history->exchanges.head; l; l = l->next) {
    LlmExchange *e = l->data;
    if (e->id == id) {
      g_queue_delete_link (&history->exchanges, l);
      exchange_free (e);
      return;
    }
  }
}

/* Keeps the @keep most recent exchanges. */
void
llm_history_trim (LlmHistory *history, guint keep)
{
  while (history->exchanges.length > keep)
    exchange_free (g_queue_pop_head (&history->exchanges));
}

/**
 * llm_exchange_add_round:
 * @said: all the text of the answer so far (queued for the caller, maybe
 *   not pushed yet)
 * @calls_json: the `tool_calls` array of the assistant message
 * @ids: the @n_calls call ids, in the order of @calls_json
 *
 * Records a round of tool calls after the agent text sent so far; its
 * results are pending until set in the round's `results`.
 *
 * Returns: (transfer none): the round, owned by @exchange.
 */
LlmToolRound *
llm_exchange_add_round (LlmExchange *exchange, const gchar *said,
    const gchar *calls_json, const gchar *const *ids, guint n_calls)
{
  LlmToolRound *r = g_new0 (LlmToolRound, 1);
  gsize start = 0;

  if (exchange->rounds == NULL)
    exchange->rounds =
        g_ptr_array_new_with_free_func ((GDestroyNotify)round_free);
  if (exchange->rounds->len > 0) {
    LlmToolRound *prev =
        g_ptr_array_index (exchange->rounds, exchange->rounds->len - 1);
    start = prev->text_end;
  }
  r->text_end = strlen (said);
  r->text = g_strndup (
      said + MIN (start, r->text_end), r->text_end - MIN (start, r->text_end));
  r->calls_json = g_strdup (calls_json);
  r->n_calls = n_calls;
  r->ids = g_new0 (gchar *, n_calls + 1);
  r->results = g_new0 (gchar *, n_calls + 1);
  for (guint i = 0; i < n_calls; i++)
    r->ids[i] = g_strdup (ids[i]);
  g_ptr_array_add (exchange->rounds, r);
  return r;
}

/* Returns: TRUE when every call of @round has its result. */
gboolean
llm_tool_round_complete (const LlmToolRound *round)
{
  for (guint i = 0; i < round->n_calls; i++) {
    if (round->results[i] == NULL)
      return FALSE;
  }
  return TRUE;
}

static void
append (GArray *a, const gchar *role, const gchar *content,
    const gchar *tool_calls, const gchar *tool_call_id)
{
  LlmChatMessage m = { role, content, tool_calls, tool_call_id };

  g_array_append_val (a, m);
}

/* The answer's messages when tools were called: per round the assistant
 * message with the text said before the calls and the calls, then a tool
 * message per call; then what the caller heard after the last round. */
static void
append_rounds (GArray *a, LlmExchange *e)
{
  const gchar *heard = llm_exchange_heard (e);
  gsize heard_len = strlen (heard), offset = 0;
  guint i, j;

  for (i = 0; i < e->rounds->len; i++) {
    LlmToolRound *r = g_ptr_array_index (e->rounds, i);
    append (a, "assistant", *r->text ? r->text : NULL, r->calls_json, NULL);
    for (j = 0; j < r->n_calls; j++)
      append (a, "tool", r->results[j] ? r->results[j] : PENDING_RESULT, NULL,
          r->ids[j]);
    offset = r->text_end;
  }
  /* The heard text may be shorter than what was sent before the calls
   * (the caller cut the agent short); then nothing follows them. */
  if (heard_len > offset) {
    const gchar *rest = heard + offset;
    while (*rest && (*rest & 0xC0) == 0x80)
      rest++;
    if (*rest)
      append (a, "assistant", rest, NULL, NULL);
  }
}

/**
 * llm_history_messages:
 * @system_prompt: (nullable): first message, unless empty
 * @user: (nullable): the caller's words to answer; NULL for the request
 *   that goes on after tool results (the last exchange is being answered)
 *
 * Returns: (transfer container): the messages of a request: the system
 * prompt, every exchange (the caller's words, the tool rounds of the
 * answer, then what the caller heard of the answer, if anything), then
 * @user. They point into @history and the arguments, valid until either
 * changes.
 */
GArray *
llm_history_messages (
    LlmHistory *history, const gchar *system_prompt, const gchar *user)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (LlmChatMessage));
  GList *l;

  if (system_prompt && *system_prompt)
    append (a, "system", system_prompt, NULL, NULL);
  for (l = history->exchanges.head; l; l = l->next) {
    LlmExchange *e = l->data;
    if (e->user)
      append (a, "user", e->user, NULL, NULL);
    if (e->rounds)
      append_rounds (a, e);
    else if (*llm_exchange_heard (e))
      append (a, "assistant", llm_exchange_heard (e), NULL, NULL);
  }
  if (user)
    append (a, "user", user, NULL, NULL);
  return a;
}

/**
 * llm_exchange_heard:
 *
 * Returns: (transfer none): what the caller heard of the answer: what the
 * TTS reported after a barge-in, else everything sent.
 */
const gchar *
llm_exchange_heard (LlmExchange *exchange)
{
  return exchange->heard ? exchange->heard : exchange->agent->str;
}

/**
 * llm_exchange_unanswered:
 *
 * Returns: TRUE if the caller heard no answer to @exchange: the caller's
 * words then join the next turn's (the caller kept talking). An exchange
 * that called tools never is: dropping it would forget calls that ran (or
 * still run) and make the model call them again with the merged words, so
 * a webhook would be sent twice and its late result lost.
 */
gboolean
llm_exchange_unanswered (LlmExchange *exchange)
{
  if (exchange->user == NULL || exchange->rounds != NULL)
    return FALSE;
  if (exchange->heard)
    return *exchange->heard == '\0';
  return !exchange->answered && exchange->agent->len == 0;
}

/**
 * llm_exchange_set_heard:
 * @text: what the caller heard
 * @complete: the caller heard the whole answer (@text is then ignored)
 */
void
llm_exchange_set_heard (
    LlmExchange *exchange, const gchar *text, gboolean complete)
{
  g_free (exchange->heard);
  exchange->heard = complete ? NULL : g_strdup (text ? text : "");
}

/**
 * llm_history_to_json:
 *
 * Returns: (transfer full): the conversation as OpenAI chat messages, a
 * JSON array of `{"role":"user"|"assistant","content":"..."}` in order,
 * without the system prompt; what the caller heard stands for the
 * agent's side. Tool calls and results are left out: a resumed call
 * keeps what was said.
 */
gchar *
llm_history_to_json (LlmHistory *history)
{
  GArray *msgs = llm_history_messages (history, NULL, NULL);
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;
  guint i;

  json_builder_begin_array (b);
  for (i = 0; i < msgs->len; i++) {
    LlmChatMessage *m = &g_array_index (msgs, LlmChatMessage, i);
    if (m->content == NULL || g_str_equal (m->role, "tool"))
      continue;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "role");
    json_builder_add_string_value (b, m->role);
    json_builder_set_member_name (b, "content");
    json_builder_add_string_value (b, m->content);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  g_array_unref (msgs);
  return json;
}

static gboolean
message_fields (JsonNode *node, const gchar **role, const gchar **content)
{
  JsonObject *o;

  *role = *content = NULL;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return FALSE;
  o = json_node_get_object (node);
  *role = json_object_get_string_member_with_default (o, "role", NULL);
  *content = json_object_get_string_member_with_default (o, "content", NULL);
  return *role && *content;
}

/* Appends one message: a user message opens an exchange, an assistant
 * message answers the open one (or stands alone, like a greeting);
 * other roles (system, tool) are skipped. */
static void
append_message (LlmHistory *history, const gchar *role, const gchar *content)
{
  LlmExchange *last = llm_history_last (history);

  if (g_str_equal (role, "user")) {
    llm_history_add (history, 0, content);
  } else if (g_str_equal (role, "assistant")) {
    if (last == NULL || last->user == NULL || last->answered)
      last = llm_history_add (history, 0, NULL);
    if (last->agent->len > 0)
      g_string_append_c (last->agent, ' ');
    g_string_append (last->agent, content);
    last->answered = TRUE;
  }
}

/**
 * llm_history_from_json:
 * @json: messages as llm_history_to_json() writes them (an empty string or
 *   NULL is an empty conversation)
 *
 * Replaces @history with @json's messages, all in turn 0. Returns FALSE
 * with @error, @history untouched, when @json is not an array of objects
 * with string `role` and `content`.
 */
gboolean
llm_history_from_json (LlmHistory *history, const gchar *json, GError **error)
{
  JsonParser *parser = json_parser_new ();
  JsonArray *a;
  gboolean ok = FALSE;
  const gchar *role, *content;
  guint i;

  if (json && *json && !json_parser_load_from_data (parser, json, -1, error))
    goto out;
  if (json == NULL || *json == '\0') {
    llm_history_clear (history);
    ok = TRUE;
    goto out;
  }
  if (!JSON_NODE_HOLDS_ARRAY (json_parser_get_root (parser)))
    goto bad;
  a = json_node_get_array (json_parser_get_root (parser));
  for (i = 0; i < json_array_get_length (a); i++) {
    if (!message_fields (json_array_get_element (a, i), &role, &content))
      goto bad;
  }
  llm_history_clear (history);
  for (i = 0; i < json_array_get_length (a); i++) {
    message_fields (json_array_get_element (a, i), &role, &content);
    append_message (history, role, content);
  }
  ok = TRUE;
  goto out;
bad:
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
      "history must be a JSON array of {\"role\",\"content\"} objects");
out:
  g_object_unref (parser);
  return ok;
}

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

#include <json-glib/json-glib.h>

#include "llmhistory.h"

static void
exchange_free (LlmExchange *e)
{
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
 * llm_history_messages:
 * @system_prompt: (nullable): first message, unless empty
 * @user: the caller's words to answer
 *
 * Returns: (transfer container): the messages of a request: the system
 * prompt, every exchange (the caller's words, then what the caller heard
 * of the answer, if anything), then @user. They point into @history and
 * the arguments, valid until either changes.
 */
GArray *
llm_history_messages (
    LlmHistory *history, const gchar *system_prompt, const gchar *user)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (LlmChatMessage));
  LlmChatMessage m;
  GList *l;

  if (system_prompt && *system_prompt) {
    m.role = "system";
    m.content = system_prompt;
    g_array_append_val (a, m);
  }
  for (l = history->exchanges.head; l; l = l->next) {
    LlmExchange *e = l->data;
    if (e->user) {
      m.role = "user";
      m.content = e->user;
      g_array_append_val (a, m);
    }
    if (*llm_exchange_heard (e)) {
      m.role = "assistant";
      m.content = llm_exchange_heard (e);
      g_array_append_val (a, m);
    }
  }
  m.role = "user";
  m.content = user;
  g_array_append_val (a, m);
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
 * words then join the next turn's (the caller kept talking).
 */
gboolean
llm_exchange_unanswered (LlmExchange *exchange)
{
  if (exchange->user == NULL)
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
 * agent's side.
 */
gchar *
llm_history_to_json (LlmHistory *history)
{
  GArray *msgs = llm_history_messages (history, NULL, "");
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json;
  guint i;

  json_builder_begin_array (b);
  /* The last message is the empty "new words" llm_history_messages adds. */
  for (i = 0; i + 1 < msgs->len; i++) {
    LlmChatMessage *m = &g_array_index (msgs, LlmChatMessage, i);
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

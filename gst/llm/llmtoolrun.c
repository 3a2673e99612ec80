/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* llmtransform's tool calls: when a streamed answer ends with
 * `tool_calls`, run them (webhooks in parallel on the voice-io thread,
 * built-ins at once), record the round in the exchange, say the filler
 * when they take long, and go on with the reply once every result is in.
 * A webhook is never cancelled by barge-in (its side effect happens once);
 * its result lands in the history whenever it comes. The wire format and
 * the file are llmtools.c's; the reply machine is llmreply.c's. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include "llmtransform-private.h"

/* One webhook call; shared by the HTTP callbacks and the timeout (atomic
 * refcount). Fields are read-only after sending except as noted. */
typedef struct
{
  GstLlmTransform *self; /* ref */
  GstVoiceClient *client; /* ref */
  guint reply_id;
  guint exchange_id;
  guint round; /* 1-based round of the reply */
  guint index; /* the call's place in the round */
  guint turn;
  gchar *name;
  gchar *tool_call_id;
  gchar *url;
  guint timeout_ms;
  GBytes *body;
  gchar *signature; /* header value, or NULL */
  gchar **header_names; /* from the tool, values read from the env */
  gchar **header_envs;
  gint64 start_us;
  /* I/O thread only, after sending: */
  guint status;
  GByteArray *response;
  gboolean too_big;
  GSource *timeout; /* destroyed when done */
  /* set by send (any thread) and read by the timeout: atomic */
  gint request_id;
  gint timed_out;
} ToolRun;

static void
tool_run_clear (ToolRun *t)
{
  gst_object_unref (t->self);
  gst_object_unref (t->client);
  g_free (t->name);
  g_free (t->tool_call_id);
  g_free (t->url);
  g_bytes_unref (t->body);
  g_free (t->signature);
  g_strfreev (t->header_names);
  g_strfreev (t->header_envs);
  if (t->response)
    g_byte_array_unref (t->response);
  if (t->timeout) {
    g_source_destroy (t->timeout);
    g_source_unref (t->timeout);
  }
}

static void
tool_run_unref (ToolRun *t)
{
  g_atomic_rc_box_release_full (t, (GDestroyNotify)tool_run_clear);
}

/* ---- The tools file ---- */

/**
 * tools_load_locked:
 * @fatal: an unusable file is an element error (at start) rather than a
 *   warning (set while playing: requests go on without tools)
 *
 * (Re)reads the tools file when the tools-file property names another
 * one. Returns FALSE when the file is unusable.
 */
gboolean
tools_load_locked (GstLlmTransform *self, gboolean fatal, Deferred *d)
{
  GError *err = NULL;
  gchar *path;
  LlmToolSet *set = NULL;

  GST_OBJECT_LOCK (self);
  path = g_strdup (self->opts.tools_file);
  GST_OBJECT_UNLOCK (self);
  if (path && *path == '\0')
    g_clear_pointer (&path, g_free);
  if (g_strcmp0 (path, self->tools_path) == 0 && !fatal) {
    g_free (path);
    return TRUE;
  }
  if (path)
    set = llm_tool_set_load (path, &err);
  g_clear_pointer (&self->tools, llm_tool_set_unref);
  self->tools = set;
  g_free (self->tools_path);
  self->tools_path = path;
  if (err == NULL) {
    GST_DEBUG_OBJECT (self, "%u tools from %s", llm_tool_set_size (set),
        path ? path : "(none)");
    return TRUE;
  }
  {
    gchar *text = g_strdup_printf ("The tools-file cannot be used (%s): fix "
                                   "the file (a JSON array of tool objects, "
                                   "see docs/elements/llmtransform.md) or "
                                   "unset tools-file%s",
        err->message, fatal ? "" : "; requests go without tools");
    if (fatal)
      defer_error (self, d, GST_RESOURCE_ERROR_SETTINGS, text, path);
    else
      defer_warning (self, d, text, path);
    g_free (text);
  }
  g_error_free (err);
  return FALSE;
}

/* ---- Messages ---- */

static void
post_tool_call_locked (GstLlmTransform *self, Reply *r, LlmToolCall *c,
    const LlmTool *tool, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "tool-call", r->turn);

  gst_structure_set (s, "round", G_TYPE_UINT, r->round, "tool-call-id",
      G_TYPE_STRING, c->id, "name", G_TYPE_STRING, c->name->str, "arguments",
      G_TYPE_STRING, c->arguments->str, "kind", G_TYPE_STRING,
      tool ? llm_tool_kind_name (tool->kind) : "unknown", NULL);
  defer_structure (self, d, s);
}

static void
post_tool_result (GstLlmTransform *self, Deferred *d, guint turn, guint round,
    const gchar *id, const gchar *name, const gchar *result, const gchar *error,
    gint64 start_us)
{
  GstStructure *s = turn_message_new (self, "tool-result", turn);

  gst_structure_set (s, "round", G_TYPE_UINT, round, "tool-call-id",
      G_TYPE_STRING, id, "name", G_TYPE_STRING, name, "ok", G_TYPE_BOOLEAN,
      error == NULL, "error", G_TYPE_STRING, error ? error : "", "result",
      G_TYPE_STRING, result, "duration-ms", G_TYPE_DOUBLE,
      (g_get_monotonic_time () - start_us) / 1000.0, NULL);
  defer_structure (self, d, s);
}

/* A built-in's message for the application (`transfer`, `wait`; `end-call`
 * is posted once the goodbye was heard). */
static void
post_builtin_locked (GstLlmTransform *self, Reply *r, const gchar *event,
    LlmToolCall *c, Deferred *d)
{
  GstStructure *s = turn_message_new (self, event, r->turn);

  gst_structure_set (s, "tool-call-id", G_TYPE_STRING, c->id, "arguments",
      G_TYPE_STRING, c->arguments->len ? c->arguments->str : "{}", NULL);
  defer_structure (self, d, s);
}

/* ---- Webhooks ---- */

static void on_tool_done_locked (GstLlmTransform *self, ToolRun *t,
    const gchar *result, const gchar *error, Deferred *d);

static gboolean
on_hook_response (GstVoiceClient *client, guint request_id, guint status,
    SoupMessageHeaders *headers, gpointer user_data)
{
  ToolRun *t = user_data;

  t->status = status;
  return TRUE;
}

static void
on_hook_chunk (
    GstVoiceClient *client, guint request_id, GBytes *data, gpointer user_data)
{
  ToolRun *t = user_data;
  gsize len = g_bytes_get_size (data);

  if (t->response->len + len > LLM_TOOLS_MAX_RESPONSE) {
    t->too_big = TRUE;
    return;
  }
  g_byte_array_append (t->response, g_bytes_get_data (data, NULL), len);
}

static void
on_hook_done (GstVoiceClient *client, guint request_id, const GError *error,
    gpointer user_data)
{
  ToolRun *t = user_data;
  GstLlmTransform *self = t->self;
  Deferred d = { 0 };
  gchar *why = NULL, *result;

  if (t->timeout) {
    g_source_destroy (t->timeout);
    g_clear_pointer (&t->timeout, g_source_unref);
  }
  if (g_atomic_int_get (&t->timed_out)) {
    why = g_strdup_printf (
        "the tool service did not answer within %u ms", t->timeout_ms);
  } else if (error) {
    gchar *safe = gst_voice_redact (error->message);
    gchar *url = llm_url_for_log (t->url);
    GST_WARNING_OBJECT (self, "webhook %s for %s: %s", url, t->name, safe);
    g_free (url);
    g_free (safe);
    why = g_strdup ("the tool service could not be reached");
  } else if (t->too_big) {
    why = g_strdup_printf (
        "the tool service answered more than %u bytes", LLM_TOOLS_MAX_RESPONSE);
  }
  if (why)
    result = llm_tool_error_result (why);
  else
    result = llm_tool_result_from_http (
        t->status, (const gchar *)t->response->data, t->response->len, &why);

  g_mutex_lock (&self->lock);
  on_tool_done_locked (self, t, result, why, &d);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (result);
  g_free (why);
}

static void
hook_ctx_free (gpointer data)
{
  ToolRun *t = data;
  GstLlmTransform *self = t->self;

  g_mutex_lock (&self->lock);
  self->requests_alive--;
  g_cond_broadcast (&self->requests_cond);
  g_mutex_unlock (&self->lock);
  tool_run_unref (t);
}

static const GstVoiceHttpCallbacks hook_callbacks = {
  on_hook_response,
  on_hook_chunk,
  on_hook_done,
};

static gboolean
on_hook_timeout (gpointer data)
{
  ToolRun *t = data;
  guint id = (guint)g_atomic_int_get (&t->request_id);

  g_atomic_int_set (&t->timed_out, TRUE);
  if (id)
    gst_voice_client_cancel_request (t->client, id);
  return G_SOURCE_REMOVE;
}

/* The call ends without a request: its error result goes where an
 * answer would, so the round does not wait for one. */
static void
hook_not_sent (ToolRun *t, const gchar *why)
{
  GstLlmTransform *self = t->self;
  Deferred d = { 0 };
  gchar *result = llm_tool_error_result (why);

  g_mutex_lock (&self->lock);
  on_tool_done_locked (self, t, result, why, &d);
  g_mutex_unlock (&self->lock);
  deferred_run (self, &d);
  g_free (result);
}

/* Sends the webhook request (after the lock is released). */
static void
send_hook (gpointer data)
{
  ToolRun *t = data;
  GstLlmTransform *self = t->self;
  SoupMessage *msg = soup_message_new (SOUP_METHOD_POST, t->url);
  SoupMessageHeaders *h;
  gchar *url;
  guint i, id;

  /* llm_url_is_http() accepted the URL at load as libsoup parses it, so
   * this is a safety net, not a path the tools file can take. */
  if (msg == NULL) {
    hook_not_sent (t, "the tool's webhook URL cannot be used");
    return;
  }
  h = soup_message_get_request_headers (msg);
  soup_message_headers_replace (h, "Accept", "application/json");
  soup_message_headers_replace (h, "X-Voiceagent-Tool", t->name);
  if (t->signature)
    soup_message_headers_replace (h, "X-Voiceagent-Signature", t->signature);
  for (i = 0; t->header_names && t->header_names[i]; i++) {
    const gchar *v = g_getenv (t->header_envs[i]);
    if (v && *v) {
      gst_voice_redact_add_secret (v);
      soup_message_headers_replace (h, t->header_names[i], v);
    }
  }
  soup_message_set_request_body_from_bytes (msg, "application/json", t->body);
  t->response = g_byte_array_new ();
  t->timeout = g_timeout_source_new (t->timeout_ms);
  g_source_set_callback (t->timeout, on_hook_timeout,
      g_atomic_rc_box_acquire (t), (GDestroyNotify)tool_run_unref);
  g_source_attach (t->timeout, gst_voice_client_get_io_context ());

  g_mutex_lock (&self->lock);
  self->requests_alive++;
  g_mutex_unlock (&self->lock);
  id = gst_voice_client_http_request (t->client, msg, &hook_callbacks,
      g_atomic_rc_box_acquire (t), hook_ctx_free);
  g_atomic_int_set (&t->request_id, (gint)id);
  /* Timed out before its id was known. */
  if (g_atomic_int_get (&t->timed_out))
    gst_voice_client_cancel_request (t->client, id);
  url = llm_url_for_log (t->url);
  GST_DEBUG_OBJECT (self, "turn %u: webhook %s for %s (request %u)", t->turn,
      url, t->name, id);
  g_free (url);
}

static ToolRun *
tool_run_new (GstLlmTransform *self, Reply *r, guint index, LlmToolCall *c,
    const LlmTool *tool, JsonNode *args)
{
  ToolRun *t = g_atomic_rc_box_new0 (ToolRun);
  gchar *body =
      llm_tool_webhook_body (c->name->str, c->id, r->call_id, r->turn, args);

  t->self = gst_object_ref (self);
  t->client = gst_object_ref (self->client);
  t->reply_id = r->id;
  t->exchange_id = r->exchange_id;
  t->round = r->round;
  t->index = index;
  t->turn = r->turn;
  t->name = g_strdup (c->name->str);
  t->tool_call_id = g_strdup (c->id);
  t->url = g_strdup (tool->url);
  t->timeout_ms = tool->timeout_ms;
  t->header_names = g_strdupv (tool->header_names);
  t->header_envs = g_strdupv (tool->header_envs);
  if (r->tools_secret)
    t->signature = llm_tool_signature (r->tools_secret,
        g_get_real_time () / G_USEC_PER_SEC, body, strlen (body));
  t->body = g_bytes_new_take (body, strlen (body));
  t->start_us = g_get_monotonic_time ();
  return t;
}

/* ---- Rounds ---- */

/* The result of a call that runs at once (a built-in, or an error), or
 * NULL for a webhook (sent after the lock is released). */
static gchar *
run_call_locked (GstLlmTransform *self, Reply *r, guint i, LlmToolCall *c,
    gchar **error, Deferred *d)
{
  const LlmTool *tool = llm_tool_set_find (r->tools, c->name->str);
  GError *err = NULL;
  JsonNode *args = NULL;
  gchar *result = NULL;

  post_tool_call_locked (self, r, c, tool, d);
  if (r->round > r->max_tool_rounds || i >= LLM_TOOLS_MAX_CALLS) {
    *error = g_strdup_printf ("not run: at most %u tool rounds per turn and "
                              "%u calls per round; answer without tools",
        r->max_tool_rounds, LLM_TOOLS_MAX_CALLS);
  } else if (tool == NULL) {
    *error = g_strdup_printf ("unknown tool \"%s\"", c->name->str);
  } else if (!(args = llm_tool_parse_arguments (c, &err))) {
    *error = g_strdup_printf ("invalid arguments: %s", err->message);
    g_error_free (err);
  }
  if (*error) {
    result = llm_tool_error_result (*error);
  } else if (tool->kind == LLM_TOOL_WEBHOOK) {
    ToolRun *t = tool_run_new (self, r, i, c, tool, args);
    r->pending++;
    defer_call (d, send_hook, t, (GDestroyNotify)tool_run_unref);
  } else if (tool->kind == LLM_TOOL_END_CALL) {
    r->end_call = TRUE;
    result = g_strdup ("{\"status\":\"ending the call\"}");
  } else if (tool->kind == LLM_TOOL_TRANSFER) {
    post_builtin_locked (self, r, "transfer", c, d);
    r->transferring = TRUE;
    result = g_strdup ("{\"status\":\"transferring\"}");
  } else {
    post_builtin_locked (self, r, "wait", c, d);
    r->waiting = TRUE;
    result = g_strdup ("{\"status\":\"waiting\"}");
  }
  if (args)
    json_node_unref (args);
  return result;
}

static gboolean
on_filler (gpointer data)
{
  GstLlmTransform *self = data;
  Reply *r;

  g_mutex_lock (&self->lock);
  r = self->reply;
  /* Only the reply that armed it: a later one has a source of its own. */
  if (r && r->filler == g_main_current_source () && r->pending > 0 &&
      !r->filler_said) {
    r->filler_said = TRUE;
    GST_DEBUG_OBJECT (
        self, "turn %u: tools still running: \"%s\"", r->turn, r->filler_text);
    queue_text_locked (self, r, r->filler_text);
  }
  g_mutex_unlock (&self->lock);
  return G_SOURCE_REMOVE;
}

static void
arm_filler_locked (GstLlmTransform *self, Reply *r)
{
  if (r->filler_said || r->filler_ms == 0 || *r->filler_text == '\0' ||
      r->filler)
    return;
  r->filler = g_timeout_source_new (r->filler_ms);
  g_source_set_callback (
      r->filler, on_filler, gst_object_ref (self), gst_object_unref);
  g_source_attach (r->filler, gst_voice_client_get_io_context ());
}

void
tools_stop_filler_locked (Reply *r)
{
  if (r->filler) {
    g_source_destroy (r->filler);
    g_clear_pointer (&r->filler, g_source_unref);
  }
}

/* Every result of the round is in: ask the model to go on, unless a
 * built-in said the turn is over. */
static void
tools_continue_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  tools_stop_filler_locked (r);
  /* After end_call or transfer the model's words before the call are its
   * last ones; without any, it is asked to say them. */
  if (r->waiting || ((r->end_call || r->transferring) && r->queued->len > 0) ||
      r->round > r->max_tool_rounds) {
    finish_reply_locked (self, r, d);
    return;
  }
  restart_reply_locked (self, r, r->round >= r->max_tool_rounds, d);
}

static void
on_tool_done_locked (GstLlmTransform *self, ToolRun *t, const gchar *result,
    const gchar *error, Deferred *d)
{
  LlmExchange *e = llm_history_find (&self->history, t->exchange_id);
  Reply *r = self->reply;

  if (e && e->rounds && t->round <= e->rounds->len) {
    LlmToolRound *round = g_ptr_array_index (e->rounds, t->round - 1);
    if (t->index < round->n_calls && round->results[t->index] == NULL)
      round->results[t->index] = g_strdup (result);
  }
  post_tool_result (self, d, t->turn, t->round, t->tool_call_id, t->name,
      result, error, t->start_us);
  GST_DEBUG_OBJECT (self, "turn %u: %s answered%s%s", t->turn, t->name,
      error ? ": " : "", error ? error : "");
  if (r == NULL || r->id != t->reply_id || r->round != t->round)
    return; /* the caller barged in: the result only goes to the history */
  if (--r->pending == 0)
    tools_continue_locked (self, r, d);
}

/**
 * run_tool_round_locked:
 *
 * The answer ended with tool calls: speak the text before them, run them,
 * record the round in the exchange, and go on when every result is in.
 */
void
run_tool_round_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  LlmExchange *e = llm_history_find (&self->history, r->exchange_id);
  guint n = r->calls.calls->len, i;
  gchar **results = g_new0 (gchar *, n);
  gchar **errors = g_new0 (gchar *, n);
  const gchar **ids = g_new0 (const gchar *, n + 1);
  LlmToolRound *round = NULL;
  gchar *calls_json;

  r->round++;
  llm_tool_calls_finish (&r->calls, r->round);
  GST_DEBUG_OBJECT (
      self, "turn %u: tool round %u, %u calls", r->turn, r->round, n);
  if (r->calls.ignored > 0)
    GST_WARNING_OBJECT (self,
        "turn %u: the answer called more than %u tools: the rest (%u "
        "deltas) ignored",
        r->turn, LLM_TOOLS_MAX_ANSWER_CALLS, r->calls.ignored);
  for (i = 0; i < n; i++) {
    LlmToolCall *c = g_ptr_array_index (r->calls.calls, i);
    ids[i] = c->id;
    results[i] = run_call_locked (self, r, i, c, &errors[i], d);
  }
  calls_json = llm_tool_calls_to_json (&r->calls);
  if (e)
    round = llm_exchange_add_round (e, r->queued->str, calls_json, ids, n);
  for (i = 0; i < n; i++) {
    LlmToolCall *c = g_ptr_array_index (r->calls.calls, i);
    if (results[i] == NULL)
      continue;
    if (round)
      round->results[i] = g_strdup (results[i]);
    post_tool_result (self, d, r->turn, r->round, c->id, c->name->str,
        results[i], errors[i], g_get_monotonic_time ());
  }
  for (i = 0; i < n; i++) {
    g_free (results[i]);
    g_free (errors[i]);
  }
  g_free (results);
  g_free (errors);
  g_free (ids);
  g_free (calls_json);
  llm_tool_calls_clear (&r->calls);
  llm_tool_calls_init (&r->calls);

  if (r->pending > 0)
    arm_filler_locked (self, r);
  else
    tools_continue_locked (self, r, d);
}

/* ---- end_call ---- */

static void
post_end_call (GstLlmTransform *self, guint turn, gboolean heard, Deferred *d)
{
  GstStructure *s = turn_message_new (self, "end-call", turn);

  gst_structure_set (s, "heard", G_TYPE_BOOLEAN, heard, NULL);
  defer_structure (self, d, s);
}

/* The reply of @r completed: with end_call, the application hangs up once
 * the goodbye was heard (now, if nothing was said). */
void
tools_reply_completed_locked (GstLlmTransform *self, Reply *r, Deferred *d)
{
  if (!r->end_call)
    return;
  if (r->queued->len == 0) {
    post_end_call (self, r->turn, TRUE, d);
    return;
  }
  self->end_call_turn = r->turn;
}

/* The TTS reported what the caller heard of @turn. A report of a later
 * turn means the goodbye's own never came (its text was dropped before
 * reaching the TTS): not heard. */
void
tools_spoken_locked (
    GstLlmTransform *self, guint turn, gboolean complete, Deferred *d)
{
  if (self->end_call_turn == 0 || turn < self->end_call_turn)
    return;
  post_end_call (
      self, self->end_call_turn, complete && turn == self->end_call_turn, d);
  self->end_call_turn = 0;
}

/* The caller barged in, or took a new turn: a goodbye still waiting for
 * its `spoken` was cut short or is moot, so `end-call` goes out now with
 * heard=FALSE (the application must not hang up on a caller who goes on). */
void
tools_barge_in_locked (GstLlmTransform *self, Deferred *d)
{
  if (self->end_call_turn == 0)
    return;
  post_end_call (self, self->end_call_turn, FALSE, d);
  self->end_call_turn = 0;
}

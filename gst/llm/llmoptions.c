/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* llmtransform's properties as one table: each option's GParamSpec (name,
 * blurb, range, default, flags), and the helpers that initialise, copy,
 * set and read a LlmOptions struct. The element holds its OBJECT_LOCK
 * around set and get, and copies the struct under it for a request. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voice.h"
#include "llmoptions.h"

/* Every option is read where it is used (a reply, the greeting, a
 * barge-in), never cached across uses, so a change takes effect in any
 * state. */
#define OPT_FLAGS                                                              \
  (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING)

static GParamSpec *
make_pspec (LlmOption opt)
{
  switch (opt) {
    case LLM_OPT_URL:
      /**
       * GstLlmTransform:url:
       *
       * Base URL of the API, up to and including the version (`/v1`);
       * requests go to `{url}/chat/completions`. A URL that already ends in
       * `/chat/completions` is used as is.
       */
      return g_param_spec_string ("url", "URL",
          "Base URL of the OpenAI-compatible API, e.g. "
          "http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:11434/v1 "
          "(Ollama); requests go to {url}/chat/completions",
          LLM_DEFAULT_URL, OPT_FLAGS);
    case LLM_OPT_API_KEY:
      /**
       * GstLlmTransform:api-key:
       *
       * Sent as `Authorization: Bearer KEY`; none is sent when empty (local
       * servers need none). Write-only, so pipeline dumps never show it.
       */
      return g_param_spec_string ("api-key", "API key",
          "API key (default: $LLM_API_KEY, else $OPENAI_API_KEY; empty: no "
          "Authorization header)",
          NULL, OPT_FLAGS & ~G_PARAM_READABLE);
    case LLM_OPT_MODEL:
      return g_param_spec_string ("model", "Model",
          "Model name as the server knows it", LLM_DEFAULT_MODEL, OPT_FLAGS);
    case LLM_OPT_SYSTEM_PROMPT:
      return g_param_spec_string ("system-prompt", "System prompt",
          "First message of every request (empty: none)",
          LLM_DEFAULT_SYSTEM_PROMPT, OPT_FLAGS);
    case LLM_OPT_GREETING:
      return g_param_spec_string ("greeting", "Greeting",
          "Said when the call starts (first PAUSED to PLAYING), if set",
          LLM_DEFAULT_GREETING, OPT_FLAGS);
    case LLM_OPT_TEMPERATURE:
      return g_param_spec_double ("temperature", "Temperature",
          "Sampling temperature (-1: not sent, the server's default; "
          "reasoning models accept only their default)",
          -1.0, 2.0, LLM_DEFAULT_TEMPERATURE, OPT_FLAGS);
    case LLM_OPT_MAX_TOKENS:
      return g_param_spec_int ("max-tokens", "Max tokens",
          "Upper bound of tokens per reply, sent as max_tokens (0: not sent)",
          0, G_MAXINT, LLM_DEFAULT_MAX_TOKENS, OPT_FLAGS);
    case LLM_OPT_HISTORY_TURNS:
      return g_param_spec_uint ("history-turns", "History turns",
          "Past exchanges (caller's words and what the caller heard of the "
          "answer) sent with each request (0: none)",
          0, 100000, LLM_DEFAULT_HISTORY_TURNS, OPT_FLAGS);
    case LLM_OPT_EXTRA_BODY:
      /**
       * GstLlmTransform:extra-body:
       *
       * Server-specific options, e.g. `{"chat_template_kwargs":
       * {"enable_thinking": false}}` for Qwen3 on vLLM or SGLang,
       * `{"keep_alive": "30m"}` for Ollama, `{"max_completion_tokens": 200}`
       * for OpenAI's reasoning models. Members replace the element's own.
       */
      return g_param_spec_string ("extra-body", "Extra body",
          "JSON object merged at the top level of every request body, for "
          "server-specific options",
          LLM_DEFAULT_EXTRA_BODY, OPT_FLAGS);
    case LLM_OPT_FIRST_TOKEN_TIMEOUT:
      return g_param_spec_uint ("first-token-timeout", "First token timeout",
          "A first token later than this (in milliseconds) counts as a "
          "failed request (0: wait for ever)",
          0, 600000, LLM_DEFAULT_FIRST_TOKEN_TIMEOUT, OPT_FLAGS);
    case LLM_OPT_FALLBACK_TEXT:
      return g_param_spec_string ("fallback-text", "Fallback text",
          "Said when the server fails twice (or once, if a retry cannot "
          "help), so the caller never waits in silence (empty: nothing)",
          LLM_DEFAULT_FALLBACK_TEXT, OPT_FLAGS);
    case LLM_OPT_INTERRUPTION:
      return g_param_spec_enum ("interruption", "Interruption",
          "What cancels a reply in flight (barge-in)",
          GST_TYPE_LLM_INTERRUPTION, LLM_DEFAULT_INTERRUPTION, OPT_FLAGS);
    case LLM_OPT_CLAUSE_MIN_CHARS:
      return g_param_spec_uint ("clause-min-chars", "Clause minimum characters",
          "A piece is cut at punctuation only once it holds this many "
          "characters (shorter pieces make choppy speech)",
          1, 10000, LLM_DEFAULT_CLAUSE_MIN_CHARS, OPT_FLAGS);
    case LLM_OPT_CLAUSE_MAX_WAIT_MS:
      return g_param_spec_uint ("clause-max-wait-ms", "Clause maximum wait",
          "Text waiting this long (in milliseconds, on the pipeline clock) "
          "for punctuation goes out up to its last word (0: never)",
          0, 60000, LLM_DEFAULT_CLAUSE_MAX_WAIT_MS, OPT_FLAGS);
    case LLM_OPT_COUNT:
      break;
  }
  g_assert_not_reached ();
  return NULL;
}

/**
 * llm_options_install:
 * @first_prop_id: the property id of %LLM_OPT_URL; the others follow in
 *   #LlmOption order
 *
 * Installs the options as properties of @klass.
 */
void
llm_options_install (GObjectClass *klass, guint first_prop_id)
{
  for (guint i = 0; i < LLM_OPT_COUNT; i++)
    g_object_class_install_property (
        klass, first_prop_id + i, make_pspec ((LlmOption)i));
}

/* Returns: (transfer full): the key from the environment, or NULL. Read
 * when the element is made, so a key set later in the process is not seen;
 * registered with the redaction list so it never reaches a log. */
static gchar *
api_key_from_env (void)
{
  const gchar *key = g_getenv ("LLM_API_KEY");

  if (key == NULL || *key == '\0')
    key = g_getenv ("OPENAI_API_KEY");
  if (key == NULL || *key == '\0')
    return NULL;
  gst_voice_redact_add_secret (key);
  return g_strdup (key);
}

void
llm_options_init (LlmOptions *opts)
{
  opts->url = g_strdup (LLM_DEFAULT_URL);
  opts->api_key = api_key_from_env ();
  opts->model = g_strdup (LLM_DEFAULT_MODEL);
  opts->system_prompt = g_strdup (LLM_DEFAULT_SYSTEM_PROMPT);
  opts->greeting = g_strdup (LLM_DEFAULT_GREETING);
  opts->temperature = LLM_DEFAULT_TEMPERATURE;
  opts->max_tokens = LLM_DEFAULT_MAX_TOKENS;
  opts->history_turns = LLM_DEFAULT_HISTORY_TURNS;
  opts->extra_body = g_strdup (LLM_DEFAULT_EXTRA_BODY);
  opts->first_token_timeout = LLM_DEFAULT_FIRST_TOKEN_TIMEOUT;
  opts->fallback_text = g_strdup (LLM_DEFAULT_FALLBACK_TEXT);
  opts->interruption = LLM_DEFAULT_INTERRUPTION;
  opts->clause_min_chars = LLM_DEFAULT_CLAUSE_MIN_CHARS;
  opts->clause_max_wait_ms = LLM_DEFAULT_CLAUSE_MAX_WAIT_MS;
}

void
llm_options_clear (LlmOptions *opts)
{
  g_clear_pointer (&opts->url, g_free);
  g_clear_pointer (&opts->api_key, g_free);
  g_clear_pointer (&opts->model, g_free);
  g_clear_pointer (&opts->system_prompt, g_free);
  g_clear_pointer (&opts->greeting, g_free);
  g_clear_pointer (&opts->extra_body, g_free);
  g_clear_pointer (&opts->fallback_text, g_free);
}

/* Deep copy: a reply is built from a copy taken under the object lock, and
 * uses it without that lock. */
void
llm_options_copy (const LlmOptions *src, LlmOptions *dest)
{
  *dest = *src;
  dest->url = g_strdup (src->url);
  dest->api_key = g_strdup (src->api_key);
  dest->model = g_strdup (src->model);
  dest->system_prompt = g_strdup (src->system_prompt);
  dest->greeting = g_strdup (src->greeting);
  dest->extra_body = g_strdup (src->extra_body);
  dest->fallback_text = g_strdup (src->fallback_text);
}

/* NULL stays NULL: the users of each string say what NULL means. */
static void
replace_string (gchar **field, const GValue *value)
{
  g_free (*field);
  *field = g_value_dup_string (value);
}

static void
set_api_key (LlmOptions *opts, const GValue *value)
{
  const gchar *key = g_value_get_string (value);

  if (key && *key)
    gst_voice_redact_add_secret (key);
  replace_string (&opts->api_key, value);
}

/* Caller holds the object lock. extra-body is stored as given: the caller
 * checks it (and warns) first, because the check logs for the element. */
void
llm_options_set (LlmOptions *opts, LlmOption opt, const GValue *value)
{
  switch (opt) {
    case LLM_OPT_URL:
      replace_string (&opts->url, value);
      break;
    case LLM_OPT_API_KEY:
      set_api_key (opts, value);
      break;
    case LLM_OPT_MODEL:
      replace_string (&opts->model, value);
      break;
    case LLM_OPT_SYSTEM_PROMPT:
      replace_string (&opts->system_prompt, value);
      break;
    case LLM_OPT_GREETING:
      replace_string (&opts->greeting, value);
      break;
    case LLM_OPT_TEMPERATURE:
      opts->temperature = g_value_get_double (value);
      break;
    case LLM_OPT_MAX_TOKENS:
      opts->max_tokens = g_value_get_int (value);
      break;
    case LLM_OPT_HISTORY_TURNS:
      opts->history_turns = g_value_get_uint (value);
      break;
    case LLM_OPT_EXTRA_BODY:
      replace_string (&opts->extra_body, value);
      break;
    case LLM_OPT_FIRST_TOKEN_TIMEOUT:
      opts->first_token_timeout = g_value_get_uint (value);
      break;
    case LLM_OPT_FALLBACK_TEXT:
      replace_string (&opts->fallback_text, value);
      break;
    case LLM_OPT_INTERRUPTION:
      opts->interruption = g_value_get_enum (value);
      break;
    case LLM_OPT_CLAUSE_MIN_CHARS:
      opts->clause_min_chars = g_value_get_uint (value);
      break;
    case LLM_OPT_CLAUSE_MAX_WAIT_MS:
      opts->clause_max_wait_ms = g_value_get_uint (value);
      break;
    case LLM_OPT_COUNT:
      g_assert_not_reached ();
  }
}

/* Caller holds the object lock. */
void
llm_options_get (const LlmOptions *opts, LlmOption opt, GValue *value)
{
  switch (opt) {
    case LLM_OPT_URL:
      g_value_set_string (value, opts->url);
      break;
    case LLM_OPT_API_KEY: /* write-only: GObject never asks */
      g_assert_not_reached ();
      break;
    case LLM_OPT_MODEL:
      g_value_set_string (value, opts->model);
      break;
    case LLM_OPT_SYSTEM_PROMPT:
      g_value_set_string (value, opts->system_prompt);
      break;
    case LLM_OPT_GREETING:
      g_value_set_string (value, opts->greeting);
      break;
    case LLM_OPT_TEMPERATURE:
      g_value_set_double (value, opts->temperature);
      break;
    case LLM_OPT_MAX_TOKENS:
      g_value_set_int (value, opts->max_tokens);
      break;
    case LLM_OPT_HISTORY_TURNS:
      g_value_set_uint (value, opts->history_turns);
      break;
    case LLM_OPT_EXTRA_BODY:
      g_value_set_string (value, opts->extra_body);
      break;
    case LLM_OPT_FIRST_TOKEN_TIMEOUT:
      g_value_set_uint (value, opts->first_token_timeout);
      break;
    case LLM_OPT_FALLBACK_TEXT:
      g_value_set_string (value, opts->fallback_text);
      break;
    case LLM_OPT_INTERRUPTION:
      g_value_set_enum (value, opts->interruption);
      break;
    case LLM_OPT_CLAUSE_MIN_CHARS:
      g_value_set_uint (value, opts->clause_min_chars);
      break;
    case LLM_OPT_CLAUSE_MAX_WAIT_MS:
      g_value_set_uint (value, opts->clause_max_wait_ms);
      break;
    case LLM_OPT_COUNT:
      g_assert_not_reached ();
  }
}

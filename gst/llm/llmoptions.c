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
make_pspec (guint opt)
{
  switch ((LlmOption)opt) {
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
       * servers need none). Unset, $LLM_API_KEY or else $OPENAI_API_KEY is
       * read for each request, so a key set after the element was made is
       * used. Write-only, so pipeline dumps never show it.
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
    case LLM_OPT_HISTORY_SIZE:
      /**
       * GstLlmTransform:history-size:
       *
       * Named as gst-plugins-rs's llamacpp-texttransform names its history
       * bound (formerly `history-turns`, still accepted, deprecated). It
       * counts exchanges, as it always did: a caller's turn and the answer
       * the caller heard are one (rs counts messages).
       */
      return g_param_spec_uint ("history-size", "History size",
          "Past exchanges (caller's words and what the caller heard of the "
          "answer) sent with each request (0: none)",
          0, 100000, LLM_DEFAULT_HISTORY_SIZE, OPT_FLAGS);
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
    case LLM_OPT_FIRST_TOKEN_TIMEOUT_MS:
      /**
       * GstLlmTransform:first-token-timeout-ms:
       *
       * Formerly `first-token-timeout` (still accepted, deprecated): every
       * duration property names its unit.
       */
      return g_param_spec_uint ("first-token-timeout-ms", "First token timeout",
          "A first token later than this (in milliseconds) counts as a "
          "failed request (0: wait for ever)",
          0, 600000, LLM_DEFAULT_FIRST_TOKEN_TIMEOUT_MS, OPT_FLAGS);
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
    case LLM_OPT_MIN_INTERRUPTION_MS:
      /**
       * GstLlmTransform:min-interruption-ms:
       *
       * With interruption=confirmed. A second of speech over the agent is
       * more than a backchannel ("uh huh, yeah" takes about 700 ms) and
       * gives up waiting for the transcript's first word.
       */
      return g_param_spec_uint ("min-interruption-ms", "Minimum interruption",
          "With interruption=confirmed: speech over the agent lasting this "
          "long (in milliseconds) confirms a barge-in even before its words "
          "are known",
          100, 60000, LLM_DEFAULT_MIN_INTERRUPTION_MS, OPT_FLAGS);
    case LLM_OPT_FALSE_INTERRUPTION_TIMEOUT_MS:
      return g_param_spec_uint ("false-interruption-timeout-ms",
          "False interruption timeout",
          "With interruption=confirmed: a pause that no words confirmed "
          "ends this long (in milliseconds) after it began, and the agent "
          "resumes",
          100, 60000, LLM_DEFAULT_FALSE_INTERRUPTION_TIMEOUT_MS, OPT_FLAGS);
    case LLM_OPT_SPECULATIVE:
      /**
       * GstLlmTransform:speculative:
       *
       * On: the reply starts on `turn-likely` (deepgramsrc's likely pause)
       * and its text is held; `end-of-turn` with the same words releases
       * it, so the model's first tokens are ready when the turn is
       * committed. A reply the caller talked over is cancelled (the
       * server stops generating) and never enters the history. It costs
       * more requests (docs/turn-taking.md has the measured ratio).
       */
      return g_param_spec_boolean ("speculative", "Speculative replies",
          "Start the reply on turn-likely, before the turn is committed, "
          "and use it if the committed words are the same",
          LLM_DEFAULT_SPECULATIVE, OPT_FLAGS);
    case LLM_OPT_SPECULATIVE_MAX:
      return g_param_spec_uint ("speculative-max", "Speculative attempts",
          "Speculative requests per turn at most (0: none)", 0, 100,
          LLM_DEFAULT_SPECULATIVE_MAX, OPT_FLAGS);
    case LLM_OPT_SPECULATIVE_MAX_WORDS:
      return g_param_spec_uint ("speculative-max-words",
          "Speculative maximum words",
          "No speculative request for a turn longer than this many words "
          "(a long monologue costs most to ask again)",
          1, 100000, LLM_DEFAULT_SPECULATIVE_MAX_WORDS, OPT_FLAGS);
    case LLM_OPT_TURN_WORDS:
      return g_param_spec_string ("turn-words", "Turn word lists",
          "Key file of word lists per language, as deepgramsrc's "
          "turn-words; its backchannel list tells a backchannel from a "
          "barge-in (NULL: the built-in English lists)",
          NULL, OPT_FLAGS);
    case LLM_OPT_TURN_LANGUAGE:
      return g_param_spec_string ("turn-language", "Turn language",
          "Group of turn-words to use (a BCP-47 tag)",
          LLM_DEFAULT_TURN_LANGUAGE, OPT_FLAGS);
    case LLM_OPT_TOOLS_FILE:
      /**
       * GstLlmTransform:tools-file:
       *
       * A JSON array of OpenAI tool objects, each with `"webhook": {"url",
       * "timeout_ms", "headers_env"}` or `"builtin": "end_call" |
       * "transfer" | "wait"` (docs/elements/llmtransform.md, "Tools").
       * Read when the element starts and again when the property changes;
       * a file that cannot be used is an element error at start, a
       * warning later (requests then go without tools).
       */
      return g_param_spec_string ("tools-file", "Tools file",
          "Path of a JSON file declaring the tools the model may call "
          "(OpenAI tool objects, each with a webhook or a builtin); NULL: "
          "no tools",
          NULL, OPT_FLAGS);
    case LLM_OPT_TOOLS_SECRET:
      /**
       * GstLlmTransform:tools-secret:
       *
       * Signs every webhook request (`X-Voiceagent-Signature: t=<unix
       * time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`). Write-only and
       * redacted from logs; unset, $VOICEAGENT_TOOLS_SECRET is read.
       */
      return g_param_spec_string ("tools-secret", "Tools secret",
          "Key of the HMAC-SHA256 signature of webhook requests (default: "
          "$VOICEAGENT_TOOLS_SECRET; empty: not signed)",
          NULL, OPT_FLAGS & ~G_PARAM_READABLE);
    case LLM_OPT_CALL_ID:
      return g_param_spec_string ("call-id", "Call id",
          "The call's id, sent to webhooks as call_id and put in tool "
          "messages (NULL: none)",
          NULL, OPT_FLAGS);
    case LLM_OPT_MAX_TOOL_ROUNDS:
      /**
       * GstLlmTransform:max-tool-rounds:
       *
       * A model that keeps calling tools must still answer: the request
       * after the last round says `tool_choice: "none"`, and calls past
       * the limit get an error result instead of running.
       */
      return g_param_spec_uint ("max-tool-rounds", "Max tool rounds",
          "Rounds of tool calls one turn may make (0: tools are never run)", 0,
          20, LLM_DEFAULT_MAX_TOOL_ROUNDS, OPT_FLAGS);
    case LLM_OPT_TOOL_FILLER_TEXT:
      return g_param_spec_string ("tool-filler-text", "Tool filler text",
          "Said once per turn while tool calls take longer than "
          "tool-filler-ms (empty: nothing)",
          LLM_DEFAULT_TOOL_FILLER_TEXT, OPT_FLAGS);
    case LLM_OPT_TOOL_FILLER_MS:
      return g_param_spec_uint ("tool-filler-ms", "Tool filler delay",
          "Tool calls running this long (in milliseconds) make the agent "
          "say tool-filler-text (0: never)",
          0, 60000, LLM_DEFAULT_TOOL_FILLER_MS, OPT_FLAGS);
    case LLM_OPT_DEPRECATED_HISTORY_TURNS:
    case LLM_OPT_DEPRECATED_FIRST_TOKEN_TIMEOUT:
    case LLM_OPT_COUNT:
      /* Aliases get their pspec from the option's (gstvoiceoptions.c). */
      break;
  }
  g_assert_not_reached ();
  return NULL;
}

/* NULL stays NULL for every string: the users of each say what it means. */
static const GstVoiceOption options[LLM_OPT_COUNT] = {
  [LLM_OPT_URL] = { G_STRUCT_OFFSET (LlmOptions, url) },
  [LLM_OPT_API_KEY] = { G_STRUCT_OFFSET (LlmOptions, api_key),
      GST_VOICE_OPTION_SECRET },
  [LLM_OPT_MODEL] = { G_STRUCT_OFFSET (LlmOptions, model) },
  [LLM_OPT_SYSTEM_PROMPT] = { G_STRUCT_OFFSET (LlmOptions, system_prompt) },
  [LLM_OPT_GREETING] = { G_STRUCT_OFFSET (LlmOptions, greeting) },
  [LLM_OPT_TEMPERATURE] = { G_STRUCT_OFFSET (LlmOptions, temperature) },
  [LLM_OPT_MAX_TOKENS] = { G_STRUCT_OFFSET (LlmOptions, max_tokens) },
  [LLM_OPT_HISTORY_SIZE] = { G_STRUCT_OFFSET (LlmOptions, history_size) },
  /* Stored as given: set_property checks it (and warns) first, because the
   * check logs for the element. */
  [LLM_OPT_EXTRA_BODY] = { G_STRUCT_OFFSET (LlmOptions, extra_body) },
  [LLM_OPT_FIRST_TOKEN_TIMEOUT_MS] = { G_STRUCT_OFFSET (
      LlmOptions, first_token_timeout_ms) },
  [LLM_OPT_FALLBACK_TEXT] = { G_STRUCT_OFFSET (LlmOptions, fallback_text) },
  [LLM_OPT_INTERRUPTION] = { G_STRUCT_OFFSET (LlmOptions, interruption) },
  [LLM_OPT_CLAUSE_MIN_CHARS] = { G_STRUCT_OFFSET (
      LlmOptions, clause_min_chars) },
  [LLM_OPT_CLAUSE_MAX_WAIT_MS] = { G_STRUCT_OFFSET (
      LlmOptions, clause_max_wait_ms) },
  [LLM_OPT_MIN_INTERRUPTION_MS] = { G_STRUCT_OFFSET (
      LlmOptions, min_interruption_ms) },
  [LLM_OPT_FALSE_INTERRUPTION_TIMEOUT_MS] = { G_STRUCT_OFFSET (
      LlmOptions, false_interruption_timeout_ms) },
  [LLM_OPT_SPECULATIVE] = { G_STRUCT_OFFSET (LlmOptions, speculative) },
  [LLM_OPT_SPECULATIVE_MAX] = { G_STRUCT_OFFSET (LlmOptions, speculative_max) },
  [LLM_OPT_SPECULATIVE_MAX_WORDS] = { G_STRUCT_OFFSET (
      LlmOptions, speculative_max_words) },
  [LLM_OPT_TURN_WORDS] = { G_STRUCT_OFFSET (LlmOptions, turn_words) },
  [LLM_OPT_TURN_LANGUAGE] = { G_STRUCT_OFFSET (LlmOptions, turn_language),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  [LLM_OPT_TOOLS_FILE] = { G_STRUCT_OFFSET (LlmOptions, tools_file) },
  [LLM_OPT_TOOLS_SECRET] = { G_STRUCT_OFFSET (LlmOptions, tools_secret),
      GST_VOICE_OPTION_SECRET },
  [LLM_OPT_CALL_ID] = { G_STRUCT_OFFSET (LlmOptions, call_id) },
  [LLM_OPT_MAX_TOOL_ROUNDS] = { G_STRUCT_OFFSET (LlmOptions, max_tool_rounds) },
  [LLM_OPT_TOOL_FILLER_TEXT] = { G_STRUCT_OFFSET (
      LlmOptions, tool_filler_text) },
  [LLM_OPT_TOOL_FILLER_MS] = { G_STRUCT_OFFSET (LlmOptions, tool_filler_ms) },
  [LLM_OPT_DEPRECATED_HISTORY_TURNS] =
      GST_VOICE_OPTION_ALIAS ("history-turns", LLM_OPT_HISTORY_SIZE, 1),
  [LLM_OPT_DEPRECATED_FIRST_TOKEN_TIMEOUT] = GST_VOICE_OPTION_ALIAS (
      "first-token-timeout", LLM_OPT_FIRST_TOKEN_TIMEOUT_MS, 1),
};

GstVoiceOptionTable llm_options_table =
    GST_VOICE_OPTION_TABLE_INIT (options, make_pspec);

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
  gst_voice_options_install (&llm_options_table, klass, first_prop_id);
}

/**
 * llm_options_resolve_api_key:
 * @opts: a copy of the options, for one request
 *
 * The key a request sends: the api-key property if set, else $LLM_API_KEY,
 * else $OPENAI_API_KEY, read now (when the request connects), so a key put
 * in the environment after the element was made is used. Registered with
 * the redaction list.
 *
 * Returns: (transfer full) (nullable): the key; NULL (an empty property,
 *   or none anywhere) means no Authorization header, for local servers
 */
gchar *
llm_options_resolve_api_key (const LlmOptions *opts)
{
  static const gchar *const env[] = { "LLM_API_KEY", "OPENAI_API_KEY", NULL };

  return gst_voice_api_key_resolve (opts->api_key, env);
}

/**
 * llm_options_resolve_tools_secret:
 *
 * The key webhook signatures use: the tools-secret property if set, else
 * $VOICEAGENT_TOOLS_SECRET, registered with the redaction list.
 *
 * Returns: (transfer full) (nullable): the secret; NULL: requests are not
 *   signed
 */
gchar *
llm_options_resolve_tools_secret (const LlmOptions *opts)
{
  static const gchar *const env[] = { "VOICEAGENT_TOOLS_SECRET", NULL };

  return gst_voice_api_key_resolve (opts->tools_secret, env);
}

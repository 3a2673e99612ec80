/* voiceagent-emulator: Deepgram, ElevenLabs and OpenAI-compatible services on
 * loopback, with real local engines. Shared declarations of the services.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One process, one GMainContext (the default one): every handler runs on the
 * main thread, except engine work that a service moves to a worker thread and
 * hands back with g_main_context_invoke(). The structs below are read-only
 * after start-up unless a field says otherwise.
 */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Service latencies injected on top of the engines' own time. */
typedef struct
{
  guint stt_final_ms; /* STT final result after the endpoint */
  guint llm_first_token_ms; /* LLM time to first token */
  guint llm_tokens_per_s; /* LLM streaming speed (0 = as fast as possible) */
  guint
      tts_first_audio_ms; /* TTS first audio after the text that triggers it */
} EmuLatency;

/* A fault to inject, by flag (for every connection of a service), through
 * query parameters of one request (`emu_fault=...`, see emu_fault_parse()), or
 * armed on the control endpoint for the next connection(s). */
typedef struct
{
  gint
      close_after_messages; /* close a WebSocket after N sent messages; -1 = off */
  gint close_after_ms; /* close a WebSocket N ms after it opened; -1 = off */
  gushort close_code; /* close code for the two above (default 1011) */
  gchar *close_reason; /* close reason (owned) */
  gboolean stall; /* stop reading from the client and stop answering */
  guint
      http_status; /* answer the request / handshake with this status (0 = off) */
  guint retry_after_s; /* Retry-After header with http_status (0 = none) */
  gboolean malformed_frame; /* send one malformed frame / SSE line then go on */
  guint slow_tokens_per_s; /* LLM: stream at this speed (0 = off) */
} EmuFault;

typedef struct
{
  guint16 port;
  gchar *host; /* 127.0.0.1 */

  /* Accepted keys; NULL accepts any non-empty key (still required). */
  gchar *deepgram_key;
  gchar *elevenlabs_key;
  gchar *openai_key;

  gchar *stt_engine; /* "pocketsphinx" or "scripted" */
  gchar
      *stt_script; /* scripted engine: file of transcripts, one per utterance */
  gchar *tts_engine; /* "espeak-ng" or "tone" */
  gchar *llm_rules; /* JSON rules file for the responder, may be NULL */
  gchar *deepgram_replay; /* JSON-lines file replayed verbatim, may be NULL */
  gchar *llm_replay; /* SSE body file served verbatim, may be NULL */
  gchar *llm_tool_format; /* streamed tool calls: "openai" (NULL) or "vllm" */

  EmuLatency latency;
  /* Faults armed for every connection of a service (by flag). */
  EmuFault deepgram_fault;
  EmuFault elevenlabs_fault;
  EmuFault llm_fault;

  gboolean quiet; /* no per-connection lines */

  /* Deepgram: close 1011 NET-0001 after this long without audio or a text
   * message; 0 = Deepgram's 10 s (--deepgram-timeout-ms). */
  guint deepgram_timeout_ms;
  /* Deepgram: pocketsphinx decoders loaded in the background at start-up
   * (--stt-preload), so the first connections need not wait for one. */
  guint stt_preload;
} EmuConfig;

/* Per-service registration, called once from main() after the server exists. */
void emu_deepgram_register (SoupServer *server, EmuConfig *config);
void emu_elevenlabs_register (SoupServer *server, EmuConfig *config);
void emu_openai_register (SoupServer *server, EmuConfig *config);
void emu_control_register (SoupServer *server, EmuConfig *config);

/* Faults. emu_fault_init() sets the "off" values. emu_fault_parse() reads one
 * spec such as "close:messages=3:code=1011", "close:ms=2000", "stall",
 * "http:503:retry=2", "malformed", "slow:5" (several joined with ','); returns
 * FALSE with @error set on a bad spec. emu_fault_for_connection() fills @out
 * with what applies to a new connection of @service ("deepgram",
 * "elevenlabs", "llm"): the flag-armed fault, then one armed on the control
 * endpoint (consumed), then the `emu_fault` query parameter of @msg. */
void emu_fault_init (EmuFault *fault);
void emu_fault_clear (EmuFault *fault);
gboolean emu_fault_parse (const gchar *spec, EmuFault *fault, GError **error);
void emu_fault_for_connection (
    const gchar *service, SoupServerMessage *msg, EmuFault *out);

/* Control endpoint bookkeeping: services report events that tests read back
 * from GET /emulator/events (e.g. "llm-aborted", "deepgram-finalize"). */
void emu_record_event (
    const gchar *service, const gchar *event, const gchar *detail);

/* One line per connection on stdout: service, client, duration, outcome. */
void emu_log_connection (const gchar *service, const gchar *client,
    gint64 started_us, const gchar *outcome);

/* Auth check helper: the key a request carries against @expected (NULL:
 * any non-empty key). */
gboolean emu_key_matches (const gchar *presented, const gchar *expected);

/* Sends a JSON error body with @status. */
void emu_send_json_error (
    SoupServerMessage *msg, guint status, const gchar *json_body);

/* Additions (after the first version of this interface). */

/* Fills @latency from a profile name: "zero" or "reference" (STT final 45 ms,
 * LLM first token 110 ms at 80 tokens/s, TTS first audio 130 ms). FALSE for
 * an unknown name. */
gboolean emu_latency_profile (const gchar *name, EmuLatency *latency);

/* Forgets armed faults and recorded events (POST /emulator/reset). */
void emu_control_reset (void);

/* Frees the control state at exit. */
void emu_control_shutdown (void);

/* "host:port" of the peer of @msg; free with g_free(). */
gchar *emu_client_address (SoupServerMessage *msg);

/* Registers @func (@data) to run once at exit, after the server stopped
 * listening and before the main context is drained: a service closes its live
 * connections and frees its state there. Functions run in reverse order of
 * registration. */
void emu_at_shutdown (GDestroyNotify func, gpointer data);

void emu_append_json_string (GString *out, const gchar *s);

G_END_DECLS

/* voiceagent-emulator: Deepgram, ElevenLabs and OpenAI-compatible services on
 * loopback, with real local engines. Options, the server, signals.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: voiceagent-emulator [--port 0] [--tts-engine tone] ... (--help);
 * docs/emulator.md is the manual.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "emulator.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "dev"
#endif

#define DEFAULT_PORT 8790

typedef struct
{
  GDestroyNotify func;
  gpointer data;
} ShutdownHook;

static GSList *shutdown_hooks; /* (element-type ShutdownHook) newest first */

void
emu_at_shutdown (GDestroyNotify func, gpointer data)
{
  ShutdownHook *h = g_new (ShutdownHook, 1);

  h->func = func;
  h->data = data;
  shutdown_hooks = g_slist_prepend (shutdown_hooks, h);
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_CONTINUE;
}

/* Reads one fault option into @fault; prints and returns FALSE when bad. */
static gboolean
parse_fault_option (const gchar *name, const gchar *spec, EmuFault *fault)
{
  g_autoptr (GError) error = NULL;

  if (!spec)
    return TRUE;
  if (emu_fault_parse (spec, fault, &error))
    return TRUE;
  g_printerr ("voiceagent-emulator: --%s: %s\n", name, error->message);
  return FALSE;
}

static gchar *
key_option (gchar *flag, const gchar *env)
{
  const gchar *v;

  if (flag)
    return flag;
  v = g_getenv (env);
  return v && *v ? g_strdup (v) : NULL;
}

static void
config_clear (EmuConfig *c)
{
  g_free (c->host);
  g_free (c->deepgram_key);
  g_free (c->elevenlabs_key);
  g_free (c->openai_key);
  g_free (c->stt_engine);
  g_free (c->stt_script);
  g_free (c->tts_engine);
  g_free (c->llm_rules);
  g_free (c->deepgram_replay);
  g_free (c->llm_replay);
  g_free (c->llm_tool_format);
  emu_fault_clear (&c->deepgram_fault);
  emu_fault_clear (&c->elevenlabs_fault);
  emu_fault_clear (&c->llm_fault);
}

static void
close_after_response (SoupServerMessage *msg, gpointer data)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);

  if (soup_message_headers_get_one (req, "Upgrade") == NULL)
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "Connection", "close");
}

/* FIXME: libsoup 3.2's server never notices a client closing a kept-alive
 * connection (it stays in CLOSE-WAIT, one fd each), so plain HTTP
 * responses close their connection; WebSocket upgrades are left alone. */
static void
on_request_started (SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  g_signal_connect (
      msg, "got-headers", G_CALLBACK (close_after_response), NULL);
}

/* Under AddressSanitizer, the test suite's fast_unwind_on_malloc=0 (which
 * its leak suppressions need in processes that load GStreamer) makes every
 * pocketsphinx allocation walk the stack: decoding then falls behind real
 * time and Finalize goes unanswered. The emulator's own leak checks need no
 * full stacks, so it restarts itself once with the fast unwinder, whoever
 * started it (a test, or voiceagent --emulator). */
static void
use_fast_asan_unwinder (char **argv)
{
#ifdef __SANITIZE_ADDRESS__
  const gchar *opts = g_getenv ("ASAN_OPTIONS");
  const gchar *slow = opts ? strstr (opts, "fast_unwind_on_malloc=0") : NULL;
  g_autofree gchar *fast = NULL;

  if (!slow)
    return;
  fast = g_strdup (opts);
  fast[slow - opts + strlen ("fast_unwind_on_malloc=")] = '1';
  g_setenv ("ASAN_OPTIONS", fast, TRUE);
  execv ("/proc/self/exe", argv);
  g_printerr ("voiceagent-emulator: re-exec with fast unwinding failed: %s\n",
      g_strerror (errno));
#else
  (void)argv;
#endif
}

int
main (int argc, char **argv)
{
  EmuConfig config = { 0 };
  gint port = DEFAULT_PORT;
  gchar *port_file = NULL, *latency = NULL;
  gchar *deepgram_fault = NULL, *elevenlabs_fault = NULL, *llm_fault = NULL;
  gint stt_final_ms = -1, llm_first_token_ms = -1, llm_tokens_per_s = -1,
       tts_first_audio_ms = -1, deepgram_timeout_ms = 0, stt_preload = 0;
  gboolean version = FALSE;
  GOptionEntry entries[] = { { "host", 0, 0, G_OPTION_ARG_STRING, &config.host,
                                 "Address to listen on (default 127.0.0.1)",
                                 "ADDR" },
    { "port", 'p', 0, G_OPTION_ARG_INT, &port,
        "Port to listen on; 0 picks a free one and prints it (default 8790)",
        "PORT" },
    { "port-file", 0, 0, G_OPTION_ARG_FILENAME, &port_file,
        "Also write the port to FILE once listening", "FILE" },
    { "deepgram-key", 0, 0, G_OPTION_ARG_STRING, &config.deepgram_key,
        "Only accept this Deepgram key (env EMULATOR_DEEPGRAM_KEY; default: "
        "any non-empty key)",
        "KEY" },
    { "elevenlabs-key", 0, 0, G_OPTION_ARG_STRING, &config.elevenlabs_key,
        "Only accept this ElevenLabs key (env EMULATOR_ELEVENLABS_KEY)",
        "KEY" },
    { "openai-key", 0, 0, G_OPTION_ARG_STRING, &config.openai_key,
        "Only accept this OpenAI key (env EMULATOR_OPENAI_KEY)", "KEY" },
    { "stt-engine", 0, 0, G_OPTION_ARG_STRING, &config.stt_engine,
        "Recognition engine: pocketsphinx or scripted (default pocketsphinx)",
        "NAME" },
    { "stt-script", 0, 0, G_OPTION_ARG_FILENAME, &config.stt_script,
        "Scripted engine: file of transcripts, one per utterance", "FILE" },
    { "tts-engine", 0, 0, G_OPTION_ARG_STRING, &config.tts_engine,
        "Synthesis engine: espeak-ng or tone (default espeak-ng)", "NAME" },
    { "llm-rules", 0, 0, G_OPTION_ARG_FILENAME, &config.llm_rules,
        "JSON rules file for the LLM responder", "FILE" },
    { "deepgram-replay", 0, 0, G_OPTION_ARG_FILENAME, &config.deepgram_replay,
        "Replay these Deepgram messages (JSON lines) verbatim", "FILE" },
    { "llm-replay", 0, 0, G_OPTION_ARG_FILENAME, &config.llm_replay,
        "Serve this recorded SSE body verbatim for streamed completions",
        "FILE" },
    { "llm-tool-format", 0, 0, G_OPTION_ARG_STRING, &config.llm_tool_format,
        "Streamed tool calls as openai (default) or vllm sends them",
        "FORMAT" },
    { "latency", 0, 0, G_OPTION_ARG_STRING, &latency,
        "Latency profile: zero or reference (default zero)", "PROFILE" },
    { "stt-final-ms", 0, 0, G_OPTION_ARG_INT, &stt_final_ms,
        "STT final result this long after the endpoint", "MS" },
    { "llm-first-token-ms", 0, 0, G_OPTION_ARG_INT, &llm_first_token_ms,
        "LLM time to first token", "MS" },
    { "llm-tokens-per-s", 0, 0, G_OPTION_ARG_INT, &llm_tokens_per_s,
        "LLM streaming speed (0 = as fast as possible)", "N" },
    { "tts-first-audio-ms", 0, 0, G_OPTION_ARG_INT, &tts_first_audio_ms,
        "TTS first audio this long after the text that triggers it", "MS" },
    { "deepgram-fault", 0, 0, G_OPTION_ARG_STRING, &deepgram_fault,
        "Fault for every Deepgram connection (see docs/emulator.md)", "SPEC" },
    { "elevenlabs-fault", 0, 0, G_OPTION_ARG_STRING, &elevenlabs_fault,
        "Fault for every ElevenLabs connection", "SPEC" },
    { "llm-fault", 0, 0, G_OPTION_ARG_STRING, &llm_fault,
        "Fault for every LLM request", "SPEC" },
    /* Deepgram service: its idle timeout (NET-0001), shorter in tests. */
    { "deepgram-timeout-ms", 0, 0, G_OPTION_ARG_INT, &deepgram_timeout_ms,
        "Deepgram: close 1011 NET-0001 after MS without audio or a message "
        "(default 10000)",
        "MS" },
    { "stt-preload", 0, 0, G_OPTION_ARG_INT, &stt_preload,
        "Deepgram: pocketsphinx decoders to load at start-up (default 0)",
        "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &config.quiet,
        "No per-connection lines", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL } };
  g_autoptr (GOptionContext) ctx = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  SoupServer *server = NULL;
  GSList *uris;
  guint sigint, sigterm;
  int ret = EXIT_FAILURE;

  use_fast_asan_unwinder (argv);
  ctx = g_option_context_new ("- Deepgram, ElevenLabs and OpenAI on loopback");
  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error)) {
    g_printerr ("voiceagent-emulator: %s\n", error->message);
    goto out;
  }
  if (version) {
    printf ("voiceagent-emulator %s\n", VERSION);
    ret = EXIT_SUCCESS;
    goto out;
  }

  if (!config.host)
    config.host = g_strdup ("127.0.0.1");
  if (!config.stt_engine)
    config.stt_engine = g_strdup ("pocketsphinx");
  if (!config.tts_engine)
    config.tts_engine = g_strdup ("espeak-ng");
  config.deepgram_key =
      key_option (config.deepgram_key, "EMULATOR_DEEPGRAM_KEY");
  config.elevenlabs_key =
      key_option (config.elevenlabs_key, "EMULATOR_ELEVENLABS_KEY");
  config.openai_key = key_option (config.openai_key, "EMULATOR_OPENAI_KEY");
  if (port < 0 || port > 65535) {
    g_printerr ("voiceagent-emulator: --port must be 0..65535\n");
    goto out;
  }
  config.port = port;

  if (config.llm_tool_format &&
      !g_str_equal (config.llm_tool_format, "openai") &&
      !g_str_equal (config.llm_tool_format, "vllm")) {
    g_printerr ("voiceagent-emulator: --llm-tool-format must be openai or "
                "vllm\n");
    goto out;
  }
  if (!emu_latency_profile (latency ? latency : "zero", &config.latency)) {
    g_printerr ("voiceagent-emulator: --latency must be zero or "
                "reference\n");
    goto out;
  }
  if (stt_final_ms >= 0)
    config.latency.stt_final_ms = stt_final_ms;
  if (llm_first_token_ms >= 0)
    config.latency.llm_first_token_ms = llm_first_token_ms;
  if (llm_tokens_per_s >= 0)
    config.latency.llm_tokens_per_s = llm_tokens_per_s;
  if (tts_first_audio_ms >= 0)
    config.latency.tts_first_audio_ms = tts_first_audio_ms;
  if (deepgram_timeout_ms < 0) {
    g_printerr ("voiceagent-emulator: --deepgram-timeout-ms must be >= 0\n");
    goto out;
  }
  config.deepgram_timeout_ms = deepgram_timeout_ms;
  if (stt_preload < 0 || stt_preload > 64) {
    g_printerr ("voiceagent-emulator: --stt-preload must be 0..64\n");
    goto out;
  }
  config.stt_preload = stt_preload;

  emu_fault_init (&config.deepgram_fault);
  emu_fault_init (&config.elevenlabs_fault);
  emu_fault_init (&config.llm_fault);
  if (!parse_fault_option (
          "deepgram-fault", deepgram_fault, &config.deepgram_fault) ||
      !parse_fault_option (
          "elevenlabs-fault", elevenlabs_fault, &config.elevenlabs_fault) ||
      !parse_fault_option ("llm-fault", llm_fault, &config.llm_fault))
    goto out;

  server =
      soup_server_new ("server-header", "voiceagent-emulator/" VERSION, NULL);
  g_signal_connect (
      server, "request-started", G_CALLBACK (on_request_started), NULL);
  /* No permessage-deflate: compressing base64 audio costs ~10 ms per 100 KB
   * frame on the main thread, which is what limits a load test; clients
   * that offer it fall back to plain frames, as the protocol allows. */
  soup_server_remove_websocket_extension (
      server, SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE);
  emu_control_register (server, &config);
  emu_openai_register (server, &config);
  emu_elevenlabs_register (server, &config);
  emu_deepgram_register (server, &config);

  {
    g_autoptr (GInetAddress) addr =
        g_inet_address_new_from_string (config.host);
    g_autoptr (GSocketAddress) sa = NULL;
    if (!addr) {
      g_printerr (
          "voiceagent-emulator: --host %s is not an IP address\n", config.host);
      goto out;
    }
    sa = g_inet_socket_address_new (addr, config.port);
    if (!soup_server_listen (server, sa, 0, &error)) {
      g_printerr ("voiceagent-emulator: cannot listen on %s:%u: %s\n",
          config.host, config.port, error->message);
      goto out;
    }
  }
  uris = soup_server_get_uris (server);
  if (uris) {
    config.port = g_uri_get_port (uris->data);
    g_slist_free_full (uris, (GDestroyNotify)g_uri_unref);
  }
  printf ("voiceagent-emulator: listening on http://%s:%u/ (tts %s, stt %s)\n",
      config.host, config.port, config.tts_engine, config.stt_engine);
  fflush (stdout);
  if (port_file) {
    g_autofree gchar *text = g_strdup_printf ("%u\n", config.port);
    if (!g_file_set_contents (port_file, text, -1, &error)) {
      g_printerr ("voiceagent-emulator: --port-file: %s\n", error->message);
      goto out;
    }
  }

  loop = g_main_loop_new (NULL, FALSE);
  sigint = g_unix_signal_add (SIGINT, quit_cb, loop);
  sigterm = g_unix_signal_add (SIGTERM, quit_cb, loop);
  g_main_loop_run (loop);
  g_source_remove (sigint);
  g_source_remove (sigterm);
  ret = EXIT_SUCCESS;

out:
  if (server)
    soup_server_disconnect (server);
  while (shutdown_hooks) {
    ShutdownHook *h = shutdown_hooks->data;
    shutdown_hooks = g_slist_delete_link (shutdown_hooks, shutdown_hooks);
    h->func (h->data);
    g_free (h);
  }
  /* Let closed connections and cancelled jobs finish their callbacks. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  emu_control_shutdown ();
  config_clear (&config);
  g_free (port_file);
  g_free (latency);
  g_free (deepgram_fault);
  g_free (elevenlabs_fault);
  g_free (llm_fault);
  return ret;
}

/* voiceagent: configuration from flags, environment and a key file.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  /* HTTP */
  gchar *host; /* listen address, default 127.0.0.1 */
  guint port; /* default 8080; 0 picks a free one */
  gchar *port_file; /* write the port here once listening */
  gchar *log_format; /* "text" (default) or "json" */
  gchar *token; /* Bearer token callers send to POST /whip, or NULL */
  gchar *admin_token; /* operators: /calls, /metrics, any call; or NULL */
  gchar *ops_listen; /* ADDR:PORT serving ops endpoints without a token */
  gchar *cors_origin; /* Access-Control-Allow-Origin, default "*" */
  gsize max_body; /* largest request body accepted, bytes */
  guint max_connections; /* open HTTP connections */
  guint request_timeout_s; /* a request must arrive whole within this */
  guint idle_timeout_s; /* a silent connection closes after this */

  /* Calls */
  gchar *pipelines_dir; /* where the templates live */
  gchar *default_agent; /* template used by POST /whip */
  guint max_calls; /* hard cap on calls + listeners; 503 beyond */
  guint max_listeners; /* WHEP listeners per call */
  guint max_call_s; /* a call ends after this long */
  guint ice_timeout_ms; /* wait for ICE gathering before answering */
  guint disconnect_timeout_s; /* ICE disconnected this long ends the call */
  guint connect_timeout_s; /* ICE not connected this long after the answer */
  guint drain_timeout_s; /* SIGTERM waits this long for calls */
  gchar **stun_servers; /* stun://host:port */
  gchar **turn_servers; /* turn:host:port[?transport=] or turns: */
  gchar *turn_secret; /* coturn static-auth-secret, or NULL */
  guint turn_ttl_s; /* lifetime of the TURN credentials handed out */
  gchar *public_ip; /* announced address for NAT (added to candidates) */

  /* Services: a key or URL switches one service to the real one. */
  gchar *deepgram_key;
  gchar *deepgram_url;
  gchar *elevenlabs_key;
  gchar *elevenlabs_url;
  gchar *elevenlabs_voice;
  gchar *llm_key;
  gchar *llm_url;
  gchar *llm_model;
  gchar *system_prompt;
  gchar *greeting;
  gchar *emulator_path; /* voiceagent-emulator to start for local backends */
  gchar *emulator_args; /* extra arguments for it */

  /* Scale-out (docs/deployment.md) */
  gchar *redis; /* redis://[[user]:password@]host[:port][/db][,...] or NULL */
  gchar *advertise_url; /* this instance's URL for redirects */

  /* Gateway mode (docs/architecture.md): workers behind a media gateway */
  gchar *gateway; /* the front: Janus's HTTP API URL, or NULL (direct) */
  gchar *cluster_token; /* the front's Bearer token on /gateway/, or NULL */
  gchar *rtp_bind; /* address a worker's RTP sockets bind, default 127.0.0.1 */

  /* Records and prices */
  gchar *database; /* call records: SQLite file or postgresql:// URI */
  gdouble price_stt_per_min; /* USD per minute of audio sent to STT */
  gdouble price_tts_per_1k_chars; /* USD per 1,000 characters */
  gdouble price_llm_per_m_input; /* USD per million prompt tokens */
  gdouble price_llm_per_m_output; /* USD per million completion tokens */

  /* Recordings and webhooks (docs/operations.md) */
  gchar *record_dir; /* --record DIR, or NULL: no recordings */
  gchar *record_calls; /* "all" or "opt-in" (POST /whip?record=1) */
  guint record_max_mb; /* one recording's bound, and the free space needed */
  gchar *webhook_url; /* POST call.ended here, or NULL */
  gchar *webhook_secret; /* HMAC-SHA256 key; never logged */
  guint webhook_retries; /* attempts per delivery */
  guint webhook_timeout_s; /* per attempt */

  gchar *key_file; /* optional key file the values above came from */
} VaConfig;

VaConfig *va_config_new (void);
void va_config_free (VaConfig *config);
void va_config_register_secrets (const VaConfig *config);

/* Parses @argv (flags win over the environment, which wins over the key
 * file, which wins over defaults). Returns FALSE with @error on a bad value;
 * @argv keeps what it did not consume (e.g. a subcommand). */
gboolean va_config_load (
    VaConfig *config, gint *argc, gchar ***argv, GError **error);

G_END_DECLS

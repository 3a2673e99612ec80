/* voiceagent: configuration from flags, environment and a key file.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every setting is one row of `settings` below: its flag, its environment
 * variable, its key in the key file ([voiceagent] group, same name as the
 * flag) and its place in VaConfig. Precedence: flag > environment > key
 * file > default.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "auth.h"
#include "vaconfig.h"
#include "voice.h"

typedef enum {
  SETTING_STRING,
  SETTING_UINT,
  SETTING_DOUBLE,
  SETTING_STRV, /* comma-separated in env and key file */
} SettingType;

typedef struct
{
  const gchar *flag;
  const gchar *env;
  SettingType type;
  gsize offset;
  const gchar *description;
  const gchar *arg;
  /* A secret also reads from a file (--FLAG-file, ENV_FILE, FLAG-file in
   * the key file), and --FLAG itself warns: argv is world-readable. */
  gboolean secret;
  /* A URL that may carry a password (scheme://user:password@host): that
   * part is scrubbed from argv, with a warning. */
  gboolean url_password;
} Setting;

#define OFF(field) offsetof (VaConfig, field)
#define SECRET .secret = TRUE
#define URL_PASSWORD .url_password = TRUE

static const Setting settings[] = {
  { "host", "VOICEAGENT_HOST", SETTING_STRING, OFF (host),
      "Address to listen on (default 127.0.0.1; 0.0.0.0 for all)", "ADDR" },
  { "port", "VOICEAGENT_PORT", SETTING_UINT, OFF (port),
      "HTTP port (default 8080; 0 picks a free one)", "PORT" },
  { "port-file", NULL, SETTING_STRING, OFF (port_file),
      "Write the port to FILE once listening", "FILE" },
  { "log-format", "VOICEAGENT_LOG_FORMAT", SETTING_STRING, OFF (log_format),
      "Log lines as text (voiceagent: EVENT call=ID turn=N key=value...) "
      "or json (one object per line, for journald/Loki/Elasticsearch; "
      "default text)",
      "text|json" },
  { "token", "VOICEAGENT_TOKEN", SETTING_STRING, OFF (token),
      "The bearer-token callers send to POST /whip (default: none, anyone "
      "may call)",
      "TOKEN", SECRET },
  { "admin-token", "VOICEAGENT_ADMIN_TOKEN", SETTING_STRING, OFF (admin_token),
      "The bearer-token of operators: /calls, /metrics, listening to and "
      "ending any call (default: none, ops only on --ops-listen)",
      "TOKEN", SECRET },
  { "ops-listen", "VOICEAGENT_OPS_LISTEN", SETTING_STRING, OFF (ops_listen),
      "Also listen on ADDR:PORT for operators: /calls, /metrics, /healthz, "
      "/readyz there need no token (default: none)",
      "ADDR:PORT" },
  { "cors-origin", "VOICEAGENT_CORS_ORIGIN", SETTING_STRING, OFF (cors_origin),
      "Access-Control-Allow-Origin (default *)", "ORIGIN" },
  { "max-body", NULL, SETTING_UINT, OFF (max_body),
      "Largest request body accepted, bytes, chunked or not (default 65536)",
      "BYTES" },
  { "max-connections", NULL, SETTING_UINT, OFF (max_connections),
      "Most open HTTP connections; more get 503 (default 1024)", "N" },
  { "request-timeout", NULL, SETTING_UINT, OFF (request_timeout_s),
      "A request's headers and body must arrive within S seconds of its "
      "first byte, else 408 (default 10)",
      "S" },
  { "idle-timeout", NULL, SETTING_UINT, OFF (idle_timeout_s),
      "Close a connection silent for S seconds either way (default 30)", "S" },
  { "pipelines", "VOICEAGENT_PIPELINES", SETTING_STRING, OFF (pipelines_dir),
      "Folder of pipeline templates (default: the installed pipelines/)",
      "DIR" },
  { "agent", "VOICEAGENT_AGENT", SETTING_STRING, OFF (default_agent),
      "Template POST /whip uses (default agent)", "NAME" },
  { "max-calls", "VOICEAGENT_MAX_CALLS", SETTING_UINT, OFF (max_calls),
      "Most concurrent calls and WHEP listeners together; more get 503 "
      "(default: 12 per CPU core, what docs/benchmarks.md measured)",
      "N" },
  { "max-listeners", NULL, SETTING_UINT, OFF (max_listeners),
      "Most WHEP listeners on one call (default 2)", "N" },
  { "max-call-seconds", NULL, SETTING_UINT, OFF (max_call_s),
      "A call ends after this long (default 3600)", "S" },
  { "ice-timeout-ms", NULL, SETTING_UINT, OFF (ice_timeout_ms),
      "Longest wait for ICE gathering before answering (default 2000)", "MS" },
  { "disconnect-timeout", NULL, SETTING_UINT, OFF (disconnect_timeout_s),
      "End a call whose ICE stays disconnected this long (default 10)", "S" },
  { "connect-timeout", NULL, SETTING_UINT, OFF (connect_timeout_s),
      "End a call (drop a listener) whose ICE has not connected S seconds "
      "after its answer (default 30; 0: never)",
      "S" },
  { "drain-timeout", NULL, SETTING_UINT, OFF (drain_timeout_s),
      "On SIGTERM, wait this long for calls to end (default 300)", "S" },
  { "stun-server", "VOICEAGENT_STUN", SETTING_STRV, OFF (stun_servers),
      "STUN server stun://host:port (repeatable)", "URL" },
  { "gateway", "VOICEAGENT_GATEWAY", SETTING_STRING, OFF (gateway),
      "Gateway mode, the front: callers' peer connections end in Janus "
      "at this HTTP API URL (http://HOST:8088/janus) and calls run on "
      "workers from the --redis registry (default: none, direct mode)",
      "URL" },
  { "cluster-token", "VOICEAGENT_CLUSTER_TOKEN", SETTING_STRING,
      OFF (cluster_token),
      "Gateway mode: the token the front presents on /gateway/ "
      "(default: none, this instance is no gateway worker)",
      "TOKEN", SECRET },
  { "rtp-bind", "VOICEAGENT_RTP_BIND", SETTING_STRING, OFF (rtp_bind),
      "Gateway mode: the address a worker's RTP sockets bind, reachable "
      "from the gateway (default 127.0.0.1)",
      "ADDR" },
  { "turn-server", "VOICEAGENT_TURN", SETTING_STRV, OFF (turn_servers),
      "TURN server turn:host:port[?transport=udp|tcp] or turns:... "
      "(repeatable); callers get credentials from --turn-secret",
      "URL", URL_PASSWORD },
  { "turn-secret", "VOICEAGENT_TURN_SECRET", SETTING_STRING, OFF (turn_secret),
      "coturn's static-auth-secret: each call gets its own TURN "
      "credentials from it (REST API form)",
      "SECRET", SECRET },
  { "turn-ttl", NULL, SETTING_UINT, OFF (turn_ttl_s),
      "Seconds the TURN credentials a caller gets stay valid (default: "
      "--max-call-seconds + 60)",
      "S" },
  { "public-ip", "VOICEAGENT_PUBLIC_IP", SETTING_STRING, OFF (public_ip),
      "Address announced in ICE candidates, for a server behind NAT", "ADDR" },
  { "deepgram-key", "DEEPGRAM_API_KEY", SETTING_STRING, OFF (deepgram_key),
      "Deepgram API key (unset: local emulator)", "KEY", SECRET },
  { "deepgram-url", "DEEPGRAM_URL", SETTING_STRING, OFF (deepgram_url),
      "Deepgram live URL (default wss://api.deepgram.com/v1/listen)", "URL" },
  { "elevenlabs-key", "ELEVENLABS_API_KEY", SETTING_STRING,
      OFF (elevenlabs_key), "ElevenLabs API key (unset: local emulator)", "KEY",
      SECRET },
  { "elevenlabs-url", "ELEVENLABS_URL", SETTING_STRING, OFF (elevenlabs_url),
      "ElevenLabs base URL (default wss://api.elevenlabs.io)", "URL" },
  { "voice", "ELEVENLABS_VOICE_ID", SETTING_STRING, OFF (elevenlabs_voice),
      "ElevenLabs voice id", "ID" },
  { "llm-key", "LLM_API_KEY", SETTING_STRING, OFF (llm_key),
      "LLM API key (also OPENAI_API_KEY; unset with no --llm-url: emulator)",
      "KEY", SECRET },
  { "llm-url", "LLM_URL", SETTING_STRING, OFF (llm_url),
      "OpenAI-compatible base URL, e.g. http://localhost:8000/v1", "URL" },
  { "llm-model", "LLM_MODEL", SETTING_STRING, OFF (llm_model),
      "Model name sent to the LLM server", "NAME" },
  { "system-prompt", "VOICEAGENT_SYSTEM_PROMPT", SETTING_STRING,
      OFF (system_prompt), "System prompt of the agent", "TEXT" },
  { "greeting", "VOICEAGENT_GREETING", SETTING_STRING, OFF (greeting),
      "What the agent says when a call starts (default: nothing)", "TEXT" },
  { "emulator", "VOICEAGENT_EMULATOR", SETTING_STRING, OFF (emulator_path),
      "voiceagent-emulator to start for services without keys", "PATH" },
  { "emulator-args", NULL, SETTING_STRING, OFF (emulator_args),
      "Extra arguments for the emulator, e.g. \"--latency reference\"",
      "ARGS" },
  { "redis", "VOICEAGENT_REDIS", SETTING_STRING, OFF (redis),
      "Share live call state and the instance registry through Redis: "
      "redis://[[user]:password@]host[:port][/db] (a node, or any node of "
      "a Cluster) or redis-sentinel://[[user]:password@]host[:port]/GROUP"
      "[/db], "
      "comma-separated to try several (default: none, a single instance)",
      "URL", URL_PASSWORD },
  { "advertise-url", "VOICEAGENT_ADVERTISE_URL", SETTING_STRING,
      OFF (advertise_url),
      "This instance's URL for callers other instances redirect here "
      "(default http://HOST:PORT)",
      "URL" },
  { "database", "VOICEAGENT_DATABASE", SETTING_STRING, OFF (database),
      "Call records: an SQLite file (default voiceagent.db), or PostgreSQL "
      "as postgresql://[user[:password]@]host[:port]/dbname (the password "
      "from VOICEAGENT_DATABASE_URL, PGPASSWORD or ~/.pgpass)",
      "FILE|URI", URL_PASSWORD },
  { "record", "VOICEAGENT_RECORD", SETTING_STRING, OFF (record_dir),
      "Record calls as stereo Ogg/Opus (caller left, agent right) into DIR "
      "as CALL-ID.opus (default: none)",
      "DIR" },
  { "record-calls", "VOICEAGENT_RECORD_CALLS", SETTING_STRING,
      OFF (record_calls),
      "With --record: all calls, or opt-in: only those whose POST /whip "
      "has ?record=1 (default all)",
      "all|opt-in" },
  { "record-max-mb", NULL, SETTING_UINT, OFF (record_max_mb),
      "A recording stops growing at MB megabytes, and a call is not "
      "recorded while DIR has less free (default 100, ~4 hours)",
      "MB" },
  { "webhook", "VOICEAGENT_WEBHOOK", SETTING_STRING, OFF (webhook_url),
      "POST each ended call's record (JSON, event call.ended) to URL, "
      "signed with VOICEAGENT_WEBHOOK_SECRET (default: none)",
      "URL", URL_PASSWORD },
  { "webhook-secret", "VOICEAGENT_WEBHOOK_SECRET", SETTING_STRING,
      OFF (webhook_secret),
      "HMAC-SHA256 key that signs webhook deliveries (required with "
      "--webhook)",
      "SECRET", SECRET },
  { "webhook-retries", NULL, SETTING_UINT, OFF (webhook_retries),
      "Attempts per webhook delivery, backing off from 5 s doubling "
      "(default 6, over about 2.5 minutes)",
      "N" },
  { "webhook-timeout", NULL, SETTING_UINT, OFF (webhook_timeout_s),
      "Seconds one webhook attempt may take (default 10)", "S" },
  { "price-stt-per-min", NULL, SETTING_DOUBLE, OFF (price_stt_per_min),
      "USD per minute of STT audio (default 0.0048, Deepgram nova-3)", "USD" },
  { "price-tts-per-1k-chars", NULL, SETTING_DOUBLE,
      OFF (price_tts_per_1k_chars),
      "USD per 1,000 TTS characters (default 0.05, ElevenLabs Flash)", "USD" },
  { "price-llm-input", NULL, SETTING_DOUBLE, OFF (price_llm_per_m_input),
      "USD per million LLM prompt tokens (default 0.15)", "USD" },
  { "price-llm-output", NULL, SETTING_DOUBLE, OFF (price_llm_per_m_output),
      "USD per million LLM completion tokens (default 0.60)", "USD" },
};

#define FIELD(config, s) ((gpointer)((guint8 *)(config) + (s)->offset))
#define VA_CALLS_PER_CORE 12

VaConfig *
va_config_new (void)
{
  VaConfig *c = g_new0 (VaConfig, 1);

  c->host = g_strdup ("127.0.0.1");
  c->rtp_bind = g_strdup ("127.0.0.1");
  c->port = 8080;
  c->cors_origin = g_strdup ("*");
  c->max_body = 65536;
  c->max_connections = 1024;
  c->request_timeout_s = 10;
  c->idle_timeout_s = 30;
  c->default_agent = g_strdup ("agent");
  /* The load benchmark held 25 calls on 2 cores with no failure and lost
   * turns at 50 (docs/benchmarks.md, 2026-11-25). */
  c->max_calls = VA_CALLS_PER_CORE * g_get_num_processors ();
  c->max_listeners = 2;
  c->max_call_s = 3600;
  c->ice_timeout_ms = 2000;
  c->disconnect_timeout_s = 10;
  c->connect_timeout_s = 30;
  c->drain_timeout_s = 300;
  c->database = g_strdup ("voiceagent.db");
  c->record_calls = g_strdup ("all");
  c->record_max_mb = 100;
  c->webhook_retries = 6;
  c->webhook_timeout_s = 10;
  c->price_stt_per_min = 0.0048;
  c->price_tts_per_1k_chars = 0.05;
  c->price_llm_per_m_input = 0.15;
  c->price_llm_per_m_output = 0.60;
  return c;
}

/* The password part of scheme://user:password@host, or NULL. */
static gchar *
url_password (const gchar *url)
{
  gchar *password = NULL;

  g_uri_split_with_user (url, G_URI_FLAGS_NONE, NULL, NULL, &password, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL);
  return password;
}

/**
 * va_config_register_secrets:
 * @c: the loaded configuration
 *
 * Tells the log's redaction (gst_voice_redact) every token, key and URL
 * password configured, so none of them can appear in a log line even
 * where no pattern would catch it.
 */
void
va_config_register_secrets (const VaConfig *c)
{
  guint i, j;

  for (i = 0; i < G_N_ELEMENTS (settings); i++) {
    const Setting *s = &settings[i];
    gpointer field = FIELD (c, s);
    const gchar *one[] = { NULL, NULL };
    const gchar *const *values = one;

    if (!s->secret && !s->url_password)
      continue;
    if (s->type == SETTING_STRING)
      one[0] = *(gchar **)field;
    else if (s->type == SETTING_STRV && *(gchar ***)field)
      values = (const gchar *const *)*(gchar ***)field;
    for (j = 0; values[j]; j++) {
      gchar *password = s->url_password ? url_password (values[j]) : NULL;

      gst_voice_redact_add_secret (s->secret ? values[j] : password);
      g_free (password);
    }
  }
}

void
va_config_free (VaConfig *c)
{
  guint i;

  if (c == NULL)
    return;
  for (i = 0; i < G_N_ELEMENTS (settings); i++) {
    gpointer field = FIELD (c, &settings[i]);
    if (settings[i].type == SETTING_STRING)
      g_free (*(gchar **)field);
    else if (settings[i].type == SETTING_STRV)
      g_strfreev (*(gchar ***)field);
  }
  g_free (c->key_file);
  g_free (c);
}

/* Stores @text into the setting; the value's syntax is checked here. */
static gboolean
set_from_text (VaConfig *c, const Setting *s, const gchar *text,
    const gchar *origin, GError **error)
{
  gpointer field = FIELD (c, s);
  gchar *end = NULL;

  switch (s->type) {
    case SETTING_STRING:
      g_free (*(gchar **)field);
      *(gchar **)field = g_strdup (text);
      return TRUE;
    case SETTING_STRV:
      g_strfreev (*(gchar ***)field);
      *(gchar ***)field = g_strsplit_set (text, ", ", -1);
      return TRUE;
    case SETTING_UINT: {
      guint64 v = g_ascii_strtoull (text, &end, 10);
      if (end == text || *end != '\0' || v > G_MAXUINT)
        break;
      if (s->offset == OFF (max_body))
        *(gsize *)field = (gsize)v;
      else
        *(guint *)field = (guint)v;
      return TRUE;
    }
    case SETTING_DOUBLE: {
      gdouble v = g_ascii_strtod (text, &end);
      if (end == text || *end != '\0' || v < 0)
        break;
      *(gdouble *)field = v;
      return TRUE;
    }
  }
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "%s: bad value \"%s\" for %s", origin, text, s->flag);
  return FALSE;
}

/* A secret from a file, as container images mount them. */
static gboolean
set_from_file (VaConfig *c, const Setting *s, const gchar *path, GError **error)
{
  gchar *secret = va_auth_read_secret_file (path, error);
  gboolean ok;

  if (secret == NULL) {
    g_prefix_error (error, "%s-file: ", s->flag);
    return FALSE;
  }
  ok = set_from_text (c, s, secret, path, error);
  memset (secret, 0, strlen (secret));
  g_free (secret);
  return ok;
}

static gboolean
is_setting_key (const gchar *key)
{
  guint i;

  for (i = 0; i < G_N_ELEMENTS (settings); i++) {
    const gchar *flag = settings[i].flag;
    gsize n = strlen (flag);

    if (g_str_equal (key, flag) ||
        (settings[i].secret && strncmp (key, flag, n) == 0 &&
            g_str_equal (key + n, "-file")))
      return TRUE;
  }
  return FALSE;
}

/* A misspelt key would otherwise be a setting silently not applied. */
static gboolean
check_keys (GKeyFile *kf, const gchar *path, GError **error)
{
  gchar **keys = g_key_file_get_keys (kf, "voiceagent", NULL, NULL);
  gboolean ok = TRUE;
  guint i;

  for (i = 0; ok && keys && keys[i]; i++) {
    if (!is_setting_key (keys[i])) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
          "key file %s: unknown key \"%s\" in [voiceagent]: keys are the "
          "long option names of voiceagent --help, without the dashes",
          path, keys[i]);
      ok = FALSE;
    }
  }
  g_strfreev (keys);
  return ok;
}

static gboolean
load_key_file (VaConfig *c, const gchar *path, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  gboolean ok;
  guint i;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error)) {
    if (g_error_matches (*error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
      g_clear_error (error);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
          "key file %s does not exist: copy voiceagent.conf.sample (the "
          "install puts it in the same directory) to it and edit it",
          path);
    } else
      g_prefix_error (error, "key file %s: ", path);
    g_key_file_unref (kf);
    return FALSE;
  }
  ok = check_keys (kf, path, error);
  for (i = 0; ok && i < G_N_ELEMENTS (settings); i++) {
    gchar *v = g_key_file_get_string (kf, "voiceagent", settings[i].flag, NULL);
    gchar *file_key = g_strconcat (settings[i].flag, "-file", NULL);
    gchar *file = settings[i].secret
        ? g_key_file_get_string (kf, "voiceagent", file_key, NULL)
        : NULL;
    if (v)
      ok = set_from_text (c, &settings[i], v, path, error);
    if (ok && file)
      ok = set_from_file (c, &settings[i], file, error);
    g_free (v);
    g_free (file);
    g_free (file_key);
  }
  g_key_file_unref (kf);
  return ok;
}

static gboolean
load_env (VaConfig *c, GError **error)
{
  const gchar *database_url = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (settings); i++) {
    const gchar *v = settings[i].env ? g_getenv (settings[i].env) : NULL;
    gchar *file_env = settings[i].secret
        ? g_strconcat (settings[i].env, "_FILE", NULL)
        : NULL;
    const gchar *file = file_env ? g_getenv (file_env) : NULL;
    gboolean ok = TRUE;

    if (v && *v)
      ok = set_from_text (c, &settings[i], v, settings[i].env, error);
    else if (file && *file)
      ok = set_from_file (c, &settings[i], file, error);
    g_free (file_env);
    if (!ok)
      return FALSE;
  }
  /* The name hosting platforms give a database URL (with its password);
   * VOICEAGENT_DATABASE wins if both are set. */
  if (!(g_getenv ("VOICEAGENT_DATABASE") && *g_getenv ("VOICEAGENT_DATABASE")))
    database_url = g_getenv ("VOICEAGENT_DATABASE_URL");
  if (database_url && *database_url) {
    g_free (c->database);
    c->database = g_strdup (database_url);
  }
  /* OpenAI's own variable, as the official clients read it. */
  if (c->llm_key == NULL && g_getenv ("OPENAI_API_KEY"))
    c->llm_key = g_strdup (g_getenv ("OPENAI_API_KEY"));
  return TRUE;
}

/* The password of a URL's user:password@ (pointers into @url), or FALSE. */
static gboolean
find_url_password (const gchar *url, const gchar **start, const gchar **end)
{
  const gchar *authority = strstr (url, "://");
  const gchar *at, *colon;

  if (authority == NULL)
    return FALSE;
  authority += 3;
  at = strchr (authority, '@');
  colon = at ? memchr (authority, ':', at - authority) : NULL;
  if (colon == NULL || colon + 1 == at)
    return FALSE;
  *start = colon + 1;
  *end = at;
  return TRUE;
}

/* The value of the first password=VALUE query parameter at or after
 * @from (libpq takes one, e.g. postgresql://host/db?password=...). */
static gboolean
find_query_password (const gchar *from, const gchar **start, const gchar **end)
{
  for (const gchar *p = strstr (from, "password="); p;
       p = strstr (p + 1, "password=")) {
    if (p > from && p[-1] != '?' && p[-1] != '&')
      continue;
    *start = p + strlen ("password=");
    *end = *start + strcspn (*start, "&,");
    return *end > *start;
  }
  return FALSE;
}

static void
scrub_url_password (gchar *url)
{
  const gchar *start, *end;

  /* A comma-separated list may hold several. */
  for (gchar *one = url; one; one = strchr (one + 1, ','))
    if (find_url_password (one, &start, &end))
      memset ((gchar *)start, 'x', end - start);
  for (const gchar *from = url; find_query_password (from, &start, &end);
       from = end)
    memset ((gchar *)start, 'x', end - start);
}

/* Overwrites the value of every secret flag in the process's own argv
 * strings (@args: the array as main() got it), so /proc/PID/cmdline and
 * ps no longer show it. GOption has copied the values already. */
static void
scrub_secret_flags (gchar **args)
{
  guint i, k;

  for (i = 0; args[i]; i++) {
    for (k = 0; k < G_N_ELEMENTS (settings); k++) {
      const Setting *s = &settings[k];
      gsize len = strlen (s->flag);
      gchar *arg = args[i], *value = NULL;
      if ((!s->secret && !s->url_password) || !g_str_has_prefix (arg, "--") ||
          strncmp (arg + 2, s->flag, len) != 0)
        continue;
      if (arg[2 + len] == '=')
        value = arg + 3 + len;
      else if (arg[2 + len] == '\0')
        value = args[i + 1];
      if (value && s->secret)
        memset (value, 'x', strlen (value));
      else if (value)
        scrub_url_password (value);
    }
  }
}

static gboolean
has_url_password (const gchar *value)
{
  const gchar *start, *end;

  return value &&
      (find_url_password (value, &start, &end) ||
          find_query_password (value, &start, &end));
}

static void
warn_secret_in_argv (const Setting *s)
{
  if (s->secret)
    g_printerr ("voiceagent: warning: --%s puts a secret on the command "
                "line, where every user of this machine can read it (ps); "
                "use --%s-file FILE or %s instead\n",
        s->flag, s->flag, s->env);
  else if (s->offset == OFF (database))
    g_printerr ("voiceagent: warning: --database has a password in its URI, "
                "on the command line, where every user of this machine can "
                "read it (ps); set VOICEAGENT_DATABASE_URL or the key file "
                "(--config), or leave the password out and use PGPASSWORD "
                "or ~/.pgpass\n");
  else
    g_printerr ("voiceagent: warning: --%s has a password in its URL, on the "
                "command line, where every user of this machine can read it "
                "(ps); set %s or the key file (--config) instead\n",
        s->flag, s->env);
}

/* Flags are parsed as strings into @values (and secrets' file paths into
 * @files), then checked like any text. */
static gboolean
load_flags (VaConfig *c, gint *argc, gchar ***argv, GError **error)
{
  guint n = G_N_ELEMENTS (settings), i, e = 0;
  GOptionEntry *entries = g_new0 (GOptionEntry, 2 * n + 2);
  gchar **values = g_new0 (gchar *, n);
  gchar **files = g_new0 (gchar *, n);
  gchar **file_flags = g_new0 (gchar *, n + 1);
  gchar ***lists = g_new0 (gchar **, n);
  gchar **args = g_memdup2 (*argv, (*argc + 1) * sizeof (gchar *));
  gchar *key_file = NULL;
  GOptionContext *ctx;
  gboolean ok;

  for (i = 0; i < n; i++) {
    const Setting *s = &settings[i];
    entries[e] = (GOptionEntry){ .long_name = s->flag,
      .description = s->description,
      .arg_description = s->arg,
      .arg = s->type == SETTING_STRV ? G_OPTION_ARG_STRING_ARRAY
                                     : G_OPTION_ARG_STRING,
      .arg_data = s->type == SETTING_STRV ? (gpointer)&lists[i]
                                          : (gpointer)&values[i] };
    e++;
    if (!s->secret)
      continue;
    file_flags[i] = g_strconcat (s->flag, "-file", NULL);
    entries[e++] = (GOptionEntry){ .long_name = file_flags[i],
      .description = "The same, read from the first line of FILE",
      .arg_description = "FILE",
      .arg = G_OPTION_ARG_FILENAME,
      .arg_data = &files[i] };
  }
  entries[e] =
      (GOptionEntry){ "config", 'c', 0, G_OPTION_ARG_FILENAME, &key_file,
        "Key file ([voiceagent] group, keys named like the flags)", "FILE" };

  ctx = g_option_context_new (
      "[calls list|calls show ID|calls json ID] - WHIP/WHEP voice-agent server");
  g_option_context_set_summary (ctx,
      "Answers WebRTC calls (WHIP) with a voice agent: Silero VAD, Deepgram "
      "speech-to-text,\nan OpenAI-compatible LLM and ElevenLabs "
      "text-to-speech, one GStreamer pipeline per call.\nServices without "
      "an API key or URL run on the local voiceagent-emulator.");
  g_option_context_set_description (ctx,
      "Every flag can also be set in the environment (named in its help, "
      "e.g. DEEPGRAM_API_KEY)\nor in the key file. Flags win over the "
      "environment, which wins over the key file. Secrets (keys, tokens)\n"
      "also read from a file: --FLAG-file FILE, the variable with _FILE "
      "added (e.g.\nDEEPGRAM_API_KEY_FILE), or FLAG-file in the key file.\n\n"
      "Subcommands:\n  calls list        recent calls from the database\n"
      "  calls show ID     one call's transcript, metrics and cost\n"
      "  calls json ID     the same as JSON (the webhook's body)\n");
  g_option_context_add_main_entries (ctx, entries, NULL);
  ok = g_option_context_parse (ctx, argc, argv, error);
  g_option_context_free (ctx);
  scrub_secret_flags (args);

  if (ok && key_file) {
    g_free (c->key_file);
    c->key_file = g_strdup (key_file);
    ok = load_key_file (c, key_file, error) && load_env (c, error);
  }
  for (i = 0; ok && i < n; i++) {
    if (values[i]) {
      if (settings[i].secret ||
          (settings[i].url_password && has_url_password (values[i])))
        warn_secret_in_argv (&settings[i]);
      ok = set_from_text (c, &settings[i], values[i], "--flag", error);
    } else if (files[i]) {
      ok = set_from_file (c, &settings[i], files[i], error);
    } else if (lists[i]) {
      for (gchar **v = lists[i]; settings[i].url_password && *v; v++)
        if (has_url_password (*v)) {
          warn_secret_in_argv (&settings[i]);
          break;
        }
      g_strfreev (*(gchar ***)FIELD (c, &settings[i]));
      *(gchar ***)FIELD (c, &settings[i]) = g_strdupv (lists[i]);
    }
  }
  for (i = 0; i < n; i++) {
    g_free (values[i]);
    g_free (files[i]);
    g_free (file_flags[i]);
    g_strfreev (lists[i]);
  }
  g_free (values);
  g_free (files);
  g_free (file_flags);
  g_free (lists);
  g_free (args);
  g_free (entries);
  g_free (key_file);
  return ok;
}

/* Defaults that depend on other settings. */
static void
derive_defaults (VaConfig *c)
{
  /* Credentials are checked when a relay is allocated and refreshed: they
   * must outlast the longest call. */
  if (c->turn_ttl_s == 0)
    c->turn_ttl_s = c->max_call_s + 60;
}

/* Settings that only make sense together. */
static gboolean
check_combinations (VaConfig *c, GError **error)
{
  if (!g_str_equal (c->record_calls, "all") &&
      !g_str_equal (c->record_calls, "opt-in")) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--record-calls is \"%s\": give all or opt-in", c->record_calls);
    return FALSE;
  }
  if (c->webhook_url == NULL || *c->webhook_url == '\0')
    return TRUE;
  if (!g_str_has_prefix (c->webhook_url, "http://") &&
      !g_str_has_prefix (c->webhook_url, "https://")) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--webhook must be an http:// or https:// URL");
    return FALSE;
  }
  /* An unsigned hook lets anyone who finds its URL post fake calls. */
  if (c->webhook_secret == NULL || *c->webhook_secret == '\0') {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--webhook needs a signing secret: set VOICEAGENT_WEBHOOK_SECRET "
        "(or --webhook-secret-file FILE) to a long random string the "
        "receiver also knows");
    return FALSE;
  }
  if (c->webhook_retries == 0) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "--webhook-retries must be at least 1 (the first attempt)");
    return FALSE;
  }
  return TRUE;
}

gboolean
va_config_load (VaConfig *c, gint *argc, gchar ***argv, GError **error)
{
  if (!load_env (c, error) || !load_flags (c, argc, argv, error))
    return FALSE;
  derive_defaults (c);
  return check_combinations (c, error);
}

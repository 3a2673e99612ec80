/* voiceagent-emulator: faults, events, the control endpoint and the helpers
 * every service shares.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here runs on the main thread (the default GMainContext), like
 * every request handler, so the state below needs no lock.
 *
 * Control endpoint (documented in docs/emulator.md):
 *   POST /emulator/faults  {"service":"llm","fault":"http:503:retry=2","count":1}
 *                          arms a fault for the next @count connections
 *   GET  /emulator/faults  armed faults still pending
 *   GET  /emulator/events  recorded events, optionally ?service=llm&event=...
 *   POST /emulator/reset   forgets armed faults and events
 *   POST /emulator/latency {"profile":"reference","llm_first_token_ms":200}
 *   GET  /emulator/latency current latencies
 */
#include "emulator.h"

#include <stdio.h>
#include <string.h>

#define MAX_EVENTS 10000

typedef struct
{
  gchar *service;
  gchar *spec;
  EmuFault fault;
  gint remaining; /* connections it still applies to; -1 = all */
} ArmedFault;

typedef struct
{
  gint64 time_us; /* g_get_real_time () */
  gchar *service;
  gchar *event;
  gchar *detail; /* may be NULL */
} Event;

/* Main thread only. */
static EmuConfig *control_config;
static GList *armed_faults; /* (element-type ArmedFault) in arming order */
static GQueue events = G_QUEUE_INIT; /* (element-type Event) oldest first */
static guint64 events_dropped;

static void
armed_fault_free (ArmedFault *a)
{
  g_free (a->service);
  g_free (a->spec);
  emu_fault_clear (&a->fault);
  g_free (a);
}

static void
event_free (Event *e)
{
  g_free (e->service);
  g_free (e->event);
  g_free (e->detail);
  g_free (e);
}

/* ---------- faults ---------- */

void
emu_fault_init (EmuFault *fault)
{
  memset (fault, 0, sizeof (*fault));
  fault->close_after_messages = -1;
  fault->close_after_ms = -1;
  fault->close_code = 1011;
}

void
emu_fault_clear (EmuFault *fault)
{
  g_clear_pointer (&fault->close_reason, g_free);
  emu_fault_init (fault);
}

static gboolean
parse_uint (const gchar *s, guint64 max, guint64 *out)
{
  return s && *s && g_ascii_string_to_unsigned (s, 10, 0, max, out, NULL);
}

/* Parses one item of a fault spec ("close:messages=3:code=4000") into
 * @fault, on top of what is there. */
static gboolean
parse_item (const gchar *item, EmuFault *fault, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (item, ":", -1);
  guint n = g_strv_length (parts);
  guint64 v;

  if (n == 0 || parts[0][0] == '\0')
    goto bad;

  if (g_str_equal (parts[0], "close")) {
    gboolean when = FALSE;
    for (guint i = 1; i < n; i++) {
      gchar *eq = strchr (parts[i], '=');
      if (!eq)
        goto bad;
      *eq = '\0';
      if (g_str_equal (parts[i], "messages") &&
          parse_uint (eq + 1, G_MAXINT, &v)) {
        fault->close_after_messages = v;
        when = TRUE;
      } else if (g_str_equal (parts[i], "ms") &&
          parse_uint (eq + 1, G_MAXINT, &v)) {
        fault->close_after_ms = v;
        when = TRUE;
      } else if (g_str_equal (parts[i], "code") &&
          parse_uint (eq + 1, 4999, &v) && v >= 1000) {
        fault->close_code = v;
      } else if (g_str_equal (parts[i], "reason")) {
        g_free (fault->close_reason);
        fault->close_reason = g_strdup (eq + 1);
      } else {
        goto bad;
      }
    }
    if (!when)
      goto bad;
    return TRUE;
  }
  if (g_str_equal (parts[0], "stall") && n == 1) {
    fault->stall = TRUE;
    return TRUE;
  }
  if (g_str_equal (parts[0], "malformed") && n == 1) {
    fault->malformed_frame = TRUE;
    return TRUE;
  }
  if (g_str_equal (parts[0], "slow") && n == 2 &&
      parse_uint (parts[1], 100000, &v) && v > 0) {
    fault->slow_tokens_per_s = v;
    return TRUE;
  }
  if (g_str_equal (parts[0], "http") && (n == 2 || n == 3) &&
      parse_uint (parts[1], 599, &v) && v >= 400) {
    fault->http_status = v;
    if (n == 3) {
      if (!g_str_has_prefix (parts[2], "retry=") ||
          !parse_uint (parts[2] + 6, 86400, &v))
        goto bad;
      fault->retry_after_s = v;
    }
    return TRUE;
  }

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
      "bad fault \"%s\": expected close:messages=N|ms=N[:code=C][:reason=R], "
      "stall, http:STATUS[:retry=S], malformed or slow:TOKENS_PER_S",
      item);
  return FALSE;
}

gboolean
emu_fault_parse (const gchar *spec, EmuFault *fault, GError **error)
{
  EmuFault parsed;
  g_auto (GStrv) items = NULL;

  g_return_val_if_fail (spec != NULL, FALSE);

  emu_fault_init (&parsed);
  items = g_strsplit (spec, ",", -1);
  for (guint i = 0; items[i]; i++) {
    g_strstrip (items[i]);
    if (items[i][0] == '\0')
      continue;
    if (!parse_item (items[i], &parsed, error)) {
      emu_fault_clear (&parsed);
      return FALSE;
    }
  }
  emu_fault_clear (fault);
  *fault = parsed;
  return TRUE;
}

/* Copies into @dst every field of @src that is not "off". */
static void
fault_merge (EmuFault *dst, const EmuFault *src)
{
  if (src->close_after_messages >= 0)
    dst->close_after_messages = src->close_after_messages;
  if (src->close_after_ms >= 0)
    dst->close_after_ms = src->close_after_ms;
  if (src->close_after_messages >= 0 || src->close_after_ms >= 0) {
    dst->close_code = src->close_code;
    g_free (dst->close_reason);
    dst->close_reason = g_strdup (src->close_reason);
  }
  dst->stall |= src->stall;
  if (src->http_status) {
    dst->http_status = src->http_status;
    dst->retry_after_s = src->retry_after_s;
  }
  dst->malformed_frame |= src->malformed_frame;
  if (src->slow_tokens_per_s)
    dst->slow_tokens_per_s = src->slow_tokens_per_s;
}

static const EmuFault *
flag_fault (const gchar *service)
{
  if (!control_config)
    return NULL;
  if (g_str_equal (service, "deepgram"))
    return &control_config->deepgram_fault;
  if (g_str_equal (service, "elevenlabs"))
    return &control_config->elevenlabs_fault;
  if (g_str_equal (service, "llm"))
    return &control_config->llm_fault;
  return NULL;
}

void
emu_fault_for_connection (
    const gchar *service, SoupServerMessage *msg, EmuFault *out)
{
  const EmuFault *flag = flag_fault (service);

  emu_fault_init (out);
  if (flag)
    fault_merge (out, flag);

  for (GList *l = armed_faults; l; l = l->next) {
    ArmedFault *a = l->data;
    if (!g_str_equal (a->service, service))
      continue;
    fault_merge (out, &a->fault);
    emu_record_event (service, "fault-applied", a->spec);
    if (a->remaining > 0 && --a->remaining == 0) {
      armed_faults = g_list_delete_link (armed_faults, l);
      armed_fault_free (a);
    }
    break;
  }

  if (msg) {
    GUri *uri = soup_server_message_get_uri (msg);
    const gchar *query = g_uri_get_query (uri);
    if (query) {
      g_autoptr (GHashTable) params =
          g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
      const gchar *spec =
          params ? g_hash_table_lookup (params, "emu_fault") : NULL;
      if (spec) {
        EmuFault q;
        g_autoptr (GError) error = NULL;
        emu_fault_init (&q);
        if (emu_fault_parse (spec, &q, &error)) {
          fault_merge (out, &q);
          emu_record_event (service, "fault-applied", spec);
        } else {
          g_printerr ("voiceagent-emulator: %s: ignoring emu_fault: %s\n",
              service, error->message);
        }
        emu_fault_clear (&q);
      }
    }
  }
}

/* ---------- events ---------- */

void
emu_record_event (const gchar *service, const gchar *event, const gchar *detail)
{
  Event *e = g_new0 (Event, 1);

  e->time_us = g_get_real_time ();
  e->service = g_strdup (service);
  e->event = g_strdup (event);
  e->detail = g_strdup (detail);
  g_queue_push_tail (&events, e);
  while (events.length > MAX_EVENTS) {
    event_free (g_queue_pop_head (&events));
    events_dropped++;
  }
}

/* ---------- logging, auth, errors ---------- */

void
emu_log_connection (const gchar *service, const gchar *client,
    gint64 started_us, const gchar *outcome)
{
  gdouble secs = (g_get_monotonic_time () - started_us) / 1e6;

  emu_record_event (service, "connection", outcome);
  if (control_config && control_config->quiet)
    return;
  printf ("%s %s %.3fs %s\n", service, client ? client : "-", secs, outcome);
  fflush (stdout);
}

gboolean
emu_key_matches (const gchar *presented, const gchar *expected)
{
  if (!presented || !*presented)
    return FALSE;
  if (!expected)
    return TRUE;
  return g_str_equal (presented, expected);
}

void
emu_send_json_error (
    SoupServerMessage *msg, guint status, const gchar *json_body)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, "application/json", SOUP_MEMORY_COPY, json_body, strlen (json_body));
}

/* ---------- control endpoint ---------- */

static void
send_json (SoupServerMessage *msg, guint status, JsonBuilder *b)
{
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  gsize len;
  gchar *text;

  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &len);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (
      msg, "application/json", SOUP_MEMORY_TAKE, text, len);
}

static void
send_ok (SoupServerMessage *msg)
{
  emu_send_json_error (msg, SOUP_STATUS_OK, "{\"ok\":true}");
}

static void
send_bad_request (SoupServerMessage *msg, const gchar *message)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  send_json (msg, SOUP_STATUS_BAD_REQUEST, b);
}

/* Parses the request body as a JSON object; NULL (and a 400 sent) if it is
 * not one. The caller owns the returned parser. */
static JsonParser *
parse_body_object (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;

  if (!body->data || body->length == 0 ||
      !json_parser_load_from_data (parser, body->data, body->length, &error) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    send_bad_request (msg,
        error ? error->message
              : "body must be a JSON "
                "object");
    return NULL;
  }
  return g_steal_pointer (&parser);
}

static gboolean
is_service (const gchar *s)
{
  return s &&
      (g_str_equal (s, "deepgram") || g_str_equal (s, "elevenlabs") ||
          g_str_equal (s, "llm"));
}

static void
handle_faults (SoupServerMessage *msg, const gchar *method)
{
  if (g_str_equal (method, "GET")) {
    g_autoptr (JsonBuilder) b = json_builder_new ();
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "faults");
    json_builder_begin_array (b);
    for (GList *l = armed_faults; l; l = l->next) {
      ArmedFault *a = l->data;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "service");
      json_builder_add_string_value (b, a->service);
      json_builder_set_member_name (b, "fault");
      json_builder_add_string_value (b, a->spec);
      json_builder_set_member_name (b, "count");
      json_builder_add_int_value (b, a->remaining);
      json_builder_end_object (b);
    }
    json_builder_end_array (b);
    json_builder_end_object (b);
    send_json (msg, SOUP_STATUS_OK, b);
    return;
  }

  if (g_str_equal (method, "POST")) {
    g_autoptr (JsonParser) parser = parse_body_object (msg);
    g_autoptr (GError) error = NULL;
    JsonObject *o;
    const gchar *service, *spec;
    gint64 count;
    ArmedFault *a;

    if (!parser)
      return;
    o = json_node_get_object (json_parser_get_root (parser));
    service = json_object_get_string_member_with_default (o, "service", NULL);
    spec = json_object_get_string_member_with_default (o, "fault", NULL);
    count = json_object_get_int_member_with_default (o, "count", 1);
    if (!is_service (service)) {
      send_bad_request (msg,
          "\"service\" must be deepgram, elevenlabs or "
          "llm");
      return;
    }
    if (!spec) {
      send_bad_request (msg, "\"fault\" is required");
      return;
    }
    if (count == 0 || count < -1 || count > G_MAXINT) {
      send_bad_request (msg,
          "\"count\" must be positive, or -1 for every "
          "connection");
      return;
    }
    a = g_new0 (ArmedFault, 1);
    emu_fault_init (&a->fault);
    if (!emu_fault_parse (spec, &a->fault, &error)) {
      armed_fault_free (a);
      send_bad_request (msg, error->message);
      return;
    }
    a->service = g_strdup (service);
    a->spec = g_strdup (spec);
    a->remaining = count;
    armed_faults = g_list_append (armed_faults, a);
    emu_record_event (service, "fault-armed", spec);
    send_ok (msg);
    return;
  }

  soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
}

static void
handle_events (SoupServerMessage *msg, GHashTable *query)
{
  const gchar *service = query ? g_hash_table_lookup (query, "service") : NULL;
  const gchar *event = query ? g_hash_table_lookup (query, "event") : NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "dropped");
  json_builder_add_int_value (b, events_dropped);
  json_builder_set_member_name (b, "events");
  json_builder_begin_array (b);
  for (GList *l = events.head; l; l = l->next) {
    Event *e = l->data;
    if (service && !g_str_equal (service, e->service))
      continue;
    if (event && !g_str_equal (event, e->event))
      continue;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "time_ms");
    json_builder_add_int_value (b, e->time_us / 1000);
    json_builder_set_member_name (b, "service");
    json_builder_add_string_value (b, e->service);
    json_builder_set_member_name (b, "event");
    json_builder_add_string_value (b, e->event);
    json_builder_set_member_name (b, "detail");
    if (e->detail)
      json_builder_add_string_value (b, e->detail);
    else
      json_builder_add_null_value (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  send_json (msg, SOUP_STATUS_OK, b);
}

static void
add_latency (JsonBuilder *b, const EmuLatency *l)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stt_final_ms");
  json_builder_add_int_value (b, l->stt_final_ms);
  json_builder_set_member_name (b, "llm_first_token_ms");
  json_builder_add_int_value (b, l->llm_first_token_ms);
  json_builder_set_member_name (b, "llm_tokens_per_s");
  json_builder_add_int_value (b, l->llm_tokens_per_s);
  json_builder_set_member_name (b, "tts_first_audio_ms");
  json_builder_add_int_value (b, l->tts_first_audio_ms);
  json_builder_end_object (b);
}

static gboolean
set_latency_member (JsonObject *o, const gchar *name, guint *field)
{
  JsonNode *n = json_object_get_member (o, name);
  gint64 v;

  if (!n)
    return TRUE;
  if (json_node_get_value_type (n) != G_TYPE_INT64)
    return FALSE;
  v = json_node_get_int (n);
  if (v < 0 || v > 600000)
    return FALSE;
  *field = v;
  return TRUE;
}

static void
handle_latency (SoupServerMessage *msg, const gchar *method)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  if (g_str_equal (method, "POST")) {
    g_autoptr (JsonParser) parser = parse_body_object (msg);
    EmuLatency l;
    JsonObject *o;
    const gchar *profile;

    if (!parser)
      return;
    o = json_node_get_object (json_parser_get_root (parser));
    l = control_config->latency;
    profile = json_object_get_string_member_with_default (o, "profile", NULL);
    if (profile && !emu_latency_profile (profile, &l)) {
      send_bad_request (msg, "\"profile\" must be zero or reference");
      return;
    }
    if (!set_latency_member (o, "stt_final_ms", &l.stt_final_ms) ||
        !set_latency_member (o, "llm_first_token_ms", &l.llm_first_token_ms) ||
        !set_latency_member (o, "llm_tokens_per_s", &l.llm_tokens_per_s) ||
        !set_latency_member (o, "tts_first_audio_ms", &l.tts_first_audio_ms)) {
      send_bad_request (msg, "latencies are integers from 0 to 600000");
      return;
    }
    control_config->latency = l;
    emu_record_event ("control", "latency", profile);
  } else if (!g_str_equal (method, "GET")) {
    soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    return;
  }
  add_latency (b, &control_config->latency);
  send_json (msg, SOUP_STATUS_OK, b);
}

static void
control_cb (SoupServer *server, SoupServerMessage *msg, const char *path,
    GHashTable *query, gpointer user_data)
{
  const gchar *method = soup_server_message_get_method (msg);

  if (g_str_equal (path, "/emulator/faults")) {
    handle_faults (msg, method);
  } else if (g_str_equal (path, "/emulator/events")) {
    if (g_str_equal (method, "GET"))
      handle_events (msg, query);
    else
      soup_server_message_set_status (
          msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
  } else if (g_str_equal (path, "/emulator/reset")) {
    if (g_str_equal (method, "POST")) {
      emu_control_reset ();
      send_ok (msg);
    } else {
      soup_server_message_set_status (
          msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
    }
  } else if (g_str_equal (path, "/emulator/latency")) {
    handle_latency (msg, method);
  } else if (g_str_equal (path, "/emulator/health") ||
      g_str_equal (path, "/emulator")) {
    send_ok (msg);
  } else {
    emu_send_json_error (
        msg, SOUP_STATUS_NOT_FOUND, "{\"error\":\"no such control endpoint\"}");
  }
}

gboolean
emu_latency_profile (const gchar *name, EmuLatency *latency)
{
  if (g_str_equal (name, "zero")) {
    memset (latency, 0, sizeof (*latency));
    return TRUE;
  }
  if (g_str_equal (name, "reference")) {
    latency->stt_final_ms = 45;
    latency->llm_first_token_ms = 110;
    latency->llm_tokens_per_s = 80;
    latency->tts_first_audio_ms = 130;
    return TRUE;
  }
  return FALSE;
}

void
emu_control_reset (void)
{
  g_list_free_full (
      g_steal_pointer (&armed_faults), (GDestroyNotify)armed_fault_free);
  g_queue_clear_full (&events, (GDestroyNotify)event_free);
  events_dropped = 0;
}

void
emu_control_register (SoupServer *server, EmuConfig *config)
{
  control_config = config;
  soup_server_add_handler (server, "/emulator", control_cb, NULL, NULL);
}

void
emu_control_shutdown (void)
{
  emu_control_reset ();
  control_config = NULL;
}

gchar *
emu_client_address (SoupServerMessage *msg)
{
  GSocketAddress *addr = soup_server_message_get_remote_address (msg);

  if (G_IS_INET_SOCKET_ADDRESS (addr)) {
    GInetSocketAddress *in = G_INET_SOCKET_ADDRESS (addr);
    g_autofree gchar *host =
        g_inet_address_to_string (g_inet_socket_address_get_address (in));
    return g_strdup_printf ("%s:%u", host, g_inet_socket_address_get_port (in));
  }
  return g_strdup (soup_server_message_get_remote_host (msg));
}

/* Appends @s as a JSON string literal (quoted, escaped) to @out. */
void
emu_append_json_string (GString *out, const gchar *s)
{
  g_string_append_c (out, '"');
  for (const guchar *p = (const guchar *)s; *p; p++) {
    switch (*p) {
      case '"':
        g_string_append (out, "\\\"");
        break;
      case '\\':
        g_string_append (out, "\\\\");
        break;
      case '\n':
        g_string_append (out, "\\n");
        break;
      case '\r':
        g_string_append (out, "\\r");
        break;
      case '\t':
        g_string_append (out, "\\t");
        break;
      default:
        if (*p < 0x20)
          g_string_append_printf (out, "\\u%04x", *p);
        else
          g_string_append_c (out, *p);
    }
  }
  g_string_append_c (out, '"');
}

/* voiceagent: what operators and load balancers read: /calls, /metrics,
 * /healthz, /readyz; and what browsers load: the demo page at /, the
 * client library at /voiceagent.js and its VAD files at /vendor/FILE.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * /calls and /metrics need the operator's credentials (access.c);
 * /healthz, /readyz, the page, the library and /vendor are open. Main
 * context only.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include "paths.h"
#include "server-private.h"
#include "front.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

static void
serve_calls (VaServer *server, SoupServerMessage *msg)
{
  JsonBuilder *b = json_builder_new ();
  GHashTableIter iter;
  gpointer value;
  JsonNode *root;

  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, server->calls);
  while (g_hash_table_iter_next (&iter, NULL, &value)) {
    CallEntry *e = value;
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "id");
    json_builder_add_string_value (b, va_call_get_id (e->call));
    json_builder_set_member_name (b, "agent");
    json_builder_add_string_value (b, e->agent);
    json_builder_set_member_name (b, "started");
    json_builder_add_int_value (b, va_call_get_start_time (e->call) / 1000000);
    json_builder_end_object (b);
  }
  if (server->front)
    va_front_list_calls (server->front, b);
  json_builder_end_array (b);
  root = json_builder_get_root (b);
  va_respond_text (server, msg, SOUP_STATUS_OK, "application/json",
      json_to_string (root, FALSE));
  json_node_unref (root);
  g_object_unref (b);
}

static void
serve_resource (VaServer *server, SoupServerMessage *msg, const gchar *path,
    const gchar *type)
{
  GBytes *bytes = g_resources_lookup_data (path, 0, NULL);

  if (bytes == NULL) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND, "no page here");
    return;
  }
  va_respond_cors (server, msg);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, type, SOUP_MEMORY_COPY,
      g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_bytes_unref (bytes);
}

/* The browser VAD's files that scripts/setup vendors (npm tarballs checked
 * by SHA-256) and voiceagent.js loads. Only these names are served: no
 * path from the request ever reaches the file system. */
static const struct
{
  const gchar *name;
  const gchar *type;
} vendor_files[] = {
  { "bundle.min.js", "text/javascript; charset=utf-8" },
  { "vad.worklet.bundle.min.js", "text/javascript; charset=utf-8" },
  { "silero_vad_v5.onnx", "application/octet-stream" },
  { "silero_vad_legacy.onnx", "application/octet-stream" },
  { "ort.wasm.min.js", "text/javascript; charset=utf-8" },
  { "ort-wasm-simd-threaded.mjs", "text/javascript; charset=utf-8" },
  { "ort-wasm-simd-threaded.wasm", "application/wasm" },
};

/* Where scripts/setup put them: $VOICEAGENT_MODEL_DIR/www/vendor, else
 * the data directory of the tree this server runs from (paths.c).
 * Returns a new string. */
static gchar *
vendor_dir (void)
{
  const gchar *dir = g_getenv ("VOICEAGENT_MODEL_DIR");

  if (dir && *dir)
    return g_build_filename (dir, "www", "vendor", NULL);
  return va_paths_data_file ("www", "vendor", NULL);
}

/* GET /vendor/NAME: one of vendor_files, read from vendor_dir(). */
static void
serve_vendor (VaServer *server, SoupServerMessage *msg, const gchar *name)
{
  gchar *dir, *file, *data = NULL;
  GError *error = NULL;
  gsize len = 0;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (vendor_files); i++)
    if (g_str_equal (name, vendor_files[i].name))
      break;
  if (i == G_N_ELEMENTS (vendor_files)) {
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "no vendored file /vendor/%s (the client VAD's files are "
        "bundle.min.js, vad.worklet.bundle.min.js, silero_vad_v5.onnx, "
        "silero_vad_legacy.onnx, ort.wasm.min.js, ort-wasm-simd-threaded.mjs "
        "and ort-wasm-simd-threaded.wasm)",
        name);
    return;
  }
  dir = vendor_dir ();
  file = g_build_filename (dir, name, NULL);
  if (!g_file_get_contents (file, &data, &len, &error)) {
    GST_WARNING ("GET /vendor/%s: %s", name, error->message);
    va_respond_error (server, msg, SOUP_STATUS_NOT_FOUND,
        "%s is not installed in %s: run scripts/setup, which vendors the "
        "browser VAD's files there (or set VOICEAGENT_MODEL_DIR to the "
        "directory that holds www/vendor)",
        name, dir);
    g_error_free (error);
  } else {
    va_respond_cors (server, msg);
    /* The names are fixed but scripts/setup may install another version. */
    soup_message_headers_replace (
        soup_server_message_get_response_headers (msg), "Cache-Control",
        "public, max-age=3600");
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response (
        msg, vendor_files[i].type, SOUP_MEMORY_TAKE, data, len);
  }
  g_free (file);
  g_free (dir);
}

/* The metrics, the call records' and with --redis the scale-out ones. */
static gchar *
render_metrics (VaServer *server, guint active)
{
  VaScaleoutMetrics scaleout = { 0 };
  VaRecordsMetrics records = { 0 };
  VaWebhookMetrics webhook = { 0 };
  const VaRecordingMetrics *recording =
      server->config->record_dir ? &server->recording : NULL;
  gchar *problem;

  va_records_get_stats (server->records, &records);
  if (server->webhook)
    va_webhook_get_stats (server->webhook, &webhook);
  if (server->scaleout == NULL)
    return va_metrics_render (server->metrics, server->config, active,
        server->draining, NULL, &records, server->webhook ? &webhook : NULL,
        recording);
  problem = va_scaleout_get_problem (server->scaleout);
  scaleout.redis_up = problem == NULL;
  scaleout.instances = va_scaleout_count_instances (server->scaleout);
  scaleout.resumed = server->resumed;
  g_free (problem);
  return va_metrics_render (server->metrics, server->config, active,
      server->draining, &scaleout, &records, server->webhook ? &webhook : NULL,
      recording);
}

/* Ready, and whether Redis works: without it calls are still taken here
 * (degraded: no redirects, no resume, no shared state). */
static void
serve_ready_scaleout (
    VaServer *server, SoupServerMessage *msg, gboolean operator)
{
  JsonBuilder *b = json_builder_new ();
  gchar *problem = va_scaleout_get_problem (server->scaleout);
  JsonNode *root;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, problem ? "degraded" : "ready");
  json_builder_set_member_name (b, "redis");
  json_builder_add_string_value (
      b, problem ? (operator? problem : "down") : "up");
  json_builder_set_member_name (b, "instance");
  json_builder_add_string_value (
      b, va_scaleout_get_instance_id (server->scaleout));
  json_builder_set_member_name (b, "instances");
  json_builder_add_int_value (
      b, va_scaleout_count_instances (server->scaleout));
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  va_respond_text (server, msg, SOUP_STATUS_OK, "application/json",
      json_to_string (root, FALSE));
  json_node_unref (root);
  g_object_unref (b);
  g_free (problem);
}

/* /healthz and /readyz are for load balancers: anyone may ask; /readyz
 * tells why Redis is down only to operators. */
void
va_ops_route (VaServer *server, SoupServerMessage *msg, const gchar *path,
    GHashTable *query)
{
  guint active = g_hash_table_size (server->calls) +
      (server->front ? va_front_count (server->front) : 0);
  gboolean full = va_server_load (server) >= server->config->max_calls;

  if (g_str_equal (path, "/metrics")) {
    if (va_access_ops (server, msg, query))
      va_respond_text (server, msg, SOUP_STATUS_OK,
          "text/plain; version=0.0.4; charset=utf-8",
          render_metrics (server, active));
  } else if (g_str_equal (path, "/healthz")) {
    va_respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ok\"}");
  } else if (g_str_equal (path, "/readyz")) {
    if (server->draining || full)
      va_respond_error (server, msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s",
          server->draining ? "draining" : "at the call limit");
    else if (server->scaleout)
      serve_ready_scaleout (
          server, msg, va_access_is_operator (server, msg, query));
    else
      va_respond_json (server, msg, SOUP_STATUS_OK, "{\"status\":\"ready\"}");
  } else if (g_str_equal (path, "/calls")) {
    if (va_access_ops (server, msg, query))
      serve_calls (server, msg);
  } else if (g_str_equal (path, "/") || g_str_equal (path, "/index.html")) {
    serve_resource (server, msg, "/org/voiceagent/www/index.html",
        "text/html; charset=utf-8");
  } else if (g_str_equal (path, "/voiceagent.js")) {
    serve_resource (server, msg, "/org/voiceagent/www/voiceagent.js",
        "text/javascript; charset=utf-8");
  } else if (g_str_has_prefix (path, "/vendor/")) {
    serve_vendor (server, msg, path + strlen ("/vendor/"));
  } else {
    va_respond_error (
        server, msg, SOUP_STATUS_NOT_FOUND, "no resource %s", path);
  }
}

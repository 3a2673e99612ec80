/* voiceagent: pipeline templates (gst-launch syntax with ${VAR}).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A template is a gst-launch description in pipelines/NAME.pipeline. Lines
 * starting with '#' are comments. ${NAME} is replaced by a per-call value,
 * escaped so it can stand inside "double quotes" in the description. API
 * keys are never template variables: the elements read them from the
 * environment (DEEPGRAM_API_KEY, ...), so no key is ever part of a
 * pipeline description that GStreamer might log.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>
#include <json-glib/json-glib.h>
#include "template.h"

const gchar *const va_template_variables[] = { "CALL_ID", "SESSION", "OPUS_PT",
  "RTP_HOST", "RTP_PORT", "DEEPGRAM_URL", "ELEVENLABS_URL",
  "ELEVENLABS_VOICE_ID", "LLM_URL", "LLM_MODEL", "SYSTEM_PROMPT", "GREETING",
  NULL };

struct _VaTemplate
{
  gchar *name;
  gchar *path;
  gchar *text; /* comments removed, lines kept for numbering */
  VaTemplateKind kind;
  gchar *tools_path; /* NAME.tools.json beside it, or NULL */
};

static void
template_free (VaTemplate *t)
{
  g_free (t->name);
  g_free (t->path);
  g_free (t->tools_path);
  g_free (t->text);
  g_free (t);
}

/**
 * va_template_get_tools_path:
 * @tmpl: a template
 *
 * Returns: (nullable): the tools file beside the template
 * (`NAME.tools.json`, docs/elements/llmtransform.md "Tools"), or NULL when
 * there is none.
 */
const gchar *
va_template_get_tools_path (const VaTemplate *tmpl)
{
  return tmpl->tools_path;
}

const gchar *
va_template_get_name (const VaTemplate *t)
{
  return t->name;
}

VaTemplateKind
va_template_get_kind (const VaTemplate *t)
{
  return t->kind;
}

static gboolean
is_known_variable (const gchar *name)
{
  return g_strv_contains (va_template_variables, name);
}

static guint
line_of (const gchar *text, const gchar *pos)
{
  guint line = 1;

  for (; text < pos; text++)
    line += *text == '\n';
  return line;
}

static gchar *
escape_value (const gchar *value)
{
  GString *s = g_string_new (NULL);

  for (; value && *value; value++) {
    if (*value == '"' || *value == '\\')
      g_string_append_c (s, '\\');
    g_string_append_c (s, *value);
  }
  return g_string_free (s, FALSE);
}

gchar *
va_template_expand (const VaTemplate *t, GHashTable *vars, GError **error)
{
  GString *out = g_string_new (NULL);
  const gchar *p = t->text;

  while (*p) {
    const gchar *start = strstr (p, "${"), *end;
    gchar *name;

    if (start == NULL) {
      g_string_append (out, p);
      break;
    }
    g_string_append_len (out, p, start - p);
    end = strchr (start, '}');
    if (end == NULL) {
      g_set_error (error, GST_PARSE_ERROR, GST_PARSE_ERROR_SYNTAX,
          "%s:%u: \"${\" without a closing \"}\"", t->path,
          line_of (t->text, start));
      return (g_string_free (out, TRUE), NULL);
    }
    name = g_strndup (start + 2, end - start - 2);
    if (!is_known_variable (name)) {
      g_set_error (error, GST_PARSE_ERROR, GST_PARSE_ERROR_SYNTAX,
          "%s:%u: unknown variable ${%s}", t->path, line_of (t->text, start),
          name);
      g_free (name);
      return (g_string_free (out, TRUE), NULL);
    } else {
      gchar *v = escape_value (vars ? g_hash_table_lookup (vars, name) : NULL);
      g_string_append (out, v);
      g_free (v);
    }
    g_free (name);
    p = end + 1;
  }
  return g_string_free (out, FALSE);
}

/* Points a parse error at the template line that holds the token it names
 * (GStreamer's messages quote it: no element "foo", no property "bar"). */
static void
locate_parse_error (const VaTemplate *t, GError *error, GError **out)
{
  const gchar *q1 = strchr (error->message, '"');
  const gchar *q2 = q1 ? strchr (q1 + 1, '"') : NULL;
  guint line = 0;

  if (q1 && q2 && q2 > q1 + 1) {
    gchar *token = g_strndup (q1 + 1, q2 - q1 - 1);
    const gchar *at = strstr (t->text, token);
    if (at)
      line = line_of (t->text, at);
    g_free (token);
  }
  if (line)
    g_set_error (out, error->domain, error->code, "%s:%u: %s", t->path, line,
        error->message);
  else
    g_set_error (
        out, error->domain, error->code, "%s: %s", t->path, error->message);
}

/* TRUE if @pipeline has the element named @name made by @type_name. */
static gboolean
has_element (GstElement *pipeline, const gchar *name, const gchar *type_name)
{
  GstElement *e = gst_bin_get_by_name (GST_BIN (pipeline), name);
  gboolean ok = e && g_strcmp0 (G_OBJECT_TYPE_NAME (e), type_name) == 0;

  g_clear_object (&e);
  return ok;
}

static gboolean
find_kind (GstElement *pipeline, VaTemplateKind *kind)
{
  if (has_element (pipeline, "webrtc", "GstWebRTCBin")) {
    *kind = VA_TEMPLATE_WEBRTC;
    return TRUE;
  }
  if (has_element (pipeline, "rtp_in", "GstUDPSrc") &&
      has_element (pipeline, "rtp_out", "GstUDPSink")) {
    *kind = VA_TEMPLATE_RTP;
    return TRUE;
  }
  return FALSE;
}

/* Builds the pipeline of @t with @vars and finds its kind. */
static GstElement *
build (
    const VaTemplate *t, GHashTable *vars, VaTemplateKind *kind, GError **error)
{
  gchar *desc = va_template_expand (t, vars, error);
  GstParseContext *ctx;
  GstElement *pipeline;
  GError *err = NULL;

  if (desc == NULL)
    return NULL;
  ctx = gst_parse_context_new ();
  pipeline = gst_parse_launch_full (desc, ctx,
      GST_PARSE_FLAG_FATAL_ERRORS | GST_PARSE_FLAG_PLACE_IN_BIN, &err);
  gst_parse_context_free (ctx);
  g_free (desc);
  if (pipeline == NULL) {
    locate_parse_error (t, err, error);
    g_error_free (err);
    return NULL;
  }
  if (!GST_IS_PIPELINE (pipeline)) {
    /* A description of a single element or chain is not put in a pipeline. */
    GstElement *outer = gst_pipeline_new (NULL);
    gst_bin_add (GST_BIN (outer), pipeline);
    pipeline = outer;
  }
  if (!find_kind (pipeline, kind)) {
    g_set_error (error, GST_PARSE_ERROR, GST_PARSE_ERROR_LINK,
        "%s: the template needs a \"webrtcbin name=webrtc\" (direct mode) "
        "or a \"udpsrc name=rtp_in\" and a \"udpsink name=rtp_out\" "
        "(gateway mode)",
        t->path);
    gst_object_unref (pipeline);
    return NULL;
  }
  return pipeline;
}

GstElement *
va_template_instantiate (const VaTemplate *t, GHashTable *vars, GError **error)
{
  VaTemplateKind kind;
  GstElement *pipeline = build (t, vars, &kind, error);

  if (pipeline && kind != t->kind) {
    g_set_error (error, GST_PARSE_ERROR, GST_PARSE_ERROR_LINK,
        "%s: its variables changed the pipeline's kind (WebRTC or RTP)",
        t->path);
    gst_clear_object (&pipeline);
  }
  return pipeline;
}

static gchar *
strip_comments (const gchar *text)
{
  gchar **lines = g_strsplit (text, "\n", -1);
  gchar **l, *out;

  /* Comment lines become empty lines so line numbers stay right. */
  for (l = lines; *l; l++) {
    const gchar *s = *l;
    while (g_ascii_isspace (*s))
      s++;
    if (*s == '#')
      (*l)[0] = '\0';
  }
  out = g_strjoinv ("\n", lines);
  g_strfreev (lines);
  return out;
}

static GHashTable *
placeholder_vars (void)
{
  GHashTable *vars = g_hash_table_new (g_str_hash, g_str_equal);
  const gchar *const *v;

  for (v = va_template_variables; *v; v++)
    g_hash_table_insert (vars, (gpointer)*v, (gpointer) "placeholder");
  g_hash_table_insert (vars, (gpointer) "OPUS_PT", (gpointer) "111");
  g_hash_table_insert (vars, (gpointer) "RTP_HOST", (gpointer) "127.0.0.1");
  g_hash_table_insert (vars, (gpointer) "RTP_PORT", (gpointer) "9");
  g_hash_table_insert (vars, (gpointer) "SESSION", (gpointer) "template-check");
  g_hash_table_insert (
      vars, (gpointer) "LLM_URL", (gpointer) "http://127.0.0.1:1/v1");
  g_hash_table_insert (
      vars, (gpointer) "DEEPGRAM_URL", (gpointer) "ws://127.0.0.1:1/v1/listen");
  g_hash_table_insert (
      vars, (gpointer) "ELEVENLABS_URL", (gpointer) "ws://127.0.0.1:1");
  return vars;
}

/* NAME.tools.json beside the template, if there is one: a JSON array
 * (check_tools below has llmtransform check each tool). */
static gboolean
find_tools (VaTemplate *t, const gchar *dir, GError **error)
{
  gchar *name = g_strconcat (t->name, ".tools.json", NULL);
  gchar *path = g_build_filename (dir, name, NULL);
  JsonParser *p;
  gboolean ok = TRUE;

  g_free (name);
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_free (path);
    return TRUE;
  }
  p = json_parser_new ();
  if (!json_parser_load_from_file (p, path, error)) {
    g_prefix_error (error, "tools file %s: ", path);
    ok = FALSE;
  } else if (!JSON_NODE_HOLDS_ARRAY (json_parser_get_root (p))) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
        "tools file %s is not a JSON array of tools "
        "(docs/elements/llmtransform.md, Tools)",
        path);
    ok = FALSE;
  }
  g_object_unref (p);
  if (ok)
    t->tools_path = path;
  else
    g_free (path);
  return ok;
}

/* The tools file as each call's llmtransform will load it (every tool,
 * URL and built-in checked): the element loads it going to READY, which
 * opens no connection. A file it refuses stops the server here, with the
 * element's own reason, instead of failing every call. */
static gboolean
check_tools (VaTemplate *t, GstElement *check, GError **error)
{
  GstElement *llm = gst_bin_get_by_name (GST_BIN (check), "llm");
  GstBus *bus = gst_element_get_bus (check);
  GstMessage *msg;
  gchar *own = NULL;
  gboolean ok = TRUE;

  if (llm && t->tools_path &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (llm), "tools-file")) {
    g_object_get (llm, "tools-file", &own, NULL);
    if (own == NULL)
      g_object_set (llm, "tools-file", t->tools_path, NULL);
    ok = gst_element_set_state (llm, GST_STATE_READY) !=
        GST_STATE_CHANGE_FAILURE;
    gst_element_set_state (llm, GST_STATE_NULL);
    msg = ok ? NULL : gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
    if (!ok) {
      GError *err = NULL;
      gchar *debug = NULL;

      if (msg)
        gst_message_parse_error (msg, &err, &debug);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
          "template %s: its tools file %s cannot be used: %s (%s)", t->name,
          t->tools_path, err ? err->message : "llmtransform refused it",
          debug ? debug : "");
      g_clear_error (&err);
      g_free (debug);
      if (msg)
        gst_message_unref (msg);
    }
    g_free (own);
  }
  if (llm)
    gst_object_unref (llm);
  gst_object_unref (bus);
  return ok;
}

static VaTemplate *
load_one (const gchar *dir, const gchar *file, GError **error)
{
  VaTemplate *t = g_new0 (VaTemplate, 1);
  gchar *raw = NULL;
  GHashTable *vars;
  GstElement *check;

  t->path = g_build_filename (dir, file, NULL);
  t->name = g_strndup (file, strlen (file) - strlen (".pipeline"));
  if (!find_tools (t, dir, error) ||
      !g_file_get_contents (t->path, &raw, NULL, error)) {
    template_free (t);
    return NULL;
  }
  t->text = strip_comments (raw);
  g_free (raw);

  vars = placeholder_vars ();
  check = build (t, vars, &t->kind, error);
  g_hash_table_unref (vars);
  if (check == NULL || !check_tools (t, check, error)) {
    if (check)
      gst_object_unref (check);
    template_free (t);
    return NULL;
  }
  gst_object_unref (check);
  return t;
}

GHashTable *
va_templates_load (const gchar *dir, GError **error)
{
  GHashTable *table = g_hash_table_new_full (
      g_str_hash, g_str_equal, NULL, (GDestroyNotify)template_free);
  GDir *d = g_dir_open (dir, 0, error);
  const gchar *file;

  if (d == NULL)
    return (g_hash_table_unref (table), NULL);
  while ((file = g_dir_read_name (d))) {
    VaTemplate *t;
    if (!g_str_has_suffix (file, ".pipeline"))
      continue;
    t = load_one (dir, file, error);
    if (t == NULL) {
      g_dir_close (d);
      g_hash_table_unref (table);
      return NULL;
    }
    g_hash_table_insert (table, t->name, t);
  }
  g_dir_close (d);
  if (g_hash_table_size (table) == 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
        "%s holds no *.pipeline template", dir);
    return (g_hash_table_unref (table), NULL);
  }
  return table;
}

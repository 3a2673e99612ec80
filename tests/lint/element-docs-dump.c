/* element-docs-dump: prints, for each element named on the command line,
 * the Markdown block each page of docs/elements carries between its
 * <!-- element-docs:NAME:begin --> and <!-- element-docs:NAME:end --> markers:
 * the factory's klass and description, the pad templates, and a table of the
 * properties the element adds to its GStreamer base class (name, type,
 * default, range, flags, blurb), all read from the registry and the
 * GObject class, as gst-inspect-1.0 reads them.
 *
 * scripts/element-docs runs it (--write rewrites the pages, --check compares
 * them; the lint test element-docs runs the check). Defaults are read from a
 * fresh instance, with the environment variables the elements read at start
 * or at init unset, so the output does not depend on the caller's shell. */

#include "config.h"

#include <gst/gst.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_MODEL_DIR                                                      \
  "/usr/local/share/gst-voiceagent" /* meson.build's default */

/* GStreamer's own classes: properties they own are not the element's. */
static const char *const gst_bases[] = {
  "GstObject",
  "GstElement",
  "GstBin",
  "GstPipeline",
  "GstBaseSink",
  "GstBaseSrc",
  "GstPushSrc",
  "GstBaseTransform",
  "GstAudioFilter",
  "GstAggregator",
  "GstAudioSink",
  "GstAudioSrc",
  "GstAudioBaseSink",
  "GstAudioBaseSrc",
};

static GType
first_gst_base (GType type)
{
  for (GType t = type; t != 0; t = g_type_parent (t)) {
    for (guint i = 0; i < G_N_ELEMENTS (gst_bases); i++)
      if (strcmp (g_type_name (t), gst_bases[i]) == 0)
        return t;
  }
  return 0;
}

/* Markdown table cell: no newlines, no bare '|'. */
static void
put_cell (GString *out, const char *s)
{
  for (const char *p = s; *p; p++) {
    if (*p == '|')
      g_string_append (out, "\\|");
    else if (*p == '\n')
      g_string_append_c (out, ' ');
    else
      g_string_append_c (out, *p);
  }
}

static char *
format_double (double d)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  if (d >= G_MAXFLOAT)
    return g_strdup ("G_MAXFLOAT");
  if (d <= -G_MAXFLOAT)
    return g_strdup ("-G_MAXFLOAT");
  g_ascii_formatd (buf, sizeof buf, "%.6g", d);
  return g_strdup (buf);
}

static char *
type_name (GParamSpec *p)
{
  GType vt = G_PARAM_SPEC_VALUE_TYPE (p);
  switch (G_TYPE_FUNDAMENTAL (vt)) {
    case G_TYPE_STRING:
      return g_strdup ("string");
    case G_TYPE_BOOLEAN:
      return g_strdup ("boolean");
    case G_TYPE_INT:
      return g_strdup ("int");
    case G_TYPE_UINT:
      return g_strdup ("uint");
    case G_TYPE_INT64:
      return g_strdup ("int64");
    case G_TYPE_UINT64:
      return g_strdup ("uint64");
    case G_TYPE_LONG:
      return g_strdup ("long");
    case G_TYPE_ULONG:
      return g_strdup ("ulong");
    case G_TYPE_FLOAT:
      return g_strdup ("float");
    case G_TYPE_DOUBLE:
      return g_strdup ("double");
    case G_TYPE_ENUM:
      return g_strdup_printf ("enum %s", g_type_name (vt));
    case G_TYPE_FLAGS:
      return g_strdup_printf ("flags %s", g_type_name (vt));
    default:
      break;
  }
  if (GST_IS_PARAM_SPEC_ARRAY_LIST (p)) {
    GParamSpec *e = GST_PARAM_SPEC_ARRAY_LIST (p)->element_spec;
    if (e) {
      char *en = type_name (e);
      char *s = g_strdup_printf ("array of %s", en);
      g_free (en);
      return s;
    }
    return g_strdup ("array");
  }
  return g_strdup (g_type_name (vt));
}

static char *
range_of (GParamSpec *p)
{
  if (G_IS_PARAM_SPEC_INT (p)) {
    GParamSpecInt *s = G_PARAM_SPEC_INT (p);
    return g_strdup_printf ("%d – %d", s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_UINT (p)) {
    GParamSpecUInt *s = G_PARAM_SPEC_UINT (p);
    return g_strdup_printf ("%u – %u", s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_INT64 (p)) {
    GParamSpecInt64 *s = G_PARAM_SPEC_INT64 (p);
    return g_strdup_printf (
        "%" G_GINT64_FORMAT " – %" G_GINT64_FORMAT, s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_UINT64 (p)) {
    GParamSpecUInt64 *s = G_PARAM_SPEC_UINT64 (p);
    return g_strdup_printf (
        "%" G_GUINT64_FORMAT " – %" G_GUINT64_FORMAT, s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_LONG (p)) {
    GParamSpecLong *s = G_PARAM_SPEC_LONG (p);
    return g_strdup_printf ("%ld – %ld", s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_ULONG (p)) {
    GParamSpecULong *s = G_PARAM_SPEC_ULONG (p);
    return g_strdup_printf ("%lu – %lu", s->minimum, s->maximum);
  }
  if (G_IS_PARAM_SPEC_FLOAT (p) || G_IS_PARAM_SPEC_DOUBLE (p)) {
    double lo, hi;
    if (G_IS_PARAM_SPEC_FLOAT (p)) {
      lo = G_PARAM_SPEC_FLOAT (p)->minimum;
      hi = G_PARAM_SPEC_FLOAT (p)->maximum;
    } else {
      lo = G_PARAM_SPEC_DOUBLE (p)->minimum;
      hi = G_PARAM_SPEC_DOUBLE (p)->maximum;
    }
    char *a = format_double (lo), *b = format_double (hi);
    char *s = g_strdup_printf ("%s – %s", a, b);
    g_free (a);
    g_free (b);
    return s;
  }
  if (G_IS_PARAM_SPEC_ENUM (p)) {
    GEnumClass *ec = G_PARAM_SPEC_ENUM (p)->enum_class;
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < ec->n_values; i++)
      g_string_append_printf (
          s, "%s`%s`", i ? ", " : "", ec->values[i].value_nick);
    return g_string_free (s, FALSE);
  }
  if (G_IS_PARAM_SPEC_FLAGS (p)) {
    GFlagsClass *fc = G_PARAM_SPEC_FLAGS (p)->flags_class;
    GString *s = g_string_new (NULL);
    for (guint i = 0; i < fc->n_values; i++)
      g_string_append_printf (
          s, "%s`%s`", i ? ", " : "", fc->values[i].value_nick);
    return g_string_free (s, FALSE);
  }
  return g_strdup ("");
}

static char *
value_text (const GValue *v)
{
  GType t = G_VALUE_TYPE (v);
  switch (G_TYPE_FUNDAMENTAL (t)) {
    case G_TYPE_STRING: {
      const char *s = g_value_get_string (v);
      if (s == NULL)
        return g_strdup ("NULL");
      /* silerovad's model: shown in the default configuration's directory
       * whatever -Dmodel_dir this build has, so the pages do not depend on it. */
      if (g_str_has_prefix (s, VOICEAGENT_MODEL_DIR "/"))
        return g_strdup_printf (
            "`\"%s%s\"`", DEFAULT_MODEL_DIR, s + strlen (VOICEAGENT_MODEL_DIR));
      return g_strdup_printf ("`\"%s\"`", s);
    }
    case G_TYPE_BOOLEAN:
      return g_strdup (g_value_get_boolean (v) ? "`true`" : "`false`");
    case G_TYPE_FLOAT:
    case G_TYPE_DOUBLE: {
      double d = G_VALUE_HOLDS_FLOAT (v) ? g_value_get_float (v)
                                         : g_value_get_double (v);
      char *n = format_double (d);
      char *s = g_strdup_printf ("`%s`", n);
      g_free (n);
      return s;
    }
    case G_TYPE_ENUM: {
      GEnumClass *ec = g_type_class_ref (t);
      GEnumValue *ev = g_enum_get_value (ec, g_value_get_enum (v));
      char *s = ev ? g_strdup_printf ("`%s`", ev->value_nick)
                   : g_strdup_printf ("`%d`", g_value_get_enum (v));
      g_type_class_unref (ec);
      return s;
    }
    default:
      break;
  }
  if (t == GST_TYPE_ARRAY || t == GST_TYPE_LIST) {
    if (gst_value_array_get_size (v) == 0 && t == GST_TYPE_ARRAY)
      return g_strdup ("empty");
    if (t == GST_TYPE_LIST && gst_value_list_get_size (v) == 0)
      return g_strdup ("empty");
  }
  char *c = gst_value_serialize (v);
  if (c == NULL)
    c = g_strdup_value_contents (v);
  char *s = g_strdup_printf ("`%s`", c);
  g_free (c);
  return s;
}

static char *
flags_text (GParamSpec *p)
{
  GString *s = g_string_new (NULL);
  gboolean r = p->flags & G_PARAM_READABLE, w = p->flags & G_PARAM_WRITABLE;
  g_string_append (s,
      r && w  ? "read/write"
          : r ? "read-only"
          : w ? "write-only"
              : "none");
  if (p->flags & G_PARAM_CONSTRUCT_ONLY)
    g_string_append (s, ", construct only");
  else if (w) {
    if (p->flags & GST_PARAM_MUTABLE_PLAYING)
      g_string_append (s, ", any state");
    else if (p->flags & GST_PARAM_MUTABLE_PAUSED)
      g_string_append (s, ", NULL to PAUSED");
    else if (p->flags & GST_PARAM_MUTABLE_READY)
      g_string_append (s, ", NULL or READY");
  }
  if (p->flags & GST_PARAM_CONTROLLABLE)
    g_string_append (s, ", controllable");
  if (p->flags & G_PARAM_DEPRECATED)
    g_string_append (s, ", deprecated");
  return g_string_free (s, FALSE);
}

static gint
compare_pspec (gconstpointer a, gconstpointer b)
{
  GParamSpec *const *pa = a, *const *pb = b;
  return strcmp ((*pa)->name, (*pb)->name);
}

/* The registry cache lists pad templates in another order than a plugin
 * just loaded: sink pads first, then src pads, each by name. */
static gint
compare_templ (gconstpointer a, gconstpointer b)
{
  const GstStaticPadTemplate *ta = a, *tb = b;
  if (ta->direction != tb->direction)
    return ta->direction == GST_PAD_SINK ? -1 : 1;
  return strcmp (ta->name_template, tb->name_template);
}

static gboolean
dump (const char *name, GString *out)
{
  GstElementFactory *f = gst_element_factory_find (name);
  if (f == NULL) {
    g_printerr ("element-docs-dump: no element %s in the registry\n", name);
    return FALSE;
  }
  GstElement *e = gst_element_factory_create (f, NULL);
  if (e == NULL) {
    g_printerr ("element-docs-dump: cannot create %s\n", name);
    gst_object_unref (f);
    return FALSE;
  }
  GType type = G_OBJECT_TYPE (e);
  GType base = first_gst_base (type);
  if (base == 0) {
    g_printerr (
        "element-docs-dump: %s derives from no known GStreamer base class: "
        "add its base to gst_bases[]\n",
        name);
    gst_object_unref (e);
    gst_object_unref (f);
    return FALSE;
  }

  g_string_append_printf (out,
      "<!-- element-docs:%s:begin: generated by scripts/element-docs --write from the registry; "
      "edit the element's source, not this block -->\n",
      name);
  const char *desc =
      gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_DESCRIPTION);
  gsize dlen = desc ? strlen (desc) : 0;
  if (dlen > 0 && desc[dlen - 1] == '.')
    dlen--;
  g_string_append_printf (out,
      "**`%s`** (%s, derives from `%s`): %.*s. Klass `%s`.\n\n", name,
      gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_LONGNAME),
      g_type_name (base), (int)dlen, desc ? desc : "",
      gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_KLASS));

  GList *templs = g_list_sort (
      g_list_copy ((GList *)gst_element_factory_get_static_pad_templates (f)),
      compare_templ);
  if (templs) {
    static const char *dirs[] = { "unknown", "src", "sink" };
    static const char *pres[] = { "always", "sometimes", "request" };
    g_string_append (
        out, "| pad | direction | presence | caps |\n|---|---|---|---|\n");
    for (const GList *l = templs; l; l = l->next) {
      GstStaticPadTemplate *t = l->data;
      GstCaps *caps = gst_static_caps_get (&t->static_caps);
      char *cs = gst_caps_to_string (caps);
      g_string_append_printf (out, "| `%s` | %s | %s | `", t->name_template,
          dirs[t->direction], pres[t->presence]);
      put_cell (out, cs);
      g_string_append (out, "` |\n");
      g_free (cs);
      gst_caps_unref (caps);
    }
    g_string_append_c (out, '\n');
  } else {
    g_string_append (out, "No pad templates.\n\n");
  }
  g_list_free (templs);

  guint n = 0;
  GParamSpec **props =
      g_object_class_list_properties (G_OBJECT_GET_CLASS (e), &n);
  qsort (props, n, sizeof *props, compare_pspec);
  g_string_append (out,
      "| property | type | default | range | flags | description |\n"
      "|---|---|---|---|---|---|\n");
  for (guint i = 0; i < n; i++) {
    GParamSpec *p = props[i];
    if (g_type_is_a (base, p->owner_type))
      continue;
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_PARAM_SPEC_VALUE_TYPE (p));
    if (p->flags & G_PARAM_READABLE)
      g_object_get_property (G_OBJECT (e), p->name, &v);
    else
      g_param_value_set_default (p, &v);
    char *tn = type_name (p), *dv = value_text (&v), *rg = range_of (p),
         *fl = flags_text (p);
    g_string_append_printf (out, "| `%s` | %s | ", p->name, tn);
    put_cell (out, dv);
    g_string_append (out, " | ");
    put_cell (out, rg);
    g_string_append_printf (out, " | %s | ", fl);
    put_cell (
        out, g_param_spec_get_blurb (p) ? g_param_spec_get_blurb (p) : "");
    g_string_append (out, " |\n");
    g_free (tn);
    g_free (dv);
    g_free (rg);
    g_free (fl);
    g_value_unset (&v);
  }
  g_free (props);
  g_string_append_printf (out, "<!-- element-docs:%s:end -->\n", name);

  gst_object_unref (e);
  gst_object_unref (f);
  return TRUE;
}

int
main (int argc, char **argv)
{
  /* What the elements read from the environment must not reach the output. */
  static const char *const env[] = {
    "VOICEAGENT_MODEL_DIR",
    "DEEPGRAM_API_KEY",
    "ELEVENLABS_API_KEY",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
  };
  for (guint i = 0; i < G_N_ELEMENTS (env); i++)
    g_unsetenv (env[i]);

  gst_init (&argc, &argv);
  if (argc < 2) {
    g_printerr ("usage: element-docs-dump ELEMENT...\n");
    return 2;
  }
  GString *out = g_string_new (NULL);
  gboolean ok = TRUE;
  for (int i = 1; i < argc && ok; i++)
    ok = dump (argv[i], out);
  if (ok)
    fwrite (out->str, 1, out->len, stdout);
  g_string_free (out, TRUE);
  gst_deinit ();
  return ok ? 0 : 1;
}

/* The names our elements go by: the deprecated property names that still
 * work for one release (each sets and reads its new property, with unit
 * conversion where the unit changed, from a launch line as from code), the
 * one rule for durations, and the one klass order (docs/elements/README.md).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <string.h>

typedef struct
{
  const gchar *element;
  const gchar *old_name;
  const gchar *old_value; /* as written on a launch line */
  const gchar *new_name;
  const gchar *new_value; /* what the new property then holds */
} Alias;

/* Every element with a deprecated name, the bins included: a bin forwards
 * the old name to its children, which must take it too. */
static const Alias aliases[] = {
  { "deepgramsink", "language", "de", "language-code", "de" },
  { "deepgramsink", "endpointing", "450", "endpointing-ms", "450" },
  { "deepgram", "language", "fr-CA", "language-code", "fr-CA" },
  { "deepgram", "endpointing", "0", "endpointing-ms", "0" },
  { "llmtransform", "history-turns", "3", "history-size", "3" },
  { "llmtransform", "first-token-timeout", "1500", "first-token-timeout-ms",
      "1500" },
  { "elevenlabssink", "inactivity-timeout", "7", "inactivity-timeout-ms",
      "7000" },
  { "elevenlabssrc", "inactivity-timeout", "180", "inactivity-timeout-ms",
      "180000" },
  { "elevenlabs", "inactivity-timeout", "1", "inactivity-timeout-ms", "1000" },
};

static const gchar *const our_elements[] = { "silerovad", "deepgramsink",
  "deepgramsrc", "deepgram", "llmtransform", "elevenlabssink", "elevenlabssrc",
  "elevenlabs" };

static gchar *
get_as_string (GstElement *e, const gchar *name)
{
  GParamSpec *pspec =
      g_object_class_find_property (G_OBJECT_GET_CLASS (e), name);
  GValue v = G_VALUE_INIT;
  gchar *s;

  fail_unless (
      pspec != NULL, "%s has no property %s", GST_OBJECT_NAME (e), name);
  g_value_init (&v, pspec->value_type);
  g_object_get_property (G_OBJECT (e), name, &v);
  s = G_VALUE_HOLDS_STRING (&v) ? g_value_dup_string (&v)
                                : gst_value_serialize (&v);
  g_value_unset (&v);
  return s;
}

/* Each alias: deprecated, says what to use, and an old launch line sets
 * the new property. */
GST_START_TEST (test_alias_sets_new_property)
{
  const Alias *a = &aliases[__i__];
  GParamSpec *pspec;
  GstElement *e;
  GError *error = NULL;
  gchar *line, *got, *blurb;

  line = g_strdup_printf (
      "%s name=e %s=%s", a->element, a->old_name, a->old_value);
  e = gst_parse_launch (line, &error);
  fail_unless (
      e != NULL && error == NULL, "%s: %s", line, error ? error->message : "");
  /* One element comes back as itself, never wrapped in a pipeline; check
   * that it is ours. */
  fail_unless_equals_string (GST_OBJECT_NAME (e), "e");

  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (e), a->old_name);
  fail_unless (pspec->flags & G_PARAM_DEPRECATED, "%s:%s is not deprecated",
      a->element, a->old_name);
  blurb = g_strdup_printf ("Deprecated: use %s", a->new_name);
  fail_unless (g_str_has_prefix (g_param_spec_get_blurb (pspec), blurb),
      "%s:%s blurb \"%s\" does not start \"%s\"", a->element, a->old_name,
      g_param_spec_get_blurb (pspec), blurb);
  g_free (blurb);

  got = get_as_string (e, a->new_name);
  fail_unless_equals_string (got, a->new_value);
  g_free (got);
  /* Reading the old name gives the value back in the old unit. */
  got = get_as_string (e, a->old_name);
  fail_unless_equals_string (got, a->old_value);
  g_free (got);

  gst_object_unref (e);
  g_free (line);
}

GST_END_TEST;

/* Setting the new property is seen through the old name, rounded to the
 * old unit. */
GST_START_TEST (test_alias_reads_new_property)
{
  GstElement *e = gst_element_factory_make ("elevenlabssink", NULL);
  guint s = 0;

  g_object_set (e, "inactivity-timeout-ms", 2500, NULL);
  g_object_get (e, "inactivity-timeout", &s, NULL);
  fail_unless_equals_int (s, 3);
  g_object_set (e, "inactivity-timeout-ms", 1000, NULL);
  g_object_get (e, "inactivity-timeout", &s, NULL);
  fail_unless_equals_int (s, 1);
  gst_object_unref (e);
}

GST_END_TEST;

static gboolean
blurb_says_duration (GParamSpec *pspec)
{
  const gchar *b = g_param_spec_get_blurb (pspec);

  return strstr (b, "milliseconds") || strstr (b, "Seconds") ||
      strstr (b, " seconds");
}

/* One rule for durations: a property whose blurb gives a duration ends in
 * -ms; only the deprecated aliases may break it. */
GST_START_TEST (test_durations_end_in_ms)
{
  for (guint i = 0; i < G_N_ELEMENTS (our_elements); i++) {
    GstElement *e = gst_element_factory_make (our_elements[i], NULL);
    guint n;
    GParamSpec **props;

    fail_unless (e != NULL, "no element %s", our_elements[i]);
    props = g_object_class_list_properties (G_OBJECT_GET_CLASS (e), &n);
    for (guint k = 0; k < n; k++) {
      GParamSpec *p = props[k];

      if ((p->flags & G_PARAM_DEPRECATED) || !blurb_says_duration (p) ||
          !G_IS_PARAM_SPEC_UINT (p))
        continue;
      fail_unless (g_str_has_suffix (p->name, "-ms"),
          "%s:%s is a duration but does not end in -ms", our_elements[i],
          p->name);
    }
    g_free (props);
    gst_object_unref (e);
  }
}

GST_END_TEST;

/* One klass order: Source, Sink or Filter (then Analyzer), the media in
 * the order data flows through, Network last when the element talks to a
 * service. */
GST_START_TEST (test_klass_order)
{
  static const gchar *const media[] = { "Audio", "Text", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (our_elements); i++) {
    GstElementFactory *f = gst_element_factory_find (our_elements[i]);
    const gchar *klass =
        gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_KLASS);
    gchar **kw = g_strsplit (klass, "/", -1);
    guint n = g_strv_length (kw), k = 1;

    fail_unless (n >= 2, "%s: klass \"%s\"", our_elements[i], klass);
    fail_unless (
        g_strv_contains (
            (const gchar *[]){ "Source", "Sink", "Filter", NULL }, kw[0]),
        "%s: klass \"%s\" does not start with Source, Sink or Filter",
        our_elements[i], klass);
    if (k < n && strcmp (kw[k], "Analyzer") == 0)
      k++;
    fail_unless (k < n && g_strv_contains (media, kw[k]),
        "%s: klass \"%s\" names no medium after its function", our_elements[i],
        klass);
    while (k < n && g_strv_contains (media, kw[k]))
      k++;
    fail_unless (k == n || (k == n - 1 && strcmp (kw[k], "Network") == 0),
        "%s: klass \"%s\": after the media only Network may follow",
        our_elements[i], klass);
    g_strfreev (kw);
    gst_object_unref (f);
  }
}

GST_END_TEST;

static Suite *
names_suite (void)
{
  Suite *s = suite_create ("deprecated-names");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_loop_test (
      tc, test_alias_sets_new_property, 0, G_N_ELEMENTS (aliases));
  tcase_add_test (tc, test_alias_reads_new_property);
  tcase_add_test (tc, test_durations_end_in_ms);
  tcase_add_test (tc, test_klass_order);
  return s;
}

GST_CHECK_MAIN (names);

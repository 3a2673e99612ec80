/* Unit tests of the option table (gstvoiceoptions.h) and of the one rule
 * for reading an API key.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gst/check/gstcheck.h>
#include <string.h>
#include "voice.h"

typedef struct
{
  gchar *key;
  gchar *name;
  gchar *lang;
  gboolean flag;
  gint level;
  guint count;
  gint64 big;
  gdouble ratio;
  gint mode; /* GstFormat */
  gchar **words;
} Opts;

enum {
  OPT_KEY,
  OPT_NAME,
  OPT_LANG,
  OPT_FLAG,
  OPT_LEVEL,
  OPT_COUNT,
  OPT_BIG,
  OPT_RATIO,
  OPT_MODE,
  OPT_WORDS,
  OPT_OLD_LANG, /* deprecated alias of lang */
  OPT_COUNT_TENS, /* deprecated alias of count, in tens */
  N_OPTS
};

static GParamSpec *
make_pspec (guint i)
{
  const GParamFlags f = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  switch (i) {
    case OPT_KEY:
      return g_param_spec_string (
          "key", "Key", "Key", NULL, G_PARAM_WRITABLE | G_PARAM_STATIC_STRINGS);
    case OPT_NAME:
      return g_param_spec_string ("name", "Name", "Name", "dflt", f);
    case OPT_LANG:
      return g_param_spec_string ("lang", "Lang", "Lang", "en", f);
    case OPT_FLAG:
      return g_param_spec_boolean ("flag", "Flag", "Flag", TRUE, f);
    case OPT_LEVEL:
      return g_param_spec_int ("level", "Level", "Level", -5, 5, -3, f);
    case OPT_COUNT:
      return g_param_spec_uint ("count", "Count", "Count", 0, 99, 7, f);
    case OPT_BIG:
      return g_param_spec_int64 (
          "big", "Big", "Big", 0, G_MAXINT64, G_GINT64_CONSTANT (1) << 40, f);
    case OPT_RATIO:
      return g_param_spec_double ("ratio", "Ratio", "Ratio", 0, 1, 0.25, f);
    case OPT_MODE:
      return g_param_spec_enum (
          "mode", "Mode", "Mode", GST_TYPE_FORMAT, GST_FORMAT_TIME, f);
    case OPT_WORDS:
      return gst_param_spec_array ("words", "Words", "Words",
          g_param_spec_string ("word", "Word", "Word", NULL, f), f);
  }
  g_assert_not_reached ();
  return NULL;
}

static const GstVoiceOption options[N_OPTS] = {
  [OPT_KEY] = { G_STRUCT_OFFSET (Opts, key), GST_VOICE_OPTION_SECRET },
  [OPT_NAME] = { G_STRUCT_OFFSET (Opts, name),
      GST_VOICE_OPTION_NULL_IS_DEFAULT },
  [OPT_LANG] = { G_STRUCT_OFFSET (Opts, lang), 0, "" },
  [OPT_FLAG] = { G_STRUCT_OFFSET (Opts, flag) },
  [OPT_LEVEL] = { G_STRUCT_OFFSET (Opts, level) },
  [OPT_COUNT] = { G_STRUCT_OFFSET (Opts, count) },
  [OPT_BIG] = { G_STRUCT_OFFSET (Opts, big) },
  [OPT_RATIO] = { G_STRUCT_OFFSET (Opts, ratio) },
  [OPT_MODE] = { G_STRUCT_OFFSET (Opts, mode) },
  [OPT_WORDS] = { G_STRUCT_OFFSET (Opts, words) },
  [OPT_OLD_LANG] = GST_VOICE_OPTION_ALIAS ("old-lang", OPT_LANG, 1),
  [OPT_COUNT_TENS] = GST_VOICE_OPTION_ALIAS ("count-tens", OPT_COUNT, 10),
};

static GstVoiceOptionTable table =
    GST_VOICE_OPTION_TABLE_INIT (options, make_pspec);

static void
set_string (Opts *o, guint i, const gchar *s)
{
  GValue v = G_VALUE_INIT;

  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, s);
  fail_unless (gst_voice_options_set (&table, o, i, &v));
  g_value_unset (&v);
}

/* Every default comes from the pspec. */
GST_START_TEST (test_options_init_defaults)
{
  Opts o;

  memset (&o, 0xaa, sizeof (o));
  gst_voice_options_init (&table, &o);
  fail_unless (o.key == NULL);
  fail_unless_equals_string (o.name, "dflt");
  fail_unless_equals_string (o.lang, "en");
  fail_unless (o.flag == TRUE);
  fail_unless_equals_int (o.level, -3);
  fail_unless_equals_int (o.count, 7);
  fail_unless (o.big == G_GINT64_CONSTANT (1) << 40);
  fail_unless (o.ratio == 0.25);
  fail_unless_equals_int (o.mode, GST_FORMAT_TIME);
  fail_unless (o.words != NULL && o.words[0] == NULL);
  gst_voice_options_clear (&table, &o);
  fail_unless (o.name == NULL && o.words == NULL);
}

GST_END_TEST;

/* Set, get and copy by value type; NULL strings follow their flags. */
GST_START_TEST (test_options_set_get_copy)
{
  Opts o, c;
  GValue v = G_VALUE_INIT;
  GValue w = G_VALUE_INIT;

  gst_voice_options_init (&table, &o);

  set_string (&o, OPT_NAME, "bob");
  fail_unless_equals_string (o.name, "bob");
  set_string (&o, OPT_NAME, NULL);
  fail_unless_equals_string (o.name, "dflt");
  set_string (&o, OPT_LANG, NULL);
  fail_unless_equals_string (o.lang, "");

  g_value_init (&v, G_TYPE_INT);
  g_value_set_int (&v, -5);
  fail_unless (gst_voice_options_set (&table, &o, OPT_LEVEL, &v));
  g_value_unset (&v);
  g_value_init (&v, G_TYPE_INT64);
  g_value_set_int64 (&v, 42);
  fail_unless (gst_voice_options_set (&table, &o, OPT_BIG, &v));
  g_value_unset (&v);
  g_value_init (&v, G_TYPE_DOUBLE);
  g_value_set_double (&v, 0.5);
  fail_unless (gst_voice_options_set (&table, &o, OPT_RATIO, &v));
  g_value_unset (&v);
  g_value_init (&v, GST_TYPE_FORMAT);
  g_value_set_enum (&v, GST_FORMAT_BYTES);
  fail_unless (gst_voice_options_set (&table, &o, OPT_MODE, &v));
  g_value_unset (&v);

  g_value_init (&v, GST_TYPE_ARRAY);
  g_value_init (&w, G_TYPE_STRING);
  g_value_set_string (&w, "one");
  gst_value_array_append_value (&v, &w);
  g_value_set_string (&w, "two");
  gst_value_array_append_value (&v, &w);
  g_value_unset (&w);
  fail_unless (gst_voice_options_set (&table, &o, OPT_WORDS, &v));
  g_value_unset (&v);
  fail_unless_equals_int (g_strv_length (o.words), 2);

  fail_if (gst_voice_options_set (&table, &o, N_OPTS, &v));

  gst_voice_options_copy (&table, &o, &c);
  gst_voice_options_clear (&table, &o);
  fail_unless_equals_string (c.name, "dflt");
  fail_unless_equals_int (c.level, -5);
  fail_unless (c.big == 42);
  fail_unless (c.ratio == 0.5);
  fail_unless_equals_int (c.mode, GST_FORMAT_BYTES);
  fail_unless_equals_string (c.words[1], "two");

  g_value_init (&v, G_TYPE_INT64);
  fail_unless (gst_voice_options_get (&table, &c, OPT_BIG, &v));
  fail_unless (g_value_get_int64 (&v) == 42);
  g_value_unset (&v);
  g_value_init (&v, G_TYPE_STRING);
  fail_unless (gst_voice_options_get (&table, &c, OPT_NAME, &v));
  fail_unless_equals_string (g_value_get_string (&v), "dflt");
  g_value_unset (&v);
  g_value_init (&v, GST_TYPE_ARRAY);
  fail_unless (gst_voice_options_get (&table, &c, OPT_WORDS, &v));
  fail_unless_equals_int (gst_value_array_get_size (&v), 2);
  fail_unless_equals_string (
      g_value_get_string (gst_value_array_get_value (&v, 0)), "one");
  g_value_unset (&v);
  gst_voice_options_clear (&table, &c);
}

GST_END_TEST;

static guint
get_uint (Opts *o, guint i)
{
  GValue v = G_VALUE_INIT;
  guint n;

  g_value_init (&v, G_TYPE_UINT);
  fail_unless (gst_voice_options_get (&table, o, i, &v));
  n = g_value_get_uint (&v);
  g_value_unset (&v);
  return n;
}

/* An alias is a deprecated pspec made from its option's, in its own unit,
 * with no field: it reads and writes the option. */
GST_START_TEST (test_options_alias)
{
  GParamSpec *old = gst_voice_options_get_pspec (&table, OPT_OLD_LANG);
  GParamSpec *tens = gst_voice_options_get_pspec (&table, OPT_COUNT_TENS);
  GValue v = G_VALUE_INIT;
  Opts o, c;

  fail_unless_equals_string (old->name, "old-lang");
  fail_unless (old->flags & G_PARAM_DEPRECATED);
  fail_unless_equals_string (
      g_param_spec_get_blurb (old), "Deprecated: use lang");
  fail_unless_equals_string (G_PARAM_SPEC_STRING (old)->default_value, "en");
  fail_unless (tens->flags & G_PARAM_DEPRECATED);
  fail_unless_equals_int (G_PARAM_SPEC_UINT (tens)->maximum, 9);
  fail_unless_equals_int (G_PARAM_SPEC_UINT (tens)->default_value, 0);

  gst_voice_options_init (&table, &o);
  set_string (&o, OPT_OLD_LANG, "de");
  fail_unless_equals_string (o.lang, "de");
  /* The option's own NULL rule applies through the alias. */
  set_string (&o, OPT_OLD_LANG, NULL);
  fail_unless_equals_string (o.lang, "");

  g_value_init (&v, G_TYPE_UINT);
  g_value_set_uint (&v, 5);
  fail_unless (gst_voice_options_set (&table, &o, OPT_COUNT_TENS, &v));
  g_value_unset (&v);
  fail_unless_equals_int (o.count, 50);
  o.count = 47;
  fail_unless_equals_int (get_uint (&o, OPT_COUNT_TENS), 5);
  o.count = 44;
  fail_unless_equals_int (get_uint (&o, OPT_COUNT_TENS), 4);

  gst_voice_options_copy (&table, &o, &c);
  fail_unless_equals_int (c.count, 44);
  gst_voice_options_clear (&table, &o);
  gst_voice_options_clear (&table, &c);
}

GST_END_TEST;

/* A secret option is masked in logs from the moment it is set. */
GST_START_TEST (test_options_secret)
{
  Opts o;
  gchar *out;

  gst_voice_options_init (&table, &o);
  set_string (&o, OPT_KEY, "opt-secret-4711abcdef");
  out = gst_voice_redact ("key opt-secret-4711abcdef here");
  fail_if (strstr (out, "4711abcdef") != NULL, "%s", out);
  g_free (out);
  gst_voice_options_clear (&table, &o);
}

GST_END_TEST;

static const gchar *const env_vars[] = { "TEST_VOICE_KEY_A", "TEST_VOICE_KEY_B",
  NULL };

/* Property first, then the variables in order; an empty property or
 * variable is no key; the environment is read at each call. */
GST_START_TEST (test_api_key_resolve)
{
  gchar *key, *out;

  g_unsetenv ("TEST_VOICE_KEY_A");
  g_unsetenv ("TEST_VOICE_KEY_B");
  fail_unless (gst_voice_api_key_resolve (NULL, env_vars) == NULL);
  fail_unless (gst_voice_api_key_resolve (NULL, NULL) == NULL);

  g_setenv ("TEST_VOICE_KEY_A", "", TRUE);
  g_setenv ("TEST_VOICE_KEY_B", "env-key-b-0123456789", TRUE);
  key = gst_voice_api_key_resolve (NULL, env_vars);
  fail_unless_equals_string (key, "env-key-b-0123456789");
  g_free (key);

  g_setenv ("TEST_VOICE_KEY_A", "env-key-a-0123456789", TRUE);
  key = gst_voice_api_key_resolve (NULL, env_vars);
  fail_unless_equals_string (key, "env-key-a-0123456789");
  g_free (key);
  out = gst_voice_redact ("it is env-key-a-0123456789");
  fail_unless_equals_string (out, "it is ***");
  g_free (out);

  key = gst_voice_api_key_resolve ("prop-key-0123456789", env_vars);
  fail_unless_equals_string (key, "prop-key-0123456789");
  g_free (key);

  fail_unless (gst_voice_api_key_resolve ("", env_vars) == NULL);

  g_unsetenv ("TEST_VOICE_KEY_A");
  g_unsetenv ("TEST_VOICE_KEY_B");
}

GST_END_TEST;

static Suite *
options_suite (void)
{
  Suite *s = suite_create ("voiceoptions");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_options_init_defaults);
  tcase_add_test (tc, test_options_set_get_copy);
  tcase_add_test (tc, test_options_alias);
  tcase_add_test (tc, test_options_secret);
  tcase_add_test (tc, test_api_key_resolve);
  return s;
}

GST_CHECK_MAIN (options);

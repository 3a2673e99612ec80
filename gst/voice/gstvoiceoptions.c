/* gst-voiceagent: element options as a table of GParamSpecs and fields.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* The plugins keep their options in a plain struct, copied under the
 * element's lock and used without it. Each option's name, blurb, range and
 * default live in its GParamSpec only; this file derives the struct's
 * init, copy, clear, set and get from the pspec's value type, so adding an
 * option is one pspec and one table row. Renaming one is a row too: a
 * GST_VOICE_OPTION_ALIAS keeps the old name working, deprecated, for a
 * release, with its pspec made from the new one's. */

/* Locking order: no lock of its own (the templates are made under
 * g_once). Callers hold their element's OBJECT_LOCK around set and get;
 * under it only the redaction lock is taken (secret options). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvoiceoptions.h"
#include "gstvoiceredact.h"

#include <string.h>

/* The field of @opt in @opts; const is the callers' to keep. */
#define FIELD(opts, opt, type)                                                 \
  ((type *)((guint8 *)(gsize)(opts) + (opt)->offset))

static gboolean
is_alias (const GstVoiceOption *opt)
{
  return (opt->flags & GST_VOICE_OPTION_ALIAS) != 0;
}

static guint
alias_scale (const GstVoiceOption *opt)
{
  return MAX (opt->alias_scale, 1);
}

/* The deprecated property of alias @opt, made from @target (its option's
 * pspec): the same type and flags, the range and default in the alias's
 * unit, and a blurb naming the property to use instead. */
static GParamSpec *
alias_pspec_new (const GstVoiceOption *opt, GParamSpec *target)
{
  GParamFlags flags =
      (target->flags & ~G_PARAM_STATIC_BLURB) | G_PARAM_DEPRECATED;
  guint scale = alias_scale (opt);
  gchar *blurb;
  GParamSpec *pspec = NULL;

  blurb = g_strdup_printf ("Deprecated: use %s%s", target->name,
      scale == 1000 ? " (this one is in seconds)" : "");
  if (G_IS_PARAM_SPEC_UINT (target)) {
    GParamSpecUInt *u = G_PARAM_SPEC_UINT (target);

    pspec = g_param_spec_uint (opt->alias_name, g_param_spec_get_nick (target),
        blurb, u->minimum / scale, u->maximum / scale, u->default_value / scale,
        flags);
  } else if (G_IS_PARAM_SPEC_STRING (target) && scale == 1) {
    pspec =
        g_param_spec_string (opt->alias_name, g_param_spec_get_nick (target),
            blurb, G_PARAM_SPEC_STRING (target)->default_value, flags);
  }
  if (pspec == NULL)
    g_critical ("alias %s of %s: only string and uint options can have one, "
                "and only a uint can change unit",
        opt->alias_name, target->name);
  g_free (blurb);
  return pspec;
}

/* A new (floating) pspec of option @i, an alias's included. */
static GParamSpec *
make_any_pspec (GstVoiceOptionTable *table, guint i)
{
  const GstVoiceOption *opt = &table->options[i];
  GParamSpec *target, *pspec;

  if (!is_alias (opt))
    return table->make_pspec (i);
  target = g_param_spec_ref_sink (table->make_pspec (opt->alias_of));
  pspec = alias_pspec_new (opt, target);
  g_param_spec_unref (target);
  return pspec;
}

/* Strings of a GstValueArray pspec: the only array kind the plugins use. */
static gboolean
is_strv (GParamSpec *pspec)
{
  return G_PARAM_SPEC_VALUE_TYPE (pspec) == GST_TYPE_ARRAY;
}

/**
 * gst_voice_options_get_pspec:
 * @table: the options
 * @i: an option id, from 0
 *
 * The table's own pspec of option @i, made on first use and never freed;
 * it is not installed on any class (a pspec belongs to one class).
 *
 * Returns: (transfer none): the pspec
 */
GParamSpec *
gst_voice_options_get_pspec (GstVoiceOptionTable *table, guint i)
{
  g_return_val_if_fail (i < table->n_options, NULL);

  if (g_once_init_enter (&table->templates)) {
    GParamSpec **t = g_new (GParamSpec *, table->n_options);

    for (guint k = 0; k < table->n_options; k++)
      t[k] = g_param_spec_ref_sink (make_any_pspec (table, k));
    g_once_init_leave (&table->templates, t);
  }
  return table->templates[i];
}

/**
 * gst_voice_options_install:
 * @table: the options
 * @klass: the class to give them to
 * @first_prop_id: the property id of option 0; the others follow in order
 *
 * Installs a fresh pspec of every option on @klass.
 */
void
gst_voice_options_install (
    GstVoiceOptionTable *table, GObjectClass *klass, guint first_prop_id)
{
  for (guint i = 0; i < table->n_options; i++)
    g_object_class_install_property (
        klass, first_prop_id + i, make_any_pspec (table, i));
}

static void
store_string (
    GstVoiceOptionTable *table, guint i, gpointer opts, const gchar *s)
{
  const GstVoiceOption *opt = &table->options[i];
  gchar **field = FIELD (opts, opt, gchar *);

  if (s == NULL) {
    if (opt->flags & GST_VOICE_OPTION_NULL_IS_DEFAULT)
      s = G_PARAM_SPEC_STRING (gst_voice_options_get_pspec (table, i))
              ->default_value;
    else
      s = opt->null_value;
  }
  if (s && *s && (opt->flags & GST_VOICE_OPTION_SECRET))
    gst_voice_redact_add_secret (s);
  g_free (*field);
  *field = g_strdup (s);
}

static gchar **
strv_from_array (const GValue *value)
{
  guint n = gst_value_array_get_size (value);
  GPtrArray *items = g_ptr_array_new ();

  for (guint k = 0; k < n; k++) {
    const GValue *v = gst_value_array_get_value (value, k);
    if (G_VALUE_HOLDS_STRING (v) && g_value_get_string (v))
      g_ptr_array_add (items, g_value_dup_string (v));
  }
  g_ptr_array_add (items, NULL);
  return (gchar **)g_ptr_array_free (items, FALSE);
}

/* Writes @value into the field without freeing what it held before. */
static void
put_value (
    GstVoiceOptionTable *table, guint i, gpointer opts, const GValue *value)
{
  const GstVoiceOption *opt = &table->options[i];
  GParamSpec *pspec = gst_voice_options_get_pspec (table, i);

  if (is_strv (pspec)) {
    *FIELD (opts, opt, gchar **) = strv_from_array (value);
    return;
  }
  switch (G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec))) {
    case G_TYPE_STRING:
      *FIELD (opts, opt, gchar *) = NULL;
      store_string (table, i, opts, g_value_get_string (value));
      break;
    case G_TYPE_BOOLEAN:
      *FIELD (opts, opt, gboolean) = g_value_get_boolean (value);
      break;
    case G_TYPE_INT:
      *FIELD (opts, opt, gint) = g_value_get_int (value);
      break;
    case G_TYPE_UINT:
      *FIELD (opts, opt, guint) = g_value_get_uint (value);
      break;
    case G_TYPE_INT64:
      *FIELD (opts, opt, gint64) = g_value_get_int64 (value);
      break;
    case G_TYPE_UINT64:
      *FIELD (opts, opt, guint64) = g_value_get_uint64 (value);
      break;
    case G_TYPE_DOUBLE:
      *FIELD (opts, opt, gdouble) = g_value_get_double (value);
      break;
    case G_TYPE_ENUM:
      *FIELD (opts, opt, gint) = g_value_get_enum (value);
      break;
    default:
      g_critical ("option %s: value type %s has no field kind", pspec->name,
          g_type_name (G_PARAM_SPEC_VALUE_TYPE (pspec)));
      break;
  }
}

static void
free_field (GstVoiceOptionTable *table, guint i, gpointer opts)
{
  const GstVoiceOption *opt = &table->options[i];
  GParamSpec *pspec = gst_voice_options_get_pspec (table, i);

  if (is_alias (opt))
    return;
  if (is_strv (pspec))
    g_clear_pointer (FIELD (opts, opt, gchar **), g_strfreev);
  else if (G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_STRING)
    g_clear_pointer (FIELD (opts, opt, gchar *), g_free);
}

/**
 * gst_voice_options_init:
 * @table: the options
 * @opts: the struct to fill; what it held is not freed
 *
 * Sets every option of @opts to its pspec's default (a string array to an
 * empty one), so a default is written in one place only.
 */
void
gst_voice_options_init (GstVoiceOptionTable *table, gpointer opts)
{
  for (guint i = 0; i < table->n_options; i++) {
    GParamSpec *pspec = gst_voice_options_get_pspec (table, i);

    if (is_alias (&table->options[i]))
      continue;
    if (is_strv (pspec)) {
      *FIELD (opts, &table->options[i], gchar **) = g_new0 (gchar *, 1);
    } else {
      const GValue *def = g_param_spec_get_default_value (pspec);

      /* A NULL default is the value, not "use the default". */
      if (G_VALUE_HOLDS_STRING (def))
        *FIELD (opts, &table->options[i], gchar *) = g_value_dup_string (def);
      else
        put_value (table, i, opts, def);
    }
  }
}

/**
 * gst_voice_options_clear:
 * @table: the options
 * @opts: the struct
 *
 * Frees the strings and string arrays of @opts and sets them to NULL;
 * fields the table does not list are left alone.
 */
void
gst_voice_options_clear (GstVoiceOptionTable *table, gpointer opts)
{
  for (guint i = 0; i < table->n_options; i++)
    free_field (table, i, opts);
}

/**
 * gst_voice_options_copy:
 * @table: the options
 * @src: the struct to copy
 * @dest: the struct to fill; what its listed fields held is not freed
 *
 * Deep-copies the options the table lists: a streaming thread copies them
 * under the element's OBJECT_LOCK and uses the copy without it. Copy the
 * struct itself first (`*dest = *src`) if it has other fields.
 */
void
gst_voice_options_copy (
    GstVoiceOptionTable *table, gconstpointer src, gpointer dest)
{
  for (guint i = 0; i < table->n_options; i++) {
    const GstVoiceOption *opt = &table->options[i];
    GParamSpec *pspec = gst_voice_options_get_pspec (table, i);
    gsize size;

    if (is_alias (opt))
      continue;
    if (is_strv (pspec)) {
      *FIELD (dest, opt, gchar **) = g_strdupv (*FIELD (src, opt, gchar **));
      continue;
    }
    switch (G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec))) {
      case G_TYPE_STRING:
        *FIELD (dest, opt, gchar *) = g_strdup (*FIELD (src, opt, gchar *));
        continue;
      case G_TYPE_INT64:
      case G_TYPE_UINT64:
        size = sizeof (gint64);
        break;
      case G_TYPE_DOUBLE:
        size = sizeof (gdouble);
        break;
      default:
        size = sizeof (gint);
        break;
    }
    memcpy (FIELD (dest, opt, guint8), FIELD (src, opt, guint8), size);
  }
}

/* Sets the option alias @i stands for, in the option's unit. */
static gboolean
set_alias (
    GstVoiceOptionTable *table, gpointer opts, guint i, const GValue *value)
{
  const GstVoiceOption *opt = &table->options[i];
  GValue v = G_VALUE_INIT;
  gboolean ret;

  if (!G_VALUE_HOLDS_UINT (value))
    return gst_voice_options_set (table, opts, opt->alias_of, value);
  /* The alias's range is the option's divided by the scale, so this stays
   * in the option's range. */
  g_value_init (&v, G_TYPE_UINT);
  g_value_set_uint (&v, g_value_get_uint (value) * alias_scale (opt));
  ret = gst_voice_options_set (table, opts, opt->alias_of, &v);
  g_value_unset (&v);
  return ret;
}

/* Reads the option alias @i stands for, in the alias's unit (rounded to
 * the nearest, within the alias's range). */
static gboolean
get_alias (
    GstVoiceOptionTable *table, gconstpointer opts, guint i, GValue *value)
{
  const GstVoiceOption *opt = &table->options[i];
  GParamSpec *pspec;
  GValue v = G_VALUE_INIT;
  guint scale = alias_scale (opt), n;

  if (!G_VALUE_HOLDS_UINT (value))
    return gst_voice_options_get (table, opts, opt->alias_of, value);
  pspec = gst_voice_options_get_pspec (table, i);
  g_value_init (&v, G_TYPE_UINT);
  gst_voice_options_get (table, opts, opt->alias_of, &v);
  n = (g_value_get_uint (&v) + scale / 2) / scale;
  g_value_set_uint (value,
      CLAMP (n, G_PARAM_SPEC_UINT (pspec)->minimum,
          G_PARAM_SPEC_UINT (pspec)->maximum));
  g_value_unset (&v);
  return TRUE;
}

/**
 * gst_voice_options_set:
 * @table: the options
 * @opts: the struct, guarded by the caller's OBJECT_LOCK (held)
 * @i: an option id, from 0
 * @value: the new value, of the option's type
 *
 * Stores @value in option @i, applying its flags. Takes only the redaction
 * lock (secret options), so it may run under the element's lock.
 *
 * Returns: FALSE if @i is not an option of @table (nothing is changed)
 */
gboolean
gst_voice_options_set (
    GstVoiceOptionTable *table, gpointer opts, guint i, const GValue *value)
{
  if (i >= table->n_options)
    return FALSE;
  if (is_alias (&table->options[i]))
    return set_alias (table, opts, i, value);
  free_field (table, i, opts);
  put_value (table, i, opts, value);
  return TRUE;
}

/**
 * gst_voice_options_get:
 * @table: the options
 * @opts: the struct, guarded by the caller's OBJECT_LOCK (held)
 * @i: an option id, from 0
 * @value: (out caller-allocates): initialised to the option's type
 *
 * Reads option @i into @value. A secret option is write-only: GObject
 * never asks for it, and this refuses to give it out.
 *
 * Returns: FALSE if @i is not an option of @table
 */
gboolean
gst_voice_options_get (
    GstVoiceOptionTable *table, gconstpointer opts, guint i, GValue *value)
{
  const GstVoiceOption *opt;
  GParamSpec *pspec;

  if (i >= table->n_options)
    return FALSE;
  opt = &table->options[i];
  if (is_alias (opt))
    return get_alias (table, opts, i, value);
  pspec = gst_voice_options_get_pspec (table, i);
  g_return_val_if_fail (!(opt->flags & GST_VOICE_OPTION_SECRET), TRUE);

  if (is_strv (pspec)) {
    gchar **items = *FIELD (opts, opt, gchar **);

    for (guint k = 0; items && items[k]; k++) {
      GValue v = G_VALUE_INIT;

      g_value_init (&v, G_TYPE_STRING);
      g_value_set_string (&v, items[k]);
      gst_value_array_append_and_take_value (value, &v);
    }
    return TRUE;
  }
  switch (G_TYPE_FUNDAMENTAL (G_PARAM_SPEC_VALUE_TYPE (pspec))) {
    case G_TYPE_STRING:
      g_value_set_string (value, *FIELD (opts, opt, gchar *));
      break;
    case G_TYPE_BOOLEAN:
      g_value_set_boolean (value, *FIELD (opts, opt, gboolean));
      break;
    case G_TYPE_INT:
      g_value_set_int (value, *FIELD (opts, opt, gint));
      break;
    case G_TYPE_UINT:
      g_value_set_uint (value, *FIELD (opts, opt, guint));
      break;
    case G_TYPE_INT64:
      g_value_set_int64 (value, *FIELD (opts, opt, gint64));
      break;
    case G_TYPE_UINT64:
      g_value_set_uint64 (value, *FIELD (opts, opt, guint64));
      break;
    case G_TYPE_DOUBLE:
      g_value_set_double (value, *FIELD (opts, opt, gdouble));
      break;
    case G_TYPE_ENUM:
      g_value_set_enum (value, *FIELD (opts, opt, gint));
      break;
    default:
      g_critical ("option %s: value type %s has no field kind", pspec->name,
          g_type_name (G_PARAM_SPEC_VALUE_TYPE (pspec)));
      break;
  }
  return TRUE;
}

/**
 * gst_voice_api_key_resolve:
 * @property_value: (nullable): the element's api-key property
 * @env_vars: (array zero-terminated=1): environment variables to try, in
 *   order, when the property is NULL
 *
 * The one rule for an API key: the property if set, else the first
 * non-empty variable of @env_vars. An empty property means "no key" even
 * when the environment has one (a local server needs none). Elements call
 * this when they start, not when they are made, so a key put in the
 * environment after the pipeline was built is seen. The key found is
 * registered with gst_voice_redact_add_secret(), so it never reaches a log.
 * Takes only the redaction lock.
 *
 * Returns: (transfer full) (nullable): the key, or NULL if there is none
 */
gchar *
gst_voice_api_key_resolve (
    const gchar *property_value, const gchar *const *env_vars)
{
  const gchar *key = property_value;

  for (guint k = 0; key == NULL && env_vars && env_vars[k]; k++) {
    const gchar *v = g_getenv (env_vars[k]);

    if (v && *v)
      key = v;
  }
  if (key == NULL || *key == '\0')
    return NULL;
  gst_voice_redact_add_secret (key);
  return g_strdup (key);
}

/* gst-voiceagent: element options as a table of GParamSpecs and fields.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstVoiceOptionFlags:
 * @GST_VOICE_OPTION_NONE: the value is stored as given
 * @GST_VOICE_OPTION_SECRET: a string registered with
 *   gst_voice_redact_add_secret() when set (pair it with a write-only pspec)
 * @GST_VOICE_OPTION_NULL_IS_DEFAULT: a string set to NULL stores the pspec's
 *   default instead
 * @GST_VOICE_OPTION_ALIAS: not an option of its own but a deprecated name of
 *   another (declare it with GST_VOICE_OPTION_ALIAS())
 *
 * Special cases of one option, for what its type alone does not say.
 */
typedef enum {
  GST_VOICE_OPTION_NONE = 0,
  GST_VOICE_OPTION_SECRET = 1 << 0,
  GST_VOICE_OPTION_NULL_IS_DEFAULT = 1 << 1,
  GST_VOICE_OPTION_ALIAS = 1 << 2,
} GstVoiceOptionFlags;

/**
 * GstVoiceOption:
 * @offset: G_STRUCT_OFFSET() of the option's field in the options struct
 * @flags: its special cases
 * @null_value: for a string without %GST_VOICE_OPTION_NULL_IS_DEFAULT, what
 *   a NULL is stored as (NULL: NULL)
 * @alias_name: an alias's (old) property name
 * @alias_of: an alias's option: the id of the option it reads and writes
 * @alias_scale: an alias's unit: the option's value is the alias's times
 *   this (1000 for seconds standing for milliseconds); 0 or 1: the same
 *
 * Where one option lives. The field's C type follows the pspec's value
 * type: gchar * (string), gboolean, gint, guint, gint64, guint64, gdouble,
 * gint (enum), or a NULL-terminated gchar ** (a GstValueArray of strings,
 * never NULL).
 *
 * An alias has no field: it is a property with the old name of a renamed
 * option, flagged %G_PARAM_DEPRECATED, with the blurb "Deprecated: use
 * NEW", that sets and reads the option itself. Its pspec is made from the
 * option's, so the two cannot disagree.
 */
typedef struct
{
  gsize offset;
  GstVoiceOptionFlags flags;
  const gchar *null_value;
  const gchar *alias_name;
  guint alias_of;
  guint alias_scale;
} GstVoiceOption;

/**
 * GST_VOICE_OPTION_ALIAS:
 * @name: the old property name, a string literal
 * @option: the id of the option it stands for
 * @scale: the option's value per unit of the alias (1: the same unit)
 *
 * A table row for a deprecated name of @option. Only string and unsigned
 * integer options can have one; a @scale other than 1 needs an unsigned
 * integer.
 */
#define GST_VOICE_OPTION_ALIAS(name, option, scale)                            \
  {                                                                            \
    0, GST_VOICE_OPTION_ALIAS, NULL, (name), (option), (scale)                 \
  }

/**
 * GstVoiceOptionTable:
 * @options: one entry per option, in option-id order
 * @n_options: how many
 * @make_pspec: makes a new (floating) pspec of option @i; called once per
 *   installing class, and once for the table's own defaults
 *
 * A static description of an options struct. Declare it with
 * GST_VOICE_OPTION_TABLE_INIT(); the pspecs it keeps for defaults are made
 * on first use and kept for the life of the process.
 */
typedef struct
{
  const GstVoiceOption *options;
  guint n_options;
  GParamSpec *(*make_pspec) (guint i);
  /*< private >*/
  GParamSpec **templates;
} GstVoiceOptionTable;

#define GST_VOICE_OPTION_TABLE_INIT(options, make_pspec)                       \
  {                                                                            \
    (options), G_N_ELEMENTS (options), (make_pspec), NULL                      \
  }

void gst_voice_options_install (
    GstVoiceOptionTable *table, GObjectClass *klass, guint first_prop_id);
GParamSpec *gst_voice_options_get_pspec (GstVoiceOptionTable *table, guint i);
void gst_voice_options_init (GstVoiceOptionTable *table, gpointer opts);
void gst_voice_options_clear (GstVoiceOptionTable *table, gpointer opts);
void gst_voice_options_copy (
    GstVoiceOptionTable *table, gconstpointer src, gpointer dest);
gboolean gst_voice_options_set (
    GstVoiceOptionTable *table, gpointer opts, guint i, const GValue *value);
gboolean gst_voice_options_get (
    GstVoiceOptionTable *table, gconstpointer opts, guint i, GValue *value);

/**
 * GST_VOICE_OPTIONS_DEFINE_ACCESSORS:
 * @prefix: e.g. dg, for dg_options_init() and the others
 * @Struct: the options struct type
 * @Id: the option id type
 * @table: the #GstVoiceOptionTable describing @Struct
 *
 * Defines typed inline @prefix_options_init, _clear, _copy, _set and _get
 * over @table, so a plugin keeps its own names and types without writing
 * five wrappers. Set and get run under the element's OBJECT_LOCK.
 */
#define GST_VOICE_OPTIONS_DEFINE_ACCESSORS(prefix, Struct, Id, table)          \
  static inline void prefix##_options_init (Struct *opts)                      \
  {                                                                            \
    gst_voice_options_init (&(table), opts);                                   \
  }                                                                            \
  static inline void prefix##_options_clear (Struct *opts)                     \
  {                                                                            \
    gst_voice_options_clear (&(table), opts);                                  \
  }                                                                            \
  static inline void prefix##_options_copy (const Struct *src, Struct *dest)   \
  {                                                                            \
    gst_voice_options_copy (&(table), src, dest);                              \
  }                                                                            \
  static inline void prefix##_options_set (                                    \
      Struct *opts, Id opt, const GValue *value)                               \
  {                                                                            \
    gst_voice_options_set (&(table), opts, opt, value);                        \
  }                                                                            \
  static inline void prefix##_options_get (                                    \
      const Struct *opts, Id opt, GValue *value)                               \
  {                                                                            \
    gst_voice_options_get (&(table), opts, opt, value);                        \
  }

gchar *gst_voice_api_key_resolve (
    const gchar *property_value, const gchar *const *env_vars);

G_END_DECLS

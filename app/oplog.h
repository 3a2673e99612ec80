/* voiceagent: the operator's log, one line per event.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  VA_LOG_FORMAT_TEXT,
  VA_LOG_FORMAT_JSON,
} VaLogFormat;

typedef enum {
  VA_LOG_INFO,
  VA_LOG_WARNING,
  VA_LOG_ERROR,
  VA_LOG_DEBUG, /* only what G_MESSAGES_DEBUG asks for */
} VaLogLevel;

typedef struct _VaLogLine VaLogLine;

gboolean va_log_format_from_string (
    const gchar *name, VaLogFormat *format, GError **error);
void va_log_hold (void);
void va_log_install (VaLogFormat format);

VaLogLine *va_log_begin (
    VaLogLevel level, const gchar *event, const gchar *call_id, guint turn);
void va_log_add_string (VaLogLine *l, const gchar *key, const gchar *value);
void va_log_add_int (VaLogLine *l, const gchar *key, gint64 value);
void va_log_add_double (VaLogLine *l, const gchar *key, gdouble value);
void va_log_add_bool (VaLogLine *l, const gchar *key, gboolean value);
void va_log_end (VaLogLine *l);

void va_log_data_channel_event (
    const gchar *call_id, const gchar *json, guint current_turn);

G_END_DECLS

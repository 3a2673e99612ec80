/* voiceagent: call records in SQLite, written off the media threads.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include "vaconfig.h"
#include "metrics.h"

G_BEGIN_DECLS

typedef struct _VaRecords VaRecords;

typedef struct
{
  gchar *id;
  gchar *agent;
  gint64 started_us; /* wall clock, µs since the epoch */
  gint64 ended_us;
  gchar *end_reason;
  gchar *transcript_json; /* [{"role","text","t","turn"}...] */
  gchar *turns_json; /* per-turn metrics [{...}] */
  VaUsage usage;
  gdouble cost_usd;
} VaCallRecord;

void va_call_record_free (VaCallRecord *record);

/* Opens (creating) the database and starts the writer thread. */
VaRecords *va_records_open (const gchar *path, GError **error);
/* Queues @record (taken) for writing; returns at once. */
void va_records_write (VaRecords *records, VaCallRecord *record);
/* Writes what is queued and closes. */
void va_records_close (VaRecords *records);

/* `voiceagent calls list` and `voiceagent calls show ID`. */
int va_records_command (const VaConfig *config, int argc, char **argv);

G_END_DECLS

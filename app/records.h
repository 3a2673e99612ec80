/* voiceagent: call records in SQLite or PostgreSQL, written off the media
 * threads.
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
  gchar *recording; /* the recording's path, or NULL: not recorded */
  guint64 recording_bytes;
  gdouble recording_seconds;
  guint64 recording_dropped; /* audio buffers a slow disk cost it */
} VaCallRecord;

void va_call_record_free (VaCallRecord *record);
/* The record as JSON (free it): `calls show --json` and the webhook's
 * body (docs/operations.md). */
gchar *va_call_record_to_json (const VaCallRecord *record);

/* Most records waiting for the database (memory while it is down); more
 * drop the oldest. VOICEAGENT_RECORDS_QUEUE_MAX overrides it (tests). */
#define VA_RECORDS_QUEUE_MAX 10000
/* ... and most bytes of their text (transcripts, turn metrics). */
#define VA_RECORDS_QUEUE_MAX_BYTES (64 * 1024 * 1024)
/* va_records_close waits this long for the queue to be written. */
#define VA_RECORDS_FLUSH_TIMEOUT_MS 5000

typedef struct
{
  guint max_queued; /* 0: VA_RECORDS_QUEUE_MAX */
  gsize max_queued_bytes; /* 0: VA_RECORDS_QUEUE_MAX_BYTES */
  guint flush_timeout_ms; /* 0: VA_RECORDS_FLUSH_TIMEOUT_MS */
} VaRecordsOptions;

/* Opens @database (an SQLite path, or a postgresql:// URI) and starts the
 * writer thread. An SQLite file is created and must open now; PostgreSQL
 * may be down (records wait for it), but a bad URI or a missing password
 * fails here. @error's message never holds a password. */
VaRecords *va_records_open (const gchar *database, GError **error);
/* The same with limits other than the defaults (@options may be NULL). */
VaRecords *va_records_open_full (
    const gchar *database, const VaRecordsOptions *options, GError **error);
/* Queues @record (taken) for writing; returns at once (no I/O, O(1)). */
void va_records_write (VaRecords *records, VaCallRecord *record);
/* Fills @stats (any thread). */
void va_records_get_stats (VaRecords *records, VaRecordsMetrics *stats);
/* Writes what is queued, waiting at most the flush timeout, and closes.
 * Returns how many records were not written (and says so on stderr). */
guint va_records_close (VaRecords *records);

/* `voiceagent calls list` and `voiceagent calls show ID`. */
int va_records_command (const VaConfig *config, int argc, char **argv);

G_END_DECLS

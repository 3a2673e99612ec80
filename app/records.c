/* voiceagent: call records, written off the media threads to SQLite or
 * PostgreSQL (records-backend.h).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The main context only queues finished records (va_records_write: no
 * I/O, constant time); one writer thread owns the database connection, so
 * a slow disk or a database that is down never delays a call.
 *
 * The writer takes up to BATCH_MAX records from the head of the queue,
 * inserts them in one transaction, and frees them only once it committed;
 * if it did not, or its outcome is unknown, they go back to the head, the
 * connection is dropped, and the writer reconnects after a backoff
 * (GstVoiceBackoff, 100 ms doubling to 5 s, equal jitter). The ids are
 * primary keys inserted with ON CONFLICT DO NOTHING, so a batch written
 * twice is stored once. While the database is down the queue is bounded
 * (VA_RECORDS_QUEUE_MAX records, VA_RECORDS_QUEUE_MAX_BYTES of text):
 * beyond it the oldest waiting record is dropped and counted. The writer
 * says once when the database goes away and once when it is back, never
 * per retry.
 *
 * Locking: one lock, VaRecords.lock, a leaf: nothing else is locked while
 * it is held, and no database call or output happens under it.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include "gstvoicehttp.h"
#include "records-backend.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

#define BATCH_MAX 64 /* records in one transaction */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DROP_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

struct _VaRecords
{
  /* Immutable after va_records_open */
  const VaRecordsBackend *backend;
  gchar *target; /* --database; may hold a password: never shown */
  gchar *where; /* the same without the password, for messages */
  guint max_queued;
  gsize max_bytes;
  gint64 flush_timeout_us;
  GThread *thread;

  /* Protected by lock */
  GMutex lock;
  GCond cond; /* a record was queued, or stopping */
  GQueue queue; /* VaCallRecord*, oldest first, waiting to be written */
  gsize queued_bytes; /* text held by @queue */
  guint in_flight; /* taken by the writer, not committed yet */
  gboolean stopping;
  gint64 stop_deadline; /* monotonic: the writer gives up after it */
  gboolean up; /* the last attempt reached the database */
  guint64 written;
  guint64 retried; /* failed attempts */
  guint64 dropped;
  guint64 drops_unreported; /* dropped since the writer last said so */

  /* Writer thread only (the opening thread before it starts) */
  VaRecordsDb *db;
  GstVoiceBackoff backoff;
  gint64 drops_logged_us;
};

GQuark
va_records_error_quark (void)
{
  return g_quark_from_static_string ("va-records-error-quark");
}

void
va_call_record_free (VaCallRecord *r)
{
  if (r == NULL)
    return;
  g_free (r->id);
  g_free (r->agent);
  g_free (r->end_reason);
  g_free (r->transcript_json);
  g_free (r->turns_json);
  g_free (r->recording);
  g_free (r);
}

VaCallRecord *
va_records_read_row (const VaRecordsRow *reader, gpointer row, gboolean full)
{
  VaCallRecord *r = g_new0 (VaCallRecord, 1);

  r->id = reader->text (row, 0);
  r->agent = reader->text (row, 1);
  r->started_us = reader->integer (row, 2);
  r->ended_us = reader->integer (row, 3);
  r->end_reason = reader->text (row, 4);
  r->cost_usd = reader->real (row, 5);
  if (!full)
    return r;
  r->transcript_json = reader->text (row, 6);
  r->turns_json = reader->text (row, 7);
  r->usage.stt_seconds = reader->real (row, 8);
  r->usage.tts_characters = (guint64)reader->integer (row, 9);
  r->usage.llm_prompt_tokens = (guint64)reader->integer (row, 10);
  r->usage.llm_completion_tokens = (guint64)reader->integer (row, 11);
  r->recording = reader->text (row, 12);
  r->recording_bytes = (guint64)reader->integer (row, 13);
  r->recording_seconds = reader->real (row, 14);
  r->recording_dropped = (guint64)reader->integer (row, 15);
  return r;
}

/* What @r costs the queue's byte budget. */
static gsize
record_size (const VaCallRecord *r)
{
  return sizeof *r + (r->id ? strlen (r->id) : 0) +
      (r->agent ? strlen (r->agent) : 0) +
      (r->end_reason ? strlen (r->end_reason) : 0) +
      (r->transcript_json ? strlen (r->transcript_json) : 0) +
      (r->turns_json ? strlen (r->turns_json) : 0) +
      (r->recording ? strlen (r->recording) : 0);
}

/* @json parsed (an array), or an empty array when it is not JSON. */
static JsonNode *
parse_array (const gchar *json)
{
  JsonNode *node = json ? json_from_string (json, NULL) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)) {
    g_clear_pointer (&node, json_node_unref);
    node = json_node_init_array (json_node_alloc (), json_array_new ());
  }
  return node;
}

static gchar *
iso_time (gint64 us)
{
  GDateTime *t = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
  gchar *s = g_date_time_format (t, "%Y-%m-%dT%H:%M:%SZ");

  g_date_time_unref (t);
  return s;
}

gchar *
va_call_record_to_json (const VaCallRecord *r)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  gchar *json, *t;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, r->id);
  json_builder_set_member_name (b, "agent");
  json_builder_add_string_value (b, r->agent);
  json_builder_set_member_name (b, "started_at");
  json_builder_add_string_value (b, t = iso_time (r->started_us));
  g_free (t);
  json_builder_set_member_name (b, "ended_at");
  json_builder_add_string_value (b, t = iso_time (r->ended_us));
  g_free (t);
  json_builder_set_member_name (b, "started_us");
  json_builder_add_int_value (b, r->started_us);
  json_builder_set_member_name (b, "ended_us");
  json_builder_add_int_value (b, r->ended_us);
  json_builder_set_member_name (b, "duration_s");
  json_builder_add_double_value (b, (r->ended_us - r->started_us) / 1e6);
  json_builder_set_member_name (b, "end_reason");
  json_builder_add_string_value (b, r->end_reason);
  json_builder_set_member_name (b, "transcript");
  json_builder_add_value (b, parse_array (r->transcript_json));
  json_builder_set_member_name (b, "turns");
  json_builder_add_value (b, parse_array (r->turns_json));
  json_builder_set_member_name (b, "usage");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stt_seconds");
  json_builder_add_double_value (b, r->usage.stt_seconds);
  json_builder_set_member_name (b, "tts_characters");
  json_builder_add_int_value (b, (gint64)r->usage.tts_characters);
  json_builder_set_member_name (b, "llm_prompt_tokens");
  json_builder_add_int_value (b, (gint64)r->usage.llm_prompt_tokens);
  json_builder_set_member_name (b, "llm_completion_tokens");
  json_builder_add_int_value (b, (gint64)r->usage.llm_completion_tokens);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "cost_usd");
  json_builder_add_double_value (b, r->cost_usd);
  json_builder_set_member_name (b, "recording");
  if (r->recording == NULL) {
    json_builder_add_null_value (b);
  } else {
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "path");
    json_builder_add_string_value (b, r->recording);
    json_builder_set_member_name (b, "bytes");
    json_builder_add_int_value (b, (gint64)r->recording_bytes);
    json_builder_set_member_name (b, "seconds");
    json_builder_add_double_value (b, r->recording_seconds);
    json_builder_set_member_name (b, "dropped_buffers");
    json_builder_add_int_value (b, (gint64)r->recording_dropped);
    json_builder_end_object (b);
  }
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json = json_to_string (root, FALSE);
  json_node_unref (root);
  g_object_unref (b);
  return json;
}

const VaRecordsBackend *
va_records_backend_for (const gchar *database, GError **error)
{
  if (!g_str_has_prefix (database, "postgresql://") &&
      !g_str_has_prefix (database, "postgres://"))
    return &va_records_sqlite;
#ifdef HAVE_LIBPQ
  return &va_records_pg;
#else
  g_set_error (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_CONFIG,
      "--database names PostgreSQL, but this voiceagent was built without "
      "it: install libpq-dev and build again, or give an SQLite file");
  return NULL;
#endif
}

/* Opens and prepares a connection: the database, NULL with @error. */
static VaRecordsDb *
connect_db (const VaRecordsBackend *backend, const gchar *target,
    gboolean create, GError **error)
{
  VaRecordsDb *db = backend->open (target, create, error);

  if (db && create && !backend->ensure_schema (db, error))
    g_clear_pointer (&db, backend->close);
  return db;
}

/* ---- The queue ---- */

/* Drops the oldest waiting records until @records is within its bounds. */
static void
enforce_bound_locked (VaRecords *records)
{
  while (records->queue.length > 0 &&
      (records->queue.length > records->max_queued ||
          records->queued_bytes > records->max_bytes)) {
    VaCallRecord *oldest = g_queue_pop_head (&records->queue);
    records->queued_bytes -= record_size (oldest);
    records->dropped++;
    records->drops_unreported++;
    va_call_record_free (oldest);
  }
}

void
va_records_write (VaRecords *records, VaCallRecord *record)
{
  g_mutex_lock (&records->lock);
  g_queue_push_tail (&records->queue, record);
  records->queued_bytes += record_size (record);
  enforce_bound_locked (records);
  g_cond_signal (&records->cond);
  g_mutex_unlock (&records->lock);
}

void
va_records_get_stats (VaRecords *records, VaRecordsMetrics *stats)
{
  g_mutex_lock (&records->lock);
  stats->database_up = records->up;
  stats->queued = records->queue.length + records->in_flight;
  stats->written = records->written;
  stats->retried = records->retried;
  stats->dropped = records->dropped;
  g_mutex_unlock (&records->lock);
}

/* ---- The writer thread ---- */

/* Moves up to BATCH_MAX records from the queue's head into @batch; waits
 * for one. Returns 0 when it is time to stop: stopping, and the queue is
 * empty or the flush timeout has passed. */
static guint
take_batch (VaRecords *records, VaCallRecord **batch)
{
  guint n = 0;

  g_mutex_lock (&records->lock);
  while (records->queue.length == 0 && !records->stopping)
    g_cond_wait (&records->cond, &records->lock);
  if (!records->stopping || g_get_monotonic_time () < records->stop_deadline) {
    while (n < BATCH_MAX && records->queue.length > 0) {
      batch[n] = g_queue_pop_head (&records->queue);
      records->queued_bytes -= record_size (batch[n]);
      n++;
    }
  }
  records->in_flight = n;
  g_mutex_unlock (&records->lock);
  return n;
}

/* @n records of the batch are committed: they leave the queue. */
static void
committed (VaRecords *records, VaCallRecord **batch, guint n)
{
  gboolean was_up;
  guint waiting;

  g_mutex_lock (&records->lock);
  records->written += n;
  records->in_flight -= n;
  was_up = records->up;
  records->up = TRUE;
  waiting = records->queue.length + records->in_flight;
  g_mutex_unlock (&records->lock);
  for (guint i = 0; i < n; i++)
    va_call_record_free (batch[i]);
  if (!was_up)
    g_printerr ("voiceagent: call records: %s at %s is back; %u waiting "
                "records are being written\n",
        records->backend->name, records->where, waiting + n);
}

/* The database refused @r for good: it is dropped, with the reason. */
static void
rejected (VaRecords *records, VaCallRecord *r, const GError *error)
{
  g_printerr ("voiceagent: call records: call %s was refused and is not "
              "recorded: %s\n",
      r->id, error->message);
  g_mutex_lock (&records->lock);
  records->in_flight--;
  records->dropped++;
  g_mutex_unlock (&records->lock);
  va_call_record_free (r);
}

/* The attempt failed: @batch goes back to the queue's head, in order,
 * and the writer will reconnect. Says so once per outage. */
static void
failed (VaRecords *records, VaCallRecord **batch, guint n, const GError *error)
{
  gboolean was_up;
  guint waiting;

  g_clear_pointer (&records->db, records->backend->close);
  g_mutex_lock (&records->lock);
  for (guint i = n; i > 0; i--) {
    g_queue_push_head (&records->queue, batch[i - 1]);
    records->queued_bytes += record_size (batch[i - 1]);
  }
  records->in_flight -= n;
  records->retried++;
  enforce_bound_locked (records);
  was_up = records->up;
  records->up = FALSE;
  waiting = records->queue.length;
  g_mutex_unlock (&records->lock);
  GST_DEBUG ("call records: %s", error->message);
  if (was_up)
    g_printerr ("voiceagent: call records: the database is unavailable: %s; "
                "%u records wait in memory (at most %u) and are written when "
                "it is back\n",
        error->message, waiting, records->max_queued);
}

/* Connects if need be, and inserts @n records in one transaction. */
static gboolean
try_insert (VaRecords *records, VaCallRecord **batch, guint n, GError **error)
{
  if (records->db == NULL)
    records->db = connect_db (records->backend, records->target, TRUE, error);
  return records->db && records->backend->insert (records->db, batch, n, error);
}

static gboolean
is_rejection (const GError *error)
{
  return g_error_matches (error, VA_RECORDS_ERROR, VA_RECORDS_ERROR_REJECTED);
}

/* Writes @batch. Returns FALSE if the database could not be reached (the
 * caller backs off). A batch the database refused is written again one
 * record at a time, to drop only the ones it refuses. */
static gboolean
write_batch (VaRecords *records, VaCallRecord **batch, guint n)
{
  GError *error = NULL;
  gboolean ok = TRUE;
  guint i;

  if (try_insert (records, batch, n, &error)) {
    committed (records, batch, n);
  } else if (is_rejection (error) && n == 1) {
    rejected (records, batch[0], error);
  } else if (is_rejection (error)) {
    for (i = 0; ok && i < n; i++) {
      g_clear_error (&error);
      if (try_insert (records, batch + i, 1, &error))
        committed (records, batch + i, 1);
      else if (is_rejection (error))
        rejected (records, batch[i], error);
      else
        ok = FALSE;
    }
    /* The rest goes back in order, the one that failed first. */
    if (!ok)
      failed (records, batch + i - 1, n - i + 1, error);
  } else {
    failed (records, batch, n, error);
    ok = FALSE;
  }
  g_clear_error (&error);
  return ok;
}

/* Waits before the next attempt; while stopping, not past the deadline. */
static void
back_off (VaRecords *records)
{
  gint64 until = g_get_monotonic_time () +
      gst_voice_backoff_next (&records->backoff) * G_TIME_SPAN_MILLISECOND;

  g_mutex_lock (&records->lock);
  for (;;) {
    gint64 end =
        records->stopping ? MIN (until, records->stop_deadline) : until;
    if (g_get_monotonic_time () >= end)
      break;
    /* Woken by each record queued too: the loop waits on. */
    g_cond_wait_until (&records->cond, &records->lock, end);
  }
  g_mutex_unlock (&records->lock);
}

/* Says how many records the bound dropped, at most every 10 s (@now:
 * whatever is left). */
static void
report_drops (VaRecords *records, gboolean now)
{
  gint64 t = g_get_monotonic_time ();
  guint64 count = 0, total = 0;

  if (!now && t - records->drops_logged_us < DROP_LOG_INTERVAL_US)
    return;
  g_mutex_lock (&records->lock);
  count = records->drops_unreported;
  total = records->dropped;
  records->drops_unreported = 0;
  g_mutex_unlock (&records->lock);
  if (count == 0)
    return;
  records->drops_logged_us = t;
  g_printerr ("voiceagent: call records: the queue is full (%u records or "
              "%" G_GSIZE_FORMAT " MB): dropped the %" G_GUINT64_FORMAT
              " oldest (%" G_GUINT64_FORMAT " since start)\n",
      records->max_queued, records->max_bytes / (1024 * 1024), count, total);
}

static gpointer
writer_main (gpointer data)
{
  VaRecords *records = data;
  VaCallRecord *batch[BATCH_MAX];
  guint n;

  while ((n = take_batch (records, batch)) > 0) {
    if (write_batch (records, batch, n))
      gst_voice_backoff_reset (&records->backoff);
    else
      back_off (records);
    report_drops (records, FALSE);
  }
  report_drops (records, TRUE);
  return NULL;
}

/* ---- Open and close ---- */

static VaRecords *
records_new (const VaRecordsBackend *backend, const gchar *target, gchar *where,
    const VaRecordsOptions *options)
{
  VaRecords *records = g_new0 (VaRecords, 1);

  records->backend = backend;
  records->target = g_strdup (target);
  records->where = where;
  records->max_queued = options && options->max_queued ? options->max_queued
                                                       : VA_RECORDS_QUEUE_MAX;
  records->max_bytes = options && options->max_queued_bytes
      ? options->max_queued_bytes
      : VA_RECORDS_QUEUE_MAX_BYTES;
  records->flush_timeout_us =
      (options && options->flush_timeout_ms ? options->flush_timeout_ms
                                            : VA_RECORDS_FLUSH_TIMEOUT_MS) *
      G_TIME_SPAN_MILLISECOND;
  records->backoff.initial_ms = BACKOFF_MIN_MS;
  records->backoff.max_ms = BACKOFF_MAX_MS;
  g_mutex_init (&records->lock);
  g_cond_init (&records->cond);
  g_queue_init (&records->queue);
  return records;
}

VaRecords *
va_records_open_full (
    const gchar *database, const VaRecordsOptions *options, GError **error)
{
  const VaRecordsBackend *backend = va_records_backend_for (database, error);
  GError *local = NULL;
  VaRecords *records;
  VaRecordsDb *db;
  gchar *where;

  if (backend == NULL || (where = backend->describe (database, error)) == NULL)
    return NULL;
  db = connect_db (backend, database, TRUE, &local);
  /* PostgreSQL may be down while this server starts: records wait for
   * it. A file that cannot be created, or a bad setting, stops here. */
  if (db == NULL &&
      (backend == &va_records_sqlite ||
          local->code != VA_RECORDS_ERROR_RETRY)) {
    g_propagate_error (error, local);
    g_free (where);
    return NULL;
  }
  records = records_new (backend, database, where, options);
  records->db = db;
  records->up = db != NULL;
  if (db == NULL) {
    g_printerr ("voiceagent: call records: the database is unavailable: "
                "%s; records wait in memory (at most %u) and are written "
                "when it is up\n",
        local->message, records->max_queued);
    g_clear_error (&local);
  }
  records->thread = g_thread_new ("va-records", writer_main, records);
  return records;
}

VaRecords *
va_records_open (const gchar *database, GError **error)
{
  VaRecordsOptions options = { 0 };
  const gchar *max = g_getenv ("VOICEAGENT_RECORDS_QUEUE_MAX");

  if (max && *max)
    options.max_queued = (guint)g_ascii_strtoull (max, NULL, 10);
  return va_records_open_full (database, &options, error);
}

guint
va_records_close (VaRecords *records)
{
  VaCallRecord *r;
  guint lost;

  if (records == NULL)
    return 0;
  g_mutex_lock (&records->lock);
  records->stopping = TRUE;
  records->stop_deadline = g_get_monotonic_time () + records->flush_timeout_us;
  g_cond_broadcast (&records->cond);
  g_mutex_unlock (&records->lock);
  g_thread_join (records->thread);

  /* The writer is gone: what is left was not written. */
  lost = records->queue.length;
  if (lost > 0)
    g_printerr ("voiceagent: call records: %u records were not written to "
                "%s at %s within %.1f s of shutting down; they are lost\n",
        lost, records->backend->name, records->where,
        records->flush_timeout_us / 1e6);
  while ((r = g_queue_pop_head (&records->queue)))
    va_call_record_free (r);
  g_clear_pointer (&records->db, records->backend->close);
  g_mutex_clear (&records->lock);
  g_cond_clear (&records->cond);
  memset (records->target, 0, strlen (records->target));
  g_free (records->target);
  g_free (records->where);
  g_free (records);
  return lost;
}

/* ---- The command-line reader: one output for every backend ---- */

static gchar *
format_time (gint64 us)
{
  GDateTime *t = g_date_time_new_from_unix_local (us / G_USEC_PER_SEC);
  gchar *s = g_date_time_format (t, "%Y-%m-%d %H:%M:%S");

  g_date_time_unref (t);
  return s;
}

static const gchar *
text (const gchar *s)
{
  return s ? s : "";
}

static int
list_calls (VaRecordsDb *db)
{
  GError *error = NULL;
  GPtrArray *rows = db->backend->list (db, &error);

  if (rows == NULL) {
    fprintf (stderr, "voiceagent: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  printf ("%-16s  %-10s  %-19s  %8s  %-12s  %10s\n", "ID", "AGENT", "STARTED",
      "SECONDS", "END", "COST USD");
  for (guint i = 0; i < rows->len; i++) {
    const VaCallRecord *r = g_ptr_array_index (rows, i);
    gchar *started = format_time (r->started_us);
    printf ("%-16s  %-10s  %-19s  %8.1f  %-12s  %10.5f\n", text (r->id),
        text (r->agent), started, (r->ended_us - r->started_us) / 1e6,
        text (r->end_reason), r->cost_usd);
    g_free (started);
  }
  g_ptr_array_unref (rows);
  return 0;
}

/* The tool calls of a record (its transcript's "tool" lines), one a
 * line with what the tool answered: `calls show` lists them. */
static void
print_tools (const gchar *transcript_json)
{
  JsonParser *p = json_parser_new ();
  JsonArray *lines = NULL;
  guint i, n = 0;

  if (transcript_json &&
      json_parser_load_from_data (p, transcript_json, -1, NULL) &&
      JSON_NODE_HOLDS_ARRAY (json_parser_get_root (p)))
    lines = json_node_get_array (json_parser_get_root (p));
  for (i = 0; lines && i < json_array_get_length (lines); i++) {
    JsonObject *o = json_array_get_object_element (lines, i);

    if (o == NULL ||
        g_strcmp0 (json_object_get_string_member_with_default (o, "role", NULL),
            "tool") != 0)
      continue;
    printf ("%s turn %" G_GINT64_FORMAT ": %s%s%s\n",
        n++ == 0 ? "tools:      " : "            ",
        json_object_get_int_member_with_default (o, "turn", 0),
        json_object_get_string_member_with_default (o, "text", ""),
        json_object_has_member (o, "result") ? " → " : "",
        json_object_get_string_member_with_default (o, "result", ""));
  }
  if (n == 0)
    printf ("tools:       none\n");
  g_object_unref (p);
}

static int
show_call (VaRecordsDb *db, const gchar *id, gboolean as_json)
{
  GError *error = NULL;
  VaCallRecord *r = db->backend->show (db, id, &error);
  gchar *started;

  if (r == NULL) {
    if (error)
      fprintf (stderr, "voiceagent: %s\n", error->message);
    else
      fprintf (stderr, "voiceagent: no call %s in the database\n", id);
    g_clear_error (&error);
    return 1;
  }
  if (as_json) {
    gchar *json = va_call_record_to_json (r);
    printf ("%s\n", json);
    g_free (json);
    va_call_record_free (r);
    return 0;
  }
  started = format_time (r->started_us);
  printf ("call:        %s\nagent:       %s\nstarted:     %s\n"
          "duration:    %.1f s\nended:       %s\ntranscript:  %s\n"
          "turns:       %s\nusage:       stt %.1f s, tts %" G_GUINT64_FORMAT
          " chars, llm %" G_GUINT64_FORMAT " prompt + %" G_GUINT64_FORMAT
          " completion tokens\ncost:        $%.5f\n",
      text (r->id), text (r->agent), started,
      (r->ended_us - r->started_us) / 1e6, text (r->end_reason),
      text (r->transcript_json), text (r->turns_json), r->usage.stt_seconds,
      r->usage.tts_characters, r->usage.llm_prompt_tokens,
      r->usage.llm_completion_tokens, r->cost_usd);
  if (r->recording)
    printf ("recording:   %s (%" G_GUINT64_FORMAT
            " bytes, %.1f s, %" G_GUINT64_FORMAT " buffers dropped)\n",
        r->recording, r->recording_bytes, r->recording_seconds,
        r->recording_dropped);
  else
    printf ("recording:   none\n");
  print_tools (r->transcript_json);
  g_free (started);
  va_call_record_free (r);
  return 0;
}

int
va_records_command (const VaConfig *config, int argc, char **argv)
{
  const VaRecordsBackend *backend;
  GError *error = NULL;
  VaRecordsDb *db = NULL;
  int status;

  /* `calls json ID`: a subcommand, not a flag, since GOption owns the
   * flags before the subcommand is known. */
  gboolean as_json = argc == 3 && g_str_equal (argv[1], "json");

  if (argc < 2 ||
      (!g_str_equal (argv[1], "list") &&
          !(g_str_equal (argv[1], "show") && argc == 3) && !as_json)) {
    fprintf (stderr,
        "usage: voiceagent [--database FILE|URI] calls list\n"
        "       voiceagent [--database FILE|URI] calls show ID\n"
        "       voiceagent [--database FILE|URI] calls json ID\n");
    return 2;
  }
  backend = va_records_backend_for (config->database, &error);
  if (backend)
    db = backend->open (config->database, FALSE, &error);
  if (db == NULL) {
    fprintf (stderr, "voiceagent: %s\n", error->message);
    g_error_free (error);
    return 1;
  }
  status = g_str_equal (argv[1], "list") ? list_calls (db)
                                         : show_call (db, argv[2], as_json);
  backend->close (db);
  return status;
}

/* voiceagent: a call's recording, stereo Ogg/Opus from its audio taps.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _VaRecorder VaRecorder;

/* What a finished recording was: its file (NULL when nothing was kept),
 * size, length and the buffers the branch dropped to keep the call going. */
typedef struct
{
  gchar *path;
  guint64 bytes;
  gdouble seconds;
  guint64 dropped; /* raw audio buffers the leaky queues dropped */
  gboolean truncated; /* reached the size bound: the rest was not written */
} VaRecording;

void va_recording_clear (VaRecording *rec);

/* Checks at start that --record DIR exists and takes files: FALSE with an
 * @error that names the folder and the fix. */
gboolean va_recorder_check_dir (const gchar *dir, GError **error);

/* Adds a recording branch beside @pipeline's tees "caller_tap" and
 * "agent_tap", writing @dir/@call_id.opus.part, at most @max_bytes (0: no
 * bound). Call before the pipeline starts. NULL with @error when the
 * pipeline has no taps, the disk has less than @max_bytes free, or the
 * file cannot be created. */
VaRecorder *va_recorder_attach (GstElement *pipeline, const gchar *dir,
    const gchar *call_id, guint64 max_bytes, GError **error);

/* (any thread, may block up to a second or two) Ends the recording while
 * the pipeline still plays: unlinks the taps and drains the encoder into
 * the file. Then the pipeline may go to NULL. */
void va_recorder_finish (VaRecorder *recorder);

/* After the pipeline is in NULL: renames the file to @call_id.opus (or
 * deletes it when no audio was written), fills @out, frees @recorder. */
void va_recorder_close (VaRecorder *recorder, VaRecording *out);

G_END_DECLS

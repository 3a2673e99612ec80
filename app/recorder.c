/* voiceagent: a call's recording, stereo Ogg/Opus from its audio taps.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The branch (docs/pipelines.md, "Recording"):
 *
 *   caller_tap → queue (leaky) → audioresample → audioconvert (to left)  ┐
 *   agent_tap  → queue (leaky) → audioresample → audioconvert (to right) ┴→
 *   audiomixer → 48 kHz stereo → opusenc → oggmux → filesink DIR/ID.opus.part
 *
 * audiomixer works in running time with live inputs, so both voices keep
 * their place in time and a side with no buffers (the agent listening)
 * is written as silence. The queues are leaky: a disk too slow for the
 * encoder's output blocks the mixer, the queues fill and drop the oldest
 * audio (counted), and the call's own path never waits. filesink neither
 * syncs nor prerolls, so the branch adds no latency to the call.
 *
 * Threads: attach and close run on the main context; finish on the call's
 * teardown thread; the probes and the "overrun" handler on streaming
 * threads, which touch only the atomics and the lock-protected fields.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>
#include "recorder.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

/* Raw audio the leaky queues hold before they drop: a disk may stall
 * this long without losing audio. */
#define QUEUE_TIME (2 * GST_SECOND)
/* How long finish waits for the encoder to drain into the file. */
#define DRAIN_TIMEOUT_US (2 * G_USEC_PER_SEC)
#define FILE_MODE 0640

struct _VaRecorder
{
  /* Immutable after attach */
  gchar *part_path; /* DIR/ID.opus.part, while it is written */
  gchar *path; /* DIR/ID.opus */
  guint64 max_bytes;
  GstElement *bin; /* owned ref; in the pipeline */
  GstPad *caller_src; /* request pads on the tees (owned refs) */
  GstPad *agent_src;

  /* Streaming threads (atomics, or under lock) */
  gint dropped; /* atomic */
  GMutex lock;
  GCond cond;
  gboolean eos; /* protected by lock: the file has its last page */
  guint64 bytes; /* protected by lock */
  gboolean truncated; /* protected by lock */
  GstClockTime first_pts; /* protected by lock: mixer output */
  GstClockTime last_end; /* protected by lock */
};

void
va_recording_clear (VaRecording *rec)
{
  g_clear_pointer (&rec->path, g_free);
  memset (rec, 0, sizeof *rec);
}

gboolean
va_recorder_check_dir (const gchar *dir, GError **error)
{
  static const gchar *const needed[] = { "audiomixer", "opusenc", "oggmux" };
  gchar *probe;
  int fd;

  for (guint i = 0; i < G_N_ELEMENTS (needed); i++) {
    GstElementFactory *f = gst_element_factory_find (needed[i]);
    if (f == NULL) {
      g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
          "--record needs the GStreamer element %s: install "
          "gstreamer1.0-plugins-base",
          needed[i]);
      return FALSE;
    }
    gst_object_unref (f);
  }
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
        "--record %s is not a folder: create it (mode 0750, owned by the "
        "user voiceagent runs as) or give another",
        dir);
    return FALSE;
  }
  probe = g_build_filename (dir, ".voiceagent-write-test", NULL);
  fd = g_open (probe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "--record %s does not take files (%s): give the user voiceagent "
        "runs as write access to it, or give another folder",
        dir, g_strerror (saved));
    g_free (probe);
    return FALSE;
  }
  close (fd);
  g_unlink (probe);
  g_free (probe);
  return TRUE;
}

/* FALSE with @error when @dir's file system has less than @need bytes
 * free (unknown counts as enough). */
static gboolean
check_free_space (const gchar *dir, guint64 need, GError **error)
{
  GFile *file = g_file_new_for_path (dir);
  GFileInfo *info = g_file_query_filesystem_info (
      file, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
  guint64 free_bytes = G_MAXUINT64;
  gboolean ok;

  if (info &&
      g_file_info_has_attribute (info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE))
    free_bytes = g_file_info_get_attribute_uint64 (
        info, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
  ok = free_bytes >= need;
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
        "%s has %" G_GUINT64_FORMAT " MB free, less than one recording may "
        "take (--record-max-mb %" G_GUINT64_FORMAT "): free space or lower it",
        dir, free_bytes / (1024 * 1024), need / (1024 * 1024));
  g_clear_object (&info);
  g_object_unref (file);
  return ok;
}

/* (streaming thread) A leaky queue dropped audio. */
static void
on_overrun (GstElement *queue, gpointer data)
{
  VaRecorder *r = data;

  g_atomic_int_inc (&r->dropped);
}

/* (streaming thread) Counts the file's bytes, drops what is past the
 * bound, and tells finish when the last page is written. */
static GstPadProbeReturn
file_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  VaRecorder *r = data;
  GstPadProbeReturn ret = GST_PAD_PROBE_OK;

  g_mutex_lock (&r->lock);
  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
    gsize size = gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info));
    if (r->truncated || (r->max_bytes && r->bytes + size > r->max_bytes)) {
      r->truncated = TRUE;
      ret = GST_PAD_PROBE_DROP;
    } else {
      r->bytes += size;
    }
  } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) ==
      GST_EVENT_EOS) {
    r->eos = TRUE;
    g_cond_broadcast (&r->cond);
  }
  g_mutex_unlock (&r->lock);
  return ret;
}

/* (streaming thread) The mixer's output: the recording's time span. */
static GstPadProbeReturn
mix_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  VaRecorder *r = data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);

  if (!GST_BUFFER_PTS_IS_VALID (buf))
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&r->lock);
  if (!GST_CLOCK_TIME_IS_VALID (r->first_pts))
    r->first_pts = GST_BUFFER_PTS (buf);
  r->last_end = GST_BUFFER_PTS (buf) +
      (GST_BUFFER_DURATION_IS_VALID (buf) ? GST_BUFFER_DURATION (buf) : 0);
  g_mutex_unlock (&r->lock);
  return GST_PAD_PROBE_OK;
}

/* The bin, its ghost pads "caller" and "agent", and the probes. */
static GstElement *
make_bin (VaRecorder *r, GError **error)
{
  gchar *location = g_strescape (r->part_path, NULL);
  gchar *desc = g_strdup_printf (
      "audiomixer name=mix start-time-selection=first "
      "! audio/x-raw,format=S16LE,rate=48000,channels=2 "
      "! opusenc bitrate=48000 frame-size=20 ! oggmux "
      "! filesink name=file sync=false async=false location=\"%s\" "
      "queue name=caller leaky=downstream max-size-buffers=0 "
      "max-size-bytes=0 max-size-time=%" G_GUINT64_FORMAT " "
      "! audioresample ! audioconvert name=caller_conv "
      "! audio/x-raw,rate=48000,channels=2 ! mix. "
      "queue name=agent leaky=downstream max-size-buffers=0 "
      "max-size-bytes=0 max-size-time=%" G_GUINT64_FORMAT " "
      "! audioresample ! audioconvert name=agent_conv "
      "! audio/x-raw,rate=48000,channels=2 ! mix.",
      location, QUEUE_TIME, QUEUE_TIME);
  GstElement *bin = gst_parse_bin_from_description (desc, FALSE, error);
  /* One mono input to one side of the stereo output: [[left], [right]]. */
  static const gchar *const sides[][2] = {
    { "caller", "<<(float)1.0>, <(float)0.0>>" },
    { "agent", "<<(float)0.0>, <(float)1.0>>" },
  };
  GstElement *e;
  GstPad *pad;
  gchar *name, *matrix;

  g_free (desc);
  g_free (location);
  if (bin == NULL)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (sides); i++) {
    e = gst_bin_get_by_name (GST_BIN (bin), sides[i][0]);
    g_signal_connect (e, "overrun", G_CALLBACK (on_overrun), r);
    pad = gst_element_get_static_pad (e, "sink");
    gst_element_add_pad (bin, gst_ghost_pad_new (sides[i][0], pad));
    gst_object_unref (pad);
    gst_object_unref (e);
    name = g_strconcat (sides[i][0], "_conv", NULL);
    e = gst_bin_get_by_name (GST_BIN (bin), name);
    /* Deserializing an array writes into its text: a copy. */
    matrix = g_strdup (sides[i][1]);
    gst_util_set_object_arg (G_OBJECT (e), "mix-matrix", matrix);
    g_free (matrix);
    gst_object_unref (e);
    g_free (name);
  }
  e = gst_bin_get_by_name (GST_BIN (bin), "file");
  pad = gst_element_get_static_pad (e, "sink");
  gst_pad_add_probe (pad,
      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
      file_probe, r, NULL);
  gst_object_unref (pad);
  gst_object_unref (e);
  e = gst_bin_get_by_name (GST_BIN (bin), "mix");
  pad = gst_element_get_static_pad (e, "src");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, mix_probe, r, NULL);
  gst_object_unref (pad);
  gst_object_unref (e);
  return bin;
}

/* Links a new request pad of the tee named @tap to the bin's @ghost. */
static GstPad *
link_tap (
    GstElement *pipeline, const gchar *tap, GstElement *bin, const gchar *ghost)
{
  GstElement *tee = gst_bin_get_by_name (GST_BIN (pipeline), tap);
  GstPad *src, *sink;

  if (tee == NULL)
    return NULL;
  src = gst_element_request_pad_simple (tee, "src_%u");
  sink = gst_element_get_static_pad (bin, ghost);
  if (gst_pad_link (src, sink) != GST_PAD_LINK_OK) {
    gst_element_release_request_pad (tee, src);
    gst_clear_object (&src);
  }
  gst_object_unref (sink);
  gst_object_unref (tee);
  return src;
}

static void
release_tap (GstPad **pad)
{
  GstElement *tee;

  if (*pad == NULL)
    return;
  tee = gst_pad_get_parent_element (*pad);
  if (tee) {
    gst_element_release_request_pad (tee, *pad);
    gst_object_unref (tee);
  }
  gst_clear_object (pad);
}

static void
recorder_free (VaRecorder *r)
{
  release_tap (&r->caller_src);
  release_tap (&r->agent_src);
  gst_clear_object (&r->bin);
  g_mutex_clear (&r->lock);
  g_cond_clear (&r->cond);
  g_free (r->part_path);
  g_free (r->path);
  g_free (r);
}

/* Creates @path empty with FILE_MODE: filesink opens it "wb", which keeps
 * the mode, so the recording is never readable by others, not even for a
 * moment. */
static gboolean
create_private (const gchar *path, GError **error)
{
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, FILE_MODE);

  if (fd < 0) {
    int saved = errno;
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
        "cannot create the recording %s: %s", path, g_strerror (saved));
    return FALSE;
  }
  fchmod (fd, FILE_MODE); /* an old .part may have had another mode */
  close (fd);
  return TRUE;
}

VaRecorder *
va_recorder_attach (GstElement *pipeline, const gchar *dir,
    const gchar *call_id, guint64 max_bytes, GError **error)
{
  VaRecorder *r;
  GstElement *tap;
  GstBin *parent;
  gchar *name = g_strconcat (call_id, ".opus", NULL);

  if (!check_free_space (dir, max_bytes, error)) {
    g_free (name);
    return NULL;
  }
  r = g_new0 (VaRecorder, 1);
  g_mutex_init (&r->lock);
  g_cond_init (&r->cond);
  r->first_pts = r->last_end = GST_CLOCK_TIME_NONE;
  r->max_bytes = max_bytes;
  r->path = g_build_filename (dir, name, NULL);
  r->part_path = g_strconcat (r->path, ".part", NULL);
  g_free (name);
  if (!create_private (r->part_path, error))
    goto fail;
  r->bin = make_bin (r, error);
  if (r->bin == NULL)
    goto fail;
  gst_object_ref_sink (r->bin);
  /* Beside the taps: a link cannot cross into another bin. */
  tap = gst_bin_get_by_name (GST_BIN (pipeline), "caller_tap");
  parent = tap ? GST_BIN (gst_object_get_parent (GST_OBJECT (tap)))
               : GST_BIN (gst_object_ref (pipeline));
  gst_clear_object (&tap);
  gst_bin_add (parent, r->bin);
  r->caller_src = link_tap (pipeline, "caller_tap", r->bin, "caller");
  r->agent_src = link_tap (pipeline, "agent_tap", r->bin, "agent");
  if (r->caller_src == NULL || r->agent_src == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_PAD,
        "the pipeline has no tees named caller_tap and agent_tap to record "
        "from (docs/pipelines.md): fix the template or run without "
        "--record");
    gst_bin_remove (parent, r->bin);
    gst_object_unref (parent);
    goto fail;
  }
  gst_object_unref (parent);
  return r;

fail:
  g_unlink (r->part_path);
  recorder_free (r);
  return NULL;
}

void
va_recorder_finish (VaRecorder *r)
{
  gint64 deadline = g_get_monotonic_time () + DRAIN_TIMEOUT_US;
  const gchar *const ghosts[] = { "caller", "agent" };

  /* The call's audio stops flowing here; EOS at both inputs drains the
   * mixer, the encoder and the muxer into the file's last page. */
  release_tap (&r->caller_src);
  release_tap (&r->agent_src);
  for (guint i = 0; i < G_N_ELEMENTS (ghosts); i++) {
    GstPad *pad = gst_element_get_static_pad (r->bin, ghosts[i]);
    gst_pad_send_event (pad, gst_event_new_eos ());
    gst_object_unref (pad);
  }
  g_mutex_lock (&r->lock);
  while (!r->eos)
    if (!g_cond_wait_until (&r->cond, &r->lock, deadline))
      break;
  if (!r->eos)
    GST_WARNING ("recording %s: not drained within %d s; its end may be "
                 "missing",
        r->path, (int)(DRAIN_TIMEOUT_US / G_USEC_PER_SEC));
  g_mutex_unlock (&r->lock);
}

void
va_recorder_close (VaRecorder *r, VaRecording *out)
{
  GError *error = NULL;
  GFile *part, *final;

  memset (out, 0, sizeof *out);
  out->dropped = (guint)g_atomic_int_get (&r->dropped);
  out->truncated = r->truncated;
  if (r->bytes == 0) {
    /* No audio ever reached the file (the caller never connected). */
    g_unlink (r->part_path);
    recorder_free (r);
    return;
  }
  part = g_file_new_for_path (r->part_path);
  final = g_file_new_for_path (r->path);
  if (g_file_move (part, final,
          G_FILE_COPY_OVERWRITE | G_FILE_COPY_NOFOLLOW_SYMLINKS, NULL, NULL,
          NULL, &error)) {
    out->path = g_strdup (r->path);
    out->bytes = r->bytes;
    if (GST_CLOCK_TIME_IS_VALID (r->first_pts))
      out->seconds = (gdouble)(r->last_end - r->first_pts) / GST_SECOND;
  } else {
    g_printerr ("voiceagent: recording %s: cannot rename it: %s\n",
        r->part_path, error->message);
    g_error_free (error);
  }
  g_object_unref (part);
  g_object_unref (final);
  recorder_free (r);
}

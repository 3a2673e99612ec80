/* voiceagent: one call: its pipeline, its caller and its WHEP listeners.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here runs on the main context except the few GStreamer
 * callbacks marked "(streaming thread)", which hop back with
 * g_main_context_invoke. Taking the pipeline down can block, so it runs
 * on a worker thread and ended() is reported back on the main context.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/webrtc/webrtc.h>
#include <json-glib/json-glib.h>
#include "call.h"
#include "oplog.h"
#include "recorder.h"
#include "voice.h"

GST_DEBUG_CATEGORY_EXTERN (voiceagent_debug);
#define GST_CAT_DEFAULT voiceagent_debug

typedef struct
{
  VaCall *call;
  gchar *id;
  GstElement *bin; /* mixer → opus → webrtcbin, in the pipeline */
  GstPad *caller_src; /* request pads on the taps */
  GstPad *agent_src;
  VaPeer *peer;
  VaListenerAnswered answered;
  gpointer user_data;
  guint drop_idle; /* removes a listener whose ICE failed */
  guint connect_timer; /* until its ICE first connects */
} Listener;

struct _VaCall
{
  /* Immutable after va_call_new / va_call_start */
  gchar *id;
  const VaConfig *config;
  VaCallCallbacks callbacks;
  gpointer user_data;
  gint64 start_time;
  gchar *resume_token; /* or NULL */
  gchar *call_token; /* the caller's capability, told over the channel */
  gchar *history; /* conversation to restore at the start, or NULL */
  GstElement *pipeline;
  GstElement *webrtc; /* direct mode, or NULL */
  VaRtpLink *rtp; /* gateway mode, or NULL; freed after the pipeline */
  gchar *record_dir; /* record the call here (va_call_set_recording) */
  guint64 record_max_bytes;
  /* Handed to the teardown thread by va_call_end; the recording it made
   * is filled there before ended() is reported, read after. */
  VaRecorder *recorder;
  VaRecording recording;
  /* GstStructure*: the usage counts the elements posted as they stopped,
   * after the bus watch was gone; filled the same way, or NULL. */
  GPtrArray *last_usage;

  /* Main context only */
  VaPeer *peer;
  guint bus_watch;
  guint max_duration_timer;
  guint disconnect_timer;
  guint connect_timer; /* until ICE first connects */
  gboolean ending;
  VaCallEndReason end_reason;
  gchar *end_detail;
  GHashTable *listeners; /* id → Listener* */

  /* Shared with streaming threads */
  GMutex lock;
  GstWebRTCDataChannel *channel; /* protected by lock */
  gint caller_audio_seen; /* atomic: a buffer passed caller_tap */
  gint channel_greeted; /* atomic: the "call" event was sent */
};

static GThreadPool *teardown_pool;

const gchar *
va_call_end_reason_name (VaCallEndReason reason)
{
  static const gchar *names[] = {
    "hangup",
    "negotiation",
    "ice-failed",
    "disconnected",
    "error",
    "max-duration",
    "shutdown",
    "never-connected",
    "agent-hangup",
  };
  return reason < G_N_ELEMENTS (names) ? names[reason] : "unknown";
}

VaCall *
va_call_new (const gchar *id, const VaConfig *config,
    const VaCallCallbacks *callbacks, gpointer user_data)
{
  VaCall *call = g_new0 (VaCall, 1);

  call->id = g_strdup (id);
  call->config = config;
  call->callbacks = *callbacks;
  call->user_data = user_data;
  call->start_time = g_get_real_time ();
  call->listeners = g_hash_table_new (g_str_hash, g_str_equal);
  g_mutex_init (&call->lock);
  return call;
}

static void listener_free (Listener *l);

void
va_call_free (VaCall *call)
{
  if (call == NULL)
    return;
  g_warn_if_fail (call->pipeline == NULL);
  g_hash_table_unref (call->listeners);
  g_clear_object (&call->channel);
  g_mutex_clear (&call->lock);
  g_free (call->end_detail);
  g_clear_pointer (&call->last_usage, g_ptr_array_unref);
  g_free (call->resume_token);
  g_free (call->call_token);
  g_free (call->history);
  g_free (call->record_dir);
  va_recording_clear (&call->recording);
  g_free (call->id);
  g_free (call);
}

const gchar *
va_call_get_id (VaCall *call)
{
  return call->id;
}

VaPeer *
va_call_get_peer (VaCall *call)
{
  return call->peer;
}

gboolean
va_call_is_ending (VaCall *call)
{
  return call->ending;
}

gint64
va_call_get_start_time (VaCall *call)
{
  return call->start_time;
}

void
va_call_set_resume_token (VaCall *call, const gchar *token)
{
  g_free (call->resume_token);
  call->resume_token = g_strdup (token);
}

void
va_call_set_call_token (VaCall *call, const gchar *token)
{
  g_free (call->call_token);
  call->call_token = g_strdup (token);
}

void
va_call_set_recording (VaCall *call, const gchar *dir, guint64 max_bytes)
{
  g_free (call->record_dir);
  call->record_dir = g_strdup (dir);
  call->record_max_bytes = max_bytes;
}

const VaRecording *
va_call_get_recording (VaCall *call)
{
  return &call->recording;
}

void
va_call_set_history (VaCall *call, const gchar *history_json)
{
  g_free (call->history);
  call->history = g_strdup (history_json);
}

static GstElement *find_element (VaCall *call, const gchar *name);

gchar *
va_call_get_history (VaCall *call)
{
  GstElement *llm = find_element (call, "llm");
  gchar *json = NULL;

  if (llm && g_object_class_find_property (G_OBJECT_GET_CLASS (llm), "history"))
    g_object_get (llm, "history", &json, NULL);
  gst_clear_object (&llm);
  return json;
}

/* Before the pipeline starts, so llmtransform keeps it (and skips its
 * greeting). */
static void
restore_history (VaCall *call)
{
  GstElement *llm;

  if (call->history == NULL)
    return;
  llm = find_element (call, "llm");
  if (llm && g_object_class_find_property (G_OBJECT_GET_CLASS (llm), "history"))
    g_object_set (llm, "history", call->history, NULL);
  else
    GST_WARNING ("call %s: no llmtransform named \"llm\" to resume the "
                 "conversation in",
        call->id);
  gst_clear_object (&llm);
}

/* ---- Data channel ---- */

void
va_call_send_json (VaCall *call, const gchar *json)
{
  GstWebRTCDataChannel *channel = NULL;
  GstWebRTCDataChannelState state = GST_WEBRTC_DATA_CHANNEL_STATE_CLOSED;

  if (call->rtp) {
    va_rtp_link_send_text (call->rtp, json);
    return;
  }
  g_mutex_lock (&call->lock);
  if (call->channel)
    channel = g_object_ref (call->channel);
  g_mutex_unlock (&call->lock);
  if (channel == NULL)
    return;
  g_object_get (channel, "ready-state", &state, NULL);
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
    gst_webrtc_data_channel_send_string (channel, json);
  g_object_unref (channel);
}

static GstElement *
find_element (VaCall *call, const gchar *name)
{
  return call->pipeline ? gst_bin_get_by_name (GST_BIN (call->pipeline), name)
                        : NULL;
}

/**
 * va_call_interrupt:
 *
 * Stops the agent now: an `interrupt` event enters the pipeline at the
 * LLM (element `llm`), which cancels its request and forwards it to TTS.
 */
void
va_call_interrupt (VaCall *call, const gchar *reason)
{
  GstElement *llm = find_element (call, "llm");
  GstPad *pad;

  if (llm == NULL) {
    GST_WARNING ("call %s: no element named \"llm\" to interrupt", call->id);
    return;
  }
  pad = gst_element_get_static_pad (llm, "sink");
  if (pad) {
    gst_pad_send_event (
        pad, gst_voice_event_new_interrupt (GST_CLOCK_TIME_NONE, 0, reason));
    gst_object_unref (pad);
  }
  gst_object_unref (llm);
}

/**
 * va_call_user_speech:
 * @speaking: TRUE when the caller's own VAD (the browser's) heard speech
 *   start, FALSE when it heard it stop
 *
 * The caller's VAD as if it were the server's: a `speech-start` (or
 * `speech-stop`) enters the pipeline at the LLM, so llmtransform's
 * interruption=confirmed pauses the agent and then confirms or resumes
 * (docs/turn-taking.md). Unlike va_call_interrupt() nothing is cut off
 * yet. The server's own VAD goes on too: a second `speech-start` during
 * a pause only means the caller is still talking. `speech-stop` is
 * serialized, so this waits for the LLM's input stream lock (held only
 * while it takes one buffer).
 */
void
va_call_user_speech (VaCall *call, gboolean speaking)
{
  GstElement *llm = find_element (call, "llm");
  GstPad *pad;

  if (llm == NULL) {
    GST_WARNING (
        "call %s: no element named \"llm\" for the caller's VAD", call->id);
    return;
  }
  pad = gst_element_get_static_pad (llm, "sink");
  if (pad) {
    GstEvent *event = speaking
        ? gst_voice_event_new_speech_start (GST_CLOCK_TIME_NONE, 0)
        : gst_voice_event_new_speech_stop (GST_CLOCK_TIME_NONE, 0);
    /* llmtransform reports a pause it makes for this as "caller-vad". */
    gst_structure_set (gst_event_writable_structure (event), "source",
        G_TYPE_STRING, "caller", NULL);
    gst_pad_send_event (pad, event);
    gst_object_unref (pad);
  }
  gst_object_unref (llm);
}

void
va_call_push_user_text (VaCall *call, const gchar *text)
{
  GstElement *llm = find_element (call, "llm");
  gboolean accepted = FALSE;

  if (llm == NULL || !g_signal_lookup ("push-user-text", G_OBJECT_TYPE (llm))) {
    GST_WARNING (
        "call %s: no llmtransform named \"llm\" for typed text", call->id);
    va_call_send_json (call,
        "{\"type\":\"error\",\"message\":\"this "
        "agent takes no typed text\"}");
    gst_clear_object (&llm);
    return;
  }
  g_signal_emit_by_name (llm, "push-user-text", text, &accepted);
  gst_object_unref (llm);
}

typedef struct
{
  VaCall *call;
  gchar *text;
} ChannelText;

/* @o's member @name if it is a string, else NULL: json-glib's getters
 * assert on an object or an array, and a caller may send one. */
static const gchar *
string_member (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n && JSON_NODE_HOLDS_VALUE (n) &&
          json_node_get_value_type (n) == G_TYPE_STRING
      ? json_node_get_string (n)
      : NULL;
}

static gboolean
handle_channel_text (gpointer data)
{
  ChannelText *ct = data;
  JsonParser *parser = json_parser_new ();
  const gchar *event;
  JsonObject *o;

  if (!json_parser_load_from_data (parser, ct->text, -1, NULL) ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))) {
    va_call_send_json (ct->call,
        "{\"type\":\"error\",\"message\":\"data channel messages must be JSON objects\"}");
    goto out;
  }
  o = json_node_get_object (json_parser_get_root (parser));
  event = string_member (o, "event");
  if (g_strcmp0 (event, "user_interrupted") == 0) {
    va_call_interrupt (ct->call, "user_interrupted");
  } else if (g_strcmp0 (event, "user_speech_start") == 0 ||
      g_strcmp0 (event, "user_speech_stop") == 0) {
    va_call_user_speech (ct->call, g_strcmp0 (event, "user_speech_start") == 0);
  } else if (g_strcmp0 (string_member (o, "type"), "text") == 0 &&
      string_member (o, "text") != NULL) {
    va_call_push_user_text (ct->call, string_member (o, "text"));
  } else if (g_strcmp0 (string_member (o, "type"), "text") == 0) {
    va_call_send_json (ct->call,
        "{\"type\":\"error\",\"message\":"
        "\"a text message needs \\\"text\\\" as a string\"}");
  } else {
    va_call_send_json (ct->call,
        "{\"type\":\"error\",\"message\":"
        "\"unknown message: send {\\\"event\\\":\\\"user_interrupted\\\"}, "
        "{\\\"event\\\":\\\"user_speech_start\\\"}, "
        "{\\\"event\\\":\\\"user_speech_stop\\\"} "
        "or {\\\"type\\\":\\\"text\\\",\\\"text\\\":\\\"...\\\"}\"}");
  }
out:
  g_object_unref (parser);
  return G_SOURCE_REMOVE;
}

static void
channel_text_free (gpointer data)
{
  ChannelText *ct = data;

  g_free (ct->text);
  g_free (ct);
}

/* (streaming thread) */
static void
on_channel_message (
    GstWebRTCDataChannel *channel, const gchar *text, gpointer data)
{
  ChannelText *ct = g_new0 (ChannelText, 1);

  ct->call = data;
  ct->text = g_strdup (text);
  g_main_context_invoke_full (
      NULL, G_PRIORITY_DEFAULT, handle_channel_text, ct, channel_text_free);
}

static gboolean greet_channel (gpointer data);

/* (streaming thread) A data-channel message relayed by the gateway, or,
 * with @text NULL, the gateway's first datagram: it relays to us, so the
 * caller can hear from us too. */
static void
on_gateway_text (const gchar *text, gpointer data)
{
  VaCall *call = data;

  if (text)
    on_channel_message (NULL, text, call);
  else if (g_atomic_int_compare_and_exchange (&call->channel_greeted, 0, 1))
    g_main_context_invoke (NULL, greet_channel, call);
}

static gboolean
greet_channel (gpointer data)
{
  VaCall *call = data;
  /* Ids and tokens are hex: nothing to escape. */
  gchar *json = g_strdup_printf (
      "{\"type\":\"call\",\"id\":\"%s\",\"call_token\":\"%s\"%s%s%s}", call->id,
      call->call_token ? call->call_token : "",
      call->resume_token ? ",\"resume_token\":\"" : "",
      call->resume_token ? call->resume_token : "",
      call->resume_token ? "\"" : "");

  va_call_send_json (call, json);
  g_free (json);
  if (call->rtp && call->callbacks.first_media)
    call->callbacks.first_media (call, call->user_data);
  return G_SOURCE_REMOVE;
}

/* (streaming thread) */
static void
on_channel_open (GstWebRTCDataChannel *channel, gpointer data)
{
  VaCall *call = data;

  if (g_atomic_int_compare_and_exchange (&call->channel_greeted, 0, 1))
    g_main_context_invoke (NULL, greet_channel, call);
}

/* (streaming thread) The caller opened a data channel. */
static void
on_data_channel (
    GstElement *webrtc, GstWebRTCDataChannel *channel, gpointer data)
{
  VaCall *call = data;
  GstWebRTCDataChannelState state;

  g_signal_connect (
      channel, "on-message-string", G_CALLBACK (on_channel_message), call);
  g_signal_connect (channel, "on-open", G_CALLBACK (on_channel_open), call);
  g_mutex_lock (&call->lock);
  g_clear_object (&call->channel);
  call->channel = g_object_ref (channel);
  g_mutex_unlock (&call->lock);
  /* A channel may already be open when it is announced: greet it once. */
  g_object_get (channel, "ready-state", &state, NULL);
  if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN)
    on_channel_open (channel, call);
}

/* ---- Ending ---- */

typedef struct
{
  VaCall *call;
  GstElement *pipeline;
  VaRtpLink *rtp; /* its socket outlives the pipeline's use of it */
  VaRecorder *recorder; /* or NULL */
} Teardown;

static gboolean
report_ended (gpointer data)
{
  VaCall *call = data;

  for (guint i = 0; call->last_usage && i < call->last_usage->len; i++)
    if (call->callbacks.message)
      call->callbacks.message (
          call, g_ptr_array_index (call->last_usage, i), call->user_data);
  call->callbacks.ended (
      call, call->end_reason, call->end_detail, call->user_data);
  return G_SOURCE_REMOVE;
}

static void
flush_sink_pad (const GValue *item, gpointer unused)
{
  gst_pad_send_event (g_value_get_object (item), gst_event_new_flush_start ());
}

static void
flush_webrtcbin_inputs (const GValue *item, gpointer unused)
{
  GstElement *element = g_value_get_object (item);
  GstIterator *pads;

  if (g_strcmp0 (G_OBJECT_TYPE_NAME (element), "GstWebRTCBin") != 0)
    return;
  pads = gst_element_iterate_sink_pads (element);
  gst_iterator_foreach (pads, flush_sink_pad, NULL);
  gst_iterator_free (pads);
}

/* (worker thread) Keeps the "*-usage" element messages left on
 * @pipeline's bus for report_ended: deepgramsink posts its final count
 * (re-sent audio included) only when it stops, and a call's record must
 * bill it. */
static void
keep_last_usage (VaCall *call, GstElement *pipeline)
{
  GstBus *bus = gst_element_get_bus (pipeline);
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure (msg);
    if (s && g_str_has_suffix (gst_structure_get_name (s), "-usage")) {
      if (call->last_usage == NULL)
        call->last_usage =
            g_ptr_array_new_with_free_func ((GDestroyNotify)gst_structure_free);
      g_ptr_array_add (call->last_usage, gst_structure_copy (s));
    }
    gst_message_unref (msg);
  }
  gst_object_unref (bus);
}

/* (worker thread) Setting a pipeline to NULL joins its threads.
 * FIXME: with GStreamer 1.22, a webrtcbin whose DTLS role came from an
 * offer with a=setup:active can hold an upstream streaming thread in a
 * preroll wait that the state change never releases (deadlock). Flushing
 * webrtcbin's inputs first releases that thread. */
static void
teardown_pipeline (gpointer data, gpointer unused)
{
  Teardown *t = data;
  GstIterator *elements;

  /* While the pipeline plays: the recording's last page needs its
   * encoder drained. */
  if (t->recorder)
    va_recorder_finish (t->recorder);
  elements = gst_bin_iterate_recurse (GST_BIN (t->pipeline));
  gst_iterator_foreach (elements, flush_webrtcbin_inputs, NULL);
  gst_iterator_free (elements);
  /* The sinks stop, and post their last usage, going to NULL, where a
   * pipeline would flush them off its bus. */
  if (GST_IS_PIPELINE (t->pipeline))
    gst_pipeline_set_auto_flush_bus (GST_PIPELINE (t->pipeline), FALSE);
  gst_element_set_state (t->pipeline, GST_STATE_NULL);
  keep_last_usage (t->call, t->pipeline);
  gst_object_unref (t->pipeline);
  va_rtp_link_free (t->rtp);
  if (t->recorder)
    va_recorder_close (t->recorder, &t->call->recording);
  /* An idle, never an invoke: the main context must report it, even if
   * nobody iterates it right now. */
  g_idle_add (report_ended, t->call);
  g_free (t);
}

static void
disconnect_data_channel (VaCall *call)
{
  g_mutex_lock (&call->lock);
  if (call->channel)
    g_signal_handlers_disconnect_by_data (call->channel, call);
  g_clear_object (&call->channel);
  g_mutex_unlock (&call->lock);
}

void
va_call_end (VaCall *call, VaCallEndReason reason, const gchar *detail)
{
  Teardown *t;
  GHashTableIter iter;
  gpointer value;

  if (call->ending)
    return;
  call->ending = TRUE;
  call->end_reason = reason;
  call->end_detail = g_strdup (detail);
  GST_INFO ("call %s ends: %s%s%s", call->id, va_call_end_reason_name (reason),
      detail ? ": " : "", detail ? detail : "");

  g_clear_handle_id (&call->max_duration_timer, g_source_remove);
  g_clear_handle_id (&call->disconnect_timer, g_source_remove);
  g_clear_handle_id (&call->connect_timer, g_source_remove);
  g_clear_handle_id (&call->bus_watch, g_source_remove);
  g_hash_table_iter_init (&iter, call->listeners);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    listener_free (value);
  g_hash_table_remove_all (call->listeners);
  g_clear_pointer (&call->peer, va_peer_free);
  disconnect_data_channel (call);

  if (call->rtp)
    va_rtp_link_detach (call->rtp);
  if (call->pipeline == NULL) {
    g_clear_pointer (&call->rtp, va_rtp_link_free);
    g_idle_add (report_ended, call);
    return;
  }
  if (call->webrtc)
    g_signal_handlers_disconnect_by_data (call->webrtc, call);
  gst_clear_object (&call->webrtc);
  t = g_new0 (Teardown, 1);
  t->call = call;
  t->pipeline = g_steal_pointer (&call->pipeline);
  t->rtp = g_steal_pointer (&call->rtp);
  t->recorder = g_steal_pointer (&call->recorder);
  if (g_once_init_enter (&teardown_pool)) {
    GThreadPool *pool =
        g_thread_pool_new (teardown_pipeline, NULL, 2, FALSE, NULL);
    g_once_init_leave (&teardown_pool, pool);
  }
  g_thread_pool_push (teardown_pool, t, NULL);
}

static gboolean
max_duration_reached (gpointer data)
{
  VaCall *call = data;

  call->max_duration_timer = 0;
  va_call_end (call, VA_CALL_END_MAX_DURATION, NULL);
  return G_SOURCE_REMOVE;
}

static gboolean
disconnect_timeout (gpointer data)
{
  VaCall *call = data;

  call->disconnect_timer = 0;
  va_call_end (call, VA_CALL_END_DISCONNECTED,
      "ICE stayed disconnected past --disconnect-timeout");
  return G_SOURCE_REMOVE;
}

/* A call whose caller never connects (a POST and nothing after, by mistake
 * or to fill --max-calls) gives its place back. */
static gboolean
connect_timeout (gpointer data)
{
  VaCall *call = data;

  call->connect_timer = 0;
  va_call_end (call, VA_CALL_END_NEVER_CONNECTED,
      "ICE did not connect within --connect-timeout");
  return G_SOURCE_REMOVE;
}

/* ---- Bus ---- */

/* "llmtransform" for an element made by that factory, else "". */
static const gchar *
factory_name_of (GstObject *object)
{
  GstElementFactory *f = GST_IS_ELEMENT (object)
      ? gst_element_get_factory (GST_ELEMENT (object))
      : NULL;

  return f ? GST_OBJECT_NAME (f) : "";
}

/* An element's error or warning, with the debug string that names the
 * cause (redacted on the way out, like every line). */
static void
log_element_problem (VaCall *call, VaLogLevel level, GstMessage *msg,
    const GError *error, const gchar *debug)
{
  VaLogLine *l = va_log_begin (level,
      level == VA_LOG_ERROR ? "call.error" : "call.warning", call->id, 0);

  va_log_add_string (l, "element", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)));
  va_log_add_string (l, "factory", factory_name_of (GST_MESSAGE_SRC (msg)));
  va_log_add_string (l, "msg", error->message);
  va_log_add_string (l, "debug", debug);
  va_log_end (l);
}

static gboolean
on_bus_message (GstBus *bus, GstMessage *msg, gpointer data)
{
  VaCall *call = data;
  GError *error = NULL;
  gchar *debug = NULL;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:
      gst_message_parse_error (msg, &error, &debug);
      GST_WARNING ("call %s: error from %s: %s (%s)", call->id,
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), error->message,
          debug ? debug : "");
      log_element_problem (call, VA_LOG_ERROR, msg, error, debug);
      va_call_end (call, VA_CALL_END_ERROR, error->message);
      break;
    case GST_MESSAGE_WARNING:
      gst_message_parse_warning (msg, &error, &debug);
      GST_INFO ("call %s: warning from %s: %s", call->id,
          GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), error->message);
      log_element_problem (call, VA_LOG_WARNING, msg, error, debug);
      if (call->callbacks.message) {
        GstStructure *s = gst_structure_new ("warning", "element",
            G_TYPE_STRING, GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)), "factory",
            G_TYPE_STRING, factory_name_of (GST_MESSAGE_SRC (msg)), "message",
            G_TYPE_STRING, error->message, NULL);
        call->callbacks.message (call, s, call->user_data);
        gst_structure_free (s);
      }
      break;
    case GST_MESSAGE_ELEMENT:
      if (call->callbacks.message && gst_message_get_structure (msg))
        call->callbacks.message (
            call, gst_message_get_structure (msg), call->user_data);
      break;
    default:
      break;
  }
  g_clear_error (&error);
  g_free (debug);
  return G_SOURCE_CONTINUE;
}

/* ---- Caller negotiation ---- */

static void
caller_answered (
    VaPeer *peer, const gchar *sdp, const GError *error, gpointer data)
{
  VaCall *call = data;

  call->callbacks.answered (call, sdp, error, call->user_data);
  if (error)
    va_call_end (call, VA_CALL_END_NEGOTIATION, error->message);
  else if (call->config->connect_timeout_s > 0)
    call->connect_timer = g_timeout_add_seconds (
        call->config->connect_timeout_s, connect_timeout, call);
}

static void
log_ice (VaCall *call, const gchar *state)
{
  VaLogLine *l = va_log_begin (VA_LOG_INFO, "call.ice", call->id, 0);

  va_log_add_string (l, "state", state);
  va_log_end (l);
}

static void
caller_ice_state (
    VaPeer *peer, GstWebRTCICEConnectionState state, gpointer data)
{
  VaCall *call = data;

  GST_DEBUG ("call %s: ICE state %d", call->id, state);
  switch (state) {
    case GST_WEBRTC_ICE_CONNECTION_STATE_FAILED:
      log_ice (call, "failed");
      va_call_end (call, VA_CALL_END_ICE_FAILED, NULL);
      break;
    case GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED:
      log_ice (call, "disconnected");
      if (call->disconnect_timer == 0)
        call->disconnect_timer = g_timeout_add_seconds (
            call->config->disconnect_timeout_s, disconnect_timeout, call);
      break;
    case GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED:
    case GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED:
      log_ice (call,
          state == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED ? "completed"
                                                             : "connected");
      g_clear_handle_id (&call->disconnect_timer, g_source_remove);
      g_clear_handle_id (&call->connect_timer, g_source_remove);
      break;
    default:
      break;
  }
}

static void
caller_impostor (VaPeer *peer, gpointer data)
{
  va_call_end (data, VA_CALL_END_NEGOTIATION,
      "the caller's DTLS certificate is not the one its offer names");
}

/* (streaming thread) */
static GstPadProbeReturn
caller_audio_probe (GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
  VaCall *call = data;

  g_atomic_int_set (&call->caller_audio_seen, 1);
  return GST_PAD_PROBE_REMOVE;
}

static void
watch_caller_audio (VaCall *call)
{
  GstElement *tap = find_element (call, "caller_tap");
  GstPad *pad;

  if (tap == NULL)
    return;
  pad = gst_element_get_static_pad (tap, "sink");
  gst_pad_add_probe (
      pad, GST_PAD_PROBE_TYPE_BUFFER, caller_audio_probe, call, NULL);
  gst_object_unref (pad);
  gst_object_unref (tap);
}

/* With --record: the recording branch, before the pipeline plays. A call
 * that cannot be recorded (a full disk) goes on unrecorded. */
static void
start_recording (VaCall *call)
{
  GError *error = NULL;

  if (call->record_dir == NULL)
    return;
  call->recorder = va_recorder_attach (call->pipeline, call->record_dir,
      call->id, call->record_max_bytes, &error);
  if (call->recorder == NULL) {
    g_printerr (
        "voiceagent: call %s is not recorded: %s\n", call->id, error->message);
    g_error_free (error);
  }
}

static void
watch_bus (VaCall *call)
{
  GstBus *bus = gst_element_get_bus (call->pipeline);

  call->bus_watch = gst_bus_add_watch (bus, on_bus_message, call);
  gst_object_unref (bus);
}

/* The call's id for the tools' webhooks, and the template's tools file
 * unless the template names one itself. */
static void
configure_llm (VaCall *call, const VaTemplate *tmpl)
{
  GstElement *llm = find_element (call, "llm");
  const gchar *tools = va_template_get_tools_path (tmpl);
  gchar *own = NULL;

  if (llm == NULL)
    return;
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (llm), "call-id"))
    g_object_set (llm, "call-id", call->id, NULL);
  if (tools &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (llm), "tools-file")) {
    g_object_get (llm, "tools-file", &own, NULL);
    if (own == NULL)
      g_object_set (llm, "tools-file", tools, NULL);
    g_free (own);
  }
  gst_object_unref (llm);
}

gboolean
va_call_start (VaCall *call, const VaTemplate *tmpl, GHashTable *vars,
    VaOffer *offer, GError **error)
{
  static const VaPeerCallbacks peer_callbacks = { caller_answered,
    caller_ice_state, caller_impostor };

  call->pipeline = va_template_instantiate (tmpl, vars, error);
  if (call->pipeline == NULL) {
    va_offer_free (offer);
    return FALSE;
  }
  gst_object_set_name (GST_OBJECT (call->pipeline), call->id);
  configure_llm (call, tmpl);
  call->webrtc = gst_bin_get_by_name (GST_BIN (call->pipeline), "webrtc");
  g_signal_connect (
      call->webrtc, "on-data-channel", G_CALLBACK (on_data_channel), call);
  watch_bus (call);
  start_recording (call);

  call->peer = va_peer_new (call->webrtc, call->config->ice_timeout_ms,
      call->config->public_ip, &peer_callbacks, call);
  va_peer_add_ice_servers (
      call->peer, call->config->stun_servers, call->config->turn_servers);
  watch_caller_audio (call);
  restore_history (call);

  if (gst_element_set_state (call->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE,
        "the pipeline of template %s does not start (see the log)",
        va_template_get_name (tmpl));
    va_offer_free (offer);
    return FALSE;
  }
  if (call->config->max_call_s > 0)
    call->max_duration_timer = g_timeout_add_seconds (
        call->config->max_call_s, max_duration_reached, call);
  va_peer_answer (call->peer, offer);
  va_offer_free (offer);
  return TRUE;
}

gboolean
va_call_start_rtp (VaCall *call, const VaTemplate *tmpl, GHashTable *vars,
    VaRtpLink *link, GError **error)
{
  gchar *peer_host = g_strdup (g_hash_table_lookup (vars, "RTP_HOST"));
  guint peer_port = (guint)g_ascii_strtoull (
      g_hash_table_lookup (vars, "RTP_PORT"), NULL, 10);
  gboolean ok = FALSE;

  call->rtp = link;
  call->pipeline = va_template_instantiate (tmpl, vars, error);
  if (call->pipeline == NULL)
    goto out;
  gst_object_set_name (GST_OBJECT (call->pipeline), call->id);
  configure_llm (call, tmpl);
  if (!va_rtp_link_attach (call->rtp, call->pipeline, peer_host, peer_port,
          on_gateway_text, call, error))
    goto out;
  watch_bus (call);
  start_recording (call);
  watch_caller_audio (call);
  restore_history (call);
  if (gst_element_set_state (call->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_STATE_CHANGE,
        "the pipeline of template %s does not start (see the log)",
        va_template_get_name (tmpl));
    goto out;
  }
  if (call->config->max_call_s > 0)
    call->max_duration_timer = g_timeout_add_seconds (
        call->config->max_call_s, max_duration_reached, call);
  ok = TRUE; /* the greeting waits for the caller's audio */
out:
  g_free (peer_host);
  return ok;
}

/* ---- WHEP listeners ---- */

static gboolean listener_connect_timeout (gpointer data);

static void
listener_answered (
    VaPeer *peer, const gchar *sdp, const GError *error, gpointer data)
{
  Listener *l = data;

  /* Before answered(): on an error that removes (frees) the listener. */
  if (error == NULL && l->call->config->connect_timeout_s > 0)
    l->connect_timer = g_timeout_add_seconds (
        l->call->config->connect_timeout_s, listener_connect_timeout, l);
  l->answered (l->call, l->id, sdp, error, l->user_data);
}

/* Releasing a tee's request pad is safe while data flows: tee takes its
 * own locks and unlinks the pad. */
static void
release_tap_pad (GstPad *pad)
{
  GstElement *tee;

  if (pad == NULL)
    return;
  tee = gst_pad_get_parent_element (pad);
  if (tee) {
    gst_element_release_request_pad (tee, pad);
    gst_object_unref (tee);
  }
  gst_object_unref (pad);
}

/* Removes (frees) @l from the source whose id is @source. */
static void
log_listener (Listener *l, const gchar *event, const gchar *why)
{
  VaLogLine *line = va_log_begin (VA_LOG_INFO, event, l->call->id, 0);

  va_log_add_string (line, "listener", l->id);
  va_log_add_string (line, "why", why);
  va_log_end (line);
}

static void
drop_listener_from (Listener *l, guint *source, const gchar *why)
{
  *source = 0;
  GST_INFO ("call %s: listener %s dropped (%s)", l->call->id, l->id, why);
  log_listener (l, "listener.end", why);
  va_call_remove_listener (l->call, l->id);
}

static gboolean
drop_listener (gpointer data)
{
  Listener *l = data;

  drop_listener_from (
      l, &l->drop_idle, "ICE failed, or its certificate is not its offer's");
  return G_SOURCE_REMOVE;
}

static gboolean
listener_connect_timeout (gpointer data)
{
  Listener *l = data;

  drop_listener_from (
      l, &l->connect_timer, "no ICE connection within --connect-timeout");
  return G_SOURCE_REMOVE;
}

/* A listener who left without DELETE would hold its place (and an
 * encoder) until the call ends. Dropped from an idle: the peer is in its
 * own callback here. */
static void
listener_ice_state (
    VaPeer *peer, GstWebRTCICEConnectionState state, gpointer data)
{
  Listener *l = data;

  if (state == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
      state == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED)
    g_clear_handle_id (&l->connect_timer, g_source_remove);
  if ((state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED ||
          state == GST_WEBRTC_ICE_CONNECTION_STATE_CLOSED) &&
      l->drop_idle == 0)
    l->drop_idle = g_idle_add (drop_listener, l);
}

static void
listener_impostor (VaPeer *peer, gpointer data)
{
  Listener *l = data;

  if (l->drop_idle == 0)
    l->drop_idle = g_idle_add (drop_listener, l);
}

static void
listener_free (Listener *l)
{
  GstObject *parent;

  g_clear_handle_id (&l->drop_idle, g_source_remove);
  g_clear_handle_id (&l->connect_timer, g_source_remove);
  g_clear_pointer (&l->peer, va_peer_free);
  release_tap_pad (l->caller_src);
  release_tap_pad (l->agent_src);
  if (l->bin) {
    gst_element_set_locked_state (l->bin, TRUE);
    gst_element_set_state (l->bin, GST_STATE_NULL);
    parent = gst_object_get_parent (GST_OBJECT (l->bin));
    if (parent) {
      gst_bin_remove (GST_BIN (parent), l->bin);
      gst_object_unref (parent);
    }
    gst_object_unref (l->bin);
  }
  g_free (l->id);
  g_free (l);
}

static GstPad *
link_tap (GstElement *tap, GstElement *bin, const gchar *ghost)
{
  GstPad *src = gst_element_request_pad_simple (tap, "src_%u");
  GstPad *sink = gst_element_get_static_pad (bin, ghost);

  if (gst_pad_link (src, sink) != GST_PAD_LINK_OK) {
    gst_element_release_request_pad (tap, src);
    gst_clear_object (&src);
  }
  gst_object_unref (sink);
  return src;
}

static GstElement *
make_listener_bin (gint opus_pt, GError **error)
{
  gchar *desc = g_strdup_printf (
      "audiomixer name=mix "
      "! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 "
      "! opusenc bitrate=32000 frame-size=20 "
      "! rtpopuspay pt=%d ! webrtcbin name=whep bundle-policy=max-bundle "
      "queue name=caller max-size-time=200000000 leaky=downstream ! mix. "
      "queue name=agent max-size-time=200000000 leaky=downstream ! mix.",
      opus_pt);
  GstElement *bin = gst_parse_bin_from_description (desc, FALSE, error);
  GstPad *pad;
  const gchar *const names[] = { "caller", "agent" };
  guint i;

  g_free (desc);
  for (i = 0; bin && i < G_N_ELEMENTS (names); i++) {
    GstElement *q = gst_bin_get_by_name (GST_BIN (bin), names[i]);
    pad = gst_element_get_static_pad (q, "sink");
    gst_element_add_pad (bin, gst_ghost_pad_new (names[i], pad));
    gst_object_unref (pad);
    gst_object_unref (q);
  }
  return bin;
}

gboolean
va_call_add_listener (VaCall *call, const gchar *listener_id, VaOffer *offer,
    VaListenerAnswered answered, gpointer user_data, GError **error)
{
  static const VaPeerCallbacks peer_callbacks = { listener_answered,
    listener_ice_state, listener_impostor };
  GstElement *caller_tap = find_element (call, "caller_tap");
  GstElement *agent_tap = find_element (call, "agent_tap");
  GstElement *webrtc;
  GstBin *parent;
  Listener *l = NULL;
  gboolean ok = FALSE;

  if (caller_tap == NULL || agent_tap == NULL ||
      !g_atomic_int_get (&call->caller_audio_seen)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_BUSY,
        "the call has no live audio yet");
    goto out;
  }
  l = g_new0 (Listener, 1);
  l->call = call;
  l->id = g_strdup (listener_id);
  l->answered = answered;
  l->user_data = user_data;
  l->bin = make_listener_bin (offer->opus_pt, error);
  if (l->bin == NULL)
    goto out;
  gst_object_ref (l->bin);
  /* Beside the taps: a link cannot cross into another bin. */
  parent = GST_BIN (gst_object_get_parent (GST_OBJECT (caller_tap)));
  gst_bin_add (parent, l->bin);
  gst_object_unref (parent);
  gst_element_sync_state_with_parent (l->bin);
  l->caller_src = link_tap (caller_tap, l->bin, "caller");
  l->agent_src = link_tap (agent_tap, l->bin, "agent");
  if (l->caller_src == NULL || l->agent_src == NULL) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_PAD,
        "cannot link the call's audio to the listener");
    goto out;
  }
  webrtc = gst_bin_get_by_name (GST_BIN (l->bin), "whep");
  l->peer = va_peer_new (webrtc, call->config->ice_timeout_ms,
      call->config->public_ip, &peer_callbacks, l);
  gst_object_unref (webrtc);
  va_peer_add_ice_servers (
      l->peer, call->config->stun_servers, call->config->turn_servers);
  g_hash_table_insert (call->listeners, l->id, l);
  log_listener (l, "listener.start", NULL);
  va_peer_answer (l->peer, offer);
  l = NULL;
  ok = TRUE;
out:
  if (l)
    listener_free (l);
  va_offer_free (offer);
  gst_clear_object (&caller_tap);
  gst_clear_object (&agent_tap);
  return ok;
}

VaPeer *
va_call_get_listener (VaCall *call, const gchar *listener_id)
{
  Listener *l = g_hash_table_lookup (call->listeners, listener_id);

  return l ? l->peer : NULL;
}

gboolean
va_call_remove_listener (VaCall *call, const gchar *listener_id)
{
  Listener *l = g_hash_table_lookup (call->listeners, listener_id);

  if (l == NULL)
    return FALSE;
  g_hash_table_remove (call->listeners, listener_id);
  listener_free (l);
  return TRUE;
}

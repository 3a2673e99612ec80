/* voiceagent-loadgen: one scripted caller and what it measured.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Two threads touch a caller: the feeder thread (lg_caller_tick, every
 * 20 ms) sends its audio and moves its script on; a streaming thread of
 * its pipeline hands over the audio it receives (on_audio). Both take
 * `lock`. Times are g_get_monotonic_time() microseconds; a packet pushed
 * at T is taken to hold the audio of [T - 20 ms, T], as a microphone's
 * would, and a received buffer likewise ends at its arrival.
 */
#include <string.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include "lg-caller.h"
#include "whip-caller.h"

#define MS 1000
/* Agent audio still heard this long after the caller talks over it: the
 * barge-in failed. */
#define BARGE_GIVE_UP_US (3000 * MS)
/* Silence this long after the last agent audio: it has stopped. Longer
 * than the tone engine's pauses at punctuation (250 ms). */
#define BARGE_QUIET_US (400 * MS)
#define LISTEN_LIMIT_US (90 * G_USEC_PER_SEC)

typedef enum {
  STATE_IDLE, /* not connected yet, or finished */
  STATE_PAUSE, /* silent until next_at, then speaks turn `turn` */
  STATE_SPEAKING,
  STATE_WAIT_REPLY,
  STATE_LISTEN, /* the reply plays; waits for it to end */
  STATE_TALKED_OVER, /* the reply plays; the next turn starts at next_at */
} CallerState;

struct _LgCaller
{
  const LgScript *script; /* not owned; read-only */
  gchar **urls, *token; /* read-only */
  guint url; /* index of the instance called; lock */
  guint index; /* read-only */
  /* Replaced on resume, under lock; the old one is freed outside it (its
   * streaming threads may be waiting for the lock). */
  WhipCaller *whip;
  gchar *resume_token; /* from the answer; lock */

  GMutex lock;
  CallerState state; /* lock */
  guint turn; /* index into script->turns; lock */
  guint pos; /* next packet of the turn's clip; lock */
  gint64 next_at; /* lock */
  gint64 clip_t0; /* when the clip's first sample was sent; lock */
  gint64 speech_end; /* lock */
  gint64 reply_deadline; /* lock */
  gint64 last_loud; /* end of the last loud audio received; lock */
  gint64 listen_since; /* lock */
  gboolean barge_active; /* lock */
  gint64 barge_onset; /* lock */
  gboolean barge_vad_seen; /* lock */
  LgResults results; /* lock */
};

/* ---------- script ---------- */

static gboolean
parse_line (LgScript *s, const gchar *line, guint lineno, GError **error)
{
  LgTurn *turn;
  const gchar *text;

  if (g_str_has_prefix (line, "say "))
    text = line + 4;
  else if (g_str_has_prefix (line, "interrupt "))
    text = line + 10;
  else {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "line %u: expected \"say TEXT\" or \"interrupt TEXT\"", lineno);
    return FALSE;
  }
  turn = g_new0 (LgTurn, 1);
  turn->kind = line[0] == 's' ? LG_TURN_SAY : LG_TURN_INTERRUPT;
  turn->clip = lg_clip_render (g_strstrip ((gchar *)text), error);
  if (turn->clip == NULL) {
    g_free (turn);
    g_prefix_error (error, "line %u: ", lineno);
    return FALSE;
  }
  g_ptr_array_add (s->turns, turn);
  return TRUE;
}

static void
turn_free (LgTurn *turn)
{
  lg_clip_free (turn->clip);
  g_free (turn);
}

LgScript *
lg_script_load (const gchar *path, GError **error)
{
  LgScript *s = g_new0 (LgScript, 1);
  gchar *text = NULL, **lines = NULL;
  gboolean ok;
  guint i;

  s->turns = g_ptr_array_new_with_free_func ((GDestroyNotify)turn_free);
  s->silence = lg_silence_packet ();
  ok = g_file_get_contents (path, &text, NULL, error);
  if (ok)
    lines = g_strsplit (text, "\n", -1);
  for (i = 0; ok && lines[i]; i++) {
    gchar *line = g_strstrip (lines[i]);
    if (line[0] != '\0' && line[0] != '#')
      ok = parse_line (s, line, i + 1, error);
  }
  if (ok && s->turns->len == 0) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
        "%s: no turns (lines \"say TEXT\" or \"interrupt TEXT\")", path);
    ok = FALSE;
  }
  g_strfreev (lines);
  g_free (text);
  if (!ok) {
    lg_script_free (s);
    return NULL;
  }
  return s;
}

void
lg_script_free (LgScript *s)
{
  if (s == NULL)
    return;
  g_ptr_array_unref (s->turns);
  g_bytes_unref (s->silence);
  g_free (s);
}

/* ---------- results ---------- */

void
lg_results_init (LgResults *r)
{
  memset (r, 0, sizeof *r);
  r->v2v_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->barge_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->barge_vad_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->server_stt_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->server_llm_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->server_tts_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->server_v2v_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->jitter_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
  r->resume_ms = g_array_new (FALSE, FALSE, sizeof (gdouble));
}

void
lg_results_clear (LgResults *r)
{
  g_array_unref (r->v2v_ms);
  g_array_unref (r->barge_ms);
  g_array_unref (r->barge_vad_ms);
  g_array_unref (r->server_stt_ms);
  g_array_unref (r->server_llm_ms);
  g_array_unref (r->server_tts_ms);
  g_array_unref (r->server_v2v_ms);
  g_array_unref (r->jitter_ms);
  g_array_unref (r->resume_ms);
}

static void
append_all (GArray *into, const GArray *from)
{
  g_array_append_vals (into, from->data, from->len);
}

void
lg_results_merge (LgResults *into, const LgResults *from)
{
  append_all (into->v2v_ms, from->v2v_ms);
  append_all (into->barge_ms, from->barge_ms);
  append_all (into->barge_vad_ms, from->barge_vad_ms);
  append_all (into->server_stt_ms, from->server_stt_ms);
  append_all (into->server_llm_ms, from->server_llm_ms);
  append_all (into->server_tts_ms, from->server_tts_ms);
  append_all (into->server_v2v_ms, from->server_v2v_ms);
  append_all (into->jitter_ms, from->jitter_ms);
  append_all (into->resume_ms, from->resume_ms);
  into->calls_lost += from->calls_lost;
  into->calls_resumed += from->calls_resumed;
  into->turns += from->turns;
  into->turns_failed += from->turns_failed;
  into->barge_ins += from->barge_ins;
  into->barge_failed += from->barge_failed;
  into->barge_unmeasured += from->barge_unmeasured;
  into->calls += from->calls;
  into->calls_failed += from->calls_failed;
  into->calls_dropped += from->calls_dropped;
  into->packets_received += from->packets_received;
  into->packets_lost += from->packets_lost;
}

static void
add_ms (GArray *a, gdouble ms)
{
  g_array_append_val (a, ms);
}

/* ---------- received audio ---------- */

static const LgTurn *
current_turn (LgCaller *c)
{
  return g_ptr_array_index (c->script->turns, c->turn);
}

static void
on_loud_audio (LgCaller *c, gint64 start, gint64 end)
{
  c->last_loud = end;
  if (c->barge_active)
    return; /* the reply being talked over, not a new one */
  if (c->state == STATE_WAIT_REPLY && start > c->speech_end) {
    add_ms (c->results.v2v_ms, (start - c->speech_end) / (gdouble)MS);
    if (c->script->verbose)
      g_print ("caller %u turn %u: voice-to-voice %.1f ms\n", c->index, c->turn,
          (start - c->speech_end) / (gdouble)MS);
    c->results.turns++;
    c->listen_since = start;
    c->state = current_turn (c)->kind == LG_TURN_INTERRUPT ? STATE_TALKED_OVER
                                                           : STATE_LISTEN;
    c->next_at = start + c->script->barge_after_ms * (gint64)MS;
  }
}

static void
on_audio (const gint16 *pcm, gsize n, gint64 arrival, gpointer data)
{
  LgCaller *c = data;
  gint64 start, end;

  if (!lg_find_loud_times (pcm, n, arrival, c->script->loud_rms, &start, &end))
    return;
  g_mutex_lock (&c->lock);
  on_loud_audio (c, start, end);
  g_mutex_unlock (&c->lock);
}

/* ---------- the script, tick by tick ---------- */

static void
start_turn (LgCaller *c, gint64 now, gboolean talking_over)
{
  c->state = STATE_SPEAKING;
  c->pos = 0;
  c->clip_t0 = now - LG_FRAME_MS * MS;
  c->speech_end = c->clip_t0 + current_turn (c)->clip->speech_end_ms * MS;
  if (talking_over) {
    c->barge_active = TRUE;
    c->barge_vad_seen = FALSE;
    c->barge_onset = c->clip_t0 + current_turn (c)->clip->speech_start_ms * MS;
    c->results.barge_ins++;
  }
}

static void
next_turn (LgCaller *c, gint64 now, gboolean talking_over)
{
  c->turn = (c->turn + 1) % c->script->turns->len;
  if (talking_over) {
    start_turn (c, now, TRUE);
  } else {
    c->state = STATE_PAUSE;
    c->next_at = now + c->script->think_ms * (gint64)MS;
  }
}

static void
judge_barge_in (LgCaller *c, gint64 now)
{
  gint64 heard_until = MAX (c->last_loud, c->barge_onset);

  if (now - c->barge_onset > BARGE_GIVE_UP_US) {
    c->results.barge_failed++;
    c->barge_active = FALSE;
  } else if (now - heard_until >= BARGE_QUIET_US &&
      c->last_loud <= c->barge_onset) {
    /* The agent was in a pause (or done) at the onset: nothing to stop. */
    c->results.barge_unmeasured++;
    c->barge_active = FALSE;
  } else if (now - heard_until >= BARGE_QUIET_US) {
    gdouble ms = (c->last_loud - c->barge_onset) / (gdouble)MS;
    add_ms (c->results.barge_ms, ms);
    if (c->script->verbose)
      g_print ("caller %u turn %u: barge-in %.1f ms\n", c->index, c->turn, ms);
    c->barge_active = FALSE;
  }
}

static gboolean
reply_over (LgCaller *c, gint64 now)
{
  return now - c->last_loud > c->script->quiet_ms * (gint64)MS ||
      now - c->listen_since > LISTEN_LIMIT_US;
}

static void
advance (LgCaller *c, gint64 now)
{
  switch (c->state) {
    case STATE_PAUSE:
      if (now >= c->next_at)
        start_turn (c, now, FALSE);
      break;
    case STATE_WAIT_REPLY:
      if (now > c->reply_deadline) {
        c->results.turns++;
        c->results.turns_failed++;
        next_turn (c, now, FALSE);
      }
      break;
    case STATE_LISTEN:
      if (reply_over (c, now))
        next_turn (c, now, FALSE);
      break;
    case STATE_TALKED_OVER:
      if (reply_over (c, now)) {
        c->results.barge_unmeasured++; /* the reply was too short */
        next_turn (c, now, FALSE);
      } else if (now >= c->next_at) {
        next_turn (c, now, TRUE);
      }
      break;
    default:
      break;
  }
  if (c->barge_active)
    judge_barge_in (c, now);
}

static GBytes *
next_packet (LgCaller *c)
{
  const LgClip *clip;

  if (c->state != STATE_SPEAKING)
    return c->script->silence;
  clip = current_turn (c)->clip;
  if (c->pos + 1 == clip->packets->len) {
    c->reply_deadline =
        c->speech_end + c->script->reply_timeout_ms * (gint64)MS;
    c->state = STATE_WAIT_REPLY;
  }
  return g_ptr_array_index (clip->packets, c->pos++);
}

/* The server saw the caller start talking over the reply: how long after
 * the onset (20 ms resolution: events are read on the tick). */
static void
take_vad_event (LgCaller *c, JsonObject *o, gint64 now)
{
  if (!c->barge_active || c->barge_vad_seen ||
      !json_object_get_boolean_member_with_default (o, "speaking", FALSE))
    return;
  c->barge_vad_seen = TRUE;
  add_ms (c->results.barge_vad_ms, (now - c->barge_onset) / (gdouble)MS);
}

static void
take_event (LgCaller *c, const gchar *text, gint64 now)
{
  JsonNode *node = json_from_string (text, NULL);
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node)
      ? json_node_get_object (node)
      : NULL;
  const struct
  {
    const gchar *name;
    GArray *into;
  } fields[] = {
    { "stt_ms", c->results.server_stt_ms },
    { "llm_ttft_ms", c->results.server_llm_ms },
    { "tts_ttfb_ms", c->results.server_tts_ms },
    { "voice_to_voice_ms", c->results.server_v2v_ms },
  };
  guint i;

  const gchar *type =
      o ? json_object_get_string_member_with_default (o, "type", "") : "";

  if (c->script->verbose)
    g_print ("caller %u: %+.0f ms after speech end: %.300s\n", c->index,
        (now - c->speech_end) / (gdouble)MS, text);
  if (g_str_equal (type, "vad"))
    take_vad_event (c, o, now);
  if (g_str_equal (type, "metrics")) {
    for (i = 0; i < G_N_ELEMENTS (fields); i++) {
      if (json_object_has_member (o, fields[i].name))
        add_ms (
            fields[i].into, json_object_get_double_member (o, fields[i].name));
    }
  }
  if (node)
    json_node_unref (node);
}

void
lg_caller_tick (LgCaller *c, gint64 now)
{
  GBytes *packet;
  gchar *event;

  g_mutex_lock (&c->lock);
  if (c->state == STATE_IDLE) {
    g_mutex_unlock (&c->lock);
    return;
  }
  advance (c, now);
  packet = next_packet (c);
  /* Under the lock: a resume may swap the caller. Neither call blocks. */
  whip_caller_push_opus (
      c->whip, g_bytes_get_data (packet, NULL), g_bytes_get_size (packet));
  while ((event = whip_caller_pop_message (c->whip, 0)) != NULL) {
    take_event (c, event, now);
    g_free (event);
  }
  g_mutex_unlock (&c->lock);
}

/* ---------- life cycle ---------- */

static WhipCaller *
new_whip (LgCaller *c, guint url, const gchar *resume_token)
{
  WhipCallerOptions o = {
    .url = c->urls[url],
    .data_channel = !c->script->no_data_channel,
    .token = c->token,
    .opus_source = TRUE,
    .on_audio = on_audio,
    .user_data = c,
    .resume = resume_token,
  };

  return whip_caller_new (&o);
}

LgCaller *
lg_caller_new (
    gchar **urls, const LgScript *script, guint index, const gchar *token)
{
  LgCaller *c = g_new0 (LgCaller, 1);

  c->script = script;
  c->urls = g_strdupv (urls);
  c->url = index % g_strv_length (urls);
  c->token = g_strdup (token);
  c->index = index;
  /* Every caller starts at the first line: the emulator's scripted
   * recognizer hears each new connection's lines from the top. */
  c->turn = 0;
  g_mutex_init (&c->lock);
  lg_results_init (&c->results);
  c->whip = new_whip (c, c->url, NULL);
  return c;
}

gboolean
lg_caller_connect (LgCaller *c)
{
  GError *error = NULL;
  guint status = whip_caller_connect (c->whip, &error);
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&c->lock);
  c->results.calls++;
  g_free (c->resume_token);
  c->resume_token = g_strdup (
      whip_caller_get_response_header (c->whip, "Voiceagent-Resume-Token"));
  if (status == 201) {
    /* Let a greeting play out before the first turn. */
    c->state = STATE_LISTEN;
    c->last_loud = c->listen_since = now;
  } else {
    c->results.calls_failed++;
    g_printerr ("loadgen: call failed: HTTP %u %s\n", status,
        error ? error->message : "");
  }
  g_mutex_unlock (&c->lock);
  g_clear_error (&error);
  return status == 201;
}

/* Only the checker thread replaces c->whip, so it may use it unlocked;
 * the feeder must never wait on this GET. */
static gboolean
instance_reachable (LgCaller *c)
{
  gboolean idle;

  g_mutex_lock (&c->lock);
  idle = c->state == STATE_IDLE;
  g_mutex_unlock (&c->lock);
  /* 0: no HTTP answer at all */
  return idle || whip_caller_request (c->whip, "GET", NULL, NULL, NULL) != 0;
}

/* Swaps in a caller that resumed the call; the turn in progress starts
 * again (what was said may not have reached the dead instance's state). */
static void
take_resumed (LgCaller *c, WhipCaller *fresh, gint64 lost_at)
{
  WhipCaller *old;
  gint64 now = g_get_monotonic_time ();

  g_mutex_lock (&c->lock);
  old = c->whip;
  c->whip = fresh;
  c->results.calls_resumed++;
  add_ms (c->results.resume_ms, (now - lost_at) / (gdouble)MS);
  g_free (c->resume_token);
  c->resume_token = g_strdup (
      whip_caller_get_response_header (fresh, "Voiceagent-Resume-Token"));
  c->barge_active = FALSE;
  c->turn = 0; /* the new recognizer connection starts from the top */
  c->state = STATE_PAUSE;
  c->next_at = now + c->script->think_ms * (gint64)MS;
  g_mutex_unlock (&c->lock);
  whip_caller_free (old);
}

/* Offers again with @token to each other instance until one answers:
 * the first with room takes the call (or redirects to one that has). */
static WhipCaller *
resume_anywhere (LgCaller *c, const gchar *token, guint *status)
{
  guint n = g_strv_length (c->urls), k, url;
  WhipCaller *fresh = NULL;

  *status = 0;
  for (k = 1; token && k <= n && *status == 0; k++) {
    url = (c->url + k) % n;
    whip_caller_free (fresh);
    fresh = new_whip (c, url, token);
    *status = whip_caller_connect (fresh, NULL);
    if (*status == 201)
      c->url = url; /* only this thread reads it while the call is lost */
  }
  return fresh;
}

void
lg_caller_check (LgCaller *c)
{
  gint64 lost_at = g_get_monotonic_time ();
  WhipCaller *fresh;
  gchar *token;
  guint status;

  if (instance_reachable (c))
    return;
  g_mutex_lock (&c->lock);
  c->results.calls_lost++;
  token = g_strdup (c->resume_token);
  c->state = STATE_IDLE; /* nothing to send to until resumed */
  g_mutex_unlock (&c->lock);
  if (c->script->verbose)
    g_print ("caller %u: instance gone, resuming\n", c->index);
  fresh = resume_anywhere (c, token, &status);
  if (status == 201) {
    take_resumed (c, fresh, lost_at);
  } else {
    g_printerr (
        "loadgen: caller %u could not resume (HTTP %u)\n", c->index, status);
    g_mutex_lock (&c->lock);
    c->results.calls_dropped++;
    g_mutex_unlock (&c->lock);
    whip_caller_free (fresh);
  }
  g_free (token);
}

void
lg_caller_finish (LgCaller *c, LgResults *into)
{
  WhipCallerRtpStats rtp;
  gboolean connected;

  g_mutex_lock (&c->lock);
  connected = c->state != STATE_IDLE;
  c->state = STATE_IDLE;
  g_mutex_unlock (&c->lock);
  if (connected) {
    if (whip_caller_get_rtp_stats (c->whip, &rtp)) {
      c->results.packets_received += rtp.packets_received;
      c->results.packets_lost += MAX (rtp.packets_lost, 0);
      add_ms (c->results.jitter_ms, rtp.jitter_ms);
    }
    /* The server no longer knows the call: it dropped it. */
    if (whip_caller_hangup (c->whip) != 200)
      c->results.calls_dropped++;
  }
  g_mutex_lock (&c->lock);
  lg_results_merge (into, &c->results);
  g_mutex_unlock (&c->lock);
}

void
lg_caller_free (LgCaller *c)
{
  if (c == NULL)
    return;
  whip_caller_free (c->whip);
  lg_results_clear (&c->results);
  g_strfreev (c->urls);
  g_free (c->token);
  g_free (c->resume_token);
  g_mutex_clear (&c->lock);
  g_free (c);
}

/* voiceagent-turnbench: one caller playing the corpus, and what it saw.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * As in tests/loadgen/lg-caller.c, two threads touch a caller: the feeder
 * (tb_caller_tick, every 20 ms) sends audio and moves the script on; a
 * streaming thread hands over received audio (on_audio). Both take `lock`.
 * A packet pushed at T holds the audio of [T - 20 ms, T]; a received
 * buffer ends at its arrival.
 *
 * The caller speaks a turn (pauses included), waits for the reply's first
 * audio, then says the turn's backchannels, noise bursts and interrupts at
 * ACTION_FIRST_MS after it, ACTION_EVERY_MS apart, and listens until the
 * agent has been quiet for QUIET_MS before the next turn.
 */
#include <math.h>
#include <string.h>
#include <json-glib/json-glib.h>
#include "tb-caller.h"
#include "whip-caller.h"

#define MS 1000
#define ACTION_FIRST_MS 800
#define ACTION_EVERY_MS 1500
/* The agent is quiet for longer than this between a reply and the reply to
 * a turn that cut it off (end of turn, LLM, TTS), so a reply is over. */
#define QUIET_MS 1500
#define THINK_MS 400
#define REPLY_TIMEOUT_MS 10000
#define LISTEN_LIMIT_MS 60000
/* The agent has stopped after this much silence: longer than the tone
 * voice's pauses at punctuation (250 ms) with some network jitter. */
#define GAP_MS 400
/* A stopped agent that is not back within this long was stopped for good. */
#define RESUME_LIMIT_MS 3000
/* Silence after an action's end that still counts as caused by it. */
#define ACTION_WINDOW_MS 1500

typedef enum {
  STATE_IDLE, /* not connected */
  STATE_GREETING, /* a greeting may play; waits for quiet */
  STATE_PAUSE, /* silent until next_at, then speaks item `item` */
  STATE_SPEAKING,
  STATE_WAIT_REPLY, /* after a turn or an interrupt */
  STATE_LISTEN, /* the reply plays; actions at next_at */
  STATE_DONE,
} State;

struct _TbCaller
{
  const TbScript *script;
  WhipCaller *whip;
  guint index;

  GMutex lock;
  State state; /* lock */
  guint item; /* the item being said or acted on; lock */
  guint pos; /* next packet of its clip; lock */
  gint64 clip_t0; /* when the clip's first sample was sent; lock */
  gint64 next_at; /* lock */
  gint64 wait_since; /* lock */
  gint64 last_loud; /* end of the last agent audio; lock */
  gint64 since; /* start of the state; lock */
  GPtrArray *turns; /* (element-type TbTurn*); lock */
  TbAction *barge; /* an interrupt being measured; lock */
};

/* ---------- helpers ---------- */

static const TbItem *
item_at (TbCaller *c, guint i)
{
  const GPtrArray *items = c->script->corpus->items;
  return i < items->len ? items->pdata[i] : NULL;
}

static TbTurn *
cur_turn (TbCaller *c)
{
  return c->turns->len ? c->turns->pdata[c->turns->len - 1] : NULL;
}

static TbAction *
last_action (TbCaller *c)
{
  TbTurn *t = cur_turn (c);
  return t && t->actions->len
      ? &g_array_index (t->actions, TbAction, t->actions->len - 1)
      : NULL;
}

/* The actions that follow turn @i in the corpus. */
static guint
actions_after (TbCaller *c, guint i)
{
  guint n = 0;

  while (item_at (c, i + 1 + n) && item_at (c, i + 1 + n)->kind != TB_TURN)
    n++;
  return n;
}

static void
turn_free (TbTurn *t)
{
  g_array_unref (t->actions);
  g_free (t);
}

static void
log_v (TbCaller *c, const gchar *what, gdouble ms)
{
  if (c->script->verbose)
    g_print ("caller %u item %u: %s %.0f ms\n", c->index, c->item, what, ms);
}

/* ---------- received audio ---------- */

/* Agent audio from @start to @end: a cut-in, a reply's first audio, an
 * agent audible again after a pause. */
static void
on_loud (TbCaller *c, gint64 start, gint64 end)
{
  TbTurn *t = cur_turn (c);
  gboolean new_run = start - c->last_loud >= GAP_MS * MS;

  c->last_loud = MAX (c->last_loud, end);
  if (!t)
    return;
  if (c->state == STATE_SPEAKING && item_at (c, c->item)->kind == TB_TURN &&
      !t->cut_in_at && start < t->speech_end) {
    t->cut_in_at = start;
    t->cut_in_pause = -1;
    for (guint i = 0; i < t->item->pauses->len; i++)
      if (t->t0 + g_array_index (t->item->pauses, TbPause, i).start_ms * MS <=
          start)
        t->cut_in_pause = (gint)i;
    log_v (c, "cut in", (start - t->t0) / (gdouble)MS);
  }
  if (c->state == STATE_WAIT_REPLY && start > c->wait_since &&
      (new_run || t->cut_in_at || !t->reply_at)) {
    if (!t->reply_at)
      t->reply_at = start;
    c->state = STATE_LISTEN;
    c->since = start;
    c->next_at = start + ACTION_FIRST_MS * MS;
    log_v (c, "reply after", (start - c->wait_since) / (gdouble)MS);
  }
  for (guint i = 0; i < t->actions->len; i++) {
    TbAction *a = &g_array_index (t->actions, TbAction, i);
    if (a->gap_start && !a->resumed_at && start > a->gap_start)
      a->resumed_at = start;
  }
}

static void
on_audio (const gint16 *pcm, gsize n, gint64 arrival, gpointer data)
{
  TbCaller *c = data;
  gint64 start, end;

  if (!lg_find_loud_times (pcm, n, arrival, c->script->loud_rms, &start, &end))
    return;
  g_mutex_lock (&c->lock);
  on_loud (c, start, end);
  g_mutex_unlock (&c->lock);
}

/* ---------- data-channel events ---------- */

static void
take_event (TbCaller *c, const gchar *text, gint64 now)
{
  g_autoptr (JsonNode) node = json_from_string (text, NULL);
  JsonObject *o = node && JSON_NODE_HOLDS_OBJECT (node)
      ? json_node_get_object (node)
      : NULL;
  const gchar *type =
      o ? json_object_get_string_member_with_default (o, "type", "") : "";
  TbTurn *t = cur_turn (c);
  TbAction *a = last_action (c);
  gboolean before_reply = t && !t->reply_at;

  if (c->script->verbose)
    g_print ("caller %u item %u: %.200s\n", c->index, c->item, text);
  if (!t)
    return;
  if (g_str_equal (type, "turn") && before_reply &&
      g_strcmp0 (json_object_get_string_member_with_default (o, "state", ""),
          "committed") == 0)
    t->committed_at = now;
  if (g_str_equal (type, "transcript") && before_reply &&
      g_strcmp0 (json_object_get_string_member_with_default (o, "role", ""),
          "user") == 0 &&
      json_object_get_boolean_member_with_default (o, "final", FALSE))
    t->last_final_at = now;
  if (g_str_equal (type, "interrupted") && a && now >= a->onset)
    a->interrupted_event = TRUE;
}

/* ---------- the script, tick by tick ---------- */

static void
start_item (TbCaller *c, guint i, gint64 now)
{
  const TbItem *it = item_at (c, i);
  gint64 t0;

  c->item = i;
  c->state = STATE_SPEAKING;
  c->pos = 0;
  c->clip_t0 = now - LG_FRAME_MS * MS;
  t0 = c->clip_t0 + it->clip->speech_start_ms * (gint64)MS;
  if (it->kind == TB_TURN) {
    TbTurn *t = g_new0 (TbTurn, 1);
    t->item = it;
    t->t0 = t0;
    t->speech_end = c->clip_t0 + it->clip->speech_end_ms * (gint64)MS;
    t->cut_in_pause = -1;
    /* sized once: c->barge points into it */
    t->actions = g_array_sized_new (
        FALSE, TRUE, sizeof (TbAction), actions_after (c, i));
    g_ptr_array_add (c->turns, t);
  } else {
    TbAction a = { 0 };
    a.item = it;
    a.onset = t0;
    a.end = c->clip_t0 + it->clip->speech_end_ms * (gint64)MS;
    a.barge_ms = -1;
    a.agent_was_talking = now - c->last_loud < GAP_MS * MS;
    g_array_append_val (cur_turn (c)->actions, a);
    if (it->kind == TB_INTERRUPT)
      c->barge = last_action (c);
  }
}

/* After the clip of the item being said. */
static void
item_said (TbCaller *c, gint64 now)
{
  const TbItem *it = item_at (c, c->item);

  if (it->kind == TB_TURN || it->kind == TB_INTERRUPT) {
    c->state = STATE_WAIT_REPLY;
    c->wait_since = c->clip_t0 + it->clip->speech_end_ms * (gint64)MS;
  } else {
    c->state = STATE_LISTEN;
    c->next_at = now + ACTION_EVERY_MS * MS -
        it->clip->packets->len * (gint64)LG_FRAME_MS * MS;
  }
}

/* An interrupt: onset → the agent's audio stopped (as lg-caller). */
static void
judge_barge (TbCaller *c, gint64 now)
{
  TbAction *a = c->barge;
  gint64 heard_until = MAX (c->last_loud, a->onset);

  if (now - a->onset > RESUME_LIMIT_MS * MS) {
    a->barge_failed = TRUE;
    c->barge = NULL;
  } else if (now - heard_until >= GAP_MS * MS) {
    if (c->last_loud > a->onset)
      a->barge_ms = (c->last_loud - a->onset) / (gdouble)MS;
    log_v (c, "barge-in", a->barge_ms);
    c->barge = NULL;
  }
}

/* Backchannels and noise: the agent fell silent after one (a gap of
 * GAP_MS starting between its onset and ACTION_WINDOW_MS after its end).
 * A gap belongs to the latest action said before it. */
static void
watch_gaps (TbCaller *c, gint64 now)
{
  TbTurn *t = cur_turn (c);
  TbAction *a = NULL;

  if (!t || now - c->last_loud < GAP_MS * MS)
    return;
  for (guint i = t->actions->len; i > 0 && !a; i--) {
    TbAction *x = &g_array_index (t->actions, TbAction, i - 1);
    if (x->onset < c->last_loud)
      a = x;
  }
  if (a && a->item->kind != TB_INTERRUPT && !a->gap_start &&
      a->agent_was_talking && c->last_loud <= a->end + ACTION_WINDOW_MS * MS)
    a->gap_start = c->last_loud;
}

static void
next_turn (TbCaller *c, gint64 now)
{
  guint i = c->item + 1;

  while (item_at (c, i) && item_at (c, i)->kind != TB_TURN)
    i++; /* actions of a turn that never got a reply were said already */
  c->item = i;
  c->state = item_at (c, i) ? STATE_PAUSE : STATE_DONE;
  c->next_at = now + THINK_MS * MS;
}

static void
listen (TbCaller *c, gint64 now)
{
  const TbItem *next = item_at (c, c->item + 1);

  if (next && next->kind != TB_TURN) {
    if (now >= c->next_at)
      start_item (c, c->item + 1, now);
  } else if ((now - c->last_loud >= QUIET_MS * MS && !c->barge) ||
      now - c->since > LISTEN_LIMIT_MS * MS) {
    next_turn (c, now);
  }
}

static void
advance (TbCaller *c, gint64 now)
{
  switch (c->state) {
    case STATE_GREETING:
      if (now - MAX (c->last_loud, c->since) >= QUIET_MS * MS)
        start_item (c, 0, now);
      break;
    case STATE_PAUSE:
      if (now >= c->next_at)
        start_item (c, c->item, now);
      break;
    case STATE_WAIT_REPLY:
      if (now - c->wait_since > REPLY_TIMEOUT_MS * MS) {
        log_v (c, "no reply after", REPLY_TIMEOUT_MS);
        c->state = STATE_LISTEN;
        c->since = now;
        c->next_at = now;
      }
      break;
    case STATE_LISTEN:
      listen (c, now);
      break;
    default:
      break;
  }
  if (c->barge)
    judge_barge (c, now);
  watch_gaps (c, now);
}

static GBytes *
next_packet (TbCaller *c, gint64 now)
{
  const LgClip *clip;

  if (c->state != STATE_SPEAKING)
    return c->script->silence;
  clip = item_at (c, c->item)->clip;
  if (c->pos + 1 >= clip->packets->len) {
    GBytes *last = g_ptr_array_index (clip->packets, c->pos);
    item_said (c, now);
    return last;
  }
  return g_ptr_array_index (clip->packets, c->pos++);
}

void
tb_caller_tick (TbCaller *c, gint64 now)
{
  GBytes *packet;
  gchar *event;

  g_mutex_lock (&c->lock);
  if (c->state == STATE_IDLE) {
    g_mutex_unlock (&c->lock);
    return;
  }
  advance (c, now);
  packet = next_packet (c, now);
  whip_caller_push_opus (
      c->whip, g_bytes_get_data (packet, NULL), g_bytes_get_size (packet));
  while ((event = whip_caller_pop_message (c->whip, 0)) != NULL) {
    take_event (c, event, now);
    g_free (event);
  }
  g_mutex_unlock (&c->lock);
}

/* ---------- life cycle ---------- */

TbCaller *
tb_caller_new (const gchar *url, const TbScript *script, guint index)
{
  TbCaller *c = g_new0 (TbCaller, 1);
  WhipCallerOptions o = {
    .url = url,
    .data_channel = TRUE,
    .opus_source = TRUE,
    .on_audio = on_audio,
    .user_data = c,
  };

  c->script = script;
  c->index = index;
  c->turns = g_ptr_array_new_with_free_func ((GDestroyNotify)turn_free);
  g_mutex_init (&c->lock);
  c->whip = whip_caller_new (&o);
  return c;
}

gboolean
tb_caller_connect (TbCaller *c)
{
  g_autoptr (GError) error = NULL;
  guint status = whip_caller_connect (c->whip, &error);

  g_mutex_lock (&c->lock);
  if (status == 201) {
    c->state = STATE_GREETING;
    c->since = g_get_monotonic_time ();
  } else {
    g_printerr ("turnbench: call failed: HTTP %u %s\n", status,
        error ? error->message : "");
  }
  g_mutex_unlock (&c->lock);
  return status == 201;
}

gboolean
tb_caller_done (TbCaller *c)
{
  gboolean done;

  g_mutex_lock (&c->lock);
  done = c->state == STATE_DONE;
  g_mutex_unlock (&c->lock);
  return done;
}

GPtrArray *
tb_caller_finish (TbCaller *c)
{
  whip_caller_hangup (c->whip);
  g_mutex_lock (&c->lock);
  c->state = STATE_IDLE;
  g_mutex_unlock (&c->lock);
  return c->turns;
}

void
tb_caller_free (TbCaller *c)
{
  if (!c)
    return;
  whip_caller_free (c->whip);
  g_ptr_array_unref (c->turns);
  g_mutex_clear (&c->lock);
  g_free (c);
}

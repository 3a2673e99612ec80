/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Locking order: no lock of its own; elevenlabssrc calls it under
 * PLAYOUT_LOCK (see gstelevenlabssrc.c) and takes no lock in between. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "playout.h"
#include "pair.h"

#include <string.h>

typedef enum {
  ITEM_CHUNK,
  ITEM_TURN_END,
  ITEM_EOS,
} ItemKind;

/* One queued thing, with the chunk meta read once at push time. */
typedef struct
{
  ItemKind kind;
  GstBuffer *buf; /* CHUNK */
  guint n_samples; /* CHUNK */
  guint turn;
  gboolean own;
  guint segment; /* CHUNK */
  gint64 received_us; /* CHUNK */
  gchar *text; /* CHUNK: its text; TURN_END: the whole turn's */
  GArray *char_end_ms; /* CHUNK, aligned only: (element-type gint) */
  guint characters; /* TURN_END */
  GstClockTime ttfb; /* TURN_END */
} Item;

/* What has been played of one segment of the playing turn. */
typedef struct
{
  guint id;
  gboolean aligned;
  gchar *text; /* unaligned: the segment's text */
  GString *spoken; /* aligned: the characters played so far */
  guint64 played; /* samples */
  gboolean cut; /* aligned: the next character is not played yet */
  const gchar *next; /* aligned: points into the head chunk's text */
} Seg;

typedef enum {
  STATE_IDLE, /* silence; the next turn starts when ready */
  STATE_PLAYING,
  STATE_REBUFFERING, /* the turn ran dry; waiting for the prebuffer */
} State;

/* No lock of its own: elevenlabssrc calls it under its PLAYOUT_LOCK. */
struct _ElPlayout
{
  guint rate;
  guint prebuffer; /* samples */
  GQueue items; /* of Item* */
  guint64 queued_samples;
  State state;
  /* The playing turn (state != IDLE). */
  guint turn;
  gboolean own;
  guint64 samples;
  guint underruns;
  GPtrArray *segs; /* of Seg* */
  /* Progress through the head chunk (while playing). */
  guint head_pos; /* samples consumed */
  guint head_chars; /* characters credited */
  const gchar *head_next; /* byte position of the next character */
  gboolean paused; /* agent-pause: silence out, nothing consumed */
};

static void
item_free (Item *item)
{
  gst_clear_buffer (&item->buf);
  g_free (item->text);
  if (item->char_end_ms)
    g_array_unref (item->char_end_ms);
  g_free (item);
}

static void
seg_free (Seg *seg)
{
  g_free (seg->text);
  if (seg->spoken)
    g_string_free (seg->spoken, TRUE);
  g_free (seg);
}

void
el_note_clear (gpointer data)
{
  ElNote *note = data;

  g_clear_pointer (&note->spoken, g_free);
}

GArray *
el_notes_new (void)
{
  GArray *notes = g_array_new (FALSE, TRUE, sizeof (ElNote));

  g_array_set_clear_func (notes, el_note_clear);
  return notes;
}

ElPlayout *
el_playout_new (guint rate)
{
  ElPlayout *p = g_new0 (ElPlayout, 1);

  p->rate = rate;
  g_queue_init (&p->items);
  p->segs = g_ptr_array_new_with_free_func ((GDestroyNotify)seg_free);
  return p;
}

static void
clear_items (ElPlayout *p)
{
  g_queue_clear_full (&p->items, (GDestroyNotify)item_free);
  g_queue_init (&p->items);
  p->queued_samples = 0;
  p->head_pos = 0;
  p->head_chars = 0;
  p->head_next = NULL;
}

void
el_playout_free (ElPlayout *p)
{
  clear_items (p);
  g_ptr_array_unref (p->segs);
  g_free (p);
}

void
el_playout_set_rate (ElPlayout *p, guint rate)
{
  if (rate == p->rate)
    return;
  clear_items (p);
  g_ptr_array_set_size (p->segs, 0);
  p->state = STATE_IDLE;
  p->rate = rate;
}

guint
el_playout_get_rate (ElPlayout *p)
{
  return p->rate;
}

void
el_playout_set_prebuffer (ElPlayout *p, GstClockTime prebuffer)
{
  p->prebuffer = (guint)gst_util_uint64_scale (prebuffer, p->rate, GST_SECOND);
}

gboolean
el_playout_is_idle (ElPlayout *p)
{
  return p->state == STATE_IDLE && g_queue_is_empty (&p->items);
}

guint64
el_playout_get_queued_samples (ElPlayout *p)
{
  return p->queued_samples;
}

/* ---- Pushing ---- */

static GArray *
read_char_ends (const GstStructure *s)
{
  const GValue *v = gst_structure_get_value (s, "char-end-ms");
  GArray *ends;
  guint n;

  if (v == NULL || !GST_VALUE_HOLDS_ARRAY (v))
    return NULL;
  n = gst_value_array_get_size (v);
  ends = g_array_sized_new (FALSE, FALSE, sizeof (gint), n);
  for (guint i = 0; i < n; i++) {
    const GValue *e = gst_value_array_get_value (v, i);
    gint ms = G_VALUE_HOLDS_INT (e) ? g_value_get_int (e) : 0;
    g_array_append_val (ends, ms);
  }
  return ends;
}

static Item *
chunk_item (GstBuffer *buf)
{
  const GstStructure *s = el_chunk_get_info (buf);
  Item *item;

  if (s == NULL)
    return NULL;
  item = g_new0 (Item, 1);
  item->kind = ITEM_CHUNK;
  item->buf = buf;
  item->n_samples = (guint)(gst_buffer_get_size (buf) / 2);
  gst_structure_get_uint (s, "turn", &item->turn);
  gst_structure_get_boolean (s, "own", &item->own);
  gst_structure_get_uint (s, "segment", &item->segment);
  gst_structure_get_int64 (s, "received", &item->received_us);
  item->text = g_strdup (gst_structure_get_string (s, "text"));
  if (item->text) {
    item->char_end_ms = read_char_ends (s);
    /* Alignment must cover the text character for character. */
    if (item->char_end_ms &&
        item->char_end_ms->len != g_utf8_strlen (item->text, -1))
      g_clear_pointer (&item->char_end_ms, g_array_unref);
  }
  return item;
}

static Item *
turn_end_item (GstEvent *event)
{
  const GstStructure *s = gst_event_get_structure (event);
  Item *item;
  guint64 ttfb = GST_CLOCK_TIME_NONE;

  if (s == NULL || !gst_structure_has_name (s, EL_EVENT_TURN_END))
    return NULL;
  item = g_new0 (Item, 1);
  item->kind = ITEM_TURN_END;
  gst_structure_get_uint (s, "turn", &item->turn);
  gst_structure_get_boolean (s, "own", &item->own);
  gst_structure_get_uint (s, "characters", &item->characters);
  gst_structure_get_uint64 (s, "ttfb", &ttfb);
  item->ttfb = ttfb;
  item->text = g_strdup (gst_structure_get_string (s, "text"));
  return item;
}

void
el_playout_push (ElPlayout *p, GstMiniObject *obj)
{
  Item *item = NULL;

  if (GST_IS_BUFFER (obj)) {
    item = chunk_item (GST_BUFFER (obj));
    if (item) {
      p->queued_samples += item->n_samples;
      obj = NULL; /* owned by the item */
    }
  } else if (GST_IS_EVENT (obj) && GST_EVENT_TYPE (obj) == GST_EVENT_EOS) {
    item = g_new0 (Item, 1);
    item->kind = ITEM_EOS;
  } else if (GST_IS_EVENT (obj)) {
    item = turn_end_item (GST_EVENT (obj));
  }
  if (obj)
    gst_mini_object_unref (obj);
  if (item)
    g_queue_push_tail (&p->items, item);
}

/* ---- Turn bookkeeping ---- */

static gboolean
same_turn (const Item *item, guint turn, gboolean own)
{
  return item->turn == turn && item->own == own;
}

static Seg *
current_seg (ElPlayout *p, const Item *chunk)
{
  Seg *seg =
      p->segs->len ? g_ptr_array_index (p->segs, p->segs->len - 1) : NULL;

  if (seg && seg->id == chunk->segment)
    return seg;
  seg = g_new0 (Seg, 1);
  seg->id = chunk->segment;
  seg->aligned = chunk->char_end_ms != NULL;
  if (seg->aligned)
    seg->spoken = g_string_new (NULL);
  else
    seg->text = g_strdup (chunk->text ? chunk->text : "");
  g_ptr_array_add (p->segs, seg);
  return seg;
}

/* Credits the head chunk's characters that have been spoken once @pos of
 * its samples played (all of them when @all). */
static void
credit_chars (ElPlayout *p, const Item *chunk, Seg *seg, gboolean all)
{
  gint played_ms;

  if (!seg->aligned)
    return;
  if (p->head_next == NULL)
    p->head_next = chunk->text;
  played_ms = (gint)gst_util_uint64_scale (p->head_pos, 1000, p->rate);
  while (p->head_chars < chunk->char_end_ms->len && *p->head_next &&
      (all ||
          g_array_index (chunk->char_end_ms, gint, p->head_chars) <=
              played_ms)) {
    const gchar *next = g_utf8_next_char (p->head_next);
    g_string_append_len (seg->spoken, p->head_next, next - p->head_next);
    p->head_next = next;
    p->head_chars++;
  }
  seg->cut = *p->head_next != '\0';
  seg->next = p->head_next;
}

/* Samples still queued for @segment of the playing turn. */
static guint64
queued_for_segment (ElPlayout *p, guint segment)
{
  guint64 n = 0;

  for (GList *l = p->items.head; l; l = l->next) {
    Item *item = l->data;
    if (item->kind == ITEM_CHUNK && same_turn (item, p->turn, p->own) &&
        item->segment == segment)
      n += item->n_samples;
  }
  return n - MIN (n, p->head_pos);
}

static gboolean
is_word_char (gunichar c)
{
  return g_unichar_isalnum (c) || c == '\'';
}

/* Appends @part to @out, with a space between words of two segments. */
static void
join_part (GString *out, const gchar *part, gssize len)
{
  if (len < 0)
    len = (gssize)strlen (part);
  if (len == 0)
    return;
  if (out->len > 0 && !g_ascii_isspace (out->str[out->len - 1]) &&
      !g_ascii_isspace (part[0]))
    g_string_append_c (out, ' ');
  g_string_append_len (out, part, len);
}

/* Drops a word cut in the middle at the end of @out when the character
 * after the cut (@next) continues it: history should not hold "Hel". */
static void
trim_cut_word (GString *out, const gchar *next)
{
  gsize end = out->len;

  if (next == NULL || *next == '\0' || end == 0)
    return;
  if (!is_word_char (g_utf8_get_char (next)))
    return;
  while (end > 0 && is_word_char ((guchar)out->str[end - 1]))
    end--;
  g_string_truncate (out, end);
}

/* Collapses runs of whitespace into one space and strips the ends, in
 * place: the sink ends every piece with a space, and a piece may start
 * with one too. Returns @text. */
static gchar *
tidy_spaces (gchar *text)
{
  gchar *out = text;
  gboolean space = FALSE;

  for (const gchar *p = text; *p; p++) {
    if (g_ascii_isspace (*p)) {
      space = TRUE;
      continue;
    }
    if (space && out != text)
      *out++ = ' ';
    space = FALSE;
    *out++ = *p;
  }
  *out = '\0';
  return text;
}

/* Text of the playing turn the caller has heard so far. */
static gchar *
spoken_text (ElPlayout *p)
{
  GString *out = g_string_new (NULL);
  const gchar *next = NULL;

  for (guint i = 0; i < p->segs->len; i++) {
    Seg *seg = g_ptr_array_index (p->segs, i);
    next = NULL;
    if (seg->aligned) {
      join_part (out, seg->spoken->str, (gssize)seg->spoken->len);
      next = seg->cut ? seg->next : NULL;
    } else {
      guint64 total = seg->played + queued_for_segment (p, seg->id);
      glong chars = g_utf8_strlen (seg->text, -1);
      glong upto = total ? (glong)(chars * seg->played / total) : 0;
      const gchar *cut = g_utf8_offset_to_pointer (seg->text, upto);
      join_part (out, seg->text, cut - seg->text);
      next = cut;
    }
  }
  trim_cut_word (out, next);
  return tidy_spaces (g_string_free (out, FALSE));
}

static void
start_turn (ElPlayout *p, Item *chunk, guint offset, GArray *notes)
{
  ElNote note = { 0 };

  p->state = STATE_PLAYING;
  p->turn = chunk->turn;
  p->own = chunk->own;
  p->samples = 0;
  p->underruns = 0;
  g_ptr_array_set_size (p->segs, 0);

  note.type = EL_NOTE_STARTED;
  note.offset = offset;
  note.turn = chunk->turn;
  note.own = chunk->own;
  note.received_us = chunk->received_us;
  note.ttfb = GST_CLOCK_TIME_NONE;
  g_array_append_val (notes, note);
}

/* Ends the playing turn; @end is its turn-end item, if it came. */
static void
finish_turn (ElPlayout *p, gboolean complete, const Item *end, guint offset,
    GArray *notes)
{
  ElNote note = { 0 };

  note.type = EL_NOTE_STOPPED;
  note.offset = offset;
  note.turn = p->turn;
  note.own = p->own;
  note.complete = complete;
  note.samples = p->samples;
  note.underruns = p->underruns;
  note.ttfb = GST_CLOCK_TIME_NONE;
  if (end) {
    note.characters = end->characters;
    note.ttfb = end->ttfb;
  }
  if (complete && end && end->text && *end->text)
    note.spoken = tidy_spaces (g_strdup (end->text));
  else
    note.spoken = spoken_text (p);
  g_array_append_val (notes, note);
  g_ptr_array_set_size (p->segs, 0);
  p->state = STATE_IDLE;
}

/* TRUE when the turn of @head (a chunk) may start or resume: it has the
 * prebuffer queued, or all its audio (something else follows it). */
static gboolean
ready (ElPlayout *p, GList *head)
{
  Item *first = head->data;
  guint64 n = 0;

  for (GList *l = head; l; l = l->next) {
    Item *item = l->data;
    if (item->kind != ITEM_CHUNK || !same_turn (item, first->turn, first->own))
      return TRUE;
    n += item->n_samples;
    if (l == head)
      n -= MIN (n, p->head_pos);
    if (n >= MAX (p->prebuffer, 1))
      return TRUE;
  }
  return FALSE;
}

static void
pop_head (ElPlayout *p)
{
  Item *item = g_queue_pop_head (&p->items);

  if (item->kind == ITEM_CHUNK)
    p->queued_samples -= item->n_samples - MIN (item->n_samples, p->head_pos);
  item_free (item);
  p->head_pos = 0;
  p->head_chars = 0;
  p->head_next = NULL;
}

/* Copies what it can of the head chunk into @out. */
static guint
play_chunk (ElPlayout *p, Item *chunk, gint16 *out, guint want)
{
  guint take = MIN (want, chunk->n_samples - p->head_pos);
  Seg *seg = current_seg (p, chunk);

  gst_buffer_extract (chunk->buf, p->head_pos * 2, out, take * 2);
  for (guint i = 0; i < take; i++)
    out[i] = GINT16_FROM_LE (out[i]);
  p->head_pos += take;
  p->queued_samples -= take;
  p->samples += take;
  seg->played += take;
  credit_chars (p, chunk, seg, p->head_pos == chunk->n_samples);
  if (p->head_pos == chunk->n_samples)
    pop_head (p);
  return take;
}

/* One step while idle or rebuffering; FALSE when the rest is silence. */
static gboolean
step_waiting (ElPlayout *p, guint filled, GArray *notes)
{
  GList *head = p->items.head;
  Item *item = head ? head->data : NULL;

  if (item == NULL)
    return FALSE;
  if (p->state == STATE_REBUFFERING) {
    if (item->kind == ITEM_CHUNK && same_turn (item, p->turn, p->own) &&
        !ready (p, head))
      return FALSE;
    p->state = STATE_PLAYING; /* resume, or let PLAYING end the turn */
    return TRUE;
  }
  if (item->kind == ITEM_EOS) {
    ElNote note = { 0 };
    note.type = EL_NOTE_EOS;
    note.offset = filled;
    note.ttfb = GST_CLOCK_TIME_NONE;
    g_array_append_val (notes, note);
    pop_head (p);
    return FALSE;
  }
  if (item->kind == ITEM_TURN_END) {
    pop_head (p); /* a turn that brought no audio */
    return TRUE;
  }
  if (!ready (p, head))
    return FALSE;
  start_turn (p, item, filled, notes);
  return TRUE;
}

/* A pause holds everything where it is: the playing turn, the queue, the
 * prebuffer state. No underrun is counted while paused. */
gboolean
el_playout_set_paused (ElPlayout *p, gboolean paused)
{
  gboolean changed = p->paused != paused;

  p->paused = paused;
  return changed;
}

gboolean
el_playout_is_paused (ElPlayout *p)
{
  return p->paused;
}

guint
el_playout_read (ElPlayout *p, gint16 *out, guint n, GArray *notes)
{
  guint filled = 0;

  if (p->paused) {
    memset (out, 0, n * sizeof (gint16));
    return 0;
  }

  while (filled < n) {
    Item *head;

    if (p->state != STATE_PLAYING) {
      if (!step_waiting (p, filled, notes))
        break;
      continue;
    }
    head = g_queue_peek_head (&p->items);
    if (head == NULL) {
      ElNote note = { 0 };
      p->underruns++;
      note.type = EL_NOTE_UNDERRUN;
      note.offset = filled;
      note.turn = p->turn;
      note.own = p->own;
      note.underruns = p->underruns;
      note.ttfb = GST_CLOCK_TIME_NONE;
      g_array_append_val (notes, note);
      p->state = STATE_REBUFFERING;
      break;
    }
    if (head->kind == ITEM_TURN_END && same_turn (head, p->turn, p->own)) {
      finish_turn (p, TRUE, head, filled, notes);
      pop_head (p);
    } else if (head->kind != ITEM_CHUNK || !same_turn (head, p->turn, p->own)) {
      /* The stream or the next turn began without this one's end. */
      finish_turn (p, TRUE, NULL, filled, notes);
    } else {
      filled += play_chunk (p, head, out + filled, n - filled);
    }
  }
  memset (out + filled, 0, (n - filled) * sizeof (gint16));
  return filled;
}

/* Appends a DROPPED note for each turn queued that is not @turn/@own
 * (the one that was playing, if @playing). */
static void
note_dropped (
    ElPlayout *p, gboolean playing, guint turn, gboolean own, GArray *notes)
{
  gboolean have_last = playing;
  guint last_turn = turn;
  gboolean last_own = own;

  for (GList *l = p->items.head; l; l = l->next) {
    Item *item = l->data;
    ElNote note = { 0 };

    if (item->kind != ITEM_CHUNK ||
        (have_last && same_turn (item, last_turn, last_own)))
      continue;
    note.type = EL_NOTE_DROPPED;
    note.turn = item->turn;
    note.own = item->own;
    note.spoken = g_strdup ("");
    note.ttfb = GST_CLOCK_TIME_NONE;
    g_array_append_val (notes, note);
    have_last = TRUE;
    last_turn = item->turn;
    last_own = item->own;
  }
}

gboolean
el_playout_interrupt (ElPlayout *p, GArray *notes)
{
  gboolean playing = p->state != STATE_IDLE;
  gboolean eos = FALSE, any = !el_playout_is_idle (p);

  p->paused = FALSE;
  if (playing)
    finish_turn (p, FALSE, NULL, 0, notes);
  note_dropped (p, playing, p->turn, p->own, notes);
  for (GList *l = p->items.head; l; l = l->next)
    eos |= ((Item *)l->data)->kind == ITEM_EOS;
  clear_items (p);
  if (eos) {
    Item *item = g_new0 (Item, 1);
    item->kind = ITEM_EOS;
    g_queue_push_tail (&p->items, item);
  }
  return any;
}

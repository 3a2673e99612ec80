/* A deepgramsink + deepgramsrc pair under test, and the emulator behind it.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include "emulator-process.h"
#include "voice.h"

G_BEGIN_DECLS

/* The sink runs in a GstHarness (the test pushes audio and events into it
 * directly, in order); the src in a pipeline `deepgramsrc ! fakesink` whose
 * src pad is probed, so buffers and events come out in their real order.
 * Both elements' messages are collected in one list. Everything shared is
 * protected by the fixture's lock; FX_WAIT waits on it. */
typedef struct
{
  EmuProcess *emu; /* may be NULL (tests that need no server) */
  gchar *session;
  GstHarness *h;
  GstElement *sink;
  GstElement *pipe;
  GstElement *src;
  GstBus *sink_bus;
  guint rate;
  guint bpf;
  GstClockTime pts; /* of the next audio buffer pushed */

  GMutex lock;
  GCond cond;
  GPtrArray *out; /* GstMiniObject*: buffers and events the src pushed */
  GPtrArray *msgs; /* GstMessage* of both elements, in posting order */
  gboolean eos; /* EOS came out of the src */
} Fx;

#define FX_WAIT_S 60

EmuProcess *fx_start_emulator (const gchar *const *args);
Fx *fx_new (EmuProcess *emu, const gchar *caps, const gchar *const *sink_props,
    const gchar *const *src_props);
void fx_free (Fx *fx);
gchar *fx_url (Fx *fx);

void fx_push_tone (Fx *fx, guint ms);
void fx_push_silence (Fx *fx, guint ms);
void fx_push_gap (Fx *fx, guint ms);
void fx_push_event (Fx *fx, GstEvent *event);
void fx_push_wav (Fx *fx, const gchar *name);
void fx_push_eos (Fx *fx);

gchar *fx_data_path (const gchar *name);
GBytes *fx_load_wav (const gchar *name, guint *rate);

/* Lock held while evaluating; these may be used inside FX_WAIT. */
const GstStructure *fx_find_msg (Fx *fx, const gchar *name, guint from);
guint fx_count_msgs (Fx *fx, const gchar *name);
guint fx_count_finals (Fx *fx);
GstMessage *fx_find_error (Fx *fx, GstMessageType type);

gchar *fx_final_text (Fx *fx);
guint fx_count_keywords (const gchar *text, const gchar *const *keywords);
void fx_wait_quietly (Fx *fx, guint ms);

guint fx_emu_count_events (EmuProcess *emu, const gchar *event);
void fx_emu_arm_fault (EmuProcess *emu, const gchar *fault);

/* Waits, lock held while @expr is evaluated, until @expr holds; fails the
 * test after FX_WAIT_S. Wakes on every new item and every 20 ms. */
#define FX_WAIT(fx, expr)                                                      \
  G_STMT_START                                                                 \
  {                                                                            \
    gint64 deadline_ =                                                         \
        g_get_monotonic_time () + FX_WAIT_S * G_TIME_SPAN_SECOND;              \
    gboolean met_;                                                             \
    g_mutex_lock (&(fx)->lock);                                                \
    while (!(met_ = (expr)) && g_get_monotonic_time () < deadline_)            \
      g_cond_wait_until (&(fx)->cond, &(fx)->lock,                             \
          MIN (deadline_,                                                      \
              g_get_monotonic_time () + 20 * G_TIME_SPAN_MILLISECOND));        \
    g_mutex_unlock (&(fx)->lock);                                              \
    fail_unless (met_, "timed out waiting for: %s", #expr);                    \
  }                                                                            \
  G_STMT_END

G_END_DECLS

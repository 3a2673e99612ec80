/* llmtransform in a GstHarness, for the element's tests: a harness with
 * its own bus, the messages it posts in order, and the agent text it
 * pushes.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include "voice.h"

G_BEGIN_DECLS

/* An element under test: its harness and its bus. */
typedef struct
{
  GstHarness *h;
  GstElement *element;
  GstBus *bus;
  GPtrArray *messages; /* GstMessage* popped so far, in order */
} Llm;

/* tests/llm/data/@name in the source tree. */
gchar *data_path (const gchar *name);
/* llmtransform talking to @url with the properties given, in a harness. */
Llm *llm_new (const gchar *url, const gchar *first_prop, ...);
void llm_free (Llm *l);
/* @m is of @type (element messages: llmtransform @event, if not NULL). */
gboolean message_matches (
    GstMessage *m, GstMessageType type, const gchar *event);
/* The @n-th message of @type (element messages: llmtransform @event). */
GstMessage *wait_message (
    Llm *l, GstMessageType type, const gchar *event, guint n);
const GstStructure *wait_event_message (Llm *l, const gchar *event, guint n);
gchar *wait_warning (Llm *l, guint n);
void push_end_of_turn (Llm *l, guint turn, const gchar *text);
gchar *pull_piece (Llm *l, guint turn, gboolean *last);
gchar *pull_reply (Llm *l, guint turn);

G_END_DECLS

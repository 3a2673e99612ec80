/* Check-suite assertions over whip-caller.h, for the tests built with
 * gstcheck (whip-caller itself has no assertions: scripts and the load
 * generator use it too).
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/check/gstcheck.h>
#include "whip-caller.h"

G_BEGIN_DECLS

/* The next data-channel message containing @needle (free it); fails the
 * test when none comes within @timeout_ms. */
static inline gchar *
whip_check_message (WhipCaller *c, const gchar *needle, guint timeout_ms)
{
  gchar *m = whip_caller_wait_message (c, needle, timeout_ms);

  fail_unless (m != NULL, "no data-channel event with %s", needle);
  return m;
}

/* Types @text and returns the agent's written answer (free it); fails
 * the test when it cannot be sent or no answer comes. */
static inline gchar *
whip_check_ask (WhipCaller *c, const gchar *text, guint timeout_ms)
{
  gchar *m = whip_caller_ask (c, text, timeout_ms);

  fail_unless (m != NULL, "no answer from the agent to \"%s\"", text);
  return m;
}

G_END_DECLS

/* gst-voiceagent: masking credentials in text before it is logged.
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Thread-safe: the registered secrets are shared by the whole process,
 * because a key one element uses must be masked in every element's log. */
gchar *gst_voice_redact (const gchar *text);
void gst_voice_redact_add_secret (const gchar *secret);

/* Library-internal (hidden symbol, not for plugins): registers the
 * credentials found in their known places in @text, so they are masked
 * wherever they show up later (e.g. echoed in a server's close reason).
 * GstVoiceClient calls it on everything it sends. */
G_GNUC_INTERNAL void gst_voice_redact_learn (const gchar *text);

G_END_DECLS

/* gst-voiceagent
 * Copyright (C) 2026 gst-voiceagent contributors
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "voice.h"

/**
 * gst_voice_init:
 *
 * Registers the library's types (meta, client) once; plugins call it from
 * plugin_init so the types exist before any element uses them from a
 * streaming thread. Thread-safe and idempotent.
 */
void
gst_voice_init (void)
{
  static gsize initialized = 0;

  if (g_once_init_enter (&initialized)) {
    gst_voice_transcript_meta_api_get_type ();
    gst_voice_transcript_meta_get_info ();
    g_type_ensure (GST_TYPE_VOICE_CLIENT);
    g_type_ensure (GST_TYPE_VOICE_SESSION);
    g_once_init_leave (&initialized, 1);
  }
}

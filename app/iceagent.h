/* voiceagent: settings of webrtcbin's ICE agent.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

/* Turns off libnice's UPnP port mapping on @webrtcbin's ICE agent. Call it
 * before gathering starts (set-local-description). The test callers use
 * it too (tests/common/whip-caller.c). */
void va_ice_agent_disable_upnp (GstElement *webrtcbin);

G_END_DECLS

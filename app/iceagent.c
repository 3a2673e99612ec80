/* voiceagent: settings of webrtcbin's ICE agent.
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "iceagent.h"

/* libnice asks the LAN's router for a port mapping over UPnP by default:
 * useless on a server (its address is public or set by --public-ip), and
 * it costs a thread per webrtcbin (gupnp-igd's own main loop), SSDP
 * traffic and file descriptors; with a hundred test callers in one process
 * it runs out of ports for its HTTP servers. The properties are looked up
 * because webrtcbin's ICE implementation is replaceable. */
void
va_ice_agent_disable_upnp (GstElement *webrtcbin)
{
  GObject *ice = NULL, *agent = NULL;

  g_object_get (webrtcbin, "ice-agent", &ice, NULL);
  if (ice && g_object_class_find_property (G_OBJECT_GET_CLASS (ice), "agent"))
    g_object_get (ice, "agent", &agent, NULL);
  if (agent &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (agent), "upnp"))
    g_object_set (agent, "upnp", FALSE, NULL);
  g_clear_object (&agent);
  g_clear_object (&ice);
}

# GstVoice-1.0 through GObject introspection, as a Python application
# would use it: the role enum and an end-of-turn event made and parsed.
# SPDX-License-Identifier: LGPL-2.1-or-later
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVoice", "1.0")
from gi.repository import Gst, GstVoice  # noqa: E402

Gst.init(None)
GstVoice.init()
if GstVoice.role_to_string(GstVoice.Role.AGENT) != "agent":
    sys.exit("GstVoice.role_to_string(AGENT) is not 'agent'")
event = GstVoice.event_new_end_of_turn(Gst.SECOND, 7, "hi")
ok, when, turn, text = GstVoice.event_parse_end_of_turn(event)
if not ok or when != Gst.SECOND or turn != 7 or text != "hi":
    sys.exit(f"end-of-turn did not round-trip: {ok} {when} {turn} {text}")
print("GstVoice-1.0: ok")

#!/usr/bin/python3
# A WHIP call placed with aiortc, the WebRTC stack under Pipecat's
# SmallWebRTC transport: aiortc's default (balanced) bundle policy gives
# each media section its own ICE credentials, which webrtcbin 1.22 refused
# until app/sdp.c unified them.
#
# Usage: aiortc-caller.py URL [--token TOKEN] [--timeout SECONDS]
#        aiortc-caller.py --offer-only FILE   (writes aiortc's offer, CRLF)
#
# Sends a 440 Hz tone, opens a data channel "events", POSTs the offer,
# applies the answer, then waits for audio back with real energy (the test
# template echoes) and for the {"type":"call"} event, and hangs up with
# DELETE on the Location URL (resolved against the POST URL, query kept).
# Exits 0 on success, 1 with a message on stderr on any failure.
#
# Run with /usr/bin/python3: Debian's python3-aiortc is installed there.
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import av
    import numpy
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import (
        MediaStreamError,
        MediaStreamTrack,
        VideoStreamTrack,
    )
except ImportError as e:
    print(
        f"aiortc-caller: cannot import aiortc ({e}): install the Debian "
        "package python3-aiortc and run this with /usr/bin/python3",
        file=sys.stderr,
    )
    sys.exit(1)

RATE = 48000
PTIME = 0.020
TONE_HZ = 440.0
# The echo comes back through Opus twice: a 0.3-amplitude sine has an RMS
# of about 0.21; silence and comfort noise stay far below this.
MIN_RMS = 0.05


class Failure(Exception):
    pass


class ToneTrack(MediaStreamTrack):
    """A live sine tone, 20 ms frames of 16-bit mono at 48 kHz, paced in real
    time as a microphone's would be."""

    kind = "audio"

    def __init__(self):
        super().__init__()
        self._start = None
        self._samples = 0

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        n = int(RATE * PTIME)
        if self._start is None:
            self._start = time.time()
        else:
            wait = self._start + self._samples / RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (numpy.arange(n) + self._samples) / RATE
        pcm = (0.3 * 32767 * numpy.sin(2 * math.pi * TONE_HZ * t)).astype(
            numpy.int16
        )
        frame = av.AudioFrame.from_ndarray(
            pcm.reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, RATE)
        self._samples += n
        return frame


def rms_of(frame):
    pcm = frame.to_ndarray().astype(numpy.float64) / 32768.0
    return float(numpy.sqrt(numpy.mean(pcm * pcm))) if pcm.size else 0.0


def http(method, url, body=None, headers=None):
    """Returns (status, headers, body text); HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")
    except OSError as e:
        raise Failure(f"{method} {url}: {e}") from e


async def make_offer(pc, video=None):
    # With video first, the video section is the offerer-tagged one: the
    # server may not reject it (RFC 8843 7.3.3) and answers it inactive.
    if video == "first":
        pc.addTrack(VideoStreamTrack())
    pc.addTrack(ToneTrack())
    if video == "last":
        pc.addTrack(VideoStreamTrack())
    channel = pc.createDataChannel("events")
    # aiortc gathers every candidate before it returns: no trickle needed.
    await pc.setLocalDescription(await pc.createOffer())
    return channel


async def call(url, token, timeout, video):
    pc = RTCPeerConnection()  # default configuration: bundle policy balanced
    loop = asyncio.get_running_loop()
    heard = loop.create_future()
    call_event = loop.create_future()
    peak = [0.0]

    async def listen(track):
        try:
            while True:
                frame = await track.recv()
                peak[0] = max(peak[0], rms_of(frame))
                if peak[0] >= MIN_RMS and not heard.done():
                    heard.set_result(peak[0])
        except MediaStreamError:
            pass

    @pc.on("track")
    def on_track(track):
        if track.kind == "audio":
            asyncio.ensure_future(listen(track))

    try:
        channel = await make_offer(pc, video)

        @channel.on("message")
        def on_message(message):
            try:
                event = json.loads(message)
            except (TypeError, ValueError):
                return
            if event.get("type") == "call" and not call_event.done():
                call_event.set_result(event)

        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, rh, body = await loop.run_in_executor(
            None,
            lambda: http(
                "POST", url, pc.localDescription.sdp.encode("utf-8"), headers
            ),
        )
        if status != 201:
            raise Failure(f"POST {url}: {status} {body.strip()}")
        if not rh.get("Content-Type", "").startswith("application/sdp"):
            raise Failure(f"POST answer has Content-Type {rh.get('Content-Type')}")
        location = rh.get("Location")
        if not location:
            raise Failure("the 201 has no Location header")
        # Verbatim, relative to the POST URL: a query (a per-call
        # capability) is part of the URL and must be kept.
        session_url = urllib.parse.urljoin(url, location)
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        if video and not any(
            l.startswith("m=video 0 ") or l == "a=inactive"
            for l in body.splitlines()
        ):
            raise Failure("the answer accepts video, which the agent does not use")

        try:
            await asyncio.wait_for(asyncio.shield(heard), timeout)
        except asyncio.TimeoutError:
            raise Failure(
                f"no audio with RMS >= {MIN_RMS} came back in {timeout} s "
                f"(peak {peak[0]:.4f}; ICE {pc.iceConnectionState}, "
                f"connection {pc.connectionState})"
            ) from None
        try:
            event = await asyncio.wait_for(asyncio.shield(call_event), timeout)
        except asyncio.TimeoutError:
            raise Failure(
                f'no {{"type":"call"}} data-channel message in {timeout} s '
                f"(channel {channel.readyState})"
            ) from None
        if not isinstance(event.get("id"), str) or not event["id"]:
            raise Failure(f"the call event has no id: {event}")

        delete_headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, _, body = await loop.run_in_executor(
            None, lambda: http("DELETE", session_url, None, delete_headers)
        )
        if status != 200:
            raise Failure(f"DELETE {session_url}: {status} {body.strip()}")
        print(
            f"aiortc-caller: call {event['id']} ok: echo peak RMS "
            f"{peak[0]:.3f}, hung up with DELETE {session_url}"
        )
    finally:
        await pc.close()


async def offer_only(path):
    pc = RTCPeerConnection()
    try:
        await make_offer(pc)
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    with open(path, "w", newline="") as f:
        f.write(sdp.replace("\r\n", "\n").replace("\n", "\r\n"))


def main():
    ap = argparse.ArgumentParser(description="A WHIP call placed with aiortc")
    ap.add_argument("url", nargs="?", help="the WHIP endpoint, e.g. http://127.0.0.1:8080/whip")
    ap.add_argument("--token", help="sent as Authorization: Bearer TOKEN")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per wait")
    ap.add_argument(
        "--video",
        choices=["first", "last"],
        help="also offer a video track, before or after the audio",
    )
    ap.add_argument("--offer-only", metavar="FILE", help="write an offer and exit")
    a = ap.parse_args()
    try:
        if a.offer_only:
            asyncio.run(offer_only(a.offer_only))
        elif a.url:
            asyncio.run(call(a.url, a.token, a.timeout, a.video))
        else:
            ap.error("a URL or --offer-only is needed")
    except Failure as e:
        print(f"aiortc-caller: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # any other failure is one too, with its cause
        print(f"aiortc-caller: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

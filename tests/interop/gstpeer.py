"""A WHIP publisher and a WHEP player on GStreamer's ``webrtcbin``, behaving as OBS does.

Runs under Debian's ``/usr/bin/python3``: PyGObject (``python3-gi``) and the
GStreamer typelibs are Debian packages, not in the project's venv. The tests
start it as a subprocess (:mod:`tests.interop.gstreamer`) and read one JSON
object per line from its stdout: ``{"event": ..., "t": seconds since start, ...}``.
It imports nothing of the project and nothing outside the standard library and gi.

What it does the way OBS Studio's WHIP output does (and a browser does not):

- no trickle: the offer is POSTed once ICE gathering completed, every candidate
  in it (``--candidates none``: POSTed at once with no candidate at all; the
  server then learns the client's address from its connectivity checks);
- a 201 with ``Location`` is required, anything else is a failure; the session
  is DELETEd when stopped, and only 200 counts as success;
- ICE servers are read from the ``Link`` headers (RFC 9725 §4.6) of an
  authenticated ``OPTIONS`` (``--options``) and of the 201; they are used only
  with ``--apply-ice-servers`` (``--relay-only``: relay candidates only);
- keyframe requests (PLI/FIR, which reach the encoder as GstForceKeyUnit
  events) are dropped and counted: keyframes come every ``--keyint-s`` only.

Commands:

- ``check``: ``{"ok": bool, "missing": [...], "encoder": ..., "h264_decoder": ...}``.
- ``publish URL``: WHIP; videotestsrc → H.264 constrained baseline (x264enc,
  else openh264enc) + audiotestsrc → Opus.
- ``play URL``: WHEP; receives H.264 or VP8 + Opus, decodes, counts frames.

The Bearer token comes from ``$WHIP_TOKEN`` (never the command line). The
session ends on a line ``stop`` on stdin, stdin closed, SIGTERM, or after
``--duration`` seconds: DELETE, then ``{"event": "deleted", "status": ...}``.
Exit status: 0 on a clean run (DELETE answered 200), 1 on a failure (the last
event is ``{"event": "error", ...}``), 3 when the DELETE was not answered 200.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

START = time.monotonic()
_print_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout (flushed: the test reads it as it comes)."""
    now = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the test's, on one machine
    line = json.dumps({"event": event, "t": round(now - START, 3), "m": now, **fields})
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


# -- Link headers (RFC 8288; ICE servers: RFC 9725 §4.6) ------------------------

_PARAM = re.compile(r';\s*([A-Za-z0-9_-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*))?')


def split_links(value: str) -> list[str]:
    """Split a Link field value on the commas between links (not inside ``<>`` or quotes)."""
    parts, current, depth, quoted = [], [], 0, False
    for char in value:
        if char == '"' and depth == 0:
            quoted = not quoted
        elif char == "<" and not quoted:
            depth += 1
        elif char == ">" and not quoted:
            depth = max(0, depth - 1)
        if char == "," and depth == 0 and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def ice_servers(values: list[str]) -> list[dict[str, str]]:
    """The ``rel="ice-server"`` links of these Link field values, as RTCIceServer-like dicts."""
    servers = []
    for value in values:
        for link in split_links(value):
            match = re.match(r"<([^>]*)>", link)
            if not match:
                continue
            params = {}
            for name, raw in _PARAM.findall(link[match.end() :]):
                params[name.lower()] = raw[1:-1].replace('\\"', '"') if raw[:1] == '"' else raw
            if "ice-server" not in params.get("rel", "").split():
                continue
            server = {"urls": match.group(1)}
            for key in ("username", "credential", "credential-type"):
                if key in params:
                    server[key] = params[key]
            servers.append(server)
    return servers


# -- HTTP ----------------------------------------------------------------------


def http(method: str, url: str, token: str, body: str | None = None,
         content_type: str | None = None) -> tuple[int, dict[str, list[str]], str]:  # fmt: skip
    """One request; (status, headers by lower-case name, body). Errors are answers too."""
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    data = body.encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, raw, text = answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as exc:
        status, raw, text = exc.code, exc.headers, exc.read().decode(errors="replace")
    found: dict[str, list[str]] = {}
    for name, value in raw.items():
        found.setdefault(name.lower(), []).append(value)
    return status, found, text


# -- GStreamer -------------------------------------------------------------------

TYPELIBS = {"Gst": "1.0", "GstWebRTC": "1.0", "GstSdp": "1.0", "Nice": "0.1"}
ELEMENTS = [
    "webrtcbin", "nicesrc", "nicesink", "dtlssrtpenc", "dtlssrtpdec", "rtpbin",
    "videotestsrc", "videoconvert", "h264parse", "rtph264pay", "rtph264depay",
    "rtpvp8depay", "vp8dec", "audiotestsrc", "audioconvert", "audioresample",
    "opusenc", "rtpopuspay", "rtpopusdepay", "opusdec", "fakesink",
]  # fmt: skip
ENCODERS = ["x264enc", "openh264enc"]  # x264 first: OBS's own default encoder
H264_DECODERS = ["avdec_h264", "openh264dec"]


def load_gi() -> tuple[Any, list[str]]:
    """(GLib, Gst, GstSdp, GstWebRTC and Nice as attributes, or None; what is missing)."""
    try:
        import gi
    except ImportError:
        return None, ["python3-gi"]
    missing = []
    for name, version in TYPELIBS.items():
        try:
            gi.require_version(name, version)
        except ValueError:
            missing.append(f"{name}-{version} typelib")
    if missing:
        return None, missing
    from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice

    Gst.init(None)
    repo = types.SimpleNamespace(GLib=GLib, Gst=Gst, GstSdp=GstSdp, GstWebRTC=GstWebRTC, Nice=Nice)
    return repo, []


def first_element(gst: Any, names: list[str]) -> str | None:
    return next((n for n in names if gst.ElementFactory.find(n) is not None), None)


def check() -> int:
    repo, missing = load_gi()
    found: dict[str, Any] = {"encoder": None, "h264_decoder": None}
    if repo is not None:
        gst = repo.Gst
        missing += [n for n in ELEMENTS if gst.ElementFactory.find(n) is None]
        found["encoder"] = first_element(gst, ENCODERS)
        found["h264_decoder"] = first_element(gst, H264_DECODERS)
        if found["encoder"] is None:
            missing.append("x264enc or openh264enc")
        if found["h264_decoder"] is None:
            missing.append("avdec_h264 or openh264dec")
        found["gstreamer"] = gst.version_string()
    emit("check", ok=not missing, missing=missing, python=sys.version.split()[0], **found)
    return 0 if not missing else 1


class Peer:
    """One webrtcbin session over WHIP (``publish``) or WHEP (``play``)."""

    def __init__(self, repo: Any, args: argparse.Namespace, token: str) -> None:
        self.repo, self.args, self.token = repo, args, token
        self.gst, self.glib = repo.Gst, repo.GLib
        self.location: str | None = None
        self.counts = {"video": 0, "audio": 0, "sent_video": 0, "sent_keyframes": 0,
                       "keyframe_requests_dropped": 0}  # fmt: skip
        self.candidates: list[tuple[int, str]] = []
        self.promises: list[Any] = []
        self.gathered = threading.Event()
        self.negotiation = threading.Event()
        self.stopping = False
        self.exit_code = 0
        self.loop = self.glib.MainLoop()
        parsed = self.gst.parse_launch(self.description())
        if isinstance(parsed, self.gst.Pipeline):
            self.pipeline = parsed
        else:  # one element (play: webrtcbin alone) comes back bare
            self.pipeline = self.gst.Pipeline.new("pipeline")
            self.pipeline.add(parsed)
        self.webrtc = self.pipeline.get_by_name("wb")
        self.webrtc.connect("on-negotiation-needed", lambda *_: self.negotiation.set())
        self.webrtc.connect("on-ice-candidate", self.on_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self.on_state, "ice")
        self.webrtc.connect("notify::connection-state", self.on_state, "connection")
        self.restrict_ice(args.ice_address)
        if args.command == "play":
            self.add_receivers()
            self.webrtc.connect("pad-added", self.on_pad)
        else:
            self.watch_encoder()

    # -- the pipeline

    def description(self) -> str:
        wb = "webrtcbin name=wb bundle-policy=max-bundle latency=100"
        if self.args.command == "play":
            return wb
        fps, gop = self.args.fps, max(1, round(self.args.fps * self.args.keyint_s))
        encoder = first_element(self.gst, ENCODERS)
        if encoder == "x264enc":
            enc = (f"x264enc name=venc tune=zerolatency speed-preset=ultrafast "
                   f"key-int-max={gop} bitrate={self.args.kbps} threads=1")  # fmt: skip
        else:
            enc = (f"openh264enc name=venc gop-size={gop} bitrate={self.args.kbps * 1000} "
                   "complexity=low rate-control=bitrate")  # fmt: skip
        width, height = self.args.size.split("x")
        video = (
            f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},"
            f"height={height},framerate={fps}/1 ! videoconvert ! queue ! {enc} ! "
            "video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1 ! "
            "rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
            "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! wb."
        )
        audio = (
            "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
            "queue ! opusenc ! rtpopuspay ! "
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! wb."
        )
        return f"{wb} {video} {audio}"

    def restrict_ice(self, address: str) -> None:
        """Gather host candidates on ``address`` only (libnice's default is every
        interface but loopback); no ICE-TCP."""
        # Held for the run: with GStreamer 1.22, dropping PyGObject's wrapper of the ICE
        # object freed it under webrtcbin (a crash: "GST_IS_WEBRTC_ICE (ice)" failed).
        self.ice = ice = self.webrtc.get_property("ice-agent")
        ice.set_property("ice-tcp", False)
        if address == "all":
            return
        nice_address = self.repo.Nice.Address.new()
        if not nice_address.set_from_string(address):
            raise SystemExit(f"not an IP address: {address}")
        ice.get_property("agent").add_local_address(nice_address)

    def add_receivers(self) -> None:
        caps = self.gst.Caps.from_string
        direction = self.repo.GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
        video = caps(
            "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
            "packetization-mode=(string)1,profile-level-id=(string)42e01f,"
            "rtcp-fb-nack-pli=(boolean)true;"
            "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,"
            "rtcp-fb-nack-pli=(boolean)true"
        )
        audio = caps(
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
            "encoding-params=(string)2"
        )
        self.webrtc.emit("add-transceiver", direction, video)
        self.webrtc.emit("add-transceiver", direction, audio)

    def watch_encoder(self) -> None:
        """Count encoded frames and keyframes; drop keyframe requests (as OBS ignores them)."""
        pad = self.pipeline.get_by_name("venc").get_static_pad("src")
        probe = self.gst.PadProbeType
        pad.add_probe(probe.BUFFER, self.on_encoded)
        pad.add_probe(probe.EVENT_UPSTREAM, self.on_upstream)

    def on_encoded(self, _pad: Any, info: Any) -> Any:
        buffer = info.get_buffer()
        self.counts["sent_video"] += 1
        if not buffer.has_flags(self.gst.BufferFlags.DELTA_UNIT):
            self.counts["sent_keyframes"] += 1
        return self.gst.PadProbeReturn.OK

    def on_upstream(self, _pad: Any, info: Any) -> Any:
        event = info.get_event()
        structure = event.get_structure()
        if structure is not None and structure.get_name() == "GstForceKeyUnit":
            self.counts["keyframe_requests_dropped"] += 1
            return self.gst.PadProbeReturn.DROP
        return self.gst.PadProbeReturn.OK

    def on_pad(self, _webrtc: Any, pad: Any) -> None:
        if pad.get_direction() != self.gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_string("encoding-name") or ""
        decoder = first_element(self.gst, H264_DECODERS)
        chains = {
            "H264": ("video", f"rtph264depay ! h264parse ! {decoder}"),
            "VP8": ("video", "rtpvp8depay ! vp8dec"),
            "OPUS": ("audio", "rtpopusdepay ! opusdec"),
        }
        if name.upper() not in chains:
            emit("unexpected_pad", encoding=name)
            return
        kind, chain = chains[name.upper()]
        description = f"queue ! {chain} ! fakesink name=sink sync=false signal-handoffs=true"
        branch = self.gst.parse_bin_from_description(description, True)
        branch.get_by_name("sink").connect("handoff", self.on_frame, kind)
        self.pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        emit("track", kind=kind, codec=name.upper())

    def on_frame(self, _sink: Any, _buffer: Any, pad: Any, kind: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            fields: dict[str, Any] = {"kind": kind}
            caps = pad.get_current_caps()
            if kind == "video" and caps is not None:
                structure = caps.get_structure(0)
                fields["size"] = [structure.get_int("width")[1], structure.get_int("height")[1]]
            emit("first_frame", **fields)

    # -- ICE and connection state (from webrtcbin's threads)

    def on_candidate(self, _webrtc: Any, mline: int, candidate: str) -> None:
        self.candidates.append((mline, candidate))

    def on_gathering(self, webrtc: Any, _spec: Any) -> None:
        state = webrtc.get_property("ice-gathering-state")
        if state == self.repo.GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            self.gathered.set()

    def on_state(self, webrtc: Any, spec: Any, what: str) -> None:
        state = webrtc.get_property(spec.name)
        nick = state.value_nick if hasattr(state, "value_nick") else str(state)
        emit(what, state=nick)

    # -- negotiation (a worker thread: every step blocks on webrtcbin or HTTP)

    def negotiate(self) -> None:
        try:
            self._negotiate()
        except Exception as exc:  # report, then end the run
            emit("error", error=f"{type(exc).__name__}: {exc}")
            self.exit_code = 1
            self.glib.idle_add(self.stop)

    def _negotiate(self) -> None:
        args = self.args
        servers: list[dict[str, str]] = []
        if args.options:
            status, headers, _ = http("OPTIONS", args.url, self.token)
            servers = ice_servers(headers.get("link", []))
            emit("options", status=status, ice_servers=servers)
        if args.apply_ice_servers:
            self.use_ice_servers(servers)
        if self.pipeline.set_state(self.gst.State.PLAYING) == self.gst.StateChangeReturn.FAILURE:
            raise RuntimeError("the pipeline would not start")
        self.negotiation.wait(10)
        offer = self.promise("create-offer", None, "offer")
        if args.setup != "actpass":
            offer = self.with_setup(offer, args.setup)
        self.promise("set-local-description", offer)
        if args.candidates == "all":
            if not self.gathered.wait(15):
                raise RuntimeError("ICE gathering did not complete within 15 s")
        sdp = with_candidates(
            offer.sdp.as_text(), self.candidates if args.candidates == "all" else []
        )
        emit("offer", candidates=candidate_addresses(sdp))
        began = time.monotonic()
        status, headers, body = http("POST", args.url, self.token, sdp, "application/sdp")
        took = round(time.monotonic() - began, 3)
        location = (headers.get("location") or [None])[0]
        links = ice_servers(headers.get("link", []))
        emit("created", status=status, location=location, etag=(headers.get("etag") or [None])[0],
             ice_servers=links, post_s=took, body=body if status != 201 else None)  # fmt: skip
        if status != 201 or not location:
            raise RuntimeError(f"POST answered {status} (Location: {location}): {body[:200]}")
        self.location = urllib.parse.urljoin(args.url, location)
        ok, message = self.repo.GstSdp.SDPMessage.new_from_text(body)
        if ok != self.repo.GstSdp.SDPResult.OK:
            raise RuntimeError("the answer is not SDP")
        answer = self.repo.GstWebRTC.WebRTCSessionDescription.new(
            self.repo.GstWebRTC.WebRTCSDPType.ANSWER, message
        )
        self.promise("set-remote-description", answer)
        emit("answered", candidates=candidate_addresses(body))

    def with_setup(self, offer: Any, setup: str) -> Any:
        """``offer`` with ``a=setup:SETUP`` in every section (RFC 8842 lets an offerer
        choose ``active``: it then is the DTLS client)."""
        text = offer.sdp.as_text().replace("a=setup:actpass", f"a=setup:{setup}")
        ok, message = self.repo.GstSdp.SDPMessage.new_from_text(text)
        if ok != self.repo.GstSdp.SDPResult.OK:
            raise RuntimeError("the edited offer is not SDP")
        return self.repo.GstWebRTC.WebRTCSessionDescription.new(
            self.repo.GstWebRTC.WebRTCSDPType.OFFER, message
        )

    def promise(self, signal_name: str, argument: Any, field: str | None = None) -> Any:
        """Emit ``signal_name`` and wait for its reply; the reply's ``field``, if named.
        (What the reply holds is freed with it: promise and reply are kept for the run.)"""
        promise = self.gst.Promise.new()
        self.webrtc.emit(signal_name, argument, promise)
        if promise.wait() != self.gst.PromiseResult.REPLIED:
            raise RuntimeError(f"{signal_name}: no reply")
        reply = promise.get_reply()
        self.promises.append((promise, reply))
        if reply is not None and reply.has_field("error"):
            raise RuntimeError(f"{signal_name}: {reply.get_value('error')}")
        return reply.get_value(field) if field is not None else None

    def use_ice_servers(self, servers: list[dict[str, str]]) -> None:
        """STUN and TURN servers from Link, in webrtcbin's URL forms."""
        for server in servers:
            scheme, _, rest = server["urls"].partition(":")
            hostport, _, query = rest.partition("?")
            if scheme == "stun":
                self.webrtc.set_property("stun-server", f"stun://{hostport}")
            elif scheme in ("turn", "turns"):
                user = urllib.parse.quote(server.get("username", ""), safe="")
                password = urllib.parse.quote(server.get("credential", ""), safe="")
                url = f"{scheme}://{user}:{password}@{hostport}" + (f"?{query}" if query else "")
                self.webrtc.emit("add-turn-server", url)
        if self.args.relay_only:
            policy = self.repo.GstWebRTC.WebRTCICETransportPolicy.RELAY
            self.webrtc.set_property("ice-transport-policy", policy)

    # -- the run

    def report(self) -> bool:
        emit("stats", **self.counts)
        return True

    def stop(self) -> bool:
        if self.stopping:
            return False
        self.stopping = True
        if self.location is not None:
            status, _, body = http("DELETE", self.location, self.token)
            emit("deleted", status=status, body=body if status != 200 else None)
            if status != 200 and self.exit_code == 0:
                self.exit_code = 3
        self.report()
        self.pipeline.set_state(self.gst.State.NULL)
        self.loop.quit()
        return False

    def on_stdin(self, source: Any, condition: Any) -> bool:
        line = sys.stdin.readline()
        if not line or line.strip() == "stop" or condition & self.glib.IOCondition.HUP:
            self.stop()
            return False
        return True

    def on_bus(self, _bus: Any, message: Any) -> None:
        if message.type == self.gst.MessageType.ERROR:
            error, debug = message.parse_error()
            emit("error", error=f"{error.message}", debug=(debug or "")[:500])
            self.exit_code = 1
            self.stop()

    def run(self) -> int:
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self.on_bus)
        glib = self.glib
        glib.io_add_watch(sys.stdin.fileno(), glib.PRIORITY_DEFAULT,
                          glib.IOCondition.IN | glib.IOCondition.HUP, self.on_stdin)  # fmt: skip
        glib.unix_signal_add(glib.PRIORITY_DEFAULT, signal.SIGTERM, self.stop)
        glib.timeout_add(int(self.args.stats_s * 1000), self.report)
        glib.timeout_add_seconds(self.args.duration, self.stop)
        threading.Thread(target=self.negotiate, daemon=True).start()
        self.loop.run()
        return self.exit_code


def with_candidates(sdp: str, candidates: list[tuple[int, str]]) -> str:
    """``sdp`` with each ``(m-line index, candidate)`` added to its media section, and
    ``a=end-of-candidates`` in every section that got one (the offer is complete)."""
    if not candidates:
        return sdp
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    for mline, candidate in candidates:
        body = candidate if candidate.startswith("a=") else f"a={candidate}"
        sections[mline + 1].append(body)
    for mline in sorted({m for m, _ in candidates}):
        sections[mline + 1].append("a=end-of-candidates")
    return "\r\n".join(line for section in sections for line in section) + "\r\n"


def candidate_addresses(sdp: str) -> list[str]:
    """``address port type`` of every candidate in ``sdp``."""
    found = re.findall(r"a=candidate:\S+ \d+ (\w+) \d+ (\S+) (\d+) typ (\w+)", sdp)
    return [
        f"{transport.lower()} {address} {port} {kind}" for transport, address, port, kind in found
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check")
    for name in ("publish", "play"):
        sub = commands.add_parser(name)
        sub.add_argument("url", help="the WHIP (publish) or WHEP (play) endpoint")
        sub.add_argument(
            "--candidates",
            choices=("all", "none"),
            default="all",
            help="all: wait for gathering, post every candidate; none: post at once",
        )
        sub.add_argument(
            "--ice-address",
            default="127.0.0.1",
            help="gather host candidates on this address only ('all': every one)",
        )
        sub.add_argument(
            "--options",
            action="store_true",
            help="OPTIONS first, with the token: ICE servers from its Link headers",
        )
        sub.add_argument(
            "--apply-ice-servers",
            action="store_true",
            help="use the ICE servers read from OPTIONS (needs --options)",
        )
        sub.add_argument(
            "--relay-only",
            action="store_true",
            help="with --apply-ice-servers: relay candidates only",
        )
        sub.add_argument(
            "--setup",
            choices=("actpass", "active"),
            default="actpass",
            help="the offer's DTLS role: actpass (as OBS; the node is then the DTLS client) "
            "or active (this peer is the DTLS client)",
        )
        sub.add_argument("--duration", type=int, default=120, help="stop after this many seconds")
        sub.add_argument("--stats-s", type=float, default=0.25, help="seconds between stats")
        sub.add_argument("--keyint-s", type=float, default=2.0, help="seconds between keyframes")
        sub.add_argument("--fps", type=int, default=30)
        sub.add_argument("--kbps", type=int, default=800)
        sub.add_argument("--size", default="640x360")
    args = parser.parse_args()
    if args.command == "check":
        return check()
    repo, missing = load_gi()
    if repo is None:
        emit("error", error=f"missing: {', '.join(missing)}")
        return 1
    token = os.environ.get("WHIP_TOKEN", "")
    return Peer(repo, args, token).run()


if __name__ == "__main__":
    sys.exit(main())

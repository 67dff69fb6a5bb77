"""Reading ``application/trickle-ice-sdpfrag`` bodies (RFC 8840), as WHIP/WHEP PATCH sends them.

A fragment carries ICE information only: optional session-level lines
(``a=ice-options``, ``a=group:BUNDLE``, ``a=ice-lite``, ICE credentials),
then ``m=`` sections with ``a=mid``, ``a=ice-ufrag``/``a=ice-pwd``,
``a=candidate`` and ``a=end-of-candidates`` (RFC 8840 §4.4, §9; RFC 9725
§4.3). ``parse_sdpfrag`` reads the whole body or refuses it with a
``FragmentError`` naming the line at fault, so a bad fragment changes
nothing. Everything here is pure: no peer connection, no event loop.

What the caller gets: the ICE credentials the fragment names (a new pair
means an ICE restart, RFC 9725 §4.3.2), the UDP candidates with the mid of
the section they were in, and whether end-of-candidates was signalled.
Candidates of a transport other than UDP are dropped silently, as RFC 9725
§4.3.1 asks of a session that does not support that transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiortc import RTCIceCandidate

MAX_LINES = 256
"""Lines a fragment may have (a full gathering is a few dozen)."""
MAX_CANDIDATES = 64
"""Candidates a fragment may carry."""
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
SESSION_LINES = ("a=", "m=", "c=")
"""The only SDP line types a fragment has (RFC 8840 §9): attributes, media, connection."""


class FragmentError(ValueError):
    """The body is not a trickle-ice-sdpfrag this server can read (the message says why)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One remote candidate and the ``a=mid`` of the section it was in (None: none given)."""

    mid: str | None
    candidate: RTCIceCandidate


@dataclass(slots=True)
class SdpFrag:
    """What a fragment says: ICE credentials (if any), candidates, end-of-candidates."""

    ufrag: str | None = None
    pwd: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    end_of_candidates: bool = False
    mids: list[str] = field(default_factory=list)

    def restarts(self, ufrag: str, pwd: str) -> bool:
        """Whether the fragment names ICE credentials other than ``ufrag``/``pwd`` (a restart)."""
        return (self.ufrag is not None and self.ufrag != ufrag) or (
            self.pwd is not None and self.pwd != pwd
        )


def parse_candidate(value: str) -> RTCIceCandidate | None:
    """An ``a=candidate:`` value (RFC 8839 §5.1) as an aiortc candidate; None for a
    non-UDP one (discarded, RFC 9725 §4.3.1). Raises ``FragmentError`` if malformed."""
    bits = value.split()
    if len(bits) < 8 or bits[6] != "typ":
        raise FragmentError("expected 'foundation component transport priority address port "
                            "typ type'")  # fmt: skip
    foundation, component, transport, priority, address, port, _, kind = bits[:8]
    if not component.isdigit() or not 1 <= int(component) <= 256:
        raise FragmentError(f"component {component!r} is not 1-256")
    if not priority.isdigit() or int(priority) >= 2**32:
        raise FragmentError(f"priority {priority!r} is not a 32-bit number")
    if not port.isdigit() or int(port) > 65535:
        raise FragmentError(f"port {port!r} is not 0-65535")
    if transport.lower() != "udp":
        return None  # e.g. TCP "active" candidates, port 9 (RFC 6544)
    if int(port) == 0:
        raise FragmentError("a UDP candidate's port is 1-65535, not 0")
    if kind not in CANDIDATE_TYPES:
        raise FragmentError(f"candidate type {kind!r} is not one of {', '.join(CANDIDATE_TYPES)}")
    if not foundation or len(foundation) > 32 or not address or len(address) > 255:
        raise FragmentError("foundation or address out of bounds")
    candidate = RTCIceCandidate(
        component=int(component), foundation=foundation, ip=address, port=int(port),
        priority=int(priority), protocol="udp", type=kind,
    )  # fmt: skip
    extensions = bits[8:]
    for name, extension in zip(extensions[::2], extensions[1::2], strict=False):
        if name == "raddr":
            candidate.relatedAddress = extension
        elif name == "rport" and extension.isdigit() and int(extension) <= 65535:
            candidate.relatedPort = int(extension)
    return candidate


def parse_sdpfrag(body: str) -> SdpFrag:
    """Read a trickle-ice-sdpfrag body; raises ``FragmentError`` naming the faulty line."""
    lines = [line for line in body.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        raise FragmentError("the fragment is empty")
    if len(lines) > MAX_LINES:
        raise FragmentError(f"the fragment has more than {MAX_LINES} lines")
    frag = SdpFrag()
    mid: str | None = None
    in_media = False
    for number, line in enumerate(lines, 1):
        try:
            in_media, mid = _read_line(frag, line, in_media, mid)
        except FragmentError as exc:
            raise FragmentError(f"line {number} ({line[:60]!r}): {exc}") from None
    if len(frag.candidates) > MAX_CANDIDATES:
        raise FragmentError(f"more than {MAX_CANDIDATES} candidates in one fragment")
    return frag


def _read_line(
    frag: SdpFrag, line: str, in_media: bool, mid: str | None
) -> tuple[bool, str | None]:
    """Apply one line to ``frag``; returns the new (inside an m= section, its mid)."""
    if not line.startswith(SESSION_LINES):
        raise FragmentError("not a line of a trickle-ice-sdpfrag (a=, m= or c= only)")
    if line.startswith("m="):
        if len(line.split()) < 4:
            raise FragmentError("an m= line needs media, port, proto and formats")
        return True, None
    if line.startswith("c="):
        return in_media, mid
    name, _, value = line[2:].partition(":")
    if name == "mid":
        if not in_media or not value or len(value) > 32:
            raise FragmentError("a=mid belongs in an m= section and is 1-32 characters")
        frag.mids.append(value)
        return in_media, value
    if name in ("ice-ufrag", "ice-pwd"):
        _credential(frag, name, value)
    elif name == "candidate":
        if not in_media:
            raise FragmentError("a=candidate belongs in an m= section (RFC 8840 §9)")
        candidate = parse_candidate(value)
        if candidate is not None:
            frag.candidates.append(Candidate(mid, candidate))
    elif name == "end-of-candidates":
        frag.end_of_candidates = True
    return in_media, mid  # other attributes (ice-options, group, ice-lite, ...) are ignored


def _credential(frag: SdpFrag, name: str, value: str) -> None:
    """Keep an ``a=ice-ufrag``/``a=ice-pwd`` value; the fragment must name one of each at most."""
    bounds = (4, 256) if name == "ice-ufrag" else (22, 256)  # RFC 8839 §5.4
    if not bounds[0] <= len(value) <= bounds[1] or any(c.isspace() for c in value):
        raise FragmentError(f"{name} must be {bounds[0]}-{bounds[1]} characters, no spaces")
    attribute = "ufrag" if name == "ice-ufrag" else "pwd"
    known = getattr(frag, attribute)
    if known is not None and known != value:
        raise FragmentError(f"a second, different {name}")
    setattr(frag, attribute, value)

"""Bounded fuzzing (Hypothesis) of what parses hostile input: the msgpack decoder
(structure-aware), SDP offers, JSON bodies and the token parser. The only
exception any of them may raise is a LivecoreError."""

from __future__ import annotations

import json
from typing import Any

import jwt
import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecore import rooms, sensors, tokens, wire
from livecore.errors import LivecoreError
from media.offers import check_publisher_offer, check_viewer_offer
from media.peers import NegotiationError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
SECRET = b"f" * 40

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(allow_nan=True),
    st.text(max_size=80), st.binary(max_size=40),
)  # fmt: skip
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8),
                                                                         inner, max_size=5),
    max_leaves=20,
)  # fmt: skip
field_names = st.sampled_from(
    ["text", "n", "poll", "option", "offset", "user", "duration_s", "kind", "gb", "qty", "lat",
     "lng", "community", "token", "since", "cid", "batch", "question", "options", "price_cents"]
)  # fmt: skip
messages = st.fixed_dictionaries(
    {"t": st.sampled_from([t.value for t in wire.ClientType]) | st.text(max_size=10)},
    optional={"id": values},
).flatmap(lambda base: st.dictionaries(field_names, values, max_size=6).map(
    lambda extra: {**extra, **base}))  # fmt: skip


@FUZZ
@given(messages)
def test_decoder_structured(message: dict[str, Any]) -> None:
    """Maps shaped like client messages: decoded or refused, never a crash."""
    try:
        frame = msgpack.packb(message)
    except (TypeError, ValueError, OverflowError):
        return
    try:
        wire.decode(frame)
    except LivecoreError:
        pass


@FUZZ
@given(st.binary(max_size=600))
def test_decoder_bytes(frame: bytes) -> None:
    """Arbitrary bytes: refused with a code, never a crash."""
    try:
        wire.decode(frame)
    except LivecoreError:
        pass


sdp_lines = st.lists(
    st.sampled_from(["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "c=IN IP4 0.0.0.0",
                     "m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96",
                     "a=rtpmap:96 H264/90000", "a=sendonly", "a=recvonly", "a=mid:0",
                     "a=candidate:1 1 udp 1 127.0.0.1 9 typ host", "a=ice-ufrag:x", "a=fmtp:96 x",
                     "a=setup:actpass", "a=fingerprint:sha-256 00"]) | st.text(max_size=40),
    max_size=30,
)  # fmt: skip


@FUZZ
@given(sdp_lines)
def test_sdp_parsing(lines: list[str]) -> None:
    """SDP-like text: read or refused as a bad offer (``NegotiationError``, answered
    ``bad_sdp``): aiortc alone raised StopIteration for ``m=audio … 111`` with
    ``a=fmtp:96 x``, a 500 before the check."""
    offer = "\r\n".join(["v=0", *lines]) + "\r\n"
    for check in (check_publisher_offer, check_viewer_offer):
        try:
            check(offer)
        except NegotiationError:
            pass


@FUZZ
@given(values)
def test_room_and_reading_bodies(body: Any) -> None:
    """JSON-shaped bodies for rooms and sensor readings: refused with a code."""
    try:
        json.dumps(body, allow_nan=True)
    except (TypeError, ValueError):
        return
    for parse in (lambda: rooms.new_room(body, host="h", now=1e9),
                  lambda: sensors.parse_readings(body, now=1e9)):  # fmt: skip
        try:
            parse()
        except LivecoreError:
            pass


@FUZZ
@given(st.dictionaries(st.sampled_from(["iss", "sub", "role", "room", "exp", "iat", "nbf",
                                        "cty", "bat", "jti"]), values, max_size=10),
       st.text(max_size=300))  # fmt: skip
def test_token_parser(claims: dict[str, Any], junk: str) -> None:
    """Signed tokens with hostile claims, and junk strings: refused with a code."""
    try:
        signed = jwt.encode(claims, SECRET, algorithm="HS256")
    except (TypeError, ValueError, OverflowError):
        signed = junk
    for value in (signed, junk):
        try:
            tokens.verify(SECRET, value, now=1e9, room="r1")
        except LivecoreError:
            pass

"""Server messages: websocket framing and batches (livecore.wire.encoding)."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError

# -- server frames ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e" + struct.pack("!H", 126)),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f" + struct.pack("!Q", 65536)),
    ],
)
def test_ws_frame_header(length: int, header: bytes) -> None:
    """ws_frame uses the 7-bit, 16-bit or 64-bit big-endian length form of RFC 6455 §5.2."""
    payload = bytes(i % 251 for i in range(length))
    frame = wire.ws_frame(payload)
    assert frame[: len(header)] == header
    assert frame[len(header) :] == payload
    assert frame[0] == 0x82  # FIN + binary opcode, no RSV bits
    assert not frame[1] & 0x80  # server frames are never masked


def _read_batch(data: bytes) -> list[tuple[str, Any]]:
    """The (key, value) pairs of a batch map, read in wire order."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(data)
    size = unpacker.read_map_header()
    pairs = [(unpacker.unpack(), unpacker.unpack()) for _ in range(size)]
    with pytest.raises(msgpack.OutOfData):
        unpacker.unpack()
    return pairs


def test_encode_batch_key_order_and_bounds() -> None:
    """A batch's keys come in the order t, a, z, ev, st with a/z the first/last offsets."""
    events = [
        wire.encode_event(5, {"t": "comment", "text": "a"}),
        wire.encode_event(6, {"t": "comment", "text": "b"}),
        wire.encode_event(9, {"t": "card", "card": {"kind": "product"}}),
    ]
    state = {"likes": 12, "viewers": 3}
    assert _read_batch(wire.encode_batch(events, state)) == [
        ("t", "batch"),
        ("a", 5),
        ("z", 9),
        ("ev", events),
        ("st", state),
    ]


def test_encode_batch_single_event() -> None:
    """With one event a and z are the same offset."""
    events = [wire.encode_event(1, {"t": "comment", "text": "a"})]
    pairs = _read_batch(wire.encode_batch(events, {}))
    assert [k for k, _ in pairs] == ["t", "a", "z", "ev", "st"]
    assert pairs[1:3] == [("a", 1), ("z", 1)]


def test_encode_batch_without_events() -> None:
    """A state-only batch has a and z nil and an empty event list."""
    assert _read_batch(wire.encode_batch([], {"likes": 1})) == [
        ("t", "batch"),
        ("a", None),
        ("z", None),
        ("ev", []),
        ("st", {"likes": 1}),
    ]


def test_encode_event_puts_offset_first() -> None:
    """An event as clients see it starts with its offset o."""
    assert list(wire.encode_event(3, {"t": "comment", "text": "x"})) == ["o", "t", "text"]


@pytest.mark.parametrize("request_id", [None, 0, 127, 128, 65_536, 2**53 - 1])
@pytest.mark.parametrize("text", ["sold out", "m" * 31, "m" * 32, "只剩" * 200])
def test_error_is_the_map_it_names(request_id: int | None, text: str) -> None:
    """An error answer (head and tail packed once, the id between) is the same bytes as
    the map {t, id, code, message} packed whole, whatever the id's and message's sizes."""
    err = LivecoreError(ErrorCode.FLASH_SOLD_OUT, text)
    whole = msgpack.packb(
        {"t": "error", "id": request_id, "code": "flash_sold_out", "message": text},
        use_bin_type=True,
    )
    assert wire.error(err, request_id) == wire.error(err, request_id) == whole

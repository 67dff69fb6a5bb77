"""The lean load client reads what the server's wire module writes."""

from __future__ import annotations

import msgpack
import pytest

from livecore import wire
from loadtests.wsclient import batch_offsets, client_frame


@pytest.mark.parametrize(
    ("first", "last"), [(1, 1), (5, 127), (128, 255), (256, 70000), (2**32, 2**32 + 3)]
)
def test_batch_offsets_match_encode_batch(first: int, last: int) -> None:
    """a and z are read without decoding, for every msgpack integer width."""
    events = [{"o": first, "t": "comment"}, {"o": last, "t": "comment"}]
    assert batch_offsets(wire.encode_batch(events, {"likes": 3})) == (first, last)


def test_state_only_batch_and_other_messages() -> None:
    """A batch without events reads (None, None); other messages are not batches."""
    assert batch_offsets(wire.encode_batch([], {"viewers": 2})) == (None, None)
    assert batch_offsets(wire.ack(1, o=5)) is None


def test_client_frame_is_masked_binary() -> None:
    """Client frames set FIN, opcode 2 and the mask bit (RFC 6455 §5.3)."""
    frame = client_frame(msgpack.packb({"t": "like", "n": 1}))
    assert frame[0] == 0x82 and frame[1] & 0x80
    long = client_frame(b"x" * 300)
    assert long[1] == 0x80 | 126 and int.from_bytes(long[2:4], "big") == 300

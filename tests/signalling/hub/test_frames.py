"""The client-frame splitter: whole frames out of any chunking, messages unmasked."""

from __future__ import annotations

import os

import pytest
from websockets.frames import Frame, Opcode

from signalling.hub.frames import FRAME, MESSAGE, REST, ClientFrames


def masked(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    """A frame as a client sends it (masked), serialised by websockets itself."""
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


def split_all(chunks: list[bytes], max_size: int = 8192) -> list[tuple[int, bytes]]:
    frames = ClientFrames(max_size)
    return [item for chunk in chunks for item in frames.split(chunk)]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 300, 65535, 65536])
def test_a_binary_frame_of_any_length_form_is_one_message(size: int) -> None:
    """7-bit, 16-bit and 64-bit lengths (RFC 6455 §5.2) give the unmasked payload."""
    payload = os.urandom(size)
    assert split_all([masked(Opcode.BINARY, payload)], max_size=70_000) == [(MESSAGE, payload)]


def test_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    """Every byte boundary of three frames in a row: the same three items."""
    a, b = b"\x81\xa1t\xa4like", b"x" * 200
    stream = masked(Opcode.BINARY, a) + masked(Opcode.PING, b"p") + masked(Opcode.BINARY, b)
    whole = split_all([stream])
    assert [kind for kind, _ in whole] == [MESSAGE, FRAME, MESSAGE]
    assert whole[0][1] == a and whole[2][1] == b
    for cut in range(1, len(stream)):
        for cut2 in (cut, min(len(stream), cut + 7)):
            assert split_all([stream[:cut], stream[cut:cut2], stream[cut2:]]) == whole


@pytest.mark.parametrize(
    "frame",
    [
        masked(Opcode.TEXT, b"text"),
        masked(Opcode.BINARY, b"part", fin=False),
        masked(Opcode.CONT, b"more"),
        masked(Opcode.CLOSE, b"\x03\xe8"),
        masked(Opcode.PONG, b""),
    ],
    ids=["text", "fragment", "continuation", "close", "pong"],  # masks are random
)
def test_other_frames_go_whole_to_the_protocol(frame: bytes) -> None:
    """Text, fragments and control frames are the protocol's, byte for byte."""
    assert split_all([frame[:3], frame[3:]]) == [(FRAME, frame)]


def test_a_frame_over_the_limit_hands_the_rest_to_the_protocol() -> None:
    """Over ``max_size`` (the protocol closes 1009): that frame and everything after."""
    frames = ClientFrames(10)
    big = masked(Opcode.BINARY, b"y" * 11)
    assert frames.split(masked(Opcode.BINARY, b"ok") + big[:5]) == [
        (MESSAGE, b"ok"),
        (REST, big[:5]),
    ]
    assert frames.done


def test_an_unmasked_frame_hands_the_rest_to_the_protocol() -> None:
    """A client frame must be masked (§5.3): the protocol closes 1002."""
    unmasked = Frame(Opcode.BINARY, b"hi").serialize(mask=False)
    frames = ClientFrames(8192)
    assert frames.split(unmasked + b"junk") == [(REST, unmasked + b"junk")]
    assert frames.done


def test_take_rest_returns_the_incomplete_frame_once() -> None:
    """What is kept of a frame still arriving goes to the protocol when it takes over."""
    frame = masked(Opcode.BINARY, b"abcdef")
    frames = ClientFrames(8192)
    assert frames.split(frame[:4]) == []
    assert frames.take_rest() == frame[:4] and frames.done
    assert frames.take_rest() == b""

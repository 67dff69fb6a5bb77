"""Server → client messages: msgpack encodings and the unmasked frame around them.

A room's broadcast is encoded once per tick (``encode_batch``) and framed
once (``ws_frame``); the same bytes are then written to every connection.
Acks and errors answer one request (``ack``, ``error``).
"""

from __future__ import annotations

import functools
import struct
from typing import Any

import msgpack

from livecore.errors import LivecoreError
from livecore.wire.vocabulary import ServerType


def ws_frame(payload: bytes) -> bytes:
    """An unmasked, final binary websocket frame (RFC 6455 §5.2).

    Server frames are never masked (§5.1), so one frame's bytes can be
    written to any number of connections: this is what makes a broadcast
    cost one encode, not one per viewer.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


_packer = msgpack.Packer(use_bin_type=True)


def encode(message: dict[str, Any]) -> bytes:
    """One server message as msgpack bytes (keys in insertion order)."""
    packed: bytes = _packer.pack(message)
    return packed


def encode_event(offset: int, event: dict[str, Any]) -> dict[str, Any]:
    """An event as clients see it: ``{"o": offset, "t": type, ...}``."""
    return {"o": offset, **event}


def encode_batch(events: list[dict[str, Any]], state: dict[str, Any]) -> bytes:
    """The broadcast of one tick, encoded once for every connection of a room.

    ``{"t": "batch", "a": first offset, "z": last offset, "ev": [...], "st": {...}}``
    with ``a``/``z`` nil when the tick has no events. The key order is fixed
    so a lean client can read ``a`` and ``z`` without decoding the events.
    """
    first = events[0]["o"] if events else None
    last = events[-1]["o"] if events else None
    packed: bytes = _packer.pack(
        {"t": ServerType.BATCH.value, "a": first, "z": last, "ev": events, "st": state}
    )
    return packed


def ack(request_id: int | None, **fields: Any) -> bytes:
    return encode({"t": ServerType.ACK.value, "id": request_id, **fields})


#: ``{"t": "error", "id": ``: the head of every error answer (a map of 4).
_ERROR_HEAD = b"\x84" + b"".join(_packer.pack(x) for x in ("t", ServerType.ERROR.value, "id"))


@functools.lru_cache(maxsize=256)
def _error_tail(code: str, message: str) -> bytes:
    """``"code": code, "message": message`` packed once: a sale's opening rush answers
    thousands of taps with the same refusal, only the request id differs."""
    packed: bytes = _packer.pack({"code": code, "message": message})
    return packed[1:]


def error(err: LivecoreError, request_id: int | None = None) -> bytes:
    """``{"t": "error", "id": request_id, "code": ..., "message": ...}``."""
    rid: bytes = _packer.pack(request_id)
    return _ERROR_HEAD + rid + _error_tail(err.code.value, err.message)

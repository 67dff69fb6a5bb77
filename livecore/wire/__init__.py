"""The room channel's wire format (sans-I/O): msgpack frames, message types, close codes.

Subprotocol ``livecore.v1``. Every websocket message is one binary frame
holding one msgpack map with a type key ``"t"``. Client → server messages
are decoded and checked (size, types, ranges) before any handler sees them
(:mod:`livecore.wire.checks`); server → client messages are built so that
the broadcast of a room is encoded once per tick (``encode_batch``) and
written to every connection as the same bytes (:mod:`livecore.wire.encoding`);
the close codes and message types both sides share are one vocabulary
(:mod:`livecore.wire.vocabulary`). docs/protocol.md documents every message,
field, error code and close code; a test checks the lists match.

Callers use this package's names (``wire.decode``, ``wire.ClientType``,
``wire.encode_batch``); the modules behind it import only downwards
(vocabulary ← checks, vocabulary ← encoding) and never this package.
"""

from __future__ import annotations

from livecore.wire.checks import CARD_FIELDS, Message, decode
from livecore.wire.encoding import ack, encode, encode_batch, encode_event, error, ws_frame
from livecore.wire.vocabulary import (
    MAX_CLIENT_FRAME,
    SUBPROTOCOL,
    ClientType,
    CloseCode,
    EventType,
    ServerType,
)

__all__ = [
    "CARD_FIELDS",
    "MAX_CLIENT_FRAME",
    "SUBPROTOCOL",
    "ClientType",
    "CloseCode",
    "EventType",
    "Message",
    "ServerType",
    "ack",
    "decode",
    "encode",
    "encode_batch",
    "encode_event",
    "error",
    "ws_frame",
]

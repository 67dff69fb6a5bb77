"""A client's bytes split into whole websocket frames, the room channel's messages unmasked.

websockets' sans-I/O parser reads a frame through a chain of generators (a
few microseconds a frame in Python); a room channel's request is one small
masked binary frame, which this splitter reads with two index looks and one
C unmasking (websockets' own ``apply_mask``). Everything else (control
frames, text, fragments) is handed to the protocol as whole frames, so the
protocol's parser always waits at a frame boundary and stays the one judge of
what is not a plain message (RFC 6455 §5.2 framing, §5.3 masking).

Pure: no event loop, no socket. The contract: feed every byte received after
the opening handshake to :meth:`ClientFrames.split`, in order, and act on its
items in order; once it returns a ``REST`` item (or :meth:`ClientFrames.take_rest`
was called) it is done, and every later byte goes to the protocol.
"""

from __future__ import annotations

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C helper
    from websockets.utils import apply_mask

#: A binary message's payload, unmasked.
MESSAGE = 0
#: A whole frame of another kind (control, text, fragment): for the protocol.
FRAME = 1
#: Bytes from a frame the protocol refuses (unmasked, over the size limit) to
#: the end: for the protocol, and so is every byte after.
REST = 2
#: FIN + binary opcode, no RSV bits (no extension is negotiated on the channel).
_FIN_BINARY = 0x82


class ClientFrames:
    """Splits the masked frames a client sends into whole frames (see the module doc).

    At most one incomplete frame is kept between calls: ``max_size`` payload
    bytes plus a 14-byte header.
    """

    __slots__ = ("_rest", "done", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._rest = b""
        #: A REST item was returned: every later byte goes to the protocol.
        self.done = False

    def split(self, data: bytes) -> list[tuple[int, bytes]]:
        """The whole frames ``data`` completes, in order, as (kind, bytes) items."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(data)
        while end - pos >= 2:
            b1 = data[pos + 1]
            n = b1 & 0x7F
            head = pos + 2
            if n == 126:
                if end - head < 2:
                    break
                n = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif n == 127:
                if end - head < 8:
                    break
                n = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if n > self.max_size or not b1 & 0x80:
                # The protocol closes (1009 too big, 1002 unmasked) and sees what follows.
                out.append((REST, data[pos:]))
                self.done = True
                return out
            stop = head + 4 + n
            if stop > end:
                break
            if data[pos] == _FIN_BINARY:
                out.append((MESSAGE, apply_mask(data[head + 4 : stop], data[head : head + 4])))
            else:
                out.append((FRAME, data[pos:stop]))
            pos = stop
        if pos < end:
            self._rest = data[pos:]
        return out

    def take_rest(self) -> bytes:
        """The bytes of the incomplete frame kept so far (for the protocol, which then
        reads every later byte); the splitter keeps nothing after this."""
        rest, self._rest = self._rest, b""
        self.done = True
        return rest

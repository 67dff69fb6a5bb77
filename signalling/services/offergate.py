"""How many WHEP offers a node answers at once, and how long one may wait for its turn.

Answering an offer (an ``RTCPeerConnection``, its sockets, the answer) costs
the node's loop a few milliseconds; a compound's thousand phones opening the
live together ask for seconds of it at once. Without a gate every answer
interleaves with every other, all of them finish late, and meanwhile the
viewers already watching and the publisher's consent checks wait behind them.
Through :class:`OfferGate` the node answers a few offers at a time (the
number follows how late its broadcast tick runs, as for hellos:
:mod:`signalling.node.admission`), in arrival order. The queue is bounded,
and so is the wait: an offer that finds the queue full, or waits longer than
``WAIT_S``, is refused 503 ``node_full`` with ``Retry-After`` (the viewer page
plays HLS meanwhile and comes back), having changed nothing. Publishers
(WHIP) do not queue behind viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from livecore.errors import ErrorCode, LivecoreError
from signalling.node.admission import Admission, Full

#: Offers answered at once at most, and at least (under pressure).
MOST = 16
LEAST = 4
#: Offers waiting their turn at most (each an open HTTP request).
MAX_WAITING = 2000
#: Longest wait for a turn; then the offer is refused and told to come back.
WAIT_S = 10.0
#: What a refused viewer is told (whole seconds).
RETRY_AFTER_S = 2


class OfferGate:
    """``async with gate.turn():`` around answering one viewer's offer."""

    def __init__(
        self, most: int = MOST, least: int = LEAST, max_waiting: int = MAX_WAITING,
        wait_s: float = WAIT_S,
    ) -> None:  # fmt: skip
        self.admission = Admission(most, least, max_waiting)
        self.wait_s = wait_s

    @property
    def waiting(self) -> int:
        return self.admission.waiting

    def observe(self, late_s: float) -> None:
        """The broadcast tick woke ``late_s`` after it asked to."""
        self.admission.observe(late_s)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.wait_s):
                await self.admission.__aenter__()
        except Full:
            raise self._busy(f"{self.admission.waiting} viewers are waiting to connect") from None
        except TimeoutError:
            raise self._busy(f"no turn within {self.wait_s:g} s") from None
        try:
            yield
        finally:
            await self.admission.__aexit__(None, None, None)

    @staticmethod
    def _busy(why: str) -> LivecoreError:
        return LivecoreError(
            ErrorCode.NODE_FULL,
            f"this node is busy connecting other viewers ({why}); retry in {RETRY_AFTER_S} s",
            retry_after_s=RETRY_AFTER_S,
        )

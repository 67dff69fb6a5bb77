"""How many hellos (or offers) a node serves at once, so that newcomers never starve
the room.

A visit (upgrade, hello, snapshot) costs the node's one loop about as much
CPU as a second of a busy room's broadcasts. When visits come faster than
the loop can serve them, every callback waits, and the viewers already in
the room see their comments late. The broadcast tick knows: it measures how
late it wakes (:meth:`Admission.observe`). While it is late, the number of
hellos served at once is halved (down to ``least``); while it is on time, it
grows back by one per tick (up to ``most``). Hellos over the limit wait their
turn (their socket is open, the hello timer is stopped), in arrival order.

The media plane answers WHEP offers through a gate of its own, fed by the
same tick (an answer costs a few milliseconds of the loop; a thousand
neighbours opening the live at once must not stall the viewers already
watching nor the publisher's consent checks). Its queue is bounded: an offer
that finds it full is refused at once (``Full``) and told when to come back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

#: Hellos served at once at most, and at least (under pressure).
MOST = 32
LEAST = 2
#: A tick this much late (seconds) halves the limit; one this close to on time adds 1.
LATE_S = 0.004
CALM_S = 0.001


class Full(Exception):
    """The gate's queue is full: come back later."""


class Admission:
    """An adaptive semaphore: ``async with admission:`` around a hello's work.

    ``max_waiting``: at most this many wait their turn; one more is refused
    with ``Full`` (None: the caller bounds them, as the hub's socket cap does).
    """

    def __init__(
        self, most: int = MOST, least: int = LEAST, max_waiting: int | None = None
    ) -> None:
        self.most = most
        self.least = least
        self.limit = most
        self.active = 0
        self.max_waiting = max_waiting
        #: Those waiting their turn (bounded by ``max_waiting`` or by the caller).
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def observe(self, late_s: float) -> None:
        """The broadcast tick woke ``late_s`` after it asked to."""
        if late_s > LATE_S:
            self.limit = max(self.least, self.limit // 2)
        elif late_s < CALM_S and self.limit < self.most:
            self.limit += 1
            self._wake()

    async def __aenter__(self) -> None:
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return
        if self.max_waiting is not None and len(self._waiting) >= self.max_waiting:
            raise Full(f"{len(self._waiting)} already waiting")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # granted, then cancelled: give it back
                self._release()
            elif turn in self._waiting:  # a turn handed out meanwhile skipped it (done)
                turn.cancel()
                self._waiting.remove(turn)
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def _release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.active < self.limit:
            turn = self._waiting.popleft()
            if not turn.done():
                self.active += 1
                turn.set_result(None)

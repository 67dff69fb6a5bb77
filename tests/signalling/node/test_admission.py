"""The hellos a node serves at once follow how late its broadcast tick runs."""

from __future__ import annotations

import asyncio

import pytest

from signalling.node.admission import CALM_S, LATE_S, Admission, Full


def test_late_ticks_halve_the_limit_and_calm_ones_grow_it_back() -> None:
    gate = Admission(most=32, least=2)
    for expected in (16, 8, 4, 2, 2):
        gate.observe(LATE_S * 2)
        assert gate.limit == expected
    gate.observe((LATE_S + CALM_S) / 2)  # neither late nor calm: unchanged
    assert gate.limit == 2
    for _ in range(40):
        gate.observe(0.0)
    assert gate.limit == 32


async def test_hellos_over_the_limit_wait_their_turn_in_order() -> None:
    gate = Admission(most=2, least=1)
    order: list[int] = []
    release = asyncio.Event()

    async def hello(i: int) -> None:
        async with gate:
            order.append(i)
            await release.wait()

    tasks = [asyncio.create_task(hello(i)) for i in range(5)]
    await asyncio.sleep(0)  # nothing else may run in this turn: the tasks start
    assert order == [0, 1] and gate.active == 2 and gate.waiting == 3
    gate.observe(0.0)  # already at its most: no third turn
    await asyncio.sleep(0)  # nothing may be let in by that
    assert order == [0, 1]
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4] and gate.active == 0 and gate.waiting == 0


async def test_a_waiting_hello_that_goes_away_leaves_no_trace() -> None:
    """A socket closed while its hello waits: its turn is not taken, not leaked."""
    gate = Admission(most=1, least=1)
    hold = asyncio.Event()

    async def hello() -> None:
        async with gate:
            await hold.wait()

    first = asyncio.create_task(hello())
    waiting = asyncio.create_task(hello())
    await asyncio.sleep(0)  # nothing else may run in this turn: both start
    assert gate.active == 1 and gate.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.waiting == 0
    hold.set()
    await first
    assert gate.active == 0


async def test_a_full_queue_refuses_at_once_and_changes_nothing() -> None:
    """With ``max_waiting``, one more than that is refused (``Full``) without waiting;
    those in the queue keep their places and turns."""
    gate = Admission(most=1, least=1, max_waiting=2)
    release = asyncio.Event()
    order: list[int] = []

    async def offer(i: int) -> None:
        async with gate:
            order.append(i)
            await release.wait()

    tasks = [asyncio.create_task(offer(i)) for i in range(3)]
    await asyncio.sleep(0)  # nothing else may run in this turn: the tasks start
    assert gate.active == 1 and gate.waiting == 2
    with pytest.raises(Full):
        async with gate:
            pytest.fail("a fourth offer must not get a turn")
    assert gate.active == 1 and gate.waiting == 2
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and gate.active == 0 and gate.waiting == 0


async def test_a_wait_cut_short_by_a_deadline_gives_its_place_back() -> None:
    """An offer whose wait times out leaves the queue; the next one gets the turn."""
    gate = Admission(most=1, least=1, max_waiting=4)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate:
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)  # the holder takes the only turn
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            async with gate:
                pytest.fail("no turn while the holder holds it")
    assert gate.waiting == 0 and gate.active == 1
    release.set()
    await held
    async with gate:
        assert gate.active == 1
    assert gate.active == 0


async def test_a_cancelled_wait_the_queue_already_dropped_leaves_cleanly() -> None:
    """A waiter cancelled (a timeout, a client gone), then a turn handed out before the
    waiter runs again: the hand-out skips its cancelled turn and drops it from the
    queue; the waiter's own clean-up must not fail on it (it was a 500 under a storm)."""
    gate = Admission(most=1, least=1)
    await gate.__aenter__()  # the only turn, held
    waiter = asyncio.create_task(gate.__aenter__())
    await asyncio.sleep(0)  # nothing else may run in this turn: the waiter queues
    assert gate.waiting == 1
    waiter.cancel()  # its turn future is cancelled now; its handler runs later
    await gate.__aexit__(None, None, None)  # the hand-out meets the cancelled turn first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.active == 0 and gate.waiting == 0
    async with gate:
        assert gate.active == 1

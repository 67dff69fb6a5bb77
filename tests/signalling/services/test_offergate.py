"""The WHEP offer gate: a few answers at once, a bounded queue, a bounded wait."""

from __future__ import annotations

import asyncio

import pytest

from livecore.errors import ErrorCode, LivecoreError
from signalling.node.admission import LATE_S
from signalling.services.offergate import RETRY_AFTER_S, OfferGate


async def test_offers_past_the_queue_are_refused_node_full_with_retry_after() -> None:
    gate = OfferGate(most=2, least=1, max_waiting=1)
    release = asyncio.Event()
    answered: list[int] = []

    async def answer(i: int) -> None:
        async with gate.turn():
            answered.append(i)
            await release.wait()

    tasks = [asyncio.create_task(answer(i)) for i in range(3)]
    await asyncio.sleep(0)  # nothing else may run in this turn: the tasks start
    assert answered == [0, 1] and gate.waiting == 1
    with pytest.raises(LivecoreError) as refused:
        async with gate.turn():
            pytest.fail("a fourth offer must not be answered")
    assert refused.value.code is ErrorCode.NODE_FULL
    assert refused.value.retry_after_s == RETRY_AFTER_S
    assert "1 viewers are waiting" in refused.value.message
    release.set()
    await asyncio.gather(*tasks)
    assert answered == [0, 1, 2] and gate.waiting == 0


async def test_an_offer_that_waits_too_long_is_refused_and_leaves_the_queue() -> None:
    gate = OfferGate(most=1, least=1, max_waiting=10, wait_s=0.05)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.turn():
            await release.wait()

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)  # the holder takes the only turn
    with pytest.raises(LivecoreError, match=r"no turn within 0\.05 s"):
        async with gate.turn():
            pytest.fail("no turn while the holder holds it")
    assert gate.waiting == 0
    release.set()
    await held
    async with gate.turn():  # the turn came back
        pass


def test_a_late_tick_narrows_the_gate() -> None:
    gate = OfferGate(most=16, least=4)
    for expected in (8, 4, 4):
        gate.observe(LATE_S * 2)
        assert gate.admission.limit == expected

"""KeyedLocks: serialises one key's holders, keeps nothing once they are gone."""

from __future__ import annotations

import asyncio

from signalling.node.background import BackgroundTasks
from signalling.node.keyedlocks import KeyedLocks


async def test_one_holder_per_key_and_no_leftovers() -> None:
    """Holders of one key run one at a time; after them, no entry is left."""
    locks = KeyedLocks()
    inside: list[int] = []
    most = 0

    async def hold(n: int) -> None:
        nonlocal most
        async with locks.hold("k"):
            inside.append(n)
            most = max(most, len(inside))
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(hold(n) for n in range(5)))
    assert most == 1 and len(locks) == 0
    for key in range(1000):  # client-chosen keys do not accumulate
        async with locks.hold(f"publisher-{key}"):
            pass
    assert len(locks) == 0


async def test_failed_holder_leaves_nothing() -> None:
    """A holder that raises still releases its key's entry."""
    locks = KeyedLocks()
    try:
        async with locks.hold("k"):
            raise TimeoutError
    except TimeoutError:
        pass
    assert len(locks) == 0


async def test_background_tasks_are_kept_and_failures_logged() -> None:
    """A spawned task is held until done; its exception is counted (and logged)."""
    import logging

    tasks = BackgroundTasks(logging.getLogger("test"))

    async def boom() -> None:
        raise ValueError("x")

    tasks.spawn(boom())
    assert len(tasks) == 1
    await asyncio.sleep(0.01)
    assert len(tasks) == 0 and tasks.failures == 1

"""Waiting on conditions in tests: poll an observable value until it holds, with a
deadline (never a bare sleep that hopes something has happened by then)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, within: float, step: float = 0.05, what: str = ""
) -> T:
    """Call ``check`` (sync or async) until it returns something truthy, and return that;
    fail with AssertionError after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        assert loop.time() < deadline, f"not within {within} s: {what or check}"
        await asyncio.sleep(step)


async def events_within(client: Any, seconds: float) -> list[dict[str, Any]]:
    """Every event ``client`` (a RoomClient) receives in the next ``seconds``."""
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            out.append(await client.next_event(wait=left))
        except TimeoutError:
            break
    return out

"""Load processes and how a driver talks to them: spawn, pipe, deadlines.

A benchmark driver runs its clients in worker processes (one event loop
each, pinned to the load CPU). ``Worker`` is the driver's handle: it spawns
the process with a pipe, turns incoming messages into an asyncio queue
(``expect``) and ``("progress", ...)`` messages into a callback.
``recv_until`` is the worker side: the driver's next message, or None once
the worker's wall-clock deadline passed, so every worker stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import psutil


def run_loop(coro_factory: Callable[[], Any]) -> Any:
    """Run a coroutine in a fresh event loop (uvloop when installed) and return its result."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro_factory())
    return uvloop.run(coro_factory())


async def recv_until(pipe: Connection, deadline_wall: float) -> Any:
    """The driver's next message, or None once ``deadline_wall`` (``time.time()``) passed
    or the driver went away."""

    def wait() -> Any:
        while time.time() < deadline_wall:
            try:
                if pipe.poll(0.5):
                    return pipe.recv()
            except (EOFError, OSError):
                return None
        return None

    return await asyncio.to_thread(wait)


class Worker:
    """A load process, and a thread that turns its pipe into an asyncio queue.

    Progress messages update ``progress`` and call ``on_progress``; the others
    are queued for ``expect``.
    """

    def __init__(
        self, name: str, target: Any, spec: Any, on_progress: Callable[[], None] | None = None
    ) -> None:
        ctx = mp.get_context("spawn")
        self.name = name
        self.pipe, theirs = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(theirs, spec), daemon=True, name=name)
        self.process.start()
        theirs.close()
        self.progress: tuple[Any, ...] = (0, 0)
        # A worker sends a handful of messages (ready, results); progress is not queued.
        self.inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(maxsize=1024)
        loop = asyncio.get_running_loop()

        def deliver(message: tuple[Any, ...]) -> None:
            if message[0] == "progress":
                self.progress = message[1:]
                if on_progress is not None:
                    on_progress()
            else:
                self.inbox.put_nowait(message)

        def pump(pipe: Connection) -> None:
            while True:
                try:
                    message = pipe.recv()
                except (EOFError, OSError):
                    message = ("exit",)
                loop.call_soon_threadsafe(deliver, message)
                if message == ("exit",):
                    return

        threading.Thread(target=pump, args=(self.pipe,), daemon=True).start()

    def send(self, message: Any) -> None:
        with contextlib.suppress(OSError):
            self.pipe.send(message)

    async def expect(self, kind: str, deadline: float) -> tuple[Any, ...]:
        """The next message of ``kind``; raises if the process ends or the deadline passes."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load process {self.name} did not report {kind!r} in time")
            try:
                message = await asyncio.wait_for(self.inbox.get(), timeout=left)
            except TimeoutError:
                continue
            if message[0] == "exit":
                raise RuntimeError(f"load process {self.name} exited early")
            if message[0] == kind:
                return message

    @property
    def psutil(self) -> psutil.Process | None:
        try:
            return psutil.Process(self.process.pid) if self.process.pid else None
        except psutil.Error:
            return None


async def collect(workers: list[Worker], kind: str, deadline: float) -> list[tuple[Any, ...]]:
    return list(await asyncio.gather(*(w.expect(kind, deadline) for w in workers)))

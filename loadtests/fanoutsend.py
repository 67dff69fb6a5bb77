"""The comment side of ``fanout``: host connections sending into N rooms at one total rate.

Comments go round-robin over the rooms (comment ``seq`` into room ``seq % N``),
so each room gets ``rate / N`` per second; each room has as many host
connections as its share needs at ``PER_SENDER_RATE`` each. Acks are counted
per room: a viewer of a room must end at that room's last acked offset.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack

from loadtests.local import Cluster
from loadtests.stats import log
from loadtests.wsclient import LeanConnection, Stats, host_port, open_connection

#: The one room of a single-room run (the name every earlier run used).
ROOM = "fanout"
#: Comments one sender connection sends per second (the node allows 20 messages/s).
PER_SENDER_RATE = 15.0
ACK_WAIT_S = 10.0


def room_names(count: int) -> list[str]:
    """``["fanout"]`` for one room, else ``fanout-0`` … ``fanout-<count-1>``."""
    return [ROOM] if count == 1 else [f"{ROOM}-{i}" for i in range(count)]


class Sender(LeanConnection):
    """A host connection that counts the acks of its comments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked = 0
        self.errors = 0
        self.top = 0
        #: Refusals by error code (rate_limited: the node read a burst past the bucket).
        self.codes: Counter[str] = Counter()

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == "ack" and "o" in message:
            self.acked += 1
            self.top = max(self.top, int(message["o"]))
        elif kind == "error":
            self.errors += 1
            self.codes[str(message.get("code"))] += 1
        else:
            super().on_message(message)


@dataclass
class Sent:
    """What the senders of one room saw: acked comments, refusals, the last offset."""

    acked: int = 0
    errors: int = 0
    top: int = 0
    codes: Counter[str] = field(default_factory=Counter)


async def _open(cluster: Cluster, rooms: list[str], per_room: int) -> list[list[Sender]]:
    stats = Stats()

    async def one(i: int, room: str, k: int) -> Sender:
        host, port = host_port(cluster.urls[(i * per_room + k) % len(cluster.urls)])
        token = cluster.token("host", f"sender-{i}-{k}", room)
        hello = msgpack.packb({"t": "hello", "token": token})
        conn = await open_connection(host, port, room, hello, stats, factory=Sender)
        assert isinstance(conn, Sender)
        return conn

    opened = await asyncio.gather(
        *(one(i, room, k) for i, room in enumerate(rooms) for k in range(per_room))
    )
    return [list(opened[i * per_room : (i + 1) * per_room]) for i in range(len(rooms))]


async def send(cluster: Cluster, rooms: list[str], rate: float, duration: float) -> dict[str, Sent]:
    """Send ``rate`` comments/s in total for ``duration`` s, spread over ``rooms``;
    wait (at most ``ACK_WAIT_S``) for their acks; returns what each room acked."""
    per_room = max(1, math.ceil(rate / len(rooms) / PER_SENDER_RATE))
    senders = await _open(cluster, rooms, per_room)
    total = int(rate * duration)
    started = time.monotonic()
    every = max(1, int(rate))
    for seq in range(total):
        delay = started + seq / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = {"t": "comment", "id": seq, "text": f"comment {seq}",
                   "cid": f"{seq}-{time.time_ns()}"}  # fmt: skip
        room = seq % len(rooms)
        senders[room][(seq // len(rooms)) % per_room].send(msgpack.packb(payload))
        if seq and seq % every == 0:
            log(f"  sending: {seq}/{total} comments, {time.monotonic() - started:.0f} s")
    everyone = [s for group in senders for s in group]
    deadline = time.monotonic() + ACK_WAIT_S
    while sum(s.acked + s.errors for s in everyone) < total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    for sender in everyone:
        if sender.transport is not None:
            sender.transport.close()
    return {
        room: Sent(sum(s.acked for s in group), sum(s.errors for s in group),
                   max(s.top for s in group), sum((s.codes for s in group), Counter()))
        for room, group in zip(rooms, senders, strict=True)
    }  # fmt: skip

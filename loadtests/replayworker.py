"""One replay load process: its share of the virtual audience, played on one event loop.

The driver (``loadtests.replay``) starts one process per load core. Each
reads the trace itself, keeps the virtual clients ``v`` with
``v % shards == shard`` (trace client ``c`` becomes ``c * scale + k`` for
``k < scale``) and plays their events at ``start_wall + t / speed``: one
scheduler walks the time-ordered list and sends what is due every few
milliseconds (no task or timer per event), joins run as bounded concurrent
connects. Memory per client is a socket, its parser state and a token.

Messages (``loadtests.workers`` pipe protocol): → ``("progress", {...})``
every second; → ``("played", top_offset)`` when the window ends; ←
``("final", offset)``: drain until every open client saw ``offset`` (at most
``DRAIN_S``); → ``("result", {...})``; then it closes its sockets and exits.
It also stops by itself at ``deadline_wall``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from livecore import tokens
from livecore.audience.trace import Event, Kind, read_trace
from loadtests.local import pin
from loadtests.replayclient import (
    ERROR_CONNECT,
    Counters,
    ReplayConnection,
    connect,
    hello,
)
from loadtests.stats import percentile
from loadtests.workers import recv_until, run_loop
from loadtests.wsclient import host_port

DRAIN_S = 8.0
MAX_WAITING = 32
"""Events a client may do while its connection is still being set up."""
CONNECT_CONCURRENCY = 256
MAX_BIN_SAMPLES = 300
"""Latency samples kept per second per process (for the percentiles over time)."""
MAX_GAPS = 50_000
"""Send times kept of copy 0's comments (for the inter-arrival shape)."""
REPLAYED = frozenset(
    {Kind.JOIN, Kind.LEAVE, Kind.COMMENT, Kind.LIKE, Kind.VOTE, Kind.GROUP_JOIN,
     Kind.GROUP_LEAVE, Kind.OFFICER_APPLY, Kind.RECONNECT}
)  # fmt: skip


@dataclass
class ReplaySpec:
    """What one load process plays (picklable; sent at spawn)."""

    trace_path: str
    shard: int
    shards: int
    scale: int
    speed: float
    window_s: float
    """Wall seconds played (trace seconds = window_s * speed)."""
    urls: list[str]
    room: str
    secret: bytes
    start_wall: float
    deadline_wall: float
    cpu: int | None
    polls: list[str] = field(default_factory=list)
    groupbuys: list[str] = field(default_factory=list)
    sample_every: int = 50


@dataclass(frozen=True, slots=True)
class Planned:
    due: float
    """Seconds after the start (wall)."""
    client: int
    kind: Kind
    community: int
    value: int | str
    ref: int
    """The poll or group buy (index in the trace) a vote or group action is about."""
    copy: int


def plan(events: list[Event], spec: ReplaySpec) -> list[Planned]:
    """This shard's virtual events in time order (see the module doc)."""
    out: list[Planned] = []
    limit_ms = spec.window_s * spec.speed * 1000
    polls = gbs = -1
    for e in events:
        if e.t_ms >= limit_ms:
            break
        if e.kind == Kind.POLL_OPEN:
            polls += 1
        elif e.kind == Kind.GROUPBUY_OPEN:
            gbs += 1
        if e.kind not in REPLAYED or e.client == 0:
            continue
        ref = polls if e.kind == Kind.VOTE else gbs
        for k in range(spec.scale):
            v = e.client * spec.scale + k
            if v % spec.shards == spec.shard:
                out.append(Planned(e.t_ms / 1000 / spec.speed, v, e.kind, e.community,
                                   e.value, ref, k))  # fmt: skip
    return out


def worker_main(pipe: Connection, spec: ReplaySpec) -> None:
    if spec.cpu is not None:
        pin(os.getpid(), spec.cpu)
    run_loop(lambda: Player(pipe, spec).run())


class Player:
    """Plays one shard; see the module doc."""

    def __init__(self, pipe: Connection, spec: ReplaySpec) -> None:
        self.pipe, self.spec = pipe, spec
        trace = read_trace(Path(spec.trace_path))
        self.communities = trace.communities
        self.events = plan(trace.events, spec)
        self.counters = Counters()
        self.conns: dict[int, ReplayConnection] = {}
        self.joining: dict[int, list[Planned]] = {}
        """Clients connecting now, and what they did meanwhile (played once they are in)."""
        self.gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self.tokens: dict[int, str] = {}
        self.sent: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.established = self.failed = self.reconnects = 0
        self.closes: Counter[str] = Counter()
        self.seconds = int(spec.window_s) + 1
        self.series: dict[str, list[float]] = {
            k: [0.0] * self.seconds for k in ("sent", "delivered", "errors", "connected")
        }
        self.lat_bins: list[list[float]] = [[] for _ in range(self.seconds)]
        self.errors_by_second: list[Counter[str]] = [Counter() for _ in range(self.seconds)]
        self.comment_times: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # -- clients ------------------------------------------------------------------

    def _token(self, v: int, community: int) -> str:
        token = self.tokens.get(v)
        if token is None:
            name = self.communities[community] if 0 <= community < len(self.communities) else None
            token = tokens.mint(self.spec.secret, role=tokens.Role.VIEWER, room=self.spec.room,
                                user=f"r{v}", ttl_s=7200, community=name)  # fmt: skip
            self.tokens[v] = token
        return token

    async def _join(self, v: int, community: int, since: tuple[str, int] | None) -> None:
        url = self.spec.urls[v % len(self.spec.urls)]
        host, port = host_port(url)
        sampled = v % self.spec.sample_every == 0
        try:
            async with self.gate:
                conn = await connect(host, port, self.spec.room,
                                     hello(self._token(v, community), since), self.counters,
                                     sampled=sampled)  # fmt: skip
        except (OSError, ConnectionError, TimeoutError):
            self.counters.errors[ERROR_CONNECT] += 1
            self.failed += since is None
            return
        finally:
            waiting = self.joining.pop(v, [])
        if since is None:
            self.established += 1
        else:
            self.reconnects += 1
        self.conns[v] = conn
        for p in waiting:
            self._play(p, time.time() - self.spec.start_wall)

    def _spawn(self, v: int, community: int, since: tuple[str, int] | None = None) -> None:
        self.joining[v] = []
        task = asyncio.ensure_future(self._join(v, community, since))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop(self, v: int) -> None:
        conn = self.conns.pop(v, None)
        if conn is None:
            return
        code = conn.unexpected_close()
        if code is not None:
            self.closes[f"close_{code}"] += 1
        conn.leave()

    # -- playing ---------------------------------------------------------------------

    def _play(self, p: Planned, now_s: float) -> None:
        kind, v = p.kind, p.client
        if kind == Kind.JOIN:
            if v not in self.conns and v not in self.joining:
                self._spawn(v, p.community)
            self.sent[kind.label] += 1
            return
        conn = self.conns.get(v)
        if conn is None or conn.transport is None:
            waiting = self.joining.get(v)
            if waiting is not None and len(waiting) < MAX_WAITING:
                waiting.append(p)
            else:
                self.skipped[kind.label] += 1
            return
        if kind == Kind.LEAVE:
            self._drop(v)
        elif kind == Kind.RECONNECT:
            since = (conn.epoch, conn.last)
            self._drop(v)
            self._spawn(v, p.community, since)
        elif kind == Kind.COMMENT:
            length = len(p.value) if isinstance(p.value, str) else int(p.value)
            text = "好" * max(1, min(200, length))
            conn.request("comment", text=text, cid=f"{v}:{conn.next_id}-{time.time_ns()}")
            if p.copy == 0 and len(self.comment_times) < MAX_GAPS:
                self.comment_times.append(time.time() - self.spec.start_wall)
        elif kind == Kind.LIKE:
            conn.request("like", n=max(1, min(50, int(p.value))))
        elif kind == Kind.VOTE:
            if not 0 <= p.ref < len(self.spec.polls):
                self.skipped[kind.label] += 1
                return
            conn.request("vote", poll=self.spec.polls[p.ref], option=int(p.value))
        elif kind in (Kind.GROUP_JOIN, Kind.GROUP_LEAVE):
            if not 0 <= p.ref < len(self.spec.groupbuys):
                self.skipped[kind.label] += 1
                return
            gb = self.spec.groupbuys[p.ref]
            if kind == Kind.GROUP_JOIN:
                conn.request("groupbuy_join", gb=gb, qty=max(1, int(p.value)))
            else:
                conn.request("groupbuy_leave", gb=gb)
        elif kind == Kind.OFFICER_APPLY:
            conn.request("officer_apply")
        self.sent[kind.label] += 1

    async def run(self) -> None:
        spec = self.spec
        sampler = asyncio.ensure_future(self._sample())
        try:
            await self._schedule()
            self.pipe.send(("played", self.counters.top_offset))
            message = await recv_until(self.pipe, spec.deadline_wall)
            final = int(message[1]) if isinstance(message, tuple) and message[0] == "final" else 0
            await self._drain(final)
            self.pipe.send(("result", self._result(final)))
        finally:
            sampler.cancel()
            for v in list(self.conns):
                self._drop(v)
            for task in list(self._tasks):
                task.cancel()

    async def _schedule(self) -> None:
        start, events, i = self.spec.start_wall, self.events, 0
        end = start + self.spec.window_s
        while i < len(events) and time.time() < min(end, self.spec.deadline_wall):
            now_s = time.time() - start
            while i < len(events) and events[i].due <= now_s:
                self._play(events[i], now_s)
                i += 1
            nxt = events[i].due if i < len(events) else self.spec.window_s
            await asyncio.sleep(min(0.02, max(0.0, nxt - (time.time() - start))))
        for p in events[i:]:
            self.skipped[p.kind.label] += 1
        for waiting in self.joining.values():
            for p in waiting:
                self.skipped[p.kind.label] += 1
        await asyncio.sleep(max(0.0, min(end, self.spec.deadline_wall) - time.time()))

    async def _drain(self, final: int) -> None:
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and time.time() < self.spec.deadline_wall:
            behind = [c for c in self.conns.values() if c.transport is not None and c.last < final]
            if not behind:
                return
            await asyncio.sleep(0.1)

    async def _sample(self) -> None:
        """Once a second: the time series, and a progress message to the driver."""
        c = self.counters
        last = {"sent": 0, "delivered": 0, "errors": 0}
        taken = 0
        second = -1
        while True:
            # Wake just after the end of second ``second + 1`` of the run.
            await asyncio.sleep(max(0.0, self.spec.start_wall + second + 2.005 - time.time()))
            second += 1
            now = {"sent": sum(self.sent.values()), "delivered": c.delivered,
                   "errors": sum(c.errors.values())}  # fmt: skip
            samples = c.latencies_ms[taken:]
            taken = len(c.latencies_ms)
            if 0 <= second < self.seconds:
                for key, value in now.items():
                    self.series[key][second] = value - last[key]
                self.series["connected"][second] = len(self.conns)
                thinned = samples if len(samples) <= MAX_BIN_SAMPLES else random.sample(
                    samples, MAX_BIN_SAMPLES)  # fmt: skip
                self.lat_bins[second] = thinned
                self.errors_by_second[second] = Counter(c.errors)
            last = now
            self.pipe.send(("progress", {"connected": len(self.conns), **now,
                                         "p99": percentile(samples, 0.99)}))  # fmt: skip

    def _result(self, final: int) -> dict[str, Any]:
        c = self.counters
        open_conns = [x for x in self.conns.values() if x.transport is not None]
        behind = sum(max(0, final - x.last) for x in open_conns if final)
        for x in self.conns.values():
            code = x.unexpected_close()
            if code is not None:
                self.closes[f"close_{code}"] += 1
        errors = Counter(c.errors) + self.closes
        return {
            "established": self.established, "failed": self.failed,
            "reconnects": self.reconnects, "sent": dict(self.sent),
            "skipped": dict(self.skipped), "acked": c.acked, "errors": dict(errors),
            "delivered": c.delivered, "duplicates": c.duplicates,
            "lost": c.gaps + behind + c.lost_on_resync,
            "latencies": c.latencies_ms[:: max(1, len(c.latencies_ms) // 20_000)],
            "latency_max": max(c.latencies_ms, default=None),
            "series": self.series, "lat_bins": self.lat_bins,
            "errors_by_second": [dict(x) for x in self.errors_by_second],
            "comment_times": self.comment_times,
        }  # fmt: skip

"""A second audience generator for judging the highlight detector: small rooms, moments of
many shapes, decoys.

``loadtests.synth`` makes large realistic sessions (hundreds of viewers, the
host's script of pins and price drops). This one makes what a detector tuned
on those has not seen: a small room (40-80 viewers, most of them there from
the first seconds) whose audience reacts to a few moments of different
shapes, with decoys that must not become clips. Every draw comes from
``random.Random(seed)``; the same seed gives the same trace.

Moment shapes (each is labelled ``Label(moment, moment + lag + length)``):

- ``spike``: a third to two thirds of the room comment and like within a few
  seconds, then it fades over 6-12 s;
- ``early``: a spike 12-25 s after the stream starts (while a baseline is
  still young);
- ``pair``: two spikes, the second 5-12 s after the first's reaction ends;
- ``swell``: interest that rises for 15-25 s, then falls within 5 s;
- ``rush`` (held out): a group-buy rush, many people join the group within 10 s;
- ``vote`` (held out): many people vote within seconds and comment about it.

Decoys (never labelled):

- ``taps``: one viewer likes with 50 taps a message, 10 messages a second,
  for 15 s (the bug of issue 25: taps must not make a clip);
- ``chatter``: two viewers comment every 2 s for 30 s;
- ``wave`` (held out): 15 viewers arrive within 3 s (a link shared in a chat group).

``TUNING`` shapes and seeds 1-49 are what the detector may be tuned on;
``HELD_OUT`` shapes and seeds 100 and up are what it is judged on
(docs/benchmarks.md).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from livecore.audience.trace import HOST, Event, Kind, Label, Trace

TUNING = ("spike", "early", "pair", "swell", "taps", "chatter")
HELD_OUT = ("spike", "early", "pair", "swell", "rush", "vote", "taps", "chatter", "wave")
DECOYS = frozenset({"taps", "chatter", "wave"})
TUNING_SEEDS = range(1, 50)
HELD_OUT_SEEDS = range(100, 10_000)


@dataclass(frozen=True)
class ShapesConfig:
    duration_s: float = 0.0
    """0: long enough for the shapes (45 s a moment, a pair counts twice, plus a minute)."""
    viewers: int = 60
    shapes: Sequence[str] = HELD_OUT
    seed: int = 100


class _Room:
    def __init__(self, rng: random.Random, cfg: ShapesConfig) -> None:
        self.rng = rng
        self.cfg = cfg
        self.events: list[Event] = []
        self.labels: list[Label] = []
        self.present = list(range(1, cfg.viewers + 1))
        self.community = {v: rng.randrange(4) for v in self.present}
        self.next_client = cfg.viewers + 1

    def add(self, t: float, client: int, kind: Kind, value: int | str = 0) -> None:
        if 0 <= t < self.cfg.duration_s:
            community = self.community.get(client, -1) if client != HOST else -1
            self.events.append(Event(round(t * 1000), client, kind, community, value))

    def react(self, start: float, length: float, share: float, comment: float, like: float,
              *, join: float = 0.0, vote: float = 0.0) -> None:  # fmt: skip
        """``share`` of the room reacts between ``start`` and ``start + length``, most of
        them early (a reaction starts sharply and fades)."""
        rng = self.rng
        for v in rng.sample(self.present, round(share * len(self.present))):
            at = start + length * rng.random() ** 1.8
            if rng.random() < comment:
                self.add(at, v, Kind.COMMENT, rng.randint(2, 12))
            if rng.random() < like:
                self.add(at + rng.uniform(0, 1.5), v, Kind.LIKE, rng.randint(1, 8))
            if join and rng.random() < join:
                self.add(at + rng.uniform(0, 2), v, Kind.GROUP_JOIN, 1)
            if vote and rng.random() < vote:
                self.add(at, v, Kind.VOTE, rng.randrange(3))

    def label(self, moment: float, lag: float, end: float, reason: str) -> None:
        if end < self.cfg.duration_s:
            self.labels.append(Label(round(moment, 2), round(end, 2), reason, round(lag, 2)))


def generate(cfg: ShapesConfig) -> Trace:
    """One session (see the module doc); deterministic for ``cfg.seed``."""
    rng = random.Random(cfg.seed)
    if not cfg.duration_s:
        slots = sum(2 if s == "pair" else 1 for s in cfg.shapes if s not in DECOYS | {"early"})
        cfg = replace(cfg, duration_s=105.0 + 45 * slots)
    room = _Room(rng, cfg)
    d = cfg.duration_s
    for v in room.present:  # most are waiting when the live starts, the rest trickle in
        room.add(rng.uniform(0, 8) if rng.random() < 0.8 else rng.uniform(8, 40), v, Kind.JOIN)
    room.add(2.0, HOST, Kind.GROUPBUY_OPEN, 1990)
    if "vote" in cfg.shapes:
        room.add(1.0, HOST, Kind.POLL_OPEN, 3)
    # Background: each viewer comments about once a minute and likes every half minute.
    for v in room.present:
        t = rng.expovariate(1 / 60)
        while t < d:
            room.add(t + 10, v, Kind.COMMENT, rng.randint(3, 20))
            t += max(5.0, rng.expovariate(1 / 60))
        t = rng.expovariate(1 / 30)
        while t < d:
            room.add(t + 10, v, Kind.LIKE, rng.randint(1, 4))
            t += rng.expovariate(1 / 30)
    _moments(room, [s for s in cfg.shapes if s not in DECOYS], d)
    _decoys(room, [s for s in cfg.shapes if s in DECOYS], d)
    room.events.sort(key=lambda e: (e.t_ms, e.kind != Kind.JOIN, e.client))
    joined: set[int] = {HOST}
    events = []
    for e in room.events:  # nobody acts before joining
        if e.kind == Kind.JOIN:
            joined.add(e.client)
        if e.client in joined:
            events.append(e)
    return Trace(
        events=events,
        duration_s=d,
        communities=[f"compound-{i:02d}" for i in range(4)],
        labels=sorted(room.labels, key=lambda x: x.start_s),
        source="synthetic",
        meta={
            "generator": "loadtests.highlightshapes",
            "seed": cfg.seed,
            "shapes": list(cfg.shapes),
        },
    )


def _moments(room: _Room, shapes: list[str], d: float) -> None:
    """Place the moments apart from each other (at least 35 s), ``early`` first."""
    rng = room.rng
    t = 45.0
    order = [s for s in shapes if s != "early"]
    rng.shuffle(order)
    if "early" in shapes:
        moment, lag = rng.uniform(12, 25), rng.uniform(1, 3)
        length = rng.uniform(6, 12)
        room.react(moment + lag, length, rng.uniform(0.35, 0.6), 0.8, 0.7)
        room.label(moment, lag, moment + lag + length, "early")
    slot = (d - 60 - t) / max(1, sum(2 if s == "pair" else 1 for s in order))
    for shape in order:
        span = 2 * slot if shape == "pair" else slot
        moment = t + rng.uniform(0, max(0.0, span - 40))
        lag = rng.uniform(1, 3)
        if shape == "spike":
            length = rng.uniform(6, 12)
            room.react(moment + lag, length, rng.uniform(0.3, 0.6), 0.8, 0.7)
            room.label(moment, lag, moment + lag + length, "spike")
        elif shape == "pair":
            length = rng.uniform(6, 10)
            room.react(moment + lag, length, rng.uniform(0.35, 0.55), 0.8, 0.7)
            room.label(moment, lag, moment + lag + length, "pair_first")
            second = moment + lag + length + rng.uniform(5, 12)
            lag2, length2 = rng.uniform(1, 3), rng.uniform(6, 10)
            room.react(second + lag2, length2, rng.uniform(0.35, 0.55), 0.8, 0.7)
            room.label(second, lag2, second + lag2 + length2, "pair_second")
        elif shape == "swell":
            rise = rng.uniform(15, 25)
            for i in range(int(rise)):  # more people each second, then a quick fall
                room.react(moment + lag + i, 1.0, 0.02 + 0.3 * (i / rise) ** 1.5, 0.8, 0.6)
            room.react(moment + lag + rise, 4.0, 0.25, 0.7, 0.6)
            room.label(moment, lag, moment + lag + rise + 4, "swell")
        elif shape == "rush":
            length = rng.uniform(8, 12)
            room.react(moment + lag, length, rng.uniform(0.35, 0.55), 0.4, 0.3, join=0.8)
            room.label(moment, lag, moment + lag + length, "rush")
        elif shape == "vote":
            length = rng.uniform(6, 10)
            room.react(moment + lag, length, rng.uniform(0.4, 0.6), 0.4, 0.3, vote=0.9)
            room.label(moment, lag, moment + lag + length, "vote")
        t += span


def _decoys(room: _Room, shapes: list[str], d: float) -> None:
    rng = room.rng
    for shape in shapes:
        at = rng.uniform(40, d - 40)
        if shape == "taps":
            v = rng.choice(room.present)
            for i in range(150):
                room.add(at + i / 10, v, Kind.LIKE, 50)
        elif shape == "chatter":
            for v in rng.sample(room.present, 2):
                for i in range(15):
                    room.add(at + 2 * i + rng.random(), v, Kind.COMMENT, rng.randint(2, 8))
        elif shape == "wave":
            for _ in range(15):
                client = room.next_client
                room.next_client += 1
                room.community[client] = rng.randrange(4)
                room.add(at + rng.uniform(0, 3), client, Kind.JOIN)

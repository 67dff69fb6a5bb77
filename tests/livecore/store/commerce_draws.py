"""Lucky draws in the commerce state machine (mixed into ``Commerce`` of
test_commerce_stateful): open / enter / draw on two nodes, with the group-buy task
reading the joins the other rules make. Invariants: each entrant once, winners
are entrants and follow the rule from the committed seed, drawn exactly once."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from typing import Any

import msgpack
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from livecore.luckydraw import parse_spec, winners
from livecore.store import keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.luckydraw import DrawStore
from livecore.store.replies import as_str

DRAW_USERS = [f"u{i}" for i in range(4)]


class Draws:
    """Rules and invariants of lucky draws (needs ``run``, ``clients``, ``now``, ``ROOM``)."""

    room: str
    now: int
    clients: list[Any]

    def run(self, coro: Any) -> Any:
        raise NotImplementedError

    def draw_nodes(self) -> list[DrawStore]:
        found: list[DrawStore] | None = getattr(self, "_draw_nodes", None)
        if found is None:
            a, b = self.clients
            batcher = ScriptBatcher(b)
            found = [DrawStore(a, Bus(a)), DrawStore(b, Bus(b, batcher=batcher), batcher)]
            self._draw_nodes = found
            self.draw_ids: list[str] = []
            self.entered: Counter[tuple[str, str]] = Counter()
        return found

    @rule(k=st.integers(1, 3), task=st.sampled_from(["none", "groupbuy"]), node=st.integers(0, 1))
    def draw_open(self, k: int, task: str, node: int) -> None:
        nodes = self.draw_nodes()
        spec = parse_spec({"prize": "p", "winners": k, "duration_s": 300, "task": task},
                          now=self.now)  # fmt: skip
        code, did, _ = self.run(nodes[node].open(self.room, spec, self.now))
        if code == 1:
            self.draw_ids.append(did)

    @rule(data=st.data(), user=st.sampled_from(DRAW_USERS), node=st.integers(0, 1))
    def draw_enter(self, data: st.DataObject, user: str, node: int) -> None:
        nodes = self.draw_nodes()
        if not self.draw_ids:
            return
        did = data.draw(st.sampled_from(self.draw_ids))
        code, _ = self.run(nodes[node].enter(self.room, did, user, self.now))
        if code == 1:
            self.entered[(did, user)] += 1

    @rule(data=st.data(), both=st.booleans())
    def draw_roll(self, data: st.DataObject, both: bool) -> None:
        nodes = self.draw_nodes()
        if not self.draw_ids:
            return
        did = data.draw(st.sampled_from(self.draw_ids))

        async def roll() -> None:
            await asyncio.gather(*(n.draw(self.room, did, self.now)
                                   for n in (nodes if both else nodes[:1])))  # fmt: skip

        self.run(roll())

    @precondition(lambda self: bool(getattr(self, "draw_ids", None)))
    @invariant()
    def draws_hold(self) -> None:
        self.run(self._check_draws())

    async def _check_draws(self) -> None:
        client = self.clients[0]
        raw = await client.xrange(keys.room(self.room, "events"))
        events = [msgpack.unpackb(f[b"d"], raw=False) for _, f in raw]
        opened = {e["draw"]: e for e in events if e["t"] == "draw_opened"}
        drawn = Counter(e["draw"] for e in events if e["t"] == "draw_drawn")
        assert all(n == 1 for n in self.entered.values()), self.entered  # each entrant once
        undrawn = 0
        for did in self.draw_ids:
            found = await client.hgetall(keys.room(self.room, f"draw:{did}"))
            meta = {as_str(k): as_str(v) for k, v in found.items()}
            entrants = {as_str(u) for u in
                        await client.smembers(keys.room(self.room, f"draw:{did}:in"))}  # fmt: skip
            assert entrants == {u for (d, u) in self.entered if d == did}, (did, entrants)
            if meta["task"] == "groupbuy":  # only buyers of the room entered
                buys = await client.hgetall(keys.room(self.room, "buys"))
                bought = {as_str(u) for u in buys}
                assert entrants <= bought | {u for (d, u) in self.entered if d == did}
            won = [as_str(u) for u in
                   await client.lrange(keys.room(self.room, f"draw:{did}:won"), 0, -1)]  # fmt: skip
            if meta["status"] == "drawn":
                assert drawn[did] == 1, (did, drawn)  # drawn exactly once
                assert set(won) <= entrants and len(set(won)) == len(won)
                seed = bytes.fromhex(meta["seed"])
                assert hashlib.sha256(seed).hexdigest() == opened[did]["commitment"]
                assert won == winners(seed, entrants, int(meta["winners"]))
            else:
                undrawn += 1
                assert drawn[did] == 0 and not won
        assert undrawn <= 1  # one open at a time

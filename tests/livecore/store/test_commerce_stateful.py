"""Random sequences of commerce actions across two nodes, invariants checked after each step.

Hypothesis drives open / attribute / join / change quantity / leave / expire / settle
through two stores on their own connections (one calling scripts directly, one
through the batcher, as two nodes would), on a real Valkey. After every step the
invariants listed in docs/architecture.md ("Commerce invariants") are read back
from Valkey. ``make test`` runs a bounded number of examples; set
``LIVECORE_STATEFUL_EXAMPLES`` for a longer run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from livecore import groupbuy
from livecore.groupbuy import commission, parse_spec
from livecore.store import keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import open_store
from livecore.store.groupbuys import GroupBuyStore
from livecore.store.officers import ShareOfficerStore
from livecore.store.replies import as_str
from tests.livecore.store.commerce_draws import Draws

ROOM = "prop"
T0 = 1_900_000_000
USERS = [f"u{i}" for i in range(4)]
GROUPS = ["north", "south"]
EXAMPLES = int(os.environ.get("LIVECORE_STATEFUL_EXAMPLES", "12"))


class Commerce(Draws, RuleBasedStateMachine):
    room = ROOM

    def __init__(self, url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clients = [self.run(open_store(url)) for _ in range(2)]
        self.run(self.clients[0].flushall())
        batcher = ScriptBatcher(self.clients[1])
        self.nodes = [
            GroupBuyStore(self.clients[0], Bus(self.clients[0])),
            GroupBuyStore(self.clients[1], Bus(self.clients[1], batcher=batcher), batcher),
        ]
        self.officers = ShareOfficerStore(self.clients[0])
        self.now = T0
        self.gids: list[str] = []
        self.specs: dict[str, groupbuy.GroupBuySpec] = {}
        self.codes: dict[str, str] = {}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        for client in self.clients:
            self.run(client.aclose())
        self.loop.close()

    # -- actions ----------------------------------------------------------------------

    @rule(target_=st.integers(2, 4), tier=st.booleans(), bonus=st.booleans())
    @precondition(lambda self: len(self.gids) < 3)
    def open(self, target_: int, tier: bool, bonus: bool) -> None:
        fields: dict[str, Any] = {"product": "p", "price_cents": 1000, "target": target_,
                                  "duration_s": 600, "max_qty": 3}  # fmt: skip
        if tier:
            fields["tiers"] = [[target_ + 1, 100]]
        if bonus:
            fields.update(bonus_invites=2, bonus_cents=30)
        spec = parse_spec(fields, now=self.now)
        gid = self.run(self.nodes[0].open(ROOM, spec, 2000, 500))
        self.gids.append(gid)
        self.specs[gid] = spec

    @rule(user=st.sampled_from(USERS))
    def become_officer(self, user: str) -> None:
        status, code = self.run(self.officers.apply(ROOM, user, self.now))
        if status >= 0:
            self.codes[user] = code

    @rule(user=st.sampled_from(USERS), officer=st.sampled_from(USERS))
    def attribute(self, user: str, officer: str) -> None:
        if officer in self.codes:
            self.run(self.officers.attribute(ROOM, self.codes[officer], user, self.now))

    @rule(data=st.data(), user=st.sampled_from(USERS), group=st.sampled_from(GROUPS),
          qty=st.integers(1, 3), node=st.integers(0, 1), invite=st.booleans())  # fmt: skip
    @precondition(lambda self: bool(self.gids))
    def join(self, data: st.DataObject, user: str, group: str, qty: int, node: int,
             invite: bool) -> None:  # fmt: skip
        gid = data.draw(st.sampled_from(self.gids))
        inviter = data.draw(st.sampled_from(USERS)) if invite else ""
        self.run(self.nodes[node].join(ROOM, gid, group, user, qty, inviter, self.now))

    @rule(data=st.data(), user=st.sampled_from(USERS), group=st.sampled_from(GROUPS),
          node=st.integers(0, 1))  # fmt: skip
    @precondition(lambda self: bool(self.gids))
    def leave(self, data: st.DataObject, user: str, group: str, node: int) -> None:
        gid = data.draw(st.sampled_from(self.gids))
        self.run(self.nodes[node].leave(ROOM, gid, group, user, self.now))

    @rule(seconds=st.integers(1, 400))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def sweep(self) -> None:
        async def both() -> None:
            for room, gid in await self.nodes[0].due(self.now):
                await asyncio.gather(*(n.expire(room, gid, self.now) for n in self.nodes))

        self.run(both())

    @rule(data=st.data(), user=st.sampled_from(USERS), group=st.sampled_from(GROUPS),
          outcome=st.sampled_from(["received", "refunded"]))  # fmt: skip
    @precondition(lambda self: bool(self.gids))
    def settle(self, data: st.DataObject, user: str, group: str, outcome: str) -> None:
        gid = data.draw(st.sampled_from(self.gids))
        self.run(self.nodes[1].settle(ROOM, gid, group, user, outcome, self.now))

    # -- invariants ---------------------------------------------------------------------

    async def _hash(self, key: str, value: Any = as_str) -> dict[str, Any]:
        raw = await self.clients[0].hgetall(key)
        return {as_str(k): value(v) for k, v in raw.items()}

    async def _stream(self, part: str) -> list[dict[str, Any]]:
        return [{as_str(k): v for k, v in fields.items()}
                for _, fields in await self.clients[0].xrange(keys.room(ROOM, part))]  # fmt: skip

    async def _read(self) -> dict[str, Any]:
        out: dict[str, Any] = {"groups": {}, "who": {}}
        for gid in self.gids:
            base = keys.room(ROOM, f"gb:{gid}")
            out["who"][gid] = await self._hash(f"{base}:who")
            for group in GROUPS:
                out["groups"][(gid, group)] = (
                    await self._hash(f"{base}:g:{group}"),
                    await self._hash(f"{base}:m:{group}", int),
                    await self._hash(f"{base}:led:{group}"),
                    await self._hash(f"{base}:att:{group}"),
                )
        out["events"] = [msgpack.unpackb(e["d"], raw=False) for e in await self._stream("events")]
        out["orders"] = [{k: as_str(v) for k, v in o.items()} for o in await self._stream("orders")]
        out["stats"] = await self._hash(keys.room(ROOM, "officer_stats"), int)
        return out

    @invariant()
    def consistent(self) -> None:
        if not self.gids:
            return
        seen = self.run(self._read())
        formed = Counter((e["gb"], e["group"]) for e in seen["events"]
                         if e["t"] == "groupbuy_formed")  # fmt: skip
        failed = Counter((e["gb"], e["group"]) for e in seen["events"]
                         if e["t"] == "groupbuy_failed")  # fmt: skip
        owed: Counter[str] = Counter()
        for gid in self.gids:
            spec = self.specs[gid]
            homes: dict[str, str] = {}
            for group in GROUPS:
                g, m, led, att = seen["groups"][(gid, group)]
                for user in m:
                    assert user not in homes, f"{user} in {homes[user]} and {group} of {gid}"
                    homes[user] = group
                # counts equal distinct members
                assert int(g.get("n", 0)) == len(m), (gid, group, g, m)
                assert int(g.get("q", 0)) == sum(m.values()), (gid, group, g, m)
                status = g.get("s", "open")
                # formation and failure exactly once, and only as the state says
                assert formed[(gid, group)] == (1 if status == "formed" else 0), (gid, group)
                assert failed[(gid, group)] <= 1
                if failed[(gid, group)]:
                    assert status == "failed"
                if status == "formed":
                    unit = groupbuy.unit_price(spec, len(m), g.get("b") == "1")
                    assert int(g["p"]) == unit, (gid, group, g)
                    for user, raw in led.items():
                        officer, recruiter, c1, c2, state = raw.split("|")
                        assert officer == att[user] and recruiter != user
                        if state != "r":
                            amount = unit * m[user]
                            assert int(c1) == commission(amount, 2000), (raw, amount)
                            want2 = commission(amount, 500) if recruiter else 0
                            assert int(c2) == want2, (raw, amount)
                            owed[officer] += int(c1)
                            if recruiter:
                                owed[recruiter] += int(c2)
                    assert set(led) == set(att) & set(m)
                else:
                    assert not led
            # every member in exactly one group, as the buy's own index says
            assert seen["who"][gid] == homes, (gid, seen["who"][gid], homes)
        earned = Counter()
        for field, cents in seen["stats"].items():
            kind, _, officer = field.partition(":")
            if kind in ("p", "c"):
                earned[officer] += cents
        assert +earned == +owed, (earned, owed)
        # every order event matched by state: replaying joins and leaves gives the members
        members: dict[tuple[str, str], dict[str, int]] = {}
        for o in seen["orders"]:
            if o["type"] == "join":
                members.setdefault((o["gb"], o["group"]), {})[o["user"]] = int(o["qty"])
            elif o["type"] == "leave":
                members.setdefault((o["gb"], o["group"]), {}).pop(o["user"], None)
        for key, (_, m, _, _) in seen["groups"].items():
            assert members.get(key, {}) == m, (key, members.get(key), m)


def test_commerce_invariants_hold_across_two_nodes(redis_url: str) -> None:
    """Random commerce sequences on two nodes keep every invariant after every step."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        lambda: Commerce(redis_url),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )

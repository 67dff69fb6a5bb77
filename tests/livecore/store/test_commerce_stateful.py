"""Random sequences of commerce actions across two nodes, invariants checked after each step.

Hypothesis drives open / attribute / join / change quantity / leave / expire / settle,
flash sales (start / buy with retries and coupons / stop / end by time) and coupons
(create / claim, the room going live and ending) through two stores on their own
connections (one calling scripts directly, one
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

from livecore import coupons, flashsale, groupbuy
from livecore.groupbuy import commission, parse_spec
from livecore.rooms import Room, RoomStatus
from livecore.store import keys
from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import open_store
from livecore.store.coupons import CouponStore
from livecore.store.flashsale import FlashSaleStore
from livecore.store.groupbuys import GroupBuyStore
from livecore.store.officers import ShareOfficerStore
from livecore.store.replies import as_str
from livecore.store.room_meta import RoomStore
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
        self.flash = [
            FlashSaleStore(self.clients[0], Bus(self.clients[0])),
            FlashSaleStore(self.clients[1], Bus(self.clients[1], batcher=batcher), batcher),
        ]
        self.coupons = [
            CouponStore(self.clients[0], Bus(self.clients[0])),
            CouponStore(self.clients[1], Bus(self.clients[1], batcher=batcher), batcher),
        ]
        self.rooms = RoomStore(self.clients[0])
        self.run(self.rooms.create(Room(ROOM, "t", "s", T0, "h", T0)))
        self.status = RoomStatus.SCHEDULED
        self.now = T0
        self.gids: list[str] = []
        self.specs: dict[str, groupbuy.GroupBuySpec] = {}
        self.codes: dict[str, str] = {}
        self.refunded: set[tuple[str, str, str]] = set()
        self.sales: dict[str, flashsale.FlashSpec] = {}
        self.cids: dict[str, coupons.CouponSpec] = {}

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
        code, _ = self.run(self.nodes[1].settle(ROOM, gid, group, user, outcome, self.now))
        order = (gid, group, user)
        if order in self.refunded:  # a refund is final, with or without a commission
            assert code == (0 if outcome == "refunded" else -2), (order, outcome, code)
        elif outcome == "refunded" and code >= 0:
            assert code == 1, (order, code)
            self.refunded.add(order)

    # -- flash sales and coupons ------------------------------------------------------

    @rule(stock=st.integers(1, 5), limit=st.integers(1, 3),
          countdown=st.sampled_from([0, 0, 0, 30]), duration=st.integers(10, 300),
          node=st.integers(0, 1))  # fmt: skip
    def flash_start(self, stock: int, limit: int, countdown: int, duration: int, node: int) -> None:
        fields = {"price_cents": 990, "stock": stock, "limit": limit, "countdown_s": countdown,
                  "duration_s": duration}  # fmt: skip
        spec = flashsale.parse_spec(fields, "p", 1990, now=self.now)
        running = [f for f, s in self.sales.items() if self._running(f, s)]
        started = self.run(self.flash[node].start(ROOM, spec, self.now))
        if isinstance(started, str):  # one sale at a time
            assert running == [started], (running, started)
        else:
            assert not running, running
            self.sales[started[0]] = spec

    def _running(self, fid: str, spec: flashsale.FlashSpec) -> bool:
        raw = self.run(self.clients[0].hmget(keys.room(ROOM, "flash"), ["id", "status"]))
        return as_str(raw[0] or b"") == fid and raw[1] != b"ended" and spec.ends_at > self.now

    @rule(data=st.data(), taps=st.lists(
        st.tuples(st.sampled_from(USERS), st.integers(1, 3), st.sampled_from(["", "k1", "k2"]),
                  st.integers(0, 1), st.booleans()), min_size=1, max_size=6))  # fmt: skip
    @precondition(lambda self: bool(self.sales))
    def flash_buy(self, data: st.DataObject, taps: list[tuple[str, int, str, int, bool]]) -> None:
        """Buyers tap at once on both nodes (some with a coupon, some retrying a key)."""
        fid = data.draw(st.sampled_from(sorted(self.sales)))
        cid = data.draw(st.sampled_from(sorted(self.cids))) if self.cids else ""

        async def race() -> list[Any]:
            return await asyncio.gather(*(
                self.flash[node].buy(ROOM, fid, user, qty, key, cid if coupon else "", self.now)
                for user, qty, key, node, coupon in taps
            ))  # fmt: skip

        spec = self.sales[fid]
        for result in self.run(race()):
            if result.code == 1:  # bought only inside the sale's window
                assert spec.starts_at <= self.now < spec.ends_at, (spec, self.now)

    @rule(data=st.data(), node=st.integers(0, 1), force=st.booleans())
    @precondition(lambda self: bool(self.sales))
    def flash_end(self, data: st.DataObject, node: int, force: bool) -> None:
        fid = data.draw(st.sampled_from(sorted(self.sales)))
        self.run(self.flash[node].end(ROOM, fid, self.now, force=force))

    @rule()
    def flash_sweep(self) -> None:
        async def both() -> None:
            for room, fid in await self.flash[0].due(self.now):
                await asyncio.gather(*(f.end(room, fid, self.now) for f in self.flash))

        self.run(both())

    @rule(quota=st.integers(1, 3), per_user=st.integers(1, 2),
          task=st.sampled_from(["none", "groupbuy"]), least=st.sampled_from([0, 2000]))  # fmt: skip
    @precondition(lambda self: len(self.cids) < 3)
    def coupon_create(self, quota: int, per_user: int, task: str, least: int) -> None:
        spec = coupons.parse_spec({"title": "t", "off_cents": 100, "min_cents": least,
                                   "quota": quota, "per_user": per_user, "task": task})  # fmt: skip
        cid = self.run(self.coupons[0].create(ROOM, spec))
        assert cid is not None
        self.cids[cid] = spec

    @rule(data=st.data(), user=st.sampled_from(USERS), node=st.integers(0, 1),
          key=st.sampled_from(["", "c1"]))  # fmt: skip
    @precondition(lambda self: bool(self.cids))
    def coupon_claim(self, data: st.DataObject, user: str, node: int, key: str) -> None:
        cid = data.draw(st.sampled_from(sorted(self.cids)))
        result = self.run(self.coupons[node].claim(ROOM, cid, user, self.now, False, key))
        if result.code == 1:  # claims only while the room is live
            assert self.status is RoomStatus.LIVE

    @rule(status=st.sampled_from([RoomStatus.LIVE, RoomStatus.ENDED]))
    def room_status(self, status: RoomStatus) -> None:
        if self.status is not RoomStatus.ENDED:
            self.run(self.rooms.set_status(ROOM, status.value))
            self.status = status

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
                        if not officer:  # the refund of an order no officer brought: kept
                            assert (recruiter, c1, c2, state) == ("", "0", "0", "r"), raw
                            assert user in m and user not in att, (user, raw)
                            continue
                        assert officer == att[user] and recruiter != user
                        if state != "r":
                            amount = unit * m[user]
                            assert int(c1) == commission(amount, 2000), (raw, amount)
                            want2 = commission(amount, 500) if recruiter else 0
                            assert int(c2) == want2, (raw, amount)
                            owed[officer] += int(c1)
                            if recruiter:
                                owed[recruiter] += int(c2)
                    brought = {user for user, raw in led.items() if not raw.startswith("|")}
                    assert brought == set(att) & set(m)
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

    @invariant()
    def flash_and_coupons(self) -> None:
        if not self.sales and not self.cids:
            return
        seen = self.run(self._read_flash())
        events, orders = seen["events"], seen["orders"]
        for fid, spec in self.sales.items():
            holders = seen["holders"][fid]
            sold = sum(holders.values())
            # stock never below 0, each buyer within the limit
            assert 0 <= sold <= spec.stock, (fid, holders, spec)
            assert all(0 < n <= spec.limit for n in holders.values()), (fid, holders)
            ordered = sum(int(o["qty"]) for o in orders if o["type"] == "flash" and o["fs"] == fid)
            assert ordered == sold, (fid, ordered, sold)
            sold_out = [e for e in events if e["t"] == "flash_sold_out" and e["fs"] == fid]
            assert len(sold_out) == (1 if sold == spec.stock else 0), (fid, sold, sold_out)
            assert len([e for e in events if e["t"] == "flash_ended" and e["fs"] == fid]) <= 1
            if seen["flash"].get("id") == fid:
                assert int(seen["flash"]["sold"]) == sold, (seen["flash"], sold)
        for cid, cspec in self.cids.items():
            meta, claims, used = seen["coupons"][cid]
            # the quota and the per-buyer limit hold; a coupon is used at most as claimed
            assert int(meta["claimed"]) == sum(claims.values()) <= cspec.quota, (cid, meta, claims)
            assert all(0 < n <= cspec.per_user for n in claims.values()), (cid, claims)
            assert all(n <= claims.get(u, 0) for u, n in used.items()), (cid, used, claims)
            handed = [o for o in orders if o["type"] == "coupon" and o["cp"] == cid]
            assert len(handed) == int(meta["claimed"]), (cid, handed, meta)
            on_orders = [o for o in orders if o["type"] == "flash" and o["coupon"] == cid]
            assert len(on_orders) == sum(used.values()), (cid, on_orders, used)

    async def _read_flash(self) -> dict[str, Any]:
        out: dict[str, Any] = {"holders": {}, "coupons": {}}
        for fid in self.sales:
            out["holders"][fid] = await self._hash(keys.room(ROOM, f"flash:{fid}:b"), int)
        for cid in self.cids:
            base = keys.room(ROOM, f"cp:{cid}")
            out["coupons"][cid] = (await self._hash(base), await self._hash(f"{base}:c", int),
                                   await self._hash(f"{base}:u", int))  # fmt: skip
        out["flash"] = await self._hash(keys.room(ROOM, "flash"))
        out["events"] = [msgpack.unpackb(e["d"], raw=False) for e in await self._stream("events")]
        out["orders"] = [{k: as_str(v) for k, v in o.items()} for o in await self._stream("orders")]
        return out


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

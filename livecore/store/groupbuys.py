"""Group buys on Redis/Valkey: every join, leave and expiry is one Lua call.

A join is idempotent per user (a retry or a double click changes nothing),
moves the group's member count, quantity and version, records the
neighbour invite, appends the order to the room's ``orders`` stream, and —
when the count reaches the target — flips the group to ``formed`` exactly
once, credits the share officers' commission and emits ``groupbuy_formed``,
all in the same atomic step. Expiry flips every still-open group of a group
buy to ``failed`` exactly once, whichever node's sweep gets there first.

Keys (all tagged with the room, all passed to the scripts as ``KEYS``):
``gb:<id>`` (spec and status), ``gb:<id>:g:<group>`` (n, q, v, s, b, p),
``gb:<id>:m:<group>`` (user → qty), ``gb:<id>:inv:<group>`` (inviter → count),
``gb:<id>:invby:<group>`` (user → inviter), ``gb:<id>:att:<group>`` (user →
officer at join), ``gb:<id>:led:<group>`` (commission entries),
``gb:<id>:who`` (user → their one group), ``gb:<id>:groups``, ``gbs`` (open
group buys), ``buys``, ``orders``, and the officer money keys of
:mod:`livecore.store.money`. The scripts are in
:mod:`livecore.store.groupbuy_scripts`.

Joins are the hot path (a flash of neighbours pressing "join" at once): every
join of one group buy that arrives in one loop turn goes to Valkey in one
script call (``JOIN`` takes a list), which reads the spec once and applies the
same rules to each join in order; that call rides the turn's one pipeline of
the :class:`~livecore.store.batch.ScriptBatcher`. The keys of a group buy and
of each group are built once and kept (bounded).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from livecore.groupbuy import (
    ATTRIBUTION_WINDOW_S,
    DEFAULT_LEVEL1_BP,
    DEFAULT_LEVEL2_BP,
    GroupBuySpec,
)
from livecore.lru import LruDict
from livecore.store import groupbuy_scripts as scripts
from livecore.store import index, keys
from livecore.store.batch import ScriptBatcher, run, settle
from livecore.store.bus import Bus, channel
from livecore.store.client import StoreClient
from livecore.store.index import ScoredIndex, SetIndex
from livecore.store.replies import as_str

ORDERS_MAXLEN = 100_000


@dataclass(frozen=True, slots=True)
class GroupState:
    """A group's progress as clients see it."""

    version: int
    members: int
    qty: int
    status: str
    bonus: bool


#: Joins of one group buy in one script call at most (bounds the time Valkey spends
#: in one call; more joins in the same turn make another call in the same pipeline).
MAX_JOINS_PER_CALL = 64
#: Group buys and groups whose keys are kept built.
MAX_CACHED_KEYS = 4096


@dataclass(slots=True)
class _Joins:
    """Joins of one group buy queued during one loop turn."""

    groups: dict[str, int] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    def add(self, grp: str, user: str, qty: int, inviter: str) -> asyncio.Future[Any]:
        at = self.groups.setdefault(grp, len(self.groups) + 1)
        # As bytes already (the same bytes on the wire): redis-py's encoder would
        # look at the type of each of them in Python.
        self.args += (b"%d" % at, user.encode(), b"%d" % qty, inviter.encode())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


#: Refusal codes of join/leave (the reply's first element).
UNKNOWN, CLOSED, OVER_LIMIT, SELF_INVITE, NOT_IN_GROUP, FORMED, OTHER_GROUP = range(-1, -8, -1)


class GroupBuyStore:
    """Open, join, leave, expire, settle and read group buys."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self.due_index = ScoredIndex(redis, index.DUE)
        self.order_rooms = SetIndex(redis, index.ORDER_ROOMS)
        self._open = redis.register_script(scripts.OPEN)
        self._join = redis.register_script(scripts.JOIN)
        self._leave = redis.register_script(scripts.LEAVE)
        self._expire = redis.register_script(scripts.EXPIRE)
        self._settle = redis.register_script(scripts.SETTLE)
        #: Joins of this loop turn by (room, group buy, now), and full ones to send.
        self._joins: dict[tuple[str, str, int], _Joins] = {}
        self._full: list[tuple[tuple[str, str, int], _Joins]] = []
        self._scheduled = False
        self._sending: set[asyncio.Future[Any]] = set()
        self._shared_keys: LruDict[tuple[str, str, str], list[bytes]] = LruDict(MAX_CACHED_KEYS)
        self._keys_of_group: LruDict[tuple[str, str, str], list[bytes]] = LruDict(MAX_CACHED_KEYS)
        if batcher is not None:
            batcher.add_source(self._drain)

    @staticmethod
    def _k(room: str, gid: str, part: str = "") -> str:
        return keys.room(room, f"gb:{gid}{part}")

    def _emit_args(self, room: str) -> list[Any]:
        return [channel(room), self.bus.history_max, secrets.token_hex(8)]

    async def open(self, room: str, spec: GroupBuySpec, level1_bp: int, level2_bp: int) -> str:
        """Store a new group buy, list it as open, schedule its deadline and emit
        ``groupbuy_opened``: one atomic step, so no group buy exists without its
        deadline or its event."""
        tiers = ",".join(f"{m}:{d}" for m, d in spec.tiers)
        spec_fields: dict[str, str | int] = {
            "status": "open", "product": spec.product, "price": spec.price_cents,
            "target": spec.target, "deadline": spec.deadline, "tiers": tiers,
            "max_qty": spec.max_qty, "scope": spec.scope.value,
            "bonus_invites": spec.bonus_invites, "bonus_cents": spec.bonus_cents,
            "l1": level1_bp, "l2": level2_bp,
        }  # fmt: skip
        flat = [x for pair in spec_fields.items() for x in pair]
        while True:
            gid = "g" + secrets.token_hex(4)
            event = msgpack.packb({"t": "groupbuy_opened", "gb": gid, **spec.public()})
            # The deadline is indexed first: if the script then fails, the sweep
            # finds nothing open under it and drops the entry; never the reverse
            # (an open group buy no sweep would ever close).
            await self.due_index.add(f"{room}|{gid}", spec.deadline)
            done = await self._open(
                keys=[self._k(room, gid), keys.room(room, "gbs"), *self.bus.emit_keys(room)],
                args=[*self._emit_args(room), gid, event, *flat],
            )
            if int(done):
                return gid

    def _group_keys(self, room: str, gid: str, grp: str) -> list[str]:
        return [self._k(room, gid), self._k(room, gid, f":g:{grp}"),
                self._k(room, gid, f":m:{grp}"), self._k(room, gid, f":inv:{grp}"),
                self._k(room, gid, f":invby:{grp}"), self._k(room, gid, ":who"),
                self._k(room, gid, f":att:{grp}")]  # fmt: skip

    async def join(
        self, room: str, gid: str, grp: str, user: str, qty: int, inviter: str, now: int
    ) -> tuple[int, GroupState | int | str]:
        """(code, state): code 1 changed, 0 unchanged; negative codes are refusals
        (-1 unknown, -2 closed, -3 over max_qty (state = the max), -4 self-invite,
        -5 inviter not in the group, -6 group formed, -7 the user is in another
        group of this group buy (state = that group)).

        Joins of the same group buy in the same loop turn share one script call,
        applied in the order they were made."""
        key = (room, gid, now)
        batch = self._joins.get(key)
        if batch is None:
            batch = self._joins[key] = _Joins()
            self._wake()
        future = batch.add(grp, user, qty, inviter)
        if len(batch.futures) >= MAX_JOINS_PER_CALL:
            self._full.append((key, self._joins.pop(key)))
        return _result(await future)

    def _wake(self) -> None:
        if self.batcher is not None:
            self.batcher.wake()  # it drains this store before it sends the turn's pipeline
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Queue one script call per group buy for the joins of this turn."""
        self._scheduled = False
        if not self._joins and not self._full:
            return
        batches = [*self._full, *self._joins.items()]
        self._full, self._joins = [], {}
        for (room, gid, now), batch in batches:
            names = list(batch.groups)
            call_keys = [*self._keys_of(room, gid, now)]
            for grp in names:
                call_keys += self._group_keys_of(room, gid, grp)
            args = [*self._emit_args(room), gid, now, ATTRIBUTION_WINDOW_S, len(names),
                    *names, *batch.args]  # fmt: skip
            if self.batcher is not None:
                sent: asyncio.Future[Any] = self.batcher.call(self._join, call_keys, args)
            else:
                sent = asyncio.ensure_future(self._join(keys=call_keys, args=args))
            self._sending.add(sent)
            sent.add_done_callback(functools.partial(self._answer, batch))

    def _answer(self, batch: _Joins, done: asyncio.Future[Any]) -> None:
        """Hand each caller its own reply (or the call's error)."""
        self._sending.discard(done)
        settle(batch.futures, done, "JOIN")

    def _keys_of(self, room: str, gid: str, now: int) -> list[bytes]:
        """KEYS 1-13 of ``JOIN`` (built once per group buy and week)."""
        week = iso_week(now)
        found = self._shared_keys.get((room, gid, week))
        if found is None:
            names = [self._k(room, gid), self._k(room, gid, ":who"), keys.room(room, "buys"),
                     keys.room(room, "orders"), *self.bus.emit_keys(room),
                     self._k(room, gid, ":groups"), *money_keys(room, now)]  # fmt: skip
            found = [name.encode() for name in names]
            self._shared_keys[(room, gid, week)] = found
        return found

    def _group_keys_of(self, room: str, gid: str, grp: str) -> list[bytes]:
        """One group's keys in ``JOIN`` (built once per group)."""
        found = self._keys_of_group.get((room, gid, grp))
        if found is None:
            parts = ("g", "m", "inv", "invby", "att", "led")
            found = [self._k(room, gid, f":{part}:{grp}").encode() for part in parts]
            self._keys_of_group[(room, gid, grp)] = found
        return found

    async def leave(
        self, room: str, gid: str, grp: str, user: str, now: int
    ) -> tuple[int, GroupState | int | str]:
        """(code, state) as for :meth:`join`."""
        reply = await run(
            self._leave,
            [*self._group_keys(room, gid, grp), keys.room(room, "buys"),
             keys.room(room, "orders")],
            [gid, grp, user, now],
            self.batcher,
        )  # fmt: skip
        return _result(reply)

    async def expire(self, room: str, gid: str, now: int) -> int:
        """Close a group buy whose deadline passed; >0 only for the one caller that did it
        (the number of groups that failed, plus one). Groups whose members all left fail
        silently: no ``failed`` order or event for nobody."""
        kgroups = self._k(room, gid, ":groups")
        while True:
            groups = sorted(as_str(g) for g in await self.redis.smembers(kgroups))
            done = int(
                await self._expire(
                    keys=[
                        self._k(room, gid),
                        kgroups,
                        keys.room(room, "gbs"),
                        keys.room(room, "orders"),
                        *self.bus.emit_keys(room),
                        *(self._k(room, gid, f":g:{g}") for g in groups),
                    ],
                    args=[*self._emit_args(room), gid, now, *groups],
                )
            )
            if done == -2:  # not due yet (another node's clock ran ahead): keep it listed
                return 0
            if done >= 0:  # -1: a group appeared since SMEMBERS; read again
                await self.due_index.remove(f"{room}|{gid}")
                return done

    async def settle(
        self, room: str, gid: str, grp: str, user: str, outcome: str, now: int
    ) -> tuple[int, str]:
        """The shop reports a formed order ``received`` (commission confirmed) or
        ``refunded`` (commission reversed). (1, new state) changed, (0, state)
        already so (or ``none``: no commission on that order), (-1, "") no such
        formed order, (-2, "r") refunded already."""
        reply = await self._settle(
            keys=[self._k(room, gid, f":g:{grp}"), self._k(room, gid, f":m:{grp}"),
                  self._k(room, gid, f":led:{grp}"), *money_keys(room, now)[2:],
                  keys.room(room, "orders")],
            args=[gid, grp, user, outcome, now],
        )  # fmt: skip
        return int(reply[0]), as_str(reply[1]) if len(reply) > 1 else ""

    async def due(self, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """(room, group buy) pairs whose deadline has come, across all rooms."""
        out = []
        for member in await self.due_index.upto(now, limit):
            room, _, gid = member.partition("|")
            out.append((room, gid))
        return out

    async def spec(self, room: str, gid: str) -> dict[str, str] | None:
        raw = await self.redis.hgetall(self._k(room, gid))
        return {as_str(k): as_str(v) for k, v in raw.items()} if raw else None

    async def group(self, room: str, gid: str, grp: str) -> GroupState:
        raw = await self.redis.hmget(self._k(room, gid, f":g:{grp}"), ["v", "n", "q", "s", "b"])
        v, n, q, s, b = raw
        return GroupState(int(v or 0), int(n or 0), int(q or 0), as_str(s) if s else "open",
                          b == b"1")  # fmt: skip

    async def group_names(self, room: str, gid: str) -> list[str]:
        """Every group of a group buy that has (had) a member, sorted."""
        raw = await self.redis.smembers(self._k(room, gid, ":groups"))
        return sorted(as_str(g) for g in raw)

    async def commission(self, room: str) -> tuple[int, int]:
        """The room's commission levels in basis points (the defaults until set)."""
        raw = await self.redis.hget(keys.room(room, "state"), "commission")
        if not raw:
            return DEFAULT_LEVEL1_BP, DEFAULT_LEVEL2_BP
        level1, level2 = msgpack.unpackb(raw)
        return int(level1), int(level2)

    async def set_commission(self, room: str, level1: int, level2: int) -> None:
        await self.redis.hset(
            keys.room(room, "state"), "commission", msgpack.packb([level1, level2])
        )

    async def note_order_room(self, room: str) -> None:
        """Register a room that has orders, for the webhook forwarder."""
        await self.order_rooms.add(room)

    async def open_ids(self, room: str) -> list[str]:
        """Group buys of the room that are still open (closed ones leave the set)."""
        return sorted(as_str(g) for g in await self.redis.smembers(keys.room(room, "gbs")))

    async def joined_group(self, room: str, gid: str, user: str) -> str | None:
        """The group ``user`` joined in this group buy (None: none), whatever their
        community is now."""
        raw = await self.redis.hget(self._k(room, gid, ":who"), user)
        return as_str(raw) if raw is not None else None

    async def members(self, room: str, gid: str, grp: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self._k(room, gid, f":m:{grp}"))
        return {as_str(k): int(v) for k, v in raw.items()}

    async def mine(self, room: str, user: str, gids: list[str]) -> dict[str, dict[str, Any]]:
        """{gb: {"group", "qty"}} of the user's memberships in these group buys, wherever
        the community came from (token, ``locate`` or ``choose_community``)."""
        if not gids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for gid in gids:
            pipe.hget(self._k(room, gid, ":who"), user)
        groups = await pipe.execute()
        found = [(gid, as_str(g)) for gid, g in zip(gids, groups, strict=True) if g is not None]
        if not found:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for gid, grp in found:
            pipe.hget(self._k(room, gid, f":m:{grp}"), user)
        qtys = await pipe.execute()
        return {gid: {"group": grp, "qty": int(q)}
                for (gid, grp), q in zip(found, qtys, strict=True) if q is not None}  # fmt: skip


@functools.lru_cache(maxsize=4)
def iso_week(now: int) -> str:
    """``2026-W49``: the ISO week of a Unix time (UTC), naming a weekly leaderboard
    (the last few seconds asked are remembered: every turn's joins ask it)."""
    year, week, _ = datetime.datetime.fromtimestamp(now, datetime.UTC).isocalendar()
    return f"{year}-W{week:02d}"


def money_keys(room: str, now: int) -> list[str]:
    """attrib, recruiters, stats, board, this week's board: the keys commission moves."""
    return [keys.room(room, "attrib"), keys.room(room, "recruiters"),
            keys.room(room, "officer_stats"), keys.room(room, "leaderboard"),
            keys.room(room, f"leaderboard:w:{iso_week(now)}")]  # fmt: skip


def _result(reply: Any) -> tuple[int, GroupState | int | str]:
    code = int(reply[0])
    if code < 0:
        if len(reply) < 2:
            return code, 0
        return code, as_str(reply[1]) if code == OTHER_GROUP else int(reply[1])
    v, n, q, status, bonus = reply[1:6]
    return code, GroupState(
        int(v or 0), int(n or 0), int(q or 0), as_str(status), as_str(bonus) == "1"
    )

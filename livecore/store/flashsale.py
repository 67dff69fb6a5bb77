"""Flash sales on Redis/Valkey: every start, buy and end is one Lua call.

The taps without a coupon that a node receives for one sale in one loop turn
share one call (``BUYS``, applied in order, atomic as each tap was): the
opening rush of a sale is a few calls per turn, not one per buyer.

A buy checks the sale (started, not ended, stock left), the buyer's limit and,
when the buyer hands in a coupon, that they claimed one not yet used; then it
moves the sold count and the version, records the buyer's quantity, appends
the order to the room's ``orders`` stream (so the webhook forwarder hands it
to the shop) and, on the last unit, flips the sale to ``sold_out`` and emits
``flash_sold_out``, all in the same atomic step: stock never goes below 0 and
no buyer passes the limit, however many nodes race. A retried buy that carries
the same idempotency ``key`` answers what the first one did and changes nothing.

Keys (all tagged with the room, all passed as ``KEYS``): ``flash`` (the room's
current sale: id, spec, sold, v, status), ``flash:<id>:b`` (user → qty),
``flash:<id>:k`` (user|key → qty of a buy that succeeded), the coupon keys of
:mod:`livecore.store.coupons` and ``orders``. A sale's keys expire a day after
its end. One sale at a time per room; ``v`` grows across a room's sales, so
the newest state of a room's flash sale is the one with the highest ``v``.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from livecore.flashsale import FlashSpec, FlashStatus
from livecore.store import keys
from livecore.store.batch import ScriptBatcher, run, settle
from livecore.store.bus import Bus, channel
from livecore.store.client import StoreClient
from livecore.store.coupons import coupon_keys
from livecore.store.flashsale_scripts import BUY, BUYS, END, FINAL, START
from livecore.store.index import ScoredIndex
from livecore.store.replies import as_str

#: Flash sales whose end the sweep looks for, as ``room|id`` by end time.
FLASH_DUE = "flashdue"
#: A sale's buyer keys outlive its end by this long (the shop has the orders).
KEEP_S = 24 * 3600
#: Taps one ``BUYS`` call carries at most (a turn with more sends several calls).
MAX_TAPS_PER_CALL = 64


@dataclass(frozen=True, slots=True)
class FlashState:
    """A sale's progress as clients see it (``st.flash``)."""

    id: str
    version: int
    sold: int
    stock: int
    status: str

    def public(self) -> dict[str, Any]:
        return {"fs": self.id, "v": self.version, "sold": self.sold,
                "left": max(0, self.stock - self.sold), "s": self.status}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BuyResult:
    """What a buy did: ``code`` as documented on :data:`BUY`; ``arg`` of a refusal."""

    code: int
    state: FlashState | None = None
    mine: int = 0
    arg: int = 0


@dataclass(slots=True)
class _Taps:
    """Taps of one sale (without a coupon) queued during one loop turn."""

    args: list[bytes] = field(default_factory=list)
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    def add(self, user: str, qty: int, key: str) -> asyncio.Future[Any]:
        # As bytes already (the bytes on the wire): redis-py's encoder would look at each.
        self.args += (user.encode(), b"%d" % qty, key.encode())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class FlashSaleStore:
    """Start, buy, end and read a room's flash sale."""

    def __init__(self, redis: StoreClient, bus: Bus, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.bus = bus
        self.batcher = batcher
        self.due_index = ScoredIndex(redis, FLASH_DUE)
        self._start = redis.register_script(START)
        self._buy = redis.register_script(BUY)
        self._buys = redis.register_script(BUYS)
        self._end = redis.register_script(END)
        self._final = redis.register_script(FINAL)
        #: Taps of this loop turn by (room, sale, now), and full ones to send.
        self._taps: dict[tuple[str, str, int], _Taps] = {}
        self._full: list[tuple[tuple[str, str, int], _Taps]] = []
        self._scheduled = False
        self._sending: set[asyncio.Future[Any]] = set()
        if batcher is not None:
            batcher.add_source(self._drain)

    @staticmethod
    def key(room: str, part: str = "") -> str:
        return keys.room(room, f"flash{part}")

    def _emit(self, room: str) -> list[Any]:
        return [channel(room), self.bus.history_max, secrets.token_hex(8)]

    def _shared(self, room: str) -> list[str]:
        return [self.key(room), *self.bus.emit_keys(room), keys.room(room, "orders")]

    async def start(self, room: str, spec: FlashSpec, now: int) -> tuple[str, int] | str:
        """Start a sale: (id, v), or the id of the sale still on (one at a time)."""
        fid = "f" + secrets.token_hex(4)
        # the end is indexed first: a crash after it leaves an entry the sweep drops
        await self.due_index.add(f"{room}|{fid}", spec.ends_at)
        event = msgpack.packb({"t": "flash_started", "fs": fid, **spec.public()})
        fields: list[Any] = ["product", spec.product, "price", spec.price_cents,
                             "stock", spec.stock, "limit", spec.limit,
                             "starts", spec.starts_at, "ends", spec.ends_at]  # fmt: skip
        reply = await self._start(
            keys=self._shared(room), args=[*self._emit(room), now, fid, event, KEEP_S, *fields]
        )
        if int(reply[0]) < 0:
            await self.due_index.remove(f"{room}|{fid}")
            return as_str(reply[1])
        return fid, int(reply[1])

    async def buy(
        self, room: str, fid: str, user: str, qty: int, key: str, coupon: str, now: int
    ) -> BuyResult:
        """One buyer's tap of 抢 (see :data:`BUY`). Without a coupon it joins the turn's
        other taps of the sale in one ``BUYS`` call; with one it is its own call. Both
        ride the turn's pipeline."""
        if coupon:
            reply = await run(
                self._buy,
                [self.key(room), self.key(room, f":{fid}:b"), self.key(room, f":{fid}:k"),
                 keys.room(room, "orders"), *self.bus.emit_keys(room),
                 *coupon_keys(room, coupon)],
                [*self._emit(room), fid, user, qty, key, now, coupon, KEEP_S],
                self.batcher,
            )  # fmt: skip
        else:
            tag = (room, fid, now)
            taps = self._taps.get(tag)
            if taps is None:
                taps = self._taps[tag] = _Taps()
                self._wake()
            future = taps.add(user, qty, key)
            if len(taps.futures) >= MAX_TAPS_PER_CALL:
                self._full.append((tag, self._taps.pop(tag)))
            reply = await future
        return _result(fid, reply)

    def _wake(self) -> None:
        if self.batcher is not None:
            self.batcher.wake()  # it drains this store before it sends the turn's pipeline
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Queue one ``BUYS`` call per sale for the taps of this turn."""
        self._scheduled = False
        if not self._taps and not self._full:
            return
        batches = [*self._full, *self._taps.items()]
        self._full, self._taps = [], {}
        for (room, fid, now), taps in batches:
            call_keys = [self.key(room), self.key(room, f":{fid}:b"),
                         self.key(room, f":{fid}:k"), keys.room(room, "orders"),
                         *self.bus.emit_keys(room)]  # fmt: skip
            args = [*self._emit(room), fid, now, KEEP_S, *taps.args]
            if self.batcher is not None:
                sent: asyncio.Future[Any] = self.batcher.call(self._buys, call_keys, args)
            else:
                sent = asyncio.ensure_future(self._buys(keys=call_keys, args=args))
            self._sending.add(sent)
            sent.add_done_callback(functools.partial(self._answer, taps))

    def _answer(self, taps: _Taps, done: asyncio.Future[Any]) -> None:
        """Hand each tap its own reply (or the call's error)."""
        self._sending.discard(done)
        settle(taps.futures, done, "BUYS")

    async def end(self, room: str, fid: str, now: int, *, force: bool = False) -> FlashState | int:
        """End the sale (``force``: the host stops it before its time): its final
        state for the one caller that ended it, else 0 (nothing to end) or -2 (not due)."""
        reply = await self._end(
            keys=self._shared(room), args=[*self._emit(room), fid, now, "1" if force else "0"]
        )
        code = int(reply[0])
        if code <= 0:
            if code == 0:
                await self.due_index.remove(f"{room}|{fid}")
            return code
        await self.due_index.remove(f"{room}|{fid}")
        return FlashState(fid, int(reply[1]), int(reply[2]), int(reply[3]), FlashStatus.ENDED)

    async def due(self, now: int, limit: int = 100) -> list[tuple[str, str]]:
        """(room, sale) pairs whose end has come, across all rooms."""
        out = []
        for member in await self.due_index.upto(now, limit):
            room, _, fid = member.partition("|")
            out.append((room, fid))
        return out

    async def current(self, room: str) -> dict[str, Any] | None:
        """The room's latest sale as a snapshot carries it (spec and state), or None."""
        raw = await self.redis.hgetall(self.key(room))
        if not raw:
            return None
        m = {as_str(k): as_str(v) for k, v in raw.items()}
        state = FlashState(m["id"], int(m["v"]), int(m["sold"]), int(m["stock"]), m["status"])
        return {
            **state.public(), "product": m["product"], "price_cents": int(m["price"]),
            "stock": int(m["stock"]), "limit": int(m["limit"]), "starts_at": int(m["starts"]),
            "ends_at": int(m["ends"]),
        }  # fmt: skip

    async def final(
        self, room: str, fid: str
    ) -> tuple[FlashState, dict[str, int], set[str]] | None:
        """A sale that can sell no more (sold out or ended): its state, its holders (user →
        units) and the ``user|key`` of every buy, which no longer change; None while
        it still sells (or is not the room's sale)."""
        # Its own call, in this task (not the turn's batch: a hop more for the taps
        # waiting on it); one script, not a MULTI (see FINAL).
        reply = await self._final(
            keys=[self.key(room), self.key(room, f":{fid}:b"), self.key(room, f":{fid}:k")],
            args=[fid],
        )
        if not reply:
            return None
        (v, sold, stock, status), flat, done = reply
        state = FlashState(fid, int(v), int(sold), int(stock), as_str(status))
        holders = {as_str(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return state, holders, {as_str(k) for k in done}

    async def bought(self, room: str, fid: str, user: str) -> int:
        """How many of sale ``fid`` ``user`` bought."""
        return int(await self.redis.hget(self.key(room, f":{fid}:b"), user) or 0)


def _result(fid: str, reply: list[Any]) -> BuyResult:
    """A buy's reply (see :data:`BUY`) as a :class:`BuyResult`."""
    code = int(reply[0])
    if code < 0:
        return BuyResult(code, arg=int(reply[1]) if len(reply) > 1 else 0)
    v, sold, stock, status, mine = reply[1:6]
    state = FlashState(fid, int(v), int(sold), int(stock), as_str(status))
    return BuyResult(code, state, int(mine))

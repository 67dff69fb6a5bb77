"""Joining the room channel: hello -> token -> snapshot or recovery -> live.

Joining catches a connection up to exactly what the room has flushed, then
activates it without yielding to the loop in between, so it neither misses
nor repeats an event (see :meth:`Joiner.catch_up`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgpack
from redis.exceptions import RedisError

from livecore import tokens, wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.keyring import KeyRing
from signalling.hub import snapshot
from signalling.hub.busreader import BusReader
from signalling.hub.connection import HubConnection
from signalling.hub.context import Context, Services
from signalling.hub.handlers.coupons import keeps_task_facts, remember_session
from signalling.hub.handlers.officers import attribute
from signalling.hub.reading import Reading
from signalling.hub.room import LocalRoom
from signalling.node.admission import Admission
from signalling.node.background import BackgroundTasks
from signalling.node.forwarded import is_trusted
from signalling.node.metrics import Metrics

#: Events a reconnecting client may recover; past it, it gets a fresh snapshot.
MAX_RECOVER = 2000
#: Websockets one node holds at most.
MAX_CONNECTIONS = 60_000
#: Leaving connections' coupon-task facts being written at once (past it, one
#: leaving buyer's are not kept: their next connection starts the task again).
MAX_FACT_WRITES = 1000

log = logging.getLogger(__name__)


def check_hello(secret: bytes | KeyRing, token: str, *, now: float, room: str) -> tokens.Claims:
    """The claims of a hello's token for ``room``; admin tokens do not join. Pure."""
    claims = tokens.verify(secret, token, now=now, room=room)
    if claims.role in (tokens.Role.ADMIN, tokens.Role.DEVICE, tokens.Role.NODE, tokens.Role.PICKUP):
        raise LivecoreError(
            ErrorCode.TOKEN_WRONG_ROLE, f"{claims.role.value} tokens do not join rooms"
        )
    return claims


def can_recover(since: dict[str, Any], epoch: str, last: int, first: int) -> bool:
    """Whether the history (``epoch``, offsets ``first``..``last``) still holds
    everything after the client's position ``since``. Pure."""
    offset = int(since["offset"])
    return since["epoch"] == epoch and offset <= last and offset + 1 >= first


class Joiner:
    """Admits connections into rooms and counts them."""

    def __init__(
        self, node: Services, secret: bytes | KeyRing, reader: BusReader, metrics: Metrics
    ) -> None:
        self.node = node
        self.secret = secret
        self.reader = reader
        self.metrics = metrics
        self.connections = 0
        #: Open websockets per client address and per joined user (entries leave at 0).
        self._by_address: dict[str, int] = {}
        self._by_user: dict[str, int] = {}
        #: Hellos served at once, adapted to how late the broadcast tick runs.
        self.admission = Admission()
        #: Writes of leaving connections' coupon-task facts (bounded).
        self.facts = BackgroundTasks(log)

    def admit(self, conn: HubConnection, address: str) -> str | None:
        """None when this node takes one more websocket from ``address`` (then
        counted until :meth:`leave`), else the limit that refuses it."""
        settings = self.node.settings
        if self.connections >= MAX_CONNECTIONS:
            reason = "ws_node_cap"
        elif (
            settings.ws_max_per_ip
            and not is_trusted(address, settings.trusted_proxies)
            and self._by_address.get(address, 0) >= settings.ws_max_per_ip
        ):
            reason = "ws_ip_cap"
        else:
            self._by_address[address] = self._by_address.get(address, 0) + 1
            conn.address = address
            return None
        self.metrics.refusals.labels(reason).inc()
        return reason

    def sizes(self) -> dict[str, int]:
        return {"ws_by_address": len(self._by_address), "ws_by_user": len(self._by_user),
                "joins_waiting": self.admission.waiting,
                "task_fact_writes": len(self.facts)}  # fmt: skip

    def _release(self, conn: HubConnection) -> None:
        for counts, key in ((self._by_address, conn.address), (self._by_user, conn.counted_user)):
            if not key:
                continue
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)  # a user's or address's count leaves with them
        conn.address = conn.counted_user = ""

    async def join(self, conn: HubConnection, hello: wire.Message) -> None:
        """Authenticate, then send a snapshot or the recovered gap, then go live."""
        async with self.admission:
            if not conn.closing:
                await self._join(conn, hello)

    async def _join(self, conn: HubConnection, hello: wire.Message) -> None:
        node = self.node
        try:
            claims = check_hello(
                self.secret, hello.fields["token"], now=node.clock.time(), room=conn.room_id
            )
        except LivecoreError as err:
            conn.close(wire.CloseCode.UNAUTHORIZED, f"{err.code}: {err.message}"[:120])
            return
        most = node.settings.ws_max_per_user
        if most and self._by_user.get(claims.user, 0) >= most:
            self.metrics.refusals.labels("ws_user_cap").inc()
            conn.close(wire.CloseCode.TOO_MANY_CONNECTIONS, f"at most {most} connections per user")
            return
        self._by_user[claims.user] = self._by_user.get(claims.user, 0) + 1
        conn.counted_user = claims.user
        since = hello.fields.get("since")
        try:
            # a fresh visitor's revocation is checked with its snapshot (one batch)
            if since is not None and await node.stores.revocations.is_revoked(claims):
                conn.close(wire.CloseCode.UNAUTHORIZED, "token_revoked: this token was revoked")
                return
            # a room open here exists (one forgotten since is caught by its reading)
            if conn.room_id not in self.reader.rooms and not await node.stores.rooms.exists(
                conn.room_id
            ):
                conn.close(wire.CloseCode.ROOM_NOT_FOUND, f"room {conn.room_id} does not exist")
                return
            room = await self.reader.open(conn.room_id)
        except (RedisError, OSError, TimeoutError):
            conn.close(wire.CloseCode.INTERNAL_ERROR, "store unavailable; retry")
            return
        if conn.closing:
            return
        conn.claims = claims
        conn.arm_expiry(claims.expires_at - node.clock.time())
        conn.community = claims.community
        conn.room = room
        ctx = conn.context = Context(conn, claims, node)
        room.joining.add(conn)
        room.idle_since = None
        self.connections += 1
        self.metrics.ws_connections.inc()
        try:
            referral = None
            if hello.fields.get("ref"):
                referral = await attribute(ctx, hello.fields["ref"])
            referred_by = referral if isinstance(referral, str) else None
            if since is None:
                node.moments.signal(conn.room_id, "arrival", claims.user)
            if since is None or not await self.recover(conn, room, since):
                await self.snapshot(conn, room, lost=since is not None, referred_by=referred_by)
            if isinstance(referral, LivecoreError):
                conn.fail(referral)
        except LivecoreError as err:  # the token was revoked, or the room is gone
            code = (wire.CloseCode.ROOM_NOT_FOUND if err.code is ErrorCode.ROOM_NOT_FOUND
                    else wire.CloseCode.UNAUTHORIZED)  # fmt: skip
            conn.close(code, f"{err.code}: {err.message}"[:120])
        except (RedisError, OSError, TimeoutError):
            conn.close(wire.CloseCode.INTERNAL_ERROR, "store unavailable; retry")
        finally:
            room.joining.discard(conn)
            conn.joining = False

    def leave(self, conn: HubConnection) -> None:
        self._release(conn)
        room = conn.room
        if room is None:
            return
        conn.room = None
        room.remove(conn)
        # a phone that reconnects (a network switch) keeps its watch time and comment
        ctx, reading = conn.context, room.reading
        if (
            ctx is not None
            and (bool(room.coupons) or (reading is not None and keeps_task_facts(reading.coupons)))
            and len(self.facts) < MAX_FACT_WRITES
        ):
            self.facts.spawn(remember_session(ctx), name=f"task-facts-{room.id}")
        self.connections -= 1
        self.metrics.ws_connections.dec()
        if room.size == 0:
            room.idle_since = time.monotonic()

    async def catch_up(self, room: LocalRoom, cursor: int) -> list[dict[str, Any]] | None:
        """Events after ``cursor`` up to ``room.flushed`` (None: not all in history).

        Returns with no await after the last check of ``room.flushed``: the
        caller activates the connection right away, before the next batch.
        """
        out: list[dict[str, Any]] = []
        while cursor < room.flushed:
            entries = await self.reader.bus.history(room.id, cursor, room.flushed, limit=1000)
            if not entries or entries[0][0] != cursor + 1 or len(out) > MAX_RECOVER:
                return None
            for offset, payload in entries:
                out.append(wire.encode_event(offset, msgpack.unpackb(payload, raw=False)))
            cursor = entries[-1][0]
        return out

    async def since_reading(self, room: LocalRoom, reading: Reading) -> list[dict[str, Any]] | None:
        """The events flushed after ``reading`` (None: not all in history any more).

        The reading collected them while the room kept it; a reading the room
        let go meanwhile (expired, or over its size) has the rest read from the
        history. Like :meth:`catch_up`, no await after the last check of
        ``room.flushed``.
        """
        tail = [] if reading.overflowed else reading.events
        if room.reading is reading and not reading.overflowed:
            return [e for e in tail if e["o"] <= room.flushed]
        cursor = tail[-1]["o"] if tail else reading.offset
        more = await self.catch_up(room, cursor) if cursor < room.flushed else []
        if more is None:
            return None
        return [e for e in tail if e["o"] <= room.flushed] + more

    @staticmethod
    def activate(conn: HubConnection, room: LocalRoom) -> None:
        if conn.room is room and not conn.closing:
            room.activate(conn)

    async def recover(self, conn: HubConnection, room: LocalRoom, since: dict[str, Any]) -> bool:
        """Replay what the client missed; False when the gap cannot be replayed."""
        assert conn.claims is not None
        head = await self.reader.bus.head(room.id)
        if not can_recover(since, head.epoch, head.offset, head.first):
            return False
        offset = int(since["offset"])
        if head.offset - offset > MAX_RECOVER:  # the docs promise a snapshot past it
            return False
        for _ in range(40):  # the client may be ahead of this node by a few events
            if offset <= room.flushed:
                break
            await asyncio.sleep(self.node.settings.tick_ms / 1000)
        else:
            return False
        events = await self.catch_up(room, offset)
        if events is None:
            return False
        conn.send(
            wire.encode(
                {"t": wire.ServerType.RECOVERED.value, "epoch": room.epoch,
                 "offset": room.flushed, "events": events,
                 "st": snapshot.live_state(room, conn.claims, conn.community)}
            )
        )  # fmt: skip
        self.activate(conn, room)
        self.metrics.ws_recoveries.labels("recovered").inc()
        return True

    async def snapshot(
        self,
        conn: HubConnection,
        room: LocalRoom,
        *,
        lost: bool,
        referred_by: str | None = None,
    ) -> None:
        assert conn.claims is not None
        state = await snapshot.read(self.node, room, conn.claims, conn.community)
        events = await self.since_reading(room, state.reading)
        if events is None:  # history moved too far while we read: start over once
            room.reading = None
            state = await snapshot.read(self.node, room, conn.claims, conn.community)
            events = await self.since_reading(room, state.reading) or []
        if state.reading.meta is None:
            raise LivecoreError(ErrorCode.ROOM_NOT_FOUND, f"room {room.id} does not exist")
        message = snapshot.build(state, events, room, state.reading.meta, conn.claims)
        message["referred_by"] = referred_by
        if lost:
            message["recovered"] = False
            self.metrics.ws_recoveries.labels("lost").inc()
        conn.send(wire.encode(message))
        self.activate(conn, room)

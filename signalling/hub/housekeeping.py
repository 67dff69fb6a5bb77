"""The hub's beat: counters and group progress (4/s), then viewers, head checks,
poll deadlines, idle rooms, group-buy deadlines, silent connections (1/s) and
pings (every ``ws_ping_interval_s``, 20 s)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgpack
from redis.exceptions import RedisError

from livecore import wire
from signalling.hub.busreader import BusReader
from signalling.hub.context import Services
from signalling.hub.groupview import group_message
from signalling.hub.room import LocalRoom

log = logging.getLogger("livecore.hub")
BEAT_S = 0.25
IDLE_UNSUBSCRIBE_S = 30.0


def is_idle(room: LocalRoom, now: float, after_s: float = IDLE_UNSUBSCRIBE_S) -> bool:
    """Whether a room has had no connection for ``after_s`` (monotonic ``now``). Pure."""
    return room.size == 0 and room.idle_since is not None and now - room.idle_since > after_s


class Housekeeper:
    """Runs the beat over the hub's rooms (``rooms`` is the hub's map, shared)."""

    def __init__(self, rooms: dict[str, LocalRoom], node: Services, reader: BusReader) -> None:
        self.rooms = rooms
        self.node = node
        self.reader = reader
        self.running = False
        #: Told when a room leaves this node (the traffic recorder closes its trace).
        self.on_room_idle: Callable[[str], None] = lambda room: None
        #: Monotonic time of the beat's last turn (readiness).
        self.last_beat = time.monotonic()

    async def run(self) -> None:
        beat = 0
        while self.running:
            await asyncio.sleep(BEAT_S)
            self.last_beat = time.monotonic()
            beat += 1
            for room in list(self.rooms.values()):
                try:
                    await self.publish_counters(room)
                    await self.publish_groups(room)
                    if beat % 4 == 0:
                        await self.room_second(room)
                except (RedisError, OSError) as exc:
                    log.warning("housekeeping of room %s failed: %s", room.id, exc)
                except Exception:  # keep the loop alive; the log has the bug
                    log.exception("housekeeping of room %s failed", room.id)
            if beat % 4 == 0:
                self.reap_silent()
                self.prune_limits()
                try:
                    await self.sweep_deadlines()
                except (RedisError, OSError) as exc:
                    log.warning("group-buy deadline sweep failed: %s", exc)
                except Exception:
                    log.exception("group-buy deadline sweep failed")
            self.ping_slice(beat)

    async def publish_counters(self, room: LocalRoom) -> None:
        """Likes tapped here go to the room's total; voted polls' tallies are published."""
        stores = self.node.stores
        if room.local_likes:
            taps, room.local_likes = room.local_likes, 0
            total = await stores.counters.add_likes(room.id, taps)
            room.set_likes(total)
            await stores.bus.ephemeral(room.id, msgpack.packb({"k": "likes", "n": total}))
        while room.dirty_polls:
            poll = room.dirty_polls.pop()
            tally = await stores.polls.tally(room.id, poll)
            if tally is not None:
                counts, version = tally
                room.set_tally(poll, version, counts)
                message = {"k": "tally", "poll": poll, "v": version, "counts": counts}
                await stores.bus.ephemeral(room.id, msgpack.packb(message))

    async def publish_groups(self, room: LocalRoom) -> None:
        """Tell the other nodes the groups, flash sale and coupons that changed here
        (coalesced, ≤ 4/s each)."""
        while room.local_groups:
            (gid, group), state = room.local_groups.popitem()
            await self.node.stores.bus.ephemeral(room.id, group_message(gid, group, state))
        while room.local_commerce:
            what, state = room.local_commerce.popitem()
            message = {"k": "flash", **state} if what == "flash" else {"k": "coupon", "cp": what,
                                                                     **state}  # fmt: skip
            await self.node.stores.bus.ephemeral(room.id, msgpack.packb(message))

    async def sweep_deadlines(self) -> None:
        """Fail what did not form in time, end flash sales whose time is up and draw the
        lucky draws whose entry closed: every node sweeps, one wins each."""
        now = self.node.now()
        buys = self.node.stores.groupbuys
        for room_id, gid in await buys.due(now):
            await buys.expire(room_id, gid, now)
        flash = self.node.stores.flash
        for room_id, fid in await flash.due(now):
            await flash.end(room_id, fid, now)
        draws = self.node.stores.draws
        for room_id, did in await draws.due(now):
            await draws.draw(room_id, did, now)

    async def room_second(self, room: LocalRoom) -> None:
        """Viewers, leaderboard, head check, poll deadlines, idle unsubscribe."""
        node, stores = self.node, self.node.stores
        now = node.now()
        node_id = node.settings.node_id
        if is_idle(room, time.monotonic(), node.settings.room_idle_s):
            # first, before the room's other work: thousands of rooms going idle at
            # once must not each pay four round trips on the way out
            self.rooms.pop(room.id, None)
            self.on_room_idle(room.id)
            self.reader.metrics.rooms.set(len(self.rooms))
            await stores.counters.report_viewers(room.id, node_id, 0, now)
            await self.reader.unsubscribe(room.id)
            return
        room.set_viewers(await stores.counters.report_viewers(room.id, node_id, room.size, now))
        room.set_leaderboard(await stores.officers.leaderboard(room.id))
        head = await stores.bus.head(room.id)
        if head.epoch != room.seq.epoch:
            self.reader.resync(room)
            return
        if room.seq.behind(head.offset) is not None:
            await self.reader.fill(room)
        for poll in await stores.polls.due(room.id, now):
            await stores.polls.close(room.id, poll, now)

    def prune_limits(self) -> None:
        """Per-user buckets that refilled leave (a user's limit state leaves with them)."""
        node = self.node
        for limiter in (
            node.comment_limits,
            node.message_limits,
            node.costly_limits,
            node.like_limits,
        ):
            limiter.prune()

    def reap_silent(self) -> None:
        """Close (1001) every joined connection silent for ``ws_idle_timeout_s``.

        A client whose socket vanished without FIN or RST (a phone out of
        coverage, a NAT that forgot it) never answers the pings; it is closed
        here, and its TCP connection dropped when the closing handshake times
        out (3 s), which is when its state leaves the node.
        """
        now = asyncio.get_running_loop().time()
        limit = self.node.settings.ws_idle_timeout_s
        for room in list(self.rooms.values()):
            for conn in list(room.conns):
                if now - conn.last_heard > limit:
                    conn.close(wire.CloseCode.GOING_AWAY, "no traffic; connection presumed dead")

    def ping_slice(self, beat: int) -> None:
        """Ping the joined connections whose turn this beat is (a pong counts as
        traffic): each once per ``ws_ping_interval_s``, a slice every beat. Pinging
        every connection at once made a node of 19,500 viewers write 19,500 pings
        and then parse 19,500 pongs in a burst that delayed its broadcast ticks."""
        slots = max(1, round(self.node.settings.ws_ping_interval_s / BEAT_S))
        slot = beat % slots
        for room in list(self.rooms.values()):
            for conn in [c for c in room.conns if _spread(c) % slots == slot]:
                conn.ping()


def _spread(conn: object) -> int:
    """A number of ``conn`` spread evenly (Fibonacci hashing of its address:
    addresses themselves are multiples of the object size)."""
    return ((id(conn) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 40

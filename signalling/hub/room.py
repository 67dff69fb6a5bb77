"""One room as this node sees it: its connections, the next tick's batch, coalesced state."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import msgpack

from livecore import wire
from livecore.lru import LruDict
from livecore.sequencer import Sequencer
from livecore.tokens import Claims
from signalling.hub.backlog import Backlog
from signalling.hub.reading import Reading

#: Events past which a batch is flushed before its tick (bounds frame size).
MAX_BATCH_EVENTS = 500
#: A group's progress goes out at most this often (10/s), however many joins.
GROUP_PUSH_INTERVAL_S = 0.1
#: Groups whose last push time a room remembers (only the last 0.1 s matters).
MAX_GROUPS_PUSHED = 10_000
#: Coupons whose state a room keeps (a room holds at most 20; bus messages are bounded too).
MAX_COUPON_STATES = 64


class Member(Protocol):
    """What a room needs of a connection (:class:`~signalling.hub.connection.HubConnection`)."""

    claims: Claims | None
    community: str | None
    transport: asyncio.Transport | None
    closing: bool
    #: Loop time of the last bytes received.
    last_heard: float

    def close(self, code: int, reason: str = "") -> None: ...

    def ping(self) -> None: ...


class LocalRoom:
    """Connections of one room on this node and what they will receive next.

    ``flushed`` is the highest offset already written to the connections: a
    connection activated now receives every event after it in the next batch,
    so joining (snapshot or recovery) catches up exactly to ``flushed``.
    """

    def __init__(self, room_id: str, seq: Sequencer) -> None:
        self.id = room_id
        self.seq = seq
        self.flushed = seq.offset
        self.conns: set[Member] = set()
        self.joining: set[Member] = set()
        self.events: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.likes = 0
        self.viewers = 0
        self.tallies: dict[str, tuple[int, list[int]]] = {}
        #: Taps received here and not yet added to the room's total in Valkey.
        self.local_likes = 0
        #: Polls voted on here whose tally must be published.
        self.dirty_polls: set[str] = set()
        self.idle_since: float | None = None
        #: Active connections by community, and hosts (who see every group).
        self.by_community: dict[str, set[Member]] = {}
        self.hosts: set[Member] = set()
        #: Latest state of each group, (group buy, group) → state; those changed
        #: since the last tick go to their community only.
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.dirty_groups: set[tuple[str, str]] = set()
        self._group_pushed: LruDict[tuple[str, str], float] = LruDict(MAX_GROUPS_PUSHED)
        #: Group results made on this node, not yet published to the other nodes.
        self.local_groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.leaderboard: list[list[Any]] = []
        #: The room's flash sale's newest state (``st.flash``; ``v`` grows across sales)
        #: and coupons' (``st.coupons``); ``local_commerce`` holds what changed here and
        #: is not yet published to the other nodes ("flash" or a coupon id → state).
        self.flash: dict[str, Any] | None = None
        self.coupons: dict[str, dict[str, Any]] = {}
        self.local_commerce: dict[str, dict[str, Any]] = {}
        #: The flash sale once it sells no more, read once, answering taps here
        #: (:mod:`signalling.hub.handlers.flash`); its loading, shared by the taps.
        self.flash_final: Any = None
        self.flash_loading: asyncio.Task[Any] | None = None
        #: The state its visitors share (being read, or read less than SHARE_S ago).
        self.reading: Reading | None = None
        self.reading_task: asyncio.Task[Reading] | None = None
        #: Batches taken and not yet written to every connection (the writer's).
        self.backlog = Backlog()

    @property
    def epoch(self) -> str:
        return self.seq.epoch or ""

    @property
    def size(self) -> int:
        return len(self.conns) + len(self.joining)

    def activate(self, conn: Member) -> None:
        """The connection receives batches from now on."""
        self.conns.add(conn)
        self.backlog.add(conn)
        if conn.community:
            self.by_community.setdefault(conn.community, set()).add(conn)
        if conn.claims is not None and conn.claims.role.value == "host":
            self.hosts.add(conn)

    def remove(self, conn: Member) -> None:
        self.joining.discard(conn)
        self.conns.discard(conn)
        self.backlog.discard(conn)
        self.hosts.discard(conn)
        self._leave_community(conn)

    def move(self, conn: Member, community: str) -> None:
        """``conn`` now belongs to ``community``."""
        self._leave_community(conn)
        conn.community = community
        if conn in self.conns:
            self.by_community.setdefault(community, set()).add(conn)

    def _leave_community(self, conn: Member) -> None:
        members = self.by_community.get(conn.community or "")
        if members is not None:
            members.discard(conn)
            if not members:
                del self.by_community[conn.community or ""]

    def set_group(self, gb: str, group: str, state: dict[str, Any]) -> None:
        """Keep the newest state of a group (versions only grow)."""
        known = self.groups.get((gb, group))
        if known is None or state["v"] > known["v"]:
            self.groups[(gb, group)] = state
            self.dirty_groups.add((gb, group))

    def group_frames(self, now: float) -> list[tuple[bytes, set[Member]]]:
        """The changed groups' states, coalesced: one frame per community (its groups
        and the room-wide ones), one for the hosts (every changed group) and one for
        the other viewers when a room-wide group changed, so a connection gets at
        most one group frame per tick however many groups moved. A group pushed
        less than GROUP_PUSH_INTERVAL_S ago waits (it stays dirty)."""
        due: dict[tuple[str, str], dict[str, Any]] = {}
        for key in list(self.dirty_groups):
            if now - (self._group_pushed.get(key) or -1.0) < GROUP_PUSH_INTERVAL_S:
                continue
            self.dirty_groups.discard(key)
            self._group_pushed[key] = now
            state = self.groups.get(key)
            if state is not None:  # else the group buy closed meanwhile
                due[key] = state
        if not due:
            return []
        room_wide: dict[str, Any] = {}
        by_community: dict[str, dict[str, Any]] = {}
        for (gb, group), state in due.items():
            if state.get("scope") == "room":
                room_wide.setdefault(gb, {})[group] = state
            else:
                by_community.setdefault(group, {}).setdefault(gb, {})[group] = state
        out = []
        reached: set[Member] = set()
        for community, groups in by_community.items():
            targets = self.by_community.get(community, set()) - self.hosts
            reached |= targets
            for gb, states in room_wide.items():
                groups.setdefault(gb, {}).update(states)
            out.append((_groups_frame(groups), targets))
        if room_wide:
            out.append((_groups_frame(room_wide), self.conns - self.hosts - reached))
        if self.hosts:
            everything: dict[str, Any] = {}
            for (gb, group), state in due.items():
                everything.setdefault(gb, {})[group] = state
            out.append((_groups_frame(everything), set(self.hosts)))
        return out

    def set_flash(self, state: dict[str, Any]) -> bool:
        """Keep the newest state of the room's flash sale (coalesced per tick)."""
        if self.flash is not None and state["v"] <= self.flash["v"]:
            return False
        self.flash = state
        self.state["flash"] = state
        return True

    def _flash_event(self, event: dict[str, Any]) -> None:
        """Follow the sale's durable events into ``st.flash`` as well (an event may come
        before the buy's own answer: the state it carries must not be lost)."""
        kind = event["t"]
        if kind == wire.EventType.FLASH_STARTED:
            sold, left, status = 0, int(event.get("stock", 0)), "open"
        elif kind == wire.EventType.FLASH_SOLD_OUT:
            sold, left, status = int(event.get("sold", 0)), 0, "sold_out"
        else:
            sold = int(event.get("sold", 0))
            left, status = max(0, int(event.get("stock", 0)) - sold), "ended"
        self.set_flash(
            {"fs": event.get("fs"), "v": event["v"], "sold": sold, "left": left, "s": status}
        )

    def set_coupon(self, cid: str, state: dict[str, Any]) -> bool:
        """Keep the newest state of a coupon (coalesced per tick)."""
        known = self.coupons.get(cid)
        if known is not None and state["v"] <= known["v"]:
            return False
        if known is None and len(self.coupons) >= MAX_COUPON_STATES:
            return False
        self.coupons[cid] = state
        self.state.setdefault("coupons", {})[cid] = state
        return True

    def set_leaderboard(self, rows: list[list[Any]]) -> None:
        if rows != self.leaderboard:
            self.leaderboard = rows
            self.state["leaderboard"] = rows

    def add_events(self, events: list[tuple[int, bytes]]) -> None:
        """Queue in-order events (offset, msgpack payload) for the next batch."""
        for offset, payload in events:
            event = msgpack.unpackb(payload, raw=False)
            self.events.append(wire.encode_event(offset, event))
            if event.get("t") != wire.EventType.COMMENT:
                self.outdate()
            if event.get("t") == wire.EventType.POLL_CLOSED:
                self.tallies.pop(event.get("poll", ""), None)
            elif event.get("t") in _FLASH_EVENTS and isinstance(event.get("v"), int):
                self._flash_event(event)
            elif event.get("t") == wire.EventType.GROUPBUY_CLOSED:
                for key in [k for k in self.groups if k[0] == event.get("gb")]:
                    del self.groups[key]
                    self._group_pushed.pop(key, None)
                    self.dirty_groups.discard(key)

    def outdate(self) -> None:
        """The room changed in a way its shared reading does not follow: the next
        visitor reads the store again."""
        if self.reading is not None:
            self.reading.outdated = True

    def set_likes(self, total: int) -> None:
        if total > self.likes:
            self.likes = total
            self.state["likes"] = total

    def set_viewers(self, total: int) -> None:
        if total != self.viewers:
            self.viewers = total
            self.state["viewers"] = total

    def set_tally(self, poll: str, version: int, counts: list[int]) -> None:
        """Keep the newest tally of a poll (versions only grow)."""
        known = self.tallies.get(poll)
        if known is None or version > known[0]:
            self.tallies[poll] = (version, counts)
            self.state.setdefault("tallies", {})[poll] = {"v": version, "counts": counts}

    def take_batch(self) -> bytes | None:
        """The websocket frame of this tick (None if nothing happened); marks it flushed."""
        if not self.events and not self.state:
            return None
        frame = wire.ws_frame(wire.encode_batch(self.events, self.state))
        if self.events:
            self.flushed = self.events[-1]["o"]
            reading = self.reading
            if reading is not None:
                if reading.ready and not reading.fresh(time.monotonic()):
                    self.reading = None  # past its use: the next visitor reads again
                else:
                    reading.collect(self.events)
        self.events = []
        self.state = {}
        return frame


_FLASH_EVENTS = frozenset(
    {wire.EventType.FLASH_STARTED, wire.EventType.FLASH_SOLD_OUT, wire.EventType.FLASH_ENDED}
)


def _groups_frame(groups: dict[str, Any]) -> bytes:
    """The websocket frame of a batch that carries only group states."""
    return wire.ws_frame(wire.encode_batch([], {"groups": groups}))

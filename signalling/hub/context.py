"""What a handler gets: a typed context, never the hub.

:class:`Services` is what the node's handlers share (the store facade, the
clock, the settings, comment rules and limits, the spec cache); a
:class:`Context` is one connection's view of them, built once when the
connection has joined: its claims, its room's local view, ``ack()``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from livecore import wire
from livecore.clock import Clock
from livecore.comments import CommentRules
from livecore.config import Settings
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import GroupBuySpec
from livecore.keyring import KeyRing
from livecore.lru import LruDict
from livecore.ratelimit import KeyedLimiter
from livecore.store.bus import Emitted
from livecore.store.facade import Stores
from livecore.tokens import Claims, Role
from signalling.hub.room import LocalRoom, Member

#: Group-buy specs a node caches (they never change); past it the least recently used go.
MAX_SPECS = 10_000
#: Rooms with orders a node remembers having registered.
MAX_ORDER_ROOMS = 100_000
#: Likes a person can tap in a second (bursts of a second's worth): taps past it are
#: dropped silently and counted nowhere (not the room's total, not the highlights).
LIKES_PER_SECOND = 20


class Peer(Member, Protocol):
    """What a handler may do with its connection."""

    room_id: str
    room: LocalRoom | None
    #: Communities offered by the last ``locate`` outside every community.
    nearby: list[str]

    claims: Claims | None

    def send(self, payload: bytes) -> bool: ...

    def arm_expiry(self, seconds: float) -> None:
        """Close the connection (4003) in ``seconds``, replacing an earlier timer."""
        ...

    def fail(self, err: LivecoreError, message: wire.Message | None = None) -> None: ...


class OrderRooms:
    """Rooms with orders, registered once per node for the webhook forwarder."""

    def __init__(self, stores: Stores) -> None:
        self._stores = stores
        self._known: LruDict[str, bool] = LruDict(MAX_ORDER_ROOMS)
        self._background: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._known)

    def note(self, room_id: str) -> None:
        if room_id in self._known:
            return
        self._known[room_id] = True  # only a cache (SADD is idempotent): LRU-bounded
        coro = self._stores.groupbuys.note_order_room(room_id)
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class Moments(Protocol):
    """Where the room's engagement goes, for highlight detection: every node counts
    its audience for the node recording the room (:mod:`signalling.services.engagement`);
    ``signal`` never waits."""

    def signal(self, room: str, kind: str, user: str, n: int = 1) -> None:
        """``user`` did ``kind`` (comment, like, vote, join, arrival, signup) now; one
        person counts once per second however many taps ``n``."""
        ...

    async def mark(self, room: str) -> float | None:
        """The host marked this moment: its stream time, or None (not recording)."""
        ...

    async def product_pinned(self, room: str, product: str | None) -> None:
        """A product card was pinned (None: removed): a product-explanation segment."""
        ...

    async def explain(self, room: str, product: str | None) -> float | None:
        """讲解 on ``product`` (None: ends it): its stream time, or None (not recording)."""
        ...


class NoMoments:
    """Moments of a node that records nothing: signals go nowhere, marks are refused."""

    def signal(self, room: str, kind: str, user: str, n: int = 1) -> None:
        return None

    async def mark(self, room: str) -> float | None:
        return None

    async def product_pinned(self, room: str, product: str | None) -> None:
        return None

    async def explain(self, room: str, product: str | None) -> float | None:
        return None


class Batches(Protocol):
    """Traceability batches a host pins in the room (:mod:`signalling.routes.trace.service`)."""

    async def pin(self, batch: str, room: str) -> dict[str, Any]:
        """Remember the pin; the batch's ``trace`` card (refuses ``batch_not_found``)."""
        ...

    async def unpin(self, batch: str, room: str) -> None: ...


class NoBatches:
    """A node without traceability: every batch is unknown."""

    async def pin(self, batch: str, room: str) -> dict[str, Any]:
        raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")

    async def unpin(self, batch: str, room: str) -> None:
        raise LivecoreError(ErrorCode.BATCH_NOT_FOUND, f"no batch {batch!r}")


@dataclass
class Services:
    """What every handler of the node shares; built once by the hub."""

    stores: Stores
    settings: Settings
    clock: Clock
    #: The token keys (a refreshed token is verified by its handler).
    secret: bytes | KeyRing = b""
    rules: CommentRules = field(init=False)
    comment_limits: KeyedLimiter = field(init=False)
    #: Messages per user over all their connections: cheap types, and the rest.
    message_limits: KeyedLimiter = field(init=False)
    costly_limits: KeyedLimiter = field(init=False)
    #: Likes per user in a room (LIKES_PER_SECOND).
    like_limits: KeyedLimiter = field(init=False)
    #: Group-buy specs by (room, group buy): the MAX_SPECS most recently used.
    specs: LruDict[tuple[str, str], GroupBuySpec] = field(
        default_factory=lambda: LruDict(MAX_SPECS)
    )
    #: Reads of specs under way, shared by the joins that miss the cache together
    #: (an entry lives while its read does).
    spec_reads: dict[tuple[str, str], asyncio.Future[dict[str, str] | None]] = field(
        default_factory=dict
    )
    orders: OrderRooms = field(init=False)
    #: Engagement for highlights; the app plugs the recording plane in.
    moments: Moments = field(default_factory=NoMoments)
    #: Traceability batches; the app plugs the trace service in.
    batches: Batches = field(default_factory=NoBatches)

    def __post_init__(self) -> None:
        s = self.settings
        self.rules = CommentRules(s.comment_max_chars, s.blocked_words)
        self.comment_limits = KeyedLimiter(self.clock, rate=s.comment_rate, burst=s.comment_burst)
        rate = s.ws_message_rate
        self.message_limits = KeyedLimiter(self.clock, rate=rate, burst=rate * 2)
        self.costly_limits = KeyedLimiter(self.clock, rate=rate / 2, burst=max(1.0, rate))
        self.like_limits = KeyedLimiter(self.clock, rate=LIKES_PER_SECOND, burst=LIKES_PER_SECOND)
        self.orders = OrderRooms(self.stores)

    def now(self) -> int:
        """Unix seconds from the node's clock."""
        return int(self.clock.time())


class Context:
    """One joined connection as its handlers see it (built once, at join)."""

    __slots__ = ("claims", "commented", "node", "peer", "room_id", "since", "stores", "user")

    def __init__(self, peer: Peer, claims: Claims, node: Services) -> None:
        self.peer = peer
        self.claims = claims
        self.user = claims.user
        self.room_id = peer.room_id
        self.node = node
        self.stores = node.stores
        #: Unix seconds when this connection joined, and whether it has commented
        #: since: the session's facts a coupon's task asks for.
        self.since = node.now()
        self.commented = False

    @property
    def role(self) -> Role:
        return self.claims.role

    @property
    def room(self) -> LocalRoom | None:
        """The room's local view (None once the connection has left)."""
        return self.peer.room

    @property
    def community(self) -> str | None:
        return self.peer.community

    def ack(self, message: wire.Message, emitted: Emitted | None = None, **fields: Any) -> None:
        """Answer ``message`` (if it has a request id): ``o`` is the offset of
        ``emitted``, then ``fields``. The one way a handler acknowledges."""
        if message.request_id is None:
            return
        if emitted is not None:
            self.peer.send(wire.ack(message.request_id, o=emitted.offset, **fields))
        else:
            self.peer.send(wire.ack(message.request_id, **fields))

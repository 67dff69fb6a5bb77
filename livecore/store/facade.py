"""Every store adapter of a node, built once on one Redis client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.commands.core import AsyncScript

from livecore.store.batch import ScriptBatcher
from livecore.store.bus import Bus
from livecore.store.client import StoreClient
from livecore.store.communities import CommunityStore
from livecore.store.counters import Counters
from livecore.store.coupons import CouponStore
from livecore.store.dash_history import DashboardHistory
from livecore.store.flashsale import FlashSaleStore
from livecore.store.groupbuys import GroupBuyStore
from livecore.store.leases import RoomLeases
from livecore.store.luckydraw import DrawStore
from livecore.store.media import MediaStore
from livecore.store.nodes import NodeStore
from livecore.store.officers import ShareOfficerStore
from livecore.store.pickup import PickupStore
from livecore.store.polls import PollStore
from livecore.store.reservations import ReservationStore
from livecore.store.revocations import Revocations
from livecore.store.room_meta import RoomStore
from livecore.store.visitors import VisitorStore


@dataclass
class Stores:
    """The store facade that endpoints and hub handlers use (never the raw client).

    Hot scripts (comments, votes, joins) share one :class:`ScriptBatcher`.
    """

    redis: StoreClient
    batcher: ScriptBatcher = field(init=False)
    bus: Bus = field(init=False)
    rooms: RoomStore = field(init=False)
    polls: PollStore = field(init=False)
    counters: Counters = field(init=False)
    history: DashboardHistory = field(init=False)
    groupbuys: GroupBuyStore = field(init=False)
    flash: FlashSaleStore = field(init=False)
    coupons: CouponStore = field(init=False)
    officers: ShareOfficerStore = field(init=False)
    communities: CommunityStore = field(init=False)
    media: MediaStore = field(init=False)
    nodes: NodeStore = field(init=False)
    leases: RoomLeases = field(init=False)
    revocations: Revocations = field(init=False)
    visitors: VisitorStore = field(init=False)
    draws: DrawStore = field(init=False)
    pickups: PickupStore = field(init=False)
    reservations: ReservationStore = field(init=False)

    def __post_init__(self) -> None:
        redis = self.redis
        self.batcher = ScriptBatcher(redis)
        self.bus = Bus(redis, batcher=self.batcher)
        self.rooms = RoomStore(redis)
        self.polls = PollStore(redis, self.bus, self.batcher)
        self.counters = Counters(redis)
        self.history = DashboardHistory(redis)
        self.groupbuys = GroupBuyStore(redis, self.bus, self.batcher)
        self.flash = FlashSaleStore(redis, self.bus, self.batcher)
        self.coupons = CouponStore(redis, self.bus, self.batcher)
        self.officers = ShareOfficerStore(redis)
        self.communities = CommunityStore(redis)
        self.media = MediaStore(redis)
        self.nodes = NodeStore(redis)
        self.leases = RoomLeases(redis)
        self.revocations = Revocations(redis, self.batcher)
        self.visitors = VisitorStore(redis, self.batcher)
        self.draws = DrawStore(redis, self.bus, self.batcher)
        self.pickups = PickupStore(redis)
        self.reservations = ReservationStore(redis)

    def scripts(self) -> list[AsyncScript]:
        """Every Lua script the stores registered (their attributes, and their parts')."""
        found: dict[str, AsyncScript] = {}

        def walk(obj: Any, depth: int) -> None:
            for value in getattr(obj, "__dict__", {}).values():
                if isinstance(value, AsyncScript):
                    found.setdefault(value.sha, value)
                elif depth and type(value).__module__.startswith("livecore.store."):
                    walk(value, depth - 1)

        for store in vars(self).values():
            if store is not self.redis:
                walk(store, 1)
        return list(found.values())

    async def preload(self) -> None:
        """Load every script on the store before the node serves (see
        :meth:`ScriptBatcher.preload`)."""
        await self.batcher.preload(self.scripts())

"""What every endpoint of a node shares: settings, secret, clock, store, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from livecore.clock import Clock
from livecore.config import Settings
from livecore.ratelimit import KeyedLimiter
from livecore.store.client import StoreClient
from livecore.store.facade import Stores
from livecore.store.room_meta import RoomStore
from signalling.node.metrics import Metrics


@dataclass
class NodeContext:
    """Built once per app in the lifespan; endpoints reach it as ``request.app.state.ctx``."""

    settings: Settings
    secret: bytes
    clock: Clock
    redis: StoreClient
    metrics: Metrics
    started_at: float
    #: Every store adapter (one script batcher, one bus) for endpoints and the hub.
    stores: Stores = field(init=False)
    rooms: RoomStore = field(init=False)
    #: Writes over HTTP (room creation ...) per client address: 5/s, bursts of 20.
    http_writes: KeyedLimiter = field(init=False)
    #: Sensor posts per device: 2/s, bursts of 10.
    device_posts: KeyedLimiter = field(init=False)

    #: WHIP/WHEP POSTs (each a peer connection and a DTLS handshake): per user
    #: 1/s, bursts of 5; per client address 2/s, bursts of 10.
    media_posts_user: KeyedLimiter = field(init=False)
    media_posts_address: KeyedLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.stores = Stores(self.redis)
        self.rooms = self.stores.rooms
        self.http_writes = KeyedLimiter(self.clock, rate=5.0, burst=20.0)
        self.device_posts = KeyedLimiter(self.clock, rate=2.0, burst=10.0)
        self.media_posts_user = KeyedLimiter(self.clock, rate=1.0, burst=5.0)
        self.media_posts_address = KeyedLimiter(self.clock, rate=2.0, burst=10.0)

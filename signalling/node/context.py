"""What every endpoint of a node shares: settings, secret, clock, store, metrics."""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field

from livecore.clock import Clock
from livecore.config import Settings
from livecore.keyring import KeyRing
from livecore.ratelimit import CallerLimiter, KeyedLimiter, Limit
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
    #: Every key tokens are verified with (default: the one legacy ``secret``); the
    #: node mints its own tokens with ``ring.signing``.
    key_ring: InitVar[KeyRing | None] = None
    ring: KeyRing = field(init=False)
    #: Every store adapter (one script batcher, one bus) for endpoints and the hub.
    stores: Stores = field(init=False)
    rooms: RoomStore = field(init=False)
    #: Each limit below is per caller (a verified token's user, a guest's device) and
    #: per client address (``--address-rate``/``--address-burst``, sized for
    #: carrier-grade NAT: only floods reach it). HTTP writes (room creation ...): per
    #: user 5/s, bursts of 20.
    http_writes: CallerLimiter = field(init=False)
    #: Sensor posts per device: 2/s, bursts of 10.
    device_posts: KeyedLimiter = field(init=False)
    #: WHIP/WHEP POSTs (each a peer connection and a DTLS handshake): per user 1/s,
    #: bursts of 5.
    media_posts: CallerLimiter = field(init=False)
    #: Guest tokens: per device (guest id with its key) 1/s, bursts of 10; a new
    #: device has only the address limit.
    guest_mints: CallerLimiter = field(init=False)
    #: New guest ids (a first visit, or a phone that cleared its storage): per client
    #: address 1 per 5 s, bursts of 60 (a compound's phones behind one carrier
    #: address on the first evening); so one phone cannot mint itself votes and
    #: group members faster than that.
    guest_new: KeyedLimiter = field(init=False)

    def __post_init__(self, key_ring: KeyRing | None) -> None:
        self.ring = key_ring if key_ring is not None else KeyRing.single(self.secret)
        self.stores = Stores(self.redis)
        self.rooms = self.stores.rooms
        address = Limit(self.settings.address_rate, self.settings.address_burst)
        self.http_writes = CallerLimiter(self.clock, caller=Limit(5.0, 20.0), address=address)
        self.device_posts = KeyedLimiter(self.clock, rate=2.0, burst=10.0)
        self.media_posts = CallerLimiter(self.clock, caller=Limit(1.0, 5.0), address=address)
        self.guest_mints = CallerLimiter(self.clock, caller=Limit(1.0, 10.0), address=address)
        self.guest_new = KeyedLimiter(self.clock, rate=0.2, burst=60.0)

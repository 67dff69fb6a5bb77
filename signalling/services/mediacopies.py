"""Local copies of publishers other nodes hold (cascade pulls, :mod:`media.cascade`).

One copy per (room, publisher) per node, pulled with a server-to-server token
(role ``node``, that room only, a minute long) over WHEP from the publisher's
origin; of a simulcast publisher every layer comes (an origin of an older
version, which takes one video section only, gives the first). A copy closes
when its origin goes away or moves, or ``--pull-idle`` seconds after its last
local viewer left, unless a recording here draws it in (``keep``: a KOC's stream on
another node, until their origin goes).
"""

from __future__ import annotations

import httpx

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.keyring import KeyRing
from livecore.killswitch import Kill
from livecore.store.media import Origin
from media.cascade import pull
from media.peers import NegotiationError, PeerConfig
from media.sessions import PublisherSession
from media.udpports import PortsExhausted
from signalling.node.context import NodeContext
from signalling.node.keyedlocks import KeyedLocks

#: Lifetime of a node-to-node pull credential (used once, right away).
PULL_TOKEN_TTL_S = 60

Key = tuple[str, str]
"""(room, publisher)"""


class _OfferRefused(NegotiationError):
    """The origin refused a pull's offer as SDP (a node from before a pull took every
    simulcast layer, one video section each, refuses more than one)."""


def pull_token(secret: bytes | KeyRing, node_id: str, room: str, *, now: float) -> str:
    """The credential a node pulls ``room``'s stream with: role ``node``, that room
    only, a minute long. It opens a WHEP session there and can do nothing else."""
    user = "node-" + "".join(c if tokens.valid_id(c) else "-" for c in node_id)
    return tokens.mint(
        secret, role=tokens.Role.NODE, room=room, user=user[:64], ttl_s=PULL_TOKEN_TTL_S, now=now
    )


def ports_full() -> LivecoreError:
    return LivecoreError(ErrorCode.NODE_FULL, "this node has no free media UDP port")


class Copies:
    """This node's copies of other nodes' publishers (see the module doc)."""

    def __init__(self, ctx: NodeContext, config: PeerConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.store = ctx.stores.media
        self.pulled: dict[Key, PublisherSession] = {}
        self._from: dict[Key, Origin] = {}
        #: When a copy last had a local viewer (monotonic).
        self._used: dict[Key, float] = {}
        #: Copies a recording here draws in (kept until their origin goes).
        self._kept: set[Key] = set()
        #: One pull per (room, publisher) at a time; an entry only while one runs.
        self._pulling = KeyedLocks()

    def sizes(self) -> dict[str, int]:
        return {"media_pulled": len(self.pulled), "media_pulling": len(self._pulling),
                "media_pull_used": len(self._used)}  # fmt: skip

    def stale(self, origin: Origin) -> bool:
        return origin.is_stale(int(self.ctx.clock.time()))

    def keep(self, room: str, publisher: str) -> None:
        """A recording here draws this copy in: kept while its origin lives."""
        self._kept.add((room, publisher))

    async def get(self, room: str, publisher: str) -> PublisherSession:
        """The local copy of ``publisher``, pulled now if there is none (one per node)."""
        key = (room, publisher)
        async with self._pulling.hold(key):
            existing = self.pulled.get(key)
            if existing is not None and not existing.closed:
                return existing
            origin = await self.store.origin(room, publisher)
            if origin is None or self.stale(origin) or origin.node == self.ctx.settings.node_id:
                raise LivecoreError(ErrorCode.STREAM_NOT_FOUND, f"{publisher!r} is not live here")
            session = await self._pull(room, publisher, origin)
            self.pulled[key] = session
            self._from[key] = origin
            self._used[key] = self.ctx.clock.monotonic()
            return session

    async def _pull(self, room: str, publisher: str, origin: Origin) -> PublisherSession:
        token = pull_token(self.ctx.ring, self.ctx.settings.node_id, room,
                           now=self.ctx.clock.time())  # fmt: skip
        url = f"{origin.url}/whep/{room}?publisher={publisher}"

        async def exchange(offer: str) -> str:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    url, content=offer, headers={
                        "Content-Type": "application/sdp", "Authorization": f"Bearer {token}",
                    },
                )  # fmt: skip
            if answer.status_code == 400 and '"bad_sdp"' in answer.text:
                raise _OfferRefused(answer.text)
            if answer.status_code != 201:
                raise NegotiationError(f"origin answered {answer.status_code}")
            return answer.text

        name = f"pull-{publisher}"
        try:
            try:
                return await pull(exchange, config=self.config, clock=self.ctx.clock, name=name)
            except _OfferRefused:  # an origin of an older version: one layer only
                return await pull(exchange, config=self.config, clock=self.ctx.clock,
                                  name=name, videos=1)  # fmt: skip
        except PortsExhausted:
            raise ports_full() from None
        except (NegotiationError, httpx.HTTPError) as exc:
            raise LivecoreError(
                ErrorCode.STREAM_NOT_FOUND, f"cannot reach the origin: {exc}"
            ) from None

    async def check(self, room: str, user: str, session: PublisherSession, watched: bool) -> None:
        """Close a copy whose origin went away (or moved to another node), or that had no
        local viewer (``watched``) for ``--pull-idle`` seconds."""
        key = (room, user)
        mine = self._from.get(key)
        current = await self.store.origin(room, user)
        alive = current is not None and mine is not None and current.node == mine.node
        now = self.ctx.clock.monotonic()
        if key in self._kept or watched:
            self._used[key] = now  # a viewer here, or the recording draws it in
        idle = now - self._used.get(key, now) >= self.ctx.settings.pull_idle_s
        if session.closed or current is None or not alive or self.stale(current) or idle:
            self._forget(key)
            await session.close()

    def drop(self, kill: Kill) -> list[PublisherSession]:
        """Forget the copies a room's end or a revoked user hits; returns them to close."""
        doomed = []
        for (room, user), copy in list(self.pulled.items()):
            if (kill.ended and kill.room == room) or kill.user == user:
                self._forget((room, user))
                doomed.append(copy)
        return doomed

    def _forget(self, key: Key) -> None:
        self.pulled.pop(key, None)
        self._from.pop(key, None)
        self._used.pop(key, None)
        self._kept.discard(key)

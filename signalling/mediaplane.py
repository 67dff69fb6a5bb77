"""The node's media plane: WHIP publishers, WHEP viewers, cascade pulls, origins.

- A WHIP session makes this node the *origin* of that publisher (``room``,
  ``user``): it is registered in Valkey and refreshed every ``BEAT_S``; the
  room is told (``stream_started`` / ``stream_ended``) so pages open or
  close their WHEP sessions.
- A WHEP viewer is attached to the local publisher, or — when the origin is
  another node — to a local copy pulled from it once (:mod:`media.cascade`)
  with a server-to-server token.
- An origin that stops refreshing is gone: the node that notices first
  removes it (atomically, once) and announces ``stream_ended`` with reason
  ``origin_lost``; local copies of it close, and so do their viewers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import msgpack
from redis.exceptions import RedisError

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.rooms import RoomStatus
from livecore.store.media import ORIGIN_TTL_S, MediaStore, Origin
from media.cascade import pull
from media.peers import NegotiationError, PeerConfig
from media.sessions import PublisherSession, ViewerSession, accept_publisher, accept_viewer
from media.udpports import PortsExhausted

if TYPE_CHECKING:
    from signalling.context import NodeContext
    from signalling.hub.hub import Hub

log = logging.getLogger("livecore.media")
BEAT_S = 2.0
PULL_TOKEN_TTL_S = 300


def _ports_full() -> LivecoreError:
    return LivecoreError(ErrorCode.NODE_FULL, "this node has no free media UDP port")


@dataclass
class Entry:
    """A session this node holds, by id (the WHIP/WHEP resource)."""

    room: str
    kind: str  # "whip" or "whep"
    user: str
    session: PublisherSession | ViewerSession


class MediaPlane:
    def __init__(self, ctx: NodeContext, hub: Hub, config: PeerConfig) -> None:
        self.ctx = ctx
        self.hub = hub
        self.config = config
        self.store = MediaStore(ctx.redis)
        self.entries: dict[str, Entry] = {}
        self.publishers: dict[tuple[str, str], PublisherSession] = {}
        self.pulled: dict[tuple[str, str], PublisherSession] = {}
        self._pulled_from: dict[tuple[str, str], Origin] = {}
        self._pulling: dict[tuple[str, str], asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="media-beat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        sessions = [e.session for e in self.entries.values()] + list(self.pulled.values())
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)

    @property
    def load(self) -> int:
        return len(self.entries) + len(self.pulled)

    def _check_capacity(self) -> None:
        if self.load >= self.ctx.settings.media_max_sessions:
            raise LivecoreError(ErrorCode.NODE_FULL, "this node is at its media capacity")

    # -- WHIP ---------------------------------------------------------------------------

    async def publish(self, room: str, claims: tokens.Claims, offer: str) -> tuple[str, str]:
        """Answer a publisher's offer; returns (answer SDP, session id)."""
        if claims.role is tokens.Role.KOC and not await self.store.may_publish(room, claims.user):
            raise LivecoreError(
                ErrorCode.NOT_ACCEPTED, "the host has not accepted a co-stream from you"
            )
        self._check_capacity()
        previous = self.publishers.pop((room, claims.user), None)
        if previous is not None:
            await previous.close()  # a new WHIP session replaces the old one
        try:
            answer, session = await accept_publisher(
                offer, config=self.config, clock=self.ctx.clock, on_close=self._publisher_closed
            )
        except NegotiationError as exc:
            raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
        except PortsExhausted:
            raise _ports_full() from None
        self.entries[session.id] = Entry(room, "whip", claims.user, session)
        self.publishers[(room, claims.user)] = session
        await self._announce(room, claims.user)
        if claims.role is tokens.Role.HOST:
            await self.ctx.rooms.set_status(room, RoomStatus.LIVE.value)
        await self._event(room, {"t": "stream_started", "user": claims.user,
                                 "role": claims.role.value})  # fmt: skip
        return answer, session.id

    def _publisher_closed(self, session: PublisherSession) -> None:
        entry = self.entries.pop(session.id, None)
        if entry is None:
            return
        if self.publishers.get((entry.room, entry.user)) is session:
            del self.publishers[(entry.room, entry.user)]
            asyncio.get_running_loop().create_task(self._withdraw(entry.room, entry.user))

    async def _withdraw(self, room: str, user: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            origin = await self.store.origin(room, user)
            if origin is not None and origin.node == self.ctx.settings.node_id:
                if await self.store.withdraw(room, user, origin):
                    await self._event(room, {"t": "stream_ended", "user": user, "reason": "ended"})
            if await self.store.end(room, user):
                await self._event(room, {"t": "costream_ended", "user": user})

    async def _announce(self, room: str, user: str) -> None:
        await self.store.announce(
            room, user, self.ctx.settings.node_id, self.ctx.settings.base_url,
            int(self.ctx.clock.time()),
        )  # fmt: skip

    async def _event(self, room: str, event: dict[str, Any]) -> None:
        await self.hub.bus.emit(room, msgpack.packb(event))

    # -- WHEP ---------------------------------------------------------------------------

    async def play(
        self, room: str, claims: tokens.Claims, offer: str, publisher: str
    ) -> tuple[str, str]:
        """Answer a viewer's offer with ``publisher``'s stream; returns (answer, session id)."""
        self._check_capacity()
        source = self.publishers.get((room, publisher)) or self.pulled.get((room, publisher))
        if source is None or source.closed:
            source = await self._pull(room, publisher)
        try:
            answer, session = await accept_viewer(
                source, offer, config=self.config, on_close=self._viewer_closed,
                forwarder=self.ctx.settings.forwarder,
            )  # fmt: skip
        except NegotiationError as exc:
            raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
        except PortsExhausted:
            raise _ports_full() from None
        self.entries[session.id] = Entry(room, "whep", claims.user, session)
        return answer, session.id

    def _viewer_closed(self, session: ViewerSession) -> None:
        self.entries.pop(session.id, None)

    async def _pull(self, room: str, publisher: str) -> PublisherSession:
        """A local copy of a publisher held by another node (one per node)."""
        key = (room, publisher)
        async with self._pulling.setdefault(key, asyncio.Lock()):
            existing = self.pulled.get(key)
            if existing is not None and not existing.closed:
                return existing
            origin = await self.store.origin(room, publisher)
            if origin is None or self._stale(origin) or origin.node == self.ctx.settings.node_id:
                raise LivecoreError(ErrorCode.STREAM_NOT_FOUND, f"{publisher!r} is not live here")
            token = tokens.mint(
                self.ctx.secret, role=tokens.Role.ADMIN, room=tokens.ANY_ROOM,
                user=f"node-{self.ctx.settings.node_id}"[:64].replace(" ", "-"),
                ttl_s=PULL_TOKEN_TTL_S,
            )  # fmt: skip
            url = f"{origin.url}/whep/{room}?publisher={publisher}"

            async def exchange(offer: str) -> str:
                async with httpx.AsyncClient(timeout=10) as client:
                    answer = await client.post(
                        url, content=offer, headers={
                            "Content-Type": "application/sdp", "Authorization": f"Bearer {token}",
                        },
                    )  # fmt: skip
                if answer.status_code != 201:
                    raise NegotiationError(f"origin answered {answer.status_code}")
                return answer.text

            try:
                session = await pull(exchange, config=self.config, clock=self.ctx.clock,
                                     name=f"pull-{publisher}")  # fmt: skip
            except PortsExhausted:
                raise _ports_full() from None
            except (NegotiationError, httpx.HTTPError) as exc:
                raise LivecoreError(
                    ErrorCode.STREAM_NOT_FOUND, f"cannot reach the origin: {exc}"
                ) from None
            self.pulled[key] = session
            self._pulled_from[key] = origin
            return session

    def _stale(self, origin: Origin) -> bool:
        return origin.at + ORIGIN_TTL_S < int(self.ctx.clock.time())

    async def end(self, session_id: str, kind: str, claims: tokens.Claims, room: str) -> None:
        """DELETE of a WHIP/WHEP resource: its owner (or the room's host) ends it."""
        entry = self.entries.get(session_id)
        if entry is None or entry.kind != kind or entry.room != room:
            raise LivecoreError(ErrorCode.SESSION_NOT_FOUND, "no such session")
        if claims.user != entry.user and claims.role is not tokens.Role.HOST:
            raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "only its owner or the host ends it")
        await entry.session.close()

    async def end_user(self, room: str, user: str) -> None:
        """Close ``user``'s publisher session on this node (the host ended a co-stream)."""
        session = self.publishers.get((room, user))
        if session is not None:
            await session.close()

    # -- heartbeat ------------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_S)
            try:
                for room, user in list(self.publishers):
                    await self._announce(room, user)
                for (room, user), session in list(self.pulled.items()):
                    await self._check_origin(room, user, session)
                for room in list(self.hub.rooms):
                    await self._sweep_origins(room)
            except (RedisError, OSError) as exc:
                log.warning("media heartbeat failed: %s", exc)

    async def _check_origin(self, room: str, user: str, session: PublisherSession) -> None:
        """Close a local copy whose origin went away (or moved to another node)."""
        mine = self._pulled_from.get((room, user))
        current = await self.store.origin(room, user)
        alive = current is not None and mine is not None and current.node == mine.node
        if session.closed or not alive or self._stale(current):  # type: ignore[arg-type]
            self.pulled.pop((room, user), None)
            self._pulled_from.pop((room, user), None)
            await session.close()

    async def _sweep_origins(self, room: str) -> None:
        """An origin that stopped refreshing died with its node: tell the room, once."""
        for user, origin in (await self.store.origins(room)).items():
            if self._stale(origin) and await self.store.withdraw(room, user, origin):
                await self._event(room, {"t": "stream_ended", "user": user,
                                         "reason": "origin_lost"})  # fmt: skip
                if await self.store.end(room, user):
                    await self._event(room, {"t": "costream_ended", "user": user})

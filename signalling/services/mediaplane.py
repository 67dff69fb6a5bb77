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
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack
from redis.exceptions import RedisError

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from livecore.killswitch import Kill
from livecore.rooms import RoomStatus
from media.icerestart import IceRestartRefused, restart_ice
from media.peers import NegotiationError, PeerConfig, PublisherGone
from media.sdpfrag import FragmentError, SdpFrag
from media.sessions import PublisherSession, ViewerSession, accept_publisher, accept_viewer
from media.udpports import PortsExhausted
from signalling.node.background import BackgroundTasks
from signalling.node.context import NodeContext
from signalling.services.mediacopies import Copies, ports_full
from signalling.services.offergate import OfferGate

if TYPE_CHECKING:
    from media.relay import Relay
    from signalling.services.engagement import Engagement
    from signalling.services.lifecycle import RoomLifecycle
    from signalling.services.recording import RecordingPlane

log = logging.getLogger("livecore.media")
BEAT_S = 2.0
#: How often a session waiting for its connection is looked at (its deadline is
#: ``--media-connect-timeout``, 10 s by default).
CONNECT_POLL_S = 0.05


@dataclass
class Entry:
    """A session this node holds, by id (the WHIP/WHEP resource)."""

    room: str
    kind: str  # "whip" or "whep"
    user: str
    session: PublisherSession | ViewerSession
    #: The token the session was opened with (a revocation that hits it closes it).
    claims: tokens.Claims
    #: A viewer's source: the local publisher or a local copy pulled from its origin.
    source: PublisherSession | None = None


class MediaPlane:
    def __init__(self, ctx: NodeContext, rooms: Collection[str], config: PeerConfig) -> None:
        """``rooms``: the ids of the rooms the hub listens to (read on every beat)."""
        self.ctx = ctx
        self.rooms = rooms
        self.config = config
        self.bus = ctx.stores.bus
        self.store = ctx.stores.media
        self.entries: dict[str, Entry] = {}
        self.publishers: dict[tuple[str, str], PublisherSession] = {}
        #: Local copies of other nodes' publishers (cascade pulls).
        self.copies = Copies(ctx, config)
        self._task: asyncio.Task[None] | None = None
        #: Heartbeats done (readiness: a stuck beat stops counting).
        self.beats = 0
        self.last_beat = time.monotonic()
        #: Places taken by requests still negotiating (see :meth:`_reserve`).
        self._reserved = 0
        #: Viewers' offers are answered a few at a time (the app feeds it the tick).
        self.offers = OfferGate()
        #: Publisher sessions whose connection came up (announced to the room).
        self._live: set[str] = set()
        #: Sessions (publishers and viewers) waiting for their connection, by id.
        self._connecting: dict[str, asyncio.Task[None]] = {}
        self._tasks = BackgroundTasks(log)
        #: Records hosts' streams (HLS, replay, clips); set by the app.
        self.recording: RecordingPlane | None = None
        #: Told when the host's stream starts and ends (the room ends after a grace).
        self.lifecycle: RoomLifecycle | None = None
        self.engagement: Engagement | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat(), name="media-beat")

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        sessions = [e.session for e in self.entries.values()] + list(self.copies.pulled.values())
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.ctx.stores.nodes.unregister(self.ctx.settings.node_id)

    def sizes(self) -> dict[str, int]:
        """Entries of the plane's structures (for /metrics and tests)."""
        return {"media_entries": len(self.entries), "media_publishers": len(self.publishers),
                **self.copies.sizes(),
                "media_live": len(self._live), "media_connecting": len(self._connecting),
                "media_tasks": len(self._tasks),
                "media_offers_waiting": self.offers.waiting}  # fmt: skip

    @property
    def load(self) -> int:
        """Sessions held, and places reserved by requests still negotiating."""
        return len(self.entries) + len(self.copies.pulled) + self._reserved

    @contextlib.contextmanager
    def _reserve(self) -> Iterator[None]:
        """Take one place of ``--media-max-sessions`` before the first await (or
        refuse ``node_full``), so concurrent POSTs cannot exceed it; the place is
        given back when the request ends, by then counted as a session or not."""
        if self.load >= self.ctx.settings.media_max_sessions:
            self.ctx.metrics.refusals.labels("media_capacity").inc()
            raise LivecoreError(ErrorCode.NODE_FULL, "this node is at its media capacity")
        self._reserved += 1
        try:
            yield
        finally:
            self._reserved -= 1

    # -- WHIP ---------------------------------------------------------------------------

    async def publish(self, room: str, claims: tokens.Claims, offer: str) -> tuple[str, str]:
        """Answer a publisher's offer; returns (answer SDP, session id)."""
        if claims.role is tokens.Role.KOC and not await self.store.may_publish(room, claims.user):
            raise LivecoreError(
                ErrorCode.NOT_ACCEPTED, "the host has not accepted a co-stream from you"
            )
        with self._reserve():
            try:
                answer, session = await accept_publisher(
                    offer, config=self.config, clock=self.ctx.clock,
                    on_close=self._publisher_closed,
                )  # fmt: skip
            except NegotiationError as exc:
                # A refused offer changes nothing: a live session of this user stays live.
                raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
            except PortsExhausted:
                raise ports_full() from None
            key = (room, claims.user)
            previous = self.publishers.get(key)
            self.entries[session.id] = Entry(room, "whip", claims.user, session, claims)
            self.publishers[key] = session
        if previous is not None:
            was_live = previous.id in self._live
            await previous.close()  # the new WHIP session replaces the old one
            if was_live:
                # Its viewers were closed with it: pages drop their players now and
                # open new ones on the new session's stream_started (a client without
                # ICE restart that re-posts after a network change).
                await self._event(room, {"t": "stream_ended", "user": claims.user,
                                         "reason": "replaced"})  # fmt: skip
        self._connecting[session.id] = self._tasks.spawn(
            self._go_live(room, claims.role, claims.user, session), name=f"whip-{session.id[:8]}"
        )
        return answer, session.id

    async def _connected(self, session: PublisherSession | ViewerSession) -> bool:
        """Wait until ``session``'s connection is up (True), or roll it back (close it,
        False) if it closed or ICE and DTLS did not complete within
        ``--media-connect-timeout`` (the node's clock)."""
        deadline = self.ctx.clock.monotonic() + self.ctx.settings.media_connect_timeout_s
        while session.connection_state != "connected":
            if session.closed or self.ctx.clock.monotonic() > deadline:
                await session.close()
                return False
            await asyncio.sleep(CONNECT_POLL_S)
        return True

    async def _watch_connect(self, session: ViewerSession) -> None:
        """A WHEP session that never connects is rolled back like a WHIP one."""
        try:
            await self._connected(session)
        finally:
            self._connecting.pop(session.id, None)

    async def _go_live(
        self, room: str, role: tokens.Role, user: str, session: PublisherSession
    ) -> None:
        """Announce the stream once its connection is up; roll it back if ICE never
        completes in time (:meth:`_connected`; nothing was said to the room)."""
        try:
            if not await self._connected(session):
                return
            if self.publishers.get((room, user)) is not session:
                return
            meta = await self.ctx.rooms.get(room)
            if meta is None or meta.status == RoomStatus.ENDED.value:
                await session.close()  # the room ended while this session negotiated
                return
            self._live.add(session.id)
            await self._announce(room, user)
            if role is tokens.Role.HOST:
                await self.ctx.rooms.set_status(room, RoomStatus.LIVE.value)
                if self.lifecycle is not None:
                    await self.lifecycle.hold(room)
                if self.recording is not None:
                    cursors = await self.recording.hls.cursors(room)
                    self.recording.stream_started(room, session, cursors)
            elif role is tokens.Role.KOC:
                await self._costream_recorded(room, user, session)
            await self._event(room, {"t": "stream_started", "user": user, "role": role.value})
        finally:
            self._connecting.pop(session.id, None)

    async def _costream_recorded(self, room: str, user: str, session: PublisherSession) -> None:
        """A KOC on air: drawn into the room's recording here, or, when another node
        records the room, that node is told (the control stream) and pulls it."""
        video = session.relays.get("video")
        if self.recording is not None and self.recording.records(room):
            self.recording.costream(room, video)
        elif self.engagement is not None and video is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.engagement.costream(room, user)

    async def costream_video(self, room: str, user: str) -> Relay | None:
        """A KOC's video relay on this node for the recording: theirs when they publish
        here, else a copy pulled from their node, kept while they are on air."""
        local = self.publishers.get((room, user))
        if local is not None:
            return local.relays.get("video")
        session = await self.copies.get(room, user)
        self.copies.keep(room, user)
        return session.relays.get("video")

    def _publisher_closed(self, session: PublisherSession) -> None:
        entry = self.entries.pop(session.id, None)
        was_live = session.id in self._live
        self._live.discard(session.id)
        if entry is None:
            return
        if self.publishers.get((entry.room, entry.user)) is session:
            del self.publishers[(entry.room, entry.user)]
            if was_live:
                # A vanished publisher (consent expired) is "lost", not "ended": pages
                # wait for it (a phone that reconnects within the grace keeps the room).
                reason = "lost" if session.lost else "ended"
                self._tasks.spawn(
                    self._withdraw(entry.room, entry.user, reason), name="whip-withdraw"
                )

    async def _withdraw(self, room: str, user: str, reason: str = "ended") -> None:
        with contextlib.suppress(RedisError, OSError):
            origin = await self.store.origin(room, user)
            if origin is not None and origin.node == self.ctx.settings.node_id:
                if await self.store.withdraw(room, user, origin):
                    await self._event(room, {"t": "stream_ended", "user": user, "reason": reason})
                    meta = await self.ctx.rooms.get(room)
                    if self.lifecycle is not None and meta is not None and meta.host == user:
                        await self.lifecycle.host_gone(room)
            # A KOC whose phone lost its network keeps the host's grant: its page
            # publishes anew (the host can still end the co-stream meanwhile).
            if reason != "lost" and await self.store.end(room, user):
                await self._event(room, {"t": "costream_ended", "user": user})

    async def _announce(self, room: str, user: str) -> None:
        await self.store.announce(
            room, user, self.ctx.settings.node_id, self.ctx.settings.peer_url,
            int(self.ctx.clock.time()),
        )  # fmt: skip

    async def _event(self, room: str, event: dict[str, Any]) -> None:
        await self.bus.emit(room, msgpack.packb(event))

    # -- WHEP ---------------------------------------------------------------------------

    async def play(
        self, room: str, claims: tokens.Claims, offer: str, publisher: str
    ) -> tuple[str, str]:
        """Answer a viewer's offer with ``publisher``'s stream; returns (answer, session id)."""
        with self._reserve():
            source = self.publishers.get((room, publisher)) or self.copies.pulled.get(
                (room, publisher)
            )
            if source is None or source.closed:
                source = await self.copies.get(room, publisher)
            try:
                async with self.offers.turn():
                    answer, session = await accept_viewer(
                        source, offer, config=self.config, on_close=self._viewer_closed,
                        forwarder=self.ctx.settings.forwarder,
                        pull=claims.role is tokens.Role.NODE,  # a pull: every layer, pinned
                    )  # fmt: skip
            except PublisherGone:
                # The offer was fine: the stream ended while it waited or was answered.
                raise LivecoreError(
                    ErrorCode.STREAM_NOT_FOUND, f"{publisher!r} stopped publishing"
                ) from None
            except NegotiationError as exc:
                raise LivecoreError(ErrorCode.BAD_SDP, str(exc)) from None
            except PortsExhausted:
                raise ports_full() from None
            self.entries[session.id] = Entry(room, "whep", claims.user, session, claims, source)
        self._connecting[session.id] = self._tasks.spawn(
            self._watch_connect(session), name=f"whep-{session.id[:8]}"
        )
        return answer, session.id

    def _viewer_closed(self, session: ViewerSession) -> None:
        self.entries.pop(session.id, None)

    async def end(self, session_id: str, kind: str, claims: tokens.Claims, room: str) -> None:
        """DELETE of a WHIP/WHEP resource: its owner (or the room's host) ends it."""
        entry = self.entries.get(session_id)
        if entry is None or entry.kind != kind or entry.room != room:
            raise LivecoreError(ErrorCode.SESSION_NOT_FOUND, "no such session")
        if claims.user != entry.user and claims.role is not tokens.Role.HOST:
            raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "only its owner or the host ends it")
        await entry.session.close()

    def tag(self, session_id: str) -> str:
        """The ``ETag`` of a session's ICE session (RFC 9725 §4.3.1), quoted."""
        return f'"{self.entries[session_id].session.ice_tag}"'

    async def patch(
        self, session_id: str, kind: str, claims: tokens.Claims, room: str,
        frag: SdpFrag, if_match: str | None,
    ) -> str | None:  # fmt: skip
        """PATCH of a WHIP/WHEP resource (RFC 9725 §4.3), by the session's owner, with
        ``If-Match`` naming its entity-tag (or ``*``): trickle ``frag``'s candidates into
        its ICE agent (None), or, if ``frag`` has new ICE credentials, restart ICE
        (:mod:`media.icerestart`; the answer fragment). Raises before changing anything."""
        entry = self.entries.get(session_id)
        if entry is None or entry.kind != kind or entry.room != room:
            raise LivecoreError(ErrorCode.SESSION_NOT_FOUND, "no such session")
        if claims.user != entry.user:
            raise LivecoreError(ErrorCode.TOKEN_WRONG_ROLE, "only its owner patches a session")
        session = entry.session
        if if_match is None:
            raise LivecoreError(
                ErrorCode.PRECONDITION_REQUIRED,
                "PATCH needs If-Match with the session's ETag (RFC 9725 §4.3.1)",
            )
        tags = [t.strip() for t in if_match.split(",")]
        if "*" not in tags and f'"{session.ice_tag}"' not in tags:
            raise LivecoreError(
                ErrorCode.PRECONDITION_FAILED,
                "If-Match does not name this session's current ICE session (its ETag)",
            )
        try:
            if frag.restarts(*session.remote_ice):
                return await restart_ice(session, frag)
            await session.trickle(frag)
        except FragmentError as exc:
            raise LivecoreError(ErrorCode.BAD_SDPFRAG, str(exc)) from None
        except IceRestartRefused as exc:
            raise LivecoreError(ErrorCode.ICE_RESTART_REFUSED, str(exc)) from None
        return None

    async def end_user(self, room: str, user: str) -> None:
        """Close ``user``'s publisher session on this node (the host ended a co-stream)."""
        session = self.publishers.get((room, user))
        if session is not None:
            await session.close()

    def kill(self, kill: Kill) -> None:
        """Close the sessions a revocation or a room's end hits (the nodes' control
        channel): WHIP/WHEP sessions opened with a hit token, and for a room's end
        every session and local copy of the room. A closed host session ends its
        recording; the replay is built from what was recorded."""
        doomed: list[PublisherSession | ViewerSession] = [
            e.session for e in self.entries.values() if kill.hits_media(e.room, e.claims)
        ]
        doomed += self.copies.drop(kill)
        for session in doomed:
            self._tasks.spawn(session.close(), name=f"kill-{session.id[:8]}")

    # -- heartbeat ------------------------------------------------------------------------

    async def _register(self) -> None:
        """This node's node-to-node URL, in the registry for ``NODE_TTL_S``."""
        settings = self.ctx.settings
        await self.ctx.stores.nodes.register(settings.node_id, settings.peer_url)

    async def _beat(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._register()
        while True:
            await asyncio.sleep(BEAT_S)
            try:
                await self._register()
                for (room, user), session in list(self.publishers.items()):
                    if session.id in self._live:  # not before its ICE completed
                        await self._announce(room, user)
                        entry = self.entries.get(session.id)
                        host = entry is not None and entry.claims.role is tokens.Role.HOST
                        if host and self.lifecycle is not None:
                            await self.lifecycle.hold(room)
                for (room, user), session in list(self.copies.pulled.items()):
                    watched = any(e.kind == "whep" and e.source is session
                                  for e in self.entries.values())  # fmt: skip
                    await self.copies.check(room, user, session, watched)
                for room in list(self.rooms):
                    await self._sweep_origins(room)
            except (RedisError, OSError) as exc:
                log.warning("media heartbeat failed: %s", exc)
            ctx = self.ctx  # keyed HTTP limits: refilled buckets leave with their key
            for limiter in (
                ctx.http_writes,
                ctx.device_posts,
                ctx.media_posts,
                ctx.guest_mints,
                ctx.guest_new,
            ):
                limiter.prune()
            self.beats += 1
            self.last_beat = time.monotonic()

    async def _sweep_origins(self, room: str) -> None:
        """An origin that stopped refreshing died with its node: tell the room, once."""
        for user, origin in (await self.store.origins(room)).items():
            if self.copies.stale(origin) and await self.store.withdraw(room, user, origin):
                await self._event(room, {"t": "stream_ended", "user": user,
                                         "reason": "origin_lost"})  # fmt: skip
                if await self.store.end(room, user):
                    await self._event(room, {"t": "costream_ended", "user": user})
                # The room's lease, which that node no longer renews, ends the room
                # after the grace (signalling/services/lifecycle.py).

"""Where the nodes are, and which node holds which recorded file (Valkey).

- ``lc:node:<node id>`` → the node's node-to-node base URL (``--node-url``),
  with a TTL of ``NODE_TTL_S``, renewed on every media beat: a node that
  died drops out of the registry by itself (and its files with it).
- ``lc:{room}:media`` (a hash with the room's tag, removed with the room's
  keys) says which node wrote what:

  - ``stream:<stream>`` → the node that recorded that stream (its HLS
    segments, and its clips: a clip record names its stream);
  - ``latest`` → ``<stream>|<node>``, the room's newest recording (its playlist);
  - ``replay`` → ``<node>|<version>``, the node that holds the room's replay and
    the version its URL carries (``/replay/<room>.mp4?v=<version>``).

  One field per stream a room's host published (a live has a handful), plus two.
- Which node holds a WHIP/WHEP session is not stored: the session's resource
  names it (:mod:`signalling.services.peerhop`).
"""

from __future__ import annotations

from dataclasses import dataclass

from livecore.store import keys
from livecore.store.client import StoreClient
from livecore.store.replies import as_str

NODE_TTL_S = 10


def _node_key(node: str) -> str:
    return f"{keys.PREFIX}:node:{node}"


@dataclass(frozen=True, slots=True)
class Held:
    """A file's holder: its node id and, for the latest recording and the replay,
    the stream or version named with it."""

    node: str
    tag: str = ""


class NodeStore:
    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis

    # -- the registry ----------------------------------------------------------------

    async def register(self, node: str, url: str) -> None:
        await self.redis.set(_node_key(node), url, ex=NODE_TTL_S)

    async def unregister(self, node: str) -> None:
        await self.redis.delete(_node_key(node))

    async def url(self, node: str) -> str | None:
        """The node-to-node URL of a live node; None once it stopped renewing it."""
        raw = await self.redis.get(_node_key(node))
        return as_str(raw) if raw else None

    # -- who holds which file ------------------------------------------------------------

    async def recording(self, room: str, stream: str, node: str) -> None:
        """``node`` records ``stream``, the room's newest recording."""
        fields = {f"stream:{stream}": node, "latest": f"{stream}|{node}"}
        await self.redis.hset(keys.room(room, "media"), mapping=fields)  # type: ignore[arg-type]

    async def replay(self, room: str, node: str, version: str) -> None:
        await self.redis.hset(keys.room(room, "media"), "replay", f"{node}|{version}")

    async def stream_holder(self, room: str, stream: str) -> Held | None:
        raw = await self.redis.hget(keys.room(room, "media"), f"stream:{stream}")
        return Held(as_str(raw)) if raw else None

    async def latest(self, room: str) -> Held | None:
        """The node of the room's newest recording, tagged with its stream."""
        return await self._tagged(room, "latest", node_first=False)

    async def replay_holder(self, room: str) -> Held | None:
        """The node holding the room's replay, tagged with its version."""
        return await self._tagged(room, "replay", node_first=True)

    async def _tagged(self, room: str, field: str, *, node_first: bool) -> Held | None:
        raw = await self.redis.hget(keys.room(room, "media"), field)
        if not raw:
            return None
        first, _, second = as_str(raw).partition("|")
        return Held(first, second) if node_first else Held(second, first)

"""The nodes' control channel: one shard channel every node listens to, beside
the rooms' channels on the same pub/sub connection (:mod:`livecore.store.bus`).

It carries :class:`~livecore.killswitch.Kill` notices (a revocation, a room's
end): fire-and-forget, because what they stop is also refused at every later
check (a revoked token at ``hello``, refresh and HTTP; an ended room at WHIP).
A node that missed a notice (its pub/sub was reconnecting) keeps a hit
websocket at most until the token's next use or expiry, never past it.
"""

from __future__ import annotations

from livecore.killswitch import Kill
from livecore.store.client import StoreClient
from livecore.store.keys import PREFIX

#: ``#`` is not a room id character: no room's channel has this hash tag.
CHANNEL = f"{PREFIX}:{{#nodes}}:control"


async def publish(redis: StoreClient, kill: Kill) -> None:
    """Tell every node (those subscribed now) to close what ``kill`` hits."""
    await redis.spublish(CHANNEL, kill.encode())

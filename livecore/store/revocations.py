"""Revoked credentials: a user or a token id denied until a time (Valkey keys
with that TTL, so a revocation leaves by itself once no token it covers can
still be valid)."""

from __future__ import annotations

import asyncio
from typing import Any

from livecore.store.batch import ScriptBatcher, run
from livecore.store.client import StoreClient
from livecore.store.keys import PREFIX
from livecore.tokens import Claims


def user_key(user: str) -> str:
    return f"{PREFIX}:revoked:user:{user}"


def token_key(token_id: str) -> str:
    return f"{PREFIX}:revoked:jti:{token_id}"


#: One key per call: a user's and a token's revocation live in different slots.
_EXISTS = "return redis.call('EXISTS', KEYS[1])"


class Revocations:
    """Revoke users or token ids; check claims against both in one round trip
    (shared with the other scripts of the loop turn through the batcher)."""

    def __init__(self, redis: StoreClient, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.batcher = batcher
        self._exists = redis.register_script(_EXISTS)

    async def revoke(self, *, user: str | None, token_id: str | None, ttl_s: int) -> None:
        """Deny ``user`` (every token naming it) and/or the token ``token_id`` for ``ttl_s``."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if user is not None:
                pipe.set(user_key(user), "1", ex=ttl_s)
            if token_id is not None:
                pipe.set(token_key(token_id), "1", ex=ttl_s)
            await pipe.execute()

    async def is_revoked(self, claims: Claims) -> bool:
        """Whether the token's user or its id is revoked now."""
        if self.batcher is None:
            found = [await run(self._exists, [name], [], None) for name in _names(claims)]
            return any(int(hit) for hit in found)
        return await self.check(claims)

    def check(self, claims: Claims) -> asyncio.Future[bool]:
        """:meth:`is_revoked` queued now, in this loop turn's batch (needs the batcher)."""
        assert self.batcher is not None
        batcher = self.batcher
        found = asyncio.gather(*(batcher.call(self._exists, [n], []) for n in _names(claims)))
        loop = asyncio.get_running_loop()
        out: asyncio.Future[bool] = loop.create_future()

        def done(hits: asyncio.Future[list[Any]]) -> None:
            if out.done():
                return
            if hits.cancelled():
                out.cancel()
            elif (exc := hits.exception()) is not None:
                out.set_exception(exc)
            else:
                out.set_result(any(int(hit) for hit in hits.result()))

        found.add_done_callback(done)
        return out


def _names(claims: Claims) -> list[str]:
    names = [user_key(claims.user)]
    if claims.token_id is not None:
        names.append(token_key(claims.token_id))
    return names

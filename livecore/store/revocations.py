"""Revoked credentials: a user or a token id denied until a time (Valkey keys
with that TTL, so a revocation leaves by itself once no token it covers can
still be valid)."""

from __future__ import annotations

from livecore.store.client import StoreClient
from livecore.store.keys import PREFIX
from livecore.tokens import Claims


def user_key(user: str) -> str:
    return f"{PREFIX}:revoked:user:{user}"


def token_key(token_id: str) -> str:
    return f"{PREFIX}:revoked:jti:{token_id}"


class Revocations:
    """Revoke users or token ids; check claims against both in one round trip."""

    def __init__(self, redis: StoreClient) -> None:
        self.redis = redis

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
        names = [user_key(claims.user)]
        if claims.token_id is not None:
            names.append(token_key(claims.token_id))
        pipe = self.redis.pipeline(transaction=False)  # two slots on a cluster
        for name in names:
            pipe.exists(name)
        return any(int(found) for found in await pipe.execute())

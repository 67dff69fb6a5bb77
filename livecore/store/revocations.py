"""Revoked credentials: a user, a token id, or a role in a room denied until a
time (Valkey keys with that TTL, so a revocation leaves by itself once no token
it covers can still be valid).

A user's or a token id's revocation refuses every token it names while it
lasts; a role's revocation in a room refuses the tokens of that role for that
room minted at or before the revocation (``iat``), so a new host token can be
minted at once. Each revocation is also published on the nodes' control
channel (:mod:`livecore.store.control`): every node closes the websockets and
media sessions it hits."""

from __future__ import annotations

import asyncio
from typing import Any

from livecore.killswitch import Kill
from livecore.store import control
from livecore.store.batch import ScriptBatcher, run
from livecore.store.client import StoreClient
from livecore.store.keys import PREFIX
from livecore.tokens import Claims, Role


def user_key(user: str) -> str:
    return f"{PREFIX}:revoked:user:{user}"


def token_key(token_id: str) -> str:
    return f"{PREFIX}:revoked:jti:{token_id}"


def role_key(room: str, role: Role) -> str:
    return f"{PREFIX}:revoked:role:{room}:{role.value}"


#: One key per call: a user's and a token's revocation live in different slots.
_GET = "return redis.call('GET', KEYS[1])"


class Revocations:
    """Revoke users or token ids; check claims against both in one round trip
    (shared with the other scripts of the loop turn through the batcher)."""

    def __init__(self, redis: StoreClient, batcher: ScriptBatcher | None = None) -> None:
        self.redis = redis
        self.batcher = batcher
        self._get = redis.register_script(_GET)

    async def revoke(
        self,
        *,
        user: str | None,
        token_id: str | None,
        ttl_s: int,
        room_role: tuple[str, Role] | None = None,
        now: int = 0,
    ) -> Kill:
        """Deny ``user`` (every token naming it), the token ``token_id`` and/or the
        tokens of ``room_role`` minted at or before ``now``, for ``ttl_s``; then
        tell every node (the returned notice)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if user is not None:
                pipe.set(user_key(user), "1", ex=ttl_s)
            if token_id is not None:
                pipe.set(token_key(token_id), "1", ex=ttl_s)
            if room_role is not None:
                pipe.set(role_key(*room_role), str(now), ex=ttl_s)
            await pipe.execute()
        room, role = room_role if room_role is not None else (None, None)
        kill = Kill(user=user, token_id=token_id, room=room, role=role,
                    issued_before=now if room_role is not None else None)  # fmt: skip
        await control.publish(self.redis, kill)
        return kill

    async def is_revoked(self, claims: Claims) -> bool:
        """Whether the token's user, its id or its role in its room is revoked now."""
        if self.batcher is None:
            found = [await run(self._get, [name], [], None) for name in _names(claims)]
            return _revoked(claims, found)
        return await self.check(claims)

    def check(self, claims: Claims) -> asyncio.Future[bool]:
        """:meth:`is_revoked` queued now, in this loop turn's batch (needs the batcher)."""
        assert self.batcher is not None
        batcher = self.batcher
        found = asyncio.gather(*(batcher.call(self._get, [n], []) for n in _names(claims)))
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
                out.set_result(_revoked(claims, hits.result()))

        found.add_done_callback(done)
        return out


def _names(claims: Claims) -> list[str]:
    """The user's key, the token id's (if any), the role-in-room key (last)."""
    names = [user_key(claims.user)]
    if claims.token_id is not None:
        names.append(token_key(claims.token_id))
    names.append(role_key(claims.room, claims.role))
    return names


def _revoked(claims: Claims, found: list[Any]) -> bool:
    """``found``: the values of :func:`_names`' keys, in order."""
    *named, by_role = found
    if any(value is not None for value in named):
        return True
    if by_role is None:
        return False
    issued = claims.issued_at if claims.issued_at is not None else 0
    return issued <= int(by_role)

"""Communities and group buys on the room channel."""

from __future__ import annotations

from livecore import groupbuy, wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import GroupBuySpec
from livecore.store.groupbuys import GroupState
from signalling.hub.context import Context
from signalling.hub.groupview import ROOM_GROUP, group_of, group_states, public_state, spec_of

_JOIN_REFUSALS = {
    -1: (ErrorCode.GROUPBUY_NOT_FOUND, "no such group buy in this room"),
    -2: (ErrorCode.GROUPBUY_CLOSED, "this group buy is closed"),
    -4: (ErrorCode.SELF_REFERRAL, "you cannot invite yourself"),
    -5: (ErrorCode.UNKNOWN_REFERRER, "the inviter is not a member of your group"),
    -6: (ErrorCode.GROUP_FORMED, "the group has formed: your order is confirmed"),
    -7: (ErrorCode.OTHER_GROUP, "you already joined this group buy with another community"),
}


def join_refusal(code: int, state: GroupState | int | str) -> LivecoreError | None:
    """The error a join/leave script's code means (None: done). Pure."""
    if code == -3:
        return LivecoreError(ErrorCode.QUANTITY_LIMIT, f"at most {state} per person")
    if code < 0:
        error, why = _JOIN_REFUSALS[code]
        return LivecoreError(error, why)
    return None


# -- communities -------------------------------------------------------------------


def _not_fixed(ctx: Context) -> None:
    if ctx.claims.community:
        raise LivecoreError(ErrorCode.COMMUNITY_FIXED, "your token fixes your community")


async def locate(ctx: Context, message: wire.Message) -> None:
    """Resolve a browser location to a community (the location itself is not kept)."""
    _not_fixed(ctx)
    index = await ctx.stores.communities.refresh()
    found, nearby = index.resolve(message.fields["lat"], message.fields["lng"])
    if found is not None:
        await _set_community(ctx, found.id)
        ctx.ack(message, community=found.public(), nearby=[])
    else:
        ctx.peer.nearby = [c.id for c in nearby]
        ctx.ack(message, community=None, nearby=[c.public() for c in nearby])


async def choose_community(ctx: Context, message: wire.Message) -> None:
    """Pick one of the communities the last ``locate`` offered."""
    _not_fixed(ctx)
    chosen = message.fields["community"]
    if chosen not in ctx.peer.nearby:
        raise LivecoreError(
            ErrorCode.UNKNOWN_COMMUNITY, f"{chosen!r} was not offered; send locate first"
        )
    community = (await ctx.stores.communities.refresh()).by_id.get(chosen)
    if community is None:
        raise LivecoreError(ErrorCode.UNKNOWN_COMMUNITY, f"no community {chosen!r}")
    await _set_community(ctx, chosen)
    ctx.ack(message, community=community.public())


async def _set_community(ctx: Context, community: str) -> None:
    """Move the connection to ``community`` and send it that community's groups."""
    room = ctx.room
    if room is None:
        return
    room.move(ctx.peer, community)
    groups = await group_states(ctx.node, room.id, community)
    if groups:
        ctx.peer.send(wire.encode_batch([], {"groups": groups}))


# -- group buys -----------------------------------------------------------------------


async def groupbuy_open(ctx: Context, message: wire.Message) -> None:
    spec = groupbuy.parse_spec(message.fields, now=ctx.node.now())
    buys = ctx.stores.groupbuys
    level1, level2 = await buys.commission(ctx.room_id)
    gid = await buys.open(ctx.room_id, spec, level1, level2)
    ctx.ack(message, gb=gid, deadline=spec.deadline)


async def _group(ctx: Context, gid: str) -> tuple[GroupBuySpec, str]:
    spec = await spec_of(ctx.node, ctx.room_id, gid)
    if spec is None:
        raise LivecoreError(ErrorCode.GROUPBUY_NOT_FOUND, f"no group buy {gid!r} in this room")
    group = group_of(spec, ctx.community)
    if group is None:
        raise LivecoreError(
            ErrorCode.NO_COMMUNITY, "send locate (or choose_community) before joining"
        )
    if group != ROOM_GROUP:
        await _known_community(ctx, group)
    return spec, group


async def _known_community(ctx: Context, community: str) -> None:
    """A group exists only for a community in the registry (a token's ``cty`` may name
    one that does not): the node's cached index, refreshed on a miss."""
    communities = ctx.stores.communities
    if community not in communities.index.by_id:
        if community not in (await communities.refresh()).by_id:
            raise LivecoreError(
                ErrorCode.UNKNOWN_COMMUNITY, f"no community {community!r} in the registry"
            )


async def groupbuy_join(ctx: Context, message: wire.Message) -> None:
    gid, qty = message.fields["gb"], message.fields["qty"]
    spec, group = await _group(ctx, gid)
    inviter = message.fields.get("inviter") or ""
    code, state = await ctx.stores.groupbuys.join(
        ctx.room_id, gid, group, ctx.user, qty, inviter, ctx.node.now()
    )
    _answer(ctx, message, gid, group, spec, code, state)
    if code == 1:
        ctx.node.moments.signal(ctx.room_id, "join", ctx.user)


async def groupbuy_leave(ctx: Context, message: wire.Message) -> None:
    """Leave the group the buyer joined (a ``locate`` since may have moved the
    connection to another community: the membership is what counts)."""
    gid = message.fields["gb"]
    joined = await ctx.stores.groupbuys.joined_group(ctx.room_id, gid, ctx.user)
    if joined is None:
        spec, group = await _group(ctx, gid)  # not a member: unchanged, or refused
    else:
        found = await spec_of(ctx.node, ctx.room_id, gid)
        if found is None:
            raise LivecoreError(ErrorCode.GROUPBUY_NOT_FOUND, f"no group buy {gid!r} in this room")
        spec, group = found, joined
    code, state = await ctx.stores.groupbuys.leave(
        ctx.room_id, gid, group, ctx.user, ctx.node.now()
    )
    _answer(ctx, message, gid, group, spec, code, state)


def _answer(
    ctx: Context, message: wire.Message, gid: str, group: str,
    spec: GroupBuySpec, code: int, state: GroupState | int | str,
) -> None:  # fmt: skip
    refusal = join_refusal(code, state)
    if refusal is not None:
        raise refusal
    assert isinstance(state, GroupState)
    public = public_state(spec, state)
    room = ctx.room
    if code == 1 and room is not None:
        room.set_group(gid, group, public)
        known = room.local_groups.get((gid, group))
        if known is None or public["v"] > known["v"]:
            room.local_groups[(gid, group)] = public
        ctx.node.orders.note(ctx.room_id)
    ctx.ack(message, gb=gid, group=group, **public)

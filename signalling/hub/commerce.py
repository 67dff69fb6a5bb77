"""Group buys, communities and share officers on the room channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgpack

from livecore import groupbuy, wire
from livecore.errors import ErrorCode, LivecoreError
from livecore.groupbuy import GroupBuySpec, Scope
from livecore.store import keys
from livecore.store.groupbuys import GroupState
from livecore.store.replies import as_str

if TYPE_CHECKING:
    from signalling.hub.connection import HubConnection
    from signalling.hub.hub import Hub
    from signalling.hub.room import LocalRoom

ROOM_GROUP = "room"
_JOIN_REFUSALS = {
    -1: (ErrorCode.GROUPBUY_NOT_FOUND, "no such group buy in this room"),
    -2: (ErrorCode.GROUPBUY_CLOSED, "this group buy is closed"),
    -4: (ErrorCode.SELF_REFERRAL, "you cannot invite yourself"),
    -5: (ErrorCode.UNKNOWN_REFERRER, "the inviter is not a member of your group"),
    -6: (ErrorCode.GROUP_FORMED, "the group has formed: your order is confirmed"),
}


def _user(conn: HubConnection) -> str:
    assert conn.claims is not None
    return conn.claims.user


def _ack(conn: HubConnection, message: wire.Message, **fields: Any) -> None:
    if message.request_id is not None:
        conn.send(wire.ack(message.request_id, **fields))


# -- communities -------------------------------------------------------------------


def _not_fixed(conn: HubConnection) -> None:
    if conn.claims is not None and conn.claims.community:
        raise LivecoreError(ErrorCode.COMMUNITY_FIXED, "your token fixes your community")


async def locate(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    """Resolve a browser location to a community (the location itself is not kept)."""
    _not_fixed(conn)
    index = await hub.communities.refresh()
    found, nearby = index.resolve(message.fields["lat"], message.fields["lng"])
    if found is not None:
        await _set_community(hub, conn, found.id)
        _ack(conn, message, community=found.public(), nearby=[])
    else:
        conn.nearby = [c.id for c in nearby]
        _ack(conn, message, community=None, nearby=[c.public() for c in nearby])


async def choose_community(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    """Pick one of the communities the last ``locate`` offered."""
    _not_fixed(conn)
    chosen = message.fields["community"]
    if chosen not in conn.nearby:
        raise LivecoreError(
            ErrorCode.UNKNOWN_COMMUNITY, f"{chosen!r} was not offered; send locate first"
        )
    community = (await hub.communities.refresh()).by_id.get(chosen)
    if community is None:
        raise LivecoreError(ErrorCode.UNKNOWN_COMMUNITY, f"no community {chosen!r}")
    await _set_community(hub, conn, chosen)
    _ack(conn, message, community=community.public())


async def _set_community(hub: Hub, conn: HubConnection, community: str) -> None:
    """Move the connection to ``community`` and send it that community's groups."""
    room = conn.room
    if room is None:
        return
    room.move(conn, community)
    groups = await group_states(hub, room.id, community)
    if groups:
        conn.send(wire.encode_batch([], {"groups": groups}))


async def group_states(
    hub: Hub, room_id: str, community: str | None, *, everyone: bool = False
) -> dict[str, Any]:
    """{gb: {group: state}} of the room's open group buys: room-wide groups and
    ``community``'s group (none without a community), or every group (``everyone``,
    for hosts)."""
    out: dict[str, Any] = {}
    for gid in await hub.groupbuys.open_ids(room_id):
        spec = await spec_of(hub, room_id, gid)
        if spec is None:
            continue
        if spec.scope is Scope.ROOM:
            names = [ROOM_GROUP]
        elif everyone:
            raw = await hub.ctx.redis.smembers(keys.room(room_id, f"gb:{gid}:groups"))
            names = sorted(as_str(g) for g in raw)
        else:
            names = [community] if community else []
        for name in names:
            state = await hub.groupbuys.group(room_id, gid, name)
            out.setdefault(gid, {})[name] = _public(spec, state)
    return out


async def spec_of(hub: Hub, room_id: str, gid: str) -> GroupBuySpec | None:
    """A group buy's spec, cached per node (specs never change)."""
    cached = hub.specs.get((room_id, gid))
    if cached is not None:
        return cached
    raw = await hub.groupbuys.spec(room_id, gid)
    if raw is None:
        return None
    tiers = tuple((int(m), int(d)) for m, d in (t.split(":") for t in raw["tiers"].split(",") if t))
    spec = GroupBuySpec(
        raw["product"], int(raw["price"]), int(raw["target"]), int(raw["deadline"]), tiers,
        int(raw["max_qty"]), Scope(raw["scope"]), int(raw["bonus_invites"]),
        int(raw["bonus_cents"]),
    )  # fmt: skip
    if len(hub.specs) > 10_000:
        hub.specs.clear()
    hub.specs[(room_id, gid)] = spec
    return spec


def _public(spec: GroupBuySpec, state: GroupState) -> dict[str, Any]:
    return {
        "v": state.version, "n": state.members, "q": state.qty, "s": state.status,
        "b": state.bonus, "target": spec.target, "scope": spec.scope.value,
        "unit_cents": groupbuy.unit_price(spec, state.members, state.bonus),
        "missing": max(0, spec.target - state.members), "deadline": spec.deadline,
    }  # fmt: skip


# -- group buys -----------------------------------------------------------------------


async def groupbuy_open(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    spec = groupbuy.parse_spec(message.fields, now=hub._now())
    raw = await hub.ctx.redis.hget(keys.room(conn.room_id, "state"), "commission")
    level1, level2 = msgpack.unpackb(raw) if raw else (
        groupbuy.DEFAULT_LEVEL1_BP, groupbuy.DEFAULT_LEVEL2_BP,
    )  # fmt: skip
    gid = await hub.groupbuys.open(conn.room_id, spec, level1, level2)
    _ack(conn, message, gb=gid, deadline=spec.deadline)


async def _group_of(hub: Hub, conn: HubConnection, gid: str) -> tuple[GroupBuySpec, str]:
    spec = await spec_of(hub, conn.room_id, gid)
    if spec is None:
        raise LivecoreError(ErrorCode.GROUPBUY_NOT_FOUND, f"no group buy {gid!r} in this room")
    if spec.scope is Scope.ROOM:
        return spec, ROOM_GROUP
    if not conn.community:
        raise LivecoreError(
            ErrorCode.NO_COMMUNITY, "send locate (or choose_community) before joining"
        )
    return spec, conn.community


async def groupbuy_join(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    gid, qty = message.fields["gb"], message.fields["qty"]
    spec, group = await _group_of(hub, conn, gid)
    inviter = message.fields.get("inviter") or ""
    code, state = await hub.groupbuys.join(
        conn.room_id, gid, group, _user(conn), qty, inviter, hub._now()
    )
    _answer(hub, conn, message, gid, group, spec, code, state)


async def groupbuy_leave(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    gid = message.fields["gb"]
    spec, group = await _group_of(hub, conn, gid)
    code, state = await hub.groupbuys.leave(conn.room_id, gid, group, _user(conn), hub._now())
    _answer(hub, conn, message, gid, group, spec, code, state)


def _answer(
    hub: Hub, conn: HubConnection, message: wire.Message, gid: str, group: str,
    spec: GroupBuySpec, code: int, state: GroupState | int,
) -> None:  # fmt: skip
    if code == -3:
        raise LivecoreError(ErrorCode.QUANTITY_LIMIT, f"at most {state} per person")
    if code < 0:
        error, text = _JOIN_REFUSALS[code]
        raise LivecoreError(error, text)
    assert isinstance(state, GroupState)
    public = _public(spec, state)
    if code == 1 and conn.room is not None:
        room = conn.room
        room.set_group(gid, group, public)
        known = room.local_groups.get((gid, group))
        if known is None or public["v"] > known["v"]:
            room.local_groups[(gid, group)] = public
        hub.note_orders(conn.room_id)
    _ack(conn, message, gb=gid, group=group, **public)


async def publish_groups(hub: Hub, room: LocalRoom) -> None:
    """Tell the other nodes the groups that changed here (coalesced, ≤ 4/s per group)."""
    while room.local_groups:
        (gid, group), state = room.local_groups.popitem()
        message = {"k": "group", "gb": gid, "g": group, **state}
        await hub.bus.ephemeral(room.id, msgpack.packb(message))


async def sweep_deadlines(hub: Hub) -> None:
    """Fail what did not form in time: every node sweeps, one wins each group buy."""
    now = hub._now()
    for room_id, gid in await hub.groupbuys.due(now):
        await hub.groupbuys.expire(room_id, gid, now)


# -- share officers -----------------------------------------------------------------


def links(hub: Hub, room_id: str, code: str) -> dict[str, str]:
    base = hub.settings.base_url
    return {"room": f"{base}/r/{room_id}?ref={code}", "clips": f"{base}/clips/{room_id}?ref={code}"}


async def officer_apply(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    status, code = await hub.officers.apply(conn.room_id, _user(conn), hub._now())
    if status == -1:
        raise LivecoreError(ErrorCode.NOT_A_BUYER, "join a group buy first; buyers may apply")
    _ack(conn, message, code=code, links=links(hub, conn.room_id, code), new=status == 1)


async def officer_me(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    officer = await hub.officers.get(conn.room_id, _user(conn))
    if officer is None:
        raise LivecoreError(ErrorCode.NOT_A_BUYER, "you are not a share officer here; apply first")
    _ack(conn, message, **officer.public(links(hub, conn.room_id, officer.code)))


async def commission_set(hub: Hub, conn: HubConnection, message: wire.Message) -> None:
    level1, level2 = groupbuy.check_commission(
        message.fields["level1_bp"], message.fields["level2_bp"]
    )
    await hub.ctx.redis.hset(
        keys.room(conn.room_id, "state"), "commission", msgpack.packb([level1, level2])
    )
    _ack(conn, message, level1_bp=level1, level2_bp=level2)


async def attribute(hub: Hub, conn: HubConnection, code: str) -> str | LivecoreError:
    """Attribute the viewer to the officer of ``code``: the officer, or the refusal
    (sent by the caller after the snapshot, so the snapshot stays the first answer)."""
    status, officer = await hub.officers.attribute(conn.room_id, code, _user(conn), hub._now())
    if status == -1:
        return LivecoreError(ErrorCode.UNKNOWN_REFERRER, f"no share officer with code {code}")
    if status == -2:
        return LivecoreError(ErrorCode.SELF_REFERRAL, "that is your own referral code")
    return officer

"""Group buys as clients see them: specs (cached), group states, referral links.

Shared by the commerce handlers, the snapshot and the hub; the state
builders are pure.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import msgpack

from livecore import groupbuy
from livecore.groupbuy import GroupBuySpec, Scope
from livecore.store.groupbuys import GroupState
from signalling.hub.context import Services

#: The one group of a room-wide group buy.
ROOM_GROUP = "room"


async def spec_of(node: Services, room_id: str, gid: str) -> GroupBuySpec | None:
    """A group buy's spec, cached per node (specs never change). The joins that
    arrive together when a group buy opens share one read of it."""
    key = (room_id, gid)
    cached = node.specs.get(key)
    if cached is not None:
        return cached
    reading = node.spec_reads.get(key)
    if reading is None:
        reading = asyncio.ensure_future(node.stores.groupbuys.spec(room_id, gid))
        node.spec_reads[key] = reading
        reading.add_done_callback(functools.partial(_read_done, node.spec_reads, key))
    raw = await asyncio.shield(reading)  # a waiter cancelled leaves the read to the others
    if raw is None:
        return None
    spec = node.specs.get(key)
    if spec is None:
        spec = node.specs[key] = parse_stored_spec(raw)
    return spec


def _read_done(
    reads: dict[tuple[str, str], asyncio.Future[dict[str, str] | None]],
    key: tuple[str, str],
    done: asyncio.Future[dict[str, str] | None],
) -> None:
    """A shared read ended: the next miss reads again (its error, if any, was each
    waiter's; marked retrieved when every waiter was cancelled)."""
    reads.pop(key, None)
    if not done.cancelled():
        done.exception()


def parse_stored_spec(raw: dict[str, str]) -> GroupBuySpec:
    """The spec of a group buy's hash in Valkey."""
    tiers = tuple((int(m), int(d)) for m, d in (t.split(":") for t in raw["tiers"].split(",") if t))
    return GroupBuySpec(
        raw["product"], int(raw["price"]), int(raw["target"]), int(raw["deadline"]), tiers,
        int(raw["max_qty"]), Scope(raw["scope"]), int(raw["bonus_invites"]),
        int(raw["bonus_cents"]),
    )  # fmt: skip


def public_state(spec: GroupBuySpec, state: GroupState) -> dict[str, Any]:
    """A group's state on the wire (``groups`` in snapshots, batches and acks)."""
    return {
        "v": state.version, "n": state.members, "q": state.qty, "s": state.status,
        "b": state.bonus, "target": spec.target, "scope": spec.scope.value,
        "unit_cents": groupbuy.unit_price(spec, state.members, state.bonus),
        "missing": max(0, spec.target - state.members), "deadline": spec.deadline,
    }  # fmt: skip


def group_of(spec: GroupBuySpec, community: str | None) -> str | None:
    """The group a member of ``community`` joins (None: they need a community first)."""
    if spec.scope is Scope.ROOM:
        return ROOM_GROUP
    return community or None


async def group_states(
    node: Services, room_id: str, community: str | None, *, everyone: bool = False
) -> dict[str, Any]:
    """{gb: {group: state}} of the room's open group buys: room-wide groups and
    ``community``'s group (none without a community), or every group (``everyone``,
    for hosts)."""
    buys = node.stores.groupbuys
    out: dict[str, Any] = {}
    for gid in await buys.open_ids(room_id):
        spec = await spec_of(node, room_id, gid)
        if spec is None:
            continue
        if spec.scope is Scope.ROOM:
            names = [ROOM_GROUP]
        elif everyone:
            names = await buys.group_names(room_id, gid)
        else:
            names = [community] if community else []
        for name in names:
            state = await buys.group(room_id, gid, name)
            out.setdefault(gid, {})[name] = public_state(spec, state)
    return out


def visible_groups(
    groups: dict[tuple[str, str], dict[str, Any]], *, is_host: bool, community: str | None
) -> dict[str, Any]:
    """{gb: {group: state}} of the known groups a connection may see: hosts all,
    others room-wide groups and their community's."""
    out: dict[str, Any] = {}
    for (gb, group), state in groups.items():
        if is_host or state.get("scope") == "room" or group == community:
            out.setdefault(gb, {})[group] = state
    return out


def officer_links(base_url: str, room_id: str, code: str) -> dict[str, str]:
    """A share officer's referral links (room page and clips page)."""
    return {
        "room": f"{base_url}/r/{room_id}?ref={code}",
        "clips": f"{base_url}/clips/{room_id}?ref={code}",
    }


def group_message(gid: str, group: str, state: dict[str, Any]) -> bytes:
    """The ephemeral bus message that tells other nodes a group's new state."""
    packed: bytes = msgpack.packb({"k": "group", "gb": gid, "g": group, **state})
    return packed

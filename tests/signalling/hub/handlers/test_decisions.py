"""The handlers' pure decisions: refusals, permissions, events, group states."""

from __future__ import annotations

from livecore.errors import ErrorCode
from livecore.groupbuy import GroupBuySpec, Scope
from livecore.store.groupbuys import GroupState
from livecore.store.polls import VoteResult
from livecore.tokens import Role
from signalling.hub import groupview
from signalling.hub.handlers import chat, commerce, costream, officers, polls

SPEC = GroupBuySpec("eggs", 1000, 3, 2000, ((2, 100),), 5, Scope.COMMUNITY, 0, 0)


def test_vote_refusals() -> None:
    """Each vote result maps to its error code; counted and unchanged votes pass."""
    assert polls.vote_refusal(VoteResult.COUNTED, "p", 0) is None
    codes = {r: polls.vote_refusal(r, "p", 9) for r in VoteResult if r is not VoteResult.COUNTED}
    got = {r: e.code for r, e in codes.items() if e is not None}
    assert got[VoteResult.NOT_FOUND] is ErrorCode.POLL_NOT_FOUND
    assert got[VoteResult.CLOSED] is ErrorCode.POLL_CLOSED
    assert got[VoteResult.BAD_OPTION] is ErrorCode.INVALID_FIELD


def test_join_refusals() -> None:
    """Script codes become named errors; the quantity limit names the maximum."""
    assert commerce.join_refusal(1, GroupState(1, 1, 1, "open", False)) is None
    limit = commerce.join_refusal(-3, 5)
    assert limit is not None and limit.code is ErrorCode.QUANTITY_LIMIT and "5" in limit.message
    formed = commerce.join_refusal(-6, 0)
    assert formed is not None and formed.code is ErrorCode.GROUP_FORMED


def test_attribution_refusals() -> None:
    """Unknown and own codes are refused; attributed (1) and kept (0) pass."""
    unknown = officers.attribution_refusal(-1, "ABC")
    assert unknown is not None and unknown.code is ErrorCode.UNKNOWN_REFERRER
    own = officers.attribution_refusal(-2, "ABC")
    assert own is not None and own.code is ErrorCode.SELF_REFERRAL
    assert officers.attribution_refusal(1, "ABC") is None
    assert officers.attribution_refusal(0, "ABC") is None


def test_only_the_host_ends_anothers_costream() -> None:
    """A KOC ends its own co-stream only; the host ends anyone's."""
    assert costream.may_end(Role.HOST, "h", "k1")
    assert costream.may_end(Role.KOC, "k1", "k1")
    assert not costream.may_end(Role.KOC, "k1", "k2")


def test_pinned_question_keeps_the_comment() -> None:
    """A pinned question carries the comment's user and text."""
    found: dict[str, object] = {"user": "u", "text": "fresh?", "t": "comment"}
    assert chat.question_of(7, found, answered=True) == {
        "target": 7, "user": "u", "text": "fresh?", "answered": True,
    }  # fmt: skip


def test_group_of_by_scope() -> None:
    """Room-wide group buys have one group; community ones need a community."""
    room_spec = GroupBuySpec("x", 1000, 3, 1, (), 5, Scope.ROOM, 0, 0)
    assert groupview.group_of(room_spec, None) == groupview.ROOM_GROUP
    assert groupview.group_of(SPEC, "c1") == "c1"
    assert groupview.group_of(SPEC, None) is None


def test_public_state_prices_the_tier() -> None:
    """Two members reach the first tier: the unit price drops; one more forms the group."""
    state = groupview.public_state(SPEC, GroupState(4, 2, 3, "open", False))
    assert state["unit_cents"] == 900 and state["missing"] == 1 and state["v"] == 4


def test_visible_groups() -> None:
    """Hosts see every group; others room-wide groups and their community's."""
    groups = {
        ("g1", "c1"): {"v": 1, "scope": "community"},
        ("g1", "c2"): {"v": 1, "scope": "community"},
        ("g2", "room"): {"v": 1, "scope": "room"},
    }
    host = groupview.visible_groups(groups, is_host=True, community=None)
    assert set(host["g1"]) == {"c1", "c2"}
    viewer = groupview.visible_groups(groups, is_host=False, community="c1")
    assert set(viewer["g1"]) == {"c1"} and set(viewer["g2"]) == {"room"}


def test_stored_spec_round_trip() -> None:
    """A spec's hash in Valkey parses back to the spec."""
    raw = {"product": "eggs", "price": "1000", "target": "3", "deadline": "2000",
           "tiers": "2:100", "max_qty": "5", "scope": "community", "bonus_invites": "0",
           "bonus_cents": "0"}  # fmt: skip
    assert groupview.parse_stored_spec(raw) == SPEC

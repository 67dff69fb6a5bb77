"""Client → server messages: one frame decoded and checked before any handler sees it.

``decode(frame)`` returns a :class:`Message` or raises ``LivecoreError``
(``bad_message``, ``unknown_type``, ``invalid_field``) carrying the request id
when the frame named one. The table ``_CHECKS`` gives each ``ClientType`` its
allowed fields and its check; checks use the vocabulary of
:mod:`livecore.fields` and may normalise values in place (strip text).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from livecore import coupons, flashsale
from livecore.cards import validate_card
from livecore.errors import ErrorCode, LivecoreError
from livecore.fields import (
    integer,
    invalid,
    number,
    optional_integer,
    optional_text,
    text,
)
from livecore.tokens import valid_id
from livecore.wire.vocabulary import MAX_CLIENT_FRAME, ClientType


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded, checked client message: its type, optional request id and fields."""

    type: ClientType
    fields: dict[str, Any]
    request_id: int | None = None


def decode(frame: bytes) -> Message:
    """Decode one client frame or raise LivecoreError (bad_message, unknown_type, invalid_field)."""
    if len(frame) > MAX_CLIENT_FRAME:
        raise LivecoreError(ErrorCode.BAD_MESSAGE, f"frame over {MAX_CLIENT_FRAME} bytes")
    try:
        data = msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            max_str_len=MAX_CLIENT_FRAME,
            max_bin_len=0,
            max_array_len=64,
            max_map_len=32,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises many types on garbage
        raise LivecoreError(ErrorCode.BAD_MESSAGE, f"not one msgpack object: {exc}") from None
    if not isinstance(data, dict):
        raise LivecoreError(ErrorCode.BAD_MESSAGE, "a message is a msgpack map")
    kind = data.pop("t", None)
    if not isinstance(kind, str):
        raise LivecoreError(ErrorCode.BAD_MESSAGE, "missing message type 't'")
    request_id = data.pop("id", None)
    if request_id is not None and (
        not isinstance(request_id, int)
        or isinstance(request_id, bool)
        or not 0 <= request_id < 2**53
    ):
        raise invalid("id", "request id must be an integer 0..2^53")
    try:
        mtype = ClientType(kind)
    except ValueError:
        err = LivecoreError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
        err.request_id = request_id
        raise err from None
    check = _CHECKS[mtype]
    try:
        unknown = set(data) - check.fields
        if unknown:
            raise invalid(sorted(map(str, unknown))[0], "unknown field")
        check.validate(data)
    except LivecoreError as err:
        err.request_id = request_id  # the error answer names the request it refuses
        raise
    return Message(mtype, data, request_id)


# -- field checks (vocabulary: livecore.fields) --------------------------------


def _hello(d: dict[str, Any]) -> None:
    text(d, "token", 2048)
    optional_text(d, "ref", 16)
    since = d.get("since")
    if since is not None:
        if not isinstance(since, dict) or set(since) != {"epoch", "offset"}:
            raise invalid("since", "must be a map {epoch, offset}")
        text(since, "epoch", 64)
        integer(since, "offset", 0, 2**62)


def _token(d: dict[str, Any]) -> None:
    text(d, "token", 2048)


def _comment(d: dict[str, Any]) -> None:
    # Only a string here: the room's own limit (and blankness, invisible
    # characters included) is checked by the hub's CommentRules, whose error
    # names that limit; the frame size bounds the text meanwhile.
    value = d.get("text")
    if not isinstance(value, str):
        raise invalid("text", "required, a string")
    d["text"] = value.strip()
    optional_text(d, "cid", 64)


def _like(d: dict[str, Any]) -> None:
    integer(d, "n", 1, 50)


def _vote(d: dict[str, Any]) -> None:
    text(d, "poll", 64)
    integer(d, "option", 0, 5)


def _poll_open(d: dict[str, Any]) -> None:
    text(d, "question", 140)
    options = d.get("options")
    if not isinstance(options, list) or not 2 <= len(options) <= 6:
        raise invalid("options", "must be a list of 2-6 strings")
    cleaned = []
    for i, option in enumerate(options):
        if not isinstance(option, str) or not 1 <= len(option.strip()) <= 60:
            raise invalid(f"options[{i}]", "must be 1-60 characters")
        cleaned.append(option.strip())
    d["options"] = cleaned
    optional_integer(d, "duration_s", 5, 24 * 3600)


def _poll_close(d: dict[str, Any]) -> None:
    text(d, "poll", 64)


def _offset(d: dict[str, Any]) -> None:
    integer(d, "offset", 1, 2**62)


def _mute(d: dict[str, Any]) -> None:
    if not valid_id(text(d, "user", 64)):
        raise invalid("user", "1-64 characters of A-Z a-z 0-9 _ . : -")
    integer(d, "duration_s", 10, 7 * 24 * 3600)


def _locate(d: dict[str, Any]) -> None:
    number(d, "lat")
    number(d, "lng")


def _choose(d: dict[str, Any]) -> None:
    text(d, "community", 64)


def _groupbuy_open(d: dict[str, Any]) -> None:
    text(d, "product", 80)  # the rest is checked by livecore.groupbuy.parse_spec


def _groupbuy_join(d: dict[str, Any]) -> None:
    text(d, "gb", 64)
    integer(d, "qty", 1, 99)
    optional_text(d, "inviter", 64)


def _groupbuy_leave(d: dict[str, Any]) -> None:
    text(d, "gb", 64)


def _user_field(d: dict[str, Any]) -> None:
    text(d, "user", 64)


def _batch_field(d: dict[str, Any]) -> None:
    text(d, "batch", 64)


def _flash_id(d: dict[str, Any]) -> None:
    text(d, "fs", 64)


def _flash_buy(d: dict[str, Any]) -> None:
    text(d, "fs", 64)
    integer(d, "qty", 1, flashsale.MAX_LIMIT, default=1)
    _idempotency(d)
    optional_text(d, "coupon", 64)


def _coupon_claim(d: dict[str, Any]) -> None:
    text(d, "cp", 64)
    _idempotency(d)


def _idempotency(d: dict[str, Any]) -> None:
    """``key``: the client's id of this attempt (a retry sends the same one)."""
    key = optional_text(d, "key", 64)
    if key is not None and not valid_id(key):
        raise invalid("key", "1-64 characters of A-Z a-z 0-9 _ . : -")


def _coupon_create(d: dict[str, Any]) -> None:
    coupons.parse_spec(d)


def _draw_open(d: dict[str, Any]) -> None:
    text(d, "prize", 60)  # the rest is checked by livecore.luckydraw.parse_spec


def _draw_field(d: dict[str, Any]) -> None:
    text(d, "draw", 64)


def _nothing(d: dict[str, Any]) -> None:
    return None


def _explain(d: dict[str, Any]) -> None:
    optional_text(d, "product", 80)  # a product card's name; absent: the explanation ends


def _commission(d: dict[str, Any]) -> None:
    integer(d, "level1_bp", 0, 10_000)
    integer(d, "level2_bp", 0, 10_000)


def _card(d: dict[str, Any]) -> None:
    validate_card(d)  # cards are a topic of their own


CARD_FIELDS = frozenset(
    {"kind", "name", "price_cents", "image_url", "stock", "batch", "origin", "report_url",
     "readings", "author", "text"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Check:
    fields: frozenset[str]
    validate: Callable[[dict[str, Any]], None]


_CHECKS: dict[ClientType, _Check] = {
    ClientType.HELLO: _Check(frozenset({"token", "since", "ref"}), _hello),
    ClientType.COMMENT: _Check(frozenset({"text", "cid"}), _comment),
    ClientType.LIKE: _Check(frozenset({"n"}), _like),
    ClientType.VOTE: _Check(frozenset({"poll", "option"}), _vote),
    ClientType.POLL_OPEN: _Check(frozenset({"question", "options", "duration_s"}), _poll_open),
    ClientType.POLL_CLOSE: _Check(frozenset({"poll"}), _poll_close),
    ClientType.DELETE_COMMENT: _Check(frozenset({"offset"}), _offset),
    ClientType.TOKEN: _Check(frozenset({"token"}), _token),
    ClientType.MUTE: _Check(frozenset({"user", "duration_s"}), _mute),
    ClientType.PIN_QUESTION: _Check(frozenset({"offset"}), _offset),
    ClientType.ANSWER_QUESTION: _Check(frozenset({"offset"}), _offset),
    ClientType.CARD: _Check(CARD_FIELDS, _card),
    ClientType.LOCATE: _Check(frozenset({"lat", "lng"}), _locate),
    ClientType.CHOOSE_COMMUNITY: _Check(frozenset({"community"}), _choose),
    ClientType.GROUPBUY_OPEN: _Check(
        frozenset(
            {
                "product",
                "price_cents",
                "target",
                "duration_s",
                "tiers",
                "max_qty",
                "scope",
                "bonus_invites",
                "bonus_cents",
            }
        ),
        _groupbuy_open,
    ),
    ClientType.GROUPBUY_JOIN: _Check(frozenset({"gb", "qty", "inviter"}), _groupbuy_join),
    ClientType.GROUPBUY_LEAVE: _Check(frozenset({"gb"}), _groupbuy_leave),
    ClientType.OFFICER_APPLY: _Check(frozenset(), _nothing),
    ClientType.OFFICER_ME: _Check(frozenset(), _nothing),
    ClientType.COMMISSION_SET: _Check(frozenset({"level1_bp", "level2_bp"}), _commission),
    ClientType.COSTREAM_REQUEST: _Check(frozenset(), _nothing),
    ClientType.COSTREAM_ACCEPT: _Check(frozenset({"user"}), _user_field),
    ClientType.COSTREAM_DECLINE: _Check(frozenset({"user"}), _user_field),
    ClientType.COSTREAM_END: _Check(frozenset({"user"}), _user_field),
    ClientType.MARK: _Check(frozenset(), _nothing),
    ClientType.EXPLAIN: _Check(frozenset({"product"}), _explain),
    ClientType.BATCH_PIN: _Check(frozenset({"batch"}), _batch_field),
    ClientType.BATCH_UNPIN: _Check(frozenset({"batch"}), _batch_field),
    ClientType.FLASH_START: _Check(flashsale.START_FIELDS, flashsale.check_start),
    ClientType.FLASH_STOP: _Check(frozenset({"fs"}), _flash_id),
    ClientType.FLASH_BUY: _Check(frozenset({"fs", "qty", "key", "coupon"}), _flash_buy),
    ClientType.COUPON_CREATE: _Check(coupons.CREATE_FIELDS, _coupon_create),
    ClientType.COUPON_CLAIM: _Check(frozenset({"cp", "key"}), _coupon_claim),
    ClientType.DRAW_OPEN: _Check(
        frozenset({"prize", "winners", "task", "phrase", "minutes", "duration_s"}), _draw_open
    ),
    ClientType.DRAW_ENTER: _Check(frozenset({"draw"}), _draw_field),
    ClientType.DRAW_ROLL: _Check(frozenset({"draw"}), _draw_field),
}

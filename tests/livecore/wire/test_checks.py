"""Client frames decoded and checked (livecore.wire.checks), through the wire package."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livecore import wire
from livecore.errors import ErrorCode, LivecoreError


def pack(obj: Any) -> bytes:
    """One msgpack object, as a client would send it."""
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def refused(frame: bytes) -> LivecoreError:
    """The error decode() raises for a frame (fails the test if it returns)."""
    with pytest.raises(LivecoreError) as info:
        wire.decode(frame)
    return info.value


# -- valid messages -------------------------------------------------------------------------

VALID: list[Any] = [
    pytest.param(
        {"t": "hello", "token": "abc.def.ghi"},
        {"token": "abc.def.ghi"},
        id="hello-without-since",
    ),
    pytest.param(
        {"t": "hello", "token": "tok", "since": {"epoch": "e1", "offset": 41}},
        {"token": "tok", "since": {"epoch": "e1", "offset": 41}},
        id="hello-with-since",
    ),
    pytest.param(
        {"t": "hello", "token": "tok", "since": {"epoch": "e1", "offset": 0}},
        {"token": "tok", "since": {"epoch": "e1", "offset": 0}},
        id="hello-since-offset-0",
    ),
    pytest.param(
        {"t": "hello", "token": "tok", "ref": "K7PQ2M"},
        {"token": "tok", "ref": "K7PQ2M"},
        id="hello-with-ref",
    ),
    pytest.param(
        {"t": "locate", "lat": 30.27, "lng": 120}, {"lat": 30.27, "lng": 120}, id="locate"
    ),
    pytest.param(
        {"t": "choose_community", "community": "hz-1"}, {"community": "hz-1"}, id="choose"
    ),
    pytest.param(
        {
            "t": "groupbuy_open",
            "product": " Peach ",
            "price_cents": 100,
            "target": 3,
            "duration_s": 600,
        },
        {"product": "Peach", "price_cents": 100, "target": 3, "duration_s": 600},
        id="groupbuy-open",
    ),
    pytest.param(
        {"t": "groupbuy_join", "gb": "g1", "qty": 2, "inviter": "u2"},
        {"gb": "g1", "qty": 2, "inviter": "u2"},
        id="groupbuy-join",
    ),
    pytest.param({"t": "groupbuy_leave", "gb": "g1"}, {"gb": "g1"}, id="groupbuy-leave"),
    pytest.param({"t": "officer_apply"}, {}, id="officer-apply"),
    pytest.param({"t": "costream_request"}, {}, id="costream-request"),
    pytest.param({"t": "costream_accept", "user": "k1"}, {"user": "k1"}, id="costream-accept"),
    pytest.param({"t": "costream_decline", "user": "k1"}, {"user": "k1"}, id="costream-decline"),
    pytest.param({"t": "costream_end", "user": "k1"}, {"user": "k1"}, id="costream-end"),
    pytest.param({"t": "mark"}, {}, id="mark"),
    pytest.param({"t": "explain", "product": " 脐橙 "}, {"product": "脐橙"}, id="explain"),
    pytest.param({"t": "explain"}, {}, id="explain-end"),
    pytest.param({"t": "batch_pin", "batch": "tea-1"}, {"batch": "tea-1"}, id="batch-pin"),
    pytest.param({"t": "batch_unpin", "batch": "tea-1"}, {"batch": "tea-1"}, id="batch-unpin"),
    pytest.param({"t": "officer_me"}, {}, id="officer-me"),
    pytest.param(
        {"t": "commission_set", "level1_bp": 2000, "level2_bp": 500},
        {"level1_bp": 2000, "level2_bp": 500},
        id="commission-set",
    ),
    pytest.param({"t": "comment", "text": "  hi there "}, {"text": "hi there"}, id="comment"),
    pytest.param(
        {"t": "comment", "text": "hi", "cid": " c-1 "},
        {"text": "hi", "cid": "c-1"},
        id="comment-with-cid",
    ),
    pytest.param({"t": "comment", "text": "x" * 500}, {"text": "x" * 500}, id="comment-500"),
    pytest.param({"t": "like", "n": 1}, {"n": 1}, id="like-1"),
    pytest.param({"t": "like", "n": 50}, {"n": 50}, id="like-50"),
    pytest.param(
        {"t": "vote", "poll": "p1", "option": 0}, {"poll": "p1", "option": 0}, id="vote-0"
    ),
    pytest.param(
        {"t": "vote", "poll": "p1", "option": 5}, {"poll": "p1", "option": 5}, id="vote-5"
    ),
    pytest.param(
        {"t": "poll_open", "question": " Which? ", "options": [" a ", "b"]},
        {"question": "Which?", "options": ["a", "b"]},
        id="poll-open-2",
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": list("abcdef"), "duration_s": 60},
        {"question": "Q", "options": list("abcdef"), "duration_s": 60},
        id="poll-open-6-with-duration",
    ),
    pytest.param({"t": "poll_close", "poll": "p1"}, {"poll": "p1"}, id="poll-close"),
    pytest.param({"t": "delete_comment", "offset": 7}, {"offset": 7}, id="delete-comment"),
    pytest.param(
        {"t": "mute", "user": "bob", "duration_s": 600},
        {"user": "bob", "duration_s": 600},
        id="mute",
    ),
    pytest.param({"t": "pin_question", "offset": 1}, {"offset": 1}, id="pin-question"),
    pytest.param({"t": "answer_question", "offset": 2**62}, {"offset": 2**62}, id="answer"),
    pytest.param(
        {
            "t": "card",
            "kind": "product",
            "name": " Peach box ",
            "price_cents": 1999,
            "image_url": "https://img.example/p.jpg",
            "stock": 12,
        },
        {
            "kind": "product",
            "name": "Peach box",
            "price_cents": 1999,
            "image_url": "https://img.example/p.jpg",
            "stock": 12,
        },
        id="card-product",
    ),
    pytest.param(
        {
            "t": "card",
            "kind": "trace",
            "batch": "B-7",
            "origin": "Pinggu",
            "report_url": "http://lab.example/r.pdf",
            "readings": [[1700000000, 3.5], [1700000060, 4]],
        },
        {
            "kind": "trace",
            "batch": "B-7",
            "origin": "Pinggu",
            "report_url": "http://lab.example/r.pdf",
            "readings": [[1700000000, 3.5], [1700000060, 4]],
        },
        id="card-trace",
    ),
    pytest.param(
        {"t": "card", "kind": "testimonial", "author": "Li", "text": "Sweet!"},
        {"kind": "testimonial", "author": "Li", "text": "Sweet!"},
        id="card-testimonial",
    ),
    pytest.param({"t": "mark"}, {}, id="mark"),
    pytest.param({"t": "token", "token": "a.b.c"}, {"token": "a.b.c"}, id="token"),
    pytest.param({"t": "batch_pin", "batch": " B-7 "}, {"batch": "B-7"}, id="batch-pin"),
    pytest.param({"t": "batch_unpin", "batch": "B-7"}, {"batch": "B-7"}, id="batch-unpin"),
    pytest.param(
        {
            "t": "draw_open",
            "prize": " 福袋 ",
            "winners": 3,
            "duration_s": 60,
            "task": "comment",
            "phrase": "来了",
        },
        {"prize": "福袋", "winners": 3, "duration_s": 60, "task": "comment", "phrase": "来了"},
        id="draw-open",
    ),
    pytest.param({"t": "draw_enter", "draw": "d1"}, {"draw": "d1"}, id="draw-enter"),
    pytest.param({"t": "draw_roll", "draw": "d1"}, {"draw": "d1"}, id="draw-roll"),
    pytest.param(
        {"t": "flash_start", "price_cents": 990, "stock": 100, "duration_s": 60},
        {"price_cents": 990, "stock": 100, "duration_s": 60},
        id="flash-start",
    ),
    pytest.param({"t": "flash_stop", "fs": "f1"}, {"fs": "f1"}, id="flash-stop"),
    pytest.param(
        {"t": "flash_buy", "fs": "f1", "qty": 1, "key": "tap-1", "coupon": "c1"},
        {"fs": "f1", "qty": 1, "key": "tap-1", "coupon": "c1"},
        id="flash-buy",
    ),
    pytest.param(
        {"t": "coupon_create", "title": " 立减5元 ", "off_cents": 500, "quota": 10},
        {"title": "立减5元", "off_cents": 500, "quota": 10},
        id="coupon-create",
    ),
    pytest.param({"t": "coupon_claim", "cp": "c1"}, {"cp": "c1"}, id="coupon-claim"),
]


@pytest.mark.parametrize(("message", "fields"), VALID)
def test_decode_accepts_valid_messages(message: dict[str, Any], fields: dict[str, Any]) -> None:
    """Every valid client message decodes to its type and checked (trimmed) fields."""
    decoded = wire.decode(pack(message))
    assert isinstance(decoded, wire.Message)
    assert decoded.type is wire.ClientType(message["t"])
    assert decoded.fields == fields
    assert decoded.request_id is None


def test_every_client_type_has_a_valid_case() -> None:
    """The valid cases above cover every client message type."""
    covered = {param.values[0]["t"] for param in VALID}
    assert covered == {t.value for t in wire.ClientType}


@pytest.mark.parametrize("request_id", [0, 7, 2**53 - 1])
def test_decode_takes_request_id_out_of_fields(request_id: int) -> None:
    """A request id in range is returned apart from the fields."""
    decoded = wire.decode(pack({"t": "like", "n": 3, "id": request_id}))
    assert decoded.request_id == request_id
    assert decoded.fields == {"n": 3}


def test_decode_accepts_nil_request_id() -> None:
    """An explicit nil id is the same as no id."""
    decoded = wire.decode(pack({"t": "like", "n": 3, "id": None}))
    assert decoded.request_id is None
    assert decoded.fields == {"n": 3}


# -- frames that are not one msgpack map with a type ----------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="never-used-byte"),
        pytest.param(b"\x00\x00", id="two-objects"),
        pytest.param(pack({"t": "like", "n": 1})[:-1], id="truncated"),
        pytest.param(pack({"t": "comment", "text": "hello"})[:5], id="truncated-str"),
        pytest.param(pack({"t": "like", "n": 1}) + b"\x01", id="trailing-data"),
        pytest.param(pack({"t": "comment", "text": b"bytes"}), id="bin-value"),
        pytest.param(pack({1: 1, "t": "like", "n": 1}), id="int-map-key"),
        pytest.param(
            pack({"t": "comment", "text": "x", "cid": msgpack.ExtType(1, b"x")}), id="ext"
        ),
        pytest.param(b'{"t": "like", "n": 1}', id="json-text"),
    ],
)
def test_decode_refuses_non_msgpack(frame: bytes) -> None:
    """Garbage, truncated, trailing or disallowed (bin/ext/int-key) msgpack is bad_message."""
    err = refused(frame)
    assert err.code is ErrorCode.BAD_MESSAGE
    assert "msgpack" in err.message


@pytest.mark.parametrize(
    "value",
    [[{"t": "like", "n": 1}], "like", 1, None, True, 1.5],
    ids=["array", "string", "int", "nil", "bool", "float"],
)
def test_decode_refuses_non_map(value: Any) -> None:
    """A msgpack object that is not a map is bad_message."""
    err = refused(pack(value))
    assert err.code is ErrorCode.BAD_MESSAGE
    assert "map" in err.message


@pytest.mark.parametrize(
    "message",
    [{}, {"n": 1}, {"t": None, "n": 1}, {"t": 1}, {"t": ["like"]}],
    ids=["empty-map", "no-t", "nil-t", "int-t", "array-t"],
)
def test_decode_refuses_missing_type(message: dict[str, Any]) -> None:
    """A map without a string 't' is bad_message naming 't'."""
    err = refused(pack(message))
    assert err.code is ErrorCode.BAD_MESSAGE
    assert "'t'" in err.message


@pytest.mark.parametrize("kind", ["shout", "Hello", "", "snapshot", "batch", "x" * 100])
def test_decode_refuses_unknown_type(kind: str) -> None:
    """A type that is not a client message (server types included) is unknown_type."""
    err = refused(pack({"t": kind}))
    assert err.code is ErrorCode.UNKNOWN_TYPE
    assert kind[:40] in err.message
    assert len(err.message) < 100  # the echoed type is cut short


def test_unknown_type_names_the_request() -> None:
    """An unknown type's error carries the request id, like every other refusal."""
    assert refused(pack({"t": "dance", "id": 9})).request_id == 9


def test_decode_refuses_frame_over_limit() -> None:
    """A frame one byte over MAX_CLIENT_FRAME is bad_message before it is parsed."""
    err = refused(b"\x00" * (wire.MAX_CLIENT_FRAME + 1))
    assert err.code is ErrorCode.BAD_MESSAGE
    assert str(wire.MAX_CLIENT_FRAME) in err.message


def test_frame_limit_is_inclusive() -> None:
    """A frame of exactly MAX_CLIENT_FRAME is parsed (here refused for its field, not size)."""

    def comment(size: int) -> bytes:
        overhead = len(pack({"t": "mute", "duration_s": 60, "user": "x" * 1000})) - 1000
        return pack({"t": "mute", "duration_s": 60, "user": "x" * (size - overhead)})

    at_limit, over = comment(wire.MAX_CLIENT_FRAME), comment(wire.MAX_CLIENT_FRAME + 1)
    assert (len(at_limit), len(over)) == (wire.MAX_CLIENT_FRAME, wire.MAX_CLIENT_FRAME + 1)
    assert refused(at_limit).code is ErrorCode.INVALID_FIELD
    assert refused(over).code is ErrorCode.BAD_MESSAGE


# -- invalid fields -------------------------------------------------------------------------

INVALID: list[Any] = [
    pytest.param({"t": "explain", "product": "x" * 81}, "product", id="explain-too-long"),
    pytest.param({"t": "explain", "product": 7}, "product", id="explain-not-text"),
    # unknown fields
    pytest.param({"t": "like", "n": 1, "x": 1}, "x", id="unknown-field"),
    pytest.param({"t": "comment", "text": "hi", "zz": 1, "aa": 2}, "aa", id="unknown-first"),
    pytest.param({"t": "vote", "poll": "p", "option": 1, "n": 1}, "n", id="field-of-other-type"),
    pytest.param({"t": "card", "kind": "product", "color": "red"}, "color", id="card-unknown"),
    # request id
    pytest.param({"t": "like", "n": 1, "id": -1}, "id", id="id-negative"),
    pytest.param({"t": "like", "n": 1, "id": 2**53}, "id", id="id-too-big"),
    pytest.param({"t": "like", "n": 1, "id": True}, "id", id="id-bool"),
    pytest.param({"t": "like", "n": 1, "id": 1.0}, "id", id="id-float"),
    pytest.param({"t": "like", "n": 1, "id": "1"}, "id", id="id-string"),
    # hello
    pytest.param({"t": "hello"}, "token", id="hello-no-token"),
    pytest.param({"t": "hello", "token": ""}, "token", id="hello-empty-token"),
    pytest.param({"t": "hello", "token": "x" * 2049}, "token", id="hello-long-token"),
    pytest.param({"t": "hello", "token": 1}, "token", id="hello-int-token"),
    pytest.param({"t": "hello", "token": "t", "since": 41}, "since", id="since-not-map"),
    pytest.param({"t": "hello", "token": "t", "since": {"epoch": "e"}}, "since", id="since-half"),
    pytest.param(
        {"t": "hello", "token": "t", "since": {"epoch": "e", "offset": 1, "x": 1}},
        "since",
        id="since-extra-key",
    ),
    pytest.param(
        {"t": "hello", "token": "t", "since": {"epoch": "e", "offset": -1}},
        "offset",
        id="since-negative-offset",
    ),
    pytest.param(
        {"t": "hello", "token": "t", "since": {"epoch": "e", "offset": True}},
        "offset",
        id="since-bool-offset",
    ),
    pytest.param(
        {"t": "hello", "token": "t", "since": {"epoch": "e" * 65, "offset": 1}},
        "epoch",
        id="since-long-epoch",
    ),
    # comment
    pytest.param({"t": "comment"}, "text", id="comment-no-text"),
    pytest.param({"t": "mute", "user": "a b", "duration_s": 60}, "user", id="mute-alphabet"),
    pytest.param({"t": "comment", "text": 5}, "text", id="comment-int"),
    pytest.param({"t": "comment", "text": "hi", "cid": "c" * 65}, "cid", id="cid-65"),
    pytest.param({"t": "comment", "text": "hi", "cid": 3}, "cid", id="cid-int"),
    # like
    pytest.param({"t": "like"}, "n", id="like-no-n"),
    pytest.param({"t": "like", "n": 0}, "n", id="like-0"),
    pytest.param({"t": "like", "n": 51}, "n", id="like-51"),
    pytest.param({"t": "like", "n": True}, "n", id="like-bool"),
    pytest.param({"t": "like", "n": 1.0}, "n", id="like-float"),
    pytest.param({"t": "like", "n": "1"}, "n", id="like-string"),
    # vote
    pytest.param({"t": "vote", "poll": "p", "option": 6}, "option", id="vote-6"),
    pytest.param({"t": "vote", "poll": "p", "option": -1}, "option", id="vote-negative"),
    pytest.param({"t": "vote", "poll": "p", "option": False}, "option", id="vote-bool"),
    pytest.param({"t": "vote", "option": 1}, "poll", id="vote-no-poll"),
    pytest.param({"t": "vote", "poll": "p" * 65, "option": 1}, "poll", id="vote-long-poll"),
    # poll_open
    pytest.param({"t": "poll_open", "question": "Q", "options": ["a"]}, "options", id="1-option"),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": list("abcdefg")}, "options", id="7-options"
    ),
    pytest.param({"t": "poll_open", "question": "Q", "options": "ab"}, "options", id="opts-str"),
    pytest.param({"t": "poll_open", "question": "Q"}, "options", id="no-options"),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": ["a", "  "]}, "options[1]", id="blank-opt"
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": ["a", 2]}, "options[1]", id="int-option"
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": ["x" * 61, "b"]},
        "options[0]",
        id="long-option",
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q" * 141, "options": ["a", "b"]},
        "question",
        id="long-question",
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": ["a", "b"], "duration_s": 4},
        "duration_s",
        id="duration-short",
    ),
    pytest.param(
        {"t": "poll_open", "question": "Q", "options": ["a", "b"], "duration_s": 86401},
        "duration_s",
        id="duration-long",
    ),
    # poll_close, delete_comment, pin/answer_question, mute
    pytest.param({"t": "poll_close"}, "poll", id="close-no-poll"),
    pytest.param({"t": "delete_comment", "offset": 0}, "offset", id="delete-offset-0"),
    pytest.param({"t": "pin_question", "offset": "1"}, "offset", id="pin-offset-string"),
    pytest.param({"t": "answer_question"}, "offset", id="answer-no-offset"),
    pytest.param({"t": "answer_question", "offset": 2**62 + 1}, "offset", id="answer-huge"),
    pytest.param({"t": "mute", "duration_s": 60}, "user", id="mute-no-user"),
    pytest.param({"t": "mute", "user": "u", "duration_s": 9}, "duration_s", id="mute-short"),
    pytest.param({"t": "mute", "user": "u", "duration_s": 604801}, "duration_s", id="mute-long"),
    # card (the details are in test_cards.py)
    pytest.param({"t": "card", "kind": "coupon"}, "kind", id="card-kind"),
    pytest.param({"t": "card", "name": "x", "price_cents": 1}, "kind", id="card-no-kind"),
    pytest.param(
        {"t": "card", "kind": "product", "name": "x", "price_cents": 1.5},
        "price_cents",
        id="card-float-price",
    ),
    pytest.param(
        {"t": "card", "kind": "testimonial", "author": "a", "text": "t", "batch": "b"},
        "batch",
        id="card-field-of-other-kind",
    ),
    pytest.param({"t": "draw_open", "winners": 1, "duration_s": 60}, "prize", id="draw-no-prize"),
    pytest.param({"t": "draw_open", "prize": "p", "seed": "00"}, "seed", id="draw-own-seed"),
    pytest.param({"t": "draw_enter", "draw": ""}, "draw", id="draw-enter-blank"),
    pytest.param({"t": "draw_roll"}, "draw", id="draw-roll-none"),
    pytest.param(
        {"t": "flash_start", "stock": 1, "duration_s": 60}, "price_cents", id="flash-no-price"
    ),
    pytest.param(
        {"t": "flash_start", "price_cents": 1, "stock": 1, "duration_s": 60, "product": "p"},
        "product",
        id="flash-own-product",
    ),
    pytest.param({"t": "flash_buy", "fs": "f1", "qty": 0}, "qty", id="flash-buy-zero"),
    pytest.param({"t": "flash_buy", "fs": "f1", "key": "a b"}, "key", id="flash-buy-bad-key"),
    pytest.param(
        {"t": "coupon_create", "title": "t", "off_cents": 1, "quota": 0},
        "quota",
        id="coupon-no-quota",
    ),
    pytest.param({"t": "coupon_claim", "cp": ""}, "cp", id="coupon-claim-blank"),
]


@pytest.mark.parametrize(("message", "field"), INVALID)
def test_decode_refuses_invalid_fields(message: dict[str, Any], field: str) -> None:
    """Missing, unknown, mistyped or out-of-range fields are invalid_field naming the field."""
    err = refused(pack(message))
    assert err.code is ErrorCode.INVALID_FIELD
    assert err.message.startswith(f"{field}: "), err.message


# -- robustness: decode never raises anything but LivecoreError ------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(
            st.text(max_size=8) | st.integers(min_value=-3, max_value=3), children, max_size=6
        )
    ),
    max_leaves=24,
)
# The fields each type may carry (docs/protocol.md), to reach the field checks.
_TYPE_FIELDS: dict[str, list[str]] = {
    "hello": ["token", "since"],
    "comment": ["text", "cid"],
    "like": ["n"],
    "vote": ["poll", "option"],
    "poll_open": ["question", "options", "duration_s"],
    "poll_close": ["poll"],
    "delete_comment": ["offset"],
    "mute": ["user", "duration_s"],
    "pin_question": ["offset"],
    "answer_question": ["offset"],
    "card": sorted(wire.CARD_FIELDS),
}
_ALL_FIELDS = sorted({f for fields in _TYPE_FIELDS.values() for f in fields} | {"t", "epoch"})
# Near-valid values (short strings, small ints, string lists, pairs) without bin or int keys,
# so most examples get past the parser into the field checks.
_plain_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=70)
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["product", "trace", "testimonial", "https://x", "http://", " ", "p1"])
)
_plain = st.recursive(
    _plain_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_field_values = (
    _plain
    | st.lists(st.text(min_size=1, max_size=70), max_size=8)
    | st.fixed_dictionaries({"epoch": _plain, "offset": _plain})
    | st.lists(st.lists(_plain_scalars, max_size=3), max_size=55)
    | _values
)
_typed_messages = st.sampled_from(sorted(_TYPE_FIELDS)).flatmap(
    lambda t: st.dictionaries(
        st.sampled_from([*_TYPE_FIELDS[t], "id"]), _field_values, max_size=6
    ).map(lambda fields: {"t": t, **fields})
)
_any_field_messages = st.builds(
    lambda t, fields: {"t": t, **fields},
    st.sampled_from(sorted(_TYPE_FIELDS)),
    st.dictionaries(st.sampled_from(_ALL_FIELDS), _field_values, max_size=6),
)
_messages = _typed_messages | _any_field_messages


def _decode_or_refuse(frame: bytes) -> None:
    """decode() returns a Message or raises LivecoreError; anything else fails the test."""
    try:
        message = wire.decode(frame)
    except LivecoreError as err:
        assert err.code in {
            ErrorCode.BAD_MESSAGE,
            ErrorCode.UNKNOWN_TYPE,
            ErrorCode.INVALID_FIELD,
        }
    else:
        assert isinstance(message, wire.Message)
        assert isinstance(message.type, wire.ClientType)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes(frame: bytes) -> None:
    """Arbitrary bytes decode to a Message or raise LivecoreError, never another exception."""
    _decode_or_refuse(frame)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_decode_arbitrary_msgpack_values(value: Any) -> None:
    """Any msgpack-encoded nested value decodes to a Message or raises LivecoreError."""
    _decode_or_refuse(pack(value))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_messages)
def test_decode_arbitrary_typed_messages(message: dict[str, Any]) -> None:
    """Maps with a real type and odd field values reach the field checks and stay in contract."""
    _decode_or_refuse(pack(message))

"""The room channel's vocabulary: subprotocol, frame limit, close codes, message types.

One place names every close code, client and server message type and
durable event type; docs/protocol.md has a table for each, and
tests/test_docs.py checks the tables list exactly these members.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

SUBPROTOCOL = "livecore.v1"
#: Largest client frame the server reads; bigger ones close the connection (1009).
MAX_CLIENT_FRAME = 8 * 1024


class CloseCode(IntEnum):
    """Websocket close codes the server uses (RFC 6455 §7.4; 4000-4999 are ours)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # the node is shutting down: reconnect (to another node)
    PROTOCOL_ERROR = 1002  # not a websocket frame (garbage after the upgrade)
    UNSUPPORTED_DATA = 1003  # a text frame: the protocol is binary msgpack
    MESSAGE_TOO_BIG = 1009  # a frame over MAX_CLIENT_FRAME
    INTERNAL_ERROR = 1011
    BAD_HELLO = 4000  # first message was not a valid hello
    UNAUTHORIZED = 4001  # the hello's token was refused; the reason names the token error
    HELLO_TIMEOUT = 4002  # no hello within --hello-timeout seconds
    ROOM_NOT_FOUND = 4004
    SLOW_CONSUMER = 4008  # send buffer over its byte limit: reconnect and recover
    RESYNC = 4009  # the room's history was reset (new epoch): reconnect for a snapshot
    #: The session's token expired: reconnect (or refresh in time) with a new one.
    TOKEN_EXPIRED = 4003
    #: The session's token (its jti, its user, or its role in the room) was revoked:
    #: do not reconnect with it.
    REVOKED = 4005
    #: This user already holds --ws-max-per-user connections on the node.
    TOO_MANY_CONNECTIONS = 4010
    TOO_MANY_ERRORS = 4029  # repeated bad messages or rate-limit abuse


class ClientType(StrEnum):
    """Messages a client may send (after ``hello``); roles are checked by the hub."""

    HELLO = "hello"
    TOKEN = "token"
    COMMENT = "comment"
    LIKE = "like"
    VOTE = "vote"
    POLL_OPEN = "poll_open"
    POLL_CLOSE = "poll_close"
    DELETE_COMMENT = "delete_comment"
    MUTE = "mute"
    PIN_QUESTION = "pin_question"
    ANSWER_QUESTION = "answer_question"
    CARD = "card"
    LOCATE = "locate"
    CHOOSE_COMMUNITY = "choose_community"
    GROUPBUY_OPEN = "groupbuy_open"
    GROUPBUY_JOIN = "groupbuy_join"
    GROUPBUY_LEAVE = "groupbuy_leave"
    OFFICER_APPLY = "officer_apply"
    OFFICER_ME = "officer_me"
    COMMISSION_SET = "commission_set"
    COSTREAM_REQUEST = "costream_request"
    COSTREAM_ACCEPT = "costream_accept"
    COSTREAM_DECLINE = "costream_decline"
    COSTREAM_END = "costream_end"
    MARK = "mark"
    EXPLAIN = "explain"
    BATCH_PIN = "batch_pin"
    BATCH_UNPIN = "batch_unpin"
    FLASH_START = "flash_start"
    FLASH_STOP = "flash_stop"
    FLASH_BUY = "flash_buy"
    COUPON_CREATE = "coupon_create"
    COUPON_CLAIM = "coupon_claim"
    DRAW_OPEN = "draw_open"
    DRAW_ENTER = "draw_enter"
    DRAW_ROLL = "draw_roll"


class ServerType(StrEnum):
    """Messages the server sends."""

    SNAPSHOT = "snapshot"
    RECOVERED = "recovered"
    BATCH = "batch"
    ACK = "ack"
    ERROR = "error"


class EventType(StrEnum):
    """Durable room events: each has an offset in the room's stream."""

    COMMENT = "comment"
    COMMENT_DELETED = "comment_deleted"
    USER_MUTED = "user_muted"
    QUESTION_PINNED = "question_pinned"
    QUESTION_ANSWERED = "question_answered"
    POLL_OPENED = "poll_opened"
    POLL_CLOSED = "poll_closed"
    CARD = "card"
    SENSOR = "sensor"
    GROUPBUY_OPENED = "groupbuy_opened"
    GROUPBUY_FORMED = "groupbuy_formed"
    GROUPBUY_FAILED = "groupbuy_failed"
    GROUPBUY_REPRICED = "groupbuy_repriced"
    GROUPBUY_CLOSED = "groupbuy_closed"
    STREAM_STARTED = "stream_started"
    STREAM_ENDED = "stream_ended"
    COSTREAM_REQUESTED = "costream_requested"
    COSTREAM_ACCEPTED = "costream_accepted"
    COSTREAM_DECLINED = "costream_declined"
    COSTREAM_ENDED = "costream_ended"
    CLIP_READY = "clip_ready"
    ROOM_ENDED = "room_ended"
    FLASH_STARTED = "flash_started"
    FLASH_SOLD_OUT = "flash_sold_out"
    FLASH_ENDED = "flash_ended"
    COUPON_CREATED = "coupon_created"
    DRAW_OPENED = "draw_opened"
    DRAW_DRAWN = "draw_drawn"

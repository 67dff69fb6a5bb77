"""One vocabulary of error codes for HTTP and websocket answers.

Every refusal the server makes carries one of these stable codes and a
human-readable message; docs/protocol.md lists them all (a test checks that
the list there matches this enum).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable, machine-readable error codes (never renamed once released)."""

    BAD_REQUEST = "bad_request"
    BODY_TOO_LARGE = "body_too_large"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    INVALID_FIELD = "invalid_field"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ROOM_NOT_FOUND = "room_not_found"
    ROOM_EXISTS = "room_exists"
    ROOM_ENDED = "room_ended"
    TOKEN_MISSING = "token_missing"
    TOKEN_MALFORMED = "token_malformed"
    TOKEN_BAD_SIGNATURE = "token_bad_signature"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_WRONG_ROOM = "token_wrong_room"
    TOKEN_WRONG_ROLE = "token_wrong_role"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    TOKEN_REVOKED = "token_revoked"
    TOKEN_LIFETIME = "token_lifetime"
    TOKEN_UNKNOWN_KEY = "token_unknown_key"
    TOKEN_KEY_SCOPE = "token_key_scope"
    RATE_LIMITED = "rate_limited"
    BAD_MESSAGE = "bad_message"
    UNKNOWN_TYPE = "unknown_type"
    COMMENT_FILTERED = "comment_filtered"
    MUTED = "muted"
    COMMENT_NOT_FOUND = "comment_not_found"
    POLL_NOT_FOUND = "poll_not_found"
    POLL_CLOSED = "poll_closed"
    TOO_MANY_POLLS = "too_many_polls"
    GROUPBUY_NOT_FOUND = "groupbuy_not_found"
    GROUPBUY_CLOSED = "groupbuy_closed"
    GROUP_FORMED = "group_formed"
    QUANTITY_LIMIT = "quantity_limit"
    NO_COMMUNITY = "no_community"
    UNKNOWN_COMMUNITY = "unknown_community"
    COMMUNITY_FIXED = "community_fixed"
    UNKNOWN_REFERRER = "unknown_referrer"
    SELF_REFERRAL = "self_referral"
    NOT_A_BUYER = "not_a_buyer"
    OTHER_GROUP = "other_group"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_REFUNDED = "order_refunded"
    BAD_SDP = "bad_sdp"
    BAD_SDPFRAG = "bad_sdpfrag"
    ICE_RESTART_REFUSED = "ice_restart_refused"
    PRECONDITION_FAILED = "precondition_failed"
    PRECONDITION_REQUIRED = "precondition_required"
    STREAM_NOT_FOUND = "stream_not_found"
    SESSION_NOT_FOUND = "session_not_found"
    NOT_ACCEPTED = "not_accepted"
    NODE_FULL = "node_full"
    NO_REQUEST = "no_request"
    COSTREAM_FULL = "costream_full"
    BATCH_NOT_FOUND = "batch_not_found"
    BATCH_EXISTS = "batch_exists"
    BATCH_FULL = "batch_full"
    OUT_OF_ORDER = "out_of_order"
    CHAIN_CONFLICT = "chain_conflict"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    REPORT_NOT_FOUND = "report_not_found"
    TOKEN_WRONG_BATCH = "token_wrong_batch"
    NOT_BATCH_OWNER = "not_batch_owner"
    STORE_UNAVAILABLE = "store_unavailable"
    CLIP_NOT_FOUND = "clip_not_found"
    MEDIA_NOT_FOUND = "media_not_found"
    MEDIA_UNAVAILABLE = "media_unavailable"
    HLS_BAD_DIRECTIVE = "hls_bad_directive"
    HLS_TOO_FAR = "hls_too_far"
    NOT_RECORDING = "not_recording"
    FLASH_NOT_FOUND = "flash_not_found"
    FLASH_NOT_STARTED = "flash_not_started"
    FLASH_ENDED = "flash_ended"
    FLASH_SOLD_OUT = "flash_sold_out"
    FLASH_LIMIT = "flash_limit"
    FLASH_BUSY = "flash_busy"
    NO_PINNED_PRODUCT = "no_pinned_product"
    COUPON_NOT_FOUND = "coupon_not_found"
    COUPON_GONE = "coupon_gone"
    COUPON_LIMIT = "coupon_limit"
    COUPON_TASK = "coupon_task"
    COUPON_NOT_HELD = "coupon_not_held"
    COUPON_MINIMUM = "coupon_minimum"
    TOO_MANY_COUPONS = "too_many_coupons"
    ROOM_NOT_LIVE = "room_not_live"
    DRAW_NOT_FOUND = "draw_not_found"
    DRAW_OPEN = "draw_open"
    DRAW_CLOSED = "draw_closed"
    DRAW_TASK = "draw_task"
    DRAW_FULL = "draw_full"
    TOO_MANY_DRAWS = "too_many_draws"
    PICKUP_NOT_FOUND = "pickup_not_found"
    PICKUP_REDEEMED = "pickup_redeemed"
    RESERVATIONS_FULL = "reservations_full"
    NOT_PINNED = "not_pinned"
    INTERNAL = "internal"


#: HTTP status that goes with each code.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.HEADERS_TOO_LARGE: 431,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.INVALID_FIELD: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.ROOM_NOT_FOUND: 404,
    ErrorCode.ROOM_EXISTS: 409,
    ErrorCode.ROOM_ENDED: 409,
    ErrorCode.TOKEN_MISSING: 401,
    ErrorCode.TOKEN_MALFORMED: 401,
    ErrorCode.TOKEN_BAD_SIGNATURE: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.TOKEN_WRONG_ROOM: 403,
    ErrorCode.TOKEN_WRONG_ROLE: 403,
    ErrorCode.TOKEN_NOT_YET_VALID: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.TOKEN_LIFETIME: 401,
    ErrorCode.TOKEN_UNKNOWN_KEY: 401,
    ErrorCode.TOKEN_KEY_SCOPE: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.COMMENT_FILTERED: 422,
    ErrorCode.MUTED: 403,
    ErrorCode.COMMENT_NOT_FOUND: 404,
    ErrorCode.POLL_NOT_FOUND: 404,
    ErrorCode.POLL_CLOSED: 409,
    ErrorCode.TOO_MANY_POLLS: 409,
    ErrorCode.GROUPBUY_NOT_FOUND: 404,
    ErrorCode.GROUPBUY_CLOSED: 409,
    ErrorCode.GROUP_FORMED: 409,
    ErrorCode.QUANTITY_LIMIT: 422,
    ErrorCode.NO_COMMUNITY: 409,
    ErrorCode.UNKNOWN_COMMUNITY: 404,
    ErrorCode.COMMUNITY_FIXED: 409,
    ErrorCode.UNKNOWN_REFERRER: 404,
    ErrorCode.SELF_REFERRAL: 422,
    ErrorCode.NOT_A_BUYER: 403,
    ErrorCode.OTHER_GROUP: 409,
    ErrorCode.ORDER_NOT_FOUND: 404,
    ErrorCode.ORDER_REFUNDED: 409,
    ErrorCode.BAD_SDP: 400,
    ErrorCode.BAD_SDPFRAG: 400,
    ErrorCode.ICE_RESTART_REFUSED: 422,
    ErrorCode.PRECONDITION_FAILED: 412,
    ErrorCode.PRECONDITION_REQUIRED: 428,
    ErrorCode.STREAM_NOT_FOUND: 404,
    ErrorCode.SESSION_NOT_FOUND: 404,
    ErrorCode.NOT_ACCEPTED: 403,
    ErrorCode.NODE_FULL: 503,
    ErrorCode.NO_REQUEST: 404,
    ErrorCode.COSTREAM_FULL: 409,
    ErrorCode.BATCH_NOT_FOUND: 404,
    ErrorCode.BATCH_EXISTS: 409,
    ErrorCode.BATCH_FULL: 409,
    ErrorCode.OUT_OF_ORDER: 409,
    ErrorCode.CHAIN_CONFLICT: 409,
    ErrorCode.OUT_OF_RANGE: 422,
    ErrorCode.BAD_TIMESTAMP: 422,
    ErrorCode.REPORT_NOT_FOUND: 404,
    ErrorCode.TOKEN_WRONG_BATCH: 403,
    ErrorCode.NOT_BATCH_OWNER: 403,
    ErrorCode.STORE_UNAVAILABLE: 503,
    ErrorCode.CLIP_NOT_FOUND: 404,
    ErrorCode.MEDIA_NOT_FOUND: 404,
    ErrorCode.MEDIA_UNAVAILABLE: 503,
    ErrorCode.HLS_BAD_DIRECTIVE: 400,
    ErrorCode.HLS_TOO_FAR: 400,
    ErrorCode.NOT_RECORDING: 409,
    ErrorCode.FLASH_NOT_FOUND: 404,
    ErrorCode.FLASH_NOT_STARTED: 409,
    ErrorCode.FLASH_ENDED: 409,
    ErrorCode.FLASH_SOLD_OUT: 409,
    ErrorCode.FLASH_LIMIT: 409,
    ErrorCode.FLASH_BUSY: 409,
    ErrorCode.NO_PINNED_PRODUCT: 409,
    ErrorCode.COUPON_NOT_FOUND: 404,
    ErrorCode.COUPON_GONE: 409,
    ErrorCode.COUPON_LIMIT: 409,
    ErrorCode.COUPON_TASK: 409,
    ErrorCode.COUPON_NOT_HELD: 409,
    ErrorCode.COUPON_MINIMUM: 409,
    ErrorCode.TOO_MANY_COUPONS: 409,
    ErrorCode.ROOM_NOT_LIVE: 409,
    ErrorCode.DRAW_NOT_FOUND: 404,
    ErrorCode.DRAW_OPEN: 409,
    ErrorCode.DRAW_CLOSED: 409,
    ErrorCode.DRAW_TASK: 409,
    ErrorCode.DRAW_FULL: 409,
    ErrorCode.TOO_MANY_DRAWS: 409,
    ErrorCode.PICKUP_NOT_FOUND: 404,
    ErrorCode.PICKUP_REDEEMED: 409,
    ErrorCode.RESERVATIONS_FULL: 409,
    ErrorCode.NOT_PINNED: 409,
    ErrorCode.INTERNAL: 500,
}


class LivecoreError(Exception):
    """A refusal with a stable code and a message meant for a person."""

    def __init__(
        self, code: ErrorCode, message: str, *, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        #: When the caller may try again (HTTP ``Retry-After``), if the refusal knows.
        self.retry_after_s = retry_after_s
        #: The websocket request this refuses, when known (set by the decoder).
        self.request_id: int | None = None

    @property
    def http_status(self) -> int:
        """The HTTP status this error is answered with."""
        return HTTP_STATUS[self.code]

    def to_dict(self) -> dict[str, str]:
        """The JSON body of an error answer: ``{"code": ..., "message": ...}``."""
        return {"code": self.code.value, "message": self.message}

"""Joining decisions without a network: the hello's token and whether a gap can be replayed."""

from __future__ import annotations

import time

import pytest

from livecore import tokens
from livecore.errors import ErrorCode, LivecoreError
from signalling.hub.joins import can_recover, check_hello

SECRET = b"s" * 32


def test_admin_tokens_do_not_join() -> None:
    """An admin token is refused even for the right room."""
    token = tokens.mint(SECRET, role=tokens.Role.ADMIN, room="*", user="a", ttl_s=60)
    with pytest.raises(LivecoreError) as info:
        check_hello(SECRET, token, now=time.time(), room="r")
    assert info.value.code is ErrorCode.TOKEN_WRONG_ROLE


def test_viewer_token_joins_its_room() -> None:
    """A viewer's token for the room yields its claims."""
    token = tokens.mint(SECRET, role=tokens.Role.VIEWER, room="r", user="u", ttl_s=60)
    assert check_hello(SECRET, token, now=time.time(), room="r").user == "u"


def test_can_recover() -> None:
    """Same epoch and a position inside the held history: replayable; else a snapshot."""
    assert can_recover({"epoch": "e", "offset": 5}, "e", 10, 3)
    assert can_recover({"epoch": "e", "offset": 2}, "e", 10, 3)  # next event (3) is held
    assert not can_recover({"epoch": "e", "offset": 1}, "e", 10, 3)  # 2 was trimmed
    assert not can_recover({"epoch": "x", "offset": 5}, "e", 10, 3)
    assert not can_recover({"epoch": "e", "offset": 11}, "e", 10, 3)

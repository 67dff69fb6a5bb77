"""Export of a past room from its event stream in a real Valkey."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest
import redis.asyncio

from livecore.audience.export import events_key, export_room
from livecore.audience.trace import HOST, Kind, read_trace


async def test_export_reads_the_history(aredis: redis.asyncio.Redis, tmp_path: Path) -> None:
    """Comments become anonymous clients with their times; host actions become markers."""
    history = [
        {"t": "comment", "user": "u-1", "role": "viewer", "text": "hi", "ts": 1_000_000},
        {"t": "card", "card": {"kind": "product", "name": "橙子", "price_cents": 2990}},
        {"t": "comment", "user": "u-2", "role": "viewer", "text": "多少钱", "ts": 1_004_500},
        {"t": "comment", "user": "u-1", "role": "viewer", "text": "买", "ts": 1_006_000},
        {"t": "comment", "user": "boss", "role": "host", "text": "welcome", "ts": 1_007_000},
        {"t": "poll_opened", "poll": "p1", "question": "?", "options": ["a", "b"]},
    ]
    for offset, event in enumerate(history, start=1):
        await aredis.xadd(events_key("shop"), {"d": msgpack.packb(event)}, id=f"{offset}-0")
    trace = await export_room(aredis, "shop", tmp_path / "shop.lctrace")
    back = read_trace(tmp_path / "shop.lctrace")
    assert back.events == trace.events and back.source == "exported"
    assert [(e.t_ms, e.client, e.kind, e.value) for e in back.events] == [
        (0, 1, Kind.JOIN, 0), (0, 1, Kind.COMMENT, 2), (0, HOST, Kind.PRODUCT_PIN, 2990),
        (4500, 2, Kind.JOIN, 0), (4500, 2, Kind.COMMENT, 3), (6000, 1, Kind.COMMENT, 1),
        (7000, HOST, Kind.POLL_OPEN, 2)]  # fmt: skip


async def test_export_of_an_unknown_room_is_empty(aredis: redis.asyncio.Redis,
                                                  tmp_path: Path) -> None:  # fmt: skip
    """No history, no events (the CLI then exits 1)."""
    trace = await export_room(aredis, "nobody", tmp_path / "x.lctrace")
    assert trace.events == []


def test_the_command_says_ok_only_for_a_room_with_events(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m loadtests export` on a room with no history: ok false, exit 1."""
    from loadtests.export import main

    assert main(["nobody-here", "--redis", redis_url, "--out", str(tmp_path / "t")]) == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == {"ok": False, "reason": "room nobody-here has no events"}

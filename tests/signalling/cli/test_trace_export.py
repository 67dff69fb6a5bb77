"""``livecore trace export ROOM``: a past room's history as a load-test trace."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
import redis.asyncio

from livecore.audience.trace import Kind, read_trace
from livecore.store.bus import Bus
from signalling.cli.commands import main


async def test_export_writes_the_rooms_talkers(
    redis_url: str, aredis: redis.asyncio.Redis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comments become anonymous clients' comments (lengths only); an empty room exits 1."""
    bus = Bus(aredis)
    for i, (user, text) in enumerate([("amy", "好吃吗"), ("bob", "还有吗?"), ("amy", "参团")]):
        event = {"t": "comment", "user": user, "text": text, "ts": 1_800_000_000_000 + i * 1000}
        await bus.emit("r1", msgpack.packb(event))
    out = tmp_path / "r1.lctrace"
    code = await _run(["trace", "export", "r1", "--redis", redis_url, "--out", str(out)])
    trace = read_trace(out)
    assert code == 0 and f"wrote {len(trace.events)} events" in capsys.readouterr().out
    comments = [e for e in trace.events if e.kind == Kind.COMMENT]
    assert [c.value for c in comments] == [3, 4, 2]
    assert len({c.client for c in comments}) == 2
    assert [e.kind for e in trace.events].count(Kind.JOIN) == 2  # a join at each first comment
    empty = await _run(["trace", "export", "nobody", "--redis", redis_url, "--out", str(out)])
    assert empty == 1 and "no events" in capsys.readouterr().err
    bad = await _run(["trace", "export", "no room!", "--redis", redis_url, "--out", str(out)])
    assert bad == 2


async def _run(argv: list[str]) -> int:
    import asyncio

    return await asyncio.to_thread(main, argv)

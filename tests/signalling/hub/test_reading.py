"""A room's shared reading: visitors share one store read of the room, and each
is still exactly at what the room flushed (no event lost, none twice)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from clients.python.room import RoomClient
from signalling.hub.reading import SHARE_EVENTS, SHARE_S, Reading


def comment(offset: int) -> dict[str, Any]:
    return {"o": offset, "t": "comment", "text": f"c{offset}"}


def test_a_reading_being_read_keeps_every_flushed_event() -> None:
    """While it is read, its offset is unknown: every flushed event is kept (the
    ones it already reflects are dropped when it is ready)."""
    reading = Reading(started=0.0)
    reading.collect([comment(4), comment(5)])
    assert [e["o"] for e in reading.events] == [4, 5] and not reading.fresh(0.0)
    reading.offset, reading.ready = 5, True
    reading.collect([comment(5), comment(6)])
    assert [e["o"] for e in reading.events] == [4, 5, 6]
    assert reading.fresh(SHARE_S - 0.01) and not reading.fresh(SHARE_S)


def test_other_events_than_comments_retire_a_reading_for_new_visitors() -> None:
    """A card (or any event a snapshot does not fold in) makes the next visitor read
    afresh; the visitors already given it still collect the event."""
    reading = Reading(started=0.0, offset=1, ready=True)
    reading.collect([{"o": 2, "t": "card", "card": {"kind": "product"}}])
    assert reading.outdated and not reading.fresh(0.0)
    assert [e["o"] for e in reading.events] == [2]


def test_a_reading_is_bounded() -> None:
    reading = Reading(started=0.0, offset=0, ready=True)
    reading.collect([comment(o) for o in range(1, SHARE_EVENTS + 2)])
    assert reading.overflowed and reading.events == [] and not reading.fresh(0.0)
    reading.collect([comment(SHARE_EVENTS + 2)])
    assert reading.events == []  # an overflowed reading collects nothing more


def _reads(url: str) -> int:
    """XREVRANGE calls the store has served (a reading reads recent events once)."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return int(stats.get("cmdstat_xrevrange", {}).get("calls", 0))


async def test_visitors_arriving_together_share_one_reading(connect: Any, redis_url: str) -> None:
    """12 viewers joining at once read the room's state once between them, and
    all get the same comments."""
    host = await connect("host", "h1")
    for i in range(3):
        await host.request("comment", text=f"hello {i}")
    seen = 0
    while seen < 3:  # flushed (a snapshot holds what the room flushed, not what was acked)
        seen += (await host.next_event())["t"] == "comment"
    before = _reads(redis_url)
    viewers = await asyncio.gather(*(connect("viewer", f"v{i}") for i in range(12)))
    assert _reads(redis_url) - before <= 2  # one reading (two if one expired meanwhile)
    texts = {tuple(c["text"] for c in v.snapshot["comments"]) for v in viewers}
    assert texts == {("hello 0", "hello 1", "hello 2")}


async def test_visitors_during_a_comment_stream_miss_nothing(connect: Any) -> None:
    """The host comments 60 times (at its connection's 20 messages/s) while 16
    viewers arrive one by one (sharing readings that grow older as the comments
    come). Each viewer's snapshot holds
    exactly the last comments up to its offset, and every later comment reaches it
    once, in order (the client raises on a gap)."""
    host = await connect("host", "h1")
    acked: list[int] = []

    async def stream() -> None:
        for i in range(60):
            acked.append((await host.request("comment", text=f"c{i}"))["o"])
            await asyncio.sleep(0.05)  # the pace of the host's rate limit

    streaming = asyncio.create_task(stream())
    viewers: list[RoomClient] = []
    while not streaming.done() and len(viewers) < 16:
        viewers.append(await connect("viewer", f"v{len(viewers)}"))
        await asyncio.sleep(0.1)  # pace the arrivals over the stream
    await streaming
    last = acked[-1]
    for viewer in viewers:
        start = viewer.snapshot["offset"]
        shown = [c["o"] for c in viewer.snapshot["comments"]]
        assert shown == [o for o in acked if o <= start][-50:], (start, shown)
        seen: list[int] = []
        at = start
        while at < last:
            event = await viewer.next_event()
            at = event.get("o", at)
            if event["t"] == "comment":
                seen.append(event["o"])
        assert seen == [o for o in acked if o > start]

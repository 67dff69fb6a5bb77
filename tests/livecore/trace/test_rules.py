"""Batch, event and reading rules: what is accepted and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from livecore.errors import ErrorCode, LivecoreError
from livecore.trace import events, series

NOW = 1_800_000_000.0
FARM = {"name": "3号地块", "lat": 21.95, "lng": 100.45}


def refused(code: ErrorCode, fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(LivecoreError) as info:
        fn(*args, **kw)
    assert info.value.code is code, info.value.message
    return info.value.message


def ev(**kw: Any) -> dict[str, Any]:
    return {"type": "planted", "at": NOW - 60, "place": FARM, "actor": "岩温", **kw}


def test_registration_defaults_the_cold_chain_band() -> None:
    """A batch without thresholds gets 0–8 °C for the cold chain."""
    batch, record = events.parse_registration(
        {"id": "b1", "product": "茶", "brand": "本味", "origin": "勐海"}, now=NOW
    )
    assert batch == "b1" and record["data"]["thresholds"]["cold_chain_c"] == [0.0, 8.0]


def test_events_are_checked() -> None:
    """Types, times, places, physical ranges and unknown fields are refused by name."""
    assert events.parse_event(ev(), now=NOW)["type"] == "planted"
    refused(ErrorCode.INVALID_FIELD, events.parse_event, ev(type="registered"), now=NOW)
    refused(ErrorCode.BAD_TIMESTAMP, events.parse_event, ev(at=NOW + 3600), now=NOW)
    refused(ErrorCode.BAD_TIMESTAMP, events.parse_event, ev(at=NOW - 4 * 366 * 86400), now=NOW)
    refused(
        ErrorCode.OUT_OF_RANGE,
        events.parse_event,
        ev(place={"name": "x", "lat": 91, "lng": 0}),
        now=NOW,
    )
    hot = ev(type="processed", data={"workshop_temp_c": 95, "workshop_humidity_pct": 50})
    assert "workshop_temp_c" in refused(ErrorCode.OUT_OF_RANGE, events.parse_event, hot, now=NOW)
    refused(ErrorCode.INVALID_FIELD, events.parse_event, ev(type="processed"), now=NOW)
    refused(ErrorCode.INVALID_FIELD, events.parse_event, ev(data={"colour": "red"}), now=NOW)
    refused(ErrorCode.INVALID_FIELD, events.parse_event, {**ev(), "extra": 1}, now=NOW)
    refused(
        ErrorCode.INVALID_FIELD,
        events.parse_event,
        ev(type="tested", data={"report": "x", "lab": "l", "result": "pass"}),
        now=NOW,
    )


def test_life_order() -> None:
    """No fertilising after the harvest, no second delivery, no going back in time."""
    chain = [{"type": "registered", "at": NOW - 100}, {"type": "harvested", "at": NOW - 50}]
    refused(ErrorCode.OUT_OF_ORDER, events.check_follows, chain, {"type": "fertilised", "at": NOW})
    refused(ErrorCode.OUT_OF_ORDER, events.check_follows, chain, {"type": "harvested", "at": NOW})
    refused(
        ErrorCode.OUT_OF_ORDER, events.check_follows, chain, {"type": "shipped", "at": NOW - 60}
    )
    events.check_follows([*chain, {"type": "shipped", "at": NOW}], {"type": "tested", "at": NOW})


def reading(**kw: Any) -> dict[str, Any]:
    return {"kind": "cold_chain_c", "value": 4.2, "at": NOW - 10, **kw}


def parse(*items: dict[str, Any]) -> list[series.Reading]:
    return series.parse_readings(
        {"readings": list(items)}, device="d1", now=NOW,
        thresholds={"cold_chain_c": [0, 8]}, not_before=NOW - 40 * 86400,
    )  # fmt: skip


def test_readings_are_checked() -> None:
    """Physical range, future and ancient times, unknown kinds, sizes; excursions flagged."""
    ok = parse(reading(), reading(value=9.5))
    assert [r.excursion for r in ok] == [False, True] and ok[0].units == 420
    refused(ErrorCode.OUT_OF_RANGE, parse, reading(value=95))
    refused(ErrorCode.BAD_TIMESTAMP, parse, reading(at=NOW + 600))
    refused(ErrorCode.BAD_TIMESTAMP, parse, reading(at=NOW - 36 * 86400))
    refused(ErrorCode.INVALID_FIELD, parse, reading(kind="vibes"))
    refused(ErrorCode.INVALID_FIELD, parse, reading(value=float("nan")))
    refused(ErrorCode.INVALID_FIELD, parse, *[reading()] * (series.MAX_READINGS + 1))


def test_downsampling_keeps_extremes() -> None:
    """A one-minute spike in a year of minutes survives in its bucket's max."""
    kind = series.KINDS["cold_chain_c"]
    slots = [(t * 60, 1, 400, 400, 400) for t in range(0, 525_600, 7)]
    slots[1000] = (slots[1000][0], 1, 400, 1200, 400)
    points = series.downsample(slots, kind, start=0, end=525_600 * 60, points=200)
    assert len(points) <= 200 and max(p[3] for p in points) == 12.0
    assert series.merge_excursions([5, 6, 7, 20]) == [(5, 7), (20, 20)]

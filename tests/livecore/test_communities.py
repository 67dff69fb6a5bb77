"""Communities (小区): parsing, loading, and resolving a location through the H3 index."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import h3
import pytest

from livecore import communities as cm
from livecore.communities import (
    NEARBY_M,
    NEARBY_MAX,
    Community,
    CommunityIndex,
    check_point,
    distance_m,
    load_file,
    parse_community,
)
from livecore.errors import ErrorCode, LivecoreError

M_PER_DEG = 6_371_008.8 * math.pi / 180
SAMPLE = Path(cm.__file__).resolve().parent / "data" / "communities.json"


def shift(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of (lat, lng) (small distances)."""
    new_lat = lat + north_m / M_PER_DEG
    new_lng = lng + east_m / (M_PER_DEG * math.cos(math.radians(lat)))
    return new_lat, (new_lng + 180) % 360 - 180


def place(cid: str, lat: float, lng: float, radius: float = 300, **kw: Any) -> Community:
    """A community built through the parser (so it is a valid one)."""
    return parse_community(
        {"id": cid, "name": cid, "lat": lat, "lng": lng, "radius_m": radius, **kw}
    )


def brute_force(
    items: list[Community], lat: float, lng: float
) -> tuple[Community | None, list[Community]]:
    """The documented rule, by scanning every community (the reference)."""
    inside = [c for c in items if c.contains(lat, lng)]
    if inside:
        return min(inside, key=lambda c: distance_m(c.lat, c.lng, lat, lng)), []
    near = sorted(
        (d, c.id, c) for c in items if (d := distance_m(c.lat, c.lng, lat, lng)) <= NEARBY_M
    )
    return None, [c for _, _, c in near[:NEARBY_MAX]]


def invalid(exc: pytest.ExceptionInfo[LivecoreError], field: str) -> None:
    """The error is invalid_field and its message starts with ``field``."""
    assert exc.value.code is ErrorCode.INVALID_FIELD, exc.value
    assert exc.value.message.startswith(f"{field}:"), exc.value.message


XIXI = (30.26894, 120.12791)


# -- distance and points ---------------------------------------------------------------


def test_distance_is_haversine() -> None:
    """One degree of latitude is ~111.2 km; the distance is symmetric and 0 at a point."""
    assert distance_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)
    assert distance_m(*XIXI, *XIXI) == 0
    a, b = (30.2, 120.1), (30.3, 120.2)
    assert distance_m(*a, *b) == pytest.approx(distance_m(*b, *a))
    assert distance_m(0, 179.999, 0, -179.999) == pytest.approx(222.4, rel=1e-3)


def test_shift_helper_is_accurate() -> None:
    """The test helper moves a point by the asked distance (sanity of the other tests)."""
    moved = shift(*XIXI, 300, 400)
    assert distance_m(*XIXI, *moved) == pytest.approx(500, rel=2e-3)


@pytest.mark.parametrize(
    ("lat", "lng", "field"),
    [
        (90.0001, 0, "lat"),
        (-91, 0, "lat"),
        (0, 180.5, "lng"),
        (0, -181, "lng"),
        (float("nan"), 0, "lat"),
        (0, float("nan"), "lng"),
        (float("inf"), 0, "lat"),
        (0, float("-inf"), "lng"),
        (True, 0, "lat"),
        (0, False, "lng"),
        ("30.2", 120, "lat"),
        (30.2, "120", "lng"),
        (None, 120, "lat"),
        (30.2, [120], "lng"),
    ],
)
def test_invalid_points_name_the_field(lat: Any, lng: Any, field: str) -> None:
    """Out of range, NaN/inf, bools, strings, None → invalid_field naming lat or lng."""
    with pytest.raises(LivecoreError) as exc:
        check_point(lat, lng)
    invalid(exc, field)
    index = CommunityIndex([place("a", *XIXI)])
    with pytest.raises(LivecoreError) as exc:
        index.resolve(lat, lng)
    invalid(exc, field)


def test_valid_points_at_the_limits() -> None:
    """The exact bounds are accepted; ints become floats."""
    assert check_point(90, -180) == (90.0, -180.0)
    assert check_point(-90.0, 180.0) == (-90.0, 180.0)
    assert isinstance(check_point(1, 2)[0], float)


# -- resolving ---------------------------------------------------------------------------


def test_resolve_inside_the_radius() -> None:
    """A point within radius_m of the centre belongs to that community; no nearby list."""
    xixi = place("xixi", *XIXI, radius=600)
    index = CommunityIndex([xixi, place("far", 30.40, 120.30)])
    for north, east in ((0, 0), (590, 0), (0, -590), (400, 400)):
        found, nearby = index.resolve(*shift(*XIXI, north, east))
        assert found == xixi and nearby == []


def test_just_outside_the_radius_gives_nearby() -> None:
    """610 m from a 600 m community: not inside, but offered as nearby."""
    xixi = place("xixi", *XIXI, radius=600)
    found, nearby = CommunityIndex([xixi]).resolve(*shift(*XIXI, 610, 0))
    assert found is None and nearby == [xixi]


def test_nearest_centre_wins_among_overlaps() -> None:
    """Of overlapping communities that contain the point, the nearest centre wins."""
    big = place("big", *XIXI, radius=2000)
    small = place("small", *shift(*XIXI, 500, 0), radius=400)
    other = place("other", *shift(*XIXI, -500, 0), radius=900)
    index = CommunityIndex([big, small, other])
    assert index.resolve(*shift(*XIXI, 450, 0))[0] == small  # 50 m from small
    assert index.resolve(*shift(*XIXI, -300, 0))[0] == other  # 200 m vs 300 m
    assert index.resolve(*shift(*XIXI, 0, 1500))[0] == big  # only big contains it
    assert index.resolve(*XIXI)[0] == big  # 0 m from big


def test_polygon_containment() -> None:
    """With a polygon, the polygon decides (not the radius): inside in, outside out."""
    lat, lng = XIXI
    square = [[lat - 0.002, lng - 0.002], [lat - 0.002, lng + 0.002],
              [lat + 0.002, lng + 0.002], [lat + 0.002, lng - 0.002]]  # fmt: skip
    block = place("block", lat, lng, radius=400, polygon=square)
    assert block.polygon == tuple(tuple(p) for p in square)
    assert block.contains(lat + 0.0019, lng - 0.0019)  # a corner, inside
    assert not block.contains(lat + 0.0021, lng)  # ~233 m north: inside the radius, not the square
    index = CommunityIndex([block])
    assert index.resolve(lat + 0.0015, lng + 0.0015)[0] == block
    found, nearby = index.resolve(lat + 0.0021, lng)
    assert found is None and nearby == [block]


def test_concave_polygon() -> None:
    """An L-shaped compound: the notch is outside, both arms inside."""
    lat, lng = XIXI
    d = 0.002
    ell = [[lat, lng], [lat, lng + 2 * d], [lat + d, lng + 2 * d], [lat + d, lng + d],
           [lat + 2 * d, lng + d], [lat + 2 * d, lng]]  # fmt: skip
    compound = place("ell", lat + d, lng + d, radius=500, polygon=ell)
    assert compound.contains(lat + 0.5 * d, lng + 1.5 * d)  # lower arm
    assert compound.contains(lat + 1.5 * d, lng + 0.5 * d)  # left arm
    assert not compound.contains(lat + 1.5 * d, lng + 1.5 * d)  # the notch
    assert CommunityIndex([compound]).resolve(lat + 1.5 * d, lng + 1.5 * d)[0] is None


def test_nearby_sorted_capped_and_within_3km() -> None:
    """Outside all: up to 5 within 3 km, nearest first; farther ones are left out."""
    origin = (30.25, 120.15)
    rings = [(f"c{d}", d) for d in (2900, 400, 1200, 800, 2500, 1600, 3100, 5000)]
    items = [place(cid, *shift(*origin, d, 0), radius=100) for cid, d in rings]
    found, nearby = CommunityIndex(items).resolve(*origin)
    assert found is None
    assert [c.id for c in nearby] == ["c400", "c800", "c1200", "c1600", "c2500"]
    dists = [distance_m(c.lat, c.lng, *origin) for c in nearby]
    assert dists == sorted(dists) and max(dists) <= NEARBY_M
    fewer = CommunityIndex([c for c in items if c.id in ("c2900", "c3100", "c5000")])
    assert [c.id for c in fewer.resolve(*origin)[1]] == ["c2900"]


def test_far_away_is_empty() -> None:
    """A point far from every community: no community, empty nearby list."""
    index = CommunityIndex(load_file(SAMPLE))
    assert index.resolve(39.9042, 116.4074) == (None, [])  # Beijing
    assert index.resolve(-33.86, 151.21) == (None, [])
    assert CommunityIndex([]).resolve(*XIXI) == (None, [])


def test_sample_file_resolves_xixi() -> None:
    """The bundled sample: Xixi Chengyuan's centre resolves to it."""
    index = CommunityIndex(load_file(SAMPLE))
    assert len(index) >= 10
    found, _ = index.resolve(*XIXI)
    assert found is not None and found.id == "hz-xixi-chengyuan" and found.radius_m == 600
    assert found.public()["polygon"] == []


# -- parsing and loading -----------------------------------------------------------------


GOOD = {"id": "hz-1", "name": " Garden ", "lat": 30.2, "lng": 120.1, "radius_m": 250,
        "pickup": " North gate "}  # fmt: skip


def test_parse_community_good_and_defaults() -> None:
    """Names and pickup are stripped; radius defaults to 500; public() round-trips."""
    c = parse_community(GOOD)
    assert (c.id, c.name, c.pickup, c.radius_m) == ("hz-1", "Garden", "North gate", 250.0)
    minimal = parse_community({"id": "m", "name": "M", "lat": 0, "lng": 0})
    assert minimal.radius_m == 500 and minimal.pickup == "" and minimal.polygon == ()
    assert parse_community(c.public()) == c


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"extra": 1}, "extra"),
        ({"id": ""}, "id"),
        ({"id": "has space"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": 5}, "id"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 81}, "name"),
        ({"name": None}, "name"),
        ({"lat": 91}, "lat"),
        ({"lat": "30"}, "lat"),
        ({"lng": float("nan")}, "lng"),
        ({"lng": True}, "lng"),
        ({"radius_m": 9.9}, "radius_m"),
        ({"radius_m": 3000.5}, "radius_m"),
        ({"radius_m": True}, "radius_m"),
        ({"radius_m": "300"}, "radius_m"),
        ({"pickup": 5}, "pickup"),
        ({"pickup": "p" * 121}, "pickup"),
        ({"polygon": [[30.2, 120.1], [30.3, 120.1]]}, "polygon"),
        ({"polygon": "square"}, "polygon"),
        ({"polygon": [[30.2, 120.1]] * 101}, "polygon"),
        ({"polygon": [[30.2, 120.1], [30.3, 120.1], [30.3]]}, "polygon[2]"),
        ({"polygon": [[30.2, 120.1], (30.3, 120.1), [30.3, 120.2]]}, "polygon[1]"),
    ],
)
def test_parse_community_errors(change: dict[str, Any], field: str) -> None:
    """Each bad field is refused with invalid_field naming it."""
    with pytest.raises(LivecoreError) as exc:
        parse_community({**GOOD, **change})
    invalid(exc, field)


def test_parse_community_missing_fields_and_non_object() -> None:
    """Missing required fields are named; a non-object is bad_request."""
    for missing in ("id", "name", "lat", "lng"):
        with pytest.raises(LivecoreError) as exc:
            parse_community({k: v for k, v in GOOD.items() if k != missing})
        invalid(exc, missing)
    for value in ([GOOD], "x", None, 5):
        with pytest.raises(LivecoreError) as exc:
            parse_community(value)
        assert exc.value.code is ErrorCode.BAD_REQUEST


def test_polygon_point_out_of_range_names_the_polygon() -> None:
    """A polygon vertex out of range names polygon[i], not the community's lat."""
    with pytest.raises(LivecoreError) as exc:
        parse_community({**GOOD, "polygon": [[30.2, 120.1], [95.0, 120.1], [30.3, 120.2]]})
    invalid(exc, "polygon[1]")


def test_load_json_object_and_list(tmp_path: Path) -> None:
    """JSON as {"communities": [...]} or as a bare list, UTF-8 names kept."""
    rows = [
        {"id": "a", "name": "西溪澄园", "lat": 30.26894, "lng": 120.12791, "radius_m": 600},
        {"id": "b", "name": "B", "lat": 30.1, "lng": 120.2,
         "polygon": [[30.1, 120.2], [30.11, 120.2], [30.11, 120.21]]},
    ]  # fmt: skip
    obj, lst = tmp_path / "c.json", tmp_path / "l.JSON"
    obj.write_text(json.dumps({"city": "x", "communities": rows}, ensure_ascii=False), "utf-8")
    lst.write_text(json.dumps(rows), encoding="utf-8")
    for path in (obj, lst):
        loaded = load_file(path)
        assert [c.id for c in loaded] == ["a", "b"]
        assert loaded[0].name == "西溪澄园" and loaded[0].radius_m == 600
        assert len(loaded[1].polygon) == 3 and loaded[1].radius_m == 500


def test_load_csv(tmp_path: Path) -> None:
    """CSV with header id,name,lat,lng,radius_m,pickup; empty cells take the defaults."""
    path = tmp_path / "c.csv"
    path.write_text(
        "id,name,lat,lng,radius_m,pickup\n"
        "hz-a,翠苑一区,30.27729,120.14193,250,北门自提点\n"
        'hz-b,"Garden, East",30.28,120.15,,\n',
        encoding="utf-8",
    )
    a, b = load_file(path)
    assert (a.id, a.name, a.lat, a.lng, a.radius_m, a.pickup) == (
        "hz-a", "翠苑一区", 30.27729, 120.14193, 250.0, "北门自提点")  # fmt: skip
    assert (b.name, b.radius_m, b.pickup) == ("Garden, East", 500, "")
    index = CommunityIndex([a, b])
    assert index.resolve(30.27729, 120.14193)[0] == a


def test_load_csv_invalid_row_is_refused(tmp_path: Path) -> None:
    """A CSV row with a latitude out of range is refused with invalid_field lat."""
    path = tmp_path / "c.csv"
    path.write_text("id,name,lat,lng,radius_m,pickup\nx,X,95,120,100,\n", encoding="utf-8")
    with pytest.raises(LivecoreError) as exc:
        load_file(path)
    invalid(exc, "lat")


def test_load_bad_json_entry_is_refused(tmp_path: Path) -> None:
    """One bad entry in a JSON file refuses the file with the entry's field."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps([GOOD, {**GOOD, "id": "y", "radius_m": 5}]), encoding="utf-8")
    with pytest.raises(LivecoreError) as exc:
        load_file(path)
    invalid(exc, "radius_m")


# -- the H3 index ------------------------------------------------------------------------


def random_world(
    rng: random.Random, centre: tuple[float, float], count: int, span_m: float
) -> list[Community]:
    """``count`` communities scattered over a square of ``span_m`` around ``centre``."""
    items = []
    for i in range(count):
        lat, lng = shift(*centre, rng.uniform(-span_m, span_m), rng.uniform(-span_m, span_m))
        radius = rng.uniform(10, 3000) if i % 10 == 0 else rng.uniform(10, 400)
        items.append(place(f"c{i}", lat, lng, radius=radius))
    return items


def random_points(
    rng: random.Random, centre: tuple[float, float], items: list[Community], n: int, span: float
) -> list[tuple[float, float]]:
    """Half uniform points, half points close to a community's edge (the hard cases)."""
    points = []
    for i in range(n):
        if i % 2:
            points.append(shift(*centre, rng.uniform(-span, span), rng.uniform(-span, span)))
        else:
            c = rng.choice(items)
            bearing, dist = rng.uniform(0, 2 * math.pi), c.radius_m * rng.uniform(0.9, 1.1)
            points.append(shift(c.lat, c.lng, dist * math.cos(bearing), dist * math.sin(bearing)))
    return points


def ids(result: tuple[Community | None, list[Community]]) -> tuple[str | None, list[str]]:
    found, nearby = result
    return (found.id if found else None), [c.id for c in nearby]


def test_index_matches_brute_force_on_5000_communities(monkeypatch: pytest.MonkeyPatch) -> None:
    """5,000 random communities: same answers as a full scan, fast, never scanning."""
    rng = random.Random(20261121)
    centre = (30.27, 120.15)
    items = random_world(rng, centre, 5000, 40_000)
    index = CommunityIndex(items)
    points = random_points(rng, centre, items, 600, 42_000)
    started = time.perf_counter()
    got = [ids(index.resolve(*p)) for p in points]
    per_point = (time.perf_counter() - started) / len(points)
    expected = [ids(brute_force(items, *p)) for p in points]
    mismatches = [(p, g, e) for p, g, e in zip(points, got, expected, strict=True) if g != e]
    assert mismatches == []
    assert sum(1 for g in got if g[0]) > 100 and sum(1 for g in got if g[1]) > 50
    assert per_point < 0.01, f"{per_point * 1000:.2f} ms per resolve"
    calls = 0
    real = cm.distance_m

    def counting(*args: float) -> float:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setattr(cm, "distance_m", counting)
    for p in points[:100]:
        index.resolve(*p)
    assert calls / 100 < len(items) / 5, f"{calls / 100:.0f} distances per resolve: a scan"


@pytest.mark.parametrize(
    "centre",
    [
        pytest.param((69.65, 18.96), id="tromso-high-latitude"),
        pytest.param((-16.5, 179.98), id="antimeridian"),
        pytest.param(h3.cell_to_latlng(h3.get_pentagons(8)[2]), id="h3-pentagon-liaoning"),
        pytest.param((0.0, 0.0), id="null-island"),
    ],
)
def test_index_matches_brute_force_in_awkward_places(centre: tuple[float, float]) -> None:
    """Near a pole, the antimeridian, an H3 pentagon, (0, 0): same answers as a scan."""
    rng = random.Random(hash(centre) & 0xFFFF)
    items = random_world(rng, centre, 800, 8_000)
    index = CommunityIndex(items)
    points = random_points(rng, centre, items, 400, 10_000)
    wrong = [
        (p, g, e)
        for p in points
        if (g := ids(index.resolve(*p))) != (e := ids(brute_force(items, *p)))
    ]
    assert wrong == []


def test_polygon_larger_than_its_radius_is_found() -> None:
    """A point inside a 2.2 km polygon whose radius_m is 100 resolves to it (as a scan does)."""
    lat, lng = XIXI
    d = 0.02  # ~2.2 km
    square = [[lat - d, lng - d], [lat - d, lng + d], [lat + d, lng + d], [lat + d, lng - d]]
    park = place("park", lat, lng, radius=100, polygon=square)
    point = (lat + 0.018, lng)
    assert brute_force([park], *point)[0] == park
    assert CommunityIndex([park]).resolve(*point)[0] == park

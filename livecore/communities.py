"""Residential communities (小区) and resolving a viewer's location to one (pure).

Resolution rule (documented in docs/protocol.md):
1. Coordinates must be valid WGS-84: -90 ≤ lat ≤ 90, -180 ≤ lng ≤ 180.
2. Candidates come from an H3 spatial index (resolution 8, hexagons of ~530 m
   edge): each community is filed under its centre's cell, and a point looks
   in the ring of cells around its own that covers the largest radius — never
   a scan of all communities.
3. A point belongs to a community when it lies inside its polygon (if it has
   one) or within ``radius_m`` of its centre; among several, the nearest
   centre wins.
4. Outside every community, the answer is a "nearby" list: up to 5
   communities within ``NEARBY_M``, nearest first, for the viewer to choose.
A token's ``cty`` claim fixes the community and skips all of this.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h3

from livecore.errors import ErrorCode, LivecoreError
from livecore.tokens import valid_id

RESOLUTION = 8
NEARBY_M = 3_000.0
NEARBY_MAX = 5
MAX_RADIUS_M = 3_000.0
_EARTH_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class Community:
    id: str
    name: str
    lat: float
    lng: float
    radius_m: float
    pickup: str = ""
    polygon: tuple[tuple[float, float], ...] = field(default=())

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["polygon"] = [list(p) for p in self.polygon]
        return data

    @property
    def reach_m(self) -> float:
        """How far from the centre a member may be: the radius, or the polygon's farthest corner."""
        corners = (distance_m(self.lat, self.lng, lat, lng) for lat, lng in self.polygon)
        return max(self.radius_m, *corners) if self.polygon else self.radius_m

    def contains(self, lat: float, lng: float) -> bool:
        if self.polygon:
            return _in_polygon(lat, lng, self.polygon)
        return distance_m(self.lat, self.lng, lat, lng) <= self.radius_m


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_M * math.asin(math.sqrt(a))


def _in_polygon(lat: float, lng: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Ray casting on (lat, lng) vertices; fine at the scale of a compound."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (yi, xi), (yj, xj) = polygon[i], polygon[j]
        if (yi > lat) != (yj > lat) and lng < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def check_point(lat: Any, lng: Any) -> tuple[float, float]:
    """Valid coordinates, or invalid_field naming the bad one."""
    for name, value, limit in (("lat", lat, 90), ("lng", lng, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: required, a number")
        if not math.isfinite(value) or not -limit <= value <= limit:
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"{name}: must be within ±{limit}")
    return float(lat), float(lng)


def parse_community(data: Any) -> Community:
    """A community from JSON; invalid_field names the first bad field."""
    if not isinstance(data, dict):
        raise LivecoreError(ErrorCode.BAD_REQUEST, "a community is a JSON object")
    unknown = set(data) - {"id", "name", "lat", "lng", "radius_m", "pickup", "polygon"}
    if unknown:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"{sorted(unknown)[0]}: unknown field")
    cid, name = data.get("id"), data.get("name")
    if not isinstance(cid, str) or not valid_id(cid):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "id: 1-64 of A-Z a-z 0-9 _ . : -")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        raise LivecoreError(ErrorCode.INVALID_FIELD, "name: 1-80 characters")
    lat, lng = check_point(data.get("lat"), data.get("lng"))
    radius = data.get("radius_m", 500)
    if isinstance(radius, bool) or not isinstance(radius, int | float):
        raise LivecoreError(ErrorCode.INVALID_FIELD, "radius_m: a number")
    if not 10 <= radius <= MAX_RADIUS_M:
        raise LivecoreError(ErrorCode.INVALID_FIELD, f"radius_m: 10..{MAX_RADIUS_M:.0f}")
    pickup = data.get("pickup", "")
    if not isinstance(pickup, str) or len(pickup) > 120:
        raise LivecoreError(ErrorCode.INVALID_FIELD, "pickup: at most 120 characters")
    polygon = _parse_polygon(data.get("polygon"))
    return Community(cid, name.strip(), lat, lng, float(radius), pickup.strip(), polygon)


def _parse_polygon(value: Any) -> tuple[tuple[float, float], ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not 3 <= len(value) <= 100:
        raise LivecoreError(ErrorCode.INVALID_FIELD, "polygon: 3-100 [lat, lng] points")
    points = []
    for i, point in enumerate(value):
        if not isinstance(point, list) or len(point) != 2:
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"polygon[{i}]: must be [lat, lng]")
        try:
            points.append(check_point(point[0], point[1]))
        except LivecoreError as err:
            raise LivecoreError(ErrorCode.INVALID_FIELD, f"polygon[{i}]: {err.message}") from None
    return tuple(points)


def load_file(path: Path) -> list[Community]:
    """Communities from JSON (``{"communities": [...]}`` or a list) or CSV
    (header ``id,name,lat,lng,radius_m,pickup``)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows: list[Any] = []
        for row in csv.DictReader(text.splitlines()):
            item: dict[str, Any] = dict(row)
            for key in ("lat", "lng", "radius_m"):
                if item.get(key):
                    item[key] = float(item[key])
            rows.append({k: v for k, v in item.items() if v not in (None, "")})
    else:
        data = json.loads(text)
        rows = data["communities"] if isinstance(data, dict) else data
    return [parse_community(row) for row in rows]


class CommunityIndex:
    """An immutable H3 index of communities."""

    def __init__(self, communities: list[Community]) -> None:
        self.by_id = {c.id: c for c in communities}
        self._cells: dict[str, list[Community]] = defaultdict(list)
        for community in communities:
            self._cells[h3.latlng_to_cell(community.lat, community.lng, RESOLUTION)].append(
                community
            )
        edge = h3.average_hexagon_edge_length(RESOLUTION, "m")
        widest = max((c.reach_m for c in communities), default=0.0)
        self._k_member = math.ceil(widest / edge) + 1
        self._k_nearby = math.ceil(NEARBY_M / edge) + 1

    def __len__(self) -> int:
        return len(self.by_id)

    def _candidates(self, lat: float, lng: float, k: int) -> list[Community]:
        cell = h3.latlng_to_cell(lat, lng, RESOLUTION)
        return [c for ring_cell in h3.grid_disk(cell, k) for c in self._cells.get(ring_cell, ())]

    def resolve(self, lat: float, lng: float) -> tuple[Community | None, list[Community]]:
        """The community containing the point (or None) and the nearby list."""
        lat, lng = check_point(lat, lng)
        inside = [c for c in self._candidates(lat, lng, self._k_member) if c.contains(lat, lng)]
        if inside:
            best = min(inside, key=lambda c: distance_m(c.lat, c.lng, lat, lng))
            return best, []
        near = [
            (distance_m(c.lat, c.lng, lat, lng), c)
            for c in self._candidates(lat, lng, self._k_nearby)
        ]
        near = sorted(((d, c) for d, c in near if d <= NEARBY_M), key=lambda pair: pair[0])
        return None, [c for _, c in near[:NEARBY_MAX]]

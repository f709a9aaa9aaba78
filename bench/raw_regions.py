"""Raw baselines of the region endpoints: one SQL query through psycopg, then plain Python.

Served by the same uvicorn, with the same worker count, as the project
(``uvicorn bench.raw_regions:app``). It answers with the same JSON as the project so
``bench_regions`` can check equivalence before measuring; what it leaves out is exactly
what the ratio prices: Django's request cycle and middleware, DRF, JWT authentication and
the user query, scope resolution, throttling, serializers.

``/tree?prefix=/xixian/``
    the visible tree for a scope prefix: ``SELECT`` the rows in path order and nest them
    by parent path, leaving inactive subtrees out (as ``selectors.region_tree``).
``/lookup?lat=&lng=``
    point → street: ``SELECT`` the active root, new towns and streets, check the point
    against the new area's boundary (ray casting), take the street with the nearest
    centre by haversine. No cache: the query runs on every request, whereas the project
    keeps an in-process street index (zero queries, one Redis GET per lookup).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bench.rawasgi import Answer, Query, RawApp

EARTH_RADIUS_KM = 6371.0088  # as apps.regions.geo
MAX_DISTANCE_KM = 8.0  # REGION_LOOKUP_MAX_DISTANCE_KM's default
MILLIMETRE = Decimal("0.001")

TREE_SQL = """
    SELECT code, name_zh, name_en, level, kind, management, path, is_active, estimated,
           centre_lat, centre_lng
    FROM regions_region
    WHERE starts_with(path, %s)
    ORDER BY path
"""

LOOKUP_SQL = """
    SELECT code, name_zh, name_en, level, kind, path, management, nbs_code,
           centre_lat, centre_lng, accuracy_km, estimated, boundary
    FROM regions_region
    WHERE is_active AND depth <= 2
    ORDER BY path
"""

SUMMARY_FIELDS = ("code", "name_zh", "name_en", "level", "kind", "path")


def _centre(row: dict[str, Any]) -> dict[str, float] | None:
    if row["centre_lat"] is None or row["centre_lng"] is None:
        return None
    return {"lat": row["centre_lat"], "lng": row["centre_lng"]}


def _parent_path(path: str) -> str:
    return path[: path.rstrip("/").rfind("/") + 1]


async def tree(pool: AsyncConnectionPool, query: Query) -> Answer:
    prefix = query.get("prefix", "/")
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(TREE_SQL, (prefix,))
        rows = await cur.fetchall()
    roots: list[dict[str, Any]] = []
    by_path: dict[str, dict[str, Any]] = {}
    hidden: list[str] = []
    for row in rows:
        path = row["path"]
        if hidden and path.startswith(tuple(hidden)):
            continue
        if not row["is_active"]:
            hidden.append(path)
            continue
        node = {
            "code": row["code"],
            "name_zh": row["name_zh"],
            "name_en": row["name_en"],
            "level": row["level"],
            "kind": row["kind"],
            "management": row["management"],
            "path": path,
            "is_active": row["is_active"],
            "estimated": row["estimated"],
            "centre": _centre(row),
            "children": [],
        }
        parent = by_path.get(_parent_path(path))
        (parent["children"] if parent is not None else roots).append(node)
        by_path[path] = node
    return 200, roots


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _ring_contains(ring: Sequence[Sequence[float]], x: float, y: float) -> bool:
    """Even-odd ray casting; GeoJSON rings are closed lists of [lng, lat]."""
    inside = False
    for (x1, y1), (x2, y2) in itertools.pairwise(ring):
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def geojson_covers(geometry: dict[str, Any], lat: float, lng: float) -> bool:
    """Whether a GeoJSON Polygon/MultiPolygon contains the point (holes respected)."""
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    for rings in polygons:
        if _ring_contains(rings[0], lng, lat) and not any(
            _ring_contains(hole, lng, lat) for hole in rings[1:]
        ):
            return True
    return False


def _error(status: int, code: str, extra: dict[str, Any]) -> Answer:
    return status, {"code": code, "message": code, "extra": extra}


async def lookup(pool: AsyncConnectionPool, query: Query) -> Answer:
    try:
        lat, lng = float(query["lat"]), float(query["lng"])
    except (KeyError, ValueError):
        return _error(400, "invalid", {"fields": {"lat": "required", "lng": "required"}})
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return _error(400, "invalid", {"fields": {"lat": "out_of_range"}})
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(LOOKUP_SQL)
        rows = await cur.fetchall()
    by_path = {row["path"]: row for row in rows}
    areas = [row["boundary"] for row in rows if row["level"] == "new_area" and row["boundary"]]
    if areas and not any(geojson_covers(area, lat, lng) for area in areas):
        return _error(422, "point_outside_area", {"lat": lat, "lng": lng})
    best: tuple[float, str, dict[str, Any], list[dict[str, Any]]] | None = None
    for row in rows:
        if row["level"] != "street" or row["centre_lat"] is None or row["centre_lng"] is None:
            continue
        parts = row["path"].strip("/").split("/")
        ancestors = [by_path.get("/" + "/".join(parts[:i]) + "/") for i in range(1, len(parts))]
        if any(a is None for a in ancestors):
            continue  # an inactive ancestor switches its subtree off
        distance = haversine_km(lat, lng, row["centre_lat"], row["centre_lng"])
        if best is None or (distance, row["path"]) < best[:2]:
            best = (distance, row["path"], row, ancestors)  # type: ignore[assignment]
    if best is None or best[0] > MAX_DISTANCE_KM:
        return _error(422, "point_outside_area", {"lat": lat, "lng": lng})
    distance, _path, street, ancestors = best
    return 200, {
        "street": {
            **{name: street[name] for name in SUMMARY_FIELDS},
            "management": street["management"],
            "nbs_code": street["nbs_code"],
            "centre": _centre(street),
            "accuracy_km": street["accuracy_km"],
        },
        # No community of the fixture has a boundary yet (docs/regions.md), so a point is
        # never placed in one: the project answers null and so does the baseline.
        "community": None,
        "ancestors": [{name: a[name] for name in SUMMARY_FIELDS} for a in ancestors],
        "method": "nearest_centre",
        # DRF's DecimalField(decimal_places=3, coerce_to_string=False), byte for byte.
        "distance_km": float(Decimal(repr(distance)).quantize(MILLIMETRE)),
        "estimated": street["estimated"],
    }


app = RawApp({"/tree": tree, "/lookup": lookup})

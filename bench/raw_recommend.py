"""Raw baseline of team recommendation: the project's ring search in hand-written SQL.

The floor of ``apps/dispatch/recommendation.py``: the **same candidate search**, with
psycopg and plain Python instead of Django. Same start radius and widening
(``DISPATCH_RECOMMEND_RADII_KM``, default 2, 4, 8, 16, 32 km, then the rest, each ring
reading only the teams between the previous box and this one, boxes with the project's
1 % margin), same filters (active, available / dispatched / busy, someone on duty, not
live on this incident), capable teams first (``capabilities @> required``, then the
partly capable ones only if fewer than ``limit`` capable teams exist at all), the same
stopping rule (the ``limit``-th score beats anything outside the box could reach at the
provider's lower-bound ETA) and the same pruning of outer rings, and the same ranking
inputs: required fraction, ETA = great circle × ``DISPATCH_ROAD_FACTOR`` ÷ the speed of
the team's kind (``DISPATCH_SPEED_PROFILE_KMH``, ``kind@region`` overrides), penalties for
status, load and missing preferred tags; ties by distance, then code.

Settings are read from the environment with the project's defaults (the bench runs both
with one environment); ``bench_recommend`` checks, before timing, that these values equal
the project's settings and that the raw top 5 equals the project's for every incident.

``/recommend?incident=<id>`` (the API route's floor) also reads the incident (point,
category, casualties) by id; it answers the ranked teams with the figures the project's
answer carries (score, distance, ETA, effective minutes, load, position). Left out, and
priced by the ratio: Django, DRF, JWT, the incident scope and command checks, the chosen
teams' second read (home region, department) and the reasons.

The search is one generator (:func:`search`) that yields each ring's SQL and receives its
rows, so the in-process baseline (:func:`recommend_sync`, run in ``bench_recommend``'s
timing script) and the ASGI app (:func:`recommend`) run the very same code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from apps.dispatch.capabilities import Requirement, requirements_for
from bench.rawasgi import Answer, Query, RawApp

EARTH_RADIUS_KM = 6371.0088  # as apps.regions.geo
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
REQUIRED_WEIGHT = 1000.0
PROXIMITY_WEIGHT = 100.0
HALF_SCORE_MINUTES = 15.0
PENALTY = {"available": 0.0, "dispatched": 10.0, "busy": 20.0}
LOAD_PENALTY = 8.0
PREFERRED_PENALTY = 5.0
STATUSES = ["available", "dispatched", "busy"]
LIVE = ["dispatched", "accepted", "en_route", "on_scene", "completed", "returned"]


def _radii() -> tuple[float, ...]:
    raw = os.environ.get("DISPATCH_RECOMMEND_RADII_KM", "")
    return tuple(float(v) for v in raw.split(",") if v.strip()) or (2.0, 4.0, 8.0, 16.0, 32.0)


def _speeds() -> dict[str, float]:
    raw = os.environ.get("DISPATCH_SPEED_PROFILE_KMH") or (
        '{"default": 30, "fire": 40, "medical": 40, "volunteer": 20}'
    )
    speeds = {str(k): float(v) for k, v in json.loads(raw).items()}
    speeds.setdefault("default", 30.0)
    return speeds


RADII_KM = _radii()
SPEEDS_KMH = _speeds()
ROAD_FACTOR = float(os.environ.get("DISPATCH_ROAD_FACTOR") or 1.3)
MAX_SPEED_KMH = max(SPEEDS_KMH.values())

RING_SQL = """
SELECT t.id, t.code, t.name, t.kind, t.status, t.capabilities, t.last_lat, t.last_lng,
       t.last_position_at, r.code, l.n
FROM dispatch_team t
JOIN regions_region r ON r.id = t.home_region_id
CROSS JOIN LATERAL (SELECT count(*) AS n FROM dispatch_dispatchtask d
                     WHERE d.team_id = t.id AND d.status = ANY(%(live)s)) l
WHERE t.is_active
  AND t.status = ANY(%(statuses)s)
  AND EXISTS (SELECT 1 FROM dispatch_teammember m
               WHERE m.team_id = t.id AND m.is_active AND m.on_duty)
  AND NOT EXISTS (SELECT 1 FROM dispatch_dispatchtask d
                   WHERE d.team_id = t.id AND d.incident_id = %(incident)s
                     AND d.status = ANY(%(live)s))
"""
CAPABLE = " AND t.capabilities @> %(required)s::jsonb"
NOT_CAPABLE = " AND NOT (t.capabilities @> %(required)s::jsonb)"
IN_BOX = (
    " AND t.last_lat BETWEEN %(south)s AND %(north)s AND t.last_lng BETWEEN %(west)s AND %(east)s"
)
OUTSIDE = (
    " AND NOT (t.last_lat BETWEEN %(in_south)s AND %(in_north)s"
    " AND t.last_lng BETWEEN %(in_west)s AND %(in_east)s)"
)
OUTSIDE_OR_UNKNOWN = (
    " AND (t.last_lat IS NULL OR t.last_lng IS NULL OR NOT ("
    "t.last_lat BETWEEN %(in_south)s AND %(in_north)s"
    " AND t.last_lng BETWEEN %(in_west)s AND %(in_east)s))"
)
PRUNE = (
    " AND (2 * {earth} * asin(least(1.0, sqrt("
    "power(sin(radians(t.last_lat - %(lat)s) / 2), 2)"
    " + cos(radians(%(lat)s)) * cos(radians(t.last_lat))"
    " * power(sin(radians(t.last_lng - %(lng)s) / 2), 2)))) * %(min_per_km)s"
    " + CASE t.status WHEN 'dispatched' THEN {dispatched} WHEN 'busy' THEN {busy} ELSE 0 END"
    " + {load} * l.n + {preferred} * ({missing})) <= %(max_effective)s"
)
INCIDENT_SQL = """
SELECT i.lat, i.lng, c.code, coalesce(i.injured, 0) + coalesce(i.trapped, 0) > 0
FROM incidents_incident i JOIN incidents_category c ON c.id = i.category_id WHERE i.id = %s
"""

Box = tuple[float, float, float, float]
Ring = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class Candidate:
    team_id: int
    code: str
    name: str
    status: str
    load: int
    position: str
    position_at: Any
    distance_km: float | None
    eta_minutes: float | None
    effective_minutes: float
    score: float

    def answer(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "team": {"id": self.team_id, "code": self.code, "name": self.name},
            "score": round(self.score, 2),
            "distance_km": None if self.distance_km is None else round(self.distance_km, 2),
            "eta_minutes": None if self.eta_minutes is None else round(self.eta_minutes, 1),
            "effective_minutes": round(self.effective_minutes, 1)
            if math.isfinite(self.effective_minutes)
            else -1.0,
            "load": self.load,
            "position": self.position,
            "position_at": None if self.position_at is None else self.position_at.isoformat(),
        }


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bbox(lat: float, lng: float, radius_km: float) -> Box:
    dlat = radius_km / KM_PER_DEGREE * 1.01
    edge = min(89.0, abs(lat) + dlat)
    dlng = radius_km / (KM_PER_DEGREE * math.cos(math.radians(edge))) * 1.01
    return (lat - dlat, lat + dlat, lng - dlng, lng + dlng)


def proximity(minutes: float) -> float:
    return PROXIMITY_WEIGHT / (1.0 + minutes / HALF_SCORE_MINUTES)


def lower_bound_minutes(km: float) -> float:
    return km * ROAD_FACTOR / MAX_SPEED_KMH * 3600.0 / 60.0


def speed_kmh(kind: str, region_code: str) -> float:
    profile = f"{kind}@{region_code}"
    if profile not in SPEEDS_KMH:
        profile = kind
    return SPEEDS_KMH.get(profile) or SPEEDS_KMH["default"]


def ring(
    capability: str,
    requirement: Requirement,
    point: tuple[float, float, int],
    box: Box | None,
    inner: Box | None,
    prune: tuple[float, float] | None,
) -> Ring:
    lat, lng, incident_id = point
    params: dict[str, Any] = {
        "live": LIVE,
        "statuses": STATUSES,
        "incident": incident_id,
        "required": json.dumps(list(requirement.required)),
    }
    sql = RING_SQL + capability
    if box is not None:
        sql += IN_BOX
        params.update(zip(("south", "north", "west", "east"), box, strict=True))
    if inner is not None:
        sql += OUTSIDE if box is not None else OUTSIDE_OR_UNKNOWN
        params.update(zip(("in_south", "in_north", "in_west", "in_east"), inner, strict=True))
    if prune is not None and box is not None:
        missing = " + ".join(
            f"(NOT (t.capabilities ? %(pref_{i})s))::int" for i in range(len(requirement.preferred))
        )
        sql += PRUNE.format(
            earth=EARTH_RADIUS_KM,
            dispatched=PENALTY["dispatched"],
            busy=PENALTY["busy"],
            load=LOAD_PENALTY,
            preferred=PREFERRED_PENALTY,
            missing=missing or "0",
        )
        params.update({f"pref_{i}": tag for i, tag in enumerate(requirement.preferred)})
        params.update(lat=lat, lng=lng, min_per_km=prune[0], max_effective=prune[1] + 1e-6)
    return sql, params


def score(row: tuple[Any, ...], lat: float, lng: float, requirement: Requirement) -> Candidate:
    pk, code, name, kind, status, capabilities, t_lat, t_lng, position_at, region, load = row
    if isinstance(capabilities, str):
        capabilities = json.loads(capabilities)
    have = frozenset(capabilities or ())
    required = requirement.required
    fraction = 1.0 if not required else sum(t in have for t in required) / len(required)
    penalty = (
        PENALTY.get(status, 0.0)
        + LOAD_PENALTY * load
        + PREFERRED_PENALTY * sum(t not in have for t in requirement.preferred)
    )
    if t_lat is None or t_lng is None:
        distance = eta = None
        position, near, effective = "unknown", 0.0, math.inf
    else:
        distance = haversine_km(t_lat, t_lng, lat, lng)
        km = distance * ROAD_FACTOR
        eta = km / speed_kmh(kind, region) * 3600.0 / 60.0
        position = "fix" if position_at is not None else "home_region"
        effective = eta + penalty
        near = proximity(effective)
    return Candidate(
        pk,
        code,
        name,
        status,
        load,
        position,
        position_at,
        distance,
        eta,
        effective,
        REQUIRED_WEIGHT * fraction + near,
    )


def search(
    lat: float, lng: float, incident_id: int, category: str, casualties: bool, limit: int = 5
) -> Generator[Ring, list[tuple[Any, ...]], list[Candidate]]:
    """The ring search: yields ``(sql, params)`` of each ring, is sent its rows, and
    returns the ranked top ``limit`` (the project's algorithm, module docstring)."""
    requirement = requirements_for(category, casualties=casualties)
    point = (lat, lng, incident_id)
    found: dict[int, Candidate] = {}
    if requirement.required:
        n = len(requirement.required)
        phases = [(CAPABLE, 1.0), (NOT_CAPABLE, (n - 1) / n)]
    else:
        phases = [("", 1.0)]
    min_per_km = lower_bound_minutes(1.0)
    for capability, best_fraction in phases:
        inner: Box | None = None
        prune: tuple[float, float] | None = None
        final = False
        for radius in (*RADII_KM, None):
            box = None if radius is None else bbox(lat, lng, radius)
            rows = yield ring(capability, requirement, point, box, inner, prune)
            for row in rows:
                candidate = score(row, lat, lng, requirement)
                found[candidate.team_id] = candidate
            if radius is None:
                final = len(found) >= limit
                break
            inner = box
            if len(found) >= limit:
                kth = sorted(c.score for c in found.values())[-limit]
                best_outside = REQUIRED_WEIGHT * best_fraction + proximity(
                    lower_bound_minutes(radius)
                )
                if kth >= best_outside:
                    final = True
                    break
                margin = kth - REQUIRED_WEIGHT * best_fraction
                prune = (
                    (min_per_km, HALF_SCORE_MINUTES * (PROXIMITY_WEIGHT / margin - 1.0))
                    if best_fraction >= 1.0 and margin > 0
                    else None
                )
        if final:
            break

    def key(c: Candidate) -> tuple[float, float, str]:
        return (-c.score, c.distance_km if c.distance_km is not None else math.inf, c.code)

    return sorted(found.values(), key=key)[:limit]


def recommend_sync(
    conn: Any, lat: float, lng: float, incident_id: int, category: str, casualties: bool
) -> list[Candidate]:
    """The search on a psycopg (sync) connection: the in-process baseline."""
    steps = search(lat, lng, incident_id, category, casualties)
    rows: Any = None
    try:
        while True:
            sql, params = steps.send(rows)
            rows = conn.execute(sql, params).fetchall()
    except StopIteration as done:
        return list(done.value)


async def recommend(pool: AsyncConnectionPool, query: Query) -> Answer:
    incident_id = int(query["incident"])
    async with pool.connection() as conn:
        cursor = await conn.execute(INCIDENT_SQL, (incident_id,))
        incident = await cursor.fetchone()
        if incident is None:
            return 404, {"code": "not_found"}
        lat, lng, category, casualties = incident
        steps = search(lat, lng, incident_id, category, casualties)
        rows: Any = None
        try:
            while True:
                sql, params = steps.send(rows)
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall()
        except StopIteration as done:
            top: list[Candidate] = done.value
    return 200, {
        "incident": incident_id,
        "category": category,
        "results": [c.answer(rank) for rank, c in enumerate(top, 1)],
    }


app = RawApp({"/recommend": recommend})

"""Raw baseline of team recommendation: one SQL bounding-box query, then Python.

``/recommend?lat=&lng=&category=&casualties=0|1&incident=<id>`` answers the top 5 team
codes with their scores. One query reads the dispatchable teams (active, available /
dispatched / busy, someone on duty, not already on the incident, with their live-task
count) inside a fixed box of ``BOX_KM`` around the incident; Python ranks them with the
project's score (``apps/dispatch/recommendation.py``: capability tier, then ETA by great
circle × 1.3 at 30 km/h plus the status, load and preferred-tag penalties).

What it leaves out, and the ratio prices: the project's exact ring search (several
boxes, stopping only when nothing outside can win), the incident read and scope checks,
Django's ORM, DRF, JWT authentication, serializers and the reasons. The fixed box can
miss a better team outside it; ``bench_recommend`` records how often the raw top 5
agrees with the project's.

The same functions serve the in-process baseline (``bench_recommend`` runs them in a
Django shell beside ``recommend_teams``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from apps.dispatch.capabilities import requirements_for
from bench.rawasgi import Answer, Query, RawApp

EARTH_RADIUS_KM = 6371.0088  # as apps.regions.geo
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
BOX_KM = 10.0
SPEED_KMH = 30.0
ROAD_FACTOR = 1.3
PENALTY = {"available": 0.0, "dispatched": 10.0, "busy": 20.0}

RAW_SQL = """
    SELECT t.code, t.status, t.capabilities, t.last_lat, t.last_lng,
           (SELECT count(*) FROM dispatch_dispatchtask d
             WHERE d.team_id = t.id AND d.status IN
               ('dispatched', 'accepted', 'en_route', 'on_scene', 'completed', 'returned')
           ) AS load
    FROM dispatch_team t
    WHERE t.is_active
      AND t.status IN ('available', 'dispatched', 'busy')
      AND t.last_lat BETWEEN %s AND %s AND t.last_lng BETWEEN %s AND %s
      AND EXISTS (SELECT 1 FROM dispatch_teammember m
                   WHERE m.team_id = t.id AND m.is_active AND m.on_duty)
      AND NOT EXISTS (SELECT 1 FROM dispatch_dispatchtask d
                       WHERE d.team_id = t.id AND d.incident_id = %s
                         AND d.status IN ('dispatched', 'accepted', 'en_route',
                                          'on_scene', 'completed', 'returned'))
"""


def box_params(lat: float, lng: float, incident_id: int) -> tuple[float, ...]:
    dlat = BOX_KM / KM_PER_DEGREE
    dlng = BOX_KM / (KM_PER_DEGREE * math.cos(math.radians(lat)))
    return (lat - dlat, lat + dlat, lng - dlng, lng + dlng, incident_id)


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def rank(
    rows: Iterable[tuple[Any, ...]],
    lat: float,
    lng: float,
    category: str,
    casualties: bool,
    limit: int = 5,
) -> list[dict[str, Any]]:
    requirement = requirements_for(category, casualties=casualties)
    required, preferred = requirement.required, requirement.preferred
    scored = []
    for code, status, capabilities, team_lat, team_lng, load in rows:
        have = set(capabilities or ())
        fraction = 1.0 if not required else sum(t in have for t in required) / len(required)
        km = haversine_km(team_lat, team_lng, lat, lng)
        eta = km * ROAD_FACTOR / SPEED_KMH * 60.0
        missing_preferred = sum(t not in have for t in preferred)
        effective = eta + PENALTY.get(status, 0.0) + 8.0 * load + 5.0 * missing_preferred
        score = 1000.0 * fraction + 100.0 / (1.0 + effective / 15.0)
        scored.append((-score, km, code))
    scored.sort()
    return [{"code": code, "score": round(-neg, 2)} for neg, _km, code in scored[:limit]]


async def recommend(pool: AsyncConnectionPool, query: Query) -> Answer:
    lat, lng = float(query["lat"]), float(query["lng"])
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(RAW_SQL, box_params(lat, lng, int(query["incident"])))
        rows = await cur.fetchall()
    top = rank(rows, lat, lng, query["category"], query.get("casualties") == "1")
    return 200, {"results": top}


app = RawApp({"/recommend": recommend})

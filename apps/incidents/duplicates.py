"""Duplicate suggestions: which open incidents might a new citizen report be about?

A burst pipe or a flooded underpass is reported by many people within minutes; the
operator should link those reports to one incident instead of dispatching twice.

Candidates are open incidents (reported, accepted, in progress, resolved) that are

- within ``radius_m`` (``INCIDENTS_DUPLICATE_RADIUS_M``, default 500 m) of the point,
- created within ``window_hours`` (``INCIDENTS_DUPLICATE_WINDOW_HOURS``, default 24 h)
  of the report's time (before or after it: an old report triaged late may duplicate
  an incident opened since),
- of the same category or one listed in ``Category.related_codes`` (a "waterlogged
  road" report may be about an open "burst water main" incident).

Score (lower is better), each term normalised to 0..1 by its limit::

    score = 0.6 · distance / radius + 0.4 · |age| / window + 0.1 · (related, not same)

Distance weighs more than age because two reports 50 m apart are about the same place
even hours apart, whereas two reports a minute apart 450 m away are often two hazards.
The small penalty puts a same-category incident ahead of an equally near related one.
Ties break by newest incident, then id, so the order is deterministic.

Computed on demand at triage, not stored: the answer changes as incidents open, close
and merge, and a stored list would be stale by the time an operator looks at it. Intake
computes a snapshot once, for the operator board's "new report" event
(:func:`duplicate_candidates_many`: the same filter and score for a batch of reports in
one statement on PostgreSQL). The query is cheap: a
latitude/longitude bounding box on plain columns (the partial index on open incidents
narrows it further), then exact haversine in Python on the few rows that survive.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.incidents.models import OPEN_STATUSES, Category, Incident
from apps.regions.geo import EARTH_RADIUS_KM, haversine_km

DEFAULT_RADIUS_M = 500.0
DEFAULT_WINDOW_HOURS = 24.0
DISTANCE_WEIGHT = 0.6
AGE_WEIGHT = 0.4
RELATED_CATEGORY_PENALTY = 0.1
# Metres per degree of latitude on the sphere the haversine uses.
METRES_PER_DEGREE = EARTH_RADIUS_KM * 1000 * math.pi / 180


@dataclass(frozen=True)
class Candidate:
    """One possible duplicate with the numbers that ranked it."""

    incident: Incident
    distance_m: float
    age_hours: float  # |incident created − report time|
    same_category: bool
    score: float


class CandidateRef(TypedDict):
    """A candidate as the board's "new report" event carries it."""

    incident_id: int
    distance_m: float
    score: float


def duplicate_radius_m() -> float:
    return float(getattr(settings, "INCIDENTS_DUPLICATE_RADIUS_M", DEFAULT_RADIUS_M))


def duplicate_window_hours() -> float:
    return float(getattr(settings, "INCIDENTS_DUPLICATE_WINDOW_HOURS", DEFAULT_WINDOW_HOURS))


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(south, north, west, east) enclosing the circle; generous at the edges on purpose:
    the exact distance filter follows, so the box only has to never cut a true match."""
    dlat = radius_m / METRES_PER_DEGREE
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlng = min(radius_m / (METRES_PER_DEGREE * cos_lat), 180.0)
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


def duplicate_candidates(
    *,
    lat: float,
    lng: float,
    category: Category,
    at: datetime | None = None,
    radius_m: float | None = None,
    window_hours: float | None = None,
    limit: int = 10,
    visible_to: Any = None,
    exclude_ids: tuple[int, ...] = (),
) -> list[Candidate]:
    """Open incidents that may be what a report at (lat, lng) is about, best first.

    1. SQL: open, created within the window, inside the bounding box, same or related
       category (and inside ``visible_to``'s scope when given: an operator cannot
       link to an incident they cannot see).
    2. Python: exact great-circle distance, drop those beyond the radius.
    3. Score (module docstring), sort, cut to ``limit``.
    """
    at = at or timezone.now()
    radius = duplicate_radius_m() if radius_m is None else float(radius_m)
    window = duplicate_window_hours() if window_hours is None else float(window_hours)
    if radius <= 0 or window <= 0 or limit <= 0:
        return []
    south, north, west, east = bounding_box(lat, lng, radius)
    codes = {category.code, *(str(code) for code in (category.related_codes or []))}
    span = timedelta(hours=window)

    queryset = Incident.objects.open() if visible_to is None else _visible(visible_to)
    rows = (
        queryset.filter(
            created_at__gte=at - span,
            created_at__lte=at + span,
            lat__gte=south,
            lat__lte=north,
            lng__gte=west,
            lng__lte=east,
            category__code__in=codes,
        )
        .exclude(pk__in=exclude_ids)
        .select_related("category", "region")
    )

    candidates: list[Candidate] = []
    for incident in rows:
        same = incident.category_id == category.pk
        measured = measure(
            lat, lng, at, incident.lat, incident.lng, incident.created_at, same, radius, window
        )
        if measured is None:
            continue
        distance_m, age_hours, score = measured
        candidates.append(
            Candidate(
                incident=incident,
                distance_m=distance_m,
                age_hours=age_hours,
                same_category=same,
                score=score,
            )
        )
    candidates.sort(key=lambda c: (c.score, -c.incident.created_at.timestamp(), c.incident.pk))
    return candidates[:limit]


def measure(
    lat: float,
    lng: float,
    at: datetime,
    incident_lat: float,
    incident_lng: float,
    incident_created_at: datetime,
    same_category: bool,
    radius_m: float,
    window_hours: float,
) -> tuple[float, float, float] | None:
    """(distance m, |age| h, score) of one incident for a report, or ``None`` beyond the
    radius. Shared by :func:`duplicate_candidates` and the batched intake query."""
    distance_m = haversine_km(lat, lng, incident_lat, incident_lng) * 1000
    if distance_m > radius_m:
        return None
    age_hours = abs((at - incident_created_at).total_seconds()) / 3600
    score = DISTANCE_WEIGHT * distance_m / radius_m + AGE_WEIGHT * min(
        age_hours / window_hours, 1.0
    )
    if not same_category:
        score += RELATED_CATEGORY_PENALTY
    return round(distance_m, 1), round(age_hours, 3), round(score, 4)


def _visible(user: Any) -> Any:
    return Incident.objects.visible_to(user).open()


# One statement for a batch of reports: the bounding box, window and category filter of
# duplicate_candidates, per report (PostgreSQL; the reports as one JSON document, a fixed
# statement: see apps.core.bulk for why).
_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
_BATCH_SQL = f"""
    SELECT v.idx, i.id, i.lat, i.lng, i.created_at, i.category_id
    FROM jsonb_to_recordset(%s::jsonb) AS v (
        idx int, south float8, north float8, west float8, east float8,
        since timestamptz, until timestamptz, codes text[]
    )
    CROSS JOIN LATERAL (
        SELECT i.id, i.lat, i.lng, i.created_at, i.category_id
        FROM {Incident._meta.db_table} i JOIN {Category._meta.db_table} c ON c.id = i.category_id
        WHERE i.status IN ({_OPEN})
          AND i.created_at >= v.since AND i.created_at <= v.until
          AND i.lat >= v.south AND i.lat <= v.north
          AND i.lng >= v.west AND i.lng <= v.east
          AND c.code = ANY(v.codes)
    ) AS i
"""  # noqa: S608


def duplicate_candidates_many(
    reports: list[tuple[float, float, Category, datetime]], *, limit: int = 10
) -> list[list[CandidateRef]]:
    """:func:`duplicate_candidates` of many reports ``(lat, lng, category, at)`` at once,
    as references, in order: one query on PostgreSQL, one per report elsewhere."""
    radius, window = duplicate_radius_m(), duplicate_window_hours()
    if not reports or radius <= 0 or window <= 0 or limit <= 0:
        return [[] for _report in reports]
    if connection.vendor != "postgresql":
        return [
            [
                {"incident_id": c.incident.pk, "distance_m": c.distance_m, "score": c.score}
                for c in duplicate_candidates(
                    lat=lat, lng=lng, category=category, at=at, limit=limit
                )
            ]
            for lat, lng, category, at in reports
        ]
    span = timedelta(hours=window)
    wanted = []
    for index, (lat, lng, category, at) in enumerate(reports):
        south, north, west, east = bounding_box(lat, lng, radius)
        wanted.append(
            {
                "idx": index,
                "south": south,
                "north": north,
                "west": west,
                "east": east,
                "since": (at - span).isoformat(),
                "until": (at + span).isoformat(),
                "codes": [category.code, *(str(c) for c in (category.related_codes or []))],
            }
        )
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_SQL, [json.dumps(wanted)])
        rows = cursor.fetchall()
    scored: dict[int, list[tuple[float, float, int, float]]] = {}
    for index, incident_id, lat, lng, created_at, category_id in rows:
        r_lat, r_lng, category, at = reports[index]
        measured = measure(
            r_lat, r_lng, at, lat, lng, created_at, category_id == category.pk, radius, window
        )
        if measured is not None:
            distance_m, _age, score = measured
            scored.setdefault(index, []).append(
                (score, -created_at.timestamp(), incident_id, distance_m)
            )
    found: list[list[CandidateRef]] = []
    for index in range(len(reports)):
        items = sorted(scored.get(index, []))[:limit]
        found.append(
            [
                {"incident_id": incident_id, "distance_m": distance_m, "score": score}
                for score, _created, incident_id, distance_m in items
            ]
        )
    return found

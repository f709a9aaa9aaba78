"""Which teams to send to an incident: ranked, with the reasons shown.

``recommend_teams(incident=..., limit=5)`` returns up to ``limit`` :class:`Recommendation`
rows, best first.

**Who is considered.** Every active team of the new area (mutual aid crosses street and
town borders; the operator's scope limits *which incidents* they may ask about, not which
teams may help: the API only answers for an incident the caller can command, see
``apps.incidents.selectors.incidents.incident_can_command``). Excluded: inactive teams,
teams out of service or off duty (status ``off_duty`` or no active member on duty), and
teams already live on this incident.

**Score** (higher is better, 0 – 1100)::

    score = 1000 × required_fraction + 100 / (1 + effective_minutes / 15)

* ``required_fraction`` = share of the category's *required* tags the team has
  (``capabilities.py``; 1 when the category requires none). Because the second term is
  below 100, and a category requires at most a few tags, **capability dominates**: a
  capable team an hour away ranks above an incapable one next door.
* ``effective_minutes`` = ETA + penalties, so that everything else is traded in the one
  unit dispatchers think in:

  - ETA from the routing provider (``routing.py``: great-circle × 1.3 ÷ the speed of the
    team's kind by default) from the team's last fix, or its home region's centre;
  - +10 min if the team is ``dispatched`` (on its way to another job), +20 min if
    ``busy`` (on scene elsewhere);
  - +8 min per live task (load);
  - +5 min per *preferred* tag it lacks (e.g. ``medical`` when there are casualties).

**Spatial prefilter.** Teams are read ring by ring from one indexed bounding box on
``last_lat``/``last_lng`` (partial index ``dispatch_team_position_idx``), radius 2, 4, 8,
16, 32 km (``DISPATCH_RECOMMEND_RADII_KM``), then the rest. Teams without a fix carry
their home region's centre in those columns (``services.teams.team_fill_home_position``,
``last_position_at`` stays null), so they are on the same indexed path; teams with no
position at all only come in the last pass, without distance.

1. Searching stops at radius *r* as soon as the ``limit``-th best score is at least the
   best score any team *outside* the box could still reach (full capability, no
   penalty, the provider's lower-bound ETA for a straight line of *r* km): the answer
   is then exact, not approximate (``test_the_ring_search_gives_the_same_top_as_...``).
2. Outer rings read only teams that could still beat the current ``limit``-th: the SQL
   drops rows whose lower-bound ETA plus certain penalties already exceeds its
   effective minutes (``_PRUNE``).
3. Capable teams are searched first (``capabilities @> required`` in SQL); partly
   capable ones only when fewer than ``limit`` capable teams exist in the whole area.

Each ring is one hand-written query (no per-team queries; the ORM's compile cost was
larger than the query), plus one to load the chosen teams: 2–4 queries in the bench
(5,000 teams, ``bench/bench_recommend.py``: p50 ≈ 10 ms, p99 ≈ 17 ms in-process).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from apps.dispatch.capabilities import CAPABILITY_LABELS, Requirement, requirements_for
from apps.dispatch.models import LIVE_TASK_STATUSES, Team, TeamStatus
from apps.dispatch.routing import (
    RoutingProvider,
    get_routing_provider,
    max_speed_kmh,
    profile_key,
)
from apps.incidents.models import Incident
from apps.regions.geo import EARTH_RADIUS_KM, haversine_km

REQUIRED_WEIGHT = 1000.0
PROXIMITY_WEIGHT = 100.0
HALF_SCORE_MINUTES = 15.0
PENALTY_MINUTES: dict[str, float] = {
    TeamStatus.AVAILABLE: 0.0,
    TeamStatus.DISPATCHED: 10.0,
    TeamStatus.BUSY: 20.0,
}
LOAD_PENALTY_MINUTES = 8.0
PREFERRED_PENALTY_MINUTES = 5.0
DEFAULT_RADII_KM: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
RECOMMENDABLE_STATUSES = (TeamStatus.AVAILABLE, TeamStatus.DISPATCHED, TeamStatus.BUSY)
LIMIT_MAX = 50


class ReasonDict(TypedDict):
    code: str
    detail: str


@dataclass(frozen=True)
class CapabilityMatch:
    required: tuple[str, ...]
    matched: tuple[str, ...]
    missing: tuple[str, ...]
    preferred_matched: tuple[str, ...]
    preferred_missing: tuple[str, ...]

    @property
    def required_fraction(self) -> float:
        return 1.0 if not self.required else len(self.matched) / len(self.required)


@dataclass
class Recommendation:
    """One ranked team. ``distance_km``/``eta_minutes`` are None for a team with no
    position at all; ``position`` says where the distance was measured from."""

    team: Team
    score: float
    distance_km: float | None
    eta_minutes: float | None
    effective_minutes: float
    capability_match: CapabilityMatch
    load: int
    position: str  # "fix" | "home_region" | "unknown"
    position_at: datetime | None
    reasons: list[ReasonDict] = field(default_factory=list)


@dataclass(slots=True)
class _Candidate:
    team_id: int
    code: str
    kind: str
    status: str
    load: int
    position: str
    position_at: datetime | None
    distance_km: float | None
    eta_minutes: float | None
    effective_minutes: float
    capabilities: frozenset[str]
    score: float


def _proximity(minutes: float) -> float:
    return PROXIMITY_WEIGHT / (1.0 + minutes / HALF_SCORE_MINUTES)


def _radii() -> tuple[float, ...]:
    return tuple(getattr(settings, "DISPATCH_RECOMMEND_RADII_KM", DEFAULT_RADII_KM))


def _bbox(lat: float, lng: float, radius_km: float) -> tuple[float, float, float, float]:
    """A box containing every point within ``radius_km`` of (lat, lng).

    The longitude half-width uses the cosine of the box's most poleward latitude, where
    a degree of longitude is shortest, and 1 % margin, so no team within the radius is
    outside the box (which the stopping rule relies on).
    """
    dlat = radius_km / KM_PER_DEGREE * 1.01
    edge = min(89.0, abs(lat) + dlat)
    dlng = radius_km / (KM_PER_DEGREE * math.cos(math.radians(edge))) * 1.01
    return (lat - dlat, lat + dlat, lng - dlng, lng + dlng)  # south, north, west, east


def _eta_lower_bound_minutes(provider: RoutingProvider, km: float) -> float:
    bound = getattr(provider, "eta_lower_bound_seconds", None)
    if bound is not None:
        return float(bound(km)) / 60.0
    return km / max_speed_kmh() * 60.0


def _match(capabilities: Any, requirement: Requirement) -> CapabilityMatch:
    have = set(capabilities or [])
    return CapabilityMatch(
        required=requirement.required,
        matched=tuple(t for t in requirement.required if t in have),
        missing=tuple(t for t in requirement.required if t not in have),
        preferred_matched=tuple(t for t in requirement.preferred if t in have),
        preferred_missing=tuple(t for t in requirement.preferred if t not in have),
    )


# The ring query. Hand-written because it runs several times per recommendation on the
# dispatch hot path, and compiling the equivalent ORM query cost more than PostgreSQL
# took to run it. Uses the partial index dispatch_team_position_idx for the box, the
# member index for "someone on duty" and dispatch_task_team_live_idx for the load.
# {capability}, {box} and {outside} are fixed fragments below (never user input).
_RING_SQL = """
SELECT t.id, t.code, t.kind, t.status, t.capabilities, t.last_lat, t.last_lng,
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
  {capability} {box} {outside} {prune}
"""
# Outer rings only read teams that could still beat the current ``limit``-th: the
# lower-bound ETA of their straight-line distance plus the penalties they certainly pay
# (status, load, missing preferred tags) must not exceed the effective minutes of that
# team. The ETA itself still comes from the routing provider, in Python.
_PRUNE = """
  AND (2 * {earth_km} * asin(least(1.0, sqrt(
          power(sin(radians(t.last_lat - %(lat)s) / 2), 2)
          + cos(radians(%(lat)s)) * cos(radians(t.last_lat))
            * power(sin(radians(t.last_lng - %(lng)s) / 2), 2)))) * %(min_per_km)s
       + CASE t.status WHEN 'dispatched' THEN %(pen_dispatched)s
                       WHEN 'busy' THEN %(pen_busy)s ELSE 0 END
       + %(pen_load)s * l.n + %(pen_preferred)s * ({missing_preferred})
      ) <= %(max_effective)s
"""
_CAPABLE = "AND t.capabilities @> %(required)s::jsonb"
_NOT_CAPABLE = "AND NOT (t.capabilities @> %(required)s::jsonb)"
_IN_BOX = (
    "AND t.last_lat BETWEEN %(south)s AND %(north)s AND t.last_lng BETWEEN %(west)s AND %(east)s"
)
_OUTSIDE = (
    "AND NOT (t.last_lat BETWEEN %(in_south)s AND %(in_north)s "
    "AND t.last_lng BETWEEN %(in_west)s AND %(in_east)s)"
)
# The last pass also takes teams without any position (NOT (NULL BETWEEN ...) is NULL).
_OUTSIDE_OR_UNKNOWN = (
    "AND (t.last_lat IS NULL OR t.last_lng IS NULL OR NOT ("
    "t.last_lat BETWEEN %(in_south)s AND %(in_north)s "
    "AND t.last_lng BETWEEN %(in_west)s AND %(in_east)s))"
)


def _ring_rows(
    incident: Incident,
    capability: str,
    requirement: Requirement,
    box: tuple[float, float, float, float] | None,
    inner: tuple[float, float, float, float] | None,
    prune: tuple[float, float] | None = None,
) -> list[tuple[Any, ...]]:
    """One ring's rows; ``prune`` = (lower-bound minutes per km, max effective minutes)."""
    params: dict[str, Any] = {
        "live": list(LIVE_TASK_STATUSES),
        "statuses": list(RECOMMENDABLE_STATUSES),
        "incident": incident.pk,
        "required": json.dumps(list(requirement.required)),
    }
    prune_sql = ""
    if prune is not None and box is not None:
        missing = " + ".join(
            f"(NOT (t.capabilities ? %(pref_{i})s))::int" for i in range(len(requirement.preferred))
        )
        prune_sql = _PRUNE.format(earth_km=EARTH_RADIUS_KM, missing_preferred=missing or "0")
        params.update({f"pref_{i}": tag for i, tag in enumerate(requirement.preferred)})
        params.update(
            lat=incident.lat,
            lng=incident.lng,
            min_per_km=prune[0],
            max_effective=prune[1] + 1e-6,
            pen_dispatched=PENALTY_MINUTES[TeamStatus.DISPATCHED],
            pen_busy=PENALTY_MINUTES[TeamStatus.BUSY],
            pen_load=LOAD_PENALTY_MINUTES,
            pen_preferred=PREFERRED_PENALTY_MINUTES,
        )
    box_sql = outside_sql = ""
    if box is not None:
        box_sql = _IN_BOX
        params.update(zip(("south", "north", "west", "east"), box, strict=True))
    if inner is not None:
        outside_sql = _OUTSIDE if box is not None else _OUTSIDE_OR_UNKNOWN
        params.update(zip(("in_south", "in_north", "in_west", "in_east"), inner, strict=True))
    sql = _RING_SQL.format(capability=capability, box=box_sql, outside=outside_sql, prune=prune_sql)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def recommend_teams(
    *,
    incident: Incident,
    limit: int = 5,
    now: datetime | None = None,
    provider: RoutingProvider | None = None,
) -> list[Recommendation]:
    """The ``limit`` best teams for ``incident``, best first (see the module doc).

    Does not check who asks: callers check ``incident_can_command`` first.
    """
    limit = max(1, min(int(limit), LIMIT_MAX))
    now = now or timezone.now()
    provider = provider or get_routing_provider()
    casualties = (incident.injured or 0) + (incident.trapped or 0) > 0
    requirement = requirements_for(incident.category.code, casualties=casualties)
    found: dict[int, _Candidate] = {}

    if requirement.required:
        n = len(requirement.required)
        phases = [(_CAPABLE, 1.0), (_NOT_CAPABLE, (n - 1) / n)]
    else:
        phases = [("", 1.0)]
    for capability, best_fraction in phases:
        if _search_rings(capability, incident, requirement, provider, limit, best_fraction, found):
            break

    ranked = sorted(found.values(), key=_rank_key)[:limit]
    teams = Team.objects.select_related("home_region", "department").in_bulk(
        [c.team_id for c in ranked]
    )
    return [_recommendation(c, teams[c.team_id], requirement, now) for c in ranked]


def _rank_key(candidate: _Candidate) -> tuple[float, float, str]:
    distance = candidate.distance_km if candidate.distance_km is not None else math.inf
    return (-candidate.score, distance, candidate.code)


def _search_rings(
    capability: str,
    incident: Incident,
    requirement: Requirement,
    provider: RoutingProvider,
    limit: int,
    best_fraction: float,
    found: dict[int, _Candidate],
) -> bool:
    """Widen the box ring by ring; True once the top ``limit`` is final (see module doc).

    Each ring reads only the teams between the previous box and this one.
    """
    inner: tuple[float, float, float, float] | None = None
    profiles: dict[tuple[str, str], str] = {}
    prune: tuple[float, float] | None = None
    min_per_km = _eta_lower_bound_minutes(provider, 1.0)
    for radius in (*_radii(), None):
        box = None if radius is None else _bbox(incident.lat, incident.lng, radius)
        for row in _ring_rows(incident, capability, requirement, box, inner, prune):
            candidate = _score(row, incident, requirement, provider, profiles)
            found[candidate.team_id] = candidate
        if radius is None:
            return len(found) >= limit
        inner = box
        if len(found) >= limit:
            kth = sorted(c.score for c in found.values())[-limit]
            best_outside = REQUIRED_WEIGHT * best_fraction + _proximity(
                _eta_lower_bound_minutes(provider, radius)
            )
            if kth >= best_outside:
                return True
            prune = _prune_threshold(kth, best_fraction, min_per_km)
    return False  # pragma: no cover - the loop always ends on the unbounded pass


def _prune_threshold(
    kth_score: float, best_fraction: float, min_per_km: float
) -> tuple[float, float] | None:
    """The most effective minutes a team of this phase may have and still reach the
    ``limit``-th score; None when every team of the phase beats it (a lower tier) or
    the phase mixes tiers (partly capable teams: no pruning there)."""
    if best_fraction < 1.0:
        return None
    margin = kth_score - REQUIRED_WEIGHT * best_fraction
    if margin <= 0:
        return None
    return min_per_km, HALF_SCORE_MINUTES * (PROXIMITY_WEIGHT / margin - 1.0)


def _score(
    row: tuple[Any, ...],
    incident: Incident,
    requirement: Requirement,
    provider: RoutingProvider,
    profiles: dict[tuple[str, str], str],
) -> _Candidate:
    """Score one ring row. Hot loop (hundreds of rows per call): plain arithmetic here;
    the capability breakdown is built for the chosen teams only (``_recommendation``)."""
    pk, code, kind, status, capabilities, lat, lng, position_at, region_code, load = row
    if isinstance(capabilities, str):  # Django's psycopg setup hands jsonb over as text
        capabilities = json.loads(capabilities)
    have = frozenset(capabilities or ())
    required = requirement.required
    fraction = 1.0 if not required else sum(t in have for t in required) / len(required)
    missing_preferred = sum(t not in have for t in requirement.preferred)
    penalty = (
        PENALTY_MINUTES.get(status, 0.0)
        + LOAD_PENALTY_MINUTES * load
        + PREFERRED_PENALTY_MINUTES * missing_preferred
    )
    if lat is None or lng is None:
        distance = eta = None
        position = "unknown"
        proximity = 0.0
        effective = math.inf
    else:
        distance = haversine_km(lat, lng, incident.lat, incident.lng)
        profile = profiles.get((kind, region_code))
        if profile is None:
            profile = profiles[(kind, region_code)] = profile_key(kind, region_code)
        eta = provider.eta_seconds(lat, lng, incident.lat, incident.lng, profile=profile) / 60.0
        position = "fix" if position_at is not None else "home_region"
        effective = eta + penalty
        proximity = _proximity(effective)
    return _Candidate(
        team_id=pk,
        code=code,
        kind=kind,
        status=status,
        load=load,
        position=position,
        position_at=position_at,
        distance_km=distance,
        eta_minutes=eta,
        effective_minutes=effective,
        capabilities=have,
        score=REQUIRED_WEIGHT * fraction + proximity,
    )


def _recommendation(
    candidate: _Candidate, team: Team, requirement: Requirement, now: datetime
) -> Recommendation:
    match = _match(candidate.capabilities, requirement)
    return Recommendation(
        team=team,
        score=round(candidate.score, 2),
        distance_km=None if candidate.distance_km is None else round(candidate.distance_km, 2),
        eta_minutes=None if candidate.eta_minutes is None else round(candidate.eta_minutes, 1),
        effective_minutes=round(candidate.effective_minutes, 1)
        if math.isfinite(candidate.effective_minutes)
        else -1.0,
        capability_match=match,
        load=candidate.load,
        position=candidate.position,
        position_at=candidate.position_at,
        reasons=_reasons(candidate, match, team, now),
    )


def _tags(tags: tuple[str, ...]) -> str:
    """Capability tags as a dispatcher reads them (their labels; the codes stay in
    ``capability_match``)."""
    return ", ".join(str(CAPABILITY_LABELS.get(tag, tag)) for tag in tags)


def _reasons(
    candidate: _Candidate, match: CapabilityMatch, team: Team, now: datetime
) -> list[ReasonDict]:
    """Short machine codes with a human sentence each, in the order a dispatcher reads."""
    reasons: list[ReasonDict] = []
    if match.matched:
        reasons.append({"code": "capability_match", "detail": _("Has %s") % _tags(match.matched)})
    if match.missing:
        reasons.append(
            {"code": "capability_missing", "detail": _("Lacks %s") % _tags(match.missing)}
        )
    if not match.required:
        reasons.append(
            {"code": "capability_any", "detail": _("The category needs no special capability")}
        )
    if match.preferred_matched:
        reasons.append(
            {
                "code": "preferred_match",
                "detail": _("Also has %s") % _tags(match.preferred_matched),
            }
        )
    if match.preferred_missing:
        reasons.append(
            {
                "code": "preferred_missing",
                "detail": _("Would help: %s") % _tags(match.preferred_missing),
            }
        )
    if candidate.distance_km is None or candidate.eta_minutes is None:
        reasons.append({"code": "position_unknown", "detail": _("No known position")})
    else:
        reasons.append(
            {
                "code": "distance",
                "detail": _("%(km).1f km away, about %(min).0f min")
                % {"km": candidate.distance_km, "min": candidate.eta_minutes},
            }
        )
        if candidate.position == "fix" and candidate.position_at is not None:
            age = max(0, int((now - candidate.position_at).total_seconds() // 60))
            reasons.append(
                {
                    "code": "position_fix",
                    "detail": ngettext(
                        "Position from a GPS fix %(n)d minute ago",
                        "Position from a GPS fix %(n)d minutes ago",
                        age,
                    )
                    % {"n": age},
                }
            )
        else:
            reasons.append(
                {
                    "code": "position_home_region",
                    "detail": _("No GPS fix: measured from the centre of %s")
                    % team.home_region.name_zh,
                }
            )
    reasons.append(
        {
            "code": f"status_{candidate.status}",
            "detail": str(TeamStatus(candidate.status).label),
        }
    )
    if candidate.load:
        reasons.append(
            {
                "code": "load",
                "detail": ngettext("%(n)d live task", "%(n)d live tasks", candidate.load)
                % {"n": candidate.load},
            }
        )
    return reasons

"""Team recommendation with known geometry: capability first, then ETA and penalties."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.dispatch import recommendation
from apps.dispatch.models import DispatchTask, Team, TeamStatus
from apps.dispatch.recommendation import recommend_teams
from apps.dispatch.routing import GreatCircleProvider
from apps.incidents.models import Incident
from tests.factories.dispatch import TeamFactory, TeamMemberFactory
from tests.factories.incidents import (
    CategoryFactory,
    IncidentFactory,
    TwoTowns,
    WaterloggingCategoryFactory,
)

pytestmark = pytest.mark.django_db

# The incident sits at the centre of 三桥街道; one km north is this many degrees.
ORIGIN = (34.276, 108.850)
KM_LAT = 1 / 111.195
PROVIDER = GreatCircleProvider({"default": 30.0}, 1.3)


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def flood(tree: TwoTowns) -> Incident:
    """城市内涝 N02: requires pumping, prefers water rescue."""
    return IncidentFactory(
        region=tree.sanqiao, category=WaterloggingCategoryFactory(), lat=ORIGIN[0], lng=ORIGIN[1]
    )


def team_at(
    tree: TwoTowns,
    km_north: float,
    capabilities: list[str],
    *,
    on_duty: bool = True,
    status: str = TeamStatus.AVAILABLE,
    fix: bool = True,
    **kwargs: Any,
) -> Team:
    """A team ``km_north`` km north of the incident, with a GPS fix, one member."""
    values: dict[str, Any] = {
        "home_region": tree.sanqiao,
        "capabilities": capabilities,
        "status": status,
        "last_lat": ORIGIN[0] + km_north * KM_LAT,
        "last_lng": ORIGIN[1],
        "last_position_at": timezone.now() - timedelta(minutes=3) if fix else None,
        **kwargs,
    }
    team = TeamFactory(**values)
    TeamMemberFactory(team=team, on_duty=on_duty)
    return team


def codes(items: list[recommendation.Recommendation]) -> list[str]:
    return [item.team.code for item in items]


def live_task(team: Team, status: str = DispatchTask.Status.DISPATCHED) -> DispatchTask:
    other = IncidentFactory(region=team.home_region)
    return DispatchTask.objects.create(
        incident=other, team=team, status=status, dispatched_at=timezone.now()
    )


# --- Known geometry ------------------------------------------------------------------------


def test_a_nearer_team_without_the_capability_ranks_below_a_farther_capable_one(
    tree: TwoTowns, flood: Incident
) -> None:
    # given: a rescue team 0.5 km away without pumps, a pumping team 12 km away
    near = team_at(tree, 0.5, ["medical"], code="near-incapable")
    far = team_at(tree, 12.0, ["pumping"], code="far-capable")

    # when
    result = recommend_teams(incident=flood, provider=PROVIDER)

    # then
    assert codes(result) == [far.code, near.code]
    assert result[0].capability_match.missing == ()
    assert result[1].capability_match.missing == ("pumping",)
    assert result[0].distance_km == pytest.approx(12.0, abs=0.05)
    assert result[1].distance_km == pytest.approx(0.5, abs=0.05)
    assert result[0].score > 1000 > result[1].score


def test_between_capable_teams_the_nearer_one_ranks_first(tree: TwoTowns, flood: Incident) -> None:
    far = team_at(tree, 9.0, ["pumping", "water_rescue"])
    near = team_at(tree, 3.0, ["pumping", "water_rescue"])

    result = recommend_teams(incident=flood, provider=PROVIDER)

    assert codes(result) == [near.code, far.code]
    # 3 km × 1.3 road factor at 30 km/h
    assert result[0].eta_minutes == pytest.approx(3 * 1.3 / 30 * 60, abs=0.2)


def test_off_duty_teams_are_excluded(tree: TwoTowns, flood: Incident) -> None:
    # given: the nearest capable team is off duty; another has status available but
    # nobody on duty (a stale status must not send an empty team)
    team_at(tree, 0.3, ["pumping"], status=TeamStatus.OFF_DUTY, on_duty=False)
    team_at(tree, 0.4, ["pumping"], status=TeamStatus.AVAILABLE, on_duty=False)
    on_duty = team_at(tree, 6.0, ["pumping"])

    result = recommend_teams(incident=flood, provider=PROVIDER)

    assert codes(result) == [on_duty.code]


def test_out_of_service_and_inactive_teams_are_excluded(tree: TwoTowns, flood: Incident) -> None:
    team_at(tree, 0.3, ["pumping"], status=TeamStatus.OUT_OF_SERVICE)
    team_at(tree, 0.4, ["pumping"], is_active=False)
    ok = team_at(tree, 5.0, ["pumping"])

    assert codes(recommend_teams(incident=flood, provider=PROVIDER)) == [ok.code]


def test_teams_already_live_on_the_incident_are_excluded(tree: TwoTowns, flood: Incident) -> None:
    on_it = team_at(tree, 1.0, ["pumping"])
    DispatchTask.objects.create(
        incident=flood,
        team=on_it,
        status=DispatchTask.Status.ACCEPTED,
        dispatched_at=timezone.now(),
    )
    other = team_at(tree, 4.0, ["pumping"])

    assert codes(recommend_teams(incident=flood, provider=PROVIDER)) == [other.code]


def test_load_lowers_the_rank_of_an_equally_placed_team(tree: TwoTowns, flood: Incident) -> None:
    # given: two identical capable teams at the same place; one has a live task elsewhere
    loaded = team_at(tree, 2.0, ["pumping", "water_rescue"], code="a-loaded")
    idle = team_at(tree, 2.0, ["pumping", "water_rescue"], code="b-idle")
    live_task(loaded)

    result = recommend_teams(incident=flood, provider=PROVIDER)

    assert codes(result) == [idle.code, loaded.code]
    assert (result[0].load, result[1].load) == (0, 1)
    assert {"code": "load", "detail": "1 live task"} in result[1].reasons


def test_a_busy_team_ranks_below_an_available_one_a_little_farther(
    tree: TwoTowns, flood: Incident
) -> None:
    busy = team_at(tree, 1.0, ["pumping"], status=TeamStatus.BUSY)
    live_task(busy, DispatchTask.Status.ON_SCENE)
    free = team_at(tree, 4.0, ["pumping"])

    assert codes(recommend_teams(incident=flood, provider=PROVIDER)) == [free.code, busy.code]


def test_reasons_explain_capability_distance_position_and_status(
    tree: TwoTowns, flood: Incident
) -> None:
    team_at(tree, 2.0, ["pumping"])

    (item,) = recommend_teams(incident=flood, provider=PROVIDER)

    reason_codes = [r["code"] for r in item.reasons]
    assert reason_codes == [
        "capability_match",
        "preferred_missing",
        "distance",
        "position_fix",
        "status_available",
    ]
    assert item.reasons[0]["detail"] == "Has Pumping / drainage"
    assert item.reasons[1]["detail"] == "Would help: Water rescue"
    assert item.reasons[2]["detail"].startswith("2.0 km away, about 5 min")
    assert item.position == "fix"


def test_a_team_without_a_fix_is_measured_from_its_home_region_centre(
    tree: TwoTowns, flood: Incident
) -> None:
    # given: a 钓台 team that never sent a position (the factory stores the centre)
    team = TeamFactory(home_region=tree.diaotai, capabilities=["pumping"])
    TeamMemberFactory(team=team, on_duty=True)

    (item,) = recommend_teams(incident=flood, provider=PROVIDER)

    assert item.position == "home_region"
    # 三桥 (34.276, 108.850) → 钓台 (34.305, 108.718): about 12.6 km
    assert item.distance_km == pytest.approx(12.5, abs=0.4)
    assert "position_home_region" in [r["code"] for r in item.reasons]


def test_a_team_with_no_position_at_all_comes_last_without_distance(
    tree: TwoTowns, flood: Incident
) -> None:
    lost = team_at(tree, 0.0, ["pumping"], last_lat=None, last_lng=None, fix=False)
    placed = team_at(tree, 20.0, ["pumping"])

    result = recommend_teams(incident=flood, provider=PROVIDER)

    assert codes(result) == [placed.code, lost.code]
    assert result[1].distance_km is None
    assert result[1].position == "unknown"


def test_casualties_make_medical_a_preferred_capability(tree: TwoTowns, flood: Incident) -> None:
    flood.injured = 2
    plain = team_at(tree, 1.0, ["pumping", "water_rescue"], code="a-plain")
    medic = team_at(tree, 1.0, ["pumping", "water_rescue", "medical"], code="b-medic")

    result = recommend_teams(incident=flood, provider=PROVIDER)

    assert codes(result) == [medic.code, plain.code]


def test_a_category_without_requirements_ranks_by_distance_only(tree: TwoTowns) -> None:
    incident = IncidentFactory(
        region=tree.sanqiao, category=CategoryFactory(code="O99"), lat=ORIGIN[0], lng=ORIGIN[1]
    )
    far = team_at(tree, 7.0, [])
    near = team_at(tree, 1.0, ["hazmat"])

    result = recommend_teams(incident=incident, provider=PROVIDER)

    assert codes(result) == [near.code, far.code]
    assert all(item.score > 1000 for item in result)


def test_the_region_speed_profile_changes_the_eta(tree: TwoTowns, flood: Incident) -> None:
    team_at(tree, 10.0, ["pumping"], kind=Team.Kind.FIRE)
    provider = GreatCircleProvider({"default": 30.0, "fire": 40.0}, 1.3)

    (item,) = recommend_teams(incident=flood, provider=provider)

    assert item.eta_minutes == pytest.approx(10 * 1.3 / 40 * 60, abs=0.2)


# --- The prefilter is exact ----------------------------------------------------------------


def test_the_ring_search_gives_the_same_top_as_scoring_every_team(
    tree: TwoTowns, flood: Incident, settings: Any
) -> None:
    # given: 300 teams scattered over ±25 km with random capabilities, status and load
    rng = random.Random(20260104)
    tags = ["pumping", "water_rescue", "medical", "hazmat"]
    for i in range(300):
        distance = rng.uniform(0, 25)
        bearing = rng.uniform(0, 2 * math.pi)
        status = rng.choice([TeamStatus.AVAILABLE] * 4 + [TeamStatus.DISPATCHED, TeamStatus.BUSY])
        team = TeamFactory(
            code=f"r{i:03d}",
            home_region=tree.sanqiao,
            capabilities=rng.sample(tags, rng.randint(0, 3)),
            status=status,
            last_lat=ORIGIN[0] + distance * math.cos(bearing) * KM_LAT,
            last_lng=ORIGIN[1]
            + distance * math.sin(bearing) * KM_LAT / math.cos(math.radians(ORIGIN[0])),
            last_position_at=timezone.now(),
        )
        TeamMemberFactory(team=team, on_duty=True)
        if rng.random() < 0.2:
            live_task(team)

    # when: the ring search, and a search that reads every team in one pass
    ringed = recommend_teams(incident=flood, limit=10, provider=PROVIDER)
    settings.DISPATCH_RECOMMEND_RADII_KM = ()
    everything = recommend_teams(incident=flood, limit=10, provider=PROVIDER)

    # then
    assert codes(ringed) == codes(everything)
    assert [i.score for i in ringed] == sorted((i.score for i in ringed), reverse=True)


# --- Queries -------------------------------------------------------------------------------


def _queries(incident: Incident) -> int:
    with CaptureQueriesContext(connection) as captured:
        recommend_teams(incident=incident, provider=PROVIDER)
    return len(captured)


def test_the_number_of_queries_does_not_grow_with_the_number_of_teams(
    tree: TwoTowns, flood: Incident
) -> None:
    # given: capable teams within the first ring; then ten times as many
    for i in range(6):
        team_at(tree, 0.2 + i * 0.1, ["pumping", "water_rescue"])
    few = _queries(flood)
    for i in range(60):
        team = team_at(tree, 0.2 + (i % 10) * 0.1, ["pumping", "water_rescue"])
        live_task(team)

    # when
    many = _queries(flood)

    # then: one query for the first ring, one to load the five teams
    assert few == many == 2

"""Positions API: batch upload, incident track replay, the live map feed — and who sees what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.dispatch import tracks
from apps.dispatch.models import Team, TrackChunk
from apps.dispatch.services.positions import Ping, pings_ingest
from apps.incidents.models import Incident
from apps.regions.models import Region
from tests.factories.accounts import CitizenFactory, MembershipFactory, StaffUserFactory
from tests.factories.dispatch import (
    DispatchTaskFactory,
    TeamFactory,
    TeamMemberFactory,
    TrackChunkFactory,
)
from tests.factories.incidents import IncidentFactory
from tests.factories.regions import NewTownFactory, StreetFactory

NOW = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)
POSITIONS = "/api/v1/me/positions/"
LATEST = "/api/v1/positions/latest/"


def tracks_url(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.pk}/tracks/"


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@dataclass(frozen=True)
class Cast:
    fengdong: Region
    sanqiao: Region
    fengxi: Region
    diaotai: Region
    operator: User  # 沣东 operator
    other_operator: User  # 沣西 operator
    citizen: User
    team: Team  # a 三桥 team
    responder: User
    colleague: User
    other_team: Team  # a 钓台 team
    other_responder: User


@pytest.fixture(autouse=True)
def _frozen_now() -> Any:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def cast(db: None) -> Cast:
    fengdong = NewTownFactory(code="fengdong")
    fengxi = NewTownFactory(code="fengxi")
    sanqiao = StreetFactory(code="fd-sanqiao", parent=fengdong)
    diaotai = StreetFactory(code="fx-diaotai", parent=fengxi)
    team = TeamFactory(code="sanqiao-rescue", home_region=sanqiao)
    other_team = TeamFactory(code="diaotai-rescue", home_region=diaotai)
    members = [
        TeamMemberFactory(team=team, on_duty=True, is_leader=True),
        TeamMemberFactory(team=team, on_duty=True),
        TeamMemberFactory(team=other_team, on_duty=True),
    ]
    for member in members:
        MembershipFactory(user=member.user, region=member.team.home_region, role=Role.RESPONDER)
    return Cast(
        fengdong=fengdong,
        sanqiao=sanqiao,
        fengxi=fengxi,
        diaotai=diaotai,
        operator=StaffUserFactory(region=fengdong, region__role=Role.OPERATOR),
        other_operator=StaffUserFactory(region=fengxi, region__role=Role.OPERATOR),
        citizen=CitizenFactory(),
        team=team,
        responder=members[0].user,
        colleague=members[1].user,
        other_team=other_team,
        other_responder=members[2].user,
    )


def walk(user: User, start: datetime, minutes: int, step_s: int = 5) -> int:
    """Store ``minutes`` of fixes every ``step_s`` s from ``start``; returns the count."""
    points = [
        Ping(at=start + timedelta(seconds=s), lat=34.27 + s * 1e-5, lng=108.85, accuracy_m=5)
        for s in range(0, minutes * 60, step_s)
    ]
    return pings_ingest(user=user, points=points).accepted


# --- POST me/positions/ -------------------------------------------------------------------------


def test_a_responder_uploads_a_batch_and_gets_the_counts(cast: Cast) -> None:
    # given fixes as epoch ms and as ISO times, one of them bad
    t0 = tracks.to_epoch_ms(NOW - timedelta(minutes=3))
    body = {
        "points": [
            {"t": t0, "lat": 34.27, "lng": 108.85, "accuracy": 4.5},
            {"t": t0 + 5000, "lat": 34.2701, "lng": 108.85},
            {"t": "2025-07-01T17:57:10+08:00", "lat": 34.2702, "lng": 108.85},
            {"t": t0 + 15000, "lat": 134.0, "lng": 108.85},
        ]
    }
    # when the responder's phone sends them
    response = client_for(cast.responder).post(POSITIONS, body, format="json")
    # then the good ones are stored and the bad one reported by index
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (3, 0, 1)
    assert data["rejections"][0]["index"] == 3
    assert data["rejections"][0]["code"] == "lat_out_of_range"
    assert data["rejections"][0]["message"]
    assert TrackChunk.objects.get(user=cast.responder).count == 3


def test_a_fully_duplicate_batch_is_ok_with_every_point_a_duplicate(cast: Cast) -> None:
    client = client_for(cast.responder)
    t0 = tracks.to_epoch_ms(NOW - timedelta(minutes=3))
    body = {"points": [{"t": t0 + i * 5000, "lat": 34.27, "lng": 108.85} for i in range(20)]}
    client.post(POSITIONS, body, format="json")
    # when the same batch comes again without an Idempotency-Key
    response = client.post(POSITIONS, body, format="json")
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 20, "rejected": 0, "rejections": []}


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(cast: Cast) -> None:
    client = client_for(cast.responder)
    key = str(uuid.uuid4())
    body = {"points": [{"t": tracks.to_epoch_ms(NOW), "lat": 34.27, "lng": 108.85}]}
    first = client.post(POSITIONS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(POSITIONS, body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 200
    assert (
        again.json()
        == first.json()
        == {
            "accepted": 1,
            "duplicates": 0,
            "rejected": 0,
            "rejections": [],
        }
    )
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_batch_over_the_maximum_is_refused_whole(cast: Cast, settings: Settings) -> None:
    settings.DISPATCH_PING_MAX_BATCH = 10
    t0 = tracks.to_epoch_ms(NOW - timedelta(minutes=3))
    body = {"points": [{"t": t0 + i * 5000, "lat": 34.27, "lng": 108.85} for i in range(11)]}
    response = client_for(cast.responder).post(POSITIONS, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "pings_invalid"
    assert response.json()["extra"] == {"max_batch": 10, "count": 11}
    assert not TrackChunk.objects.exists()


@pytest.mark.parametrize(
    ("body", "code"), [({}, "invalid"), ({"points": "many"}, "invalid"), ([1, 2], "parse_error")]
)
def test_a_body_without_a_list_of_points_is_invalid(cast: Cast, body: Any, code: str) -> None:
    response = client_for(cast.responder).post(POSITIONS, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code  # a body that is not an object is not parsed


def test_a_citizen_cannot_upload_positions(cast: Cast) -> None:
    body = {"points": [{"t": tracks.to_epoch_ms(NOW), "lat": 34.27, "lng": 108.85}]}
    response = client_for(cast.citizen).post(POSITIONS, body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "not_team_member"
    assert client_for(None).post(POSITIONS, body, format="json").status_code == 401


# --- GET incidents/{id}/tracks/ ------------------------------------------------------------------


@pytest.fixture
def incident(cast: Cast) -> Incident:
    # 三桥 incident; the 三桥 team was on it from 40 to 10 minutes ago.
    incident = IncidentFactory(region=cast.sanqiao, status="in_progress")
    Incident.objects.filter(pk=incident.pk).update(created_at=NOW - timedelta(hours=1))
    incident.refresh_from_db()
    DispatchTaskFactory(
        incident=incident,
        team=cast.team,
        status="completed",
        dispatched_at=NOW - timedelta(minutes=40),
        completed_at=NOW - timedelta(minutes=10),
    )
    # The 钓台 team declined: it never went, its track is not the incident's.
    DispatchTaskFactory(
        incident=incident,
        team=cast.other_team,
        status="declined",
        dispatched_at=NOW - timedelta(minutes=40),
        declined_at=NOW - timedelta(minutes=39),
    )
    return incident


def test_replay_shows_the_teams_tracks_while_it_was_on_the_incident(
    cast: Cast, incident: Incident
) -> None:
    # given both 三桥 responders and the 钓台 responder walked for the last hour
    for user in (cast.responder, cast.colleague, cast.other_responder):
        walk(user, NOW - timedelta(minutes=60), 60, step_s=60)
    # when the 沣东 operator replays the incident
    response = client_for(cast.operator).get(tracks_url(incident))
    # then only the 三桥 team shows, with its points from dispatch to completion
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["incident"] == incident.pk
    assert [team["code"] for team in data["teams"]] == ["sanqiao-rescue"]
    team = data["teams"][0]
    assert len(team["windows"]) == 1
    assert {r["id"] for r in team["responders"]} == {cast.responder.pk, cast.colleague.pk}
    for responder in team["responders"]:
        times = [p["t"] for p in responder["points"]]
        assert len(times) == 30  # minutes -40 .. -11
        assert times == sorted(times)
        assert times[0] == "2025-07-01T09:20:00Z"
        assert times[-1] == "2025-07-01T09:49:00Z"
        assert set(responder["points"][0]) == {"t", "lat", "lng", "accuracy"}


def test_replay_window_and_filters_narrow_the_answer(cast: Cast, incident: Incident) -> None:
    for user in (cast.responder, cast.colleague):
        walk(user, NOW - timedelta(minutes=60), 60, step_s=60)
    client = client_for(cast.operator)
    response = client.get(
        tracks_url(incident),
        {
            "since": "2025-07-01T17:30:00+08:00",
            "until": "2025-07-01T09:35:00Z",
            "user": [cast.colleague.pk],
        },
    )
    assert response.status_code == 200, response.json()
    (team,) = response.json()["teams"]
    (colleague,) = team["responders"]
    assert colleague["id"] == cast.colleague.pk
    assert [p["t"][11:16] for p in colleague["points"]] == [
        "09:30",
        "09:31",
        "09:32",
        "09:33",
        "09:34",
    ]
    # a team that was not on the incident: nothing
    other = client.get(tracks_url(incident), {"team": [cast.other_team.pk]})
    assert other.json()["teams"] == []


def test_a_replay_window_longer_than_the_maximum_is_refused(
    cast: Cast, incident: Incident, settings: Settings
) -> None:
    settings.DISPATCH_TRACK_REPLAY_MAX_HOURS = 2
    response = client_for(cast.operator).get(
        tracks_url(incident), {"since": "2025-07-01T00:00:00Z", "until": "2025-07-01T03:00:00Z"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_replay_outside_my_regions_is_not_found(cast: Cast, incident: Incident) -> None:
    response = client_for(cast.other_operator).get(tracks_url(incident))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_citizens_and_responders_cannot_replay_tracks(cast: Cast, incident: Incident) -> None:
    assert client_for(cast.citizen).get(tracks_url(incident)).status_code == 403
    assert client_for(cast.responder).get(tracks_url(incident)).status_code == 403
    assert client_for(None).get(tracks_url(incident)).status_code == 401


def _queries(user: User, url: str) -> int:
    """Queries of one GET as a fresh request would make them (no scope cached on the user)."""
    client = client_for(User.objects.get(pk=user.pk))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_replay_queries_do_not_grow_with_points_or_chunks(cast: Cast, incident: Incident) -> None:
    url = tracks_url(incident)
    # given one chunk of one responder
    TrackChunkFactory(
        user=cast.responder, team=cast.team, bucket_start=NOW - timedelta(minutes=30), n_points=2
    )
    few = _queries(cast.operator, url)
    # when there are many full chunks of several responders
    for user in (cast.responder, cast.colleague, CitizenFactory(), CitizenFactory()):
        for minutes in range(40, 0, -10):
            TrackChunkFactory(
                user=user,
                team=cast.team,
                bucket_start=NOW - timedelta(minutes=minutes + 1),
                n_points=120,
            )
    many = _queries(cast.operator, url)
    # then the replay costs the same number of queries
    assert many == few
    # scope roles, scope, incident, tasks with teams, chunks, user names
    assert few == 6


# --- GET positions/latest/ ---------------------------------------------------------------------


def test_the_map_shows_responders_and_teams_in_my_regions_with_their_age(cast: Cast) -> None:
    pings_ingest(
        user=cast.responder, points=[Ping(at=NOW - timedelta(seconds=30), lat=34.3, lng=108.8)]
    )
    pings_ingest(
        user=cast.colleague, points=[Ping(at=NOW - timedelta(minutes=5), lat=34.2, lng=108.7)]
    )
    pings_ingest(user=cast.other_responder, points=[Ping(at=NOW, lat=34.4, lng=108.6)])
    # when the 沣东 operator opens the map
    response = client_for(cast.operator).get(LATEST)
    # then 三桥's responders and team show, freshest first; 钓台's do not
    assert response.status_code == 200, response.json()
    data = response.json()
    assert [r["user"] for r in data["responders"]] == [cast.responder.pk, cast.colleague.pk]
    assert [r["age_s"] for r in data["responders"]] == [30, 300]
    assert data["responders"][0]["team"]["code"] == "sanqiao-rescue"
    assert [(t["code"], t["lat"], t["age_s"]) for t in data["teams"]] == [
        ("sanqiao-rescue", 34.3, 30)
    ]


def test_the_map_can_narrow_to_a_region_and_leave_out_stale_fixes(cast: Cast) -> None:
    pings_ingest(
        user=cast.responder, points=[Ping(at=NOW - timedelta(seconds=30), lat=34.3, lng=108.8)]
    )
    pings_ingest(
        user=cast.colleague, points=[Ping(at=NOW - timedelta(minutes=50), lat=34.2, lng=108.7)]
    )
    pings_ingest(user=cast.other_responder, points=[Ping(at=NOW, lat=34.4, lng=108.6)])
    admin = StaffUserFactory(region=cast.fengdong.parent, region__role=Role.ADMIN)
    client = client_for(admin)
    everyone = client.get(LATEST).json()
    assert len(everyone["responders"]) == 3
    fresh = client.get(LATEST, {"max_age_minutes": 10}).json()
    assert {r["user"] for r in fresh["responders"]} == {cast.responder.pk, cast.other_responder.pk}
    fengxi = client.get(LATEST, {"region": "fengxi"}).json()
    assert [r["user"] for r in fengxi["responders"]] == [cast.other_responder.pk]
    assert client.get(LATEST, {"region": "nowhere"}).json()["responders"] == []


def test_citizens_and_responders_get_no_map(cast: Cast) -> None:
    assert client_for(cast.citizen).get(LATEST).status_code == 403
    assert client_for(cast.responder).get(LATEST).status_code == 403


def test_the_map_costs_the_same_queries_for_one_marker_or_many(cast: Cast) -> None:
    pings_ingest(user=cast.responder, points=[Ping(at=NOW, lat=34.3, lng=108.8)])
    one = _queries(cast.operator, LATEST)
    for _ in range(10):
        member = TeamMemberFactory(team=TeamFactory(home_region=cast.sanqiao), on_duty=True)
        pings_ingest(user=member.user, points=[Ping(at=NOW, lat=34.3, lng=108.8)])
    many = _queries(cast.operator, LATEST)
    # scope roles, responders with users and teams, teams
    assert many == one == 3

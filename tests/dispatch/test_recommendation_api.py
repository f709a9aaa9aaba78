"""``GET incidents/{id}/recommendations/``: who may ask, what comes back, queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.incidents.models import Incident
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory
from tests.factories.incidents import IncidentFactory, TwoTowns, WaterloggingCategoryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def flood(tree: TwoTowns) -> Incident:
    return IncidentFactory(
        region=tree.sanqiao, category=WaterloggingCategoryFactory(), lat=34.276, lng=108.850
    )


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))  # nothing cached on it
    return client


def url(incident: Incident) -> str:
    return reverse("v1:incident-recommendations", kwargs={"incident_id": incident.pk})


def pumping_team(tree: TwoTowns, code: str, km_north: float, **kwargs: Any) -> None:
    kwargs.setdefault("home_region", tree.sanqiao)
    team = TeamFactory(
        code=code,
        capabilities=["pumping", "water_rescue"],
        last_lat=34.276 + km_north / 111.195,
        last_lng=108.850,
        last_position_at=timezone.now() - timedelta(minutes=1),
        equipment={"移动泵车": 2},
        **kwargs,
    )
    TeamMemberFactory(team=team, on_duty=True)


def test_an_operator_of_the_incident_gets_ranked_teams_with_reasons(
    tree: TwoTowns, flood: Incident
) -> None:
    # given: a 沣西 team (other town: mutual aid) nearer than a 三桥 one
    pumping_team(tree, "near-other-town", 1.0, home_region=tree.diaotai)
    pumping_team(tree, "far", 5.0)
    operator = StaffUserFactory(region=tree.fengdong)

    # when
    response = client_for(operator).get(url(flood), {"limit": 5})

    # then
    assert response.status_code == 200
    data = response.json()
    assert (data["incident"], data["category"]) == (flood.pk, "N02")
    assert [r["team"]["code"] for r in data["results"]] == ["near-other-town", "far"]
    first = data["results"][0]
    assert first["rank"] == 1
    assert first["team"]["equipment"] == {"移动泵车": 2}
    assert first["capability_match"]["matched"] == ["pumping"]
    assert first["capability_match"]["preferred_matched"] == ["water_rescue"]
    assert first["distance_km"] == pytest.approx(1.0, abs=0.05)
    assert first["eta_minutes"] > 0
    assert first["load"] == 0
    assert first["position"] == "fix"
    assert {"code", "detail"} == set(first["reasons"][0])
    assert "capability_match" in [r["code"] for r in first["reasons"]]


def test_an_incident_outside_my_regions_is_not_found(tree: TwoTowns, flood: Incident) -> None:
    operator = StaffUserFactory(region=tree.fengxi)

    response = client_for(operator).get(url(flood))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_reader_who_may_not_command_the_incident_is_refused(
    tree: TwoTowns, flood: Incident
) -> None:
    liaison = StaffUserFactory(region=tree.fengdong, region__role=Role.DEPARTMENT_LIAISON)
    responder = StaffUserFactory(region=tree.sanqiao, region__role=Role.RESPONDER)

    for user in (liaison, responder):
        response = client_for(user).get(url(flood))
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"


def test_a_citizen_cannot_see_the_incident(flood: Incident) -> None:
    assert client_for(CitizenFactory()).get(url(flood)).status_code == 404


def test_a_bad_limit_is_invalid(tree: TwoTowns, flood: Incident) -> None:
    operator = StaffUserFactory(region=tree.fengdong)

    response = client_for(operator).get(url(flood), {"limit": 0})

    assert response.status_code == 400
    assert "limit" in response.json()["extra"]["fields"]


def test_the_endpoint_runs_a_constant_number_of_queries(
    tree: TwoTowns, flood: Incident, django_assert_num_queries: Any
) -> None:
    operator = StaffUserFactory(region=tree.fengdong)
    for i in range(6):
        pumping_team(tree, f"a{i}", 0.5 + i * 0.1)
    client = client_for(operator)
    # scope, incident, command roles, first ring, the chosen teams
    with django_assert_num_queries(5):
        assert len(client.get(url(flood)).json()["results"]) == 5
    for i in range(40):
        pumping_team(tree, f"b{i}", 0.5 + (i % 8) * 0.1)
    client = client_for(operator)
    with django_assert_num_queries(5):
        assert len(client.get(url(flood)).json()["results"]) == 5


def test_a_client_dispatches_with_only_what_the_api_answered(
    tree: TwoTowns, flood: Incident
) -> None:
    # given: two teams; the client knows nothing but the incident id and its login
    pumping_team(tree, "pump-near", 1.0)
    pumping_team(tree, "pump-far", 5.0)
    client = client_for(StaffUserFactory(region=tree.fengdong))
    flood.status = Incident.Status.ACCEPTED
    flood.save(update_fields=["status"])

    # when: the best recommendation and the far team read from the team detail
    recommended = client.get(url(flood)).json()["results"][0]["team"]
    detail = client.get(reverse("v1:team", kwargs={"code": "pump-far"})).json()
    listed = client.get(reverse("v1:teams")).json()["results"]
    response = client.post(
        reverse("v1:incident-dispatch", kwargs={"incident_id": flood.pk}),
        {"team_ids": [recommended["id"], detail["id"]]},
        format="json",
    )

    # then: the teams dispatched are the ones the answers named, and the list agrees
    assert response.status_code == 201, response.json()
    assert [task["team"]["code"] for task in response.json()] == ["pump-near", "pump-far"]
    assert {row["code"]: row["id"] for row in listed} == {
        "pump-near": recommended["id"],
        "pump-far": detail["id"],
    }

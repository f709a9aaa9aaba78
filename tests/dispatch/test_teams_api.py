"""Team list and detail API: scope, filters, members, query counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.dispatch.models import DispatchTask, Team, TeamStatus
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.dispatch import DepartmentFactory, TeamFactory, TeamMemberFactory
from tests.factories.incidents import IncidentFactory, TwoTowns

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def fengdong_operator(tree: TwoTowns) -> User:
    return StaffUserFactory(region=tree.fengdong)


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def fresh_client(user: User) -> APIClient:
    """A client for a fresh copy of ``user``: nothing cached on the instance (scope)."""
    return client_for(User.objects.get(pk=user.pk))


def team_codes(response: Any) -> list[str]:
    return [row["code"] for row in response.json()["results"]]


def test_an_operator_lists_only_the_teams_of_their_regions(
    tree: TwoTowns, fengdong_operator: User
) -> None:
    # given
    mine = TeamFactory(code="sq-rescue", home_region=tree.sanqiao)
    TeamFactory(code="dt-rescue", home_region=tree.diaotai)

    # when
    response = client_for(fengdong_operator).get(reverse("v1:teams"))

    # then
    assert response.status_code == 200
    assert team_codes(response) == [mine.code]


def test_the_list_shows_status_capabilities_equipment_and_counts(
    tree: TwoTowns, fengdong_operator: User
) -> None:
    team = TeamFactory(
        code="sq-water",
        home_region=tree.sanqiao,
        department=DepartmentFactory(code="water", name_zh="水务局", kind="water"),
        capabilities=["pumping"],
        equipment={"移动泵车": 2},
    )
    TeamMemberFactory(team=team, on_duty=True)
    TeamMemberFactory(team=team, on_duty=False)
    DispatchTask.objects.create(
        incident=IncidentFactory(region=tree.sanqiao), team=team, dispatched_at=timezone.now()
    )

    (row,) = client_for(fengdong_operator).get(reverse("v1:teams")).json()["results"]

    assert row["status"] == "available"
    assert row["capabilities"] == ["pumping"]
    assert row["equipment"] == {"移动泵车": 2}
    assert row["department"] == {"code": "water", "name_zh": "水务局", "kind": "water"}
    assert row["home_region"] == {"code": "fd-sanqiao", "name_zh": "三桥街道"}
    assert (row["live_tasks"], row["members_on_duty"]) == (1, 1)
    assert row["last_lat"] == tree.sanqiao.centre_lat
    assert row["last_position_at"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "available"}, ["a-pump"]),
        ({"status": ["off_duty", "busy"]}, ["b-fire", "c-medic"]),
        ({"kind": "fire"}, ["b-fire"]),
        ({"capability": "pumping"}, ["a-pump"]),
        ({"region": "fd-sanqiao"}, ["a-pump", "b-fire", "c-medic"]),
        ({"region": "nowhere"}, []),
    ],
)
def test_the_list_filters_by_status_kind_capability_and_region(
    tree: TwoTowns, fengdong_operator: User, query: dict[str, Any], expected: list[str]
) -> None:
    TeamFactory(code="a-pump", home_region=tree.sanqiao, capabilities=["pumping"])
    TeamFactory(
        code="b-fire", home_region=tree.sanqiao, kind=Team.Kind.FIRE, status=TeamStatus.OFF_DUTY
    )
    TeamFactory(
        code="c-medic", home_region=tree.sanqiao, kind=Team.Kind.MEDICAL, status=TeamStatus.BUSY
    )

    response = client_for(fengdong_operator).get(reverse("v1:teams"), query)

    assert response.status_code == 200
    assert team_codes(response) == expected


def test_a_bad_filter_value_is_invalid(fengdong_operator: User) -> None:
    response = client_for(fengdong_operator).get(reverse("v1:teams"), {"capability": "magic"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "capability" in response.json()["extra"]["fields"]


def test_citizens_and_anonymous_callers_may_not_list_teams() -> None:
    assert client_for(CitizenFactory()).get(reverse("v1:teams")).status_code == 403
    response = client_for(None).get(reverse("v1:teams"))
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_list_runs_a_constant_number_of_queries(
    tree: TwoTowns, fengdong_operator: User, django_assert_num_queries: Any
) -> None:
    for i in range(3):
        TeamMemberFactory(team=TeamFactory(code=f"t{i}", home_region=tree.sanqiao), on_duty=True)
    # read roles, visible scope (each once per request), then the page
    client = fresh_client(fengdong_operator)
    with django_assert_num_queries(3):
        assert len(client.get(reverse("v1:teams")).json()["results"]) == 3
    for i in range(3, 20):
        TeamMemberFactory(team=TeamFactory(code=f"t{i}", home_region=tree.sanqiao), on_duty=True)
    client = fresh_client(fengdong_operator)
    with django_assert_num_queries(3):
        assert len(client.get(reverse("v1:teams")).json()["results"]) == 20


# --- Detail --------------------------------------------------------------------------------


def test_the_detail_shows_members_leader_first(tree: TwoTowns, fengdong_operator: User) -> None:
    team = TeamFactory(code="sq-rescue", home_region=tree.sanqiao, equipment={"冲锋舟": 1})
    TeamMemberFactory(team=team, user__display_name="队员", on_duty=True)
    TeamMemberFactory(team=team, user__display_name="队长", is_leader=True)
    TeamMemberFactory(team=team, user__display_name="离队", is_active=False)

    response = client_for(fengdong_operator).get(reverse("v1:team", kwargs={"code": team.code}))

    assert response.status_code == 200
    data = response.json()
    assert [(m["name"], m["is_leader"], m["on_duty"]) for m in data["members"]] == [
        ("队长", True, False),
        ("队员", False, True),
    ]
    assert data["equipment"] == {"冲锋舟": 1}
    assert data["members_on_duty"] == 1


def test_a_team_outside_my_regions_is_not_found(tree: TwoTowns, fengdong_operator: User) -> None:
    team = TeamFactory(home_region=tree.diaotai)

    response = client_for(fengdong_operator).get(reverse("v1:team", kwargs={"code": team.code}))

    assert response.status_code == 404
    assert response.json()["code"] == "team_not_found"


def test_a_responder_of_sanqiao_reads_the_sanqiao_teams(tree: TwoTowns) -> None:
    responder = StaffUserFactory(region=tree.sanqiao, region__role=Role.RESPONDER)
    team = TeamFactory(home_region=tree.sanqiao)

    response = client_for(responder).get(reverse("v1:team", kwargs={"code": team.code}))

    assert response.status_code == 200


def test_the_detail_runs_a_constant_number_of_queries(
    tree: TwoTowns, fengdong_operator: User, django_assert_num_queries: Any
) -> None:
    team = TeamFactory(home_region=tree.sanqiao)
    for _ in range(5):
        TeamMemberFactory(team=team)
    client = fresh_client(fengdong_operator)
    # read roles, scope, the team, its members; then one INSERT of the audit trail (the
    # members' phone numbers were shown), after the answer
    with django_assert_num_queries(5):
        client.get(reverse("v1:team", kwargs={"code": team.code}))

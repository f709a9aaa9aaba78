"""Responder API: ``POST me/duty/`` (idempotent) and ``GET me/team/``."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.dispatch.models import Team, TeamMember, TeamStatus
from tests.factories.accounts import CitizenFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory

pytestmark = pytest.mark.django_db


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def member() -> TeamMember:
    team = TeamFactory(code="sq-rescue", name="三桥街道应急救援队", status=TeamStatus.OFF_DUTY)
    return TeamMemberFactory(team=team, is_leader=True)


def test_a_responder_goes_on_duty_and_the_team_becomes_available(member: TeamMember) -> None:
    # when
    response = client_for(member.user).post(reverse("v1:me-duty"), {"on_duty": True}, format="json")

    # then
    assert response.status_code == 200
    data = response.json()
    assert data["on_duty"] is True
    assert data["on_duty_since"] is not None
    assert data["is_leader"] is True
    assert data["team"] == {
        "code": "sq-rescue",
        "name": "三桥街道应急救援队",
        "status": "available",
    }
    assert Team.objects.get(pk=member.team_id).status == TeamStatus.AVAILABLE


def test_a_retried_toggle_with_the_same_key_is_replayed(member: TeamMember) -> None:
    client = client_for(member.user)
    key = str(uuid.uuid4())

    first = client.post(
        reverse("v1:me-duty"), {"on_duty": True}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    again = client.post(
        reverse("v1:me-duty"), {"on_duty": True}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_someone_in_no_team_is_refused() -> None:
    response = client_for(CitizenFactory()).post(
        reverse("v1:me-duty"), {"on_duty": True}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_team_member"


def test_naming_a_team_i_am_not_in_is_refused(member: TeamMember) -> None:
    other = TeamFactory(code="other-team")

    response = client_for(member.user).post(
        reverse("v1:me-duty"), {"on_duty": True, "team": other.code}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_team_member"
    assert Team.objects.get(pk=other.pk).status == TeamStatus.AVAILABLE  # untouched


def test_a_member_of_two_teams_names_one(member: TeamMember) -> None:
    second = TeamMemberFactory(user=member.user, team__status=TeamStatus.OFF_DUTY).team
    client = client_for(member.user)

    ambiguous = client.post(reverse("v1:me-duty"), {"on_duty": True}, format="json")
    named = client.post(
        reverse("v1:me-duty"), {"on_duty": True, "team": second.code}, format="json"
    )

    assert ambiguous.status_code == 400
    assert named.status_code == 200
    assert named.json()["team"]["code"] == second.code


def test_on_duty_is_required() -> None:
    response = client_for(CitizenFactory()).post(reverse("v1:me-duty"), {}, format="json")

    assert response.status_code == 400
    assert "on_duty" in response.json()["extra"]["fields"]


def test_anonymous_callers_are_not_authenticated() -> None:
    assert client_for(None).post(reverse("v1:me-duty"), {"on_duty": True}).status_code == 401
    assert client_for(None).get(reverse("v1:me-team")).status_code == 401


def test_my_team_lists_my_active_teams_with_members(member: TeamMember) -> None:
    TeamMemberFactory(team=member.team, user__display_name="队员二", on_duty=True)
    TeamMemberFactory(user=member.user, is_active=False)  # a team I left
    TeamFactory()  # a team I am not in

    response = client_for(member.user).get(reverse("v1:me-team"))

    assert response.status_code == 200
    (team,) = response.json()
    assert team["code"] == "sq-rescue"
    assert len(team["members"]) == 2
    assert team["members"][0]["is_leader"] is True


def test_someone_in_no_team_gets_an_empty_list() -> None:
    response = client_for(CitizenFactory()).get(reverse("v1:me-team"))

    assert response.status_code == 200
    assert response.json() == []

"""On-site command post (现场指挥部): it takes over dispatch while open."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.core.errors import ApplicationError
from apps.dispatch.models import CommandPost, DispatchTask
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import IncidentEvent, IncidentEventKind, IncidentStatus
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import StaffUserFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def scene() -> Scene:
    return Scene()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def establish(scene: Scene, commander: User, members: Sequence[User] = ()) -> CommandPost:
    return post_services.command_post_establish(
        incident_id=scene.incident.pk,
        by=scene.operator,
        commander_id=commander.pk,
        lat=34.277,
        lng=108.851,
        address="三桥立交下",
        member_ids=[m.pk for m in members],
    )


def commander_of(scene: Scene) -> User:
    """A commander of the incident's new town: eligible to command its post."""
    return StaffUserFactory(region=scene.tree.fengdong, region__role=Role.COMMANDER)


def liaison_of(scene: Scene) -> User:
    """A department liaison of the incident's street: a post member, no dispatch role."""
    return StaffUserFactory(region=scene.street, region__role=Role.DEPARTMENT_LIAISON)


def test_an_operator_not_on_the_post_gets_command_post_in_charge(scene: Scene) -> None:
    # given
    commander = StaffUserFactory(region=scene.tree.fengdong)
    establish(scene, commander)

    # when
    response = client_for(scene.operator).post(
        f"{API}/incidents/{scene.incident.pk}/dispatch/",
        {"team_ids": [scene.team.pk]},
        format="json",
    )

    # then
    assert response.status_code == 403
    assert response.json()["code"] == "command_post_in_charge"
    assert not DispatchTask.objects.exists()


def test_the_commander_and_members_dispatch_and_direct(scene: Scene) -> None:
    commander = commander_of(scene)
    member = liaison_of(scene)  # no dispatch role: the post gives the right
    establish(scene, commander, [member])

    response = client_for(commander).post(
        f"{API}/incidents/{scene.incident.pk}/dispatch/",
        {"team_ids": [scene.team.pk]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    task_id = response.json()[0]["id"]
    cancelled = client_for(member).post(
        f"{API}/tasks/{task_id}/cancel/", {"reason": "改由消防处置"}, format="json"
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize("action", ["cancel", "verify", "return", "reassign", "instructions"])
def test_every_operator_action_is_taken_over(scene: Scene, action: str) -> None:
    task = scene.task("completed")
    establish(scene, commander_of(scene))
    calls = {
        "cancel": lambda: task_services.task_cancel(task_id=task.pk, by=scene.operator, reason="x"),
        "verify": lambda: task_services.task_verify(task_id=task.pk, by=scene.operator),
        "return": lambda: task_services.task_return(task_id=task.pk, by=scene.operator, reason="x"),
        "reassign": lambda: task_services.task_reassign(
            task_id=task.pk, to_team_id=scene.other_team.pk, by=scene.operator
        ),
        "instructions": lambda: task_services.task_add_instructions(
            task_id=task.pk, by=scene.operator, text="x"
        ),
    }
    with pytest.raises(ApplicationError) as refused:
        calls[action]()
    assert refused.value.code == "command_post_in_charge"


def test_responders_and_the_system_are_not_taken_over(scene: Scene) -> None:
    establish(scene, commander_of(scene))
    task = scene.task("dispatched")
    other = scene.task("dispatched", team=scene.other_team)
    assert task_services.task_accept(task_id=task.pk, by=scene.member).status == "accepted"
    assert task_services.task_expire(task_id=other.pk).task.status == "expired"


def test_closing_the_post_returns_dispatch_to_the_operators(scene: Scene) -> None:
    establish(scene, commander_of(scene))
    response = client_for(scene.operator).post(
        f"{API}/incidents/{scene.incident.pk}/command-post/close/", format="json"
    )
    assert response.status_code == 200
    assert response.json()["closed_at"] is not None

    tasks = task_services.task_dispatch(
        incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=scene.operator
    )
    assert len(tasks) == 1
    kinds = set(
        IncidentEvent.objects.filter(incident=scene.incident).values_list("kind", flat=True)
    )
    assert {
        IncidentEventKind.COMMAND_POST_ESTABLISHED,
        IncidentEventKind.COMMAND_POST_CLOSED,
    } <= kinds


def test_set_up_through_the_api(scene: Scene) -> None:
    commander = StaffUserFactory(region=scene.tree.fengdong)
    expert = liaison_of(scene)
    response = client_for(scene.operator).post(
        f"{API}/incidents/{scene.incident.pk}/command-post/",
        {"commander_id": commander.pk, "lat": 34.277, "lng": 108.851, "member_ids": [expert.pk]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["commander"] == commander.pk
    assert body["members"] == [expert.pk]
    assert body["closed_at"] is None

    again = client_for(scene.operator).post(
        f"{API}/incidents/{scene.incident.pk}/command-post/",
        {"commander_id": commander.pk, "lat": 34.277, "lng": 108.851},
        format="json",
    )
    assert again.status_code == 409
    assert again.json()["code"] == "command_post_exists"


def test_members_are_added_and_removed(scene: Scene) -> None:
    a, b = liaison_of(scene), responder_with_scope(scene)
    commander = commander_of(scene)
    establish(scene, commander, [a])
    response = client_for(commander).post(
        f"{API}/incidents/{scene.incident.pk}/command-post/members/",
        {"add": [b.pk], "remove": [a.pk]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["members"] == [b.pk]


def test_an_out_of_scope_operator_cannot_set_up_a_post(scene: Scene) -> None:
    response = client_for(scene.outsider_operator).post(
        f"{API}/incidents/{scene.incident.pk}/command-post/",
        {"commander_id": scene.outsider_operator.pk, "lat": 34.2, "lng": 108.8},
        format="json",
    )
    assert response.status_code == 404


def test_a_post_is_set_up_on_a_handled_incident_only() -> None:
    scene = Scene(incident_status=IncidentStatus.REPORTED)
    with pytest.raises(ApplicationError) as refused:
        establish(scene, commander_of(scene))
    assert refused.value.code == "incident_not_dispatchable"


def test_a_closed_post_can_be_set_up_again(scene: Scene) -> None:
    first = establish(scene, commander_of(scene))
    post_services.command_post_close(incident_id=scene.incident.pk, by=scene.operator)
    second_commander = commander_of(scene)
    second = establish(scene, second_commander)
    assert second.pk == first.pk
    assert second.closed_at is None
    assert second.commander == second_commander

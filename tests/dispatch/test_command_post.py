"""On-site command post (现场指挥部): it takes over dispatch while open."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role, User
from apps.accounts.services import membership_revoke
from apps.core.errors import ApplicationError
from apps.dispatch.models import CommandPost, DispatchTask
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import IncidentEvent, IncidentEventKind, IncidentStatus
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import CitizenFactory, StaffUserFactory

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


# --- Who may be on a post (docs/roles.md, "Command post") -----------------------------------


def test_an_operators_slip_cannot_make_a_citizen_commander_or_member(scene: Scene) -> None:
    # given: a citizen's account (the reporter, say)
    citizen = CitizenFactory()
    for body, field, code in (
        ({"commander_id": citizen.pk}, "commander_id", "post_commander_not_eligible"),
        (
            {"commander_id": scene.operator.pk, "member_ids": [citizen.pk]},
            "member_ids",
            "post_member_not_eligible",
        ),
    ):
        # when
        response = client_for(scene.operator).post(
            f"{API}/incidents/{scene.incident.pk}/command-post/",
            {"lat": 34.277, "lng": 108.851, **body},
            format="json",
        )
        # then
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "invalid"
        (error,) = response.json()["extra"]["fields"][field]
        assert error["code"] == code
    assert not CommandPost.objects.exists()


@pytest.mark.parametrize(
    "who",
    ["responder", "liaison", "grid_worker", "other_town_operator", "other_town_responder"],
)
def test_only_operators_and_commanders_in_scope_command_a_post(scene: Scene, who: str) -> None:
    people = {
        "responder": lambda: responder_with_scope(scene),
        "liaison": lambda: liaison_of(scene),
        "grid_worker": lambda: StaffUserFactory(region=scene.street, region__role=Role.GRID_WORKER),
        "other_town_operator": lambda: scene.outsider_operator,
        "other_town_responder": lambda: StaffUserFactory(
            region=scene.tree.diaotai, region__role=Role.RESPONDER
        ),
    }
    with pytest.raises(ApplicationError) as refused:
        establish(scene, people[who]())
    assert refused.value.extra["fields"]["commander_id"][0]["code"] == (
        "post_commander_not_eligible"
    )


def test_members_are_staff_and_responders_in_scope_or_a_team_working_the_incident(
    scene: Scene,
) -> None:
    # given: a 沣西 team sent across the border, and people who may not join
    crossing = scene.new_team(home_region=scene.tree.diaotai)
    crossing_member = scene.add_member(crossing)
    scene.task("en_route", team=crossing)
    grid_worker = StaffUserFactory(region=scene.street, region__role=Role.GRID_WORKER)
    other_town = StaffUserFactory(region=scene.tree.diaotai, region__role=Role.RESPONDER)
    # when / then: the eligible join
    post = establish(scene, commander_of(scene), [liaison_of(scene), responder_with_scope(scene)])
    post = post_services.command_post_members_change(
        incident_id=scene.incident.pk, by=scene.operator, add=[crossing_member.pk]
    )
    assert post.members.filter(pk=crossing_member.pk).exists()
    # and the others are refused, naming them
    with pytest.raises(ApplicationError) as refused:
        post_services.command_post_members_change(
            incident_id=scene.incident.pk, by=scene.operator, add=[grid_worker.pk, other_town.pk]
        )
    assert refused.value.extra["user_ids"] == sorted([grid_worker.pk, other_town.pk])


def test_only_those_who_direct_the_incident_set_up_change_or_close_its_post(scene: Scene) -> None:
    responder = responder_with_scope(scene)
    with pytest.raises(ApplicationError) as refused:
        post_services.command_post_establish(
            incident_id=scene.incident.pk,
            by=responder,
            commander_id=scene.operator.pk,
            lat=34.276,
            lng=108.85,
        )
    assert refused.value.status == 403
    establish(scene, commander_of(scene))
    for attempt in (
        lambda: post_services.command_post_close(incident_id=scene.incident.pk, by=responder),
        lambda: post_services.command_post_members_change(
            incident_id=scene.incident.pk, by=responder, add=[responder.pk]
        ),
    ):
        with pytest.raises(ApplicationError) as refused:
            attempt()
        assert refused.value.status == 403


def test_a_post_gives_no_power_to_someone_no_longer_eligible(scene: Scene) -> None:
    # given: a post whose rows name a citizen (written before the rule, or by hand) and a
    # member whose membership was revoked since the appointment
    citizen = CitizenFactory()
    member = responder_with_scope(scene)
    post = CommandPost.objects.create(
        incident=scene.incident,
        commander=citizen,
        lat=34.276,
        lng=108.85,
        established_at=timezone.now(),
    )
    post.members.add(member)
    membership_revoke(membership=Membership.objects.get(user=member))
    task = scene.task("accepted")
    # when / then: neither may direct the incident, nor read the reporter's phone
    for user in (citizen, member):
        with pytest.raises(ApplicationError) as refused:
            task_services.task_dispatch(
                incident_id=scene.incident.pk, team_ids=[scene.other_team.pk], by=user
            )
        assert refused.value.code == "command_post_in_charge"
        response = client_for(user).get(f"{API}/tasks/{task.pk}/")
        assert response.status_code == 404 or response.json()["incident"]["reporter_phone"] is None
        assert client_for(user).get(f"{API}/incidents/{scene.incident.pk}/room/").status_code == 404

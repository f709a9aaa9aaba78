"""Task API: operators dispatch and direct, responders work their own team's tasks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.dispatch.models import DispatchTask, TaskEvent, TaskStatus
from apps.incidents.models import Attachment, IncidentStatus
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import MembershipFactory, StaffUserFactory
from tests.factories.incidents import IncidentFactory, photo_bytes

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.fixture
def scene() -> Scene:
    return Scene()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(user: User, path: str, data: Any = None, **headers: str) -> Any:
    return client_for(user).post(f"{API}{path}", data or {}, format="json", headers=headers)


# --- Operator -----------------------------------------------------------------------------


def test_an_operator_dispatches_teams(scene: Scene) -> None:
    response = post(
        scene.operator,
        f"/incidents/{scene.incident.pk}/dispatch/",
        {"team_ids": [scene.team.pk, scene.other_team.pk], "instructions": "从东门进"},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert [t["team"]["id"] for t in body] == [scene.team.pk, scene.other_team.pk]
    assert body[0]["status"] == "dispatched"
    assert body[0]["incident"]["number"] == scene.incident.number
    assert body[0]["allowed_actions"] == [
        "accept",
        "decline",
        "expire",
        "cancel",
        "reassign",
        "instructions",
        "ack_delivery",
    ]


def test_an_out_of_scope_operator_gets_404(scene: Scene) -> None:
    task = scene.task("completed")
    responses = [
        post(
            scene.outsider_operator,
            f"/incidents/{scene.incident.pk}/dispatch/",
            {"team_ids": [scene.team.pk]},
        ),
        client_for(scene.outsider_operator).get(f"{API}/incidents/{scene.incident.pk}/tasks/"),
        post(scene.outsider_operator, f"/tasks/{task.pk}/verify/"),
        client_for(scene.outsider_operator).get(f"{API}/tasks/{task.pk}/"),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert not DispatchTask.objects.exclude(pk=task.pk).exists()


def test_a_read_only_role_in_scope_gets_403_on_dispatch(scene: Scene) -> None:
    liaison = StaffUserFactory(region=scene.street, region__role=Role.DEPARTMENT_LIAISON)
    response = post(
        liaison, f"/incidents/{scene.incident.pk}/dispatch/", {"team_ids": [scene.team.pk]}
    )
    assert response.status_code == 403


def test_dispatch_refusals_come_back_in_the_envelope(scene: Scene) -> None:
    scene.task("accepted")
    response = post(
        scene.operator, f"/incidents/{scene.incident.pk}/dispatch/", {"team_ids": [scene.team.pk]}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "team_already_on_incident"
    empty = post(scene.operator, f"/incidents/{scene.incident.pk}/dispatch/", {"team_ids": []})
    assert empty.status_code == 400
    assert empty.json()["code"] == "invalid"


def test_the_incident_task_list(scene: Scene, django_assert_max_num_queries: Any) -> None:
    scene.task("accepted")
    scene.task("dispatched", team=scene.other_team)
    client = client_for(scene.operator)
    with django_assert_max_num_queries(4):
        response = client.get(f"{API}/incidents/{scene.incident.pk}/tasks/")
    assert response.status_code == 200
    assert [t["status"] for t in response.json()] == ["accepted", "dispatched"]


def test_operator_actions(scene: Scene) -> None:
    completed = scene.task("completed")
    verified = post(scene.operator, f"/tasks/{completed.pk}/verify/")
    assert verified.status_code == 200
    assert verified.json()["status"] == "verified"

    live = scene.task("accepted", team=scene.other_team)
    third = scene.new_team()
    reassigned = post(scene.operator, f"/tasks/{live.pk}/reassign/", {"to_team_id": third.pk})
    assert reassigned.status_code == 200, reassigned.json()
    assert reassigned.json()["team"]["id"] == third.pk
    new_id = reassigned.json()["id"]

    instructed = post(scene.operator, f"/tasks/{new_id}/instructions/", {"text": "带担架"})
    assert instructed.json()["instructions"] == "带担架"
    cancelled = post(scene.operator, f"/tasks/{new_id}/cancel/", {"reason": "已够人手"})
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "已够人手"

    illegal = post(scene.operator, f"/tasks/{new_id}/cancel/", {"reason": "再撤"})
    assert illegal.status_code == 409
    assert illegal.json()["code"] == "illegal_task_transition"
    assert illegal.json()["extra"]["from"] == "cancelled"


def test_a_responder_cannot_use_operator_endpoints(scene: Scene) -> None:
    task = scene.task("completed")
    response = post(scene.member, f"/tasks/{task.pk}/verify/")
    assert response.status_code == 404  # no region role: the operator view does not exist


# --- Responder ------------------------------------------------------------------------------


def test_a_responder_works_a_task_through(scene: Scene) -> None:
    task = scene.task("dispatched")
    path = f"/tasks/{task.pk}"

    assert post(scene.member, f"{path}/ack/").json()["delivered_at"] is not None
    assert post(scene.member, f"{path}/accept/").json()["status"] == "accepted"
    assert post(scene.member, f"{path}/en-route/").json()["status"] == "en_route"
    assert post(scene.member2, f"{path}/on-scene/").json()["status"] == "on_scene"
    done = client_for(scene.member).post(
        f"{API}{path}/complete/",
        {
            "result": "积水已排除",
            "photos": [SimpleUploadedFile("p.jpg", photo_bytes(), content_type="image/jpeg")],
        },
        format="multipart",
    )
    assert done.status_code == 200, done.json()
    assert done.json()["status"] == "completed"
    assert done.json()["result"] == "积水已排除"
    assert Attachment.objects.filter(incident=scene.incident).count() == 1
    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS


def test_a_responder_of_another_team_cannot_act(scene: Scene) -> None:
    task = scene.task("dispatched")
    # no region role at all: the task does not exist for them
    unknown = post(scene.other_member, f"/tasks/{task.pk}/accept/")
    assert unknown.status_code == 404
    # a responder in scope sees it but may not act on it
    in_scope = responder_with_scope(scene)
    refused = post(in_scope, f"/tasks/{task.pk}/accept/")
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_team_member"
    task.refresh_from_db()
    assert task.status == TaskStatus.DISPATCHED


def test_an_accept_replayed_with_its_key_returns_the_first_answer(scene: Scene) -> None:
    task = scene.task("dispatched")
    key = str(uuid.uuid4())

    first = post(scene.member, f"/tasks/{task.pk}/accept/", **{"Idempotency-Key": key})
    replay = post(scene.member, f"/tasks/{task.pk}/accept/", **{"Idempotency-Key": key})

    assert first.status_code == replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert TaskEvent.objects.filter(task=task, kind="accepted").count() == 1
    # a new key is a new request: refused, the task is already accepted
    again = post(
        scene.member, f"/tasks/{task.pk}/accept/", **{"Idempotency-Key": str(uuid.uuid4())}
    )
    assert again.status_code == 409


def test_decline_answers_the_next_proposed_team(scene: Scene) -> None:
    task = scene.task("dispatched")
    response = post(scene.member, f"/tasks/{task.pk}/decline/", {"reason": "车辆故障"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["task"]["status"] == "declined"
    assert body["proposal"]["team"]["id"] == scene.other_team.pk
    assert isinstance(body["proposal"]["reasons"], list)


def test_the_task_detail_shows_the_scene(scene: Scene) -> None:
    # given: the member's responder membership at the street (as team seeding grants it)
    MembershipFactory(user=scene.member, region=scene.street, role=Role.RESPONDER)
    task = scene.task("accepted")
    near = IncidentFactory(region=scene.street, status="in_progress", lat=34.280, lng=108.850)
    IncidentFactory(region=scene.street, status="in_progress", lat=34.310, lng=108.850)  # 3.8 km
    IncidentFactory(region=scene.street, status="closed", lat=34.2765, lng=108.850)

    mine = client_for(scene.member).get(f"{API}/tasks/{task.pk}/").json()

    assert mine["incident"]["reporter_phone"] == "+8613900000001"
    assert mine["incident"]["lat"] == 34.276
    assert [h["id"] for h in mine["hazards"]] == [near.pk]
    assert 400 < mine["hazards"][0]["distance_m"] < 500


def test_hazards_near_a_task_are_only_the_incidents_the_viewer_may_see(scene: Scene) -> None:
    # given: open incidents within 1 km of the scene, one of 沣东 and one filed in 沣西
    task = scene.task("accepted")
    MembershipFactory(user=scene.member, region=scene.street, role=Role.RESPONDER)
    local = IncidentFactory(region=scene.street, status="in_progress", lat=34.279, lng=108.850)
    across = IncidentFactory(
        region=scene.tree.diaotai, status="in_progress", lat=34.278, lng=108.851
    )
    commander = StaffUserFactory(region=scene.tree.root, region__role=Role.COMMANDER)

    def hazards(user: User) -> list[int]:
        response = client_for(user).get(f"{API}/tasks/{task.pk}/")
        assert response.status_code == 200, response.json()
        return [h["id"] for h in response.json()["hazards"]]

    # then: the team and the town's operator see their town's incident only (the 沣西
    # one is a 404 for them, so its number, title and position are not theirs either)
    assert hazards(scene.member) == [local.pk]
    assert hazards(scene.operator) == [local.pk]
    # and a new-area commander, who sees both towns, sees both
    assert set(hazards(commander)) == {local.pk, across.pk}
    assert client_for(scene.operator).get(f"{API}/incidents/{across.pk}/").status_code == 404


def test_a_team_member_without_any_region_role_sees_no_hazards(scene: Scene) -> None:
    task = scene.task("accepted")
    IncidentFactory(region=scene.street, status="in_progress", lat=34.279, lng=108.850)
    body = client_for(scene.member).get(f"{API}/tasks/{task.pk}/").json()
    assert body["hazards"] == []
    assert body["incident"]["reporter_phone"] == "+8613900000001"  # the team: yes


def test_the_reporter_contact_is_only_for_the_team_and_staff(scene: Scene) -> None:
    task = scene.task("accepted")
    other = client_for(responder_with_scope(scene)).get(f"{API}/tasks/{task.pk}/")
    assert other.status_code == 200
    assert other.json()["incident"]["reporter_phone"] is None
    assert other.json()["incident"]["reporter_name"] is None
    staff = client_for(scene.operator).get(f"{API}/tasks/{task.pk}/").json()
    assert staff["incident"]["reporter_phone"] == "+8613900000001"


def test_my_current_tasks_and_history(scene: Scene, django_assert_max_num_queries: Any) -> None:
    live = scene.task("en_route")
    done = scene.task("verified", team=scene.team)
    done.incident = IncidentFactory(region=scene.street)
    done.save(update_fields=["incident"])
    scene.task("dispatched", team=scene.other_team)  # not mine

    client = client_for(scene.member)
    with django_assert_max_num_queries(3):
        current = client.get(f"{API}/me/tasks/current/")
    assert [t["id"] for t in current.json()] == [live.pk]
    with django_assert_max_num_queries(3):
        history = client.get(f"{API}/me/tasks/")
    assert {t["id"] for t in history.json()["results"]} == {live.pk, done.pk}
    assert "next" in history.json()

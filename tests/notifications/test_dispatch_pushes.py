"""Task pushes wired into dispatch, and the app's receipt of them ."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.dispatch.models import DispatchTask, TaskEvent
from apps.dispatch.push import task_push_prefix
from apps.dispatch.services import tasks as task_services
from apps.notifications import delivery
from apps.notifications.backends import LocmemPush
from apps.notifications.duty import duty_of
from apps.notifications.models import Channel, Kind, Notification, Priority, Status
from tests.dispatch.task_support import Scene, responder_with_scope
from tests.factories.accounts import DeviceFactory, StaffUserFactory
from tests.factories.dispatch import TeamMemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(timezone.datetime(2026, 7, 1, 9, 30))


@pytest.fixture
def scene() -> Scene:
    scene = Scene()
    for user in (scene.member, scene.member2, scene.other_member):
        DeviceFactory(user=user, locale="en")
    return scene


def dispatch(scene: Scene, callbacks_fixture: Any, *, execute: bool = True) -> DispatchTask:
    with callbacks_fixture(execute=execute):
        (task,) = task_services.task_dispatch(
            incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=scene.operator
        )
    return task


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def delivered(user: User, task_id: int, **headers: str) -> Any:
    return client_for(user).post(
        f"/api/v1/responder/tasks/{task_id}/delivered/", {}, format="json", headers=headers
    )


# --- Dispatch → push --------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_dispatch_pushes_the_task_to_the_teams_on_duty_members_after_commit(
    scene: Scene, django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    # given: a third member who is off duty
    off_duty = TeamMemberFactory(team=scene.team, on_duty=False).user
    DeviceFactory(user=off_duty)

    # when: the operator dispatches; the transaction has not committed yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (task,) = task_services.task_dispatch(
            incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=scene.operator
        )
    rows = list(Notification.objects.order_by("user_id"))
    assert push_outbox == []
    for callback in callbacks:
        callback()

    # then: one high-priority task push per on-duty member, delivered after commit
    assert [row.user_id for row in rows] == sorted([scene.member.pk, scene.member2.pk])
    assert {(row.kind, row.priority, row.ack_deadline) for row in rows} == {
        (Kind.TASK, Priority.HIGH, NOW + timedelta(seconds=60))
    }
    assert sorted(push.target for push in push_outbox) == sorted(
        [scene.member.devices.get().token, scene.member2.devices.get().token]
    )
    message = push_outbox[0].message
    incident = scene.incident
    assert (message.style, message.priority) == ("data", "high")
    assert message.title == f"New task: {incident.title}"
    assert message.data == {
        "type": "task",
        "event": "dispatched",
        "task_id": str(task.pk),
        "incident_id": str(incident.pk),
        "incident_number": incident.number,
        "category": incident.category.code,
        "severity": incident.severity,
        "address": incident.address,
        "lat": "34.276",
        "lng": "108.85",
        "notification_id": message.data["notification_id"],
        "kind": "task",
    }


def test_a_refused_dispatch_pushes_nothing(
    scene: Scene, django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    scene.task("accepted")  # the team is already live on the incident
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception, match="live"):
        task_services.task_dispatch(
            incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=scene.operator
        )
    assert not Notification.objects.exists()
    assert push_outbox == []


def test_nobody_on_duty_still_gets_the_task(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    scene = Scene()
    team = scene.new_team()
    sleeper = TeamMemberFactory(team=team, on_duty=False).user
    DeviceFactory(user=sleeper)

    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_dispatch(
            incident_id=scene.incident.pk, team_ids=[team.pk], by=scene.operator
        )

    assert list(Notification.objects.values_list("user_id", flat=True)) == [sleeper.pk]


def test_cancelling_withdraws_the_task_push_and_tells_the_members(
    scene: Scene, django_capture_on_commit_callbacks: Any
) -> None:
    # given: the task push is still waiting to go out
    task = dispatch(scene, django_capture_on_commit_callbacks, execute=False)

    # when
    with django_capture_on_commit_callbacks(execute=True):
        task_services.task_cancel(task_id=task.pk, by=scene.operator, reason="已有人处置")

    # then
    prefix = task_push_prefix(task.pk)
    withdrawn = Notification.objects.filter(dedupe_key__startswith=f"{prefix}:")
    assert {(row.status, row.ack_deadline) for row in withdrawn} == {(Status.CANCELLED, None)}
    told = Notification.objects.filter(dedupe_key__startswith=f"task:{task.pk}:cancelled:")
    assert sorted(told.values_list("user_id", flat=True)) == sorted(
        [scene.member.pk, scene.member2.pk]
    )
    row = told.first()
    assert row is not None
    assert (row.kind, row.priority, row.status) == (Kind.TASK, Priority.NORMAL, Status.SENT)
    assert row.title == f"Task cancelled: {scene.incident.title}"
    assert row.body == "Reason: 已有人处置"
    assert row.data == {
        "type": "task",
        "event": "cancelled",
        "task_id": str(task.pk),
        "incident_id": str(scene.incident.pk),
    }


def test_reassigning_tells_the_old_team_and_pushes_the_new_one(
    scene: Scene, django_capture_on_commit_callbacks: Any
) -> None:
    task = dispatch(scene, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        new_task = task_services.task_reassign(
            task_id=task.pk, to_team_id=scene.other_team.pk, by=scene.operator
        )

    reassigned = Notification.objects.filter(dedupe_key__startswith=f"task:{task.pk}:reassigned:")
    assert sorted(reassigned.values_list("user_id", flat=True)) == sorted(
        [scene.member.pk, scene.member2.pk]
    )
    pushed = Notification.objects.get(dedupe_key__startswith=f"{task_push_prefix(new_task.pk)}:")
    assert (pushed.user_id, pushed.priority, pushed.data["event"]) == (
        scene.other_member.pk,
        Priority.HIGH,
        "dispatched",
    )


def test_an_accepted_task_needs_no_sms_fallback(
    scene: Scene, django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    task = dispatch(scene, django_capture_on_commit_callbacks)
    task_services.task_accept(task_id=task.pk, by=scene.member)

    later = time_machine.travel(timezone.now() + timedelta(minutes=5))
    with later, django_capture_on_commit_callbacks(execute=True):
        assert delivery.receipts_sweep() == 0
    assert sms_outbox == []


def test_dispatch_registers_who_is_on_duty(scene: Scene) -> None:
    off = TeamMemberFactory(team=scene.other_team, on_duty=False).user
    citizen = StaffUserFactory()
    assert duty_of([scene.member.pk, off.pk, citizen.pk]) == {
        scene.member.pk: True,
        off.pk: False,
    }


# --- The app's receipt: POST /responder/tasks/{id}/delivered/ ---------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_receipt_stamps_the_task_once_and_stops_that_members_sms(
    scene: Scene, django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    # given
    task = dispatch(scene, django_capture_on_commit_callbacks)
    key = str(uuid.uuid4())

    # when: member's phone acks at +5 s, and retries the same request
    with time_machine.travel(NOW + timedelta(seconds=5), tick=False):
        first = delivered(scene.member, task.pk, **{"Idempotency-Key": key})
        replay = delivered(scene.member, task.pk, **{"Idempotency-Key": key})

    # then
    assert first.status_code == 200, first.json()
    assert first.json()["delivered_at"] is not None
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    task.refresh_from_db()
    assert task.delivered_at == NOW + timedelta(seconds=5)
    assert TaskEvent.objects.filter(task=task, kind="delivered").count() == 1
    mine = Notification.objects.get(channel=Channel.PUSH, user=scene.member)
    theirs = Notification.objects.get(channel=Channel.PUSH, user=scene.member2)
    assert mine.acknowledged_at == NOW + timedelta(seconds=5)
    assert theirs.acknowledged_at is None

    # and: after the deadline only the member whose phone stayed silent gets an SMS
    later = time_machine.travel(NOW + timedelta(seconds=61), tick=False)
    with later, django_capture_on_commit_callbacks(execute=True):
        assert delivery.receipts_sweep() == 1
    assert [m.phone for m in sms_outbox] == [scene.member2.phone]


def test_a_second_members_receipt_keeps_the_first_delivery_time(
    scene: Scene, django_capture_on_commit_callbacks: Any
) -> None:
    task = dispatch(scene, django_capture_on_commit_callbacks)
    first = delivered(scene.member, task.pk).json()["delivered_at"]
    second = delivered(scene.member2, task.pk)

    assert second.status_code == 200
    assert second.json()["delivered_at"] == first
    assert not Notification.objects.filter(
        channel=Channel.PUSH, acknowledged_at__isnull=True
    ).exists()


def test_only_the_teams_members_may_acknowledge(
    scene: Scene, django_capture_on_commit_callbacks: Any
) -> None:
    task = dispatch(scene, django_capture_on_commit_callbacks)
    in_scope_stranger = responder_with_scope(scene)

    responses = {
        "other region's operator": delivered(scene.outsider_operator, task.pk),
        "member of another team": delivered(scene.other_member, task.pk),
        "unknown task": delivered(scene.member, task.pk + 1000),
        "in-scope responder of another team": delivered(in_scope_stranger, task.pk),
    }

    assert {name: r.status_code for name, r in responses.items()} == {
        "other region's operator": 404,
        "member of another team": 404,
        "unknown task": 404,
        "in-scope responder of another team": 403,
    }
    assert responses["other region's operator"].json()["code"] == "task_not_found"
    assert responses["in-scope responder of another team"].json()["code"] == "not_team_member"
    task.refresh_from_db()
    assert task.delivered_at is None
    assert not Notification.objects.filter(acknowledged_at__isnull=False).exists()


def test_an_anonymous_receipt_is_refused(scene: Scene) -> None:
    task = scene.task("dispatched")
    response = APIClient().post(f"/api/v1/responder/tasks/{task.pk}/delivered/", {})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"

"""Task services: what follows a transition (team, incident, loop, proposals, guard)."""

from __future__ import annotations

from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.dispatch.models import DispatchTask, TaskEvent, TaskStatus, TeamStatus
from apps.dispatch.services import tasks as services
from apps.incidents.models import (
    Attachment,
    IncidentEvent,
    IncidentEventKind,
    IncidentStatus,
    Loop,
)
from apps.incidents.services.incidents import incident_resolve
from tests.dispatch.task_support import Scene
from tests.factories.dispatch import DepartmentFactory, TeamMemberFactory
from tests.factories.incidents import photo_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene() -> Scene:
    return Scene()


def _kinds(scene: Scene) -> list[str]:
    return list(
        IncidentEvent.objects.filter(incident=scene.incident)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


# --- Dispatch ------------------------------------------------------------------------------


def test_dispatch_creates_one_task_per_team_with_events_and_team_status(scene: Scene) -> None:
    # when
    tasks = services.task_dispatch(
        incident_id=scene.incident.pk,
        team_ids=[scene.team.pk, scene.other_team.pk],
        by=scene.operator,
        instructions="带抽水泵",
    )

    # then
    assert [t.team_id for t in tasks] == [scene.team.pk, scene.other_team.pk]
    for task in tasks:
        task.refresh_from_db()
        assert task.status == TaskStatus.DISPATCHED
        assert task.dispatched_by == scene.operator
        assert task.instructions == "带抽水泵"
        assert list(task.events.values_list("kind", flat=True)) == ["dispatched"]
    assert _kinds(scene).count(IncidentEventKind.TASK_DISPATCHED) == 2
    scene.team.refresh_from_db()
    # Dispatched (not yet accepted) tasks leave the team available (teams work's rule).
    assert scene.team.status in {TeamStatus.AVAILABLE, TeamStatus.DISPATCHED}


def test_dispatch_refuses_a_team_already_live_on_the_incident(scene: Scene) -> None:
    scene.task("accepted")
    with pytest.raises(ApplicationError) as refused:
        services.task_dispatch(incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=None)
    assert refused.value.code == "team_already_on_incident"
    assert refused.value.status == 409


@pytest.mark.parametrize("status", [TeamStatus.OFF_DUTY, TeamStatus.OUT_OF_SERVICE])
def test_dispatch_refuses_a_team_that_cannot_take_tasks(scene: Scene, status: str) -> None:
    team = scene.new_team(status=status)
    with pytest.raises(ApplicationError) as refused:
        services.task_dispatch(incident_id=scene.incident.pk, team_ids=[team.pk], by=None)
    assert refused.value.code == "team_not_dispatchable"
    assert not DispatchTask.objects.exists()


def test_dispatch_refuses_an_inactive_or_unknown_team(scene: Scene) -> None:
    inactive = scene.new_team(is_active=False)
    with pytest.raises(ApplicationError) as refused:
        services.task_dispatch(incident_id=scene.incident.pk, team_ids=[inactive.pk], by=None)
    assert refused.value.code == "team_not_dispatchable"
    with pytest.raises(ApplicationError) as unknown:
        services.task_dispatch(incident_id=scene.incident.pk, team_ids=[999_999], by=None)
    assert unknown.value.code == "team_not_found"
    assert unknown.value.status == 404


@pytest.mark.parametrize(
    "status", [IncidentStatus.REPORTED, IncidentStatus.RESOLVED, IncidentStatus.REJECTED]
)
def test_dispatch_refuses_an_incident_not_accepted_or_in_progress(status: str) -> None:
    scene = Scene(incident_status=status)
    with pytest.raises(ApplicationError) as refused:
        services.task_dispatch(incident_id=scene.incident.pk, team_ids=[scene.team.pk], by=None)
    assert refused.value.code == "incident_not_dispatchable"
    assert refused.value.extra == {"status": status}


def test_teams_of_two_departments_raise_the_loop_to_medium(scene: Scene) -> None:
    # given
    fire = DepartmentFactory(code="fire")
    water = DepartmentFactory(code="water")
    a = scene.new_team(department=fire)
    b = scene.new_team(department=water)

    # when
    tasks = services.task_dispatch(
        incident_id=scene.incident.pk, team_ids=[a.pk, b.pk], by=scene.operator
    )

    # then
    assert all(t.cross_department for t in tasks)
    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.MEDIUM
    classified = IncidentEvent.objects.get(
        incident=scene.incident, kind=IncidentEventKind.CLASSIFIED
    )
    assert classified.data["changes"] == {"loop": {"old": "small", "new": "medium"}}


def test_a_team_outside_the_lead_department_is_cross_department(scene: Scene) -> None:
    lead = DepartmentFactory(code="urban")
    lead.categories.add(scene.incident.category)
    outsider = scene.new_team(department=DepartmentFactory(code="power"))

    (task,) = services.task_dispatch(
        incident_id=scene.incident.pk, team_ids=[outsider.pk], by=scene.operator
    )

    assert task.cross_department
    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.MEDIUM


def test_a_lead_department_team_stays_in_the_small_loop(scene: Scene) -> None:
    lead = DepartmentFactory(code="urban")
    lead.categories.add(scene.incident.category)
    own = scene.new_team(department=lead)

    (task,) = services.task_dispatch(
        incident_id=scene.incident.pk, team_ids=[own.pk], by=scene.operator
    )

    assert not task.cross_department
    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.SMALL
    assert IncidentEventKind.CLASSIFIED not in _kinds(scene)


def test_a_second_department_joining_later_is_cross_department_too(scene: Scene) -> None:
    first = scene.new_team(department=DepartmentFactory(code="fire"))
    services.task_dispatch(incident_id=scene.incident.pk, team_ids=[first.pk], by=None)
    second = scene.new_team(department=DepartmentFactory(code="gas"))

    (task,) = services.task_dispatch(incident_id=scene.incident.pk, team_ids=[second.pk], by=None)

    assert task.cross_department
    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.MEDIUM


def test_the_loop_is_never_lowered(scene: Scene) -> None:
    scene.incident.loop = Loop.LARGE
    scene.incident.save(update_fields=["loop"])
    a = scene.new_team(department=DepartmentFactory(code="fire"))
    b = scene.new_team(department=DepartmentFactory(code="water"))

    services.task_dispatch(incident_id=scene.incident.pk, team_ids=[a.pk, b.pk], by=None)

    scene.incident.refresh_from_db()
    assert scene.incident.loop == Loop.LARGE


# --- Acceptance and the incident -------------------------------------------------------------


def test_the_first_acceptance_starts_the_incident_and_later_ones_do_not(scene: Scene) -> None:
    # given
    first = scene.task("dispatched")
    second = scene.task("dispatched", team=scene.other_team)

    # when
    task = services.task_accept(task_id=first.pk, by=scene.member)

    # then
    assert task.status == TaskStatus.ACCEPTED
    assert task.accepted_by == scene.member
    assert task.accepted_at is not None
    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS
    assert scene.incident.in_progress_at is not None

    services.task_accept(task_id=second.pk, by=scene.other_member)
    assert _kinds(scene).count(IncidentEventKind.STARTED) == 1
    assert _kinds(scene).count(IncidentEventKind.TASK_ACCEPTED) == 2


def test_team_status_follows_its_task(scene: Scene) -> None:
    task = scene.task("dispatched")
    services.task_accept(task_id=task.pk, by=scene.member)
    scene.team.refresh_from_db()
    assert scene.team.status == TeamStatus.DISPATCHED

    services.task_on_scene(task_id=task.pk, by=scene.member)
    scene.team.refresh_from_db()
    assert scene.team.status == TeamStatus.BUSY

    services.task_complete(task_id=task.pk, by=scene.member, result="已排水")
    scene.team.refresh_from_db()
    assert scene.team.status == TeamStatus.AVAILABLE


def test_a_member_of_another_team_cannot_act_on_the_task(scene: Scene) -> None:
    task = scene.task("dispatched")
    for call in (
        lambda: services.task_accept(task_id=task.pk, by=scene.other_member),
        lambda: services.task_decline(task_id=task.pk, by=scene.other_member, reason="不"),
        lambda: services.task_ack_delivery(task_id=task.pk, by=scene.other_member),
    ):
        with pytest.raises(ApplicationError) as refused:
            call()
        assert refused.value.code == "not_team_member"
        assert refused.value.status == 403
    task.refresh_from_db()
    assert task.status == TaskStatus.DISPATCHED
    assert task.delivered_at is None


def test_an_inactive_member_cannot_accept(scene: Scene) -> None:
    left = TeamMemberFactory(team=scene.team, is_active=False).user
    task = scene.task("dispatched")
    with pytest.raises(ApplicationError) as refused:
        services.task_accept(task_id=task.pk, by=left)
    assert refused.value.code == "not_team_member"


def test_accepting_on_an_incident_no_longer_open_is_refused() -> None:
    scene = Scene(incident_status=IncidentStatus.RESOLVED)
    task = scene.task("dispatched")
    with pytest.raises(ApplicationError) as refused:
        services.task_accept(task_id=task.pk, by=scene.member)
    assert refused.value.code == "incident_not_dispatchable"


# --- Decline, expiry: the next proposal -------------------------------------------------------


def test_decline_records_the_reason_and_proposes_another_team(scene: Scene) -> None:
    # given: a third team, near and available
    spare = scene.new_team(code="spare")
    scene.add_member(spare)
    task = scene.task("dispatched")

    # when
    outcome = services.task_decline(task_id=task.pk, by=scene.member, reason="车辆故障")

    # then
    assert outcome.task.status == TaskStatus.DECLINED
    assert outcome.task.decline_reason == "车辆故障"
    assert outcome.proposal is not None
    assert outcome.proposal.team.pk != scene.team.pk
    event = TaskEvent.objects.get(task=task, kind="declined")
    assert event.actor == scene.member
    assert event.data["reason"] == "车辆故障"
    assert event.data["proposed_team_id"] == outcome.proposal.team.pk


def test_the_proposal_skips_teams_live_on_or_refused_by_the_incident(scene: Scene) -> None:
    scene.task("accepted", team=scene.other_team)  # already on it
    third = scene.new_team()
    refused_before = scene.task("declined", team=third)  # said no before
    assert refused_before.status == TaskStatus.DECLINED
    task = scene.task("dispatched")

    outcome = services.task_decline(task_id=task.pk, by=scene.member, reason="人手不够")

    assert outcome.proposal is None or outcome.proposal.team.pk not in {
        scene.team.pk,
        scene.other_team.pk,
        third.pk,
    }


def test_expiry_is_a_system_transition_that_proposes_the_next_team(scene: Scene) -> None:
    task = scene.task("dispatched")

    outcome = services.task_expire(task_id=task.pk)

    assert outcome.task.status == TaskStatus.EXPIRED
    assert outcome.task.expired_at is not None
    assert outcome.proposal is not None
    assert outcome.proposal.team.pk == scene.other_team.pk
    event = TaskEvent.objects.get(task=task, kind="expired")
    assert event.actor is None
    assert IncidentEventKind.TASK_EXPIRED in _kinds(scene)


def test_expiring_twice_changes_nothing_the_second_time(scene: Scene) -> None:
    task = scene.task("dispatched")
    services.task_expire(task_id=task.pk)
    with pytest.raises(ApplicationError) as refused:
        services.task_expire(task_id=task.pk)
    assert refused.value.code == "illegal_task_transition"
    assert TaskEvent.objects.filter(task=task).count() == 1


def test_an_accepted_task_does_not_expire(scene: Scene) -> None:
    task = scene.task("accepted")
    with pytest.raises(ApplicationError) as refused:
        services.task_expire(task_id=task.pk)
    assert refused.value.extra["from"] == "accepted"


def test_decline_needs_a_reason(scene: Scene) -> None:
    task = scene.task("dispatched")
    with pytest.raises(ApplicationError) as refused:
        services.task_decline(task_id=task.pk, by=scene.member, reason="  ")
    assert refused.value.code == "invalid"
    assert "reason" in refused.value.extra["fields"]


# --- Operator actions -------------------------------------------------------------------------


def test_reassign_cancels_and_dispatches_in_one_step(scene: Scene) -> None:
    old = scene.task("accepted")
    old.instructions = "从北门进"
    old.save(update_fields=["instructions"])

    new = services.task_reassign(
        task_id=old.pk, to_team_id=scene.other_team.pk, by=scene.operator, reason="太远"
    )

    old.refresh_from_db()
    assert old.status == TaskStatus.CANCELLED
    assert old.cancelled_at is not None
    assert old.cancel_reason == "太远"
    assert new.team_id == scene.other_team.pk
    assert new.status == TaskStatus.DISPATCHED
    assert new.instructions == "从北门进"
    reassigned = TaskEvent.objects.get(task=old, kind="reassigned")
    assert reassigned.data["new_task_id"] == new.pk
    kinds = _kinds(scene)
    assert IncidentEventKind.TASK_REASSIGNED in kinds
    assert IncidentEventKind.TASK_DISPATCHED in kinds


def test_reassigning_to_the_same_team_is_refused(scene: Scene) -> None:
    task = scene.task("dispatched")
    with pytest.raises(ApplicationError) as refused:
        services.task_reassign(task_id=task.pk, to_team_id=scene.team.pk, by=scene.operator)
    assert refused.value.code == "invalid"
    task.refresh_from_db()
    assert task.status == TaskStatus.DISPATCHED


def test_a_failed_reassignment_leaves_the_old_task_live(scene: Scene) -> None:
    task = scene.task("accepted")
    off = scene.new_team(status=TeamStatus.OFF_DUTY)
    with pytest.raises(ApplicationError):
        services.task_reassign(task_id=task.pk, to_team_id=off.pk, by=scene.operator)
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED


def test_instructions_are_appended(scene: Scene) -> None:
    task = services.task_dispatch(
        incident_id=scene.incident.pk,
        team_ids=[scene.team.pk],
        by=scene.operator,
        instructions="第一条",
    )[0]
    services.task_add_instructions(task_id=task.pk, by=scene.operator, text="第二条")
    task.refresh_from_db()
    assert task.instructions == "第一条\n第二条"
    assert TaskEvent.objects.filter(task=task, kind="instructions").get().data == {"text": "第二条"}


def test_returned_work_goes_on_and_keeps_the_first_time_kpis(scene: Scene) -> None:
    # given: a completed task
    with time_machine.travel("2026-07-01 10:00:00 +08:00", tick=False):
        task = scene.task("dispatched")
        services.task_accept(task_id=task.pk, by=scene.member)
    with time_machine.travel("2026-07-01 10:10:00 +08:00", tick=False):
        services.task_on_scene(task_id=task.pk, by=scene.member)
    with time_machine.travel("2026-07-01 11:00:00 +08:00", tick=False):
        services.task_complete(task_id=task.pk, by=scene.member, result="已处理")

    # when: returned, then done again
    with time_machine.travel("2026-07-01 12:00:00 +08:00", tick=False):
        returned = services.task_return(task_id=task.pk, by=scene.operator, reason="仍有积水")
    assert returned.status == TaskStatus.RETURNED
    assert returned.return_reason == "仍有积水"
    with time_machine.travel("2026-07-01 12:30:00 +08:00", tick=False):
        services.task_on_scene(task_id=task.pk, by=scene.member2)
    with time_machine.travel("2026-07-01 13:00:00 +08:00", tick=False):
        services.task_complete(task_id=task.pk, by=scene.member2, result="彻底排干")

    # then
    task.refresh_from_db()
    local = timezone.localtime
    assert task.status == TaskStatus.COMPLETED
    assert local(task.on_scene_at).strftime("%H:%M") == "10:10"  # first arrival kept
    assert local(task.completed_at).strftime("%H:%M") == "13:00"  # latest completion
    assert local(task.returned_at).strftime("%H:%M") == "12:00"
    assert task.result == "彻底排干"
    assert list(task.events.values_list("kind", flat=True)) == [
        "accepted",
        "on_scene",
        "completed",
        "returned",
        "on_scene",
        "completed",
    ]


def test_complete_attaches_the_photos_to_the_incident(scene: Scene) -> None:
    task = scene.task("on_scene")
    photo = SimpleUploadedFile("a.jpg", photo_bytes(), content_type="image/jpeg")

    services.task_complete(task_id=task.pk, by=scene.member, result="已处理", photos=[photo])

    attachment = Attachment.objects.get(incident=scene.incident)
    assert attachment.uploaded_by == scene.member
    event = TaskEvent.objects.get(task=task, kind="completed")
    assert event.data["attachment_ids"] == [attachment.pk]


def test_a_refused_completion_writes_no_photo_row(scene: Scene) -> None:
    task = scene.task("accepted")  # not on scene yet
    photo = SimpleUploadedFile("a.jpg", photo_bytes(), content_type="image/jpeg")
    with pytest.raises(ApplicationError):
        services.task_complete(task_id=task.pk, by=scene.member, result="好", photos=[photo])
    assert not Attachment.objects.exists()


def test_delivery_is_acknowledged_once(scene: Scene) -> None:
    task = scene.task("dispatched")
    first = services.task_ack_delivery(task_id=task.pk, by=scene.member)
    stamp = first.delivered_at
    second = services.task_ack_delivery(task_id=task.pk, by=scene.member2)
    assert stamp is not None
    assert second.delivered_at == stamp
    assert TaskEvent.objects.filter(task=task, kind="delivered").count() == 1


def test_every_change_schedules_the_after_commit_hook(
    scene: Scene, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(services, "_after_commit_task_changed", seen.append)
    task = scene.task("dispatched")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.task_accept(task_id=task.pk, by=scene.member)
    assert seen == []  # nothing before the commit
    for callback in callbacks:
        callback()

    assert task.pk in seen


# --- Resolve guard ---------------------------------------------------------------------------


def test_the_incident_cannot_be_resolved_while_a_task_is_under_way() -> None:
    scene = Scene(incident_status=IncidentStatus.IN_PROGRESS)
    working = scene.task("on_scene")
    scene.task("completed", team=scene.other_team)

    with pytest.raises(ApplicationError) as refused:
        incident_resolve(incident_id=scene.incident.pk, by=scene.operator, resolution="办结")

    assert refused.value.code == "incident_has_open_tasks"
    assert refused.value.extra == {"task_ids": [working.pk]}
    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS


def test_the_incident_resolves_once_its_tasks_are_done_or_cancelled() -> None:
    scene = Scene(incident_status=IncidentStatus.IN_PROGRESS)
    done = scene.task("on_scene")
    other = scene.task("dispatched", team=scene.other_team)
    services.task_complete(task_id=done.pk, by=scene.member, result="处置完毕")
    services.task_cancel(task_id=other.pk, by=scene.operator, reason="不再需要")

    incident = incident_resolve(incident_id=scene.incident.pk, by=scene.operator, resolution="办结")

    assert incident.status == IncidentStatus.RESOLVED

"""What the ladder does, end to end through the real services: 督办, the loop raised
small → medium → large with command moving up the tree, a task that nobody accepted
expiring with the next team proposed or dispatched, every step on the incident timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.dispatch.models import DispatchTask, TaskStatus
from apps.dispatch.services import tasks as task_services
from apps.incidents.models import Incident, IncidentEvent, Loop
from apps.incidents.services import incidents as incident_services
from apps.notifications.models import Notification
from apps.sla.models import ClockStatus, Escalation, SlaClock, SlaKind
from apps.sla.services.sweep import sla_sweep
from tests.sla.conftest import Cast

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 8, 0, tzinfo=SHANGHAI)


def _sweep_at(moment: datetime) -> list[Escalation]:
    before = set(Escalation.objects.values_list("pk", flat=True))
    with time_machine.travel(moment, tick=False):
        sla_sweep()
    return list(Escalation.objects.exclude(pk__in=before).order_by("pk"))


def _told(escalations: list[Escalation]) -> set[int]:
    return {user_id for e in escalations for user_id in e.recipients}


def _timeline(incident: Incident) -> list[str]:
    return list(
        IncidentEvent.objects.filter(incident=incident)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )


def _accepted_incident(cast: Cast, **kwargs: Any) -> Incident:
    incident = cast.incident(status="reported", **kwargs)
    incident_services.incident_accept(incident_id=incident.pk, by=cast.street_operator)
    incident.refresh_from_db()
    return incident


# --- The loop: small → medium → large --------------------------------------------------------


def test_repeated_breaches_raise_the_loop_small_medium_large_telling_the_right_people(
    cast: Cast, default_policies: Any
) -> None:
    # given a small-loop incident accepted at T0, a team on scene (working, not done)
    with time_machine.travel(T0, tick=False):
        incident = _accepted_incident(cast)
        (task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
        )
        task_services.task_accept(task_id=task.pk, by=cast.member)
        task_services.task_on_scene(task_id=task.pk, by=cast.member)
    team = {cast.leader.pk, cast.member.pk}

    # when the 4 h small loop passes: the team and its leader are told
    at_4h = _sweep_at(T0 + timedelta(hours=4))
    # +30 min: the street duty officer, and the incident is supervised (督办)
    at_4h30 = _sweep_at(T0 + timedelta(hours=4, minutes=30))
    # +1 h: the loop goes to medium and the new town takes command
    at_5h = _sweep_at(T0 + timedelta(hours=5))

    # then
    assert _told([e for e in at_4h if e.kind == "step"]) == team
    assert _told(at_4h30) == {cast.street_operator.pk}
    assert _told(at_5h) == {cast.town_operator.pk, cast.town_commander.pk}
    incident.refresh_from_db()
    assert incident.supervised_at == T0 + timedelta(hours=4, minutes=30)
    assert incident.loop == Loop.MEDIUM
    assert incident.command_region == cast.tree.fengdong
    small, medium = SlaClock.objects.filter(
        kind=SlaKind.INCIDENT_RESOLUTION, subject_id=incident.pk
    ).order_by("pk")
    assert (small.status, small.loop) == (ClockStatus.STOPPED, "small")
    assert (medium.status, medium.loop) == (ClockStatus.RUNNING, "medium")
    assert medium.due_at == T0 + timedelta(hours=5 + 24)  # the medium loop's own 24 h

    # when the medium loop's 24 h pass too, then 4 more hours
    at_29h = _sweep_at(T0 + timedelta(hours=29))
    at_33h = _sweep_at(T0 + timedelta(hours=33))

    # then the team, its leader and the new town are told, then the new area takes over
    assert _told([e for e in at_29h if e.kind == "step"]) == team | {
        cast.town_operator.pk,
        cast.town_commander.pk,
    }
    assert _told(at_33h) == {cast.area_commander.pk}
    incident.refresh_from_db()
    assert incident.loop == Loop.LARGE
    assert incident.command_region == cast.tree.root
    large = SlaClock.objects.get(
        kind=SlaKind.INCIDENT_RESOLUTION, subject_id=incident.pk, status=ClockStatus.RUNNING
    )
    assert large.loop == "large"
    assert large.due_at == T0 + timedelta(hours=33 + 72)
    # every step is on the timeline; the outsider (沣西) was never told anything
    kinds = _timeline(incident)
    assert kinds.count(IncidentEvent.Kind.LOOP_RAISED) == 2
    assert kinds.count(IncidentEvent.Kind.SLA_BREACHED) == 2
    assert kinds.count(IncidentEvent.Kind.SLA_ESCALATED) == 5
    assert kinds.count(IncidentEvent.Kind.SUPERVISED) == 2
    raised = IncidentEvent.objects.filter(
        incident=incident, kind=IncidentEvent.Kind.LOOP_RAISED
    ).order_by("at")
    assert [e.data["command_region"] for e in raised] == ["fengdong", "xixian"]
    assert not Notification.objects.filter(user=cast.outsider).exists()


def test_a_large_loop_is_not_raised_further(cast: Cast, default_policies: Any) -> None:
    from apps.incidents.services.sla import incident_raise_loop

    incident = cast.incident(loop=Loop.LARGE)

    incident_raise_loop(incident_id=incident.pk)

    incident.refresh_from_db()
    assert incident.loop == Loop.LARGE
    assert not IncidentEvent.objects.filter(incident=incident).exists()


# --- A task nobody accepts ---------------------------------------------------------------------


def test_an_unaccepted_task_expires_and_the_next_team_is_proposed(
    cast: Cast, default_policies: Any
) -> None:
    # given a team dispatched at T0 that does not answer
    with time_machine.travel(T0, tick=False):
        incident = _accepted_incident(cast)
        (task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
        )

    # when the 3 minutes pass
    ran = _sweep_at(T0 + timedelta(minutes=3))

    # then the task expired, the other team is proposed (not sent), and the team, its
    # leader and the street duty officer are told
    task.refresh_from_db()
    assert task.status == TaskStatus.EXPIRED
    step = next(e for e in ran if e.kind == "step")
    assert step.actions["expire"]["proposed_team_id"] == cast.other_team.pk
    assert "dispatched_task_id" not in step.actions["expire"]
    assert set(step.recipients) == {cast.leader.pk, cast.member.pk, cast.street_operator.pk}
    assert not DispatchTask.objects.filter(team=cast.other_team).exists()
    # the incident owes a dispatch again, on a clock
    dispatch_clock = SlaClock.objects.get(
        kind=SlaKind.DISPATCH, subject_id=incident.pk, status=ClockStatus.RUNNING
    )
    assert dispatch_clock.started_at == T0 + timedelta(minutes=3)
    assert _timeline(incident) == [
        "accepted",
        "task_dispatched",
        "sla_breached",
        "task_expired",
        "sla_escalated",
    ]


def test_for_a_severe_incident_the_next_team_is_dispatched_at_once(
    cast: Cast, default_policies: Any
) -> None:
    # given a severity Ⅱ incident
    with time_machine.travel(T0, tick=False):
        incident = _accepted_incident(cast, severity="II")
        (_task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
        )

    # when
    ran = _sweep_at(T0 + timedelta(minutes=3))

    # then the next team has a task of its own, with its own acceptance clock from now
    step = next(e for e in ran if e.kind == "step")
    new_task = DispatchTask.objects.get(team=cast.other_team)
    assert step.actions["expire"]["dispatched_task_id"] == new_task.pk
    assert new_task.status == TaskStatus.DISPATCHED
    assert new_task.dispatched_by is None  # the system sent it
    accept_clock = SlaClock.objects.get(kind=SlaKind.TASK_ACCEPT, subject_id=new_task.pk)
    assert accept_clock.due_at == T0 + timedelta(minutes=6)
    assert not SlaClock.objects.filter(kind=SlaKind.DISPATCH, status=ClockStatus.RUNNING).exists()
    # new-town command is told for a severe incident
    assert cast.town_commander.pk in step.recipients
    # and if that team does not answer either, nobody is left to propose
    again = _sweep_at(T0 + timedelta(minutes=6))
    last = next(e for e in again if e.kind == "step")
    assert last.actions["expire"]["proposed_team_id"] is None
    assert "dispatched_task_id" not in last.actions["expire"]


def test_a_task_accepted_in_time_never_escalates(cast: Cast, default_policies: Any) -> None:
    with time_machine.travel(T0, tick=False):
        incident = _accepted_incident(cast)
        (task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
        )
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        task_services.task_accept(task_id=task.pk, by=cast.member)

    ran = _sweep_at(T0 + timedelta(minutes=10))

    assert [e for e in ran if e.subject_type == "task" and e.clock.kind == "task_accept"] == []
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED


# --- Arrival: the gas leak's 20 min target and 60 min limit ----------------------------------


def test_a_late_gas_team_is_chased_at_20_minutes_and_supervised_at_60(
    cast: Cast, default_policies: Any
) -> None:
    # given a gas leak, a team that accepted but is not on scene
    with time_machine.travel(T0, tick=False):
        incident = _accepted_incident(cast, category=cast.gas)
        (task,) = task_services.task_dispatch(
            incident_id=incident.pk, team_ids=[cast.team.pk], by=cast.street_operator
        )
        task_services.task_accept(task_id=task.pk, by=cast.member)

    # when
    at_20 = [e for e in _sweep_at(T0 + timedelta(minutes=20)) if e.subject_type == "task"]
    at_60 = [e for e in _sweep_at(T0 + timedelta(minutes=60)) if e.subject_type == "task"]

    # then
    assert [(e.kind, e.step) for e in at_20] == [("target_missed", 0), ("step", 1)]
    assert _told(at_20) == {cast.leader.pk, cast.member.pk, cast.street_operator.pk}
    assert [(e.kind, e.step) for e in at_60] == [("breached", 0), ("step", 2)]
    assert _told(at_60) == {cast.street_operator.pk, cast.town_operator.pk, cast.town_commander.pk}
    assert at_60[1].actions["supervise"]["applied"] is True
    incident.refresh_from_db()
    assert incident.supervised_at == T0 + timedelta(minutes=60)
    assert Notification.objects.filter(
        kind="escalation", user=cast.leader, priority="high"
    ).exists()

"""Dispatch tasks under SLA clocks: the task clocks and the handlers of task clocks.

``apps.sla`` sits below dispatch and knows nothing of it; this module is the bridge, as
``apps.incidents.services.sla`` is for incidents. The task services call
:func:`sla_task_dispatched` and :func:`sla_task_moved` inside their transaction;
:func:`sla_register` (from ``DispatchConfig.ready()``) registers the handlers the sweeper
uses. The escalation step that expires a task calls back into the task services, so they
are imported where used (they import this module).

Clocks (started and stopped in the transaction of the change, the incident locked):
*task_accept* and *task_arrival* start when a team is dispatched (arrival counts from
dispatch: "on scene within 20 minutes" of the call going out); acceptance stops the
first, on-scene the second; decline, expiry and cancellation end both. Sending a team
stops the incident's *dispatch* clock; a decline or an expiry that leaves an accepted
incident with no live task starts it again (someone must be sent). The handlers let the
sweeper lock a task (its incident first, as every task service), record on the
incident timeline, supervise, raise the loop and expire the task, proposing or
dispatching the next recommended team per the policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.dispatch.models import DispatchTask, TaskStatus, TeamMember
from apps.incidents.models import Incident, IncidentStatus, Severity
from apps.incidents.services import sla as incident_sla
from apps.sla.models import Audience, NextTeam, SlaClock, SlaKind
from apps.sla.policies import LadderStep
from apps.sla.registry import Lock as SlaLock
from apps.sla.registry import RecordEvent as SlaRecordEvent
from apps.sla.registry import SubjectHandler, register_recipients, register_subject
from apps.sla.services.clocks import sla_clock_cancel, sla_clock_start, sla_clock_stop

SUBJECT_TASK = "task"


def _task_clock_dimensions(task: DispatchTask, incident: Incident) -> dict[str, Any]:
    return {
        "subject_type": SUBJECT_TASK,
        "subject_id": task.pk,
        "region_id": incident.region_id,
        "label": f"{task.team.name} → {incident.number} {incident.title}",
        "category": incident.category.code,
        "severity": "" if incident.severity == Severity.UNCLASSIFIED else incident.severity,
        "loop": incident.loop,
        "is_drill": incident.is_drill,
        "started_at": task.dispatched_at,
    }


def sla_task_dispatched(task: DispatchTask, incident: Incident) -> None:
    dimensions = _task_clock_dimensions(task, incident)
    sla_clock_start(kind=SlaKind.TASK_ACCEPT, **dimensions)
    sla_clock_start(kind=SlaKind.TASK_ARRIVAL, **dimensions)
    sla_clock_stop(
        kind=SlaKind.DISPATCH,
        subject_type=incident_sla.SUBJECT_INCIDENT,
        subject_id=incident.pk,
        reason="dispatched",
    )


def sla_task_moved(task: DispatchTask, target: str) -> None:
    """Stop or cancel the task's clocks as its status moves (from ``_set_status``)."""
    if target == TaskStatus.ACCEPTED:
        _task_clock_stop(task, SlaKind.TASK_ACCEPT, "accepted")
    elif target == TaskStatus.ON_SCENE:
        _task_clock_stop(task, SlaKind.TASK_ARRIVAL, "on scene")
    elif target in (TaskStatus.DECLINED, TaskStatus.EXPIRED):
        _task_clock_stop(task, SlaKind.TASK_ACCEPT, str(target))
        sla_clock_cancel(subject_type=SUBJECT_TASK, subject_id=task.pk, reason=f"task {target}")
        incident = task.incident
        if (
            incident.status == IncidentStatus.ACCEPTED
            and not DispatchTask.objects.live().filter(incident_id=incident.pk).exists()
        ):
            incident_sla.on_incident_undispatched(incident)
    elif target == TaskStatus.CANCELLED:
        sla_clock_cancel(subject_type=SUBJECT_TASK, subject_id=task.pk, reason="task cancelled")


def _task_clock_stop(task: DispatchTask, kind: str, reason: str) -> None:
    sla_clock_stop(kind=kind, subject_type=SUBJECT_TASK, subject_id=task.pk, reason=reason)


def _lock_task(task_id: int, *, wait: bool) -> SlaLock:
    incident_id = task_incident_id_or_none(task_id)
    if incident_id is None:
        return SlaLock.GONE
    outcome = incident_sla.lock_incident(incident_id, wait=wait)
    if outcome != SlaLock.LOCKED:
        return outcome
    return incident_sla.lock_rows(DispatchTask.objects.filter(pk=task_id), wait=wait)


def task_incident_id_or_none(task_id: int) -> int | None:
    return DispatchTask.objects.filter(pk=task_id).values_list("incident_id", flat=True).first()


def _record_on_incident(event: SlaRecordEvent) -> None:
    task = DispatchTask.objects.values("incident_id", "team_id").get(pk=event.clock.subject_id)
    incident_sla.incident_record_sla_event(
        incident_id=task["incident_id"],
        kind=event.kind,
        data={**event.data, "task_id": event.clock.subject_id, "team_id": task["team_id"]},
    )


def _expire_task(clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    """The ladder's "task not accepted in time": expire it (dispatch proposes the next
    recommended team) and, if the policy says so, dispatch that team at once. A dispatch
    refused (the team went off duty a moment ago) keeps the expiry and records why."""
    from apps.dispatch.services.tasks import task_dispatch, task_expire

    outcome = task_expire(task_id=clock.subject_id)
    proposal = outcome.proposal
    result: dict[str, Any] = {
        "applied": True,
        "task_id": outcome.task.pk,
        "proposed_team_id": proposal.team.pk if proposal is not None else None,
    }
    if step.next_team == NextTeam.DISPATCH and proposal is not None:
        try:
            with transaction.atomic():
                (new_task,) = task_dispatch(
                    incident_id=outcome.task.incident_id,
                    team_ids=[proposal.team.pk],
                    by=None,
                    instructions=outcome.task.instructions,
                )
        except ApplicationError as exc:
            result["dispatch_error"] = exc.code
        else:
            result["dispatched_task_id"] = new_task.pk
            result["dispatched_team_id"] = new_task.team_id
    return result


def _member_ids(team_ids: Iterable[int], *, leaders_only: bool) -> list[int]:
    """Active members of the teams (leaders only, or: those on duty, else everyone)."""
    members = TeamMember.objects.filter(
        team_id__in=list(team_ids), is_active=True, user__is_active=True
    )
    if leaders_only:
        return list(members.filter(is_leader=True).values_list("user_id", flat=True))
    rows = list(members.values_list("user_id", "on_duty"))
    on_duty = [user_id for user_id, duty in rows if duty]
    return on_duty or [user_id for user_id, _duty in rows]


def _task_team(clock: SlaClock) -> list[int]:
    return list(DispatchTask.objects.filter(pk=clock.subject_id).values_list("team_id", flat=True))


def _incident_teams(clock: SlaClock) -> list[int]:
    return list(
        DispatchTask.objects.live()
        .filter(incident_id=clock.subject_id)
        .values_list("team_id", flat=True)
    )


def sla_register() -> None:
    """Called from ``DispatchConfig.ready()``."""
    register_subject(
        SUBJECT_TASK,
        SubjectHandler(
            label=_("Dispatch task"),
            lock=_lock_task,
            record=_record_on_incident,
            supervise=lambda clock, step: incident_sla.supervise_incident(
                _incident_of(clock), clock, step
            ),
            raise_loop=lambda clock, step: incident_sla.raise_incident_loop(
                _incident_of(clock), clock, step
            ),
            expire=_expire_task,
        ),
    )
    register_recipients(
        SUBJECT_TASK,
        Audience.ASSIGNEE,
        lambda clock: _member_ids(_task_team(clock), leaders_only=False),
    )
    register_recipients(
        SUBJECT_TASK,
        Audience.TEAM_LEADER,
        lambda clock: _member_ids(_task_team(clock), leaders_only=True),
    )
    # The teams on an incident are dispatch's knowledge: its clocks' assignees too.
    register_recipients(
        incident_sla.SUBJECT_INCIDENT,
        Audience.ASSIGNEE,
        lambda clock: _member_ids(_incident_teams(clock), leaders_only=False),
    )
    register_recipients(
        incident_sla.SUBJECT_INCIDENT,
        Audience.TEAM_LEADER,
        lambda clock: _member_ids(_incident_teams(clock), leaders_only=True),
    )


def _incident_of(clock: SlaClock) -> int:
    incident_id = task_incident_id_or_none(clock.subject_id)
    if incident_id is None:  # pragma: no cover - the sweeper locked the task just before
        raise DispatchTask.DoesNotExist
    return incident_id

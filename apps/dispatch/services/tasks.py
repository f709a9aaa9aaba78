"""Dispatch-task writes: dispatch, every transition, reassignment (conventions R1-R3, R11).

Every transition follows the same steps:

1. lock the incident, then the task (``apps.dispatch.locks``, pk order): two members of
   a team pressing "accept" at once are serialised and the second sees the first's
   result (``illegal_task_transition``, 409);
2. check who acts: responder actions need an active member of the task's team
   (``not_team_member``, 403); operator actions are refused while an on-site command post
   is open and the actor is not on it (``command_post_in_charge``, 403);
3. look the action up in the one table (``task_transitions.TRANSITIONS``);
4. write the status, its timestamp (and actor where the row has a column for it) with
   ``update_fields``;
5. append a ``TaskEvent`` (who, when, what), a row on the incident timeline, the push
   outbox rows (``apps.dispatch.push``) and the realtime event (``apps.dispatch.realtime``:
   incident, region and the team members' streams), in the same transaction; start or
   stop the task's SLA clocks (``apps.dispatch.services.sla``);
6. then let the team status follow (``team_status_refresh``): always after step 5, so
   every transaction locks stream counters before team rows (no deadlock);
7. after commit the outbox is delivered and the events published by their apps.

Timestamps: ``accepted_at``, ``en_route_at`` and ``on_scene_at`` keep the *first* time
(they are the "first-time" KPIs; a returned task going on scene again does not move
them); ``completed_at`` and ``returned_at`` hold the latest (the TaskEvents keep each).

Services do not check region roles (the API does: they also run for the system with
``by=None``, e.g. :func:`task_expire` from the SLA sweeper).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.core.transactions import on_commit
from apps.core.validation import field_error, optional_text, required_text
from apps.dispatch import locks, policies
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import (
    Department,
    DispatchTask,
    TaskEvent,
    TaskStatus,
    Team,
    TeamMember,
    TeamStatus,
)
from apps.dispatch.push import task_push_acknowledged, task_push_on_event
from apps.dispatch.realtime import task_changed
from apps.dispatch.recommendation import Recommendation, recommend_teams
from apps.dispatch.services.sla import sla_task_dispatched, sla_task_moved
from apps.dispatch.services.teams import team_status_refresh
from apps.dispatch.task_transitions import (
    TIMESTAMP_FIELD,
    WORKING,
    TaskAction,
    task_transition_target,
)
from apps.incidents.guards import register_resolve_guard
from apps.incidents.models import Incident, IncidentEventKind, IncidentStatus, Loop
from apps.incidents.services.attachments import (
    attachments_create,
    photo_files_delete,
    photo_files_write,
    photos_process,
)
from apps.incidents.services.incidents import incident_classify, incident_start
from apps.incidents.timeline import timeline_append

logger = logging.getLogger(__name__)

TEXT_MAX_LENGTH = 2000
# Field refusals shaped like serializer errors (services are also called from the admin).
_required_text = partial(required_text, max_length=TEXT_MAX_LENGTH)
_optional_text = partial(optional_text, max_length=TEXT_MAX_LENGTH)
_invalid = field_error
# Incident statuses a team may be sent to (and a task accepted on).
DISPATCHABLE_INCIDENT_STATUSES = frozenset({IncidentStatus.ACCEPTED, IncidentStatus.IN_PROGRESS})
UNDISPATCHABLE_TEAM_STATUSES = frozenset({TeamStatus.OFF_DUTY, TeamStatus.OUT_OF_SERVICE})
# Timestamps that keep their first value when the action repeats (returned → on_scene).
FIRST_TIME_FIELDS = frozenset({"accepted_at", "en_route_at", "on_scene_at"})
# Task statuses after which a team is not proposed again for the same incident.
REFUSED_STATUSES = (TaskStatus.DECLINED, TaskStatus.EXPIRED)

# TaskEvent kind → incident timeline kind.
TIMELINE_KIND: dict[str, str] = {
    "dispatched": IncidentEventKind.TASK_DISPATCHED,
    "accepted": IncidentEventKind.TASK_ACCEPTED,
    "declined": IncidentEventKind.TASK_DECLINED,
    "expired": IncidentEventKind.TASK_EXPIRED,
    "en_route": IncidentEventKind.TASK_EN_ROUTE,
    "on_scene": IncidentEventKind.TASK_ON_SCENE,
    "completed": IncidentEventKind.TASK_COMPLETED,
    "verified": IncidentEventKind.TASK_VERIFIED,
    "returned": IncidentEventKind.TASK_RETURNED,
    "cancelled": IncidentEventKind.TASK_CANCELLED,
    "reassigned": IncidentEventKind.TASK_REASSIGNED,
    "instructions": IncidentEventKind.TASK_INSTRUCTIONS,
}


@dataclass(frozen=True)
class TaskOutcome:
    """A declined or expired task and the team proposed next (``None``: nobody left).

    ``proposal`` is a :class:`~apps.dispatch.recommendation.Recommendation` (``.team``,
    ``.score``, ``.reasons`` ...): a suggestion for the operator, nothing is dispatched.
    """

    task: DispatchTask
    proposal: Recommendation | None


# --- Dispatch ------------------------------------------------------------------------------


@transaction.atomic
def task_dispatch(
    *, incident_id: int, team_ids: Sequence[int], by: Any, instructions: str = ""
) -> list[DispatchTask]:
    """派单: send one or several teams to an accepted or in-progress incident.

    Refusals: no team → 400 ``invalid``; unknown team → 404 ``team_not_found``; team
    inactive, off duty or out of service → 409 ``team_not_dispatchable``; a team already
    live on the incident → 409 ``team_already_on_incident``; incident not accepted/in
    progress → 409 ``incident_not_dispatchable``; command post open and ``by`` not on it
    → 403 ``command_post_in_charge``.

    Cross-department (中闭环): when the incident's teams (new and live ones) belong to more
    than one department, or a new team's department does not lead the incident's
    category, the new tasks are marked ``cross_department`` and a small-loop incident is
    raised to the medium loop (``incident_classify``; never lowered).
    """
    wanted = _team_ids_checked(team_ids)
    instructions = _optional_text("instructions", instructions)
    incident = locks.incident_for_update(incident_id)
    _check_incident_dispatchable(incident)
    _check_command_post(incident, by)
    return _dispatch_locked(incident, wanted, by=by, instructions=instructions)


def _dispatch_locked(
    incident: Incident, team_ids: list[int], *, by: Any, instructions: str
) -> list[DispatchTask]:
    teams = {team.pk: team for team in Team.objects.filter(pk__in=team_ids)}
    missing = [pk for pk in team_ids if pk not in teams]
    if missing:
        raise ApplicationError(
            DispatchErrorCode.TEAM_NOT_FOUND,
            _("Team not found."),
            extra={"team_ids": missing},
            status=404,
        )
    for team in teams.values():
        if not team.is_active or team.status in UNDISPATCHABLE_TEAM_STATUSES:
            raise ApplicationError(
                DispatchErrorCode.TEAM_NOT_DISPATCHABLE,
                _("This team cannot take tasks now (inactive, off duty or out of service)."),
                extra={"team_id": team.pk, "status": team.status, "is_active": team.is_active},
                status=409,
            )
    live = DispatchTask.objects.live().filter(incident=incident)
    busy = sorted(live.filter(team_id__in=team_ids).values_list("team_id", flat=True))
    if busy:
        raise ApplicationError(
            DispatchErrorCode.TEAM_ALREADY_ON_INCIDENT,
            _("This team already has a live task on this incident."),
            extra={"team_ids": busy},
            status=409,
        )
    cross = _is_cross_department(
        incident,
        new_departments={teams[pk].department_id for pk in team_ids},
        live_departments=set(live.values_list("team__department_id", flat=True)),
    )
    now = timezone.now()
    actor = _user_or_none(by)
    created = []
    for pk in team_ids:
        task = DispatchTask.objects.create(
            incident=incident,
            team=teams[pk],
            status=TaskStatus.DISPATCHED,
            instructions=instructions,
            cross_department=cross,
            dispatched_by=actor,
            dispatched_at=now,
        )
        sla_task_dispatched(task, incident)
        _record(
            task,
            incident,
            "dispatched",
            by,
            at=now,
            data={"instructions": instructions, "cross_department": cross},
        )
        created.append(task)
    if cross and incident.loop == Loop.SMALL:
        incident_classify(incident_id=incident.pk, by=by, loop=Loop.MEDIUM)
        incident.loop = Loop.MEDIUM
    for task in created:
        _team_follow(task.team_id)
    return created


def _is_cross_department(
    incident: Incident, *, new_departments: set[int | None], live_departments: set[int | None]
) -> bool:
    """More than one department among the incident's teams, or a new team outside the
    departments that lead the category. Teams without a department (volunteers, grid
    workers) count for neither."""
    departments = (new_departments | live_departments) - {None}
    if len(departments) > 1:
        return True
    leads = set(
        Department.objects.filter(categories=incident.category_id).values_list("pk", flat=True)
    )
    return bool(leads) and any(department not in leads for department in new_departments - {None})


# --- Responder transitions -----------------------------------------------------------------


@transaction.atomic
def task_accept(*, task_id: int, by: Any) -> DispatchTask:
    """接单: dispatched → accepted by an active member of the team.

    The first acceptance on an accepted incident starts it (``incident_start``: accepted
    → in_progress, stamping the "responding first-time" KPI).
    """
    incident, task = locks.incident_and_task_for_update(task_id)
    _require_member(task, by)
    target = task_transition_target(status=task.status, action=TaskAction.ACCEPT)
    if incident.status not in DISPATCHABLE_INCIDENT_STATUSES:
        raise _incident_not_dispatchable(incident)
    task.accepted_by = by
    _move(task, incident, target, by, kind="accepted", fields=["accepted_by"])
    if incident.status == IncidentStatus.ACCEPTED:
        started = incident_start(incident_id=incident.pk, by=by)
        incident.status = started.status
    _team_follow(task.team_id)
    return task


@transaction.atomic
def task_decline(*, task_id: int, by: Any, reason: str) -> TaskOutcome:
    """拒单 with a reason: dispatched → declined; proposes the next recommended team."""
    reason = _required_text("reason", reason)
    incident, task = locks.incident_and_task_for_update(task_id)
    _require_member(task, by)
    target = task_transition_target(status=task.status, action=TaskAction.DECLINE)
    task.decline_reason = reason
    _set_status(task, target, fields=["decline_reason"])
    proposal = _next_proposal(incident)
    _record(task, incident, "declined", by, data={"reason": reason, **_proposal_data(proposal)})
    _team_follow(task.team_id)  # after the events: one lock order everywhere (_team_follow)
    return TaskOutcome(task=task, proposal=proposal)


@transaction.atomic
def task_expire(*, task_id: int) -> TaskOutcome:
    """No answer in time (system; the SLA sweeper calls it): dispatched → expired;
    proposes the next recommended team. Only from dispatched, so a sweep that runs twice
    gets ``illegal_task_transition`` the second time and changes nothing."""
    incident, task = locks.incident_and_task_for_update(task_id)
    target = task_transition_target(status=task.status, action=TaskAction.EXPIRE)
    _set_status(task, target)
    proposal = _next_proposal(incident)
    _record(task, incident, "expired", None, data=_proposal_data(proposal))
    _team_follow(task.team_id)  # after the events: one lock order everywhere (_team_follow)
    return TaskOutcome(task=task, proposal=proposal)


@transaction.atomic
def task_en_route(*, task_id: int, by: Any) -> DispatchTask:
    """出发: accepted (or returned) → en_route."""
    incident, task = locks.incident_and_task_for_update(task_id)
    _require_member(task, by)
    target = task_transition_target(status=task.status, action=TaskAction.EN_ROUTE)
    _move(task, incident, target, by, kind="en_route")
    _team_follow(task.team_id)
    return task


@transaction.atomic
def task_on_scene(*, task_id: int, by: Any) -> DispatchTask:
    """到场: accepted, en_route or returned → on_scene."""
    incident, task = locks.incident_and_task_for_update(task_id)
    _require_member(task, by)
    target = task_transition_target(status=task.status, action=TaskAction.ON_SCENE)
    _move(task, incident, target, by, kind="on_scene")
    _team_follow(task.team_id)
    return task


def task_complete(
    *, task_id: int, by: Any, result: str, photos: Sequence[Any] = ()
) -> DispatchTask:
    """处置完成: on_scene (or returned) → completed, with the result and photos.

    Photos are sanitised and written to storage before the transaction (CPU and I/O
    must not hold the incident lock) and attached to the *incident*
    (``Attachment.incident``); if the transaction fails the files are removed again.
    """
    result = _required_text("result", result)
    _require_member(_task_or_404(task_id), by)  # cheap refusal before decoding photos
    processed = photos_process(list(photos))
    stored = photo_files_write(processed)
    try:
        with transaction.atomic():
            incident, task = locks.incident_and_task_for_update(task_id)
            _require_member(task, by)
            target = task_transition_target(status=task.status, action=TaskAction.COMPLETE)
            attachments = attachments_create(stored=stored, incident=incident, uploaded_by=by)
            task.result = result
            _move(
                task,
                incident,
                target,
                by,
                kind="completed",
                fields=["result"],
                data={"result": result, "attachment_ids": [a.pk for a in attachments]},
            )
            _team_follow(task.team_id)
    except BaseException:
        photo_files_delete(stored)
        raise
    return task


def task_ack_delivery(*, task_id: int, by: Any) -> DispatchTask:
    """The app acknowledges the push: ``delivered_at`` is set once (the delivery KPI).

    A conditional ``UPDATE ... WHERE delivered_at IS NULL`` instead of row locks: acks
    arrive for every push and must not queue behind the incident lock; a retried ack
    changes nothing and writes no second event. Never changes the status.
    """
    task = _task_or_404(task_id)
    _require_member(task, by)
    task_transition_target(status=task.status, action=TaskAction.ACK_DELIVERY)
    now = timezone.now()
    with transaction.atomic():
        claimed = DispatchTask.objects.filter(pk=task_id, delivered_at__isnull=True).update(
            delivered_at=now, updated_at=now
        )
        if claimed == 1:
            TaskEvent.objects.create(task=task, kind="delivered", at=now, actor=by)
            task.delivered_at = now
            task_changed(task, task.incident, "delivered", None)
            _after_commit(task_id)
        # Every member's own receipt (not just the first): no SMS fallback for them.
        task_push_acknowledged(task_id=task_id, user_id=by.pk)
    task.refresh_from_db()
    return task


# --- Operator transitions ------------------------------------------------------------------


@transaction.atomic
def task_verify(*, task_id: int, by: Any) -> DispatchTask:
    """核查: completed → verified (operator, or the command post while it is open)."""
    incident, task = locks.incident_and_task_for_update(task_id)
    _check_command_post(incident, by)
    target = task_transition_target(status=task.status, action=TaskAction.VERIFY)
    _move(task, incident, target, by, kind="verified")
    _team_follow(task.team_id)
    return task


@transaction.atomic
def task_return(*, task_id: int, by: Any, reason: str) -> DispatchTask:
    """重办: completed → returned (a live status; the team works on, see the table)."""
    reason = _required_text("reason", reason)
    incident, task = locks.incident_and_task_for_update(task_id)
    _check_command_post(incident, by)
    target = task_transition_target(status=task.status, action=TaskAction.RETURN)
    task.return_reason = reason
    _move(
        task,
        incident,
        target,
        by,
        kind="returned",
        fields=["return_reason"],
        data={"reason": reason},
    )
    _team_follow(task.team_id)
    return task


@transaction.atomic
def task_cancel(*, task_id: int, by: Any, reason: str) -> DispatchTask:
    """撤单: any live status → cancelled."""
    reason = _required_text("reason", reason)
    incident, task = locks.incident_and_task_for_update(task_id)
    _check_command_post(incident, by)
    target = task_transition_target(status=task.status, action=TaskAction.CANCEL)
    task.cancel_reason = reason
    _move(
        task,
        incident,
        target,
        by,
        kind="cancelled",
        fields=["cancel_reason"],
        data={"reason": reason},
    )
    _team_follow(task.team_id)
    return task


@transaction.atomic
def task_reassign(*, task_id: int, to_team_id: int, by: Any, reason: str = "") -> DispatchTask:
    """改派: cancel this task and dispatch ``to_team_id`` in one transaction; returns the
    new task (with the old task's instructions). Same refusals as dispatch and cancel;
    the same team → 400 ``invalid``."""
    reason = _optional_text("reason", reason)
    incident, task = locks.incident_and_task_for_update(task_id)
    _check_command_post(incident, by)
    target = task_transition_target(status=task.status, action=TaskAction.REASSIGN)
    if int(to_team_id) == task.team_id:
        raise _invalid("to_team_id", _("The task is already with this team."))
    _check_incident_dispatchable(incident)
    task.cancel_reason = reason or str(_("Reassigned to another team."))
    _set_status(task, target, fields=["cancel_reason"])
    (new_task,) = _dispatch_locked(
        incident, [int(to_team_id)], by=by, instructions=task.instructions
    )
    _record(
        task,
        incident,
        "reassigned",
        by,
        data={"reason": reason, "to_team_id": new_task.team_id, "new_task_id": new_task.pk},
    )
    _team_follow(task.team_id)
    return new_task


@transaction.atomic
def task_add_instructions(*, task_id: int, by: Any, text: str) -> DispatchTask:
    """Add to a live task's instructions (appended on a new line; the event keeps each)."""
    text = _required_text("text", text)
    incident, task = locks.incident_and_task_for_update(task_id)
    _check_command_post(incident, by)
    task_transition_target(status=task.status, action=TaskAction.INSTRUCTIONS)
    task.instructions = f"{task.instructions}\n{text}" if task.instructions else text
    task.save(update_fields=["instructions", "updated_at"])
    _record(task, incident, "instructions", by, data={"text": text})
    return task


# --- Resolve guard -------------------------------------------------------------------------


@register_resolve_guard
def tasks_done_before_resolve(incident: Incident) -> None:
    """``incident_resolve`` refuses (409 ``incident_has_open_tasks``) while a task is
    still under way: dispatched, accepted, en route, on scene or returned. Completed and
    verified tasks do not hold it up; cancel the others first."""
    open_ids = list(
        DispatchTask.objects.filter(incident_id=incident.pk, status__in=WORKING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if open_ids:
        raise ApplicationError(
            DispatchErrorCode.INCIDENT_HAS_OPEN_TASKS,
            _("Tasks of this incident are still under way; complete or cancel them first."),
            extra={"task_ids": open_ids},
            status=409,
        )


# --- Helpers -------------------------------------------------------------------------------


def _move(
    task: DispatchTask,
    incident: Incident,
    target: str,
    by: Any,
    *,
    kind: str,
    fields: Iterable[str] = (),
    data: dict[str, Any] | None = None,
) -> None:
    at = _set_status(task, target, fields=fields)
    _record(task, incident, kind, by, at=at, data=data)


def _set_status(task: DispatchTask, target: str, *, fields: Iterable[str] = ()) -> Any:
    """Set status and its timestamp (first-time fields keep their first value) and save
    exactly those columns; returns the time written."""
    now = timezone.now()
    update = ["status", *fields]
    stamp = TIMESTAMP_FIELD[target]
    if stamp not in FIRST_TIME_FIELDS or getattr(task, stamp) is None:
        setattr(task, stamp, now)
        update.append(stamp)
    task.status = target
    task.save(update_fields=[*dict.fromkeys(update), "updated_at"])
    sla_task_moved(task, target)
    return now


def _record(
    task: DispatchTask,
    incident: Incident,
    kind: str,
    by: Any,
    *,
    at: Any = None,
    data: dict[str, Any] | None = None,
) -> None:
    """The TaskEvent and the incident timeline row of one change, then the hook."""
    actor = _user_or_none(by)
    payload = dict(data or {})
    TaskEvent.objects.create(
        task=task, kind=kind, at=at or timezone.now(), actor=actor, data=payload
    )
    entry = timeline_append(
        incident=incident,
        kind=TIMELINE_KIND[kind],
        actor=actor,
        data={"task_id": task.pk, "team_id": task.team_id, "status": task.status, **payload},
    )
    # Push outbox rows in this transaction; delivered after commit (apps.dispatch.push).
    task_push_on_event(task=task, incident=incident, kind=kind, data=payload)
    # The realtime event (incident, region and members' streams), published after commit.
    task_changed(task, incident, kind, entry)
    _after_commit(task.pk)


def _after_commit(task_id: int) -> None:
    on_commit(lambda: _after_commit_task_changed(task_id))


def _after_commit_task_changed(task_id: int) -> None:
    """Runs once a task change is committed. The push outbox rows and the realtime
    events were written in the transaction (``_record``) and are delivered/published
    after commit by their own apps; this hook only logs the change."""
    logger.info("task changed: id=%s", task_id)


def _team_follow(team_id: int) -> None:
    """The team's status follows its tasks (teams work owns the rule).

    Lock order: every task service calls this *after* ``_record``, i.e. after the
    realtime counters of its streams are locked (``apps.realtime.events``). A service
    that locked the team row first and a stream counter second could deadlock with one
    doing it the other way round (two incidents of one new area share its counter)."""
    team_status_refresh(team_id=team_id)


def _next_proposal(incident: Incident) -> Recommendation | None:
    """The best recommended team not live on the incident and not having declined or
    let a task on it expire (asking them again would only lose time)."""
    excluded = set(
        DispatchTask.objects.filter(incident_id=incident.pk)
        .filter(status__in=[*REFUSED_STATUSES, *WORKING, TaskStatus.COMPLETED])
        .values_list("team_id", flat=True)
    )
    for candidate in recommend_teams(incident=incident, limit=5 + len(excluded)):
        if candidate.team.pk not in excluded:
            return candidate
    return None


def _proposal_data(proposal: Recommendation | None) -> dict[str, Any]:
    if proposal is None:
        return {"proposed_team_id": None}
    return {"proposed_team_id": proposal.team.pk, "proposed_score": _number(proposal.score)}


def _number(value: Any) -> Any:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return None


def _require_member(task: DispatchTask, by: Any) -> None:
    if (
        not getattr(by, "is_authenticated", False)
        or not TeamMember.objects.filter(
            team_id=task.team_id, user_id=by.pk, is_active=True
        ).exists()
    ):
        raise ApplicationError(
            DispatchErrorCode.NOT_TEAM_MEMBER,
            _("Only members of the assigned team may do this."),
            status=403,
        )


def _check_command_post(incident: Incident, by: Any) -> None:
    """While an on-site command post is open it directs dispatch of the incident: only
    its commander and members — still eligible for it (``apps.dispatch.policies``) — may
    dispatch, reassign, cancel, verify or return."""
    post = policies.open_post(incident.pk)
    if post is None or by is None:
        return  # no post, or the system (SLA) acting
    if policies.on_command_post(by, incident, post=post):
        return
    raise ApplicationError(
        DispatchErrorCode.COMMAND_POST_IN_CHARGE,
        _("The on-site command post directs this incident; ask its commander."),
        extra={"command_post_id": post.pk, "commander_id": post.commander_id},
        status=403,
    )


def _check_incident_dispatchable(incident: Incident) -> None:
    if incident.status not in DISPATCHABLE_INCIDENT_STATUSES:
        raise _incident_not_dispatchable(incident)


def _incident_not_dispatchable(incident: Incident) -> ApplicationError:
    return ApplicationError(
        DispatchErrorCode.INCIDENT_NOT_DISPATCHABLE,
        _("Teams can be sent only to accepted or in-progress incidents."),
        extra={"status": incident.status},
        status=409,
    )


def _task_or_404(task_id: int) -> DispatchTask:
    task = DispatchTask.objects.filter(pk=task_id).first()
    if task is None:
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    return task


def _team_ids_checked(team_ids: Sequence[int]) -> list[int]:
    try:
        wanted = list(dict.fromkeys(int(pk) for pk in team_ids))
    except (TypeError, ValueError):
        raise _invalid("team_ids", _("A list of team ids.")) from None
    if not wanted:
        raise _invalid("team_ids", _("Choose at least one team."), code="empty")
    return wanted


def _user_or_none(by: Any) -> Any:
    return by if getattr(by, "is_authenticated", False) else None

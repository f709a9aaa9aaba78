"""Task, room and command-post reads, and who may do what with them.

Who is who is ``apps.dispatch.policies`` (over the role table of
``apps.accounts.permissions``; ``docs/roles.md``); the API asks these selectors, the
services ask the policies for what they check themselves (the command post, team
membership):

- *operators* of an incident: ``dispatch`` over its region (operator, commander,
  admin), and — while a command post is open — its commander and members, wherever
  their own regions are, as long as they are still eligible for the post;
- *responders* of a task: active members of its team;
- *readers* of a task: its responders, ``incident.read`` roles whose scope covers the
  incident, and the open post's people;
- the reporter's contact: ``apps.incidents.policies`` (staff with ``reporter.contact``
  in scope, the assigned team, the post) — an in-scope responder of another team sees
  the scene, not the citizen's phone;
- *hazards* near a task: only incidents the viewer may see (``visible_to``);
- *room participants*: ``room`` in scope (operators, commanders, admins, liaisons),
  members of teams with a live task on the incident, the open post's people.

Out of scope, or unknown, is 404; visible but not allowed is 403.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import (
    LIVE_TASK_STATUSES,
    CommandPost,
    DispatchTask,
    RoomMessage,
    TaskEvent,
)
from apps.dispatch.policies import (
    can_read_incident,
    is_team_member,
    member_teams_q,
    on_command_post,
    room_can_access,
    task_can_command,
    task_can_read,
)
from apps.incidents.models import Incident
from apps.incidents.policies import incident_contact_visible
from apps.regions.geo import haversine_km

HAZARD_RADIUS_M = 1000
HAZARD_LIMIT = 10

__all__ = [
    "incident_for_dispatch",
    "incident_for_room",
    "is_team_member",
    "on_command_post",
    "room_can_access",
    "task_can_command",
    "task_can_read",
]


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


# --- Incidents for operators -------------------------------------------------------------


def _incident_or_404(incident_id: int) -> Incident:
    incident = Incident.objects.select_related("category", "region").filter(pk=incident_id).first()
    if incident is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    return incident


def incident_for_dispatch(*, user: Any, incident_id: int) -> Incident:
    """The incident if ``user`` may dispatch on it: 404 if unknown or out of scope,
    403 if visible but read-only."""
    incident = _incident_or_404(incident_id)
    if task_can_command(user, incident):
        return incident
    if can_read_incident(user, incident):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    raise ApplicationError(ErrorCode.NOT_FOUND, status=404)


def incident_for_room(*, user: Any, incident_id: int) -> Incident:
    """The incident if ``user`` is in its room; 404 otherwise (outsiders learn nothing)."""
    incident = _incident_or_404(incident_id)
    if not room_can_access(user, incident):
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    return incident


def incident_tasks(*, incident: Incident) -> list[DispatchTask]:
    """All tasks of an incident, oldest first, with team (one query)."""
    return list(
        DispatchTask.objects.filter(incident=incident)
        .select_related("team", "team__department")
        .order_by("dispatched_at", "id")
    )


# --- Tasks -------------------------------------------------------------------------------


def _task_queryset() -> QuerySet[DispatchTask]:
    return DispatchTask.objects.select_related(
        "team", "team__department", "incident", "incident__category", "incident__region"
    )


def task_for_operator(*, user: Any, task_id: int) -> DispatchTask:
    """A task whose incident ``user`` may command: 404 / 403 as for incidents."""
    task = _task_queryset().filter(pk=task_id).first()
    if task is None:
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    if task_can_command(user, task.incident):
        return task
    if can_read_incident(user, task.incident):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)


def task_for_output(*, task_id: int) -> DispatchTask:
    """A task with everything ``TaskOutput`` shows (one query); no access check."""
    return _task_queryset().get(pk=task_id)


def task_for_reader(*, user: Any, task_id: int) -> DispatchTask:
    """A task ``user`` may see (its team, in-scope staff and field roles, the post)."""
    task = _task_queryset().filter(pk=task_id).first()
    if task is None or not task_can_read(user, task):
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    return task


@dataclass(frozen=True)
class Hazard:
    """Another open incident near the scene (until the risks app adds hazard points)."""

    incident: Incident
    distance_m: int


def hazards_nearby(
    *,
    incident: Incident,
    user: Any,
    radius_m: int = HAZARD_RADIUS_M,
    limit: int = HAZARD_LIMIT,
) -> list[Hazard]:
    """Other open incidents within ``radius_m`` of the incident that ``user`` may see
    (``Incident.objects.visible_to``), nearest first.

    Only what the viewer may see: the list shows numbers, titles and exact positions,
    which are another town's (or street's) to share. A team sent across a new-town
    border therefore does not see the other town's incidents near its scene here; the
    dispatching operator, who sees both, passes a danger on in the task's instructions
    or the room (``docs/roles.md``, "Cross-border work").

    A bounding box in SQL, the exact great-circle distance in Python. Drills and real
    incidents are not mixed. When ``apps.risks`` lands, its hazard points and sources
    (危险源) join this list.
    """
    dlat = radius_m / 111_320
    dlng = radius_m / (111_320 * max(math.cos(math.radians(incident.lat)), 0.01))
    candidates = (
        Incident.objects.visible_to(user)
        .open()
        .filter(
            lat__range=(incident.lat - dlat, incident.lat + dlat),
            lng__range=(incident.lng - dlng, incident.lng + dlng),
            is_drill=incident.is_drill,
        )
        .exclude(pk=incident.pk)
        .select_related("category")
    )
    found = []
    for other in candidates[:200]:
        distance = haversine_km(incident.lat, incident.lng, other.lat, other.lng) * 1000
        if distance <= radius_m:
            found.append(Hazard(incident=other, distance_m=round(distance)))
    found.sort(key=lambda hazard: (hazard.distance_m, hazard.incident.pk))
    return found[:limit]


@dataclass(frozen=True)
class TaskDetail:
    """What a responder needs on scene, besides the task's own columns."""

    task: DispatchTask
    show_contact: bool
    hazards: list[Hazard]
    events: list[TaskEvent]


def task_detail(*, user: Any, task_id: int) -> TaskDetail:
    task = task_for_reader(user=user, task_id=task_id)
    return TaskDetail(
        task=task,
        show_contact=incident_contact_visible(user, task.incident),
        hazards=hazards_nearby(incident=task.incident, user=user),
        events=list(task.events.select_related("actor").order_by("at", "id")),
    )


def my_tasks(*, user: Any) -> QuerySet[DispatchTask]:
    """Tasks of the teams ``user`` is an active member of (history), newest first."""
    if not _authenticated(user):
        return DispatchTask.objects.none()
    return _task_queryset().filter(member_teams_q(user)).order_by("-dispatched_at", "-id")


def my_current_tasks(*, user: Any) -> list[DispatchTask]:
    """My live tasks, newest first (a responder in two teams may have two)."""
    return list(my_tasks(user=user).filter(status__in=LIVE_TASK_STATUSES))


# --- Room --------------------------------------------------------------------------------


def room_messages(*, incident: Incident) -> QuerySet[RoomMessage]:
    return RoomMessage.objects.filter(incident=incident).select_related("author", "attachment")


def command_post_get(*, incident_id: int) -> CommandPost | None:
    return (
        CommandPost.objects.filter(incident_id=incident_id)
        .select_related("commander")
        .prefetch_related("members")
        .first()
    )

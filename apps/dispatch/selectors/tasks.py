"""Task, room and command-post reads, and who may do what with them.

Who is who (the API asks these; services check only team membership and the command
post, because they also run for the system):

- *operators* of an incident: operator/commander/admin whose region covers it
  (``incident_can_command``), and — while a command post is open — its commander and
  members, wherever their own regions are (the post directs the incident);
- *responders* of a task: active members of its team;
- *readers* of a task: its responders and staff/field roles whose scope covers the
  incident; the reporter's contact only to the responders and to staff roles (an
  in-scope responder of another team sees the scene, not the citizen's phone);
- *room participants*: members of teams with a live task on the incident, the open
  post's commander and members, and the incident's operators.

Out of scope, or unknown, is 404; visible but not allowed is 403.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.accounts.models import STAFF_ROLES
from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import (
    LIVE_TASK_STATUSES,
    CommandPost,
    DispatchTask,
    RoomMessage,
    TaskEvent,
    TeamMember,
)
from apps.incidents.models import Incident
from apps.incidents.selectors.incidents import READ_ROLES, incident_can_command, role_scope
from apps.regions.geo import haversine_km

HAZARD_RADIUS_M = 1000
HAZARD_LIMIT = 10
STAFF_READ_ROLES = frozenset(STAFF_ROLES)


# --- Who ---------------------------------------------------------------------------------


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def on_command_post(user: Any, incident_id: int) -> bool:
    """Is ``user`` the commander or a member of the incident's *open* post?"""
    if not _authenticated(user):
        return False
    return (
        CommandPost.objects.filter(incident_id=incident_id, closed_at__isnull=True)
        .filter(Q(commander=user) | Q(members=user))
        .exists()
    )


def task_can_command(user: Any, incident: Incident) -> bool:
    """May ``user`` dispatch on / act as operator for ``incident``?"""
    return incident_can_command(user, incident) or on_command_post(user, incident.pk)


def is_team_member(user: Any, team_id: int) -> bool:
    if not _authenticated(user):
        return False
    return TeamMember.objects.filter(team_id=team_id, user_id=user.pk, is_active=True).exists()


def _member_teams_q(user: Any) -> Exists:
    return Exists(
        TeamMember.objects.filter(team_id=OuterRef("team_id"), user_id=user.pk, is_active=True)
    )


def room_can_access(user: Any, incident: Incident) -> bool:
    """Members of teams live on the incident, the open post, and its operators."""
    if not _authenticated(user):
        return False
    if task_can_command(user, incident):
        return True
    return (
        DispatchTask.objects.live()
        .filter(incident_id=incident.pk)
        .filter(_member_teams_q(user))
        .exists()
    )


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
    if role_scope(user, READ_ROLES).covers(incident.region.path):
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
    if role_scope(user, READ_ROLES).covers(task.incident.region.path):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)
    raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)


def task_for_output(*, task_id: int) -> DispatchTask:
    """A task with everything ``TaskOutput`` shows (one query); no access check."""
    return _task_queryset().get(pk=task_id)


def task_can_read(user: Any, task: DispatchTask) -> bool:
    return (
        is_team_member(user, task.team_id)
        or role_scope(user, READ_ROLES).covers(task.incident.region.path)
        or on_command_post(user, task.incident_id)
    )


def task_for_reader(*, user: Any, task_id: int) -> DispatchTask:
    """A task ``user`` may see (its team, in-scope staff and field roles, the post)."""
    task = _task_queryset().filter(pk=task_id).first()
    if task is None or not task_can_read(user, task):
        raise ApplicationError(DispatchErrorCode.TASK_NOT_FOUND, status=404)
    return task


def task_shows_contact(user: Any, task: DispatchTask) -> bool:
    """The reporter's name and phone: the assigned team, staff roles in scope, the post."""
    return (
        is_team_member(user, task.team_id)
        or role_scope(user, STAFF_READ_ROLES).covers(task.incident.region.path)
        or on_command_post(user, task.incident_id)
    )


@dataclass(frozen=True)
class Hazard:
    """Another open incident near the scene (until the risks app adds hazard points)."""

    incident: Incident
    distance_m: int


def hazards_nearby(
    *, incident: Incident, radius_m: int = HAZARD_RADIUS_M, limit: int = HAZARD_LIMIT
) -> list[Hazard]:
    """Other open incidents within ``radius_m`` of the incident, nearest first.

    A bounding box in SQL, the exact great-circle distance in Python. Drills and real
    incidents are not mixed. When ``apps.risks`` lands, its hazard points and sources
    (危险源) join this list.
    """
    dlat = radius_m / 111_320
    dlng = radius_m / (111_320 * max(math.cos(math.radians(incident.lat)), 0.01))
    candidates = (
        Incident.objects.open()
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
        show_contact=task_shows_contact(user, task),
        hazards=hazards_nearby(incident=task.incident),
        events=list(task.events.select_related("actor").order_by("at", "id")),
    )


def my_tasks(*, user: Any) -> QuerySet[DispatchTask]:
    """Tasks of the teams ``user`` is an active member of (history), newest first."""
    if not _authenticated(user):
        return DispatchTask.objects.none()
    return _task_queryset().filter(_member_teams_q(user)).order_by("-dispatched_at", "-id")


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

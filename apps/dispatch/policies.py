"""Who may do what with tasks, the incident room and the command post (docs/roles.md).

The role part of every rule is :mod:`apps.accounts.permissions` (capability × region
scope); this module adds what dispatch alone knows — teams, tasks and command posts —
and is the one place the selectors, API views and services of dispatch ask:

- **assigned team** of an incident: the active members of a team whose task on it is
  live or completed (dispatched … completed, returned, verified; not declined, expired
  or cancelled). They see the reporter's contact and photos (registered with
  ``apps.incidents.policies``) whatever their own regions are — a team sent across a
  new-town border needs the caller's number as much as a local one;
- **room** (会商): roles with ``room`` in scope, members of a team with a *live* task on
  the incident, and the open post's people;
- **command post**: its commander must hold ``command_post.commander`` over the
  incident (operator, commander, admin); a member ``command_post.member`` (those, and
  liaisons, responders and team leaders) or belong to a team live on the incident.
  The services refuse anyone else (400 ``invalid``, ``post_*_not_eligible``), and the
  post's powers (dispatch, contact, room) hold only while its people are still eligible:
  a membership revoked after the appointment ends them at once;
- **operators** of an incident (dispatch, cancel, reassign, instruct, verify, return,
  set up or change the post): ``dispatch`` in scope, or a person of its open post.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from apps.accounts.permissions import Capability, can
from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch.models import LIVE_TASK_STATUSES, CommandPost, DispatchTask, TaskStatus
from apps.dispatch.models import TeamMember as _TeamMember
from apps.incidents.models import Incident

# A team is "on" an incident for the reporter's contact while its task is live or done.
ASSIGNED_TASK_STATUSES = (*LIVE_TASK_STATUSES, TaskStatus.VERIFIED)

POST_COMMANDER_NOT_ELIGIBLE = "post_commander_not_eligible"
POST_MEMBER_NOT_ELIGIBLE = "post_member_not_eligible"


def _authenticated(user: Any) -> bool:
    return user is not None and getattr(user, "is_authenticated", False)


def _path(incident: Incident) -> str:
    return incident.region.path


# --- Teams -------------------------------------------------------------------------------


def is_team_member(user: Any, team_id: int) -> bool:
    if not _authenticated(user):
        return False
    return _TeamMember.objects.filter(team_id=team_id, user_id=user.pk, is_active=True).exists()


def member_teams_q(user: Any) -> Exists:
    """Tasks (``OuterRef("team_id")``) of a team ``user`` is an active member of."""
    return Exists(
        _TeamMember.objects.filter(team_id=OuterRef("team_id"), user_id=user.pk, is_active=True)
    )


def _team_on_incident(user: Any, incident_id: int, statuses: Iterable[str]) -> bool:
    if not _authenticated(user):
        return False
    return (
        DispatchTask.objects.filter(incident_id=incident_id, status__in=list(statuses))
        .filter(member_teams_q(user))
        .exists()
    )


def on_assigned_team(user: Any, incident_id: int) -> bool:
    """Is ``user`` an active member of a team with a live or completed task on it?"""
    return _team_on_incident(user, incident_id, ASSIGNED_TASK_STATUSES)


def on_live_team(user: Any, incident_id: int) -> bool:
    """Is ``user`` an active member of a team with a live task on the incident?"""
    return _team_on_incident(user, incident_id, LIVE_TASK_STATUSES)


# --- Command post ------------------------------------------------------------------------


def post_commander_eligible(user: Any, incident: Incident) -> bool:
    """Operator, commander or admin whose scope covers the incident."""
    return _authenticated(user) and can(user, Capability.POST_COMMANDER, _path(incident))


def post_member_eligible(user: Any, incident: Incident) -> bool:
    """A role with ``command_post.member`` over the incident, or a member of a team
    live on it (the team sent across a border joins the post of the incident)."""
    if not _authenticated(user):
        return False
    return can(user, Capability.POST_MEMBER, _path(incident)) or on_live_team(user, incident.pk)


def open_post(incident_id: int) -> CommandPost | None:
    return CommandPost.objects.filter(incident_id=incident_id, closed_at__isnull=True).first()


def on_command_post(user: Any, incident: Incident, *, post: CommandPost | None = None) -> bool:
    """Is ``user`` the commander or a member of the incident's *open* post, and still
    eligible for it?"""
    if not _authenticated(user):
        return False
    if post is None:
        post = (
            CommandPost.objects.filter(incident_id=incident.pk, closed_at__isnull=True)
            .filter(Q(commander=user) | Q(members=user))
            .first()
        )
        if post is None:
            return False
    elif post.closed_at is not None:
        return False
    if post.commander_id == user.pk:
        return post_commander_eligible(user, incident)
    if not post.members.filter(pk=user.pk).exists():
        return False
    return post_member_eligible(user, incident)


def post_check_appointments(
    incident: Incident, *, commander: Any = None, members: Iterable[Any] = ()
) -> None:
    """Refuse (400 ``invalid``) a commander or members the role table does not allow."""
    if commander is not None and not post_commander_eligible(commander, incident):
        raise _not_eligible(
            "commander_id",
            POST_COMMANDER_NOT_ELIGIBLE,
            _(
                "The commander must be an operator or commander whose regions cover the "
                "incident: user %(id)s is not."
            )
            % {"id": commander.pk},
            [commander.pk],
        )
    refused = sorted(m.pk for m in members if not post_member_eligible(m, incident))
    if refused:
        raise _not_eligible(
            "member_ids",
            POST_MEMBER_NOT_ELIGIBLE,
            _(
                "Members must be staff, responders or team leaders whose regions cover the "
                "incident, or members of a team working on it: %(ids)s are not."
            )
            % {"ids": refused},
            refused,
        )


def _not_eligible(field: str, code: str, message: Any, ids: list[int]) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        message,
        extra={
            "fields": {field: [{"code": code, "message": str(message)}]},
            "user_ids": ids,
        },
        status=400,
    )


# --- Operators, readers, room ------------------------------------------------------------


def task_can_command(user: Any, incident: Incident) -> bool:
    """May ``user`` dispatch on / act as operator for ``incident``?"""
    return can(user, Capability.DISPATCH, _path(incident)) or on_command_post(user, incident)


def can_read_incident(user: Any, incident: Incident) -> bool:
    return can(user, Capability.INCIDENT_READ, _path(incident))


def task_can_read(user: Any, task: DispatchTask) -> bool:
    """Its team, readers of the incident's region, the open post's people."""
    return (
        is_team_member(user, task.team_id)
        or can_read_incident(user, task.incident)
        or on_command_post(user, task.incident)
    )


def room_can_access(user: Any, incident: Incident) -> bool:
    """``room`` in scope, a team live on the incident, the open post's people."""
    if not _authenticated(user):
        return False
    return (
        can(user, Capability.ROOM, _path(incident))
        or on_live_team(user, incident.pk)
        or on_command_post(user, incident)
    )


def on_incident_assignment(user: Any, incident_id: int) -> bool:
    """The assignment half of the reporter-contact rule (``apps.incidents.policies``):
    the assigned team and the open post's people."""
    if not _authenticated(user):
        return False
    if on_assigned_team(user, incident_id):
        return True
    incident = Incident.objects.select_related("region").filter(pk=incident_id).first()
    return incident is not None and on_command_post(user, incident)

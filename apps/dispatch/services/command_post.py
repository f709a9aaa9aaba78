"""On-site command post (现场指挥部): set up, members, close (conventions R1-R3, R11).

While a post is open it takes over dispatch of its incident: the task services refuse
operator actions by anyone but its commander and members (``command_post_in_charge``).

Who may be appointed is the role table (``apps.dispatch.policies``, ``docs/roles.md``):
the commander an operator, commander or admin whose regions cover the incident; members
those, liaisons, responders and team leaders in scope, or members of a team live on the
incident. Anyone else — a citizen, a grid worker, a responder of another town — is
refused (400 ``invalid``, field code ``post_commander_not_eligible`` /
``post_member_not_eligible``), and who acts must be an operator of the incident
(``dispatch`` in scope) or a person of its open post (403 ``permission_denied``).

``CommandPost.incident`` is one-to-one, so an incident has one post row: closing stamps
``closed_at``; setting a post up again on the same incident reopens that row with the
new commander, place and members (the timeline keeps every set-up and closure).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.dispatch import locks, policies
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.models import CommandPost
from apps.incidents.models import Incident, IncidentEventKind, IncidentStatus
from apps.incidents.realtime import incident_changed
from apps.incidents.timeline import timeline_append

# A post is set up on an incident being handled (not on a report still in triage).
POST_INCIDENT_STATUSES = frozenset({IncidentStatus.ACCEPTED, IncidentStatus.IN_PROGRESS})


@transaction.atomic
def command_post_establish(
    *,
    incident_id: int,
    by: Any,
    commander_id: int,
    lat: float,
    lng: float,
    address: str = "",
    member_ids: Iterable[int] = (),
) -> CommandPost:
    """Set up the post: 409 ``command_post_exists`` if one is open, 409
    ``incident_not_dispatchable`` unless the incident is accepted/in progress, 400
    ``invalid`` for an unknown, inactive or ineligible commander or member or a bad
    position, 403 if ``by`` is not an operator of the incident."""
    _check_position(lat, lng)
    incident = locks.incident_for_update(incident_id)
    _check_actor(incident, by)
    if incident.status not in POST_INCIDENT_STATUSES:
        raise ApplicationError(
            DispatchErrorCode.INCIDENT_NOT_DISPATCHABLE,
            _("A command post is set up only on an accepted or in-progress incident."),
            extra={"status": incident.status},
            status=409,
        )
    post = locks.command_post_for_update(incident.pk)
    if post is not None and post.closed_at is None:
        raise ApplicationError(
            DispatchErrorCode.COMMAND_POST_EXISTS,
            _("This incident already has an open command post."),
            extra={"command_post_id": post.pk},
            status=409,
        )
    commander = _users([commander_id], field="commander_id")[0]
    members = _users([pk for pk in member_ids if int(pk) != commander.pk], field="member_ids")
    policies.post_check_appointments(incident, commander=commander, members=members)
    now = timezone.now()
    if post is None:
        post = CommandPost(incident=incident)
    post.commander = commander
    post.lat, post.lng = float(lat), float(lng)
    post.address = (address or "").strip()[:300]
    post.established_at = now
    post.closed_at = None
    post.save()
    post.members.set(members)
    entry = timeline_append(
        incident=incident,
        kind=IncidentEventKind.COMMAND_POST_ESTABLISHED,
        actor=by,
        data={
            "command_post_id": post.pk,
            "commander_id": commander.pk,
            "member_ids": sorted(m.pk for m in members),
            "lat": post.lat,
            "lng": post.lng,
            "address": post.address,
        },
        public=False,
    )
    incident_changed(incident, entry)
    return post


@transaction.atomic
def command_post_close(*, incident_id: int, by: Any) -> CommandPost:
    """Close the open post; dispatch returns to the region's operators."""
    incident, post = _open_post_locked(incident_id)
    _check_actor(incident, by)
    post.closed_at = timezone.now()
    post.save(update_fields=["closed_at", "updated_at"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEventKind.COMMAND_POST_CLOSED,
        actor=by,
        data={"command_post_id": post.pk},
    )
    incident_changed(incident, entry)
    return post


@transaction.atomic
def command_post_members_change(
    *, incident_id: int, by: Any, add: Iterable[int] = (), remove: Iterable[int] = ()
) -> CommandPost:
    """Add and/or remove members of the open post (the commander is not a member row);
    new members must be eligible (400 ``invalid``)."""
    incident, post = _open_post_locked(incident_id)
    _check_actor(incident, by)
    to_add = [u for u in _users(list(add), field="add") if u.pk != post.commander_id]
    policies.post_check_appointments(incident, members=to_add)
    remove_ids = sorted({int(pk) for pk in remove})
    current = set(post.members.values_list("pk", flat=True))
    added = sorted(u.pk for u in to_add if u.pk not in current)
    removed = [pk for pk in remove_ids if pk in current]
    if added:
        post.members.add(*added)
    if removed:
        post.members.remove(*removed)
    if added or removed:
        post.save(update_fields=["updated_at"])
        entry = timeline_append(
            incident=incident,
            kind=IncidentEventKind.COMMAND_POST_MEMBERS,
            actor=by,
            data={"command_post_id": post.pk, "added": added, "removed": removed},
        )
        incident_changed(incident, entry)
    return post


@transaction.atomic
def command_post_hand_over(
    *, incident_id: int, by: Any, commander_id: int, note: str = ""
) -> CommandPost:
    """交接指挥: the open post gets a new commander; the one handing over stays on it as
    a member (they know the scene). 400 ``invalid`` for an unknown user or the same
    commander; 404 ``command_post_not_found`` without an open post."""
    incident, post = _open_post_locked(incident_id)
    commander = _users([commander_id], field="commander_id")[0]
    if commander.pk == post.commander_id:
        raise _invalid("commander_id", _("This person already commands the post."))
    previous = post.commander_id
    post.commander = commander
    post.save(update_fields=["commander", "updated_at"])
    post.members.remove(commander.pk)
    post.members.add(previous)
    data: dict[str, Any] = {
        "command_post_id": post.pk,
        "from_commander_id": previous,
        "commander_id": commander.pk,
    }
    note = (note or "").strip()[:2000]
    if note:
        data["note"] = note
    entry = timeline_append(
        incident=incident,
        kind=IncidentEventKind.COMMAND_POST_HANDED_OVER,
        actor=by,
        data=data,
    )
    incident_changed(incident, entry)
    return post


def command_post_member_add(*, incident_id: int, by: Any, user_id: int) -> CommandPost:
    return command_post_members_change(incident_id=incident_id, by=by, add=[user_id])


def command_post_member_remove(*, incident_id: int, by: Any, user_id: int) -> CommandPost:
    return command_post_members_change(incident_id=incident_id, by=by, remove=[user_id])


# --- Helpers -------------------------------------------------------------------------------


def _open_post_locked(incident_id: int) -> tuple[Incident, CommandPost]:
    incident = locks.incident_for_update(incident_id)
    post = locks.command_post_for_update(incident.pk)
    if post is None or post.closed_at is not None:
        raise ApplicationError(
            DispatchErrorCode.COMMAND_POST_NOT_FOUND,
            _("This incident has no open command post."),
            status=404,
        )
    return incident, post


def _check_actor(incident: Incident, by: Any) -> None:
    """``by`` directs the incident (``dispatch`` in scope, or the open post's people);
    ``None`` is the system."""
    if by is not None and not policies.task_can_command(by, incident):
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, status=403)


def _users(ids: list[int], *, field: str) -> list[Any]:
    user_model = get_user_model()
    try:
        wanted = list(dict.fromkeys(int(pk) for pk in ids))
    except (TypeError, ValueError):
        raise _invalid(field, _("User ids are whole numbers.")) from None
    users = {u.pk: u for u in user_model.objects.filter(pk__in=wanted, is_active=True)}
    missing = [pk for pk in wanted if pk not in users]
    if missing:
        raise _invalid(field, _("Unknown or inactive user: %(ids)s") % {"ids": missing})
    return [users[pk] for pk in wanted]


def _check_position(lat: float, lng: float) -> None:
    try:
        ok = -90 <= float(lat) <= 90 and -180 <= float(lng) <= 180
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise _invalid("lat", _("A WGS84 position is required."))


def _invalid(field: str, message: Any) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        extra={"fields": {field: [{"code": "invalid", "message": str(message)}]}},
    )

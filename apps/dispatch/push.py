"""Task pushes: what dispatch tells responders' phones, through ``apps.notifications``.

Called by ``services.tasks._record`` inside the transaction of every task change, so the
outbox rows commit (or roll back) with the change and are delivered after commit:

* ``dispatched`` → a high-priority DATA push to every on-duty member of the team (all
  active members if nobody is on duty: a task is never sent to no one), which the app
  must acknowledge within ``NOTIFICATIONS_TASK_ACK_SECONDS`` or an SMS follows;
* ``cancelled`` / ``reassigned`` (away from this team) → the pending dispatch pushes
  are cancelled and a normal-priority push tells the members who got the task;
* ``accepted`` / ``declined`` / ``expired`` → the task is answered: nobody needs the SMS
  fallback any more.

The app acknowledges receipt with ``POST /responder/tasks/{id}/delivered/``
(``services.tasks.task_ack_delivery`` → :func:`task_push_acknowledged`).

Also the on-duty provider notifications asks before muting a push (it cannot import
dispatch): :func:`members_on_duty`, registered in ``DispatchConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.dispatch.models import DispatchTask, TeamMember
from apps.incidents.models import Category, Incident, Severity
from apps.notifications import selectors as notification_selectors
from apps.notifications import services as notifications
from apps.notifications.models import Kind, Priority

WITHDRAWN_TITLES = {
    "cancelled": _("Task cancelled: %(incident)s"),
    "reassigned": _("Task reassigned to another team: %(incident)s"),
}
ANSWERED = frozenset({"accepted", "declined", "expired"})


def task_push_prefix(task_id: int) -> str:
    """Dedupe-key prefix of a task's dispatch pushes (one row per member under it)."""
    return f"task:{task_id}:dispatched"


def task_push_on_event(
    *, task: DispatchTask, incident: Incident, kind: str, data: dict[str, Any]
) -> None:
    """The pushes of one task change (see the module docstring)."""
    if kind == "dispatched":
        _push_dispatched(task, incident)
    elif kind in WITHDRAWN_TITLES:
        _push_withdrawn(task, incident, kind, reason=str(data.get("reason") or ""))
    elif kind in ANSWERED:
        notifications.notifications_release_receipts(dedupe_key_prefix=task_push_prefix(task.pk))


def task_push_acknowledged(*, task_id: int, user_id: int) -> int:
    """The member's app received the task push: no SMS fallback for them."""
    return notifications.notifications_acknowledge(
        dedupe_key_prefix=task_push_prefix(task_id), user_id=user_id
    )


def members_on_duty(user_ids: Collection[int]) -> dict[int, bool]:
    """On-duty provider: ``{user_id: on duty in any active team membership}`` for the
    given users who are team members (others are unknown to dispatch)."""
    known: dict[int, bool] = {}
    rows = TeamMember.objects.filter(user_id__in=list(user_ids), is_active=True).values_list(
        "user_id", "on_duty"
    )
    for user_id, on_duty in rows:
        known[user_id] = known.get(user_id, False) or on_duty
    return known


def team_recipients(team_id: int) -> list[int]:
    """On-duty active members; all active members when nobody is on duty."""
    members = TeamMember.objects.filter(team_id=team_id, is_active=True)
    on_duty = list(members.filter(on_duty=True).values_list("user_id", flat=True))
    return on_duty or list(members.values_list("user_id", flat=True))


def _push_dispatched(task: DispatchTask, incident: Incident) -> None:
    category = Category.objects.filter(pk=incident.category_id).values_list("code", flat=True)
    notifications.notify_users(
        user_ids=team_recipients(task.team_id),
        kind=Kind.TASK,
        title=_("New task: %(incident)s"),
        body=_("%(severity)s · %(address)s"),
        args={
            "incident": incident.title,
            "severity": Severity(incident.severity).label,
            "address": incident.address or f"{incident.lat:.5f}, {incident.lng:.5f}",
        },
        data={
            "type": "task",
            "event": "dispatched",
            "task_id": task.pk,
            "incident_id": incident.pk,
            "incident_number": incident.number,
            "category": category.first() or "",
            "severity": incident.severity,
            "address": incident.address,
            "lat": incident.lat,
            "lng": incident.lng,
        },
        dedupe_key_prefix=task_push_prefix(task.pk),
        priority=Priority.HIGH,
        ack_within=notifications.task_ack_window(),
    )


def _push_withdrawn(task: DispatchTask, incident: Incident, kind: str, *, reason: str) -> None:
    prefix = task_push_prefix(task.pk)
    notifications.notifications_cancel(dedupe_key_prefix=prefix)
    recipients = notification_selectors.recipient_ids(dedupe_key_prefix=prefix)
    notifications.notify_users(
        user_ids=recipients or team_recipients(task.team_id),
        kind=Kind.TASK,
        title=WITHDRAWN_TITLES[kind],
        body=_("Reason: %(reason)s") if reason else "",
        args={"incident": incident.title, "reason": reason},
        data={"type": "task", "event": kind, "task_id": task.pk, "incident_id": incident.pk},
        dedupe_key_prefix=f"task:{task.pk}:{kind}",
        priority=Priority.NORMAL,
    )

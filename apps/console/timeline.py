"""The incident timeline as the incident page shows it: who, when, what, in words.

Rows are the services' (append-only, R11); this only reads their ``data`` and puts the
keys an operator needs into labelled words. Internal keys (ids of rows, clock steps)
are left out: the rows themselves stay complete in the database and the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from apps.dispatch.models import TaskStatus, Team
from apps.incidents.models import IncidentEvent, IncidentStatus, Loop, Severity, Source
from apps.sla.models import SlaKind

LABELS: dict[str, Any] = {
    "from": _("from"),
    "to": _("to"),
    "reason": _("reason"),
    "note": _("note"),
    "text": _("text"),
    "resolution": _("resolution"),
    "previous_resolution": _("previous resolution"),
    "status": _("status"),
    "severity": _("severity"),
    "loop": _("loop"),
    "category": _("category"),
    "source": _("source"),
    "team_id": _("team"),
    "to_team_id": _("to team"),
    "commander_id": _("commander"),
    "from_commander_id": _("previous commander"),
    "member_ids": _("members"),
    "added": _("added"),
    "removed": _("removed"),
    "address": _("address"),
    "instructions": _("instructions"),
    "result": _("result"),
    "into_number": _("merged into"),
    "number": _("incident"),
    "report_id": _("citizen report"),
    "command_region": _("command at"),
    "sla_kind": _("obligation"),
    "deaths": _("deaths"),
    "injured": _("injured"),
    "missing": _("missing"),
    "trapped": _("trapped"),
    "rating": _("rating"),
    "comment": _("comment"),
}
FIELD_LABELS: dict[str, Any] = {
    "category": _("category"),
    "severity": _("severity"),
    "loop": _("loop"),
}
USER_KEYS = ("commander_id", "from_commander_id")
USER_LIST_KEYS = ("member_ids", "added", "removed")
TEAM_KEYS = ("team_id", "to_team_id")
VALUE_LABELS: dict[str, Any] = {
    **dict(Severity.choices),
    **dict(Loop.choices),
    **dict(Source.choices),
    **dict(SlaKind.choices),
}


def timeline_rows(events: Iterable[IncidentEvent]) -> list[dict[str, Any]]:
    events = list(events)
    team_ids: set[int] = set()
    user_ids: set[int] = set()
    for event in events:
        data = event.data or {}
        team_ids |= {data[k] for k in TEAM_KEYS if isinstance(data.get(k), int)}
        user_ids |= {data[k] for k in USER_KEYS if isinstance(data.get(k), int)}
        for key in USER_LIST_KEYS:
            user_ids |= {pk for pk in data.get(key) or [] if isinstance(pk, int)}
    teams = dict(Team.objects.filter(pk__in=team_ids).values_list("pk", "name"))
    users = {
        u.pk: str(u)
        for u in get_user_model()
        .objects.filter(pk__in=user_ids)
        .only("pk", "username", "display_name")
    }
    return [
        {
            "event": event,
            "kind": event.get_kind_display(),
            "actor": str(event.actor) if event.actor_id else _("system"),
            "details": _details(event.data or {}, teams, users),
        }
        for event in events
    ]


INCIDENT_STATUS_LABELS = dict(IncidentStatus.choices)
TASK_STATUS_LABELS = dict(TaskStatus.choices)
STATUS_KEYS = ("status", "from", "to")


def _value(value: Any, statuses: dict[str, Any] | None = None) -> str:
    if isinstance(value, bool):
        return str(_("yes")) if value else str(_("no"))
    if isinstance(value, str):
        if statuses is not None and value in statuses:
            return str(statuses[value])
        return str(VALUE_LABELS.get(value, value))
    return str(value)


def _details(
    data: dict[str, Any], teams: dict[int, str], users: dict[int, str]
) -> list[tuple[Any, str]]:
    rows: list[tuple[Any, str]] = []
    # A task's row carries the task's status; every other row the incident's.
    statuses = TASK_STATUS_LABELS if "task_id" in data else INCIDENT_STATUS_LABELS
    for key, value in data.items():
        if key == "changes" and isinstance(value, dict):
            for name, change in value.items():
                if isinstance(change, dict):
                    rows.append(
                        (
                            FIELD_LABELS.get(name, name),
                            f"{_value(change.get('old'))} → {_value(change.get('new'))}",
                        )
                    )
            continue
        if key == "previous" and isinstance(value, dict):
            continue
        label = LABELS.get(key)
        if label is None or value in ("", None, []):
            continue
        if key in TEAM_KEYS:
            rows.append((label, teams.get(value, f"#{value}")))
        elif key in USER_KEYS:
            rows.append((label, users.get(value, f"#{value}")))
        elif key in USER_LIST_KEYS:
            rows.append((label, "、".join(users.get(pk, f"#{pk}") for pk in value)))
        elif key == "report_id":
            rows.append((label, f"#{value}"))
        else:
            rows.append((label, _value(value, statuses if key in STATUS_KEYS else None)))
    return rows

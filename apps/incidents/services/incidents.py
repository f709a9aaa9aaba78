"""Incident writes: creation and every state transition, each race-safe (conventions R1-R3).

Every transition follows the same steps:

1. lock the incident row (``locks.incident_for_update``, ``SELECT ... FOR UPDATE``), so
   two operators pressing "accept" at once are serialised and the second one sees the
   first one's result;
2. look the action up in the one transition table (``transitions.TRANSITIONS``) →
   ``illegal_transition`` (409) if the current status does not allow it;
3. write only the columns that changed (``save(update_fields=...)``);
4. append the timeline row in the same transaction (public when the reporting citizen
   should see it);
5. write the realtime event of the row (``apps.incidents.realtime``), last, in the same
   transaction: it is published after commit, never for a rolled-back change.

Linked citizen reports are never written here: their public status is derived from the
incident (``apps.incidents.public_status``), so it follows every transition by itself.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.core.validation import field_error, optional_text, required_text
from apps.incidents import locks
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.guards import resolve_guards_run
from apps.incidents.models import Category, Incident, IncidentEvent, Loop, Severity
from apps.incidents.realtime import incident_changed, incident_merged
from apps.incidents.services import sla as sla_hooks
from apps.incidents.taxonomy import category_fields_validate, severity_suggestion
from apps.incidents.timeline import timeline_append
from apps.incidents.transitions import MERGE_TARGET_STATUSES, IncidentAction, transition_target
from apps.regions.models import Region

TEXT_MAX_LENGTH = 2000
# Field refusals shaped like serializer errors (services are also called from the admin).
_required_text = partial(required_text, max_length=TEXT_MAX_LENGTH)
_optional_text = partial(optional_text, max_length=TEXT_MAX_LENGTH)
_invalid = field_error
CASUALTY_FIELDS = ("deaths", "injured", "missing", "trapped")


@transaction.atomic
def incident_create(
    *,
    category: Category,
    region: Region,
    lat: float,
    lng: float,
    source: str,
    title: str,
    by: Any = None,
    description: str = "",
    address: str = "",
    severity: str = Incident.Severity.UNCLASSIFIED,
    loop: str = Incident.Loop.SMALL,
    priority: int = Incident.Priority.NORMAL,
    extra: dict[str, Any] | None = None,
    reporter_name: str = "",
    reporter_phone: str = "",
    is_drill: bool = False,
    status: str = Incident.Status.REPORTED,
) -> Incident:
    """Create an incident in ``reported`` (or ``accepted`` when an operator creates it
    already classified) with its first timeline row.

    The category fields in ``extra`` are checked against the category's declarations
    (``category_field_invalid``). The number is ``YYYYMMDD-<id>`` (local date): unique
    without a counter table that every concurrent creation would have to lock.
    """
    _check_classification(severity=severity, loop=loop)
    if status not in (Incident.Status.REPORTED, Incident.Status.ACCEPTED):
        raise _invalid("status", _("A new incident is either reported or accepted."))
    extra = category_fields_validate(category, extra)
    now = timezone.now()
    incident = Incident.objects.create(
        number=f"tmp-{uuid.uuid4().hex[:20]}",  # replaced below once the id is known
        category=category,
        region=region,
        lat=lat,
        lng=lng,
        source=source,
        title=title,
        description=description,
        address=address,
        severity=severity,
        loop=loop,
        priority=priority,
        extra=extra,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        is_drill=is_drill,
        status=status,
        accepted_at=now if status == Incident.Status.ACCEPTED else None,
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    incident.number = f"{timezone.localtime(now):%Y%m%d}-{incident.pk:06d}"
    incident.save(update_fields=["number", "updated_at"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.CREATED,
        actor=by,
        data={
            "source": source,
            "category": category.code,
            "severity": severity,
            "loop": loop,
            "status": status,
        },
        public=True,
    )
    if status == Incident.Status.ACCEPTED:
        sla_hooks.on_incident_accepted(incident)
    incident_changed(incident, entry)
    return incident


# --- Transitions ---------------------------------------------------------------------------


@transaction.atomic
def incident_accept(
    *,
    incident_id: int,
    by: Any,
    category: Category | None = None,
    severity: str | None = None,
    loop: str | None = None,
) -> Incident:
    """受理: reported → accepted, optionally (re)classifying in the same step.

    Without an explicit severity an unclassified incident takes the severity suggested
    by its category fields (e.g. waterlogging depth); the timeline marks it suggested.
    """
    _check_classification(severity=severity, loop=loop)
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    target = transition_target(status=old_status, action=IncidentAction.ACCEPT)
    changes = _apply_classification(incident, category=category, severity=severity, loop=loop)
    suggested = False
    if severity is None and incident.severity == Severity.UNCLASSIFIED:
        suggestion = severity_suggestion(incident.category, incident.extra)
        if suggestion != Severity.UNCLASSIFIED:
            changes["severity"] = {"old": incident.severity, "new": suggestion}
            incident.severity = suggestion
            suggested = True
    incident.status = target
    incident.accepted_at = timezone.now()
    _save(incident, ["status", "accepted_at", *changes])
    data: dict[str, Any] = {"from": old_status, "to": target, "changes": changes}
    if suggested:
        data["severity_suggested"] = True
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.ACCEPTED, actor=by, data=data, public=True
    )
    sla_hooks.on_incident_accepted(incident)
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_reject(*, incident_id: int, by: Any, reason: str) -> Incident:
    """不予受理: reported → rejected; the reason is shown to the reporting citizen."""
    reason = _required_text("reason", reason)
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    incident.status = transition_target(status=old_status, action=IncidentAction.REJECT)
    incident.rejection_reason = reason
    _save(incident, ["status", "rejection_reason"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.REJECTED,
        actor=by,
        data={"from": old_status, "to": incident.status, "reason": reason},
        public=True,
    )
    sla_hooks.on_incident_ended(incident, "rejected")
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_start(*, incident_id: int, by: Any) -> Incident:
    """处置中: accepted → in_progress (dispatch calls this on the first task acceptance).

    ``in_progress_at`` keeps the *first* start: it is the "disposal on scene first-time"
    KPI and a reopen must not move it.
    """
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    incident.status = transition_target(status=old_status, action=IncidentAction.START)
    fields = ["status"]
    if incident.in_progress_at is None:
        incident.in_progress_at = timezone.now()
        fields.append("in_progress_at")
    _save(incident, fields)
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.STARTED,
        actor=by,
        data={"from": old_status, "to": incident.status},
        public=True,
    )
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_resolve(*, incident_id: int, by: Any, resolution: str) -> Incident:
    """办结: in_progress → resolved with the result recorded.

    Apps above may refuse it (dispatch: tasks still under way) through the guards of
    ``apps.incidents.guards``, run after the status check with the incident locked.
    """
    resolution = _required_text("resolution", resolution)
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    target = transition_target(status=old_status, action=IncidentAction.RESOLVE)
    resolve_guards_run(incident)
    incident.status = target
    incident.resolution = resolution
    incident.resolved_at = timezone.now()
    _save(incident, ["status", "resolution", "resolved_at"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.RESOLVED,
        actor=by,
        data={"from": old_status, "to": incident.status, "resolution": resolution},
        public=True,
    )
    sla_hooks.on_incident_resolved(incident)
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_close(*, incident_id: int, by: Any, note: str = "") -> Incident:
    """核查销号: resolved → closed once verification passed."""
    note = _optional_text("note", note)
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    incident.status = transition_target(status=old_status, action=IncidentAction.CLOSE)
    incident.closed_at = timezone.now()
    _save(incident, ["status", "closed_at"])
    data: dict[str, Any] = {"from": old_status, "to": incident.status}
    if note:
        data["note"] = note
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.CLOSED, actor=by, data=data, public=True
    )
    sla_hooks.on_incident_closed(incident)
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_reopen(*, incident_id: int, by: Any, reason: str) -> Incident:
    """Verification failed (核查不合格): resolved or closed → in_progress; the
    verification clock stops as failed and the resolution clock starts again.

    The resolution and the resolved/closed times are cleared (they no longer hold) and
    kept in the timeline row, so the after-action review still sees the first attempt.
    """
    reason = _required_text("reason", reason)
    incident = locks.incident_for_update(incident_id)
    old_status = incident.status
    incident.status = transition_target(status=old_status, action=IncidentAction.REOPEN)
    data: dict[str, Any] = {
        "from": old_status,
        "to": incident.status,
        "reason": reason,
        "previous_resolution": incident.resolution,
        "previous_resolved_at": _iso(incident.resolved_at),
        "previous_closed_at": _iso(incident.closed_at),
    }
    incident.resolution = ""
    incident.resolved_at = None
    incident.closed_at = None
    _save(incident, ["status", "resolution", "resolved_at", "closed_at"])
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.REOPENED, actor=by, data=data, public=True
    )
    sla_hooks.on_incident_reopened(incident)
    incident_changed(incident, entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_merge(*, incident_id: int, into_id: int, by: Any) -> Incident:
    """Merge a duplicate into another incident: the duplicate → merged.

    Both rows are locked in primary-key order (conventions R3), so two operators merging A
    into B and B into A at the same moment cannot deadlock, and the second one finds
    the first one's merge and is refused. The target must be a different, open
    incident (not merged itself, so chains never grow cycles), with the same drill
    flag. Casualty figures are not added up: duplicates describe the same people.
    Linked reports stay linked to the duplicate; their public status follows the
    ``merged_into`` chain.
    """
    if incident_id == into_id:
        raise _merge_invalid("same_incident", status=400)
    locked = {pk: locks.incident_for_update(pk) for pk in sorted((incident_id, into_id))}
    incident, target = locked[incident_id], locked[into_id]
    old_status = incident.status
    new_status = transition_target(status=old_status, action=IncidentAction.MERGE)
    if target.status not in MERGE_TARGET_STATUSES:
        raise _merge_invalid("target_not_open", target_status=target.status)
    if target.is_drill != incident.is_drill:
        raise _merge_invalid("drill_mismatch")
    incident.status = new_status
    incident.merged_into = target
    _save(incident, ["status", "merged_into"])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.MERGED,
        actor=by,
        data={
            "from": old_status,
            "to": new_status,
            "into_id": target.pk,
            "into_number": target.number,
        },
        public=True,
    )
    target_entry = timeline_append(
        incident=target,
        kind=IncidentEvent.Kind.DUPLICATE_MERGED,
        actor=by,
        data={"incident_id": incident.pk, "number": incident.number},
    )
    # The target's updated_at moves too, so offline clients syncing it see the merge.
    _save(target, [])
    sla_hooks.on_incident_ended(incident, "merged")
    incident_merged(incident, target, entry, target_entry, previous_status=old_status)
    return incident


@transaction.atomic
def incident_classify(
    *,
    incident_id: int,
    by: Any,
    category: Category | None = None,
    severity: str | None = None,
    loop: str | None = None,
) -> Incident:
    """Change category, severity and/or loop of an open incident.

    Only what differs is written; the timeline row lists ``{field: {old, new}}``.
    Asking for what is already set changes nothing and writes no row (a retried
    request is harmless).
    """
    _check_classification(severity=severity, loop=loop)
    incident = locks.incident_for_update(incident_id)
    transition_target(status=incident.status, action=IncidentAction.CLASSIFY)
    changes = _apply_classification(incident, category=category, severity=severity, loop=loop)
    if not changes:
        return incident
    _save(incident, list(changes))
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.CLASSIFIED,
        actor=by,
        data={"changes": changes},
    )
    if "loop" in changes:
        sla_hooks.on_loop_changed(incident, changes["loop"]["old"])
    incident_changed(incident, entry)
    return incident


@transaction.atomic
def incident_revise_casualties(
    *,
    incident_id: int,
    by: Any,
    deaths: int | None = None,
    injured: int | None = None,
    missing: int | None = None,
    trapped: int | None = None,
    note: str = "",
) -> Incident:
    """Record a revision of the casualty figures (``None``: unchanged).

    Figures get revised as an event unfolds (xixian-data.md: the 8·11 debris flow), so
    every revision is its own timeline row carrying the full set of figures after it
    and the previous ones: the rows of kind ``casualties_revised`` are the time series.
    A revision repeating the same figures is still recorded: "confirmed at 14:00" is
    information too.
    """
    given = {
        "deaths": deaths,
        "injured": injured,
        "missing": missing,
        "trapped": trapped,
    }
    given = {name: value for name, value in given.items() if value is not None}
    if not given:
        raise _invalid("non_field_errors", _("Give at least one casualty figure."))
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _invalid(name, _("Must be a whole number of at least 0."))
    note = _optional_text("note", note)
    incident = locks.incident_for_update(incident_id)
    transition_target(status=incident.status, action=IncidentAction.REVISE_CASUALTIES)
    previous = {name: getattr(incident, name) for name in CASUALTY_FIELDS}
    changed = [name for name, value in given.items() if previous[name] != value]
    for name in changed:
        setattr(incident, name, given[name])
    _save(incident, changed)
    data: dict[str, Any] = {name: getattr(incident, name) for name in CASUALTY_FIELDS}
    data["previous"] = previous
    if note:
        data["note"] = note
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.CASUALTIES_REVISED, actor=by, data=data
    )
    incident_changed(incident, entry)
    return incident


@transaction.atomic
def incident_add_note(
    *, incident_id: int, by: Any, text: str, public: bool = False
) -> IncidentEvent:
    """Append a free-text note to the timeline (internal unless ``public``).

    The incident row is locked too, so a note and a transition never interleave in the
    timeline, and ``updated_at`` moves so offline clients pick the note up.
    """
    text = _required_text("text", text)
    incident = locks.incident_for_update(incident_id)
    transition_target(status=incident.status, action=IncidentAction.NOTE)
    _save(incident, [])
    entry = timeline_append(
        incident=incident,
        kind=IncidentEvent.Kind.NOTE,
        actor=by,
        data={"text": text},
        public=public,
    )
    incident_changed(incident, entry)
    return entry


# --- Helpers -------------------------------------------------------------------------------


def _save(incident: Incident, fields: list[str]) -> None:
    """Write exactly ``fields`` (+ ``updated_at``, which offline sync relies on)."""
    incident.save(update_fields=[*dict.fromkeys(fields), "updated_at"])


def _apply_classification(
    incident: Incident,
    *,
    category: Category | None,
    severity: str | None,
    loop: str | None,
) -> dict[str, dict[str, Any]]:
    """Set the given values on ``incident``; return ``{field: {old, new}}`` of changes.

    Keys are model field names (``category`` for the FK) so they double as
    ``update_fields``; the category is recorded by code.
    """
    changes: dict[str, dict[str, Any]] = {}
    if category is not None and category.pk != incident.category_id:
        changes["category"] = {"old": incident.category.code, "new": category.code}
        incident.category = category
    if severity is not None and severity != incident.severity:
        changes["severity"] = {"old": incident.severity, "new": severity}
        incident.severity = severity
    if loop is not None and loop != incident.loop:
        changes["loop"] = {"old": incident.loop, "new": loop}
        incident.loop = loop
    return changes


def _check_classification(*, severity: str | None, loop: str | None) -> None:
    if severity is not None and severity not in Severity.values:
        raise _invalid("severity", _("Unknown severity."), code="invalid_choice")
    if loop is not None and loop not in Loop.values:
        raise _invalid("loop", _("Unknown loop."), code="invalid_choice")


def _merge_invalid(reason: str, *, status: int = 409, **extra: Any) -> ApplicationError:
    return ApplicationError(
        IncidentErrorCode.MERGE_TARGET_INVALID,
        _("This incident cannot be merged into that one."),
        extra={"reason": reason, **extra},
        status=status,
    )


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None

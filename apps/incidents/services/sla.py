"""Incidents and reports under SLA clocks: the hooks, 督办, loop raising, the handlers.

``apps.sla`` sits below incidents and knows nothing of them; this module is the bridge.

**Hooks** (called by the incident and report services inside their transaction, with the
row locked, so a clock never disagrees with the status it times):

=========================  =====================================================
incident accepted (受理)     start *dispatch* (until the first team is sent — the
                            dispatch app stops it) and *resolution* (by loop)
incident resolved (办结)     stop *resolution*; start *verification* (核查)
incident closed (销号)       stop *verification* (verified)
incident reopened           stop *verification* (failed); restart *resolution*
citizen dissatisfied        a closed incident rated 1–2 stars, or a reopen request:
                            *verification* starts again (the street reviews: reopen,
                            or :func:`incident_verification_confirm`)
incident rejected / merged  cancel every open clock of the incident
loop changed                move command (``command_region``); restart *resolution*
                            for the new loop (the medium loop gets its own 24 h)
report submitted            start *report triage*
report triaged              stop *report triage*
=========================  =====================================================

Every citizen report, however it came in (the view, the fast intake path, SOS), gets its
triage clock in the transaction that inserts it (``reports_submit_many`` calls
:func:`on_reports_submitted`), so no report is ever on the board without one.
:func:`report_triage_clocks_repair` is a repair tool for data written outside the
services (a restore, a manual insert), not part of normal operation.

The hooks never write timeline rows of their own (one transition, one row); only
escalations do, through :func:`incident_record_sla_event`.

**Services** the escalation ladder (and operators, through the admin) use:
:func:`incident_supervise` (督办) and :func:`incident_raise_loop` (small → medium → large,
command moving from the street to the new town to the new area).

**Handlers** (:func:`register`, from ``IncidentsConfig.ready``): how the sweeper locks an
incident or a report, writes the incident timeline, supervises and raises the loop.
Assignee and team-leader recipients of incident clocks are dispatch's (teams on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError
from apps.core.validation import optional_text
from apps.incidents import locks
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import (
    Category,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Loop,
    Report,
    Severity,
)
from apps.incidents.realtime import incident_changed
from apps.incidents.timeline import timeline_append
from apps.incidents.transitions import IncidentAction, transition_target
from apps.regions.models import Region, RegionLevel
from apps.sla import registry
from apps.sla.models import SlaClock, SlaKind
from apps.sla.policies import LadderStep
from apps.sla.services.clocks import (
    ClockStart,
    sla_clock_cancel,
    sla_clock_restart,
    sla_clock_start,
    sla_clock_stop,
    sla_clocks_start_many,
)

SUBJECT_INCIDENT = "incident"
SUBJECT_REPORT = "report"
# A closed incident rated this low by its reporter is verified again.
DISSATISFIED_AT_MOST = 2
REPAIR_BATCH = 500

NEXT_LOOP = {Loop.SMALL: Loop.MEDIUM, Loop.MEDIUM: Loop.LARGE}
# Where command sits for each loop (None: the incident's own street).
LOOP_COMMAND_LEVEL = {Loop.MEDIUM: RegionLevel.NEW_TOWN, Loop.LARGE: RegionLevel.NEW_AREA}

RECORD_KINDS = {
    "target_missed": IncidentEvent.Kind.SLA_TARGET_MISSED,
    "breached": IncidentEvent.Kind.SLA_BREACHED,
    "step": IncidentEvent.Kind.SLA_ESCALATED,
    "paused": IncidentEvent.Kind.SLA_PAUSED,
    "resumed": IncidentEvent.Kind.SLA_RESUMED,
}


# --- Hooks -------------------------------------------------------------------------------------


def incident_label(incident: Incident) -> str:
    return f"{incident.number} {incident.title}"


def _dimensions(incident: Incident) -> dict[str, Any]:
    return {
        "region_id": incident.region_id,
        "label": incident_label(incident),
        "category": incident.category.code,
        "severity": "" if incident.severity == Severity.UNCLASSIFIED else incident.severity,
        "loop": incident.loop,
        "is_drill": incident.is_drill,
    }


def _start(kind: str, incident: Incident) -> SlaClock | None:
    return sla_clock_start(
        kind=kind, subject_type=SUBJECT_INCIDENT, subject_id=incident.pk, **_dimensions(incident)
    )


def _stop(kind: str, incident: Incident, reason: str) -> int:
    return sla_clock_stop(
        kind=kind, subject_type=SUBJECT_INCIDENT, subject_id=incident.pk, reason=reason
    )


def on_incident_accepted(incident: Incident) -> None:
    _start(SlaKind.DISPATCH, incident)
    _start(SlaKind.INCIDENT_RESOLUTION, incident)


def on_incident_undispatched(incident: Incident) -> None:
    """An accepted incident lost its last live task (declined, expired): dispatch is owed
    again (dispatch calls this)."""
    _start(SlaKind.DISPATCH, incident)


def on_incident_resolved(incident: Incident) -> None:
    _stop(SlaKind.DISPATCH, incident, "resolved")
    _stop(SlaKind.INCIDENT_RESOLUTION, incident, "resolved")
    _start(SlaKind.INCIDENT_VERIFICATION, incident)


def on_incident_closed(incident: Incident) -> None:
    _stop(SlaKind.INCIDENT_VERIFICATION, incident, "verified")


def on_incident_reopened(incident: Incident) -> None:
    _stop(SlaKind.INCIDENT_VERIFICATION, incident, "verification failed")
    sla_clock_restart(
        kind=SlaKind.INCIDENT_RESOLUTION,
        subject_type=SUBJECT_INCIDENT,
        subject_id=incident.pk,
        reason="reopened",
        **_dimensions(incident),
    )


def on_incident_ended(incident: Incident, reason: str) -> None:
    """Rejected or merged: the incident's obligations went away."""
    sla_clock_cancel(subject_type=SUBJECT_INCIDENT, subject_id=incident.pk, reason=reason)


def on_loop_changed(incident: Incident, old_loop: str) -> None:
    """Command follows the loop; the resolution clock restarts timed for the new loop."""
    if incident.loop == old_loop:
        return
    command = command_region_for(incident)
    if command != incident.command_region_id:
        incident.command_region_id = command
        incident.save(update_fields=["command_region", "updated_at"])
    if incident.status in (IncidentStatus.ACCEPTED, IncidentStatus.IN_PROGRESS):
        sla_clock_restart(
            kind=SlaKind.INCIDENT_RESOLUTION,
            subject_type=SUBJECT_INCIDENT,
            subject_id=incident.pk,
            reason=f"loop {old_loop} → {incident.loop}",
            **_dimensions(incident),
        )


def on_citizen_feedback(
    incident: Incident | None, *, rating: int | None = None, reopen_requested: bool = False
) -> None:
    """The reporter of a closed incident is dissatisfied (a rating of at most
    ``DISSATISFIED_AT_MOST`` or a reopen request): verification (核查) is owed again, on
    its ladder; the street reopens or confirms the closure."""
    if incident is None or incident.status != IncidentStatus.CLOSED:
        return
    if reopen_requested or (rating is not None and rating <= DISSATISFIED_AT_MOST):
        _start(SlaKind.INCIDENT_VERIFICATION, incident)


def _triage_start(report: Report) -> ClockStart:
    label = f"{report.category.code} {report.category.name_zh} · {report.address or ''}"
    return ClockStart(
        kind=SlaKind.REPORT_TRIAGE,
        subject_type=SUBJECT_REPORT,
        subject_id=report.pk,
        region_id=report.region_id,
        label=label.strip(" ·"),
        category=report.category.code,
        started_at=report.created_at,
    )


def on_reports_submitted(reports: Sequence[Report]) -> list[SlaClock | None]:
    """Start the *report triage* clock of each new report (one INSERT for all)."""
    return sla_clocks_start_many([_triage_start(report) for report in reports])


def on_report_triaged(report: Report) -> None:
    sla_clock_stop(
        kind=SlaKind.REPORT_TRIAGE,
        subject_type=SUBJECT_REPORT,
        subject_id=report.pk,
        reason=report.status,
    )


def report_triage_clocks_repair(*, limit: int = REPAIR_BATCH) -> int:
    """Start the missing triage clock of submitted reports that have none; returns how
    many were started. A repair tool (``manage.py repair_report_clocks``): in normal
    operation every report gets its clock in its own insert, and this finds nothing.

    Race-safe against triage: each report is locked (``SKIP LOCKED``: one being triaged
    right now is left alone) and its status read again under the lock, so a clock is
    never started for a report that has just been triaged (such a clock would never be
    stopped and would escalate a false alarm up to the new area).
    """
    missing = Report.objects.filter(status=Report.Status.SUBMITTED).filter(
        ~Exists(
            SlaClock.objects.filter(
                kind=SlaKind.REPORT_TRIAGE,
                subject_type=SUBJECT_REPORT,
                subject_id=OuterRef("pk"),
            )
        )
    )
    started = 0
    for report_id in missing.order_by("created_at").values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            report = (
                Report.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("category")
                .filter(pk=report_id, status=Report.Status.SUBMITTED)
                .first()
            )
            if report is None:
                continue  # triaged meanwhile, or being triaged now
            if SlaClock.objects.filter(
                kind=SlaKind.REPORT_TRIAGE, subject_type=SUBJECT_REPORT, subject_id=report.pk
            ).exists():
                continue
            started += sla_clock_start(**vars(_triage_start(report))) is not None
    return started


def command_region_for(incident: Incident) -> int | None:
    """The id of the region where command sits for the incident's loop (None: its own)."""
    level = LOOP_COMMAND_LEVEL.get(incident.loop)
    if level is None:
        return None
    region = incident.region
    candidates = [*region.ancestor_paths, region.path]
    found = (
        Region.objects.filter(path__in=candidates, level=level).values_list("pk", flat=True).first()
    )
    return found if found is not None else region.pk


# --- 督办 and loop raising ---------------------------------------------------------------------


@transaction.atomic
def incident_supervise(
    *, incident_id: int, by: Any = None, reason: str = "", source: dict[str, Any] | None = None
) -> Incident:
    """督办: mark an open incident supervised. The first supervision sets
    ``supervised_at``; every one is a ``supervised`` timeline row (who pressed, or which
    escalation). Allowed where classification is (open incidents), else 409
    ``illegal_transition``."""
    incident = locks.incident_for_update(incident_id)
    transition_target(status=incident.status, action=IncidentAction.CLASSIFY)
    first = incident.supervised_at is None
    if first:
        incident.supervised_at = timezone.now()
    incident.save(update_fields=["supervised_at", "updated_at"])
    data: dict[str, Any] = {"first": first, **(source or {})}
    if reason:
        data["reason"] = reason
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.SUPERVISED, actor=by, data=data
    )
    incident_changed(incident, entry)
    return incident


@transaction.atomic
def incident_raise_loop(
    *, incident_id: int, by: Any = None, reason: str = "", source: dict[str, Any] | None = None
) -> Incident:
    """Raise the loop one level (small → medium → large) and move command up the tree
    (the new town, then the new area), restarting the resolution clock for the new loop.
    A large-loop incident stays as it is (no row written). Open incidents only (409
    ``illegal_transition``)."""
    incident = locks.incident_for_update(incident_id)
    transition_target(status=incident.status, action=IncidentAction.CLASSIFY)
    new_loop = NEXT_LOOP.get(incident.loop)
    if new_loop is None:
        return incident
    old_loop = incident.loop
    incident.loop = new_loop
    incident.save(update_fields=["loop", "updated_at"])
    on_loop_changed(incident, old_loop)
    command = Region.objects.filter(pk=incident.command_region_id).values_list("code", flat=True)
    data: dict[str, Any] = {
        "changes": {"loop": {"old": old_loop, "new": new_loop}},
        "command_region": command.first(),
        **(source or {}),
    }
    if reason:
        data["reason"] = reason
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.LOOP_RAISED, actor=by, data=data
    )
    incident_changed(incident, entry)
    return incident


@transaction.atomic
def incident_verification_confirm(*, incident_id: int, by: Any, note: str = "") -> Incident:
    """The closure stands: after reviewing a dissatisfied citizen's rating or reopen
    request, the street confirms the closed incident; the verification clock stops. Only
    for a closed incident (409 ``illegal_transition`` otherwise)."""
    note = optional_text("note", note, max_length=2000)
    incident = locks.incident_for_update(incident_id)
    if incident.status != IncidentStatus.CLOSED:
        raise ApplicationError(
            IncidentErrorCode.ILLEGAL_TRANSITION,
            _("Only a closed incident's closure can be confirmed."),
            extra={"from": incident.status, "action": "confirm_verification", "to": None},
            status=409,
        )
    stopped = _stop(SlaKind.INCIDENT_VERIFICATION, incident, "closure confirmed")
    incident.save(update_fields=["updated_at"])
    data: dict[str, Any] = {"clock_stopped": bool(stopped)}
    if note:
        data["note"] = note
    entry = timeline_append(
        incident=incident, kind=IncidentEvent.Kind.VERIFICATION_CONFIRMED, actor=by, data=data
    )
    incident_changed(incident, entry)
    return incident


def incident_record_sla_event(*, incident_id: int, kind: str, data: dict[str, Any]) -> None:
    """The timeline row of an SLA event (``RECORD_KINDS``) on an incident the caller has
    locked (the sweeper, a pause): who was told, what was done, when it was due."""
    incident = Incident.objects.get(pk=incident_id)
    entry = timeline_append(incident=incident, kind=RECORD_KINDS[kind], data=data)
    incident_changed(incident, entry)


# --- Handlers --------------------------------------------------------------------------------


def lock_rows(queryset: Any, *, wait: bool) -> registry.Lock:
    """Lock the one row of ``queryset``: LOCKED, GONE, or BUSY (held elsewhere, no wait)."""
    locking = queryset.select_for_update(of=("self",), skip_locked=not wait)
    if locking.values_list("pk", flat=True).first() is not None:
        return registry.Lock.LOCKED
    if wait or not queryset.exists():
        return registry.Lock.GONE
    return registry.Lock.BUSY


def lock_incident(incident_id: int, *, wait: bool) -> registry.Lock:
    return lock_rows(Incident.objects.filter(pk=incident_id), wait=wait)


def _lock_report(report_id: int, *, wait: bool) -> registry.Lock:
    return lock_rows(Report.objects.filter(pk=report_id), wait=wait)


def _record(event: registry.RecordEvent) -> None:
    incident_record_sla_event(incident_id=event.clock.subject_id, kind=event.kind, data=event.data)


def _source(clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    return {"sla_clock_id": clock.pk, "sla_kind": clock.kind, "sla_step": step.number}


def supervise_incident(incident_id: int, clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    """The ladder's 督办 on an incident (also used by dispatch for task clocks)."""
    incident = incident_supervise(incident_id=incident_id, source=_source(clock, step))
    return {
        "applied": True,
        "incident_id": incident_id,
        "supervised_at": incident.supervised_at.isoformat(),
    }


def raise_incident_loop(incident_id: int, clock: SlaClock, step: LadderStep) -> dict[str, Any]:
    """The ladder's loop raise on an incident (also used by dispatch for task clocks)."""
    before = Incident.objects.values_list("loop", flat=True).get(pk=incident_id)
    incident = incident_raise_loop(incident_id=incident_id, source=_source(clock, step))
    return {
        "applied": incident.loop != before,
        "incident_id": incident_id,
        "loop": {"old": before, "new": incident.loop},
    }


def register() -> None:
    """Called from ``IncidentsConfig.ready()``."""
    registry.register_subject(
        SUBJECT_INCIDENT,
        registry.SubjectHandler(
            label=_("Incident"),
            lock=lock_incident,
            record=_record,
            supervise=lambda clock, step: supervise_incident(clock.subject_id, clock, step),
            raise_loop=lambda clock, step: raise_incident_loop(clock.subject_id, clock, step),
        ),
    )
    registry.register_subject(
        SUBJECT_REPORT, registry.SubjectHandler(label=_("Citizen report"), lock=_lock_report)
    )
    registry.register_dimension("category", _category_choices)
    registry.register_dimension("severity", _severity_choices)
    registry.register_dimension("loop", _loop_choices)


def _category_choices() -> list[tuple[str, Any]]:
    return [
        (code, f"{code} {name}")
        for code, name in Category.objects.order_by("sort_order", "code").values_list(
            "code", "name_zh"
        )
    ]


def _severity_choices() -> list[tuple[str, Any]]:
    return [(value, label) for value, label in Severity.choices if value != Severity.UNCLASSIFIED]


def _loop_choices() -> list[tuple[str, Any]]:
    return list(Loop.choices)

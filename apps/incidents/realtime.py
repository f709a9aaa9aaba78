"""What incidents and citizen reports put on the realtime streams (``apps.realtime``).

The services call these helpers inside their transaction, after the change and its
timeline row; ``apps.realtime.events`` writes the events there and publishes them after
commit. This module owns the payload shapes (one ``TypedDict`` per kind, the contract
with the apps and the board; ``docs/realtime.md``):

==============================  ===================================  ===========================
kind                            streams                              payload
==============================  ===================================  ===========================
``incident.<timeline kind>``    ``incident.<id>``, ``region.<code>``  :class:`IncidentEventPayload`
                                of its street and every ancestor
``report.submitted``            region streams of the street and     :class:`ReportSubmittedPayload`
                                every ancestor (the triage board)
``report.submitted``            ``report.<id>``                      :class:`ReportReceivedPayload`
``report.triaged``              ``report.<id>``, region streams of    :class:`ReportTriagedPayload`
                                the report's street
``report.status_changed``       ``report.<id>``                      :class:`ReportStatusPayload`
``report.rated``                ``report.<id>``                      :class:`ReportRatedPayload`
``report.reopen_requested``     ``report.<id>``                      :class:`ReportReopenPayload`
==============================  ===================================  ===========================

Every incident timeline row is an ``incident.*`` event (transitions, classification,
casualty revisions, notes, merges, report links, command post changes) except the rows
of task transitions, which dispatch emits as ``task.*`` with the task attached.

The report stream is what a citizen following a report by its token sees, so its
payloads carry the *public* status only (``apps.incidents.public_status``) and never staff
data: no internal notes, no operator names, no other reporters.

Who may subscribe to ``report.<id>`` (:func:`report_stream_key`, plugged into realtime by
``REALTIME_STREAM_AUTHORIZERS``): whoever holds its tracking token, or its registered
reporter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from apps.incidents.duplicates import CandidateRef
from apps.incidents.models import Incident, IncidentEvent, Report, ReportStatus
from apps.incidents.public_status import (
    INCIDENT_TO_PUBLIC,
    MAX_MERGE_DEPTH,
    incident_public_status,
    public_status_for,
)
from apps.realtime import events, streams
from apps.realtime.frames import iso

# --- Payloads ------------------------------------------------------------------------------


class IncidentSummary(TypedDict):
    """The incident's row on the board after the change."""

    id: int
    number: str
    title: str
    status: str
    severity: str
    loop: str
    priority: int
    category: str  # category code
    region: str  # street (region) code
    lat: float
    lng: float
    address: str
    is_drill: bool


class TimelineEntry(TypedDict):
    """One incident timeline row (``IncidentEvent``); ``data`` as stored, per kind."""

    id: int
    kind: str
    at: str  # ISO 8601, Asia/Shanghai
    actor_id: int | None
    public: bool
    data: dict[str, Any]


class IncidentEventPayload(TypedDict):
    """``incident.<timeline kind>``: the incident after the change and the timeline row."""

    incident: IncidentSummary
    entry: TimelineEntry


class BoardReport(TypedDict):
    """A new report as the triage board shows it."""

    id: int
    category: str  # category code
    text: str
    address: str
    lat: float
    lng: float
    region: str  # street code
    is_sos: bool
    created_at: str  # ISO 8601, Asia/Shanghai


class ReportSubmittedPayload(TypedDict):
    """``report.submitted`` on the region streams: a new report for triage, with the open
    incidents it may duplicate (best first)."""

    report: BoardReport
    duplicate_candidates: list[CandidateRef]


class ReportReceivedPayload(TypedDict):
    """``report.submitted`` on ``report.<id>``: what the citizen sees."""

    report_id: int
    public_status: str


TriageOutcome = Literal["accepted", "rejected", "duplicate"]


class ReportTriagedPayload(TypedDict):
    """``report.triaged``: taken in (or not); ``reason`` only when rejected, else ""."""

    report_id: int
    outcome: TriageOutcome
    public_status: str
    reason: str


class ReportStatusPayload(TypedDict):
    """``report.status_changed``: the status the citizen sees moved on."""

    report_id: int
    public_status: str


class ReportRatedPayload(TypedDict):
    report_id: int
    rating: int


class ReportReopenPayload(TypedDict):
    report_id: int
    public_status: str


def incident_summary(incident: Incident) -> IncidentSummary:
    region_path, category_code = _labels(incident)
    return {
        "id": incident.pk,
        "number": incident.number,
        "title": incident.title,
        "status": str(incident.status),
        "severity": str(incident.severity),
        "loop": str(incident.loop),
        "priority": int(incident.priority),
        "category": category_code,
        "region": region_path.strip("/").rsplit("/", 1)[-1],
        "lat": float(incident.lat),
        "lng": float(incident.lng),
        "address": incident.address,
        "is_drill": bool(incident.is_drill),
    }


def timeline_entry(entry: IncidentEvent) -> TimelineEntry:
    return {
        "id": entry.pk,
        "kind": str(entry.kind),
        "at": iso(entry.at),
        "actor_id": entry.actor_id,
        "public": bool(entry.public),
        "data": dict(entry.data or {}),
    }


def incident_streams(incident: Incident) -> list[str]:
    """``incident.<id>`` and the region streams of its street and every ancestor."""
    region_path, _code = _labels(incident)
    return [streams.incident(incident.pk), *streams.region_and_ancestors(region_path)]


# --- Emitting (call inside the service's transaction, after the change) --------------------


def incident_changed(
    incident: Incident, entry: IncidentEvent, *, previous_status: str | None = None
) -> None:
    """``incident.<entry.kind>`` on the incident's streams. With ``previous_status`` (a
    transition), every report following the incident whose citizen-facing status moved
    gets ``report.status_changed`` too - in the same reservation (one sorted lock set)."""
    items: list[events.Emission] = [_incident_item(incident, entry)]
    if previous_status is not None:
        before = INCIDENT_TO_PUBLIC.get(previous_status)
        after = incident_public_status(incident)
        if before != after:
            items += _status_items(incident.pk, after)
    events.emit_many(items)


def incident_merged(
    incident: Incident,
    target: Incident,
    entry: IncidentEvent,
    target_entry: IncidentEvent,
    *,
    previous_status: str,
) -> None:
    """A merge touches two incidents (perhaps in two 新城): both events and the status of
    the duplicate's reports (they now follow ``target``) in ONE reservation, so two
    merges in opposite directions cannot lock each other's streams crosswise."""
    items = [_incident_item(incident, entry), _incident_item(target, target_entry)]
    after = incident_public_status(target)
    if INCIDENT_TO_PUBLIC.get(previous_status) != after:
        items += _status_items(incident.pk, after)
    events.emit_many(items)


def reports_submitted_emit(
    reports: Sequence[Report], candidates: Sequence[list[CandidateRef]]
) -> None:
    """New reports (with their duplicate candidates, in the same order): the triage
    boards of their street and every ancestor, and each citizen's own stream. One call
    for a whole batch (one sequence reservation, one insert)."""
    items: list[events.Emission] = []
    for report, found in zip(reports, candidates, strict=True):
        board: ReportSubmittedPayload = {
            "report": {
                "id": report.pk,
                "category": report.category.code,
                "text": report.text,
                "address": report.address,
                "lat": report.lat,
                "lng": report.lng,
                "region": report.region.code,
                "is_sos": report.is_sos,
                "created_at": iso(report.created_at),
            },
            "duplicate_candidates": list(found),
        }
        received: ReportReceivedPayload = {"report_id": report.pk, "public_status": "received"}
        items.append((streams.region_and_ancestors(report.region), "report.submitted", board))
        items.append(([streams.report(report.pk)], "report.submitted", received))
    if items:
        events.emit_many(items, returning=False)


def report_linked(report: Report, incident: Incident, entry: IncidentEvent) -> None:
    """Triage took the report in (accepted, or duplicate of ``incident``): the incident's
    ``report_linked`` row and the citizen's ``report.triaged``."""
    events.emit_many([_incident_item(incident, entry), _triaged_item(report)])


def report_rejected(report: Report) -> None:
    """不予受理: the citizen sees the reason (it is written for them)."""
    events.emit_many([_triaged_item(report)])


def report_rated(report: Report, incident: Incident | None, entry: IncidentEvent | None) -> None:
    rated: ReportRatedPayload = {"report_id": report.pk, "rating": int(report.rating or 0)}
    items: list[events.Emission] = [([streams.report(report.pk)], "report.rated", rated)]
    if incident is not None and entry is not None:
        items.append(_incident_item(incident, entry))
    events.emit_many(items)


def report_reopen_requested(report: Report, incident: Incident, entry: IncidentEvent) -> None:
    payload: ReportReopenPayload = {
        "report_id": report.pk,
        "public_status": str(public_status_for(report)),
    }
    events.emit_many(
        [
            ([streams.report(report.pk)], "report.reopen_requested", payload),
            _incident_item(incident, entry),
        ]
    )


# --- Who may follow a report ---------------------------------------------------------------


def report_stream_key(user: Any, key: str | None, token: str | None) -> str | None:
    """The report id (as the stream key) a subscriber may follow: the report of the
    tracking ``token`` (anyone holding it, anonymous too; with a ``key`` as well, they
    must agree), or report ``key`` when ``user`` is its registered reporter."""
    if token is not None:
        found = Report.objects.filter(token=token).values_list("pk", flat=True).first()
        if found is None or (key is not None and str(found) != key):
            return None
        return str(found)
    if user is None or key is None:
        return None
    return key if Report.objects.filter(pk=int(key), reporter_id=user.pk).exists() else None


# --- Helpers -------------------------------------------------------------------------------


def _labels(incident: Incident) -> tuple[str, str]:
    """(region path, category code) without a query when both are loaded, else one."""
    region_cached = Incident.region.is_cached(incident)
    category_cached = Incident.category.is_cached(incident)
    if region_cached and category_cached:
        return incident.region.path, incident.category.code
    path, code = (
        Incident.objects.filter(pk=incident.pk).values_list("region__path", "category__code").get()
    )
    return (incident.region.path if region_cached else path), (
        incident.category.code if category_cached else code
    )


def _incident_item(incident: Incident, entry: IncidentEvent) -> events.Emission:
    payload: IncidentEventPayload = {
        "incident": incident_summary(incident),
        "entry": timeline_entry(entry),
    }
    return incident_streams(incident), f"incident.{entry.kind}", payload


def _triaged_item(report: Report) -> events.Emission:
    outcome: TriageOutcome = {
        ReportStatus.ACCEPTED: "accepted",
        ReportStatus.DUPLICATE: "duplicate",
    }.get(report.status, "rejected")  # type: ignore[assignment]
    payload: ReportTriagedPayload = {
        "report_id": report.pk,
        "outcome": outcome,
        "public_status": str(public_status_for(report)),
        "reason": report.rejection_reason if outcome == "rejected" else "",
    }
    region_path = (
        report.region.path
        if Report.region.is_cached(report)
        else Report.objects.filter(pk=report.pk).values_list("region__path", flat=True).get()
    )
    return (
        [streams.report(report.pk), *streams.region_and_ancestors(region_path)],
        "report.triaged",
        payload,
    )


def _status_items(incident_id: int, public_status: str) -> list[events.Emission]:
    """``report.status_changed`` for every report following incident ``incident_id``:
    linked to it, or to an incident merged into it (down the chain)."""
    incident_ids = [incident_id]
    frontier = [incident_id]
    for _hop in range(MAX_MERGE_DEPTH):
        frontier = list(
            Incident.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)
        )
        if not frontier:
            break
        incident_ids += frontier
    report_ids = Report.objects.filter(incident_id__in=incident_ids).values_list("pk", flat=True)
    items: list[events.Emission] = []
    for report_id in sorted(report_ids):
        payload: ReportStatusPayload = {"report_id": report_id, "public_status": str(public_status)}
        items.append(([streams.report(report_id)], "report.status_changed", payload))
    return items

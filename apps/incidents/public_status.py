"""What a reporting citizen sees of their report: derived, never stored.

The public status is computed from the report's own triage status and, once the report
is linked, from its incident. Nothing has to be written to reports when an incident
moves on (resolved, closed, reopened ...): the citizen's view follows automatically.
"""

from __future__ import annotations

from apps.incidents.models import Incident, IncidentStatus, PublicStatus, Report, ReportStatus

# Incident status → what the citizen sees. ``merged`` is resolved by following the chain.
INCIDENT_TO_PUBLIC: dict[str, PublicStatus] = {
    IncidentStatus.REPORTED: PublicStatus.RECEIVED,
    IncidentStatus.ACCEPTED: PublicStatus.RECEIVED,
    IncidentStatus.IN_PROGRESS: PublicStatus.IN_PROGRESS,
    IncidentStatus.RESOLVED: PublicStatus.RESOLVED,
    IncidentStatus.CLOSED: PublicStatus.CLOSED,
    IncidentStatus.REJECTED: PublicStatus.REJECTED,
}

# A merge chain longer than this is a data error; stop rather than loop forever.
MAX_MERGE_DEPTH = 16


def incident_public_status(incident: Incident) -> PublicStatus:
    """The citizen-facing status of an incident, following ``merged_into`` links.

    Each hop beyond the first costs one query (``merged_into`` is a FK); callers that
    list many reports should ``select_related("incident__merged_into")``.
    """
    current: Incident | None = incident
    for _ in range(MAX_MERGE_DEPTH):
        if current is None:
            break
        if current.status != IncidentStatus.MERGED:
            return INCIDENT_TO_PUBLIC[current.status]
        current = current.merged_into
    # Broken or cyclic chain: the report was taken in, so "received" is the honest answer.
    return PublicStatus.RECEIVED


def public_status_for(report: Report) -> PublicStatus:
    """The status the reporting citizen sees for ``report``.

    submitted → received; rejected → rejected; accepted/duplicate → from the incident
    (reported/accepted → received, in_progress → in_progress, resolved → resolved,
    closed → closed, rejected → rejected, merged → follow ``merged_into``).
    """
    if report.status == ReportStatus.SUBMITTED:
        return PublicStatus.RECEIVED
    if report.status == ReportStatus.REJECTED:
        return PublicStatus.REJECTED
    incident = report.incident
    if incident is None:  # accepted/duplicate always link (DB constraint); be defensive
        return PublicStatus.RECEIVED
    return incident_public_status(incident)

"""Reads behind the Open311 endpoints: services (categories) and requests (citizen reports).

Everything here is public (the endpoints need no key), so every read is narrowed to
what may be published: categories a citizen may report, and citizen reports that are
not SOS alarms (an SOS is a person in danger at a point; publishing where they are could
hurt them).

Open311 knows two statuses. A report is ``open`` while its public status is received
or in progress, and ``closed`` once resolved, closed or not accepted — the spec's
"closed: it has been resolved" read from the citizen's side: nothing more will happen
on it. The rule is ``apps.incidents.public_status`` (one place); :func:`closed_q` only
restates it for the database so that a status filter can be applied before the
1000-row limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Max, Q, QuerySet

from apps.incidents.models import Category, IncidentStatus, PublicStatus, Report, ReportStatus
from apps.incidents.public_status import INCIDENT_TO_PUBLIC, public_status_for


class Open311Status:
    OPEN = "open"
    CLOSED = "closed"


STATUSES = (Open311Status.OPEN, Open311Status.CLOSED)

PUBLIC_TO_OPEN311: dict[str, str] = {
    PublicStatus.RECEIVED: Open311Status.OPEN,
    PublicStatus.IN_PROGRESS: Open311Status.OPEN,
    PublicStatus.RESOLVED: Open311Status.CLOSED,
    PublicStatus.CLOSED: Open311Status.CLOSED,
    PublicStatus.REJECTED: Open311Status.CLOSED,
}

# Incident statuses whose reports read as closed, derived from the one public mapping.
_CLOSED_INCIDENT_STATUSES = [
    status
    for status, public in INCIDENT_TO_PUBLIC.items()
    if PUBLIC_TO_OPEN311[public] == Open311Status.CLOSED
]

# Merge chains followed in SQL. Deeper chains are still labelled right (the label comes
# from public_status_for), they may only be missed by a status filter.
MERGE_HOPS_IN_SQL = 3

DEFAULT_MAX_REQUESTS = 1000


def open311_status(report: Report) -> str:
    return PUBLIC_TO_OPEN311[public_status_for(report)]


def closed_q() -> Q:
    """Reports whose Open311 status is ``closed``, as a filter (see the module docstring)."""
    chain = Q()
    prefix = "incident"
    merged_so_far = Q()
    for _hop in range(MERGE_HOPS_IN_SQL + 1):
        chain |= merged_so_far & Q(**{f"{prefix}__status__in": _CLOSED_INCIDENT_STATUSES})
        merged_so_far &= Q(**{f"{prefix}__status": IncidentStatus.MERGED})
        prefix += "__merged_into"
    linked = Q(status__in=[ReportStatus.ACCEPTED, ReportStatus.DUPLICATE])
    return Q(status=ReportStatus.REJECTED) | (linked & chain)


# --- Services --------------------------------------------------------------------------


def service_categories() -> QuerySet[Category]:
    """The categories offered as Open311 services, in the app's order."""
    return Category.objects.filter(is_active=True, citizen_reportable=True).order_by(
        "sort_order", "code"
    )


def service_category(service_code: str) -> Category | None:
    return service_categories().filter(code=service_code).first()


def services_changeset() -> datetime | None:
    """When the service list or a service definition last changed (discovery)."""
    return Category.objects.aggregate(last=Max("updated_at"))["last"]


# --- Requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestFilters:
    """Parsed ``GET requests`` arguments. ``service_request_ids`` overrides the rest."""

    service_request_ids: Sequence[int] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: Sequence[str] = ()


def _published_reports() -> QuerySet[Report]:
    return (
        Report.objects.filter(is_sos=False)
        .select_related(
            "category",
            "region__parent",
            "incident__merged_into__merged_into",
        )
        .order_by("-created_at", "-id")
    )


def request_list(filters: RequestFilters, *, limit: int | None = None) -> list[Report]:
    """Citizen reports as Open311 requests, newest first, at most ``limit``.

    ``service_request_ids`` overrides every other argument (spec). Otherwise the
    caller passes the date window already defaulted (most recent 90 days).
    """
    limit = limit or getattr(settings, "OPEN311_MAX_REQUESTS", DEFAULT_MAX_REQUESTS)
    reports = _published_reports()
    if filters.service_request_ids:
        return list(reports.filter(pk__in=filters.service_request_ids)[:limit])
    if filters.service_codes:
        reports = reports.filter(category__code__in=filters.service_codes)
    if filters.start is not None:
        reports = reports.filter(created_at__gte=filters.start)
    if filters.end is not None:
        reports = reports.filter(created_at__lte=filters.end)
    wanted = set(filters.statuses)
    if wanted == {Open311Status.CLOSED}:
        reports = reports.filter(closed_q())
    elif wanted == {Open311Status.OPEN}:
        reports = reports.exclude(closed_q())
    rows = list(reports[:limit])
    if wanted and wanted != set(STATUSES):
        # The label is the truth; drop rows a merge chain deeper than the SQL reaches.
        rows = [report for report in rows if open311_status(report) in wanted]
    return rows


def request_get(service_request_id: int) -> Report | None:
    return _published_reports().filter(pk=service_request_id).first()

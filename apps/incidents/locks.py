"""Row locks, always taken in the same order: incident, then report (conventions R3)."""

from __future__ import annotations

from apps.core.errors import ApplicationError
from apps.incidents.errors import IncidentErrorCode
from apps.incidents.models import Incident, Report


def incident_for_update(incident_id: int) -> Incident:
    try:
        return Incident.objects.select_for_update(of=("self",)).get(pk=incident_id)
    except Incident.DoesNotExist:
        raise ApplicationError(IncidentErrorCode.INCIDENT_NOT_FOUND, status=404) from None


def report_for_update(report_id: int) -> Report:
    try:
        return Report.objects.select_for_update(of=("self",)).get(pk=report_id)
    except Report.DoesNotExist:
        raise ApplicationError(IncidentErrorCode.REPORT_NOT_FOUND, status=404) from None

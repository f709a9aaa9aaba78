"""The admin index as the duty officer's dashboard: what needs doing now, in my regions.

``settings.UNFOLD["DASHBOARD_CALLBACK"]``; every figure goes through the apps'
``visible_to`` (the one scope rule), so a street officer counts their street only. The
template (``admin/index.html``) keeps named blocks for the charts still to come.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone

from apps.core.scoping import restrict
from apps.incidents.models import OPEN_STATUSES, Incident, IncidentStatus, Report
from apps.sla.models import OPEN_CLOCK_STATUSES, SlaClock

RECENT_LIMIT = 10


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    user = request.user
    context["console"] = {"cards": [], "recent": []}
    if not user.has_perm("incidents.view_incident"):
        return context
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    incidents = Incident.objects.visible_to(user)
    figures = incidents.aggregate(
        open=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
        reported=Count("pk", filter=Q(status=IncidentStatus.REPORTED)),
        in_progress=Count("pk", filter=Q(status=IncidentStatus.IN_PROGRESS)),
        resolved=Count("pk", filter=Q(status=IncidentStatus.RESOLVED)),
        supervised=Count("pk", filter=Q(status__in=OPEN_STATUSES, supervised_at__isnull=False)),
        today=Count("pk", filter=Q(created_at__gte=today)),
    )
    reports = Report.objects.visible_to(user).filter(status=Report.Status.SUBMITTED)
    triage = reports.aggregate(total=Count("pk"), sos=Count("pk", filter=Q(is_sos=True)))
    breached = restrict(
        SlaClock.objects.filter(status__in=OPEN_CLOCK_STATUSES, breached_at__isnull=False),
        user,
        "region__path",
    ).count()
    context["console"] = {
        "can_triage": user.has_perm("incidents.view_report"),
        "figures": figures,
        "triage": triage,
        "breached": breached,
        "recent": list(
            incidents.filter(status__in=OPEN_STATUSES)
            .select_related("category", "region")
            .order_by("-priority", "-created_at", "-id")[:RECENT_LIMIT]
        ),
    }
    return context

"""The admin index as the duty officer's dashboard: what needs doing now, in my regions.

``settings.UNFOLD["DASHBOARD_CALLBACK"]``; every figure goes through the apps'
``visible_to`` (the one scope rule), so a street officer counts their street only.

- **Cards**: what is waiting now (triage, to accept, breached, 督办…).
- **Overdue and supervised** (超时与督办): the overdue board's rule and order
  (``SlaClock.objects.overdue`` / ``most_urgent_first``, as the "超时与督办" list), then
  the open supervised incidents, each row linking to its incident (or report).
- **Charts**: :func:`apps.analytics.charts.dashboard_charts` for the filter (region,
  period: ``region``, ``from``, ``to`` GET parameters, validated by the KPI page's
  form), handed to ``console/dashboard.js`` with ``json_script`` (no inline script);
  the heat map is an HTML table.
- **Exports**: links to the lists' CSV/XLSX exports and the KPI file, carrying the same
  region and period as the list filters they become (``in_street=…``,
  ``created_at_from_0=…``; incidents without drills, as the charts), so a file holds
  the rows the charts count, in the user's scope.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from apps.analytics.admin import region_picker_choices
from apps.analytics.charts import FIRST_TIME_INTERVALS, dashboard_charts
from apps.analytics.forms import KpiFilterForm, KpiQuery
from apps.analytics.intervals import INTERVALS
from apps.analytics.selectors import kpi_can_read
from apps.core.scoping import restrict
from apps.dispatch.models import DispatchTask
from apps.dispatch.services.sla import SUBJECT_TASK
from apps.incidents.models import OPEN_STATUSES, Incident, IncidentStatus, Report
from apps.incidents.services.sla import SUBJECT_INCIDENT, SUBJECT_REPORT
from apps.regions.models import Region, RegionLevel
from apps.sla.models import OPEN_CLOCK_STATUSES, SlaClock

RECENT_LIMIT = 10
OVERDUE_LIMIT = 15
HEAT_LEVELS = 5  # colour steps of the heat map (class xc-heat-0 … xc-heat-5)

# The list filter that narrows a changelist to a region's subtree, by the region's level
# (apps.regions.admin_mixins.REGION_FILTER_LEVELS); the new area is everyone's whole scope.
REGION_PARAMETERS = {
    RegionLevel.NEW_TOWN: "in_new_town",
    RegionLevel.STREET: "in_street",
    RegionLevel.UNIT: "in_community",
}


def dashboard_callback(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    user = request.user
    context["console"] = {"cards": [], "recent": []}
    if not user.has_perm("incidents.view_incident"):
        return context
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
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

    chosen = request.GET.get("region", "").strip()
    form = KpiFilterForm(
        data=_filter_data(request), region_choices=region_picker_choices(user, chosen)
    )
    query = form.query() if form.is_valid() else None
    region = _region(query.region_code) if query is not None else None
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
        "filter_form": form,
        "overdue": overdue_rows(user, now, region=region, region_code=chosen),
        "can_view_clocks": user.has_perm("sla.view_slaclock"),
    }
    if query is not None and kpi_can_read(user):
        charts = dashboard_charts(user=user, query=query, now=now)
        context["console"]["charts"] = chart_payload(charts)
        context["console"]["heatmap"] = heatmap_rows(charts["heatmap"])
        context["console"]["totals"] = charts["totals"]
        context["console"]["exports"] = export_links(user, query, region)
        context["console"]["query"] = query
    return context


def _filter_data(request: HttpRequest) -> dict[str, str]:
    return {name: request.GET.get(name, "") for name in ("region", "from", "to")}


def _region(code: str) -> Region | None:
    if not code:
        return None
    return Region.objects.filter(code=code).only("code", "path", "level").first()


# --- Overdue and supervised --------------------------------------------------------------------


def overdue_rows(
    user: Any, now: datetime, *, region: Region | None, region_code: str
) -> list[dict[str, Any]]:
    """Open clocks past their deadline (most overdue first, the overdue board's order),
    then open supervised incidents (longest supervised first) not already listed; at
    most :data:`OVERDUE_LIMIT` rows, in the user's scope and the chosen region. Three
    statements (clocks, their tasks' incidents, supervised incidents)."""
    clocks = SlaClock.objects.visible_to(user).overdue(now)
    supervised = Incident.objects.visible_to(user).open().filter(supervised_at__isnull=False)
    if region_code and region is None:
        return []  # an unknown region: nothing, as everywhere else
    if region is not None:
        clocks = clocks.filter(region__path__startswith=region.path)
        supervised = supervised.filter(region__path__startswith=region.path)
    overdue = list(
        clocks.most_urgent_first(now)
        .select_related("region")
        .only(
            "kind",
            "subject_type",
            "subject_id",
            "subject_label",
            "due_at",
            "breached_at",
            "status",
            "region__name_zh",
        )[:OVERDUE_LIMIT]
    )
    task_ids = [c.subject_id for c in overdue if c.subject_type == SUBJECT_TASK]
    task_incidents = (
        dict(DispatchTask.objects.filter(pk__in=task_ids).values_list("pk", "incident_id"))
        if task_ids
        else {}
    )
    rows: list[dict[str, Any]] = []
    listed: set[int] = set()
    for clock in overdue:
        incident_id: int | None = None
        if clock.subject_type == SUBJECT_INCIDENT:
            incident_id = clock.subject_id
        elif clock.subject_type == SUBJECT_TASK:
            incident_id = task_incidents.get(clock.subject_id)
        if incident_id is not None:
            url = reverse("admin:incidents_incident_change", args=[incident_id])
            listed.add(incident_id)
        elif clock.subject_type == SUBJECT_REPORT:
            url = reverse("admin:incidents_report_change", args=[clock.subject_id])
        else:
            url = ""
        rows.append(
            {
                "kind": clock.get_kind_display(),
                "subject": clock.subject_label or str(clock.subject_id),
                "region": clock.region.name_zh,
                "due_at": clock.due_at,
                "overdue_min": int((now - clock.due_at).total_seconds() // 60),
                "supervised": False,
                "url": url,
            }
        )
    room = OVERDUE_LIMIT - len(rows)
    if room > 0:
        for incident in (
            supervised.exclude(pk__in=listed)
            .select_related("region")
            .only("number", "title", "supervised_at", "region__name_zh")
            .order_by("supervised_at", "id")[:room]
        ):
            rows.append(
                {
                    "kind": pgettext("dashboard overdue list", "Supervised (督办)"),
                    "subject": f"{incident.number} {incident.title}",
                    "region": incident.region.name_zh,
                    "due_at": incident.supervised_at,
                    "overdue_min": None,
                    "supervised": True,
                    "url": reverse("admin:incidents_incident_change", args=[incident.pk]),
                }
            )
    return rows


# --- Charts ------------------------------------------------------------------------------------


def chart_payload(charts: Any) -> dict[str, Any]:
    """What ``dashboard.js`` draws: the series and every word it shows (translated here,
    so the script carries no text)."""
    interval_labels = {d.name: str(d.label) for d in INTERVALS if d.name in FIRST_TIME_INTERVALS}
    return {
        "series": {
            name: charts[name] for name in ("daily", "weekly", "category", "region", "team")
        },
        "words": {
            "incidents": _("Incidents"),
            "tasks": _("Tasks"),
            "compliance": _("SLA compliance (%)"),
            "minutes": _("median, minutes"),
            "intervals": interval_labels,
        },
    }


def heatmap_rows(heatmap: Any) -> dict[str, Any]:
    """The heat map as table rows: each cell its count and colour step (0 = none)."""
    top = heatmap["max"] or 1
    rows = []
    for row in heatmap["rows"]:
        cells = [
            {"count": n, "level": 0 if n == 0 else max(1, round(n / top * HEAT_LEVELS))}
            for n in row["counts"]
        ]
        rows.append(
            {"code": row["code"], "label": row["label"], "cells": cells, "total": row["total"]}
        )
    days = [
        pgettext("weekday", "Mon"),
        pgettext("weekday", "Tue"),
        pgettext("weekday", "Wed"),
        pgettext("weekday", "Thu"),
        pgettext("weekday", "Fri"),
        pgettext("weekday", "Sat"),
        pgettext("weekday", "Sun"),
    ]
    return {"days": days, "rows": rows, "max": heatmap["max"], "more": heatmap["more"]}


# --- Exports -----------------------------------------------------------------------------------


def export_links(user: Any, query: KpiQuery, region: Region | None) -> list[dict[str, str]]:
    """The export pages of the lists, filtered as the dashboard is (the list filters of
    the region and of the period on each list's own date), and the KPI file."""
    region_filter: dict[str, str] = {}
    if query.region_code:
        level = region.level if region is not None else RegionLevel.STREET
        parameter = REGION_PARAMETERS.get(level)
        if parameter:
            region_filter[parameter] = query.region_code
    links: list[dict[str, str]] = []
    lists = (
        (
            "incidents.view_incident",
            "admin:incidents_incident_export",
            "created_at",
            _("Incidents"),
        ),
        ("incidents.view_report", "admin:incidents_report_export", "created_at", _("Reports")),
        (
            "dispatch.view_dispatchtask",
            "admin:dispatch_dispatchtask_export",
            "dispatched_at",
            _("Dispatch tasks"),
        ),
        ("sla.view_escalation", "admin:sla_escalation_export", "at", _("Escalation log")),
    )
    for permission, url_name, date_field, label in lists:
        if not user.has_perm(permission):
            continue
        params = {**region_filter, **period_filter(date_field, query.date_from, query.date_to)}
        if url_name == "admin:incidents_incident_export" and not query.include_drills:
            params["is_drill__exact"] = "0"  # the charts leave drills out
        links.append({"label": str(label), "url": f"{reverse(url_name)}?{urlencode(params)}"})
    if user.has_perm("analytics.view_kpireport"):
        kpi = {"from": query.date_from.isoformat(), "to": query.date_to.isoformat()}
        if query.region_code:
            kpi["region"] = query.region_code
        base = reverse("admin:analytics_kpireport_changelist")
        for fmt in ("csv", "xlsx"):
            links.append(
                {
                    "label": _("KPIs (%(format)s)") % {"format": fmt.upper()},
                    "url": f"{base}?{urlencode({**kpi, '_export': fmt})}",
                }
            )
    return links


def period_filter(field: str, date_from: date, date_to: date) -> dict[str, str]:
    """The list's date-time range filter (unfold's ``RangeDateTimeFilter``) for the
    Asia/Shanghai days ``date_from`` … ``date_to``, both included."""
    return {
        f"{field}_from_0": date_from.isoformat(),
        f"{field}_from_1": "00:00:00",
        f"{field}_to_0": date_to.isoformat(),
        f"{field}_to_1": "23:59:59",
    }

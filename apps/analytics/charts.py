"""The figures of the duty officer's dashboard charts, read through the KPI report.

One read path: every series is a :func:`~apps.analytics.selectors.kpi_report` (or the
heat map beside it) for the user and the dashboard's filter (region, window, drills), so
the charts mean exactly what the KPI page and the API mean, inside the same scope. This
module only picks the series out of the reports:

- ``daily``: incidents and the overall SLA compliance per day of the window;
- ``weekly``: the same per week (Monday first) over the last :data:`TREND_WEEKS` weeks up
  to the window's end (or the whole window when it is longer), with the median of the
  first-time intervals (acquire, respond, arrive) in minutes;
- ``category``: incidents and compliance per category;
- ``region``: compliance and incidents per region one level below (the children of the
  chosen region, or of the user's top regions);
- ``team``: compliance of the task clocks, tasks and the median response per team;
- ``heatmap``: incidents by street × day of the week.

Queries: five reports of a handful of statements each plus the heat map's two, whatever
the number of rows (``tests/analytics/test_charts.py`` bounds them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.utils.translation import gettext as _

from apps.analytics.forms import GroupBy, KpiQuery
from apps.analytics.selectors import (
    HeatMap,
    KpiGroup,
    KpiReportData,
    incident_heatmap,
    kpi_report,
    overall_compliance,
)

TREND_WEEKS = 12
# The first-time intervals drawn on the weekly chart: 第一时间获取 / 响应 / 到位.
FIRST_TIME_INTERVALS = ("acquire", "respond", "arrive")


class Series(TypedDict):
    labels: list[str]
    incidents: list[int | None]
    tasks: list[int]
    compliance: list[float | None]  # percent, one decimal
    medians: dict[str, list[float | None]]  # minutes, one decimal


class DashboardCharts(TypedDict):
    daily: Series
    weekly: Series
    category: Series
    region: Series
    team: Series
    heatmap: HeatMap
    totals: dict[str, Any]


def dashboard_charts(*, user: Any, query: KpiQuery, now: datetime | None = None) -> DashboardCharts:
    """Every chart of the dashboard for ``user`` and the filter ``query`` (its
    ``group_by`` is ignored: each chart has its own)."""

    def report(group_by: str, **changes: Any) -> KpiReportData:
        return kpi_report(user=user, query=replace(query, group_by=group_by, **changes), now=now)

    week_start = query.date_to - timedelta(days=query.date_to.weekday())
    weeks_from = min(query.date_from, week_start - timedelta(weeks=TREND_WEEKS - 1))
    daily = report(GroupBy.DAY)
    return {
        "daily": series(daily["groups"]),
        "weekly": series(report(GroupBy.WEEK, date_from=weeks_from)["groups"]),
        "category": series(report(GroupBy.CATEGORY)["groups"]),
        "region": series(report(GroupBy.REGION)["groups"]),
        "team": series(report(GroupBy.TEAM)["groups"]),
        "heatmap": incident_heatmap(user=user, query=query),
        "totals": {
            "incidents": (daily["total"]["incidents"] or {}).get("total", 0),
            "tasks": daily["total"]["tasks"]["total"],
            "compliance": _percent(overall_compliance(daily["total"]["sla"])),
            "label": _("All"),
        },
    }


def series(groups: list[KpiGroup]) -> Series:
    """The groups of a report as parallel lists, ready for a chart."""
    return {
        "labels": [group["label"] for group in groups],
        "incidents": [
            group["incidents"]["total"] if group["incidents"] is not None else None
            for group in groups
        ],
        "tasks": [group["tasks"]["total"] for group in groups],
        "compliance": [_percent(overall_compliance(group["sla"])) for group in groups],
        "medians": {
            name: [_minutes(group["intervals"][name]) for group in groups]
            for name in FIRST_TIME_INTERVALS
        },
    }


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def _minutes(stats: Any) -> float | None:
    if not stats or stats["median_s"] is None:
        return None
    return round(stats["median_s"] / 60, 1)

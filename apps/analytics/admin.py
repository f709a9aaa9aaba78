"""The read-only KPI page of the command-centre admin (``/admin/analytics/kpireport/``).

Registered on the table-less :class:`~apps.analytics.models.KpiReport`, so it has a menu
entry and a permission (``analytics.view_kpireport``, granted to the command-centre
roles); its only URL is the page itself. Same filters and figures as the API
(``KpiFilterForm`` → ``kpi_report``), region-scoped by the same selector: a user sees the
figures of their own subtrees only.
"""

from __future__ import annotations

from typing import Any

import tablib
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from unfold.admin import ModelAdmin

from apps.analytics.forms import KpiFilterForm
from apps.analytics.intervals import INTERVALS
from apps.analytics.models import KpiReport
from apps.analytics.selectors import KpiGroup, kpi_report
from apps.core.admin_mixins import ReadOnlyAdminMixin
from apps.core.scoping import scope_for
from apps.regions.models import Region
from apps.sla.models import SlaKind

# Regions always offered in the picker: new area, new towns and streets. Communities
# (~420) only where they are few: below the chosen street, or the caller's own.
PICKER_MAX_DEPTH = 2


def region_picker_choices(user: Any, chosen_code: str) -> list[tuple[str, str]]:
    """``(code, indented name)`` of the active regions ``user`` sees down to streets, plus
    the communities of the chosen street (or of the chosen community's street: pick a
    street, then one of its communities) and of a community officer's own scope."""
    visible = Region.objects.visible_to(user).filter(is_active=True)
    wanted = Q(depth__lte=PICKER_MAX_DEPTH)
    chosen = visible.filter(code=chosen_code).values_list("path", flat=True).first()
    if chosen_code and chosen is not None and chosen.count("/") - 2 >= PICKER_MAX_DEPTH:
        street_path = "/".join(chosen.split("/")[: PICKER_MAX_DEPTH + 2]) + "/"
        wanted |= Q(path__startswith=street_path)
    for scope_path in scope_for(user).paths:
        if scope_path.count("/") - 2 > PICKER_MAX_DEPTH:
            wanted |= Q(path__startswith=scope_path)
    regions = visible.filter(wanted).order_by("path").values_list("code", "name_zh", "depth")
    return [(code, "\u3000" * depth + name) for code, name, depth in regions]


def duration_display(seconds: float | None) -> str:
    """``1 h 05 min``, ``12 min 30 s``, ``45 s``; ``—`` when there is no value."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return _("%(h)d h %(m)02d min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)d min %(s)02d s") % {"m": minutes, "s": secs}
    return _("%(s)d s") % {"s": secs}


def rate_display(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


@admin.register(KpiReport)
class KpiReportAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """One page, no objects: the filters on top, the total and the groups below."""

    def get_urls(self) -> list[URLPattern]:
        opts = self.opts
        return [
            path(
                "",
                self.admin_site.admin_view(self.report_view),
                name=f"{opts.app_label}_{opts.model_name}_changelist",
            ),
        ]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        choices = region_picker_choices(request.user, request.GET.get("region", "").strip())
        form = KpiFilterForm(data=request.GET, region_choices=choices)
        report = None
        rows: list[dict[str, Any]] = []
        sla_rows: list[dict[str, Any]] = []
        if form.is_valid():
            report = kpi_report(user=request.user, query=form.query())
            for group in [report["total"], *report["groups"]]:
                rows.append(_row(group))
                sla_rows += _sla_rows(group)
        export = request.GET.get(EXPORT_PARAMETER, "")
        if report is not None and export in EXPORT_FORMATS:
            return kpi_export(report, rows, sla_rows, export)
        query = request.GET.copy()
        query.pop(EXPORT_PARAMETER, None)
        context = {
            **self.admin_site.each_context(request),
            "export_links": [
                (label, f"?{_with(query, fmt)}") for fmt, label in EXPORT_FORMATS.items()
            ]
            if report is not None
            else [],
            "opts": self.opts,
            "title": gettext_lazy("First-time KPIs and SLA compliance"),
            "form": form,
            "report": report,
            "intervals": INTERVALS,
            "rows": rows,
            "sla_rows": sla_rows,
        }
        return TemplateResponse(request, "admin/analytics/kpi_report.html", context)


EXPORT_PARAMETER = "_export"
EXPORT_FORMATS = {"csv": "CSV", "xlsx": "XLSX"}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _with(query: Any, fmt: str) -> str:
    query = query.copy()
    query[EXPORT_PARAMETER] = fmt
    return str(query.urlencode())


def kpi_export(
    report: Any, rows: list[dict[str, Any]], sla_rows: list[dict[str, Any]], fmt: str
) -> HttpResponse:
    """The figures on the page, as a file: the same report (scope, filters), two tables
    (intervals, SLA compliance); XLSX as two sheets, CSV as one table after the other."""
    intervals = tablib.Dataset(
        headers=[
            _("Group"),
            _("Incidents"),
            _("Tasks"),
            *[
                f"{definition.label} · {part}"
                for definition in INTERVALS
                for part in (_("count"), _("median"), _("p90"))
            ],
        ],
        title=str(_("Intervals")),
    )
    for row in rows:
        cells: list[Any] = []
        for cell in row["cells"]:
            cells += [cell["count"], cell["median"], cell["p90"]] if cell else ["", "", ""]
        incidents = row["incidents"]["total"] if row["incidents"] else ""
        intervals.append([row["label"], incidents, row["tasks"]["total"], *cells])
    sla = tablib.Dataset(
        headers=[
            _("Group"),
            _("Obligation"),
            _("Met"),
            _("Breached"),
            pgettext("sla compliance", "Pending"),
            _("Rate"),
        ],
        title=str(_("SLA compliance")),
    )
    for entry in sla_rows:
        sla.append(
            [
                entry["group"],
                entry["kind"],
                entry["met"],
                entry["breached"],
                entry["pending"],
                entry["rate"],
            ]
        )
    if fmt == "xlsx":
        content: Any = tablib.Databook([intervals, sla]).export("xlsx")
    else:
        content = "\ufeff" + intervals.export("csv") + "\r\n" + sla.export("csv")
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    name = f"kpi-{report['date_from']}-{report['date_to']}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _row(group: KpiGroup) -> dict[str, Any]:
    cells = []
    for definition in INTERVALS:
        stats = group["intervals"][definition.name]
        if stats is None:
            cells.append(None)
            continue
        cells.append(
            {
                "count": stats["count"],
                "median": duration_display(stats["median_s"]),
                "p90": duration_display(stats["p90_s"]),
                "mean": duration_display(stats["mean_s"]),
            }
        )
    return {
        "label": group["label"],
        "is_total": group["key"] == "",
        "incidents": group["incidents"],
        "tasks": group["tasks"],
        "cells": cells,
    }


def _sla_rows(group: KpiGroup) -> list[dict[str, Any]]:
    labels = dict(SlaKind.choices)
    return [
        {
            "group": group["label"],
            "kind": labels.get(entry["kind"], entry["kind"]),
            "met": entry["met"],
            "breached": entry["breached"],
            "pending": entry["pending"],
            "rate": rate_display(entry["compliance_rate"]),
        }
        for entry in group["sla"]
    ]

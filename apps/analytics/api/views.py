"""KPI API: the "first-time" intervals and SLA compliance of the caller's regions.

Access: whoever may read incidents (staff and field roles) reads their KPIs, inside the
same scope (``apps.analytics.selectors``); citizens get 403. An unknown or out-of-scope
``region`` gives an empty report, as the list filters do; bad parameters → 400
``invalid`` with ``extra.fields``.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.analytics import selectors
from apps.analytics.api.serializers import KpiReportOutput
from apps.analytics.forms import GroupBy, KpiFilterForm
from apps.core.api.schema import error_response
from apps.core.errors import ApplicationError, ErrorCode

TAG = "analytics"


class IsKpiReader(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.kpi_can_read(request.user)


KPI_PARAMETERS = [
    OpenApiParameter(
        "region",
        OpenApiTypes.STR,
        description=_(
            "Region code: this region and everything below it (intersected with my "
            "regions). Unknown or outside my regions: an empty report."
        ),
    ),
    OpenApiParameter(
        "from",
        OpenApiTypes.DATE,
        description=_("First day (Asia/Shanghai), included. Default: 29 days before 'to'."),
    ),
    OpenApiParameter(
        "to",
        OpenApiTypes.DATE,
        description=_(
            "Last day (Asia/Shanghai), included. Default: today. The window is at most 366 days."
        ),
    ),
    OpenApiParameter(
        "group_by",
        OpenApiTypes.STR,
        enum=GroupBy.values,
        description=_(
            "Groups besides the total: category, team, region (one level down), day, week, month."
        ),
    ),
    OpenApiParameter(
        "include_drills",
        OpenApiTypes.BOOL,
        description=_("Count drills too (default false)."),
    ),
]


class KpiApi(APIView):
    """Intervals and SLA compliance, in total and per group."""

    permission_classes = [IsAuthenticated, IsKpiReader]

    @extend_schema(
        tags=[TAG],
        summary=_("First-time KPIs and SLA compliance of my regions"),
        description=_(
            "Intervals (count, mean, median, p90 in seconds): acquire (first report → "
            "accepted), dispatch (accepted → first team sent), respond (task dispatched → "
            "accepted), arrive (dispatched → on scene), resolve (accepted → resolved), "
            "verify (resolved → closed). Unfinished steps are not counted. SLA compliance "
            "per kind: met, breached, pending (not counted) and the rate. Incidents by "
            "creation day, tasks by dispatch day, clocks by start day; drills excluded "
            "unless include_drills=true."
        ),
        parameters=KPI_PARAMETERS,
        responses={
            200: KpiReportOutput,
            400: error_response(_("invalid: bad parameter (extra.fields)")),
            401: error_response(_("Not logged in")),
            403: error_response(_("permission_denied: not staff or field role")),
        },
    )
    def get(self, request: Request) -> Response:
        form = KpiFilterForm(data=request.query_params)
        if not form.is_valid():
            raise ApplicationError(ErrorCode.INVALID, extra={"fields": form.errors.get_json_data()})
        report = selectors.kpi_report(user=request.user, query=form.query())
        return Response(KpiReportOutput(report).data)

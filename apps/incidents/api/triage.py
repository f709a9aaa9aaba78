"""Triage API for operators: the queue, accept / reject / mark duplicate, suggestions.

Triaging roles only (``report.triage``: operators, commanders, admins — not
department liaisons, who read reports but do not take in or turn away citizens' reports
or SOS presses; ``docs/roles.md``); every read and action is limited to the triager's
region scope, and out of scope reads as 404.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.core.pagination import CursorPagination
from apps.incidents.api.reports import (
    ReportCategoryOutput,
    ReportStaffOutput,
    error_response,
)
from apps.incidents.duplicates import duplicate_candidates
from apps.incidents.models import Incident
from apps.incidents.selectors import reports as selectors
from apps.incidents.services import reports as services

TAG = "triage"


class IsStaffMember(BasePermission):
    """Holds ``report.triage`` somewhere: operators, commanders, admins (not citizens,
    field roles or liaisons). Region scope is checked per object by the selectors and
    services (``report_triage`` again, so a liaison elsewhere is refused there too)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.report_can_triage(request.user)


class TriageCursorPagination(CursorPagination):
    """SOS first, then oldest first: the order the triage partial index serves."""

    ordering = ("-is_sos", "created_at", "id")


# --- Shapes ------------------------------------------------------------------------------


class ReportAcceptInput(serializers.Serializer):
    incident_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text=_("Link to this open incident instead of creating one."),
    )
    category = serializers.CharField(required=False, allow_blank=True, max_length=8)
    severity = serializers.ChoiceField(
        choices=Incident.Severity.choices, required=False, allow_blank=True
    )
    loop = serializers.ChoiceField(choices=Incident.Loop.choices, required=False, allow_blank=True)
    community = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text=_(
            "File the new incident at this community or village of the report's street "
            "(regions/{street}/communities/)."
        ),
    )


class ReportRejectInput(serializers.Serializer):
    reason = serializers.CharField(
        max_length=services.REASON_MAX_LENGTH, help_text=_("Shown to the citizen.")
    )


class ReportDuplicateInput(serializers.Serializer):
    incident_id = serializers.IntegerField()


class DuplicateCandidateIncidentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    category = ReportCategoryOutput()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    created_at = serializers.DateTimeField()


class DuplicateCandidateOutput(serializers.Serializer):
    incident = DuplicateCandidateIncidentOutput()
    distance_m = serializers.FloatField()
    age_hours = serializers.FloatField()
    same_category = serializers.BooleanField()
    score = serializers.FloatField(help_text=_("Lower is a more likely duplicate."))


TRIAGE_ERRORS = {
    401: error_response("not_authenticated"),
    403: error_response("permission_denied (not a triaging role: operator, commander, admin)"),
    404: error_response("report_not_found / incident_not_found (unknown or out of scope)"),
    409: error_response("report_already_triaged / merge_target_invalid / idempotency_in_progress"),
    422: error_response("idempotency_key_reused"),
}


def _staff_view(request: Request, report_id: int) -> Response:
    report = selectors.report_get_for_staff(report_id=report_id, user=request.user)
    return Response(ReportStaffOutput(report, context={"request": request}).data)


# --- Views -------------------------------------------------------------------------------


class TriageQueueApi(ListAPIView):
    """Submitted reports in my scope, SOS first, then oldest first."""

    permission_classes = (IsStaffMember,)
    serializer_class = ReportStaffOutput
    pagination_class = TriageCursorPagination

    def get_queryset(self) -> Any:
        return selectors.report_triage_queue(user=self.request.user)

    @extend_schema(
        tags=[TAG],
        summary=_("The triage queue of my regions"),
        responses={
            200: ReportStaffOutput(many=True),
            401: TRIAGE_ERRORS[401],
            403: TRIAGE_ERRORS[403],
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)


class ReportAcceptApi(APIView):
    """受理: create an accepted incident from the report, or link it to an open one."""

    permission_classes = (IsStaffMember,)

    @extend_schema(
        tags=[TAG],
        summary=_("Accept a report"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportAcceptInput,
        responses={
            200: ReportStaffOutput,
            400: error_response("invalid / category_unknown"),
            **TRIAGE_ERRORS,
        },
    )
    @idempotent
    def post(self, request: Request, report_id: int) -> Response:
        data = ReportAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        services.report_accept(
            report_id=report_id,
            by=request.user,
            incident_id=values.get("incident_id"),
            category=values.get("category") or None,
            severity=values.get("severity") or None,
            loop=values.get("loop") or None,
            community=values.get("community") or None,
        )
        return _staff_view(request, report_id)


class ReportRejectApi(APIView):
    """不予受理 with a reason the citizen sees."""

    permission_classes = (IsStaffMember,)

    @extend_schema(
        tags=[TAG],
        summary=_("Reject a report with a reason"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportRejectInput,
        responses={
            200: ReportStaffOutput,
            400: error_response("invalid (field reason)"),
            **TRIAGE_ERRORS,
        },
    )
    @idempotent
    def post(self, request: Request, report_id: int) -> Response:
        data = ReportRejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.report_reject(
            report_id=report_id, by=request.user, reason=data.validated_data["reason"]
        )
        return _staff_view(request, report_id)


class ReportDuplicateApi(APIView):
    """Mark the report a duplicate of an open incident (the citizen follows that one)."""

    permission_classes = (IsStaffMember,)

    @extend_schema(
        tags=[TAG],
        summary=_("Mark a report as a duplicate of an incident"),
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        request=ReportDuplicateInput,
        responses={200: ReportStaffOutput, 400: error_response("invalid"), **TRIAGE_ERRORS},
    )
    @idempotent
    def post(self, request: Request, report_id: int) -> Response:
        data = ReportDuplicateInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.report_mark_duplicate(
            report_id=report_id, by=request.user, incident_id=data.validated_data["incident_id"]
        )
        return _staff_view(request, report_id)


class ReportDuplicatesApi(APIView):
    """Open incidents near the report, in the same or a related category, best first."""

    permission_classes = (IsStaffMember,)

    @extend_schema(
        tags=[TAG],
        summary=_("Duplicate suggestions for a report"),
        parameters=[
            OpenApiParameter("radius_m", float, description="Override the search radius (m)."),
            OpenApiParameter("window_hours", float, description="Override the time window (h)."),
        ],
        responses={
            200: DuplicateCandidateOutput(many=True),
            400: error_response("invalid"),
            401: TRIAGE_ERRORS[401],
            403: TRIAGE_ERRORS[403],
            404: error_response("report_not_found"),
        },
    )
    def get(self, request: Request, report_id: int) -> Response:
        params = _DuplicatesQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = selectors.report_get_for_triage(report_id=report_id, user=request.user)
        candidates = duplicate_candidates(
            lat=report.lat,
            lng=report.lng,
            category=report.category,
            at=report.created_at,
            radius_m=params.validated_data.get("radius_m"),
            window_hours=params.validated_data.get("window_hours"),
            visible_to=request.user,
            exclude_ids=(report.incident_id,) if report.incident_id else (),
        )
        return Response(DuplicateCandidateOutput(candidates, many=True).data)


class _DuplicatesQuery(serializers.Serializer):
    radius_m = serializers.FloatField(required=False, min_value=1, max_value=20_000)
    window_hours = serializers.FloatField(required=False, min_value=0.1, max_value=24 * 30)

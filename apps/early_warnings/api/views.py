"""Early-warnings API: the citizen's reads, the responsible person's 叫应, the staff lists.

Composition and approval happen in the admin (through the same services); this API
reads, and acknowledges.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.accounts.permissions import Capability, can_somewhere
from apps.core.api.schema import error_response
from apps.core.authentication import LenientJWTAuthentication
from apps.core.client_address import ClientAddressThrottleMixin
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.core.pagination import CursorPagination
from apps.early_warnings import selectors, services
from apps.early_warnings.api.serializers import (
    AckOutput,
    HistoryInput,
    PendingAckOutput,
    PlaceInput,
    PublicWarningOutput,
    StaffWarningDetailOutput,
    StaffWarningOutput,
    TopicsInput,
    TopicsOutput,
)
from apps.early_warnings.models import WarningVersion
from apps.regions.models import Region
from apps.regions.selectors import locate_point

TAG = "warnings"


class WarningsPublicThrottle(ClientAddressThrottleMixin, ScopedRateThrottle):
    """Per user, else per client address."""


class CanReadWarnings(BasePermission):
    """Staff with ``warning.read`` somewhere (403 for everyone else logged in)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        return can_somewhere(request.user, Capability.WARNING_READ)


def _region(code: str) -> Region:
    region = Region.objects.filter(code=code, is_active=True).first()
    if region is None:
        raise ApplicationError(ErrorCode.NOT_FOUND, _("Unknown region."), status=404)
    return region


def _place(lat: float, lng: float) -> Region:
    location = locate_point(lat, lng)
    return location.community or location.street


class ActiveWarningsApi(APIView):
    authentication_classes = (LenientJWTAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes = (WarningsPublicThrottle,)
    throttle_scope = "warnings_public"

    @extend_schema(
        tags=[TAG],
        summary=_("Warnings in force at a place (anonymous allowed)"),
        description=_(
            "Every published warning whose target is the place's region or above it, worst "
            "level first, with its instructions. The place is a WGS84 point (routed to its "
            "street as reports are) or a region code."
        ),
        parameters=[PlaceInput],
        responses={
            200: PublicWarningOutput(many=True),
            400: error_response(_("invalid (extra.fields)")),
            404: error_response(_("not_found: unknown region")),
            422: error_response(_("point_outside_area")),
            429: error_response(_("rate_limited")),
        },
    )
    def get(self, request: Request) -> Response:
        params = PlaceInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        region = _region(data["region"]) if "lat" not in data else _place(data["lat"], data["lng"])
        warnings = selectors.warnings_active_at(region=region)
        return Response(PublicWarningOutput(warnings, many=True).data)


class HistoryPagination(CursorPagination):
    ordering = ("-ended_at", "-id")


class WarningHistoryApi(GenericAPIView):
    authentication_classes = (LenientJWTAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes = (WarningsPublicThrottle,)
    throttle_scope = "warnings_public"
    pagination_class = HistoryPagination
    serializer_class = PublicWarningOutput
    queryset = WarningVersion.objects.none()  # for the schema generator; the selector reads
    filter_backends: ClassVar[list[Any]] = []

    @extend_schema(
        tags=[TAG],
        summary=_("Recently ended warnings (anonymous allowed)"),
        parameters=[HistoryInput],
        responses={
            200: PublicWarningOutput(many=True),
            400: error_response(_("invalid (extra.fields)")),
            404: error_response(_("not_found: unknown region")),
            429: error_response(_("rate_limited")),
        },
    )
    def get(self, request: Request) -> Response:
        params = HistoryInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        code = params.validated_data.get("region")
        region = _region(code) if code else None
        page = self.paginate_queryset(selectors.warnings_history(region=region))
        return self.get_paginated_response(PublicWarningOutput(page, many=True).data)


class WarningTopicsApi(APIView):
    authentication_classes = (LenientJWTAuthentication,)
    permission_classes = (AllowAny,)
    throttle_classes = (WarningsPublicThrottle,)
    throttle_scope = "warnings_public"

    @extend_schema(
        tags=[TAG],
        summary=_("The FCM topics a device subscribes to (anonymous allowed)"),
        description=_(
            "The topics region-<code> of the street (or community) of the device's last "
            "known location and of its home region, and of every region above them. A "
            "warning is sent to the topics of its target regions, so a device subscribed "
            "this way gets the warnings of every region it is in."
        ),
        parameters=[TopicsInput],
        responses={
            200: TopicsOutput,
            400: error_response(_("invalid (extra.fields)")),
            404: error_response(_("not_found: unknown home region")),
            422: error_response(_("point_outside_area")),
            429: error_response(_("rate_limited")),
        },
    )
    def get(self, request: Request) -> Response:
        params = TopicsInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        regions: list[Region] = []
        if "home_region" in data:
            regions.append(_region(data["home_region"]))
        if "lat" in data:
            regions.append(_place(data["lat"], data["lng"]))
        return Response(
            TopicsOutput(
                {
                    "topics": selectors.topics_for(regions),
                    "regions": [region.code for region in regions],
                }
            ).data
        )


class MyPendingAcksApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary=_("Warnings I still have to acknowledge (叫应)"),
        responses={200: PendingAckOutput(many=True), 401: error_response(_("not_authenticated"))},
    )
    def get(self, request: Request) -> Response:
        rows = selectors.my_pending_acks(user=request.user).prefetch_related(
            "version__targets__region"
        )
        return Response(PendingAckOutput(rows, many=True).data)


class WarningAckApi(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary=_("Acknowledge a warning (叫应)"),
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: AckOutput,
            401: error_response(_("not_authenticated")),
            404: error_response(_("warning_ack_not_found: not addressed to me")),
            409: error_response(
                _("warning_not_active (extra.current_id: the update to answer instead)")
            ),
            422: error_response(_("idempotency_key_reused")),
        },
    )
    @idempotent
    def post(self, request: Request, warning_id: int) -> Response:
        ack = services.warning_acknowledge(version_id=warning_id, user=request.user)
        return Response(AckOutput(ack).data)


class StaffPagination(CursorPagination):
    ordering = ("-created_at", "-id")


class WarningListApi(GenericAPIView):
    permission_classes = (CanReadWarnings,)
    pagination_class = StaffPagination
    serializer_class = StaffWarningOutput
    queryset = WarningVersion.objects.none()  # for the schema generator; the selector scopes
    filter_backends: ClassVar[list[Any]] = []

    @extend_schema(
        tags=[TAG],
        summary=_("Warnings of my regions (every version), newest first"),
        responses={
            200: StaffWarningOutput(many=True),
            401: error_response(_("not_authenticated")),
            403: error_response(_("permission_denied: no warning.read")),
        },
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.warning_list(user=request.user))
        return self.get_paginated_response(StaffWarningOutput(page, many=True).data)


class WarningDetailApi(APIView):
    permission_classes = (CanReadWarnings,)

    @extend_schema(
        tags=[TAG],
        summary=_("A warning version with its acknowledgement board"),
        parameters=[OpenApiParameter("warning_id", int, OpenApiParameter.PATH)],
        responses={
            200: StaffWarningDetailOutput,
            401: error_response(_("not_authenticated")),
            403: error_response(_("permission_denied: no warning.read")),
            404: error_response(_("warning_not_found: unknown, or outside my regions")),
        },
    )
    def get(self, request: Request, warning_id: int) -> Response:
        version = selectors.warning_get(user=request.user, version_id=warning_id)
        board = selectors.ack_board(version=version)
        return Response(StaffWarningDetailOutput(version, context={"board": board}).data)

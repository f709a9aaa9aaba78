"""Region API: the visible tree, a scoped list and detail, and point → street lookup.

Views parse input, call one selector and serialise (conventions R7). Visibility is the one
scope rule (``Region.objects.visible_to``): a region outside the caller's scope answers
404 exactly like an unknown code, so the API never confirms what it will not show.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.core.api.schema import error_response
from apps.core.client_address import ClientAddressThrottleMixin
from apps.core.pagination import CursorPagination
from apps.regions import selectors
from apps.regions.api.serializers import (
    RegionDetailOutputSerializer,
    RegionLookupInputSerializer,
    RegionLookupOutputSerializer,
    RegionOutputSerializer,
    RegionTreeNodeSerializer,
)
from apps.regions.models import Management, Region, RegionKind, RegionLevel

TAG = "regions"


class RegionTreeApi(APIView):
    OutputSerializer = RegionTreeNodeSerializer

    @extend_schema(
        tags=[TAG],
        summary=_("The region subtrees visible to me, nested"),
        description=_(
            "Active regions only. A user with no staff or field membership (a citizen) "
            "gets an empty list."
        ),
        responses={
            200: RegionTreeNodeSerializer(many=True),
            401: error_response(_("Not logged in")),
        },
    )
    def get(self, request: Request) -> Response:
        # The selector already builds the documented shape (RegionTreeNode TypedDicts);
        # running DRF's recursive serializer over it cost ~47% of the request in the
        # benchmark (a new child serializer and a field deep-copy per node), so the
        # serializer documents the schema and tests pin that both agree.
        return Response(selectors.region_tree(request.user))


class RegionFilter(django_filters.FilterSet):
    level = django_filters.ChoiceFilter(choices=RegionLevel.choices)
    kind = django_filters.ChoiceFilter(choices=RegionKind.choices)
    management = django_filters.ChoiceFilter(choices=Management.choices)
    parent = django_filters.CharFilter(
        field_name="parent__code", help_text=_("Code of the parent region")
    )
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Region
        fields = ("level", "kind", "management", "parent", "is_active")


class RegionPagination(CursorPagination):
    ordering = ("path",)  # tree order; path is unique, so cursors are stable


@extend_schema(tags=[TAG])
class RegionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Regions visible to the caller; ``{code}`` addresses one."""

    lookup_field = "code"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    filterset_class = RegionFilter
    pagination_class = RegionPagination
    serializer_class = RegionOutputSerializer
    queryset = Region.objects.none()  # for the schema generator; get_queryset scopes

    def get_queryset(self) -> Any:
        return selectors.region_list(user=self.request.user)

    def get_serializer_class(self) -> type[serializers.Serializer]:
        if self.action == "retrieve":
            return RegionDetailOutputSerializer
        return RegionOutputSerializer

    @extend_schema(
        summary=_("Regions visible to me, in tree order"),
        responses={
            200: RegionOutputSerializer(many=True),
            400: error_response(_("Invalid filter")),
            401: error_response(_("Not logged in")),
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary=_("One region with its breadcrumb"),
        responses={
            200: RegionDetailOutputSerializer,
            401: error_response(_("Not logged in")),
            404: error_response(_("Unknown, or outside my regions")),
        },
    )
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        region = self.get_object()
        region.ancestors = list(selectors.region_ancestors(region))  # type: ignore[attr-defined]
        return Response(RegionDetailOutputSerializer(region).data)


class RegionLookupThrottle(ClientAddressThrottleMixin, ScopedRateThrottle):
    """Per user; an anonymous caller (none today: the view needs a login) per address."""


class RegionLookupApi(APIView):
    """Which street is responsible for a point: citizens' reports, alarms, positions."""

    throttle_classes = [RegionLookupThrottle]
    throttle_scope = "region_lookup"
    InputSerializer = RegionLookupInputSerializer
    OutputSerializer = RegionLookupOutputSerializer

    @extend_schema(
        tags=[TAG],
        summary=_("Find the street responsible for a WGS84 point"),
        description=_(
            "Inside a street's boundary wins; otherwise the street with the nearest centre. "
            "Street geometry is estimated for now: the answer says so."
        ),
        parameters=[RegionLookupInputSerializer],
        responses={
            200: RegionLookupOutputSerializer,
            400: error_response(_("lat/lng missing or invalid (extra.fields)")),
            401: error_response(_("Not logged in")),
            422: error_response(_("point_outside_area: the point is outside the new area")),
            429: error_response(_("Too many lookups")),
        },
    )
    def get(self, request: Request) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        location = selectors.locate_point(
            params.validated_data["lat"], params.validated_data["lng"]
        )
        return Response(self.OutputSerializer(location).data)

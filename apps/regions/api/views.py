"""Region API: the visible tree, a scoped list and detail, and point → street lookup.

Views parse input, call one selector and serialise (conventions R7). Visibility is the one
scope rule (``Region.objects.visible_to``): a region outside the caller's scope answers
404 exactly like an unknown code, so the API never confirms what it will not show.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q
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
    RegionCommunitiesInputSerializer,
    RegionCommunitySerializer,
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
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=50,
        help_text=_("Part of the Chinese, English or NBS name, or of the code"),
    )
    level = django_filters.ChoiceFilter(choices=RegionLevel.choices)
    kind = django_filters.ChoiceFilter(choices=RegionKind.choices)
    management = django_filters.ChoiceFilter(choices=Management.choices)
    parent = django_filters.CharFilter(
        field_name="parent__code", help_text=_("Code of the parent region")
    )
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Region
        fields = ("q", "level", "kind", "management", "parent", "is_active")

    def filter_q(self, queryset: Any, name: str, value: str) -> Any:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name_zh__icontains=value)
            | Q(name_en__icontains=value)
            | Q(nbs_name__icontains=value)
            | Q(code__icontains=value)
        )


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


class RegionCommunitiesApi(APIView):
    """社区/村 of a street to choose from: a report is routed to its street."""

    throttle_classes = [RegionLookupThrottle]
    throttle_scope = "region_lookup"
    InputSerializer = RegionCommunitiesInputSerializer
    OutputSerializer = RegionCommunitySerializer

    @extend_schema(
        tags=[TAG],
        summary=_("The communities and villages of a street, searchable by name"),
        description=_(
            "Reports and incidents are routed to the street responsible for their location "
            "(regions/lookup/); the community or village is chosen by the reporter or the "
            "operator from this list. Active communities (社区) and villages (村) only, "
            "communities first, in NBS code order. Public reference data: any logged-in "
            "user may read it, whatever their regions."
        ),
        parameters=[RegionCommunitiesInputSerializer],
        responses={
            200: RegionCommunitySerializer(many=True),
            400: error_response(_("q too long (extra.fields)")),
            401: error_response(_("Not logged in")),
            404: error_response(_("not_found: no active street with this code")),
            429: error_response(_("Too many lookups")),
        },
    )
    def get(self, request: Request, code: str) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        communities = selectors.street_communities(
            street_code=code, q=params.validated_data.get("q", "")
        )
        return Response(self.OutputSerializer(communities, many=True).data)


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

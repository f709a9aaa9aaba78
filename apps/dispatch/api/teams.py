"""Team API: scoped team list and detail, recommendations for an incident, and the
responder's own duty toggle and team.

Access: staff and field roles read teams inside their scope (out of scope → 404 like an
unknown code); recommendations need command of the incident (operator, commander or
admin covering its region; an incident outside the caller's scope is 404, one they may
only read is 403). ``me/…`` endpoints are for any logged-in team member.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.audit.personal import audit_personal_read
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.core.pagination import CursorPagination
from apps.dispatch.models import Team, TeamKind, TeamStatus
from apps.dispatch.recommendation import LIMIT_MAX, Recommendation, recommend_teams
from apps.dispatch.selectors import teams as selectors
from apps.dispatch.services import teams as services
from apps.incidents.selectors import incidents as incident_selectors

TAG = "teams"

# Its own component name: spectacular refuses two classes under one name.
ErrorOutput = inline_serializer(
    name="TeamErrorEnvelope",
    fields={
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "extra": serializers.DictField(),
    },
)


def _error(description: Any) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorOutput, description=description)


COMMON_ERRORS = {
    401: _error(_("Not logged in")),
    403: _error(_("permission_denied: not staff or field role")),
    404: _error(_("team_not_found / not_found: unknown, or outside my regions")),
}


class IsTeamReader(BasePermission):
    """Staff and field roles (in some region) may read teams; citizens may not."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.team_can_read(request.user)


# --- Output --------------------------------------------------------------------------------


class TeamRegionOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()


class TeamDepartmentOutput(serializers.Serializer):
    code = serializers.CharField()
    name_zh = serializers.CharField()
    kind = serializers.CharField()


class TeamBriefOutput(serializers.Serializer):
    """A team as recommendations show it."""

    id = serializers.IntegerField(
        help_text=_("The id that incidents/{id}/dispatch/ takes in team_ids.")
    )
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=TeamKind.choices)
    status = serializers.ChoiceField(choices=TeamStatus.choices)
    department = TeamDepartmentOutput(allow_null=True)
    home_region = TeamRegionOutput()
    capabilities = serializers.ListField(child=serializers.CharField())
    equipment = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Equipment name → count, e.g. 移动泵车: 2.")
    )


class TeamOutput(TeamBriefOutput):
    """A team in lists."""

    last_lat = serializers.FloatField(allow_null=True)
    last_lng = serializers.FloatField(allow_null=True)
    last_position_at = serializers.DateTimeField(
        allow_null=True,
        help_text=_("Time of the last GPS fix; null: the position is the home region centre."),
    )
    is_active = serializers.BooleanField()
    live_tasks = serializers.IntegerField()
    members_on_duty = serializers.IntegerField()


class TeamMemberOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    name = serializers.CharField(source="user.__str__")
    phone = serializers.CharField(source="user.phone", allow_null=True)
    is_leader = serializers.BooleanField()
    on_duty = serializers.BooleanField()
    on_duty_since = serializers.DateTimeField(allow_null=True)


class TeamDetailOutput(TeamOutput):
    members = TeamMemberOutput(many=True, source="active_members")


# --- Teams ---------------------------------------------------------------------------------


class TeamPagination(CursorPagination):
    ordering = ("code",)


class TeamListApi(GenericAPIView):
    """Teams based in my regions, by code."""

    permission_classes = [IsAuthenticated, IsTeamReader]
    pagination_class = TeamPagination
    filterset_class = selectors.TeamFilter
    serializer_class = TeamOutput
    queryset = Team.objects.none()  # for the schema generator; the selector scopes

    def filter_queryset(self, queryset: Any) -> Any:
        return queryset  # the selector filtered (and validated) already

    @extend_schema(
        tags=[TAG],
        summary=_("Teams in my regions"),
        responses={200: TeamOutput(many=True), 400: _error(_("invalid filter")), **COMMON_ERRORS},
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.team_list(user=request.user, filters=request.query_params)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(TeamOutput(page, many=True).data)


class TeamDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsTeamReader]

    @extend_schema(
        tags=[TAG],
        summary=_("One team with its members, equipment and live task count"),
        responses={200: TeamDetailOutput, **COMMON_ERRORS},
    )
    def get(self, request: Request, code: str) -> Response:
        team = selectors.team_get(user=request.user, code=code)
        data = TeamDetailOutput(team).data
        audit_personal_read(  # members' phone numbers: audited
            request,
            object_type="accounts.user",
            object_ids=[m["user_id"] for m in data["members"] if m.get("phone")],
            fields=("phone",),
        )
        return Response(data)


# --- Recommendations -----------------------------------------------------------------------


class CapabilityMatchOutput(serializers.Serializer):
    required = serializers.ListField(child=serializers.CharField())
    matched = serializers.ListField(child=serializers.CharField())
    missing = serializers.ListField(child=serializers.CharField())
    preferred_matched = serializers.ListField(child=serializers.CharField())
    preferred_missing = serializers.ListField(child=serializers.CharField())


class ReasonOutput(serializers.Serializer):
    code = serializers.CharField(
        help_text=_(
            "capability_match, capability_missing, capability_any, preferred_match, "
            "preferred_missing, distance, position_fix, position_home_region, "
            "position_unknown, status_<status>, load"
        )
    )
    detail = serializers.CharField()


class RecommendationOutput(serializers.Serializer):
    rank = serializers.IntegerField()
    team = TeamBriefOutput()
    score = serializers.FloatField(help_text=_("0-1100; 1000 × share of required capabilities"))
    distance_km = serializers.FloatField(allow_null=True)
    eta_minutes = serializers.FloatField(allow_null=True)
    effective_minutes = serializers.FloatField(
        help_text=_("ETA plus penalties for being busy, load and missing preferred tags")
    )
    load = serializers.IntegerField(help_text=_("Live tasks of the team"))
    position = serializers.ChoiceField(choices=["fix", "home_region", "unknown"])
    position_at = serializers.DateTimeField(allow_null=True)
    capability_match = CapabilityMatchOutput()
    reasons = ReasonOutput(many=True)


class RecommendationsOutput(serializers.Serializer):
    incident = serializers.IntegerField()
    category = serializers.CharField()
    results = RecommendationOutput(many=True)


def _recommendation_data(rank: int, item: Recommendation) -> dict[str, Any]:
    match = item.capability_match
    return {
        "rank": rank,
        "team": item.team,
        "score": item.score,
        "distance_km": item.distance_km,
        "eta_minutes": item.eta_minutes,
        "effective_minutes": item.effective_minutes,
        "load": item.load,
        "position": item.position,
        "position_at": item.position_at,
        "capability_match": {
            "required": list(match.required),
            "matched": list(match.matched),
            "missing": list(match.missing),
            "preferred_matched": list(match.preferred_matched),
            "preferred_missing": list(match.preferred_missing),
        },
        "reasons": item.reasons,
    }


class IncidentRecommendationsApi(APIView):
    """Teams to send, best first, with the reasons."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        limit = serializers.IntegerField(min_value=1, max_value=LIMIT_MAX, default=5)

    @extend_schema(
        tags=[TAG],
        summary=_("Recommended teams for an incident"),
        description=_(
            "Ranked by capability for the incident's category, then by ETA with "
            "penalties for being busy and for load. Teams of the whole new area are "
            "considered; the caller must be able to command the incident."
        ),
        parameters=[OpenApiParameter("limit", int, description=_("1-50, default 5"))],
        responses={
            200: RecommendationsOutput,
            400: _error(_("invalid")),
            401: COMMON_ERRORS[401],
            403: _error(_("permission_denied: may not command this incident")),
            404: _error(_("not_found: unknown incident, or outside my regions")),
        },
    )
    def get(self, request: Request, incident_id: int) -> Response:
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        incident = incident_selectors.incident_get(user=request.user, incident_id=incident_id)
        if not incident_selectors.incident_can_command(request.user, incident):
            raise PermissionDenied
        items = recommend_teams(incident=incident, limit=params.validated_data["limit"])
        data = {
            "incident": incident.pk,
            "category": incident.category.code,
            "results": [_recommendation_data(i, item) for i, item in enumerate(items, 1)],
        }
        return Response(RecommendationsOutput(data).data)


# --- Me: duty and my team ------------------------------------------------------------------


class DutyInput(serializers.Serializer):
    on_duty = serializers.BooleanField()
    team = serializers.SlugField(
        required=False,
        help_text=_("Team code; needed only when I belong to several teams."),
    )


class DutyTeamOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=TeamStatus.choices)


class DutyOutput(serializers.Serializer):
    team = DutyTeamOutput()
    on_duty = serializers.BooleanField()
    on_duty_since = serializers.DateTimeField(allow_null=True)
    is_leader = serializers.BooleanField()


class MyDutyApi(APIView):
    """A responder goes on or off duty (上岗/下岗); the team's status follows."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        summary=_("Go on or off duty"),
        request=DutyInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: DutyOutput,
            400: _error(_("invalid (several teams: say which)")),
            401: COMMON_ERRORS[401],
            403: _error(_("not_team_member")),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = DutyInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = services.team_set_duty(
            user=request.user,
            on_duty=data.validated_data["on_duty"],
            team_code=data.validated_data.get("team") or None,
        )
        return Response(DutyOutput(member).data)


class MyTeamsApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        tags=[TAG],
        summary=_("My team(s), with members and duty"),
        responses={200: TeamDetailOutput(many=True), 401: COMMON_ERRORS[401]},
    )
    def get(self, request: Request) -> Response:
        teams = selectors.team_list_mine(user=request.user)
        return Response(TeamDetailOutput(teams, many=True).data)

"""Positions API: responders' GPS batches, incident track replay, the live map feed.

- ``POST me/positions/`` — a responder's phone sends fixes in batches (offline-collected
  points keep their own times); duplicates are ignored, bad points refused one by one.
- ``GET incidents/{id}/tracks/`` — replay (人和物轨迹追踪回溯) of the teams on an incident.
- ``GET positions/latest/`` — last known positions in my regions, with their age.

Reads are for staff roles (operator, commander, department liaison, admin) inside their
regions: citizens and field roles get 403, an incident outside my regions 404. Replay
and map answers are built as plain dicts by the selectors and rendered directly: a
replay can hold tens of thousands of points, which per-point serializer fields would
make the slowest part of the request. The serializers below document their shape.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.parsers import SafeJSONParser
from apps.core.api.schema import error_responses
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.idempotency import IDEMPOTENCY_KEY_PARAMETER, idempotent
from apps.dispatch.errors import DispatchErrorCode
from apps.dispatch.selectors import positions as selectors
from apps.dispatch.services import positions as services
from apps.incidents.selectors.incidents import incident_get

TAG = "positions"


class CanReadPositions(BasePermission):
    """Staff roles in some region; citizens and responders may not."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.positions_can_read(request.user)


# --- POST me/positions/ ------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "description": "epoch milliseconds"},
            {"type": "string", "format": "date-time"},
        ]
    }
)
class PingTimeField(serializers.Field):
    """Epoch milliseconds or an ISO 8601 time with offset (documentation only)."""


class PingInput(serializers.Serializer):
    t = PingTimeField(
        help_text=_("When the fix was taken: epoch milliseconds or ISO 8601 with offset.")
    )
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lng = serializers.FloatField(min_value=-180, max_value=180)
    accuracy = serializers.FloatField(
        required=False, allow_null=True, min_value=0, help_text=_("Horizontal accuracy, metres.")
    )


class PingBatchInput(serializers.Serializer):
    """Documentation only: points are checked one by one (see the view)."""

    points = PingInput(many=True)


class PingRejectionOutput(serializers.Serializer):
    index = serializers.IntegerField(help_text=_("Position of the point in the batch."))
    code = serializers.ChoiceField(choices=[(c.value, c.value) for c in services.PingRejection])
    message = serializers.CharField()


class PingBatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField(help_text=_("New points stored."))
    duplicates = serializers.IntegerField(help_text=_("Points already stored (same time)."))
    rejected = serializers.IntegerField(help_text=_("Points refused; see rejections."))
    rejections = PingRejectionOutput(many=True)


class PositionBatchApi(APIView):
    """A responder's GPS fixes, in batches."""

    permission_classes = [IsAuthenticated]
    parser_classes = [SafeJSONParser]

    @extend_schema(
        tags=[TAG],
        summary=_("Send my GPS fixes (a batch, possibly collected offline)"),
        description=_(
            "Every point keeps its own time `t` (epoch ms or ISO 8601 with offset); "
            "points may come late and in any order. A point whose time is already "
            "stored counts as a duplicate and changes nothing, so resending a batch is "
            "safe. A bad point is refused on its own (`rejections`, by index); the "
            "others are stored before the answer is sent, so the app may drop them "
            "then. At most `DISPATCH_PING_MAX_BATCH` points per batch (500)."
        ),
        request=PingBatchInput,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: PingBatchOutput,
            **error_responses(400, 401, 403),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = request.data
        items = data.get("points") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise serializers.ValidationError({"points": [_("A list of points is required.")]})
        max_batch = services.setting("DISPATCH_PING_MAX_BATCH")
        if len(items) > max_batch:
            raise ApplicationError(
                DispatchErrorCode.PINGS_INVALID,
                _("A batch holds at most %(max)s points; send it in parts.") % {"max": max_batch},
                extra={"max_batch": max_batch, "count": len(items)},
            )
        pings, parse_rejections = services.pings_parse(items)
        result = services.pings_ingest(user=request.user, points=pings)
        rejections = sorted([*parse_rejections, *result.rejected], key=lambda r: r.index)
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": len(rejections),
                "rejections": [
                    {"index": r.index, "code": str(r.code), "message": str(r.message)}
                    for r in rejections
                ],
            }
        )


# --- GET incidents/{id}/tracks/ --------------------------------------------------------------


class TrackReplayQuery(serializers.Serializer):
    since = serializers.DateTimeField(
        required=False,
        help_text=_(
            "Window start (default: the incident's creation, at most the maximum window "
            "before `until`)."
        ),
    )
    until = serializers.DateTimeField(required=False, help_text=_("Window end (default: now)."))
    team = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text=_("Only these team ids.")
    )
    user = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text=_("Only these responders.")
    )


class ReplayPointOutput(serializers.Serializer):
    t = serializers.DateTimeField()
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    accuracy = serializers.FloatField(allow_null=True, help_text=_("Metres."))


class ReplayResponderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    points = ReplayPointOutput(many=True)


class ReplayWindowOutput(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class ReplayTeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    windows = ReplayWindowOutput(many=True, help_text=_("When the team had a task on it."))
    responders = ReplayResponderOutput(many=True)


class TrackReplayOutput(serializers.Serializer):
    incident = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    teams = ReplayTeamOutput(many=True)


class IncidentTracksApi(APIView):
    """Track replay of an incident's teams."""

    permission_classes = [IsAuthenticated, CanReadPositions]

    @extend_schema(
        tags=[TAG],
        summary=_("Replay the tracks of the teams on an incident"),
        description=_(
            "Per team that had a task on the incident (not declined or expired): the "
            "windows it was on it and its responders' points inside them, in time order. "
            "The window is at most `DISPATCH_TRACK_REPLAY_MAX_HOURS` long (24)."
        ),
        parameters=[TrackReplayQuery],
        responses={200: TrackReplayOutput, **error_responses(400, 401, 403, 404)},
    )
    def get(self, request: Request, incident_id: int) -> Response:
        query = TrackReplayQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        incident = incident_get(user=request.user, incident_id=incident_id)
        if not selectors.positions_can_read_incident(request.user, incident):
            raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
        max_span = timedelta(hours=services.setting("DISPATCH_TRACK_REPLAY_MAX_HOURS"))
        until = values.get("until") or timezone.now()
        since = values.get("since") or max(incident.created_at, until - max_span)
        if since >= until or until - since > max_span:
            raise serializers.ValidationError(
                {
                    "since": [
                        _("The window must be positive and at most %(hours)s hours.")
                        % {"hours": int(max_span.total_seconds() // 3600)}
                    ]
                }
            )
        replay = selectors.track_replay(
            incident=incident,
            since=since,
            until=until,
            team_ids=values.get("team") or None,
            user_ids=values.get("user") or None,
        )
        return Response(replay)


# --- GET positions/latest/ ---------------------------------------------------------------------


class LatestPositionsQuery(serializers.Serializer):
    region = serializers.CharField(
        required=False, help_text=_("Region code: only this subtree of my regions.")
    )
    max_age_minutes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=366 * 24 * 60,  # a year: positions are kept far shorter anyway
        help_text=_("Leave out fixes older than this."),
    )


class MapTeamRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class MapResponderOutput(serializers.Serializer):
    user = serializers.IntegerField()
    name = serializers.CharField()
    team = MapTeamRefOutput(allow_null=True)
    lat = serializers.FloatField()
    lng = serializers.FloatField()
    accuracy = serializers.FloatField(allow_null=True)
    recorded_at = serializers.DateTimeField(help_text=_("When the phone took the fix."))
    received_at = serializers.DateTimeField()
    age_s = serializers.IntegerField(help_text=_("Seconds since the fix."))


class MapTeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    lat = serializers.FloatField(allow_null=True)
    lng = serializers.FloatField(allow_null=True)
    recorded_at = serializers.DateTimeField()
    age_s = serializers.IntegerField()


class MapFeedOutput(serializers.Serializer):
    at = serializers.DateTimeField(help_text=_("Server time the ages are counted from."))
    responders = MapResponderOutput(many=True)
    teams = MapTeamOutput(many=True)


class LatestPositionsApi(APIView):
    """The live map: last known positions in my regions."""

    permission_classes = [IsAuthenticated, CanReadPositions]

    @extend_schema(
        tags=[TAG],
        summary=_("Last known positions of responders and teams in my regions"),
        parameters=[LatestPositionsQuery],
        responses={200: MapFeedOutput, **error_responses(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        query = LatestPositionsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        minutes = query.validated_data.get("max_age_minutes")
        feed = selectors.last_positions(
            user=request.user,
            region=query.validated_data.get("region"),
            max_age=timedelta(minutes=minutes) if minutes else None,
        )
        return Response(feed)

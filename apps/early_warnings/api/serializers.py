"""Input and output shapes of the early-warnings API."""

from __future__ import annotations

import math
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.early_warnings.models import (
    AckChannel,
    MsgType,
    PersonRole,
    WarningLevel,
    WarningStatus,
    WarningType,
    WarningVersion,
)


class PlaceInput(serializers.Serializer):
    """A place: a WGS84 point, or a region code."""

    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)
    region = serializers.SlugField(
        required=False, max_length=40, help_text=_("A region code (instead of lat/lng).")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_point = "lat" in attrs or "lng" in attrs
        if has_point and not ("lat" in attrs and "lng" in attrs):
            raise serializers.ValidationError({"lng": [_("Give both lat and lng.")]})
        if has_point:
            bad = {
                name: [_("Must be a finite number.")]
                for name in ("lat", "lng")
                if not math.isfinite(attrs[name])
            }
            if bad:
                raise serializers.ValidationError(bad)
        if not has_point and "region" not in attrs:
            raise serializers.ValidationError(
                {"region": [_("Give a region code, or lat and lng.")]}
            )
        return attrs


class HistoryInput(serializers.Serializer):
    region = serializers.SlugField(required=False, max_length=40)


class TopicsInput(serializers.Serializer):
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lng = serializers.FloatField(required=False, min_value=-180, max_value=180)
    home_region = serializers.SlugField(
        required=False, max_length=40, help_text=_("The code of the device's home region.")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_point = "lat" in attrs or "lng" in attrs
        if has_point and not ("lat" in attrs and "lng" in attrs):
            raise serializers.ValidationError({"lng": [_("Give both lat and lng.")]})
        if has_point and not all(math.isfinite(attrs[name]) for name in ("lat", "lng")):
            raise serializers.ValidationError({"lat": [_("Must be a finite number.")]})
        if not has_point and "home_region" not in attrs:
            raise serializers.ValidationError(
                {"home_region": [_("Give a home region, or lat and lng.")]}
            )
        return attrs


class TopicsOutput(serializers.Serializer):
    topics = serializers.ListField(
        child=serializers.CharField(),
        help_text=_("FCM topics to subscribe to: each place's region and every ancestor."),
    )
    regions = serializers.ListField(
        child=serializers.CharField(), help_text=_("The region codes the places resolved to.")
    )


class TargetOutput(serializers.Serializer):
    code = serializers.CharField(source="region.code")
    name = serializers.CharField(source="region.name_zh")
    level = serializers.CharField(source="region.level")


class PublicWarningOutput(serializers.Serializer):
    """A warning as the public sees it: content, level, instructions, times, targets."""

    id = serializers.IntegerField()
    chain_id = serializers.IntegerField()
    identifier = serializers.CharField(allow_null=True)
    msg_type = serializers.ChoiceField(choices=MsgType.choices)
    status = serializers.ChoiceField(choices=WarningStatus.choices)
    warning_type = serializers.ChoiceField(choices=WarningType.choices)
    warning_type_label = serializers.CharField(source="get_warning_type_display")
    level = serializers.ChoiceField(choices=WarningLevel.choices)
    level_label = serializers.CharField(source="get_level_display")
    title = serializers.CharField()
    description = serializers.CharField()
    instruction = serializers.CharField()
    title_en = serializers.CharField()
    description_en = serializers.CharField()
    instruction_en = serializers.CharField()
    onset = serializers.DateTimeField()
    expires = serializers.DateTimeField()
    sent = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    targets = TargetOutput(many=True)


class PendingAckOutput(serializers.Serializer):
    id = serializers.IntegerField()
    warning = PublicWarningOutput(source="version")
    region = serializers.CharField(source="region.code")
    role = serializers.ChoiceField(choices=PersonRole.choices)
    asked_at = serializers.DateTimeField(source="created_at")


class AckOutput(serializers.Serializer):
    id = serializers.IntegerField()
    warning_id = serializers.IntegerField(source="version_id")
    acked_at = serializers.DateTimeField()
    channel = serializers.ChoiceField(choices=AckChannel.choices)


class AckBoardRowOutput(serializers.Serializer):
    id = serializers.IntegerField()
    user_id = serializers.IntegerField()
    name = serializers.SerializerMethodField()
    region = serializers.CharField(source="region.code")
    region_name = serializers.CharField(source="region.name_zh")
    role = serializers.ChoiceField(choices=PersonRole.choices)
    acked_at = serializers.DateTimeField(allow_null=True)
    channel = serializers.CharField()

    @extend_schema_field(OpenApiTypes.STR)
    def get_name(self, row: Any) -> str:
        return str(row.user)


class AckBoardOutput(serializers.Serializer):
    acked = serializers.IntegerField()
    silent = serializers.IntegerField()
    rows = AckBoardRowOutput(many=True)


class StaffWarningOutput(PublicWarningOutput):
    source = serializers.CharField()
    sender = serializers.CharField()
    references = serializers.JSONField()
    upstream_sender = serializers.CharField()
    upstream_identifier = serializers.CharField()
    incident_id = serializers.IntegerField(allow_null=True)
    sensor_alarm_ref = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    rejection_reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class StaffWarningDetailOutput(StaffWarningOutput):
    board = serializers.SerializerMethodField()

    @extend_schema_field(AckBoardOutput)
    def get_board(self, version: WarningVersion) -> dict[str, Any]:
        board = self.context["board"]
        return AckBoardOutput(board).data

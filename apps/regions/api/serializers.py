"""Region API shapes: plain serializers (conventions R7), named for the OpenAPI components.

Views alias them as ``InputSerializer``/``OutputSerializer``; the unique class names keep
the schema's component names unique.
"""

from __future__ import annotations

import math
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.regions.models import (
    Confidence,
    Management,
    Region,
    RegionKind,
    RegionLevel,
    UrbanRural,
)
from apps.regions.selectors import COMMUNITY_QUERY_MAX_LENGTH, LocateMethod


class RoundedFloatField(serializers.FloatField):
    """Kilometres to the metre: more digits would claim a precision the estimates lack."""

    def to_representation(self, value: float) -> float:
        return round(float(value), 3)


class RegionCentreSerializer(serializers.Serializer):
    lat = serializers.FloatField(help_text=_("WGS84 latitude"))
    lng = serializers.FloatField(help_text=_("WGS84 longitude"))


def _centre(region: Region) -> dict[str, float] | None:
    if region.centre_lat is None or region.centre_lng is None:
        return None
    return {"lat": region.centre_lat, "lng": region.centre_lng}


class RegionSummarySerializer(serializers.Serializer):
    """A breadcrumb entry: enough to name and link a region."""

    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    level = serializers.ChoiceField(choices=RegionLevel.choices)
    kind = serializers.ChoiceField(choices=RegionKind.choices)
    path = serializers.CharField()


class RegionOutputSerializer(RegionSummarySerializer):
    """A region in a list."""

    parent_code = serializers.CharField(allow_null=True)
    depth = serializers.IntegerField()
    nbs_code = serializers.CharField(
        help_text=_("NBS statistical code (of the source year), or empty")
    )
    nbs_name = serializers.CharField(help_text=_("Name in the NBS table, verbatim, or empty"))
    urban_rural = serializers.ChoiceField(
        choices=[("", ""), *UrbanRural.choices],
        help_text=_("NBS urban–rural class of a community or village, or empty"),
    )
    source_year = serializers.IntegerField(
        allow_null=True, help_text=_("Year of the table the NBS code, name and class come from")
    )
    legacy_district = serializers.CharField()
    management = serializers.ChoiceField(choices=Management.choices)
    centre = serializers.SerializerMethodField()
    estimated = serializers.BooleanField(
        help_text=_("True if the centre or boundary is a hand estimate.")
    )
    accuracy_km = serializers.FloatField(allow_null=True)
    confidence = serializers.ChoiceField(choices=Confidence.choices)
    is_active = serializers.BooleanField()

    @extend_schema_field(RegionCentreSerializer(allow_null=True))
    def get_centre(self, region: Region) -> dict[str, float] | None:
        return _centre(region)


class RegionDetailOutputSerializer(RegionOutputSerializer):
    """A region with its breadcrumb (root first), boundary and provenance."""

    ancestors = RegionSummarySerializer(many=True)
    boundary = serializers.JSONField(
        allow_null=True, help_text=_("GeoJSON Polygon or MultiPolygon (WGS84), if known.")
    )
    sources = serializers.ListField(child=serializers.CharField())
    notes = serializers.CharField()


class RegionTreeNodeSerializer(serializers.Serializer):
    """One node of the visible tree, with its children nested."""

    code = serializers.CharField()
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    level = serializers.ChoiceField(choices=RegionLevel.choices)
    kind = serializers.ChoiceField(choices=RegionKind.choices)
    management = serializers.ChoiceField(choices=Management.choices)
    path = serializers.CharField()
    is_active = serializers.BooleanField()
    estimated = serializers.BooleanField()
    centre = RegionCentreSerializer(allow_null=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here because a class cannot name itself in its own body; the schema
        # generator resolves the self-reference to one recursive component.
        fields = super().get_fields()
        fields["children"] = RegionTreeNodeSerializer(many=True)
        return fields


class RegionLookupInputSerializer(serializers.Serializer):
    lat = serializers.FloatField(
        min_value=-90, max_value=90, help_text=_("WGS84 latitude, e.g. 34.276")
    )
    lng = serializers.FloatField(
        min_value=-180, max_value=180, help_text=_("WGS84 longitude, e.g. 108.85")
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # float("nan") parses and slips past min/max (every comparison with NaN is False).
        bad = {
            name: [_("Must be a finite number.")]
            for name in ("lat", "lng")
            if not math.isfinite(attrs[name])
        }
        if bad:
            raise serializers.ValidationError(bad)
        return attrs


class RegionStreetSerializer(RegionSummarySerializer):
    management = serializers.ChoiceField(choices=Management.choices)
    nbs_code = serializers.CharField()
    centre = serializers.SerializerMethodField()
    accuracy_km = serializers.FloatField(allow_null=True)

    @extend_schema_field(RegionCentreSerializer(allow_null=True))
    def get_centre(self, region: Region) -> dict[str, float] | None:
        return _centre(region)


class RegionCommunitiesInputSerializer(serializers.Serializer):
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=COMMUNITY_QUERY_MAX_LENGTH,
        help_text=_("Part of the name (or of the NBS name), e.g. 火车站"),
    )


class RegionCommunitySerializer(serializers.Serializer):
    """A community (社区) or village (村) of a street, as a picker lists it."""

    code = serializers.CharField(help_text=_("Region code, stable"))
    name_zh = serializers.CharField()
    name_en = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=[
            (RegionKind.COMMUNITY, RegionKind.COMMUNITY.label),
            (RegionKind.VILLAGE, RegionKind.VILLAGE.label),
        ]
    )
    nbs_code = serializers.CharField(help_text=_("12-digit NBS code, or empty"))
    nbs_name = serializers.CharField(help_text=_("Name in the NBS table, verbatim, or empty"))
    urban_rural = serializers.ChoiceField(choices=[("", ""), *UrbanRural.choices])
    source_year = serializers.IntegerField(allow_null=True)
    centre = serializers.SerializerMethodField()

    @extend_schema_field(RegionCentreSerializer(allow_null=True))
    def get_centre(self, region: Region) -> dict[str, float] | None:
        return _centre(region)


class RegionLookupOutputSerializer(serializers.Serializer):
    street = RegionStreetSerializer()
    community = RegionSummarySerializer(
        allow_null=True,
        help_text=_(
            "The community or village whose boundary covers the point, if one has a "
            "boundary; otherwise null: pick one from regions/{street}/communities/."
        ),
    )
    ancestors = RegionSummarySerializer(many=True, help_text=_("Root first."))
    method = serializers.ChoiceField(
        choices=LocateMethod.choices,
        help_text=_(
            "boundary: the point lies inside the street's boundary; community_boundary: "
            "inside the boundary of one of the street's communities; nearest_centre: no "
            "boundary matched, the street with the nearest centre was taken."
        ),
    )
    distance_km = RoundedFloatField(
        allow_null=True,
        help_text=_("Great-circle distance from the point to the street centre."),
    )
    estimated = serializers.BooleanField(
        help_text=_("True if the answer rests on hand-estimated geometry: verify on site.")
    )

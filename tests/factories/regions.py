"""Region factories that always build a valid tree.

``StreetFactory()`` creates its new town and the shared root ("xixian", reused by
get-or-create), so every street sits at depth 2 under one root, as in production::

    street = StreetFactory(centre_lat=34.27, centre_lng=108.85)
    unit = UnitFactory(parent=street)
    other_town = NewTownFactory(code="fengxi")
"""

from __future__ import annotations

from typing import Any

import factory
from factory.django import DjangoModelFactory

from apps.regions.models import Confidence, Management, Region, RegionKind, RegionLevel


class RegionFactory(DjangoModelFactory):
    """A root by default; the subclasses below build the lower levels."""

    class Meta:
        model = Region
        django_get_or_create = ("code",)

    code = "xixian"
    name_zh = "陕西西咸新区"
    name_en = "Xixian New Area"
    level = RegionLevel.NEW_AREA
    kind = RegionKind.NEW_AREA
    parent = None
    management = Management.DIRECT
    estimated = True
    confidence = Confidence.B
    sources: Any = factory.LazyFunction(list)


RootRegionFactory = RegionFactory


class NewTownFactory(RegionFactory):
    code = factory.Sequence(lambda n: f"town-{n}")
    name_zh = factory.Sequence(lambda n: f"测试新城{n}")
    name_en = factory.Sequence(lambda n: f"Test New City {n}")
    level = RegionLevel.NEW_TOWN
    kind = RegionKind.NEW_TOWN
    parent = factory.SubFactory(RegionFactory)


class StreetFactory(RegionFactory):
    code = factory.Sequence(lambda n: f"street-{n}")
    name_zh = factory.Sequence(lambda n: f"测试街道{n}")
    name_en = factory.Sequence(lambda n: f"Test Subdistrict {n}")
    level = RegionLevel.STREET
    kind = RegionKind.SUBDISTRICT
    parent = factory.SubFactory(NewTownFactory)
    accuracy_km = 3.0


class UnitFactory(RegionFactory):
    code = factory.Sequence(lambda n: f"unit-{n}")
    name_zh = factory.Sequence(lambda n: f"测试村{n}")
    name_en = ""
    level = RegionLevel.UNIT
    kind = RegionKind.VILLAGE
    parent = factory.SubFactory(StreetFactory)
    estimated = False


def square_boundary(lat: float, lng: float, half_side_deg: float) -> dict[str, Any]:
    """A GeoJSON square around a point ([lng, lat] order, counter-clockwise)."""
    south, north = lat - half_side_deg, lat + half_side_deg
    west, east = lng - half_side_deg, lng + half_side_deg
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}

"""Geometry for point → street lookup: great-circle distance, GeoJSON checks, street index.

The street index is an in-process cache of the active tree down to street level
(prepared shapely geometries, centres and each street's ancestors). It is built with one
query and then answers every lookup with zero queries: a citizen's report, an IoT alarm
and a responder's position all call it, so it sits on the hot path.

Invalidation has two halves:

1. the ``post_save``/``post_delete`` signal (``apps.regions.signals``) drops this
   process's copy at once, so the same request sees its own edit;
2. on commit it bumps a *generation* token in Django's cache (Redis in production), which
   every other process compares on each lookup: one cache GET, no database query. Without
   it a web process would keep routing reports with a street edited in another process.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from shapely import Point
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.prepared import PreparedGeometry, prep

from apps.core.generation import SharedGeneration

if TYPE_CHECKING:
    from apps.regions.models import Region

logger = logging.getLogger(__name__)

# Mean Earth radius (IUGG); the error against the ellipsoid is < 0.5 %, far below the
# ±3 km uncertainty of the estimated street centres.
EARTH_RADIUS_KM = 6371.0088
GENERATION_CACHE_KEY = "regions:street-index:generation"
_generation = SharedGeneration(GENERATION_CACHE_KEY, what="the street index")
BOUNDARY_TYPES = frozenset({"Polygon", "MultiPolygon"})


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in km between two WGS84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def coordinate_problems(lat: Any, lng: Any) -> dict[str, list[dict[str, str]]]:
    """Per-field problems of a WGS84 point, in the envelope's ``extra.fields`` shape."""
    problems: dict[str, list[dict[str, str]]] = {}
    for name, value, limit in (("lat", lat, 90.0), ("lng", lng, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems[name] = [{"code": "invalid", "message": str(_("A number is required."))}]
        elif not math.isfinite(value) or not -limit <= value <= limit:
            message = _("Must be a finite number between -%(limit)s and %(limit)s.") % {
                "limit": int(limit)
            }
            problems[name] = [{"code": "out_of_range", "message": str(message)}]
    return problems


def geometry_from_geojson(data: Any) -> BaseGeometry:
    """A shapely geometry from a GeoJSON Polygon/MultiPolygon; ``ValueError`` if unusable."""
    problem = boundary_problem(data)
    if problem:
        raise ValueError(str(problem))
    return shape(data)


def boundary_problem(data: Any) -> Any:
    """Why ``data`` is not a usable WGS84 GeoJSON (Multi)Polygon, or ``None`` if it is."""
    if not isinstance(data, Mapping) or data.get("type") not in BOUNDARY_TYPES:
        return _("The boundary must be a GeoJSON Polygon or MultiPolygon geometry.")
    try:
        geometry = shape(data)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return _("The boundary coordinates are malformed.")
    if geometry.is_empty or not geometry.is_valid:
        # A self-intersecting ring makes containment answers meaningless.
        return _("The boundary polygon is empty or self-intersecting.")
    min_x, min_y, max_x, max_y = geometry.bounds
    if not (-180 <= min_x <= max_x <= 180 and -90 <= min_y <= max_y <= 90):
        # GeoJSON is [longitude, latitude]; swapped axes are the usual mistake.
        return _("The boundary lies outside WGS84 ranges (GeoJSON order is [lng, lat]).")
    return None


# --- The in-process street index -------------------------------------------------------


@dataclass(frozen=True)
class UnitEntry:
    """An active community/village with a boundary: the lookup descends into it."""

    region: Region
    geometry: PreparedGeometry


@dataclass(frozen=True)
class StreetEntry:
    """One active street as the lookup sees it. ``region`` is shared: treat as read-only."""

    region: Region
    ancestors: tuple[Region, ...]
    geometry: PreparedGeometry | None
    centre: tuple[float, float] | None  # (lat, lng)
    # Its active units that have a boundary (none in the fixture yet), in path order.
    units: tuple[UnitEntry, ...] = ()


@dataclass(frozen=True)
class StreetIndex:
    generation: str
    area: PreparedGeometry | None  # the union of the active roots' boundaries
    streets: tuple[StreetEntry, ...]


_index: StreetIndex | None = None
_lock = threading.Lock()


def street_index_invalidate() -> None:
    """Drop the index here now, and in every process once the transaction commits."""
    global _index  # the process-wide cache slot
    _index = None
    _generation.bump_on_commit()


def street_index() -> StreetIndex:
    """The warm index, rebuilt (one query) when missing or when another process changed it."""
    global _index  # the process-wide cache slot
    generation = _generation.read()
    index = _index
    if index is not None and (generation is None or index.generation == generation):
        return index
    with _lock:
        index = _index
        if index is None or (generation is not None and index.generation != generation):
            index = _build_index(generation or "local")
            _index = index
    return index


def street_index_if_current(generation: str | None) -> StreetIndex | None:
    """This process's warm index if it is at ``generation``, else ``None``: no cache read
    and no query. For asyncio callers that read the generation themselves (the fast
    intake path, in its rate-limit round trip) and rebuild off the loop when stale."""
    index = _index
    if index is None or generation is None or index.generation != generation:
        return None
    return index


def _build_index(generation: str) -> StreetIndex:
    """1. Read the active root, new towns and streets, and the active units that have a
       boundary, in one query (path order). Units without one — all of them until
       community boundaries are loaded — cost nothing here.
    2. Prepare each boundary once; a prepared ``covers`` is many times faster.
    3. Resolve each street's ancestors from the same rows via its path, and hang each
       unit under its street.
    """
    from django.db.models import Q

    from apps.regions.models import Region, RegionLevel

    rows = list(
        Region.objects.active()
        .filter(Q(depth__lte=2) | Q(level=RegionLevel.UNIT, boundary__isnull=False))
        .order_by("path")
    )
    by_path = {row.path: row for row in rows}
    units: dict[str, list[UnitEntry]] = {}
    for row in rows:
        if row.level == RegionLevel.UNIT:
            geometry = _safe_geometry(row)
            if geometry is not None:
                parent_path = row.ancestor_paths[-1]
                units.setdefault(parent_path, []).append(UnitEntry(row, prep(geometry)))
    areas: list[BaseGeometry] = []
    streets: list[StreetEntry] = []
    for row in rows:
        if row.level == RegionLevel.NEW_AREA and row.boundary:
            areas.append(_safe_geometry(row))
        if row.level != RegionLevel.STREET:
            continue
        ancestors = [by_path[p] for p in row.ancestor_paths if p in by_path]
        if len(ancestors) != len(row.ancestor_paths):
            continue  # an inactive ancestor switches its whole subtree off
        geometry = _safe_geometry(row) if row.boundary else None
        centre = None
        if row.centre_lat is not None and row.centre_lng is not None:
            centre = (row.centre_lat, row.centre_lng)
        streets.append(
            StreetEntry(
                region=row,
                ancestors=tuple(ancestors),
                geometry=prep(geometry) if geometry is not None else None,
                centre=centre,
                units=tuple(units.get(row.path, ())),
            )
        )
    area_geometries = [a for a in areas if a is not None]
    area: PreparedGeometry | None = None
    if area_geometries:
        union = area_geometries[0]
        for other in area_geometries[1:]:
            union = union.union(other)
        area = prep(union)
    logger.info("regions: street index built with %s streets", len(streets))
    return StreetIndex(generation=generation, area=area, streets=tuple(streets))


def _safe_geometry(region: Region) -> Any:
    """The region's boundary, or ``None`` (logged) when bad data slipped past validation:
    one broken polygon must not take down every lookup."""
    try:
        return geometry_from_geojson(region.boundary)
    except ValueError:
        logger.error("regions: unusable boundary on %s ignored", region.code)
        return None


def point(lat: float, lng: float) -> Point:
    """A shapely point; GeoJSON and shapely order axes (x=lng, y=lat)."""
    return Point(lng, lat)

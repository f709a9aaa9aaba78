"""Reads of the region tree: scoped lists, subtrees, breadcrumbs, point → street.

Every function here is one query (or zero, for a warm point lookup; two for the
communities of a street). Subtrees and ancestors come from ``path`` prefixes, never from
walking ``parent`` row by row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Case, Q, Value, When
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError, ErrorCode
from apps.regions import geo
from apps.regions.errors import REGION_ERROR_MESSAGES, RegionErrorCode
from apps.regions.models import Region, RegionKind, RegionLevel, RegionQuerySet

# --- Tree reads ------------------------------------------------------------------------


def region_descendants(region: Region, include_self: bool = True) -> RegionQuerySet:
    """``region``'s subtree in path order (depth-first, parents before children)."""
    return Region.objects.subtree(region, include_self=include_self).order_by("path")


def region_ancestors(region: Region, include_self: bool = False) -> RegionQuerySet:
    """The chain root → ``region`` (its parent last, or itself with ``include_self``).

    The ancestors' paths are the prefixes of ``region.path``, so this is one
    ``path IN (...)`` query however deep the node sits.
    """
    paths = region.ancestor_paths
    if include_self:
        paths = [*paths, region.path]
    return Region.objects.filter(path__in=paths).order_by("depth")


def region_list(*, user: Any) -> RegionQuerySet:
    """The regions ``user`` may see, in tree (path) order. Inactive nodes included: the
    admin-like list shows history; callers filter ``is_active`` when they need to."""
    return Region.objects.visible_to(user).order_by("path")


class RegionCentre(TypedDict):
    lat: float
    lng: float


class RegionTreeNode(TypedDict):
    code: str
    name_zh: str
    name_en: str
    level: str
    kind: str
    management: str
    path: str
    is_active: bool
    estimated: bool
    centre: RegionCentre | None
    children: list[RegionTreeNode]


_TREE_FIELDS = (
    "code",
    "name_zh",
    "name_en",
    "level",
    "kind",
    "management",
    "path",
    "is_active",
    "estimated",
    "centre_lat",
    "centre_lng",
)


def region_tree(user: Any, *, include_inactive: bool = False) -> list[RegionTreeNode]:
    """The subtrees ``user`` may see, nested (one query).

    1. Read the visible rows in path order, so a parent always comes before its children.
    2. Hang each row under its parent path; a row whose parent is not visible starts a
       new top-level subtree (an operator of 沣西 gets one root: 沣西新城).
    Inactive nodes (the historical 大王街道) are left out unless asked for, and so is
    everything below them: a picker must not offer a street that no longer exists.
    """
    roots: list[RegionTreeNode] = []
    by_path: dict[str, RegionTreeNode] = {}
    hidden: list[str] = []  # paths of inactive nodes whose subtrees are left out
    rows = Region.objects.visible_to(user).order_by("path").values(*_TREE_FIELDS)
    for row in rows:
        path = row["path"]
        if hidden and path.startswith(tuple(hidden)):
            continue
        if not include_inactive and not row["is_active"]:
            hidden.append(path)
            continue
        centre: RegionCentre | None = None
        if row["centre_lat"] is not None and row["centre_lng"] is not None:
            centre = {"lat": row["centre_lat"], "lng": row["centre_lng"]}
        node: RegionTreeNode = {
            "code": row["code"],
            "name_zh": row["name_zh"],
            "name_en": row["name_en"],
            "level": row["level"],
            "kind": row["kind"],
            "management": row["management"],
            "path": path,
            "is_active": row["is_active"],
            "estimated": row["estimated"],
            "centre": centre,
            "children": [],
        }
        parent = by_path.get(path[: path.rstrip("/").rfind("/") + 1])
        (parent["children"] if parent is not None else roots).append(node)
        by_path[path] = node
    return roots


# --- The communities of a street -----------------------------------------------------------

COMMUNITY_KINDS = (RegionKind.COMMUNITY, RegionKind.VILLAGE)
COMMUNITY_QUERY_MAX_LENGTH = 50


def street_community(*, street: Region, code: str, field: str = "community") -> Region:
    """The active community or village ``code`` of ``street`` (a reporter's or an
    operator's pick from :func:`street_communities`). Anything else — unknown, inactive,
    of another street, an estate — is a 400 ``invalid`` on ``field``: a report is filed
    where its location is, and a community is only a finer place inside that street."""
    found = (
        Region.objects.active()
        .filter(code=code, parent_id=street.pk, kind__in=COMMUNITY_KINDS)
        .first()
        if isinstance(code, str) and code
        else None
    )
    if found is None:
        message = _("Not a community or village of %(street)s.") % {"street": street.name_zh}
        raise ApplicationError(
            ErrorCode.INVALID,
            extra={"fields": {field: [{"code": "community_not_in_street", "message": message}]}},
            status=400,
        )
    return found


def street_communities(*, street_code: str, q: str = "") -> list[Region]:
    """The active communities and villages (社区, 村) of an active street, whose name or
    NBS name contains ``q``: what a reporter or an operator picks from, since reports are
    routed to the street (communities have no boundaries). Two queries.

    Not scoped: the list is public reference data (the NBS table) and a citizen picks from
    it too; estates and enterprises, added by hand, are left out. Order: communities, then
    villages, in NBS code order; units without an NBS code last, by name. An unknown or
    inactive street, or a code that is not a street → ``not_found``.
    """
    street = (
        Region.objects.filter(code=street_code, level=RegionLevel.STREET)
        .select_related("parent__parent")  # a street sits at depth 2: its whole chain
        .first()
    )
    chain = [street, street.parent, street.parent.parent] if street and street.parent else []
    if not chain or not all(region is not None and region.is_active for region in chain):
        # An inactive ancestor switches its subtree off, as in the tree and the lookup.
        raise ApplicationError(ErrorCode.NOT_FOUND, status=404)
    units = Region.objects.active().filter(parent=street, kind__in=COMMUNITY_KINDS)
    q = q.strip()
    if q:
        units = units.filter(Q(name_zh__icontains=q) | Q(nbs_name__icontains=q))
    return list(
        units.order_by(
            Case(When(nbs_code="", then=Value(1)), default=Value(0)), "nbs_code", "name_zh"
        )
    )


# --- Point → street ----------------------------------------------------------------------


class LocateMethod(models.TextChoices):
    """How :func:`locate_point` decided (TextChoices: labelled, and an API enum)."""

    BOUNDARY = "boundary", _("Inside the street boundary")
    COMMUNITY_BOUNDARY = "community_boundary", _("Inside the boundary of one of its communities")
    NEAREST_CENTRE = "nearest_centre", _("Nearest street centre")


@dataclass(frozen=True)
class StreetLocation:
    """The answer of :func:`locate_point`. Regions are cached instances: read-only.

    ``street`` is where a report is routed; ``community`` is the community or village
    whose boundary covers the point, when one has a boundary (a suggestion for the
    reporter or operator, who otherwise picks from the street's list)."""

    street: Region
    ancestors: tuple[Region, ...]
    method: LocateMethod
    distance_km: float | None  # great-circle distance to the street centre, if it has one
    community: Region | None = None

    @property
    def estimated(self) -> bool:
        """True if the answer rests on hand-estimated geometry (all of it, for now)."""
        return self.street.estimated


def locate_point(lat: float, lng: float, *, index: geo.StreetIndex | None = None) -> StreetLocation:
    """The street responsible for a WGS84 point, with how it was decided. Zero queries
    once the street index is warm.

    1. Refuse coordinates out of range (400 ``invalid`` with ``extra.fields``).
    2. If the new area has a boundary and the point is outside it → 422
       ``point_outside_area``. The boundary decides; street centres cannot.
    3. The active street whose boundary covers the point (nearest centre breaks ties
       where estimated polygons overlap).
    4. Otherwise the street of the active community whose boundary covers the point: a
       community's own boundary says more than the nearest street centre.
    5. Otherwise the active street with the nearest centre by great-circle distance; if
       even that is farther than ``REGION_LOOKUP_MAX_DISTANCE_KM`` → 422 as in step 2.
    6. Descend: the community of the chosen street whose boundary covers the point, if
       any (communities have no boundaries yet, so ``None`` until they do).
    """
    problems = geo.coordinate_problems(lat, lng)
    if problems:
        raise ApplicationError(ErrorCode.INVALID, extra={"fields": problems}, status=400)
    index = index or geo.street_index()
    target = geo.point(lat, lng)
    if index.area is not None and not index.area.covers(target):
        raise _outside(lat, lng)

    def distance(entry: geo.StreetEntry) -> float | None:
        if entry.centre is None:
            return None
        return geo.haversine_km(lat, lng, entry.centre[0], entry.centre[1])

    containing = [
        entry
        for entry in index.streets
        if entry.geometry is not None and entry.geometry.covers(target)
    ]
    if containing:
        best = min(containing, key=lambda e: (_sort_distance(distance(e)), e.region.path))
        return _located(best, LocateMethod.BOUNDARY, distance(best), target)

    by_community = [
        entry for entry in index.streets if _community_covering(entry, target) is not None
    ]
    if by_community:
        best = min(by_community, key=lambda e: (_sort_distance(distance(e)), e.region.path))
        return _located(best, LocateMethod.COMMUNITY_BOUNDARY, distance(best), target)

    measured = [(d, entry) for entry in index.streets if (d := distance(entry)) is not None]
    if not measured:
        raise _outside(lat, lng)
    nearest_km, nearest = min(measured, key=lambda item: (item[0], item[1].region.path))
    if nearest_km > settings.REGION_LOOKUP_MAX_DISTANCE_KM:
        raise _outside(lat, lng)
    return _located(nearest, LocateMethod.NEAREST_CENTRE, nearest_km, target)


def _located(
    entry: geo.StreetEntry, method: LocateMethod, distance_km: float | None, target: Any
) -> StreetLocation:
    return StreetLocation(
        entry.region,
        entry.ancestors,
        method,
        distance_km,
        community=_community_covering(entry, target),
    )


def _community_covering(entry: geo.StreetEntry, target: Any) -> Region | None:
    """The first (path order) unit of the street whose boundary covers ``target``."""
    for unit in entry.units:
        if unit.geometry.covers(target):
            return unit.region
    return None


def locate_street(lat: float, lng: float) -> Region:
    """The street responsible for a point (see :func:`locate_point` for the rules)."""
    return locate_point(lat, lng).street


def _sort_distance(distance_km: float | None) -> float:
    return distance_km if distance_km is not None else float("inf")


def _outside(lat: float, lng: float) -> ApplicationError:
    code = RegionErrorCode.POINT_OUTSIDE_AREA
    return ApplicationError(
        code, REGION_ERROR_MESSAGES[code], extra={"lat": lat, "lng": lng}, status=422
    )


@dataclass(frozen=True)
class Place:
    """Where an operator's incident is filed, and the point it carries."""

    region: Region
    lat: float
    lng: float


def place_for_intake(*, lat: float | None, lng: float | None, region: Region | None) -> Place:
    """The region and point of an incident an operator takes by phone (电话接警).

    * A point given: the street responsible for it (:func:`locate_point`, the rule of
      every other intake). A chosen street must be that street (400 on ``region``); a
      chosen community must be one of its communities (:func:`street_community`), and
      the incident is then filed at the community.
    * No point: the chosen region's centre (a community has none: its street's), filed
      at the chosen region. Without a point or a region with a centre: 400.
    """
    if (lat is None) != (lng is None):
        raise _field("lng", _("Give both coordinates or neither."))
    if lat is not None and lng is not None:
        street = locate_point(lat, lng).street
        if region is None or region.pk == street.pk:
            return Place(region=street, lat=lat, lng=lng)
        if region.level == RegionLevel.UNIT and region.parent_id == street.pk:
            return Place(
                region=street_community(street=street, code=region.code, field="region"),
                lat=lat,
                lng=lng,
            )
        raise _field(
            "region", _("The point lies in %(street)s, not here.") % {"street": street.name_zh}
        )
    if region is None:
        raise _field("lat", _("Give the location: a street or community, or the coordinates."))
    centre = region if region.centre_lat is not None else region.parent
    if centre is None or centre.centre_lat is None or centre.centre_lng is None:
        raise _field("lat", _("This region has no centre on record: give the coordinates."))
    return Place(region=region, lat=centre.centre_lat, lng=centre.centre_lng)


def _field(field: str, message: Any) -> ApplicationError:
    return ApplicationError(
        ErrorCode.INVALID,
        extra={"fields": {field: [{"code": "invalid", "message": str(message)}]}},
    )

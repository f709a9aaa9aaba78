"""Writes to the region tree: loading the administrative-division fixture.

The fixture format (``fixtures/regions/xixian.json``, written by
``scripts/build_region_fixture.py``) is a JSON object ``{"format", "meta", "nodes"}`` (a
bare list of nodes is accepted too). Each node::

    code             slug, unique, stable: the upsert key ("xixian", "fd-sanqiao")
    parent           parent's code; null only for the root (level "new_area")
    name_zh, name_en names
    level            new_area | new_town | street | unit  (must sit one below the parent)
    kind             new_area | new_town | subdistrict | town | community | village |
                     residential_area | enterprise (must fit the level)
    nbs_code         NBS 统计用区划代码 (9 digits for a street, 12 for a unit) or null
    nbs_name         the unit's name in the NBS table, verbatim, or null
    urban_rural      NBS 城乡分类代码 (111 … 220) of a unit, or null
    source_year      year of the official table code, name and class come from, or null
    legacy_district  the pre-Xixian district the NBS code files it under, or null
    management       direct | shared_xianyang | historical
    centre           {"lat", "lng"} WGS84 or null
    estimated        true if the centre/boundary is a hand estimate
    accuracy_km      the estimate's rough radius of error, or null
    confidence       A | B | C (see xixian-data.md)
    sources          list of source tags ("S19")
    notes            free text
    is_active        false for history kept for reference (大王街道)
    boundary         GeoJSON Polygon/MultiPolygon (WGS84) or null

The keys from ``nbs_name`` to ``source_year`` came with format ``xixian-regions/2``; a
node without them loads as before (empty).

A region is never deleted by a load. Codes are what memberships, incidents, clocks,
event streams (``region.<code>``) and push topics hold, and some of those hold the code
as text where no foreign key protects it; so a region the *fixture file* no longer has
is retired (``is_active = false``) instead, whatever references it today, and comes back
if a later fixture has it again. Regions made in the admin are never touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.core.errors import ApplicationError
from apps.regions import geo
from apps.regions.errors import REGION_ERROR_MESSAGES, RegionErrorCode
from apps.regions.models import (
    LEVEL_DEPTH,
    LEVEL_KINDS,
    Confidence,
    Management,
    Region,
    RegionLevel,
    UrbanRural,
)

CODE_RE = re.compile(r"^[-a-zA-Z0-9_]{1,40}$")
# Fixed API paths under /regions/ that a code would shadow.
RESERVED_CODES = frozenset({"tree", "lookup"})
# The model columns a fixture node sets (besides code and parent).
LOADED_FIELDS = (
    "name_zh",
    "name_en",
    "level",
    "kind",
    "nbs_code",
    "nbs_name",
    "urban_rural",
    "source_year",
    "legacy_district",
    "management",
    "centre_lat",
    "centre_lng",
    "estimated",
    "accuracy_km",
    "confidence",
    "sources",
    "notes",
    "is_active",
    "boundary",
    "from_fixture",
)
# Years an official table can have: a typo (22, 20222) must not load silently.
SOURCE_YEAR_RANGE = (1980, 2100)


def default_fixture_path() -> Path:
    return Path(settings.BASE_DIR) / "fixtures" / "regions" / "xixian.json"


class LoadCounts(TypedDict):
    created: int
    updated: int
    unchanged: int
    retired: int
    total: int


def regions_load_fixture(path: Path | None = None) -> dict[str, int]:
    """Load a region fixture file (default: the committed Xixian tree) as *the* tree:
    :func:`regions_load` with ``retire_missing``. Used by ``manage.py load_regions`` and
    the demo seed."""
    return regions_load(
        nodes=read_region_fixture(path or default_fixture_path()), retire_missing=True
    )


def read_region_fixture(path: Path) -> list[dict[str, Any]]:
    """The node list of a fixture file (object with ``nodes`` or a bare list)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _invalid([{"code": None, "problem": f"{path}: {exc}"}]) from exc
    nodes = data.get("nodes") if isinstance(data, dict) else data
    if not isinstance(nodes, list):
        raise _invalid([{"code": None, "problem": _("The fixture has no list of nodes.")}])
    return nodes


@transaction.atomic
def regions_load(
    *, nodes: Iterable[Mapping[str, Any]], retire_missing: bool = False
) -> dict[str, int]:
    """Upsert ``nodes`` by code, parents first, all or nothing; returns the counts.

    1. Validate every node against the fixture and the existing tree; collect all
       problems and refuse the whole load if there is any (a half-loaded tree would
       scope users wrongly).
    2. Walk the nodes level by level, so a parent is written before its children.
    3. Create missing codes; update only nodes whose values differ, so a second run
       writes nothing (and ``updated_at`` keeps meaning "last real change").
    4. A node whose parent changed moves with its whole subtree: the descendants' paths
       are rewritten in one UPDATE.
    5. With ``retire_missing`` (``nodes`` is the whole tree, as a fixture file is): an
       active region that an earlier load wrote (``from_fixture``) and ``nodes`` lacks
       is marked inactive in one UPDATE, never deleted (module docstring).
    Regions made in the admin (``from_fixture`` false) are left alone.
    """
    items = [dict(node) for node in nodes]
    codes = {str(node.get("code")) for node in items}
    parent_codes = {str(node["parent"]) for node in items if node.get("parent")}
    known: dict[str, Region] = {
        region.code: region
        for region in Region.objects.filter(code__in=codes | parent_codes).order_by("path")
    }
    ordered = _validated(items, known)

    counts: LoadCounts = {
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "retired": 0,
        "total": len(ordered),
    }
    for node in ordered:
        parent = known[node["parent"]] if node.get("parent") else None
        values = _model_values(node)
        region = known.get(node["code"])
        if region is None:
            region = Region(code=node["code"], parent=parent, **values)
            region.save()
            known[region.code] = region
            counts["created"] += 1
            continue
        moved = region.parent_id != (parent.pk if parent else None)
        changed = [name for name, value in values.items() if getattr(region, name) != value]
        if not moved and not changed:
            counts["unchanged"] += 1
            continue
        old_path = region.path
        for name in changed:
            setattr(region, name, values[name])
        region.parent = parent
        region.save()
        if region.path != old_path:
            _rewrite_subtree(region, old_path, known)
        counts["updated"] += 1
    if retire_missing:
        counts["retired"] = (
            Region.objects.filter(from_fixture=True, is_active=True)
            .exclude(code__in=codes)
            .update(is_active=False, updated_at=timezone.now())
        )
    geo.street_index_invalidate()
    return dict(counts)


def _rewrite_subtree(region: Region, old_path: str, known: dict[str, Region]) -> None:
    """Re-root the descendants of a moved node: one UPDATE, then fix the loaded copies
    so children written later in this load derive their path from the new one."""
    delta = region.depth - (old_path.count("/") - 2)
    Region.objects.filter(path__startswith=old_path).exclude(pk=region.pk).update(
        path=Concat(Value(region.path), Substr("path", len(old_path) + 1)),
        depth=F("depth") + delta,
    )
    for other in known.values():
        if other.pk != region.pk and other.path.startswith(old_path):
            other.path = region.path + other.path[len(old_path) :]
            other.depth += delta


def _model_values(node: Mapping[str, Any]) -> dict[str, Any]:
    centre = node.get("centre") or None
    return {
        "name_zh": node["name_zh"],
        "name_en": node.get("name_en") or "",
        "level": node["level"],
        "kind": node["kind"],
        "nbs_code": node.get("nbs_code") or "",
        "nbs_name": node.get("nbs_name") or "",
        "urban_rural": node.get("urban_rural") or "",
        "source_year": node.get("source_year"),
        "legacy_district": node.get("legacy_district") or "",
        "management": node.get("management") or Management.DIRECT,
        "centre_lat": float(centre["lat"]) if centre else None,
        "centre_lng": float(centre["lng"]) if centre else None,
        "estimated": bool(node.get("estimated", True)),
        "accuracy_km": node.get("accuracy_km"),
        "confidence": node.get("confidence") or Confidence.B,
        "sources": list(node.get("sources") or []),
        "notes": node.get("notes") or "",
        "is_active": bool(node.get("is_active", True)),
        "boundary": node.get("boundary"),
        "from_fixture": True,
    }


def _validated(items: list[dict[str, Any]], known: Mapping[str, Region]) -> list[dict[str, Any]]:
    """The nodes in parent-first order, or ``ApplicationError`` listing every problem."""
    problems: list[dict[str, Any]] = []

    def problem(code: Any, text: str) -> None:
        problems.append({"code": code, "problem": text})

    levels: dict[str, str] = {code: region.level for code, region in known.items()}
    seen: set[str] = set()
    for position, node in enumerate(items):
        code = node.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code) or code in RESERVED_CODES:
            problem(
                code,
                _("Node %(n)s: the code must be a slug of 1–40 characters, not tree/lookup.")
                % {"n": position},
            )
            continue
        if code in seen:
            problem(code, _("The code appears twice."))
        seen.add(code)
        if node.get("level") in LEVEL_DEPTH:
            levels[code] = node["level"]

    siblings: set[tuple[str | None, str]] = set()
    for node in items:
        code = node.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code) or code in RESERVED_CODES:
            continue
        level, kind = node.get("level"), node.get("kind")
        name = node.get("name_zh")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            problem(code, _("name_zh must be a non-empty text of at most 100 characters."))
        if level not in LEVEL_DEPTH:
            problem(code, _("Unknown level %(level)r.") % {"level": level})
        elif kind not in LEVEL_KINDS[level]:
            problem(
                code,
                _("Kind %(kind)r does not fit level %(level)r.") % {"kind": kind, "level": level},
            )
        if node.get("management", Management.DIRECT) not in Management.values:
            problem(code, _("Unknown management %(m)r.") % {"m": node.get("management")})
        if node.get("confidence", Confidence.B) not in Confidence.values:
            problem(code, _("Unknown confidence %(c)r.") % {"c": node.get("confidence")})
        if node.get("urban_rural") not in (None, "", *UrbanRural.values):
            problem(code, _("Unknown urban–rural class %(c)r.") % {"c": node.get("urban_rural")})
        year = node.get("source_year")
        if year is not None and (
            isinstance(year, bool)
            or not isinstance(year, int)
            or not SOURCE_YEAR_RANGE[0] <= year <= SOURCE_YEAR_RANGE[1]
        ):
            problem(code, _("source_year must be a year (an integer) or null."))
        for field, limit in (
            ("nbs_code", 12),
            ("nbs_name", 100),
            ("legacy_district", 20),
            ("name_en", 100),
        ):
            value = node.get(field)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                problem(
                    code,
                    _("%(field)s must be a text of at most %(limit)s characters.")
                    % {"field": field, "limit": limit},
                )
        if not isinstance(node.get("sources", []), list):
            problem(code, _("sources must be a list."))
        centre = node.get("centre")
        if centre is not None:
            if not isinstance(centre, Mapping):
                problem(code, _("centre must be an object with lat and lng."))
            elif geo.coordinate_problems(centre.get("lat"), centre.get("lng")):
                problem(code, _("centre lat/lng are missing or out of range."))
        accuracy = node.get("accuracy_km")
        if accuracy is not None and (
            isinstance(accuracy, bool) or not isinstance(accuracy, int | float)
        ):
            problem(code, _("accuracy_km must be a number."))
        if node.get("boundary") is not None:
            reason = geo.boundary_problem(node["boundary"])
            if reason:
                problem(code, str(reason))

        parent = node.get("parent")
        if parent is None:
            if level != RegionLevel.NEW_AREA:
                problem(code, _("Only a new area may have no parent."))
        elif parent not in levels:
            problem(code, _("The parent %(parent)r does not exist.") % {"parent": parent})
        elif level in LEVEL_DEPTH and LEVEL_DEPTH[levels[parent]] + 1 != LEVEL_DEPTH[level]:
            problem(
                code,
                _("A %(level)s cannot sit below a %(parent_level)s.")
                % {"level": level, "parent_level": levels[parent]},
            )
        if isinstance(name, str):
            key = (parent, name)
            if key in siblings:
                problem(
                    code, _("Two children of one parent share the name %(name)s.") % {"name": name}
                )
            siblings.add(key)

    if problems:
        raise _invalid(problems)
    return sorted(items, key=lambda node: LEVEL_DEPTH[node["level"]])


def _invalid(problems: list[dict[str, Any]]) -> ApplicationError:
    code = RegionErrorCode.FIXTURE_INVALID
    return ApplicationError(code, REGION_ERROR_MESSAGES[code], extra={"problems": problems})

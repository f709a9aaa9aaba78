"""Build ``fixtures/regions/xixian.json`` from the researched hierarchy and the NBS table.

    .venv/bin/python scripts/build_region_fixture.py            # rewrite the fixture
    .venv/bin/python scripts/build_region_fixture.py --check    # exit 1 if it is stale

Inputs, all in ``fixtures/regions/source/`` (verbatim copies; their provenance is in the
fixture's own ``meta``):

* ``xixian-hierarchy.json``: the research draft of the tree down to the streets, with a
  few sample units (villages, estates) per street;
* ``xixian-communities.json``: the village-level units (社区居委会, 村委会) of 22 streets,
  verbatim from the NBS 2022 统计用区划代码和城乡划分代码 table;
* ``unit-reconciliation.json``: the sample-unit ↔ NBS-unit matches a name cannot make.

Output: the flat node list documented in ``apps/regions/services.py``, loaded by
``manage.py load_regions``.

What it decides, and why:

* Streets keep the research ids as codes (``fd-sanqiao``); the 4 shared-zone streets are
  active with ``management = shared_xianyang``; the historical 大王街道 stays under 沣西 as
  ``is_active = false`` so old records still resolve, but no lookup or picker offers it.
* Every NBS unit becomes a unit of its street (kind ``community`` for a 居委会, code
  001–199; ``village`` for a 村委会, 200–399) with its NBS code, verbatim NBS name
  (``nbs_name``), a short name (``name_zh``: 村委会 → 村, 社区居委会 → 社区), its
  urban–rural class and source year 2022, confidence A.
* A research sample unit that is the same place as an NBS unit (same street and name
  once suffixes are ignored, or listed in the reconciliation file) becomes that NBS unit
  and keeps its code; it may move street (西张一村: 上林 → 钓台, as NBS files it). One of
  a street the table covers that matches nothing is kept with ``is_active = false``: it is
  a natural village or was merged or renamed since the research list, and a membership
  or incident may refer to it. Estates (小区) are not administrative units and stay.
* Codes never change once committed: a unit's code is found again by its NBS code or by
  (street, name) in the committed fixture; new units get ``<street>-uNN`` (next free
  number). A code the committed fixture has must still be in the output (the build
  fails otherwise), because incidents and memberships hold codes.
* Units have no coordinates of their own; ``estimated`` therefore stays false for them.
* The research's enterprises (西安车辆厂, 长庆石化, 渭河电厂 …) are NOT included: the
  research only places them "south/north of the 渭河", which names no street.
* The root gets an ESTIMATED boundary: the convex hull of the active street centres,
  buffered by 6 km in a local metric projection. It decides "outside the new area" until
  an official boundary replaces it. Sanity points are checked on every build.

Pure Python + shapely: no Django needed, so it runs anywhere the repo is checked out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point
from shapely.geometry.polygon import orient

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "fixtures" / "regions" / "source"
DEFAULT_SOURCE = SOURCE_DIR / "xixian-hierarchy.json"
DEFAULT_COMMUNITIES = SOURCE_DIR / "xixian-communities.json"
DEFAULT_RECONCILIATION = SOURCE_DIR / "unit-reconciliation.json"
DEFAULT_OUTPUT = ROOT / "fixtures" / "regions" / "xixian.json"
FORMAT = "xixian-regions/2"
NBS_TAG = "NBS2022"  # the sources tag of every unit taken from the NBS table
STREET_NBS_YEAR = 2023  # the research's street codes are NBS 2023 (hierarchy meta)
BUFFER_KM = 6.0
KM_PER_DEG_LAT = 110.574  # WGS84 meridian degree near 34° N; error < 0.1 %
KM_PER_DEG_LNG_EQUATOR = 111.320

STREET_KINDS = {"街道": "subdistrict", "镇": "town"}
UNIT_KINDS = {
    "village": "village",
    "community": "community",
    "residential_area": "residential_area",
    "enterprise": "enterprise",
}
# (name, lat, lng, must be inside?) — checked on every build; None = report only.
SANITY_POINTS: list[tuple[str, float, float, bool | None]] = [
    ("西安钟楼 Xi'an Bell Tower", 34.2612, 108.9423, False),
    ("宝鸡 Baoji", 34.36, 107.24, False),
    ("北京 Beijing", 39.9042, 116.4074, False),
    ("西安咸阳国际机场 XIY", 34.447, 108.752, True),
    ("西安国际足球中心", 34.245, 108.815, True),
    ("咸阳市中心 Xianyang centre", 34.3296, 108.7093, None),
]


def centre_of(data: dict[str, Any]) -> dict[str, float] | None:
    centre = data.get("centre")
    if not centre or centre.get("lat") is None:
        return None
    return {"lat": centre["lat"], "lng": centre["lng"]}


def node(**fields: Any) -> dict[str, Any]:
    """A node with every documented key, in the documented order."""
    template: dict[str, Any] = {
        "code": None,
        "parent": None,
        "name_zh": None,
        "name_en": "",
        "level": None,
        "kind": None,
        "nbs_code": None,
        "nbs_name": None,
        "urban_rural": None,
        "source_year": None,
        "legacy_district": None,
        "management": "direct",
        "centre": None,
        "estimated": False,
        "accuracy_km": None,
        "confidence": "B",
        "sources": [],
        "notes": "",
        "is_active": True,
        "boundary": None,
    }
    unknown = set(fields) - set(template)
    if unknown:
        raise KeyError(f"unknown node fields: {sorted(unknown)}")
    template.update(fields)
    return template


def facts_note(data: dict[str, Any], *extra: str) -> str:
    """Area and population facts folded into the notes, each with its year."""
    parts: list[str] = []
    area = data.get("area_km2")
    if area:
        parts.append(f"area {area} km²")
    if data.get("area_note"):
        parts.append(data["area_note"])
    population = data.get("population")
    if isinstance(population, dict) and population.get("value"):
        parts.append(f"population {population['value']:,} ({population.get('year', '?')})")
    if data.get("population_note"):
        parts.append(data["population_note"])
    if data.get("boundary_text"):
        parts.append(data["boundary_text"])
    if data.get("notes"):
        parts.append(data["notes"])
    parts.extend(e for e in extra if e)
    return "; ".join(parts)


def street_node(street: dict[str, Any], parent: str, *, active: bool = True) -> dict[str, Any]:
    centre = street["centre"]
    return node(
        code=street["id"],
        parent=parent,
        name_zh=street["name_zh"],
        name_en=street.get("name_en") or "",
        level="street",
        kind=STREET_KINDS[street["type"]],
        nbs_code=street.get("nbs_2023_code"),
        source_year=STREET_NBS_YEAR if street.get("nbs_2023_code") else None,
        legacy_district=street.get("legacy_district"),
        management=street["management"],
        centre=centre_of(street),
        estimated=bool(centre.get("estimated", True)),
        accuracy_km=centre.get("accuracy_km"),
        confidence=street.get("confidence", "B"),
        sources=list(street.get("sources", [])),
        notes=facts_note(street),
        is_active=active,
    )


# --- Units: NBS table + research samples -------------------------------------------------

# Longest first: 社区居民委员会 must not be cut as …居民委员会 + 社区.
_NAME_SUFFIXES = (
    "社区居民委员会",
    "社区居委会",
    "村民委员会",
    "居民委员会",
    "村委会",
    "居委会",
    "社区",
    "村",
)
COMMUNITY_CODES = range(1, 200)  # NBS: 001–199 居民委员会, 200–399 村民委员会
VILLAGE_CODES = range(200, 400)


def short_name(nbs_name: str, street_name: str) -> str:
    """The name people use: 宋村委会 → 宋村, 三桥火车站社区居委会 → 三桥火车站社区,
    崇文镇北丈村村民委员会 → 北丈村. Anything else stays verbatim (王寺街道居委会)."""
    name = nbs_name
    if name.startswith(street_name) and len(name) > len(street_name) + 3:
        name = name[len(street_name) :]
    for suffix, short in (
        ("社区居民委员会", "社区"),
        ("社区居委会", "社区"),
        ("村民委员会", "村"),
        ("村委会", "村"),
    ):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            return base if short == "村" and base.endswith("村") else base + short
    return name


def name_core(name: str, street_name: str = "") -> str:
    """A name without its street prefix and its 村/社区/委员会 suffixes, to match the
    research's 焦村 with NBS's 焦村村委会 (both → 焦)."""
    if street_name and name.startswith(street_name) and len(name) > len(street_name) + 1:
        name = name[len(street_name) :]
    stripped = True
    while stripped:
        stripped = False
        for suffix in _NAME_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name, stripped = name[: -len(suffix)], True
                break
    return name


def nbs_kind(code: str) -> str:
    number = int(code[-3:])
    if number in COMMUNITY_CODES:
        return "community"
    if number in VILLAGE_CODES:
        return "village"
    raise ValueError(f"NBS unit {code}: {number:03d} is neither a 居委会 nor a 村委会 code")


@dataclass
class Existing:
    """What the committed fixture says, so that no code ever changes."""

    codes: set[str] = field(default_factory=set)
    by_name: dict[tuple[str, str], str] = field(default_factory=dict)  # (parent, name_zh)
    by_nbs: dict[str, str] = field(default_factory=dict)  # 12-digit NBS code → code


def load_existing(path: Path) -> Existing:
    existing = Existing()
    if not path.is_file():
        return existing
    data = json.loads(path.read_text(encoding="utf-8"))
    for n in data.get("nodes", []):
        existing.codes.add(n["code"])
        if n.get("level") != "unit":
            continue
        existing.by_name[(n["parent"], n["name_zh"])] = n["code"]
        if n.get("nbs_code") and n.get("source_year"):  # a code the NBS table gave
            existing.by_nbs[n["nbs_code"]] = n["code"]
    return existing


@dataclass
class _Sample:
    street: dict[str, Any]
    unit: dict[str, Any]
    reason: str = ""  # why it matches its NBS unit, when a name could not tell


def _nbs_by_street(communities: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for unit in communities["units"]:
        grouped[unit["street_code"][:9]].append(unit)
    for units in grouped.values():
        units.sort(key=lambda u: u["code"])
    return grouped


def _match_samples(
    streets: list[dict[str, Any]],
    nbs: dict[str, list[dict[str, Any]]],
    reconciliation: dict[str, Any],
) -> tuple[dict[str, _Sample], dict[str, list[dict[str, Any]]]]:
    """``({nbs code: sample}, {street id: unmatched samples})``; see the docstring."""
    explicit = {(m["street"], m["name_zh"]): m for m in reconciliation.get("matches", [])}
    nbs_codes = {u["code"] for units in nbs.values() for u in units}
    matched: dict[str, _Sample] = {}
    unmatched: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for street in streets:
        candidates = nbs.get(street.get("nbs_2023_code") or "", [])
        for unit in street.get("sample_units") or []:
            decision = explicit.get((street["id"], unit["name_zh"]))
            if decision is not None:
                if decision["nbs_code"] not in nbs_codes:
                    raise ValueError(f"reconciliation: unknown NBS code {decision['nbs_code']}")
                found = [decision["nbs_code"]]
            else:
                core = name_core(unit["name_zh"], street["name_zh"])
                found = [
                    u["code"]
                    for u in candidates
                    if name_core(u["name_zh"], street["name_zh"]) == core
                ]
            if len(found) != 1 or found[0] in matched:
                unmatched[street["id"]].append(unit)
                continue
            matched[found[0]] = _Sample(street, unit, decision["reason"] if decision else "")
    return matched, unmatched


def unit_nodes(
    streets: list[dict[str, Any]],
    communities: dict[str, Any],
    reconciliation: dict[str, Any],
    existing: Existing,
) -> list[dict[str, Any]]:
    """Every unit, grouped by street (NBS units in code order, then the research's own),
    with stable codes (see the module docstring)."""
    nbs = _nbs_by_street(communities)
    by_nbs_street = {s["nbs_2023_code"]: s for s in streets if s.get("nbs_2023_code")}
    strays = sorted(set(nbs) - set(by_nbs_street))
    if strays:
        raise ValueError(f"NBS units of streets the hierarchy lacks: {strays}")
    matched, unmatched = _match_samples(streets, nbs, reconciliation)
    explicit_codes = {
        (m["street"], m["name_zh"]): m["code"] for m in reconciliation.get("matches", [])
    }

    nodes: list[dict[str, Any]] = []
    for street in streets:
        active = street["management"] in {"direct", "shared_xianyang"}
        for unit in nbs.get(street.get("nbs_2023_code") or "", []):
            sample = matched.get(unit["code"])
            code = existing.by_nbs.get(unit["code"])
            if sample is not None:
                key = (sample.street["id"], sample.unit["name_zh"])
                code = code or existing.by_name.get(key)
                if key in explicit_codes and code not in (None, explicit_codes[key]):
                    raise ValueError(f"reconciliation: {key} is {code}, not {explicit_codes[key]}")
            nodes.append(_nbs_node(unit, street, sample, code, active=active))
        covered = bool(nbs.get(street.get("nbs_2023_code") or ""))
        for unit in unmatched.get(street["id"], []):
            code = existing.by_name.get((street["id"], unit["name_zh"]))
            nodes.append(_sample_node(unit, street, code, covered=covered, active=active))
    _assign_new_codes(nodes, existing)
    return nodes


def _nbs_node(
    unit: dict[str, Any],
    street: dict[str, Any],
    sample: _Sample | None,
    code: str | None,
    *,
    active: bool,
) -> dict[str, Any]:
    sources = [NBS_TAG]
    notes: list[str] = []
    if sample is not None:
        if sample.unit.get("source"):
            sources.append(sample.unit["source"])
        how = sample.reason or "matched by name"
        notes.append(f"research sample unit {sample.unit['name_zh']}: {how}")
        note = sample.unit.get("note", "")
        if note and not note.startswith("code "):
            notes.append(note)
    return node(
        code=code,
        parent=street["id"],
        name_zh=short_name(unit["name_zh"], street["name_zh"]),
        level="unit",
        kind=nbs_kind(unit["code"]),
        nbs_code=unit["code"],
        nbs_name=unit["name_zh"],
        urban_rural=unit["urban_rural"],
        source_year=NBS_YEAR,
        legacy_district=street.get("legacy_district"),
        management=street["management"],
        confidence=unit.get("confidence", "A"),
        sources=sources,
        notes="; ".join(notes),
        is_active=active and not unit.get("abolished", False),
    )


def _sample_node(
    unit: dict[str, Any],
    street: dict[str, Any],
    code: str | None,
    *,
    covered: bool,
    active: bool,
) -> dict[str, Any]:
    """A research sample unit with no NBS counterpart."""
    kind = UNIT_KINDS[unit["type"]]
    note = unit.get("note", "")
    nbs_code = None
    if note.startswith("code ") and note[5:].isdigit():
        nbs_code, note = note[5:], "NBS village code"
    administrative = kind in {"village", "community"}
    retired = covered and administrative
    notes = [
        note,
        "residential estate (小区), not an administrative unit"
        if kind == "residential_area"
        else "",
        f"not in the NBS {NBS_YEAR} table of {street['name_zh']}: a natural village, or "
        "merged or renamed since the research list; kept inactive so that references "
        "to it resolve"
        if retired
        else "",
    ]
    return node(
        code=code,
        parent=street["id"],
        name_zh=unit["name_zh"],
        level="unit",
        kind=kind,
        nbs_code=nbs_code,
        legacy_district=street.get("legacy_district"),
        management=street["management"],
        # Named in a (dated) source list; the list may predate village mergers into
        # 安置社区, hence B, not A.
        confidence="A" if nbs_code else "B",
        sources=[unit["source"]] if unit.get("source") else [],
        notes="; ".join(p for p in notes if p),
        is_active=active and not retired,
    )


def _assign_new_codes(nodes: list[dict[str, Any]], existing: Existing) -> None:
    """``<street>-uNN``, the next number no committed or assigned code uses."""
    taken = set(existing.codes) | {n["code"] for n in nodes if n["code"]}
    counters: dict[str, int] = defaultdict(int)
    for n in nodes:
        if n["code"]:
            continue
        while True:
            counters[n["parent"]] += 1
            code = f"{n['parent']}-u{counters[n['parent']]:02d}"
            if code not in taken:
                break
        n["code"] = code
        taken.add(code)


def units_meta(communities: dict[str, Any], reconciliation: dict[str, Any]) -> dict[str, Any]:
    """Where the units come from, in the fixture itself (the copies may not travel)."""
    meta = communities["meta"]
    units = communities["units"]
    read_via = sorted({u["source"] for u in units})
    missing = "; ".join(
        f"{m['name_zh']} ({m['street_id']}): {m['reason']}"
        for m in meta["coverage"].get("missing", [])
    )
    left_out = "; ".join(
        f"{m['street_name_zh']}: {m['reason']}" for m in meta.get("not_included", [])
    )
    return {
        "tag": NBS_TAG,
        "source": (
            f"国家统计局 {meta['year']}年统计用区划代码和城乡划分代码, village level "
            "(社区居委会 and 村委会), one table per street: "
            + ", ".join(s["nbs_page"] for s in meta["streets"])
        ),
        "read_via": read_via,
        "year": meta["year"],
        "confidence": (
            "A: a verbatim copy of the official table with a stated year, read through a "
            "secondary mirror (the GitHub scrape in read_via), not cross-checked unit by unit"
        ),
        "coverage": (
            f"{len(units)} units of {meta['coverage']['streets_covered']} streets. "
            f"Missing: {missing}. Left out: {left_out}."
        ),
        "limits": (
            f"Units created or abolished after the {meta['year']} edition are not here. No "
            "coordinates or boundaries: a report is routed to its street and the community "
            "is chosen from the street's list (docs/regions.md)."
        ),
        "fields": (
            "nbs_code: the 12-digit NBS code (001-199 居委会 → kind community, 200-399 村委会 "
            "→ kind village); nbs_name: the NBS name verbatim; name_zh: its short form "
            "(村委会 → 村, 社区居委会 → 社区, a leading town name dropped); urban_rural: NBS "
            "城乡分类代码 (" + URBAN_RURAL_NOTE + "); source_year: the edition."
        ),
        "reconciliation": (
            "Research sample units that are NBS units (same street and name, or listed "
            "below) became them and kept their codes; those of a covered street that match "
            "nothing are kept inactive."
        ),
        "corrections": [
            {"code": m["code"], "nbs_code": m["nbs_code"], "reason": m["reason"]}
            for m in reconciliation.get("matches", [])
        ],
    }


URBAN_RURAL_NOTE = (
    "111 主城区, 112 城乡结合区, 121 镇中心区, 122 镇乡结合区, 123 特殊区域, 210 乡中心区, 220 村庄"
)
NBS_YEAR = 2022


def km_scale(lat0: float) -> np.ndarray:
    """km per degree (lng, lat) of a local equirectangular projection around ``lat0``;
    across the area's ~40 km the distortion is far below the centres' ±3 km."""
    return np.array([KM_PER_DEG_LNG_EQUATOR * math.cos(math.radians(lat0)), KM_PER_DEG_LAT])


def estimated_boundary(streets: list[dict[str, Any]]) -> dict[str, Any]:
    """Convex hull of the street centres buffered by BUFFER_KM, as a GeoJSON Polygon."""
    points = [(s["centre"]["lng"], s["centre"]["lat"]) for s in streets if s.get("centre")]
    lat0 = sum(lat for _lng, lat in points) / len(points)
    scale = km_scale(lat0)
    hull_km = shapely.transform(MultiPoint(points).convex_hull, lambda xy: xy * scale)
    buffered = shapely.transform(hull_km.buffer(BUFFER_KM, quad_segs=4), lambda xy: xy / scale)
    polygon = orient(buffered, sign=1.0)  # RFC 7946: exterior ring counter-clockwise
    ring = [[round(x, 4), round(y, 4)] for x, y in polygon.exterior.coords]
    ring[-1] = ring[0]
    return {"type": "Polygon", "coordinates": [ring]}


def build(
    source: dict[str, Any],
    existing: Existing,
    communities: dict[str, Any],
    reconciliation: dict[str, Any],
) -> dict[str, Any]:
    area = source["new_area"]
    nodes: list[dict[str, Any]] = []
    active_streets: list[dict[str, Any]] = []
    for town in source["new_towns"]:
        for street in town["streets"]:
            if street["management"] in {"direct", "shared_xianyang"}:
                active_streets.append(street)

    boundary = estimated_boundary(active_streets)
    direct, shared = area["direct_zone"], area["shared_zone"]
    nodes.append(
        node(
            code=area["id"],
            name_zh=area["name_zh"],
            name_en=area["name_en"],
            level="new_area",
            kind="new_area",
            centre=centre_of(area),
            estimated=True,
            accuracy_km=area["centre"].get("accuracy_km"),
            confidence=area.get("confidence", "A"),
            sources=list(area.get("sources", [])),
            notes=(
                f"approved area {area['area_km2_approved']} km², total "
                f"{area['area_km2_total']} km²; direct zone {direct['area_km2']} km², "
                f"{direct['resident_population']:,} residents ({direct['population_year']}), "
                f"{direct['street_count']} streets; shared zone {shared['area_km2']} km², "
                f"{shared['street_count']} streets managed by {shared['managed_by']}. "
                f"BOUNDARY IS AN ESTIMATE: convex hull of the {len(active_streets)} active "
                f"street centres buffered by {BUFFER_KM:g} km (scripts/build_region_fixture.py);"
                " it decides 'outside the new area' for point lookup. Replace it with the "
                "official boundary when available."
            ),
            boundary=boundary,
        )
    )
    for town in source["new_towns"]:
        centre = town["centre"]
        nodes.append(
            node(
                code=town["id"],
                parent=area["id"],
                name_zh=town["name_zh"],
                name_en=town["name_en"],
                level="new_town",
                kind="new_town",
                centre=centre_of(town),
                estimated=bool(centre.get("estimated", True)),
                accuracy_km=centre.get("accuracy_km"),
                # The five 新城 themselves are official (S1); their figures vary.
                confidence="A",
                sources=list(town.get("sources", [])),
                notes=facts_note(town),
            )
        )
    streets: list[dict[str, Any]] = []
    historical = {h["id"]: h for h in source.get("historical_or_removed", [])}
    for town in source["new_towns"]:
        for street in town["streets"]:
            nodes.append(street_node(street, town["id"]))
            streets.append(street)
        if town["id"] == "fengxi" and "hist-dawang" in historical:
            # 大王 was in 沣西's original scope (xixian-data.md §1.3).
            dawang = historical["hist-dawang"]
            nodes.append(street_node(dawang, town["id"], active=False))
            streets.append(dawang)
    nodes.extend(unit_nodes(streets, communities, reconciliation, existing))
    return {
        "format": FORMAT,
        "meta": {
            "title": "西咸新区 region tree fixture",
            "generated_by": "scripts/build_region_fixture.py",
            "source": (
                "streets and above: xixian-hierarchy.json + xixian-data.md §1 (research "
                f"draft, see S# tags); communities and villages: the NBS table (tag {NBS_TAG}, "
                "see units)"
            ),
            "status": source["meta"]["status"],
            "coordinate_note": source["meta"]["coordinate_note"],
            "nbs_code_note": source["meta"]["nbs_code_note"],
            "format_doc": "apps/regions/services.py module docstring",
            "units": units_meta(communities, reconciliation),
            "left_out": (
                "§1.4 enterprises (no street can be inferred from the research); "
                "reference points (POIs are not regions)"
            ),
        },
        "nodes": nodes,
    }


def sanity_check(fixture: dict[str, Any], existing: Existing | None = None) -> list[str]:
    """Problems with the estimated boundary or the codes, or an empty list."""
    from shapely.geometry import shape

    root = fixture["nodes"][0]
    area = shape(root["boundary"])
    problems: list[str] = []
    codes = [n["code"] for n in fixture["nodes"]]
    problems += [f"code twice: {c}" for c in sorted({c for c in codes if codes.count(c) > 1})]
    names = [(n["parent"], n["name_zh"]) for n in fixture["nodes"]]
    problems += [
        f"sibling name twice: {k}" for k in sorted({k for k in names if names.count(k) > 1})
    ]
    if existing is not None:
        # Incidents and memberships hold codes: a committed one must never vanish.
        problems += [f"committed code dropped: {c}" for c in sorted(existing.codes - set(codes))]
    for n in fixture["nodes"]:
        is_active_street = n["level"] == "street" and n["is_active"] and n["centre"]
        if is_active_street and not area.contains(Point(n["centre"]["lng"], n["centre"]["lat"])):
            problems.append(f"street centre outside boundary: {n['code']}")
    scale = km_scale(34.36)
    area_km = shapely.transform(area, lambda xy: xy * scale)
    for name, lat, lng, inside in SANITY_POINTS:
        actual = area.contains(Point(lng, lat))
        edge_km = area_km.exterior.distance(Point(np.array([lng, lat]) * scale))
        where = "inside " if actual else "outside"
        print(f"  {where} {name} ({lat}, {lng}), {edge_km:.1f} km from the edge")
        if inside is not None and actual != inside:
            problems.append(f"{name} should be {'inside' if inside else 'outside'}")
    return problems


def render(fixture: dict[str, Any]) -> str:
    return json.dumps(fixture, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--communities", type=Path, default=DEFAULT_COMMUNITIES)
    parser.add_argument("--reconciliation", type=Path, default=DEFAULT_RECONCILIATION)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = parser.parse_args(argv)

    source, communities, reconciliation = (
        json.loads(path.read_text(encoding="utf-8"))
        for path in (args.source, args.communities, args.reconciliation)
    )
    existing = load_existing(args.output)
    fixture = build(source, existing, communities, reconciliation)
    problems = sanity_check(fixture, existing)
    if problems:
        print("sanity check failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    text = render(fixture)
    levels: dict[str, int] = {}
    for n in fixture["nodes"]:
        levels[n["level"]] = levels.get(n["level"], 0) + 1
    print(f"  {len(fixture['nodes'])} nodes: {levels}")
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run scripts/build_region_fixture.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Build ``fixtures/regions/xixian.json`` from the researched hierarchy.

    .venv/bin/python scripts/build_region_fixture.py            # rewrite the fixture
    .venv/bin/python scripts/build_region_fixture.py --check    # exit 1 if it is stale

Input: ``fixtures/regions/source/xixian-hierarchy.json``, a verbatim copy of the research
draft ``/work/shared/data/xixian-hierarchy.json`` (read ``xixian-data.md`` §1 with it).
Output: the flat node list documented in ``apps/regions/services.py``, loaded by
``manage.py load_regions``.

What it decides, and why:

* Streets keep the research ids as codes (``fd-sanqiao``); the 4 shared-zone streets are
  active with ``management = shared_xianyang``; the historical 大王街道 stays under 沣西 as
  ``is_active = false`` so old records still resolve, but no lookup or picker offers it.
* Units (villages, communities, estates) get codes ``<street>-uNN`` in source order.
  Codes already in the committed fixture are kept, keyed by (street, name), so a reordered
  or extended source never renumbers a unit that incidents may already point at.
* Units have no coordinates of their own; ``estimated`` therefore stays false for them
  (nothing about them is a coordinate estimate; their age shows in confidence/notes).
* The §1.4 enterprises (西安车辆厂, 长庆石化, 渭河电厂 …) are NOT included: the research
  only places them "south/north of the 渭河", which names no street, and a unit needs one.
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
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point
from shapely.geometry.polygon import orient

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT / "fixtures" / "regions" / "source" / "xixian-hierarchy.json"
DEFAULT_OUTPUT = ROOT / "fixtures" / "regions" / "xixian.json"
FORMAT = "xixian-regions/1"
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


def unit_nodes(
    street: dict[str, Any], existing: dict[tuple[str, str], str], *, active: bool
) -> list[dict[str, Any]]:
    """The street's sample units, with stable codes (see the module docstring)."""
    units = street.get("sample_units") or []
    taken = {code for (parent, _name), code in existing.items() if parent == street["id"]}
    counter = 0
    nodes: list[dict[str, Any]] = []
    for unit in units:
        code = existing.get((street["id"], unit["name_zh"]))
        if code is None:
            while True:
                counter += 1
                code = f"{street['id']}-u{counter:02d}"
                if code not in taken:
                    break
        taken.add(code)
        note = unit.get("note", "")
        nbs_code = None
        if note.startswith("code ") and note[5:].isdigit():
            nbs_code, note = note[5:], "NBS village code"
        kind = UNIT_KINDS[unit["type"]]
        nodes.append(
            node(
                code=code,
                parent=street["id"],
                name_zh=unit["name_zh"],
                level="unit",
                kind=kind,
                nbs_code=nbs_code,
                legacy_district=street.get("legacy_district"),
                management=street["management"],
                # Named in a (dated) source list; the list may predate village mergers
                # into 安置社区, hence B, not A (xixian-data.md §1.4).
                confidence="A" if nbs_code else "B",
                sources=[unit["source"]] if unit.get("source") else [],
                notes="; ".join(
                    p
                    for p in (
                        note,
                        "residential estate (小区), not an administrative unit"
                        if kind == "residential_area"
                        else "",
                    )
                    if p
                ),
                is_active=active,
            )
        )
    return nodes


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


def load_existing_codes(path: Path) -> dict[tuple[str, str], str]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        (n["parent"], n["name_zh"]): n["code"]
        for n in data.get("nodes", [])
        if n.get("level") == "unit"
    }


def build(source: dict[str, Any], existing: dict[tuple[str, str], str]) -> dict[str, Any]:
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
    units: list[dict[str, Any]] = []
    historical = {h["id"]: h for h in source.get("historical_or_removed", [])}
    for town in source["new_towns"]:
        for street in town["streets"]:
            nodes.append(street_node(street, town["id"]))
            units.extend(unit_nodes(street, existing, active=True))
        if town["id"] == "fengxi" and "hist-dawang" in historical:
            # 大王 was in 沣西's original scope (xixian-data.md §1.3).
            dawang = historical["hist-dawang"]
            nodes.append(street_node(dawang, town["id"], active=False))
            units.extend(unit_nodes(dawang, existing, active=False))
    nodes.extend(units)
    return {
        "format": FORMAT,
        "meta": {
            "title": "西咸新区 region tree fixture",
            "generated_by": "scripts/build_region_fixture.py",
            "source": "xixian-hierarchy.json + xixian-data.md §1 (research draft, see S# tags)",
            "status": source["meta"]["status"],
            "coordinate_note": source["meta"]["coordinate_note"],
            "nbs_code_note": source["meta"]["nbs_code_note"],
            "format_doc": "apps/regions/services.py module docstring",
            "left_out": (
                "§1.4 enterprises (no street can be inferred from the research); "
                "reference points (POIs are not regions)"
            ),
        },
        "nodes": nodes,
    }


def sanity_check(fixture: dict[str, Any]) -> list[str]:
    """Problems with the estimated boundary, or an empty list."""
    from shapely.geometry import shape

    root = fixture["nodes"][0]
    area = shape(root["boundary"])
    problems: list[str] = []
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
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = parser.parse_args(argv)

    source = json.loads(args.source.read_text(encoding="utf-8"))
    fixture = build(source, load_existing_codes(args.output))
    problems = sanity_check(fixture)
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

"""The committed Xixian fixture: contents, loader command, estimated boundary."""

from __future__ import annotations

import importlib.util
import json
import sys
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from shapely.geometry import Point, shape

from apps.regions.models import (
    Confidence,
    Management,
    Region,
    RegionKind,
    RegionLevel,
    UrbanRural,
)
from tests.regions.conftest import BAOJI, BEIJING, BELL_TOWER

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "regions" / "xixian.json"
SOURCE_DIR = FIXTURE.parent / "source"
HIERARCHY = SOURCE_DIR / "xixian-hierarchy.json"
COMMUNITIES = SOURCE_DIR / "xixian-communities.json"
RECONCILIATION = SOURCE_DIR / "unit-reconciliation.json"
SCRIPT = Path(settings.BASE_DIR) / "scripts" / "build_region_fixture.py"


def _nodes() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["nodes"]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_region_fixture", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.django_db
def test_load_regions_creates_the_tree_then_changes_nothing_on_a_second_run() -> None:
    # given
    first, second = StringIO(), StringIO()

    # when
    call_command("load_regions", stdout=first)
    snapshot = list(Region.objects.values_list("code", "path", "updated_at"))
    call_command("load_regions", str(FIXTURE), stdout=second)

    # then
    assert "472 created, 0 updated, 0 unchanged, 0 retired" in first.getvalue()
    assert "0 created, 0 updated, 472 unchanged, 0 retired" in second.getvalue()
    assert list(Region.objects.values_list("code", "path", "updated_at")) == snapshot


@pytest.mark.django_db
def test_the_fixture_holds_five_new_towns_and_the_nineteen_plus_four_streets(
    xixian: dict[str, Region],
) -> None:
    # given
    streets = Region.objects.filter(level=RegionLevel.STREET)

    # then
    assert set(
        Region.objects.filter(level=RegionLevel.NEW_TOWN).values_list("code", flat=True)
    ) == {"fengdong", "fengxi", "qinhan", "konggang", "jinghe"}
    assert streets.filter(management=Management.DIRECT, is_active=True).count() == 19
    assert streets.filter(management=Management.SHARED_XIANYANG, is_active=True).count() == 4
    dawang = xixian["hist-dawang"]
    assert (dawang.is_active, dawang.management, dawang.parent_code) == (
        False,
        Management.HISTORICAL,
        "fengxi",
    )
    assert xixian["fd-sanqiao"].path == "/xixian/fengdong/fd-sanqiao/"
    assert xixian["fd-sanqiao"].nbs_code == "610112002"


def _communities_data() -> dict[str, Any]:
    return json.loads(COMMUNITIES.read_text(encoding="utf-8"))


@pytest.mark.django_db
def test_every_street_holds_exactly_the_communities_and_villages_of_the_nbs_table(
    xixian: dict[str, Region],
) -> None:
    # given: the data file, by street (9-digit street code)
    data = _communities_data()
    expected: dict[str, set[str]] = {}
    for unit in data["units"]:
        expected.setdefault(unit["street_code"][:9], set()).add(unit["code"])

    # when: the loaded tree's units with an NBS code of the table's year, by street
    loaded: dict[str, set[str]] = {}
    for unit in Region.objects.filter(level=RegionLevel.UNIT, source_year=2022).select_related(
        "parent"
    ):
        loaded.setdefault(unit.parent.nbs_code, set()).add(unit.nbs_code)

    # then: same streets, same units, and the counts of the file's own summary
    assert loaded == expected
    assert {s["street_code"][:9]: s["units"] for s in data["meta"]["streets"]} == {
        street: len(codes) for street, codes in loaded.items()
    }
    assert sum(len(codes) for codes in loaded.values()) == 420
    nbs_units = Region.objects.filter(source_year=2022, level=RegionLevel.UNIT)
    assert not nbs_units.filter(is_active=False).exists()
    # NBS: 001-199 are 居委会 (communities), 200-399 村委会 (villages)
    assert nbs_units.filter(kind=RegionKind.COMMUNITY).count() == 177
    assert nbs_units.filter(kind=RegionKind.VILLAGE).count() == 243


@pytest.mark.django_db
def test_a_community_carries_its_code_names_level_class_and_year(
    xixian: dict[str, Region],
) -> None:
    station = Region.objects.get(nbs_code="610112002001")
    assert (station.code, station.path) == (
        "fd-sanqiao-u01",
        "/xixian/fengdong/fd-sanqiao/fd-sanqiao-u01/",
    )
    assert (station.name_zh, station.nbs_name) == ("三桥火车站社区", "三桥火车站社区居委会")
    assert (station.level, station.kind) == (RegionLevel.UNIT, RegionKind.COMMUNITY)
    assert (station.urban_rural, station.source_year) == (UrbanRural.MAIN_URBAN, 2022)
    assert (station.confidence, station.sources) == (Confidence.A, ["NBS2022"])
    assert station.from_fixture
    village = Region.objects.get(nbs_code="610423112207")
    assert (village.name_zh, village.nbs_name) == ("北丈村", "崇文镇北丈村村民委员会")
    assert village.kind == RegionKind.VILLAGE


@pytest.mark.django_db
def test_xizhang_yi_cun_is_a_village_of_diaotai_as_nbs_files_it_and_keeps_its_code(
    xixian: dict[str, Region],
) -> None:
    village = xixian["fd-shanglin-u01"]
    assert village.name_zh == "西张一村"
    assert village.nbs_code == "610402008203"
    assert village.path == "/xixian/fengxi/fx-diaotai/fd-shanglin-u01/"
    assert not Region.objects.filter(parent=xixian["fd-shanglin"], name_zh="西张一村").exists()


@pytest.mark.django_db
def test_the_research_villages_keep_their_codes_and_those_nbs_lacks_are_inactive(
    xixian: dict[str, Region],
) -> None:
    # matched by name: the research's 大古城村 is NBS's 大古城社区 (村改居)
    assert xixian["fd-wangsi-u01"].nbs_code == "610116005008"
    assert xixian["fd-wangsi-u01"].name_zh == "大古城社区"
    assert xixian["fx-mawang-u14"].nbs_code == "610116006213"  # 沙河村
    assert xixian["jh-chongwen-u07"].nbs_name == "焦村村委会"  # 焦村
    assert xixian["qh-zhengyang-u01"].nbs_name == "柏家咀村委会"  # 柏家嘴村: listed match
    # in a street NBS covers, but not in its table: kept, switched off
    for code in ("fx-mawang-u12", "kg-beidu-u02", "qh-yaodian-u02"):
        assert not xixian[code].is_active, code
        assert "not in the NBS 2022 table" in xixian[code].notes
    # estates are no administrative units: NBS cannot list them, they stay
    assert xixian["kg-dizhang-u01"].is_active
    assert not xixian["hist-dawang-u01"].is_active  # with its historical street
    assert Region.objects.filter(level=RegionLevel.UNIT).count() == 442


def test_the_fixture_says_where_the_units_come_from() -> None:
    meta = json.loads(FIXTURE.read_text(encoding="utf-8"))["meta"]["units"]
    assert meta["tag"] == "NBS2022"
    assert meta["year"] == 2022
    assert meta["confidence"].startswith("A")
    assert "stats.gov.cn" in meta["source"]
    assert "沣京街道" in meta["coverage"]
    assert [c["code"] for c in meta["corrections"]] == ["fd-shanglin-u01", "qh-zhengyang-u01"]
    assert "../" not in json.dumps(meta)


def test_every_coordinate_in_the_fixture_is_marked_as_an_estimate() -> None:
    with_geometry = [n for n in _nodes() if n["centre"] or n["boundary"]]
    assert len(with_geometry) == 30  # root + 5 new towns + 24 streets
    assert all(n["estimated"] for n in with_geometry)
    assert all(n["sources"] for n in _nodes())


def test_the_estimated_boundary_holds_every_active_street_and_no_outside_city() -> None:
    # given
    nodes = _nodes()
    root = nodes[0]
    area = shape(root["boundary"])

    # then
    assert root["code"] == "xixian"
    assert "ESTIMATE" in root["notes"]
    for node in nodes:
        if node["level"] == "street" and node["is_active"]:
            assert area.contains(Point(node["centre"]["lng"], node["centre"]["lat"])), node["code"]
    for lat, lng in (BELL_TOWER, BAOJI, BEIJING):
        assert not area.contains(Point(lng, lat))
    # Coordinates are rounded to 4 decimals (about 10 m).
    for lng, lat in root["boundary"]["coordinates"][0]:
        assert round(lng, 4) == lng
        assert round(lat, 4) == lat


def test_the_committed_fixture_is_what_the_script_builds(capsys: Any) -> None:
    # when
    status = _script().main(["--check"])

    # then
    assert status == 0, capsys.readouterr().err


def _sources() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    return (
        json.loads(HIERARCHY.read_text(encoding="utf-8")),
        _communities_data(),
        json.loads(RECONCILIATION.read_text(encoding="utf-8")),
    )


def test_the_script_keeps_existing_unit_codes_when_the_sources_are_reordered() -> None:
    # given
    script = _script()
    source, communities, reconciliation = _sources()
    mawang = next(s for t in source["new_towns"] for s in t["streets"] if s["id"] == "fx-mawang")
    mawang["sample_units"].reverse()
    communities["units"].reverse()

    # when
    rebuilt = script.build(source, script.load_existing(FIXTURE), communities, reconciliation)

    # then: every node keeps its code (the order of the research's leftovers follows theirs)
    def codes(nodes: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        return {(n["parent"], n["name_zh"]): n["code"] for n in nodes}

    assert codes(rebuilt["nodes"]) == codes(_nodes())
    assert codes(rebuilt["nodes"])[("fx-mawang", "沙河村")] == "fx-mawang-u14"


def test_the_script_numbers_a_new_unit_after_the_committed_ones() -> None:
    # given: NBS adds a community to 三桥街道
    script = _script()
    source, communities, reconciliation = _sources()
    communities["units"].append(
        {**communities["units"][0], "code": "610112002099", "name_zh": "新设社区居委会"}
    )

    # when
    rebuilt = script.build(source, script.load_existing(FIXTURE), communities, reconciliation)

    # then
    (new,) = [n for n in rebuilt["nodes"] if n["nbs_code"] == "610112002099"]
    assert (new["code"], new["name_zh"]) == ("fd-sanqiao-u46", "新设社区")
    assert script.sanity_check(rebuilt, script.load_existing(FIXTURE)) == []


def test_the_script_refuses_to_drop_a_committed_code() -> None:
    # given: a source without 三桥's first community
    script = _script()
    source, communities, reconciliation = _sources()
    communities["units"] = [u for u in communities["units"] if u["code"] != "610112002001"]

    # when
    rebuilt = script.build(source, script.load_existing(FIXTURE), communities, reconciliation)

    # then
    problems = script.sanity_check(rebuilt, script.load_existing(FIXTURE))
    assert problems == ["committed code dropped: fd-sanqiao-u01"]


@pytest.mark.django_db
def test_load_regions_reports_an_invalid_file_without_loading_it(tmp_path: Path) -> None:
    # given
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"code": "x", "parent": "missing", "level": "unit"}]}))

    # when / then
    with pytest.raises(CommandError, match="invalid"):
        call_command("load_regions", str(bad), stdout=StringIO())
    assert not Region.objects.exists()

"""The committed Xixian fixture: contents, loader command, estimated boundary."""

from __future__ import annotations

import importlib.util
import json
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from shapely.geometry import Point, shape

from apps.regions.models import Management, Region, RegionLevel
from tests.regions.conftest import BAOJI, BEIJING, BELL_TOWER

FIXTURE = Path(settings.BASE_DIR) / "fixtures" / "regions" / "xixian.json"
SCRIPT = Path(settings.BASE_DIR) / "scripts" / "build_region_fixture.py"


def _nodes() -> list[dict[str, Any]]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))["nodes"]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_region_fixture", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
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
    assert "76 created, 0 updated, 0 unchanged" in first.getvalue()
    assert "0 created, 0 updated, 76 unchanged" in second.getvalue()
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


@pytest.mark.django_db
def test_the_village_lists_of_the_research_are_units_of_their_streets(
    xixian: dict[str, Region],
) -> None:
    def names(street: str) -> set[str]:
        return set(Region.objects.filter(parent=xixian[street]).values_list("name_zh", flat=True))

    assert len(names("fx-mawang")) == 14
    assert {"马王村", "客省庄村", "沙河村"} <= names("fx-mawang")
    assert len(names("kg-beidu")) == 13
    assert len(names("jh-chongwen")) == 8
    assert names("fd-wangsi") == {"大古城村"}
    assert Region.objects.filter(level=RegionLevel.UNIT).count() == 46
    # Units have no coordinates of their own.
    assert not Region.objects.filter(level=RegionLevel.UNIT, centre_lat__isnull=False).exists()
    # The units of the historical street are switched off with it.
    assert not xixian["hist-dawang-u01"].is_active


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


def test_the_script_keeps_existing_unit_codes_when_the_source_is_reordered() -> None:
    # given
    script = _script()
    source = json.loads(
        (Path(settings.BASE_DIR) / "fixtures/regions/source/xixian-hierarchy.json").read_text(
            encoding="utf-8"
        )
    )
    existing = script.load_existing_codes(FIXTURE)
    mawang = next(s for t in source["new_towns"] for s in t["streets"] if s["id"] == "fx-mawang")
    mawang["sample_units"].reverse()

    # when
    rebuilt = script.build(source, existing)

    # then
    codes = {n["name_zh"]: n["code"] for n in rebuilt["nodes"] if n["parent"] == "fx-mawang"}
    assert codes["马王村"] == "fx-mawang-u01"
    assert codes["沙河村"] == "fx-mawang-u14"


@pytest.mark.django_db
def test_load_regions_reports_an_invalid_file_without_loading_it(tmp_path: Path) -> None:
    # given
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"code": "x", "parent": "missing", "level": "unit"}]}))

    # when / then
    with pytest.raises(CommandError, match="invalid"):
        call_command("load_regions", str(bad), stdout=StringIO())
    assert not Region.objects.exists()

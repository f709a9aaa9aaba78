"""Loader, tree selectors and point → street lookup."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from apps.core.errors import ApplicationError
from apps.regions import geo
from apps.regions.errors import RegionErrorCode
from apps.regions.models import Region
from apps.regions.selectors import (
    LocateMethod,
    locate_point,
    locate_street,
    region_ancestors,
    region_descendants,
    region_tree,
)
from apps.regions.services import regions_load
from tests.factories.regions import NewTownFactory, StreetFactory, UnitFactory, square_boundary
from tests.regions.conftest import BEIJING, BELL_TOWER, FENGDONG_POINT, SANQIAO_CENTRE

pytestmark = pytest.mark.django_db


def _node(code: str, parent: str | None, level: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "parent": parent,
        "name_zh": f"名{code}",
        "level": level,
        "kind": kind,
        **extra,
    }


SMALL_TREE = [
    # Children listed before their parents on purpose: the loader must sort.
    _node("t-street", "t-town", "street", "subdistrict", centre={"lat": 34.3, "lng": 108.8}),
    _node("t-unit", "t-street", "unit", "village"),
    _node("t-town", "t-root", "new_town", "new_town"),
    _node("t-root", None, "new_area", "new_area"),
]


# --- loader ------------------------------------------------------------------------------


def test_loader_writes_parents_before_children_whatever_the_order() -> None:
    # when
    counts = regions_load(nodes=SMALL_TREE)

    # then
    assert counts == {"created": 4, "updated": 0, "unchanged": 0, "total": 4}
    assert Region.objects.get(code="t-unit").path == "/t-root/t-town/t-street/t-unit/"


def test_loading_twice_changes_nothing() -> None:
    # given
    regions_load(nodes=SMALL_TREE)
    before = dict(Region.objects.values_list("code", "updated_at"))

    # when
    counts = regions_load(nodes=SMALL_TREE)

    # then
    assert counts == {"created": 0, "updated": 0, "unchanged": 4, "total": 4}
    assert dict(Region.objects.values_list("code", "updated_at")) == before


def test_a_changed_node_is_updated_in_place() -> None:
    # given
    regions_load(nodes=SMALL_TREE)
    pk = Region.objects.get(code="t-street").pk
    changed = copy.deepcopy(SMALL_TREE)
    changed[0]["name_en"] = "Renamed"

    # when
    counts = regions_load(nodes=changed)

    # then
    assert counts["updated"] == 1
    assert counts["unchanged"] == 3
    assert Region.objects.get(code="t-street").name_en == "Renamed"
    assert Region.objects.get(code="t-street").pk == pk


def test_moving_a_street_rewrites_the_paths_of_its_whole_subtree() -> None:
    # given: a unit that the next file does not mention
    regions_load(nodes=SMALL_TREE)
    UnitFactory(code="admin-made", parent=Region.objects.get(code="t-street"))
    moved = [
        _node("t-root", None, "new_area", "new_area"),
        _node("t-town", "t-root", "new_town", "new_town"),
        _node("t-town2", "t-root", "new_town", "new_town"),
        _node("t-street", "t-town2", "street", "subdistrict", centre={"lat": 34.3, "lng": 108.8}),
        _node("t-unit", "t-street", "unit", "village"),
    ]

    # when
    regions_load(nodes=moved)

    # then
    assert Region.objects.get(code="t-street").path == "/t-root/t-town2/t-street/"
    assert Region.objects.get(code="t-unit").path == "/t-root/t-town2/t-street/t-unit/"
    assert Region.objects.get(code="admin-made").path == "/t-root/t-town2/t-street/admin-made/"


def test_an_invalid_fixture_is_refused_whole_with_every_problem_listed() -> None:
    # given
    nodes = [
        *SMALL_TREE,
        _node("t-bad", "t-root", "street", "subdistrict"),  # skips the new-town tier
        _node("t-lost", "nowhere", "unit", "village"),  # unknown parent
        _node("tree", "t-street", "unit", "village"),  # shadows /regions/tree/
    ]

    # when
    with pytest.raises(ApplicationError) as excinfo:
        regions_load(nodes=nodes)

    # then
    assert excinfo.value.code == RegionErrorCode.FIXTURE_INVALID
    assert {p["code"] for p in excinfo.value.extra["problems"]} == {"t-bad", "t-lost", "tree"}
    assert not Region.objects.exists()


# --- tree reads ----------------------------------------------------------------------------


def test_descendants_and_ancestors_are_one_query_each(
    xixian: dict[str, Region], django_assert_num_queries: Any
) -> None:
    # given
    mawang = xixian["fx-mawang"]

    # when
    with django_assert_num_queries(1):
        descendants = [r.code for r in region_descendants(xixian["fengxi"])]
    with django_assert_num_queries(1):
        ancestors = [r.code for r in region_ancestors(xixian["fx-mawang-u01"])]

    # then
    assert descendants[0] == "fengxi"
    assert "fx-mawang-u14" in descendants
    assert all(xixian[code].path.startswith("/xixian/fengxi/") for code in descendants)
    assert "fengdong" not in descendants
    assert ancestors == ["xixian", "fengxi", "fx-mawang"]
    assert [r.code for r in region_ancestors(mawang, include_self=True)][-1] == "fx-mawang"
    assert "fengxi" not in [
        r.code for r in region_descendants(xixian["fengxi"], include_self=False)
    ]


def test_region_tree_nests_the_visible_subtrees_and_hides_inactive_ones(
    xixian: dict[str, Region], make_user: Any, django_assert_num_queries: Any
) -> None:
    # given
    operator = make_user(region=xixian["fengxi"])

    # when
    with django_assert_num_queries(2):  # the user's scope, then the regions
        tree = region_tree(operator)

    # then
    assert [node["code"] for node in tree] == ["fengxi"]
    streets = [child["code"] for child in tree[0]["children"]]
    assert streets == ["fx-chenyangzhai", "fx-diaotai", "fx-gaoqiao", "fx-mawang"]
    mawang = tree[0]["children"][3]
    assert len(mawang["children"]) == 14
    assert mawang["centre"] == {"lat": 34.222, "lng": 108.737}
    with_history = region_tree(operator, include_inactive=True)
    assert "hist-dawang" in [child["code"] for child in with_history[0]["children"]]


def test_a_user_without_memberships_gets_an_empty_tree(
    xixian: dict[str, Region], make_user: Any
) -> None:
    assert region_tree(make_user()) == []


# --- point → street ----------------------------------------------------------------------


def test_a_point_at_sanqiaos_centre_locates_sanqiao(xixian: dict[str, Region]) -> None:
    # when
    location = locate_point(*SANQIAO_CENTRE)

    # then
    assert location.street.code == "fd-sanqiao"
    assert location.method == LocateMethod.NEAREST_CENTRE
    assert location.distance_km == pytest.approx(0.0, abs=1e-6)
    assert [a.code for a in location.ancestors] == ["xixian", "fengdong"]
    assert location.estimated is True
    assert locate_street(*SANQIAO_CENTRE).code == "fd-sanqiao"


def test_a_point_in_fengdong_returns_a_fengdong_street(xixian: dict[str, Region]) -> None:
    street = locate_street(*FENGDONG_POINT)
    assert street.path.startswith("/xixian/fengdong/")
    assert street.level == "street"


def test_the_historical_street_is_never_an_answer(xixian: dict[str, Region]) -> None:
    # 大王's own estimated centre: the nearest *active* street takes it.
    street = locate_street(34.238, 108.683)
    assert street.code != "hist-dawang"
    assert street.is_active


@pytest.mark.parametrize("point", [BELL_TOWER, BEIJING], ids=["xian-bell-tower", "beijing"])
def test_points_outside_the_new_area_are_refused(
    xixian: dict[str, Region], point: tuple[float, float]
) -> None:
    with pytest.raises(ApplicationError) as excinfo:
        locate_street(*point)
    assert excinfo.value.code == RegionErrorCode.POINT_OUTSIDE_AREA
    assert excinfo.value.status == 422
    assert excinfo.value.extra == {"lat": point[0], "lng": point[1]}


def test_a_boundary_beats_a_nearer_centre() -> None:
    # given: the point is 1 km from A's centre but inside B's (large) boundary
    near = StreetFactory(code="a", centre_lat=34.300, centre_lng=108.800)
    far = StreetFactory(
        code="b",
        centre_lat=34.300,
        centre_lng=108.900,
        boundary=square_boundary(34.300, 108.850, 0.045),
    )

    # when
    location = locate_point(34.300, 108.811)

    # then
    assert location.street == far
    assert location.method == LocateMethod.BOUNDARY
    assert location.distance_km == pytest.approx(8.1, abs=0.2)
    assert near.code == "a"


@override_settings(REGION_LOOKUP_MAX_DISTANCE_KM=5.0)
def test_without_an_area_boundary_a_far_point_is_still_refused() -> None:
    # given: no root boundary, one street
    StreetFactory(centre_lat=34.30, centre_lng=108.80)

    # when / then: ~9 km away
    with pytest.raises(ApplicationError) as excinfo:
        locate_street(34.30, 108.90)
    assert excinfo.value.code == RegionErrorCode.POINT_OUTSIDE_AREA


@pytest.mark.parametrize(
    ("lat", "lng", "bad_field"),
    [(91.0, 108.8, "lat"), (34.3, 181.0, "lng"), (float("nan"), 108.8, "lat")],
)
def test_out_of_range_coordinates_are_invalid(lat: float, lng: float, bad_field: str) -> None:
    with pytest.raises(ApplicationError) as excinfo:
        locate_street(lat, lng)
    assert excinfo.value.code == "invalid"
    assert excinfo.value.status == 400
    assert list(excinfo.value.extra["fields"]) == [bad_field]


def test_a_warm_lookup_does_no_query(
    xixian: dict[str, Region], django_assert_num_queries: Any
) -> None:
    # given
    with django_assert_num_queries(1):
        locate_street(*SANQIAO_CENTRE)  # builds the index

    # when / then
    with django_assert_num_queries(0):
        for _ in range(50):
            locate_street(*FENGDONG_POINT)


def test_saving_a_region_refreshes_the_index() -> None:
    # given
    StreetFactory(code="first", centre_lat=34.30, centre_lng=108.80)
    assert locate_street(34.30, 108.85).code == "first"

    # when: a closer street appears
    StreetFactory(code="second", centre_lat=34.30, centre_lng=108.85)

    # then
    assert locate_street(34.30, 108.85).code == "second"


def test_a_change_made_by_another_process_is_picked_up(
    django_assert_num_queries: Any,
) -> None:
    # given: a warm index
    StreetFactory(code="first", centre_lat=34.30, centre_lng=108.80)
    locate_street(34.30, 108.80)

    # when: another process committed a change (bumped the shared generation)
    cache.set(geo.GENERATION_CACHE_KEY, "from-another-process", timeout=None)

    # then: the next lookup rebuilds (one query) and the one after is warm again
    with django_assert_num_queries(1):
        locate_street(34.30, 108.80)
    with django_assert_num_queries(0):
        locate_street(34.30, 108.80)


def test_inactive_town_switches_off_its_streets() -> None:
    # given
    town = NewTownFactory(is_active=False)
    StreetFactory(code="orphaned", parent=town, centre_lat=34.30, centre_lng=108.80)
    StreetFactory(code="live", centre_lat=34.30, centre_lng=108.83)

    # when / then: the nearer street is under an inactive town
    assert locate_street(34.30, 108.80).code == "live"


def test_the_warm_index_is_offered_only_at_its_own_generation(
    xixian: dict[str, Region], django_assert_num_queries: Any
) -> None:
    index = geo.street_index()
    with django_assert_num_queries(0):
        assert geo.street_index_if_current(index.generation) is index
        assert geo.street_index_if_current("another-process") is None
        assert geo.street_index_if_current(None) is None

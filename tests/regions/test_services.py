"""Loader, tree selectors and point → street lookup."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import override_settings

from apps.accounts.models import Membership
from apps.core.errors import ApplicationError
from apps.regions import geo
from apps.regions.errors import RegionErrorCode
from apps.regions.models import Region, RegionKind
from apps.regions.selectors import (
    LocateMethod,
    locate_point,
    locate_street,
    region_ancestors,
    region_descendants,
    region_tree,
)
from apps.regions.services import default_fixture_path, regions_load, regions_load_fixture
from tests.factories.accounts import UserFactory
from tests.factories.incidents import IncidentFactory
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
    assert counts == {"created": 4, "updated": 0, "unchanged": 0, "retired": 0, "total": 4}
    assert Region.objects.get(code="t-unit").path == "/t-root/t-town/t-street/t-unit/"


def test_loading_twice_changes_nothing() -> None:
    # given
    regions_load(nodes=SMALL_TREE)
    before = dict(Region.objects.values_list("code", "updated_at"))

    # when
    counts = regions_load(nodes=SMALL_TREE)

    # then
    assert counts == {"created": 0, "updated": 0, "unchanged": 4, "retired": 0, "total": 4}
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


def _fixture_without(tmp_path: Path, *codes: str) -> Path:
    """The committed fixture minus ``codes``, as a new file."""
    data = json.loads(default_fixture_path().read_text(encoding="utf-8"))
    data["nodes"] = [n for n in data["nodes"] if n["code"] not in codes]
    path = tmp_path / "next-year.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_a_unit_the_next_fixture_drops_is_kept_inactive_with_what_refers_to_it(
    xixian: dict[str, Region], tmp_path: Path
) -> None:
    # given: three communities of 三桥, one with a duty officer, one with an incident
    officer, incident_unit, unused = (
        xixian["fd-sanqiao-u01"],
        xixian["fd-sanqiao-u02"],
        xixian["fd-sanqiao-u03"],
    )
    membership = Membership.objects.create(
        user=UserFactory(), region=officer, role=Membership.Role.OPERATOR
    )
    incident = IncidentFactory(region=incident_unit)
    hand_made = UnitFactory(code="sanqiao-estate", parent=xixian["fd-sanqiao"])
    dropped = ("fd-sanqiao-u01", "fd-sanqiao-u02", "fd-sanqiao-u03")

    # when: next year's fixture lacks them (and never had the hand-made one)
    counts = regions_load_fixture(_fixture_without(tmp_path, *dropped))

    # then: nothing deleted; the dropped ones are switched off, the rest untouched
    assert counts["retired"] == 3
    assert counts["created"] == counts["updated"] == 0
    assert set(Region.objects.filter(code__in=dropped).values_list("code", "is_active")) == {
        (code, False) for code in dropped
    }
    membership.refresh_from_db()
    incident.refresh_from_db()
    assert (membership.region, incident.region) == (officer, incident_unit)
    assert Region.objects.get(pk=unused.pk).path == unused.path
    hand_made.refresh_from_db()
    assert hand_made.is_active
    assert Region.objects.count() == len(xixian) + 1


def test_retiring_is_idempotent_and_a_unit_that_comes_back_is_active_again(
    xixian: dict[str, Region], tmp_path: Path
) -> None:
    # given: retired once
    smaller = _fixture_without(tmp_path, "fd-sanqiao-u01")
    regions_load_fixture(smaller)
    before = dict(Region.objects.values_list("code", "updated_at"))

    # when / then: again: nothing to do
    assert regions_load_fixture(smaller)["retired"] == 0
    assert dict(Region.objects.values_list("code", "updated_at")) == before

    # when / then: the full fixture has it again
    counts = regions_load_fixture()
    assert (counts["updated"], counts["retired"]) == (1, 0)
    assert Region.objects.get(code="fd-sanqiao-u01").is_active


def test_a_partial_load_retires_nothing(xixian: dict[str, Region]) -> None:
    # regions_load(nodes=...) may upsert a few nodes: only a whole fixture file retires
    active_before = Region.objects.filter(is_active=True).count()
    counts = regions_load(nodes=SMALL_TREE)
    assert counts["retired"] == 0
    assert Region.objects.filter(is_active=True).count() == active_before + len(SMALL_TREE)


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
    # The 9 NBS units; the 8 research villages NBS does not list are inactive, hidden.
    assert len(mawang["children"]) == 9
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


def test_the_lookup_descends_into_a_community_that_has_a_boundary() -> None:
    # given: a street with a boundary and two communities, one with a (synthetic) boundary
    street = StreetFactory(
        code="s",
        centre_lat=34.300,
        centre_lng=108.850,
        boundary=square_boundary(34.3, 108.85, 0.05),
    )
    mapped = UnitFactory(
        code="s-u01", parent=street, boundary=square_boundary(34.310, 108.860, 0.005)
    )
    UnitFactory(code="s-u02", parent=street, kind=RegionKind.COMMUNITY)

    # when
    inside = locate_point(34.311, 108.861)
    elsewhere = locate_point(34.290, 108.840)

    # then: the report is still the street's; the community comes with it when known
    assert (inside.street, inside.method, inside.community) == (
        street,
        LocateMethod.BOUNDARY,
        mapped,
    )
    assert (elsewhere.street, elsewhere.community) == (street, None)


def test_a_community_boundary_decides_the_street_where_no_street_boundary_does() -> None:
    # given: streets without boundaries; the point is nearer A's centre but inside a
    # community of B
    StreetFactory(code="a", centre_lat=34.300, centre_lng=108.800)
    far = StreetFactory(code="b", centre_lat=34.300, centre_lng=108.900)
    community = UnitFactory(
        code="b-u01", parent=far, boundary=square_boundary(34.300, 108.830, 0.01)
    )

    # when
    location = locate_point(34.300, 108.828)

    # then
    assert (location.street, location.method, location.community) == (
        far,
        LocateMethod.COMMUNITY_BOUNDARY,
        community,
    )


def test_an_inactive_community_is_never_the_answer() -> None:
    street = StreetFactory(code="s", centre_lat=34.300, centre_lng=108.850)
    UnitFactory(
        code="s-u01",
        parent=street,
        is_active=False,
        boundary=square_boundary(34.300, 108.850, 0.01),
    )
    assert locate_point(34.300, 108.850).community is None


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

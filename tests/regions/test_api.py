"""The regions API: scoped tree/list/detail and point lookup, with the error envelope."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.regions.models import Region
from tests.factories.regions import square_boundary
from tests.regions.conftest import BEIJING, BELL_TOWER, SANQIAO_CENTRE

pytestmark = pytest.mark.django_db

TREE = reverse("v1:regions-tree")
LIST = reverse("v1:regions-list")
LOOKUP = reverse("v1:regions-lookup")


def detail(code: str) -> str:
    return reverse("v1:regions-detail", kwargs={"code": code})


def communities(code: str) -> str:
    return reverse("v1:regions-communities", kwargs={"code": code})


@pytest.fixture
def fengxi_operator(xixian: dict[str, Region], make_user: Any, api_client: APIClient) -> APIClient:
    api_client.force_authenticate(make_user("fx-op", region=xixian["fengxi"]))
    return api_client


def _codes(tree: list[dict[str, Any]]) -> list[str]:
    return [n["code"] for n in tree] + [c for n in tree for c in _codes(n["children"])]


# --- tree ----------------------------------------------------------------------------------


def test_the_tree_of_a_fengxi_operator_holds_only_fengxi(
    fengxi_operator: APIClient, xixian: dict[str, Region], django_assert_max_num_queries: Any
) -> None:
    # when
    with django_assert_max_num_queries(2):  # scope + regions, however big the tree
        response = fengxi_operator.get(TREE)

    # then
    assert response.status_code == 200
    body = response.json()
    assert [node["code"] for node in body] == ["fengxi"]
    codes = _codes(body)
    assert "fx-mawang-u14" in codes
    assert all(xixian[code].path.startswith("/xixian/fengxi/") for code in codes)
    assert "hist-dawang" not in codes  # inactive


def test_a_citizen_without_memberships_gets_an_empty_tree(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    api_client.force_authenticate(make_user("citizen"))
    response = api_client.get(TREE)
    assert response.status_code == 200
    assert response.json() == []


def test_a_superuser_gets_the_whole_tree_from_the_root(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    api_client.force_authenticate(make_user("root", is_superuser=True))
    body = api_client.get(TREE).json()
    assert [n["code"] for n in body] == ["xixian"]
    assert len(body[0]["children"]) == 5
    assert body[0]["centre"] == {"lat": 34.36, "lng": 108.79}


def test_the_tree_answer_is_exactly_what_the_documented_serializer_produces(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    # given: the view returns the selector's dicts without running the serializer
    from apps.regions.api.serializers import RegionTreeNodeSerializer

    api_client.force_authenticate(make_user("root2", is_superuser=True))
    # when
    body = api_client.get(TREE).json()
    # then: the schema's serializer gives the same JSON, node for node
    assert body == RegionTreeNodeSerializer(body, many=True).data


# --- list ----------------------------------------------------------------------------------


def test_the_list_of_a_fengxi_operator_holds_only_fengxi_rows_in_tree_order(
    fengxi_operator: APIClient, xixian: dict[str, Region], django_assert_max_num_queries: Any
) -> None:
    # when
    with django_assert_max_num_queries(2):  # scope + one page of regions
        response = fengxi_operator.get(LIST, {"page_size": 200})

    # then
    assert response.status_code == 200
    rows = response.json()["results"]
    paths = [row["path"] for row in rows]
    assert paths == sorted(paths)
    assert all(path.startswith("/xixian/fengxi/") for path in paths)
    assert len(rows) == Region.objects.filter(path__startswith="/xixian/fengxi/").count()
    mawang = next(row for row in rows if row["code"] == "fx-mawang")
    assert mawang["parent_code"] == "fengxi"
    assert mawang["centre"] == {"lat": 34.222, "lng": 108.737}
    assert mawang["estimated"] is True


def test_the_list_is_cursor_paginated(fengxi_operator: APIClient) -> None:
    # when
    first = fengxi_operator.get(LIST, {"page_size": 10}).json()
    second = fengxi_operator.get(first["next"]).json()

    # then
    assert len(first["results"]) == 10
    assert first["results"][-1]["path"] < second["results"][0]["path"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"level": "street"},
            {"fx-diaotai", "fx-gaoqiao", "fx-mawang", "fx-chenyangzhai", "hist-dawang"},
        ),
        ({"level": "street", "management": "shared_xianyang"}, {"fx-chenyangzhai"}),
        ({"level": "street", "is_active": "false"}, {"hist-dawang"}),
        ({"parent": "hist-dawang"}, {"hist-dawang-u01"}),
        ({"parent": "fd-wangsi"}, set()),  # outside the scope: filtered away, not leaked
        (
            {"parent": "fx-mawang", "level": "unit", "q": "泥河"},
            {"fx-mawang-u12", "fx-mawang-u13", "fx-mawang-u17"},
        ),
        ({"q": "西张一"}, {"fd-shanglin-u01"}),
        ({"q": "三桥"}, set()),  # 三桥 is 沣东's
    ],
)
def test_the_list_filters_stay_inside_the_scope(
    fengxi_operator: APIClient, params: dict[str, str], expected: set[str]
) -> None:
    response = fengxi_operator.get(LIST, params)
    assert response.status_code == 200
    assert {row["code"] for row in response.json()["results"]} == expected


def test_an_unknown_filter_value_is_an_invalid_request(fengxi_operator: APIClient) -> None:
    response = fengxi_operator.get(LIST, {"level": "planet"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "level" in response.json()["extra"]["fields"]


# --- detail --------------------------------------------------------------------------------


def test_the_detail_carries_the_breadcrumb_root_first(fengxi_operator: APIClient) -> None:
    response = fengxi_operator.get(detail("fx-mawang-u01"))
    assert response.status_code == 200
    body = response.json()
    assert body["name_zh"] == "马王村"
    assert [a["code"] for a in body["ancestors"]] == ["xixian", "fengxi", "fx-mawang"]
    assert body["sources"] == ["NBS2022", "S26"]


def test_the_root_detail_shows_its_estimated_boundary(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    api_client.force_authenticate(make_user("root", is_superuser=True))
    body = api_client.get(detail("xixian")).json()
    assert body["boundary"]["type"] == "Polygon"
    assert body["ancestors"] == []
    assert body["parent_code"] is None


@pytest.mark.parametrize("code", ["fd-sanqiao", "fengdong", "no-such-region"])
def test_regions_outside_the_scope_look_exactly_like_unknown_ones(
    fengxi_operator: APIClient, code: str
) -> None:
    response = fengxi_operator.get(detail(code))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- lookup --------------------------------------------------------------------------------


def test_lookup_names_the_street_its_ancestors_and_how_it_was_decided(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    # given: any authenticated user, even one without memberships
    api_client.force_authenticate(make_user("citizen"))

    # when
    response = api_client.get(LOOKUP, {"lat": SANQIAO_CENTRE[0], "lng": SANQIAO_CENTRE[1]})

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["street"]["code"] == "fd-sanqiao"
    assert body["street"]["name_zh"] == "三桥街道"
    assert body["street"]["path"] == "/xixian/fengdong/fd-sanqiao/"
    assert [a["code"] for a in body["ancestors"]] == ["xixian", "fengdong"]
    assert body["method"] == "nearest_centre"
    assert body["distance_km"] == 0.0
    assert body["estimated"] is True


@pytest.mark.parametrize("point", [BELL_TOWER, BEIJING], ids=["xian-bell-tower", "beijing"])
def test_lookup_outside_the_new_area_is_unprocessable(
    fengxi_operator: APIClient, point: tuple[float, float]
) -> None:
    response = fengxi_operator.get(LOOKUP, {"lat": point[0], "lng": point[1]})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "point_outside_area"
    assert body["extra"] == {"lat": point[0], "lng": point[1]}


@pytest.mark.parametrize(
    ("params", "bad_fields"),
    [
        ({"lat": "abc", "lng": "108.8"}, {"lat"}),
        ({"lat": "91", "lng": "108.8"}, {"lat"}),
        ({"lat": "34.3", "lng": "-181"}, {"lng"}),
        ({"lat": "nan", "lng": "108.8"}, {"lat"}),
        ({}, {"lat", "lng"}),
    ],
    ids=["not-a-number", "lat-above-90", "lng-below-180", "nan", "missing"],
)
def test_lookup_with_bad_coordinates_is_invalid_with_field_errors(
    fengxi_operator: APIClient, params: dict[str, str], bad_fields: set[str]
) -> None:
    response = fengxi_operator.get(LOOKUP, params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["extra"]["fields"]) == bad_fields


def test_lookup_is_throttled_with_its_own_scope(
    fengxi_operator: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the region_lookup rate is 2 a minute
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"region_lookup": "2/min"})
    point = {"lat": SANQIAO_CENTRE[0], "lng": SANQIAO_CENTRE[1]}

    # when
    statuses = [fengxi_operator.get(LOOKUP, point).status_code for _ in range(3)]

    # then
    assert statuses == [200, 200, 429]
    assert fengxi_operator.get(LOOKUP, point).json()["code"] == "rate_limited"


@pytest.mark.parametrize("url", [TREE, LIST, LOOKUP, detail("fengxi"), communities("fx-mawang")])
def test_anonymous_requests_are_refused_with_the_envelope(
    xixian: dict[str, Region], api_client: APIClient, url: str
) -> None:
    response = api_client.get(url, {"lat": 34.3, "lng": 108.8})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- communities of a street -----------------------------------------------------------------


def test_anyone_logged_in_reads_a_streets_communities_then_villages_in_nbs_order(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient, django_assert_num_queries: Any
) -> None:
    # given: a citizen (no membership, no scope): the list is public reference data
    api_client.force_authenticate(make_user("citizen"))

    # when
    with django_assert_num_queries(2):  # the street with its chain, its units
        response = api_client.get(communities("fd-sanqiao"))

    # then
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 45
    assert rows[0] == {
        "code": "fd-sanqiao-u01",
        "name_zh": "三桥火车站社区",
        "name_en": "",
        "kind": "community",
        "nbs_code": "610112002001",
        "nbs_name": "三桥火车站社区居委会",
        "urban_rural": "111",
        "source_year": 2022,
        "centre": None,
    }
    kinds = [row["kind"] for row in rows]
    assert kinds == sorted(kinds)  # "community" before "village"
    assert [row["nbs_code"] for row in rows] == sorted(row["nbs_code"] for row in rows)


def test_the_communities_are_searchable_by_name_or_nbs_name(
    fengxi_operator: APIClient,
) -> None:
    by_name = fengxi_operator.get(communities("fx-mawang"), {"q": "泥河"}).json()
    by_nbs_name = fengxi_operator.get(communities("fx-mawang"), {"q": "村委会"}).json()
    # the inactive 大泥河村/小泥河村 of the research are not offered
    assert [row["name_zh"] for row in by_name] == ["新泥河村"]
    assert {row["name_zh"] for row in by_nbs_name} == {
        "客省庄村",
        "新旺村",
        "大原村",
        "新庄村",
        "沙河村",
    }


def test_estates_are_not_communities(fengxi_operator: APIClient) -> None:
    rows = fengxi_operator.get(communities("kg-dizhang")).json()
    assert len(rows) == 9
    assert {row["kind"] for row in rows} == {"community", "village"}


@pytest.mark.parametrize("code", ["nowhere", "hist-dawang", "fengxi", "fx-mawang-u01"])
def test_only_an_active_street_has_communities(fengxi_operator: APIClient, code: str) -> None:
    response = fengxi_operator.get(communities(code))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_street_without_communities_yet_answers_an_empty_list(
    fengxi_operator: APIClient,
) -> None:
    # 沣京街道 is newer than the NBS tables
    assert fengxi_operator.get(communities("fd-fengjing")).json() == []


def test_a_too_long_query_is_invalid(fengxi_operator: APIClient) -> None:
    response = fengxi_operator.get(communities("fx-mawang"), {"q": "村" * 51})
    assert response.status_code == 400
    assert "q" in response.json()["extra"]["fields"]


def test_the_list_and_detail_carry_the_nbs_name_class_and_year(
    fengxi_operator: APIClient,
) -> None:
    body = fengxi_operator.get(detail("fd-shanglin-u01")).json()
    assert (body["nbs_code"], body["nbs_name"]) == ("610402008203", "西张一村委会")
    assert (body["urban_rural"], body["source_year"]) == ("111", 2022)
    street = fengxi_operator.get(detail("fx-diaotai")).json()
    assert (street["nbs_code"], street["urban_rural"], street["source_year"]) == (
        "610402008",
        "",
        2023,
    )


def test_lookup_names_the_community_when_one_has_a_boundary(
    xixian: dict[str, Region], make_user: Any, api_client: APIClient
) -> None:
    # given: a synthetic boundary on one of 三桥's communities, around the street centre
    unit = xixian["fd-sanqiao-u07"]
    unit.boundary = square_boundary(SANQIAO_CENTRE[0], SANQIAO_CENTRE[1], 0.002)
    unit.save(update_fields=["boundary"])
    api_client.force_authenticate(make_user("citizen"))

    # when
    inside = api_client.get(LOOKUP, {"lat": SANQIAO_CENTRE[0], "lng": SANQIAO_CENTRE[1]})
    outside = api_client.get(LOOKUP, {"lat": 34.27, "lng": 108.85})

    # then: routed to the street either way
    assert inside.json()["street"]["code"] == "fd-sanqiao"
    assert inside.json()["community"]["code"] == "fd-sanqiao-u07"
    assert inside.json()["community"]["path"] == unit.path
    assert outside.json()["street"]["code"] == "fd-sanqiao"
    assert outside.json()["community"] is None

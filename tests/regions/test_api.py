"""The regions API: scoped tree/list/detail and point lookup, with the error envelope."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from apps.regions.models import Region
from tests.regions.conftest import BEIJING, BELL_TOWER, SANQIAO_CENTRE

pytestmark = pytest.mark.django_db

TREE = reverse("v1:regions-tree")
LIST = reverse("v1:regions-list")
LOOKUP = reverse("v1:regions-lookup")


def detail(code: str) -> str:
    return reverse("v1:regions-detail", kwargs={"code": code})


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
    assert body["sources"] == ["S26"]


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


@pytest.mark.parametrize("url", [TREE, LIST, LOOKUP, detail("fengxi")])
def test_anonymous_requests_are_refused_with_the_envelope(
    xixian: dict[str, Region], api_client: APIClient, url: str
) -> None:
    response = api_client.get(url, {"lat": 34.3, "lng": 108.8})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"

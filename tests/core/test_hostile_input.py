"""Hostile input gets a 4xx in the envelope, everywhere, and takes nothing down.

Each case is one of the causes an outside attack found server errors with: deeply nested
JSON, a lone surrogate echoed by a validation error, NUL reaching PostgreSQL (body, path,
query), a body that is not an object, an integer beyond its column, a duration beyond the
calendar, an impossible timestamp offset, and a body over the size limit.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from django.core.signals import request_finished
from django.http import HttpResponse
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Device
from apps.core.middleware import RequestGuardMiddleware
from apps.incidents.models import Report
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import CategoryFactory, IncidentFactory
from tests.support.servers import asgi_server

pytestmark = pytest.mark.django_db

NESTED = "[" * 5000 + "]" * 5000
SURROGATE = '{"token": "abc", "platform": "\\ud800"}'
NUL_BODY = '{"category": "A\\u0000", "lat": 34.27, "lng": 108.85}'


@pytest.fixture
def world() -> dict[str, Any]:
    regions_load_fixture()
    CategoryFactory(code="A01")
    operator = StaffUserFactory(region=Region.objects.get(code="fengdong"))
    citizen = CitizenFactory()
    incident = IncidentFactory(region=Region.objects.get(code="fd-sanqiao"))
    return {
        "operator": {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(operator)}"},
        "citizen": {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(citizen)}"},
        "anonymous": {},
        "incident": incident,
    }


# Each case: who, method, path, body, the status and the code expected.
CASES = [
    ("citizen", "POST", "/api/v1/devices/", NESTED, 400, "parse_error"),
    ("anonymous", "POST", "/api/v1/reports/", NESTED, 400, "parse_error"),
    ("citizen", "POST", "/api/v1/devices/", SURROGATE, 400, "parse_error"),
    ("anonymous", "POST", "/api/v1/reports/", NUL_BODY, 400, "parse_error"),
    ("citizen", "POST", "/api/v1/devices/", "null", 400, "parse_error"),
    ("citizen", "POST", "/api/v1/devices/", "[1, 2, 3]", 400, "parse_error"),
    ("anonymous", "POST", "/api/v1/reports/sos/", '"SOS"', 400, "parse_error"),
    ("anonymous", "GET", "/api/v1/reports/track/%00/", None, 400, "text_not_allowed"),
    ("operator", "GET", "/api/v1/regions/?q=%00", None, 400, "text_not_allowed"),
    (
        "operator",
        "GET",
        "/api/v1/positions/latest/?max_age_minutes=99999999999",
        None,
        400,
        "invalid",
    ),
    (
        "operator",
        "GET",
        "/api/v1/incidents/?created_before=9999-12-31T23:59:59-23:00",
        None,
        400,
        "invalid",
    ),
    (
        "operator",
        "GET",
        "/api/v1/incidents/?created_before=2026-01-01T00:00%2B99:00",
        None,
        400,
        "invalid",
    ),
    ("anonymous", "POST", "/api/v1/reports/", "x" * 3_000_000, 413, "request_too_large"),
]


@pytest.mark.parametrize(("who", "method", "url", "body", "status", "code"), CASES)
def test_hostile_input_is_a_4xx_envelope_and_writes_nothing(
    world: dict[str, Any], who: str, method: str, url: str, body: str | None, status: int, code: str
) -> None:
    # given
    client = Client(raise_request_exception=False)
    # when
    if method == "GET":
        response = client.get(url, **world[who])
    else:
        response = client.post(url, data=body, content_type="application/json", **world[who])
    # then
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    answer = response.json()
    assert set(answer) == {"code", "message", "extra"}
    assert answer["code"] == code
    assert Report.objects.count() == 0
    assert Device.objects.count() == 0


def test_casualty_figures_beyond_any_column_are_refused(world: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    response = client.post(
        f"/api/v1/incidents/{world['incident'].pk}/casualties/",
        data={"deaths": 10**12},
        content_type="application/json",
        **world["operator"],
    )
    assert response.status_code == 400
    assert response.json()["extra"]["fields"]["deaths"][0]["code"] == "max_value"


def test_a_surrogate_is_refused_with_debug_on_too(world: dict[str, Any], settings: Any) -> None:
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    response = client.post(
        "/api/v1/devices/", data=SURROGATE, content_type="application/json", **world["citizen"]
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_unknown_api_paths_and_methods_answer_json_not_html(world: dict[str, Any]) -> None:
    client = Client(raise_request_exception=False)
    missing = client.get("/api/v1/no-such-thing/", **world["operator"])
    wrong = client.delete("/api/v1/reports/", **world["anonymous"])
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


# --- The guard: no exception leaves a request unfinished ----------------------------------


def test_an_exception_escaping_django_becomes_a_json_500_and_the_request_finishes() -> None:
    # given: the guard around a handler chain that raises past Django's own handling
    finished: list[Any] = []

    def on_finished(**kwargs: Any) -> None:
        finished.append(kwargs)

    def chain(request: Any) -> HttpResponse:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    guard = RequestGuardMiddleware(chain)
    from django.test import RequestFactory

    request = RequestFactory().get("/api/v1/me/")
    # when
    response = guard(request)
    request_finished.connect(on_finished)
    try:
        response.close()  # what the server does with every answer it sends
    finally:
        request_finished.disconnect(on_finished)
    # then
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert finished  # the request finished: its database connection is released


# --- The pool: hostile requests do not take the API down --------------------------------


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_hostile_requests_leave_the_pool_whole_on_the_default_debug_server() -> None:
    # given: the embedded default's DEBUG on, a small pool, a citizen
    regions_load_fixture()
    citizen = CitizenFactory()
    auth = {"Authorization": f"Bearer {AccessToken.for_user(citizen)}"}
    env = {"DJANGO_DEBUG": "true", "DB_POOL_MAX_SIZE": "3", "DB_POOL_TIMEOUT": "3"}
    hostile = [
        ("POST", "/api/v1/devices/", SURROGATE),
        ("POST", "/api/v1/devices/", NESTED),
        ("POST", "/api/v1/devices/", "[]"),
        ("GET", "/api/v1/regions/?q=%00", None),
        ("GET", "/api/v1/reports/track/%00/", None),
    ]

    async def attack(base: str) -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(base_url=base, timeout=20, trust_env=False) as http:
            codes = []
            for _round in range(6):
                for method, url, body in hostile:
                    response = await http.request(
                        method,
                        url,
                        content=body,
                        headers={**auth, "Content-Type": "application/json"},
                    )
                    codes.append(response.status_code)
            normal = [(await http.get("/api/v1/me/", headers=auth)).status_code for _ in range(5)]
        return codes, normal

    # when: more hostile requests than the pool has connections, then normal ones
    with asgi_server(env) as base:
        codes, normal = asyncio.run(attack(base))
    # then
    assert set(codes) == {400}
    assert normal == [200] * 5

"""Errors: always the spec's ``[{code, description}]`` / ``<errors>``, in the asked format."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.open311 import selectors
from tests.open311 import spec_examples as spec
from tests.open311.conftest import (
    JURISDICTION,
    as_json,
    as_xml,
    json_shape,
    spec_xml_shape,
    url,
    xml_shape,
)

pytestmark = pytest.mark.django_db

READ_PATHS = ["discovery", "services", "services/N02", "requests"]


def assert_json_error(response: Any, status: int, *, contains: str = "") -> str:
    assert response.status_code == status
    data = as_json(response)
    assert json_shape(data) == json_shape(spec.ERRORS_JSON)
    (error,) = data
    assert error["code"] == status
    assert contains in error["description"]
    return str(error["description"])


def assert_xml_error(response: Any, status: int, *, contains: str = "") -> str:
    assert response.status_code == status
    root = as_xml(response)
    spec_root, spec_shape = spec_xml_shape(spec.ERRORS_XML)
    assert root.tag == spec_root == "errors"
    assert xml_shape(root) == spec_shape
    assert root.findtext("error/code") == str(status)
    description = root.findtext("error/description") or ""
    assert contains in description
    return description


# --- jurisdiction_id ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_unknown_jurisdiction_is_404_everywhere(client: Client, xixian: Any, path: str) -> None:
    # when: the spec's sample jurisdiction
    json_response = client.get(url(f"{path}.json?jurisdiction_id={spec.SPEC_JURISDICTION}"))
    xml_response = client.get(url(f"{path}.xml?jurisdiction_id={spec.SPEC_JURISDICTION}"))

    # then
    assert_json_error(json_response, 404, contains="jurisdiction_id")
    assert_xml_error(xml_response, 404, contains=spec.SPEC_JURISDICTION)


@pytest.mark.parametrize("given", [JURISDICTION, JURISDICTION.upper(), ""])
def test_our_jurisdiction_or_none_is_accepted(client: Client, xixian: Any, given: str) -> None:
    # when
    response = client.get(url(f"services.json?jurisdiction_id={given}"))

    # then: one jurisdiction served, so the argument is optional (empty = not given)
    assert response.status_code == 200


def test_the_jurisdiction_is_configurable(client: Client, xixian: Any, settings: Any) -> None:
    # given
    settings.OPEN311_JURISDICTION_ID = "xixian.example.cn"

    # then
    assert client.get(url("services.json?jurisdiction_id=xixian.example.cn")).status_code == 200
    assert client.get(url(f"services.json?jurisdiction_id={JURISDICTION}")).status_code == 404


# --- not found ------------------------------------------------------------------------------------


def test_an_unknown_service_definition_is_404(client: Client, xixian: Any) -> None:
    assert_json_error(client.get(url("services/033.json")), 404, contains="033")
    assert_xml_error(client.get(url("services/033.xml")), 404, contains="033")


def test_a_service_definition_without_code_is_400(client: Client, xixian: Any) -> None:
    assert_json_error(client.get(url("services/.json")), 400, contains="service_code")


def test_an_unknown_request_is_404(client: Client, xixian: Any) -> None:
    # when: the spec's sample id, and ids that cannot be ours
    for request_id in ("123456", "abc", "9" * 30):
        assert_json_error(client.get(url(f"requests/{request_id}.json")), 404, contains=request_id)
    assert_xml_error(client.get(url("requests/123456.xml")), 404, contains="123456")


def test_tokens_are_never_issued_so_none_is_found(client: Client, xixian: Any) -> None:
    assert_json_error(client.get(url("tokens/12345.json")), 404, contains="12345")


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("nothing.json", "json"),
        ("services.csv", "xml"),
        ("services", "xml"),
        ("requests/1/comments.json", "json"),
        ("", "xml"),
    ],
)
def test_anything_else_under_the_prefix_is_an_open311_404(
    client: Client, path: str, fmt: str
) -> None:
    # when
    response = client.get(url(path))

    # then: never the project's {code, message, extra} envelope, never HTML
    if fmt == "json":
        assert_json_error(response, 404)
    else:
        assert_xml_error(response, 404)


# --- methods and arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"), [("delete", "requests.json"), ("put", "services.json")]
)
def test_a_wrong_method_is_405_with_allow(
    client: Client, xixian: Any, method: str, path: str
) -> None:
    # when
    response = getattr(client, method)(url(path))

    # then
    assert_json_error(response, 405, contains=method.upper())
    assert "GET" in response["Allow"]


def test_a_wrong_method_answers_xml_for_xml(client: Client, xixian: Any) -> None:
    assert_xml_error(client.post(url("services.xml")), 405)


@pytest.mark.parametrize(
    ("query", "contains"),
    [
        ("status=pending", "status"),
        ("start_date=yesterday", "start_date"),
        ("end_date=2025-13-40T00:00:00Z", "end_date"),
        ("start_date=2025-07-10T00:00:00Z&end_date=2025-07-01T00:00:00Z", "start_date"),
        ("start_date=2025-01-01T00:00:00Z&end_date=2025-06-01T00:00:00Z", "90 days"),
    ],
)
def test_bad_request_arguments_are_400(
    client: Client, xixian: Any, query: str, contains: str
) -> None:
    assert_json_error(client.get(url(f"requests.json?{query}")), 400, contains=contains)
    assert_xml_error(client.get(url(f"requests.xml?{query}")), 400, contains=contains)


def test_several_problems_come_back_together(client: Client, xixian: Any, raw_key: str) -> None:
    # when
    response = client.post(
        url("requests.xml"),
        data=f"api_key={raw_key}&lat=north&long=108.8&media_url=ftp%3A%2F%2Fx",
        content_type=spec.POST_CONTENT_TYPE,
    )

    # then: a list of errors, each with the HTTP status as its code
    assert response.status_code == 400
    root = as_xml(response)
    errors = [(e.findtext("code"), e.findtext("description") or "") for e in root]
    assert [code for code, _text in errors] == ["400", "400", "400"]
    assert "service_code" in errors[0][1]
    assert errors[1][1].startswith("lat ")
    assert "media_url" in errors[2][1]


# --- never a 500 ---------------------------------------------------------------------------


def test_an_unexpected_failure_is_the_general_service_error(
    client: Client, xixian: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    def broken() -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(selectors, "service_categories", broken)

    # when
    json_response = client.get(url("services.json"))
    xml_response = client.get(url("services.xml"))

    # then: the spec's "400 - General service error", and nothing internal leaks
    description = assert_json_error(json_response, 400, contains="General service error")
    assert "fire" not in description
    assert_xml_error(xml_response, 400)


def test_text_that_xml_cannot_hold_is_dropped_not_fatal(client: Client, xixian: Any) -> None:
    # when: a control character in the URL is echoed in the description
    response = client.get(url("services/N%0199.xml"))

    # then: still well-formed
    assert_xml_error(response, 404)


# --- Refusals made before the views ---------------------------------------------------------------


@pytest.mark.parametrize("query", ["status=open%00", "%00=1", "service_code=A01%00"])
def test_a_nul_or_broken_text_in_the_query_is_an_open311_400_not_the_api_envelope(
    client: Client, xixian: Any, query: str
) -> None:
    # when: text the request guard refuses before any view (apps.core.middleware)
    json_response = client.get(url(f"requests.json?{query}"))
    xml_response = client.get(url(f"services.xml?{query}"))

    # then: the spec's error document, in the asked format (found by tests/fuzz)
    assert_json_error(json_response, 400, contains="not allowed")
    assert_xml_error(xml_response, 400, contains="not allowed")

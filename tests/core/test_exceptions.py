"""Every API error is the envelope {code, message, extra}; never an HTML page or a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.urls")]


def assert_envelope(body: dict, code: str) -> None:
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


def test_validation_errors_carry_per_field_detail(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/v1/groups/", {"level": 9}, format="json")
    # then
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, "invalid")
    fields = body["extra"]["fields"]
    assert fields["name"][0]["code"] == "required"
    assert fields["level"][0]["code"] == "max_value"


def test_malformed_json_is_a_parse_error(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/groups/", data='{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert_envelope(response.json(), "parse_error")


def test_unsupported_content_type_is_refused_with_415(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/groups/", data="name=x", content_type="text/csv")
    assert response.status_code == 415
    assert_envelope(response.json(), "unsupported_media_type")


def test_application_error_keeps_its_code_and_extra(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/refuse/")
    assert response.status_code == 400
    assert response.json() == {
        "code": "demo_refused",
        "message": "Refused for the test.",
        "extra": {"why": "test"},
    }


def test_wrong_method_is_405_envelope(api_client: APIClient) -> None:
    response = api_client.delete("/api/v1/refuse/")
    assert response.status_code == 405
    assert_envelope(response.json(), "method_not_allowed")


def test_missing_credentials_are_401_not_authenticated(api_client: APIClient) -> None:
    response = api_client.get("/api/v1/private/")
    assert response.status_code == 401
    assert_envelope(response.json(), "not_authenticated")


def test_garbage_bearer_token_is_401_token_invalid(api_client: APIClient) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    response = api_client.get("/api/v1/private/")
    assert response.status_code == 401
    assert_envelope(response.json(), "token_invalid")


def test_throttled_requests_get_429_with_retry_after(api_client: APIClient) -> None:
    # given
    assert api_client.get("/api/v1/throttled/").status_code == 200
    # when
    response = api_client.get("/api/v1/throttled/")
    # then
    assert response.status_code == 429
    body = response.json()
    assert_envelope(body, "rate_limited")
    assert 0 < body["extra"]["retry_after"] <= 60
    assert int(response["Retry-After"]) == body["extra"]["retry_after"]


def test_unknown_api_url_is_a_json_404() -> None:
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert_envelope(response.json(), "not_found")


def test_an_unexpected_crash_is_a_json_500_without_internals() -> None:
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/crash/")
    assert response.status_code == 500
    body = response.json()
    assert_envelope(body, "server_error")
    assert "boom" not in response.content.decode()


def test_a_429_application_error_sets_retry_after(rf) -> None:
    from apps.core.errors import ApplicationError
    from apps.core.exceptions import api_exception_handler

    response = api_exception_handler(
        ApplicationError("otp_locked", "Locked.", extra={"retry_after": 12.2}, status=429), {}
    )
    assert response is not None
    assert response.status_code == 429
    assert response["Retry-After"] == "12"

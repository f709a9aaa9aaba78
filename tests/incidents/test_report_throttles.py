"""Rate limits on public intake: per IP, per device, per phone; SOS on its own budget."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.core.cache.backends.base import CacheKeyWarning
from rest_framework.test import APIClient

from apps.incidents.models import Report
from apps.incidents.throttles import DEFAULT_RATES, rate_for
from apps.regions import geo
from apps.regions.services import regions_load_fixture
from tests.factories.incidents import CategoryFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/"
SOS_URL = "/api/v1/reports/sos/"
SANQIAO = (34.276, 108.85)


@pytest.fixture(autouse=True)
def _area(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    CategoryFactory(code="A01")
    CategoryFactory(code="O99")


def rates(settings: Any, **overrides: str) -> None:
    """Tight limits for the test, everything else generous."""
    base = {
        "report_ip": "100/min",
        "report_device": "100/min",
        "report_phone": "100/min",
        "sos_ip": "100/min",
        "sos_device": "100/min",
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            **base,
            **overrides,
        },
    }


def report(client: APIClient, **extra: Any) -> Any:
    body = {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], **extra.pop("body", {})}
    return client.post(URL, body, format="json", **extra)


def test_too_many_reports_from_one_address_get_429_with_retry_after(
    api_client: APIClient, settings: Any
) -> None:
    # given
    rates(settings, report_ip="2/min")
    assert report(api_client).status_code == 201
    assert report(api_client).status_code == 201
    # when
    refused = report(api_client)
    # then
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["extra"]["retry_after"] > 0
    assert Report.objects.count() == 2


def test_one_device_is_limited_across_addresses(api_client: APIClient, settings: Any) -> None:
    rates(settings, report_device="1/min")
    first = report(api_client, HTTP_X_DEVICE_ID="phone-1", REMOTE_ADDR="10.0.0.1")
    second = report(api_client, HTTP_X_DEVICE_ID="phone-1", REMOTE_ADDR="10.0.0.2")
    other_device = report(api_client, HTTP_X_DEVICE_ID="phone-2", REMOTE_ADDR="10.0.0.2")
    assert first.status_code == 201
    assert second.status_code == 429
    assert other_device.status_code == 201
    assert Report.objects.get(pk=first.json()["id"]).device_id == "phone-1"


def test_one_phone_is_limited_however_it_is_spelled(api_client: APIClient, settings: Any) -> None:
    rates(settings, report_phone="1/min")
    first = report(api_client, body={"phone": "13900000001"}, REMOTE_ADDR="10.0.0.1")
    second = report(api_client, body={"phone": "+86 139-0000-0001"}, REMOTE_ADDR="10.0.0.2")
    assert first.status_code == 201
    assert second.status_code == 429


def test_a_device_id_with_control_characters_is_still_counted_in_a_clean_cache_key(
    api_client: APIClient, settings: Any
) -> None:
    # given: an X-Device-Id the client made up (found by tests/fuzz: the cache warned
    # that such a key breaks memcached)
    rates(settings, sos_device="1/min")
    sos = {"lat": SANQIAO[0], "lng": SANQIAO[1]}
    device = "F~+kY(c\t_ 设备"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        # when
        first = api_client.post(SOS_URL, sos, format="json", HTTP_X_DEVICE_ID=device)
        second = api_client.post(
            SOS_URL, sos, format="json", HTTP_X_DEVICE_ID=device, REMOTE_ADDR="10.0.0.9"
        )
    # then: one counter for that device, across addresses
    assert first.status_code == 201
    assert second.status_code == 429


def test_sos_has_its_own_budget_and_is_still_limited(api_client: APIClient, settings: Any) -> None:
    # given: ordinary reports from this address are exhausted
    rates(settings, report_ip="1/min", sos_ip="2/min")
    assert report(api_client).status_code == 201
    assert report(api_client).status_code == 429
    sos = {"lat": SANQIAO[0], "lng": SANQIAO[1]}
    # when / then: SOS still goes through, up to its own limit
    assert api_client.post(SOS_URL, sos, format="json").status_code == 201
    assert api_client.post(SOS_URL, sos, format="json").status_code == 201
    refused = api_client.post(SOS_URL, sos, format="json")
    assert refused.status_code == 429
    assert "Retry-After" in refused


def test_intake_is_limited_even_without_a_configured_rate(settings: Any) -> None:
    # given: the scopes are missing from settings
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    # then: the built-in defaults apply instead of "unlimited"
    assert rate_for("report_ip") == DEFAULT_RATES["report_ip"]
    assert rate_for("sos_ip") == DEFAULT_RATES["sos_ip"]

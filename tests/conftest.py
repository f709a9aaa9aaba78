"""Project-wide fixtures.

Service-only tests carry ``@pytest.mark.services``: on a bare machine they are skipped
with the reason shown; under ``XEMS_REQUIRE_SERVICES=1`` the settings module refuses to
load without PostgreSQL and Redis, so nothing is silently skipped in CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from apps.core.sms import LocmemSmsBackend
from tests.support.e2e import e2e_env, e2e_worker, fcm  # noqa: F401 (fixtures for all tests)


def pytest_report_header(config: pytest.Config) -> list[str]:
    services = getattr(settings, "XEMS_SERVICES", {})
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return [f"xixian_ems: database={db} services={services}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    services = getattr(settings, "XEMS_SERVICES", {})
    missing = [name for name, up in services.items() if not up]
    if not missing:
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL and Redis; unreachable here: {', '.join(missing)}"
    )
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _clean_sms_outbox() -> Iterator[list]:
    LocmemSmsBackend.outbox.clear()
    yield LocmemSmsBackend.outbox
    LocmemSmsBackend.outbox.clear()


@pytest.fixture
def sms_outbox() -> list:
    return LocmemSmsBackend.outbox


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters and lookup caches must not leak between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()

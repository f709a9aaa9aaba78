"""Liveness and readiness probes."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.core import health

pytestmark = pytest.mark.django_db


def test_liveness_answers_without_touching_dependencies(
    django_assert_num_queries,
) -> None:
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_reports_each_dependency() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["redis"]["status"] == "embedded"  # test settings: no Redis configured
    assert checks["broker"]["status"] == "ok"


def test_readiness_is_503_naming_the_failed_dependency(monkeypatch) -> None:
    # given
    def broken() -> str:
        raise ConnectionError("database down")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    # when
    response = Client().get("/readyz")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "error: ConnectionError"
    assert body["checks"]["broker"]["status"] == "ok"


@pytest.mark.services
def test_readiness_pings_real_redis_and_broker_when_configured(settings) -> None:
    # given
    settings.REDIS_URL = settings.TEST_REDIS_URL
    from xixian_ems.celery import app

    app.conf.broker_url = settings.TEST_REDIS_URL
    try:
        # when
        response = Client().get("/readyz")
    finally:
        app.conf.broker_url = "memory://"
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["redis"]["status"] == "ok"


def test_readiness_fails_when_redis_is_configured_but_unreachable(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["status"].startswith("error")

"""API docs: the OpenAPI schema and interactive docs, served without any CDN."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_as_openapi_3() -> None:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/regions/lookup/" in schema["paths"]


@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_interactive_docs_load_their_assets_from_this_server(path: str) -> None:
    # when
    html = Client().get(path).content.decode()
    # then: every script and stylesheet is a local /static/ URL, never a CDN
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets, html[:500]
    assert all(url.startswith("/static/") for url in assets), assets
    assert "cdn" not in html.lower()

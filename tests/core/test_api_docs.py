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


def test_every_operation_documents_the_answers_of_the_shared_layers() -> None:
    """What the middleware, the parsers, authentication, pagination and idempotency
    answer on any operation is in its documented responses (tests/fuzz checks every
    answer against them)."""
    import yaml
    from django.conf import settings

    schema = yaml.safe_load((settings.BASE_DIR / "docs/openapi.yaml").read_text())
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            located = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
            schemes = {name for req in operation.get("security", []) for name in req}
            expected = set()
            if any(where in ("path", "query") for where, _name in located):
                expected.add("400")  # text_not_allowed
            if ("header", "Idempotency-Key") in located:
                expected.add("400")  # idempotency_key_invalid
            if schemes & {"jwtAuth", "jwtAuthOptional", "cookieAuth"}:
                expected.add("401")  # a bearer token expired, revoked or forged
            if ("query", "cursor") in located:
                expected.add("404")  # an invalid cursor
            if "requestBody" in operation:
                expected.add("415")
            for status in sorted(expected - set(operation["responses"])):
                missing.append(f"{method.upper()} {path}: {status}")
    assert missing == []

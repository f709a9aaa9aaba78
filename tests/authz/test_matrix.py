"""The authorisation matrix: every endpoint × object × role against ``docs/authz-matrix.md``.

- The endpoints come from the URL resolver (``tests.authz.endpoints.served_endpoints``):
  a new endpoint without a row in the matrix and a recipe fails
  ``test_every_served_endpoint_has_rows_and_a_recipe``.
- Each row (endpoint × object) is one test; it calls the endpoint as every role of the
  world (``tests.authz.world``) and compares the status and, for every answer, whether
  a reporter's phone appears in it (``200+phone``) or not (any other cell: not one
  reporter phone anywhere in the body, errors included).
- The world is built once per module inside a transaction that is rolled back at the
  end; every cell runs in its own savepoint, rolled back too, so a cell that accepts a
  task or closes an incident leaves the world as it was for the next one.

To review a change of behaviour: ``XEMS_AUTHZ_OBSERVED=var/authz-observed.md`` writes
what the endpoints answered, in the matrix's format, to diff against the document.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponseBase
from django.utils import timezone
from rest_framework.test import APIClient

from tests.authz.endpoints import (
    NO_OBJECT,
    NOT_IN_MATRIX,
    PREFIXES,
    RECIPES,
    path_kwargs,
    served_endpoints,
    served_routes,
)
from tests.authz.matrix import MATRIX, Expected, Row, format_row, read_matrix
from tests.authz.world import ROLES, World, build_world
from tests.incidents.url_walk import attachment_urls_in, urls_in

pytestmark = pytest.mark.django_db

ROWS: list[Row] = [
    (endpoint, obj) for endpoint, recipe in sorted(RECIPES.items()) for obj in recipe.objects()
]
OBSERVED: dict[Row, dict[str, str]] = {}
REFUSED = (401, 403, 404)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Built once for the module, in a transaction rolled back after it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            _write_observed()


@pytest.fixture(scope="module")
def matrix() -> dict[Row, dict[str, Expected]]:
    return read_matrix()


# --- Calling an endpoint -----------------------------------------------------------------


def _content(response: HttpResponseBase) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return bytes(response.content)


def _text(response: HttpResponseBase) -> str:
    if response.get("Content-Type", "").startswith("image/"):
        return ""
    return _content(response).decode("utf-8", "replace")


def request(world: World, endpoint: str, obj: str, role: str) -> HttpResponseBase:
    """Call ``endpoint`` on object ``obj`` as ``role``, in a savepoint rolled back after."""
    method, route = endpoint.split(" ", 1)
    recipe = RECIPES[endpoint]
    path = route.format(**path_kwargs(world, recipe.kind, obj))
    if recipe.query:
        path = f"{path}?{recipe.query}"
    client = APIClient()
    user = world.user(role)
    if user is not None:
        client.force_authenticate(user)
    cache.clear()  # throttles count per test run, not across cells
    headers = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4()), **recipe.headers}
    with transaction.atomic():
        if recipe.prepare is not None:
            recipe.prepare(world, obj)
        body = recipe.body_for(world, obj)
        if recipe.raw is not None:
            response = client.generic(
                method,
                path,
                data=recipe.raw(world, obj),
                content_type=recipe.content_type,
                **headers,
            )
        elif recipe.multipart:
            response = client.generic(
                method, path, data=_multipart(client, body or {}), **_multipart_headers(headers)
            )
        else:
            data = json.dumps(body) if body is not None else ""
            response = client.generic(
                method, path, data=data, content_type="application/json", **headers
            )
        _content(response)  # read a streamed file while its storage is there
        transaction.set_rollback(True)
    return response


_BOUNDARY = "authz-matrix-boundary"


def _multipart(client: APIClient, body: dict[str, Any]) -> bytes:
    from django.test.client import encode_multipart

    return encode_multipart(_BOUNDARY, body)


def _multipart_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "content_type": f"multipart/form-data; boundary={_BOUNDARY}"}


def observe(world: World, response: HttpResponseBase) -> str:
    text = _text(response)
    phone = any(p.removeprefix("+86") in text for p in world.reporter_phones)
    return f"{response.status_code}{'+phone' if phone else ''}"


# --- The table and the resolver agree ------------------------------------------------------


def test_every_served_endpoint_has_rows_and_a_recipe(
    matrix: dict[Row, dict[str, Expected]],
) -> None:
    served = set(served_endpoints())
    assert served - set(RECIPES) == set(), "endpoints without a recipe (tests/authz/endpoints.py)"
    assert set(RECIPES) - served == set(), "recipes of endpoints that are not served any more"
    assert {endpoint for endpoint, _obj in matrix} == served, "rows of docs/authz-matrix.md"
    assert set(matrix) == set(ROWS), "objects per endpoint differ from the recipes"


def test_every_route_outside_the_matrix_is_named_with_its_reason() -> None:
    outside = {route for route in served_routes() if not route.startswith(PREFIXES)}
    unexplained = {r for r in outside if not any(r.startswith(n) for n in NOT_IN_MATRIX)}
    assert unexplained == set()
    assert not any(route.startswith("/media/") for route in served_routes())


# --- Every cell ----------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "obj"), ROWS, ids=[f"{e} [{o}]" for e, o in ROWS])
def test_the_matrix_row(
    world: World, matrix: dict[Row, dict[str, Expected]], endpoint: str, obj: str
) -> None:
    observed = {role: observe(world, request(world, endpoint, obj, role)) for role in ROLES}
    OBSERVED[(endpoint, obj)] = observed
    expected = matrix.get((endpoint, obj))
    assert expected is not None, f"no row for {endpoint} [{obj}] in {MATRIX.name}"
    wrong = {
        role: f"expected {expected[role]}, got {observed[role]}"
        for role in ROLES
        if str(expected[role]) != observed[role]
    }
    assert wrong == {}


def _write_observed() -> None:
    target = os.environ.get("XEMS_AUTHZ_OBSERVED")
    if not target or not OBSERVED:
        return
    lines = [
        "| endpoint | object | " + " | ".join(ROLES) + " |",
        "|---|---|" + "---|" * len(ROLES),
        *(format_row(row, OBSERVED[row]) for row in ROWS if row in OBSERVED),
    ]
    Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- Photo URLs handed out -----------------------------------------------------------------

STRANGERS = ("anon", "operator_out", "citizen2")


def _get(world: World, url: str, role: str) -> int:
    parts = urlsplit(url)
    client = APIClient()
    user = world.user(role)
    if user is not None:
        client.force_authenticate(user)
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    response = client.get(path)
    _content(response)
    return response.status_code


def test_every_photo_url_the_api_hands_out_is_refused_to_strangers(world: World) -> None:
    # given: every answer of every GET endpoint, on every object, to every role
    handed: dict[str, set[str]] = {}  # URL → the roles it was handed to
    for endpoint, obj in ROWS:
        if not endpoint.startswith("GET ") or "/attachments/" in endpoint:
            continue
        for role in ROLES:
            response = request(world, endpoint, obj, role)
            if response.status_code != 200 or "json" not in response.get("Content-Type", ""):
                continue
            data = json.loads(_content(response))
            for url in urls_in(data):
                assert "/media/" not in url, (endpoint, obj, role, url)
            for url in attachment_urls_in(data):
                handed.setdefault(url, set()).add(role)
    # the walk found the photos of reports, incidents and the room, plain and signed
    paths = {urlsplit(url).path for url in handed}
    for attachment in (*world.attachments.values(), world.room_photo):
        assert f"/api/v1/attachments/{attachment.pk}/" in paths, attachment
    assert any("sig=" in url for url in handed), "no tracking answer was walked"

    for url, roles in sorted(handed.items()):
        # then: each works for whom it was handed to
        for role in roles:
            assert _get(world, url, role) == 200, (url, role)
        bare = url.split("?", 1)[0]
        for stranger in STRANGERS:
            if stranger in roles:
                continue
            # and is refused to an anonymous caller and people of another scope, as
            # handed out (a signed link: without its signature)
            assert _get(world, bare, stranger) in REFUSED, (url, stranger)
        if "sig=" in url:
            # and a signed link (the tracking answer's) is refused once it has expired
            with time_machine.travel(timezone.now() + timedelta(minutes=16)):
                for stranger in STRANGERS:
                    assert _get(world, url, stranger) in REFUSED, (url, stranger)


def test_the_matrix_is_not_empty_and_covers_every_role(
    matrix: dict[Row, dict[str, Expected]],
) -> None:
    assert len(matrix) >= 150
    for role in ROLES:
        assert any(cells[role].status < 300 for cells in matrix.values()), role
    assert NO_OBJECT in {obj for _endpoint, obj in matrix}

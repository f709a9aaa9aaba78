"""Property-based fuzzing of every operation of ``docs/openapi.yaml`` (schemathesis).

Each operation is one test: schemathesis generates requests from the schema (valid ones
and, as negative examples, ones that break it: wrong types, missing fields, strings in
place of numbers, unknown enum values ...), and every example is sent four times, as

- nobody (anonymous),
- a logged-in citizen (reporter of a report in 三桥),
- a street responder (team leader of a 三桥 team with a task),
- an operator of 沣东 新城,

each with a JWT bearer token, to the WSGI application in-process (every middleware, the
JSON 400/403/404/500 handlers included). Every answer must pass:

- no 5xx, ever (and no exception Django turned into one: its traceback is shown);
- every 4xx/5xx is the ``{code, message, extra}`` envelope, as JSON;
- the status code, content type and body are those the schema documents for the
  operation.

Path parameters are the generated ones half of the time (mostly unknown ids: 404) and a
real object of the world the other half (the authorisation matrix's world,
``tests.authz.world``), so the generated bodies and queries reach the services.
Every call runs in a savepoint rolled back after it: no example sees another's writes.

Budget: ``FUZZ_EXAMPLES`` examples per operation (10 in CI, ``tests/fuzz/support.py``)
with a fixed seed. For a deeper run: ``FUZZ_EXAMPLES=500`` (and any ``FUZZ_SEED``).
The fast intake path (ASGI) is fuzzed by ``test_intake_fast.py``, Open311 by
``test_open311.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.conf import settings
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import AccessToken

from tests.authz.world import World, build_world
from tests.fuzz.support import REST_CHECKS, SETTINGS, configure, in_process_django

pytestmark = [pytest.mark.services, pytest.mark.django_db]

ROLES = ("anon", "citizen", "responder", "operator")

schema = configure(schemathesis.openapi.from_path(Path(settings.BASE_DIR) / "docs/openapi.yaml"))
schema.app = get_wsgi_application()

# Real objects for the path parameters, filled in by the ``world`` fixture.
REAL: dict[str, dict[str, Any]] = {}


def _real(path: str, name: str) -> Any:
    if name == "code":
        return REAL["team_code" if path.startswith("/api/v1/teams/") else "region_code"]
    return REAL.get(name)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half of the examples on real objects: the generated ones are mostly unknown ids."""
    if not isinstance(path_parameters, dict) or not path_parameters:
        return st.just(path_parameters)
    path = context.operation.path
    real = {name: _real(path, name) for name in path_parameters}
    if any(value is None for value in real.values()):
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, real])


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """The authorisation matrix's world, built once per module and rolled back after it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = build_world()
            REAL.update(
                incident_id=built.incidents["in"].pk,
                report_id=built.reports["own"].pk,
                task_id=built.tasks["in"].pk,
                attachment_id=built.attachments["own"].pk,
                device_id=built.devices["own"].pk,
                notification_id=built.notifications["own"].pk,
                token=built.tokens["own"],
                team_code=built.teams["in"].code,
                region_code=built.regions["in"].code,
            )
            yield built
        finally:
            REAL.clear()
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def bearer(world: World) -> dict[str, dict[str, str]]:
    headers: dict[str, dict[str, str]] = {}
    for role in ROLES:
        user = world.users[role]
        headers[role] = (
            {} if user is None else {"Authorization": f"Bearer {AccessToken.for_user(user)}"}
        )
    return headers


@schema.parametrize()
@SETTINGS
def test_every_operation_as_every_role(
    case: Any, world: World, bearer: dict[str, dict[str, str]]
) -> None:
    with in_process_django() as crashes:
        for role in ROLES:
            hypothesis.note(f"as {role}")
            cache.clear()  # throttles: each call is judged on its own
            with transaction.atomic():
                try:
                    response = case.call(headers=bearer[role])
                    crashes.raise_if_any(f"{case.method} {case.formatted_path} as {role}")
                    case.validate_response(response, checks=REST_CHECKS, headers=bearer[role])
                finally:
                    transaction.set_rollback(True)

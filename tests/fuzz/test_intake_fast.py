"""Property-based fuzzing of the fast intake path (``apps.incidents.intake``).

``POST /api/v1/reports/`` and ``POST /api/v1/reports/sos/`` sent to the project's ASGI
application (``xixian_ems.asgi.application``, the fast path outermost), so a valid
anonymous or citizen JSON report is taken by the group-commit writer and everything else
is handed to the view: both must answer as ``docs/openapi.yaml`` says, never a 5xx,
every error in the ``{code, message, extra}`` envelope. Each example is sent as nobody
and as a logged-in citizen (JWT bearer).

The writer commits on its own threads and connections, so these tests run in a
transactional test database (``transaction=True``: flushed after each test) with the
real region tree and the categories loaded per test; half of the JSON bodies are moved
to a point of 三桥街道 with a real category, so more of them get past the location and
category checks (with the CI budget some SOS presses reach the writer; most generated
reports stop at a field error, answered by the view). Budget and deeper runs:
``tests/fuzz/support.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from asgiref.sync import SyncToAsync
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import AccessToken

from apps.incidents.taxonomy import categories_load_fixture
from apps.regions import geo
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import CitizenFactory
from tests.fuzz.support import REST_CHECKS, SETTINGS, configure, in_process_django
from xixian_ems.asgi import application

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SANQIAO = {"lat": 34.276, "lng": 108.85, "category": "A01"}

schema = configure(schemathesis.openapi.from_path(Path(settings.BASE_DIR) / "docs/openapi.yaml"))
schema = schema.include(operation_id=["reports_create", "reports_sos_create"])
schema.app = application


@schema.hook
def flatmap_body(context: Any, body: Any) -> Any:
    """Half of the JSON bodies at a real point with a real category."""
    if not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([body, {**body, **SANQIAO}])


@pytest.fixture
def citizen_bearer(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setattr(geo, "_index", None)
    regions_load_fixture()
    categories_load_fixture()
    citizen = CitizenFactory(phone="+8613900007777")
    yield {"Authorization": f"Bearer {AccessToken.for_user(citizen)}"}
    # The ORM calls of the fast path ran on asgiref's one thread for thread-sensitive
    # code: close its connection, or the test database cannot be dropped at the end.
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@schema.parametrize()
@SETTINGS
def test_the_fast_intake_path(case: Any, citizen_bearer: dict[str, str]) -> None:
    with in_process_django() as crashes:
        for role, headers in (("anon", {}), ("citizen", citizen_bearer)):
            hypothesis.note(f"as {role}")
            cache.clear()  # throttles: each call is judged on its own
            response = case.call(headers=headers)
            crashes.raise_if_any(f"{case.method} {case.formatted_path} as {role}")
            case.validate_response(response, checks=REST_CHECKS, headers=headers)

"""Property-based fuzzing of the Open311 GeoReport v2 facade (JSON), with schemathesis.

The facade is outside ``docs/openapi.yaml`` (the GeoReport v2 spec is its contract), so
the operations are described for the fuzzer in ``tests/fuzz/open311.yaml``. Its errors
are the spec's list of ``{code, description}`` (the code being the HTTP status), not the
API envelope, and the views answer an unexpected exception with "400 General service
error": the check ``open311_error_document`` fails on both, and on a logged exception.

``POST requests.json`` is sent twice per example: as generated (mostly refused with 403:
the api_key is a random string) and with a real api_key and a real service code, so the
generated coordinates, attributes and texts reach the report service. The real region
tree and categories are loaded once per module, in a transaction rolled back after it.

Budget and deeper runs: ``tests/fuzz/support.py`` (``FUZZ_EXAMPLES``, ``FUZZ_SEED``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import transaction

from apps.incidents.taxonomy import categories_load_fixture
from apps.open311.services import api_key_create
from apps.regions import geo
from apps.regions.services import regions_load_fixture
from tests.fuzz.support import OPEN311_CHECKS, SETTINGS, configure, in_process_django

pytestmark = [pytest.mark.services, pytest.mark.django_db]

schema = configure(schemathesis.openapi.from_path(Path(__file__).with_name("open311.yaml")))
schema.app = get_wsgi_application()


@pytest.fixture(scope="module")
def raw_key(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """The area and a key, once per module, rolled back after it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        geo._index = None  # a street index of this module's regions only
        try:
            regions_load_fixture()
            categories_load_fixture()
            yield api_key_create(name="fuzz")[1]
        finally:
            geo._index = None
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


_FORMAT = logging.Formatter()


class _Logged(logging.Handler):
    """Errors the Open311 views log (they answer a crash with 400, not 500)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged() -> Iterator[_Logged]:
    handler = _Logged()
    logger = logging.getLogger("apps.open311")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _variants(case: Any, raw_key: str) -> list[Any]:
    if case.method != "POST" or not isinstance(case.body, dict):
        return [None]
    return [None, {**case.body, "api_key": raw_key, "service_code": "A01"}]


@schema.parametrize()
@SETTINGS
def test_every_open311_operation(case: Any, raw_key: str, logged: _Logged) -> None:
    with in_process_django() as crashes:
        for body in _variants(case, raw_key):
            hypothesis.note(f"body: {body if body is not None else 'as generated'}")
            cache.clear()  # the POST throttle judges each call on its own
            if body is not None:
                case.body = body
            with transaction.atomic():
                try:
                    response = case.call()
                    crashes.raise_if_any(f"{case.method} {case.formatted_path}")
                    if logged.records:
                        found, logged.records = logged.records, []
                        raise AssertionError(
                            "Open311 logged: " + "\n".join(_FORMAT.format(r) for r in found)
                        )
                    case.validate_response(response, checks=OPEN311_CHECKS)
                finally:
                    transaction.set_rollback(True)

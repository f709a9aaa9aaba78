"""What every fuzz module shares: the example budget, the checks, captured crashes.

The budget is small on purpose (CI runs every operation on every build); a deeper local
run raises it with an environment variable::

    FUZZ_EXAMPLES=500 FUZZ_PHASES=examples,coverage,fuzzing \
        TEST_DATABASE_NAME=... .venv/bin/python -m pytest tests/fuzz -n 2

``FUZZ_SEED`` changes the (fixed) seed to explore other inputs: CI always runs the same
ones, so a red build is reproducible with the same command.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("FUZZ_SEED", "20261207"))
# Schemathesis' "coverage" phase sends every boundary case the schema defines (hundreds
# per operation, whatever the budget): too slow for every build, part of a deep run.
PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing").split(",")

# Hypothesis' settings for every fuzz test: reproducible (derandomized, no example
# database on disk), no deadline (the first request of a test warms caches), and no
# health checks (function-scoped fixtures are shared by the examples on purpose: the
# world is built once, every example runs in a savepoint rolled back after it).
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def configure(schema: Any) -> Any:
    """The same seed on every worker and every build (schemathesis picks a random one)."""
    schema.config.seed = SEED
    schema.config.phases.update(phases=PHASES)
    return schema


def _body(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _header(response: Any, name: str) -> str:
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else str(value)
    return ""


def _is_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"code", "message", "extra"}
        and isinstance(body["code"], str)
        and bool(body["code"])
        and isinstance(body["message"], str)
        and isinstance(body["extra"], dict)
    )


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx of the REST API is ``{code, message, extra}``, as JSON."""
    if response.status_code < 400:
        return None
    content_type = _header(response, "Content-Type")
    body = _body(response)
    if not content_type.startswith("application/json") or not _is_envelope(body):
        raise AssertionError(
            f"{response.status_code} is not the error envelope {{code, message, extra}}: "
            f"{content_type!r} {response.content[:300]!r}"
        )
    return True


@schemathesis.check
def open311_error_document(ctx: Any, response: Any, case: Any) -> bool | None:
    """Open311 errors are the spec's list of ``{code, description}``, the code being the
    HTTP status; and a crash the views catch ("General service error") is a finding too:
    it is a 500 wearing a 400."""
    if response.status_code < 400:
        return None
    body = _body(response)
    ok = (
        isinstance(body, list)
        and bool(body)
        and all(
            isinstance(item, dict)
            and set(item) == {"code", "description"}
            and item["code"] == response.status_code
            and isinstance(item["description"], str)
            for item in body
        )
    )
    if not ok:
        raise AssertionError(
            f"{response.status_code} is not an Open311 error list: {response.content[:300]!r}"
        )
    if any("General service error" in item["description"] for item in body):
        raise AssertionError("the view caught an unexpected exception (General service error)")
    return True


REST_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_envelope,
]
OPEN311_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    open311_error_document,
]


class Crashes:
    """Exceptions Django turned into a 500 (or an Open311 view logged), with tracebacks."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        self.seen.append(traceback.format_exc())

    def raise_if_any(self, what: str) -> None:
        if self.seen:
            found, self.seen = self.seen, []
            raise AssertionError(f"{what} raised:\n" + "\n".join(found))


@contextmanager
def in_process_django() -> Iterator[Crashes]:
    """Call the WSGI application inside the test's transaction.

    Django closes "old" connections when a request starts and finishes; in a test that
    would close the connection holding the test transaction. Its test client disconnects
    the same receivers for the same reason (``django.test.client.ClientHandler``).
    """
    crashes = Crashes()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(crashes)
    try:
        yield crashes
    finally:
        got_request_exception.disconnect(crashes)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)

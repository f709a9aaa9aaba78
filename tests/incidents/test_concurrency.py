"""Two operators acting on one incident at the same moment: exactly one wins.

Real threads, real PostgreSQL row locks: each thread has its own connection and its own
transaction, released together by a barrier so their SELECT ... FOR UPDATE collide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from apps.accounts.models import User
from apps.core.errors import ApplicationError
from apps.incidents.models import Incident, IncidentEvent, IncidentStatus
from apps.incidents.services import incidents as services
from tests.factories.accounts import UserFactory
from tests.factories.incidents import IncidentFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def race(calls: list[Callable[[], Any]]) -> tuple[list[Any], list[Exception]]:
    """Run ``calls`` in parallel threads released at once; collect results and errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = []
    errors: list[Exception] = []
    lock = threading.Lock()

    def run(call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            outcome = call()
        except Exception as exc:  # collected and asserted by the test
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(outcome)
        finally:
            connections.close_all()  # this thread's connection

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results, errors


@pytest.fixture
def operators() -> tuple[User, User]:
    return UserFactory(username="operator-a"), UserFactory(username="operator-b")


def test_runs_on_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_two_operators_accepting_at_once_make_exactly_one_winner(
    operators: tuple[User, User],
) -> None:
    # given
    incident = IncidentFactory(status=IncidentStatus.REPORTED)
    a, b = operators

    # when
    results, errors = race(
        [
            lambda: services.incident_accept(incident_id=incident.pk, by=a, severity="IV"),
            lambda: services.incident_accept(incident_id=incident.pk, by=b, severity="III"),
        ]
    )

    # then
    assert len(results) == 1
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, ApplicationError)
    assert error.code == "illegal_transition"
    assert error.extra["from"] == IncidentStatus.ACCEPTED
    winner = results[0]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACCEPTED
    assert incident.severity == winner.severity  # the loser's classification is not applied
    accepted = IncidentEvent.objects.filter(incident=incident, kind=IncidentEvent.Kind.ACCEPTED)
    assert accepted.count() == 1
    assert accepted.get().actor_id in {a.pk, b.pk}


def test_two_operators_resolving_at_once_make_exactly_one_winner(
    operators: tuple[User, User],
) -> None:
    # given
    incident = IncidentFactory(status=IncidentStatus.IN_PROGRESS)
    a, b = operators

    # when
    results, errors = race(
        [
            lambda: services.incident_resolve(incident_id=incident.pk, by=a, resolution="甲"),
            lambda: services.incident_resolve(incident_id=incident.pk, by=b, resolution="乙"),
        ]
    )

    # then
    assert len(results) == 1
    assert [e.code for e in errors if isinstance(e, ApplicationError)] == ["illegal_transition"]
    incident.refresh_from_db()
    assert incident.resolution == results[0].resolution
    assert IncidentEvent.objects.filter(incident=incident).count() == 1


def test_accept_and_reject_at_once_leave_one_consistent_outcome(
    operators: tuple[User, User],
) -> None:
    incident = IncidentFactory(status=IncidentStatus.REPORTED)
    a, b = operators

    results, errors = race(
        [
            lambda: services.incident_accept(incident_id=incident.pk, by=a),
            lambda: services.incident_reject(incident_id=incident.pk, by=b, reason="误报"),
        ]
    )

    assert len(results) == 1
    assert len(errors) == 1
    incident.refresh_from_db()
    assert incident.status == results[0].status
    assert IncidentEvent.objects.filter(incident=incident).count() == 1


def test_crosswise_merges_do_not_deadlock_and_only_one_applies(
    operators: tuple[User, User],
) -> None:
    # given two duplicates of each other, merged crosswise by two operators
    first = IncidentFactory(status=IncidentStatus.REPORTED)
    second = IncidentFactory(status=IncidentStatus.REPORTED, region=first.region)
    a, b = operators

    # when
    results, errors = race(
        [
            lambda: services.incident_merge(incident_id=first.pk, into_id=second.pk, by=a),
            lambda: services.incident_merge(incident_id=second.pk, into_id=first.pk, by=b),
        ]
    )

    # then: locks taken in pk order, so the loser waits and then finds a merged target
    assert len(results) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], ApplicationError)
    assert errors[0].code in {"merge_target_invalid", "illegal_transition"}
    statuses = sorted(
        Incident.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)
    )
    assert statuses == sorted([IncidentStatus.MERGED, IncidentStatus.REPORTED])

"""Two members of one team accepting the same task at the same moment: one winner.

Real threads, real PostgreSQL row locks: each thread has its own connection and its own
transaction, released together by a barrier so their SELECT ... FOR UPDATE collide.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from apps.core.errors import ApplicationError
from apps.dispatch.models import TaskEvent, TaskStatus
from apps.dispatch.services import tasks as services
from apps.incidents.models import IncidentEvent, IncidentEventKind, IncidentStatus
from tests.dispatch.task_support import Scene

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
            connections.close_all()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return results, errors


def test_two_members_accepting_at_once_make_exactly_one_winner() -> None:
    # given
    scene = Scene()
    task = scene.task("dispatched")

    # when
    results, errors = race(
        [
            lambda: services.task_accept(task_id=task.pk, by=scene.member),
            lambda: services.task_accept(task_id=task.pk, by=scene.member2),
        ]
    )

    # then
    assert len(results) == 1
    assert len(errors) == 1
    error = errors[0]
    assert isinstance(error, ApplicationError)
    assert error.code == "illegal_task_transition"
    assert error.extra["from"] == TaskStatus.ACCEPTED
    task.refresh_from_db()
    assert task.status == TaskStatus.ACCEPTED
    assert task.accepted_by_id == results[0].accepted_by_id
    assert TaskEvent.objects.filter(task=task).count() == 1
    assert (
        IncidentEvent.objects.filter(
            incident=scene.incident, kind=IncidentEventKind.TASK_ACCEPTED
        ).count()
        == 1
    )
    scene.incident.refresh_from_db()
    assert scene.incident.status == IncidentStatus.IN_PROGRESS
    assert (
        IncidentEvent.objects.filter(
            incident=scene.incident, kind=IncidentEventKind.STARTED
        ).count()
        == 1
    )


def test_two_teams_accepting_their_tasks_at_once_both_win_and_start_once() -> None:
    # given: two tasks on one accepted incident
    scene = Scene()
    mine = scene.task("dispatched")
    theirs = scene.task("dispatched", team=scene.other_team)

    # when
    results, errors = race(
        [
            lambda: services.task_accept(task_id=mine.pk, by=scene.member),
            lambda: services.task_accept(task_id=theirs.pk, by=scene.other_member),
        ]
    )

    # then: no deadlock, both accepted, the incident started exactly once
    assert errors == []
    assert len(results) == 2
    assert (
        IncidentEvent.objects.filter(
            incident=scene.incident, kind=IncidentEventKind.STARTED
        ).count()
        == 1
    )


def test_decline_and_accept_at_once_leave_one_consistent_outcome() -> None:
    scene = Scene()
    task = scene.task("dispatched")

    results, errors = race(
        [
            lambda: services.task_accept(task_id=task.pk, by=scene.member),
            lambda: services.task_decline(task_id=task.pk, by=scene.member2, reason="没空"),
        ]
    )

    assert len(results) == 1
    assert [e.code for e in errors if isinstance(e, ApplicationError)] == [
        "illegal_task_transition"
    ]
    task.refresh_from_db()
    assert task.status in {TaskStatus.ACCEPTED, TaskStatus.DECLINED}
    assert TaskEvent.objects.filter(task=task).count() == 1

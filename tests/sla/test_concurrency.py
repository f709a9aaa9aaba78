"""Sweepers and services at the same moment, on real PostgreSQL row locks.

Real threads, each with its own connection and transaction, released together by a
barrier: two sweepers over the same due clocks escalate each step exactly once; a sweeper
meeting an incident a service has locked leaves it for the next sweep instead of waiting
(which could deadlock: the service holds the incident and wants the clock).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connections, transaction

from apps.incidents.models import Incident
from apps.incidents.services import incidents as incident_services
from apps.notifications.models import Notification
from apps.sla.models import ClockStatus, Escalation, SlaClock, SlaKind
from apps.sla.services.sweep import SweepResult, sla_sweep
from tests.sla.conftest import Cast

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 8, 0, tzinfo=SHANGHAI)


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released at once; return their results (re-raise errors)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]
    return results


@pytest.fixture
def incidents(cast: Cast, default_policies: Any) -> Iterator[list[Incident]]:
    """40 small-loop incidents accepted at T0 (resolution due at T0 + 4 h)."""
    with time_machine.travel(T0, tick=False):
        made = []
        for _ in range(40):
            incident = cast.incident(status="reported")
            incident_services.incident_accept(incident_id=incident.pk, by=cast.street_operator)
            made.append(incident)
    return made


def test_two_sweepers_at_once_escalate_every_step_exactly_once(
    cast: Cast, incidents: list[Incident]
) -> None:
    # given 40 resolution clocks (and 40 dispatch clocks) all overdue by 2 hours
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        # when two sweepers run at the same moment
        first, second = race(
            [
                lambda: sla_sweep(batch_size=7, time_budget=120),
                lambda: sla_sweep(batch_size=7, time_budget=120),
            ]
        )

    # then every clock's breach and every step ran once: no duplicate, none missing
    per_step = Counter(Escalation.objects.values_list("clock_id", "kind", "step"))
    assert set(per_step.values()) == {1}
    resolution = SlaClock.objects.filter(kind=SlaKind.INCIDENT_RESOLUTION)
    # small loop: breach + 3 steps (the third raises the loop and restarts the clock)
    assert Escalation.objects.filter(clock__in=resolution.filter(loop="small")).count() == 40 * 4
    assert first.events + second.events == Escalation.objects.count()
    assert min(first.events, second.events) > 0, "both sweepers should have shared the work"
    # each raise happened once: 40 medium clocks now run
    assert resolution.filter(loop="medium", status=ClockStatus.RUNNING).count() == 40
    # and nobody was told twice
    keys = Counter(Notification.objects.values_list("dedupe_key", flat=True))
    assert set(keys.values()) == {1}


def test_a_sweep_run_again_right_after_does_nothing(cast: Cast, incidents: list[Incident]) -> None:
    with time_machine.travel(T0 + timedelta(hours=6), tick=False):
        first = sla_sweep(time_budget=120)
        second = sla_sweep(time_budget=120)

    assert first.events > 0
    assert (second.events, second.clocks) == (0, 0)


def test_a_sweeper_skips_an_incident_a_service_holds_and_takes_it_next_time(
    cast: Cast, incidents: list[Incident]
) -> None:
    # given an operator's transaction holding one incident's row
    held = incidents[0]
    locked = threading.Event()
    release = threading.Event()

    def operator() -> None:
        with transaction.atomic():
            Incident.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(timeout=20)

    def sweeper() -> SweepResult:
        locked.wait(timeout=10)
        try:
            with time_machine.travel(T0 + timedelta(hours=4, seconds=1), tick=False):
                return sla_sweep(time_budget=120)
        finally:
            release.set()

    # when the sweep runs meanwhile
    _none, result = race([operator, sweeper])

    # then it did every other clock and left the held one's two, without waiting for them
    assert result.busy == 2
    held_clocks = SlaClock.objects.filter(subject_id=held.pk, subject_type="incident")
    assert not Escalation.objects.filter(clock__in=held_clocks).exists()
    assert Escalation.objects.filter(kind="breached").count() == 2 * 40 - 2
    # and the next sweep, the operator gone, escalates it
    with time_machine.travel(T0 + timedelta(hours=4, seconds=2), tick=False):
        again = sla_sweep(time_budget=120)
    assert again.busy == 0
    assert Escalation.objects.filter(clock__in=held_clocks, kind="breached").count() == 2


def test_resolving_while_a_sweep_escalates_never_deadlocks(
    cast: Cast, incidents: list[Incident]
) -> None:
    # given incidents in progress, all overdue
    for incident in incidents:
        Incident.objects.filter(pk=incident.pk).update(status="in_progress")

    def resolve_all() -> int:
        done = 0
        for incident in incidents:
            incident_services.incident_resolve(
                incident_id=incident.pk, by=cast.street_operator, resolution="已处置"
            )
            done += 1
        return done

    # when operators resolve while a sweeper escalates the same clocks
    with time_machine.travel(T0 + timedelta(hours=4, minutes=1), tick=False):
        resolved, _result = race([resolve_all, lambda: sla_sweep(batch_size=5, time_budget=120)])

    # then both finished; every resolution clock is stopped, each step ran at most once
    assert resolved == 40
    assert not SlaClock.objects.filter(
        kind=SlaKind.INCIDENT_RESOLUTION, status=ClockStatus.RUNNING
    ).exists()
    assert set(Counter(Escalation.objects.values_list("clock_id", "kind", "step")).values()) <= {1}

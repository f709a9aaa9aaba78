"""Clock services: start, stop, cancel, restart, pause and resume."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.incidents.models import IncidentEvent
from apps.sla.models import Anchor, ClockStatus, PauseReason, SlaClock, SlaKind, SlaPause
from apps.sla.services.clocks import (
    ClockStart,
    sla_clock_cancel,
    sla_clock_pause,
    sla_clock_restart,
    sla_clock_resume,
    sla_clock_start,
    sla_clock_stop,
    sla_clocks_start_many,
)
from tests.factories.sla import LadderStepFactory, SlaPolicyFactory
from tests.sla.conftest import Cast

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 16, 0, tzinfo=SHANGHAI)


def _gas_policy() -> None:
    policy = SlaPolicyFactory(
        code="gas",
        kind=SlaKind.TASK_ARRIVAL,
        category_code="A02",
        target=timedelta(minutes=20),
        duration=timedelta(minutes=60),
    )
    LadderStepFactory(policy=policy, anchor=Anchor.TARGET, notify_team_leader=True)
    LadderStepFactory(policy=policy, notify_street_duty=True, mark_supervised=True)


def _start(cast: Cast, subject_id: int = 1, **kwargs: object) -> SlaClock | None:
    values: dict[str, object] = {
        "kind": SlaKind.TASK_ARRIVAL,
        "subject_type": "task",
        "subject_id": subject_id,
        "region_id": cast.tree.sanqiao.pk,
        "category": "A02",
        "label": "抢修队 → 20260720-000001",
    }
    values.update(kwargs)
    return sla_clock_start(**values)  # type: ignore[arg-type]


# --- Start -------------------------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_a_clock_takes_its_target_deadline_and_ladder_from_the_policy(cast: Cast) -> None:
    _gas_policy()

    clock = _start(cast)

    assert clock is not None
    assert clock.status == ClockStatus.RUNNING
    assert clock.started_at == T0
    assert clock.target_at == T0 + timedelta(minutes=20)
    assert clock.due_at == T0 + timedelta(minutes=60)
    assert clock.next_check_at == clock.target_at  # the earliest thing due
    assert [step["anchor"] for step in clock.ladder] == ["target", "limit"]
    assert clock.policy is not None
    assert clock.policy.code == "gas"


@time_machine.travel(T0, tick=False)
def test_a_start_in_the_past_counts_from_there(cast: Cast) -> None:
    _gas_policy()

    clock = _start(cast, started_at=T0 - timedelta(minutes=5))

    assert clock is not None
    assert clock.due_at == T0 + timedelta(minutes=55)


def test_no_policy_no_clock(cast: Cast) -> None:
    assert _start(cast) is None
    assert not SlaClock.objects.exists()


def test_starting_twice_returns_the_open_clock(cast: Cast) -> None:
    _gas_policy()

    first = _start(cast)
    second = _start(cast)

    assert first is not None
    assert second is not None
    assert second.pk == first.pk
    assert SlaClock.objects.count() == 1


def test_a_policy_without_a_duration_needs_the_subjects_deadline(cast: Cast) -> None:
    SlaPolicyFactory(kind=SlaKind.HIDDEN_DANGER_RECTIFICATION, duration=None)
    deadline = timezone.now() + timedelta(days=30)

    with pytest.raises(ApplicationError) as caught:
        _start(cast, kind=SlaKind.HIDDEN_DANGER_RECTIFICATION, subject_type="hidden_danger")
    clock = _start(
        cast,
        kind=SlaKind.HIDDEN_DANGER_RECTIFICATION,
        subject_type="hidden_danger",
        due_at=deadline,
    )

    assert caught.value.code == "sla_deadline_required"
    assert clock is not None
    assert clock.due_at == deadline


def test_a_deadline_before_the_start_is_refused(cast: Cast) -> None:
    _gas_policy()

    with pytest.raises(ApplicationError) as caught:
        _start(cast, due_at=timezone.now() - timedelta(minutes=1))

    assert caught.value.code == "invalid"
    assert "due_at" in caught.value.extra["fields"]


# --- Stop, cancel, restart ---------------------------------------------------------------------


def test_a_stop_in_time_is_compliant(cast: Cast) -> None:
    _gas_policy()
    with time_machine.travel(T0, tick=False):
        clock = _start(cast)
    assert clock is not None

    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        stopped = sla_clock_stop(
            kind=SlaKind.TASK_ARRIVAL, subject_type="task", subject_id=1, reason="on scene"
        )

    clock.refresh_from_db()
    assert stopped == 1
    assert clock.status == ClockStatus.STOPPED
    assert clock.stopped_at == T0 + timedelta(minutes=15)
    assert clock.stop_reason == "on scene"
    assert clock.breached_at is None
    assert clock.target_missed_at is None
    assert clock.next_check_at is None


def test_a_late_stop_records_the_breach_even_if_no_sweep_saw_it(cast: Cast) -> None:
    _gas_policy()
    with time_machine.travel(T0, tick=False):
        clock = _start(cast)
    assert clock is not None

    with time_machine.travel(T0 + timedelta(minutes=75), tick=False):
        sla_clock_stop(kind=SlaKind.TASK_ARRIVAL, subject_type="task", subject_id=1)

    clock.refresh_from_db()
    assert clock.target_missed_at == clock.target_at
    assert clock.breached_at == clock.due_at


def test_stopping_a_stopped_clock_does_nothing(cast: Cast) -> None:
    _gas_policy()
    _start(cast)
    sla_clock_stop(kind=SlaKind.TASK_ARRIVAL, subject_type="task", subject_id=1)

    again = sla_clock_stop(kind=SlaKind.TASK_ARRIVAL, subject_type="task", subject_id=1)

    assert again == 0


def test_cancel_ends_every_open_clock_of_the_subject(cast: Cast) -> None:
    _gas_policy()
    SlaPolicyFactory(kind=SlaKind.TASK_ACCEPT, duration=timedelta(minutes=3))
    _start(cast)
    _start(cast, kind=SlaKind.TASK_ACCEPT)
    _start(cast, subject_id=2)

    cancelled = sla_clock_cancel(subject_type="task", subject_id=1, reason="task cancelled")

    assert cancelled == 2
    assert set(SlaClock.objects.filter(subject_id=1).values_list("status", flat=True)) == {
        ClockStatus.CANCELLED
    }
    assert SlaClock.objects.get(subject_id=2).status == ClockStatus.RUNNING


def test_restart_stops_the_old_clock_and_times_a_new_one(cast: Cast) -> None:
    SlaPolicyFactory(code="s", kind=SlaKind.INCIDENT_RESOLUTION, loop="small")
    SlaPolicyFactory(
        code="m", kind=SlaKind.INCIDENT_RESOLUTION, loop="medium", duration=timedelta(hours=24)
    )
    with time_machine.travel(T0, tick=False):
        old = sla_clock_start(
            kind=SlaKind.INCIDENT_RESOLUTION,
            subject_type="incident",
            subject_id=9,
            region_id=cast.tree.sanqiao.pk,
            loop="small",
        )
    assert old is not None

    with time_machine.travel(T0 + timedelta(hours=5), tick=False):
        new = sla_clock_restart(
            kind=SlaKind.INCIDENT_RESOLUTION,
            subject_type="incident",
            subject_id=9,
            region_id=cast.tree.sanqiao.pk,
            loop="medium",
            reason="loop small → medium",
        )

    old.refresh_from_db()
    assert old.status == ClockStatus.STOPPED
    assert old.breached_at == old.due_at
    assert new is not None
    assert new.pk != old.pk
    assert new.due_at == T0 + timedelta(hours=29)


# --- Pause and resume --------------------------------------------------------------------------


def test_pause_and_resume_shift_the_target_deadline_and_steps(cast: Cast) -> None:
    # given a gas-leak arrival clock on a real task's incident
    _gas_policy()
    incident = cast.incident(category=cast.gas)
    with time_machine.travel(T0, tick=False):
        clock = sla_clock_start(
            kind=SlaKind.TASK_ARRIVAL,
            subject_type="incident",
            subject_id=incident.pk,
            region_id=incident.region_id,
            category="A02",
        )
    assert clock is not None

    # when paused at +10 min for 30 min (road flooded), then resumed
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        sla_clock_pause(
            clock_id=clock.pk,
            reason=PauseReason.SITE_INACCESSIBLE,
            note="下穿隧道积水封闭",
            by=cast.street_operator,
        )
    clock.refresh_from_db()
    assert clock.status == ClockStatus.PAUSED
    assert clock.next_check_at is None  # nothing escalates while paused
    with time_machine.travel(T0 + timedelta(minutes=40), tick=False):
        sla_clock_resume(clock_id=clock.pk, by=cast.street_operator)

    # then everything moved 30 minutes later
    clock.refresh_from_db()
    assert clock.status == ClockStatus.RUNNING
    assert clock.target_at == T0 + timedelta(minutes=50)
    assert clock.due_at == T0 + timedelta(minutes=90)
    assert clock.next_check_at == clock.target_at
    assert clock.paused_total == timedelta(minutes=30)
    pause = SlaPause.objects.get(clock=clock)
    assert pause.reason == PauseReason.SITE_INACCESSIBLE
    assert pause.paused_by == cast.street_operator
    assert pause.resumed_by == cast.street_operator
    assert pause.resumed_at == T0 + timedelta(minutes=40)
    kinds = list(IncidentEvent.objects.filter(incident=incident).values_list("kind", flat=True))
    assert kinds == [IncidentEvent.Kind.SLA_PAUSED, IncidentEvent.Kind.SLA_RESUMED]


def test_only_an_approved_reason_pauses(cast: Cast) -> None:
    _gas_policy()
    clock = _start(cast, subject_type="incident", subject_id=cast.incident().pk)
    assert clock is not None

    with pytest.raises(ApplicationError) as caught:
        sla_clock_pause(clock_id=clock.pk, reason="lunch", by=cast.street_operator)

    assert caught.value.code == "invalid"
    assert "reason" in caught.value.extra["fields"]
    clock.refresh_from_db()
    assert clock.status == ClockStatus.RUNNING


def test_pausing_a_paused_clock_and_resuming_a_running_one_are_refused(cast: Cast) -> None:
    _gas_policy()
    clock = _start(cast, subject_type="incident", subject_id=cast.incident().pk)
    assert clock is not None
    sla_clock_pause(clock_id=clock.pk, reason=PauseReason.SAFETY_HOLD, by=cast.street_operator)

    with pytest.raises(ApplicationError) as twice:
        sla_clock_pause(clock_id=clock.pk, reason=PauseReason.SAFETY_HOLD, by=None)
    sla_clock_resume(clock_id=clock.pk, by=None)
    with pytest.raises(ApplicationError) as running:
        sla_clock_resume(clock_id=clock.pk, by=None)

    assert (twice.value.code, twice.value.status) == ("sla_clock_not_running", 409)
    assert (running.value.code, running.value.status) == ("sla_clock_not_paused", 409)


def test_an_unknown_clock_is_not_found(cast: Cast) -> None:
    with pytest.raises(ApplicationError) as caught:
        sla_clock_resume(clock_id=987654, by=None)

    assert (caught.value.code, caught.value.status) == ("sla_clock_not_found", 404)


def test_stopping_a_paused_clock_closes_the_pause_and_judges_by_the_paused_deadline(
    cast: Cast,
) -> None:
    # given a clock paused at +50 min (10 min left), stopped 2 hours later
    _gas_policy()
    incident = cast.incident()
    with time_machine.travel(T0, tick=False):
        clock = _start(cast, subject_type="incident", subject_id=incident.pk)
    assert clock is not None
    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        sla_clock_pause(clock_id=clock.pk, reason=PauseReason.SEVERE_WEATHER, by=None)

    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        sla_clock_stop(kind=SlaKind.TASK_ARRIVAL, subject_type="incident", subject_id=incident.pk)

    # then it was not breached (the deadline waited), the target was (missed at +20)
    clock.refresh_from_db()
    assert clock.status == ClockStatus.STOPPED
    assert clock.breached_at is None
    assert clock.target_missed_at == T0 + timedelta(minutes=20)
    assert clock.paused_at is None
    assert clock.paused_total == timedelta(minutes=130)
    assert SlaPause.objects.get(clock=clock).resumed_at == T0 + timedelta(hours=3)


# --- Start, many at once -----------------------------------------------------------------------


@time_machine.travel(T0, tick=False)
def test_a_batch_start_times_each_clock_as_a_single_start_would_in_one_insert(
    cast: Cast, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the gas policy, and the policy table warm
    _gas_policy()
    from apps.sla import policies

    policies.policies_current()
    reads: list[None] = []
    real_read = policies._generation.read
    monkeypatch.setattr(policies._generation, "read", lambda: reads.append(None) or real_read())
    starts = [
        ClockStart(
            kind=SlaKind.TASK_ARRIVAL,
            subject_type="task",
            subject_id=n,
            region_id=cast.tree.sanqiao.pk,
            category="A02" if n < 3 else "Z99",
        )
        for n in (1, 2, 3)
    ]
    # when
    with django_assert_num_queries(1):
        built = sla_clocks_start_many(starts)
    # then: one freshness check of the policies for the whole batch, one INSERT
    assert len(reads) == 1
    assert built[2] is None  # no policy for that category: no clock, as sla_clock_start
    one, two = built[0], built[1]
    assert one is not None
    assert two is not None
    assert one.pk
    assert two.pk
    stored = SlaClock.objects.get(pk=one.pk)
    assert (stored.target_at, stored.due_at) == (
        T0 + timedelta(minutes=20),
        T0 + timedelta(hours=1),
    )
    assert stored.next_check_at == T0 + timedelta(minutes=20)
    assert len(stored.ladder) == 2


def test_a_batch_start_keeps_an_open_clock_already_there(cast: Cast) -> None:
    _gas_policy()
    existing = _start(cast, subject_id=7)
    start = ClockStart(
        kind=SlaKind.TASK_ARRIVAL,
        subject_type="task",
        subject_id=7,
        region_id=cast.tree.sanqiao.pk,
        category="A02",
    )
    (built,) = sla_clocks_start_many([start])
    assert built is not None
    assert built.pk is None
    assert list(SlaClock.objects.values_list("pk", flat=True)) == [existing.pk]

"""The sweeper: each target miss, breach and ladder step once, on time, told to the right
people; a re-run does nothing; broken subjects back off instead of stalling the rest."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.notifications.models import Notification
from apps.realtime.models import Event
from apps.sla.models import Anchor, ClockStatus, Escalation, EscalationKind, SlaClock, SlaKind
from apps.sla.services.clocks import sla_clock_start
from apps.sla.services.sweep import sla_sweep
from tests.factories.sla import LadderStepFactory, SlaPolicyFactory
from tests.sla.conftest import Cast, Probe

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 7, 20, 16, 0, tzinfo=SHANGHAI)
KIND = SlaKind.INCIDENT_RESOLUTION


def _policy_with_ladder() -> None:
    """4 h; at the deadline the street, +30 min the new town (督办), +2 h the new area."""
    policy = SlaPolicyFactory(kind=KIND, duration=timedelta(hours=4))
    LadderStepFactory(policy=policy, notify_street_duty=True)
    LadderStepFactory(
        policy=policy,
        after=timedelta(minutes=30),
        notify_new_town_command=True,
        mark_supervised=True,
    )
    LadderStepFactory(policy=policy, after=timedelta(hours=2), notify_new_area_command=True)


def _start(cast: Cast, probe: Probe, subject_id: int = 1) -> SlaClock:
    with time_machine.travel(T0, tick=False):
        clock = sla_clock_start(
            kind=KIND,
            subject_type=probe.subject_type,
            subject_id=subject_id,
            region_id=cast.tree.sanqiao.pk,
            label="测试事件",
        )
    assert clock is not None
    return clock


def _sweep_at(moment: object) -> list[Escalation]:
    before = set(Escalation.objects.values_list("pk", flat=True))
    with time_machine.travel(moment, tick=False):
        sla_sweep()
    return list(Escalation.objects.exclude(pk__in=before).order_by("pk"))


def test_nothing_happens_before_the_deadline(cast: Cast, probe: Probe) -> None:
    _policy_with_ladder()
    _start(cast, probe)

    assert _sweep_at(T0 + timedelta(hours=4) - timedelta(seconds=1)) == []


def test_the_breach_and_the_first_step_run_at_the_deadline(cast: Cast, probe: Probe) -> None:
    # given
    _policy_with_ladder()
    clock = _start(cast, probe)

    # when
    ran = _sweep_at(T0 + timedelta(hours=4))

    # then: the breach itself, then step 1 telling the street duty officer
    assert [(e.kind, e.step) for e in ran] == [
        (EscalationKind.BREACHED, 0),
        (EscalationKind.STEP, 1),
    ]
    breach, step = ran
    assert breach.recipients == []
    assert step.audiences == ["street_duty"]
    assert step.recipients == [cast.street_operator.pk]
    assert step.scheduled_at == clock.due_at
    clock.refresh_from_db()
    assert clock.breached_at == clock.due_at
    assert clock.step == 1
    assert clock.next_check_at == clock.due_at + timedelta(minutes=30)
    assert [kind for kind, _data in probe.recorded] == ["breached", "step"]


def test_a_second_sweep_escalates_nothing_twice(cast: Cast, probe: Probe) -> None:
    _policy_with_ladder()
    _start(cast, probe)
    first = _sweep_at(T0 + timedelta(hours=4))

    again = _sweep_at(T0 + timedelta(hours=4, seconds=1))

    assert len(first) == 2
    assert again == []
    assert Notification.objects.filter(kind="escalation").count() == 1


def test_each_step_runs_at_its_time_and_tells_its_people(cast: Cast, probe: Probe) -> None:
    # given
    _policy_with_ladder()
    _start(cast, probe)
    _sweep_at(T0 + timedelta(hours=4))

    # when / then: step 2 at +30 min, not a second earlier
    assert _sweep_at(T0 + timedelta(hours=4, minutes=30) - timedelta(seconds=1)) == []
    (step2,) = _sweep_at(T0 + timedelta(hours=4, minutes=30))
    assert step2.step == 2
    assert set(step2.recipients) == {cast.town_operator.pk, cast.town_commander.pk}
    assert step2.actions["supervise"] == {"applied": False, "reason": "not_applicable"}

    # and step 3 at +2 h
    (step3,) = _sweep_at(T0 + timedelta(hours=6))
    assert step3.recipients == [cast.area_commander.pk]
    clock = SlaClock.objects.get()
    assert clock.next_check_at is None  # the ladder is done; the clock stays open (overdue)
    assert clock.status == ClockStatus.RUNNING


def test_after_a_long_outage_every_overdue_step_runs_in_order_at_once(
    cast: Cast, probe: Probe
) -> None:
    _policy_with_ladder()
    clock = _start(cast, probe)

    ran = _sweep_at(T0 + timedelta(days=1))

    assert [(e.kind, e.step) for e in ran] == [
        (EscalationKind.BREACHED, 0),
        (EscalationKind.STEP, 1),
        (EscalationKind.STEP, 2),
        (EscalationKind.STEP, 3),
    ]
    # each keeps the time it was due: the lateness of the outage is visible
    assert [e.scheduled_at for e in ran[1:]] == [
        clock.due_at,
        clock.due_at + timedelta(minutes=30),
        clock.due_at + timedelta(hours=2),
    ]
    assert all(e.at == T0 + timedelta(days=1) for e in ran)


def test_a_target_is_its_own_event_before_the_deadline(cast: Cast, probe: Probe) -> None:
    policy = SlaPolicyFactory(kind=KIND, target=timedelta(minutes=20), duration=timedelta(hours=1))
    LadderStepFactory(policy=policy, anchor=Anchor.TARGET, notify_street_duty=True)
    _start(cast, probe)

    at_target = _sweep_at(T0 + timedelta(minutes=20))
    at_limit = _sweep_at(T0 + timedelta(hours=1))

    assert [(e.kind, e.step) for e in at_target] == [
        (EscalationKind.TARGET_MISSED, 0),
        (EscalationKind.STEP, 1),
    ]
    assert [(e.kind, e.step) for e in at_limit] == [(EscalationKind.BREACHED, 0)]


def test_a_stopped_clock_never_escalates(cast: Cast, probe: Probe) -> None:
    _policy_with_ladder()
    clock = _start(cast, probe)
    SlaClock.objects.filter(pk=clock.pk).update(status=ClockStatus.STOPPED, next_check_at=None)

    assert _sweep_at(T0 + timedelta(days=1)) == []


def test_a_busy_subject_is_left_for_the_next_sweep(cast: Cast, probe: Probe) -> None:
    # given a subject whose rows a service holds right now
    _policy_with_ladder()
    clock = _start(cast, probe)
    probe.lock_outcome = "busy"

    # when
    with time_machine.travel(T0 + timedelta(hours=4), tick=False):
        result = sla_sweep()

    # then nothing was done, and the next sweep (the service done) does it
    assert (result.busy, result.events) == (1, 0)
    clock.refresh_from_db()
    assert clock.breached_at is None
    probe.lock_outcome = "locked"
    assert len(_sweep_at(T0 + timedelta(hours=4, seconds=1))) == 2


def test_a_vanished_subject_cancels_its_clock(cast: Cast, probe: Probe) -> None:
    _policy_with_ladder()
    clock = _start(cast, probe)
    probe.lock_outcome = "gone"

    assert _sweep_at(T0 + timedelta(hours=4)) == []

    clock.refresh_from_db()
    assert clock.status == ClockStatus.CANCELLED
    assert clock.stop_reason == "subject gone"


def test_an_unexpected_error_rolls_the_clock_back_and_backs_it_off(
    cast: Cast, probe: Probe, make_probe: object
) -> None:
    # given two due clocks, the first on a subject whose timeline write fails
    _policy_with_ladder()
    broken = _start(cast, probe, subject_id=1)
    healthy_probe = make_probe("probe_ok")  # type: ignore[operator]
    healthy = _start(cast, healthy_probe, subject_id=2)
    probe.fail_record = True

    # when
    with time_machine.travel(T0 + timedelta(hours=4), tick=False):
        result = sla_sweep()

    # then the broken one left no trace but its error and a later retry; the other ran
    assert result.failed == 1
    broken.refresh_from_db()
    assert not Escalation.objects.filter(clock=broken).exists()
    assert broken.breached_at is None
    assert broken.failures == 1
    assert "timeline is down" in broken.last_error
    assert broken.next_check_at == T0 + timedelta(hours=4, seconds=2)
    assert Escalation.objects.filter(clock=healthy).count() == 2

    # and once the subject is fixed, the retry escalates it
    probe.fail_record = False
    assert len(_sweep_at(T0 + timedelta(hours=4, seconds=2))) == 2


def test_a_step_nobody_holds_is_logged_as_unreached(cast: Cast, probe: Probe) -> None:
    policy = SlaPolicyFactory(kind=KIND, duration=timedelta(hours=4))
    LadderStepFactory(policy=policy, notify_assignee=True, notify_street_duty=True)
    _start(cast, probe)  # the probe has no assignees

    _breach, step = _sweep_at(T0 + timedelta(hours=4))

    assert step.recipients == [cast.street_operator.pk]
    assert step.actions["unreached"] == ["assignee"]


def test_escalations_are_pushed_to_the_people_and_shown_on_the_boards_up_the_tree(
    cast: Cast, probe: Probe
) -> None:
    # given
    _policy_with_ladder()
    clock = _start(cast, probe)

    # when
    _breach, step = _sweep_at(T0 + timedelta(hours=4))

    # then one push per recipient, keyed to the step
    push = Notification.objects.get(kind="escalation")
    assert push.user_id == cast.street_operator.pk
    assert push.dedupe_key == f"sla:{clock.pk}:step:1:u{cast.street_operator.pk}"
    assert push.data["escalation_id"] == str(step.pk)
    assert push.priority == "normal"  # resolution is not a minutes-critical clock
    assert not Notification.objects.filter(user=cast.outsider).exists()
    # and the street's, the new town's and the new area's boards get every event
    streams = set(Event.objects.filter(kind="sla.escalated").values_list("stream", flat=True))
    assert streams == {"region.xixian", "region.fengdong", "region.fd-sanqiao"}
    assert not Event.objects.filter(stream="region.fengxi").exists()
    assert Event.objects.filter(kind="sla.escalated", stream="region.fengdong").count() == 2


def test_the_sweep_reads_due_clocks_in_batches(cast: Cast, probe: Probe) -> None:
    SlaPolicyFactory(kind=KIND, duration=timedelta(hours=4))
    for subject_id in range(1, 8):
        _start(cast, probe, subject_id=subject_id)

    with time_machine.travel(T0 + timedelta(hours=4), tick=False):
        result = sla_sweep(batch_size=3)

    assert (result.clocks, result.events) == (7, 7)
    assert SlaClock.objects.filter(breached_at__isnull=True).count() == 0


def test_one_breach_costs_a_bounded_number_of_queries(
    cast: Cast, probe: Probe, django_assert_max_num_queries: object
) -> None:
    SlaPolicyFactory(kind=KIND, duration=timedelta(hours=4))
    _start(cast, probe)

    with (
        time_machine.travel(T0 + timedelta(hours=4), tick=False),
        django_assert_max_num_queries(12),  # type: ignore[operator]
    ):
        result = sla_sweep()

    assert result.events == 1

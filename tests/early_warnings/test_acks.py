"""叫应: an answer stops the clock; silence escalates — SMS, then the superior — once each."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from apps.core.errors import ApplicationError
from apps.early_warnings import selectors, services
from apps.early_warnings.models import Acknowledgement, WarningTimelineEntry
from apps.notifications.models import Channel, Kind, Notification
from apps.sla.models import ClockStatus, Escalation, SlaClock, SlaKind
from apps.sla.services.sweep import sla_sweep
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import published

pytestmark = pytest.mark.django_db


def _clock(ack: Acknowledgement) -> SlaClock:
    return SlaClock.objects.get(kind=SlaKind.WARNING_ACK, subject_id=ack.pk)


def test_an_answer_stamps_the_row_stops_its_clock_and_is_idempotent(cast: Cast) -> None:
    version = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk]
    )
    ack = services.warning_acknowledge(version_id=version.pk, user=cast.grid)
    assert ack.acked_at is not None
    assert ack.channel == "app"
    clock = _clock(ack)
    assert clock.status == ClockStatus.STOPPED
    assert clock.stop_reason == "acknowledged"
    again = services.warning_acknowledge(version_id=version.pk, user=cast.grid)
    assert again.acked_at == ack.acked_at
    assert WarningTimelineEntry.objects.filter(kind="acknowledged").count() == 1
    # the person's push is marked received (no SMS fallback for it)
    push = Notification.objects.get(dedupe_key=f"ew:{version.pk}:published:p:u{cast.grid.pk}")
    assert push.acknowledged_at is not None


def test_a_warning_not_addressed_to_me_is_404_and_a_superseded_one_409(cast: Cast) -> None:
    version = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk]
    )
    with pytest.raises(ApplicationError) as not_mine:
        services.warning_acknowledge(version_id=version.pk, user=cast.outsider_grid)
    assert not_mine.value.status == 404
    update = services.warning_update(version_id=version.pk, by=cast.town_operator2, title="新")
    with pytest.raises(ApplicationError) as old:
        services.warning_acknowledge(version_id=version.pk, user=cast.grid)
    assert old.value.status == 409
    assert old.value.extra["current_id"] == update.pk


def test_silence_escalates_sms_then_the_superior_exactly_once_and_an_answer_prevents_it(
    cast: Cast,
) -> None:
    # given a yellow warning for 三桥 (deadline 30 min, SMS at 30, superior at 45)
    version = published(
        by=cast.town_operator,
        approver=cast.town_commander,
        targets=[cast.sanqiao.pk],
        level="yellow",
    )
    sent = version.sent
    # the team leader answers in time; the grid worker stays silent
    services.warning_acknowledge(version_id=version.pk, user=cast.team_leader)
    grid_ack = Acknowledgement.objects.get(version=version, user=cast.grid)
    clock = _clock(grid_ack)
    assert clock.due_at == sent + timedelta(minutes=30)

    def sms_rows() -> list[Notification]:
        return list(Notification.objects.filter(channel=Channel.SMS, kind=Kind.WARNING))

    def superior_rows() -> list[Notification]:
        return list(
            Notification.objects.filter(dedupe_key__contains=":superior:", kind=Kind.ESCALATION)
        )

    # one second before the deadline: nothing
    with time_machine.travel(sent + timedelta(minutes=30) - timedelta(seconds=1), tick=False):
        sla_sweep()
    assert not sms_rows()
    # at the deadline: one SMS to each silent person, none to who answered
    with time_machine.travel(sent + timedelta(minutes=30, seconds=1), tick=False):
        sla_sweep()
        sla_sweep()  # twice: once
    silent = {a.user_id for a in Acknowledgement.objects.filter(version=version, acked_at=None)}
    assert {row.user_id for row in sms_rows()} == silent
    assert len(sms_rows()) == len(silent)
    assert cast.team_leader.pk not in silent
    assert not superior_rows()
    # 15 minutes later: the superior of the grid worker (三桥's duty officer) gets a push
    with time_machine.travel(sent + timedelta(minutes=45, seconds=1), tick=False):
        sla_sweep()
        sla_sweep()
    grid_superior = [row for row in superior_rows() if row.data["ack_id"] == str(grid_ack.pk)]
    assert [row.user_id for row in grid_superior] == [cast.street_operator.pk]
    # the street operator's own superior is the new town's operators
    street_ack = Acknowledgement.objects.get(version=version, user=cast.street_operator)
    street_superior = {
        row.user_id for row in superior_rows() if row.data["ack_id"] == str(street_ack.pk)
    }
    assert street_superior == {cast.town_operator.pk, cast.town_operator2.pk}
    # each silent clock ran breach + two steps, once
    steps = Escalation.objects.filter(clock=clock).values_list("kind", "step")
    assert sorted(steps) == [("breached", 0), ("step", 1), ("step", 2)]
    assert WarningTimelineEntry.objects.filter(kind="ack_escalated").count() == 3 * len(silent)
    # much later: nothing more
    with time_machine.travel(sent + timedelta(hours=5), tick=False):
        sla_sweep()
    assert len(sms_rows()) == len(silent)


def test_the_ack_board_says_who_answered_and_who_is_silent(cast: Cast) -> None:
    version = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk]
    )
    services.warning_acknowledge(version_id=version.pk, user=cast.grid)
    board = selectors.ack_board(version=version)
    assert board.acked == 1
    assert board.silent == len(board.rows) - 1
    assert board.rows[-1].user_id == cast.grid.pk  # silent first, answers after

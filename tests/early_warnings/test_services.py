"""Publish, update, cancel, receive: every target reached, every person asked, after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.early_warnings import services
from apps.early_warnings.models import (
    Acknowledgement,
    MsgType,
    WarningChain,
    WarningStatus,
    WarningVersion,
)
from apps.notifications.models import Channel, Kind, Notification, Priority
from apps.realtime.models import Event
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import draft, published

pytestmark = pytest.mark.django_db


def _topic_rows(version: WarningVersion) -> list[Notification]:
    return list(
        Notification.objects.filter(dedupe_key__startswith=f"ew:{version.pk}:").exclude(topic="")
    )


def _person_rows(version: WarningVersion, event: str) -> list[Notification]:
    return list(Notification.objects.filter(dedupe_key__startswith=f"ew:{version.pk}:{event}:p:"))


def _events(kind: str) -> dict[str, int]:
    return dict(Event.objects.filter(kind=kind).values_list("stream", "seq").order_by("stream"))


def test_publishing_reaches_every_target_topic_stream_and_responsible_person_after_commit(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    # given an orange warning for 三桥 and 钓台 (two towns: the new-area commander approves)
    version = draft(
        by=cast.area_commander, targets=[cast.sanqiao.pk, cast.tree.diaotai.pk], level="orange"
    )
    services.warning_submit(version_id=version.pk, by=cast.area_commander)
    other = type(cast.area_commander).objects.create(username="cmd-approver")
    from apps.accounts.services import membership_grant

    membership_grant(user=other, region=cast.tree.root, role="commander")
    # when it is approved: nothing is enqueued or published before COMMIT
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        version = services.warning_approve(version_id=version.pk, by=other)
        assert Notification.objects.filter(status="pending").exists()
    assert callbacks, "delivery and publishing wait for commit"
    # then one high-priority topic message per target region
    topics = _topic_rows(version)
    assert sorted(row.topic for row in topics) == ["region-fd-sanqiao", "region-fx-diaotai"]
    assert {row.priority for row in topics} == {Priority.HIGH}
    assert {row.kind for row in topics} == {Kind.WARNING}
    # and a push per responsible person of each target's subtree: the roster person, the
    # street operator, the team leader, the grid worker (三桥), the grid worker (钓台)
    expected = {
        cast.roster_person.pk,
        cast.street_operator.pk,
        cast.team_leader.pk,
        cast.grid.pk,
        cast.outsider_grid.pk,
    }
    pushes = _person_rows(version, "published")
    assert {row.user_id for row in pushes} == expected
    assert {row.priority for row in pushes} == {Priority.HIGH}
    assert {row.data["level"] for row in pushes} == {"orange"}
    # not the operators above the targets: they see it on their boards
    assert cast.town_operator.pk not in {row.user_id for row in pushes}
    # and a 叫应 row with a running clock per person
    acks = Acknowledgement.objects.filter(version=version)
    assert {a.user_id for a in acks} == expected
    clocks = SlaClock.objects.filter(kind=SlaKind.WARNING_ACK, status=ClockStatus.RUNNING)
    assert sorted(clocks.values_list("subject_id", flat=True)) == sorted(a.pk for a in acks)
    assert {c.severity for c in clocks} == {"orange"}
    # and an event on each target's stream, its ancestors and its subtree
    streams = set(_events("warning.published"))
    assert streams == {
        "region.xixian",
        "region.fengdong",
        "region.fengxi",
        "region.fd-sanqiao",
        "region.fx-diaotai",
        "region.fd-sanqiao-hcz",
    }


def test_a_blue_warning_goes_with_normal_priority(cast: Cast) -> None:
    version = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk]
    )
    rows = Notification.objects.filter(dedupe_key__startswith=f"ew:{version.pk}:")
    assert rows.exists()
    assert {row.priority for row in rows} == {Priority.NORMAL}


@pytest.mark.parametrize("level", ["red", "orange"])
def test_a_red_or_orange_warning_is_high_priority_and_marked_so_no_preference_mutes_it(
    cast: Cast, level: str
) -> None:
    other = type(cast.area_commander).objects.create(username="cmd-approver")
    from apps.accounts.services import membership_grant
    from apps.notifications.delivery import mute_reason

    membership_grant(user=other, region=cast.tree.root, role="commander")
    version = published(
        by=cast.area_commander, approver=other, targets=[cast.sanqiao.pk], level=level
    )
    pushes = _person_rows(version, "published")
    assert pushes
    assert {row.priority for row in pushes} == {Priority.HIGH}
    assert {row.data["level"] for row in pushes} == {level}
    # the level the notifications app reads to let it through an off-duty mute
    # (tests/notifications/test_delivery.py proves the mute itself per level)
    assert all(mute_reason(row) == "" for row in pushes)


def test_an_update_supersedes_the_live_version_and_restarts_the_ack_round(cast: Cast) -> None:
    # given a published blue warning, answered by the grid worker
    live = published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    services.warning_acknowledge(version_id=live.pk, user=cast.grid)
    # when its approver raises it to yellow: published at once (same approver), v2
    update = services.warning_update(
        version_id=live.pk, by=cast.town_operator2, level="yellow", title="暴雨黄色预警"
    )
    assert update.status == WarningStatus.PUBLISHED
    assert update.msg_type == MsgType.UPDATE
    assert update.number == 2
    assert update.identifier.endswith("-v2")
    assert update.references == [
        {"sender": live.sender, "identifier": live.identifier, "sent": live.sent.isoformat()}
    ]
    live.refresh_from_db()
    assert live.status == WarningStatus.SUPERSEDED
    # then the old round's open clocks are cancelled, a new round asks everyone again
    old_clocks = SlaClock.objects.filter(
        subject_id__in=Acknowledgement.objects.filter(version=live).values("pk"),
        kind=SlaKind.WARNING_ACK,
    )
    assert set(old_clocks.values_list("status", flat=True)) == {"stopped", "cancelled"}
    new_acks = Acknowledgement.objects.filter(version=update)
    assert new_acks.count() == Acknowledgement.objects.filter(version=live).count()
    assert not new_acks.filter(acked_at__isnull=False).exists()
    assert {r.user_id for r in _person_rows(update, "updated")} == {a.user_id for a in new_acks}
    assert [t.topic for t in _topic_rows(update)] == ["region-fd-sanqiao"]
    assert "region.fd-sanqiao" in _events("warning.updated")


def test_an_update_by_someone_else_waits_for_approval(cast: Cast) -> None:
    live = published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    update = services.warning_update(version_id=live.pk, by=cast.town_operator, title="更新")
    assert update.status == WarningStatus.PENDING_APPROVAL
    live.refresh_from_db()
    assert live.status == WarningStatus.PUBLISHED
    done = services.warning_approve(version_id=update.pk, by=cast.town_operator2)
    assert done.status == WarningStatus.PUBLISHED


def test_a_cancel_ends_the_warning_stops_every_clock_and_tells_everyone(cast: Cast) -> None:
    live = published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    people = {a.user_id for a in Acknowledgement.objects.filter(version=live)}
    cancel = services.warning_cancel(version_id=live.pk, by=cast.town_operator2, reason="雨停")
    assert cancel.msg_type == MsgType.CANCEL
    assert cancel.status == WarningStatus.CANCELLED
    live.refresh_from_db()
    assert live.status == WarningStatus.CANCELLED
    assert live.ended_at is not None
    assert not SlaClock.objects.filter(kind=SlaKind.WARNING_ACK).open().exists()
    assert {r.user_id for r in _person_rows(cancel, "cancelled")} == people
    assert [t.topic for t in _topic_rows(cancel)] == ["region-fd-sanqiao"]
    assert not Acknowledgement.objects.filter(version=cancel).exists()  # a cancel asks nobody
    assert "region.fd-sanqiao" in _events("warning.cancelled")


def test_a_warning_received_from_upstream_is_published_and_its_update_joins_the_chain(
    cast: Cast,
) -> None:
    now = timezone.now()
    values: dict[str, Any] = {
        "upstream_sender": "sxqx@cma.gov.cn",
        "warning_type": "gale",
        "level": "yellow",
        "title": "大风黄色预警",
        "description": "预计有8级以上大风。",
        "targets": ["fengdong"],
        "onset": now,
        "expires": now + timedelta(hours=12),
        "raw": "<alert/>",
    }
    first = services.warning_receive(upstream_identifier="UP-1", msg_type="alert", **values)
    assert first.status == WarningStatus.PUBLISHED
    assert first.source == "upstream"
    assert first.chain.source == "upstream"
    assert first.upstream_raw == "<alert/>"
    assert Acknowledgement.objects.filter(version=first).exists()
    # a repeat is the same row
    again = services.warning_receive(upstream_identifier="UP-1", msg_type="alert", **values)
    assert again.pk == first.pk
    # an update referencing it joins the chain and supersedes it
    update = services.warning_receive(
        upstream_identifier="UP-2", msg_type="update", references=["UP-1"], **values
    )
    assert update.chain_id == first.chain_id
    assert update.number == 2
    first.refresh_from_db()
    assert first.status == WarningStatus.SUPERSEDED
    # and a cancel ends it
    cancel = services.warning_receive(
        upstream_identifier="UP-3", msg_type="cancel", references=["UP-1", "UP-2"], **values
    )
    assert cancel.chain_id == first.chain_id
    update.refresh_from_db()
    assert update.status == WarningStatus.CANCELLED
    assert WarningChain.objects.count() == 1


def test_expiry_comes_by_itself_once_and_stops_the_clocks(cast: Cast) -> None:
    import time_machine

    from apps.early_warnings.tasks import warnings_expire_due

    live = published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    # one second before: nothing
    with time_machine.travel(live.expires - timedelta(seconds=1), tick=False):
        assert warnings_expire_due() == 0
    # at expiry, through the beat task: expired, clocks cancelled, an event
    with time_machine.travel(live.expires, tick=False):
        assert warnings_expire_due() == 1
        assert warnings_expire_due() == 0  # twice: once
    live.refresh_from_db()
    assert live.status == WarningStatus.EXPIRED
    assert live.ended_at == live.expires
    assert not SlaClock.objects.filter(kind=SlaKind.WARNING_ACK).open().exists()
    assert "region.fd-sanqiao" in _events("warning.expired")
    assert not Notification.objects.filter(channel=Channel.PUSH, dedupe_key__contains=":expired:")

"""Delivering many outbox rows as one batch: the same rules as one row (claim, mute,
devices, outcome), one device query and one ``send_many`` for the pushes to users, and
large fan-outs split into several Celery messages."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.notifications import delivery, services, tasks
from apps.notifications.backends import LocmemPush, LocmemPushBackend, Outcome, SendResult
from apps.notifications.models import Channel, Kind, Notification, SkipReason, Status
from tests.factories.accounts import DeviceFactory
from tests.factories.dispatch import TeamMemberFactory
from tests.factories.notifications import NotificationFactory, NotificationPreferenceFactory
from tests.support.fake_fcm import FakeFcm

pytestmark = pytest.mark.django_db


def statuses(*rows: Notification) -> list[str]:
    return [Notification.objects.get(pk=row.pk).status for row in rows]


def test_a_batch_sends_every_push_to_users_in_one_backend_call(
    push_outbox: list[LocmemPush], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: five pushes to five users with a device each
    devices = [DeviceFactory() for _ in range(5)]
    rows = [NotificationFactory(user=device.user) for device in devices]
    calls: list[int] = []
    original = LocmemPushBackend.send_many

    def counting(self: LocmemPushBackend, items: Any) -> Any:
        calls.append(len(items))
        return original(self, items)

    monkeypatch.setattr(LocmemPushBackend, "send_many", counting)

    # when
    result = delivery.notifications_deliver_many(notification_ids=[r.pk for r in rows])

    # then: one call carried all five; every row is sent, each to its own device
    assert calls == [5]
    assert result == [Status.SENT] * 5
    assert statuses(*rows) == [Status.SENT] * 5
    assert sorted(p.target for p in push_outbox) == sorted(d.token for d in devices)


def test_a_batch_delivered_twice_sends_nothing_the_second_time(
    push_outbox: list[LocmemPush],
) -> None:
    rows = [NotificationFactory(user=DeviceFactory().user) for _ in range(3)]
    ids = [r.pk for r in rows]

    assert tasks.notifications_deliver_many(ids) == [Status.SENT] * 3
    assert tasks.notifications_deliver_many(ids) == ["not_claimed"] * 3
    assert len(push_outbox) == 3


def test_a_batch_keeps_the_rules_of_one_row_and_answers_in_order(
    push_outbox: list[LocmemPush],
) -> None:
    # given: a muted yellow warning, a push to nobody, a topic, a dead token and a good one
    member = TeamMemberFactory(on_duty=False)  # muting while off duty
    DeviceFactory(user=member.user)
    NotificationPreferenceFactory(user=member.user, mute_off_duty=True)
    muted = NotificationFactory(user=member.user, kind=Kind.WARNING, data={"level": "yellow"})
    nobody = NotificationFactory()
    topic = NotificationFactory(user=None, topic="region-fengdong", dedupe_key="t:1")
    dead_device = DeviceFactory()
    dead = NotificationFactory(user=dead_device.user)
    LocmemPushBackend.script.answers[dead_device.token] = [SendResult(Outcome.UNREGISTERED)]
    good = NotificationFactory(user=DeviceFactory().user)

    # when
    result = delivery.notifications_deliver_many(
        notification_ids=[muted.pk, nobody.pk, topic.pk, dead.pk, good.pk]
    )

    # then: the same outcomes as one by one, in the order asked
    assert result == [Status.SKIPPED, Status.SKIPPED, Status.SENT, Status.FAILED, Status.SENT]
    assert Notification.objects.get(pk=muted.pk).skip_reason == SkipReason.MUTED_OFF_DUTY
    assert Notification.objects.get(pk=nobody.pk).skip_reason == SkipReason.NO_DEVICES
    dead_device.refresh_from_db()
    assert dead_device.is_active is False
    assert {p.target for p in push_outbox} == {"region-fengdong", good.user.devices.get().token}


def test_a_batch_reads_devices_once_whatever_its_size() -> None:
    def queries(n: int) -> int:
        rows = [NotificationFactory(user=DeviceFactory().user) for _ in range(n)]
        with CaptureQueriesContext(connection) as captured:
            delivery.notifications_deliver_many(notification_ids=[r.pk for r in rows])
        return sum("accounts_device" in q["sql"] for q in captured.captured_queries)

    assert queries(2) == queries(8) == 1


def test_a_large_fan_out_is_enqueued_as_several_batches(
    settings: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NOTIFICATIONS_DELIVERY_BATCH = 2
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.notifications_deliver_many, "delay", lambda ids: sent.append(ids))
    users = [DeviceFactory().user for _ in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        ids = services.notify_many(
            [
                services.PushSpec(
                    user_ids=[u.pk for u in users],
                    kind=Kind.WARNING,
                    title="t",
                    body="b",
                    dedupe_key_prefix="ew:1:published:p",
                )
            ]
        )

    assert [len(batch) for batch in sent] == [2, 2, 1]
    assert sorted(pk for batch in sent for pk in batch) == sorted(ids)


def test_fcm_sends_a_batch_through_send_each_and_maps_each_answer_back(
    fake_fcm: FakeFcm,
) -> None:
    # given: three users, one of them with two devices, one token FCM calls dead
    first, second, third = DeviceFactory(), DeviceFactory(), DeviceFactory()
    extra = DeviceFactory(user=first.user)
    fake_fcm.fail(third.token, "UNREGISTERED")
    rows = [
        NotificationFactory(user=device.user, channel=Channel.PUSH)
        for device in (first, second, third)
    ]

    # when
    result = delivery.notifications_deliver_many(notification_ids=[r.pk for r in rows])

    # then
    assert result == [Status.SENT, Status.SENT, Status.FAILED]
    assert sorted(s.body["message"]["token"] for s in fake_fcm.sends) == sorted(
        [first.token, extra.token, second.token, third.token]
    )
    third.refresh_from_db()
    assert third.is_active is False
    assert set(Notification.objects.get(pk=rows[0].pk).result["devices"]) == {
        str(first.pk),
        str(extra.pk),
    }

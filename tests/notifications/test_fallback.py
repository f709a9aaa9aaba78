"""The SMS fallback: a push that needs a receipt and gets none in time → one SMS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.core.sms import SmsError
from apps.notifications import delivery, services, tasks
from apps.notifications.backends import LocmemPushBackend, Outcome, SendResult
from apps.notifications.models import Channel, Kind, Notification, Priority, SkipReason, Status
from tests.factories.accounts import CitizenFactory, DeviceFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(timezone.datetime(2026, 7, 1, 9, 30))


def task_push(user: Any, django_capture_on_commit_callbacks: Any) -> Notification:
    """A delivered task push that must be acknowledged within 60 s."""
    with django_capture_on_commit_callbacks(execute=True):
        services.notify_users(
            user_ids=[user.pk],
            kind=Kind.TASK,
            title="New task: 积水",
            body="Ⅳ General · 三桥街道",
            data={"type": "task", "task_id": 7},
            dedupe_key_prefix="task:7:dispatched",
            priority=Priority.HIGH,
            ack_within=timedelta(seconds=60),
        )
    return Notification.objects.get(channel=Channel.PUSH, user=user)


def sweep(django_capture_on_commit_callbacks: Any) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return tasks.notifications_receipts_sweep.delay().get()


@time_machine.travel(NOW, tick=False)
def test_one_sms_goes_out_after_the_deadline_and_only_once(
    django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    # given: the push went out, the phone never acknowledged it
    responder = DeviceFactory(locale="en").user
    push = task_push(responder, django_capture_on_commit_callbacks)
    assert push.status == Status.SENT

    # when / then: nothing before the deadline
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        assert sweep(django_capture_on_commit_callbacks) == 0
    assert sms_outbox == []

    # when: the deadline has passed, and the sweep runs twice
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        assert sweep(django_capture_on_commit_callbacks) == 1
        assert sweep(django_capture_on_commit_callbacks) == 0

    # then: exactly one SMS, to the responder's phone, saying what the push said
    assert [m.phone for m in sms_outbox] == [responder.phone]
    assert sms_outbox[0].text == ("[Xixian Emergency Connect] New task: 积水: Ⅳ General · 三桥街道")
    sms = Notification.objects.get(channel=Channel.SMS)
    assert (sms.status, sms.fallback_for_id, sms.dedupe_key) == (
        Status.SENT,
        push.pk,
        f"{push.dedupe_key}:sms",
    )
    push.refresh_from_db()
    assert push.fallback_at == NOW + timedelta(seconds=61)


@time_machine.travel(NOW, tick=False)
def test_no_sms_after_the_app_acknowledged(
    django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    responder = DeviceFactory().user
    task_push(responder, django_capture_on_commit_callbacks)

    with time_machine.travel(NOW + timedelta(seconds=20), tick=False):
        services.notifications_acknowledge(
            dedupe_key_prefix="task:7:dispatched", user_id=responder.pk
        )
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        assert sweep(django_capture_on_commit_callbacks) == 0

    assert sms_outbox == []
    assert not Notification.objects.filter(channel=Channel.SMS).exists()


def test_released_receipts_send_no_sms(
    django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    responder = DeviceFactory().user
    task_push(responder, django_capture_on_commit_callbacks)
    services.notifications_release_receipts(dedupe_key_prefix="task:7:dispatched")

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert sweep(django_capture_on_commit_callbacks) == 0
    assert sms_outbox == []


def test_a_task_push_that_cannot_be_delivered_falls_back_at_once(
    django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    # given: the only device's token is dead
    device = DeviceFactory()
    LocmemPushBackend.script.answers[device.token] = [SendResult(Outcome.UNREGISTERED)]

    # when
    push = task_push(device.user, django_capture_on_commit_callbacks)

    # then: no waiting for the deadline
    assert push.status == Status.FAILED
    assert push.fallback_at is not None
    assert [m.phone for m in sms_outbox] == [device.user.phone]


def test_a_responder_without_devices_gets_the_sms_at_once(
    django_capture_on_commit_callbacks: Any, sms_outbox: list
) -> None:
    responder = CitizenFactory()
    push = task_push(responder, django_capture_on_commit_callbacks)
    assert (push.status, push.skip_reason) == (Status.SKIPPED, SkipReason.NO_DEVICES)
    assert len(sms_outbox) == 1


def test_no_phone_number_skips_the_sms(django_capture_on_commit_callbacks: Any) -> None:
    responder = CitizenFactory(phone=None)
    task_push(responder, django_capture_on_commit_callbacks)
    sms = Notification.objects.get(channel=Channel.SMS)
    assert (sms.status, sms.skip_reason) == (Status.SKIPPED, SkipReason.NO_PHONE)


def test_a_gateway_error_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    def gateway_down(phone: str, text: str) -> None:
        raise SmsError("gateway timeout")

    monkeypatch.setattr(delivery, "send_sms", gateway_down)
    sms = Notification.objects.create(
        dedupe_key="task:1:dispatched:u1:sms",
        channel=Channel.SMS,
        kind=Kind.TASK,
        user=CitizenFactory(),
        language="en",
        title="t",
        body="b",
        next_attempt_at=timezone.now(),
    )

    assert delivery.notification_deliver(notification_id=sms.pk) == Status.PENDING
    sms.refresh_from_db()
    assert sms.last_error == "SmsError: gateway timeout"

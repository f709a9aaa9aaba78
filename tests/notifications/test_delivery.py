"""Delivering the outbox: claims, retries with backoff, dead tokens, mutes, the sweeps."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Device
from apps.notifications import delivery, tasks
from apps.notifications.backends import LocmemPush, LocmemPushBackend, Outcome, SendResult
from apps.notifications.models import Channel, Kind, Notification, SkipReason, Status
from tests.factories.accounts import CitizenFactory, DeviceFactory
from tests.factories.dispatch import TeamMemberFactory
from tests.factories.notifications import NotificationFactory, NotificationPreferenceFactory

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(timezone.datetime(2026, 7, 1, 9, 30))


def script(token: str, *answers: SendResult) -> None:
    LocmemPushBackend.script.answers[token] = list(answers)


def reload(row: Notification) -> Notification:
    row.refresh_from_db()
    return row


# --- Claim ------------------------------------------------------------------------------------


def test_a_row_is_claimed_once() -> None:
    row = NotificationFactory()

    first = delivery.notification_claim(notification_id=row.pk)
    second = delivery.notification_claim(notification_id=row.pk)

    assert first is not None
    assert (first.status, first.attempts) == (Status.SENDING, 1)
    assert second is None
    assert reload(row).attempts == 1


def test_a_row_that_is_not_due_is_not_claimed() -> None:
    row = NotificationFactory(next_attempt_at=timezone.now() + timedelta(seconds=30))
    assert delivery.notification_deliver(notification_id=row.pk) == "not_claimed"
    assert reload(row).status == Status.PENDING


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_get_one_row_between_them() -> None:
    # given: a committed row and two workers released at the same instant
    row = NotificationFactory()
    barrier = threading.Barrier(2)
    claims: list[Any] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            claims.append(delivery.notification_claim(notification_id=row.pk))
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    # then
    assert sorted(claim is not None for claim in claims) == [False, True]
    assert reload(row).attempts == 1


# --- Outcomes ---------------------------------------------------------------------------------


def test_a_push_goes_to_every_active_device(push_outbox: list[LocmemPush]) -> None:
    phone = DeviceFactory()
    tablet = DeviceFactory(user=phone.user, platform="ios")
    DeviceFactory(user=phone.user, is_active=False)
    row = NotificationFactory(user=phone.user, data={"type": "info"})

    assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT

    row = reload(row)
    assert row.sent_at is not None
    assert sorted(push.device_id for push in push_outbox) == sorted([phone.pk, tablet.pk])
    message = push_outbox[0].message
    assert message.data == {"type": "info", "notification_id": str(row.pk), "kind": "info"}
    assert (message.style, message.sound, message.channel_id) == ("notification", "default", "info")
    assert row.result["devices"] == {str(phone.pk): "sent", str(tablet.pk): "sent"}


def test_an_unregistered_token_deactivates_its_device_and_the_rest_still_get_it(
    push_outbox: list[LocmemPush],
) -> None:
    dead = DeviceFactory()
    alive = DeviceFactory(user=dead.user)
    script(dead.token, SendResult(Outcome.UNREGISTERED, error="UnregisteredError"))
    row = NotificationFactory(user=dead.user)

    assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT

    assert Device.objects.get(pk=dead.pk).is_active is False
    assert Device.objects.get(pk=alive.pk).is_active is True
    assert [push.device_id for push in push_outbox] == [alive.pk]
    assert reload(row).result["devices"][str(dead.pk)] == "unregistered"


def test_a_permanent_error_fails_at_once() -> None:
    device = DeviceFactory()
    script(device.token, SendResult(Outcome.FAILED, error="InvalidArgumentError: bad ttl"))
    row = NotificationFactory(user=device.user)

    assert delivery.notification_deliver(notification_id=row.pk) == Status.FAILED
    row = reload(row)
    assert (row.attempts, row.last_error) == (1, "InvalidArgumentError: bad ttl")


@time_machine.travel(NOW, tick=False)
def test_quota_and_server_errors_are_retried_with_growing_jittered_delays_then_fail(
    settings: Any,
) -> None:
    # given: FCM answers "try later" every time
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 4
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 10
    device = DeviceFactory()
    script(device.token, *[SendResult(Outcome.RETRY, error="UnavailableError: 503")] * 4)
    row = NotificationFactory(user=device.user)

    with time_machine.travel(NOW, tick=False) as clock:
        for attempt, ceiling in [(1, 10), (2, 20), (3, 40)]:
            # when
            status = delivery.notification_deliver(notification_id=row.pk)
            row = reload(row)
            wait = (row.next_attempt_at - timezone.now()).total_seconds()

            # then: pending again, after base x 2^(n-1) with half of it jittered
            assert (status, row.attempts) == (Status.PENDING, attempt)
            assert ceiling / 2 <= wait <= ceiling
            assert row.last_error == "UnavailableError: 503"
            assert delivery.notification_deliver(notification_id=row.pk) == "not_claimed"
            clock.move_to(row.next_attempt_at)

        assert delivery.notification_deliver(notification_id=row.pk) == Status.FAILED
    assert reload(row).attempts == 4


@time_machine.travel(NOW, tick=False)
def test_retry_after_from_the_provider_is_honoured() -> None:
    device = DeviceFactory()
    script(device.token, SendResult(Outcome.RETRY, error="QuotaExceededError", retry_after=120))
    row = NotificationFactory(user=device.user)

    delivery.notification_deliver(notification_id=row.pk)

    row = reload(row)
    assert row.status == Status.PENDING
    assert row.next_attempt_at - NOW >= timedelta(seconds=120)


def test_a_retry_that_succeeds_is_sent(push_outbox: list[LocmemPush]) -> None:
    device = DeviceFactory()
    script(device.token, SendResult(Outcome.RETRY, error="InternalError: 500"))
    row = NotificationFactory(user=device.user)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert delivery.notification_deliver(notification_id=row.pk) == Status.PENDING
        clock.move_to(reload(row).next_attempt_at)
        assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT

    assert reload(row).attempts == 2
    assert len(push_outbox) == 1


def test_a_crash_in_the_backend_is_retried_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise ConnectionResetError("broken pipe")

    monkeypatch.setattr(delivery, "get_push_backend", broken)
    row = NotificationFactory(user=DeviceFactory().user)

    assert delivery.notification_deliver(notification_id=row.pk) == Status.PENDING
    assert "ConnectionResetError: broken pipe" in reload(row).last_error


def test_a_user_without_devices_is_skipped() -> None:
    row = NotificationFactory(user=CitizenFactory())
    assert delivery.notification_deliver(notification_id=row.pk) == Status.SKIPPED
    assert reload(row).skip_reason == SkipReason.NO_DEVICES


def test_eager_task_delivers_by_id(push_outbox: list[LocmemPush]) -> None:
    row = NotificationFactory(user=DeviceFactory().user)
    assert tasks.notification_deliver.delay(row.pk).get() == Status.SENT
    assert tasks.notification_deliver.delay(row.pk).get() == "not_claimed"  # idempotent
    assert len(push_outbox) == 1


# --- Preferences ------------------------------------------------------------------------------


@pytest.fixture
def off_duty_responder() -> Any:
    member = TeamMemberFactory(on_duty=False)
    DeviceFactory(user=member.user)
    NotificationPreferenceFactory(user=member.user, mute_off_duty=True)
    return member


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        (Kind.INFO, {}, Status.SKIPPED),
        (Kind.ESCALATION, {}, Status.SKIPPED),
        (Kind.WARNING, {"level": "blue"}, Status.SKIPPED),
        (Kind.WARNING, {"level": "yellow"}, Status.SKIPPED),
        (Kind.WARNING, {"level": "orange"}, Status.SENT),
        (Kind.WARNING, {"level": "red"}, Status.SENT),
        (Kind.SOS, {}, Status.SENT),
        (Kind.TASK, {"type": "task"}, Status.SENT),
    ],
)
def test_muting_off_duty_never_silences_tasks_sos_or_red_and_orange_warnings(
    off_duty_responder: Any, kind: str, data: dict[str, str], expected: str
) -> None:
    row = NotificationFactory(user=off_duty_responder.user, kind=kind, data=data)

    assert delivery.notification_deliver(notification_id=row.pk) == expected
    if expected == Status.SKIPPED:
        assert reload(row).skip_reason == SkipReason.MUTED_OFF_DUTY


def test_the_mute_applies_only_while_off_duty(off_duty_responder: Any) -> None:
    off_duty_responder.on_duty = True
    off_duty_responder.save()
    row = NotificationFactory(user=off_duty_responder.user, kind=Kind.INFO)
    assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT


def test_someone_without_a_duty_roster_is_never_muted() -> None:
    citizen = DeviceFactory().user
    NotificationPreferenceFactory(user=citizen, mute_off_duty=True)
    row = NotificationFactory(user=citizen, kind=Kind.REPORT_UPDATE)
    assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT


# --- Sweeps -----------------------------------------------------------------------------------


def test_a_row_stuck_in_sending_is_handed_back_and_the_old_worker_cannot_overwrite_it(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    # given: a worker claimed the row and died (no outcome for longer than the time limit)
    device = DeviceFactory()
    row = NotificationFactory(user=device.user)
    stale = delivery.notification_claim(notification_id=row.pk)
    assert stale is not None
    later = timezone.now() + timedelta(seconds=delivery.stuck_seconds() + 1)

    # when
    with time_machine.travel(later, tick=False), django_capture_on_commit_callbacks(execute=True):
        summary = delivery.notifications_requeue()

    # then: redelivered by another worker, and the zombie's late report is dropped
    assert summary == {"released": 1, "failed": 0, "enqueued": 1}
    row = reload(row)
    assert (row.status, row.attempts) == (Status.SENT, 2)
    late = delivery.Attempt(results=[SendResult(Outcome.FAILED, error="late")])
    assert delivery._record(stale, late) == "superseded"
    assert reload(row).status == Status.SENT
    assert len(push_outbox) == 1


def test_a_stuck_row_out_of_attempts_fails(settings: Any) -> None:
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    row = NotificationFactory(user=DeviceFactory().user)
    delivery.notification_claim(notification_id=row.pk)

    with time_machine.travel(timezone.now() + timedelta(seconds=delivery.stuck_seconds() + 1)):
        summary = delivery.notifications_requeue()

    assert (summary["failed"], reload(row).status) == (1, Status.FAILED)


def test_a_pending_row_whose_message_was_lost_is_enqueued_again(
    django_capture_on_commit_callbacks: Any, push_outbox: list[LocmemPush]
) -> None:
    lost = NotificationFactory(
        user=DeviceFactory().user, next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    fresh = NotificationFactory(user=DeviceFactory().user)  # its own message is on the way

    with django_capture_on_commit_callbacks(execute=True):
        summary = tasks.notifications_requeue.delay().get()

    assert summary["enqueued"] == 1
    assert reload(lost).status == Status.SENT
    assert reload(fresh).status == Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery.notifications_requeue()["enqueued"] == 0  # a second sweep: nothing


def test_an_sms_row_goes_through_the_sms_gateway(sms_outbox: list) -> None:
    user = CitizenFactory()
    row = NotificationFactory(user=user, channel=Channel.SMS, body="【西咸应急通】新任务")

    assert delivery.notification_deliver(notification_id=row.pk) == Status.SENT
    assert [(m.phone, m.text) for m in sms_outbox] == [(user.phone, "【西咸应急通】新任务")]

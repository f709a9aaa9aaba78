"""firebase-admin against the local fake FCM HTTP v1 server: exact request bodies,
token hygiene and retries, with no network at all."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.checks import run_checks
from django.utils import timezone

from apps.accounts.models import Device
from apps.notifications import delivery, services
from apps.notifications.models import Kind, Notification, Priority, Status
from tests.factories.accounts import DeviceFactory
from tests.support.fake_fcm import FakeFcm

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(timezone.datetime(2026, 7, 1, 9, 30))


def deliver_all() -> list[str]:
    return [
        delivery.notification_deliver(notification_id=pk)
        for pk in Notification.objects.order_by("pk").values_list("pk", flat=True)
    ]


def expiry(seconds: int) -> str:
    return str(int((NOW + timedelta(seconds=seconds)).timestamp()))


@time_machine.travel(NOW, tick=False)
def test_a_task_is_a_high_priority_data_message(fake_fcm: FakeFcm) -> None:
    # given
    device = DeviceFactory(platform="android")
    ids = services.notify_users(
        user_ids=[device.user_id],
        kind=Kind.TASK,
        title="New task: 积水",
        body="Ⅳ General · 三桥街道",
        data={"type": "task", "task_id": 7, "incident_id": 3, "lat": 34.276, "lng": 108.85},
        dedupe_key_prefix="task:7:dispatched",
        priority=Priority.HIGH,
        ack_within=timedelta(seconds=60),
    )

    # when
    assert deliver_all() == [Status.SENT]

    # then: exactly this JSON went to FCM
    (send,) = fake_fcm.sends
    assert send.project == "xems-test"
    assert send.body == {
        "message": {
            "token": device.token,
            "data": {
                "type": "task",
                "task_id": "7",
                "incident_id": "3",
                "lat": "34.276",
                "lng": "108.85",
                "notification_id": str(ids[0]),
                "kind": "task",
            },
            "android": {"priority": "high", "ttl": "900s"},
            "apns": {
                "headers": {
                    "apns-priority": "10",
                    "apns-push-type": "alert",
                    "apns-expiration": expiry(900),
                },
                "payload": {
                    "aps": {
                        "alert": {"title": "New task: 积水", "body": "Ⅳ General · 三桥街道"},
                        "sound": "default",
                        "content-available": 1,
                    }
                },
            },
        }
    }
    assert send.headers["authorization"].startswith("Bearer fake-access-")
    assert send.headers["x-goog-api-format-version"] == "2"
    assert fake_fcm.token_grants[0]["iss"] == fake_fcm.client_email
    row = Notification.objects.get()
    assert row.result["message_ids"] == ["projects/xems-test/messages/fake-1"]


@time_machine.travel(NOW, tick=False)
def test_a_warning_is_a_notification_message(fake_fcm: FakeFcm) -> None:
    device = DeviceFactory(platform="ios")
    ids = services.notify_users(
        user_ids=[device.user_id],
        kind=Kind.WARNING,
        title="Red rainstorm warning",
        body="Stay indoors.",
        data={"type": "warning", "warning_id": 12, "level": "red"},
        dedupe_key_prefix="warning:12:v1",
        priority=Priority.HIGH,
    )

    assert deliver_all() == [Status.SENT]

    assert fake_fcm.messages_to(device.token) == [
        {
            "token": device.token,
            "notification": {"title": "Red rainstorm warning", "body": "Stay indoors."},
            "data": {
                "type": "warning",
                "warning_id": "12",
                "level": "red",
                "notification_id": str(ids[0]),
                "kind": "warning",
            },
            "android": {
                "priority": "high",
                "ttl": "86400s",
                "notification": {"channel_id": "warning", "sound": "default"},
            },
            "apns": {
                "headers": {
                    "apns-priority": "10",
                    "apns-push-type": "alert",
                    "apns-expiration": expiry(86400),
                },
                "payload": {"aps": {"sound": "default"}},
            },
        }
    ]


@time_machine.travel(NOW, tick=False)
def test_citizens_of_a_region_get_a_topic_message(fake_fcm: FakeFcm) -> None:
    ids = services.notify_topic(
        topic=services.region_topic("fengdong"),
        kind=Kind.WARNING,
        title="Orange heat warning",
        body="Avoid outdoor work 12:00-16:00.",
        data={"type": "warning", "level": "orange"},
        dedupe_key="warning:13:v1:fengdong",
    )

    assert deliver_all() == [Status.SENT]

    assert fake_fcm.messages_to("region-fengdong") == [
        {
            "topic": "region-fengdong",
            "notification": {
                "title": "Orange heat warning",
                "body": "Avoid outdoor work 12:00-16:00.",
            },
            "data": {
                "type": "warning",
                "level": "orange",
                "notification_id": str(ids[0]),
                "kind": "warning",
            },
            "android": {
                "priority": "normal",
                "ttl": "86400s",
                "notification": {"channel_id": "warning", "sound": "default"},
            },
            "apns": {
                "headers": {
                    "apns-priority": "5",
                    "apns-push-type": "alert",
                    "apns-expiration": expiry(86400),
                },
                "payload": {"aps": {"sound": "default"}},
            },
        }
    ]


@pytest.mark.parametrize("error", ["UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_TOKEN"])
def test_tokens_fcm_calls_dead_deactivate_their_devices(fake_fcm: FakeFcm, error: str) -> None:
    dead = DeviceFactory()
    alive = DeviceFactory(user=dead.user)
    fake_fcm.fail(dead.token, error)
    services.notify_users(
        user_ids=[dead.user_id], kind=Kind.INFO, title="t", body="b", dedupe_key_prefix="i:1"
    )

    assert deliver_all() == [Status.SENT]

    assert Device.objects.get(pk=dead.pk).is_active is False
    assert Device.objects.get(pk=alive.pk).is_active is True


def test_an_invalid_argument_not_about_the_token_fails_without_touching_the_device(
    fake_fcm: FakeFcm,
) -> None:
    device = DeviceFactory()
    fake_fcm.fail(device.token, "INVALID_ARGUMENT")
    services.notify_users(
        user_ids=[device.user_id], kind=Kind.INFO, title="t", body="b", dedupe_key_prefix="i:1"
    )

    assert deliver_all() == [Status.FAILED]
    assert Device.objects.get(pk=device.pk).is_active is True


@time_machine.travel(NOW, tick=False)
def test_quota_exceeded_waits_for_retry_after_then_goes_through(fake_fcm: FakeFcm) -> None:
    device = DeviceFactory()
    fake_fcm.fail(device.token, "QUOTA_EXCEEDED", retry_after=90)
    services.notify_users(
        user_ids=[device.user_id], kind=Kind.INFO, title="t", body="b", dedupe_key_prefix="i:1"
    )

    assert deliver_all() == [Status.PENDING]
    row = Notification.objects.get()
    assert row.next_attempt_at >= NOW + timedelta(seconds=90)
    assert row.last_error.startswith("QuotaExceededError")

    with time_machine.travel(row.next_attempt_at, tick=False):
        assert deliver_all() == [Status.SENT]
    assert len(fake_fcm.messages_to(device.token)) == 2


@pytest.mark.parametrize("error", ["UNAVAILABLE", "INTERNAL"])
def test_server_errors_are_retried_by_the_outbox_not_inside_the_sdk(
    fake_fcm: FakeFcm, error: str
) -> None:
    device = DeviceFactory()
    fake_fcm.fail(device.token, error)
    services.notify_users(
        user_ids=[device.user_id], kind=Kind.INFO, title="t", body="b", dedupe_key_prefix="i:1"
    )

    assert deliver_all() == [Status.PENDING]
    assert len(fake_fcm.messages_to(device.token)) == 1  # one HTTP request per attempt

    with time_machine.travel(Notification.objects.get().next_attempt_at):
        assert deliver_all() == [Status.SENT]


def test_an_unreachable_fcm_is_retried(fake_fcm: FakeFcm, settings: Any) -> None:
    settings.FCM_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    device = DeviceFactory()
    services.notify_users(
        user_ids=[device.user_id], kind=Kind.INFO, title="t", body="b", dedupe_key_prefix="i:1"
    )

    assert deliver_all() == [Status.PENDING]
    assert "UnavailableError" in Notification.objects.get().last_error


def test_the_deploy_check_reports_a_missing_credentials_file(settings: Any) -> None:
    settings.NOTIFICATIONS_PUSH_BACKEND = "apps.notifications.backends.fcm.FcmPushBackend"
    settings.FCM_CREDENTIALS_FILE = "/nonexistent/fcm.json"
    ids = {message.id for message in run_checks()}
    assert "notifications.E002" in ids

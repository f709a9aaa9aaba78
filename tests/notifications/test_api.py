"""Notifications API: the generic receipt and my preferences."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.notifications.models import Kind, Notification, NotificationPreference
from tests.factories.accounts import CitizenFactory
from tests.factories.notifications import NotificationFactory

pytestmark = pytest.mark.django_db

API = "/api/v1"


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ack(user: User | None, notification_id: int, **headers: str) -> Any:
    return client_for(user).post(
        f"{API}/notifications/{notification_id}/ack/", {}, format="json", headers=headers
    )


def test_the_recipient_acknowledges_a_push_once() -> None:
    row = NotificationFactory(kind=Kind.WARNING)
    key = str(uuid.uuid4())

    first = ack(row.user, row.pk, **{"Idempotency-Key": key})
    replay = ack(row.user, row.pk, **{"Idempotency-Key": key})
    again = ack(row.user, row.pk)

    assert first.status_code == 200, first.json()
    assert first.json()["id"] == row.pk
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json() == again.json()
    row.refresh_from_db()
    assert row.acknowledged_at is not None


def test_nobody_else_can_acknowledge_it() -> None:
    row = NotificationFactory()
    for response in (ack(CitizenFactory(), row.pk), ack(row.user, row.pk + 1000)):
        assert response.status_code == 404
        assert response.json()["code"] == "notification_not_found"
    assert ack(None, row.pk).status_code == 401
    row.refresh_from_db()
    assert row.acknowledged_at is None


def test_task_pushes_are_acknowledged_on_the_task() -> None:
    row = NotificationFactory(kind=Kind.TASK, data={"type": "task", "task_id": "42"})

    response = ack(row.user, row.pk)

    assert response.status_code == 409
    assert response.json()["code"] == "ack_on_task"
    assert response.json()["extra"] == {"task_id": "42"}
    assert Notification.objects.get(pk=row.pk).acknowledged_at is None


def test_my_preferences_default_to_nothing_muted_and_can_be_changed() -> None:
    user = CitizenFactory()
    client = client_for(user)

    assert client.get(f"{API}/me/notification-preferences/").json() == {"mute_off_duty": False}
    changed = client.put(
        f"{API}/me/notification-preferences/", {"mute_off_duty": True}, format="json"
    )

    assert changed.status_code == 200
    assert changed.json() == {"mute_off_duty": True}
    assert NotificationPreference.objects.get(user=user).mute_off_duty is True


def test_bad_preferences_are_refused_in_the_envelope() -> None:
    response = client_for(CitizenFactory()).put(
        f"{API}/me/notification-preferences/", {"mute_off_duty": "perhaps"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["extra"]["fields"]["mute_off_duty"][0]["code"] == "invalid"
    assert not NotificationPreference.objects.exists()

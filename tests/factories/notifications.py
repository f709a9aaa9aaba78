"""factory_boy factories for apps.notifications.

Rows are written directly (set-up); use ``apps.notifications.services.notify_users`` to
exercise the outbox writes and ``apps.notifications.delivery`` to move rows::

    row = NotificationFactory(user=user, kind="task", ack_deadline=deadline)
    NotificationPreferenceFactory(user=user, mute_off_duty=True)
"""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.notifications.models import Channel, Kind, Notification, NotificationPreference
from tests.factories.accounts import CitizenFactory


class NotificationFactory(DjangoModelFactory):
    """A pending push to a user, due now."""

    class Meta:
        model = Notification

    dedupe_key = factory.Sequence(lambda n: f"test:{n}:u")
    channel = Channel.PUSH
    kind = Kind.INFO
    user = factory.SubFactory(CitizenFactory)
    topic = ""
    language = "en"
    title = factory.Sequence(lambda n: f"Message {n}")
    body = "Body"
    data: Any = factory.LazyFunction(dict)
    next_attempt_at = factory.LazyFunction(timezone.now)


class NotificationPreferenceFactory(DjangoModelFactory):
    class Meta:
        model = NotificationPreference

    user = factory.SubFactory(CitizenFactory)
    mute_off_duty = True

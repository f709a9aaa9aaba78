"""Push backends: where a rendered message goes (``settings.NOTIFICATIONS_PUSH_BACKEND``).

* :class:`ConsolePushBackend` logs the message: the embedded default (no FCM project
  on a developer machine), so ``make run`` shows every push in the log.
* :class:`LocmemPushBackend` keeps messages in a class-level list for tests, and can be
  scripted to answer "unregistered", "retry later" or "failed" for given tokens.
* :class:`apps.notifications.backends.fcm.FcmPushBackend` sends through firebase-admin.

A backend never touches the database: it reports one :class:`SendResult` per device
(or one for a topic) and ``apps.notifications.delivery`` decides what that means for
the outbox row (retry, deactivate the device, give up).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import ClassVar, Literal

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    SENT = "sent"
    UNREGISTERED = "unregistered"  # the token is dead: deactivate the device
    RETRY = "retry"  # quota, 5xx, network: the same message may go through later
    FAILED = "failed"  # permanent for this message (bad payload, auth to APNs, ...)


MessageStyle = Literal["data", "notification"]


@dataclass(frozen=True)
class PushMessage:
    """A rendered push, independent of the provider.

    ``style="data"``: the app builds the alert itself (tasks: it must ring and record the
    receipt even in the background); ``"notification"``: the OS shows title and body.
    ``data`` values are strings (FCM refuses anything else).
    """

    notification_id: int
    kind: str
    priority: str
    style: MessageStyle
    title: str
    body: str
    data: dict[str, str]
    ttl_seconds: int
    sound: str | None = None
    channel_id: str = ""  # the Android notification channel the app created for the kind


@dataclass(frozen=True)
class DeviceTarget:
    device_id: int
    token: str
    platform: str


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    device_id: int | None = None
    message_id: str = ""
    error: str = ""
    retry_after: float | None = None  # seconds the provider asked us to wait


class PushBackend:
    """Interface of a push provider."""

    def send_to_devices(
        self, message: PushMessage, devices: list[DeviceTarget]
    ) -> list[SendResult]:
        """One result per device, in order."""
        raise NotImplementedError

    def send_to_topic(self, message: PushMessage, topic: str) -> SendResult:
        raise NotImplementedError

    def send_many(
        self, items: list[tuple[PushMessage, list[DeviceTarget]]]
    ) -> list[list[SendResult]]:
        """Several messages, each to its devices (a batch of the outbox): one list of
        results per item, in order. Providers that can send many at once override it."""
        return [self.send_to_devices(message, devices) for message, devices in items]


class ConsolePushBackend(PushBackend):
    """Logs every push (embedded default)."""

    def send_to_devices(
        self, message: PushMessage, devices: list[DeviceTarget]
    ) -> list[SendResult]:
        for device in devices:
            logger.warning(
                "PUSH %s/%s to device %s (%s): %s — %s %s",
                message.kind,
                message.priority,
                device.device_id,
                device.platform,
                message.title,
                message.body,
                message.data,
            )
        return [
            SendResult(Outcome.SENT, device_id=d.device_id, message_id=f"console-{d.device_id}")
            for d in devices
        ]

    def send_to_topic(self, message: PushMessage, topic: str) -> SendResult:
        logger.warning(
            "PUSH %s/%s to topic %s: %s — %s %s",
            message.kind,
            message.priority,
            topic,
            message.title,
            message.body,
            message.data,
        )
        return SendResult(Outcome.SENT, message_id=f"console-topic-{topic}")


@dataclass(frozen=True)
class LocmemPush:
    """One message as the locmem backend recorded it (``target``: token or topic)."""

    target: str
    message: PushMessage
    device_id: int | None = None


@dataclass
class LocmemScript:
    """Answers to give, per token (or topic), before answering "sent" again."""

    answers: dict[str, list[SendResult]] = field(default_factory=dict)

    def next_for(self, target: str) -> SendResult | None:
        queue = self.answers.get(target)
        if not queue:
            return None
        return queue.pop(0)


class LocmemPushBackend(PushBackend):
    """Records messages in ``LocmemPushBackend.outbox``; tests script failures with
    ``LocmemPushBackend.script.answers[token] = [SendResult(Outcome.RETRY), ...]``."""

    outbox: ClassVar[list[LocmemPush]] = []
    script: ClassVar[LocmemScript] = LocmemScript()

    @classmethod
    def reset(cls) -> None:
        cls.outbox.clear()
        cls.script.answers.clear()

    def send_to_devices(
        self, message: PushMessage, devices: list[DeviceTarget]
    ) -> list[SendResult]:
        return [self._send(message, device.token, device.device_id) for device in devices]

    def send_to_topic(self, message: PushMessage, topic: str) -> SendResult:
        return self._send(message, topic, None)

    def _send(self, message: PushMessage, target: str, device_id: int | None) -> SendResult:
        scripted = self.script.next_for(target)
        if scripted is not None:
            return SendResult(
                scripted.outcome,
                device_id=device_id,
                message_id=scripted.message_id,
                error=scripted.error,
                retry_after=scripted.retry_after,
            )
        self.outbox.append(LocmemPush(target=target, message=message, device_id=device_id))
        return SendResult(
            Outcome.SENT, device_id=device_id, message_id=f"locmem-{len(self.outbox)}"
        )


@lru_cache(maxsize=4)
def _backend_class(path: str) -> type[PushBackend]:
    return import_string(path)


def get_push_backend() -> PushBackend:
    return _backend_class(settings.NOTIFICATIONS_PUSH_BACKEND)()

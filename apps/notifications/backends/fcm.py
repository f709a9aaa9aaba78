"""FCM HTTP v1 through firebase-admin (public API; internals only in ``firebase_adapter``).

Message shapes (asserted byte for byte against the fake server in the tests):

* ``style="data"`` (tasks): a DATA message, no ``notification`` block, so the app
  wakes, rings and acknowledges the receipt even in the background. Android
  ``priority`` high (normal for a cancellation) and a ``ttl``; APNs headers
  ``apns-priority: 10`` (5 when normal), ``apns-push-type: alert``, ``apns-expiration``,
  and ``aps`` with the alert text, ``content-available: 1`` and the task sound.
* ``style="notification"`` (warnings and the rest): a NOTIFICATION message shown by
  the OS, on the Android channel of its kind, with the default sound.
* topics (citizens of a region): the same, addressed to ``topic``.

Error mapping (one :class:`SendResult` per device): ``UnregisteredError``,
``SenderIdMismatchError`` and ``InvalidArgumentError`` about the token → the device is
dead; quota (429, honouring ``Retry-After``), 5xx, timeouts and connection errors →
retry; anything else → failed for this message.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.utils import timezone
from firebase_admin import exceptions, messaging
from google.auth import exceptions as auth_exceptions

from apps.notifications.backends import (
    DeviceTarget,
    Outcome,
    PushBackend,
    PushMessage,
    SendResult,
)
from apps.notifications.backends.firebase_adapter import FcmConfig, fcm_app, token_message

logger = logging.getLogger(__name__)

# Retryable: the same message may well go through later.
RETRYABLE = (
    exceptions.ResourceExhaustedError,  # QuotaExceededError (429) included
    exceptions.UnavailableError,  # 503, and connection errors
    exceptions.InternalError,  # 500
    exceptions.DeadlineExceededError,  # timeouts
    exceptions.UnknownError,  # e.g. a credential refresh that failed on the network
    exceptions.UnauthenticatedError,  # our access token expired mid-flight
)
DEAD_TOKEN = (messaging.UnregisteredError, messaging.SenderIdMismatchError)
# Raised around the SDK rather than by it: the OAuth2 token refresh (``send`` lets it
# through; ``send_each`` wraps it in UnknownError) and the transport underneath.
TRANSPORT = (auth_exceptions.GoogleAuthError, requests.exceptions.RequestException)
SEND_EACH_MAX = 500  # FCM's limit of messages per send_each call


class FcmPushBackend(PushBackend):
    def __init__(self) -> None:
        self.app = fcm_app(FcmConfig.from_settings())

    def send_to_devices(
        self, message: PushMessage, devices: list[DeviceTarget]
    ) -> list[SendResult]:
        if not devices:
            return []
        try:
            messages = [build_message(message, token=device.token) for device in devices]
            batch = messaging.send_each(messages, app=self.app)
        except ValueError as exc:  # the SDK refused the payload before sending
            return [
                SendResult(Outcome.FAILED, device_id=d.device_id, error=str(exc)) for d in devices
            ]
        except exceptions.FirebaseError as exc:
            return [classify(exc, device_id=d.device_id) for d in devices]
        except TRANSPORT as exc:
            error = f"{type(exc).__name__}: {exc}"
            return [SendResult(Outcome.RETRY, device_id=d.device_id, error=error) for d in devices]
        results = []
        for device, response in zip(devices, batch.responses, strict=True):
            if response.success:
                results.append(
                    SendResult(
                        Outcome.SENT, device_id=device.device_id, message_id=response.message_id
                    )
                )
            else:
                results.append(classify(response.exception, device_id=device.device_id))
        return results

    def send_many(
        self, items: list[tuple[PushMessage, list[DeviceTarget]]]
    ) -> list[list[SendResult]]:
        """Every device of every item through ``send_each`` (its threads send in
        parallel), at most ``SEND_EACH_MAX`` messages a call: a warning's 5,000 persons
        are a handful of calls, not 5,000 sequential round trips."""
        results: list[list[SendResult | None]] = [[None] * len(d) for _m, d in items]
        flat: list[tuple[int, int, DeviceTarget, messaging.Message]] = []
        for i, (message, devices) in enumerate(items):
            for j, device in enumerate(devices):
                try:
                    built = build_message(message, token=device.token)
                except ValueError as exc:  # the SDK refused this payload
                    results[i][j] = SendResult(
                        Outcome.FAILED, device_id=device.device_id, error=str(exc)
                    )
                    continue
                flat.append((i, j, device, built))
        for start in range(0, len(flat), SEND_EACH_MAX):
            chunk = flat[start : start + SEND_EACH_MAX]
            for (i, j, _device, _built), result in zip(chunk, self._send_chunk(chunk), strict=True):
                results[i][j] = result
        return [[r for r in row if r is not None] for row in results]

    def _send_chunk(
        self, chunk: list[tuple[int, int, DeviceTarget, messaging.Message]]
    ) -> list[SendResult]:
        devices = [device for _i, _j, device, _built in chunk]
        try:
            batch = messaging.send_each([built for *_rest, built in chunk], app=self.app)
        except ValueError as exc:
            return [
                SendResult(Outcome.FAILED, device_id=d.device_id, error=str(exc)) for d in devices
            ]
        except exceptions.FirebaseError as exc:
            return [classify(exc, device_id=d.device_id) for d in devices]
        except TRANSPORT as exc:
            error = f"{type(exc).__name__}: {exc}"
            return [SendResult(Outcome.RETRY, device_id=d.device_id, error=error) for d in devices]
        return [
            SendResult(Outcome.SENT, device_id=d.device_id, message_id=response.message_id)
            if response.success
            else classify(response.exception, device_id=d.device_id)
            for d, response in zip(devices, batch.responses, strict=True)
        ]

    def send_to_topic(self, message: PushMessage, topic: str) -> SendResult:
        try:
            message_id = messaging.send(build_message(message, topic=topic), app=self.app)
        except ValueError as exc:
            return SendResult(Outcome.FAILED, error=str(exc))
        except exceptions.FirebaseError as exc:
            return classify(exc)
        except TRANSPORT as exc:
            return SendResult(Outcome.RETRY, error=f"{type(exc).__name__}: {exc}")
        return SendResult(Outcome.SENT, message_id=message_id)


def build_message(
    message: PushMessage, *, token: str | None = None, topic: str | None = None
) -> messaging.Message:
    """The firebase-admin Message for one device token or one topic."""
    high = message.priority == "high"
    ttl = timedelta(seconds=message.ttl_seconds)
    expires = int((timezone.now() + ttl).timestamp())
    apns_headers = {
        "apns-priority": "10" if high else "5",
        "apns-push-type": "alert",
        "apns-expiration": str(expires),
    }
    kwargs: dict[str, Any] = {"data": dict(message.data)}
    if message.style == "data":
        kwargs["android"] = messaging.AndroidConfig(priority="high" if high else "normal", ttl=ttl)
        kwargs["apns"] = messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    alert=messaging.ApsAlert(title=message.title, body=message.body),
                    sound=message.sound,
                    content_available=True,
                )
            ),
        )
    else:
        kwargs["notification"] = messaging.Notification(title=message.title, body=message.body)
        kwargs["android"] = messaging.AndroidConfig(
            priority="high" if high else "normal",
            ttl=ttl,
            notification=messaging.AndroidNotification(
                channel_id=message.channel_id or None, sound=message.sound
            ),
        )
        kwargs["apns"] = messaging.APNSConfig(
            headers=apns_headers,
            payload=messaging.APNSPayload(aps=messaging.Aps(sound=message.sound)),
        )
    if topic is not None:
        return messaging.Message(topic=topic, **kwargs)
    return token_message(token=token, **kwargs)


def classify(exc: BaseException | None, *, device_id: int | None = None) -> SendResult:
    """What an FCM error means for the message (and the device's token)."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DEAD_TOKEN) or (
        isinstance(exc, exceptions.InvalidArgumentError) and _about_the_token(exc)
    ):
        return SendResult(Outcome.UNREGISTERED, device_id=device_id, error=error)
    if isinstance(exc, messaging.ThirdPartyAuthError):
        # APNs/web-push credentials of the Firebase project: an operator must fix them.
        logger.error("FCM third-party auth error: %s", exc)
        return SendResult(Outcome.FAILED, device_id=device_id, error=error)
    if isinstance(exc, RETRYABLE):
        return SendResult(
            Outcome.RETRY, device_id=device_id, error=error, retry_after=_retry_after(exc)
        )
    return SendResult(Outcome.FAILED, device_id=device_id, error=error)


def _about_the_token(exc: exceptions.FirebaseError) -> bool:
    """INVALID_ARGUMENT is about the token when FCM says so (a field violation on
    ``message.token``) or its message names the registration token."""
    if "registration token" in str(exc).lower():
        return True
    response = exc.http_response
    if response is None:
        return False
    try:
        details = response.json().get("error", {}).get("details", [])
    except ValueError:
        return False
    for detail in details:
        for violation in detail.get("fieldViolations", []) or []:
            if violation.get("field") in ("message.token", "message.fid"):
                return True
    return False


def _retry_after(exc: exceptions.FirebaseError) -> float | None:
    response = exc.http_response
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())

"""Pluggable SMS gateway (OTP codes now; push fallback in apps.notifications later).

``settings.SMS_BACKEND`` names a class with ``send(phone, text)``. The default writes to
the log (no gateway on a developer machine); tests use the in-memory outbox; a real
gateway (Aliyun, Tencent Cloud SMS...) is one more subclass, configured by env.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class SmsError(Exception):
    """The gateway refused or could not be reached; callers decide whether to retry."""


@dataclass(frozen=True)
class SmsMessage:
    phone: str
    text: str


class BaseSmsBackend:
    def send(self, phone: str, text: str) -> None:
        raise NotImplementedError


class ConsoleSmsBackend(BaseSmsBackend):
    """Logs the message. The embedded default: OTP codes appear in the server log."""

    def send(self, phone: str, text: str) -> None:
        logger.warning("SMS to %s: %s", phone, text)


class LocmemSmsBackend(BaseSmsBackend):
    """Keeps messages in ``LocmemSmsBackend.outbox`` for tests to read."""

    outbox: list[SmsMessage] = []

    def send(self, phone: str, text: str) -> None:
        self.outbox.append(SmsMessage(phone=phone, text=text))


@lru_cache(maxsize=4)
def _backend_class(path: str) -> type[BaseSmsBackend]:
    return import_string(path)


def get_sms_backend() -> BaseSmsBackend:
    return _backend_class(settings.SMS_BACKEND)()


def send_sms(phone: str, text: str) -> None:
    get_sms_backend().send(phone, text)

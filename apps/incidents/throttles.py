"""Rate limits on public report intake (rates in REST_FRAMEWORK DEFAULT_THROTTLE_RATES).

Anonymous intake is open to the internet, so it is limited three ways: per client IP
(a script on one host), per device (``X-Device-Id``, the app's install id: one phone
hopping networks), per contact phone (one number used to flood the queue from many
devices). Mobile carriers put many subscribers behind one address (CGNAT), so the IP
limit is the loosest. SOS has its own, more generous budget: a person in danger may
press it repeatedly, and refusing a real SOS costs more than triaging a few spare ones.

A refusal is DRF's ``Throttled``: the core handler renders the 429 ``rate_limited``
envelope with ``extra.retry_after`` and DRF adds the ``Retry-After`` header.

Rates are read per request (as in ``apps.accounts.api.throttles``), with the defaults
below when the setting lacks the scope, so intake is never left unlimited by a missing
key.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.phones import PhoneNumberError, phone_normalise

DEVICE_HEADER = "X-Device-Id"
MAX_DEVICE_ID_LENGTH = 64

DEFAULT_RATES: dict[str, str] = {
    "report_ip": "30/min",
    "report_device": "10/min",
    "report_phone": "10/min",
    "sos_ip": "120/min",
    "sos_device": "6/min",
}


def device_id_from(request: Request) -> str:
    """The app's install id from ``X-Device-Id`` (trimmed), or ``""``."""
    raw = request.headers.get(DEVICE_HEADER, "")
    return raw.strip()[:MAX_DEVICE_ID_LENGTH]


class _IntakeThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or DEFAULT_RATES[self.scope]

    def key(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ReportIpThrottle(_IntakeThrottle):
    """Report submissions from one client address."""

    scope = "report_ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.key(self.get_ident(request))


class ReportDeviceThrottle(_IntakeThrottle):
    """Report submissions from one app install, whatever network it is on."""

    scope = "report_device"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        device_id = device_id_from(request)
        return self.key(device_id) if device_id else None


class ReportPhoneThrottle(_IntakeThrottle):
    """Reports naming one contact phone (normalised, so spellings share one budget)."""

    scope = "report_phone"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        data = request.data
        raw = data.get("phone") if hasattr(data, "get") else None
        if not isinstance(raw, str) or not raw.strip():
            return None
        try:
            return self.key(phone_normalise(raw))
        except PhoneNumberError:
            return None  # the service refuses it with a field error; nothing to count


class SosIpThrottle(ReportIpThrottle):
    """SOS presses from one client address (generous: CGNAT, crowds at one scene)."""

    scope = "sos_ip"


class SosDeviceThrottle(ReportDeviceThrottle):
    """SOS presses from one app install."""

    scope = "sos_device"


REPORT_THROTTLES = [ReportIpThrottle, ReportDeviceThrottle, ReportPhoneThrottle]
SOS_THROTTLES = [SosIpThrottle, SosDeviceThrottle]

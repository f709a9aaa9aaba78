"""Rate limits on public report intake (rates in REST_FRAMEWORK DEFAULT_THROTTLE_RATES).

Anonymous intake is open to the internet, so it is limited three ways: per client IP
(a script on one host), per device (``X-Device-Id``, the app's install id: one phone
hopping networks), per contact phone (one number used to flood the queue from many
devices). Mobile carriers put many subscribers behind one address (CGNAT), so the IP
limit is the loosest. SOS has its own, more generous budget: a person in danger may
press it repeatedly, and refusing a real SOS costs more than triaging a few spare ones.

All limits of one request are checked together by :mod:`apps.core.ratelimit` (one Redis
round trip; a refused request consumes none of them). The Django view and the fast
intake path (:mod:`apps.incidents.intake`) share these functions and so one budget. A
request the fast path has already counted and then hands to Django carries
``INTAKE_COUNTED_SCOPE_KEY`` in its ASGI scope (set only by our own server code, never
from the client), so it is not counted twice.

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
from rest_framework.throttling import BaseThrottle

from apps.accounts.phones import PhoneNumberError, phone_normalise
from apps.core import ratelimit
from apps.core.client_address import ClientAddressThrottleMixin, client_address

DEVICE_HEADER = "X-Device-Id"
MAX_DEVICE_ID_LENGTH = 64
INTAKE_COUNTED_SCOPE_KEY = "xems.intake.counted"

DEFAULT_RATES: dict[str, str] = {
    "report_ip": "30/min",
    "report_device": "10/min",
    "report_phone": "10/min",
    "sos_ip": "120/min",
    "sos_device": "6/min",
}


def rate_for(scope: str) -> str:
    return api_settings.DEFAULT_THROTTLE_RATES.get(scope) or DEFAULT_RATES[scope]


def device_id_from(request: Any) -> str:
    """The app's install id from ``X-Device-Id`` (trimmed), or ``""``."""
    raw = request.headers.get(DEVICE_HEADER, "")
    return raw.strip()[:MAX_DEVICE_ID_LENGTH]


def phone_ident(raw: Any) -> str | None:
    """The normalised contact phone a report names, or ``None`` (nothing to count: a
    bad number is refused by the service with a field error)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return phone_normalise(raw)
    except PhoneNumberError:
        return None


def client_ident(request: Any) -> str:
    """The client address the per-address limits count (behind our proxies:
    :mod:`apps.core.client_address`); Django's and the fast path's requests alike."""
    return client_address(request)


def report_limits(*, ip: str, device_id: str, phone: str | None) -> list[ratelimit.Limit]:
    limits = [ratelimit.Limit.of("report_ip", ip, rate_for("report_ip"))]
    if device_id:
        limits.append(ratelimit.Limit.of("report_device", device_id, rate_for("report_device")))
    if phone:
        limits.append(ratelimit.Limit.of("report_phone", phone, rate_for("report_phone")))
    return limits


def sos_limits(*, ip: str, device_id: str) -> list[ratelimit.Limit]:
    limits = [ratelimit.Limit.of("sos_ip", ip, rate_for("sos_ip"))]
    if device_id:
        limits.append(ratelimit.Limit.of("sos_device", device_id, rate_for("sos_device")))
    return limits


class _IntakeThrottle(ClientAddressThrottleMixin, BaseThrottle):
    """All of one endpoint's limits as one DRF throttle (one check, one round trip)."""

    def limits(self, request: Request) -> list[ratelimit.Limit]:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        asgi_scope = getattr(request._request, "scope", None) or {}
        if asgi_scope.get(INTAKE_COUNTED_SCOPE_KEY):
            return True  # the fast intake path counted this request already
        self.verdict = ratelimit.hit(self.limits(request))
        return self.verdict.allowed

    def wait(self) -> float | None:
        return self.verdict.wait_s


class ReportIntakeThrottle(_IntakeThrottle):
    """Report submissions: per address, per device, per named phone."""

    def limits(self, request: Request) -> list[ratelimit.Limit]:
        data = request.data
        phone = phone_ident(data.get("phone") if hasattr(data, "get") else None)
        return report_limits(
            ip=client_ident(request), device_id=device_id_from(request), phone=phone
        )


class SosIntakeThrottle(_IntakeThrottle):
    """SOS presses: per address (generous: CGNAT, crowds at one scene), per device."""

    def limits(self, request: Request) -> list[ratelimit.Limit]:
        return sos_limits(ip=client_ident(request), device_id=device_id_from(request))


REPORT_THROTTLES = [ReportIntakeThrottle]
SOS_THROTTLES = [SosIntakeThrottle]

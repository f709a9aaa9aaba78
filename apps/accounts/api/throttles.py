"""Rate limits of the login endpoints (rates live in REST_FRAMEWORK DEFAULT_THROTTLE_RATES).

Rates are read per request rather than frozen at import, so an operator changing
``THROTTLE_*`` (or a test using the ``settings`` fixture) takes effect without a restart.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.phones import PhoneNumberError, phone_normalise
from apps.core.client_address import ClientAddressThrottleMixin


class _SettingsRateThrottle(ClientAddressThrottleMixin, SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class _IpThrottle(_SettingsRateThrottle):
    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIpThrottle(_IpThrottle):
    """Password guessing from one address."""

    scope = "login"


class OtpRequestIpThrottle(_IpThrottle):
    """SMS pumping from one address across many numbers (SMS costs money)."""

    scope = "otp_request_ip"


class OtpVerifyIpThrottle(_IpThrottle):
    """Code guessing from one address across many numbers."""

    scope = "otp_verify_ip"


class OtpRequestPhoneThrottle(_SettingsRateThrottle):
    """SMS bombing of one number from many addresses: keyed on the normalised phone,
    so ``138 0013 8000`` and ``+8613800138000`` share one budget."""

    scope = "otp_request_phone"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        data = request.data
        raw = data.get("phone") if hasattr(data, "get") else None
        try:
            phone = phone_normalise(raw) if isinstance(raw, str) else None
        except PhoneNumberError:
            phone = None
        if phone is None:
            return None  # the serializer refuses it; nothing to count
        return self.cache_format % {"scope": self.scope, "ident": phone}

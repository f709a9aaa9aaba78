"""Error codes of the accounts app (conventions R8). Stable API: add, never rename.

Generic codes (``token_invalid``, ``authentication_failed``, ``rate_limited``,
``not_found``...) live in :mod:`apps.core.errors`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError


class AccountsErrorCode(StrEnum):
    # Phone login (OTP)
    OTP_INVALID = "otp_invalid"  # wrong code; extra.attempts_left
    OTP_EXPIRED = "otp_expired"  # the pending code timed out: request a new one
    OTP_NOT_PENDING = "otp_not_pending"  # no code waiting (never sent, used or burnt)
    OTP_LOCKED = "otp_locked"  # wrong codes: wait extra.retry_after seconds (429)
    OTP_RESEND_TOO_SOON = "otp_resend_too_soon"  # extra.retry_after (429)
    # Staff password login (django-axes, apps.accounts.lockout)
    LOGIN_LOCKED = "login_locked"  # this username from this address; extra.retry_after (429)
    # Accounts
    ACCOUNT_INACTIVE = "account_inactive"
    # Roles
    ROLE_NOT_GRANTABLE = "role_not_grantable"


MESSAGES: dict[str, Any] = {
    AccountsErrorCode.OTP_INVALID: _("The code is wrong."),
    AccountsErrorCode.OTP_EXPIRED: _("The code has expired. Request a new one."),
    AccountsErrorCode.OTP_NOT_PENDING: _(
        "No code is waiting for this phone number. Request a new one."
    ),
    AccountsErrorCode.OTP_LOCKED: _("Too many wrong codes. Wait a moment before trying again."),
    AccountsErrorCode.OTP_RESEND_TOO_SOON: _(
        "A code was sent a moment ago. Wait before resending."
    ),
    AccountsErrorCode.LOGIN_LOCKED: _(
        "Too many failed logins for this account from this address. Try again later."
    ),
    AccountsErrorCode.ACCOUNT_INACTIVE: _("This account is disabled."),
    AccountsErrorCode.ROLE_NOT_GRANTABLE: _("You may not grant this role in this region."),
}


def accounts_error(code: AccountsErrorCode, *, status: int = 400, **extra: Any) -> ApplicationError:
    """An :class:`ApplicationError` with this app's message for ``code``."""
    return ApplicationError(code, MESSAGES[code], extra=extra, status=status)

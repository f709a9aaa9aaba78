"""Staff password logins locked per (username, client address) after repeated failures.

django-axes counts failed ``authenticate()`` calls — the admin login form and the API's
``auth/token/`` alike — keyed on the username *and* the client address
(``apps.core.client_address``, so behind the router it is the client, not the router):
``LOGIN_FAILURE_LIMIT`` wrong passwords lock that pair for ``LOGIN_LOCKOUT_MINUTES``.
A stranger guessing a commander's password locks themselves out, not the commander,
who logs in from their own address. Guessing one account from many addresses is slowed
by the per-address login throttle (``THROTTLE_LOGIN``) and by the password rules.

This module renders the refusal: the error envelope for the API, a page for the admin.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from apps.accounts.errors import MESSAGES, AccountsErrorCode


def lockout_seconds() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return int(cooloff.total_seconds()) if cooloff else 0


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After`` (no CORS headers, unlike
    axes' own JSON answer)."""
    retry_after = lockout_seconds()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "code": AccountsErrorCode.LOGIN_LOCKED.value,
                "message": str(MESSAGES[AccountsErrorCode.LOGIN_LOCKED]),
                "extra": {"retry_after": retry_after},
            },
            status=429,
        )
    else:
        response = render(
            request,
            "accounts/login_locked.html",
            {
                "minutes": max(1, retry_after // 60),
                "title": MESSAGES[AccountsErrorCode.LOGIN_LOCKED],
            },
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response

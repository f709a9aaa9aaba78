"""Admin (session) logins end when idle too long and after an absolute lifetime.

A command-centre workstation left logged in is an open door to every incident and
reporter in its scope. ``SESSION_IDLE_TIMEOUT_SECONDS`` of inactivity or
``SESSION_MAX_AGE_SECONDS`` since login (a shift) end the session: the next request is
anonymous and the admin asks for the password again. The cookie's own lifetime is the
absolute one (``SESSION_COOKIE_AGE``), so an abandoned session also dies in the store.

The last-seen time is written at most once a minute, not on every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponseBase

LOGIN_AT = "_xems_login_at"
SEEN_AT = "_xems_seen_at"
SEEN_RESOLUTION_SECONDS = 60


class SessionTimeoutMiddleware:
    """Place after ``AuthenticationMiddleware`` (it may log the request's user out)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session:
            now = int(time.time())
            login_at = session.setdefault(LOGIN_AT, now)
            seen_at = session.get(SEEN_AT, login_at)
            if (
                now - login_at >= settings.SESSION_MAX_AGE_SECONDS
                or now - seen_at >= settings.SESSION_IDLE_TIMEOUT_SECONDS
            ):
                logout(request)  # flushes the session; the user is anonymous from here
            elif now - seen_at >= SEEN_RESOLUTION_SECONDS or SEEN_AT not in session:
                session[SEEN_AT] = now
        return self.get_response(request)


def session_ends_at(session: Any, now: float | None = None) -> float | None:
    """When a staff session ends (seconds since the epoch) by the rules above: the
    earlier of its absolute end and its idle end, counted from the last request seen.
    ``None`` if the session holds no login. The WebSocket session path
    (``apps.realtime.auth``) asks this, so a socket never outlives its session."""
    if SESSION_KEY not in session:
        return None
    now = time.time() if now is None else now
    login_at = session.get(LOGIN_AT, now)
    seen_at = session.get(SEEN_AT, login_at)
    return float(
        min(
            login_at + settings.SESSION_MAX_AGE_SECONDS,
            seen_at + settings.SESSION_IDLE_TIMEOUT_SECONDS,
        )
    )

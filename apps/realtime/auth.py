"""Who is on a WebSocket: a JWT access token, or an admin session from the same site.

**Tokens** (the mobile apps, scripts). Browsers cannot set an Authorization header on a
WebSocket, so the access token comes as the ``access_token`` query parameter or as a
``bearer.<token>`` subprotocol (the mobile app uses the header-free subprotocol form so
tokens stay out of access logs). The same simplejwt validation as the REST API applies:
expired, forged, blacklisted-user or wrong-type tokens leave ``scope["user"]`` anonymous
and ``scope["auth_error"]`` set, and the consumer closes with 4401/4403.

**Admin sessions** (the duty board in the admin, ``apps/console/static/console/board.js``).
A page cannot hand its HttpOnly session cookie to a script, but the browser sends it with
the handshake. Only when no token is given, the session cookie authenticates if all of:

- the handshake's ``Origin`` is one of ours (its host in ``ALLOWED_HOSTS`` — a ``*``
  wildcard does not count — or the origin listed in ``CSRF_TRUSTED_ORIGINS``): a
  WebSocket is not bound by the same-origin policy, so without this check any web page
  an officer visits could open a socket that rides their session (cross-site WebSocket
  hijacking);
- the session holds a login of an active **staff** user (the admin's own rule), with the
  session's password hash still valid (``django.contrib.auth.get_user``);
- the session has not ended by the admin's idle and absolute limits
  (``apps.accounts.sessions.session_ends_at``).

Anything else leaves the socket anonymous (``auth_error = "not_authenticated"``): a
stale cookie never closes a socket, it just authenticates nobody, so an anonymous citizen
page tracking a report keeps working. ``scope["auth_expires_at"]`` is the token's ``exp``
or the session's end (seconds since the epoch): the consumer closes the socket with 4401
when it passes, and the client reconnects (a session still in use gets a new end).
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.middleware import BaseMiddleware
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.http.request import validate_host
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

from apps.accounts.sessions import session_ends_at
from apps.realtime.threads import in_pool

SUBPROTOCOL_PREFIX = "bearer."
AUTH_TOKEN = "token"  # noqa: S105 (a method name, not a secret)
AUTH_SESSION = "session"


def _token_from_scope(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(SUBPROTOCOL_PREFIX):
            return protocol[len(SUBPROTOCOL_PREFIX) :]
    query = parse_qs((scope.get("query_string") or b"").decode())
    values = query.get("access_token")
    return values[0] if values else None


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def origin_allowed(origin: str | None) -> bool:
    """Is ``origin`` (the handshake's ``Origin`` header) one of this site's origins?"""
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if origin.rstrip("/") in {o.rstrip("/") for o in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    allowed = [pattern for pattern in settings.ALLOWED_HOSTS if pattern != "*"]
    return validate_host(host, allowed)


@in_pool  # every socket of a reconnect storm authenticates here (apps.realtime.threads)
def _user_for_token(raw: str) -> tuple[Any, float | None]:
    auth = JWTAuthentication()
    validated = auth.get_validated_token(raw.encode())
    expires_at = validated.get("exp")
    return auth.get_user(validated), float(expires_at) if expires_at is not None else None


@in_pool
def _user_for_session(session_key: str) -> tuple[Any, float | None]:
    """The active staff user of session ``session_key`` and when the session ends, or
    ``(None, None)``: no such session (logged out, expired in the store), not staff, or
    ended by the admin's idle/absolute limits."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    request = HttpRequest()
    request.session = store
    user = get_user(request)  # checks the backend and the session's password hash
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return None, None
    ends_at = session_ends_at(store)
    if ends_at is None or ends_at <= time.time():
        return None, None
    return user, ends_at


class SocketAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a JWT access token, else from a same-site admin session
    (module docstring); ``scope["auth_method"]`` says which (``None``: anonymous)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        scope["auth_error"] = None
        scope["auth_expires_at"] = None
        scope["auth_method"] = None
        raw = _token_from_scope(scope)
        if raw is not None:
            try:
                scope["user"], scope["auth_expires_at"] = await _user_for_token(raw)
                scope["auth_method"] = AUTH_TOKEN
            except (InvalidToken, TokenError, AuthenticationFailed):
                scope["auth_error"] = "token_invalid"
            return await super().__call__(scope, receive, send)
        session_key = _session_key(scope)
        if session_key and origin_allowed(_header(scope, b"origin")):
            user, ends_at = await _user_for_session(session_key)
            if user is not None:
                scope["user"], scope["auth_expires_at"] = user, ends_at
                scope["auth_method"] = AUTH_SESSION
        if scope["auth_method"] is None:
            scope["auth_error"] = "not_authenticated"
        return await super().__call__(scope, receive, send)


def _session_key(scope: dict[str, Any]) -> str | None:
    cookies = _header(scope, b"cookie")
    if not cookies:
        return None
    return parse_cookie(cookies).get(settings.SESSION_COOKIE_NAME) or None

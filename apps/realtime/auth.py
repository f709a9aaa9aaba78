"""JWT authentication for WebSockets.

Browsers cannot set an Authorization header on a WebSocket, so the access token comes
as the ``access_token`` query parameter or as a ``bearer.<token>`` subprotocol (the
mobile app uses the header-free subprotocol form so tokens stay out of access logs).
The same simplejwt validation as the REST API applies: expired, forged, blacklisted-user
or wrong-type tokens leave ``scope["user"]`` anonymous and ``scope["auth_error"]`` set,
and the consumer closes with 4401/4403. ``scope["auth_expires_at"]`` is the token's
``exp`` (seconds since the epoch): consumers close the socket with 4401 when it passes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

from apps.realtime.threads import in_pool

SUBPROTOCOL_PREFIX = "bearer."


def _token_from_scope(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(SUBPROTOCOL_PREFIX):
            return protocol[len(SUBPROTOCOL_PREFIX) :]
    query = parse_qs((scope.get("query_string") or b"").decode())
    values = query.get("access_token")
    return values[0] if values else None


@in_pool  # every socket of a reconnect storm authenticates here (apps.realtime.threads)
def _user_for_token(raw: str) -> tuple[Any, float | None]:
    auth = JWTAuthentication()
    validated = auth.get_validated_token(raw.encode())
    expires_at = validated.get("exp")
    return auth.get_user(validated), float(expires_at) if expires_at is not None else None


class JwtAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a JWT access token (never from a session cookie)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        scope["auth_error"] = None
        scope["auth_expires_at"] = None
        raw = _token_from_scope(scope)
        if raw is None:
            scope["auth_error"] = "not_authenticated"
        else:
            try:
                scope["user"], scope["auth_expires_at"] = await _user_for_token(raw)
            except (InvalidToken, TokenError, AuthenticationFailed):
                scope["auth_error"] = "token_invalid"
        return await super().__call__(scope, receive, send)

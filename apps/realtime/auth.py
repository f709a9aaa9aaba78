"""JWT authentication for WebSockets.

Browsers cannot set an Authorization header on a WebSocket, so the access token comes
as the ``access_token`` query parameter or as a ``bearer.<token>`` subprotocol (the
mobile app uses the header-free subprotocol form so tokens stay out of access logs).
The same simplejwt validation as the REST API applies: expired, forged, blacklisted-user
or wrong-type tokens leave ``scope["user"]`` anonymous and ``scope["auth_error"]`` set,
and the consumer closes with 4401.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

SUBPROTOCOL_PREFIX = "bearer."


def _token_from_scope(scope: dict[str, Any]) -> str | None:
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(SUBPROTOCOL_PREFIX):
            return protocol[len(SUBPROTOCOL_PREFIX) :]
    query = parse_qs((scope.get("query_string") or b"").decode())
    values = query.get("access_token")
    return values[0] if values else None


@database_sync_to_async
def _user_for_token(raw: str) -> Any:
    auth = JWTAuthentication()
    validated = auth.get_validated_token(raw.encode())
    return auth.get_user(validated)


class JwtAuthMiddleware(BaseMiddleware):
    """Sets ``scope["user"]`` from a JWT access token (never from a session cookie)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        scope = dict(scope)
        scope["user"] = AnonymousUser()
        scope["auth_error"] = None
        raw = _token_from_scope(scope)
        if raw is None:
            scope["auth_error"] = "not_authenticated"
        else:
            try:
                scope["user"] = await _user_for_token(raw)
            except (InvalidToken, TokenError, AuthenticationFailed):
                scope["auth_error"] = "token_invalid"
        return await super().__call__(scope, receive, send)

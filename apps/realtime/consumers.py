"""WebSocket consumers. Issue 5 adds the user/region/incident/report streams."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.realtime.auth import SUBPROTOCOL_PREFIX

# Application close codes (4000-4999 are free for applications, RFC 6455 section 7.4.2).
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_TOKEN_INVALID = 4403


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Authenticated echo: ``{"type": "ping", ...}`` → ``{"type": "pong", ...}``.

    Lets the app (and the deployment check) prove the socket path, auth and the
    ASGI server work end to end.
    """

    async def connect(self) -> None:
        subprotocol = next(
            (p for p in self.scope.get("subprotocols") or [] if p.startswith(SUBPROTOCOL_PREFIX)),
            None,
        )
        # Accept first, then close with an application code: closing before the
        # handshake completes reaches a real client only as an HTTP 403, and the app
        # must tell "log in again" (4401/4403) from a network error.
        await self.accept(subprotocol=subprotocol)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            error = self.scope.get("auth_error") or "not_authenticated"
            await self.send_json({"type": "error", "code": error})
            await self.close(
                code=CLOSE_TOKEN_INVALID if error == "token_invalid" else CLOSE_NOT_AUTHENTICATED
            )
            return
        await self.send_json({"type": "hello", "user_id": user.pk})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "echo": content.get("data")})
        else:
            await self.send_json({"type": "error", "code": "unknown_message_type"})

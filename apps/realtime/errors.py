"""Codes of the ``error`` frames and close codes of the WebSocket API (add, never rename).

A refused subscription is an ``error`` frame and the socket stays open; only
authentication problems close it, with an application close code (RFC 6455 section 7.4.2
leaves 4000-4999 to applications).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _


class CloseCode(IntEnum):
    NOT_AUTHENTICATED = 4401  # no token where one is required; the token expired while open
    TOKEN_INVALID = 4403  # expired, forged, revoked or wrong-type token at connect


class RealtimeErrorCode(StrEnum):
    NOT_AUTHENTICATED = "not_authenticated"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    INVALID_STREAM = "invalid_stream"
    OUT_OF_SCOPE = "out_of_scope"
    TOO_MANY_STREAMS = "too_many_streams"


MESSAGES: dict[str, Any] = {
    RealtimeErrorCode.NOT_AUTHENTICATED: _("Log in to subscribe to this stream."),
    RealtimeErrorCode.TOKEN_INVALID: _("The token is invalid, expired or revoked."),
    RealtimeErrorCode.TOKEN_EXPIRED: _("The token has expired; reconnect with a fresh one."),
    RealtimeErrorCode.INVALID_MESSAGE: _("The message is not valid."),
    RealtimeErrorCode.UNKNOWN_MESSAGE_TYPE: _("Unknown message type."),
    RealtimeErrorCode.INVALID_STREAM: _("Not a stream name."),
    RealtimeErrorCode.OUT_OF_SCOPE: _("You may not subscribe to this stream."),
    RealtimeErrorCode.TOO_MANY_STREAMS: _("Too many streams on one connection."),
}

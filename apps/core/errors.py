"""Machine-readable error codes and the one application exception.

The mobile app branches on ``code``, never on the translated ``message`` (conventions R8).
Codes are stable API: add new ones, never rename. Each app may keep its own StrEnum
of codes; the ones every app needs live here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django.utils.translation import gettext_lazy as _


class ErrorCode(StrEnum):
    # Generic request problems
    INVALID = "invalid"
    PARSE_ERROR = "parse_error"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"
    SERVER_ERROR = "server_error"
    REQUEST_TOO_LARGE = "request_too_large"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    TEXT_NOT_ALLOWED = "text_not_allowed"
    # Authentication and authorisation
    NOT_AUTHENTICATED = "not_authenticated"
    AUTHENTICATION_FAILED = "authentication_failed"
    TOKEN_INVALID = "token_invalid"  # expired, forged, revoked or of the wrong type
    PERMISSION_DENIED = "permission_denied"
    OUT_OF_SCOPE = "out_of_scope"
    # Idempotency
    IDEMPOTENCY_KEY_INVALID = "idempotency_key_invalid"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"


DEFAULT_MESSAGES: dict[str, Any] = {
    ErrorCode.INVALID: _("The request contains invalid data."),
    ErrorCode.PARSE_ERROR: _("The request body could not be parsed."),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: _("This content type is not supported."),
    ErrorCode.NOT_FOUND: _("Not found."),
    ErrorCode.METHOD_NOT_ALLOWED: _("This method is not allowed here."),
    ErrorCode.NOT_ACCEPTABLE: _("The requested response format is not available."),
    ErrorCode.RATE_LIMITED: _("Too many requests. Try again later."),
    ErrorCode.CONFLICT: _("The request conflicts with the current state."),
    ErrorCode.SERVER_ERROR: _("An internal error occurred. It has been logged."),
    ErrorCode.REQUEST_TOO_LARGE: _("The request body is too large."),
    ErrorCode.VALUE_OUT_OF_RANGE: _("A value is out of the range this field can hold."),
    ErrorCode.TEXT_NOT_ALLOWED: _("The address holds characters that are not allowed."),
    ErrorCode.NOT_AUTHENTICATED: _("Authentication credentials were not provided."),
    ErrorCode.AUTHENTICATION_FAILED: _("Authentication failed."),
    ErrorCode.TOKEN_INVALID: _("The token is invalid, expired or revoked."),
    ErrorCode.PERMISSION_DENIED: _("You do not have permission to do this."),
    ErrorCode.OUT_OF_SCOPE: _("This object is outside your regions."),
    ErrorCode.IDEMPOTENCY_KEY_INVALID: _("The Idempotency-Key header must be a UUID."),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: _(
        "This Idempotency-Key was already used for a different request."
    ),
    ErrorCode.IDEMPOTENCY_IN_PROGRESS: _(
        "A request with this Idempotency-Key is still being processed."
    ),
}


class ApplicationError(Exception):
    """A refusal the client can act on: rendered as ``{code, message, extra}``.

    Raised by services and selectors; the DRF exception handler turns it into a 4xx.
    """

    def __init__(
        self,
        code: str,
        message: Any = None,
        *,
        extra: dict[str, Any] | None = None,
        status: int = 400,
    ) -> None:
        self.code = str(code)
        self.message = message if message is not None else DEFAULT_MESSAGES.get(code, code)
        self.extra = extra or {}
        self.status = status
        super().__init__(str(self.message))

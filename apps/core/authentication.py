"""Authentication variants shared by the apps."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

logger = logging.getLogger(__name__)


class LenientJWTAuthentication(JWTAuthentication):
    """A bad or expired token makes the request anonymous instead of a 401.

    Only for endpoints that must work for anyone (SOS): a person in danger whose app
    holds a stale token must not be told to log in first.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        try:
            return super().authenticate(request)
        except (InvalidToken, TokenError, AuthenticationFailed):
            logger.info("lenient auth: ignoring an invalid token on %s", request.path)
            return None


def _register_schema_extension() -> None:
    """Document the lenient scheme as the same bearer JWT (optional for that endpoint)."""
    from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme

    class LenientJWTScheme(SimpleJWTScheme):
        target_class = "apps.core.authentication.LenientJWTAuthentication"
        name = "jwtAuthOptional"  # same bearer token; absent or stale means anonymous
        optional = True


_register_schema_extension()

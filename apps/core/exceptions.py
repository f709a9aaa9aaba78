"""The one error envelope ``{code, message, extra}`` for every API error (conventions R8).

DRF exceptions, Django's Http404/PermissionDenied and ``ApplicationError`` all come out
the same way. Validation errors carry per-field detail in ``extra.fields`` as
``{field: [{"code": ..., "message": ...}]}``. Anything unexpected is logged and answered
with a 500 envelope instead of an HTML page (the app parses JSON only).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from apps.core.errors import DEFAULT_MESSAGES, ApplicationError, ErrorCode
from apps.core.middleware import foreign_error, wants_json

logger = logging.getLogger(__name__)

_DRF_CODES: dict[type[exceptions.APIException], ErrorCode] = {
    exceptions.ParseError: ErrorCode.PARSE_ERROR,
    exceptions.NotAuthenticated: ErrorCode.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: ErrorCode.AUTHENTICATION_FAILED,
    exceptions.PermissionDenied: ErrorCode.PERMISSION_DENIED,
    exceptions.NotFound: ErrorCode.NOT_FOUND,
    exceptions.MethodNotAllowed: ErrorCode.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: ErrorCode.NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    exceptions.Throttled: ErrorCode.RATE_LIMITED,
}


def envelope(code: str, message: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": str(code), "message": str(message), "extra": extra or {}}


def _field_errors(detail: Any) -> Any:
    """Turn DRF's nested ErrorDetail structure into ``[{code, message}]`` leaves."""
    if isinstance(detail, dict):
        return {str(key): _field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [{"code": item.code, "message": str(item)} for item in detail]
        return [_field_errors(item) for item in detail]
    if isinstance(detail, exceptions.ErrorDetail):
        return [{"code": detail.code, "message": str(detail)}]
    return detail


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error becomes the envelope."""
    if isinstance(exc, ApplicationError):
        headers = {}
        retry_after = exc.extra.get("retry_after")
        if exc.status in (429, 503) and retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return Response(
            envelope(exc.code, exc.message, exc.extra), status=exc.status, headers=headers
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, InvalidToken | TokenError):
        # simplejwt raises these for expired, forged, blacklisted or wrong-type tokens.
        return Response(
            envelope(ErrorCode.TOKEN_INVALID, DEFAULT_MESSAGES[ErrorCode.TOKEN_INVALID]),
            status=status.HTTP_401_UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )

    if isinstance(exc, DataError | OverflowError):
        # A value the database or the calendar cannot hold (an integer beyond its column,
        # a duration past year 9999) that no serializer bounded: still the caller's input.
        logger.warning("input out of range on %s: %r", _path(context), exc)
        return Response(
            envelope(ErrorCode.VALUE_OUT_OF_RANGE, DEFAULT_MESSAGES[ErrorCode.VALUE_OUT_OF_RANGE]),
            status=status.HTTP_400_BAD_REQUEST,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's 500 path (json_server_error) handles it

    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = _field_errors(detail if isinstance(detail, dict) else {"non_field_errors": detail})
        response.data = envelope(
            ErrorCode.INVALID, DEFAULT_MESSAGES[ErrorCode.INVALID], {"fields": fields}
        )
        return response

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled):
        extra["retry_after"] = exc.wait and int(exc.wait + 0.999)
    if code is None:
        raw = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        code = raw if isinstance(raw, str) else ErrorCode.INVALID
    message = DEFAULT_MESSAGES.get(code) or getattr(exc, "detail", code)
    if isinstance(exc, exceptions.APIException) and isinstance(exc.detail, str):
        # Keep DRF's specific text ("Method "PUT" not allowed.") where it has one.
        message = exc.detail
    response.data = envelope(code, message, extra)
    return response


def _path(context: dict[str, Any]) -> str:
    request = context.get("request")
    return str(getattr(request, "path", ""))[:200]


# --- Non-DRF views (URL not found, crashes) under /api/ still answer JSON ----------------


def _wants_json(request: Any) -> bool:
    return wants_json(request)


def json_bad_request(request: Any, exception: Exception | None = None) -> Any:
    """handler400: a body over the size limit, too many fields, a malformed request that
    Django refused before any view — JSON for API clients (never Django's HTML page)."""
    if _wants_json(request):
        if isinstance(exception, RequestDataTooBig | TooManyFieldsSent):
            code = ErrorCode.REQUEST_TOO_LARGE
            foreign = foreign_error(request, 413, DEFAULT_MESSAGES[code])
            return foreign or JsonResponse(envelope(code, DEFAULT_MESSAGES[code]), status=413)
        foreign = foreign_error(request, 400, DEFAULT_MESSAGES[ErrorCode.INVALID])
        if foreign is not None:
            return foreign
        return JsonResponse(
            envelope(ErrorCode.INVALID, DEFAULT_MESSAGES[ErrorCode.INVALID], {"fields": {}}),
            status=400,
        )
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def json_permission_denied(request: Any, exception: Exception | None = None) -> Any:
    """handler403 (e.g. a CSRF refusal outside DRF): JSON for API clients."""
    if _wants_json(request):
        code = ErrorCode.PERMISSION_DENIED
        foreign = foreign_error(request, 403, DEFAULT_MESSAGES[code])
        return foreign or JsonResponse(envelope(code, DEFAULT_MESSAGES[code]), status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)


def json_not_found(request: Any, exception: Exception | None = None) -> Any:
    if _wants_json(request):
        return JsonResponse(
            envelope(ErrorCode.NOT_FOUND, DEFAULT_MESSAGES[ErrorCode.NOT_FOUND]), status=404
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_server_error(request: Any) -> Any:
    if _wants_json(request):
        return JsonResponse(
            envelope(ErrorCode.SERVER_ERROR, DEFAULT_MESSAGES[ErrorCode.SERVER_ERROR]),
            status=500,
        )
    from django.views.defaults import server_error

    return server_error(request)

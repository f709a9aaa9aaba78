"""The outermost middleware: hostile paths and queries refused, no request left unfinished.

1. A path or query string holding a NUL character (``%00``) or text that is not valid
   Unicode is refused with 400 before anything reads it: PostgreSQL refuses NUL in text,
   so it reached the database as a 500 (a URL segment, a search term).
2. Any exception that escapes Django's own exception handling becomes a plain 500 answer
   here. Django turns view errors into responses, but when *that* fails (its debug page
   could not encode a lone surrogate) the exception left the handler, the request never
   finished, and its database connection never went back to the pool. Answering here
   lets the request finish normally.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

from apps.core.api.parsers import text_problem
from apps.core.errors import DEFAULT_MESSAGES, ErrorCode

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/open311/", "/healthz", "/readyz")

# Under some prefixes errors have another published shape than the envelope (Open311:
# the GeoReport v2 error list, in the format of the URL suffix). The app serving the
# prefix registers how to render one (``register_error_renderer``); the refusals made
# before or around its views (here and in ``apps.core.exceptions``) use it.
ErrorRenderer = Callable[[HttpRequest, int, str], HttpResponseBase]
_error_renderers: dict[str, ErrorRenderer] = {}


def register_error_renderer(prefix: str, renderer: ErrorRenderer) -> None:
    _error_renderers[prefix] = renderer


def wants_json(request: Any) -> bool:
    return str(getattr(request, "path", "")).startswith(API_PREFIXES)


def foreign_error(request: Any, status: int, message: Any) -> HttpResponseBase | None:
    """The error in the shape a registered prefix publishes, or ``None`` (the envelope)."""
    path = str(getattr(request, "path", ""))
    for prefix, renderer in _error_renderers.items():
        if path.startswith(prefix):
            return renderer(request, status, str(message))
    return None


def _problem(request: HttpRequest) -> str | None:
    problem = text_problem(request.path)
    if problem:
        return problem
    for key, values in request.GET.lists():
        for text in (key, *values):
            problem = text_problem(text)
            if problem:
                return problem
    return None


def refused(request: HttpRequest) -> HttpResponseBase | None:
    """The 400 for a path or query that breaks the text rules, or ``None``."""
    if _problem(request) is None:
        return None
    code = ErrorCode.TEXT_NOT_ALLOWED
    message = str(DEFAULT_MESSAGES[code])
    foreign = foreign_error(request, 400, message)
    if foreign is not None:
        return foreign
    if wants_json(request):
        return JsonResponse({"code": code, "message": message, "extra": {}}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def crashed(request: HttpRequest) -> HttpResponseBase:
    """A minimal 500 that cannot fail to render (ASCII, no request data echoed)."""
    logger.exception("unhandled error escaped Django's handler: %s", request.path[:200])
    if wants_json(request):
        code = ErrorCode.SERVER_ERROR
        return JsonResponse(
            {"code": code, "message": str(DEFAULT_MESSAGES[code]), "extra": {}}, status=500
        )
    return HttpResponse("Server error", status=500, content_type="text/plain; charset=utf-8")


class RequestGuardMiddleware:
    """Put first in ``MIDDLEWARE``. Sync and async: no thread hop under ASGI."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        early = refused(request)
        if early is not None:
            return early
        try:
            return self.get_response(request)
        except Exception:
            return crashed(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        early = refused(request)
        if early is not None:
            return early
        try:
            call: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
            return await call(request)
        except Exception:
            return crashed(request)

"""The admin theme's relaxation of the site's Content-Security-Policy, for /admin/ only.

The theme (django-unfold) styles its components with inline ``style`` attributes and
runs Alpine.js, which evaluates expressions written in HTML attributes: under the site's
strict policy (``script-src 'self'; style-src 'self'``) its login dialog could not even
be submitted. Its pages get ``'unsafe-eval'`` for scripts and ``'unsafe-inline'`` for
styles; nothing else changes, and every other path keeps the strict policy. The cost,
written down in SECURITY.md: an HTML-injection bug in the admin could run script there.
The console's own pages add no inline script or style.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase

ADMIN_PREFIX = "/admin/"
ADMIN_CSP_UPDATE = {"script-src": ["'unsafe-eval'"], "style-src": ["'unsafe-inline'"]}


class AdminThemeCspMiddleware:
    """Placed right after ``csp.middleware.CSPMiddleware``: its answer passes here first,
    and django-csp builds the header from the update this leaves on it."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = self.get_response(request)
        if request.path_info.startswith(ADMIN_PREFIX):
            update = dict(getattr(response, "_csp_update", None) or {})
            for directive, sources in ADMIN_CSP_UPDATE.items():
                update[directive] = [*update.get(directive, []), *sources]
            response._csp_update = update  # type: ignore[attr-defined]
        return response

"""Records writes and personal-data reads of each request (``apps.audit.recorder``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from django.http import HttpRequest, HttpResponseBase

from apps.audit import recorder

logger = logging.getLogger(__name__)


class AuditMiddleware:
    """Place after ``AuthenticationMiddleware``: the user is read once the view has run,
    so a JWT user authenticated by DRF inside the view is the actor too.

    Nothing here may turn an answer into an error: collecting is guarded, and the INSERT
    runs when the server closes the response (after the client has it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = recorder.begin(request)
        try:
            response = self.get_response(request)
        finally:
            audit = recorder.end(token)
        try:
            entries = audit.entries(response) if audit is not None else []
        except Exception:
            logger.exception("audit: could not describe %s %s", request.method, request.path)
            return response
        if entries:
            closers = getattr(response, "_resource_closers", None)
            if closers is None:  # not a Django response object: write now
                recorder.write_entries(entries)
            else:
                closers.append(partial(recorder.write_entries, entries))
        return response

"""Open311 refusals: the spec's ``[{code, description}]`` list, never the project envelope.

GeoReport v2 "Errors": 404 for a resource that does not exist (service_code,
jurisdiction_id, service_request_id), 403 for a missing or wrong ``api_key``, 400 for
anything else the request cannot be fulfilled for. Several errors can be returned at
once (the body is a list). The ``code`` in the body is the HTTP status: clients written
against the spec compare it with the header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.translation import gettext as _

from apps.core.errors import ApplicationError


class Open311Error(Exception):
    """Rendered by the views as the spec's error document with HTTP ``status``."""

    def __init__(
        self,
        status: int,
        descriptions: Sequence[Any],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.errors = [(status, str(description)) for description in descriptions]
        self.headers = dict(headers or {})
        super().__init__("; ".join(description for _code, description in self.errors))


def bad_request(*descriptions: Any) -> Open311Error:
    return Open311Error(400, descriptions)


def not_found(*descriptions: Any) -> Open311Error:
    return Open311Error(404, descriptions)


def forbidden(*descriptions: Any) -> Open311Error:
    return Open311Error(403, descriptions)


# Our report fields → the Open311 parameter the client sent (errors name what it knows).
_PARAMETER_NAMES = {
    "lat": "lat",
    "lng": "long",
    "text": "description",
    "phone": "phone",
    "address": "address_string",
    "device_id": "device_id",
    "category_code": "service_code",
    "category": "service_code",
    "photos": "media",
}


def _messages(leaf: Any) -> list[str]:
    """``[{code, message}]`` leaves of ``extra.fields`` (or anything nested) as text."""
    if isinstance(leaf, Mapping):
        if "message" in leaf:
            return [str(leaf["message"])]
        return [text for value in leaf.values() for text in _messages(value)]
    if isinstance(leaf, list | tuple):
        return [text for item in leaf for text in _messages(item)]
    return [str(leaf)]


def _field_errors(fields: Mapping[str, Any]) -> list[str]:
    descriptions: list[str] = []
    for field, problems in fields.items():
        if field == "extra" and isinstance(problems, Mapping):
            # Category fields: the client sent them as attribute[code].
            for code, inner in problems.items():
                descriptions += [f"attribute[{code}]: {text}" for text in _messages(inner)]
            continue
        name = _PARAMETER_NAMES.get(field, f"attribute[{field}]" if field else "request")
        if field == "non_field_errors":
            descriptions += _messages(problems)
            continue
        descriptions += [f"{name}: {text}" for text in _messages(problems)]
    return descriptions


def from_application_error(exc: ApplicationError) -> Open311Error:
    """Map a refusal of the report service onto the spec's statuses.

    ``category_unknown`` → 404 (service_code not found, as the spec lists for POST);
    ``invalid`` and ``category_field_invalid`` → 400 with one error per field, named as
    the client sent it (``long``, ``description``, ``attribute[code]``); everything else
    (the point lies outside the new area ...) → 400 with the service's own message.
    """
    if exc.code == "category_unknown":
        return not_found(_("service_code not found."))
    fields = exc.extra.get("fields") if isinstance(exc.extra, Mapping) else None
    if exc.code == "category_field_invalid" and isinstance(fields, Mapping) and fields:
        # Every field here is a category field, which the client sent as attribute[code].
        return bad_request(*_field_errors({"extra": fields}))
    if exc.code == "invalid" and isinstance(fields, Mapping) and fields:
        return bad_request(*_field_errors(fields))
    if exc.code == "point_outside_area":
        return bad_request(_("lat/long lies outside this jurisdiction (Xixian New Area)."))
    return bad_request(exc.message)

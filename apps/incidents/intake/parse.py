"""Parse and check one report the way ``ReportSubmitApi`` and ``report_submit`` do.

:func:`submission_from` returns a :class:`Submission` ready to insert, or ``None`` when
the request is not one the fast path takes or fails any check: the caller then hands it
to Django, which renders the canonical answer (field errors, translated messages). So
this module only has to be *at least as strict* as the view, never more lenient; the
tests run every refusal of the view's test suite through both paths.

Reused, not copied: the category catalogue, the category field rules
(``category_fields_validate``), point → street (``locate_point`` on the street index),
phone normalisation and the report token.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.accounts.phones import PhoneNumberError, phone_normalise
from apps.core.errors import ApplicationError
from apps.incidents.api.reports import CATEGORY_MAX_LENGTH, PHONE_MAX_LENGTH, PHOTO_FIELDS
from apps.incidents.catalogue import Catalogue
from apps.incidents.models import Category
from apps.incidents.services.reports import (
    ADDRESS_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    report_token_new,
)
from apps.incidents.taxonomy import category_fields_validate
from apps.regions.geo import StreetIndex
from apps.regions.models import Region
from apps.regions.selectors import locate_point

REPORTS_PATH = "/api/v1/reports/"  # reverse("v1:report-submit"); a test keeps them equal


@dataclass
class Submission:
    """A checked report: the row to insert and what its answer needs."""

    key: uuid.UUID | None  # Idempotency-Key
    fingerprint: str  # as apps.core.idempotency fingerprints the request
    category: Category
    lat: float
    lng: float
    text: str
    phone: str
    address: str
    extra: dict[str, Any]
    street: Region
    ancestors: tuple[Region, ...]
    client_ip: str | None
    device_id: str
    token: str = field(default_factory=report_token_new)
    created_at: datetime = field(default_factory=timezone.now)
    tracking_url: str = ""


class _Refused(Exception):
    """Anything the fast path does not take; Django answers instead."""


def _json_constant(name: str) -> Any:
    raise _Refused(name)  # NaN/Infinity: DRF's strict JSON parser refuses them


def _text(data: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    """A DRF ``CharField``: a string, whitespace trimmed, no NUL, at most ``limit``."""
    if name not in data:
        if required:
            raise _Refused(name)
        return ""
    value = data[name]
    if not isinstance(value, str):
        raise _Refused(name)  # numbers are coerced by DRF; leave such requests to it
    value = value.strip()
    if (required and not value) or len(value) > limit or "\x00" in value:
        raise _Refused(name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, which DRF refuses
        raise _Refused(name) from None
    return value


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(name)
    number = float(value)
    if not math.isfinite(number):
        raise _Refused(name)
    return number


def fingerprint(method: str, path: str, body: bytes) -> str:
    """``apps.core.idempotency._request_fingerprint`` of a JSON request."""
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def idempotency_key(raw: str | None) -> uuid.UUID | None:
    """The key, ``None`` without one; :class:`_Refused` if malformed (Django says 400)."""
    if raw is None:
        return None
    try:
        return uuid.UUID(raw.strip())
    except ValueError:
        raise _Refused("Idempotency-Key") from None


def parse_body(body: bytes) -> dict[str, Any] | None:
    """The JSON object of a body as DRF's strict parser reads it, or ``None``."""
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_json_constant)
    except (_Refused, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def submission_from(
    data: dict[str, Any],
    *,
    body: bytes,
    key_header: str | None,
    catalogue: Catalogue,
    index: StreetIndex,
    client_ip: str | None,
    device_id: str,
) -> Submission | None:
    """The checked report of a parsed JSON body, or ``None`` (hand it to Django)."""
    try:
        return _submission(data, body, key_header, catalogue, index, client_ip, device_id)
    except (_Refused, ApplicationError, PhoneNumberError, ValueError):
        return None


def _submission(
    data: dict[str, Any],
    body: bytes,
    key_header: str | None,
    catalogue: Catalogue,
    index: StreetIndex,
    client_ip: str | None,
    device_id: str,
) -> Submission:
    key = idempotency_key(key_header)
    if any(name in data for name in PHOTO_FIELDS):
        raise _Refused("photos")  # photos in JSON: the view explains multipart
    code = _text(data, "category", CATEGORY_MAX_LENGTH, required=True)
    lat, lng = _number(data, "lat"), _number(data, "lng")
    text = _text(data, "text", TEXT_MAX_LENGTH)
    raw_phone = _text(data, "phone", PHONE_MAX_LENGTH)
    address = _text(data, "address", ADDRESS_MAX_LENGTH)
    extra = data.get("extra", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise _Refused("extra")

    category = catalogue.citizen_category(code)
    if category is None:
        raise _Refused("category")
    location = locate_point(lat, lng, index=index)  # ApplicationError outside the area
    fields = category_fields_validate(category, extra)  # ApplicationError if invalid
    phone = phone_normalise(raw_phone) if raw_phone else ""
    return Submission(
        key=key,
        fingerprint=fingerprint("POST", REPORTS_PATH, body),
        category=category,
        lat=lat,
        lng=lng,
        text=text,
        phone=phone,
        address=address,
        extra=fields,
        street=location.street,
        ancestors=location.ancestors,
        client_ip=client_ip,
        device_id=device_id,
    )

"""Parse one report request the way the views' serializers read it, into a draft.

:func:`submission_from` returns a :class:`Submission` (a checked
:class:`~apps.incidents.services.reports.ReportDraft` and what its answer needs), or
``None`` when the request is not one the fast path takes or fails any check: the caller
then hands it to Django, which renders the canonical answer (field errors, translated
messages). This module only reads JSON as DRF would (types, trimming, lengths, NUL and
surrogates) and must be *at least as strict* as the serializers, never more lenient; the
rules themselves (category, point → street, category fields, phone) are
``report_draft``'s, the same function the views reach through ``report_take``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.core.idempotency import Claim, fingerprint, key_parse
from apps.incidents.api.reports import CATEGORY_MAX_LENGTH, PHONE_MAX_LENGTH, PHOTO_FIELDS
from apps.incidents.catalogue import Catalogue
from apps.incidents.services.reports import (
    ADDRESS_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    ReportDraft,
    report_draft,
    sos_category_code,
)
from apps.regions.geo import StreetIndex

# reverse("v1:report-submit") and reverse("v1:report-sos"); a test keeps them equal.
REPORTS_PATH = "/api/v1/reports/"
SOS_PATH = "/api/v1/reports/sos/"
PATHS = (REPORTS_PATH, SOS_PATH)


@dataclass
class Submission:
    """A checked report and the tracking URL its answer carries."""

    draft: ReportDraft
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


def parse_body(body: bytes) -> dict[str, Any] | None:
    """The JSON object of a body as DRF's strict parser reads it, or ``None``."""
    if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return None
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_json_constant)
    except (_Refused, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def submission_from(
    data: dict[str, Any],
    *,
    path: str,
    body: bytes,
    key_header: str | None,
    scope: str,
    reporter_id: int | None,
    catalogue: Catalogue,
    index: StreetIndex,
    client_ip: str | None,
    device_id: str,
) -> Submission | None:
    """The checked report of a parsed JSON body sent to ``path`` (a report or an SOS),
    or ``None`` (hand it to Django). ``scope`` is the idempotency sender scope."""
    try:
        key = key_parse(key_header) if key_header is not None else None
        claim = (
            Claim(
                scope=scope,
                key=key,
                method="POST",
                path=path,
                fingerprint=fingerprint("POST", path, body),
            )
            if key is not None
            else None
        )
        if path == SOS_PATH:
            draft = _sos(data, claim, reporter_id, catalogue, index, client_ip, device_id)
        else:
            draft = _report(data, claim, reporter_id, catalogue, index, client_ip, device_id)
    except (_Refused, ApplicationError, ValueError):
        return None
    return Submission(draft=draft)


def _report(
    data: dict[str, Any],
    claim: Claim | None,
    reporter_id: int | None,
    catalogue: Catalogue,
    index: StreetIndex,
    client_ip: str | None,
    device_id: str,
) -> ReportDraft:
    if any(name in data for name in PHOTO_FIELDS):
        raise _Refused("photos")  # photos in JSON: the view explains multipart
    if data.get("community"):
        raise _Refused("community")  # checking the pick takes a query: the view does
    code = _text(data, "category", CATEGORY_MAX_LENGTH, required=True)
    lat, lng = _number(data, "lat"), _number(data, "lng")
    text = _text(data, "text", TEXT_MAX_LENGTH)
    phone = _text(data, "phone", PHONE_MAX_LENGTH)
    address = _text(data, "address", ADDRESS_MAX_LENGTH)
    extra = data.get("extra", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise _Refused("extra")
    return report_draft(
        category_code=code,
        lat=lat,
        lng=lng,
        text=text,
        phone=phone,
        address=address,
        extra=extra,
        reporter=reporter_id,
        client_ip=client_ip,
        device_id=device_id,
        claim=claim,
        catalogue=catalogue,
        index=index,
    )


def _sos(
    data: dict[str, Any],
    claim: Claim | None,
    reporter_id: int | None,
    catalogue: Catalogue,
    index: StreetIndex,
    client_ip: str | None,
    device_id: str,
) -> ReportDraft:
    lat, lng = _number(data, "lat"), _number(data, "lng")
    return report_draft(
        category_code=sos_category_code(),
        lat=lat,
        lng=lng,
        text=_text(data, "text", TEXT_MAX_LENGTH),
        phone=_text(data, "phone", PHONE_MAX_LENGTH),
        is_sos=True,
        reporter=reporter_id,
        client_ip=client_ip,
        device_id=device_id,
        claim=claim,
        catalogue=catalogue,
        index=index,
    )

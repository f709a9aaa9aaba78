"""Open311 writes: API keys, and service requests (which are citizen reports).

A ``POST requests`` becomes ``apps.incidents.services.reports.report_submit`` with
``channel="open311"``: the same validation, street lookup, triage queue and SLA as a
report from the app. What Open311 sends that we do not keep: ``email``, ``first_name``,
``last_name`` and ``account_id`` (the report model has no place for them and the duty
officer calls back on ``phone``); ``media_url`` is not fetched (the server would be
made to download arbitrary URLs) but kept as a line of the report text so the duty
officer can open it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.incidents.models import Report
from apps.incidents.services.reports import report_submit
from apps.open311.models import ApiKey

logger = logging.getLogger(__name__)

KEY_PREFIX = "x311_"
PREFIX_SHOWN = 12


def api_key_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@transaction.atomic
def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """A new active key; returns it with the plain key, which is never stored or shown
    again."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name.strip(), prefix=raw[:PREFIX_SHOWN], key_hash=api_key_digest(raw)
    )
    return api_key, raw


def api_key_check(raw: str | None) -> ApiKey | None:
    """The active key matching ``raw``, its use recorded; ``None`` for a missing,
    unknown or revoked key (the caller answers 403 without saying which)."""
    if not raw:
        return None
    api_key = ApiKey.objects.filter(key_hash=api_key_digest(raw), is_active=True).first()
    if api_key is None:
        return None
    now = timezone.now()
    # One UPDATE on its own row, no transaction needed: last writer wins, as it should.
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
    return api_key


@dataclass(frozen=True)
class ServiceRequestInput:
    """A parsed ``POST requests`` (see ``apps.open311.params``)."""

    service_code: str
    lat: float
    long: float
    attributes: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    address_string: str = ""
    phone: str = ""
    device_id: str = ""
    media_url: str = ""


def service_request_create(
    *, data: ServiceRequestInput, api_key: ApiKey, client_ip: str | None
) -> Report:
    """Submit the request as a citizen report from the ``open311`` channel.

    Refusals are ``report_submit``'s ``ApplicationError`` (the view maps them onto the
    spec's statuses).
    """
    text = data.description.strip()
    if data.media_url:
        text = f"{text}\n\n{data.media_url}".strip()
    report = report_submit(
        category_code=data.service_code,
        lat=data.lat,
        lng=data.long,
        text=text,
        phone=data.phone,
        extra=dict(data.attributes) or None,
        channel=Report.Channel.OPEN311,
        address=data.address_string,
        client_ip=client_ip,
        device_id=data.device_id,
    )
    logger.info("open311 request created: report=%s key=%s", report.pk, api_key.prefix)
    return report

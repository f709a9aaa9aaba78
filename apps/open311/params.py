"""Parsing of GeoReport v2 arguments (query strings and the form-encoded POST body).

"Optional" in the spec means an empty argument is the same as a missing one, so every
getter here treats ``""`` as absent. Problems raise :class:`~apps.open311.errors.Open311Error`
(400) naming the argument as the client spelled it.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from apps.core.client_address import client_address
from apps.open311.errors import Open311Error, bad_request, not_found
from apps.open311.selectors import STATUSES, RequestFilters
from apps.open311.services import ServiceRequestInput

DEFAULT_JURISDICTION_ID = "xixianxinqu.gov.cn"
MAX_SPAN = timedelta(days=90)
MAX_IDS = 1000
DESCRIPTION_MAX_LENGTH = 4000  # spec: "free form text limited to 4,000 characters"
ADDRESS_MAX_LENGTH = 300
DEVICE_ID_MAX_LENGTH = 64
MEDIA_URL_MAX_LENGTH = 500

_ATTRIBUTE = re.compile(r"^attribute\[(?P<code>[^\[\]]+)\](?P<many>\[\])?$")
# An unencoded "+08:00" in a query string arrives as " 08:00".
_SPACE_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def value(data: QueryDict, name: str) -> str:
    """The argument's value stripped, ``""`` when missing or empty."""
    return (data.get(name) or "").strip()


def jurisdiction_id() -> str:
    return str(getattr(settings, "OPEN311_JURISDICTION_ID", DEFAULT_JURISDICTION_ID))


def check_jurisdiction(*sources: QueryDict) -> None:
    """This endpoint serves one jurisdiction, so the argument is optional; a different
    one is refused with 404, as the spec lists."""
    for source in sources:
        given = value(source, "jurisdiction_id")
        if given and given.lower() != jurisdiction_id().lower():
            raise not_found(_("jurisdiction_id '%(id)s' not found.") % {"id": given})


def comma_list(data: QueryDict, name: str) -> list[str]:
    """A comma-delimited argument, which may also be declared several times."""
    items: list[str] = []
    for raw in data.getlist(name):
        items += [part.strip() for part in raw.split(",") if part.strip()]
    return items


def w3_datetime(raw: str, name: str, *, end_of_day: bool = False) -> datetime:
    """A W3C-DTF date or datetime. The spec requires the offset; a value without one is
    read as the new area's local time rather than refused (lenient in what we accept)."""
    text = _SPACE_OFFSET.sub(r"+\1", raw.strip())
    try:
        parsed = parse_datetime(text)
        if parsed is None and (day := parse_date(text)) is not None:
            parsed = datetime.combine(day, time.max if end_of_day else time.min)
    except ValueError:
        parsed = None
    if parsed is None:
        raise bad_request(
            _("%(name)s must be a W3C datetime such as 2024-07-01T00:00:00+08:00.") % {"name": name}
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def request_filters(data: QueryDict) -> RequestFilters:
    """``GET requests`` arguments, with the spec's defaults.

    ``service_request_id`` overrides everything else. Otherwise the window is the most
    recent 90 days when no date is given, 90 days from ``start_date`` or up to
    ``end_date`` when one is given, and both together may not span more than 90 days.
    """
    raw_ids = comma_list(data, "service_request_id")
    if raw_ids:
        # Ids are opaque strings to clients; one that is not ours simply matches nothing.
        ids = [int(raw) for raw in raw_ids[:MAX_IDS] if raw.isdigit() and len(raw) < 19]
        return RequestFilters(service_request_ids=ids or [0])

    statuses = [status.lower() for status in comma_list(data, "status")]
    unknown = [status for status in statuses if status not in STATUSES]
    if unknown:
        raise bad_request(_("status must be open or closed."))

    start_raw, end_raw = value(data, "start_date"), value(data, "end_date")
    start = w3_datetime(start_raw, "start_date") if start_raw else None
    end = w3_datetime(end_raw, "end_date", end_of_day=True) if end_raw else None
    if start is not None and end is not None:
        if start > end:
            raise bad_request(_("start_date must not be after end_date."))
        if end - start > MAX_SPAN:
            raise bad_request(_("start_date and end_date may not span more than 90 days."))
    elif start is not None:
        end = start + MAX_SPAN
    elif end is not None:
        start = end - MAX_SPAN
    else:
        end = timezone.now()
        start = end - MAX_SPAN
    return RequestFilters(
        service_codes=comma_list(data, "service_code"),
        start=start,
        end=end,
        statuses=sorted(set(statuses)),
    )


def _coordinate(data: QueryDict, name: str) -> float | None:
    raw = value(data, name)
    if not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        raise bad_request(_("%(name)s must be a number.") % {"name": name}) from None
    if not math.isfinite(number):
        raise bad_request(_("%(name)s must be a number.") % {"name": name})
    return number


def attributes(data: QueryDict) -> dict[str, Any]:
    """``attribute[code]=value`` pairs; ``attribute[code][]=v1&attribute[code][]=v2`` (a
    multivaluelist) gives a list. Values stay text: the category's field declarations
    convert and check them (``apps.incidents.taxonomy``)."""
    found: dict[str, Any] = {}
    for key in data:
        match = _ATTRIBUTE.match(key)
        if match is None:
            continue
        values = [item.strip() for item in data.getlist(key)]
        found[match["code"]] = values if match["many"] else values[-1]
    return found


def _bounded(data: QueryDict, name: str, limit: int) -> str:
    text = value(data, name)
    if len(text) > limit:
        raise bad_request(
            _("%(name)s may not exceed %(limit)s characters.") % {"name": name, "limit": limit}
        )
    return text


def service_request_input(data: QueryDict) -> ServiceRequestInput:
    """The ``POST requests`` body. Location: we place reports by coordinates (the street
    is found from them), so ``lat`` and ``long`` are required; ``address_string`` is
    kept as the description of the place, ``address_id`` cannot be resolved here."""
    problems: list[str] = []
    service_code = value(data, "service_code")
    if not service_code:
        problems.append(_("service_code was not provided."))
    coordinates: dict[str, float | None] = {}
    for name in ("lat", "long"):
        try:
            coordinates[name] = _coordinate(data, name)
        except Open311Error as exc:
            problems += [description for _code, description in exc.errors]
            coordinates[name] = 0.0  # reported above; not "missing" as well
    lat, long = coordinates["lat"], coordinates["long"]
    if lat is None or long is None:
        if value(data, "address_string") or value(data, "address_id"):
            problems.append(_("lat and long are required: this endpoint cannot locate addresses."))
        else:
            problems.append(_("A location was not provided: send lat and long."))
    media_url = _bounded(data, "media_url", MEDIA_URL_MAX_LENGTH)
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        problems.append(_("media_url must be an http or https URL."))
    description = _bounded(data, "description", DESCRIPTION_MAX_LENGTH)
    address_string = _bounded(data, "address_string", ADDRESS_MAX_LENGTH)
    if problems:
        raise bad_request(*problems)
    return ServiceRequestInput(
        service_code=service_code,
        lat=lat or 0.0,  # not None here: a missing coordinate was a problem above
        long=long or 0.0,
        attributes=attributes(data),
        description=description,
        address_string=address_string,
        phone=value(data, "phone"),
        device_id=value(data, "device_id")[:DEVICE_ID_MAX_LENGTH],
        media_url=media_url,
    )


def client_ip(request: Any) -> str | None:
    """The client address behind our proxies (:mod:`apps.core.client_address`), the
    same the API's throttles count."""
    return client_address(request) or None

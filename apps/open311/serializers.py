"""Our objects as GeoReport v2 documents (keys in the spec's order).

Privacy: a GET of requests needs no key, so a request shows only what anyone may see.

- Never the reporter (user, phone), device id, client IP, tracking token, photos or the
  EXIF position of a photo; the citizen-typed address is replaced by the street and new
  town of the report (it may be someone's home).
- ``lat``/``long`` are rounded to 3 decimals (about 110 m north–south, 90 m east–west
  here): enough to see where a hazard is, not which door.
- ``description`` (the citizen's own words, which often carry names and phone numbers)
  is published only when ``OPEN311_PUBLISH_DESCRIPTIONS`` is on (default off), and then
  with phone numbers, ID numbers and e-mail addresses masked.
- ``status_notes`` carries what the citizen is told: the public status, or the reason a
  report was not accepted (operators write it for the citizen).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from apps.incidents.models import Category, IncidentClass, PublicStatus, Report, ReportStatus
from apps.incidents.public_status import public_status_for
from apps.open311.selectors import PUBLIC_TO_OPEN311

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
COORDINATE_DECIMALS = 3

# Category field type → Open311 datatype (taxonomy.FIELD_TYPES).
DATATYPES: dict[str, str] = {
    "integer": "number",
    "number": "number",
    "string": "string",
    "boolean": "singlevaluelist",
    "choice": "singlevaluelist",
}


class ServiceDict(TypedDict):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class AttributeValueDict(TypedDict):
    key: Any
    name: str


class AttributeDict(TypedDict):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValueDict]


class ServiceDefinitionDict(TypedDict):
    service_code: str
    attributes: list[AttributeDict]


class RequestDict(TypedDict):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class CreatedRequestDict(TypedDict):
    service_request_id: str
    service_notice: str
    account_id: None


def w3_datetime(value: datetime) -> str:
    """W3C-DTF with the offset, in the new area's time: ``2024-07-01T09:30:00+08:00``."""
    return timezone.localtime(value).isoformat(timespec="seconds")


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _pick(zh: str, en: str) -> str:
    return (en or zh) if _english() else (zh or en)


# --- Services --------------------------------------------------------------------------


def _declarations(category: Category) -> list[Mapping[str, Any]]:
    return [d for d in category.extra_fields or [] if isinstance(d, Mapping) and d.get("name")]


def service_dict(category: Category) -> ServiceDict:
    name = _pick(category.name_zh, category.name_en)
    description = name
    if category.lead_department:
        description = _("%(name)s. Lead department: %(department)s.") % {
            "name": name,
            "department": category.lead_department,
        }
    keywords = [category.name_zh, category.name_en, category.code]
    return {
        "service_code": category.code,
        "service_name": name,
        "description": description,
        "metadata": bool(_declarations(category)),
        "type": "realtime",  # the service_request_id comes back at once
        "keywords": ", ".join(k for k in keywords if k),
        "group": str(IncidentClass(category.incident_class).label),
    }


def _datatype_description(declaration: Mapping[str, Any]) -> str | None:
    kind = declaration.get("type")
    parts: list[str] = []
    if kind == "integer":
        parts.append(_("A whole number"))
    elif kind == "number":
        parts.append(_("A number"))
    elif kind == "string" and declaration.get("max_length"):
        parts.append(_("At most %(limit)s characters") % {"limit": declaration["max_length"]})
    low, high = declaration.get("min"), declaration.get("max")
    if low is not None and high is not None:
        parts.append(_("from %(min)s to %(max)s") % {"min": low, "max": high})
    elif low is not None:
        parts.append(_("at least %(min)s") % {"min": low})
    elif high is not None:
        parts.append(_("at most %(max)s") % {"max": high})
    if declaration.get("unit"):
        parts.append(_("unit: %(unit)s") % {"unit": declaration["unit"]})
    return ", ".join(parts) or None


def _values(declaration: Mapping[str, Any]) -> list[AttributeValueDict]:
    if declaration.get("type") == "boolean":
        return [{"key": "true", "name": _("Yes")}, {"key": "false", "name": _("No")}]
    if declaration.get("type") == "choice":
        return [
            {
                "key": choice["value"],
                "name": _pick(str(choice.get("label_zh", "")), str(choice.get("label_en", "")))
                or str(choice["value"]),
            }
            for choice in declaration.get("choices") or []
            if isinstance(choice, Mapping) and "value" in choice
        ]
    return []


def service_definition_dict(category: Category) -> ServiceDefinitionDict:
    attributes: list[AttributeDict] = []
    for order, declaration in enumerate(_declarations(category), start=1):
        attributes.append(
            {
                "variable": True,
                "code": str(declaration["name"]),
                "datatype": DATATYPES.get(str(declaration.get("type")), "string"),
                "required": bool(declaration.get("required")),
                "datatype_description": _datatype_description(declaration),
                "order": order,
                "description": _pick(
                    str(declaration.get("label_zh", "")), str(declaration.get("label_en", ""))
                )
                or str(declaration["name"]),
                "values": _values(declaration),
            }
        )
    return {"service_code": category.code, "attributes": attributes}


# --- Requests --------------------------------------------------------------------------

# 7+ digits with optional separators (phones, with or without +86), 18-character
# resident ID numbers, e-mail addresses.
_SENSITIVE = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\d{17}[\dXx]"
    r"|\+?\d[\d\s-]{5,}\d"
)


def redact(text: str) -> str:
    """``text`` with phone numbers, ID numbers and e-mail addresses masked."""
    return _SENSITIVE.sub("***", text)


def _status_notes(report: Report, public: str) -> str:
    if report.status == ReportStatus.REJECTED and report.rejection_reason:
        return report.rejection_reason
    if report.status == ReportStatus.DUPLICATE and public == PublicStatus.RECEIVED:
        return _("Duplicate of a request already being handled.")
    return str(PublicStatus(public).label)


def _address(report: Report) -> str | None:
    region = report.region
    if region is None:
        return None
    names = [_pick(region.name_zh, region.name_en)]
    if region.parent is not None:
        names.append(_pick(region.parent.name_zh, region.parent.name_en))
    return ", ".join(names)  # most specific first, as the spec asks


def _updated(report: Report, closed: bool) -> datetime:
    """Last change seen by the public; for a closed request, when it was closed."""
    moments = [report.updated_at]
    incident = report.incident
    if incident is not None:
        moments.append(incident.updated_at)
        if closed:
            closing = incident.closed_at or incident.resolved_at
            if closing is not None:
                return closing
    if closed and report.status == ReportStatus.REJECTED and report.triaged_at:
        return report.triaged_at
    return max(moments)


def request_dict(report: Report) -> RequestDict:
    public = public_status_for(report)
    status = PUBLIC_TO_OPEN311[public]
    category = report.category
    description: str | None = None
    if getattr(settings, "OPEN311_PUBLISH_DESCRIPTIONS", False) and report.text:
        description = redact(report.text)
    return {
        "service_request_id": str(report.pk),
        "status": status,
        "status_notes": _status_notes(report, public),
        "service_name": _pick(category.name_zh, category.name_en),
        "service_code": category.code,
        "description": description,
        "agency_responsible": category.lead_department or None,
        "service_notice": None,
        "requested_datetime": w3_datetime(report.created_at),
        "updated_datetime": w3_datetime(_updated(report, status == "closed")),
        "expected_datetime": None,
        "address": _address(report),
        "address_id": None,
        "zipcode": None,
        "lat": round(report.lat, COORDINATE_DECIMALS),
        "long": round(report.lng, COORDINATE_DECIMALS),
        "media_url": None,
    }


def service_notice() -> str:
    return _(
        "Your report has been received and will be checked by the duty officer. "
        "If lives are in danger, call 110, 119 or 120 now."
    )


def created_request_dict(report: Report) -> CreatedRequestDict:
    return {
        "service_request_id": str(report.pk),
        "service_notice": service_notice(),
        "account_id": None,
    }


# --- Discovery -------------------------------------------------------------------------


def discovery_dict(*, url: str, changeset: datetime | None) -> dict[str, Any]:
    stamp = w3_datetime(changeset) if changeset is not None else ""
    endpoint_type = getattr(settings, "OPEN311_ENDPOINT_TYPE", "") or (
        "test" if settings.DEBUG else "production"
    )
    return {
        "changeset": stamp,
        "contact": getattr(settings, "OPEN311_CONTACT", "")
        or _("Xixian New Area emergency management: ask the duty office for assistance."),
        "key_service": getattr(settings, "OPEN311_KEY_SERVICE", "")
        or _("API keys are issued by the Xixian New Area emergency management bureau."),
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": url,
                "changeset": stamp,
                "type": endpoint_type,
                "formats": ["text/xml", "application/json"],
            }
        ],
    }

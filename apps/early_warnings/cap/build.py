"""``alert_to_xml``: an :class:`~apps.early_warnings.cap.model.Alert` as CAP 1.2 XML bytes.

UTF-8, default namespace ``urn:oasis:names:tc:emergency:cap:1.2``, elements in the order
of the XSD's ``xs:sequence`` (the order of the code below, which mirrors the schema).
The output is parsed back and validated against the shipped XSD before it is returned:
what we publish is never invalid (a failure raises ``cap_unrepresentable``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from xml.etree import ElementTree as ET  # writing only: parse.py reads with defusedxml

from apps.early_warnings.cap.errors import cap_unrepresentable
from apps.early_warnings.cap.model import (
    CAP_NAMESPACE,
    Alert,
    Area,
    Circle,
    Info,
    Polygon,
    Reference,
    Resource,
    ValuePair,
)
from apps.early_warnings.cap.parse import document_problems

_NS = "{" + CAP_NAMESPACE + "}"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def format_datetime(value: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss+hh:mm``: the XSD's pattern (no fraction, no ``Z``)."""
    text = value.replace(microsecond=0).isoformat(timespec="seconds")
    if text.endswith("Z"):  # pragma: no cover - isoformat never writes Z; kept as a guard
        text = text[:-1] + "+00:00"
    return text


def format_number(value: float | Decimal) -> str:
    """Plain decimal notation (``xs:decimal`` and CAP coordinates allow no exponent)."""
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return format(number, "f")


def format_point(lat: float, lon: float) -> str:
    return f"{format_number(lat)},{format_number(lon)}"


def format_polygon(ring: Polygon) -> str:
    return " ".join(format_point(point.lat, point.lon) for point in ring)


def format_circle(circle: Circle) -> str:
    center = circle.center
    return f"{format_point(center.lat, center.lon)} {format_number(circle.radius_km)}"


def format_reference(reference: Reference) -> str:
    return f"{reference.sender},{reference.identifier},{format_datetime(reference.sent)}"


def format_spaced(items: tuple[str, ...]) -> str:
    """``addresses`` / ``incidents``: space-delimited, multi-word items in double quotes."""
    return " ".join(f'"{item}"' if any(c.isspace() for c in item) else item for item in items)


def _child(parent: ET.Element, name: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, _NS + name).text = text


def _pairs(parent: ET.Element, name: str, pairs: tuple[ValuePair, ...]) -> None:
    for pair in pairs:
        element = ET.SubElement(parent, _NS + name)
        _child(element, "valueName", pair.value_name)
        _child(element, "value", pair.value)


def _resource(parent: ET.Element, resource: Resource) -> None:
    element = ET.SubElement(parent, _NS + "resource")
    _child(element, "resourceDesc", resource.resource_desc)
    _child(element, "mimeType", resource.mime_type)
    _child(element, "size", None if resource.size is None else str(resource.size))
    _child(element, "uri", resource.uri)
    _child(element, "derefUri", resource.deref_uri)
    _child(element, "digest", resource.digest)


def _area(parent: ET.Element, area: Area) -> None:
    element = ET.SubElement(parent, _NS + "area")
    _child(element, "areaDesc", area.area_desc)
    for ring in area.polygons:
        _child(element, "polygon", format_polygon(ring))
    for circle in area.circles:
        _child(element, "circle", format_circle(circle))
    _pairs(element, "geocode", area.geocodes)
    if area.altitude is not None:
        _child(element, "altitude", format_number(area.altitude))
    if area.ceiling is not None:
        _child(element, "ceiling", format_number(area.ceiling))


def _moment(parent: ET.Element, name: str, value: datetime | None) -> None:
    if value is not None:
        _child(parent, name, format_datetime(value))


def _info(parent: ET.Element, info: Info) -> None:
    element = ET.SubElement(parent, _NS + "info")
    _child(element, "language", info.language)
    for category in info.categories:
        _child(element, "category", category.value)
    _child(element, "event", info.event)
    for response_type in info.response_types:
        _child(element, "responseType", response_type.value)
    _child(element, "urgency", info.urgency.value)
    _child(element, "severity", info.severity.value)
    _child(element, "certainty", info.certainty.value)
    _child(element, "audience", info.audience)
    _pairs(element, "eventCode", info.event_codes)
    _moment(element, "effective", info.effective)
    _moment(element, "onset", info.onset)
    _moment(element, "expires", info.expires)
    _child(element, "senderName", info.sender_name)
    _child(element, "headline", info.headline)
    _child(element, "description", info.description)
    _child(element, "instruction", info.instruction)
    _child(element, "web", info.web)
    _child(element, "contact", info.contact)
    _pairs(element, "parameter", info.parameters)
    for resource in info.resources:
        _resource(element, resource)
    for area in info.areas:
        _area(element, area)


def alert_element(alert: Alert) -> ET.Element:
    """The ``alert`` element tree (namespaced tags, schema order)."""
    root = ET.Element(_NS + "alert")
    _child(root, "identifier", alert.identifier)
    _child(root, "sender", alert.sender)
    _moment(root, "sent", alert.sent)
    _child(root, "status", alert.status.value)
    _child(root, "msgType", alert.msg_type.value)
    _child(root, "source", alert.source)
    _child(root, "scope", alert.scope.value)
    _child(root, "restriction", alert.restriction)
    if alert.addresses:
        _child(root, "addresses", format_spaced(alert.addresses))
    for code in alert.codes:
        _child(root, "code", code)
    _child(root, "note", alert.note)
    if alert.references:
        _child(root, "references", " ".join(format_reference(r) for r in alert.references))
    if alert.incidents:
        _child(root, "incidents", format_spaced(alert.incidents))
    for info in alert.infos:
        _info(root, info)
    return root


def alert_to_xml(alert: Alert) -> bytes:
    """The CAP 1.2 document of ``alert``, UTF-8 with an XML declaration, checked valid."""
    root = alert_element(alert)
    ET.indent(root, space="  ")  # whitespace between elements only: no text changes
    body = ET.tostring(root, encoding="unicode", default_namespace=CAP_NAMESPACE)
    data = (_DECLARATION + body + "\n").encode("utf-8")
    # Read back exactly as an upstream message would be: safe parser, then the XSD.
    problems = document_problems(data)
    if problems:
        raise cap_unrepresentable(problems)
    return data

"""GeoReport v2 output: XML (the required format) and JSON (its Spark-convention mapping).

The spec's JSON is a programmatic mapping of its XML: a list in JSON is a container
element in XML whose children are named after one item (``services`` → ``service``,
``attributes`` → ``attribute``, ``formats`` → ``format`` ...). ``ITEM_TAGS`` is that
mapping; the document root of a list response is given by the caller.

XML is built with the stdlib ``ElementTree`` (we only render, never parse client XML).
Text that a citizen or operator typed can hold characters XML 1.0 forbids (NUL, most
C0 controls); they are dropped, because one of them would make the whole document
ill-formed for every client.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from django.http import HttpResponse


class Format(StrEnum):
    XML = "xml"
    JSON = "json"


CONTENT_TYPES: dict[Format, str] = {
    Format.XML: "text/xml; charset=utf-8",
    Format.JSON: "application/json; charset=utf-8",
}

# MIME types announced by discovery (spec: "endpoints.endpoint.formats.format").
DISCOVERY_FORMATS = ["text/xml", "application/json"]

# Container element → element name of one item.
ITEM_TAGS: dict[str, str] = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}

XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'

# Characters outside the XML 1.0 Char production (tab, LF and CR are allowed).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """The text of an element: booleans as ``true``/``false``, ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _XML_ILLEGAL.sub("", str(value))


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    _fill(element, tag, value)


def _fill(element: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _append(element, str(key), child)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        item_tag = ITEM_TAGS.get(tag, "item")
        for item in value:
            _append(element, item_tag, item)
    else:
        element.text = xml_text(value)


def render_xml(root: str, data: Any) -> bytes:
    """``data`` (a mapping, or a list of items for a container root) as an XML document."""
    element = ET.Element(root)
    _fill(element, root, data)
    return XML_DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")


def render_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def open311_response(
    data: Any,
    *,
    fmt: Format,
    root: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """One response in the requested format: JSON as is, XML under ``root``."""
    body = render_json(data) if fmt == Format.JSON else render_xml(root, data)
    response = HttpResponse(body, status=status, content_type=CONTENT_TYPES[fmt])
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(
    errors: Sequence[tuple[int, str]],
    *,
    fmt: Format,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """The spec's error document: a list of ``{code, description}`` under ``<errors>``."""
    data = [{"code": code, "description": str(description)} for code, description in errors]
    return open311_response(data, fmt=fmt, root="errors", status=status, headers=headers)

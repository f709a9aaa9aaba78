"""Fixtures and helpers of the Open311 tests.

The data is built the way production builds it: the committed region and category
fixtures, and reports through ``report_submit`` (the citizen-report service). Helpers
compare documents by *shape* (element names, keys, nesting), which is what the spec's
examples pin down, and check that the XML and JSON of one resource say the same thing.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from apps.incidents.models import Category, Incident, Report
from apps.incidents.services.reports import report_submit
from apps.incidents.taxonomy import categories_load_fixture
from apps.open311.models import ApiKey
from apps.open311.services import api_key_create
from apps.regions import geo
from apps.regions.services import regions_load_fixture
from tests.factories.incidents import IncidentFactory

BASE = "/open311/v2/"
JURISDICTION = "xixianxinqu.gov.cn"
# Points inside 西咸新区 (WGS84): 沣东新城 and 沣西新城.
FENGDONG = (34.268, 108.812)
FENGXI = (34.30, 108.75)
PHONE = "13800138000"


# --- Data -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _cold_street_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its own street index (the regions it loads), never a stale one."""
    monkeypatch.setattr(geo, "_index", None)


@pytest.fixture
def xixian(db: Any) -> dict[str, Category]:
    """The committed region tree and category taxonomy; categories by code."""
    regions_load_fixture()
    categories_load_fixture()
    return {category.code: category for category in Category.objects.all()}


@pytest.fixture
def api_key(db: Any) -> tuple[ApiKey, str]:
    return api_key_create(name="FixMyStreet 西咸")


@pytest.fixture
def raw_key(api_key: tuple[ApiKey, str]) -> str:
    return api_key[1]


@pytest.fixture
def submit(xixian: dict[str, Category]) -> Callable[..., Report]:
    """``submit("N02", text=..., phone=...)``: a citizen report through the real service."""

    def make(code: str = "N02", *, at: tuple[float, float] = FENGDONG, **kwargs: Any) -> Report:
        kwargs.setdefault("channel", Report.Channel.APP)
        return report_submit(category_code=code, lat=at[0], lng=at[1], **kwargs)

    return make


def set_report(report: Report, **values: Any) -> Report:
    """Move a report (and its incident) into a state for a read test.

    Test setup only: triage and incident transitions have their own services and
    tests; these read tests need a report in a given state, not the path to it.
    """
    Report.objects.filter(pk=report.pk).update(**values)
    report.refresh_from_db()
    return report


def link_incident(
    report: Report, *, status: str, report_status: str = "accepted", **values: Any
) -> Incident:
    """Link ``report`` to a new incident in ``status`` (written directly: set-up)."""
    now = timezone.now()
    if status in ("resolved", "closed"):
        values.setdefault("resolved_at", now)
    if status == "closed":
        values.setdefault("closed_at", now)
    incident = IncidentFactory(
        category=report.category, region=report.region, status=status, **values
    )
    set_report(report, status=report_status, incident=incident, triaged_at=now)
    return incident


# --- HTTP -------------------------------------------------------------------------------


@pytest.fixture
def client() -> Client:
    """A plain client: Open311 clients send no cookies, no CSRF token, no JWT."""
    return Client(enforce_csrf_checks=True)


def url(path: str) -> str:
    return BASE + path


def as_json(response: Any) -> Any:
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.content.decode("utf-8"))


def as_xml(response: Any) -> ET.Element:
    """The body parsed (which fails on ill-formed XML), after checking the declaration."""
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.content)  # noqa: S314 - our own output, in a test


# --- Shapes -----------------------------------------------------------------------------

Shape = dict[str, Any] | None

# Container element → item element, as the spec's examples write them (Spark convention).
SPEC_ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _merge(a: Any, b: Any) -> Any:
    """Union of two shapes; an empty element (``None``) fits any container."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, list) and isinstance(b, list):
        return [_merge(a[0], b[0])]
    merged = dict(a)
    for key, value in b.items():
        merged[key] = _merge(merged.get(key), value)
    return merged


def xml_shape(element: ET.Element) -> Shape:
    """``{tag: shape}`` of the children (repeated tags merged), ``None`` for a leaf."""
    if len(element) == 0:
        return None
    shape: dict[str, Any] = {}
    for child in element:
        shape[child.tag] = _merge(shape.get(child.tag), xml_shape(child))
    return shape


def json_shape(data: Any) -> Any:
    """Keys and nesting of a JSON document; lists become ``[merged item shape]``."""
    if isinstance(data, dict):
        return {key: json_shape(value) for key, value in data.items()}
    if isinstance(data, list):
        merged: Any = None
        for item in data:
            item_shape = json_shape(item)
            merged = _merge(merged, item_shape)
        return [merged]
    return None


def spec_xml_shape(text: str) -> tuple[str, Shape]:
    root = ET.fromstring(text.encode("utf-8"))  # noqa: S314 - the spec's example
    return root.tag, xml_shape(root)


def xml_to_data(element: ET.Element) -> Any:
    """The Spark-convention JSON of an element, all leaves as text (to compare formats)."""
    item_tag = SPEC_ITEM_TAGS.get(element.tag)
    if item_tag is not None:
        return [xml_to_data(child) for child in element if child.tag == item_tag]
    if len(element) == 0:
        return element.text or ""
    return {child.tag: xml_to_data(child) for child in element}


def json_as_text(data: Any) -> Any:
    """JSON leaves as the XML writes them: ``true``/``false``, ``""`` for null."""
    if isinstance(data, dict):
        return {key: json_as_text(value) for key, value in data.items()}
    if isinstance(data, list):
        return [json_as_text(item) for item in data]
    if data is None:
        return ""
    if isinstance(data, bool):
        return "true" if data else "false"
    return str(data)


def assert_same_content(client: Client, path: str) -> tuple[Any, ET.Element]:
    """``path.json`` and ``path.xml`` (query string allowed) carry the same data."""
    base, _sep, query = path.partition("?")
    suffix = f"?{query}" if query else ""
    json_response = client.get(url(f"{base}.json{suffix}"))
    xml_response = client.get(url(f"{base}.xml{suffix}"))
    assert json_response.status_code == xml_response.status_code
    data = as_json(json_response)
    root = as_xml(xml_response)
    assert xml_to_data(root) == json_as_text(data)
    return data, root

"""GET Service List and GET Service Definition, against the spec's examples."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.incidents.models import Category
from tests.open311 import spec_examples as spec
from tests.open311.conftest import (
    JURISDICTION,
    as_json,
    as_xml,
    assert_same_content,
    json_shape,
    spec_xml_shape,
    url,
    xml_shape,
)

pytestmark = pytest.mark.django_db


def _ours(spec_url: str, code: str | None = None) -> str:
    """The spec's sample URL with our jurisdiction (and service code)."""
    adapted = spec_url.replace(spec.SPEC_JURISDICTION, JURISDICTION)
    return adapted.replace("033", code) if code else adapted


# --- GET Service List --------------------------------------------------------------------


def test_service_list_xml_has_the_shape_of_the_spec_example(client: Client, xixian: Any) -> None:
    # when: the spec's sample request
    root = as_xml(client.get(url(_ours(spec.SERVICES_URL))))

    # then
    spec_root, spec_shape = spec_xml_shape(spec.SERVICES_XML)
    assert root.tag == spec_root == "services"
    assert xml_shape(root) == spec_shape
    for service in root.findall("service"):
        assert {child.tag for child in service} == set(spec_shape["service"])


def test_service_list_json_is_an_array_shaped_like_the_spec_example(
    client: Client, xixian: Any
) -> None:
    # when
    data = as_json(client.get(url(_ours(spec.SERVICES_URL).replace(".xml", ".json"))))

    # then
    assert isinstance(data, list)
    assert json_shape(data) == json_shape(spec.SERVICES_JSON)
    assert all(isinstance(s["metadata"], bool) for s in data)
    assert {s["type"] for s in data} == {"realtime"}


def test_services_are_the_active_citizen_reportable_categories(
    client: Client, xixian: dict[str, Category]
) -> None:
    # given
    Category.objects.filter(code="N06").update(is_active=False)

    # when
    data = as_json(client.get(url("services.json")))

    # then
    codes = [s["service_code"] for s in data]
    expected = Category.objects.filter(is_active=True, citizen_reportable=True)
    assert codes == list(expected.order_by("sort_order", "code").values_list("code", flat=True))
    assert "N06" not in codes  # inactive
    assert "N12" not in codes  # sensor alarms only, not for citizens
    n02 = next(s for s in data if s["service_code"] == "N02")
    assert n02 == {
        "service_code": "N02",
        "service_name": "Urban waterlogging",
        "description": "Urban waterlogging. Lead department: 城管 / 水务.",
        "metadata": True,  # it has category fields: call the service definition
        "type": "realtime",
        "keywords": "城市内涝 / 积水, Urban waterlogging, N02",
        "group": "Natural disaster",
    }
    assert next(s for s in data if s["service_code"] == "N07")["metadata"] is False


def test_service_names_follow_the_requested_language(client: Client, xixian: Any) -> None:
    # when
    data = as_json(client.get(url("services.json"), HTTP_ACCEPT_LANGUAGE="zh-hans"))

    # then
    n02 = next(s for s in data if s["service_code"] == "N02")
    assert n02["service_name"] == "城市内涝 / 积水"


def test_service_list_xml_and_json_say_the_same(client: Client, xixian: Any) -> None:
    assert_same_content(client, "services")


# --- GET Service Definition --------------------------------------------------------------


def test_service_definition_xml_has_the_shape_of_the_spec_example(
    client: Client, xixian: Any
) -> None:
    # when: the spec's sample request, for 城市内涝 (a number and a yes/no field)
    root = as_xml(client.get(url(_ours(spec.SERVICE_DEFINITION_URL, "N02"))))

    # then
    spec_root, spec_shape = spec_xml_shape(spec.SERVICE_DEFINITION_XML)
    assert root.tag == spec_root == "service_definition"
    assert xml_shape(root) == spec_shape
    assert root.findtext("service_code") == "N02"


def test_service_definition_json_has_the_shape_of_the_spec_example(
    client: Client, xixian: Any
) -> None:
    # when
    data = as_json(client.get(url("services/N02.json")))

    # then
    assert json_shape(data) == json_shape(spec.SERVICE_DEFINITION_JSON)
    depth, stalled = data["attributes"]
    assert depth == {
        "variable": True,
        "code": "waterlogging_depth_cm",
        "datatype": "number",
        "required": False,
        "datatype_description": "A whole number, from 0 to 1000, unit: cm",
        "order": 1,
        "description": "Water depth",
        "values": [],
    }
    assert stalled["datatype"] == "singlevaluelist"
    assert stalled["order"] == 2
    assert stalled["values"] == [{"key": "true", "name": "Yes"}, {"key": "false", "name": "No"}]
    assert {a["datatype"] for a in data["attributes"]} <= spec.DATATYPES


def test_a_choice_field_is_a_single_value_list(client: Client, xixian: Any) -> None:
    # when
    data = as_json(client.get(url("services/A10.json")))

    # then
    (utility,) = data["attributes"]
    assert utility["datatype"] == "singlevaluelist"
    assert [v["key"] for v in utility["values"]] == ["water", "power", "heat", "telecom"]
    assert utility["values"][1]["name"] == "Power"


def test_a_service_without_fields_has_no_attributes(client: Client, xixian: Any) -> None:
    # when
    data = as_json(client.get(url("services/N07.json")))
    root = as_xml(client.get(url("services/N07.xml")))

    # then
    assert data == {"service_code": "N07", "attributes": []}
    assert root.find("attributes") is not None
    assert len(root.find("attributes")) == 0


def test_service_definition_xml_and_json_say_the_same(client: Client, xixian: Any) -> None:
    assert_same_content(client, "services/N02")
    assert_same_content(client, "services/A10")

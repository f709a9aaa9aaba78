"""Service Discovery (``discovery.xml`` / ``discovery.json``), against the spec's example."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.open311 import spec_examples as spec
from tests.open311.conftest import (
    as_json,
    as_xml,
    assert_same_content,
    json_shape,
    spec_xml_shape,
    url,
    xml_shape,
)

pytestmark = pytest.mark.django_db


def test_discovery_xml_has_the_shape_of_the_spec_example(client: Client, xixian: Any) -> None:
    # when
    root = as_xml(client.get(url("discovery.xml")))

    # then
    spec_root, spec_shape = spec_xml_shape(spec.DISCOVERY_XML)
    assert root.tag == spec_root == "discovery"
    assert xml_shape(root) == spec_shape
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]


def test_discovery_json_has_the_shape_of_the_spec_example(client: Client, xixian: Any) -> None:
    # when
    data = as_json(client.get(url("discovery.json")))

    # then
    assert json_shape(data) == json_shape(spec.DISCOVERY_JSON)
    endpoint = data["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert endpoint["type"] in {"production", "test"}


def test_discovery_changeset_follows_the_last_category_change(client: Client, xixian: Any) -> None:
    # given
    before = as_json(client.get(url("discovery.json")))["changeset"]
    category = xixian["N02"]

    # when: an administrator edits a category (its definition may have changed)
    category.name_en = "Urban waterlogging / ponding"
    category.save()

    # then: clients are told to refresh their cached services
    after = as_json(client.get(url("discovery.json")))["changeset"]
    assert after >= before
    assert after.endswith("+08:00")


def test_discovery_xml_and_json_say_the_same(client: Client, xixian: Any) -> None:
    assert_same_content(client, "discovery")

"""The Atom index feed lists the warnings in force only, each linking to valid CAP."""

from __future__ import annotations

from datetime import timedelta
from xml.etree.ElementTree import Element

import pytest
import time_machine
from defusedxml import ElementTree as ET
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.early_warnings import services
from apps.early_warnings.cap.parse import parse_alert
from tests.early_warnings.cap.conftest import example
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import published

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"


def feed() -> Element:
    answer = APIClient().get("/api/v1/warnings/feed/")
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(answer.content)


def test_the_feed_lists_active_warnings_only_with_links_to_valid_cap(cast: Cast) -> None:
    now = timezone.now()
    live = published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    updated_from = published(
        by=cast.town_operator,
        approver=cast.town_operator2,
        targets=[cast.sanqiao.pk],
        title="即将更新",
    )
    update = services.warning_update(
        version_id=updated_from.pk, by=cast.town_operator2, level="yellow"
    )
    cancelled = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk]
    )
    services.warning_cancel(version_id=cancelled.pk, by=cast.town_operator2, reason="解除")
    short = published(
        by=cast.town_operator,
        approver=cast.town_operator2,
        targets=[cast.sanqiao.pk],
        onset=now,
        expires=now + timedelta(minutes=5),
    )
    received = services.warning_import_cap(data=example("ThunderstormWarning"), by=None)
    assert received.expires < now  # an old example: expired on arrival
    draft_only = services.warning_create(
        by=cast.town_operator,
        warning_type="fog",
        level="blue",
        title="草稿",
        description="草稿",
        targets=[cast.sanqiao.pk],
        onset=now,
        expires=now + timedelta(hours=1),
    )
    with time_machine.travel(now + timedelta(minutes=10), tick=False):
        root = feed()
    entries = root.findall(f"{ATOM}entry")
    links = [e.find(f"{ATOM}link").get("href") for e in entries]  # type: ignore[union-attr]
    expected = [
        f"http://testserver/api/v1/warnings/{v.pk}/cap/" for v in (update, live)
    ]  # newest first
    assert links == expected
    assert short.pk not in {int(link.rstrip("/").split("/")[-2]) for link in links}
    assert draft_only.pk not in {int(link.rstrip("/").split("/")[-2]) for link in links}
    assert root.find(f"{ATOM}link").get("href") == "http://testserver/api/v1/warnings/feed/"  # type: ignore[union-attr]
    client = APIClient()
    for link in links:
        answer = client.get(link.removeprefix("http://testserver"))
        assert answer.status_code == 200
        alert = parse_alert(answer.content)  # valid against the XSD
        assert alert.identifier in {update.identifier, live.identifier}


def test_an_empty_feed_is_valid_atom(cast: Cast) -> None:
    root = feed()
    assert root.findall(f"{ATOM}entry") == []
    assert root.find(f"{ATOM}updated") is not None


def test_the_feed_takes_a_fixed_number_of_queries(cast: Cast) -> None:
    for _ in range(3):
        published(by=cast.town_operator, approver=cast.town_operator2, targets=[cast.sanqiao.pk])
    feed()
    with CaptureQueriesContext(connection) as queries:
        assert len(feed().findall(f"{ATOM}entry")) == 3
    assert len(queries) <= 3, [q["sql"] for q in queries]

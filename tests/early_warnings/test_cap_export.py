"""CAP 1.2 out of real versions: alert, update and cancel made through the services are
valid against the shipped XSD, carry +08:00 times, references and areas; the endpoint
serves them publicly, drafts only to staff who see them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.early_warnings import cap_adapter, services
from apps.early_warnings.cap.model import MsgType, Status
from apps.early_warnings.cap.parse import parse_alert
from apps.early_warnings.models import WarningStatus, WarningVersion
from apps.regions.models import Region
from tests.early_warnings.conftest import Cast
from tests.factories.early_warnings import draft, published

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2025, 7, 15, 12, 0, tzinfo=SHANGHAI)
CAP_TIME = re.compile(rb"<(sent|onset|expires)>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([+-]\d\d:\d\d)</")


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def cap_of(version: WarningVersion, user: User | None = None) -> Any:
    return client_for(user).get(f"/api/v1/warnings/{version.pk}/cap/")


@pytest.fixture
def chain(cast: Cast) -> dict[str, WarningVersion]:
    """An alert for 三桥 and 沣东新城's other regions, updated, then cancelled."""
    with time_machine.travel(NOON, tick=False):
        alert = published(
            by=cast.town_operator,
            approver=cast.town_operator2,
            targets=[cast.sanqiao.pk],
            level="blue",
            title="三桥街道暴雨蓝色预警",
            title_en="Rainstorm Blue Warning for Sanqiao",
        )
    with time_machine.travel(NOON.replace(hour=13), tick=False):
        update = services.warning_update(
            version_id=alert.pk, by=cast.town_operator2, level="yellow", title="暴雨黄色预警"
        )
    with time_machine.travel(NOON.replace(hour=14), tick=False):
        cancel = services.warning_cancel(
            version_id=update.pk, by=cast.town_operator2, reason="雨停"
        )
    assert update.status == WarningStatus.PUBLISHED
    assert cancel.status == WarningStatus.CANCELLED
    return {"alert": alert, "update": update, "cancel": cancel}


def test_alert_update_and_cancel_of_real_versions_are_valid_cap_with_references_and_areas(
    cast: Cast, chain: dict[str, WarningVersion]
) -> None:
    alerts = {}
    for name, version in chain.items():
        answer = cap_of(version)
        assert answer.status_code == 200, answer.content
        assert answer["Content-Type"] == "application/cap+xml; charset=utf-8"
        # parse_alert validates against the shipped OASIS XSD (and the rules it cannot say)
        alerts[name] = parse_alert(answer.content)
        times = CAP_TIME.findall(answer.content)
        assert times
        assert {offset for _tag, _t, offset in times} == {b"+08:00"}
    alert, update, cancel = alerts["alert"], alerts["update"], alerts["cancel"]
    assert [a.msg_type for a in (alert, update, cancel)] == [
        MsgType.ALERT,
        MsgType.UPDATE,
        MsgType.CANCEL,
    ]
    assert {a.status for a in alerts.values()} == {Status.ACTUAL}
    assert alert.identifier == chain["alert"].identifier
    assert alert.sent == NOON
    assert alert.references == ()
    assert [r.identifier for r in update.references] == [chain["alert"].identifier]
    assert [r.identifier for r in cancel.references] == [
        chain["alert"].identifier,
        chain["update"].identifier,
    ]
    assert {r.sender for r in cancel.references} == {services.sender()}
    # zh-CN first, en-US when English is given (the alert had an English title)
    assert [i.language for i in alert.infos] == ["zh-CN", "en-US"]
    info = alert.infos[0]
    assert info.headline == "三桥街道暴雨蓝色预警"
    assert info.web == f"http://testserver/api/v1/warnings/{chain['alert'].pk}/cap/"
    # the target's boundary as a closed lat,lon polygon, its region code as geocode
    (area,) = info.areas
    assert area.area_desc == "三桥街道"
    (ring,) = area.polygons
    assert ring[0] == ring[-1]
    assert {round(p.lat, 3) for p in ring} == {34.256, 34.296}
    assert {round(p.lon, 3) for p in ring} == {108.83, 108.87}
    assert [(g.value_name, g.value) for g in area.geocodes] == [("XIXIAN-REGION", "fd-sanqiao")]
    assert update.infos[0].event == "暴雨黄色预警"


def test_a_region_without_boundary_is_a_circle_around_its_centre_or_its_geocode_alone(
    cast: Cast,
) -> None:
    Region.objects.filter(pk=cast.tree.fengdong.pk).update(centre_lat=34.3, centre_lng=108.8)
    version = published(
        by=cast.town_operator,
        approver=cast.town_operator2,
        targets=[cast.tree.fengdong.pk, cast.community.pk],
        level="blue",
    )
    # fengdong holds the community: one target, one area
    areas = {a.area_desc: a for a in parse_alert(cap_of(version).content).infos[0].areas}
    assert set(areas) == {"沣东新城"}
    (circle,) = areas["沣东新城"].circles
    assert (circle.center.lat, circle.center.lon) == (34.3, 108.8)
    assert circle.radius_km == cap_adapter.CIRCLE_RADIUS_KM["new_town"]
    assert areas["沣东新城"].polygons == ()
    community = cap_adapter.area_for(cast.community)
    assert (community.polygons, community.circles) == ((), ())
    assert community.region_codes == ("fd-sanqiao-hcz",)


def test_a_large_boundary_is_simplified_to_at_most_the_ring_limit() -> None:
    import math

    ring = [
        [
            108.85 + 0.02 * math.cos(2 * math.pi * k / 3000),
            34.27 + 0.02 * math.sin(2 * math.pi * k / 3000),
        ]
        for k in range(3000)
    ]
    ring.append(ring[0])
    (cap_ring,) = cap_adapter._rings({"type": "Polygon", "coordinates": [ring]})
    assert 4 <= len(cap_ring) <= cap_adapter.MAX_RING_POINTS
    assert cap_ring[0] == cap_ring[-1]


def test_an_unsent_version_is_404_to_the_public_and_out_of_scope_staff_and_a_draft_to_staff(
    cast: Cast,
) -> None:
    version = draft(by=cast.town_operator, targets=[cast.sanqiao.pk])
    assert cap_of(version).status_code == 404
    assert cap_of(version, cast.outsider).status_code == 404  # operator of 沣西
    assert cap_of(version, cast.grid).status_code == 404  # no warning.read
    answer = cap_of(version, cast.town_operator)
    assert answer.status_code == 200, answer.content
    assert answer["Cache-Control"] == "private, no-store"
    assert parse_alert(answer.content).status == Status.DRAFT
    services.warning_submit(version_id=version.pk, by=cast.town_operator)
    assert cap_of(version).status_code == 404
    assert cap_of(version, cast.outsider).status_code == 404


def test_an_unknown_version_is_the_json_404_envelope_even_to_a_cap_client(cast: Cast) -> None:
    answer = client_for(None).get("/api/v1/warnings/999999/cap/", HTTP_ACCEPT="application/cap+xml")
    assert answer.status_code == 404
    assert answer.json()["code"] == "warning_not_found"


def test_every_ended_version_stays_public(cast: Cast, chain: dict[str, WarningVersion]) -> None:
    chain["alert"].refresh_from_db()
    assert chain["alert"].status == WarningStatus.SUPERSEDED
    for version in chain.values():
        answer = cap_of(version)
        assert answer.status_code == 200
        assert answer["Cache-Control"] == "public, max-age=300"


def test_serving_a_cap_document_takes_a_fixed_number_of_queries(cast: Cast) -> None:
    version = published(
        by=cast.town_operator, approver=cast.town_operator2, targets=[cast.tree.fengdong.pk]
    )
    cap_of(version)  # warm caches (sessions, content types)
    with CaptureQueriesContext(connection) as queries:
        assert cap_of(version).status_code == 200
    assert len(queries) <= 3, [q["sql"] for q in queries]

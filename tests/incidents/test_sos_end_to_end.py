"""A citizen presses SOS; the duty officers' phones ring and their board shows it.

Real processes, as deployed: uvicorn serving the project's ASGI application (the fast
intake path takes the SOS), a Celery worker delivering the push outbox through
firebase-admin to the local fake FCM, Redis as channel layer and broker, PostgreSQL. The
street's duty officer watches the street's board over a real WebSocket.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Role
from apps.incidents.models import Report
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from apps.sla.models import SlaClock
from apps.sla.services.seed import policies_load_fixture
from tests.factories.accounts import DeviceFactory, StaffUserFactory
from tests.factories.incidents import CategoryFactory
from tests.support import servers
from tests.support.fake_fcm import FakeFcm
from tests.support.ws_client import event_socket

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

SANQIAO = (34.276, 108.85)
STREET_PHONE = "fcm-token-of-the-street-duty-officer"
TOWN_PHONE = "fcm-token-of-the-new-town-commander"
OTHER_TOWN_PHONE = "fcm-token-of-fengxi"


def wait_for_push(fcm: FakeFcm, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while not fcm.messages_to(token):
        assert time.monotonic() < deadline, f"no push reached {token}"
        time.sleep(0.1)  # waiting on another process (the worker), not on test time
    (message,) = fcm.messages_to(token)
    return message


def test_an_sos_rings_the_duty_officers_and_reaches_the_street_board(
    fcm: FakeFcm, e2e_env: dict[str, str], e2e_worker: Any
) -> None:
    # given: the street's duty officer, the new town's commander, a 沣西 operator
    regions_load_fixture()
    policies_load_fixture()
    CategoryFactory(code="O99", citizen_reportable=False)
    regions = {r.code: r for r in Region.objects.all()}
    street = StaffUserFactory(region=regions["fd-sanqiao"])
    town = StaffUserFactory(region=regions["fengdong"], region__role=Role.COMMANDER)
    other = StaffUserFactory(region=regions["fengxi"])
    for user, token in ((street, STREET_PHONE), (town, TOWN_PHONE), (other, OTHER_TOWN_PHONE)):
        DeviceFactory(user=user, token=token)

    with (
        servers.asgi_server(e2e_env) as base,
        event_socket(base, str(AccessToken.for_user(street))) as board,
    ):
        subscribed = board.ask(type="subscribe", stream="region.fd-sanqiao")
        assert subscribed["type"] == "subscribed", subscribed
        # when: an anonymous citizen presses SOS
        response = httpx.post(
            f"{base}/api/v1/reports/sos/",
            json={"lat": SANQIAO[0], "lng": SANQIAO[1], "text": "老人被困家中"},
            timeout=20,
        )
        assert response.status_code == 201, response.text
        # then: the street's board gets it live, marked SOS
        frame = board.recv(timeout=10)
    report = Report.objects.get(pk=response.json()["id"])
    assert frame["type"] == "event"
    assert (frame["stream"], frame["kind"]) == ("region.fd-sanqiao", "report.submitted")
    assert frame["data"]["report"]["id"] == report.pk
    assert frame["data"]["report"]["is_sos"] is True
    # and it is on the triage clock
    assert SlaClock.objects.filter(subject_type="report", subject_id=report.pk).exists()
    # and both duty officers' phones ring with a high-priority alarm; 沣西's does not
    for token in (STREET_PHONE, TOWN_PHONE):
        message = wait_for_push(fcm, token)
        assert message["data"]["kind"] == "sos"
        assert message["data"]["report_id"] == str(report.pk)
        assert message["android"]["priority"] == "high"
        assert "三桥" in message["notification"]["title"]
    assert fcm.messages_to(OTHER_TOWN_PHONE) == []

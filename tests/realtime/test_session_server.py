"""Across real processes: the duty board's socket, authenticated by the admin session
cookie of a staff user, through uvicorn serving the project (apps/realtime/auth.py)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client
from websockets.sync.client import connect

from apps.incidents.models import IncidentStatus
from apps.incidents.services.sla import incident_supervise
from tests.factories.accounts import StaffUserFactory
from tests.factories.incidents import IncidentFactory, TwoTowns
from tests.support.servers import asgi_server

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


def test_a_real_socket_with_an_operators_session_cookie_follows_the_region_board() -> None:
    # given: a 沣东 operator logged in to the admin, and a committed 督办 in 三桥
    tree = TwoTowns()
    operator = StaffUserFactory(region=tree.fengdong)
    incident = IncidentFactory(region=tree.sanqiao, status=IncidentStatus.ACCEPTED)
    incident_supervise(incident_id=incident.pk, reason="storm")
    client = Client()
    client.force_login(operator)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    with asgi_server() as base:
        ws_url = base.replace("http://", "ws://") + "/ws/v1/events/"
        # when: the board's browser connects with the cookie from the site's own origin
        with connect(ws_url, origin=base, additional_headers={"Cookie": cookie}) as ws:
            hello = json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "subscribe", "stream": "region.fengdong", "since": 0}))
            subscribed = json.loads(ws.recv(timeout=10))
            event = json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "subscribe", "stream": "region.fengxi"}))
            refused = json.loads(ws.recv(timeout=10))
        # and: the same cookie from another site's page
        with connect(
            ws_url, origin="https://evil.example", additional_headers={"Cookie": cookie}
        ) as ws:
            foreign_hello = json.loads(ws.recv(timeout=10))
    # then
    assert hello["user_id"] == operator.pk
    assert subscribed["type"] == "subscribed"
    assert subscribed["replayed"] == 1
    assert event["kind"] == "incident.supervised"
    assert event["data"]["incident"]["id"] == incident.pk
    assert refused["code"] == "out_of_scope"
    assert foreign_hello["user_id"] is None

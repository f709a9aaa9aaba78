"""An operator dispatches; the responder's phone rings: socket frame and FCM push.

Real processes, as deployed: uvicorn serving the project's ASGI application (REST and
WebSocket), a Celery worker delivering the push outbox through firebase-admin, Redis as
channel layer and broker, PostgreSQL. The responder listens with a real WebSocket client;
FCM is the local fake HTTP v1 server (``tests/support/fake_fcm.py``), no network.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from rest_framework_simplejwt.tokens import AccessToken

from apps.accounts.models import Device
from apps.dispatch.models import DispatchTask
from tests.dispatch.task_support import Scene
from tests.support import servers
from tests.support.fake_fcm import FakeFcm

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

TOKEN = "fcm-token-of-the-responder"


async def listen_for_task(base: str, token: str, user_id: int, dispatch: Any) -> dict[str, Any]:
    """Connect as the responder, follow ``user.<id>``, run ``dispatch``, return the frame."""
    url = base.replace("http://", "ws://") + "/ws/v1/events/"
    async with websockets.connect(url, subprotocols=[f"bearer.{token}"]) as socket:
        hello = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert hello["type"] == "hello"
        assert hello["user_id"] == user_id
        await socket.send(json.dumps({"type": "subscribe", "stream": f"user.{user_id}"}))
        subscribed = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert subscribed["type"] == "subscribed", subscribed
        await dispatch()
        while True:
            frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if frame["type"] == "event" and frame["kind"] == "task.dispatched":
                return frame


def test_a_dispatch_reaches_the_responders_socket_and_phone(
    fcm: FakeFcm, e2e_env: dict[str, str], e2e_worker: Any
) -> None:
    # given: a team with an on-duty responder whose phone is registered for push
    scene = Scene()
    Device.objects.create(user=scene.member, token=TOKEN, platform="android")
    operator_token = str(AccessToken.for_user(scene.operator))
    member_token = str(AccessToken.for_user(scene.member))

    with servers.asgi_server(e2e_env) as base:

        async def dispatch() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=20) as http:
                response = await http.post(
                    f"/api/v1/incidents/{scene.incident.pk}/dispatch/",
                    json={"team_ids": [scene.team.pk]},
                    headers={"Authorization": f"Bearer {operator_token}"},
                )
                assert response.status_code == 201, response.text

        # when
        frame = asyncio.run(listen_for_task(base, member_token, scene.member.pk, dispatch))

    # then: the socket got the task, and it was committed when it did
    task = DispatchTask.objects.get(incident=scene.incident, team=scene.team)
    assert frame["stream"] == f"user.{scene.member.pk}"
    assert frame["data"]["task"]["id"] == task.pk
    assert task.status == "dispatched"
    # and the worker pushed a high-priority data message to the responder's phone
    deadline = time.monotonic() + 30
    while not fcm.messages_to(TOKEN):
        assert time.monotonic() < deadline, "no push reached the fake FCM"
        time.sleep(0.1)  # waiting on another process (the worker), not on test time
    (message,) = fcm.messages_to(TOKEN)
    assert message["token"] == TOKEN
    assert message["data"]["type"] == "task"
    assert message["data"]["task_id"] == str(task.pk)
    assert message["data"]["incident_id"] == str(scene.incident.pk)
    assert message["android"]["priority"] == "high"
    assert message["apns"]["headers"]["apns-priority"] == "10"
    assert "notification" not in message  # a data message: the app rings itself

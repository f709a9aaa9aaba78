"""Across real processes: uvicorn serving the project, Redis pub/sub between it and this
process, a real WebSocket client.

This process writes events as a web or worker process would (``emit`` + the sync
publisher to Redis); the server's RedisPubSubChannelLayer delivers them to the socket.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from apps.realtime import events
from tests.dispatch.task_support import Scene
from tests.support.servers import asgi_server
from tests.support.ws_client import event_socket

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def shared_redis(settings: Any) -> dict[str, str]:
    """The same Redis and channel prefix here and in the server (a prefix per test:
    pub/sub channels are server-wide, parallel workers must not hear each other)."""
    prefix = f"xems-it-{uuid.uuid4().hex[:10]}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": settings.TEST_REDIS_URL}], "prefix": prefix},
        }
    }
    return {"REDIS_URL": settings.TEST_REDIS_URL, "CHANNEL_LAYER_PREFIX": prefix}


def test_a_reconnecting_client_gets_exactly_the_missed_events_then_live_ones(
    shared_redis: dict[str, str],
) -> None:
    # given: an operator of 沣东 who saw event 1 on region.fengdong, then went offline
    # while events 2 and 3 were committed (nobody listening)
    scene = Scene()
    stream = "region.fengdong"
    for n in (1, 2, 3):
        events.emit([stream], "incident.note", {"n": n})
    token = str(AccessToken.for_user(scene.operator))
    with asgi_server(extra_env=shared_redis) as base, event_socket(base, token) as ws:
        # when: it reconnects with the last number it saw
        subscribed = ws.ask(type="subscribe", stream=stream, since=1)
        missed = ws.recv_many(2)
        # then live events follow, each exactly once
        events.emit([stream], "incident.note", {"n": 4})
        live = ws.recv()
        events.emit([stream], "incident.note", {"n": 5})
        sentinel = ws.recv()
    assert subscribed == {"type": "subscribed", "stream": stream, "last_seq": 3, "replayed": 2}
    assert [(f["seq"], f["data"]["n"]) for f in missed] == [(2, 2), (3, 3)]
    assert (live["seq"], live["data"]) == (4, {"n": 4})
    assert sentinel["seq"] == 5  # nothing repeated in between


def test_an_operator_dispatch_rings_the_responder_socket(shared_redis: dict[str, str]) -> None:
    import httpx

    # given: the responder's phone is connected and following its own stream
    scene = Scene()
    token = str(AccessToken.for_user(scene.member))
    with asgi_server(extra_env=shared_redis) as base, event_socket(base, token) as phone:
        phone.ask(type="subscribe", stream=f"user.{scene.member.pk}")
        # when: the operator dispatches the team through the REST API
        response = httpx.post(
            f"{base}/api/v1/incidents/{scene.incident.pk}/dispatch/",
            json={"team_ids": [scene.team.pk], "instructions": "带抽水泵"},
            headers={"Authorization": f"Bearer {AccessToken.for_user(scene.operator)}"},
            timeout=10,
        )
        frame = phone.recv()
    # then
    assert response.status_code == 201, response.text
    assert frame["type"] == "event"
    assert frame["kind"] == "task.dispatched"
    assert frame["stream"] == f"user.{scene.member.pk}"
    assert frame["data"]["task"]["id"] == response.json()[0]["id"]
    assert frame["data"]["task"]["instructions"] == "带抽水泵"

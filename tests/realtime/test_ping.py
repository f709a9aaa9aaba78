"""The authenticated WebSocket ping route: JWT on connect, clear close codes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from apps.realtime.consumers import CLOSE_NOT_AUTHENTICATED, CLOSE_TOKEN_INVALID
from xixian_ems.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ws-user", password="x")


def communicator(path: str, subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=HEADERS, subprotocols=subprotocols)


async def test_a_valid_token_in_the_query_connects_and_echoes(user) -> None:
    # given
    token = str(AccessToken.for_user(user))
    ws = communicator(f"/ws/v1/ping/?access_token={token}")
    # when
    connected, _ = await ws.connect()
    hello = await ws.receive_json_from()
    await ws.send_json_to({"type": "ping", "data": 42})
    pong = await ws.receive_json_from()
    # then
    assert connected
    assert hello == {"type": "hello", "user_id": user.pk}
    assert pong == {"type": "pong", "echo": 42}
    await ws.disconnect()


async def test_a_token_in_the_subprotocol_is_accepted_and_echoed_back(user) -> None:
    token = str(AccessToken.for_user(user))
    ws = communicator("/ws/v1/ping/", subprotocols=[f"bearer.{token}"])
    connected, subprotocol = await ws.connect()
    assert connected
    assert subprotocol == f"bearer.{token}"
    await ws.disconnect()


async def closed_with(ws: WebsocketCommunicator) -> tuple[dict, int]:
    connected, _ = await ws.connect()
    assert connected  # accepted so that the close code reaches the client
    frame = await ws.receive_json_from()
    closed = await ws.receive_output()
    assert closed["type"] == "websocket.close"
    return frame, closed["code"]


async def test_no_token_closes_with_4401() -> None:
    frame, code = await closed_with(communicator("/ws/v1/ping/"))
    assert frame == {"type": "error", "code": "not_authenticated"}
    assert code == CLOSE_NOT_AUTHENTICATED


async def test_a_forged_token_closes_with_4403(user) -> None:
    # given: a token signed with another key
    token = AccessToken.for_user(user)
    forged = str(token)[:-4] + ("AAAA" if not str(token).endswith("AAAA") else "BBBB")
    # when
    frame, code = await closed_with(communicator(f"/ws/v1/ping/?access_token={forged}"))
    # then
    assert frame == {"type": "error", "code": "token_invalid"}
    assert code == CLOSE_TOKEN_INVALID


async def test_an_expired_token_closes_with_4403(user) -> None:
    token = str(AccessToken.for_user(user))
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        frame, code = await closed_with(communicator(f"/ws/v1/ping/?access_token={token}"))
    assert frame["code"] == "token_invalid"
    assert code == CLOSE_TOKEN_INVALID


async def test_unknown_message_types_get_an_error_frame(user) -> None:
    ws = communicator(f"/ws/v1/ping/?access_token={AccessToken.for_user(user)}")
    await ws.connect()
    await ws.receive_json_from()
    await ws.send_json_to({"type": "subscribe"})
    assert await ws.receive_json_from() == {"type": "error", "code": "unknown_message_type"}
    await ws.disconnect()

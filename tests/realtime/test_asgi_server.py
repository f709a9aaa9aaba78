"""Across real processes: uvicorn serving the project, a real WebSocket client."""

from __future__ import annotations

import json

import httpx
import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.servers import asgi_server

pytestmark = [
    pytest.mark.services,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]


def test_a_real_socket_connects_with_a_jwt_and_gets_pongs(django_user_model) -> None:
    # given: a committed user and a running ASGI server on the test database
    user = django_user_model.objects.create_user("field-1", password="x")
    token = str(AccessToken.for_user(user))
    with asgi_server() as base:
        ws_url = base.replace("http://", "ws://") + "/ws/v1/ping/"
        # when
        with connect(f"{ws_url}?access_token={token}", open_timeout=10) as ws:
            hello = json.loads(ws.recv(timeout=10))
            ws.send(json.dumps({"type": "ping", "data": "嗨"}))
            pong = json.loads(ws.recv(timeout=10))
        ready = httpx.get(f"{base}/readyz", timeout=10)
        # then
        assert hello == {"type": "hello", "user_id": user.pk}
        assert pong == {"type": "pong", "echo": "嗨"}
        assert ready.status_code == 200, ready.text


def test_a_real_socket_with_a_bad_token_is_closed_with_4403() -> None:
    with asgi_server() as base:
        ws_url = base.replace("http://", "ws://") + "/ws/v1/ping/?access_token=forged"
        with connect(ws_url, open_timeout=10) as ws:
            frame = json.loads(ws.recv(timeout=10))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert frame == {"type": "error", "code": "token_invalid"}
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4403

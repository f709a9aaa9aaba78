"""Shared set-up of the realtime tests: a fresh channel layer per test, a record of what
is published, and WebSocket helpers on the real ASGI application."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from apps.realtime import publisher
from apps.realtime.publisher import LiveEvent
from xixian_ems.asgi import application

HEADERS = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings: Any) -> None:
    """A new in-memory layer per test: groups joined by one test's consumers must not
    receive the next test's events (Channels and the publisher reset on the change)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[list[LiveEvent]]:
    """Every call of ``publisher.publish`` (one per committed transaction), recorded and
    passed on, so sockets still get the events."""
    calls: list[list[LiveEvent]] = []
    original = publisher.publish

    def record(events: Any) -> None:
        calls.append(list(events))
        original(events)

    monkeypatch.setattr(publisher, "publish", record)
    return calls


def token_for(user: Any, **lifetime: Any) -> str:
    token = AccessToken.for_user(user)
    if lifetime:
        from datetime import timedelta

        token.set_exp(lifetime=timedelta(**lifetime))
    return str(token)


def socket(user: Any = None, *, token: str | None = None) -> WebsocketCommunicator:
    """A communicator on ``/ws/v1/events/`` for ``user`` (anonymous: ``None``)."""
    raw = token if token is not None else (token_for(user) if user is not None else None)
    path = "/ws/v1/events/" + (f"?access_token={raw}" if raw else "")
    return WebsocketCommunicator(application, path, headers=HEADERS)


async def connected(user: Any = None, **kwargs: Any) -> WebsocketCommunicator:
    """Connected and past the ``hello`` frame."""
    ws = socket(user, **kwargs)
    ok, _ = await ws.connect()
    assert ok
    hello = await ws.receive_json_from()
    assert hello["type"] == "hello"
    return ws


async def ask(ws: WebsocketCommunicator, **message: Any) -> dict[str, Any]:
    """Send one client message, return the first answer frame."""
    await ws.send_json_to(message)
    return await ws.receive_json_from(timeout=3)


async def frames(ws: WebsocketCommunicator, count: int) -> list[dict[str, Any]]:
    return [await ws.receive_json_from(timeout=3) for _ in range(count)]


async def nothing_more(ws: WebsocketCommunicator) -> bool:
    """True if no frame is waiting (the consumer had the chance to send one)."""
    return await ws.receive_nothing(timeout=0.2)


def decoded(events: list[LiveEvent]) -> list[dict[str, Any]]:
    return [json.loads(event.frame) for event in events]

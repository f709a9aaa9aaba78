"""A real WebSocket client for integration tests (the ``websockets`` package, sync API)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.client import ClientConnection, connect


class EventSocket:
    """``/ws/v1/events/`` from the outside: JSON in, JSON out, every wait bounded."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    def send(self, **message: Any) -> None:
        self.connection.send(json.dumps(message))

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(self.connection.recv(timeout=timeout))

    def recv_many(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """``count`` frames, all within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        return [self.recv(timeout=max(0.01, deadline - time.monotonic())) for _ in range(count)]

    def ask(self, timeout: float = 10, **message: Any) -> dict[str, Any]:
        self.send(**message)
        return self.recv(timeout=timeout)


@contextmanager
def event_socket(base_url: str, token: str | None = None) -> Iterator[EventSocket]:
    """Connected to the server at ``base_url`` (``http://...``) and past ``hello``."""
    url = base_url.replace("http://", "ws://", 1) + "/ws/v1/events/"
    if token is not None:
        url += f"?access_token={token}"
    with connect(url, open_timeout=10) as connection:
        socket = EventSocket(connection)
        hello = socket.recv()
        assert hello["type"] == "hello", hello
        yield socket

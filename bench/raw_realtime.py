"""Raw baseline of the realtime benchmark: bare ASGI WebSockets fed by Redis pub/sub.

``/ws?stream=<name>``: the socket follows Redis channel ``<prefix>.<name>``. One redis.asyncio
pub/sub connection per process, one reader task fanning each message out to the sockets
of its channel; the message is sent as it came (the frame text), no framework, no
database, no authentication. After the channel's SUBSCRIBE the socket gets
``{"type": "subscribed"}``, the moment the project's consumer answers ``subscribed`` too.
What the project costs beyond this (Channels, the consumer's checks, the JWT middleware,
msgpack framing of the layer) shows as the ratio.

``/ping`` and ``/readyz`` (Redis PING) as every raw app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from redis import asyncio as aioredis

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
# Redis channels: ``<CHANNEL_LAYER_PREFIX>.<stream>`` (the bench gives both apps a prefix
# of the run's own: pub/sub channels are server-wide).
CHANNEL_PREFIX = os.environ.get("CHANNEL_LAYER_PREFIX", "raw") + "."


class Fanout:
    """The process's pub/sub connection and who follows which channel."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.followers: dict[str, set[Send]] = {}
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task[None] | None = None

    async def follow(self, channel: str, send: Send) -> None:
        async with self.lock:
            if channel not in self.followers:
                self.followers[channel] = set()
                await self.pubsub.subscribe(channel)
            self.followers[channel].add(send)
            if self.reader is None:
                self.reader = asyncio.create_task(self._read())

    def leave(self, channel: str, send: Send) -> None:
        self.followers.get(channel, set()).discard(send)

    async def _read(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            channel = message["channel"].decode()
            text = message["data"].decode()
            for send in list(self.followers.get(channel, ())):
                with contextlib.suppress(Exception):  # a socket closing meanwhile
                    await send({"type": "websocket.send", "text": text})


_fanout: Fanout | None = None


def fanout() -> Fanout:
    global _fanout
    if _fanout is None:
        _fanout = Fanout(os.environ["REDIS_URL"])
    return _fanout


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    status, body = 404, {"error": "not found"}
    if scope["path"] == "/ping":
        status, body = 200, {"status": "ok"}
    elif scope["path"] == "/readyz":
        await fanout().redis.ping()
        status, body = 200, {"status": "ok"}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    query = dict(parse_qsl((scope.get("query_string") or b"").decode()))
    if (await receive())["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws" or "stream" not in query:
        await send({"type": "websocket.close", "code": 4404})
        return
    await send({"type": "websocket.accept"})
    channel = CHANNEL_PREFIX + query["stream"]
    await fanout().follow(channel, send)
    await send({"type": "websocket.send", "text": json.dumps({"type": "subscribed"})})
    try:
        while (await receive())["type"] != "websocket.disconnect":
            pass
    finally:
        fanout().leave(channel, send)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

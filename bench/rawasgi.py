"""Bare ASGI plumbing for raw baselines: no framework, one psycopg async pool per worker.

A raw baseline answers the same request as the project with the least machinery the
substrate allows: uvicorn, psycopg 3 (the driver Django uses) and ``json``. What the
project costs beyond it (Django, DRF, JWT auth, scoping, serializers, middleware) shows
as the ratio. Every raw app also answers ``/ping`` (constant, no database: the load
generator's ceiling) and ``/readyz`` (``SELECT 1``).

``post_routes`` take a request with a body: ``handler(pool, RawRequest) -> (status,
payload)``, with the body read whole, the headers (lower-case names) and the client
address (uvicorn has already applied ``X-Forwarded-For`` from 127.0.0.1, the stand-in
for the router; the project reads that header itself, see ``apps.core.client_address``).

The pool has the project's per-process limits (``DB_POOL_MIN_SIZE``/``DB_POOL_MAX_SIZE``,
2/10 by default) so neither side wins by holding more connections.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

Query = Mapping[str, str]
Answer = tuple[int, Any]
Handler = Callable[[AsyncConnectionPool, Query], Awaitable[Answer]]


@dataclass(frozen=True)
class RawRequest:
    """A request with a body, for ``post_routes``."""

    path: str
    query: Query
    headers: Mapping[str, str]
    body: bytes
    client: str | None


PostHandler = Callable[[AsyncConnectionPool, RawRequest], Awaitable[Answer]]
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


async def ping(pool: AsyncConnectionPool, query: Query) -> Answer:
    return 200, {"status": "ok"}


async def readyz(pool: AsyncConnectionPool, query: Query) -> Answer:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")
    return 200, {"status": "ok"}


class RawApp:
    """An ASGI app routing exact paths to ``handler(pool, query) -> (status, payload)``."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        *,
        post_routes: Mapping[str, PostHandler] | None = None,
        on_startup: Callable[[AsyncConnectionPool], Awaitable[None]] | None = None,
    ) -> None:
        self.routes: dict[str, Handler] = {"/ping": ping, "/readyz": readyz, **routes}
        self.post_routes: dict[str, PostHandler] = dict(post_routes or {})
        self._on_startup = on_startup
        self._pool: AsyncConnectionPool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._pool = AsyncConnectionPool(
                    os.environ["DATABASE_URL"],
                    min_size=int(os.environ.get("DB_POOL_MIN_SIZE", "2")),
                    max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "10")),
                    open=False,
                )
                await self._pool.open(wait=True, timeout=10)
                if self._on_startup is not None:
                    await self._on_startup(self._pool)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        post = self.post_routes.get(path) if scope["method"] == "POST" else None
        handler = self.routes.get(path)
        if (handler is None and post is None) or self._pool is None:
            status, payload = 404, {"code": "not_found"}
        else:
            query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            try:
                if post is not None:
                    client = scope.get("client")
                    request = RawRequest(
                        path=path,
                        query=query,
                        headers={
                            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                        },
                        body=await _read_body(receive),
                        client=client[0] if client else None,
                    )
                    status, payload = await post(self._pool, request)
                else:
                    assert handler is not None
                    status, payload = await handler(self._pool, query)
            except Exception:  # a raw app must still answer, the client counts the 500
                logger.exception("raw handler %s failed", path)
                status, payload = 500, {"code": "server_error"}
        # DRF's JSONRenderer defaults: compact separators, UTF-8 rather than \u escapes.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


# The bare app: only /ping and /readyz (`uvicorn bench.rawasgi:app`), the floor's baseline.
app = RawApp({})

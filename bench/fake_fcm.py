"""A fake FCM HTTP v1 server for the warnings bench: bare ASGI under uvicorn, one process.

It answers what firebase-admin 7.7 talks to when the project sends
(``apps/notifications/backends/fcm.py``; ``tests/support/fake_fcm.py`` is the test
suite's threaded twin, with scripted errors):

* ``POST /token`` — the OAuth2 JWT-bearer grant google-auth makes for the service
  account whose ``token_uri`` points here (:func:`service_account`); answers one access
  token. The assertion is not verified here (the tests do that); the grant type is.
* ``POST /v1/projects/<project>/messages:send`` — one message per request, as FCM v1
  (7.7's ``send_each`` makes one such request per message; there is no batch endpoint in
  that version, so none here). The bearer must be the token this server issued (401
  ``UNAUTHENTICATED`` otherwise, as FCM). Answers ``{"name":
  "projects/<project>/messages/<n>"}``.

Every accepted send is recorded in memory with its arrival time (``time.time()``, the
clock the bench reads commit times with), its target (token or topic) and its message
number. The bench reads and clears the record through two extra routes:

* ``GET /_records`` — ``{"records": [[arrival, target, number], ...]}``;
* ``POST /_reset`` — forget everything recorded so far;
* ``GET /_count`` — ``{"count": n}`` (cheap, for polling);
* ``GET /readyz`` — 200.

Run: ``uvicorn bench.fake_fcm:app`` (a single process: the record lives in it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

ACCESS_TOKEN = "bench-fake-fcm-access"  # noqa: S105 - a fake server's fixed token
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SEND_PREFIX, SEND_SUFFIX = "/v1/projects/", "/messages:send"

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def service_account(base_url: str, private_pem: str, project_id: str) -> dict[str, Any]:
    """A service-account JSON whose ``token_uri`` is this server."""
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": "bench-key-1",
        "private_key": private_pem,
        "client_email": f"push@{project_id}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": f"{base_url}/auth",
        "token_uri": f"{base_url}/token",
    }


class FakeFcm:
    def __init__(self) -> None:
        self.records: list[tuple[float, str, int]] = []
        self.number = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        status, payload = self._route(scope, body)
        data = json.dumps(payload, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=UTF-8"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    def _route(self, scope: Scope, body: bytes) -> tuple[int, Any]:
        path, method = scope["path"], scope["method"]
        if method == "POST" and path.startswith(SEND_PREFIX) and path.endswith(SEND_SUFFIX):
            arrived = time.time()
            headers = dict(scope["headers"])
            if headers.get(b"authorization", b"") != f"Bearer {ACCESS_TOKEN}".encode():
                return 401, _error(401, "UNAUTHENTICATED", "Invalid credentials")
            try:
                message = json.loads(body)["message"]
            except (ValueError, KeyError, TypeError):
                return 400, _error(400, "INVALID_ARGUMENT", "no message")
            target = message.get("token") or message.get("fid") or message.get("topic")
            if not target:
                return 400, _error(400, "INVALID_ARGUMENT", "no target")
            self.number += 1
            self.records.append((arrived, str(target), self.number))
            project = path[len(SEND_PREFIX) : -len(SEND_SUFFIX)]
            return 200, {"name": f"projects/{project}/messages/bench-{self.number}"}
        if method == "POST" and path == "/token":
            form = parse_qs(body.decode())
            if form.get("grant_type") != [JWT_GRANT] or not form.get("assertion"):
                return 400, {"error": "unsupported_grant_type"}
            return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if path == "/_records":
            return 200, {"records": self.records}
        if path == "/_count":
            return 200, {"count": len(self.records)}
        if method == "POST" and path == "/_reset":
            self.records = []
            return 200, {"status": "ok"}
        if path == "/readyz":
            return 200, {"status": "ok"}
        return 404, _error(404, "NOT_FOUND", f"no route {path}")


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": []}}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


app = FakeFcm()

"""A local fake of FCM HTTP v1 for tests: real HTTP on 127.0.0.1, no network at all.

It answers the two endpoints firebase-admin 7.7 talks to when it sends:

* ``POST /token`` — the OAuth2 JWT-bearer grant google-auth makes for a service account.
  :meth:`FakeFcm.service_account` builds a throwaway service account (fresh RSA key)
  whose ``token_uri`` points here; the assertion's signature, audience (Google's token
  endpoint, as google-auth signs it) and issuer are verified with the public key, so a
  broken credential flow fails the test.
* ``POST /v1/projects/<project>/messages:send`` — one message per request (7.7's
  ``send_each`` makes one such request per message from a thread pool; there is no
  batch endpoint in this version). The bearer token must be one this server issued.

Every send is recorded with its exact JSON body (:attr:`FakeFcm.sends`); tests can
script errors per token or topic with :meth:`FakeFcm.fail`::

    with FakeFcm() as fcm:
        fcm.fail("token-1", "UNREGISTERED")
        fcm.fail("token-2", "QUOTA_EXCEEDED", retry_after=30)
        ...
        assert fcm.messages_to("token-3")[0]["android"]["priority"] == "high"

Error bodies follow FCM's: ``{"error": {code, message, status, details: [FcmError ...]}}``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs its grant for Google's token endpoint whatever the token_uri says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"

# error name → (HTTP status, RPC status, message, details)
ERRORS: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
    "UNREGISTERED": (
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "UNREGISTERED"}],
    ),
    "SENDER_ID_MISMATCH": (
        403,
        "PERMISSION_DENIED",
        "SenderId mismatch",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "SENDER_ID_MISMATCH"}],
    ),
    "INVALID_TOKEN": (
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        [
            {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [
                    {"field": "message.token", "description": "Invalid registration token"}
                ],
            },
        ],
    ),
    "INVALID_ARGUMENT": (
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'message.android.ttl'",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}],
    ),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Messages'.",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "QUOTA_EXCEEDED"}],
    ),
    "UNAVAILABLE": (
        503,
        "UNAVAILABLE",
        "The service is currently unavailable.",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "UNAVAILABLE"}],
    ),
    "INTERNAL": (
        500,
        "INTERNAL",
        "Internal error encountered.",
        [{"@type": FCM_ERROR_TYPE, "errorCode": "INTERNAL"}],
    ),
}


@lru_cache(maxsize=1)
def _key_pair() -> tuple[str, str]:
    """One throwaway RSA key per test session (generating one costs ~50 ms)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@dataclass(frozen=True)
class Send:
    """One ``messages:send`` request as received."""

    project: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        return self.body["message"]

    @property
    def target(self) -> str:
        message = self.message
        return message.get("token") or message.get("fid") or message.get("topic") or ""


@dataclass
class _Failure:
    error: str
    retry_after: int | None = None


@dataclass
class FakeFcm:
    """The fake server; use as a context manager (starts and stops the thread)."""

    project_id: str = "xems-test"
    client_email: str = "push@xems-test.iam.gserviceaccount.com"
    sends: list[Send] = field(default_factory=list)
    token_grants: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, deque[_Failure]] = {}
        self._issued: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeFcm:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # --- credentials -----------------------------------------------------------------------

    def service_account(self) -> dict[str, Any]:
        """A service-account JSON whose token_uri is this server."""
        private_pem, _public = _key_pair()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": "fake-key-1",
            "private_key": private_pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "auth_uri": f"{self.url}/auth",
            "token_uri": self.token_uri,
        }

    def write_credentials(self, path: Path) -> Path:
        path.write_text(json.dumps(self.service_account()), encoding="utf-8")
        return path

    # --- scripting and reading -------------------------------------------------------------

    def fail(
        self, target: str, error: str, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        """Answer ``error`` (a key of :data:`ERRORS`) to the next ``times`` sends to
        ``target`` (a token or topic), then succeed again."""
        if error not in ERRORS:
            raise ValueError(f"unknown fake FCM error {error!r}")
        with self._lock:
            queue = self._failures.setdefault(target, deque())
            queue.extend(_Failure(error, retry_after) for _ in range(times))

    def messages_to(self, target: str) -> list[dict[str, Any]]:
        with self._lock:
            return [send.message for send in self.sends if send.target == target]

    # --- request handling (server threads) ---------------------------------------------------

    def _grant(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != [JWT_GRANT] or not form.get("assertion"):
            return 400, {"error": "unsupported_grant_type"}
        _private, public_pem = _key_pair()
        try:
            claims = jwt.decode(
                form["assertion"][0], certs=public_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except ValueError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        if claims.get("iss") != self.client_email:
            return 400, {"error": "invalid_grant", "error_description": "wrong issuer"}
        with self._lock:
            token = f"fake-access-{len(self._issued) + 1}"
            self._issued.add(token)
            self.token_grants.append(claims)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _send(
        self, project: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            authorised = bearer in self._issued
        if not authorised:
            return 401, _error_body(401, "UNAUTHENTICATED", "Invalid credentials", []), {}
        body = json.loads(raw or b"{}")
        send = Send(project=project, headers=headers, body=body)
        with self._lock:
            self.sends.append(send)
            queue = self._failures.get(send.target)
            failure = queue.popleft() if queue else None
            number = len(self.sends)
        if failure is not None:
            status, rpc_status, message, details = ERRORS[failure.error]
            extra = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return status, _error_body(status, rpc_status, message, details), extra
        return 200, {"name": f"projects/{project}/messages/fake-{number}"}, {}


def _error_body(code: int, status: str, message: str, details: list[dict[str, Any]]) -> dict:
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


def _handler_for(fake: FakeFcm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            path = self.path.split("?", 1)[0]
            if path == "/token":
                status, body = fake._grant(parse_qs(raw.decode()))
                self._answer(status, body, {})
                return
            prefix, suffix = "/v1/projects/", "/messages:send"
            if path.startswith(prefix) and path.endswith(suffix):
                project = path[len(prefix) : -len(suffix)]
                status, body, extra = fake._send(project, headers, raw)
                self._answer(status, body, extra)
                return
            self._answer(404, _error_body(404, "NOT_FOUND", f"no route {path}", []), {})

        def _answer(self, status: int, body: dict[str, Any], extra: dict[str, str]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    return Handler

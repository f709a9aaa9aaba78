"""The ASGI layer of the fast intake path (package docstring: what and why).

:class:`IntakeFastPath` wraps the project's HTTP application. It takes only
``POST /api/v1/reports/`` and ``POST /api/v1/reports/sos/`` with a JSON body, anonymous
or with a bearer token (a logged-in citizen; on SOS a stale token makes the request
anonymous, as ``LenientJWTAuthentication`` does in the view); every other request, and
every report it does not answer itself, goes to the wrapped application unchanged (the
body it read is replayed). It also answers the ASGI ``lifespan`` protocol, which Django
does not speak, so the writer's queue is drained when the server shuts down.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache.backends.redis import RedisSerializer
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.urls import reverse
from django.utils import translation

from apps.core import ratelimit
from apps.core.idempotency import ANONYMOUS_SCOPE
from apps.incidents import catalogue as catalogue_module
from apps.incidents.intake.parse import PATHS, SOS_PATH, parse_body, submission_from
from apps.incidents.intake.writer import GroupCommitter, Outcome
from apps.incidents.throttles import (
    INTAKE_COUNTED_SCOPE_KEY,
    client_ident,
    device_id_from,
    phone_ident,
    report_limits,
    sos_limits,
)
from apps.regions import geo

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON_TYPES = {"application/json"}
_TOKEN_SLOT = "--token--"  # noqa: S105 (a placeholder in a URL, not a secret)
_ACCEPTED = {"*/*", "application/json", "application/*"}


def enabled() -> bool:
    return bool(getattr(settings, "INCIDENTS_FAST_INTAKE", True)) and (
        connections["default"].vendor == "postgresql"
    )


class _Unauthenticated(Exception):
    """A token the view would refuse with 401: let it."""


def bearer_user_id(scope: Scope, *, lenient: bool) -> int | None:
    """The user id of a valid bearer token in ``Authorization`` (signature, expiry and
    type, as ``JWTAuthentication`` checks them; that the account is active is checked
    with the insert). No header: ``None``. A bad token: ``None`` when ``lenient`` (SOS),
    else :class:`_Unauthenticated`."""
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
    from rest_framework_simplejwt.settings import api_settings

    raw = next((v for n, v in scope["headers"] if n == b"authorization"), None)
    if raw is None:
        return None
    auth = JWTAuthentication()
    try:
        token = auth.get_raw_token(raw)
        if token is None:
            raise InvalidToken("not a bearer token")
        user_id = auth.get_validated_token(token)[api_settings.USER_ID_CLAIM]
        return int(user_id)
    except (InvalidToken, TokenError, KeyError, TypeError, ValueError):
        if lenient:
            return None
        raise _Unauthenticated from None


def _decode(raw: bytes | None) -> str | None:
    """A value Django's Redis cache stored (ints raw, the rest pickled)."""
    return None if raw is None else str(RedisSerializer().loads(raw))


class IntakeFastPath:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self.committer: GroupCommitter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiter: ratelimit.AsyncLimiter | None = None
        self._track_prefix: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not self._candidate(scope) or not enabled():
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if not complete:
            await self.app(scope, _replaying(body, receive, more=True), send)
            return
        committer = self._committer()
        committer.arrive()
        left = False

        def leave() -> None:  # once: the writer waits for requests still being checked
            nonlocal left
            if not left:
                left = True
                committer.leave()

        outcome: Outcome | None = None
        counted = False
        try:
            outcome, counted = await self._take(scope, body, committer, leave)
        except Exception:
            logger.exception("intake fast path failed; the view answers")
        finally:
            leave()
        if outcome is None or outcome.to_django:
            inner = {**scope, INTAKE_COUNTED_SCOPE_KEY: True} if counted else scope
            await self.app(inner, _replaying(body, receive), send)
            return
        await _respond(send, scope, outcome)

    # --- what the fast path takes -------------------------------------------------------

    @staticmethod
    def _candidate(scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS:
            return False
        if scope.get("query_string"):
            return False  # ?format= and friends: DRF's content negotiation
        session_cookie = settings.SESSION_COOKIE_NAME.encode() + b"="
        for name, value in scope["headers"]:
            if name == b"cookie" and session_cookie in value:
                return False
            if name == b"content-type" and _media_type(value) not in _JSON_TYPES:
                return False
            if name == b"accept":
                kinds = {
                    v.split(";")[0].strip().lower() for v in value.decode("latin-1").split(",")
                }
                if not kinds & _ACCEPTED:
                    return False  # e.g. text/html: the browsable API
        return any(name == b"content-type" for name, _ in scope["headers"])

    async def _take(
        self, scope: Scope, body: bytes, committer: GroupCommitter, leave: Callable[[], None]
    ) -> tuple[Outcome | None, bool]:
        """(the outcome or ``None`` for the view, whether the limits counted it)."""
        request = ASGIRequest(scope, io.BytesIO(b""))
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None, False  # SecurityMiddleware redirects
        try:
            tracking_url = request.build_absolute_uri(self._track_path())
        except DisallowedHost:
            return None, False
        data = parse_body(body)
        if data is None:
            return None, False
        path = scope["path"]
        sos = path == SOS_PATH
        try:
            reporter_id = bearer_user_id(scope, lenient=sos)
        except _Unauthenticated:
            return None, False  # the view answers 401
        ident = client_ident(request)
        device_id = device_id_from(request)
        if sos:
            limits = sos_limits(ip=ident, device_id=device_id)
        else:
            phone = phone_ident(data.get("phone"))
            limits = report_limits(ip=ident, device_id=device_id, phone=phone)
        catalogue, index, verdict = await self._limits_and_indexes(limits)
        if not verdict.allowed:
            return None, False  # the view refuses it too (consuming nothing) with a 429
        submission = submission_from(
            data,
            path=path,
            body=body,
            key_header=request.headers.get("Idempotency-Key"),
            scope=ANONYMOUS_SCOPE if reporter_id is None else f"user:{reporter_id}",
            reporter_id=reporter_id,
            catalogue=catalogue,
            index=index,
            client_ip=_ip_or_none(ident),
            device_id=device_id,
        )
        if submission is None:
            return None, True
        head, tail = tracking_url.rsplit(_TOKEN_SLOT, 1)
        submission.tracking_url = head + submission.draft.token + tail
        scope["xems.language"] = translation.get_language_from_request(request)
        scope["xems.secure"] = request.is_secure()
        leave()
        return await committer.submit(submission), True

    async def _limits_and_indexes(
        self, limits: list[ratelimit.Limit]
    ) -> tuple[catalogue_module.Catalogue, geo.StreetIndex, ratelimit.Verdict]:
        """The limits and both indexes' generations in one Redis round trip."""
        url = ratelimit.redis_url()
        if not url or settings.CACHES["default"].get("LOCATION") != url:
            verdict = await sync_to_async(ratelimit.hit)(limits)
            catalogue = await sync_to_async(catalogue_module.catalogue)()
            index = await sync_to_async(geo.street_index)()
            return catalogue, index, verdict
        if self._limiter is None:
            self._limiter = ratelimit.AsyncLimiter(url)
        from django.core.cache import cache

        read = [
            cache.make_key(geo.GENERATION_CACHE_KEY),
            cache.make_key(catalogue_module.GENERATION_CACHE_KEY),
        ]
        verdict = await self._limiter.hit(limits, read=read)
        street_generation, category_generation = (_decode(v) for v in verdict.values)
        # Warm and current: no query. Cold, or changed elsewhere: rebuild off the loop.
        index = geo.street_index_if_current(street_generation)
        if index is None:
            index = await sync_to_async(geo.street_index)()
        catalogue = catalogue_module.catalogue_if_current(category_generation)
        if catalogue is None:
            catalogue = await sync_to_async(catalogue_module.catalogue)()
        return catalogue, index, verdict

    def _track_path(self) -> str:
        # The token is random per report: reverse once, then fill it in.
        if self._track_prefix is None:
            self._track_prefix = reverse("v1:report-track", kwargs={"token": _TOKEN_SLOT})
        return self._track_prefix

    def _committer(self) -> GroupCommitter:
        loop = asyncio.get_running_loop()
        if self.committer is None or self._loop is not loop:
            self.committer = GroupCommitter(
                max_batch=settings.INCIDENTS_INTAKE_BATCH_MAX,
                max_wait_s=settings.INCIDENTS_INTAKE_BATCH_WAIT_MS / 1000,
                max_queue=settings.INCIDENTS_INTAKE_QUEUE_MAX,
            )
            self._loop = loop
        return self.committer

    async def close(self) -> None:
        if self.committer is not None:
            await self.committer.close()
            self.committer = None
        if self._limiter is not None:
            await self._limiter.close()
            self._limiter = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _media_type(value: bytes) -> str:
    return value.split(b";")[0].strip().lower().decode("latin-1")


def _ip_or_none(ident: str) -> str | None:
    try:
        return str(ipaddress.ip_address(ident.strip()))
    except ValueError:
        return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether it is complete (``False`` past ``limit``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # disconnected: let the view see it
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _replaying(body: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A ``receive`` that yields the body already read, then the original's messages."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def response_headers(scope: Scope, length: int, *, replayed: bool) -> list[tuple[bytes, bytes]]:
    """The headers the view's response carries through Django's middleware and DRF
    (a test compares them with the view's, header by header)."""
    language = scope.get("xems.language") or settings.LANGUAGE_CODE
    headers = [
        (b"content-type", b"application/json"),
        (b"vary", b"Accept, Accept-Language, Cookie"),
        (b"allow", b"POST, OPTIONS"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
        (b"content-language", language.encode()),
        (b"content-length", str(length).encode()),
    ]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append((b"referrer-policy", settings.SECURE_REFERRER_POLICY.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    if scope.get("xems.secure") and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    return headers


def render(body: dict[str, Any] | None) -> bytes:
    """DRF's ``JSONRenderer`` output (compact, UTF-8, U+2028/9 escaped)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


async def _respond(send: Send, scope: Scope, outcome: Outcome) -> None:
    payload = render(outcome.body)
    await send(
        {
            "type": "http.response.start",
            "status": outcome.status,
            "headers": response_headers(scope, len(payload), replayed=outcome.replayed),
        }
    )
    await send({"type": "http.response.body", "body": payload})

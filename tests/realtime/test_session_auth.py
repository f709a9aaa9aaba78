"""The admin's duty board on the event socket: an admin session cookie authenticates a
staff user when no token is given, only from this site's Origin, only while the session
lives; the subscriptions keep the scope rule (apps/realtime/auth.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.accounts.models import User
from apps.accounts.sessions import LOGIN_AT, SEEN_AT
from apps.realtime.auth import origin_allowed
from apps.realtime.errors import CloseCode
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import TwoTowns
from tests.realtime.conftest import ask, token_for
from xixian_ems.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

SITE = b"http://localhost"


@dataclass
class Cast:
    tree: TwoTowns
    fengdong_operator: User
    fengxi_operator: User


@pytest.fixture
def cast(transactional_db: None) -> Cast:
    tree = TwoTowns()
    return Cast(
        tree=tree,
        fengdong_operator=StaffUserFactory(region=tree.fengdong),
        fengxi_operator=StaffUserFactory(region=tree.fengxi),
    )


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def alogin(user: User) -> Client:
    return await database_sync_to_async(login)(user)


async def cookie_of(user: User) -> str:
    return session_cookie(await alogin(user))


def socket_with(
    cookie: str | None, *, origin: bytes | None = SITE, query: str = ""
) -> WebsocketCommunicator:
    headers = [(b"host", b"localhost")]
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/v1/events/" + query, headers=headers)


async def hello_of(ws: WebsocketCommunicator) -> dict[str, Any]:
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from()
    assert hello["type"] == "hello"
    return hello


async def test_an_operators_admin_session_authenticates_the_socket_and_subscribes(
    cast: Cast,
) -> None:
    cookie = await cookie_of(cast.fengdong_operator)
    ws = socket_with(cookie)
    hello = await hello_of(ws)
    assert hello["user_id"] == cast.fengdong_operator.pk
    assert hello["expires_at"].endswith("+08:00")  # the session's end, not open-ended
    answer = await ask(ws, type="subscribe", stream="region.fengdong")
    assert answer["type"] == "subscribed"
    await ws.disconnect()


async def test_a_session_socket_keeps_the_scope_rule_fengxi_may_not_follow_fengdong(
    cast: Cast,
) -> None:
    cookie = await cookie_of(cast.fengxi_operator)
    ws = socket_with(cookie)
    assert (await hello_of(ws))["user_id"] == cast.fengxi_operator.pk
    answer = await ask(ws, type="subscribe", stream="region.fengdong")
    assert answer["type"] == "error"
    assert answer["code"] == "out_of_scope"
    assert (await ask(ws, type="subscribe", stream="region.fengxi"))["type"] == "subscribed"
    await ws.disconnect()


async def not_authenticated(ws: WebsocketCommunicator) -> None:
    """The socket stays open but anonymous: the board's stream is refused."""
    hello = await hello_of(ws)
    assert hello == {"type": "hello", "user_id": None, "expires_at": None}
    answer = await ask(ws, type="subscribe", stream="region.fengdong")
    assert answer["code"] == "not_authenticated"
    await ws.disconnect()


async def test_a_non_staff_session_authenticates_nobody(cast: Cast) -> None:
    citizen = await database_sync_to_async(CitizenFactory)()
    cookie = await cookie_of(citizen)
    await not_authenticated(socket_with(cookie))


async def test_a_session_from_a_foreign_origin_authenticates_nobody(cast: Cast) -> None:
    cookie = await cookie_of(cast.fengdong_operator)
    await not_authenticated(socket_with(cookie, origin=b"https://evil.example"))
    await not_authenticated(socket_with(cookie, origin=b"http://localhost.evil.example"))
    await not_authenticated(socket_with(cookie, origin=None))  # no Origin at all
    await not_authenticated(socket_with(cookie, origin=b"null"))


async def test_a_logged_out_session_authenticates_nobody(cast: Cast) -> None:
    client = await alogin(cast.fengdong_operator)
    cookie = session_cookie(client)
    await database_sync_to_async(client.logout)()
    await not_authenticated(socket_with(cookie))


def _age_session(client: Client, **stamps: int) -> None:
    session = client.session
    for key, value in stamps.items():
        session[key] = value
    session.save()


async def test_a_session_idle_too_long_or_past_its_shift_authenticates_nobody(
    cast: Cast,
) -> None:
    now = int(time.time())
    idle = await alogin(cast.fengdong_operator)
    await database_sync_to_async(_age_session)(
        idle, **{LOGIN_AT: now - 600, SEEN_AT: now - settings.SESSION_IDLE_TIMEOUT_SECONDS - 1}
    )
    await not_authenticated(socket_with(session_cookie(idle)))
    shift_over = await alogin(cast.fengdong_operator)
    await database_sync_to_async(_age_session)(
        shift_over, **{LOGIN_AT: now - settings.SESSION_MAX_AGE_SECONDS - 1, SEEN_AT: now}
    )
    await not_authenticated(socket_with(session_cookie(shift_over)))


async def test_a_session_socket_closes_with_4401_when_the_session_ends(
    cast: Cast, settings: Any
) -> None:
    # given: a session one second from its idle end (the consumer's timer, no test sleep)
    now = int(time.time())
    client = await alogin(cast.fengdong_operator)
    await database_sync_to_async(_age_session)(
        client, **{LOGIN_AT: now, SEEN_AT: now - settings.SESSION_IDLE_TIMEOUT_SECONDS + 1}
    )
    ws = socket_with(session_cookie(client))
    assert (await hello_of(ws))["user_id"] == cast.fengdong_operator.pk
    frame = await ws.receive_json_from(timeout=5)
    closed = await ws.receive_output(timeout=5)
    assert frame["code"] == "token_expired"
    assert closed == {"type": "websocket.close", "code": CloseCode.NOT_AUTHENTICATED}


async def test_a_token_still_wins_over_a_cookie_and_works_from_any_origin(cast: Cast) -> None:
    # the fengxi operator's token with the fengdong operator's cookie: the token decides
    cookie = await cookie_of(cast.fengdong_operator)
    token = token_for(cast.fengxi_operator)
    ws = socket_with(cookie, origin=b"https://app.example", query=f"?access_token={token}")
    assert (await hello_of(ws))["user_id"] == cast.fengxi_operator.pk
    await ws.disconnect()


def test_only_this_sites_origins_are_allowed(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["ems.example.cn", ".xixian.example", "*"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://board.example.org:8443"]
    assert origin_allowed("https://ems.example.cn")
    assert origin_allowed("https://ems.example.cn:8443")
    assert origin_allowed("https://duty.xixian.example")
    assert origin_allowed("https://board.example.org:8443")
    assert not origin_allowed("https://evil.example")  # the "*" does not count here
    assert not origin_allowed("https://ems.example.cn.evil.example")
    assert not origin_allowed("null")
    assert not origin_allowed("ftp://ems.example.cn")
    assert not origin_allowed(None)

"""Admin hardening: password lockout per (username, client address), session expiry,
security headers and a closed CORS policy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import User
from tests.factories.accounts import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
TOKEN = "/api/v1/auth/token/"
ROUTER = "172.30.64.2"
STRANGER = "203.0.113.66"
COMMANDER = "198.51.100.30"


@pytest.fixture
def commander(db: None) -> User:
    return UserFactory(username="cmd-xixian", is_staff=True, is_superuser=True)


def _admin_login(client: Client, password: str, address: str) -> Any:
    return client.post(
        LOGIN,
        {"username": "cmd-xixian", "password": password, "next": "/admin/"},
        REMOTE_ADDR=ROUTER,
        HTTP_X_FORWARDED_FOR=address,
    )


def test_wrong_passwords_lock_the_username_from_that_address_only(
    commander: User, settings: Any
) -> None:
    # given: both people reach us through the router
    settings.TRUSTED_PROXIES = [ROUTER]
    stranger, owner = Client(), Client()
    # when: the stranger guesses LOGIN_FAILURE_LIMIT times, then tries the right password
    guesses = [
        _admin_login(stranger, "wrong-guess", STRANGER) for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    locked = _admin_login(stranger, DEFAULT_PASSWORD, STRANGER)
    # then: the stranger is locked out, with the wait stated
    assert [g.status_code for g in guesses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert guesses[-1].status_code == 429
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert "_auth_user_id" not in stranger.session
    # and the commander, from their own address, logs in
    response = _admin_login(owner, DEFAULT_PASSWORD, COMMANDER)
    assert response.status_code == 302
    assert owner.session["_auth_user_id"] == str(commander.pk)


def test_the_api_login_shares_the_lockout_and_answers_with_the_error_envelope(
    commander: User, settings: Any
) -> None:
    client = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(TOKEN, {"username": "cmd-xixian", "password": "nope"}, REMOTE_ADDR=STRANGER)
    # when
    response = client.post(
        TOKEN, {"username": "cmd-xixian", "password": DEFAULT_PASSWORD}, REMOTE_ADDR=STRANGER
    )
    elsewhere = client.post(
        TOKEN, {"username": "cmd-xixian", "password": DEFAULT_PASSWORD}, REMOTE_ADDR=COMMANDER
    )
    # then
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked"
    assert response.json()["extra"]["retry_after"] == 15 * 60
    assert response["Retry-After"] == str(15 * 60)
    assert elsewhere.status_code == 200
    assert "access" in elsewhere.json()


def test_the_lock_ends_after_the_cool_off(commander: User, settings: Any) -> None:
    start = timezone.now()
    client = Client()
    with time_machine.travel(start, tick=False):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _admin_login(client, "wrong-guess", STRANGER)
        assert _admin_login(client, DEFAULT_PASSWORD, STRANGER).status_code == 429
    with time_machine.travel(start + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)):
        assert _admin_login(client, DEFAULT_PASSWORD, STRANGER).status_code == 302


def test_an_idle_admin_session_ends(commander: User, client: Client, settings: Any) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(commander)
        assert client.get("/admin/").status_code == 200
        clock.shift(timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS - 60))
        assert client.get("/admin/").status_code == 200  # still within the idle time
        # when: nothing happens for the idle timeout
        clock.shift(timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS))
        response = client.get("/admin/")
    # then
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_a_busy_admin_session_still_ends_after_its_lifetime(
    commander: User, client: Client, settings: Any
) -> None:
    start = timezone.now()
    step = timedelta(seconds=settings.SESSION_IDLE_TIMEOUT_SECONDS // 2)
    with time_machine.travel(start, tick=False) as clock:
        client.force_login(commander)
        elapsed = timedelta(0)
        while elapsed + step < timedelta(seconds=settings.SESSION_MAX_AGE_SECONDS):
            assert client.get("/admin/").status_code == 200
            clock.shift(step)
            elapsed += step
        clock.shift(step)
        response = client.get("/admin/")
    assert response.status_code == 302
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_MAX_AGE_SECONDS


def test_pages_and_answers_carry_the_security_headers(client: Client) -> None:
    page = client.get(LOGIN)
    answer = client.get("/api/v1/me/")
    for response in (page, answer):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        csp = response["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        script_src = next(d for d in csp.split("; ") if d.startswith("script-src"))
        assert "unsafe-inline" not in script_src
    assert "unsafe" not in answer["Content-Security-Policy"]


def test_only_the_admin_theme_gets_inline_styles_and_eval_and_never_inline_script(
    client: Client,
) -> None:
    csp = client.get(LOGIN)["Content-Security-Policy"]
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["script-src"] == "'self' 'unsafe-eval'"


def test_the_api_docs_relax_the_policy_for_themselves_only(client: Client) -> None:
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "script-src 'self' 'unsafe-inline'" in docs["Content-Security-Policy"]


def test_cors_is_closed_unless_an_origin_is_listed(client: Client, settings: Any) -> None:
    preflight = {
        "HTTP_ORIGIN": "https://evil.example",
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization,content-type",
    }
    # when: a page on another origin asks
    refused = client.options(TOKEN, **preflight)
    plain = client.get("/api/v1/regions/tree/", HTTP_ORIGIN="https://evil.example")
    # then: no CORS header at all
    for response in (refused, plain):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
        assert "origin" not in response.get("Vary", "").lower()


def test_a_listed_origin_is_answered_without_credentials(settings: Any) -> None:
    # given: what settings/base.py does when CORS_ALLOWED_ORIGINS is set
    settings.CORS_ALLOWED_ORIGINS = ["https://board.example.org"]
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("csp.middleware.CSPMiddleware"), "corsheaders.middleware.CorsMiddleware"
    )
    settings.MIDDLEWARE = middleware
    client = Client()
    # when
    allowed = client.options(
        TOKEN,
        HTTP_ORIGIN="https://board.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    other = client.options(
        TOKEN, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    # then
    assert allowed["Access-Control-Allow-Origin"] == "https://board.example.org"
    assert "Access-Control-Allow-Credentials" not in allowed
    assert "Access-Control-Allow-Origin" not in other

"""The client's address behind our proxies: the rule, and that every caller uses it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from apps.core.checks import trusted_proxies_check
from apps.core.client_address import (
    ClientAddressThrottleMixin,
    client_address,
    client_address_from,
    client_ip,
    parse_address,
    parse_networks,
)
from apps.incidents.throttles import client_ident
from tests.support.servers import ROOT

ROUTER = "10.0.0.2"
BALANCER = "192.0.2.10"
TRUSTED = parse_networks([ROUTER, BALANCER])


def derive(peer: str, forwarded_for: str | None, trusted: Any = TRUSTED) -> str:
    return client_address_from(peer=peer, forwarded_for=forwarded_for, trusted=trusted)


# --- The rule ------------------------------------------------------------------------------


def test_a_peer_that_is_no_trusted_proxy_is_the_client_whatever_its_header_says() -> None:
    assert derive("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert derive("198.51.100.7", f"{ROUTER}, {BALANCER}") == "198.51.100.7"


def test_with_no_trusted_proxies_the_header_is_never_read() -> None:
    assert derive(ROUTER, "203.0.113.1", trusted=()) == ROUTER


def test_behind_the_router_the_address_it_appended_is_the_client() -> None:
    assert derive(ROUTER, "203.0.113.1") == "203.0.113.1"


def test_what_the_client_wrote_left_of_its_own_address_is_ignored() -> None:
    # given: the client forged two entries; the router appended the real peer
    forwarded = "1.1.1.1, 8.8.8.8, 203.0.113.1"
    # then
    assert derive(ROUTER, forwarded) == "203.0.113.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    # client -> balancer (appends the client) -> router (appends the balancer) -> app
    forwarded = f"6.6.6.6, 203.0.113.1, {BALANCER}"
    assert derive(ROUTER, forwarded) == "203.0.113.1"


def test_a_forged_trusted_address_left_of_the_client_does_not_hide_it() -> None:
    assert derive(ROUTER, f"{BALANCER}, 203.0.113.1") == "203.0.113.1"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert derive(ROUTER, BALANCER) == BALANCER


def test_a_missing_or_empty_header_leaves_the_peer() -> None:
    assert derive(ROUTER, None) == ROUTER
    assert derive(ROUTER, "") == ROUTER


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("unknown", ROUTER),  # nothing usable: the trusted hop that handed it over
        ("", ROUTER),
        (" , ", ROUTER),
        ("203.0.113.1,", ROUTER),  # an empty last item was not appended by a proxy
        (f"203.0.113.1, garbage, {BALANCER}", BALANCER),
        ("garbage, 203.0.113.1", "203.0.113.1"),  # never reached: left of the client
        ("300.1.2.3", ROUTER),
        ("203.0.113.1:bad", ROUTER),
        ("[2001:db8::1", ROUTER),
        ("<script>", ROUTER),
    ],
)
def test_garbage_in_the_header_never_becomes_a_bucket_the_sender_names(
    forwarded: str, client: str
) -> None:
    assert derive(ROUTER, forwarded) == client


def test_ipv6_addresses_are_walked_and_normalised() -> None:
    trusted = parse_networks(["fd00::/64", "::1"])
    assert derive("::1", "2001:DB8:0:0::7") == "::1"  # ::1 is not in TRUSTED
    assert derive("::1", "2001:DB8:0:0::7", trusted) == "2001:db8::7"
    assert derive("fd00::5", "2001:db8::7, fd00::9", trusted) == "2001:db8::7"
    assert derive("::1", "[2001:db8::7]:443", trusted) == "2001:db8::7"


def test_ports_and_ipv4_mapped_addresses_are_understood() -> None:
    assert derive(ROUTER, "203.0.113.1:51234") == "203.0.113.1"
    # a dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d
    assert derive(f"::ffff:{ROUTER}", "203.0.113.1") == "203.0.113.1"
    assert derive(ROUTER, f"::ffff:203.0.113.1, ::ffff:{BALANCER}") == "203.0.113.1"
    assert derive("10.0.0.2", "203.0.113.1", parse_networks(["::ffff:10.0.0.0/104"])) == (
        "203.0.113.1"
    )


def test_trusted_networks_are_cidrs() -> None:
    trusted = parse_networks(["172.30.64.0/24"])
    assert derive("172.30.64.2", "203.0.113.1", trusted) == "203.0.113.1"
    assert derive("172.30.65.2", "203.0.113.1", trusted) == "172.30.65.2"


def test_a_peer_that_is_no_address_is_returned_as_given_and_stores_as_none() -> None:
    # given: a Unix-socket peer
    request = RequestFactory().get("/", REMOTE_ADDR="", HTTP_X_FORWARDED_FOR="203.0.113.1")
    # then
    assert client_address(request) == ""
    assert client_ip(request) is None
    assert derive("unix:/run/app.sock", "203.0.113.1") == "unix:/run/app.sock"


def test_parse_address_reads_the_forms_proxies_write() -> None:
    assert str(parse_address(" 203.0.113.1 ")) == "203.0.113.1"
    assert str(parse_address("[::1]:80")) == "::1"
    assert parse_address("unknown") is None
    assert parse_address("") is None
    assert parse_address("203.0.113.1:") is None
    assert parse_address("[::1]:") is None
    assert parse_address("[::1]x") is None


def test_a_typo_in_the_trusted_proxies_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        parse_networks(["10.0.0.300"])


def test_the_settings_refuse_to_load_with_a_bad_trusted_proxy() -> None:
    # when
    env = {**os.environ, "TRUSTED_PROXIES": "172.30.64.2, router"}
    result = subprocess.run(
        [sys.executable, "-c", "import xixian_ems.settings.base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then
    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES" in result.stderr


# --- Every caller uses it ---------------------------------------------------------------


def test_django_drf_and_raw_asgi_requests_all_get_the_same_answer(settings: Any) -> None:
    # given
    settings.TRUSTED_PROXIES = [ROUTER]
    django_request = RequestFactory().get(
        "/", REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.1"
    )
    asgi_request = ASGIRequest(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/reports/",
            "query_string": b"",
            "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.1")],
            "client": (ROUTER, 40000),
            "server": ("127.0.0.1", 8000),
        },
        io.BytesIO(b""),
    )
    # then: the view, the DRF throttles and the fast intake path see one client
    assert client_ident(django_request) == "203.0.113.1"
    assert client_ident(Request(django_request)) == "203.0.113.1"
    assert client_ident(asgi_request) == "203.0.113.1"


def test_the_setting_is_read_per_request(settings: Any) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=ROUTER, HTTP_X_FORWARDED_FOR="203.0.113.1")
    settings.TRUSTED_PROXIES = []
    assert client_address(request) == ROUTER
    settings.TRUSTED_PROXIES = [ROUTER]
    assert client_address(request) == "203.0.113.1"


def _views(resolver: URLResolver) -> list[Any]:
    found: list[Any] = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            found += _views(pattern)
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
            if view is not None:
                found.append(view)
    return found


def test_every_throttle_of_every_route_counts_the_client_behind_the_proxies() -> None:
    # given: every DRF view the URL conf serves
    views = _views(get_resolver())
    throttles = {
        throttle
        for view in views
        for throttle in getattr(view, "throttle_classes", api_settings.DEFAULT_THROTTLE_CLASSES)
    }
    # then: none falls back to DRF's own get_ident (NUM_PROXIES)
    assert throttles, "the scan found no throttles: it is broken"
    assert {
        t.__name__ for t in throttles if t.get_ident is not ClientAddressThrottleMixin.get_ident
    } == set()


@pytest.mark.django_db
def test_otp_codes_are_limited_per_client_behind_the_router_not_per_router(
    api_client: APIClient, settings: Any
) -> None:
    # given: one code per address per hour, and clients arriving through the router
    settings.TRUSTED_PROXIES = [ROUTER]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "otp_request_ip": "1/hour",
        },
    }

    def ask(phone: str, **meta: str) -> int:
        url = "/api/v1/auth/otp/request/"
        return api_client.post(url, {"phone": phone}, **meta).status_code

    via_router = {"REMOTE_ADDR": ROUTER}
    # when / then
    assert ask("13800138001", **via_router, HTTP_X_FORWARDED_FOR="203.0.113.1") == 202
    assert ask("13800138002", **via_router, HTTP_X_FORWARDED_FOR="203.0.113.1") == 429
    assert ask("13800138003", **via_router, HTTP_X_FORWARDED_FOR="203.0.113.2") == 202
    # a forged header sent past the router counts its sender, not the name it gives
    direct = {"REMOTE_ADDR": "198.51.100.7"}
    assert ask("13800138004", **direct, HTTP_X_FORWARDED_FOR="203.0.113.3") == 202
    assert ask("13800138005", **direct, HTTP_X_FORWARDED_FOR="203.0.113.4") == 429


# --- Deploy check ---------------------------------------------------------------------------


def test_the_deploy_check_warns_when_no_proxy_is_trusted(settings: Any) -> None:
    settings.TRUSTED_PROXIES = []
    assert [m.id for m in trusted_proxies_check()] == ["core.W001"]
    settings.TRUSTED_PROXIES = ["172.30.64.2"]
    assert trusted_proxies_check() == []

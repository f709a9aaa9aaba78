"""The production topology end to end: the real ``docker/nginx.conf`` (nginx, upstream
addresses and the listening port substituted) in front of real gunicorn (``web``) and
uvicorn (``realtime``) processes. Citizens are told apart by their own address, whichever
server answers them, and a forged ``X-Forwarded-For`` changes no one's budget.

Clients connect from distinct loopback addresses (all of 127.0.0.0/8 is local on Linux),
so nginx sees each as its own ``$remote_addr``; the servers trust only 127.0.0.1, the
address nginx connects from. The addresses are random per test: neither a rerun within a
rate window nor another test of the module finds hits in its buckets.

One topology serves the module (three processes cost seconds to start): its data is
committed before the servers start (so no server caches an index of other rows) and the
database is flushed after the module, as a transactional test does after itself. The
tests themselves run in a rolled-back transaction (``django_db``) and see what the servers
committed.
"""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from apps.incidents.models import Report
from apps.regions.services import regions_load_fixture
from tests.factories.incidents import CategoryFactory
from tests.support import servers
from tests.support.ws_client import event_socket

ROOT = servers.ROOT
SANQIAO = (34.276, 108.85)
PER_ADDRESS = 2  # reports and SOS presses per client address per minute, in these tests


@dataclass(frozen=True)
class Topology:
    router: str  # nginx, the only address citizens reach in production
    web: str  # gunicorn
    realtime: str  # uvicorn
    realtime_process: Any  # (base, process) of uvicorn, for its log


@pytest.fixture(scope="module")
def topology(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    servers.nginx_binary()  # fails (CI) or skips before starting anything
    env = {
        "REDIS_URL": settings.TEST_REDIS_URL,
        "TRUSTED_PROXIES": "127.0.0.1",  # nginx's address as the servers see it
        "THROTTLE_REPORT_IP": f"{PER_ADDRESS}/minute",
        "THROTTLE_SOS_IP": f"{PER_ADDRESS}/minute",
        # generous where the test does not look: every request has its own device
        "THROTTLE_REPORT_DEVICE": "1000/minute",
        "THROTTLE_REPORT_PHONE": "1000/minute",
        "THROTTLE_SOS_DEVICE": "1000/minute",
    }
    with ExitStack() as stack:
        stack.callback(_flush, django_db_blocker)
        with django_db_blocker.unblock():
            regions_load_fixture()
            CategoryFactory(code="A01")
            CategoryFactory(code="O99")  # SOS
        web = stack.enter_context(servers.wsgi_process(env, wait=False))
        realtime = stack.enter_context(servers.asgi_process(env, wait=False))
        servers.wait_healthy(web)
        servers.wait_healthy(realtime)
        workdir = tmp_path_factory.mktemp("router")
        router = stack.enter_context(
            servers.router_process(workdir, web=web[0], realtime=realtime[0])
        )
        yield Topology(
            router=router[0], web=web[0], realtime=realtime[0], realtime_process=realtime
        )


def _flush(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def stored(among: list[str]) -> set[str]:
    """Which of ``among`` are stored as a report's sender (the servers committed them, so
    the test's own transaction sees them)."""
    rows = Report.objects.filter(client_ip__in=among)
    return set(rows.values_list("client_ip", flat=True))


def citizens(count: int = 2) -> list[str]:
    """Distinct loopback addresses other than 127.0.0.1 (which the servers trust)."""
    found: set[str] = set()
    while len(found) < count:
        a, b, c = (random.randint(1, 254) for _ in range(3))
        found.add(f"127.{a}.{b}.{c}")
    return sorted(found)


def client(base: str, source: str) -> httpx.Client:
    """An HTTP client whose connections come from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base, transport=transport, trust_env=False, timeout=20)


def post(http: httpx.Client, path: str, body: dict[str, Any], forged: str | None) -> int:
    headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Device-Id": uuid.uuid4().hex}
    if forged is not None:
        headers["X-Forwarded-For"] = forged
    response = http.post(path, json=body, headers=headers)
    assert response.status_code in (201, 429), response.text
    return response.status_code


def sos(http: httpx.Client, forged: str | None = None) -> int:
    """An SOS press: routed to web (gunicorn)."""
    return post(http, "/api/v1/reports/sos/", {"lat": SANQIAO[0], "lng": SANQIAO[1]}, forged)


def report(http: httpx.Client, forged: str | None = None) -> int:
    """A citizen report: routed to realtime (uvicorn), taken by the fast intake path."""
    body = {"category": "A01", "lat": SANQIAO[0], "lng": SANQIAO[1], "text": "积水"}
    return post(http, "/api/v1/reports/", body, forged)


@pytest.mark.parametrize("send", [sos, report], ids=["sos-on-gunicorn", "report-on-uvicorn"])
@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_two_citizens_behind_the_router_have_their_own_budgets(
    topology: Topology, send: Any
) -> None:
    # given: two citizens on different addresses, both reaching the router
    alice, bob = citizens()
    with client(topology.router, alice) as by_alice, client(topology.router, bob) as by_bob:
        # when: Alice uses up her budget
        assert [send(by_alice) for _ in range(PER_ADDRESS)] == [201] * PER_ADDRESS
        assert send(by_alice) == 429
        # then: Bob's is whole (one city-wide bucket would refuse him now)
        assert [send(by_bob) for _ in range(PER_ADDRESS)] == [201] * PER_ADDRESS
        assert send(by_bob) == 429
    # and each report records its sender
    assert stored([alice, bob, "203.0.113.9"]) == {alice, bob}


@pytest.mark.parametrize("send", [sos, report], ids=["sos-on-gunicorn", "report-on-uvicorn"])
@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_a_forged_forwarded_for_sent_through_the_router_changes_no_budget(
    topology: Topology, send: Any
) -> None:
    # given: Alice has used up her budget
    alice, bob = citizens()
    with client(topology.router, alice) as by_alice, client(topology.router, bob) as by_bob:
        assert [send(by_alice) for _ in range(PER_ADDRESS)] == [201] * PER_ADDRESS
        # when / then: naming someone else does not get her a fresh bucket
        assert send(by_alice, forged="203.0.113.9") == 429
        assert send(by_alice, forged=bob) == 429
        assert send(by_alice, forged=f"{bob}, 127.0.0.1") == 429
        # and naming Alice does not spend hers for Bob
        assert [send(by_bob, forged=alice) for _ in range(PER_ADDRESS)] == [201] * PER_ADDRESS
    assert stored([alice, bob, "203.0.113.9"]) == {alice, bob}


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_the_fast_intake_path_takes_the_reports_that_come_through_the_router(
    topology: Topology,
) -> None:
    # when
    (alice,) = citizens(1)
    with client(topology.router, alice) as by_alice:
        assert report(by_alice, forged="203.0.113.9") == 201
    # then: the fast path's writer wrote it (its line in the server log), with the real sender
    assert "reports submitted via fast path: 1" in servers.server_log(topology.realtime_process)
    assert stored([alice]) == {alice}


@pytest.mark.parametrize(
    ("server", "send"),
    [("web", sos), ("realtime", report)],
    ids=["sos-on-gunicorn", "report-on-uvicorn"],
)
@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_a_forged_forwarded_for_sent_past_the_router_is_ignored(
    topology: Topology, server: str, send: Any
) -> None:
    # given: a client that reaches a server directly, from an address nobody trusts
    (mallory,) = citizens(1)
    with client(getattr(topology, server), mallory) as direct:
        # when: every request claims to be forwarded for someone new
        answers = [send(direct, forged=f"203.0.113.{n}") for n in range(1, PER_ADDRESS + 2)]
    # then: all of them count against the sender, and the sender is what is stored
    assert answers == [201] * PER_ADDRESS + [429]
    forged = [f"203.0.113.{n}" for n in range(1, PER_ADDRESS + 2)]
    assert stored([mallory, *forged]) == {mallory}


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_a_socket_opens_through_the_router(topology: Topology) -> None:
    with event_socket(topology.router) as socket:
        assert socket.ask(type="ping", ref=1) == {"type": "pong", "ref": 1}


# --- The files themselves -------------------------------------------------------------------


@pytest.mark.integration
def test_the_router_config_passes_nginx_t(tmp_path: Path) -> None:
    # given: the real file, only its upstream hosts (compose service names) made local
    site = tmp_path / "router.conf"
    site.write_text(
        servers.router_config(web="127.0.0.1:1", realtime="127.0.0.1:2", listen="8000"),
        encoding="utf-8",
    )
    main = servers.router_main_config(tmp_path, site)
    # when
    result = subprocess.run(
        servers.nginx_command(tmp_path, main, "-t"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # then
    assert result.returncode == 0, result.stdout + result.stderr


def _blocks(text: str, keyword: str) -> list[str]:
    """The bodies of ``keyword ... { ... }`` blocks (no nested braces in ours)."""
    return re.findall(rf"^\s*{keyword}\b[^{{]*\{{(.*?)^\s*\}}", text, re.M | re.S)


FORWARDING = (
    "proxy_set_header Host $host;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_set_header X-Real-IP $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;",
)


def test_every_route_of_the_router_forwards_the_client_address() -> None:
    # nginx inherits proxy_set_header only into a block that sets none of its own
    text = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    server = text[text.index("server {") :]
    head = server[: server.index("location")]
    locations = [body for body in _blocks(server, "location") if "proxy_pass" in body]
    assert len(locations) == 3  # /ws/, the report intake, everything else
    assert all(line in head for line in FORWARDING)
    for body in locations:
        if "proxy_set_header" in body:
            assert all(line in body for line in FORWARDING), body


def test_compose_trusts_the_router_and_nothing_else_and_no_server_rewrites_the_peer() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text(encoding="utf-8"))
    router = compose["services"]["router"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    trusted = compose["x-app"]["environment"]["TRUSTED_PROXIES"]
    # one value for web and realtime (both take x-app's environment), the router's address
    assert trusted == f"${{TRUSTED_PROXIES:-{router}}}"
    services = compose["services"]
    assert services["web"]["environment"] == services["realtime"]["environment"]
    assert ipaddress.ip_address(router) in ipaddress.ip_network(subnet)
    # uvicorn and gunicorn read FORWARDED_ALLOW_IPS: a second list that could disagree
    for path in (ROOT / "docker" / "compose.yml", ROOT / ".env.example"):
        assert "FORWARDED_ALLOW_IPS" not in path.read_text(encoding="utf-8"), path
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    realtime = entrypoint[entrypoint.index("  realtime)") :]
    assert "--no-proxy-headers" in realtime[: realtime.index(";;")]
    assert "--proxy-headers" not in entrypoint.replace("--no-proxy-headers", "")


@pytest.mark.parametrize(
    ("required", "outcome"),
    [(True, pytest.fail.Exception), (False, pytest.skip.Exception)],
    ids=["ci-fails", "bare-machine-skips"],
)
def test_a_missing_nginx_fails_under_require_services_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, settings: Any, required: bool, outcome: type[Exception]
) -> None:
    # given: no nginx anywhere
    monkeypatch.setattr(servers.shutil, "which", lambda _name: None)
    monkeypatch.setattr(servers.os, "access", lambda _path, _mode: False)
    settings.XEMS_REQUIRE_SERVICES = required
    # then
    with pytest.raises(outcome, match="nginx is not installed"):
        servers.nginx_binary()

"""Citizens' photos in the production topology: the real ``docker/nginx.conf`` (nginx) in
front of real gunicorn (``web``) and uvicorn (``realtime``) processes, the servers told
that the router serves files (``DJANGO_MEDIA_ACCEL_REDIRECT``) and all three sharing one
media directory, as the ``media`` volume of ``docker/compose.yml``.

A photo leaves only through ``GET /api/v1/attachments/{id}/``: web checks the request and
answers with ``X-Accel-Redirect`` (no bytes); nginx then sends the file from its
``internal`` location. ``/media/...`` is served by nobody, and the internal location is
not reachable from outside. Every photo URL an API answer hands out is refused to an
anonymous caller and to an operator of another new town.

One topology serves the module; its data is committed before the servers start and the
database is flushed after the module (as ``tests/core/test_router.py`` does).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command

from apps.incidents.models import Attachment
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture
from tests.factories.accounts import DEFAULT_PASSWORD, StaffUserFactory
from tests.factories.incidents import CategoryFactory, photo_bytes
from tests.incidents.url_walk import attachment_urls_in
from tests.support import servers

SANQIAO = (34.276, 108.85)  # 三桥街道, 沣东新城
PREFIX = "/protected-media/"


@dataclass(frozen=True)
class Topology:
    router: str
    web: str
    media_root: Path


@pytest.fixture(scope="module")
def topology(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    servers.nginx_binary()  # fails (CI) or skips before starting anything
    media_root = tmp_path_factory.mktemp("media")
    env = {
        "REDIS_URL": settings.TEST_REDIS_URL,
        "TRUSTED_PROXIES": "127.0.0.1",
        "DJANGO_MEDIA_ROOT": str(media_root),
        "DJANGO_MEDIA_ACCEL_REDIRECT": PREFIX,
    }
    with ExitStack() as stack:
        stack.callback(_flush, django_db_blocker)
        with django_db_blocker.unblock():
            regions_load_fixture()
            CategoryFactory(code="A01")
            fengdong = Region.objects.get(code="fengdong")
            fengxi = Region.objects.get(code="fengxi")
            for user in (
                StaffUserFactory(username="op-media-fd", region=fengdong),
                StaffUserFactory(username="op-media-fx", region=fengxi),
            ):
                # the servers' hashers (the tests' own MD5 is not among them)
                user.password = PBKDF2PasswordHasher().encode(
                    DEFAULT_PASSWORD, "xemsmediasalt", iterations=1000
                )
                user.save(update_fields=["password"])
        web = stack.enter_context(servers.wsgi_process(env, wait=False))
        realtime = stack.enter_context(servers.asgi_process(env, wait=False))
        servers.wait_healthy(web, timeout=90)  # a loaded CI machine starts them slowly
        servers.wait_healthy(realtime, timeout=90)
        router = stack.enter_context(
            servers.router_process(
                tmp_path_factory.mktemp("router"),
                web=web[0],
                realtime=realtime[0],
                media_root=str(media_root),
            )
        )
        yield Topology(router=router[0], web=web[0], media_root=media_root)


def _flush(django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


def _client(base: str, access: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {access}"} if access else {}
    return httpx.Client(base_url=base, headers=headers, trust_env=False, timeout=20)


def _login(base: str, username: str) -> str:
    with _client(base) as http:
        response = http.post(
            "/api/v1/auth/token/", json={"username": username, "password": DEFAULT_PASSWORD}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])


def _path(url: str) -> str:
    """The path and query of a URL the API built (its host is the router's Host header)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@dataclass(frozen=True)
class Reported:
    report_id: int
    token: str
    attachment: Attachment


def _report_with_photo(topology: Topology) -> Reported:
    """An anonymous citizen's report with one photo, sent through the router."""
    with _client(topology.router) as http:
        response = http.post(
            "/api/v1/reports/",
            data={"category": "A01", "lat": str(SANQIAO[0]), "lng": str(SANQIAO[1])},
            files={"photos": ("scene.jpg", photo_bytes(gps=SANQIAO), "image/jpeg")},
            headers={"Idempotency-Key": str(uuid.uuid4()), "X-Device-Id": uuid.uuid4().hex},
        )
    assert response.status_code == 201, response.text
    body = response.json()
    attachment = Attachment.objects.get(report_id=body["id"])
    return Reported(report_id=body["id"], token=body["token"], attachment=attachment)


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_an_in_scope_request_gets_the_bytes_from_the_router_after_the_check(
    topology: Topology,
) -> None:
    # given: a photo on disk, and the operator of its new town
    reported = _report_with_photo(topology)
    on_disk = (topology.media_root / reported.attachment.file.name).read_bytes()
    url = f"/api/v1/attachments/{reported.attachment.pk}/"
    operator = _login(topology.router, "op-media-fd")

    # when: the operator fetches it through the router
    with _client(topology.router, operator) as http:
        response = http.get(url)

    # then: the bytes of the stored (sanitised) file, with the headers that keep a
    # browser from treating them as a page
    assert response.status_code == 200, response.text
    assert response.content == on_disk
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    assert "x-accel-redirect" not in response.headers  # nginx consumed it

    # and web itself sent no bytes, only the redirect to the internal location
    with _client(topology.web, operator) as direct:
        answer = direct.get(url)
    assert answer.status_code == 200
    assert answer.headers["x-accel-redirect"] == PREFIX + reported.attachment.file.name
    assert answer.content == b""

    # and the thumbnail takes the same way
    with _client(topology.router, operator) as http:
        thumb = http.get(f"{url}thumbnail/")
    assert thumb.status_code == 200
    assert thumb.content == (topology.media_root / reported.attachment.thumbnail.name).read_bytes()


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_the_stored_file_is_not_reachable_by_its_path(topology: Topology) -> None:
    # given: a photo on disk
    reported = _report_with_photo(topology)
    name = reported.attachment.file.name
    assert (topology.media_root / name).is_file()
    operator = _login(topology.router, "op-media-fd")

    # when / then: neither the media path nor the internal location answers, through
    # the router or on web directly, logged in or not
    for base, access in (
        (topology.router, None),
        (topology.router, operator),
        (topology.web, None),
        (topology.web, operator),
    ):
        with _client(base, access) as http:
            for path in (f"/media/{name}", f"{PREFIX}{name}", f"/media/../media/{name}"):
                response = http.get(path)
                assert response.status_code == 404, (base, path, response.status_code)
                assert response.content != (topology.media_root / name).read_bytes()


@pytest.mark.services
@pytest.mark.integration
@pytest.mark.django_db
def test_every_photo_url_the_api_hands_out_is_refused_to_strangers_through_the_router(
    topology: Topology,
) -> None:
    # given: a report with a photo, accepted into an incident by the town's operator
    reported = _report_with_photo(topology)
    operator = _login(topology.router, "op-media-fd")
    outsider = _login(topology.router, "op-media-fx")
    with _client(topology.router, operator) as http:
        accepted = http.post(
            f"/api/v1/reports/{reported.report_id}/accept/",
            json={},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert accepted.status_code == 200, accepted.text
        incident_id = accepted.json()["incident"]["id"]
        answers = [
            http.get(f"/api/v1/reports/{reported.report_id}/").json(),
            http.get(f"/api/v1/incidents/{incident_id}/").json(),
        ]
    with _client(topology.router) as anonymous_http:
        answers.append(anonymous_http.get(f"/api/v1/reports/track/{reported.token}/").json())

    # when: every URL those answers carry is fetched
    urls = sorted({_path(url) for answer in answers for url in attachment_urls_in(answer)})
    assert len(urls) >= 4, urls  # photo and thumbnail, staff form and the token form

    # then: the operator gets each one, an anonymous caller and another town's operator
    # none (the token form opens the photo to its holder only: without the token it is
    # refused too)
    with (
        _client(topology.router, operator) as own,
        _client(topology.router) as anonymous,
        _client(topology.router, outsider) as stranger,
    ):
        for url in urls:
            assert own.get(url).status_code == 200, url
            for http in (anonymous, stranger):
                stripped = url.split("?", 1)[0]
                assert http.get(stripped).status_code == 404, (url, http.headers)
            if "?token=" in url:
                assert anonymous.get(url).status_code == 200  # the token holder's link

"""The command-centre admin tests: a street with an incident, teams, and the roles.

Roles are granted through the services (``StaffUserFactory`` → ``membership_grant``), so
each person has exactly the admin permissions of their role's group, as in production.
SLA policies are the seeded ones, so the actions start and stop real clocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connections
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.realtime.models import Event
from apps.sla.policies import policies_invalidate
from apps.sla.services.seed import policies_load_fixture
from tests.dispatch.task_support import Scene
from tests.factories.accounts import StaffUserFactory
from tests.support import browser as chrome
from tests.support import servers

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture(autouse=True)
def _policies(db: Any) -> Iterator[None]:
    policies_invalidate()
    policies_load_fixture()
    yield
    policies_invalidate()


@pytest.fixture
def scene(db: Any) -> Scene:
    """三桥街道 (沣东): an accepted incident, two available teams with on-duty members, a
    沣东 operator and a 沣西 operator (out of scope)."""
    return Scene()


@pytest.fixture
def liaison(scene: Scene) -> User:
    return StaffUserFactory(region=scene.tree.fengdong, region__role=Role.DEPARTMENT_LIAISON)


@pytest.fixture
def commander(scene: Scene) -> User:
    return StaffUserFactory(region=scene.tree.root, region__role=Role.COMMANDER)


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def act_url(incident: Any, action: str) -> str:
    return reverse("admin:incidents_incident_act", args=[incident.pk, action])


def task_url(task: Any, action: str) -> str:
    return reverse("admin:incidents_incident_task", args=[task.incident_id, task.pk, action])


def page_url(incident: Any) -> str:
    return reverse("admin:incidents_incident_change", args=[incident.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def region_events(scene: Scene) -> int:
    return Event.objects.filter(stream=f"region.{scene.street.code}").count()


# --- Real-browser tests (test_browser_*.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chrome.chromium_executable()  # fail (CI) or skip before collecting anything
    return chrome.collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def browser(static_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are
    # plain blocking ones between browser steps (Django refuses them by default).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chrome.chromium() as launched:
        try:
            yield launched
        finally:
            # The ORM's connection opened while Playwright's loop ran is its own (Django
            # keeps connections per async context): close it here, or the test database
            # cannot be dropped at the end of the session.
            connections.close_all()


@pytest.fixture
def server(e2e_env: dict[str, str], e2e_worker: Any, static_root: Path) -> Iterator[str]:
    with servers.asgi_server({**e2e_env, "DJANGO_STATIC_ROOT": str(static_root)}) as base:
        yield base

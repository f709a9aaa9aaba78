"""The command-centre admin tests: a street with an incident, teams, and the roles.

Roles are granted through the services (``StaffUserFactory`` → ``membership_grant``), so
each person has exactly the admin permissions of their role's group, as in production.
SLA policies are the seeded ones, so the actions start and stop real clocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.realtime.models import Event
from apps.sla.policies import policies_invalidate
from apps.sla.services.seed import policies_load_fixture
from tests.dispatch.task_support import Scene
from tests.factories.accounts import StaffUserFactory

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

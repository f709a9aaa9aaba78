"""The command-centre admin of tasks, the room and command posts: read-only, scoped."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils.text import capfirst

from apps.accounts.models import User
from apps.dispatch.models import DispatchTask, TaskStatus
from apps.dispatch.services import command_post as post_services
from apps.dispatch.services.room import room_post
from tests.dispatch.task_support import Scene
from tests.factories.accounts import StaffUserFactory, UserFactory
from tests.factories.incidents import IncidentFactory

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def scene() -> Scene:
    return Scene()


def staff_with_task_permissions(user: User) -> User:
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="dispatch",
            codename__in=[
                "view_dispatchtask",
                "change_dispatchtask",
                "view_roommessage",
                "view_commandpost",
            ],
        )
    )
    return User.objects.get(pk=user.pk)  # drop the cached permissions


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_task_changelist_renders_in_chinese_with_its_times(scene: Scene) -> None:
    scene.task("on_scene")
    superuser = UserFactory(is_superuser=True, is_staff=True)

    response = admin_client(superuser).get(reverse("admin:dispatch_dispatchtask_changelist"), **ZH)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert scene.team.name in html
    assert "过滤器" in html


def test_the_task_page_shows_every_timestamp_read_only_with_its_events(scene: Scene) -> None:
    task = scene.task("completed")
    superuser = UserFactory(is_superuser=True, is_staff=True)

    response = admin_client(superuser).get(
        reverse("admin:dispatch_dispatchtask_change", args=[task.pk])
    )

    assert response.status_code == 200
    html = response.content.decode()
    for field in ("dispatched_at", "accepted_at", "on_scene_at", "completed_at", "verified_at"):
        label = capfirst(DispatchTask._meta.get_field(field).verbose_name)
        assert str(label) in html
    assert 'name="status"' not in html  # read-only: no input to type a status in


def test_tasks_are_region_scoped(scene: Scene) -> None:
    mine = scene.task("accepted")
    elsewhere = IncidentFactory(region=scene.tree.diaotai, status="accepted")
    foreign = scene.task("accepted", team=scene.other_team)
    foreign.incident = elsewhere
    foreign.save(update_fields=["incident"])
    fengdong = staff_with_task_permissions(StaffUserFactory(region=scene.tree.fengdong))

    client = admin_client(fengdong)
    listed = client.get(reverse("admin:dispatch_dispatchtask_changelist"))
    other = client.get(reverse("admin:dispatch_dispatchtask_change", args=[foreign.pk]))

    assert listed.status_code == 200
    assert list(listed.context["cl"].queryset) == [mine]
    assert other.status_code == 302  # "does not exist" → back to the index


def test_no_task_is_added_or_deleted_in_the_admin(scene: Scene) -> None:
    task = scene.task("accepted")
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client = admin_client(superuser)
    assert client.get(reverse("admin:dispatch_dispatchtask_add")).status_code == 403
    assert (
        client.get(reverse("admin:dispatch_dispatchtask_delete", args=[task.pk])).status_code == 403
    )


def test_the_verify_action_goes_through_the_service(scene: Scene) -> None:
    done = scene.task("completed")
    live = scene.task("accepted", team=scene.other_team)
    operator = staff_with_task_permissions(scene.operator)

    response = admin_client(operator).post(
        reverse("admin:dispatch_dispatchtask_changelist"),
        {"action": "verify", "_selected_action": [done.pk, live.pk], "reason": ""},
        follow=True,
    )

    done.refresh_from_db()
    live.refresh_from_db()
    assert done.status == TaskStatus.VERIFIED
    assert done.events.filter(kind="verified", actor=operator).exists()
    assert live.status == TaskStatus.ACCEPTED
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("illegal_task_transition" in text for text in texts)


def test_room_messages_and_command_posts_are_listed(scene: Scene) -> None:
    scene.task("on_scene")
    room_post(incident_id=scene.incident.pk, by=scene.member, text="现场情况")
    post_services.command_post_establish(
        incident_id=scene.incident.pk,
        by=scene.operator,
        commander_id=scene.operator.pk,
        lat=34.27,
        lng=108.85,
        address="三桥立交下",
    )
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client = admin_client(superuser)

    messages_page = client.get(reverse("admin:dispatch_roommessage_changelist"))
    posts_page = client.get(reverse("admin:dispatch_commandpost_changelist"))

    assert "现场情况" in messages_page.content.decode()
    assert "三桥立交下" in posts_page.content.decode()

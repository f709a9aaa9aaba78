"""The outbox in the command-centre admin: read-only and scoped to the viewer's regions."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.roles import ensure_role_groups
from apps.notifications.models import Kind, NotificationPreference, Status
from tests.factories.accounts import MembershipFactory, StaffUserFactory, UserFactory
from tests.factories.incidents import TwoTowns
from tests.factories.notifications import NotificationFactory, NotificationPreferenceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree() -> TwoTowns:
    # The role groups as the next migrate leaves them: on a fresh database accounts'
    # post_migrate runs before this app's permissions exist.
    ensure_role_groups()
    return TwoTowns()


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def responder_in(region: object) -> User:
    return MembershipFactory(region=region, role=Role.RESPONDER).user


def test_an_operator_sees_only_the_outbox_of_people_and_regions_in_scope(tree: TwoTowns) -> None:
    # given
    operator = StaffUserFactory(region=tree.fengdong)
    mine = NotificationFactory(user=responder_in(tree.sanqiao), title="沣东的推送")
    theirs = NotificationFactory(user=responder_in(tree.diaotai), title="沣西的推送")
    topic_mine = NotificationFactory(
        user=None, topic="region-fengdong", region=tree.fengdong, title="沣东主题"
    )
    topic_theirs = NotificationFactory(
        user=None, topic="region-fengxi", region=tree.fengxi, title="沣西主题"
    )
    client = admin_client(operator)

    # when
    listing = client.get(reverse("admin:notifications_notification_changelist"))

    # then
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "沣东的推送" in html
    assert "沣东主题" in html
    assert "沣西的推送" not in html
    assert "沣西主题" not in html
    assert (
        client.get(reverse("admin:notifications_notification_change", args=[mine.pk])).status_code
        == 200
    )
    for hidden in (theirs, topic_theirs):
        response = client.get(reverse("admin:notifications_notification_change", args=[hidden.pk]))
        assert response.status_code == 302  # "does not exist": back to the index
    assert topic_mine.pk != topic_theirs.pk


def test_the_outbox_is_read_only_even_for_a_superuser() -> None:
    row = NotificationFactory(kind=Kind.TASK, status=Status.FAILED, last_error="Unregistered")
    client = admin_client(UserFactory(is_superuser=True, is_staff=True))

    page = client.get(reverse("admin:notifications_notification_change", args=[row.pk]))
    posted = client.post(
        reverse("admin:notifications_notification_change", args=[row.pk]), {"status": "sent"}
    )

    assert page.status_code == 200
    assert "Unregistered" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert posted.status_code == 403
    row.refresh_from_db()
    assert row.status == Status.FAILED
    assert client.get(reverse("admin:notifications_notification_add")).status_code == 403


def test_the_changelist_filters_by_status_and_kind() -> None:
    NotificationFactory(kind=Kind.TASK, status=Status.FAILED, title="失败的任务推送")
    NotificationFactory(kind=Kind.INFO, status=Status.SENT, title="已发送的通知")
    client = admin_client(UserFactory(is_superuser=True, is_staff=True))

    response = client.get(
        reverse("admin:notifications_notification_changelist"),
        {"status__exact": "failed", "kind__exact": "task"},
    )

    html = response.content.decode()
    assert "失败的任务推送" in html
    assert "已发送的通知" not in html


def test_preferences_are_scoped_too(tree: TwoTowns) -> None:
    operator = StaffUserFactory(region=tree.fengdong)
    mine = NotificationPreferenceFactory(user=responder_in(tree.sanqiao))
    theirs = NotificationPreferenceFactory(user=responder_in(tree.diaotai))
    client = admin_client(operator)

    listing = client.get(reverse("admin:notifications_notificationpreference_changelist"))

    assert listing.status_code == 200
    html = listing.content.decode()
    assert str(mine.user) in html
    assert str(theirs.user) not in html
    assert NotificationPreference.objects.count() == 2

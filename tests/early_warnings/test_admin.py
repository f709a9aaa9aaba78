"""The plain admin: warnings read-only and scoped; the roster edited through the services."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.roles import ensure_role_groups
from apps.early_warnings.models import ResponsiblePerson
from tests.early_warnings.conftest import Cast
from tests.factories.accounts import CitizenFactory
from tests.factories.early_warnings import published

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _groups() -> None:
    ensure_role_groups()


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def test_warnings_are_listed_in_scope_only_and_never_editable(cast: Cast) -> None:
    version = published(
        by=cast.town_operator,
        approver=cast.town_operator2,
        targets=[cast.sanqiao.pk],
        title="三桥暴雨",
    )
    mine = admin_client(cast.town_operator).get(
        reverse("admin:early_warnings_warningversion_changelist")
    )
    assert mine.status_code == 200
    assert "三桥暴雨" in mine.content.decode()
    theirs = admin_client(cast.outsider).get(
        reverse("admin:early_warnings_warningversion_changelist")
    )
    assert "三桥暴雨" not in theirs.content.decode()
    page = admin_client(cast.outsider).get(
        reverse("admin:early_warnings_warningversion_change", args=[version.pk])
    )
    assert page.status_code == 302  # out of scope: like a deleted object
    post = admin_client(cast.town_operator).post(
        reverse("admin:early_warnings_warningversion_change", args=[version.pk]), {"title": "x"}
    )
    assert post.status_code == 403


def test_the_roster_is_kept_through_the_services_and_scoped(cast: Cast) -> None:
    person = CitizenFactory()
    client = admin_client(cast.town_operator)
    added = client.post(
        reverse("admin:early_warnings_responsibleperson_add"),
        {
            "region": cast.sanqiao.pk,
            "user": person.pk,
            "role": "grid_worker",
            "order": 2,
            "is_active": "on",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    row = ResponsiblePerson.objects.get(user=person)
    assert (row.region, row.role, row.order, row.is_active) == (
        cast.sanqiao,
        "grid_worker",
        2,
        True,
    )
    # the 沣西 operator cannot see it, nor take it off the roster with the action
    listing = admin_client(cast.outsider).get(
        reverse("admin:early_warnings_responsibleperson_changelist")
    )
    assert str(person) not in listing.content.decode()
    admin_client(cast.outsider).post(
        reverse("admin:early_warnings_responsibleperson_changelist"),
        {"action": "remove_selected", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert row.is_active
    # the 沣东 operator takes it off (the row stays, inactive)
    client.post(
        reverse("admin:early_warnings_responsibleperson_changelist"),
        {"action": "remove_selected", "_selected_action": [row.pk]},
    )
    row.refresh_from_db()
    assert not row.is_active


def test_the_approval_rules_are_readable_by_operators_and_edited_by_administrators(
    cast: Cast,
) -> None:
    page = admin_client(cast.town_operator).get(
        reverse("admin:early_warnings_approvalrule_changelist")
    )
    assert page.status_code == 200
    assert page.content.decode().count("early_warnings/approvalrule/") >= 16

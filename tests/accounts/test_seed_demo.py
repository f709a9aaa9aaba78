from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from apps.accounts.management.commands.seed_demo import DEFAULT_DEMO_PASSWORD
from apps.accounts.models import Membership, Role, User
from apps.core.scoping import scope_for

pytestmark = pytest.mark.django_db


def _seed(**options: Any) -> str:
    out = StringIO()
    call_command("seed_demo", force=True, stdout=out, **options)
    return out.getvalue()


def test_seed_demo_refuses_to_run_without_debug_unless_forced(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()


def test_seed_demo_creates_the_cast_and_prints_how_to_log_in() -> None:
    # when
    output = _seed()
    # then
    assert User.objects.get(username="admin").is_superuser
    for town in ("fengdong", "fengxi", "qinhan", "konggang", "jinghe"):
        operator = User.objects.get(username=f"op-{town}")
        assert operator.is_staff
        assert scope_for(operator).paths == (f"/xixian/{town}/",)
    assert Membership.objects.get(user__username="cmd-xixian").role == Role.COMMANDER
    assert Membership.objects.get(user__username="liaison-xixian").region.code == "xixian"
    sanqiao = Membership.objects.filter(region__code="fd-sanqiao")
    assert sorted(sanqiao.values_list("role", flat=True)) == [
        Role.OPERATOR,
        Role.RESPONDER,
        Role.RESPONDER,
        Role.TEAM_LEADER,
    ]
    for street in ("sanqiao", "jianzhanglu", "wangsi"):  # the streets of the demo teams
        officer = User.objects.get(username=f"op-{street}")
        assert officer.is_staff
        assert scope_for(officer).paths == (f"/xixian/fengdong/fd-{street}/",)
    community = "/xixian/fengdong/fd-sanqiao/fd-sanqiao-u01/"
    assert scope_for(User.objects.get(username="op-sanqiao-hcz")).paths == (community,)
    grid_worker = User.objects.get(phone="+8613800000031")
    assert not grid_worker.is_staff
    assert grid_worker.memberships.get().role == Role.GRID_WORKER
    assert scope_for(grid_worker).paths == (community,)
    citizen = User.objects.get(phone="+8613900000001")
    assert not citizen.memberships.exists()
    assert not citizen.has_usable_password()
    assert "op-fengxi" in output
    assert DEFAULT_DEMO_PASSWORD in output
    assert "+8613800000001" in output
    assert "OTP via console SMS" in output


def test_seed_demo_twice_changes_nothing() -> None:
    _seed()
    counts = (User.objects.count(), Membership.objects.count())
    _seed()
    assert (User.objects.count(), Membership.objects.count()) == counts


def test_seeded_staff_log_in_with_the_demo_password(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given
    monkeypatch.setenv("DEMO_PASSWORD", "s3cret-for-this-laptop")
    output = _seed()
    # when
    response = api_client.post(
        "/api/v1/auth/token/", {"username": "op-fengxi", "password": "s3cret-for-this-laptop"}
    )
    # then
    assert response.status_code == 200
    assert "s3cret-for-this-laptop" in output
    assert DEFAULT_DEMO_PASSWORD not in output

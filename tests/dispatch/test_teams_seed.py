"""Departments fixture and the demo teams: idempotent, linked to the taxonomy."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import Role, User
from apps.dispatch.models import Department, Team, TeamMember, TeamStatus
from apps.incidents.models import Category
from apps.incidents.taxonomy import categories_load_fixture
from apps.regions.models import Region
from apps.sla.models import Audience
from apps.sla.recipients import recipients_for
from tests.factories.sla import SlaClockFactory

pytestmark = pytest.mark.django_db


def _codes(department: Department) -> set[str]:
    return set(department.categories.values_list("code", flat=True))


def test_departments_load_and_link_the_categories_they_lead() -> None:
    # given
    call_command("load_regions", stdout=StringIO())
    categories_load_fixture()

    # when: run twice
    call_command("load_departments", stdout=StringIO())
    out = StringIO()
    call_command("load_departments", stdout=out)

    # then
    assert "0 created, 0 updated" in out.getvalue()
    water = Department.objects.get(code="xixian-water")
    assert {"N01", "N02", "N10"} <= _codes(water)
    assert {"A02"} <= _codes(Department.objects.get(code="xixian-gas"))
    assert {"A01", "A02", "A03", "A12"} <= _codes(Department.objects.get(code="xixian-fire"))
    assert "A04" in _codes(Department.objects.get(code="xixian-police"))  # 公安交管
    assert "A08" in _codes(Department.objects.get(code="xixian-emergency"))
    # every category has a lead department but those of offices without teams
    led = set(Department.categories.through.objects.values_list("category__code", flat=True))
    unled = set(Category.objects.values_list("code", flat=True)) - led
    assert unled == {"S03", "S04", "S05"}  # 网信, 外事, 发改 / 金融


def test_the_demo_teams_are_seeded_idempotently() -> None:
    # given: the demo cast
    call_command("seed_demo", force=True, stdout=StringIO())
    categories_load_fixture()

    # when: run twice
    call_command("seed_dispatch_demo", force=True, stdout=StringIO())
    call_command("seed_dispatch_demo", force=True, stdout=StringIO())

    # then
    sanqiao = Team.objects.get(code="fd-sanqiao-rescue")
    assert sanqiao.name == "三桥街道应急救援队"
    assert sanqiao.home_region.code == "fd-sanqiao"
    assert sanqiao.last_lat == sanqiao.home_region.centre_lat
    leaders = TeamMember.objects.filter(team=sanqiao, is_leader=True)
    assert list(leaders.values_list("user__username", flat=True)) == ["tl-sanqiao"]
    assert sanqiao.members.count() == 3
    assert sanqiao.status == TeamStatus.OFF_DUTY  # the cast goes on duty in the app
    water = Team.objects.get(code="fd-water-rescue")
    assert water.name == "沣东水务抢险队"
    assert water.equipment["移动泵车"] == 2
    assert water.status == TeamStatus.AVAILABLE
    assert Team.objects.get(code="fd-fire-station").kind == Team.Kind.FIRE
    assert Team.objects.count() == 3
    assert TeamMember.objects.count() == 6


def test_every_demo_street_has_a_duty_officer_whom_street_escalation_reaches() -> None:
    # given: the demo cast and teams
    call_command("seed_demo", force=True, stdout=StringIO())
    categories_load_fixture()
    call_command("seed_dispatch_demo", force=True, stdout=StringIO())
    streets = {team.home_region for team in Team.objects.select_related("home_region")}

    # when: a clock runs at each street, and one at a community of 三桥
    community = Region.objects.get(code="fd-sanqiao-u01")
    reached = {
        region.code: recipients_for(SlaClockFactory(region=region), [Audience.STREET_DUTY])
        for region in [*streets, community]
    }

    # then: the street's duty officer, an operator at the street, for each
    assert {region.code for region in streets} == {"fd-sanqiao", "fd-jianzhanglu", "fd-wangsi"}
    for code, audiences in reached.items():
        (user_id,) = audiences[Audience.STREET_DUTY]
        officer = User.objects.get(pk=user_id)
        street = code.removesuffix("-u01")
        assert officer.memberships.get().region.code == street, code
        assert officer.memberships.get().role == Role.OPERATOR

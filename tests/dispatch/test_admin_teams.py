"""The command-centre admin for departments, teams, members and shifts."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.roles import ensure_role_groups
from apps.dispatch.models import Shift, Team, TeamStatus
from tests.factories.accounts import CitizenFactory, StaffUserFactory, UserFactory
from tests.factories.dispatch import (
    DepartmentFactory,
    ShiftFactory,
    TeamFactory,
    TeamMemberFactory,
)
from tests.factories.incidents import TwoTowns

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.fixture
def tree() -> TwoTowns:
    return TwoTowns()


@pytest.fixture
def superuser() -> User:
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.fixture
def fengxi_operator(tree: TwoTowns) -> User:
    """A 沣西 operator with the dispatch permissions the operator role carries."""
    ensure_role_groups()
    user = StaffUserFactory(region=tree.fengxi)
    return User.objects.get(pk=user.pk)  # drop the cached permissions


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_operator_role_gets_the_dispatch_admin_permissions() -> None:
    groups = ensure_role_groups()

    def codenames(role: str) -> set[str]:
        return set(
            Group.objects.get(pk=groups[role].pk)
            .permissions.filter(content_type__app_label="dispatch")
            .values_list("codename", flat=True)
        )

    operator = codenames(Role.OPERATOR)
    assert {"view_team", "change_team", "view_teammember", "view_shift"} <= operator
    assert {"view_dispatchtask", "add_dispatchtask", "change_dispatchtask"} <= operator
    assert "delete_team" not in operator
    assert codenames(Role.COMMANDER) == operator
    assert "delete_team" in codenames(Role.ADMIN)


def test_the_team_changelist_renders_in_chinese(tree: TwoTowns, superuser: User) -> None:
    TeamFactory(home_region=tree.sanqiao, name="三桥街道应急救援队")

    response = admin_client(superuser).get(reverse("admin:dispatch_team_changelist"), **ZH)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'lang="zh-hans"' in html
    assert "三桥街道应急救援队" in html
    assert "过滤器" in html


def test_an_operator_sees_only_the_teams_of_their_regions(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    mine = TeamFactory(home_region=tree.diaotai, name="钓台救援队")
    theirs = TeamFactory(home_region=tree.sanqiao, name="三桥救援队")
    client = admin_client(fengxi_operator)

    listing = client.get(reverse("admin:dispatch_team_changelist")).content.decode()
    other = client.get(reverse("admin:dispatch_team_change", args=[theirs.pk]))
    own = client.get(reverse("admin:dispatch_team_change", args=[mine.pk]))

    assert "钓台救援队" in listing
    assert "三桥救援队" not in listing
    assert other.status_code == 302  # "does not exist", like a deleted object
    assert own.status_code == 200


def test_members_and_shifts_are_scoped_through_their_team(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    TeamMemberFactory(team=TeamFactory(home_region=tree.diaotai), user__display_name="钓台队员")
    TeamMemberFactory(team=TeamFactory(home_region=tree.sanqiao), user__display_name="三桥队员")
    ShiftFactory(team=TeamFactory(home_region=tree.diaotai, name="钓台班组"))
    ShiftFactory(team=TeamFactory(home_region=tree.sanqiao, name="三桥班组"))
    client = admin_client(fengxi_operator)

    members = client.get(reverse("admin:dispatch_teammember_changelist")).content.decode()
    shifts = client.get(reverse("admin:dispatch_shift_changelist")).content.decode()

    assert "钓台队员" in members
    assert "三桥队员" not in members
    assert "钓台班组" in shifts
    assert "三桥班组" not in shifts


def test_the_team_page_shows_members_and_shifts_inline(tree: TwoTowns, superuser: User) -> None:
    team = TeamFactory(home_region=tree.sanqiao)
    TeamMemberFactory(team=team, user__display_name="队长甲", is_leader=True)
    ShiftFactory(team=team, handover_note="泵车已加油")

    html = (
        admin_client(superuser)
        .get(reverse("admin:dispatch_team_change", args=[team.pk]), **ZH)
        .content.decode()
    )

    assert "members-TOTAL_FORMS" in html
    assert "shifts-TOTAL_FORMS" in html
    assert "泵车已加油" in html


def test_a_team_created_in_the_admin_starts_at_its_home_region_centre(
    tree: TwoTowns, superuser: User
) -> None:
    data = {
        "code": "dt-pumps",
        "name": "钓台排涝队",
        "kind": "professional",
        "home_region": tree.diaotai.pk,
        "capabilities": ["pumping"],
        "equipment": '{"移动泵车": 2}',
        "is_active": "on",
        "members-TOTAL_FORMS": "1",
        "members-INITIAL_FORMS": "0",
        "members-0-user": CitizenFactory().pk,
        "members-0-is_leader": "on",
        "members-0-is_active": "on",
        "shifts-TOTAL_FORMS": "0",
        "shifts-INITIAL_FORMS": "0",
    }

    response = admin_client(superuser).post(reverse("admin:dispatch_team_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    team = Team.objects.get(code="dt-pumps")
    assert (team.last_lat, team.last_lng) == (tree.diaotai.centre_lat, tree.diaotai.centre_lng)
    assert team.last_position_at is None
    assert team.equipment == {"移动泵车": 2}
    assert team.status == TeamStatus.OFF_DUTY  # a member, but nobody on duty yet
    assert team.members.get().is_leader


def test_an_unknown_equipment_shape_is_refused(tree: TwoTowns, superuser: User) -> None:
    data = {
        "code": "bad",
        "name": "x",
        "kind": "professional",
        "home_region": tree.diaotai.pk,
        "equipment": '{"移动泵车": "two"}',
        "members-TOTAL_FORMS": "0",
        "members-INITIAL_FORMS": "0",
        "shifts-TOTAL_FORMS": "0",
        "shifts-INITIAL_FORMS": "0",
    }

    response = admin_client(superuser).post(reverse("admin:dispatch_team_add"), data)

    assert response.status_code == 200  # the form again, with the error
    assert not Team.objects.filter(code="bad").exists()


def test_the_out_of_service_action_takes_the_reason_and_refuses_without(
    tree: TwoTowns, fengxi_operator: User
) -> None:
    team = TeamFactory(home_region=tree.diaotai)
    TeamMemberFactory(team=team, on_duty=True)
    client = admin_client(fengxi_operator)
    url = reverse("admin:dispatch_team_changelist")
    action = {"action": "take_out_of_service", "_selected_action": [team.pk]}

    refused = client.post(url, {**action, "note": ""}, follow=True)
    assert Team.objects.get(pk=team.pk).status == TeamStatus.AVAILABLE
    assert any("invalid" in str(m) for m in get_messages(refused.wsgi_request))

    client.post(url, {**action, "note": "泵车故障"})
    assert Team.objects.get(pk=team.pk).status == TeamStatus.OUT_OF_SERVICE

    client.post(url, {"action": "return_to_service", "_selected_action": [team.pk]})
    assert Team.objects.get(pk=team.pk).status == TeamStatus.AVAILABLE


def test_a_shift_is_handed_over_from_the_admin(tree: TwoTowns, superuser: User) -> None:
    shift = ShiftFactory(team=TeamFactory(home_region=tree.diaotai))

    admin_client(superuser).post(
        reverse("admin:dispatch_shift_changelist"),
        {"action": "hand_over", "_selected_action": [shift.pk], "note": "交班：一切正常"},
    )

    shift = Shift.objects.get(pk=shift.pk)
    assert shift.handover_note == "交班：一切正常"
    assert shift.handed_over_by == superuser


def test_departments_are_listed_by_region(tree: TwoTowns, fengxi_operator: User) -> None:
    Permission.objects.get(codename="view_department")  # the operator role has it
    DepartmentFactory(region=tree.fengxi, name_zh="沣西水务")
    DepartmentFactory(region=tree.fengdong, name_zh="沣东水务")

    html = (
        admin_client(fengxi_operator)
        .get(reverse("admin:dispatch_department_changelist"))
        .content.decode()
    )

    assert "沣西水务" in html
    assert "沣东水务" not in html

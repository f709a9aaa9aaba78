from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts.models import Membership, Role, User
from tests.accounts.conftest import Tree
from tests.factories.accounts import CitizenFactory, DeviceFactory, MembershipFactory, UserFactory


@pytest.fixture
def people(tree: Tree) -> dict[str, User]:
    """A responder in each new town, each with a phone registered."""
    fengdong = MembershipFactory(
        region=tree.sanqiao, role=Role.RESPONDER, user__display_name="沣东队员甲"
    ).user
    fengxi = MembershipFactory(
        region=tree.diaotai, role=Role.RESPONDER, user__display_name="沣西队员乙"
    ).user
    DeviceFactory(user=fengdong, app_version="9.9.1")
    DeviceFactory(user=fengxi, app_version="9.9.2")
    return {"fengdong": fengdong, "fengxi": fengxi}


@pytest.fixture
def fengxi_admin_client(client: Client, fengxi_operator: User) -> Client:
    client.force_login(fengxi_operator)
    return client


def test_a_fengxi_operator_lists_no_fengdong_users(
    fengxi_admin_client: Client, people: dict[str, User]
) -> None:
    response = fengxi_admin_client.get("/admin/accounts/user/")
    assert response.status_code == 200
    content = response.content.decode()
    assert "沣西队员乙" in content
    assert "沣东队员甲" not in content
    listed = {u.pk for u in response.context["cl"].result_list}
    assert people["fengxi"].pk in listed
    assert people["fengdong"].pk not in listed


def test_a_user_with_two_memberships_in_scope_is_listed_once(
    tree: Tree, fengxi_admin_client: Client
) -> None:
    user = CitizenFactory()
    MembershipFactory(user=user, region=tree.fengxi, role=Role.RESPONDER)
    MembershipFactory(user=user, region=tree.diaotai, role=Role.RESPONDER)
    response = fengxi_admin_client.get("/admin/accounts/user/")
    assert [u.pk for u in response.context["cl"].result_list].count(user.pk) == 1


def test_a_revoked_membership_does_not_keep_a_user_in_scope(
    tree: Tree, fengxi_admin_client: Client
) -> None:
    former = MembershipFactory(region=tree.diaotai, role=Role.RESPONDER, is_active=False).user
    response = fengxi_admin_client.get("/admin/accounts/user/")
    assert former.pk not in [u.pk for u in response.context["cl"].result_list]


def test_a_fengxi_operator_lists_no_fengdong_memberships_or_devices(
    fengxi_admin_client: Client, people: dict[str, User]
) -> None:
    memberships = fengxi_admin_client.get("/admin/accounts/membership/")
    devices = fengxi_admin_client.get("/admin/accounts/device/")
    assert memberships.status_code == devices.status_code == 200
    assert {m.user_id for m in memberships.context["cl"].result_list} >= {people["fengxi"].pk}
    assert people["fengdong"].pk not in {m.user_id for m in memberships.context["cl"].result_list}
    assert "9.9.2" in devices.content.decode()
    assert "9.9.1" not in devices.content.decode()


def test_a_fengxi_operator_cannot_open_a_fengdong_membership_or_user(
    fengxi_admin_client: Client, people: dict[str, User]
) -> None:
    membership = Membership.objects.get(user=people["fengdong"])
    page = fengxi_admin_client.get(f"/admin/accounts/membership/{membership.pk}/change/")
    user_page = fengxi_admin_client.get(f"/admin/accounts/user/{people['fengdong'].pk}/change/")
    assert page.status_code in (302, 403, 404)
    assert user_page.status_code in (302, 403, 404)


def test_adding_a_membership_in_the_admin_goes_through_the_grant_service(
    tree: Tree, fengxi_admin_client: Client, fengxi_operator: User
) -> None:
    # given
    citizen = CitizenFactory()
    # when
    response = fengxi_admin_client.post(
        "/admin/accounts/membership/add/",
        {"user": citizen.pk, "region": tree.diaotai.pk, "role": Role.OPERATOR, "is_active": "on"},
    )
    # then
    assert response.status_code == 302, response.context["adminform"].form.errors
    membership = Membership.objects.get(user=citizen)
    assert membership.granted_by == fengxi_operator
    citizen.refresh_from_db()
    assert citizen.is_staff
    assert set(citizen.groups.values_list("name", flat=True)) == {"operator"}


def test_the_admin_refuses_a_grant_above_the_operators_rank(
    tree: Tree, fengxi_admin_client: Client
) -> None:
    citizen = CitizenFactory()
    response = fengxi_admin_client.post(
        "/admin/accounts/membership/add/",
        {"user": citizen.pk, "region": tree.fengxi.pk, "role": Role.ADMIN, "is_active": "on"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors
    assert not Membership.objects.filter(user=citizen).exists()


def test_the_admin_offers_only_regions_in_scope(tree: Tree, fengxi_admin_client: Client) -> None:
    response = fengxi_admin_client.get("/admin/accounts/membership/add/")
    regions = response.context["adminform"].form.fields["region"].queryset
    assert set(regions.values_list("code", flat=True)) == {"fengxi", "fx-diaotai"}


def test_unticking_active_in_the_admin_revokes_the_membership(tree: Tree, client: Client) -> None:
    # given
    commander = UserFactory()
    from apps.accounts.services import membership_grant

    membership_grant(user=commander, region=tree.fengxi, role=Role.COMMANDER)
    operator = UserFactory()
    membership = membership_grant(user=operator, region=tree.fengxi, role=Role.OPERATOR)
    client.force_login(commander)
    # when
    response = client.post(f"/admin/accounts/membership/{membership.pk}/change/", {})
    # then
    assert response.status_code == 302
    membership.refresh_from_db()
    operator.refresh_from_db()
    assert membership.is_active is False
    assert operator.is_staff is False


def test_otp_challenges_are_hidden_from_staff_but_shown_to_superusers(
    client: Client, fengxi_operator: User
) -> None:
    client.force_login(fengxi_operator)
    assert client.get("/admin/accounts/otpchallenge/").status_code == 403
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    assert client.get("/admin/accounts/otpchallenge/").status_code == 200


def test_a_superuser_sees_every_user(client: Client, people: dict[str, User]) -> None:
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    content = client.get("/admin/accounts/user/").content.decode()
    assert "沣东队员甲" in content
    assert "沣西队员乙" in content


def test_an_operator_cannot_edit_a_peer_operator(tree: Tree, fengxi_admin_client: Client) -> None:
    from apps.accounts.services import membership_grant

    peer = UserFactory()
    membership_grant(user=peer, region=tree.diaotai, role=Role.OPERATOR)
    response = fengxi_admin_client.post(
        f"/admin/accounts/user/{peer.pk}/change/", {"username": "hijacked"}
    )
    assert response.status_code == 403
    peer.refresh_from_db()
    assert peer.username != "hijacked"


def test_the_user_page_shows_only_memberships_in_the_viewers_scope(
    tree: Tree, client: Client
) -> None:
    # given: a person on duty in both new towns, seen by a fengxi commander
    from apps.accounts.services import membership_grant

    commander = UserFactory()
    membership_grant(user=commander, region=tree.fengxi, role=Role.COMMANDER)
    both = CitizenFactory()
    MembershipFactory(user=both, region=tree.diaotai, role=Role.RESPONDER)
    MembershipFactory(user=both, region=tree.sanqiao, role=Role.RESPONDER)
    client.force_login(commander)
    # when
    response = client.get(f"/admin/accounts/user/{both.pk}/change/")
    # then
    assert response.status_code == 200
    assert "钓台街道" in response.content.decode()
    assert "三桥街道" not in response.content.decode()


def test_an_operator_reaches_the_admin_index_with_accounts_and_regions(
    fengxi_admin_client: Client,
) -> None:
    response = fengxi_admin_client.get("/admin/")
    assert response.status_code == 200
    app_labels = {app["app_label"] for app in response.context["app_list"]}
    assert {"accounts", "regions"} <= app_labels

from __future__ import annotations

import re
import threading

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from apps.accounts.errors import AccountsErrorCode
from apps.accounts.models import Membership, OtpChallenge, Role, User
from apps.accounts.roles import ROLE_PERMISSIONS, ensure_role_groups
from apps.accounts.scoping import resolve_scope
from apps.accounts.services import (
    device_deactivate,
    device_register,
    membership_grant,
    membership_revoke,
    otp_request,
    otp_verify,
    tokens_issue,
    tokens_revoke_all,
)
from apps.core.errors import ApplicationError, ErrorCode
from apps.core.scoping import scope_for
from tests.accounts.conftest import Tree
from tests.factories.accounts import CitizenFactory, DeviceFactory, UserFactory


def _group_names(user: User) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_granting_a_staff_role_makes_the_user_staff_in_that_role_group(tree: Tree) -> None:
    # given
    user = UserFactory()
    # when
    membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    # then
    user.refresh_from_db()
    assert user.is_staff
    assert _group_names(user) == {"operator"}


def test_granting_a_field_role_does_not_make_the_user_staff(tree: Tree) -> None:
    user = CitizenFactory()
    membership_grant(user=user, region=tree.sanqiao, role=Role.RESPONDER)
    user.refresh_from_db()
    assert not user.is_staff
    assert _group_names(user) == set()


def test_granting_twice_keeps_one_membership(tree: Tree) -> None:
    user = UserFactory()
    first = membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    second = membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    assert first.pk == second.pk
    assert Membership.objects.filter(user=user).count() == 1


def test_revoking_the_last_staff_role_removes_staff_and_group_but_keeps_the_row(
    tree: Tree,
) -> None:
    # given
    user = UserFactory()
    membership = membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    user.groups.add(Group.objects.create(name="hand-made"))
    # when
    membership_revoke(membership=membership)
    # then
    user.refresh_from_db()
    assert not user.is_staff
    assert _group_names(user) == {"hand-made"}  # only role groups are managed
    assert Membership.objects.get(pk=membership.pk).is_active is False


def test_regranting_a_revoked_membership_reactivates_it(tree: Tree) -> None:
    user = UserFactory()
    membership = membership_grant(user=user, region=tree.fengxi, role=Role.COMMANDER)
    membership_revoke(membership=membership)
    again = membership_grant(user=user, region=tree.fengxi, role=Role.COMMANDER)
    assert again.pk == membership.pk
    assert again.is_active
    user.refresh_from_db()
    assert user.is_staff


def test_an_operator_cannot_grant_the_admin_role(tree: Tree, fengxi_operator: User) -> None:
    with pytest.raises(ApplicationError) as raised:
        membership_grant(
            user=UserFactory(), region=tree.diaotai, role=Role.ADMIN, by=fengxi_operator
        )
    assert raised.value.code == AccountsErrorCode.ROLE_NOT_GRANTABLE


def test_an_operator_cannot_grant_a_role_above_their_own(tree: Tree, fengxi_operator: User) -> None:
    with pytest.raises(ApplicationError) as raised:
        membership_grant(
            user=UserFactory(), region=tree.fengxi, role=Role.COMMANDER, by=fengxi_operator
        )
    assert raised.value.code == AccountsErrorCode.ROLE_NOT_GRANTABLE


def test_an_operator_cannot_grant_outside_their_scope(tree: Tree, fengxi_operator: User) -> None:
    with pytest.raises(ApplicationError) as raised:
        membership_grant(
            user=CitizenFactory(), region=tree.sanqiao, role=Role.RESPONDER, by=fengxi_operator
        )
    assert raised.value.code == ErrorCode.OUT_OF_SCOPE
    assert not Membership.objects.filter(region=tree.sanqiao).exists()


def test_an_operator_grants_responders_in_their_streets(tree: Tree, fengxi_operator: User) -> None:
    citizen = CitizenFactory()
    membership = membership_grant(
        user=citizen, region=tree.diaotai, role=Role.RESPONDER, by=fengxi_operator
    )
    assert membership.granted_by == fengxi_operator


def test_scope_is_the_subtrees_of_active_memberships(tree: Tree) -> None:
    user = UserFactory()
    membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    membership_grant(user=user, region=tree.diaotai, role=Role.OPERATOR)  # inside fengxi
    revoked = membership_grant(user=user, region=tree.fengdong, role=Role.OPERATOR)
    membership_revoke(membership=revoked)
    scope = resolve_scope(user)
    assert scope.paths == ("/xixian/fengxi/",)
    assert not scope.is_global


def test_the_admin_role_at_the_root_sees_everything(tree: Tree) -> None:
    user = UserFactory()
    membership_grant(user=user, region=tree.xixian, role=Role.ADMIN)
    assert scope_for(user).is_global


def test_role_groups_are_idempotent_and_hold_the_role_permissions(db: None) -> None:
    # when
    ensure_role_groups()
    groups = ensure_role_groups()
    # then
    assert (
        Group.objects.filter(
            name__in=["operator", "commander", "department_liaison", "admin"]
        ).count()
        == 4
    )
    operator = set(groups[Role.OPERATOR].permissions.values_list("codename", flat=True))
    assert operator == {codename for _app, codename in ROLE_PERMISSIONS[Role.OPERATOR]}
    commander = set(groups[Role.COMMANDER].permissions.values_list("codename", flat=True))
    assert commander == operator | {"change_user", "view_auditentry"}
    admin = set(groups[Role.ADMIN].permissions.values_list("content_type__app_label", flat=True))
    assert {"accounts", "regions", "audit"} <= admin


def test_apps_above_accounts_contribute_their_role_permissions(db: None) -> None:
    # given: apps.incidents registers its permissions in AppConfig.ready()
    groups = ensure_role_groups()
    # then
    operator = set(groups[Role.OPERATOR].permissions.values_list("codename", flat=True))
    assert {"view_incident", "change_report"} <= operator
    liaison = set(groups[Role.DEPARTMENT_LIAISON].permissions.values_list("codename", flat=True))
    assert "change_incident" not in liaison
    admin = set(groups[Role.ADMIN].permissions.values_list("content_type__app_label", flat=True))
    assert "incidents" in admin


def test_revoking_all_tokens_blacklists_every_outstanding_refresh(db: None) -> None:
    # given
    user = CitizenFactory()
    tokens_issue(user=user)
    tokens_issue(user=user)
    other = tokens_issue(user=CitizenFactory())
    # when
    revoked = tokens_revoke_all(user=user)
    # then
    assert revoked == 2
    assert tokens_revoke_all(user=user) == 0
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

    assert BlacklistedToken.objects.filter(token__user=user).count() == 2
    assert not BlacklistedToken.objects.filter(token__token=other.refresh).exists()


def test_a_push_token_moves_to_the_user_who_logs_in_last(db: None) -> None:
    # given
    first, second = CitizenFactory(), CitizenFactory()
    device, created = device_register(user=first, token="tok-1", platform="android")
    # when
    moved, created_again = device_register(user=second, token="tok-1", platform="android")
    # then
    assert created
    assert not created_again
    assert moved.pk == device.pk
    assert moved.user == second


def test_deactivating_someone_elses_device_is_not_found(db: None) -> None:
    device = DeviceFactory()
    with pytest.raises(ApplicationError) as raised:
        device_deactivate(user=CitizenFactory(), device_id=device.pk)
    assert raised.value.status == 404
    device.refresh_from_db()
    assert device.is_active


@pytest.mark.services  # threads need a real database server (row locks)
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_guesses_never_exceed_the_attempt_limit(sms_outbox: list) -> None:
    # given: one pending code and twice as many parallel wrong guesses as allowed
    phone = "+8613800138000"
    otp_request(phone=phone)
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    guesses = settings.OTP_MAX_ATTEMPTS * 2
    barrier = threading.Barrier(guesses)
    outcomes: list[str] = []

    def guess() -> None:
        barrier.wait()
        try:
            otp_verify(phone=phone, code=wrong)
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=guess) for _ in range(guesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: the row lock counted them one by one; the code is burnt after the last one
    assert OtpChallenge.objects.get().attempts == settings.OTP_MAX_ATTEMPTS
    assert outcomes.count("otp_invalid") == settings.OTP_MAX_ATTEMPTS
    assert outcomes.count("otp_not_pending") + outcomes.count("otp_locked") == (
        guesses - settings.OTP_MAX_ATTEMPTS
    )


def test_role_groups_are_built_after_the_last_apps_permissions_exist(db: None) -> None:
    """On a fresh database each app's permissions appear on its own post_migrate, in
    INSTALLED_APPS order: built on accounts' own signal, operators would lack the
    permissions of every app after it (incidents, dispatch, sla ...)."""
    from django.apps import apps

    from apps.accounts.roles import ensure_role_groups_after_migrate

    Group.objects.all().delete()
    configs = list(apps.get_app_configs())
    # when: the signal of accounts itself (and of any app but the last) fires
    ensure_role_groups_after_migrate(app_config=apps.get_app_config("accounts"))
    ensure_role_groups_after_migrate(app_config=configs[-2])
    # then: nothing yet
    assert not Group.objects.exists()
    # when: the last app's signal fires
    ensure_role_groups_after_migrate(app_config=configs[-1])
    # then: the groups hold the permissions of apps installed after accounts
    operator = Group.objects.get(name="operator")
    labels = set(operator.permissions.values_list("content_type__app_label", flat=True))
    assert {"incidents", "dispatch"} <= labels

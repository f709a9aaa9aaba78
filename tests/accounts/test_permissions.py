"""The role table: ``docs/roles.md`` and ``apps.accounts.permissions`` say the same, and a
capability holds only where the membership that gives it is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from apps.accounts.models import Membership, Role, User
from apps.accounts.permissions import (
    ROLE_CAPABILITIES,
    Capability,
    can,
    can_somewhere,
    capability_scope,
    roles_with,
)
from apps.accounts.services import membership_grant, membership_revoke
from tests.accounts.conftest import Tree
from tests.factories.accounts import CitizenFactory, StaffUserFactory, UserFactory

ROLES_MD = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def _documented_table() -> dict[str, frozenset[str]]:
    """``{role: capabilities}`` from the table under "## The role table"."""
    text = ROLES_MD.read_text(encoding="utf-8")
    section = text.split("## The role table", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[:2] == ["capability", "allows"]
    roles = header[2:]
    table: dict[str, set[str]] = {role: set() for role in roles}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        capability = re.fullmatch(r"`([a-z_.]+)`", cells[0])
        assert capability is not None, line
        for role, mark in zip(roles, cells[2:], strict=True):
            assert mark in ("", "✓"), line
            if mark:
                table[role].add(capability.group(1))
    return {role: frozenset(caps) for role, caps in table.items()}


def test_the_role_table_of_docs_roles_md_is_the_code() -> None:
    documented = _documented_table()
    # every role, every capability, in both
    assert set(documented) == set(Role.values)
    assert set(ROLE_CAPABILITIES) == set(Role.values)
    coded = {role: frozenset(str(c) for c in caps) for role, caps in ROLE_CAPABILITIES.items()}
    assert documented == coded
    listed = {cap for caps in documented.values() for cap in caps}
    assert listed == {str(c) for c in Capability}


def test_a_liaison_commands_nothing_and_triages_nothing_by_role() -> None:
    liaison = ROLE_CAPABILITIES[Role.DEPARTMENT_LIAISON]
    for capability in (
        Capability.INCIDENT_COMMAND,
        Capability.REPORT_TRIAGE,
        Capability.DISPATCH,
        Capability.POST_COMMANDER,
    ):
        assert capability not in liaison
    assert Capability.INCIDENT_NOTE in liaison
    # and a grid worker reads, never more
    assert ROLE_CAPABILITIES[Role.GRID_WORKER] == {Capability.INCIDENT_READ, Capability.KPI_READ}
    assert ROLE_CAPABILITIES[Role.CITIZEN] == frozenset()


def test_the_commander_of_a_post_is_a_role_that_may_dispatch() -> None:
    assert roles_with(Capability.POST_COMMANDER) == roles_with(Capability.DISPATCH)
    assert roles_with(Capability.POST_COMMANDER) <= roles_with(Capability.POST_MEMBER)


@pytest.mark.django_db
def test_a_capability_holds_only_in_the_scope_of_the_membership_that_gives_it(
    tree: Tree,
) -> None:
    # given: an operator of 沣东 who is a responder in 沣西
    user = StaffUserFactory(region=tree.fengdong)
    membership_grant(user=user, region=tree.fengxi, role=Role.RESPONDER)
    user = User.objects.get(pk=user.pk)
    # then: triage in 沣东 only, reading in both
    assert can(user, Capability.REPORT_TRIAGE, tree.sanqiao.path)
    assert not can(user, Capability.REPORT_TRIAGE, tree.diaotai.path)
    assert not can(user, Capability.REPORTER_CONTACT, tree.diaotai.path)
    assert can(user, Capability.INCIDENT_READ, tree.diaotai.path)
    assert capability_scope(user, Capability.DISPATCH).paths == (tree.fengdong.path,)


@pytest.mark.django_db
def test_citizens_anonymous_and_role_less_accounts_can_nothing(tree: Tree) -> None:
    from django.contrib.auth.models import AnonymousUser

    for user in (AnonymousUser(), None, CitizenFactory(), UserFactory()):
        for capability in Capability:
            assert not can_somewhere(user, capability)


@pytest.mark.django_db
def test_superusers_and_root_admins_can_everything_everywhere(tree: Tree) -> None:
    superuser = UserFactory(is_superuser=True)
    root_admin = StaffUserFactory(region=tree.xixian, region__role=Role.ADMIN)
    for user in (superuser, User.objects.get(pk=root_admin.pk)):
        for capability in Capability:
            assert capability_scope(user, capability).is_global


@pytest.mark.django_db
def test_memberships_are_read_once_per_request_whatever_is_asked(
    tree: Tree, django_assert_num_queries: Any
) -> None:
    user = User.objects.get(pk=StaffUserFactory(region=tree.fengdong).pk)
    with django_assert_num_queries(1):
        for capability in Capability:
            can(user, capability, tree.sanqiao.path)


@pytest.mark.django_db
def test_a_revoked_membership_takes_its_capabilities_from_the_next_request(tree: Tree) -> None:
    user = StaffUserFactory(region=tree.fengdong)
    assert can(user, Capability.DISPATCH, tree.sanqiao.path)
    membership = Membership.objects.select_related("user").get(user=user)
    membership_revoke(membership=membership)
    # the revoking request's own copy is refreshed, and the next request reads anew
    assert not can(membership.user, Capability.DISPATCH, tree.sanqiao.path)
    assert not can(User.objects.get(pk=user.pk), Capability.DISPATCH, tree.sanqiao.path)

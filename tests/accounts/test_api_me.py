from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import membership_grant, membership_revoke
from tests.accounts.conftest import Tree
from tests.factories.accounts import CitizenFactory, UserFactory

ME_URL = "/api/v1/me/"


def test_a_citizen_is_a_citizen_with_an_empty_scope(
    db: None, authed: Callable[[User], APIClient]
) -> None:
    citizen = CitizenFactory(display_name="王芳")
    body = authed(citizen).get(ME_URL).json()
    assert body == {
        "id": citizen.pk,
        "username": citizen.username,
        "phone": citizen.phone,
        "display_name": "王芳",
        "is_staff": False,
        "roles": ["citizen"],
        "memberships": [],
        "scope": {"global": False, "paths": []},
    }


def test_a_fengxi_operator_sees_fengxi_and_nothing_of_fengdong(
    tree: Tree, fengxi_operator: User, authed: Callable[[User], APIClient]
) -> None:
    # when
    body = authed(fengxi_operator).get(ME_URL).json()
    # then
    assert body["is_staff"] is True
    assert body["roles"] == ["operator"]
    assert body["memberships"] == [
        {
            "region": {
                "code": "fengxi",
                "name_zh": "沣西新城",
                "name_en": "Fengxi",
                "level": "new_town",
                "path": "/xixian/fengxi/",
            },
            "role": "operator",
        }
    ]
    assert body["scope"] == {"global": False, "paths": ["/xixian/fengxi/"]}
    assert not any(p.startswith("/xixian/fengdong/") for p in body["scope"]["paths"])


def test_roles_are_distinct_and_revoked_memberships_are_gone(
    tree: Tree, authed: Callable[[User], APIClient]
) -> None:
    # given
    user = UserFactory()
    membership_grant(user=user, region=tree.sanqiao, role=Role.RESPONDER)
    membership_grant(user=user, region=tree.diaotai, role=Role.RESPONDER)
    membership_grant(user=user, region=tree.sanqiao, role=Role.TEAM_LEADER)
    old = membership_grant(user=user, region=tree.fengxi, role=Role.OPERATOR)
    membership_revoke(membership=old)
    # when
    body = authed(user).get(ME_URL).json()
    # then
    assert body["roles"] == ["team_leader", "responder"]
    assert len(body["memberships"]) == 3
    assert body["is_staff"] is False
    assert body["scope"]["paths"] == ["/xixian/fengdong/fd-sanqiao/", "/xixian/fengxi/fx-diaotai/"]


def test_a_superuser_has_a_global_scope(db: None, authed: Callable[[User], APIClient]) -> None:
    body = authed(UserFactory(is_superuser=True, is_staff=True)).get(ME_URL).json()
    assert body["scope"] == {"global": True, "paths": []}


def test_me_costs_a_fixed_number_of_queries(
    tree: Tree,
    authed: Callable[[User], APIClient],
    django_assert_num_queries: Any,
) -> None:
    # given: many memberships must not mean many queries
    user = UserFactory()
    for region in (tree.fengdong, tree.sanqiao, tree.fengxi, tree.diaotai):
        membership_grant(user=user, region=region, role=Role.OPERATOR)
    client = authed(user)
    # when / then: user (JWT), memberships+regions, scope
    with django_assert_num_queries(3):
        response = client.get(ME_URL)
    assert response.status_code == 200
    assert len(response.json()["memberships"]) == 4


def test_me_requires_authentication(api_client: APIClient) -> None:
    response = api_client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"

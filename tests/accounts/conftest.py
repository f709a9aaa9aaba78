"""A tiny Xixian tree and the cast the accounts tests share.

xixian ─┬─ fengdong ── fd-sanqiao
        └─ fengxi ──── fx-diaotai
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.services import tokens_issue
from apps.regions.models import Region
from tests.factories.accounts import StaffUserFactory


@dataclass(frozen=True)
class Tree:
    xixian: Region
    fengdong: Region
    sanqiao: Region
    fengxi: Region
    diaotai: Region


def _region(code: str, name_zh: str, level: str, kind: str, parent: Region | None) -> Region:
    return Region.objects.create(
        code=code, name_zh=name_zh, name_en=code.title(), level=level, kind=kind, parent=parent
    )


@pytest.fixture
def tree(db: None) -> Tree:
    L, K = Region.Level, Region.Kind
    xixian = _region("xixian", "陕西西咸新区", L.NEW_AREA, K.NEW_AREA, None)
    fengdong = _region("fengdong", "沣东新城", L.NEW_TOWN, K.NEW_TOWN, xixian)
    fengxi = _region("fengxi", "沣西新城", L.NEW_TOWN, K.NEW_TOWN, xixian)
    return Tree(
        xixian=xixian,
        fengdong=fengdong,
        sanqiao=_region("fd-sanqiao", "三桥街道", L.STREET, K.SUBDISTRICT, fengdong),
        fengxi=fengxi,
        diaotai=_region("fx-diaotai", "钓台街道", L.STREET, K.SUBDISTRICT, fengxi),
    )


@pytest.fixture
def fengxi_operator(tree: Tree) -> User:
    return StaffUserFactory(username="op-fengxi", region=tree.fengxi, region__role=Role.OPERATOR)


@pytest.fixture
def fengdong_operator(tree: Tree) -> User:
    return StaffUserFactory(
        username="op-fengdong", region=tree.fengdong, region__role=Role.OPERATOR
    )


@pytest.fixture
def authed() -> Callable[[User], APIClient]:
    """An API client carrying a real Bearer access token for ``user``."""

    def make(user: User) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_issue(user=user).access}")
        return client

    return make

"""Fixtures of the regions tests: the real Xixian tree and a small cast of users.

Users are created with the ORM directly (the accounts factories belong to that app).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission

from apps.accounts.models import Membership, User
from apps.regions import geo
from apps.regions.models import Region
from apps.regions.services import regions_load_fixture

# Well-known points (WGS84).
BELL_TOWER = (34.2612, 108.9423)  # 西安钟楼, east of the new area
BEIJING = (39.9042, 116.4074)
BAOJI = (34.36, 107.24)
SANQIAO_CENTRE = (34.276, 108.85)
FENGDONG_POINT = (34.268, 108.812)


@pytest.fixture
def xixian(db: Any) -> dict[str, Region]:
    """The committed Xixian fixture, loaded; regions by code."""
    regions_load_fixture()
    return {region.code: region for region in Region.objects.all()}


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    """``make_user("op", region=fengxi, role="operator", perms=["view_region"])``."""
    counter = iter(range(1_000_000))

    def make(
        username: str | None = None,
        *,
        region: Region | None = None,
        role: str = Membership.Role.OPERATOR,
        is_staff: bool = False,
        is_superuser: bool = False,
        perms: tuple[str, ...] | list[str] = (),
    ) -> User:
        user = User.objects.create_user(
            username=username or f"user{next(counter)}",
            password="pw-for-tests-only",
            is_staff=is_staff or is_superuser,
            is_superuser=is_superuser,
        )
        if region is not None:
            Membership.objects.create(user=user, region=region, role=role)
        if perms:
            user.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="regions", codename__in=perms)
            )
        return user

    return make


@pytest.fixture(autouse=True)
def _cold_street_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with a cold lookup index, whatever an earlier test left behind
    (the root conftest's cache.clear() already forces this; this does not rely on it)."""
    monkeypatch.setattr(geo, "_index", None)

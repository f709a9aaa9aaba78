"""The early-warnings tests' cast: a real-shaped tree with someone at every tier.

新区 (area commander) → 沣东新城 (town commander, town operator = the usual author) →
三桥街道 (street operator, a team leader, a roster person) → 三桥火车站社区 (a grid
worker); 沣西 → 钓台 has an operator and a grid worker who must receive nothing of 沣东.
The default SLA policies are loaded (the 叫应 clocks need them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from apps.accounts.models import Role, User
from apps.accounts.services import membership_grant
from apps.early_warnings import services
from apps.early_warnings.approval import approval_rules_seed
from apps.regions.models import Region, RegionKind, RegionLevel
from apps.sla import policies
from apps.sla.services.seed import policies_load_fixture
from tests.factories.accounts import CitizenFactory, StaffUserFactory
from tests.factories.incidents import TwoTowns
from tests.factories.regions import UnitFactory


@dataclass
class Cast:
    tree: TwoTowns
    community: Region
    area_commander: User
    town_commander: User
    town_operator: User
    town_operator2: User
    street_operator: User
    team_leader: User
    grid: User
    roster_person: User
    outsider: User
    outsider_grid: User

    @property
    def sanqiao(self) -> Region:
        return self.tree.sanqiao


def _field_user(region: Region, role: str) -> User:
    user = CitizenFactory()
    membership_grant(user=user, region=region, role=role)
    return user


@pytest.fixture(autouse=True)
def _fresh_policy_cache() -> Iterator[None]:
    policies._table = None
    yield
    policies._table = None


@pytest.fixture
def cast(db: None) -> Cast:
    tree = TwoTowns()
    community = UnitFactory(
        code="fd-sanqiao-hcz",
        name_zh="三桥火车站社区",
        parent=tree.sanqiao,
        kind=RegionKind.COMMUNITY,
        level=RegionLevel.UNIT,
    )
    policies_load_fixture()
    approval_rules_seed()  # a transactional test elsewhere may have flushed the seed
    roster_person = CitizenFactory()
    services.responsible_person_add(
        by=None, region_id=tree.sanqiao.pk, user_id=roster_person.pk, role="leader"
    )
    return Cast(
        tree=tree,
        community=community,
        area_commander=StaffUserFactory(region=tree.root, region__role=Role.COMMANDER),
        town_commander=StaffUserFactory(region=tree.fengdong, region__role=Role.COMMANDER),
        town_operator=StaffUserFactory(region=tree.fengdong),
        town_operator2=StaffUserFactory(region=tree.fengdong),
        street_operator=StaffUserFactory(region=tree.sanqiao),
        team_leader=_field_user(tree.sanqiao, Role.TEAM_LEADER),
        grid=_field_user(community, Role.GRID_WORKER),
        roster_person=roster_person,
        outsider=StaffUserFactory(region=tree.fengxi),
        outsider_grid=_field_user(tree.diaotai, Role.GRID_WORKER),
    )

"""The SLA tests' cast: a real-shaped tree with someone on every rung of the ladder.

新区 (area commander) → 沣东新城 (town commander, town operator) → 三桥街道 (street duty
operator) with two teams of on-duty responders (a leader and a member each); 沣西 has an
operator who must see and receive nothing of 沣东. The default policies of
``fixtures/sla/policies.json`` are loaded, as ``runsystem`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from apps.accounts.models import Role, User
from apps.dispatch.models import Team, TeamStatus
from apps.incidents.models import Category, Incident, IncidentStatus
from apps.sla import policies
from apps.sla.services.seed import policies_load_fixture
from tests.factories.accounts import StaffUserFactory
from tests.factories.dispatch import TeamFactory, TeamMemberFactory
from tests.factories.incidents import CategoryFactory, IncidentFactory, TwoTowns


@dataclass
class Cast:
    tree: TwoTowns
    street_operator: User
    town_operator: User
    town_commander: User
    area_commander: User
    outsider: User
    team: Team
    leader: User
    member: User
    other_team: Team
    other_leader: User
    gas: Category
    fire: Category
    flood: Category
    plain: Category

    def incident(self, **kwargs: Any) -> Incident:
        values: dict[str, Any] = {
            "region": self.tree.sanqiao,
            "status": IncidentStatus.ACCEPTED,
            "category": self.plain,
            "lat": 34.276,
            "lng": 108.850,
        }
        values.update(kwargs)
        return IncidentFactory(**values)


@pytest.fixture(autouse=True)
def _fresh_policy_cache() -> Iterator[None]:
    """Each test sees the policies of its own database state."""
    policies._table = None
    yield
    policies._table = None


@pytest.fixture
def cast(db: None) -> Cast:
    tree = TwoTowns()
    team = TeamFactory(home_region=tree.sanqiao, status=TeamStatus.AVAILABLE)
    other_team = TeamFactory(home_region=tree.sanqiao, status=TeamStatus.AVAILABLE)
    leader = TeamMemberFactory(team=team, is_leader=True, on_duty=True).user
    member = TeamMemberFactory(team=team, on_duty=True).user
    other_leader = TeamMemberFactory(team=other_team, is_leader=True, on_duty=True).user
    return Cast(
        tree=tree,
        street_operator=StaffUserFactory(region=tree.sanqiao),
        town_operator=StaffUserFactory(region=tree.fengdong),
        town_commander=StaffUserFactory(region=tree.fengdong, region__role=Role.COMMANDER),
        area_commander=StaffUserFactory(region=tree.root, region__role=Role.COMMANDER),
        outsider=StaffUserFactory(region=tree.fengxi),
        team=team,
        leader=leader,
        member=member,
        other_team=other_team,
        other_leader=other_leader,
        gas=CategoryFactory(code="A02", name_zh="燃气泄漏 / 燃气爆炸"),
        fire=CategoryFactory(code="A01", name_zh="建筑火灾"),
        flood=CategoryFactory(code="N02", name_zh="城市内涝 / 积水"),
        plain=CategoryFactory(code="A04", name_zh="道路交通事故"),
    )


@pytest.fixture
def default_policies(db: None) -> dict[str, int]:
    return policies_load_fixture()


@dataclass
class Probe:
    """A subject type of the test's own (warning receipts and hidden dangers have no app
    yet): it locks nothing, records what it is asked, and can be made busy or gone."""

    subject_type: str
    recorded: list[Any]
    assignees: list[int]
    lock_outcome: str = "locked"
    fail_record: bool = False


@pytest.fixture
def probe(make_probe: Any) -> Probe:
    return make_probe("probe")  # type: ignore[no-any-return]


@pytest.fixture
def make_probe() -> Iterator[Any]:
    """A factory of probe subject types (``make_probe("warning_receipt")``)."""
    from apps.sla import registry
    from apps.sla.models import Audience

    made: list[str] = []

    def make(subject_type: str) -> Probe:
        state = Probe(subject_type=subject_type, recorded=[], assignees=[])

        def record(event: registry.RecordEvent) -> None:
            if state.fail_record:
                raise RuntimeError("the probe's timeline is down")
            state.recorded.append((event.kind, event.data))

        registry.register_subject(
            subject_type,
            registry.SubjectHandler(
                label=subject_type,
                lock=lambda subject_id, *, wait: registry.Lock(state.lock_outcome),
                record=record,
            ),
        )
        registry.register_recipients(subject_type, Audience.ASSIGNEE, lambda c: state.assignees)
        made.append(subject_type)
        return state

    yield make
    for subject_type in made:
        registry._handlers.pop(subject_type, None)
        registry._recipients.pop((subject_type, "assignee"), None)

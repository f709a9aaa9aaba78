"""Shared set-up of the tasks tests: one street, one incident, teams with members.

Plain builders rather than conftest fixtures, so the teams and tracks tests' conftest
stays theirs; each test module wraps :class:`Scene` in a fixture.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.accounts.models import Role, User
from apps.dispatch.models import DispatchTask, Team, TeamStatus
from apps.incidents.models import Incident, IncidentStatus
from tests.factories.accounts import StaffUserFactory
from tests.factories.dispatch import DispatchTaskFactory, TeamFactory, TeamMemberFactory
from tests.factories.incidents import IncidentFactory, TwoTowns

# Status → the timestamps a task in that status has (so factories build plausible rows).
STAMPS: dict[str, tuple[str, ...]] = {
    "dispatched": (),
    "accepted": ("accepted_at",),
    "declined": ("declined_at",),
    "expired": ("expired_at",),
    "en_route": ("accepted_at", "en_route_at"),
    "on_scene": ("accepted_at", "en_route_at", "on_scene_at"),
    "completed": ("accepted_at", "en_route_at", "on_scene_at", "completed_at"),
    "verified": ("accepted_at", "en_route_at", "on_scene_at", "completed_at", "verified_at"),
    "returned": ("accepted_at", "en_route_at", "on_scene_at", "completed_at", "returned_at"),
    "cancelled": ("cancelled_at",),
}


class Scene:
    """三桥街道 (沣东) with an accepted incident, two available teams of two on-duty
    members each, a 沣东 operator, and an operator of 沣西 (out of scope)."""

    def __init__(self, *, incident_status: str = IncidentStatus.ACCEPTED) -> None:
        self.tree = TwoTowns()
        self.street = self.tree.sanqiao
        self.incident: Incident = IncidentFactory(
            region=self.street,
            status=incident_status,
            lat=34.276,
            lng=108.850,
            reporter_name="王先生",
            reporter_phone="+8613900000001",
        )
        self.team: Team = self.new_team()
        self.member: User = self.add_member(self.team)
        self.member2: User = self.add_member(self.team)
        self.other_team: Team = self.new_team()
        self.other_member: User = self.add_member(self.other_team)
        self.operator: User = StaffUserFactory(region=self.tree.fengdong)
        self.outsider_operator: User = StaffUserFactory(region=self.tree.fengxi)

    def new_team(self, **kwargs: Any) -> Team:
        values: dict[str, Any] = {"home_region": self.street, "status": TeamStatus.AVAILABLE}
        values.update(kwargs)
        return TeamFactory(**values)

    def add_member(self, team: Team, **kwargs: Any) -> User:
        return TeamMemberFactory(team=team, on_duty=True, **kwargs).user

    def task(self, status: str = "dispatched", *, team: Team | None = None) -> DispatchTask:
        now = timezone.now()
        stamps = dict.fromkeys(STAMPS[status], now)
        return DispatchTaskFactory(
            incident=self.incident, team=team or self.team, status=status, **stamps
        )


def responder_with_scope(scene: Scene) -> User:
    """A responder of another team holding a responder membership in the street: they
    may read the incident's tasks but not act on them, nor see the reporter's phone."""
    user = StaffUserFactory(region=scene.street, region__role=Role.RESPONDER)
    TeamMemberFactory(team=scene.other_team, user=user, on_duty=True)
    return user

"""The world of the authorisation matrix (``docs/authz-matrix.md``), built once per module.

Two new towns, one street each (``TwoTowns``: 沣东 → 三桥街道, 沣西 → 钓台街道), a
community under 三桥 (三桥火车站社区) and one person per role of the matrix:

==============  ===========================================================================
column          who
==============  ===========================================================================
``anon``        nobody logged in
``citizen``     a citizen, reporter of the ``own`` report (and its photo)
``citizen2``    another citizen, reporter of the ``other`` report
``responder``   member of team A (三桥), responder of 三桥; team A works incident ``in``
``responder2``  member of team B (三桥), responder of 三桥; team B has no task
``operator``    operator of 沣东
``operator_out``  operator of 沣西 (everything of 沣东 is out of their scope)
``liaison``     department liaison of 沣东
``commander``   commander of the new area (the whole tree)
``grid``        grid worker of 三桥火车站社区
``cross``       member of team C (钓台, 沣西), responder of 钓台; team C works incident
                ``cross`` — in 沣东, across the new-town border
==============  ===========================================================================

Objects (the ``object`` column of the matrix):

- incidents: ``in`` (三桥火车站社区, 沣东, team A on it, a report with a photo, a room
  message with a photo), ``out`` (钓台, 沣西, team D on it), ``cross`` (三桥, worked by
  the 沣西 team C);
- reports: ``own`` (the citizen's, 三桥, submitted, a photo), ``other`` (the other
  citizen's, 三桥, submitted, a photo), ``out`` (钓台, submitted, a photo);
- tasks: team A's on ``in``, team D's on ``out``, team C's on ``cross``;
- photos: those of the three reports; teams ``in`` (A) and ``out`` (D); regions ``in``
  (三桥) and ``out`` (钓台); devices and pushes ``own`` (the citizen's) and ``other``;
  tracking tokens ``own`` and ``unknown``.

Every reporter's phone is distinct from every account's phone, so a phone found in an
answer is a reporter's (``World.reporter_phones``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from apps.accounts.models import Device, Role, User
from apps.accounts.services import membership_grant
from apps.dispatch.models import DispatchTask, RoomMessage, Team, TeamStatus
from apps.early_warnings.approval import approval_rules_seed
from apps.early_warnings.models import WarningVersion
from apps.incidents.models import Attachment, Category, Incident, IncidentStatus, Report
from apps.notifications.models import Notification
from apps.regions.models import Region, RegionKind, RegionLevel
from tests.factories.accounts import CitizenFactory, DeviceFactory, StaffUserFactory
from tests.factories.dispatch import DispatchTaskFactory, TeamFactory, TeamMemberFactory
from tests.factories.early_warnings import published as published_warning
from tests.factories.incidents import (
    AttachmentFactory,
    CategoryFactory,
    IncidentFactory,
    ReportFactory,
    TwoTowns,
)
from tests.factories.notifications import NotificationFactory
from tests.factories.regions import UnitFactory

ROLES = (
    "anon",
    "citizen",
    "citizen2",
    "responder",
    "responder2",
    "operator",
    "operator_out",
    "liaison",
    "commander",
    "grid",
    "cross",
)


@dataclass
class World:
    tree: TwoTowns
    community: Region
    category: Category
    users: dict[str, User | None]
    incidents: dict[str, Incident]
    reports: dict[str, Report]
    tasks: dict[str, DispatchTask]
    attachments: dict[str, Attachment]
    teams: dict[str, Team]
    regions: dict[str, Region]
    devices: dict[str, Device]
    notifications: dict[str, Notification]
    warnings: dict[str, WarningVersion]
    tokens: dict[str, str]
    spare_incident: Incident  # an open 沣东 incident: a merge and duplicate target
    spare_team: Team  # team B, available: dispatch and reassign to it
    room_photo: Attachment
    reporter_phones: list[str] = field(default_factory=list)

    def user(self, role: str) -> User | None:
        """A fresh copy of the role's user: nothing cached from an earlier request."""
        user = self.users[role]
        return None if user is None else User.objects.get(pk=user.pk)


def _responder(team: Team, region: Region, phone: str, *, leader: bool = False) -> User:
    user = CitizenFactory(phone=phone)
    role = Role.TEAM_LEADER if leader else Role.RESPONDER
    membership_grant(user=user, region=region, role=role)
    TeamMemberFactory(team=team, user=user, on_duty=True, is_leader=leader)
    return user


def _report(region: Region, reporter: User | None, phone: str, category: Category) -> Report:
    report = ReportFactory(
        region=region,
        reporter=reporter,
        phone=phone,
        category=category,
        token=secrets.token_urlsafe(32),
        lat=34.276,
        lng=108.85,
    )
    AttachmentFactory(report=report)
    return report


def build_world() -> World:
    tree = TwoTowns()
    community = UnitFactory(
        code="fd-sanqiao-hcz",
        name_zh="三桥火车站社区",
        parent=tree.sanqiao,
        kind=RegionKind.COMMUNITY,
        level=RegionLevel.UNIT,
    )
    category = CategoryFactory(code="A01")
    CategoryFactory(code="O99")  # SOS

    team_a = TeamFactory(code="authz-team-a", home_region=tree.sanqiao)
    team_b = TeamFactory(code="authz-team-b", home_region=tree.sanqiao)
    team_c = TeamFactory(code="authz-team-c", home_region=tree.diaotai)
    team_d = TeamFactory(code="authz-team-d", home_region=tree.diaotai)
    for team in (team_a, team_b, team_c, team_d):
        assert team.status == TeamStatus.AVAILABLE

    citizen = CitizenFactory(phone="+8613911110001")
    citizen2 = CitizenFactory(phone="+8613911110002")
    grid = CitizenFactory(phone="+8613911110003")
    membership_grant(user=grid, region=community, role=Role.GRID_WORKER)
    users: dict[str, User | None] = {
        "anon": None,
        "citizen": citizen,
        "citizen2": citizen2,
        "responder": _responder(team_a, tree.sanqiao, "+8613922220001", leader=True),
        "responder2": _responder(team_b, tree.sanqiao, "+8613922220002"),
        "operator": StaffUserFactory(username="authz-op-fd", region=tree.fengdong),
        "operator_out": StaffUserFactory(username="authz-op-fx", region=tree.fengxi),
        "liaison": StaffUserFactory(
            username="authz-liaison-fd",
            region=tree.fengdong,
            region__role=Role.DEPARTMENT_LIAISON,
        ),
        "commander": StaffUserFactory(
            username="authz-cmd", region=tree.root, region__role=Role.COMMANDER
        ),
        "grid": grid,
        "cross": _responder(team_c, tree.diaotai, "+8613922220003"),
    }
    _responder(team_d, tree.diaotai, "+8613922220004")

    def incident(region: Region, phone: str, **kwargs: Any) -> Incident:
        values: dict[str, Any] = {
            "region": region,
            "category": category,
            "status": IncidentStatus.IN_PROGRESS,
            "lat": 34.276,
            "lng": 108.85,
            "reporter_name": "报告人",
            "reporter_phone": phone,
        }
        return IncidentFactory(**{**values, **kwargs})

    incidents = {
        "in": incident(community, "+8613955550001"),
        "out": incident(tree.diaotai, "+8613955550002", lat=34.305, lng=108.718),
        "cross": incident(tree.sanqiao, "+8613955550003", lat=34.277, lng=108.851),
    }
    spare = incident(tree.sanqiao, "+8613955550004", lat=34.2761, lng=108.8501)
    linked = _report(community, None, "+8613955550005", category)
    Report.objects.filter(pk=linked.pk).update(
        status=Report.Status.ACCEPTED, incident=incidents["in"]
    )
    now = timezone.now()
    tasks = {
        "in": DispatchTaskFactory(
            incident=incidents["in"], team=team_a, status="accepted", accepted_at=now
        ),
        "out": DispatchTaskFactory(
            incident=incidents["out"], team=team_d, status="accepted", accepted_at=now
        ),
        "cross": DispatchTaskFactory(
            incident=incidents["cross"], team=team_c, status="accepted", accepted_at=now
        ),
    }
    Team.objects.filter(pk__in=[team_a.pk, team_c.pk, team_d.pk]).update(
        status=TeamStatus.DISPATCHED
    )
    room_photo = AttachmentFactory(report=None, incident=incidents["in"])
    RoomMessage.objects.create(
        incident=incidents["in"], author=users["responder"], text="现场", attachment=room_photo
    )
    reports = {
        "own": _report(tree.sanqiao, citizen, "+8613955550006", category),
        "other": _report(tree.sanqiao, citizen2, "+8613955550007", category),
        "out": _report(tree.diaotai, None, "+8613955550008", category),
    }
    attachments = {name: report.attachments.get() for name, report in reports.items()}
    # Warnings (blue, street level): ``in`` for 三桥 (its team leader — the responder —
    # and the grid worker of 三桥火车站社区 must answer), ``out`` for 钓台.
    approval_rules_seed()
    warnings = {
        "in": published_warning(
            by=users["operator"], approver=users["commander"], targets=[tree.sanqiao.pk]
        ),
        "out": published_warning(
            by=users["operator_out"], approver=users["commander"], targets=[tree.diaotai.pk]
        ),
    }
    world = World(
        tree=tree,
        community=community,
        category=category,
        users=users,
        incidents=incidents,
        reports=reports,
        tasks=tasks,
        attachments=attachments,
        teams={"in": team_a, "out": team_d},
        regions={"in": tree.sanqiao, "out": tree.diaotai},
        devices={"own": DeviceFactory(user=citizen), "other": DeviceFactory(user=citizen2)},
        notifications={
            "own": NotificationFactory(user=citizen),
            "other": NotificationFactory(user=citizen2),
        },
        warnings=warnings,
        tokens={"own": reports["own"].token, "unknown": secrets.token_urlsafe(32)},
        spare_incident=spare,
        spare_team=team_b,
        room_photo=room_photo,
    )
    world.reporter_phones = sorted(
        {i.reporter_phone for i in Incident.objects.all()}
        | {r.phone for r in Report.objects.exclude(phone="")}
    )
    return world

"""The KPI tests' known scenario: hand-picked times, hand-computed answers.

Two new towns: 沣东 with two streets (三桥, 建章路) and 沣西 with one (钓台). "Now" is
2026-11-21 12:00 Asia/Shanghai; the window is 2026-11-01 … 2026-11-21. Every time below
is Asia/Shanghai. Rows are written with factories (set-up, not transitions), exactly as
the services leave them; the end-to-end test drives the services themselves.

沣东 (visible to the 沣东 operator)::

  I1 gas 三桥   report 11-03 09:00, created+accepted 09:04, resolved 10:40, closed 11-04 09:40
       K1 team-1: dispatched 09:10, accepted 09:12, on scene 09:25 (verified)
  I2 flood 建章 created 11-05 14:00, accepted 14:10; resolved 11-05 18:00, closed 11-06 10:00,
                REOPENED 11-06 12:00, resolved again 11-06 16:00, closed 11-07 09:00
       K2 team-2: dispatched 14:30, declined 14:34
       K3 team-1: dispatched 14:35, accepted 14:36, on scene 15:05 (verified)
  I3 gas 三桥   report 11-10 08:00 (+ a duplicate report 08:30), created+accepted 08:02,
                in progress
       K4 team-1: dispatched 08:05, accepted 08:08, en route (not on scene yet)
  I4 gas 三桥   DRILL: created 11-12 10:00, accepted 10:01, resolved 10:30, closed 10:40
       K5 team-2: dispatched 10:02, accepted 10:03, on scene 10:10 (verified)
  I5 flood 建章 created 11-15 09:00, rejected
  I6 gas 三桥   created 11-10 08:01, accepted 08:03, merged into I3
  I8 gas 三桥   created 10-31 23:50 (before the window: 15:50 UTC)
  I9 gas 三桥   created 11-01 00:10 (in the window; still 10-31 in UTC), accepted 00:15

沣西: I7 flood 钓台 created 11-08 10:00, accepted 10:30, resolved 12:00, closed 13:00;
K6 team-3 dispatched 10:40, accepted 10:45, on scene 11:00.

SLA clocks (沣东 unless said)::

  c1  task_accept   K1  09:10 → due 09:13, stopped 09:12                  met
  c2  task_accept   K4  08:05 → due 08:08, stopped 08:08 (at the deadline) met
  c3  task_accept   K2  14:30 → due 14:33, stopped 14:34, breached 14:33  breached
  c4  task_arrival  K4  08:05 → due 08:25, still running                 breached (unswept)
  c5  resolution    I3  11-10 08:02 → due 12:02, running, breached 12:02  breached
  c6  verification  I1  11-03 10:40 → due 11-04 10:40, stopped 09:40     met
  c7  dispatch      I1  09:04 → due 09:14, stopped 09:10                  met
  c8  report_triage     11-21 11:58 → due 12:03, running                 pending
  c9  dispatch      I6  cancelled (merged)                                not counted
  c10 task_arrival  K1  09:10 → due 09:30, stopped 09:25                  met
  c11 task_accept   K5  DRILL, breached                                   left out
  c12 task_accept   K6  沣西, met                                          沣西 only
  c13 dispatch      I8  10-31 23:50, met                                   before the window
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from apps.accounts.models import User
from apps.dispatch.models import DispatchTask, Team
from apps.incidents.models import Category, Incident, IncidentEvent, Report
from apps.regions.models import Region, RegionKind
from apps.sla.models import ClockStatus, SlaClock, SlaKind
from tests.factories.accounts import StaffUserFactory
from tests.factories.dispatch import DispatchTaskFactory, TeamFactory
from tests.factories.incidents import CategoryFactory, IncidentFactory, ReportFactory, TwoTowns
from tests.factories.regions import StreetFactory
from tests.factories.sla import SlaClockFactory

WINDOW = {"from": "2026-11-01", "to": "2026-11-21"}


SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(month: int, day: int, hour: int, minute: int) -> datetime:
    """An Asia/Shanghai time of 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


NOW = at(11, 21, 12, 0)


@dataclass
class Scenario:
    tree: TwoTowns
    jianzhang: Region
    gas: Category
    flood: Category
    team1: Team
    team2: Team
    team3: Team
    incidents: dict[str, Incident]
    tasks: dict[str, DispatchTask]
    clocks: dict[str, SlaClock]
    fengdong_operator: User
    fengxi_operator: User


def _incident(**values: Any) -> Incident:
    values.setdefault("lat", 34.276)
    values.setdefault("lng", 108.850)
    return IncidentFactory(**values)


def _task(incident: Incident, team: Team, status: str, **stamps: datetime) -> DispatchTask:
    return DispatchTaskFactory(incident=incident, team=team, status=status, **stamps)


def _task_clock(kind: str, task: DispatchTask, **values: Any) -> SlaClock:
    incident = task.incident
    return SlaClockFactory(
        kind=kind,
        subject_type="task",
        subject_id=task.pk,
        region=incident.region,
        category_code=incident.category.code,
        is_drill=incident.is_drill,
        **values,
    )


def _incident_clock(kind: str, incident: Incident, **values: Any) -> SlaClock:
    return SlaClockFactory(
        kind=kind,
        subject_type="incident",
        subject_id=incident.pk,
        region=incident.region,
        category_code=incident.category.code,
        is_drill=incident.is_drill,
        **values,
    )


def _stopped(started: datetime, due: datetime, stopped: datetime, **values: Any) -> dict[str, Any]:
    return {
        "status": ClockStatus.STOPPED,
        "started_at": started,
        "due_at": due,
        "stopped_at": stopped,
        **values,
    }


def build_scenario() -> Scenario:
    tree = TwoTowns()
    sanqiao, diaotai = tree.sanqiao, tree.diaotai
    jianzhang = StreetFactory(
        code="fd-jianzhang",
        name_zh="建章路街道",
        name_en="Jianzhanglu Subdistrict",
        parent=tree.fengdong,
        kind=RegionKind.SUBDISTRICT,
    )
    gas = CategoryFactory(code="A02", name_zh="燃气泄漏", name_en="Gas leak", sort_order=2)
    flood = CategoryFactory(code="N02", name_zh="城市内涝", name_en="Waterlogging", sort_order=1)
    team1 = TeamFactory(code="fd-team-1", name="三桥救援队", home_region=sanqiao)
    team2 = TeamFactory(code="fd-team-2", name="建章路救援队", home_region=jianzhang)
    team3 = TeamFactory(code="fx-team-3", name="钓台救援队", home_region=diaotai)

    inc: dict[str, Incident] = {}
    inc["I1"] = _incident(
        category=gas,
        region=sanqiao,
        status="closed",
        source="citizen_report",
        created_at=at(11, 3, 9, 4),
        accepted_at=at(11, 3, 9, 4),
        in_progress_at=at(11, 3, 9, 12),
        resolved_at=at(11, 3, 10, 40),
        closed_at=at(11, 4, 9, 40),
    )
    ReportFactory(
        incident=inc["I1"],
        status=Report.Status.ACCEPTED,
        category=gas,
        region=sanqiao,
        created_at=at(11, 3, 9, 0),
        triaged_at=at(11, 3, 9, 4),
    )
    inc["I2"] = _incident(
        category=flood,
        region=jianzhang,
        status="closed",
        source="hotline",
        created_at=at(11, 5, 14, 0),
        accepted_at=at(11, 5, 14, 10),
        in_progress_at=at(11, 5, 14, 36),
        resolved_at=at(11, 6, 16, 0),  # the second resolution: the first was reopened
        closed_at=at(11, 7, 9, 0),
    )
    IncidentEvent.objects.create(
        incident=inc["I2"],
        kind=IncidentEvent.Kind.REOPENED,
        at=at(11, 6, 12, 0),
        data={
            "from": "closed",
            "to": "in_progress",
            "previous_resolved_at": at(11, 5, 18, 0).isoformat(),
            "previous_closed_at": at(11, 6, 10, 0).isoformat(),
        },
    )
    inc["I3"] = _incident(
        category=gas,
        region=sanqiao,
        status="in_progress",
        source="citizen_report",
        created_at=at(11, 10, 8, 2),
        accepted_at=at(11, 10, 8, 2),
        in_progress_at=at(11, 10, 8, 8),
    )
    ReportFactory(
        incident=inc["I3"],
        status=Report.Status.ACCEPTED,
        category=gas,
        region=sanqiao,
        created_at=at(11, 10, 8, 0),
    )
    ReportFactory(
        incident=inc["I3"],
        status=Report.Status.DUPLICATE,
        category=gas,
        region=sanqiao,
        created_at=at(11, 10, 8, 30),
    )
    inc["I4"] = _incident(
        category=gas,
        region=sanqiao,
        status="closed",
        is_drill=True,
        created_at=at(11, 12, 10, 0),
        accepted_at=at(11, 12, 10, 1),
        resolved_at=at(11, 12, 10, 30),
        closed_at=at(11, 12, 10, 40),
    )
    inc["I5"] = _incident(
        category=flood,
        region=jianzhang,
        status="rejected",
        rejection_reason="不属于应急事件",
        created_at=at(11, 15, 9, 0),
    )
    inc["I6"] = _incident(
        category=gas,
        region=sanqiao,
        status="merged",
        merged_into=inc["I3"],
        created_at=at(11, 10, 8, 1),
        accepted_at=at(11, 10, 8, 3),
    )
    inc["I7"] = _incident(
        category=flood,
        region=diaotai,
        status="closed",
        lat=34.305,
        lng=108.718,
        created_at=at(11, 8, 10, 0),
        accepted_at=at(11, 8, 10, 30),
        resolved_at=at(11, 8, 12, 0),
        closed_at=at(11, 8, 13, 0),
    )
    inc["I8"] = _incident(
        category=gas,
        region=sanqiao,
        status="accepted",
        created_at=at(10, 31, 23, 50),
        accepted_at=at(10, 31, 23, 52),
    )
    inc["I9"] = _incident(
        category=gas,
        region=sanqiao,
        status="accepted",
        created_at=at(11, 1, 0, 10),
        accepted_at=at(11, 1, 0, 15),
    )

    tasks: dict[str, DispatchTask] = {}
    tasks["K1"] = _task(
        inc["I1"],
        team1,
        "verified",
        dispatched_at=at(11, 3, 9, 10),
        accepted_at=at(11, 3, 9, 12),
        en_route_at=at(11, 3, 9, 13),
        on_scene_at=at(11, 3, 9, 25),
        completed_at=at(11, 3, 10, 30),
        verified_at=at(11, 3, 10, 35),
    )
    tasks["K2"] = _task(
        inc["I2"],
        team2,
        "declined",
        dispatched_at=at(11, 5, 14, 30),
        declined_at=at(11, 5, 14, 34),
    )
    tasks["K3"] = _task(
        inc["I2"],
        team1,
        "verified",
        dispatched_at=at(11, 5, 14, 35),
        accepted_at=at(11, 5, 14, 36),
        on_scene_at=at(11, 5, 15, 5),
        completed_at=at(11, 6, 15, 30),
        verified_at=at(11, 6, 15, 40),
    )
    tasks["K4"] = _task(
        inc["I3"],
        team1,
        "en_route",
        dispatched_at=at(11, 10, 8, 5),
        accepted_at=at(11, 10, 8, 8),
        en_route_at=at(11, 10, 8, 10),
    )
    tasks["K5"] = _task(
        inc["I4"],
        team2,
        "verified",
        dispatched_at=at(11, 12, 10, 2),
        accepted_at=at(11, 12, 10, 3),
        on_scene_at=at(11, 12, 10, 10),
        completed_at=at(11, 12, 10, 25),
        verified_at=at(11, 12, 10, 28),
    )
    tasks["K6"] = _task(
        inc["I7"],
        team3,
        "verified",
        dispatched_at=at(11, 8, 10, 40),
        accepted_at=at(11, 8, 10, 45),
        on_scene_at=at(11, 8, 11, 0),
        completed_at=at(11, 8, 11, 50),
        verified_at=at(11, 8, 11, 55),
    )

    k = SlaKind
    clocks: dict[str, SlaClock] = {}
    clocks["c1"] = _task_clock(
        k.TASK_ACCEPT, tasks["K1"], **_stopped(at(11, 3, 9, 10), at(11, 3, 9, 13), at(11, 3, 9, 12))
    )
    clocks["c2"] = _task_clock(
        k.TASK_ACCEPT,
        tasks["K4"],
        **_stopped(at(11, 10, 8, 5), at(11, 10, 8, 8), at(11, 10, 8, 8)),
    )
    clocks["c3"] = _task_clock(
        k.TASK_ACCEPT,
        tasks["K2"],
        **_stopped(
            at(11, 5, 14, 30),
            at(11, 5, 14, 33),
            at(11, 5, 14, 34),
            breached_at=at(11, 5, 14, 33),
        ),
    )
    clocks["c4"] = _task_clock(
        k.TASK_ARRIVAL,
        tasks["K4"],
        status=ClockStatus.RUNNING,
        started_at=at(11, 10, 8, 5),
        due_at=at(11, 10, 8, 25),
    )
    clocks["c5"] = _incident_clock(
        k.INCIDENT_RESOLUTION,
        inc["I3"],
        status=ClockStatus.RUNNING,
        started_at=at(11, 10, 8, 2),
        due_at=at(11, 10, 12, 2),
        breached_at=at(11, 10, 12, 2),
    )
    clocks["c6"] = _incident_clock(
        k.INCIDENT_VERIFICATION,
        inc["I1"],
        **_stopped(at(11, 3, 10, 40), at(11, 4, 10, 40), at(11, 4, 9, 40)),
    )
    clocks["c7"] = _incident_clock(
        k.DISPATCH, inc["I1"], **_stopped(at(11, 3, 9, 4), at(11, 3, 9, 14), at(11, 3, 9, 10))
    )
    clocks["c8"] = SlaClockFactory(
        kind=k.REPORT_TRIAGE,
        subject_type="report",
        subject_id=ReportFactory(category=flood, region=jianzhang).pk,
        region=jianzhang,
        category_code=flood.code,
        status=ClockStatus.RUNNING,
        started_at=at(11, 21, 11, 58),
        due_at=at(11, 21, 12, 3),
    )
    clocks["c9"] = _incident_clock(
        k.DISPATCH,
        inc["I6"],
        status=ClockStatus.CANCELLED,
        started_at=at(11, 10, 8, 3),
        due_at=at(11, 10, 8, 13),
        stopped_at=at(11, 10, 8, 4),
    )
    clocks["c10"] = _task_clock(
        k.TASK_ARRIVAL,
        tasks["K1"],
        **_stopped(at(11, 3, 9, 10), at(11, 3, 9, 30), at(11, 3, 9, 25)),
    )
    clocks["c11"] = _task_clock(
        k.TASK_ACCEPT,
        tasks["K5"],
        **_stopped(
            at(11, 12, 10, 2),
            at(11, 12, 10, 5),
            at(11, 12, 10, 8),
            breached_at=at(11, 12, 10, 5),
        ),
    )
    clocks["c12"] = _task_clock(
        k.TASK_ACCEPT,
        tasks["K6"],
        **_stopped(at(11, 8, 10, 40), at(11, 8, 10, 43), at(11, 8, 10, 42)),
    )
    clocks["c13"] = _incident_clock(
        k.DISPATCH,
        inc["I8"],
        **_stopped(at(10, 31, 23, 52), at(11, 1, 0, 2), at(10, 31, 23, 58)),
    )

    return Scenario(
        tree=tree,
        jianzhang=jianzhang,
        gas=gas,
        flood=flood,
        team1=team1,
        team2=team2,
        team3=team3,
        incidents=inc,
        tasks=tasks,
        clocks=clocks,
        fengdong_operator=StaffUserFactory(region=tree.fengdong),
        fengxi_operator=StaffUserFactory(region=tree.fengxi),
    )


@pytest.fixture
def scenario(db: None) -> Scenario:
    return build_scenario()
